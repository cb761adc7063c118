import { InputError, UsageError, loadTf } from '@scenimefy/io';
import { seededUniform } from '@scenimefy/test-utils';
import type { Tensor, Tensor2D } from '@tensorflow/tfjs-core';
import type { Tf } from '../layers/tf';
import { DEFAULT_HDCE_GAMMA_OPTIONS, SRC_NORMALIZE_EPS, hdceGamma, hdceWeights, srcLoss } from './src';

let tf: Tf;
beforeAll(async () => {
  ({ tf } = await loadTf({ prefer: 'cpu' }));
});

/** Rows of `rows × c` from a seeded LCG with norms between 0.5 and 2, so the re-normalisation matters. */
function rawRows(seed: number, rows: number, c: number): Float32Array {
  const out = seededUniform(seed, rows * c);
  for (let r = 0; r < rows; r++) {
    let n = 0;
    for (let j = 0; j < c; j++) n += out[r * c + j]! ** 2;
    const scale = (0.5 + (1.5 * r) / rows) / Math.sqrt(n);
    for (let j = 0; j < c; j++) out[r * c + j]! *= scale;
  }
  return out;
}

/** Float64 rows of image `img`, each divided by (‖row‖ + 1e-7) as the reference's Normalize does. */
function normalizedBlock(x: ArrayLike<number>, img: number, n: number, c: number): number[][] {
  return Array.from({ length: n }, (_, i) => {
    const row = Array.from({ length: c }, (_, j) => x[(img * n + i) * c + j]!);
    const norm = Math.sqrt(row.reduce((s, v) => s + v * v, 0));
    return row.map((v) => v / (norm + 1e-7));
  });
}

const gram = (a: number[][]) => a.map((ri) => a.map((rj) => ri.reduce((s, v, x) => s + v * rj[x]!, 0)));

/** Float64 JSD of one image from the SRC.py definition: column softmax, M = ½(P_q+P_k), sum of both KLs. */
function referenceJsd(q: ArrayLike<number>, k: ArrayLike<number>, img: number, n: number, c: number): number {
  const columnSoftmax = (s: number[][]) =>
    s.map((row, i) =>
      row.map((_, j) => {
        const col = s.map((r) => r[j]!);
        const m = Math.max(...col);
        return Math.exp(s[i]![j]! - m) / col.reduce((acc, v) => acc + Math.exp(v - m), 0);
      }),
    );
  const pq = columnSoftmax(gram(normalizedBlock(q, img, n, c)));
  const pk = columnSoftmax(gram(normalizedBlock(k, img, n, c)));
  let jsd = 0;
  for (let i = 0; i < n; i++)
    for (let j = 0; j < n; j++) {
      const m = 0.5 * (pq[i]![j]! + pk[i]![j]!);
      jsd += 0.5 * pq[i]![j]! * Math.log(pq[i]![j]! / m) + 0.5 * pk[i]![j]! * Math.log(pk[i]![j]! / m);
    }
  return jsd;
}

/** Float64 hDCE weights of one image: row softmax of (K Kᵀ, diagonal −10)/γ, each row over its max. */
function referenceWeights(k: ArrayLike<number>, img: number, n: number, c: number, gamma: number): number[] {
  const seed = gram(normalizedBlock(k, img, n, c)).map((row, i) => row.map((v, j) => (i === j ? -10 : v) / gamma));
  return seed.flatMap((row) => {
    const m = Math.max(...row);
    const e = row.map((v) => Math.exp(v - m));
    const sum = e.reduce((a, v) => a + v, 0);
    const w = e.map((v) => v / sum);
    const wMax = Math.max(...w);
    return w.map((v) => v / wMax);
  });
}

const mean = (v: number[]) => v.reduce((s, x) => s + x, 0) / v.length;

