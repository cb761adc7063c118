/**
 * Runs a chain of generator layers for one output tile. The input span of every layer is derived backwards
 * from the tile (each layer's halo, clipped to its level), the source region is cropped from the whole source
 * activation, and the chain's onnxruntime session runs on it with the per-layer padding the clipping left out.
 * The result equals running the layers on the whole image and cropping the tile.
 */
import { UsageError } from '@scenimefy/io/core';

import type { ChainSession, ChannelAffine, LayerGeometry, LayerShape } from './chain-graph';
import { convStep, downsampleStep, upsampleStep } from './geometry';
import type { AxisStep, Span, TileRect } from './geometry';
import { cropRegion, spanLength } from './kernels';
import type { Region } from './kernels';

/** Spatial size of one level of the network. */
export interface Extent {
  readonly height: number;
  readonly width: number;
}

export function layerOutputExtent(layer: LayerShape, input: Extent): Extent {
  switch (layer.kind) {
    case 'conv':
      return input;
    case 'down':
      return { height: Math.ceil(input.height / 2), width: Math.ceil(input.width / 2) };
    case 'up':
      return { height: 2 * input.height, width: 2 * input.width };
  }
}

function layerStep(layer: LayerShape, out: Span, length: number): AxisStep {
  switch (layer.kind) {
    case 'conv':
      return convStep(out, length, layer.kernel);
    case 'down':
      return downsampleStep(out, length);
    case 'up':
      return upsampleStep(out, length);
  }
}

/** Per layer: its geometry for the tile and the span of its output; the first layer's `need` is the source crop. */
export function chainGeometry(
  layers: readonly LayerShape[],
  sourceExtent: Extent,
  tile: TileRect,
): Array<LayerGeometry & { outRows: Span; outCols: Span }> {
  const extents: Extent[] = [sourceExtent];
  for (const layer of layers) extents.push(layerOutputExtent(layer, extents[extents.length - 1] as Extent));
  const last = extents[layers.length] as Extent;
  if (
    tile.y0 < 0 ||
    tile.x0 < 0 ||
    tile.y0 + tile.height > last.height ||
    tile.x0 + tile.width > last.width ||
    tile.height < 1 ||
    tile.width < 1
  ) {
    throw new UsageError(
      `tile ${tile.height}×${tile.width} at (${tile.y0}, ${tile.x0}) is outside the ${last.height}×${last.width} output`,
    );
  }
  const steps = new Array<LayerGeometry & { outRows: Span; outCols: Span }>(layers.length);
  let outRows: Span = { start: tile.y0, end: tile.y0 + tile.height };
  let outCols: Span = { start: tile.x0, end: tile.x0 + tile.width };
  for (let i = layers.length - 1; i >= 0; i--) {
    const layer = layers[i] as LayerShape;
    const extent = extents[i] as Extent;
    const rows = layerStep(layer, outRows, extent.height);
    const cols = layerStep(layer, outCols, extent.width);
    steps[i] = { rows, cols, outRows, outCols };
    outRows = rows.need;
    outCols = cols.need;
  }
  return steps;
}

/**
 * One tile of the chain: the output region (exactly the tile) and, when the session keeps a layer's output,
 * that region (the tile's footprint at that layer, with the halo later layers needed).
 */
export async function runChainTile(
  session: ChainSession,
  source: Region,
  tile: TileRect,
  norms: readonly (ChannelAffine | undefined)[],
): Promise<{ output: Region; kept?: Region }> {
  const { layers, keep } = session.layout;
  const extent: Extent = { height: spanLength(source.rows), width: spanLength(source.cols) };
  if (source.rows.start !== 0 || source.cols.start !== 0) throw new UsageError('a chain source must be a whole activation');
  const geometry = chainGeometry(layers, extent, tile);
  const first = geometry[0] as LayerGeometry;
  const input = cropRegion(source, first.rows.need, first.cols.need);
  const result = await session.run(input.data, spanLength(input.rows), spanLength(input.cols), geometry, norms);
  const last = geometry[layers.length - 1] as { outRows: Span; outCols: Span };
  const output = asRegion(result.output, last.outRows, last.outCols, (layers[layers.length - 1] as LayerShape).outChannels);
  if (keep === undefined || result.kept === undefined) return { output };
  const kept = geometry[keep] as { outRows: Span; outCols: Span };
  return { output, kept: asRegion(result.kept, kept.outRows, kept.outCols, (layers[keep] as LayerShape).outChannels) };
}

function asRegion(
  out: { data: Float32Array; channels: number; height: number; width: number },
  rows: Span,
  cols: Span,
  channels: number,
): Region {
  if (out.channels !== channels || out.height !== spanLength(rows) || out.width !== spanLength(cols)) {
    throw new UsageError(
      `a tiled pass returned [${out.channels}, ${out.height}, ${out.width}], expected [${channels}, ${spanLength(rows)}, ${spanLength(cols)}]`,
    );
  }
  return { data: out.data, channels, rows, cols };
}
