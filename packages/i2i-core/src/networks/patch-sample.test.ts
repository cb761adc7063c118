import { InputError, ModelFormatError, UsageError, availableBackends, float32Tensor, loadTf } from '@scenimefy/io';
import type { Tensor, Tensor4D, Variable } from '@tensorflow/tfjs-core';
import { seededUniform } from '@scenimefy/test-utils';
import type { Tf } from '../layers/tf';
import type { Float32TensorData } from './generator';
import { PATCH_NORM_EPS, createPatchSampleF, gatherPatchRows } from './patch-sample';
import type { PatchSampleF } from './patch-sample';

let tf: Tf;
beforeAll(async () => {
  ({ tf } = await loadTf({ prefer: 'cpu' }));
});

const count = (shape: readonly number[]): number => shape.reduce((a, d) => a * d, 1);

function feature(shape: [number, number, number, number], seed: number): Tensor4D {
  return tf.tensor4d(seededUniform(seed, count(shape)), shape);
}

/** A PatchSampleF state dict whose weights are large enough for visible gradients (xavier 0.02 is tiny). */
function syntheticState(channels: readonly number[], nc: number, seed = 1): Map<string, Float32TensorData> {
  const dict = new Map<string, Float32TensorData>();
  let s = seed;
  channels.forEach((c, l) => {
    dict.set(`mlp_${l}.0.weight`, { shape: [nc, c], data: seededUniform(s++, nc * c).map((v) => v / Math.sqrt(c)) });
    dict.set(`mlp_${l}.0.bias`, { shape: [nc], data: seededUniform(s++, nc).map((v) => v * 0.1) });
    dict.set(`mlp_${l}.2.weight`, { shape: [nc, nc], data: seededUniform(s++, nc * nc).map((v) => v / Math.sqrt(nc)) });
    dict.set(`mlp_${l}.2.bias`, { shape: [nc], data: seededUniform(s++, nc).map((v) => v * 0.1) });
  });
  return dict;
}

// ---- SPEC §4 restated in float64 on plain arrays (NCHW feature data), independent of TF.js.

/** The [B·N, C] rows at `ids` (shared, or B·N per-sample ids). */
function referenceRows(data: ArrayLike<number>, shape: readonly number[], ids: ArrayLike<number>, perSample: boolean): number[][] {
  const [b, c, h, w] = shape as [number, number, number, number];
  const n = perSample ? ids.length / b : ids.length;
  const rows: number[][] = [];
  for (let s = 0; s < b; s++)
    for (let k = 0; k < n; k++) {
      const id = ids[perSample ? s * n + k : k]!;
      rows.push(Array.from({ length: c }, (_, ch) => data[(s * c + ch) * h * w + id]!));
    }
  return rows;
}

function referenceHead(rows: number[][], dict: Map<string, Float32TensorData>, layer: number): Float64Array {
  const w0 = dict.get(`mlp_${layer}.0.weight`)!;
  const b0 = dict.get(`mlp_${layer}.0.bias`)!.data;
  const w2 = dict.get(`mlp_${layer}.2.weight`)!.data;
  const b2 = dict.get(`mlp_${layer}.2.bias`)!.data;
  const [nc, c] = w0.shape as [number, number];
  const out = new Float64Array(rows.length * nc);
  rows.forEach((x, r) => {
    const hidden = Array.from({ length: nc }, (_, o) =>
      Math.max(
        0,
        x.reduce((a, v, i) => a + w0.data[o * c + i]! * v, b0[o]!),
      ),
    );
    const y = Array.from({ length: nc }, (_, o) => hidden.reduce((a, v, i) => a + w2[o * nc + i]! * v, b2[o]!));
    const norm = Math.sqrt(y.reduce((a, v) => a + v * v, 0));
    y.forEach((v, o) => (out[r * nc + o] = v / (norm + PATCH_NORM_EPS)));
  });
  return out;
}

const distinct = (ids: ArrayLike<number>): number => new Set(Array.from(ids)).size;

