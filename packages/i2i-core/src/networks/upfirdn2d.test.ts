import { loadTf } from '@scenimefy/io';
import { seededUniform } from '@scenimefy/test-utils';
import type { Tensor, Tensor4D } from '@tensorflow/tfjs-core';
import type { Tf } from '../layers/tf';
import {
  STYLEGAN2_BLUR_KERNEL,
  firBlur2d,
  firBlurPadAfterUpsampleConv,
  firBlurPadBeforeDownsampleConv,
  firDownsample2d,
  firDownsamplePad,
  firUpsample2d,
  firUpsamplePad,
  makeFirKernel,
  upfirdn2d,
} from './upfirdn2d';
import type { FirKernel, UpFirDn2dOptions } from './upfirdn2d';

let tf: Tf;
/** Switches the backend for the describe block it is called in (blocks run one after another). */
function useBackend(backend: 'cpu' | 'wasm'): void {
  beforeAll(async () => {
    ({ tf } = await loadTf({ prefer: backend, require: true }));
  });
}
/** The kernels upfirdn2d runs on (pad, slice, reshape, depthwise conv with explicit padding) differ per backend. */
const BACKENDS = ['cpu', 'wasm'] as const;

/** float32 results against the float64 loops below: |y| ≲ 3 from at most 25 taps, so rounding stays ≲ 1e-6. */
const ATOL = 1e-5;

interface Plan {
  upX: number;
  upY: number;
  downX: number;
  downY: number;
  x0: number;
  x1: number;
  y0: number;
  y1: number;
}

function planOf(o: UpFirDn2dOptions): Plan {
  const pair = (v: number | readonly [number, number] | undefined): [number, number] =>
    v === undefined ? [1, 1] : typeof v === 'number' ? [v, v] : [v[0], v[1]];
  const [upX, upY] = pair(o.up);
  const [downX, downY] = pair(o.down);
  const p = o.pad ?? [0, 0];
  const [x0, x1, y0, y1] = p.length === 2 ? [p[0], p[1], p[0], p[1]] : p;
  return { upX, upY, downX, downY, x0: x0!, x1: x1!, y0: y0!, y1: y1! };
}

/**
 * upfirdn2d_native as a linear map per image plane, followed step by step: for output (o, q) and kernel tap
 * (a, b) of the flipped kernel, the position in the cropped padded upsampled plane is (o·downY + a, q·downX + b);
 * undo the crop, then the pad; a position that is a multiple of `up` inside the upsampled plane is input sample
 * position / up, any other is an inserted or padded zero.
 */
function referenceTaps(h: number, w: number, k: ArrayLike<number>, kh: number, kw: number, p: Plan) {
  const lh = h * p.upY + p.y0 + p.y1;
  const lw = w * p.upX + p.x0 + p.x1;
  const outH = Math.floor((lh - kh) / p.downY) + 1;
  const outW = Math.floor((lw - kw) / p.downX) + 1;
  const taps: Array<Array<[number, number]>> = [];
  for (let o = 0; o < outH; o++)
    for (let q = 0; q < outW; q++) {
      const list: Array<[number, number]> = [];
      for (let a = 0; a < kh; a++)
        for (let b = 0; b < kw; b++) {
          // Cropped → padded (the crop removed max(-pad0, 0) leading samples) → upsampled (pad added max(pad0, 0)).
          const ui = o * p.downY + a + Math.max(-p.y0, 0) - Math.max(p.y0, 0);
          const uj = q * p.downX + b + Math.max(-p.x0, 0) - Math.max(p.x0, 0);
          if (ui < 0 || uj < 0 || ui >= h * p.upY || uj >= w * p.upX || ui % p.upY !== 0 || uj % p.upX !== 0) continue;
          // True convolution: tap (a, b) of the window meets kernel entry (kh−1−a, kw−1−b).
          list.push([(ui / p.upY) * w + uj / p.upX, k[(kh - 1 - a) * kw + (kw - 1 - b)]!]);
        }
      taps.push(list);
    }
  return { taps, outH, outW };
}

