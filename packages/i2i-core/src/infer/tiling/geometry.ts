/**
 * Tile planning and the per-axis geometry of the generator's layers. Every layer is separable in its geometry
 * (rows and columns follow the same rule independently), so a layer is described per axis: which input span
 * an output span needs, and how much of the layer's own border padding (reflect, zero, replicate) that span
 * still lacks. A tile's input region reaches the image border only where the tile's footprint does, so
 * padding that region by the missing amount with the layer's mode reproduces the whole-image padding exactly,
 * while interior tile edges read real neighbours.
 */
import { UsageError } from '@scenimefy/io/core';

/** Half-open index range [start, end) on one axis. */
export interface Span {
  readonly start: number;
  readonly end: number;
}

/** A rectangle of one level of the network, in that level's pixel coordinates. */
export interface TileRect {
  readonly y0: number;
  readonly x0: number;
  readonly height: number;
  readonly width: number;
}

/**
 * One layer on one axis for one output span: the input span it reads, the padding to add on each side of that
 * span (in the layer's border mode) before the layer runs without padding, and, for the upsampler, which part
 * of the layer's raw output is the requested span.
 */
export interface AxisStep {
  readonly need: Span;
  readonly padBefore: number;
  readonly padAfter: number;
  /** Slice of the unpadded layer output that is the requested span (upsampler only). */
  readonly crop?: Span;
}

/** [start, end) spans that split 0..length into ceil(length / tile) parts whose sizes differ by at most one. */
export function splitAxis(length: number, tile: number): Span[] {
  if (!Number.isInteger(length) || length < 1) throw new UsageError(`axis length must be a positive integer, got ${length}`);
  if (!Number.isInteger(tile) || tile < 1) throw new UsageError(`tile size must be a positive integer, got ${tile}`);
  const parts = Math.ceil(length / tile);
  const spans: Span[] = [];
  // Balanced parts instead of full tiles plus a remainder: a sliver tile would pay the whole halo for little output.
  for (let p = 0; p < parts; p++) {
    spans.push({ start: Math.floor((p * length) / parts), end: Math.floor(((p + 1) * length) / parts) });
  }
  return spans;
}

/**
 * Row-major tiles of at most tileSize × tileWidth (default tileSize × tileSize) that cover a height × width
 * image exactly once.
 */
export function planTiles(height: number, width: number, tileSize: number, tileWidth: number = tileSize): TileRect[] {
  const rows = splitAxis(height, tileSize);
  const cols = splitAxis(width, tileWidth);
  const tiles: TileRect[] = [];
  for (const r of rows) {
    for (const c of cols) tiles.push({ y0: r.start, x0: c.start, height: r.end - r.start, width: c.end - c.start });
  }
  return tiles;
}

/** The padded span [first, end) clipped to the axis, with what the clipping removed on each side. */
function clipped(first: number, end: number, length: number): AxisStep {
  const need = { start: Math.max(0, first), end: Math.min(length, end) };
  return { need, padBefore: need.start - first, padAfter: end - need.end };
}

/** A k×k stride-1 convolution with "same" padding (k−1)/2. */
export function convStep(out: Span, length: number, kernel: number): AxisStep {
  const pad = (kernel - 1) / 2;
  return clipped(out.start - pad, out.end + pad, length);
}

/**
 * The antialiased Downsample (SPEC §1 idx 7/11): pad 1, 3 taps, stride 2. Output o reads padded inputs
 * 2o − 1 … 2o + 1; output length is ceil(length / 2).
 */
export function downsampleStep(out: Span, length: number): AxisStep {
  return clipped(2 * out.start - 1, 2 * out.end, length);
}

/**
 * The Upsample (SPEC §1 idx 21/25): pad 1, transposed 4-tap filter with stride 2 and a crop of one on each side
 * (ONNX ConvTranspose pads 3). An input window [a − 1, b + 1) yields outputs [2a, 2b); output 2i reads inputs
 * i − 1, i and output 2i + 1 reads i, i + 1.
 */
export function upsampleStep(out: Span, length: number): AxisStep {
  const a = Math.floor(out.start / 2);
  const b = Math.ceil(out.end / 2);
  return { ...clipped(a - 1, b + 1, length), crop: { start: out.start - 2 * a, end: out.end - 2 * a } };
}
