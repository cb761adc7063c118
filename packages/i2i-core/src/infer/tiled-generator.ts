/**
 * Exact tiled inference of the Scenimefy generator (SPEC §1): the result equals whole-image inference up to
 * float rounding, while memory stays bounded by the tile size and the quarter-resolution activations.
 *
 * Each of the 23 InstanceNorms needs its layer's statistics over the whole image, so the image is processed
 * in passes. Pass k recomputes, tile by tile, the layers up to the k-th norm with the statistics already known
 * and sums that layer's per-channel moments; the last pass of a stage writes its result. The quarter-resolution
 * activations of the nine residual blocks are kept whole and run layer by layer in tiles; the two temporaries
 * they need also hold, before and after the blocks, the half-resolution input of conv 8 and output of conv 22
 * (2·ngf channels at half resolution is the same size), which saves recomputing the full-resolution head in the
 * last head pass and conv 22 in the tail passes. So at most three quarter-resolution activations are held
 * (398 MB at 1080×1920 with ngf 64), plus one tile's working set.
 */
import { InputError, ModelFormatError, UsageError, tensorToFloat32 } from '@scenimefy/io/core';
import type { TensorData, TensorMap } from '@scenimefy/io/core';

import { validatedGeneratorStateDict } from '../export/onnx';
import { INSTANCE_NORM_EPS } from '../layers/instance-norm';
import { UPSAMPLE_FILTER } from '../networks/blur';
import { RESNET_9BLOCKS, generatorModuleIndices } from '../networks/generator-layout';
import type { OrtRuntime } from './ort-runtime';
import { runChainTile } from './tiling/chain';
import { createChainSession } from './tiling/chain-graph';
import type { ChainSession, ChainSpec, ChannelAffine, ConvWeights, LayerSpec } from './tiling/chain-graph';
import { planTiles } from './tiling/geometry';
import type { TileRect } from './tiling/geometry';
import { ChannelMoments, addNormalized, allocateRegion, copyRect, spanLength } from './tiling/kernels';
import type { Region } from './tiling/kernels';

export { planTiles } from './tiling/geometry';
export type { TileRect } from './tiling/geometry';

/**
 * Default output tile side in full-resolution pixels. On a 2-core x86 box (ngf 64, 1024²) tiles of 128 and 192
 * were fastest (18.5 s, 19.5 s) and 512 slowest (34 s): onnxruntime's elementwise layers stay in cache on small
 * tiles, while the halo adds 10–20 % work to the full-resolution head layers at 128.
 */
export const DEFAULT_TILE_SIZE = 128;

const LAYOUT = generatorModuleIndices(RESNET_9BLOCKS);

export interface TiledGeneratorOptions {
  /** Output tile side in full-resolution pixels (default DEFAULT_TILE_SIZE); inner levels use tileSize/2, /4. */
  tileSize?: number;
  /** onnxruntime intra-op threads per convolution (default: onnxruntime's choice, all cores). */
  threads?: number;
  /** Key prefix of the generator's tensors, e.g. 'netG.' in a scenimefy checkpoint (default ''). */
  prefix?: string;
  /** Names the state dict's origin in error messages. */
  source?: string;
}

export interface TiledGenerator {
  readonly ngf: number;
  readonly tileSize: number;
  /** The generator's output [N, 3, H, W] for an input [N, 3, H, W] in [-1, 1]; H, W multiples of 4, ≥ 8. */
  run(input: Float32Array, shape: readonly [number, number, number, number]): Promise<Float32Array>;
  /** Frees the onnxruntime sessions; the object is unusable afterwards. */
  dispose(): Promise<void>;
}

