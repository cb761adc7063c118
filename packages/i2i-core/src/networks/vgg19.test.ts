import { InputError, ModelFormatError, UsageError, loadTf } from '@scenimefy/io';
import type { TensorData } from '@scenimefy/io';
import { seededUniform } from '@scenimefy/test-utils';
import type { Tensor4D } from '@tensorflow/tfjs-core';
import type { Tf } from '../layers/tf';
import type { Float32TensorData } from './generator';
import { VGG19_CONV_LAYERS, createVgg19Features, loadVgg19Weights, vgg19FeaturesStateDictSpec } from './vgg19';
import type { Vgg19Features } from './vgg19';

let tf: Tf;
let weights: Map<string, Float32TensorData>;
let vgg: Vgg19Features;

/** He-uniform conv weights and small biases, so activations keep their scale through 12 convs. */
function syntheticWeights(): Map<string, Float32TensorData> {
  const dict = new Map<string, Float32TensorData>();
  let seed = 7;
  for (const [key, { shape }] of vgg19FeaturesStateDictSpec()) {
    const n = shape.reduce((a, d) => a * d, 1);
    const bound = shape.length === 4 ? Math.sqrt(6 / (9 * shape[1]!)) : 0.05;
    dict.set(key, { shape, data: seededUniform(seed++, n, -bound, bound) });
  }
  return dict;
}

beforeAll(async () => {
  ({ tf } = await loadTf({ prefer: 'wasm', require: true }));
  weights = syntheticWeights();
  vgg = createVgg19Features(tf, weights);
});

afterAll(() => vgg.dispose());

/**
 * An independent NCHW float64 VGG-19 `features[0..25]`, written from torchvision's definition: 3×3 convs with
 * zero padding 1 on PyTorch-layout (OIHW) weights, ReLU after every conv but the last, 2×2/2 max pools (floor).
 */
function referenceFeatures(
  x: Float32Array,
  shape: readonly number[],
  dict: ReadonlyMap<string, Float32TensorData>,
): { data: Float64Array; shape: number[] } {
  let [c, h, w] = [shape[1]!, shape[2]!, shape[3]!];
  let a = Float64Array.from(x);
  const conv = (key: number, relu: boolean): void => {
    const W = dict.get(`features.${key}.weight`)!;
    const b = dict.get(`features.${key}.bias`)!.data;
    const o = W.shape[0]!;
    const out = new Float64Array(o * h * w);
    for (let oo = 0; oo < o; oo++)
      for (let y = 0; y < h; y++)
        for (let xx = 0; xx < w; xx++) {
          let s = b[oo]!;
          for (let i = 0; i < c; i++)
            for (let ky = 0; ky < 3; ky++)
              for (let kx = 0; kx < 3; kx++) {
                const yy = y + ky - 1;
                const xi = xx + kx - 1;
                if (yy < 0 || yy >= h || xi < 0 || xi >= w) continue;
                s += W.data[((oo * c + i) * 3 + ky) * 3 + kx]! * a[(i * h + yy) * w + xi]!;
              }
          out[(oo * h + y) * w + xx] = relu ? Math.max(0, s) : s;
        }
    a = out;
    c = o;
  };
  const pool = (): void => {
    const [ph, pw] = [Math.floor(h / 2), Math.floor(w / 2)];
    const out = new Float64Array(c * ph * pw);
    for (let i = 0; i < c; i++)
      for (let y = 0; y < ph; y++)
        for (let xx = 0; xx < pw; xx++) {
          let m = -Infinity;
          for (let k = 0; k < 4; k++) m = Math.max(m, a[(i * h + 2 * y + (k >> 1)) * w + 2 * xx + (k & 1)]!);
          out[(i * ph + y) * pw + xx] = m;
        }
    a = out;
    [h, w] = [ph, pw];
  };
  for (const i of [0, 2]) conv(i, true);
  pool();
  for (const i of [5, 7]) conv(i, true);
  pool();
  for (const i of [10, 12, 14, 16]) conv(i, true);
  pool();
  for (const i of [19, 21, 23, 25]) conv(i, i !== 25);
  return { data: a, shape: [1, c, h, w] };
}

