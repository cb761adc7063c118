/**
 * The FIR resampling of StyleGAN2 (rosinality's `op/upfirdn2d.py`, SPEC §9), in TF.js.
 *
 * `upfirdn2d` does exactly what the reference's CPU path `upfirdn2d_native` does, per axis:
 *   1. upsample by `up`: insert `up − 1` zeros after every sample (so n samples become n·up);
 *   2. pad with `pad0` zeros before and `pad1` after; a negative pad crops that many samples instead;
 *   3. filter: a true convolution with the kernel (correlation with the kernel flipped on both axes), keeping
 *      only the outputs where the kernel lies wholly inside ('valid');
 *   4. downsample by `down`: keep every `down`-th output, starting with the first.
 * Output size per axis: ⌊(n·up + pad0 + pad1 − k) / down⌋ + 1.
 *
 * `makeFirKernel` is rosinality's `make_kernel` (outer product of a 1-D kernel, normalised to sum 1) times
 * factor², as its `Upsample` and `Blur(upsample_factor)` scale it; `firUpsample2d`, `firDownsample2d` and
 * `firBlur2d` are its `Upsample`, `Downsample` and `Blur` modules, and the `*Pad` functions their pad rules.
 *
 * Differentiable to any order. The filter runs as a depthwise conv (one kernel per channel), and the gradient
 * of upfirdn2d is again an upfirdn2d (the adjoint below), attached with `tf.customGrad`; so a gradient of a
 * gradient, which R1 needs through the discriminator's blur, is one more upfirdn2d. tfjs-core registers no
 * gradient for DepthwiseConv2dNativeBackpropInput, so its own depthwise gradient could not be differentiated
 * again, and the adjoint also keeps no zero-inserted or padded intermediate alive for the backward pass.
 *
 * Not CUT's `blurDownsample` / `blurUpsample` (networks/blur.ts): those pad by reflection / replication.
 */
import type { Tensor, Tensor4D } from '@tensorflow/tfjs-core';
import { InputError, UsageError } from '@scenimefy/io/core';
import type { Tf } from '../layers/tf';

/** A 2-D FIR kernel, row-major `[height, width]`, as rosinality stores `kernel` buffers. */
export interface FirKernel2d {
  readonly data: ArrayLike<number>;
  readonly shape: readonly [height: number, width: number];
}

/** A 2-D kernel, or a 1-D kernel `k` standing for the separable `outer(k, k)` (run as two 1-D passes). */
export type FirKernel = FirKernel2d | ArrayLike<number>;

/** Layout of the image tensor: PyTorch's NCHW (the default, as the reference) or TF.js's NHWC. */
export type FirDataFormat = 'NCHW' | 'NHWC';

export interface UpFirDn2dOptions {
  /** Upsampling factor, one for both axes or `[x, y]`. Default 1. */
  readonly up?: number | readonly [x: number, y: number];
  /** Downsampling factor, one for both axes or `[x, y]`. Default 1. */
  readonly down?: number | readonly [x: number, y: number];
  /** `[p0, p1]` for both axes or `[x0, x1, y0, y1]`, as rosinality; negative values crop. Default `[0, 0]`. */
  readonly pad?: readonly [p0: number, p1: number] | readonly [x0: number, x1: number, y0: number, y1: number];
  readonly dataFormat?: FirDataFormat;
}

/** StyleGAN2's `blur_kernel` default, [1, 3, 3, 1]. */
export const STYLEGAN2_BLUR_KERNEL: readonly number[] = Object.freeze([1, 3, 3, 1]);

/** One axis of an upfirdn: factors and pads. */
interface AxisPlan {
  readonly up: number;
  readonly down: number;
  readonly pad0: number;
  readonly pad1: number;
}

/** A kernel as the depthwise conv wants it: float32 row-major [h, w], already flipped (conv → correlation). */
interface FlippedKernel {
  readonly flipped: Float32Array;
  readonly h: number;
  readonly w: number;
}

const IDENTITY_AXIS: AxisPlan = { up: 1, down: 1, pad0: 0, pad1: 0 };

function outputLength(n: number, k: number, a: AxisPlan): number {
  return Math.floor((n * a.up + a.pad0 + a.pad1 - k) / a.down) + 1;
}

