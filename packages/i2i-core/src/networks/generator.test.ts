import { InputError, ModelFormatError, UsageError, float32Tensor, loadTf } from '@scenimefy/io';
import type { TensorData } from '@scenimefy/io';
import type { Tensor, Tensor4D } from '@tensorflow/tfjs-core';
import { seededUniform } from '@scenimefy/test-utils';
import type { Tf } from '../layers/tf';
import { DOWNSAMPLE_FILTER, UPSAMPLE_FILTER } from './blur';
import { createResnetGenerator, generatorStateDictSpec, inferGeneratorConfig, loadGeneratorWeights } from './generator';
import type { Float32TensorData, ResnetGenerator } from './generator';

let tf: Tf;
beforeAll(async () => {
  ({ tf } = await loadTf({ prefer: 'cpu' }));
});

function count(shape: readonly number[]): number {
  return shape.reduce((a, d) => a * d, 1);
}

/** A complete, valid state dict for the config, with deterministic values and the fixed filt buffers. */
function syntheticStateDict(ngf: number, nBlocks = 9): Map<string, Float32TensorData> {
  const dict = new Map<string, Float32TensorData>();
  let seed = 1;
  for (const [key, { shape, kind }] of generatorStateDictSpec({ ngf, nBlocks })) {
    const n = count(shape);
    let data: Float32Array;
    if (kind === 'buffer') {
      const filter = shape[2] === 3 ? DOWNSAMPLE_FILTER : UPSAMPLE_FILTER;
      data = new Float32Array(n);
      for (let c = 0; c < shape[0]!; c++) data.set(filter, c * filter.length);
    } else {
      data = seededUniform(seed++, n).map((v) => v * 0.3);
    }
    dict.set(key, { shape, data });
  }
  return dict;
}

function input(shape: [number, number, number, number], seed: number): Tensor4D {
  return tf.tensor4d(seededUniform(seed, count(shape)), shape);
}

describe('generatorStateDictSpec', () => {
  it('lists the 52 reference keys with the SPEC §1 counts for ngf 64', () => {
    const spec = generatorStateDictSpec({ ngf: 64 });
    const keys = [...spec.keys()];
    expect(keys).toHaveLength(52);
    expect(keys.slice(0, 5)).toEqual(['model.1.weight', 'model.1.bias', 'model.4.weight', 'model.4.bias', 'model.7.filt']);
    expect(keys.slice(-4)).toEqual(['model.26.weight', 'model.26.bias', 'model.30.weight', 'model.30.bias']);
    expect(keys.filter((k) => k.endsWith('.filt'))).toEqual(['model.7.filt', 'model.11.filt', 'model.21.filt', 'model.25.filt']);
    const params = [...spec.values()].filter((e) => e.kind === 'parameter');
    expect(params).toHaveLength(48);
    expect(params.reduce((n, e) => n + count(e.shape), 0)).toBe(11_378_179);
    expect([...spec.values()].reduce((n, e) => n + count(e.shape), 0)).toBe(11_387_779);
    expect(spec.get('model.21.filt')?.shape).toEqual([256, 1, 4, 4]);
    expect(spec.get('model.20.conv_block.5.weight')?.shape).toEqual([256, 256, 3, 3]);
  });
});