describe('VGG-19 state dict', () => {
  it('lists the 12 convs of features[0..25] under torchvision key names and shapes', () => {
    const spec = vgg19FeaturesStateDictSpec();
    expect(spec.size).toBe(24);
    expect([...VGG19_CONV_LAYERS.keys()]).toEqual([0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25]);
    expect(VGG19_CONV_LAYERS.get(0)).toBe('conv1_1');
    expect(VGG19_CONV_LAYERS.get(16)).toBe('conv3_4');
    expect(VGG19_CONV_LAYERS.get(25)).toBe('conv4_4');
    expect(spec.get('features.0.weight')!.shape).toEqual([64, 3, 3, 3]);
    expect(spec.get('features.19.weight')!.shape).toEqual([512, 256, 3, 3]);
    expect(spec.get('features.25.bias')!.shape).toEqual([512]);
  });

  it('accepts the torchvision keys, a prefixed copy, a bare features Sequential and an explicit prefix', () => {
    const expected = [...weights.keys()];
    const rekeyed = (f: (k: string) => string) => new Map([...weights].map(([k, v]) => [f(k), v]));
    expect([...loadVgg19Weights(weights).keys()]).toEqual(expected);
    expect([...loadVgg19Weights(rekeyed((k) => `vgg.${k}`)).keys()]).toEqual(expected);
    expect([...loadVgg19Weights(rekeyed((k) => k.replace(/^features\./, ''))).keys()]).toEqual(expected);
    const twoNets = new Map([...rekeyed((k) => `netVGG.${k}`), ...rekeyed((k) => `other.${k}`)]);
    expect([...loadVgg19Weights(twoNets, { prefix: 'netVGG.' }).keys()]).toEqual(expected);
    expect(() => loadVgg19Weights(twoNets, { source: 'ckpt.pth' })).toThrow(
      'ckpt.pth: not a torchvision VGG-19 state dict: no features.0.weight (several candidates (netVGG.features.0.weight, other.features.0.weight); pass the prefix)',
    );
  });

  it('ignores features.28+ and classifier.* (the full vgg19-dcbb9e9d.pth) and converts float16 tensors', () => {
    const full = new Map<string, Float32TensorData | TensorData>(weights);
    full.set('features.34.weight', { shape: [512, 512, 3, 3], data: new Float32Array(512 * 512 * 9) });
    full.set('classifier.6.bias', { shape: [1000], data: new Float32Array(1000) });
    const half = new Uint8Array(2 * 64);
    for (let i = 1; i < half.length; i += 2) half[i] = 0x3c; // 1.0 in float16 is 0x3c00, stored little-endian
    full.set('features.0.bias', { dtype: 'F16', shape: [64], bytes: half });
    const loaded = loadVgg19Weights(full);
    expect(loaded.size).toBe(24);
    expect([...loaded.get('features.0.bias')!.data]).toEqual(new Array(64).fill(1));
  });

  it('names missing keys, foreign features.<i ≤ 25> keys, bad shapes and non-float tensors', () => {
    const without = new Map(weights);
    without.delete('features.16.weight');
    without.delete('features.16.bias');
    expect(() => loadVgg19Weights(without, { source: 'v.pth' })).toThrow(ModelFormatError);
    expect(() => loadVgg19Weights(without, { source: 'v.pth' })).toThrow(
      'v.pth: VGG-19 state dict: missing keys features.16.weight, features.16.bias',
    );

    const bn = new Map<string, Float32TensorData>(weights);
    bn.set('features.1.running_mean', { shape: [64], data: new Float32Array(64) });
    expect(() => loadVgg19Weights(bn)).toThrow(
      'VGG-19 state dict: keys torchvision vgg19 does not have features.1.running_mean (vgg19_bn or another VGG?)',
    );

    const wrong = new Map(weights);
    wrong.set('features.5.weight', { shape: [128, 32, 3, 3], data: new Float32Array(128 * 32 * 9) });
    expect(() => loadVgg19Weights(wrong)).toThrow('VGG-19 features.5.weight has shape [128,32,3,3], expected [128,64,3,3]');

    const ints = new Map<string, Float32TensorData | TensorData>(weights);
    ints.set('features.2.bias', { dtype: 'I32', shape: [64], bytes: new Uint8Array(256) });
    expect(() => loadVgg19Weights(ints)).toThrow('VGG-19 tensor features.2.bias has dtype I32, expected a float type');

    const generator = new Map([['model.0.weight', weights.get('features.0.weight')!]]);
    expect(() => loadVgg19Weights(generator, { source: 'g.pth' })).toThrow(
      'g.pth: not a torchvision VGG-19 state dict: no features.0.weight (keys: model.0.weight)',
    );
  });
});

