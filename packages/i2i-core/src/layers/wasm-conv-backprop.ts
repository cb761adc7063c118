/**
 * Convolution gradients for tfjs-backend-wasm 4.22, computed by its XNNPACK kernels:
 *
 * - Conv2DBackpropFilter (missing in wasm): dW[kh,kw,ci,co] = Σ_{b,y,x} x[b, y·s+kh−top, x·s+kw−left, ci]·dy[b,y,x,co].
 *   For a group of taps the shifted windows of x are copied (memcpy-speed row copies on the wasm heap) into one
 *   matrix A [taps·ci, B·oh·ow], and A · dy[B·oh·ow, co] is one XNNPACK GEMM whose rows come out in HWIO order.
 *   dy is the GEMM's packed operand (XNNPACK caches it by tensor id), packed once for all groups. Measured on
 *   wasm against one conv with dy as a huge filter (as first suggested: XNNPACK then reduces over 1–2 input
 *   channels per tap, 2–3x the forward conv) and tf.slice windows (wasm's Slice copies the whole input per
 *   tap), this is the fastest: 1–1.8x the forward conv for 3x3 layers, 2.7x for the 7x7 head into 3 channels
 *   (a GEMM 3 columns wide).
 * - Conv2DBackpropInput (wasm has one, a scalar loop ~10x slower than its Conv2D): dx is the correlation of dy
 *   (zero-spread by the stride, padded by KH−1−top) with the filter flipped in space and with in/out swapped,
 *   run as XNNPACK Conv2D.
 * - DepthwiseConv2dNativeBackpropInput (missing; the gradient of the blur downsample): the same construction
 *   with DepthwiseConv2dNative, then a sum over the channel multiplier.
 *
 * Attributes are read as tfjs-core's gradients pass them, through `backend_util.computeConv2DInfo` like the cpu
 * backend's kernels, so 'same'/'valid'/numeric/explicit padding, strides, dimRoundingMode and NCHW all follow
 * tfjs-core's definitions.
 */
import type {
  Conv2DBackpropFilterAttrs,
  Conv2DBackpropInputAttrs,
  DepthwiseConv2dNativeBackpropInputAttrs,
  KernelFunc,
  TensorInfo,
} from '@tensorflow/tfjs-core';
import { BackendError } from '@scenimefy/io/core';
import type { Tf } from './tf';
import { inWasmScope } from './wasm-kernel-scope';
import type { WasmKernelScope } from './wasm-kernel-scope';

/** Largest window matrix (floats) built per GEMM: 32 MB keeps peak memory modest while rows stay many. */
const WINDOW_MATRIX_FLOATS = 1 << 23;

type Pads = readonly [top: number, bottom: number, left: number, right: number];

function requireFloat32(kernel: string, ...infos: TensorInfo[]): void {
  for (const t of infos) {
    if (t.dtype !== 'float32') throw new BackendError(`wasm-training-kernels: ${kernel} takes float32 tensors, got ${t.dtype}`);
  }
}

/** NCHW → NHWC for a tensor the kernel reads, or the tensor itself. */
function channelsLast(scope: WasmKernelScope, t: TensorInfo, isChannelsLast: boolean): TensorInfo {
  return isChannelsLast ? t : scope.run('Transpose', { x: t }, { perm: [0, 2, 3, 1] });
}

/**
 * dy [B,oh,ow,C] spread by the strides (s−1 zeros between samples) and padded by `pads` (negative = cropped):
 * [B, top + (oh−1)·sh + 1 + bottom, left + (ow−1)·sw + 1 + right, C].
 */