describe('createResnetGenerator', () => {
  let netG: ResnetGenerator;
  beforeAll(() => {
    netG = createResnetGenerator(tf, { ngf: 4 }, { init: { seed: 3 } });
  });
  afterAll(() => netG.dispose());

  it('holds the 48 parameters of the spec, conv weights as HWIO', () => {
    const spec = generatorStateDictSpec({ ngf: 4 });
    expect(netG.variables.size).toBe(48);
    let expected = 0;
    for (const [key, entry] of spec) {
      if (entry.kind !== 'parameter') continue;
      expected += count(entry.shape);
      const s = entry.shape;
      expect(netG.variables.get(key)?.shape).toEqual(s.length === 4 ? [s[2], s[3], s[1], s[0]] : s);
    }
    expect(netG.numParameters()).toBe(expected);
  });

  it('starts from xavier-normal(0.02) weights and zero biases, reproducibly per seed', async () => {
    const w = netG.variables.get('model.12.conv_block.1.weight')!; // [3,3,16,16]: fan_in = fan_out = 144
    const values = (await w.data()) as Float32Array;
    const std = Math.sqrt(values.reduce((a, v) => a + v * v, 0) / values.length);
    const expected = 0.02 * Math.sqrt(2 / (144 + 144));
    expect(Math.abs(std / expected - 1)).toBeLessThan(0.1);
    expect(Array.from((await netG.variables.get('model.12.conv_block.1.bias')!.data()) as Float32Array)).toEqual(new Array(16).fill(0));
    const same = createResnetGenerator(tf, { ngf: 4 }, { init: { seed: 3 } });
    const other = createResnetGenerator(tf, { ngf: 4 }, { init: { seed: 4 } });
    expect(await same.variables.get('model.12.conv_block.1.weight')!.data()).toEqual(values);
    expect(await other.variables.get('model.12.conv_block.1.weight')!.data()).not.toEqual(values);
    same.dispose();
    other.dispose();
  });

  it('maps NCHW [B,3,H,W] to [B,3,H,W] in (-1,1) and encodes the SPEC §1 taps', () => {
    const x = input([1, 3, 16, 24], 5);
    const y = netG.forward(x);
    expect(y.shape).toEqual([1, 3, 16, 24]);
    const taps = netG.encode(x);
    expect(taps.map((t) => t.shape)).toEqual([
      [1, 3, 22, 30],
      [1, 8, 16, 24],
      [1, 16, 8, 12],
      [1, 16, 4, 6],
      [1, 16, 4, 6],
    ]);
    // Layer 0 is the reflect-padded input itself.
    const padded = tf.tidy(() =>
      tf.mirrorPad(
        x,
        [
          [0, 0],
          [0, 0],
          [3, 3],
          [3, 3],
        ],
        'reflect',
      ),
    );
    expect(taps[0]!.dataSync()).toEqual(padded.dataSync());
    // Any increasing list of module indices works; the last module is the tanh output.
    const [last] = netG.encode(x, [31]);
    expect(last!.dataSync()).toEqual(y.dataSync());
    tf.dispose([x, y, padded, last!, ...taps]);
  });

  it('treats each sample of a batch on its own (instance norm statistics per sample)', () => {
    const a = input([1, 3, 16, 16], 7);
    const b = input([1, 3, 16, 16], 8);
    const ab = tf.concat([a, b], 0);
    const [ya, yb, yab] = [netG.forward(a), netG.forward(b), netG.forward(ab)];
    const both = tf.concat([ya, yb], 0);
    expect(yab.dataSync()).toBeCloseToTensor(both.dataSync(), { atol: 1e-6, rtol: 0 });
    tf.dispose([a, b, ab, ya, yb, yab, both]);
  });

  it('leaves no tensors behind in forward and encode', () => {
    const x = input([2, 3, 16, 16], 9);
    const before = tf.memory().numTensors;
    const y = netG.forward(x);
    const taps = netG.encode(x, [4, 12]);
    expect(tf.memory().numTensors).toBe(before + 1 + taps.length);
    tf.dispose([x, y, ...taps]);
  });

  it('rejects inputs it cannot take', () => {
    const odd = input([1, 3, 18, 16], 1);
    const gray = input([1, 1, 16, 16], 1);
    const tiny = input([1, 3, 4, 16], 1);
    expect(() => netG.forward(odd)).toThrow(InputError);
    expect(() => netG.forward(odd)).toThrow(/18x16.*multiples of 4/);
    expect(() => netG.forward(gray)).toThrow(/1 channels, expected 3/);
    expect(() => netG.forward(tiny)).toThrow(InputError);
    const x = input([1, 3, 16, 16], 1);
    expect(() => netG.encode(x, [8, 4])).toThrow(UsageError);
    expect(() => netG.encode(x, [32])).toThrow(UsageError);
    expect(() => netG.encode(x, [])).toThrow(UsageError);
    tf.dispose([odd, gray, tiny, x]);
  });

  it('propagates input gradients that agree with finite differences (through pads, norms and blurs)', () => {
    // gain 1 so the output is not near-constant; a border pixel exercises the reflect/replicate edges.
    const g1 = createResnetGenerator(tf, { ngf: 4, nBlocks: 2 }, { init: { seed: 11, gain: 1 } });
    const shape: [number, number, number, number] = [1, 3, 16, 16];
    const xData = seededUniform(21, count(shape));
    const r = input(shape, 22);
    const loss = (t: Tensor): Tensor => tf.sum(tf.mul(g1.forward(t as Tensor4D), r));
    const x = tf.tensor4d(xData, shape);
    const before = tf.memory().numTensors;
    const g = tf.grad(loss)(x);
    expect(tf.memory().numTensors).toBe(before + 1);
    const grad = g.dataSync();
    const eps = 1e-2;
    for (const index of [0, 15, 16 * 8 + 3, count(shape) - 1]) {
      const lossAt = (delta: number) => {
        const d = Float32Array.from(xData);
        d[index] = d[index]! + delta;
        return tf.tidy(() => loss(tf.tensor4d(d, shape)).dataSync()[0]!);
      };
      const fd = (lossAt(eps) - lossAt(-eps)) / (2 * eps);
      expect(Math.abs(fd - grad[index]!)).toBeLessThan(0.02 * Math.max(1, Math.abs(grad[index]!)));
    }
    tf.dispose([r, x, g]);
    g1.dispose();
  });

  it('gives every parameter a finite gradient under tf.variableGrads without leaking', () => {
    const x = input([1, 3, 16, 16], 31);
    const before = tf.memory().numTensors;
    const { value, grads } = tf.variableGrads(() => tf.mean(tf.square(netG.forward(x))) as never, [...netG.variables.values()]);
    expect(Object.keys(grads)).toHaveLength(48);
    for (const grad of Object.values(grads)) expect(Array.from(grad.dataSync()).every(Number.isFinite)).toBe(true);
    tf.dispose([value, ...Object.values(grads)]);
    expect(tf.memory().numTensors).toBe(before);
    x.dispose();
  });

  it('gives the same values and gradients with gradient checkpointing of the blocks, without leaking', () => {
    const x = input([2, 3, 16, 20], 37);
    const target = input([2, 3, 16, 20], 41);
    // A loss through the output and through the block taps (12, 16), as training's contrastive terms use them.
    const loss = () => {
      const y = netG.forward(x);
      const taps = netG.encode(x, [4, 12, 16]);
      return tf.addN([tf.mean(tf.square(tf.sub(y, target))), ...taps.map((t) => tf.mean(tf.mul(t, t)))]) as never;
    };
    const vars = [...netG.variables.values()];
    const plain = tf.variableGrads(loss, vars);
    netG.gradientCheckpointing = true;
    try {
      const before = tf.memory().numTensors;
      const ckpt = tf.variableGrads(loss, vars);
      expect(ckpt.value.dataSync()[0]).toBeCloseTo(plain.value.dataSync()[0] as number, 6);
      for (const [name, g] of Object.entries(plain.grads)) {
        expect(ckpt.grads[name]?.dataSync()).toBeCloseToTensor(g.dataSync(), { atol: 1e-6, rtol: 1e-5 });
      }
      tf.dispose([ckpt.value, ...Object.values(ckpt.grads)]);
      expect(tf.memory().numTensors).toBe(before);
    } finally {
      netG.gradientCheckpointing = false;
      tf.dispose([plain.value, ...Object.values(plain.grads), x, target]);
    }
  });

  it('refuses use after dispose', () => {
    const g = createResnetGenerator(tf, { ngf: 2, nBlocks: 1 });
    g.dispose();
    const x = input([1, 3, 8, 8], 1);
    expect(() => g.forward(x)).toThrow(UsageError);
    x.dispose();
  });
});

