import { InputError, loadTf } from '@scenimefy/io';
import { seededUnitRows } from '@scenimefy/test-utils';
import type { Tensor, Tensor2D, Tensor3D } from '@tensorflow/tfjs-core';
import type { Tf } from '../layers/tf';
import { patchHdceLoss } from './hdce';
import { NCE_TEMPERATURE, patchNceLoss } from './patch-nce';
import { hdceWeights } from './src';

let tf: Tf;
beforeAll(async () => {
  ({ tf } = await loadTf({ prefer: 'cpu' }));
});

const unitRows = seededUnitRows;

const dot = (a: ArrayLike<number>, i: number, b: ArrayLike<number>, j: number, c: number): number => {
  let s = 0;
  for (let x = 0; x < c; x++) s += a[i * c + x]! * b[j * c + x]!;
  return s;
};

const logSumExp = (xs: number[]) => {
  const m = Math.max(...xs);
  return m + Math.log(xs.reduce((s, x) => s + Math.exp(x - m), 0));
};

/**
 * Float64 hDCE per row from hDCE.py: s⁺_i = q_i·k_i; s_ij = (q_i·k_j)·W_ij, then s_ii = −10; v_i = logsumexp_j of
 * (s_ij − s⁺_i)/τ; CE_i = logsumexp([s⁺_i, s_i·]/τ) − s⁺_i/τ. `w` is [B, N, N] flattened, or undefined.
 */
function referenceRows(
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  w: ArrayLike<number> | undefined,
  b: number,
  n: number,
  c: number,
  tau: number,
) {
  const v: number[] = [];
  const ce: number[] = [];
  for (let img = 0; img < b; img++)
    for (let i = 0; i < n; i++) {
      const row = img * n + i;
      const pos = dot(q, row, k, row, c);
      const neg = Array.from({ length: n }, (_, j) =>
        j === i ? -10 : dot(q, row, k, img * n + j, c) * (w === undefined ? 1 : w[(img * n + i) * n + j]!),
      );
      v.push(logSumExp(neg.map((s) => (s - pos) / tau)));
      ce.push(logSumExp([pos, ...neg].map((s) => s / tau)) - pos / tau);
    }
  return { v, ce };
}

const mean = (v: number[]) => v.reduce((s, x) => s + x, 0) / v.length;

