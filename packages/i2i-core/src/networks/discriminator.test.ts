import { InputError, ModelFormatError, UsageError, availableBackends, float32Tensor, loadTf } from '@scenimefy/io';
import type { Tensor, Tensor4D, Variable } from '@tensorflow/tfjs-core';
import { seededUniform } from '@scenimefy/test-utils';
import type { Tf } from '../layers/tf';
import { DOWNSAMPLE_FILTER } from './blur';
import { createPatchDiscriminator, discriminatorOutputSize, discriminatorStateDictSpec, inferDiscriminatorConfig } from './discriminator';
import type { PatchDiscriminatorConfig } from './discriminator';
import type { Float32TensorData } from './generator';

let tf: Tf;
beforeAll(async () => {
  ({ tf } = await loadTf({ prefer: 'cpu' }));
});

const count = (shape: readonly number[]): number => shape.reduce((a, d) => a * d, 1);

/** A valid state dict with PyTorch-default-like magnitudes (xavier 0.02 would make every gradient tiny). */
function syntheticStateDict(config: PatchDiscriminatorConfig, seed = 1): Map<string, Float32TensorData> {
  const dict = new Map<string, Float32TensorData>();
  let s = seed;
  for (const [key, { shape, kind }] of discriminatorStateDictSpec(config)) {
    let data: Float32Array;
    if (kind === 'buffer') {
      data = new Float32Array(count(shape));
      for (let c = 0; c < shape[0]!; c++) data.set(DOWNSAMPLE_FILTER, c * 9);
    } else {
      const fanIn = shape.length === 4 ? shape[1]! * 16 : 16;
      data = seededUniform(s++, count(shape)).map((v) => v / Math.sqrt(fanIn));
    }
    dict.set(key, { shape, data });
  }
  return dict;
}

// ---- A float64 NCHW re-statement of SPEC §3 (batch 1), independent of TF.js, to check values and gradients.

interface Map3 {
  c: number;
  h: number;
  w: number;
  v: Float64Array;
}

function conv4(x: Map3, weight: Float32TensorData, bias: Float32TensorData): Map3 {
  const [o, i] = weight.shape as [number, number];
  const h = x.h - 1; // k4, zero pad 1
  const w = x.w - 1;
  const v = new Float64Array(o * h * w);
  for (let oo = 0; oo < o; oo++)
    for (let y = 0; y < h; y++)
      for (let xx = 0; xx < w; xx++) {
        let acc = bias.data[oo]!;
        for (let ii = 0; ii < i; ii++)
          for (let ky = 0; ky < 4; ky++) {
            const sy = y + ky - 1;
            if (sy < 0 || sy >= x.h) continue;
            for (let kx = 0; kx < 4; kx++) {
              const sx = xx + kx - 1;
              if (sx < 0 || sx >= x.w) continue;
              acc += weight.data[((oo * i + ii) * 4 + ky) * 4 + kx]! * x.v[(ii * x.h + sy) * x.w + sx]!;
            }
          }
        v[(oo * h + y) * w + xx] = acc;
      }
  return { c: o, h, w, v };
}

function leaky(x: Map3): Map3 {
  return { ...x, v: x.v.map((a) => (a > 0 ? a : 0.2 * a)) };
}

function instanceNorm(x: Map3): Map3 {
  const v = new Float64Array(x.v.length);
  const n = x.h * x.w;
  for (let c = 0; c < x.c; c++) {
    const plane = x.v.subarray(c * n, (c + 1) * n);
    const mean = plane.reduce((a, b) => a + b, 0) / n;
    const variance = plane.reduce((a, b) => a + (b - mean) ** 2, 0) / n;
    for (let k = 0; k < n; k++) v[c * n + k] = (plane[k]! - mean) / Math.sqrt(variance + 1e-5);
  }
  return { ...x, v };
}

function blurDown(x: Map3): Map3 {
  const taps = [0.25, 0.5, 0.25];
  const reflect = (i: number, n: number) => (i < 0 ? -i : i >= n ? 2 * n - 2 - i : i);
  const h = Math.ceil(x.h / 2);
  const w = Math.ceil(x.w / 2);
  const v = new Float64Array(x.c * h * w);
  for (let c = 0; c < x.c; c++)
    for (let y = 0; y < h; y++)
      for (let xx = 0; xx < w; xx++) {
        let acc = 0;
        for (let a = -1; a <= 1; a++)
          for (let b = -1; b <= 1; b++)
            acc += taps[a + 1]! * taps[b + 1]! * x.v[(c * x.h + reflect(2 * y + a, x.h)) * x.w + reflect(2 * xx + b, x.w)]!;
        v[(c * h + y) * w + xx] = acc;
      }
  return { c: x.c, h, w, v };
}

