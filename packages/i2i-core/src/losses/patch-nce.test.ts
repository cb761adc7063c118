import { InputError, UsageError, loadTf } from '@scenimefy/io';
import { seededUnitRows } from '@scenimefy/test-utils';
import type { Tensor, Tensor2D } from '@tensorflow/tfjs-core';
import type { Tf } from '../layers/tf';
import { NCE_DIAGONAL_FILL, NCE_TEMPERATURE, patchNceLoss } from './patch-nce';

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

/** Float64 PatchNCE per row, written from the reference definition (patchnce.py), one image block at a time. */
function referencePerRow(q: ArrayLike<number>, k: ArrayLike<number>, b: number, n: number, c: number, tau: number): number[] {
  const out: number[] = [];
  for (let img = 0; img < b; img++) {
    for (let i = 0; i < n; i++) {
      const row = img * n + i;
      const logits = [dot(q, row, k, row, c) / tau];
      for (let j = 0; j < n; j++) logits.push((j === i ? -10 : dot(q, row, k, img * n + j, c)) / tau);
      const m = Math.max(...logits);
      const lse = m + Math.log(logits.reduce((s, l) => s + Math.exp(l - m), 0));
      out.push(lse - logits[0]!);
    }
  }
  return out;
}

const mean = (v: number[]) => v.reduce((s, x) => s + x, 0) / v.length;

describe('patchNceLoss', () => {
  const [B, N, C] = [3, 6, 5];
  const qData = unitRows(11, B * N, C);
  const kData = unitRows(12, B * N, C);

  it('matches a float64 CE over [q_i·k_i, q_i·k_j (diagonal −10)]/τ per image, and the mean', () => {
    // At τ = 5 the −10 fill is a logit of −2, so the fill value itself shows in the result.
    for (const tau of [NCE_TEMPERATURE, 0.2, 5]) {
      const expected = referencePerRow(qData, kData, B, N, C, tau);
      const { loss, perRow } = tf.tidy(() =>
        patchNceLoss(tf, tf.tensor2d(qData, [B * N, C]), tf.tensor2d(kData, [B * N, C]), { tau, batchSize: B }),
      );
      expect(perRow.shape).toEqual([B * N]);
      expect(perRow.dataSync()).toBeCloseToTensor(expected, { atol: 2e-5, rtol: 1e-6 });
      expect(loss.dataSync()[0]).toBeCloseTo(mean(expected), 5);
      tf.dispose([loss, perRow]);
    }
    expect(NCE_TEMPERATURE).toBe(0.07);
    expect(NCE_DIAGONAL_FILL).toBe(-10);
  });

  it('has the gradient of the float64 definition (central differences)', () => {
    const q = tf.tensor2d(qData, [B * N, C]);
    const k = tf.tensor2d(kData, [B * N, C]);
    const g = tf.grad((x: Tensor) => patchNceLoss(tf, x as Tensor2D, k, { batchSize: B }).loss)(q);
    const h = 1e-6;
    const fd = Array.from(qData, (_, idx) => {
      const plus = Float64Array.from(qData);
      const minus = Float64Array.from(qData);
      plus[idx]! += h;
      minus[idx]! -= h;
      return (
        (mean(referencePerRow(plus, kData, B, N, C, NCE_TEMPERATURE)) - mean(referencePerRow(minus, kData, B, N, C, NCE_TEMPERATURE))) /
        (2 * h)
      );
    });
    expect(g.dataSync()).toBeCloseToTensor(fd, { atol: 2e-5, rtol: 1e-4 });
    tf.dispose([q, k, g]);
  });

  it('at batch B equals the mean of B separate batch-1 computations (values and gradients)', () => {
    const q = tf.tensor2d(qData, [B * N, C]);
    const k = tf.tensor2d(kData, [B * N, C]);
    const whole = patchNceLoss(tf, q, k, { batchSize: B });
    const gradWhole = tf
      .grad((x: Tensor) => patchNceLoss(tf, x as Tensor2D, k, { batchSize: B }).loss)(q)
      .dataSync();
    const perSample = Array.from({ length: B }, (_, b) =>
      tf.tidy(() => {
        const qb = tf.slice(q, [b * N, 0], [N, C]);
        const kb = tf.slice(k, [b * N, 0], [N, C]);
        const one = patchNceLoss(tf, qb, kb);
        const grad = tf.grad((x: Tensor) => patchNceLoss(tf, x as Tensor2D, kb).loss)(qb);
        return {
          loss: one.loss.dataSync()[0]!,
          perRow: Array.from(one.perRow.dataSync()),
          grad: Array.from(grad.dataSync()),
        };
      }),
    );
    expect(whole.loss.dataSync()[0]).toBeCloseTo(mean(perSample.map((s) => s.loss)), 6);
    expect(whole.perRow.dataSync()).toBeCloseToTensor(
      perSample.flatMap((s) => s.perRow),
      { atol: 1e-6, rtol: 0 },
    );
    // d(mean over B)/dq_b = (1/B)·d(loss_b)/dq_b: each image only sees its own rows.
    expect(gradWhole).toBeCloseToTensor(
      perSample.flatMap((s) => s.grad.map((v) => v / B)),
      { atol: 1e-7, rtol: 1e-6 },
    );
    tf.dispose([q, k, whole.loss, whole.perRow]);
  });

  it('detaches the keys: no gradient reaches k', () => {
    const q = tf.tensor2d(qData, [B * N, C]);
    const k = tf.tensor2d(kData, [B * N, C]);
    const [gq, gk] = tf.grads((a: Tensor, b: Tensor) => patchNceLoss(tf, a as Tensor2D, b as Tensor2D, { batchSize: B }).loss)([q, k]);
    expect(Math.max(...Array.from(gq!.dataSync(), Math.abs))).toBeGreaterThan(1e-3);
    expect(Array.from(gk!.dataSync()).every((v) => v === 0)).toBe(true);
    tf.dispose([q, k, gq!, gk!]);
  });

  it('rejects features that are not matching (B·N)×C matrices and bad options', () => {
    const q = tf.zeros([6, 4]) as Tensor2D;
    const k3 = tf.zeros([6, 3]) as Tensor2D;
    const r3 = tf.zeros([1, 6, 4]) as unknown as Tensor2D;
    expect(() => patchNceLoss(tf, q, k3)).toThrow(InputError);
    expect(() => patchNceLoss(tf, r3, r3)).toThrow(InputError);
    expect(() => patchNceLoss(tf, q, q, { batchSize: 4 })).toThrow(/6 feature rows do not split into batchSize 4/);
    expect(() => patchNceLoss(tf, q, q, { batchSize: 0 })).toThrow(UsageError);
    expect(() => patchNceLoss(tf, q, q, { tau: 0 })).toThrow(UsageError);
    tf.dispose([q, k3, r3]);
  });

  it('leaves no tensor behind after a value and gradient computation', () => {
    const q = tf.tensor2d(qData, [B * N, C]);
    const k = tf.tensor2d(kData, [B * N, C]);
    const before = tf.memory().numTensors;
    const { value, grad } = tf.valueAndGrad((x: Tensor) => patchNceLoss(tf, x as Tensor2D, k, { batchSize: B }).loss)(q);
    const out = patchNceLoss(tf, q, k, { batchSize: B });
    tf.dispose([value, grad, out.loss, out.perRow]);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([q, k]);
  });
});