describe('loadGeneratorWeights', () => {
  it('round-trips: stateDict() → loadGeneratorWeights → an identical network', async () => {
    const a = createResnetGenerator(tf, { ngf: 4, nBlocks: 3 }, { init: { seed: 5, gain: 1 } });
    const dict = await a.stateDict();
    expect([...dict.keys()]).toEqual([...generatorStateDictSpec({ ngf: 4, nBlocks: 3 }).keys()]);
    expect(Array.from(dict.get('model.7.filt')!.data.subarray(0, 9))).toEqual(Array.from(DOWNSAMPLE_FILTER));
    const weights = loadGeneratorWeights(dict);
    expect(weights.config).toEqual({ ngf: 4, inputNc: 3, outputNc: 3, nBlocks: 3 });
    const b = createResnetGenerator(tf, weights.config, { weights });
    const x = input([1, 3, 16, 20], 3);
    const [ya, yb] = [a.forward(x), b.forward(x)];
    expect(yb.dataSync()).toEqual(ya.dataSync());
    tf.dispose([x, ya, yb]);
    a.dispose();
    b.dispose();
  });

  it('reads OIHW weights: a 1×1-in, single-tap kernel lands where PyTorch would put it', async () => {
    const dict = syntheticStateDict(2, 1);
    const w = new Float32Array(2 * 3 * 7 * 7);
    // Output channel 1, input channel 2, row 0, column 6 — an asymmetric spot a transposition slip would move.
    w[((1 * 3 + 2) * 7 + 0) * 7 + 6] = 1;
    dict.set('model.1.weight', { shape: [2, 3, 7, 7], data: w });
    const g = createResnetGenerator(tf, { ngf: 2, nBlocks: 1 }, { weights: loadGeneratorWeights(dict) });
    const hwio = g.variables.get('model.1.weight')!.dataSync();
    expect(hwio[((0 * 7 + 6) * 3 + 2) * 2 + 1]).toBe(1);
    expect(Array.from(hwio).reduce((a, v) => a + v, 0)).toBe(1);
    const back = await g.stateDict();
    expect(back.get('model.1.weight')!.data).toEqual(w);
    g.dispose();
  });

  it('accepts file tensors (TensorMap) and a prefix, ignoring other networks', () => {
    const file = new Map<string, TensorData>();
    for (const [key, t] of syntheticStateDict(2, 2)) file.set(`netG.${key}`, float32Tensor(t.shape, t.data));
    file.set('netD.model.0.weight', float32Tensor([1], new Float32Array(1)));
    const weights = loadGeneratorWeights(file, { prefix: 'netG.' });
    expect(weights.config).toEqual({ ngf: 2, inputNc: 3, outputNc: 3, nBlocks: 2 });
    expect(weights.tensors.size).toBe(6 * 2 + 2 * 2 * 2); // weight + bias of 6 convs outside the blocks, 2 per block
    expect(() => loadGeneratorWeights(file)).toThrow(
      /no 4-D model\.1\.weight \(found netG\.model\.1\.weight: read it with prefix 'netG\.'\)/,
    );
    expect(() => loadGeneratorWeights(file, { config: { ngf: 2, nBlocks: 2 } })).toThrow(
      /missing keys model\.1\.weight, .*unexpected keys netG\.model\.1\.weight, /,
    );
  });

  it('names missing and unexpected keys', () => {
    const dict = syntheticStateDict(2, 2);
    dict.delete('model.13.conv_block.5.bias');
    dict.set('model.13.conv_block.6.bias', { shape: [8], data: new Float32Array(8) });
    expect(() => loadGeneratorWeights(dict, { source: 'g.pth' })).toThrow(ModelFormatError);
    expect(() => loadGeneratorWeights(dict, { source: 'g.pth' })).toThrow(
      /^g\.pth: .*missing keys model\.13\.conv_block\.5\.bias; unexpected keys model\.13\.conv_block\.6\.bias$/,
    );
  });

  it('names the first shape mismatch', () => {
    const dict = syntheticStateDict(2, 2);
    dict.set('model.8.weight', { shape: [8, 4, 1, 1], data: new Float32Array(32) });
    expect(() => loadGeneratorWeights(dict)).toThrow(/model\.8\.weight has shape \[8,4,1,1\], expected \[8,4,3,3\] for ngf=2/);
    expect(() => loadGeneratorWeights(syntheticStateDict(2, 2), { config: { ngf: 4, nBlocks: 2 } })).toThrow(
      /model\.1\.weight has shape \[2,3,7,7\], expected \[4,3,7,7\]/,
    );
  });

  it('refuses filt buffers that are not the fixed blur filters, and integer tensors', () => {
    const dict = syntheticStateDict(2, 1);
    const filt = Float32Array.from(dict.get('model.13.filt')!.data); // the first Upsample when there is 1 block
    filt[5] = 0.5;
    dict.set('model.13.filt', { shape: [8, 1, 4, 4], data: filt });
    expect(() => loadGeneratorWeights(dict)).toThrow(/model\.13\.filt\[5\] is 0\.5, expected the fixed blur filter value 0\.5625/);

    const ints = new Map<string, TensorData>();
    for (const [key, t] of syntheticStateDict(2, 1)) ints.set(key, float32Tensor(t.shape, t.data));
    const bias = ints.get('model.4.bias')!;
    ints.set('model.4.bias', { dtype: 'I32', shape: bias.shape, bytes: new Uint8Array(4 * 4) });
    expect(() => loadGeneratorWeights(ints)).toThrow(/model\.4\.bias has dtype I32/);
  });

  it('infers the architecture, and says when a dict is not a generator', () => {
    expect(inferGeneratorConfig(syntheticStateDict(8, 6))).toEqual({ ngf: 8, inputNc: 3, outputNc: 3, nBlocks: 6 });
    expect(() => inferGeneratorConfig(new Map([['fc.weight', { shape: [2, 2], data: new Float32Array(4) }]]))).toThrow(
      /not a ResnetGenerator state dict/,
    );
  });

  it('refuses weights of another architecture in setWeights', () => {
    const g = createResnetGenerator(tf, { ngf: 2, nBlocks: 1 });
    expect(() => g.setWeights(loadGeneratorWeights(syntheticStateDict(2, 2)))).toThrow(UsageError);
    g.dispose();
  });
});