/** netD for nLayers = 3 exactly as SPEC §3 lists its modules. */
function referenceD(dict: Map<string, Float32TensorData>, x: Map3): Map3 {
  const conv = (i: number, m: Map3) => conv4(m, dict.get(`model.${i}.weight`)!, dict.get(`model.${i}.bias`)!);
  let h = blurDown(leaky(conv(0, x)));
  h = blurDown(leaky(instanceNorm(conv(3, h))));
  h = blurDown(leaky(instanceNorm(conv(7, h))));
  h = leaky(instanceNorm(conv(11, h)));
  return conv(14, h);
}

const maxAbs = (a: ArrayLike<number>): number => Array.from(a).reduce((m, v) => Math.max(m, Math.abs(v)), 0);

describe('discriminatorStateDictSpec and sizes', () => {
  it('lists the SPEC §3 keys, shapes and parameter counts for netD and netD_p (ndf 64)', () => {
    for (const [inputNc, params] of [
      [3, 2_764_737],
      [6, 2_767_809],
    ] as const) {
      const spec = discriminatorStateDictSpec({ inputNc });
      expect([...spec.keys()]).toEqual([
        'model.0.weight',
        'model.0.bias',
        'model.2.filt',
        'model.3.weight',
        'model.3.bias',
        'model.6.filt',
        'model.7.weight',
        'model.7.bias',
        'model.10.filt',
        'model.11.weight',
        'model.11.bias',
        'model.14.weight',
        'model.14.bias',
      ]);
      expect(spec.get('model.0.weight')!.shape).toEqual([64, inputNc, 4, 4]);
      expect(spec.get('model.11.weight')!.shape).toEqual([512, 256, 4, 4]);
      expect(spec.get('model.14.weight')!.shape).toEqual([1, 512, 4, 4]);
      expect(spec.get('model.10.filt')).toEqual({ shape: [256, 1, 3, 3], kind: 'buffer' });
      const total = [...spec.values()].filter((e) => e.kind === 'parameter').reduce((n, e) => n + count(e.shape), 0);
      expect(total).toBe(params);
    }
  });

  it('numbers the modules like the reference for other depths', () => {
    // n_layers = 2: conv0, lrelu, down2, conv3, IN, lrelu, down6, conv7, IN, lrelu, conv10.
    expect([...discriminatorStateDictSpec({ inputNc: 3, ndf: 8, nLayers: 2 }).keys()].filter((k) => !k.endsWith('bias'))).toEqual([
      'model.0.weight',
      'model.2.filt',
      'model.3.weight',
      'model.6.filt',
      'model.7.weight',
      'model.10.weight',
    ]);
    // Widths are capped at 8·ndf (nf_mult = min(2^n, 8)).
    expect(discriminatorStateDictSpec({ inputNc: 3, ndf: 2, nLayers: 5 }).get('model.19.weight')!.shape).toEqual([16, 16, 4, 4]);
  });

  it('gives the score-map side of SPEC §3 and refuses inputs that are too small', () => {
    expect(discriminatorOutputSize(256)).toBe(30);
    expect(discriminatorOutputSize(64)).toBe(6);
    expect(discriminatorOutputSize(24)).toBe(1);
    expect(discriminatorOutputSize(23)).toBeUndefined();
    expect(discriminatorOutputSize(4, 1)).toBe(undefined);
    expect(discriminatorOutputSize(6, 1)).toBe(1);
  });

  it('rejects bad configurations', () => {
    expect(() => discriminatorStateDictSpec({ inputNc: 3, ndf: 0 })).toThrow(UsageError);
    expect(() => discriminatorStateDictSpec({ inputNc: 3, nLayers: 1.5 })).toThrow('nLayers must be a positive integer');
  });
});