describe('patch ids', () => {
  it('draws distinct in-range ids, the same positions for every image, and all H·W when numPatches ≥ H·W', () => {
    const netF = createPatchSampleF(tf, { nc: 4, seed: 1 });
    const feats = [feature([2, 3, 6, 7], 1), feature([2, 5, 4, 4], 2)];
    const { features, patchIds } = netF.sample(feats, 20);
    expect(patchIds.map((ids) => ids.length)).toEqual([20, 16]);
    expect(patchIds.map(distinct)).toEqual([20, 16]);
    expect(Math.max(...patchIds[0]!)).toBeLessThan(42);
    expect([...patchIds[1]!].sort((a, b) => a - b)).toEqual(Array.from({ length: 16 }, (_, i) => i));
    // "In permutation order": not simply 0..15.
    expect([...patchIds[1]!]).not.toEqual(Array.from({ length: 16 }, (_, i) => i));
    expect(features.map((f) => f.shape)).toEqual([
      [40, 4],
      [32, 4],
    ]);
    tf.dispose([...feats, ...features]);
    netF.dispose();
  });

  it('is reproducible from the seed and from a saved state, and differs between seeds', () => {
    const feats = [feature([1, 2, 10, 10], 3)];
    const draw = (f: PatchSampleF) => {
      const { features, patchIds } = f.sample(feats, 8);
      tf.dispose(features);
      return [...patchIds[0]!];
    };
    const a = createPatchSampleF(tf, { nc: 2, seed: 42 });
    const b = createPatchSampleF(tf, { nc: 2, seed: 42 });
    const c = createPatchSampleF(tf, { nc: 2, seed: 43 });
    const first = draw(a);
    expect(draw(b)).toEqual(first);
    expect(draw(c)).not.toEqual(first);
    const saved = JSON.parse(JSON.stringify(a.rngState())) as ReturnType<PatchSampleF['rngState']>;
    const next = [draw(a), draw(a)];
    expect(next[0]).not.toEqual(first);
    c.setRngState(saved);
    expect([draw(c), draw(c)]).toEqual(next);
    expect(() => c.setRngState({ algorithm: 'xoshiro128**', state: [0, 0, 0, 0] })).toThrow(UsageError);
    expect(() => c.setRngState({ algorithm: 'mt19937', state: [1, 2, 3, 4] } as never)).toThrow(/expected \{ algorithm: 'xoshiro128\*\*'/);
    tf.dispose(feats);
    [a, b, c].forEach((f) => f.dispose());
  });

  it('draws each position about equally often as the first id (χ² over 3000 draws of 10 positions)', () => {
    const netF = createPatchSampleF(tf, { nc: 1, seed: 9 });
    const feats = [tf.zeros([1, 1, 2, 5]) as Tensor4D];
    const counts = new Array<number>(10).fill(0);
    for (let i = 0; i < 3000; i++) {
      const { features, patchIds } = netF.sample(feats, 3);
      tf.dispose(features);
      counts[patchIds[0]![0]!]!++;
    }
    const chi2 = counts.reduce((a, n) => a + (n - 300) ** 2 / 300, 0);
    // 9 degrees of freedom: P(χ² > 27.9) = 0.001. The seed is fixed, so this is deterministic.
    expect(chi2).toBeLessThan(27.9);
    tf.dispose(feats);
    netF.dispose();
  });

  it('draws separate ids per sample with perSampleIds (SPEC §11 #4) and takes given ones in that layout', () => {
    const netF = createPatchSampleF(tf, { nc: 3, seed: 5 });
    const feat = feature([3, 2, 5, 6], 4);
    const { features, patchIds } = netF.sample([feat], 7, undefined, { perSampleIds: true });
    const ids = patchIds[0]!;
    expect(ids.length).toBe(21);
    const perSample = [0, 1, 2].map((s) => [...ids.subarray(7 * s, 7 * s + 7)]);
    expect(perSample.map(distinct)).toEqual([7, 7, 7]);
    expect(perSample[0]).not.toEqual(perSample[1]);
    expect(features[0]!.shape).toEqual([21, 3]);
    expect(() => netF.sample([feat], 7, [ids.subarray(0, 20)], { perSampleIds: true })).toThrow(
      new InputError('PatchSampleF.sample: patchIds[0] holds 20 ids, not a multiple of the batch 3 (perSampleIds)'),
    );
    tf.dispose([feat, ...features]);
    netF.dispose();
  });
});

describe('PatchSampleF.sample', () => {
  it('builds one xavier(0.02) head per layer lazily, with zero biases and PyTorch [out, in] weights', async () => {
    const netF = createPatchSampleF(tf, { seed: 3 });
    expect(netF.nc).toBe(256);
    expect(netF.variables.size).toBe(0);
    const feats = [feature([1, 3, 8, 8], 1), feature([1, 256, 4, 4], 2)];
    // Built inside a tidy, as a loss function would: the variables must outlive it.
    tf.tidy(() => {
      netF.sample(feats, 4);
    });
    expect(netF.headChannels()).toEqual([3, 256]);
    expect([...netF.variables.keys()]).toEqual([
      'mlp_0.0.weight',
      'mlp_0.0.bias',
      'mlp_0.2.weight',
      'mlp_0.2.bias',
      'mlp_1.0.weight',
      'mlp_1.0.bias',
      'mlp_1.2.weight',
      'mlp_1.2.bias',
    ]);
    expect(netF.variables.get('mlp_0.0.weight')!.shape).toEqual([256, 3]);
    expect(netF.numParameters()).toBe(3 * 256 + 256 + 256 * 256 + 256 + 256 * 256 + 256 + 256 * 256 + 256);
    const w = (await netF.variables.get('mlp_1.0.weight')!.data()) as Float32Array;
    const std = Math.sqrt(w.reduce((a, v) => a + v * v, 0) / w.length);
    expect(Math.abs(std / (0.02 * Math.sqrt(2 / 512)) - 1)).toBeLessThan(0.02);
    expect(Math.max(...((await netF.variables.get('mlp_1.2.bias')!.data()) as Float32Array).map(Math.abs))).toBe(0);
    // Weights come from the seed alone; heads of one F are not copies of each other.
    const again = createPatchSampleF(tf, { seed: 3 });
    const other = createPatchSampleF(tf, { seed: 4 });
    for (const f of [again, other]) tf.dispose(f.sample(feats, 4).features);
    expect(await again.variables.get('mlp_1.0.weight')!.data()).toEqual(w);
    expect(await other.variables.get('mlp_1.0.weight')!.data()).not.toEqual(w);
    const w12 = (await netF.variables.get('mlp_1.2.weight')!.data()) as Float32Array;
    expect(w12.subarray(0, 8)).not.toEqual(w.subarray(0, 8));
    tf.dispose(feats);
    [netF, again, other].forEach((f) => f.dispose());
  });

  it('gathers rows at id = h·W + w, applies the MLP and normalises like SPEC §4 (atol 1e-6)', () => {
    const channels = [3, 5];
    const state = syntheticState(channels, 6, 11);
    const netF = createPatchSampleF(tf, { nc: 6 });
    netF.loadState(state);
    const shapes: Array<[number, number, number, number]> = [
      [2, 3, 5, 7],
      [2, 5, 3, 4],
    ];
    const feats = shapes.map((s, i) => feature(s, 20 + i));
    const ids = [Int32Array.from([0, 34, 7, 6, 28, 13]), Int32Array.from([11, 0, 5])];
    const { features, patchIds } = netF.sample(feats, 256, ids);
    expect(patchIds[0]).toBe(ids[0]);
    features.forEach((f, l) => {
      const data = feats[l]!.dataSync();
      const rows = referenceRows(data, shapes[l]!, ids[l]!, false);
      // Rows are batch-major: sample 1's rows follow sample 0's at the same ids.
      expect(rows[ids[l]!.length]![0]).toBe(data[shapes[l]![1] * shapes[l]![2] * shapes[l]![3] + ids[l]![0]!]);
      expect(f.shape).toEqual([2 * ids[l]!.length, 6]);
      expect(f.dataSync()).toBeCloseToTensor(referenceHead(rows, state, l), { atol: 1e-6, rtol: 0, shape: f.shape });
      const norms = tf.tidy(() => tf.norm(f, 'euclidean', 1).dataSync());
      for (const n of norms) expect(n).toBeCloseTo(1, 5);
    });
    // Per-sample ids: row b·N + n uses sample b's own id.
    const own = [Int32Array.from([1, 2, 30, 30, 4, 0]), Int32Array.from([11, 0, 3, 2, 5, 9])];
    const per = netF.sample(feats, 3, own, { perSampleIds: true });
    per.features.forEach((f, l) => {
      const rows = referenceRows(feats[l]!.dataSync(), shapes[l]!, own[l]!, true);
      expect(f.dataSync()).toBeCloseToTensor(referenceHead(rows, state, l), { atol: 1e-6, rtol: 0, shape: f.shape });
    });
    const gathered = gatherPatchRows(tf, feats[1]!, own[1]!, true);
    expect(Array.from(gathered.dataSync())).toEqual(referenceRows(feats[1]!.dataSync(), shapes[1]!, own[1]!, true).flat().map(Math.fround));
    tf.dispose([...feats, ...features, ...per.features, gathered]);
    netF.dispose();
  });

  it('passes gradients through the gather to the features and the heads (finite differences, float64 reference)', () => {
    // Central differences of the float64 restatement (step 1e-4) against TF.js's float32 backward; float32
    // rounding of that backward is ~1e-7 here, far inside atol 1e-5 + rtol 1e-3, while a lost or misrouted
    // gather gradient would be off by O(1). Id 4 appears twice so the scatter must add, not overwrite.
    const shapes: Array<[number, number, number, number]> = [
      [2, 3, 3, 4],
      [2, 4, 2, 3],
    ];
    const ids = [Int32Array.from([4, 0, 11, 4]), Int32Array.from([5, 2])];
    const state = syntheticState([3, 4], 5, 31);
    const mix = shapes.map((_, l) => seededUniform(50 + l, 2 * ids[l]!.length * 5)); // loss = Σ_l Σ features_l · mix_l
    const datas = shapes.map((s, l) => seededUniform(40 + l, count(s)));
    const lossOf = (d: Float64Array[], st: Map<string, Float32TensorData>) =>
      d.reduce((acc, data, l) => {
        const out = referenceHead(referenceRows(data, shapes[l]!, ids[l]!, false), st, l);
        return acc + out.reduce((a, v, i) => a + v * mix[l]![i]!, 0);
      }, 0);

    const netF = createPatchSampleF(tf, {});
    netF.loadState(state);
    const feats = shapes.map((s, l) => tf.tensor4d(datas[l]!, s));
    const loss = (...fs: Tensor[]) =>
      tf.tidy(() => {
        const { features } = netF.sample(fs as Tensor4D[], 256, ids);
        return tf.addN(features.map((f, l) => tf.sum(tf.mul(f, tf.tensor2d(mix[l]!, f.shape as [number, number])))));
      });
    const grads = tf.grads(loss)(feats);
    const eps = 1e-4;
    grads.forEach((g, l) => {
      const numeric = Array.from(datas[l]!, (_, p) => {
        const at = (delta: number) => datas.map((d, k) => Float64Array.from(d, (v, i) => (k === l && i === p ? v + delta : v)));
        return (lossOf(at(eps), state) - lossOf(at(-eps), state)) / (2 * eps);
      });
      expect(numeric.filter((v) => v !== 0).length).toBeGreaterThan(0);
      expect(g.dataSync()).toBeCloseToTensor(numeric, { atol: 1e-5, rtol: 1e-3, shape: g.shape });
    });
    // Untouched positions get exactly zero; the repeated id 4 gets the sum of both rows' gradients.
    const g0 = grads[0]!.dataSync();
    expect(g0[1]).toBe(0);

    const { grads: vg, value } = tf.variableGrads(() => loss(...feats) as never, [...netF.variables.values()]);
    for (const [key, index] of [
      ['mlp_0.0.weight', 4],
      ['mlp_1.2.weight', 7],
      ['mlp_1.0.bias', 2],
      ['mlp_0.2.bias', 1],
    ] as const) {
      const entry = state.get(key)!;
      // A float32-representable step (the stored weights are float32), small enough for a truncation error ~1e-9.
      const step = Math.fround(entry.data[index]! + 1e-5) - entry.data[index]!;
      const shifted = (delta: number) => {
        const data = entry.data.slice();
        data[index] = data[index]! + delta;
        return new Map(state).set(key, { shape: entry.shape, data });
      };
      const d64 = datas.map((d) => Float64Array.from(d));
      const numeric = (lossOf(d64, shifted(step)) - lossOf(d64, shifted(-step))) / (2 * step);
      const analytic = vg[(netF.variables.get(key) as Variable).name]!.dataSync()[index]!;
      expect({ key, analytic }).toEqual({ key, analytic: expect.closeTo(numeric, 5) as unknown as number });
    }
    tf.dispose([...feats, ...grads, value, ...Object.values(vg)]);
    netF.dispose();
  });

  it('rejects what it cannot take', () => {
    const netF = createPatchSampleF(tf, { nc: 2, seed: 1 });
    const f = feature([1, 3, 4, 4], 1);
    const wide = feature([1, 4, 4, 4], 2);
    expect(() => netF.sample([f], 0)).toThrow(UsageError);
    expect(() => netF.sample([], 4)).toThrow(UsageError);
    expect(() => netF.sample([f], 4, [Int32Array.from([0, 16])])).toThrow(
      new InputError('PatchSampleF.sample: patchIds[0][1] = 16 is outside the 4x4 feature map (0..15)'),
    );
    expect(() => netF.sample([f], 4, [Int32Array.from([1]), Int32Array.from([1])])).toThrow('2 patch id arrays for 1 feature maps');
    expect(netF.variables.size).toBe(0); // a refused call builds nothing
    tf.dispose(netF.sample([f], 4).features);
    expect(() => netF.sample([wide], 4)).toThrow('feature map 0 has 4 channels, head mlp_0 takes 3 (NCHW)');
    expect(() => netF.sample([f, f], 4)).toThrow('got 2 feature maps, the heads were built for 1 layers');
    expect(() => createPatchSampleF(tf, { seed: -1 })).toThrow(UsageError);
    expect(() => createPatchSampleF(tf, { nc: 0 })).toThrow(UsageError);
    netF.dispose();
    expect(() => netF.sample([f], 4)).toThrow('PatchSampleF: used after dispose()');
    tf.dispose([f, wide]);
  });

  it('leaves no tensors behind in sample and in a gradient step, beyond the heads it builds', () => {
    const netF = createPatchSampleF(tf, { nc: 8, seed: 2 });
    const feats = [feature([2, 3, 6, 6], 1), feature([2, 6, 3, 3], 2)];
    tf.dispose(netF.sample(feats, 5).features); // builds the heads
    const before = tf.memory().numTensors;
    const { features } = netF.sample(feats, 5);
    expect(tf.memory().numTensors).toBe(before + features.length);
    tf.dispose(features);
    const { value, grads } = tf.variableGrads(
      () => tf.tidy(() => tf.addN(netF.sample(feats, 5).features.map((x) => tf.sum(tf.square(x))))) as never,
      [...netF.variables.values()],
    );
    tf.dispose([value, ...Object.values(grads)]);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose(feats);
    netF.dispose();
    expect(tf.memory().numTensors).toBe(before - 2 * 4 - 2);
  });
});

describe('PatchSampleF state dicts', () => {
  it('builds its heads from a state dict, taking nc and C_l from the shapes, and round-trips it', async () => {
    const state = syntheticState([3, 7, 7], 5);
    const netF = createPatchSampleF(tf);
    netF.loadState(new Map([...state].map(([k, v]) => [`netF.${k}`, float32Tensor(v.shape, v.data)])), { prefix: 'netF.' });
    expect(netF.nc).toBe(5);
    expect(netF.headChannels()).toEqual([3, 7, 7]);
    const out = await netF.stateDict();
    expect([...out.keys()]).toEqual([...state.keys()]);
    for (const [key, value] of state) expect({ key, ...out.get(key)! }).toEqual({ key, ...value });
    // A second load replaces values in place.
    const next = syntheticState([3, 7, 7], 5, 99);
    const w = netF.variables.get('mlp_2.2.weight');
    netF.loadState(next);
    expect(netF.variables.get('mlp_2.2.weight')).toBe(w);
    expect(w!.dataSync()).toEqual(next.get('mlp_2.2.weight')!.data);
    netF.dispose();
  });

  it('names missing and unexpected keys, wrong shapes and an nc that contradicts the one asked for', () => {
    const state = syntheticState([3, 4], 6);
    const load = (dict: Map<string, Float32TensorData>, nc?: number) => () => {
      const netF = createPatchSampleF(tf, nc === undefined ? {} : { nc });
      try {
        netF.loadState(dict, { source: 'F.pth' });
      } finally {
        netF.dispose();
      }
    };
    const missing = new Map(state);
    missing.delete('mlp_1.2.bias');
    missing.set('mlp_1.1.weight', state.get('mlp_1.2.weight')!);
    expect(load(missing)).toThrow(
      new ModelFormatError('F.pth: PatchSampleF state dict (2 heads): missing keys mlp_1.2.bias; unexpected keys mlp_1.1.weight'),
    );
    const shape = new Map(state).set('mlp_1.2.weight', { shape: [6, 5], data: new Float32Array(30) });
    expect(load(shape)).toThrow('mlp_1.2.weight has shape [6,5], expected [6,6] (nc=6 from mlp_0.0.weight)');
    expect(load(state, 8)).toThrow('PatchSampleF state dict has nc=6, this PatchSampleF was created with nc=8');
    expect(load(new Map())).toThrow('not a PatchSampleF state dict: no mlp_<i>.* keys');

    const built = createPatchSampleF(tf, { nc: 6 });
    built.loadState(state);
    expect(() => built.loadState(syntheticState([3, 5], 6))).toThrow('heads C=[3,5] → nc=6, the built heads are C=[3,4] → nc=6');
    built.dispose();
  });
});

describe('gatherPatchRows on wasm', () => {
  afterAll(async () => {
    await loadTf({ prefer: 'cpu' });
  });

  // wasm has kernels of its own for gather and matMul (its GatherV2 with batchDims and its _FusedMatMul with
  // transposeB both give wrong values in tfjs 4.22), so the layouts are checked there too.
  it('picks the same rows as on cpu, shared and per sample, and the heads agree', async () => {
    const shape: [number, number, number, number] = [3, 4, 5, 6];
    const data = seededUniform(5, count(shape));
    const shared = Int32Array.from([29, 0, 7, 7]);
    const own = Int32Array.from([1, 2, 29, 0, 5, 5, 11, 12, 13, 28, 3, 4]);
    const state = syntheticState([4], 6, 8);
    await loadTf({ prefer: 'wasm', require: true });
    expect(tf.getBackend()).toBe('wasm');
    const feat = tf.tensor4d(data, shape);
    for (const [ids, perSample] of [
      [shared, false],
      [own, true],
    ] as const) {
      const rows = gatherPatchRows(tf, feat, ids, perSample);
      const expected = referenceRows(data, shape, ids, perSample);
      expect(Array.from(rows.dataSync())).toEqual(expected.flat());
      const netF = createPatchSampleF(tf);
      netF.loadState(state);
      const { features } = netF.sample([feat], 256, [ids], { perSampleIds: perSample });
      expect(features[0]!.dataSync()).toBeCloseToTensor(referenceHead(expected, state, 0), { atol: 1e-6, rtol: 0 });
      tf.dispose([rows, ...features]);
      netF.dispose();
    }
    feat.dispose();
  });
});

const hasTfjsNode = availableBackends().some((b) => b.candidate === 'tfjs-node');
(hasTfjsNode ? describe : describe.skip)('PatchSampleF on tfjs-node', () => {
  afterAll(async () => {
    await loadTf({ prefer: 'cpu' });
  });

  it('gives the cpu backend`s features and feature gradients (atol 1e-6)', async () => {
    const state = syntheticState([3, 4], 8, 3);
    const shapes: Array<[number, number, number, number]> = [
      [2, 3, 5, 5],
      [2, 4, 3, 3],
    ];
    const ids = [Int32Array.from([3, 24, 3, 0, 12]), Int32Array.from([8, 1, 4])];
    const run = () => {
      const netF = createPatchSampleF(tf);
      netF.loadState(state);
      const feats = shapes.map((s, l) => feature(s, 70 + l));
      const { features } = netF.sample(feats, 256, ids);
      const values = features.map((f) => f.dataSync().slice());
      const grads = tf.grads((...fs: Tensor[]) =>
        tf.addN(netF.sample(fs as Tensor4D[], 256, ids).features.map((f) => tf.sum(tf.mul(f, tf.reshape(tf.range(0, f.size), f.shape))))),
      )(feats);
      const gradValues = grads.map((g) => g.dataSync().slice());
      tf.dispose([...feats, ...features, ...grads]);
      netF.dispose();
      return { values, gradValues };
    };
    const onCpu = run();
    await loadTf({ prefer: 'tfjs-node', require: true });
    expect(tf.getBackend()).toBe('tensorflow');
    const onNode = run();
    onNode.values.forEach((v, l) => expect(v).toBeCloseToTensor(onCpu.values[l]!, { atol: 1e-6, rtol: 0 }));
    onNode.gradValues.forEach((v, l) => expect(v).toBeCloseToTensor(onCpu.gradValues[l]!, { atol: 1e-5, rtol: 1e-5 }));
  });
});
