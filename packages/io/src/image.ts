/**
 * In-memory RGB images and the reference's pixel arithmetic: uint8 HWC ↔ float32 NCHW in [-1, 1] (torchvision
 * ToTensor + Normalize(0.5, 0.5) and the reference's `tensor2im`), the `make_power_2` size rule and PIL's BICUBIC
 * resize, all reproduced bit for bit (SPEC §8). Decoding and encoding files live in image-decode.ts / image-encode.ts.
 */
import { ContractError, InputError, NumericError, UsageError } from './errors';

/** What the decoder saw in the file, before any conversion. */
export interface ImageSource {
  /** The path, or the name given for bytes; used in error messages downstream. */
  file: string;
  /** Decoder that read it: 'jpeg' | 'png' | 'webp' | 'tiff' | 'gif' | 'avif' | 'heif'. */
  format: string;
  /** Stored size, before EXIF orientation. */
  width: number;
  height: number;
  /** Bands in the file, alpha included (1 grey, 2 grey+alpha, 3 RGB, 4 RGBA or CMYK). */
  channels: number;
  hasAlpha: boolean;
  /** EXIF orientation tag (1–8); 1 when the file has none. */
  orientation: number;
  /** Whether `orientation` was applied to the pixels (false when it is 1 or decoding used orientation: 'ignore'). */
  orientationApplied: boolean;
  /** libvips colour space interpretation of the stored pixels: 'srgb', 'b-w', 'cmyk', 'rgb16', 'grey16', … */
  space: string;
  /** libvips sample format of the stored pixels: 'uchar' (8-bit), 'ushort' (16-bit), … */
  depth: string;
  /** Whether the file embeds an ICC profile, and whether it was used to convert the pixels to sRGB. */
  hasIccProfile: boolean;
  iccProfileApplied: boolean;
}

/** An 8-bit sRGB image, HWC interleaved RGB (`data.length === width * height * 3`). */
export interface RgbImage {
  width: number;
  height: number;
  data: Uint8Array;
  /** Present on decoded images (and images resized from them); absent on images made from tensors. */
  source?: ImageSource;
}

/** A float32 NCHW tensor with batch 1 and 3 channels. */
export interface ImageTensor {
  data: Float32Array;
  shape: [1, 3, number, number];
}

function checkRgbImage(img: RgbImage, what: string): void {
  const { width, height, data } = img;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new ContractError(`${what}: size must be positive integers, got ${width}×${height}`, { field: 'width/height' });
  }
  if (data.length !== width * height * 3) {
    throw new ContractError(`${what}: ${width}×${height} RGB needs ${width * height * 3} bytes, got ${data.length}`, {
      field: 'data',
    });
  }
}

/**
 * The reference's input tensor: torchvision ToTensor then Normalize(0.5, 0.5), i.e. float32 `(v/255 − 0.5)/0.5`
 * with each operation rounded to float32 as torch does (SPEC §8 step 3).
 *
 * Example: imageToTensor({ width: 1, height: 1, data: Uint8Array.of(0, 128, 255) }).data
 *   → Float32Array [-1, 0.003921627998352051, 1]
 */
export function imageToTensor(img: RgbImage): ImageTensor {
  checkRgbImage(img, 'imageToTensor');
  const { width: w, height: h, data: src } = img;
  // One table of the 256 possible values keeps the float32 rounding in one place and the loop a lookup.
  const table = new Float32Array(256);
  for (let v = 0; v < 256; v++) {
    const unit = Math.fround(v / 255);
    table[v] = Math.fround(Math.fround(unit - 0.5) / 0.5);
  }
  const plane = w * h;
  const out = new Float32Array(3 * plane);
  for (let i = 0; i < plane; i++) {
    out[i] = table[src[3 * i]!]!;
    out[plane + i] = table[src[3 * i + 1]!]!;
    out[2 * plane + i] = table[src[3 * i + 2]!]!;
  }
  return { data: out, shape: [1, 3, h, w] };
}

export interface TensorToImageOptions {
  /**
   * 'truncate' (default): the reference's `astype(uint8)` after `(y+1)/2*255` in float32 (SPEC §11 #7).
   * 'round': nearest integer, ties up — the corrected option (`--round-output`).
   */
  rounding?: 'truncate' | 'round';
}

/**
 * The reference's `tensor2im`: the first image of an NCHW (or CHW) float32 tensor, clamped to [−1, 1], mapped by
 * `(y + 1) / 2 * 255` in float32 and truncated to uint8. A 1-channel tensor is tiled to RGB, as the reference does.
 * Throws NumericError on NaN (the reference would write undefined bytes) and ContractError on a bad shape.
 */