/** One onnxruntime session per pass; the layer lists mirror SPEC §1's module indices. */
interface Passes {
  /** conv 1 (stats of IN 2). */
  head1: ChainSession;
  /** conv 1 → IN → conv 4 (stats of IN 5). */
  head2: ChainSession;
  /** conv 1 → IN → conv 4 → IN → down 7 → conv 8 (stats of IN 9; also returns down 7's output). */
  head3: ChainSession;
  /** conv 8 → IN → down 11 from down 7's output: the residual blocks' input. */
  head4: ChainSession;
  /** Per block: conv_block.1, and IN → conv_block.5. */
  blocks: Array<[ChainSession, ChainSession]>;
  /** up 21 → conv 22 (stats of IN 23). */
  tail1: ChainSession;
  /** IN → up 25 → conv 26 from conv 22's output (stats of IN 27). */
  tail2: ChainSession;
  /** IN → up 25 → conv 26 → IN → conv 30 → tanh. */
  tail3: ChainSession;
}

/**
 * A tiled generator from a generator state dict (SPEC §2 keys), its passes running as sessions of `runtime`
 * (onnxruntime-node or onnxruntime-web).
 */
export async function createTiledGenerator(
  runtime: OrtRuntime,
  stateDict: TensorMap,
  options: TiledGeneratorOptions = {},
): Promise<TiledGenerator> {
  const tileSize = options.tileSize ?? DEFAULT_TILE_SIZE;
  if (!Number.isInteger(tileSize) || tileSize < 1) {
    throw new UsageError(`tileSize must be a positive integer, got ${tileSize}`);
  }
  const threads = options.threads ?? 0;
  if (options.threads !== undefined && (!Number.isInteger(threads) || threads < 1)) {
    throw new UsageError(`threads must be a positive integer, got ${options.threads}`);
  }
  const { layout, tensors } = validatedGeneratorStateDict(stateDict, options);
  const { ngf } = layout;

  const conv = (key: string, pad: 'reflect' | 'zero', normalized = false): LayerSpec => ({
    kind: 'conv',
    conv: convWeights(tensors, key),
    pad,
    normalized,
  });
  const down = (key: string, channels: number): LayerSpec => ({ kind: 'down', filter: float32(tensors, key), channels, normalized: true });
  const up = (key: string, channels: number, normalized: boolean): LayerSpec => {
    const filter = float32(tensors, key);
    return isStandardUpsampleFilter(filter) ? { kind: 'up', channels, normalized } : { kind: 'up', filter, channels, normalized };
  };
  const model = (i: number): string => `model.${i}`;
  const conv1 = conv(model(LAYOUT.stemConv), 'reflect');
  const conv4 = conv(model(LAYOUT.downConv1), 'zero', true);
  const down7 = down(`${model(LAYOUT.down1)}.filt`, 2 * ngf);
  const conv8 = conv(model(LAYOUT.downConv2), 'zero');
  const down11 = down(`${model(LAYOUT.down2)}.filt`, 4 * ngf);
  const up21 = up(`${model(LAYOUT.up1)}.filt`, 4 * ngf, false);
  const conv22 = conv(model(LAYOUT.upConv1), 'zero');
  const up25 = up(`${model(LAYOUT.up2)}.filt`, 2 * ngf, true);
  const conv26 = conv(model(LAYOUT.upConv2), 'zero');
  const conv30 = conv(model(LAYOUT.headConv), 'reflect', true);

  const created: ChainSession[] = [];
  const pass = async (name: string, inChannels: number, layers: LayerSpec[], extra: Partial<ChainSpec> = {}): Promise<ChainSession> => {
    const session = await createChainSession(runtime, { name, inChannels, layers, threads, ...extra });
    created.push(session);
    return session;
  };
  let passes: Passes;
  try {
    const head1 = await pass('head1', 3, [conv1]);
    const head2 = await pass('head2', 3, [conv1, conv4]);
    const head3 = await pass('head3', 3, [conv1, conv4, down7, conv8], { keep: 2 });
    const head4 = await pass('head4', 2 * ngf, [conv8, down11]);
    const blocks: Array<[ChainSession, ChainSession]> = [];
    for (let b = 0; b < RESNET_9BLOCKS; b++) {
      const block = `${model(LAYOUT.firstBlock + b)}.conv_block`;
      blocks.push([
        await pass(`block${b}a`, 4 * ngf, [conv(`${block}.1`, 'reflect')]),
        await pass(`block${b}b`, 4 * ngf, [conv(`${block}.5`, 'reflect', true)]),
      ]);
    }
    const tail1 = await pass('tail1', 4 * ngf, [up21, conv22]);
    const tail2 = await pass('tail2', 2 * ngf, [up25, conv26]);
    const tail3 = await pass('tail3', 2 * ngf, [up25, conv26, conv30], { tanh: true });
    passes = { head1, head2, head3, head4, blocks, tail1, tail2, tail3 };
  } catch (error) {
    await Promise.all(created.map((s) => s.release()));
    throw error;
  }

  let disposed = false;
  return {
    ngf,
    tileSize,
    async run(input, shape) {
      if (disposed) throw new UsageError('the tiled generator was disposed');
      const [n, c, h, w] = shape;
      if (c !== 3 || !(n >= 1) || !(h >= 8) || !(w >= 8) || h % 4 !== 0 || w % 4 !== 0) {
        throw new InputError(`generator input must be [N, 3, H, W] with H and W multiples of 4 and at least 8, got [${shape.join(', ')}]`);
      }
      if (input.length !== n * c * h * w) {
        throw new InputError(`generator input has ${input.length} values, shape [${shape.join(', ')}] needs ${n * c * h * w}`);
      }
      const plane = c * h * w;
      const image = (i: number): Region => ({
        data: input.subarray(i * plane, (i + 1) * plane),
        channels: 3,
        rows: { start: 0, end: h },
        cols: { start: 0, end: w },
      });
      // One image (what the translator runs) returns its result buffer as it is: no second output-sized copy.
      if (n === 1) return generateImage(passes, image(0), tileSize, ngf);
      const output = new Float32Array(input.length);
      for (let i = 0; i < n; i++) output.set(await generateImage(passes, image(i), tileSize, ngf), i * plane);
      return output;
    },
    async dispose() {
      if (disposed) return;
      disposed = true;
      await Promise.all(created.map((s) => s.release()));
    },
  };
}