describe('createPatchDiscriminator', () => {
  const config = { inputNc: 3, ndf: 2, nLayers: 3 };

  it('holds HWIO conv weights and starts from xavier-normal(0.02), reproducibly per seed', async () => {
    const netD = createPatchDiscriminator(tf, { inputNc: 6, ndf: 16 }, { init: { seed: 5 } });
    expect([...netD.variables.keys()]).toEqual(
      [...discriminatorStateDictSpec({ inputNc: 6, ndf: 16 }).keys()].filter((k) => !k.endsWith('filt')),
    );
    expect(netD.variables.get('model.11.weight')!.shape).toEqual([4, 4, 64, 128]);
    expect(netD.numParameters()).toBe(175_857); // netDp-ndf16.json's num_parameters
    const w = (await netD.variables.get('model.7.weight')!.data()) as Float32Array; // fan_in 512, fan_out 1024
    const std = Math.sqrt(w.reduce((a, v) => a + v * v, 0) / w.length);
    expect(Math.abs(std / (0.02 * Math.sqrt(2 / (512 + 1024))) - 1)).toBeLessThan(0.05);
    expect(maxAbs((await netD.variables.get('model.7.bias')!.data()) as Float32Array)).toBe(0);
    const same = createPatchDiscriminator(tf, { inputNc: 6, ndf: 16 }, { init: { seed: 5 } });
    expect(await same.variables.get('model.7.weight')!.data()).toEqual(w);
    same.dispose();
    netD.dispose();
  });

  it('matches a float64 re-statement of SPEC §3 (atol 1e-5)', () => {
    const dict = syntheticStateDict(config);
    const netD = createPatchDiscriminator(tf, config, { weights: dict });
    const [h, w] = [28, 33];
    const xs = seededUniform(11, 3 * h * w);
    const x = tf.tensor4d(xs, [1, 3, h, w]);
    const y = netD.forward(x);
    const expected = referenceD(dict, { c: 3, h, w, v: Float64Array.from(xs) });
    expect(y.shape).toEqual([1, 1, expected.h, expected.w]);
    expect([expected.h, expected.w]).toEqual([discriminatorOutputSize(h), discriminatorOutputSize(w)]);
    expect(y.dataSync()).toBeCloseToTensor(expected.v, { atol: 1e-5, rtol: 0, shape: y.shape });
    tf.dispose([x, y]);
    netD.dispose();
  });

  it('scores each sample of a batch on its own', () => {
    const netD = createPatchDiscriminator(tf, config, { weights: syntheticStateDict(config, 3) });
    const a = tf.tensor4d(seededUniform(1, 3 * 24 * 24), [1, 3, 24, 24]);
    const b = tf.tensor4d(seededUniform(2, 3 * 24 * 24), [1, 3, 24, 24]);
    const ab = tf.concat([a, b], 0);
    const [ya, yb, yab] = [netD.forward(a), netD.forward(b), netD.forward(ab)];
    expect(yab.dataSync()).toBeCloseToTensor(new Float32Array([...ya.dataSync(), ...yb.dataSync()]), { atol: 1e-6, rtol: 0 });
    tf.dispose([a, b, ab, ya, yb, yab]);
    netD.dispose();
  });

  it('round-trips its state dict in PyTorch layout and reference order', async () => {
    const dict = syntheticStateDict({ inputNc: 6, ndf: 3, nLayers: 3 }, 7);
    const netD = createPatchDiscriminator(tf, { inputNc: 6, ndf: 3 }, { weights: dict });
    const out = await netD.stateDict();
    expect([...out.keys()]).toEqual([...dict.keys()]);
    for (const [key, value] of dict) expect({ key, shape: out.get(key)!.shape, data: out.get(key)!.data }).toEqual({ key, ...value });
    // OIHW → HWIO: weight[o=1, i=4, kh=2, kw=3] lands at [2, 3, 4, 1].
    const hwio = netD.variables.get('model.0.weight')!.bufferSync();
    expect(hwio.get(2, 3, 4, 1)).toBe(dict.get('model.0.weight')!.data[((1 * 6 + 4) * 4 + 2) * 4 + 3]);
    netD.dispose();
  });

  it('reads a prefixed, file-typed state dict and infers its architecture', () => {
    const dict = syntheticStateDict({ inputNc: 6, ndf: 2, nLayers: 2 });
    const file = new Map([...dict].map(([k, v]) => [`netD_p.${k}`, float32Tensor(v.shape, v.data)]));
    file.set('netG.model.1.weight', float32Tensor([1], new Float32Array(1)));
    expect(inferDiscriminatorConfig(file, { prefix: 'netD_p.' })).toEqual({ inputNc: 6, ndf: 2, nLayers: 2 });
    const netD = createPatchDiscriminator(tf, { inputNc: 6, ndf: 2, nLayers: 2 }, { weights: file, prefix: 'netD_p.' });
    expect(netD.variables.get('model.10.bias')!.dataSync()[0]).toBe(dict.get('model.10.bias')!.data[0]);
    netD.dispose();
    expect(() => inferDiscriminatorConfig(file)).toThrow(ModelFormatError);
  });

  it('names missing and unexpected keys, the first bad shape, a bad dtype and a wrong blur filter', () => {
    const good = syntheticStateDict(config);
    const load = (dict: Map<string, unknown>, source?: string) => () =>
      createPatchDiscriminator(tf, config, { weights: dict as Map<string, Float32TensorData>, ...(source ? { source } : {}) });

    const missing = new Map(good);
    missing.delete('model.7.bias');
    missing.set('model.15.weight', good.get('model.14.weight')!);
    expect(load(missing, 'D.pth')).toThrow(
      new ModelFormatError(
        'D.pth: discriminator state dict (inputNc=3, ndf=2, nLayers=3): missing keys model.7.bias; unexpected keys model.15.weight',
      ),
    );
    const shape = new Map(good);
    shape.set('model.3.weight', { shape: [4, 3, 4, 4], data: new Float32Array(192) });
    expect(load(shape)).toThrow('model.3.weight has shape [4,3,4,4], expected [4,2,4,4]');
    const dtype = new Map<string, unknown>(good);
    dtype.set('model.0.bias', { dtype: 'I64', shape: [2], bytes: new Uint8Array(16) });
    expect(load(dtype)).toThrow('model.0.bias has dtype I64, expected a float type');
    const filt = new Map(good);
    const data = filt.get('model.6.filt')!.data.slice();
    data[13] = 0.5;
    filt.set('model.6.filt', { shape: [4, 1, 3, 3], data });
    expect(load(filt)).toThrow('model.6.filt[13] is 0.5, expected the fixed blur filter value 0.25');
    expect(load(filt)).toThrow(ModelFormatError);
  });

  it('rejects inputs it cannot take, and use after dispose', () => {
    const netD = createPatchDiscriminator(tf, config);
    const wrongC = tf.zeros([1, 6, 32, 32]) as Tensor4D;
    const small = tf.zeros([1, 3, 23, 40]) as Tensor4D;
    expect(() => netD.forward(wrongC)).toThrow(new InputError('discriminator input has 6 channels, expected 3 (NCHW)'));
    expect(() => netD.forward(small)).toThrow('discriminator input is 23x40, too small for 3 downsampling stages');
    netD.dispose();
    const ok = tf.zeros([1, 3, 32, 32]) as Tensor4D;
    expect(() => netD.forward(ok)).toThrow(UsageError);
    tf.dispose([wrongC, small, ok]);
  });

  it('leaves no tensors behind in forward and in a gradient step', () => {
    const netD = createPatchDiscriminator(tf, config, { weights: syntheticStateDict(config) });
    const x = tf.tensor4d(seededUniform(4, 2 * 3 * 32 * 32), [2, 3, 32, 32]);
    const before = tf.memory().numTensors;
    const y = netD.forward(x);
    y.dispose();
    const { value, grads } = tf.variableGrads(() => tf.mean(tf.square(netD.forward(x))) as never, [...netD.variables.values()]);
    const dx = tf.grad((input: Tensor) => tf.sum(netD.forward(input as Tensor4D)))(x);
    tf.dispose([value, dx, ...Object.values(grads)]);
    expect(tf.memory().numTensors).toBe(before);
    x.dispose();
    netD.dispose();
  });
});