export function tensorToImage(data: Float32Array, shape: readonly number[], options: TensorToImageOptions = {}): RgbImage {
  if (shape.length !== 3 && shape.length !== 4) {
    throw new ContractError(`tensorToImage: expected shape [N,C,H,W] or [C,H,W], got [${shape.join(',')}]`, { field: 'shape' });
  }
  const [n, c, h, w] = shape.length === 4 ? (shape as [number, number, number, number]) : [1, ...(shape as [number, number, number])];
  if (![n, c, h, w].every((d) => Number.isInteger(d) && d >= 1) || (c !== 1 && c !== 3)) {
    throw new ContractError(`tensorToImage: expected N ≥ 1, C ∈ {1, 3}, H, W ≥ 1, got [${shape.join(',')}]`, { field: 'shape' });
  }
  if (data.length !== n * c * h * w) {
    throw new ContractError(`tensorToImage: shape [${shape.join(',')}] needs ${n * c * h * w} values, got ${data.length}`, {
      field: 'shape',
    });
  }
  const rounding = options.rounding ?? 'truncate';
  if (rounding !== 'truncate' && rounding !== 'round') {
    throw new UsageError(`tensorToImage: rounding must be 'truncate' or 'round', got '${String(rounding)}'`);
  }
  const plane = h * w;
  const out = new Uint8Array(plane * 3);
  let nanCount = 0;
  for (let ch = 0; ch < 3; ch++) {
    const base = (c === 1 ? 0 : ch) * plane;
    for (let i = 0; i < plane; i++) {
      const y = data[base + i]!;
      if (Number.isNaN(y)) {
        nanCount++;
        continue;
      }
      const clamped = y < -1 ? -1 : y > 1 ? 1 : y;
      // SPEC §8 step 5: three float32 operations; rounding after each decides values that land on an integer.
      const scaled = Math.fround(Math.fround(Math.fround(clamped + 1) / 2) * 255);
      out[3 * i + ch] = rounding === 'truncate' ? Math.trunc(scaled) : Math.floor(scaled + 0.5);
    }
  }
  if (nanCount > 0) {
    throw new NumericError(`tensorToImage: the tensor holds ${nanCount} NaN value(s); the model output is broken`);
  }
  return { width: w, height: h, data: out };
}

/**
 * Python 3's round(): nearest integer, ties to even. `x - floor(x)` is exact for the magnitudes used here.
 */
function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

export interface ResizeTarget {
  width: number;
  height: number;
  /** False when the size is already a multiple of `base`: the reference then skips the resize entirely. */
  resized: boolean;
}

/**
 * The reference's `__make_power_2(img, base=4)` size: `int(round(side / base) * base)` with Python's half-to-even
 * round (SPEC §8 step 2, §11 #7): 258 → 256, 262 → 264.
 *
 * A side that rounds to 0 (1 or 2 pixels at base 4) makes the reference crash inside PIL; here it is an InputError
 * naming the size (and `file` when given), since no sensible picture is that small.
 *
 * Example: referenceResizeTarget(262, 258) → { width: 264, height: 256, resized: true }
 */
export function referenceResizeTarget(width: number, height: number, base = 4, file?: string): ResizeTarget {
  if (!Number.isInteger(base) || base < 1) throw new UsageError(`referenceResizeTarget: base must be a positive integer, got ${base}`);
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new UsageError(`referenceResizeTarget: size must be positive integers, got ${width}×${height}`);
  }
  const w = roundHalfEven(width / base) * base;
  const h = roundHalfEven(height / base) * base;
  if (w === 0 || h === 0) {
    const min = Math.floor(base / 2) + 1;
    throw new InputError(
      `image too small: ${width}×${height} pixels; each side must be at least ${min} pixels (it is rounded to a multiple of ${base})`,
      file !== undefined ? { file } : {},
    );
  }
  return { width: w, height: h, resized: w !== width || h !== height };
}

export interface ResizeOptions {
  /**
   * 'bicubic-pil': PIL's `Image.resize(size, Image.BICUBIC)` reproduced exactly (cubic convolution a = −0.5,
   * support scaled when downscaling, fixed-point 8-bit passes). sharp's kernels differ from it by up to 128 levels
   * at a one-pixel size change, so they are not offered.
   */
  kernel?: 'bicubic-pil';
}

/** PIL's bicubic filter (Resample.c `bicubic_filter`, a = −0.5). */
function bicubicWeight(x: number): number {
  const a = -0.5;
  if (x < 0) x = -x;
  if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
  return 0;
}

const PRECISION_BITS = 32 - 8 - 2;

interface Coefficients {
  /** Per output index: first input index and tap count. */
  start: Int32Array;
  count: Int32Array;
  /** Fixed-point weights, `ksize` per output index. */
  weights: Int32Array;
  ksize: number;
}