describe('srcLoss', () => {
  const [B, N, C] = [2, 7, 4];
  const qData = rawRows(21, B * N, C);
  const kData = rawRows(22, B * N, C);
  const referenceLoss = (q: ArrayLike<number>) => mean(Array.from({ length: B }, (_, img) => referenceJsd(q, kData, img, N, C)));

  it('matches the float64 JSD per image (a sum over N×N) and averages it over the batch', () => {
    expect(SRC_NORMALIZE_EPS).toBe(1e-7);
    const { loss, perImage } = tf.tidy(() => srcLoss(tf, tf.tensor2d(qData, [B * N, C]), tf.tensor2d(kData, [B * N, C]), { batchSize: B }));
    const expected = Array.from({ length: B }, (_, img) => referenceJsd(qData, kData, img, N, C));
    expect(perImage.shape).toEqual([B]);
    expect(perImage.dataSync()).toBeCloseToTensor(expected, { atol: 1e-7, rtol: 1e-5 });
    expect(loss.dataSync()[0]).toBeCloseTo(mean(expected), 7);
    tf.dispose([loss, perImage]);
  });

  it('has the gradient of the float64 definition, re-normalisation included (central differences)', () => {
    const q = tf.tensor2d(qData, [B * N, C]);
    const k = tf.tensor2d(kData, [B * N, C]);
    const g = tf.grad((x: Tensor) => srcLoss(tf, x as Tensor2D, k, { batchSize: B }).loss)(q);
    const h = 1e-6;
    const fd = Array.from(qData, (_, idx) => {
      const plus = Float64Array.from(qData);
      const minus = Float64Array.from(qData);
      plus[idx]! += h;
      minus[idx]! -= h;
      return (referenceLoss(plus) - referenceLoss(minus)) / (2 * h);
    });
    expect(Math.max(...fd.map(Math.abs))).toBeGreaterThan(1e-3);
    expect(g.dataSync()).toBeCloseToTensor(fd, { atol: 1e-6, rtol: 1e-4 });
    tf.dispose([q, k, g]);
  });

  it('at batch B equals the mean of B separate batch-1 computations (values and gradients)', () => {
    const q = tf.tensor2d(qData, [B * N, C]);
    const k = tf.tensor2d(kData, [B * N, C]);
    const whole = srcLoss(tf, q, k, { batchSize: B });
    const gradWhole = tf
      .grad((x: Tensor) => srcLoss(tf, x as Tensor2D, k, { batchSize: B }).loss)(q)
      .dataSync();
    const perSample = Array.from({ length: B }, (_, b) =>
      tf.tidy(() => {
        const qb = tf.slice(q, [b * N, 0], [N, C]);
        const kb = tf.slice(k, [b * N, 0], [N, C]);
        const grad = tf.grad((x: Tensor) => srcLoss(tf, x as Tensor2D, kb).loss)(qb);
        return { loss: srcLoss(tf, qb, kb).loss.dataSync()[0]!, grad: Array.from(grad.dataSync()) };
      }),
    );
    expect(whole.perImage.dataSync()).toBeCloseToTensor(
      perSample.map((s) => s.loss),
      { atol: 1e-7, rtol: 1e-6 },
    );
    expect(whole.loss.dataSync()[0]).toBeCloseTo(mean(perSample.map((s) => s.loss)), 7);
    expect(gradWhole).toBeCloseToTensor(
      perSample.flatMap((s) => s.grad.map((v) => v / B)),
      { atol: 1e-9, rtol: 1e-5 },
    );
    tf.dispose([q, k, whole.loss, whole.perImage]);
  });

  it('is exactly 0 when queries and keys coincide, and detaches the keys', () => {
    const q = tf.tensor2d(qData, [B * N, C]);
    const k = tf.tensor2d(kData, [B * N, C]);
    const same = srcLoss(tf, q, q, { batchSize: B });
    expect(Array.from(same.perImage.dataSync())).toEqual(Array(B).fill(0));
    const [gq, gk] = tf.grads((a: Tensor, b: Tensor) => srcLoss(tf, a as Tensor2D, b as Tensor2D, { batchSize: B }).loss)([q, k]);
    expect(Math.max(...Array.from(gq!.dataSync(), Math.abs))).toBeGreaterThan(1e-4);
    expect(Array.from(gk!.dataSync()).every((v) => v === 0)).toBe(true);
    tf.dispose([q, k, same.loss, same.perImage, gq!, gk!]);
  });

  it('rejects mismatched features and a batch size that does not divide the rows', () => {
    const q = tf.zeros([6, 4]) as Tensor2D;
    const k = tf.zeros([5, 4]) as Tensor2D;
    expect(() => srcLoss(tf, q, k)).toThrow(InputError);
    expect(() => srcLoss(tf, q, q, { batchSize: 4 })).toThrow(InputError);
    expect(() => srcLoss(tf, q, q, { batchSize: -1 })).toThrow(UsageError);
    tf.dispose([q, k]);
  });

  it('leaves no tensor behind after a value and gradient computation', () => {
    const q = tf.tensor2d(qData, [B * N, C]);
    const k = tf.tensor2d(kData, [B * N, C]);
    const before = tf.memory().numTensors;
    const { value, grad } = tf.valueAndGrad((x: Tensor) => srcLoss(tf, x as Tensor2D, k, { batchSize: B }).loss)(q);
    const out = srcLoss(tf, q, k, { batchSize: B });
    tf.dispose([value, grad, out.loss, out.perImage]);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([q, k]);
  });
});

