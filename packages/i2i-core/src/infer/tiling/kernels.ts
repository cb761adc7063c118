/**
 * The memory-bound glue of the tiled generator on Float32Array regions: crops and copies between tiles and
 * whole activations, per-channel moments for InstanceNorm, and the residual add. The layers run on onnxruntime.
 */
import { UsageError } from '@scenimefy/io/core';

import type { ChannelAffine } from './chain-graph';
import type { Span } from './geometry';

/** Channel-major data [channels, rows, cols] that holds the rows × cols window of a level. */
export interface Region {
  readonly data: Float32Array;
  readonly channels: number;
  readonly rows: Span;
  readonly cols: Span;
}

export function spanLength(span: Span): number {
  return span.end - span.start;
}

/** A zero-filled region (allocations of typed arrays are zeroed). */
export function allocateRegion(channels: number, rows: Span, cols: Span): Region {
  return { data: new Float32Array(channels * spanLength(rows) * spanLength(cols)), channels, rows, cols };
}

function assertCovers(region: Region, rows: Span, cols: Span, what: string): void {
  if (rows.start < region.rows.start || rows.end > region.rows.end || cols.start < region.cols.start || cols.end > region.cols.end) {
    throw new UsageError(
      `${what} needs rows [${rows.start}, ${rows.end}) × cols [${cols.start}, ${cols.end}) but the region holds ` +
        `[${region.rows.start}, ${region.rows.end}) × [${region.cols.start}, ${region.cols.end})`,
    );
  }
}

/** Copies the rows × cols window of `src` into the same window of `dst` (both must contain it). */
export function copyRect(src: Region, dst: Region, rows: Span, cols: Span): void {
  assertCovers(src, rows, cols, 'copy source');
  assertCovers(dst, rows, cols, 'copy destination');
  if (src.channels !== dst.channels) {
    throw new UsageError(`copy between regions of ${src.channels} and ${dst.channels} channels`);
  }
  const srcRows = spanLength(src.rows);
  const srcCols = spanLength(src.cols);
  const dstRows = spanLength(dst.rows);
  const dstCols = spanLength(dst.cols);
  const width = spanLength(cols);
  const whole = src.cols.start === cols.start && dst.cols.start === cols.start && srcCols === width && dstCols === width;
  for (let ch = 0; ch < src.channels; ch++) {
    const s = (ch * srcRows + rows.start - src.rows.start) * srcCols + cols.start - src.cols.start;
    const d = (ch * dstRows + rows.start - dst.rows.start) * dstCols + cols.start - dst.cols.start;
    if (whole) {
      // Full-width windows are one contiguous block per channel.
      dst.data.set(src.data.subarray(s, s + spanLength(rows) * width), d);
      continue;
    }
    const a = src.data;
    const b = dst.data;
    for (let r = 0; r < spanLength(rows); r++) {
      const s0 = s + r * srcCols;
      const d0 = d + r * dstCols;
      // A subarray view costs more than copying a short row element by element (2.7 s of a 28 s run at tile 256).
      if (width >= 512) b.set(a.subarray(s0, s0 + width), d0);
      else for (let k = 0; k < width; k++) b[d0 + k] = a[s0 + k] as number;
    }
  }
}

/** The rows × cols window of `src` as its own contiguous region (no copy when it already is exactly that). */
export function cropRegion(src: Region, rows: Span, cols: Span): Region {
  if (src.rows.start === rows.start && src.rows.end === rows.end && src.cols.start === cols.start && src.cols.end === cols.end) {
    return src;
  }
  const out = allocateRegion(src.channels, rows, cols);
  copyRect(src, out, rows, cols);
  return out;
}

/** state += (branch − mean)·scale per channel, elementwise over two regions of the same shape. */
export function addNormalized(state: Region, branch: Region, affine: ChannelAffine): void {
  const plane = spanLength(state.rows) * spanLength(state.cols);
  if (branch.data.length !== state.data.length || affine.mean.length !== state.channels) {
    throw new UsageError(
      `residual add of ${branch.data.length} values into ${state.data.length} with ${affine.mean.length} channels of statistics`,
    );
  }
  const s = state.data;
  const b = branch.data;
  for (let ch = 0; ch < state.channels; ch++) {
    const mean = affine.mean[ch] as number;
    const scale = affine.scale[ch] as number;
    // Math.fround rounds the normalised branch to float32 before the add, as the whole-image graph does.
    for (let i = ch * plane, end = i + plane; i < end; i++) s[i] = (s[i] as number) + Math.fround(((b[i] as number) - mean) * scale);
  }
}

/**
 * Per-channel first and second moments over many tiles, for InstanceNorm statistics of a whole image.
 * Sums are float64 and taken around a per-channel shift (the first tile's mean), so E[(x−K)²] − E[x−K]² does not
 * cancel catastrophically when the mean is large next to the spread.
 */
export class ChannelMoments {
  private readonly shift: Float64Array;
  private readonly sum: Float64Array;
  private readonly sumSquares: Float64Array;
  private count = 0;

  constructor(readonly channels: number) {
    this.shift = new Float64Array(channels);
    this.sum = new Float64Array(channels);
    this.sumSquares = new Float64Array(channels);
  }

  /** Adds every pixel of a [channels, pixels] buffer (a tile's own output). */
  add(data: Float32Array): void {
    const n = data.length / this.channels;
    if (!Number.isInteger(n)) throw new UsageError(`${data.length} values are not ${this.channels} channels of pixels`);
    if (n === 0) return;
    const first = this.count === 0;
    for (let ch = 0; ch < this.channels; ch++) {
      const start = ch * n;
      const end = start + n;
      if (first) {
        let total = 0;
        for (let i = start; i < end; i++) total += data[i] as number;
        this.shift[ch] = total / n;
      }
      const k = this.shift[ch] as number;
      // Two independent pairs of accumulators halve the add-latency chain that bounds this loop.
      let s1a = 0;
      let s2a = 0;
      let s1b = 0;
      let s2b = 0;
      let i = start;
      for (; i + 1 < end; i += 2) {
        const d = (data[i] as number) - k;
        const e = (data[i + 1] as number) - k;
        s1a += d;
        s2a += d * d;
        s1b += e;
        s2b += e * e;
      }
      if (i < end) {
        const d = (data[i] as number) - k;
        s1a += d;
        s2a += d * d;
      }
      this.sum[ch] = (this.sum[ch] as number) + s1a + s1b;
      this.sumSquares[ch] = (this.sumSquares[ch] as number) + s2a + s2b;
    }
    this.count += n;
  }

  /** Pixels added per channel so far. */
  get pixels(): number {
    return this.count;
  }

  /** The InstanceNorm of everything added: biased variance, `eps` inside the root. */
  normalization(eps: number): ChannelAffine {
    if (this.count === 0) throw new UsageError('instance norm statistics over zero pixels');
    const mean = new Float32Array(this.channels);
    const variance = new Float32Array(this.channels);
    const scale = new Float32Array(this.channels);
    for (let ch = 0; ch < this.channels; ch++) {
      const m = (this.sum[ch] as number) / this.count;
      const v = Math.max(0, (this.sumSquares[ch] as number) / this.count - m * m);
      mean[ch] = (this.shift[ch] as number) + m;
      variance[ch] = v;
      scale[ch] = 1 / Math.sqrt(v + eps);
    }
    return { mean, variance, scale };
  }
}