/** Runs a pass over every tile and hands each tile's output (and the kept layer's output) to `visit`. */
async function forEachTile(
  session: ChainSession,
  source: Region,
  tiles: readonly TileRect[],
  norms: readonly (ChannelAffine | undefined)[],
  visit: (tile: TileRect, output: Region, kept: Region | undefined) => void,
): Promise<void> {
  for (const tile of tiles) {
    const { output, kept } = await runChainTile(session, source, tile, norms);
    visit(tile, output, kept);
  }
}

/** InstanceNorm statistics of the pass's output over the whole image; optionally stores its output or kept layer. */
async function statisticsPass(
  session: ChainSession,
  source: Region,
  tiles: readonly TileRect[],
  norms: readonly (ChannelAffine | undefined)[],
  store?: Region,
): Promise<ChannelAffine> {
  const layers = session.layout.layers;
  const last = layers[layers.length - 1];
  if (last?.kind !== 'conv') throw new UsageError('instance norm statistics are taken after a convolution');
  const moments = new ChannelMoments(last.outChannels);
  await forEachTile(session, source, tiles, norms, (tile, output, kept) => {
    moments.add(output.data);
    if (store) copyRect(kept ?? output, store, spanOf(tile, 'rows'), spanOf(tile, 'cols'));
  });
  return moments.normalization(INSTANCE_NORM_EPS);
}