function spreadAndPad(scope: WasmKernelScope, dy: TensorInfo, sh: number, sw: number, pads: Pads): TensorInfo {
  const [b, oh, ow, c] = dy.shape as [number, number, number, number];
  const [top, bottom, left, right] = pads;
  const outH = top + (oh - 1) * sh + 1 + bottom;
  const outW = left + (ow - 1) * sw + 1 + right;
  if (outH <= 0 || outW <= 0)
    throw new BackendError(`wasm-training-kernels: conv gradient padding [${pads.join(', ')}] leaves no rows of dy`);
  const out = scope.output([b, outH, outW, c], 'float32');
  const src = scope.float32(dy);
  const dst = scope.float32(out);
  dst.fill(0);
  // Columns x whose target left + x·sw lies in [0, outW).
  const xLo = Math.max(0, Math.ceil(-left / sw));
  const xHi = Math.min(ow, Math.floor((outW - 1 - left) / sw) + 1);
  for (let n = 0; n < b; n++) {
    for (let y = 0; y < oh; y++) {
      const r = top + y * sh;
      if (r < 0 || r >= outH || xLo >= xHi) continue;
      const srcRow = (n * oh + y) * ow * c;
      const dstRow = ((n * outH + r) * outW + left) * c;
      if (sw === 1) {
        dst.set(src.subarray(srcRow + xLo * c, srcRow + xHi * c), dstRow + xLo * c);
      } else {
        for (let x = xLo; x < xHi; x++) dst.set(src.subarray(srcRow + x * c, srcRow + (x + 1) * c), dstRow + x * sw * c);
      }
    }
  }
  return out;
}

/**
 * Copies the windows of taps [t0, t0 + g) of xT [ci, B, H, W] into a [1, g·ci, B·oh·ow] matrix: row j·ci + c,
 * column (b·oh + y)·ow + x holds x[b, y·sh + kh − top, x·sw + kw − left, c] (0 outside the image).
 */
function tapWindows(
  scope: WasmKernelScope,
  xT: TensorInfo,
  t0: number,
  g: number,
  geometry: { kw: number; oh: number; ow: number; sh: number; sw: number; top: number; left: number },
): TensorInfo {
  const [ci, b, h, w] = xT.shape as [number, number, number, number];
  const { kw: kWidth, oh, ow, sh, sw, top, left } = geometry;
  const out = scope.output([1, g * ci, b * oh * ow], 'float32');
  const src = scope.float32(xT);
  const dst = scope.float32(out);
  for (let j = 0; j < g; j++) {
    const tap = t0 + j;
    const kh = Math.floor(tap / kWidth);
    const kw = tap % kWidth;
    const xLo = Math.max(0, Math.ceil((left - kw) / sw));
    const xHi = Math.min(ow, Math.floor((w - 1 + left - kw) / sw) + 1);
    const colShift = kw - left;
    for (let c = 0; c < ci; c++) {
      for (let n = 0; n < b; n++) {
        const srcImage = (c * b + n) * h * w;
        const dstImage = ((j * ci + c) * b + n) * oh * ow;
        for (let y = 0; y < oh; y++) {
          const r = y * sh + kh - top;
          const d = dstImage + y * ow;
          if (r < 0 || r >= h || xLo >= xHi) {
            dst.fill(0, d, d + ow);
            continue;
          }
          if (xLo > 0) dst.fill(0, d, d + xLo);
          if (xHi < ow) dst.fill(0, d + xHi, d + ow);
          const s = srcImage + r * w + colShift;
          if (sw === 1) {
            dst.set(src.subarray(s + xLo, s + xHi), d + xLo);
          } else {
            for (let x = xLo; x < xHi; x++) dst[d + x] = src[s + x * sw] as number;
          }
        }
      }
    }
  }
  return out;
}

/**
 * The filter [KH, KW, A, B] turned by 180° in space, with its last two axes swapped when `swapInOut`
 * ([KH, KW, B, A]): one pass in JS, several times faster than wasm's Reverse and Transpose kernels, whose cost
 * would dominate the input gradient of small (16², 32²) feature maps.
 */
function flippedFilter(scope: WasmKernelScope, filter: TensorInfo, swapInOut: boolean): TensorInfo {
  const [kh, kw, a, b] = filter.shape as [number, number, number, number];
  const out = scope.output(swapInOut ? [kh, kw, b, a] : [kh, kw, a, b], 'float32');
  const src = scope.float32(filter);
  const dst = scope.float32(out);
  const taps = kh * kw;
  const plane = a * b;
  for (let t = 0; t < taps; t++) {
    const from = (taps - 1 - t) * plane;
    const to = t * plane;
    if (!swapInOut) {
      dst.set(src.subarray(from, from + plane), to);
      continue;
    }
    for (let i = 0; i < a; i++) {
      for (let o = 0; o < b; o++) dst[to + o * a + i] = src[from + i * b + o] as number;
    }
  }
  return out;
}