/** Forward and adjoint of upfirdn2d on NCHW data in float64, from `referenceTaps`. */
function reference(shape: readonly number[], kernel: FirKernel, options: UpFirDn2dOptions) {
  const [n, c, h, w] = shape as [number, number, number, number];
  let k: ArrayLike<number>;
  let kh: number;
  let kw: number;
  if ('shape' in kernel) [k, kh, kw] = [kernel.data, kernel.shape[0], kernel.shape[1]];
  else {
    // The 1-D form stands for outer(k, k).
    const taps = Array.from(kernel);
    k = taps.flatMap((a) => taps.map((b) => a * b));
    kh = kw = taps.length;
  }
  const { taps, outH, outW } = referenceTaps(h, w, k, kh, kw, planOf(options));
  const planes = n * c;
  const forward = (x: ArrayLike<number>): Float64Array => {
    const y = new Float64Array(planes * outH * outW);
    for (let s = 0; s < planes; s++)
      taps.forEach((list, o) => {
        for (const [i, wt] of list) y[s * outH * outW + o]! += wt * x[s * h * w + i]!;
      });
    return y;
  };
  const adjoint = (r: ArrayLike<number>): Float64Array => {
    const g = new Float64Array(planes * h * w);
    for (let s = 0; s < planes; s++)
      taps.forEach((list, o) => {
        for (const [i, wt] of list) g[s * h * w + i]! += wt * r[s * outH * outW + o]!;
      });
    return g;
  };
  return { forward, adjoint, outShape: [n, c, outH, outW] };
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

const toNhwc = (d: ArrayLike<number>, [n, c, h, w]: readonly number[]): Float32Array => {
  const out = new Float32Array(d.length);
  for (let s = 0; s < n!; s++)
    for (let ch = 0; ch < c!; ch++) for (let i = 0; i < h! * w!; i++) out[(s * h! * w! + i) * c! + ch] = d[(s * c! + ch) * h! * w! + i]!;
  return out;
};
const fromNhwc = (d: ArrayLike<number>, [n, c, h, w]: readonly number[]): Float32Array => {
  const out = new Float32Array(d.length);
  for (let s = 0; s < n!; s++)
    for (let ch = 0; ch < c!; ch++) for (let i = 0; i < h! * w!; i++) out[(s * c! + ch) * h! * w! + i] = d[(s * h! * w! + i) * c! + ch]!;
  return out;
};

/** An asymmetric kernel, so a missing or doubled flip shows. */
const ASYMMETRIC_3x2: FirKernel = { data: [0.5, -1, 2, 0.25, -0.75, 1.5], shape: [3, 2] };

const CASES: Array<[string, number[], FirKernel, UpFirDn2dOptions]> = [
  ['Blur of the D ResBlock: [1,3,3,1], pad 2', [2, 3, 7, 5], makeFirKernel([1, 3, 3, 1]), { pad: [2, 2] }],
  ['Upsample: [1,3,3,1]·4, up 2, pad (2, 1)', [1, 3, 5, 6], makeFirKernel([1, 3, 3, 1], 2), { up: 2, pad: [2, 1] }],
  ['Downsample: [1,3,3,1], down 2, pad (1, 1), odd sizes', [2, 2, 9, 7], makeFirKernel([1, 3, 3, 1]), { down: 2, pad: [1, 1] }],
  ['asymmetric 3×2, up 3, down 2, mixed pads', [2, 2, 4, 5], ASYMMETRIC_3x2, { up: 3, down: 2, pad: [1, -1, 2, 0] }],
  ['asymmetric 3×2, negative pads on both sides', [1, 2, 6, 7], ASYMMETRIC_3x2, { pad: [-2, 3, 1, -1] }],
  // The crop reaches past the input into the other side's padding, as the reference allows: all zeros along x.
  ['a crop reaching into the other side’s padding', [1, 1, 4, 4], ASYMMETRIC_3x2, { pad: [-5, 6, 2, -1] }],
  [
    'per-axis factors: up [2, 1], down [1, 3]',
    [1, 2, 8, 5],
    { data: [1, -2, 3, 0.5], shape: [4, 1] },
    { up: [2, 1], down: [1, 3], pad: [0, 1, 2, 1] },
  ],
  ['1×1 kernel, up 2 and down 2', [2, 1, 3, 5], { data: [1.5], shape: [1, 1] }, { up: 2, down: 2 }],
  ['1-D separable kernel, up 2, pad (1, 2)', [2, 3, 5, 4], [0.3, -0.5, 1.2], { up: 2, pad: [1, 2] }],
  ['1-D separable kernel, down 3, pad (2, 0, 1, 1)', [1, 2, 10, 8], [0.25, 0.5, 0.25, -0.125], { down: 3, pad: [2, 0, 1, 1] }],
  ['a 1×1 image, up 4, 5×5 kernel', [3, 1, 1, 1], makeFirKernel([1, 4, 6, 4, 1], 4), { up: 4, pad: [2, 2] }],
  ['a 1×n strip, down 2', [1, 2, 1, 9], { data: [1, 2, 1], shape: [1, 3] }, { down: 2, pad: [0, 0, 0, 0] }],
];

describe.each(BACKENDS.flatMap((b) => (['NCHW', 'NHWC'] as const).map((f) => [b, f] as const)))(
  'upfirdn2d (%s backend, %s) against a loop implementation of upfirdn2d_native',
  (backend, dataFormat) => {
    useBackend(backend);
    it.each(CASES)('%s', (_name, shape, kernel, options) => {
      const ref = reference(shape, kernel, options);
      const x = seededUniform(
        11,
        shape.reduce((a, b) => a * b, 1),
        -1,
        1,
      );
      const r = seededUniform(
        12,
        ref.outShape.reduce((a, b) => a * b, 1),
        -1,
        1,
      );
      const layout = (d: ArrayLike<number>, s: readonly number[]) => (dataFormat === 'NHWC' ? toNhwc(d, s) : Float32Array.from(d));
      const back = (d: ArrayLike<number>, s: readonly number[]) => (dataFormat === 'NHWC' ? fromNhwc(d, s) : Float32Array.from(d));
      const [n, c, h, w] = shape as [number, number, number, number];
      const [, , oh, ow] = ref.outShape as [number, number, number, number];
      const inShape: [number, number, number, number] = dataFormat === 'NHWC' ? [n, h, w, c] : [n, c, h, w];
      const rShape: [number, number, number, number] = dataFormat === 'NHWC' ? [n, oh, ow, c] : [n, c, oh, ow];
      const xt = tf.tensor4d(layout(x, shape), inShape);
      const rt = tf.tensor4d(layout(r, ref.outShape), rShape);
      const f = (t: Tensor4D) => upfirdn2d(tf, t, kernel, { ...options, dataFormat });

      const y = f(xt);
      expect(y.shape).toEqual(rShape);
      expect(maxAbsDiff(back(y.dataSync(), ref.outShape), ref.forward(x))).toBeLessThanOrEqual(ATOL);

      // The gradient of Σ r·y is the adjoint applied to r, for every input entry.
      const g = tf.grad((t: Tensor) => tf.sum(tf.mul(f(t as Tensor4D), rt)))(xt);
      expect(maxAbsDiff(back(g.dataSync(), shape), ref.adjoint(r))).toBeLessThanOrEqual(ATOL);
      tf.dispose([xt, rt, y, g]);
    });
  },
);

describe.each(BACKENDS)('upfirdn2d gradients (%s backend)', (backend) => {
  useBackend(backend);
  /**
   * Central differences of L = ½ Σ r·y² at a few entries: L is quadratic in x, so the difference quotient is
   * exact but for float32 rounding of L (≈ 100 terms of ≲ 1: ~1e-5 absolute) divided by 2ε = 0.5.
   */
  it('match central differences of a quadratic objective (ε 0.25, atol 1e-4)', () => {
    const [, shape, kernel, options] = CASES[3]!;
    const ref = reference(shape, kernel, options);
    const x = seededUniform(
      21,
      shape.reduce((a, b) => a * b, 1),
      -1,
      1,
    );
    const r = tf.tensor4d(
      seededUniform(
        22,
        ref.outShape.reduce((a, b) => a * b, 1),
        -1,
        1,
      ),
      ref.outShape as [number, number, number, number],
    );
    const loss = (t: Tensor) => tf.mul(0.5, tf.sum(tf.mul(r, tf.square(upfirdn2d(tf, t as Tensor4D, kernel, options)))));
    const xt = tf.tensor4d(x, shape as [number, number, number, number]);
    const g = tf.grad(loss)(xt).dataSync();
    const eps = 0.25;
    for (const i of [0, 7, 19, 33, x.length - 1]) {
      const at = (d: number) => {
        const moved = x.slice();
        moved[i]! += d;
        return loss(tf.tensor4d(moved, shape as [number, number, number, number])).dataSync()[0]!;
      };
      const fd = (at(eps) - at(-eps)) / (2 * eps);
      expect(Math.abs(fd - g[i]!)).toBeLessThanOrEqual(1e-4);
    }
  });

  /**
   * A gradient penalty differentiates a gradient: R(x) = Σ (∂L/∂x)² with L = Σ r·sin(upfirdn2d(x)), whose
   * own gradient runs through the gradient of upfirdn2d. In float64: with y = A x and g = Aᵀ(r·cos y),
   * ∂R/∂x = Aᵀ(−r·sin y · A(2g)), checked here first against central differences of R, then against TF.js.
   */
  it.each([CASES[0]!, CASES[1]!, CASES[2]!, CASES[3]!, CASES[8]!])(
    'has a right second-order gradient: %s',
    (_name, shape, kernel, options) => {
      const ref = reference(shape, kernel, options);
      const nIn = shape.reduce((a, b) => a * b, 1);
      const nOut = ref.outShape.reduce((a, b) => a * b, 1);
      const x = seededUniform(31, nIn, -1, 1);
      const r = seededUniform(32, nOut, -1, 1);
      const penalty64 = (v: ArrayLike<number>): { value: number; grad: Float64Array } => {
        const y = ref.forward(v);
        const g = ref.adjoint(y.map((yi, i) => r[i]! * Math.cos(yi)));
        const ag = ref.forward(g.map((gi) => 2 * gi));
        const grad = ref.adjoint(y.map((yi, i) => -r[i]! * Math.sin(yi) * ag[i]!));
        return { value: g.reduce((s, gi) => s + gi * gi, 0), grad };
      };
      const want = penalty64(x).grad;
      for (const i of [0, Math.floor(nIn / 2), nIn - 1]) {
        const at = (d: number) => {
          const moved = Float64Array.from(x);
          moved[i]! += d;
          return penalty64(moved).value;
        };
        expect(Math.abs((at(1e-6) - at(-1e-6)) / 2e-6 - want[i]!)).toBeLessThanOrEqual(1e-6);
      }

      const rt = tf.tensor4d(r, ref.outShape as [number, number, number, number]);
      const lossGrad = tf.grad((t: Tensor) => tf.sum(tf.mul(rt, tf.sin(upfirdn2d(tf, t as Tensor4D, kernel, options)))));
      const penalty = (t: Tensor) => tf.sum(tf.square(lossGrad(t)));
      const got = tf
        .grad(penalty)(tf.tensor4d(x, shape as [number, number, number, number]))
        .dataSync();
      expect(maxAbsDiff(got, want)).toBeLessThanOrEqual(ATOL * Math.max(1, ...want.map(Math.abs)));
    },
  );

  it('keeps no tensor behind in forward and backward', () => {
    const x = tf.randomUniform([1, 2, 6, 6]) as Tensor4D;
    const before = tf.memory().numTensors;
    const g = tf.grad((t: Tensor) => tf.sum(upfirdn2d(tf, t as Tensor4D, [1, 3, 3, 1], { up: 2, down: 1, pad: [2, 1] })))(x);
    expect(tf.memory().numTensors).toBe(before + 1);
    tf.dispose([x, g]);
  });
});

describe('makeFirKernel and the rosinality modules', () => {
  useBackend('cpu');
  it('makeFirKernel is make_kernel times factor²', () => {
    const k = makeFirKernel(STYLEGAN2_BLUR_KERNEL);
    expect(k.shape).toEqual([4, 4]);
    const outer = [1, 3, 3, 1].flatMap((a) => [1, 3, 3, 1].map((b) => (a * b) / 64));
    expect(Array.from(k.data)).toEqual(outer);
    expect(Array.from(makeFirKernel([1, 3, 3, 1], 2).data)).toEqual(outer.map((v) => v * 4));
    expect(
      Array.from(
        makeFirKernel([
          [1, 2],
          [3, 2],
        ]).data,
      ),
    ).toEqual([0.125, 0.25, 0.375, 0.25]);
    expect(Array.from(makeFirKernel([1, 2, 1]).data)).toEqual([1, 2, 1, 2, 4, 2, 1, 2, 1].map((v) => v / 16));
  });

  it('the pad rules are those of Upsample, Downsample and the conv blurs (SPEC §9, fixtures README)', () => {
    expect(firUpsamplePad(4, 2)).toEqual([2, 1]);
    expect(firDownsamplePad(4, 2)).toEqual([1, 1]);
    expect(firBlurPadAfterUpsampleConv(4, 3)).toEqual([1, 1]);
    expect(firBlurPadBeforeDownsampleConv(4, 3)).toEqual([2, 2]);
    expect(firBlurPadBeforeDownsampleConv(4, 1)).toEqual([1, 1]);
    // Python's // floors: p = −1 gives (0, −1).
    expect(firDownsamplePad(1, 2)).toEqual([0, -1]);
    expect(firUpsamplePad(3, 2)).toEqual([2, 0]);
  });

  it('Upsample doubles the size and keeps a constant image constant inside; Downsample halves it', () => {
    const x = tf.fill([1, 2, 6, 5], 0.5) as Tensor4D;
    const up = firUpsample2d(tf, x);
    expect(up.shape).toEqual([1, 2, 12, 10]);
    // Away from the zero-padded border every output sees kernel taps summing to 1 (the ·factor² scaling).
    const inner = tf.slice(up, [0, 0, 2, 2], [1, 2, 8, 6]).dataSync();
    expect(maxAbsDiff(inner, new Float32Array(inner.length).fill(0.5))).toBeLessThanOrEqual(1e-7);
    // ⌊(n + 1 + 1 − 4) / 2⌋ + 1: 6 → 3, 5 → 2 (rosinality's Downsample floors odd sizes).
    expect(firDownsample2d(tf, x).shape).toEqual([1, 2, 3, 2]);
    expect(firDownsample2d(tf, tf.zeros([1, 6, 5, 2]) as Tensor4D, { kernel: [1, 2, 1], dataFormat: 'NHWC' }).shape).toEqual([1, 3, 2, 2]);
  });

  it('the modules equal upfirdn2d with their kernel and pads', () => {
    const x = tf.tensor4d(seededUniform(41, 2 * 3 * 7 * 6, -1, 1), [2, 3, 7, 6]);
    const same = (a: Tensor, b: Tensor) => expect(maxAbsDiff(a.dataSync(), b.dataSync())).toBe(0);
    same(firUpsample2d(tf, x), upfirdn2d(tf, x, makeFirKernel([1, 3, 3, 1], 2), { up: 2, pad: [2, 1] }));
    same(firDownsample2d(tf, x), upfirdn2d(tf, x, makeFirKernel([1, 3, 3, 1]), { down: 2, pad: [1, 1] }));
    same(firBlur2d(tf, x, { pad: [2, 2] }), upfirdn2d(tf, x, makeFirKernel([1, 3, 3, 1]), { pad: [2, 2] }));
    same(firBlur2d(tf, x, { pad: [1, 1], upsampleFactor: 2 }), upfirdn2d(tf, x, makeFirKernel([1, 3, 3, 1], 2), { pad: [1, 1] }));
  });

  it('refuses bad options and inputs smaller than the kernel with typed errors', () => {
    const x = tf.zeros([1, 1, 3, 3]) as Tensor4D;
    const k = makeFirKernel([1, 3, 3, 1]);
    expect(() => upfirdn2d(tf, x, k, { up: 0 })).toThrow(expect.objectContaining({ code: 'E_USAGE' }));
    expect(() => upfirdn2d(tf, x, k, { down: 1.5 })).toThrow(/down must be a positive integer/);
    expect(() => upfirdn2d(tf, x, k, { pad: [1, 2, 3] as unknown as [number, number] })).toThrow(/pad must be/);
    expect(() => upfirdn2d(tf, x, { data: [1, 2, 3], shape: [2, 2] })).toThrow(/needs 4 values/);
    expect(() => upfirdn2d(tf, x, [1, Number.NaN])).toThrow(/not finite/);
    expect(() => upfirdn2d(tf, x, k)).toThrow(
      expect.objectContaining({ code: 'E_INPUT', message: expect.stringMatching(/3×3 input .* smaller than the 4×4 kernel/) }),
    );
    expect(() => makeFirKernel([1, -1])).toThrow(/non-zero sum/);
    expect(() => makeFirKernel([1, 3, 3, 1], 0)).toThrow(/factor must be a positive integer/);
  });
});

/**
 * StyleGAN2's R1 penalty differentiates D's input gradient again with respect to D's weights. A D-like block
 * (conv, leaky ReLU · √2, Blur, stride-2 conv, minibatch stddev, linear) checked against central differences:
 * the block's ops have working second-order gradients in tfjs-core 4.22 except the ones the guards below pin.
 */
describe('second-order gradients through a StyleGAN2-like discriminator block', () => {
  useBackend('cpu');
  /** Leaky ReLU from step(): tf.leakyRelu's gradient uses tf.greater, which has no gradient of its own. */
  const leaky = (t: Tensor): Tensor => tf.mul(t, tf.add(0.2, tf.mul(0.8, tf.step(t))));

  it('R1 = Σ (∂ΣD/∂x)² has the gradient central differences give, for every weight tensor', () => {
    const x = tf.tensor4d(seededUniform(51, 4 * 8 * 8 * 3, -1, 1), [4, 8, 8, 3]);
    const w1 = seededUniform(52, 3 * 3 * 3 * 6, -0.5, 0.5);
    const w2 = seededUniform(53, 3 * 3 * 6 * 5, -0.5, 0.5);
    const w3 = seededUniform(54, 6 * 4 * 4 * 2, -0.5, 0.5);
    const shapes = { w1: [3, 3, 3, 6], w2: [3, 3, 6, 5], w3: [6 * 4 * 4, 2] } as const;
    const preActivations: Tensor[] = [];
    const discriminator = (input: Tensor4D, ws: Record<'w1' | 'w2' | 'w3', Tensor>): Tensor => {
      const a = tf.conv2d(input, ws.w1 as Tensor4D, 1, 'same');
      preActivations.push(tf.keep(a));
      let h = tf.mul(leaky(a), Math.SQRT2) as Tensor4D;
      h = upfirdn2d(tf, h, makeFirKernel([1, 3, 3, 1]), { pad: [2, 2], dataFormat: 'NHWC' });
      const b = tf.conv2d(h, ws.w2 as Tensor4D, 2, 'valid');
      preActivations.push(tf.keep(b));
      h = tf.mul(leaky(b), Math.SQRT2) as Tensor4D;
      // Minibatch stddev of a batch of 4: group = min(batch, 4) = 4, the std over the group (with 2 it would be
      // |a − b| / 2, a kink that central differences straddle).
      const [n, hh, ww, c] = h.shape;
      const grouped = tf.reshape(h, [4, n / 4, hh, ww, c]);
      const std = tf.sqrt(tf.add(tf.mean(tf.square(tf.sub(grouped, tf.mean(grouped, 0))), 0), 1e-8));
      const stat = tf.tile(tf.reshape(tf.mean(std, [1, 2, 3]), [n / 4, 1, 1, 1]), [4, hh, ww, 1]);
      const features = tf.reshape(tf.concat([h, stat], 3), [n, -1]);
      return tf.matMul(features, ws.w3 as Tensor);
    };
    const r1 = (ws: Record<'w1' | 'w2' | 'w3', Tensor>): Tensor =>
      tf.sum(tf.square(tf.grad((t: Tensor) => tf.sum(discriminator(t as Tensor4D, ws)))(x)));
    const tensors = (v: Record<'w1' | 'w2' | 'w3', Float32Array>) => ({
      w1: tf.tensor(v.w1, shapes.w1 as unknown as number[]),
      w2: tf.tensor(v.w2, shapes.w2 as unknown as number[]),
      w3: tf.tensor(v.w3, shapes.w3 as unknown as number[]),
    });
    const base = { w1, w2, w3 };
    const ws = tensors(base);
    const grads = tf.grads((a: Tensor, b: Tensor, c: Tensor) => r1({ w1: a, w2: b, w3: c }))([ws.w1, ws.w2, ws.w3]);
    const value = r1(ws).dataSync()[0]!;
    expect(value).toBeGreaterThan(0);

    // ε 3e-3 on weights of ≲ 0.5: float32 noise of R1 (~1e-6 relative) over 2ε and the truncation error (ε²)
    // stay ≲ 1e-4 of the largest gradient entry. An entry whose ±ε evaluations put a pre-activation on
    // different sides of the leaky ReLU's kink is skipped (its difference quotient measures the kink); three
    // entries of every tensor must be checked.
    const eps = 3e-3;
    const signs = (): string => {
      const out = preActivations.map((t) => Array.from(t.dataSync(), (v) => (v > 0 ? 1 : 0)).join('')).join('|');
      tf.dispose(preActivations.splice(0));
      return out;
    };
    (['w1', 'w2', 'w3'] as const).forEach((name, n) => {
      const g = grads[n]!.dataSync();
      const scale = Math.max(...Array.from(g, Math.abs));
      let checked = 0;
      for (const i of [0, 5, 17, 29, Math.floor(g.length / 2), g.length - 7, g.length - 1]) {
        if (checked === 3) break;
        const at = (d: number) => {
          const moved = { ...base, [name]: base[name].slice() };
          moved[name][i]! += d;
          tf.dispose(preActivations.splice(0));
          const v = r1(tensors(moved)).dataSync()[0]!;
          return { v, signs: signs() };
        };
        const plus = at(eps);
        const minus = at(-eps);
        if (plus.signs !== minus.signs) continue;
        checked++;
        expect(Math.abs((plus.v - minus.v) / (2 * eps) - g[i]!)).toBeLessThanOrEqual(1e-3 * scale);
      }
      expect(checked).toBe(3);
    });
  });

  // Guards for what tfjs-core 4.22 cannot differentiate twice; a StyleGAN2 D must avoid these under R1.
  it('tf.leakyRelu has no second-order gradient (tf.greater has none), the step() form above has one', () => {
    const x = tf.tensor1d([0.3, -0.7, 1.1]);
    const w = tf.scalar(0.8);
    const penalty = (act: (t: Tensor) => Tensor) => (s: Tensor) => tf.sum(tf.square(tf.grad((z: Tensor) => tf.sum(act(tf.mul(z, s))))(x)));
    expect(() => tf.grad(penalty((t) => tf.leakyRelu(t, 0.2)))(w)).toThrow(/gradient function not found for Greater/);
    // R(s) = Σ (s·slope_i)² = s²·(1 + 0.04 + 1) here, so dR/ds = 2s·2.04.
    expect(tf.grad(penalty(leaky))(w).dataSync()[0]).toBeCloseTo(2 * 0.8 * 2.04, 5);
  });

  it('ops whose gradient reads their saved output (tanh, sigmoid, exp) give a silently wrong second order', () => {
    // Their saved output is a copy made outside the tape, so the path through it is dropped: d/ds of
    // Σ (∂/∂z Σ tanh(s·z))² misses the tanh″ term. sin and softplus (which save their input) are right.
    const x = tf.tensor1d([0.3, -0.7, 1.1]);
    const s0 = 0.8;
    const penalty = (act: (t: Tensor) => Tensor) => (s: Tensor) => tf.sum(tf.square(tf.grad((z: Tensor) => tf.sum(act(tf.mul(z, s))))(x)));
    const relativeError = (act: (t: Tensor) => Tensor) => {
      const auto = tf.grad(penalty(act))(tf.scalar(s0)).dataSync()[0]!;
      const at = (s: number) => penalty(act)(tf.scalar(s)).dataSync()[0]!;
      const fd = (at(s0 + 1e-2) - at(s0 - 1e-2)) / 2e-2;
      return Math.abs(auto - fd) / Math.abs(fd);
    };
    for (const act of [(t: Tensor) => tf.tanh(t), (t: Tensor) => tf.sigmoid(t), (t: Tensor) => tf.exp(t)])
      expect(relativeError(act)).toBeGreaterThan(0.1);
    for (const act of [(t: Tensor) => tf.sin(t), (t: Tensor) => tf.softplus(t)]) expect(relativeError(act)).toBeLessThan(1e-3);
  });
});