/**
 * The adjoint of one axis: with `y = upfirdn(x; k, up, down, p0, p1)` of length m from n samples,
 * `x̄ = upfirdn(ȳ; flip(k), up = down, down = up, K − 1 − p0, (n − 1)·up + 1 + p0 − m·down)` has length n.
 * (y[o] = Σ_t k[K−1−t]·x[(o·down + t − p0)/up], so x̄[i] = Σ_o ȳ[o]·k[K−1 − i·up − p0 + o·down]; the pads put
 * the first and last tap of the flipped kernel where those sums need them.)
 */
function adjointAxis(a: AxisPlan, n: number, m: number, k: number): AxisPlan {
  return { up: a.down, down: a.up, pad0: k - 1 - a.pad0, pad1: (n - 1) * a.up + 1 + a.pad0 - m * a.down };
}

function flipKernel(k: FlippedKernel): FlippedKernel {
  return { flipped: k.flipped.slice().reverse(), h: k.h, w: k.w };
}

/** Zero insertion on an NHWC tensor: [B,H,W,C] → [B,H·upY,W·upX,C], sample (i, j) to (i·upY, j·upX). */
function zeroInsert(tf: Tf, x: Tensor4D, upX: number, upY: number): Tensor4D {
  const [b, h, w, c] = x.shape;
  let t = x;
  if (upX > 1) {
    const cols = tf.pad(tf.reshape(t, [b * h, w, 1, c]), [
      [0, 0],
      [0, 0],
      [0, upX - 1],
      [0, 0],
    ]);
    t = tf.reshape(cols, [b, h, w * upX, c]);
  }
  if (upY > 1) {
    const width = t.shape[2];
    const rows = tf.pad(tf.reshape(t, [b, h, 1, width * c]), [
      [0, 0],
      [0, 0],
      [0, upY - 1],
      [0, 0],
    ]);
    t = tf.reshape(rows, [b, h * upY, width, c]);
  }
  return t;
}

/**
 * Pads H and W of an NHWC tensor with zeros, then crops where a pad is negative, in that order as the
 * reference (a crop may reach into the zeros the other side's pad added).
 */
function padOrCrop(tf: Tf, x: Tensor4D, ax: AxisPlan, ay: AxisPlan): Tensor4D {
  let t = x;
  if (ay.pad0 > 0 || ay.pad1 > 0 || ax.pad0 > 0 || ax.pad1 > 0) {
    t = tf.pad(t, [
      [0, 0],
      [Math.max(ay.pad0, 0), Math.max(ay.pad1, 0)],
      [Math.max(ax.pad0, 0), Math.max(ax.pad1, 0)],
      [0, 0],
    ]);
  }
  if (ay.pad0 < 0 || ay.pad1 < 0 || ax.pad0 < 0 || ax.pad1 < 0) {
    const [, h, w] = t.shape;
    const top = Math.max(-ay.pad0, 0);
    const left = Math.max(-ax.pad0, 0);
    t = tf.slice(t, [0, top, left, 0], [-1, h - top - Math.max(-ay.pad1, 0), w - left - Math.max(-ax.pad1, 0), -1]);
  }
  return t;
}

/** The flipped kernel repeated for every channel, as depthwiseConv2d's [h, w, channels, 1] filter. */
function depthwiseFilter(tf: Tf, k: FlippedKernel, channels: number): Tensor4D {
  const data = new Float32Array(k.h * k.w * channels);
  for (let t = 0; t < k.h * k.w; t++) data.fill(k.flipped[t] as number, t * channels, (t + 1) * channels);
  return tf.tensor4d(data, [k.h, k.w, channels, 1]);
}

/** The forward pass on NHWC, with no gradient of its own (it runs inside the customGrad below). */
function upfirdnForward(tf: Tf, x: Tensor4D, k: FlippedKernel, ax: AxisPlan, ay: AxisPlan): Tensor4D {
  return tf.tidy(() => {
    const upsampled = zeroInsert(tf, x, ax.up, ay.up);
    const filter = depthwiseFilter(tf, k, x.shape[3]);
    const strides: [number, number] = [ay.down, ax.down];
    if (Math.min(ax.pad0, ax.pad1, ay.pad0, ay.pad1) >= 0) {
      // Zero pads only: the conv pads explicitly, which saves writing a padded copy.
      return tf.depthwiseConv2d(upsampled, filter, strides, [
        [0, 0],
        [ay.pad0, ay.pad1],
        [ax.pad0, ax.pad1],
        [0, 0],
      ]);
    }
    return tf.depthwiseConv2d(padOrCrop(tf, upsampled, ax, ay), filter, strides, 'valid');
  });
}