export function conv2dBackpropFilterKernel(tf: Tf): KernelFunc {
  return ({ inputs, backend, attrs }) =>
    inWasmScope(tf, backend, 'Conv2DBackpropFilter', (scope) => {
      const { x, dy } = inputs as { x: TensorInfo; dy: TensorInfo };
      requireFloat32('Conv2DBackpropFilter', x, dy);
      const { strides, pad, dataFormat, dimRoundingMode, filterShape } = attrs as unknown as Conv2DBackpropFilterAttrs;
      const info = tf.backend_util.computeConv2DInfo(
        x.shape as [number, number, number, number],
        filterShape,
        strides,
        1,
        pad,
        dimRoundingMode,
        false,
        tf.backend_util.convertConv2DDataFormat(dataFormat),
      );
      const isChannelsLast = info.dataFormat === 'channelsLast';
      const { batchSize, outHeight: oh, outWidth: ow, inChannels: ci, outChannels: co, filterHeight: kh, filterWidth: kw } = info;
      const xT = scope.run('Transpose', { x }, { perm: isChannelsLast ? [3, 0, 1, 2] : [1, 0, 2, 3] });
      const rows = batchSize * oh * ow;
      // A private copy: XNNPACK caches the packed GEMM operand by tensor id and shape-blind, so dy's own id must
      // not carry our [rows, co] packing to a later matmul that reads dy with another shape.
      const dyMatrix = scope.run('Identity', {
        x: scope.run('Reshape', { x: channelsLast(scope, dy, isChannelsLast) }, { shape: [1, rows, co] }),
      });
      const geometry = { kw, oh, ow, sh: info.strideHeight, sw: info.strideWidth, top: info.padInfo.top, left: info.padInfo.left };
      const taps = kh * kw;
      const perGroup = Math.max(1, Math.min(taps, Math.floor(WINDOW_MATRIX_FLOATS / Math.max(1, ci * rows))));
      const parts: TensorInfo[] = [];
      for (let t0 = 0; t0 < taps; t0 += perGroup) {
        const g = Math.min(perGroup, taps - t0);
        const windows = tapWindows(scope, xT, t0, g, geometry);
        parts.push(scope.run('BatchMatMul', { a: windows, b: dyMatrix }, { transposeA: false, transposeB: false }));
        scope.release(windows);
      }
      const all = parts.length === 1 ? (parts[0] as TensorInfo) : scope.run('Concat', parts, { axis: 1 });
      return scope.run('Reshape', { x: all }, { shape: [kh, kw, ci, co] });
    });
}

/**
 * Correlation pads that turn a stride-spread dy into dx: top = KHe−1−padTop, bottom so that the output has
 * exactly H rows (KHe = dilated filter extent). Either may be negative (more padding than the filter covers).
 */
function transposedPads(
  inH: number,
  inW: number,
  oh: number,
  ow: number,
  sh: number,
  sw: number,
  effH: number,
  effW: number,
  padTop: number,
  padLeft: number,
): Pads {
  const top = effH - 1 - padTop;
  const left = effW - 1 - padLeft;
  const bottom = inH + effH - 1 - top - ((oh - 1) * sh + 1);
  const right = inW + effW - 1 - left - ((ow - 1) * sw + 1);
  return [top, bottom, left, right];
}

/** The input of the stride-1 correlation and the pad attribute for it: dy itself with explicit pads when it can. */
function correlationInput(scope: WasmKernelScope, dy: TensorInfo, sh: number, sw: number, pads: Pads) {
  if (sh === 1 && sw === 1 && pads.every((p) => p >= 0)) {
    const [top, bottom, left, right] = pads;
    const explicit: [[number, number], [number, number], [number, number], [number, number]] = [
      [0, 0],
      [top, bottom],
      [left, right],
      [0, 0],
    ];
    return { input: dy, pad: explicit };
  }
  return { input: spreadAndPad(scope, dy, sh, sw, pads), pad: 'valid' as const };
}