describe('hdceWeights', () => {
  const [B, N, C] = [3, 6, 4];
  const kData = rawRows(31, B * N, C);

  it('matches the float64 row-softmax of (K Kᵀ, diagonal −10)/γ with each row divided by its max, per image', () => {
    for (const gamma of [48, 10, 0.5]) {
      const w = tf.tidy(() => hdceWeights(tf, tf.tensor2d(kData, [B * N, C]), { gamma, batchSize: B }));
      expect(w.shape).toEqual([B, N, N]);
      const expected = Array.from({ length: B }, (_, img) => referenceWeights(kData, img, N, C, gamma)).flat();
      expect(w.dataSync()).toBeCloseToTensor(expected, { atol: 1e-6, rtol: 1e-6 });
      // Each row is divided by its own maximum, so every row peaks at exactly 1.
      const values = w.dataSync();
      for (let r = 0; r < B * N; r++) expect(Math.max(...values.subarray(r * N, r * N + N))).toBe(1);
      w.dispose();
    }
  });

  it('at batch B holds the B batch-1 matrices, and carries no gradient', () => {
    const k = tf.tensor2d(kData, [B * N, C]);
    const whole = hdceWeights(tf, k, { gamma: 48, batchSize: B });
    for (let b = 0; b < B; b++) {
      const one = tf.tidy(() => hdceWeights(tf, tf.slice(k, [b * N, 0], [N, C]), { gamma: 48 }));
      expect(one.shape).toEqual([1, N, N]);
      expect(whole.dataSync().subarray(b * N * N, (b + 1) * N * N)).toBeCloseToTensor(one.dataSync(), {
        atol: 0,
        rtol: 0,
      });
      one.dispose();
    }
    const g = tf.grad((x: Tensor) => tf.sum(hdceWeights(tf, x as Tensor2D, { gamma: 48, batchSize: B })))(k);
    expect(Array.from(g.dataSync()).every((v) => v === 0)).toBe(true);
    tf.dispose([k, whole, g]);
  });

  it('rejects a γ that is not a positive number, and leaves no tensor behind', () => {
    const k = tf.tensor2d(kData, [B * N, C]);
    expect(() => hdceWeights(tf, k, { gamma: 0 })).toThrow(UsageError);
    expect(() => hdceWeights(tf, k, { gamma: Number.NaN })).toThrow(UsageError);
    const before = tf.memory().numTensors;
    hdceWeights(tf, k, { gamma: 10, batchSize: B }).dispose();
    expect(tf.memory().numTensors).toBe(before);
    k.dispose();
  });
});

describe('hdceGamma', () => {
  it('runs linearly from HDCE_gamma towards HDCE_gamma_min over n_epochs + n_epochs_decay (1-based)', () => {
    expect(DEFAULT_HDCE_GAMMA_OPTIONS).toEqual({ gamma: 50, gammaMin: 10, nEpochs: 10, nEpochsDecay: 10 });
    expect(hdceGamma(1)).toBe(48);
    expect(hdceGamma(10)).toBe(30);
    expect(hdceGamma(20)).toBe(10);
    expect(hdceGamma(3, { gamma: 1, gammaMin: 0.1, nEpochs: 5, nEpochsDecay: 5 })).toBe(1 + ((0.1 - 1) * 3) / 10);
  });

  it('rejects epochs that are not 1-based integers and settings that give a γ ≤ 0', () => {
    expect(() => hdceGamma(0)).toThrow(UsageError);
    expect(() => hdceGamma(1.5)).toThrow(UsageError);
    expect(() => hdceGamma(1, { gamma: 10, gammaMin: 0, nEpochs: 1, nEpochsDecay: 0 })).toThrow(/must be positive/);
    expect(() => hdceGamma(1, { gamma: 10, gammaMin: 1, nEpochs: 0, nEpochsDecay: 0 })).toThrow(UsageError);
    expect(() => hdceGamma(1, { gamma: Number.NaN, gammaMin: 1, nEpochs: 1, nEpochsDecay: 1 })).toThrow(UsageError);
  });
});
