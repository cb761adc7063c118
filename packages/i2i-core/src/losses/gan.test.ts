import { InputError, loadTf } from '@scenimefy/io';
import { seededUniform } from '@scenimefy/test-utils';
import type { Tensor } from '@tensorflow/tfjs-core';
import type { Tf } from '../layers/tf';
import { LSGAN_FAKE_LABEL, LSGAN_REAL_LABEL, lsganDiscriminatorLoss, lsganGeneratorLoss, lsganLoss } from './gan';

let tf: Tf;
beforeAll(async () => {
  ({ tf } = await loadTf({ prefer: 'cpu' }));
});

/** A PatchGAN-like score map [B, 1, H, W] from a seeded LCG, values in (−2, 2). */
function scores(seed: number, shape: [number, number, number, number]): Float32Array {
  return seededUniform(
    seed,
    shape.reduce((a, d) => a * d, 1),
    -2,
    2,
  );
}

const mse = (p: ArrayLike<number>, label: number) => Array.from(p).reduce((s, v) => s + (v - label) ** 2, 0) / p.length;
const shape: [number, number, number, number] = [2, 1, 6, 5];

describe('LSGAN losses', () => {
  const fakeData = scores(51, shape);
  const realData = scores(52, shape);

  it('is the mean squared error against a map of 1.0 (real) or 0.0 (fake)', () => {
    expect([LSGAN_REAL_LABEL, LSGAN_FAKE_LABEL]).toEqual([1, 0]);
    const p = tf.tensor4d(fakeData, shape);
    const real = lsganLoss(tf, p, true);
    const fake = lsganLoss(tf, p, false);
    expect(real.dataSync()[0]).toBeCloseTo(mse(fakeData, 1), 6);
    expect(fake.dataSync()[0]).toBeCloseTo(mse(fakeData, 0), 6);
    tf.dispose([p, real, fake]);
  });

  it('gives L_D = ½[fake → 0 + real → 1] with both halves, and G_GAN = fake → 1', () => {
    const pf = tf.tensor4d(fakeData, shape);
    const pr = tf.tensor4d(realData, shape);
    const d = lsganDiscriminatorLoss(tf, pf, pr);
    expect(d.fake.dataSync()[0]).toBeCloseTo(mse(fakeData, 0), 6);
    expect(d.real.dataSync()[0]).toBeCloseTo(mse(realData, 1), 6);
    expect(d.loss.dataSync()[0]).toBeCloseTo(0.5 * (mse(fakeData, 0) + mse(realData, 1)), 6);
    const g = lsganGeneratorLoss(tf, pf);
    expect(g.dataSync()[0]).toBeCloseTo(mse(fakeData, 1), 6);
    tf.dispose([pf, pr, d.loss, d.fake, d.real, g]);
  });

  it('has the gradient 2(p − label)/n towards the scores', () => {
    const pf = tf.tensor4d(fakeData, shape);
    const pr = tf.tensor4d(realData, shape);
    const n = fakeData.length;
    const [gf, gr] = tf.grads((a: Tensor, b: Tensor) => lsganDiscriminatorLoss(tf, a, b).loss)([pf, pr]);
    expect(gf!.dataSync()).toBeCloseToTensor(
      Array.from(fakeData, (v) => (0.5 * 2 * v) / n),
      { atol: 1e-7, rtol: 1e-6 },
    );
    expect(gr!.dataSync()).toBeCloseToTensor(
      Array.from(realData, (v) => (0.5 * 2 * (v - 1)) / n),
      { atol: 1e-7, rtol: 1e-6 },
    );
    const gg = tf.grad((a: Tensor) => lsganGeneratorLoss(tf, a))(pf);
    expect(gg.dataSync()).toBeCloseToTensor(
      Array.from(fakeData, (v) => (2 * (v - 1)) / n),
      { atol: 1e-7, rtol: 1e-6 },
    );
    tf.dispose([pf, pr, gf!, gr!, gg]);
  });

  it('rejects an empty score map', () => {
    const empty = tf.zeros([1, 1, 0, 4]);
    expect(() => lsganLoss(tf, empty, true)).toThrow(InputError);
    empty.dispose();
  });

  it('leaves no tensor behind after a value and gradient computation', () => {
    const pf = tf.tensor4d(fakeData, shape);
    const pr = tf.tensor4d(realData, shape);
    const before = tf.memory().numTensors;
    const { value, grads } = tf.valueAndGrads((a: Tensor, b: Tensor) => lsganDiscriminatorLoss(tf, a, b).loss)([pf, pr]);
    const d = lsganDiscriminatorLoss(tf, pf, pr);
    const g = tf.valueAndGrad((a: Tensor) => lsganGeneratorLoss(tf, a))(pf);
    tf.dispose([value, ...grads, d.loss, d.fake, d.real, g.value, g.grad]);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([pf, pr]);
  });
});