describe('patchHdceLoss', () => {
  const [B, N, C] = [2, 6, 5];
  const qData = unitRows(41, B * N, C);
  const kData = unitRows(42, B * N, C);
  // Weights well away from 1, so that weighting before the diagonal fill is visible.
  const wData = Float32Array.from({ length: B * N * N }, (_, i) => 0.3 + 0.7 * (((i * 7919) % 97) / 96));

  it('matches the float64 definition: v, mean v (loss), per-row CE and its mean (displayed)', () => {
    for (const [tau, weighted] of [
      [NCE_TEMPERATURE, true],
      [NCE_TEMPERATURE, false],
      [5, true],
    ] as const) {
      const out = tf.tidy(() =>
        patchHdceLoss(tf, tf.tensor2d(qData, [B * N, C]), tf.tensor2d(kData, [B * N, C]), {
          tau,
          batchSize: B,
          weight: weighted ? tf.tensor3d(wData, [B, N, N]) : undefined,
        }),
      );
      const expected = referenceRows(qData, kData, weighted ? wData : undefined, B, N, C, tau);
      expect(out.v.shape).toEqual([B * N]);
      expect(out.v.dataSync()).toBeCloseToTensor(expected.v, { atol: 2e-5, rtol: 1e-6 });
      expect(out.crossEntropy.dataSync()).toBeCloseToTensor(expected.ce, { atol: 2e-5, rtol: 1e-6 });
      expect(out.loss.dataSync()[0]).toBeCloseTo(mean(expected.v), 5);
      expect(out.displayed.dataSync()[0]).toBeCloseTo(mean(expected.ce), 5);
      // The reference module's output: the displayed value exactly.
      expect(out.reference.dataSync()[0]).toBe(out.displayed.dataSync()[0]);
      tf.dispose(out as unknown as Tensor[]);
    }
  });

  it('carries the gradient of mean v (central differences); displayed has none; reference has that of mean v', () => {
    const q = tf.tensor2d(qData, [B * N, C]);
    const k = tf.tensor2d(kData, [B * N, C]);
    const weight = tf.tensor3d(wData, [B, N, N]);
    const opts = { batchSize: B, weight };
    const g = tf.grad((x: Tensor) => patchHdceLoss(tf, x as Tensor2D, k, opts).loss)(q);
    const h = 1e-6;
    const fd = Array.from(qData, (_, idx) => {
      const plus = Float64Array.from(qData);
      const minus = Float64Array.from(qData);
      plus[idx]! += h;
      minus[idx]! -= h;
      const at = (x: Float64Array) => mean(referenceRows(x, kData, wData, B, N, C, NCE_TEMPERATURE).v);
      return (at(plus) - at(minus)) / (2 * h);
    });
    expect(g.dataSync()).toBeCloseToTensor(fd, { atol: 2e-5, rtol: 1e-4 });
    const gDisplayed = tf.grad((x: Tensor) => patchHdceLoss(tf, x as Tensor2D, k, opts).displayed)(q);
    expect(Array.from(gDisplayed.dataSync()).every((v) => v === 0)).toBe(true);
    const gReference = tf.grad((x: Tensor) => patchHdceLoss(tf, x as Tensor2D, k, opts).reference)(q);
    expect(gReference.dataSync()).toBeCloseToTensor(g.dataSync(), { atol: 0, rtol: 0 });
    const [, gk] = tf.grads((a: Tensor, b: Tensor) => patchHdceLoss(tf, a as Tensor2D, b as Tensor2D, opts).loss)([q, k]);
    expect(Array.from(gk!.dataSync()).every((v) => v === 0)).toBe(true);
    tf.dispose([q, k, weight, g, gDisplayed, gReference, gk!]);
  });

  it('without weights, its CE is PatchNCE per row; all-ones weights change nothing', () => {
    const q = tf.tensor2d(qData, [B * N, C]);
    const k = tf.tensor2d(kData, [B * N, C]);
    const ones = tf.ones([B, N, N]) as Tensor3D;
    const plain = patchHdceLoss(tf, q, k, { batchSize: B });
    const unit = patchHdceLoss(tf, q, k, { batchSize: B, weight: ones });
    const nce = patchNceLoss(tf, q, k, { batchSize: B });
    expect(plain.crossEntropy.dataSync()).toBeCloseToTensor(nce.perRow.dataSync(), { atol: 0, rtol: 0 });
    expect(unit.v.dataSync()).toBeCloseToTensor(plain.v.dataSync(), { atol: 0, rtol: 0 });
    tf.dispose([q, k, ones, nce.loss, nce.perRow, ...(Object.values(plain) as Tensor[]), ...(Object.values(unit) as Tensor[])]);
  });

  it("at batch B equals the mean of B separate batch-1 computations with each image's weights", () => {
    const q = tf.tensor2d(qData, [B * N, C]);
    const k = tf.tensor2d(kData, [B * N, C]);
    const weight = hdceWeights(tf, k, { gamma: 10, batchSize: B });
    const whole = patchHdceLoss(tf, q, k, { batchSize: B, weight });
    const gradWhole = tf
      .grad((x: Tensor) => patchHdceLoss(tf, x as Tensor2D, k, { batchSize: B, weight }).loss)(q)
      .dataSync();
    const perSample = Array.from({ length: B }, (_, b) =>
      tf.tidy(() => {
        const qb = tf.slice(q, [b * N, 0], [N, C]);
        const kb = tf.slice(k, [b * N, 0], [N, C]);
        // The [1, N, N] block of this image, as the reference would compute it for the image alone.
        const wb = hdceWeights(tf, kb, { gamma: 10 });
        const one = patchHdceLoss(tf, qb, kb, { weight: wb });
        const grad = tf.grad((x: Tensor) => patchHdceLoss(tf, x as Tensor2D, kb, { weight: wb }).loss)(qb);
        return {
          loss: one.loss.dataSync()[0]!,
          displayed: one.displayed.dataSync()[0]!,
          v: Array.from(one.v.dataSync()),
          grad: Array.from(grad.dataSync()),
        };
      }),
    );
    expect(whole.loss.dataSync()[0]).toBeCloseTo(mean(perSample.map((s) => s.loss)), 6);
    expect(whole.displayed.dataSync()[0]).toBeCloseTo(mean(perSample.map((s) => s.displayed)), 6);
    expect(whole.v.dataSync()).toBeCloseToTensor(
      perSample.flatMap((s) => s.v),
      { atol: 1e-6, rtol: 0 },
    );
    expect(gradWhole).toBeCloseToTensor(
      perSample.flatMap((s) => s.grad.map((v) => v / B)),
      { atol: 1e-7, rtol: 1e-6 },
    );
    tf.dispose([q, k, weight, ...(Object.values(whole) as Tensor[])]);
  });

  it('takes an [N, N] weight at batch 1 like [1, N, N], and rejects weights of another geometry', () => {
    const q = tf.tensor2d(qData.subarray(0, N * C), [N, C]);
    const k = tf.tensor2d(kData.subarray(0, N * C), [N, C]);
    const w3 = tf.tensor3d(wData.subarray(0, N * N), [1, N, N]);
    const w2 = tf.tensor2d(wData.subarray(0, N * N), [N, N]);
    const a = patchHdceLoss(tf, q, k, { weight: w3 });
    const b = patchHdceLoss(tf, q, k, { weight: w2 });
    expect(b.v.dataSync()).toBeCloseToTensor(a.v.dataSync(), { atol: 0, rtol: 0 });
    const twoImages = tf.ones([2, N, N]) as Tensor3D;
    expect(() => patchHdceLoss(tf, q, k, { weight: twoImages })).toThrow(InputError);
    const qq = tf.tensor2d(qData, [B * N, C]);
    expect(() => patchHdceLoss(tf, qq, qq, { batchSize: B, weight: w2 })).toThrow(/expected \[2,6,6\]/);
    tf.dispose([q, k, w3, w2, twoImages, qq, ...(Object.values(a) as Tensor[]), ...(Object.values(b) as Tensor[])]);
  });

  it('leaves no tensor behind after a value and gradient computation', () => {
    const q = tf.tensor2d(qData, [B * N, C]);
    const k = tf.tensor2d(kData, [B * N, C]);
    const weight = tf.tensor3d(wData, [B, N, N]);
    const before = tf.memory().numTensors;
    const { value, grad } = tf.valueAndGrad((x: Tensor) => patchHdceLoss(tf, x as Tensor2D, k, { batchSize: B, weight }).reference)(q);
    const out = patchHdceLoss(tf, q, k, { batchSize: B, weight });
    tf.dispose([value, grad, ...(Object.values(out) as Tensor[])]);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([q, k, weight]);
  });
});