async function generateImage(passes: Passes, x: Region, tileSize: number, ngf: number): Promise<Float32Array> {
  const height = spanLength(x.rows);
  const width = spanLength(x.cols);
  // Tiles of the same footprint at every level: tileSize full-resolution pixels, tileSize/2 at half, /4 at quarter.
  const tiles = (factor: number): TileRect[] => planTiles(height / factor, width / factor, Math.max(1, Math.ceil(tileSize / factor)));
  const quarterRows = spanFrom(height / 4);
  const quarterCols = spanFrom(width / 4);
  const quarterValues = 4 * ngf * (height / 4) * (width / 4);
  // Two quarter-resolution activations: down 7's output, then the blocks' temporaries, then conv 22's output.
  const scratch = new Float32Array(2 * quarterValues);
  const halfResolution: Region = { data: scratch, channels: 2 * ngf, rows: spanFrom(height / 2), cols: spanFrom(width / 2) };

  // Head: conv 1 → IN → conv 4 → IN → down 7 → conv 8 → IN → down 11.
  const n2 = await statisticsPass(passes.head1, x, tiles(1), []);
  const n5 = await statisticsPass(passes.head2, x, tiles(1), [undefined, n2]);
  const n9 = await statisticsPass(passes.head3, x, tiles(2), [undefined, n2, n5], halfResolution);
  const state = allocateRegion(4 * ngf, quarterRows, quarterCols);
  await forEachTile(passes.head4, halfResolution, tiles(4), [undefined, n9], (tile, output) =>
    copyRect(output, state, spanOf(tile, 'rows'), spanOf(tile, 'cols')),
  );

  // Residual blocks at quarter resolution: state += IN(conv(pad(relu(IN(conv(pad(state))))))). Their tiles are
  // full-width bands: cropping a band and storing its result are contiguous copies per channel, where square
  // tiles cost a cache-missing row copy per channel and row (2.7 s of a 25 s run at 1024² with tile 256).
  const bands = planTiles(height / 4, width / 4, Math.ceil(tileSize / 4), width / 4);
  const inner: Region = { data: scratch.subarray(0, quarterValues), channels: 4 * ngf, rows: quarterRows, cols: quarterCols };
  const branch: Region = { data: scratch.subarray(quarterValues), channels: 4 * ngf, rows: quarterRows, cols: quarterCols };
  for (const [first, second] of passes.blocks) {
    const nA = await statisticsPass(first, state, bands, [], inner);
    const nB = await statisticsPass(second, inner, bands, [nA], branch);
    addNormalized(state, branch, nB);
  }

  // Tail: up 21 → conv 22 → IN → up 25 → conv 26 → IN → conv 30 → tanh.
  const n23 = await statisticsPass(passes.tail1, state, tiles(2), [], halfResolution);
  const n27 = await statisticsPass(passes.tail2, halfResolution, tiles(1), [n23]);
  const result = allocateRegion(3, x.rows, x.cols);
  await forEachTile(passes.tail3, halfResolution, tiles(1), [n23, undefined, n27], (tile, output) =>
    copyRect(output, result, spanOf(tile, 'rows'), spanOf(tile, 'cols')),
  );
  return result.data;
}

function spanFrom(length: number): { start: number; end: number } {
  return { start: 0, end: length };
}

function spanOf(tile: TileRect, axis: 'rows' | 'cols'): { start: number; end: number } {
  return axis === 'rows' ? { start: tile.y0, end: tile.y0 + tile.height } : { start: tile.x0, end: tile.x0 + tile.width };
}

function float32(tensors: Map<string, TensorData>, key: string): Float32Array {
  const tensor = tensors.get(key);
  if (tensor === undefined) throw new ModelFormatError(`state dict: missing '${key}'`);
  return tensorToFloat32(tensor);
}

function convWeights(tensors: Map<string, TensorData>, key: string): ConvWeights {
  const weight = tensors.get(`${key}.weight`);
  if (weight === undefined) throw new ModelFormatError(`state dict: missing '${key}.weight'`);
  const [outChannels = 0, inChannels = 0, kernel = 0] = weight.shape;
  return { weight: tensorToFloat32(weight), bias: float32(tensors, `${key}.bias`), inChannels, outChannels, kernel };
}

/** Whether every channel of an Upsample `filt` is UPSAMPLE_FILTER, i.e. bilinear ×2 (SPEC §1). */
function isStandardUpsampleFilter(filter: Float32Array): boolean {
  for (let i = 0; i < filter.length; i++) {
    if (Math.abs((filter[i] as number) - (UPSAMPLE_FILTER[i % UPSAMPLE_FILTER.length] as number)) > 1e-6) return false;
  }
  return true;
}