/** upfirdn2d on NHWC with the adjoint as its gradient (itself an upfirdn2d, so every order is differentiable). */
function upfirdnNhwc(tf: Tf, x: Tensor4D, k: FlippedKernel, ax: AxisPlan, ay: AxisPlan): Tensor4D {
  const [, h, w] = x.shape;
  const outH = outputLength(h, k.h, ay);
  const outW = outputLength(w, k.w, ax);
  if (!(outH >= 1 && outW >= 1)) {
    throw new InputError(
      `upfirdn2d: a ${h}×${w} input upsampled by [${ax.up}, ${ay.up}] and padded by [${ax.pad0}, ${ax.pad1}, ${ay.pad0}, ${ay.pad1}] ` +
        `is smaller than the ${k.h}×${k.w} kernel`,
    );
  }
  const withAdjointGrad = tf.customGrad((...args: Array<Tensor | ((save: Tensor[]) => void)>) => {
    const input = args[0] as Tensor4D;
    const value = upfirdnForward(tf, input, k, ax, ay);
    const gradFunc = (dy: Tensor4D): Tensor4D =>
      upfirdnNhwc(tf, dy, flipKernel(k), adjointAxis(ax, w, outW, k.w), adjointAxis(ay, h, outH, k.h));
    return { value, gradFunc };
  });
  return withAdjointGrad(x) as Tensor4D;
}

function factorPair(value: number | readonly [number, number] | undefined, name: string): [number, number] {
  const pair: [number, number] = value === undefined ? [1, 1] : typeof value === 'number' ? [value, value] : [value[0], value[1]];
  if (!pair.every((v) => Number.isInteger(v) && v >= 1)) {
    throw new UsageError(`upfirdn2d: ${name} must be a positive integer or [x, y] of them, got ${JSON.stringify(value)}`);
  }
  return pair;
}

function padQuad(pad: UpFirDn2dOptions['pad']): [number, number, number, number] {
  const p = pad ?? [0, 0];
  const quad: number[] = p.length === 2 ? [p[0], p[1], p[0], p[1]] : [...p];
  if (quad.length !== 4 || !quad.every((v) => Number.isInteger(v))) {
    throw new UsageError(`upfirdn2d: pad must be [p0, p1] or [x0, x1, y0, y1] of integers, got ${JSON.stringify(pad)}`);
  }
  return quad as [number, number, number, number];
}

function checkedTaps(data: ArrayLike<number>, expected: number, what: string): Float32Array {
  if (data.length !== expected || expected === 0) {
    throw new UsageError(`upfirdn2d: ${what} needs ${expected} values and at least one, got ${data.length}`);
  }
  const out = Float32Array.from(data);
  if (!out.every((v) => Number.isFinite(v))) throw new UsageError(`upfirdn2d: ${what} has a value that is not finite`);
  return out;
}

function isKernel2d(kernel: FirKernel): kernel is FirKernel2d {
  return typeof (kernel as FirKernel2d).shape === 'object' && (kernel as FirKernel2d).shape !== null;
}

/**
 * rosinality's `upfirdn2d(input, kernel, up, down, pad)` (see the module comment) on a float32 image batch,
 * NCHW by default or NHWC with `dataFormat: 'NHWC'`. A 1-D kernel `k` means the 2-D kernel `outer(k, k)` and
 * runs as a pass along W then one along H (fewer multiplications; rounding differs from the 2-D pass by float32
 * noise). Throws `UsageError` for bad options and `InputError` when the padded input is smaller than the kernel.
 *
 * Example (StyleGAN2's ToRGB skip upsampling):
 *   upfirdn2d(tf, skip, makeFirKernel([1, 3, 3, 1], 2), { up: 2, pad: [2, 1] })  // [B,3,H,W] → [B,3,2H,2W]
 */
