import { seededUniform } from '@scenimefy/test-utils';
import { loadTf } from '@scenimefy/io';
import type { Tensor4D } from '@tensorflow/tfjs-core';
import { INSTANCE_NORM_EPS, instanceNorm2d } from './instance-norm';
import type { Tf } from './tf';

let tf: Tf;
beforeAll(async () => {
  ({ tf } = await loadTf({ prefer: 'cpu' }));
});

/** Float64 instance norm of NHWC data and its input gradient for the loss Σ y·r. */
function referenceInstanceNorm(x: Float32Array, r: Float32Array, [b, h, w, c]: readonly number[], eps: number) {
  const y = new Float64Array(x.length);
  const dx = new Float64Array(x.length);
  const m = h! * w!;
  for (let n = 0; n < b!; n++)
    for (let k = 0; k < c!; k++) {
      const at = (p: number) => (n * m + p) * c! + k;
      let mean = 0;
      for (let p = 0; p < m; p++) mean += x[at(p)]!;
      mean /= m;
      let variance = 0;
      for (let p = 0; p < m; p++) variance += (x[at(p)]! - mean) ** 2;
      variance /= m; // biased, as InstanceNorm2d
      const inv = 1 / Math.sqrt(variance + eps);
      let meanR = 0;
      let meanRY = 0;
      for (let p = 0; p < m; p++) {
        y[at(p)] = (x[at(p)]! - mean) * inv;
        meanR += r[at(p)]! / m;
        meanRY += (r[at(p)]! * y[at(p)]!) / m;
      }
      for (let p = 0; p < m; p++) dx[at(p)] = inv * (r[at(p)]! - meanR - y[at(p)]! * meanRY);
    }
  return { y, dx };
}

describe('instanceNorm2d', () => {
  const shape = [2, 5, 7, 3] as const;
  // Offsets and scales per channel so the statistics matter; channel 2 is nearly constant so eps matters.
  const raw = seededUniform(
    3,
    shape.reduce((a, d) => a * d, 1),
  );
  const x = raw.map((v, i) => (i % 3 === 2 ? 2e-3 * v + 0.5 : (i % 3 === 0 ? 3 : 0.25) * v - 1.5));
  const r = seededUniform(5, raw.length);

  it('normalises each sample and channel over H×W with the biased variance and eps 1e-5', () => {
    const ref = referenceInstanceNorm(x, r, shape, 1e-5);
    expect(INSTANCE_NORM_EPS).toBe(1e-5);
    const y = tf.tidy(() => instanceNorm2d(tf, tf.tensor4d(x, [...shape])));
    const got = y.dataSync();
    y.dispose();
    let maxDiff = 0;
    for (let i = 0; i < got.length; i++) maxDiff = Math.max(maxDiff, Math.abs(got[i]! - ref.y[i]!));
    expect(maxDiff).toBeLessThan(1e-5);
  });

  it('has the analytic input gradient', () => {
    const ref = referenceInstanceNorm(x, r, shape, 1e-5);
    const rt = tf.tensor4d(r, [...shape]);
    const xt = tf.tensor4d(x, [...shape]);
    const g = tf.grad((t) => tf.sum(tf.mul(instanceNorm2d(tf, t as Tensor4D), rt)))(xt);
    const got = g.dataSync();
    let maxDiff = 0;
    let maxRef = 0;
    for (let i = 0; i < got.length; i++) {
      maxDiff = Math.max(maxDiff, Math.abs(got[i]! - ref.dx[i]!));
      maxRef = Math.max(maxRef, Math.abs(ref.dx[i]!));
    }
    // The near-constant channel has gradients ~1/sqrt(var+eps) ≈ 300; compare relative to the largest.
    expect(maxDiff / maxRef).toBeLessThan(1e-5);
    tf.dispose([rt, xt, g]);
  });

  it('leaves no tensors behind', () => {
    const xt = tf.tensor4d(x, [...shape]);
    const before = tf.memory().numTensors;
    const y = instanceNorm2d(tf, xt);
    expect(tf.memory().numTensors).toBe(before + 1);
    tf.dispose([xt, y]);
  });
});