describe('PatchDiscriminator gradients', () => {
  // Central differences of the float64 re-statement (step 1e-4, truncation error ~1e-9) against TF.js's float32
  // backward. Float32 rounding of the backward pass stays below 1e-6 here; 1e-4·max|grad| + 1e-6 leaves room
  // for it and still catches a wrong border term (reflect/zero padding) or a dropped path, which are O(max|grad|).
  const config = { inputNc: 3, ndf: 2, nLayers: 3 };
  const [h, w] = [24, 25];

  function fdCheck(): void {
    const dict = syntheticStateDict(config, 21);
    const xs = seededUniform(31, 3 * h * w);
    const f = (v: Float64Array, d: Map<string, Float32TensorData> = dict) => referenceD(d, { c: 3, h, w, v }).v.reduce((a, b) => a + b, 0);

    const netD = createPatchDiscriminator(tf, config, { weights: dict });
    const x = tf.tensor4d(xs, [1, 3, h, w]);
    const dx = tf.grad((input: Tensor) => tf.sum(netD.forward(input as Tensor4D)))(x);
    const analytic = dx.dataSync();
    const { grads, value } = tf.variableGrads(() => tf.sum(netD.forward(x)) as never, [...netD.variables.values()]);

    // Every border position of channel 0 (reflect and zero padding both act there) and a spread of the rest.
    const positions: number[] = [];
    for (let y = 0; y < h; y++) for (let xx = 0; xx < w; xx++) if (y < 2 || y >= h - 2 || xx < 2 || xx >= w - 2) positions.push(y * w + xx);
    for (let k = 0; k < 3 * h * w; k += 37) positions.push(k);
    const eps = 1e-4;
    const numeric = positions.map((p) => {
      const plus = Float64Array.from(xs);
      const minus = Float64Array.from(xs);
      plus[p]! += eps;
      minus[p]! -= eps;
      return (f(plus) - f(minus)) / (2 * eps);
    });
    const picked = positions.map((p) => analytic[p]!);
    const scale = maxAbs(numeric);
    expect(scale).toBeGreaterThan(1e-2);
    expect(picked).toBeCloseToTensor(numeric, { atol: 1e-4 * scale + 1e-6, rtol: 0 });

    // A few weight entries (flat OIHW index into the PyTorch tensor) against the same finite differences.
    const variableGrad = (key: string) =>
      (grads as Record<string, { dataSync(): Float32Array }>)[(netD.variables.get(key) as Variable).name]!;
    const entries = [
      ['model.0.weight', 5],
      ['model.3.weight', 100],
      ['model.11.weight', 1000],
      ['model.14.weight', 70], // [0, 4, 1, 2]: inside the 2×2 input, not on its zero padding
      ['model.14.bias', 0],
      ['model.0.bias', 1],
    ] as const;
    const numericW: number[] = [];
    const analyticW: number[] = [];
    for (const [key, index] of entries) {
      const entry = dict.get(key)!;
      const shifted = (delta: number) => {
        const data = entry.data.slice();
        data[index] = data[index]! + delta;
        return new Map(dict).set(key, { shape: entry.shape, data });
      };
      // The weights are float32: step by an amount they hold exactly, so the quotient divides by the true step;
      // 1e-5 keeps the truncation error of the float64 quotient near 1e-9.
      const step = Math.fround(entry.data[index]! + 1e-5) - entry.data[index]!;
      numericW.push((f(Float64Array.from(xs), shifted(step)) - f(Float64Array.from(xs), shifted(-step))) / (2 * step));
      let tfIndex = index;
      if (entry.shape.length === 4) {
        const [o, i, kh, kw] = entry.shape as [number, number, number, number];
        const [oo, ii, hh, ww] = [
          Math.floor(index / (i * kh * kw)),
          Math.floor(index / (kh * kw)) % i,
          Math.floor(index / kw) % kh,
          index % kw,
        ];
        tfIndex = ((hh * kw + ww) * i + ii) * o + oo;
      }
      analyticW.push(variableGrad(key).dataSync()[tfIndex]!);
    }
    expect(numericW.every((g) => Math.abs(g) > 1e-4)).toBe(true);
    expect(analyticW).toBeCloseToTensor(numericW, { atol: 1e-6, rtol: 1e-4 });
    tf.dispose([x, dx, value, ...Object.values(grads)]);
    netD.dispose();
  }

  it('d(sum D(x))/dx and d/dW match finite differences on the cpu backend', () => {
    fdCheck();
  });

  const hasTfjsNode = availableBackends().some((b) => b.candidate === 'tfjs-node');
  (hasTfjsNode ? it : it.skip)('and on tfjs-node, where training runs natively', async () => {
    await loadTf({ prefer: 'tfjs-node', require: true });
    try {
      expect(tf.getBackend()).toBe('tensorflow');
      fdCheck();
    } finally {
      await loadTf({ prefer: 'cpu' });
    }
  });
});