export function upfirdn2d(tf: Tf, x: Tensor4D, kernel: FirKernel, options: UpFirDn2dOptions = {}): Tensor4D {
  const [upX, upY] = factorPair(options.up, 'up');
  const [downX, downY] = factorPair(options.down, 'down');
  const [x0, x1, y0, y1] = padQuad(options.pad);
  const dataFormat = options.dataFormat ?? 'NCHW';
  if (dataFormat !== 'NCHW' && dataFormat !== 'NHWC') {
    throw new UsageError(`upfirdn2d: dataFormat must be NCHW or NHWC, got ${String(dataFormat)}`);
  }
  if (x.rank !== 4) throw new InputError(`upfirdn2d: expected a 4-D image batch, got shape [${x.shape.join(', ')}]`);
  const ax: AxisPlan = { up: upX, down: downX, pad0: x0, pad1: x1 };
  const ay: AxisPlan = { up: upY, down: downY, pad0: y0, pad1: y1 };

  const run = (nhwc: Tensor4D): Tensor4D => {
    if (isKernel2d(kernel)) {
      const [h, w] = kernel.shape;
      if (!(Number.isInteger(h) && Number.isInteger(w) && h >= 1 && w >= 1)) {
        throw new UsageError(`upfirdn2d: kernel shape must be two positive integers, got [${kernel.shape.join(', ')}]`);
      }
      const taps = checkedTaps(kernel.data, h * w, `a ${h}×${w} kernel`);
      return upfirdnNhwc(tf, nhwc, { flipped: taps.reverse(), h, w }, ax, ay);
    }
    const taps = checkedTaps(kernel, kernel.length, 'a 1-D kernel').reverse();
    const alongW = upfirdnNhwc(tf, nhwc, { flipped: taps, h: 1, w: taps.length }, ax, IDENTITY_AXIS);
    return upfirdnNhwc(tf, alongW, { flipped: taps, h: taps.length, w: 1 }, IDENTITY_AXIS, ay);
  };

  if (dataFormat === 'NHWC') return run(x);
  return tf.tidy(() => {
    // NCHW as the reference does it: every channel plane an image of one channel, [N·C, H, W, 1], a reshape that
    // moves no data (transposing to NHWC and back measured 1.3–1.8× slower for 128 channels).
    const [n, c, h, w] = x.shape;
    const y = run(tf.reshape(x, [n * c, h, w, 1]));
    return tf.reshape(y, [n, c, y.shape[1], y.shape[2]]);
  });
}

/**
 * rosinality's `make_kernel(k)` times `factor²`: a 1-D kernel becomes `outer(k, k)`, a 2-D one (rows) is taken
 * as it is; then divided by its sum and multiplied by factor² (its `Upsample` and `Blur(upsample_factor)`
 * keep the image's mean through zero insertion that way). In float32 steps as the reference: exact for integer
 * taps such as [1, 3, 3, 1] (outer / 64 · 4).
 */
export function makeFirKernel(k: ArrayLike<number> | ReadonlyArray<ArrayLike<number>>, factor = 1): FirKernel2d {
  if (!(Number.isInteger(factor) && factor >= 1)) throw new UsageError(`makeFirKernel: factor must be a positive integer, got ${factor}`);
  const rows = Array.from(k as ArrayLike<number | ArrayLike<number>>);
  if (rows.length === 0) throw new UsageError('makeFirKernel: the kernel is empty');
  let grid: number[][];
  if (rows.every((r) => typeof r === 'number')) {
    const a = (rows as number[]).map((v) => Math.fround(v));
    grid = a.map((ai) => a.map((aj) => Math.fround(ai * aj)));
  } else {
    grid = rows.map((r) => Array.from(r as ArrayLike<number>, (v) => Math.fround(v)));
    const width = grid[0]!.length;
    if (width === 0 || !grid.every((r) => r.length === width)) throw new UsageError('makeFirKernel: a 2-D kernel needs rows of one length');
  }
  const sum = Math.fround(grid.flat().reduce((s, v) => s + v, 0));
  if (!Number.isFinite(sum) || sum === 0 || !grid.flat().every((v) => Number.isFinite(v))) {
    throw new UsageError('makeFirKernel: the kernel must have finite taps and a non-zero sum');
  }
  const scale = factor * factor;
  const data = Float32Array.from(grid.flat(), (v) => Math.fround(Math.fround(v / sum) * scale));
  return { data, shape: [grid.length, grid[0]!.length] };
}

/** The pads of rosinality's `Upsample(kernel, factor)`: p = k − factor, [⌊(p + 1)/2⌋ + factor − 1, ⌊p/2⌋]. */
export function firUpsamplePad(kernelSize: number, factor = 2): [number, number] {
  const p = kernelSize - factor;
  return [Math.floor((p + 1) / 2) + factor - 1, Math.floor(p / 2)];
}

