import { seededUniform } from '@scenimefy/test-utils';
import { loadTf } from '@scenimefy/io';
import type { Tensor4D } from '@tensorflow/tfjs-core';
import type { Tf } from '../layers/tf';
import { DOWNSAMPLE_FILTER, UPSAMPLE_FILTER, blurDownsample, blurUpsample } from './blur';

let tf: Tf;
beforeAll(async () => {
  ({ tf } = await loadTf({ prefer: 'cpu' }));
});

type Taps1d = Array<Array<[source: number, weight: number]>>;

/** CUT Downsample along one axis: reflect-pad 1, [1,2,1]/4, stride 2. */
function downsampleTaps(n: number): Taps1d {
  const reflect = (j: number) => (j < 0 ? -j : j >= n ? 2 * (n - 1) - j : j);
  return Array.from({ length: Math.ceil(n / 2) }, (_, i) => [
    [reflect(2 * i - 1), 0.25],
    [reflect(2 * i), 0.5],
    [reflect(2 * i + 1), 0.25],
  ]);
}

/** PyTorch F.interpolate(scale_factor=2, mode='bilinear', align_corners=False) along one axis. */
function bilinearTaps(n: number): Taps1d {
  return Array.from({ length: 2 * n }, (_, o) => {
    const src = Math.max((o + 0.5) / 2 - 0.5, 0);
    const i0 = Math.floor(src);
    const i1 = Math.min(i0 + 1, n - 1);
    const l1 = src - i0;
    return [
      [i0, 1 - l1],
      [i1, l1],
    ];
  });
}

/** y = A x and the adjoint Aᵀ r for a separable per-channel map on NHWC data, in float64. */
function separable(rows: Taps1d, cols: Taps1d, [b, h, w, c]: readonly number[]) {
  const H = rows.length;
  const W = cols.length;
  const forward = (x: Float32Array) => {
    const y = new Float64Array(b! * H * W * c!);
    for (let n = 0; n < b!; n++)
      for (let i = 0; i < H; i++)
        for (let j = 0; j < W; j++)
          for (const [si, wi] of rows[i]!)
            for (const [sj, wj] of cols[j]!)
              for (let k = 0; k < c!; k++) y[((n * H + i) * W + j) * c! + k]! += wi * wj * x[((n * h! + si) * w! + sj) * c! + k]!;
    return y;
  };
  const adjoint = (r: Float32Array) => {
    const g = new Float64Array(b! * h! * w! * c!);
    for (let n = 0; n < b!; n++)
      for (let i = 0; i < H; i++)
        for (let j = 0; j < W; j++)
          for (const [si, wi] of rows[i]!)
            for (const [sj, wj] of cols[j]!)
              for (let k = 0; k < c!; k++) g[((n * h! + si) * w! + sj) * c! + k]! += wi * wj * r[((n * H + i) * W + j) * c! + k]!;
    return g;
  };
  return { forward, adjoint, outShape: [b!, H, W, c!] };
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

describe.each([
  ['blurDownsample', blurDownsample, downsampleTaps],
  ['blurUpsample', blurUpsample, bilinearTaps],
] as const)('%s', (_name, layer, taps1d) => {
  // Odd and even sizes, and a 1-pixel-wide axis for the upsampler's edge handling.
  const shapes: Array<[number, number, number, number]> =
    layer === blurDownsample
      ? [
          [2, 6, 8, 3],
          [1, 5, 7, 2],
        ]
      : [
          [2, 4, 6, 3],
          [1, 3, 1, 2],
        ];

  it.each(shapes)('matches the reference map on [%i,%i,%i,%i] (values and input gradient)', (...shape) => {
    const ref = separable(taps1d(shape[1]), taps1d(shape[2]), shape);
    const x = seededUniform(
      17,
      shape.reduce((a, d) => a * d, 1),
    );
    const r = seededUniform(
      19,
      ref.outShape.reduce((a, d) => a * d, 1),
    );
    const xt = tf.tensor4d(x, shape);
    const rt = tf.tensor4d(r, ref.outShape as [number, number, number, number]);
    const y = layer(tf, xt);
    expect(y.shape).toEqual(ref.outShape);
    expect(maxAbsDiff(y.dataSync(), ref.forward(x))).toBeLessThan(1e-6);
    const g = tf.grad((t) => tf.sum(tf.mul(layer(tf, t as Tensor4D), rt)))(xt);
    expect(maxAbsDiff(g.dataSync(), ref.adjoint(r))).toBeLessThan(1e-5);
    tf.dispose([xt, rt, y, g]);
  });

  it('leaves no tensors behind', () => {
    const xt = tf.ones([1, 4, 4, 2]) as Tensor4D;
    const before = tf.memory().numTensors;
    const y = layer(tf, xt);
    expect(tf.memory().numTensors).toBe(before + 1);
    tf.dispose([xt, y]);
  });
});

describe('filter buffers', () => {
  it('are the reference filt values', () => {
    expect(Array.from(DOWNSAMPLE_FILTER).map((v) => v * 16)).toEqual([1, 2, 1, 2, 4, 2, 1, 2, 1]);
    expect(Array.from(UPSAMPLE_FILTER).map((v) => v * 16)).toEqual([1, 3, 3, 1, 3, 9, 9, 3, 3, 9, 9, 3, 1, 3, 3, 1]);
  });
});