/** Resample.c `precompute_coeffs` followed by `normalize_coeffs_8bpc`, in the same double arithmetic. */
function pilCoefficients(inSize: number, outSize: number): Coefficients {
  const support0 = 2;
  const scale = inSize / outSize;
  const filterscale = scale < 1 ? 1 : scale;
  const support = support0 * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const start = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const weights = new Int32Array(outSize * ksize);
  const k = new Float64Array(ksize);
  const ss = 1 / filterscale;
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    // C's (int) cast truncates toward zero; negative values are clamped to 0 right after.
    let xmin = Math.trunc(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    let xmax = Math.trunc(center + support + 0.5);
    if (xmax > inSize) xmax = inSize;
    xmax -= xmin;
    let ww = 0;
    for (let x = 0; x < xmax; x++) {
      const w = bicubicWeight((x + xmin - center + 0.5) * ss);
      k[x] = w;
      ww += w;
    }
    for (let x = 0; x < xmax; x++) {
      const v = ww !== 0 ? k[x]! / ww : k[x]!;
      weights[xx * ksize + x] = v < 0 ? Math.trunc(-0.5 + v * (1 << PRECISION_BITS)) : Math.trunc(0.5 + v * (1 << PRECISION_BITS));
    }
    start[xx] = xmin;
    count[xx] = xmax;
  }
  return { start, count, weights, ksize };
}

/** Resample.c `clip8`: arithmetic shift, then clamp to [0, 255]. */
function clip8(acc: number): number {
  const v = acc >> PRECISION_BITS;
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

function resampleHorizontal(src: Uint8Array, inW: number, rows: number, outW: number): Uint8Array {
  const { start, count, weights, ksize } = pilCoefficients(inW, outW);
  const out = new Uint8Array(outW * rows * 3);
  const half = 1 << (PRECISION_BITS - 1);
  for (let y = 0; y < rows; y++) {
    const rowIn = y * inW * 3;
    const rowOut = y * outW * 3;
    for (let xx = 0; xx < outW; xx++) {
      const x0 = start[xx]!;
      const n = count[xx]!;
      const kOff = xx * ksize;
      let s0 = half;
      let s1 = half;
      let s2 = half;
      for (let x = 0; x < n; x++) {
        const wgt = weights[kOff + x]!;
        const p = rowIn + (x0 + x) * 3;
        s0 += src[p]! * wgt;
        s1 += src[p + 1]! * wgt;
        s2 += src[p + 2]! * wgt;
      }
      const q = rowOut + xx * 3;
      out[q] = clip8(s0);
      out[q + 1] = clip8(s1);
      out[q + 2] = clip8(s2);
    }
  }
  return out;
}

function resampleVertical(src: Uint8Array, width: number, inH: number, outH: number): Uint8Array {
  const { start, count, weights, ksize } = pilCoefficients(inH, outH);
  const stride = width * 3;
  const out = new Uint8Array(outH * stride);
  const half = 1 << (PRECISION_BITS - 1);
  for (let yy = 0; yy < outH; yy++) {
    const y0 = start[yy]!;
    const n = count[yy]!;
    const kOff = yy * ksize;
    const rowOut = yy * stride;
    for (let i = 0; i < stride; i++) {
      let s = half;
      for (let y = 0; y < n; y++) s += src[(y0 + y) * stride + i]! * weights[kOff + y]!;
      out[rowOut + i] = clip8(s);
    }
  }
  return out;
}

/**
 * Resize to exactly `width`×`height` (aspect ratio not kept), as PIL's `img.resize((w, h), Image.BICUBIC)` does for
 * an RGB image: a horizontal pass, then a vertical one, each rounding to uint8; a pass whose axis keeps its size is
 * skipped, and an unchanged size returns a copy. `source` is carried over.
 *
 * Hand-written because the reference resizes inputs whose sides are not multiples of 4 with PIL, and no npm
 * library reproduces PIL's fixed-point coefficients; checked bit for bit against Pillow output.
 */
export function resizeImage(img: RgbImage, width: number, height: number, options: ResizeOptions = {}): RgbImage {
  checkRgbImage(img, 'resizeImage');
  const kernel = options.kernel ?? 'bicubic-pil';
  if (kernel !== 'bicubic-pil') throw new UsageError(`resizeImage: unknown kernel '${String(kernel)}' (known: bicubic-pil)`);
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new UsageError(`resizeImage: target size must be positive integers, got ${width}×${height}`);
  }
  let data = img.data;
  let w = img.width;
  if (width !== img.width) {
    data = resampleHorizontal(data, img.width, img.height, width);
    w = width;
  }
  if (height !== img.height) data = resampleVertical(data, w, img.height, height);
  if (data === img.data) data = img.data.slice();
  const out: RgbImage = { width, height, data };
  if (img.source !== undefined) out.source = img.source;
  return out;
}