export function conv2dBackpropInputKernel(tf: Tf): KernelFunc {
  return ({ inputs, backend, attrs }) =>
    inWasmScope(tf, backend, 'Conv2DBackpropInput', (scope) => {
      const { dy, filter } = inputs as { dy: TensorInfo; filter: TensorInfo };
      requireFloat32('Conv2DBackpropInput', dy, filter);
      const { strides, pad, dataFormat, dimRoundingMode, inputShape } = attrs as unknown as Conv2DBackpropInputAttrs;
      const info = tf.backend_util.computeConv2DInfo(
        inputShape,
        filter.shape as [number, number, number, number],
        strides,
        1,
        pad,
        dimRoundingMode,
        false,
        tf.backend_util.convertConv2DDataFormat(dataFormat),
      );
      const isChannelsLast = info.dataFormat === 'channelsLast';
      const { strideHeight: sh, strideWidth: sw } = info;
      const pads = transposedPads(
        info.inHeight,
        info.inWidth,
        info.outHeight,
        info.outWidth,
        sh,
        sw,
        info.filterHeight,
        info.filterWidth,
        info.padInfo.top,
        info.padInfo.left,
      );
      const swapped = flippedFilter(scope, filter, true);
      const { input, pad: corrPad } = correlationInput(scope, channelsLast(scope, dy, isChannelsLast), sh, sw, pads);
      const dx = scope.run('Conv2D', { x: input, filter: swapped }, {
        strides: [1, 1],
        pad: corrPad,
        dataFormat: 'NHWC',
        dilations: [1, 1],
        dimRoundingMode: undefined,
      } as never);
      return isChannelsLast ? dx : scope.run('Transpose', { x: dx }, { perm: [0, 3, 1, 2] });
    });
}

export function depthwiseConv2dNativeBackpropInputKernel(tf: Tf): KernelFunc {
  return ({ inputs, backend, attrs }) =>
    inWasmScope(tf, backend, 'DepthwiseConv2dNativeBackpropInput', (scope) => {
      const { dy, filter } = inputs as { dy: TensorInfo; filter: TensorInfo };
      requireFloat32('DepthwiseConv2dNativeBackpropInput', dy, filter);
      const { strides, dilations, pad, dimRoundingMode, inputShape } = attrs as unknown as DepthwiseConv2dNativeBackpropInputAttrs;
      const info = tf.backend_util.computeConv2DInfo(
        inputShape,
        filter.shape as [number, number, number, number],
        strides,
        dilations,
        pad,
        dimRoundingMode,
        true,
      );
      const [kh, kw, channels, multiplier] = filter.shape as [number, number, number, number];
      const { strideHeight: sh, strideWidth: sw, dilationHeight: dh, dilationWidth: dw } = info;
      const pads = transposedPads(
        info.inHeight,
        info.inWidth,
        info.outHeight,
        info.outWidth,
        sh,
        sw,
        info.effectiveFilterHeight,
        info.effectiveFilterWidth,
        info.padInfo.top,
        info.padInfo.left,
      );
      const perChannel = scope.run('Reshape', { x: flippedFilter(scope, filter, false) }, { shape: [kh, kw, channels * multiplier, 1] });
      const { input, pad: corrPad } = correlationInput(scope, dy, sh, sw, pads);
      const dx = scope.run('DepthwiseConv2dNative', { x: input, filter: perChannel }, {
        strides: [1, 1],
        pad: corrPad,
        dilations: [dh, dw],
        dimRoundingMode: undefined,
      } as never);
      if (multiplier === 1) return dx;
      const split = scope.run('Reshape', { x: dx }, { shape: [info.batchSize, info.inHeight, info.inWidth, channels, multiplier] });
      return scope.run('Sum', { x: split }, { axis: [4], keepDims: false });
    });
}