describe('VGG-19 features (wasm backend)', () => {
  it('matches an independent float64 implementation: conv4_4 before its ReLU, at H/8', () => {
    const shape = [1, 3, 16, 16];
    const input = seededUniform(11, 3 * 16 * 16, 0, 1);
    const x = tf.tensor4d(input, shape as [number, number, number, number]);
    const y = vgg.forward(x);
    const expected = referenceFeatures(input, shape, weights);
    expect(y.shape).toEqual(expected.shape);
    expect(expected.shape).toEqual([1, 512, 2, 2]);
    const values = y.dataSync();
    // float32 sums of up to 4608 products of O(0.1) terms: 1e-5 relative is rounding, any layout slip is O(1).
    expect(values).toBeCloseToTensor(expected.data, { atol: 1e-5, rtol: 1e-4, shape: y.shape });
    expect(Math.min(...values)).toBeLessThan(0); // no ReLU after conv4_4
    tf.dispose([x, y]);
  });

  it('floors odd sides like MaxPool2d(2, 2), keeps the batch, and gives the same conv4_4 with its taps', () => {
    const x = tf.tensor4d(seededUniform(3, 2 * 3 * 12 * 21, 0, 1), [2, 3, 12, 21]);
    const before = tf.memory().numTensors;
    const taps = vgg.forwardWithTaps(x);
    expect(taps.pool1.shape).toEqual([2, 64, 6, 10]);
    expect(taps.pool2.shape).toEqual([2, 128, 3, 5]);
    expect(taps.pool3.shape).toEqual([2, 256, 1, 2]);
    expect(taps.conv4_4.shape).toEqual([2, 512, 1, 2]);
    const alone = vgg.forward(x);
    expect(alone.dataSync()).toEqual(taps.conv4_4.dataSync());
    tf.dispose([alone, ...Object.values(taps)]);
    expect(tf.memory().numTensors).toBe(before);
    x.dispose();
  });

  it('is differentiable w.r.t. the input while its weights stay out of tf.variableGrads', () => {
    const before = tf.memory().numTensors;
    const initial = tf.tensor4d(seededUniform(5, 3 * 8 * 8, 0, 1), [1, 3, 8, 8]);
    const x = tf.variable(initial, true, 'vgg_test_input');
    initial.dispose();
    const { value, grads } = tf.variableGrads(() => tf.tidy(() => tf.sum(tf.square(vgg.forward(x)))));
    expect(Object.keys(grads)).toEqual(['vgg_test_input']);
    expect(grads['vgg_test_input']!.shape).toEqual([1, 3, 8, 8]);
    expect(Math.max(...grads['vgg_test_input']!.dataSync().map(Math.abs))).toBeGreaterThan(0);
    for (const t of vgg.weights.values()) expect(t).not.toBeInstanceOf(tf.Variable);
    tf.dispose([value, grads['vgg_test_input']!, x]);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('refuses inputs it cannot take, and use after dispose', () => {
    const bad: Array<[Tensor4D, string]> = [
      [tf.zeros([1, 1, 16, 16]) as Tensor4D, 'VGG-19 input has 1 channels, expected 3 (NCHW)'],
      [tf.zeros([1, 3, 7, 16]) as Tensor4D, 'VGG-19 input is 7x16; three 2x2 pools need at least 8x8'],
      [tf.zeros([1, 3, 8, 8], 'int32') as Tensor4D, 'VGG-19 input must be float32, got int32'],
      [tf.zeros([3, 8, 8]) as unknown as Tensor4D, 'VGG-19 input must be NCHW rank 4, got shape [3,8,8]'],
    ];
    for (const [x, message] of bad) {
      expect(() => vgg.forward(x)).toThrow(InputError);
      expect(() => vgg.forward(x)).toThrow(message);
      x.dispose();
    }
    const before = tf.memory().numTensors;
    let built: Vgg19Features | undefined;
    tf.tidy(() => {
      built = createVgg19Features(tf, weights);
    });
    if (built === undefined) throw new Error('tidy did not run');
    expect(tf.memory().numTensors).toBe(before + 24); // building inside a tidy keeps the weights
    built.dispose();
    expect(tf.memory().numTensors).toBe(before);
    const x = tf.zeros([1, 3, 8, 8]) as Tensor4D;
    expect(() => built!.forward(x)).toThrow(UsageError);
    x.dispose();
  });
});