/** The pads of rosinality's `Downsample(kernel, factor)`: p = k − factor, [⌊(p + 1)/2⌋, ⌊p/2⌋]. */
export function firDownsamplePad(kernelSize: number, factor = 2): [number, number] {
  const p = kernelSize - factor;
  return [Math.floor((p + 1) / 2), Math.floor(p / 2)];
}

/**
 * The blur pads after an upsampling (transposed, stride `factor`) conv of size `convKernelSize`, as
 * ModulatedConv2d(upsample=True): p = (k − factor) − (conv − 1), [⌊(p + 1)/2⌋ + factor − 1, ⌊p/2⌋ + 1].
 * [1, 3, 3, 1] after a 3×3 conv: [1, 1].
 */
export function firBlurPadAfterUpsampleConv(kernelSize: number, convKernelSize: number, factor = 2): [number, number] {
  const p = kernelSize - factor - (convKernelSize - 1);
  return [Math.floor((p + 1) / 2) + factor - 1, Math.floor(p / 2) + 1];
}

/**
 * The blur pads before a downsampling (stride `factor`) conv of size `convKernelSize`, as ConvLayer /
 * ModulatedConv2d(downsample=True): p = (k − factor) + (conv − 1), [⌊(p + 1)/2⌋, ⌊p/2⌋].
 * [1, 3, 3, 1] before a 3×3 conv: [2, 2]; before a 1×1 conv (the ResBlock skip): [1, 1].
 */
export function firBlurPadBeforeDownsampleConv(kernelSize: number, convKernelSize: number, factor = 2): [number, number] {
  const p = kernelSize - factor + (convKernelSize - 1);
  return [Math.floor((p + 1) / 2), Math.floor(p / 2)];
}

export interface FirResampleOptions {
  /** The 1-D taps the 2-D kernel is built from (`makeFirKernel`). Default [1, 3, 3, 1]. */
  readonly kernel?: ArrayLike<number>;
  /** Default 2. */
  readonly factor?: number;
  readonly dataFormat?: FirDataFormat;
}

/** rosinality's `Upsample(kernel, factor)`: upfirdn2d(x, make_kernel(k)·factor², up = factor, pad = firUpsamplePad). */
export function firUpsample2d(tf: Tf, x: Tensor4D, options: FirResampleOptions = {}): Tensor4D {
  const taps = options.kernel ?? STYLEGAN2_BLUR_KERNEL;
  const factor = options.factor ?? 2;
  const kernel = makeFirKernel(taps, factor);
  return upfirdn2d(tf, x, kernel, { up: factor, pad: firUpsamplePad(kernel.shape[0], factor), dataFormat: options.dataFormat });
}

/** rosinality's `Downsample(kernel, factor)`: upfirdn2d(x, make_kernel(k), down = factor, pad = firDownsamplePad). */
export function firDownsample2d(tf: Tf, x: Tensor4D, options: FirResampleOptions = {}): Tensor4D {
  const taps = options.kernel ?? STYLEGAN2_BLUR_KERNEL;
  const factor = options.factor ?? 2;
  const kernel = makeFirKernel(taps);
  return upfirdn2d(tf, x, kernel, { down: factor, pad: firDownsamplePad(kernel.shape[0], factor), dataFormat: options.dataFormat });
}

export interface FirBlurOptions {
  /** The 1-D taps the 2-D kernel is built from (`makeFirKernel`). Default [1, 3, 3, 1]. */
  readonly kernel?: ArrayLike<number>;
  /** `[p0, p1]` for both axes, e.g. from `firBlurPadAfterUpsampleConv` / `firBlurPadBeforeDownsampleConv`. */
  readonly pad: readonly [number, number];
  /** The kernel is scaled by upsampleFactor² (after an upsampling conv). Default 1. */
  readonly upsampleFactor?: number;
  readonly dataFormat?: FirDataFormat;
}

/** rosinality's `Blur(kernel, pad, upsample_factor)`: upfirdn2d(x, make_kernel(k)·upsample_factor², pad). */
export function firBlur2d(tf: Tf, x: Tensor4D, options: FirBlurOptions): Tensor4D {
  const kernel = makeFirKernel(options.kernel ?? STYLEGAN2_BLUR_KERNEL, options.upsampleFactor ?? 1);
  return upfirdn2d(tf, x, kernel, { pad: options.pad, dataFormat: options.dataFormat });
}
