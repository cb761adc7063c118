import { seededUniform } from '@scenimefy/test-utils';
import { InputError, UsageError, loadTf } from '@scenimefy/io';
import type { Tensor, Tensor4D } from '@tensorflow/tfjs-core';
import { reflectPad2d } from './reflect-pad';
import type { Tf } from './tf';

let tf: Tf;
beforeAll(async () => {
  ({ tf } = await loadTf({ prefer: 'cpu' }));
});

/** PyTorch ReflectionPad2d's index map: padded index → source index along an axis of length n. */
function reflectIndex(i: number, before: number, n: number): number {
  let j = i - before;
  if (j < 0) j = -j;
  if (j >= n) j = 2 * (n - 1) - j;
  return j;
}

describe('reflectPad2d', () => {
  const shape: [number, number, number, number] = [2, 4, 5, 3];
  const pads = [2, 1, 3, 2] as const; // top, bottom, left, right

  it('matches ReflectionPad2d index for index', () => {
    const [b, h, w, c] = shape;
    const data = seededUniform(7, b * h * w * c);
    const y = tf.tidy(() => reflectPad2d(tf, tf.tensor4d(data, shape), pads));
    const H = h + pads[0] + pads[1];
    const W = w + pads[2] + pads[3];
    expect(y.shape).toEqual([b, H, W, c]);
    const got = y.dataSync();
    y.dispose();
    for (let n = 0; n < b; n++)
      for (let i = 0; i < H; i++)
        for (let j = 0; j < W; j++)
          for (let k = 0; k < c; k++) {
            const src = ((n * h + reflectIndex(i, pads[0], h)) * w + reflectIndex(j, pads[2], w)) * c + k;
            expect(got[((n * H + i) * W + j) * c + k]).toBe(data[src]);
          }
  });

  it('gives the gradient of sum over a 1x4 row padded by 2 as [1,3,3,1]', () => {
    const x = tf.tensor4d([0.1, -0.2, 0.3, 0.4], [1, 1, 4, 1]);
    const g = tf.grad((t) => tf.sum(reflectPad2d(tf, t as Tensor4D, [0, 0, 2, 2])))(x);
    expect(Array.from(g.dataSync())).toEqual([1, 3, 3, 1]);
    tf.dispose([x, g]);
  });

  it('gives the gradient of a weighted sum: exact fold of the weights, and finite differences agree', () => {
    const [b, h, w, c] = shape;
    const H = h + pads[0] + pads[1];
    const W = w + pads[2] + pads[3];
    const xData = seededUniform(11, b * h * w * c);
    const rData = seededUniform(13, b * H * W * c);
    const r = tf.tensor4d(rData, [b, H, W, c]);
    const loss = (t: Tensor) => tf.sum(tf.mul(reflectPad2d(tf, t as Tensor4D, pads), r));
    const x = tf.tensor4d(xData, shape);
    const g = tf.grad(loss)(x);
    const grad = g.dataSync();

    const expected = new Float64Array(xData.length);
    for (let n = 0; n < b; n++)
      for (let i = 0; i < H; i++)
        for (let j = 0; j < W; j++)
          for (let k = 0; k < c; k++)
            expected[((n * h + reflectIndex(i, pads[0], h)) * w + reflectIndex(j, pads[2], w)) * c + k]! += rData[
              ((n * H + i) * W + j) * c + k
            ] as number;
    for (let i = 0; i < expected.length; i++) expect(Math.abs((grad[i] as number) - (expected[i] as number))).toBeLessThan(1e-5);

    // Central differences on a few entries, incl. corners that are copied three times.
    const eps = 1e-2;
    for (const index of [0, 4, w * c - 1, 17, xData.length - 1]) {
      const plus = Float32Array.from(xData);
      const minus = Float32Array.from(xData);
      plus[index] = (plus[index] as number) + eps;
      minus[index] = (minus[index] as number) - eps;
      const fd = tf.tidy(
        () => (loss(tf.tensor4d(plus, shape)).dataSync()[0]! - loss(tf.tensor4d(minus, shape)).dataSync()[0]!) / (2 * eps),
      );
      expect(Math.abs(fd - (grad[index] as number))).toBeLessThan(2e-3);
    }
    tf.dispose([r, x, g]);
  });

  it('rejects a padding as large as the axis it pads, as PyTorch does', () => {
    const x = tf.zeros([1, 3, 8, 1]) as Tensor4D;
    expect(() => reflectPad2d(tf, x, [3, 0, 0, 0])).toThrow(InputError);
    expect(() => reflectPad2d(tf, x, [3, 0, 0, 0])).toThrow(/padding \[3, 0, 0, 0\] needs H and W larger than it, got 3x8/);
    expect(() => reflectPad2d(tf, x, -1)).toThrow(UsageError);
    x.dispose();
  });
});
