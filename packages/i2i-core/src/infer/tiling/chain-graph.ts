/**
 * One tiled pass as one onnxruntime session: a chain of generator layers whose tile geometry arrives as inputs.
 * Each layer is `[BatchNormalization(mean, variance) + Relu] → Pad(pads, mode) → Conv | depthwise blur Conv |
 * Resize or ConvTranspose + Slice`, with no padding inside the convolutions: the per-tile `pads` (and the
 * upsampler's crop) say how much of the layer's border padding the tile's region lacks, so image borders get
 * the layer's own padding and tile edges read real neighbours. The InstanceNorm statistics of a layer's input
 * are inputs too, as they come from earlier passes over the whole image. Weights are initializers, so
 * onnxruntime pre-packs them.
 */
import { BackendError, UsageError } from '@scenimefy/io/core';

import { INSTANCE_NORM_EPS } from '../../layers/instance-norm';
import {
  FLOAT,
  INT64,
  OnnxGraphBuilder,
  floatAttr,
  floatTensor,
  int64Tensor,
  intAttr,
  intsAttr,
  irVersionForOpset,
  stringAttr,
  tensorValueInfo,
} from '../../onnx/graph-builder';
import { firstLine } from '../onnx-session';
import type { OrtInferenceSession, OrtRuntime, OrtSessionOptions, OrtTensor } from '../ort-runtime';
import { float32Output } from '../ort-runtime';
import type { AxisStep } from './geometry';

const OPSET = 17;

export type PadMode = 'reflect' | 'zero' | 'replicate';

/** A convolution's weights, [out, in, k, k] row-major. */
export interface ConvWeights {
  weight: Float32Array;
  bias: Float32Array;
  inChannels: number;
  outChannels: number;
  kernel: number;
}

/** A finished InstanceNorm: per-channel mean, biased variance and 1/sqrt(variance + eps). */
export interface ChannelAffine {
  readonly mean: Float32Array;
  readonly variance: Float32Array;
  readonly scale: Float32Array;
}

/**
 * `normalized`: the layer's input is the raw output of a convolution and goes through InstanceNorm + ReLU first
 * (in this generator every norm that feeds a layer is followed by a ReLU; the residual branch's second norm
 * has none and is applied outside the graph, before the add).
 */
export type LayerSpec =
  | { readonly kind: 'conv'; readonly conv: ConvWeights; readonly pad: PadMode; readonly normalized?: boolean }
  /** Downsample: depthwise [C, 1, 3, 3] blur, stride 2, reflect padding. */
  | { readonly kind: 'down'; readonly filter: Float32Array; readonly channels: number; readonly normalized?: boolean }
  /**
   * Upsample: depthwise transposed [C, 1, 4, 4] filter, stride 2, replicate padding. Without a filter it is the
   * standard one, written as Resize (bilinear ×2, half_pixel), which SPEC §1 shows is the same map and which
   * onnxruntime runs over twice as fast as a grouped ConvTranspose (36 ms against 84 ms per 256² image).
   */
  | { readonly kind: 'up'; readonly filter?: Float32Array; readonly channels: number; readonly normalized?: boolean };

/** What running a chain needs to know about a layer once its weights are inside the session. */
export type LayerShape =
  | { readonly kind: 'conv'; readonly kernel: number; readonly outChannels: number; readonly normalized: boolean }
  | { readonly kind: 'down'; readonly outChannels: number; readonly normalized: boolean }
  | { readonly kind: 'up'; readonly outChannels: number; readonly normalized: boolean; readonly resize: boolean };

export function layerShape(layer: LayerSpec): LayerShape {
  const normalized = layer.normalized ?? false;
  switch (layer.kind) {
    case 'conv':
      return { kind: 'conv', kernel: layer.conv.kernel, outChannels: layer.conv.outChannels, normalized };
    case 'down':
      return { kind: 'down', outChannels: layer.channels, normalized };
    case 'up':
      return { kind: 'up', outChannels: layer.channels, normalized, resize: layer.filter === undefined };
  }
}

/** A chain without its weights. */
export interface ChainLayout {
  readonly name: string;
  readonly inChannels: number;
  readonly layers: readonly LayerShape[];
  readonly keep?: number;
  readonly tanh?: boolean;
}

export interface ChainSpec {
  readonly name: string;
  readonly inChannels: number;
  readonly layers: readonly LayerSpec[];
  /** Also output the result of this layer (e.g. to keep a half-resolution activation whole). */
  readonly keep?: number;
  /** Apply tanh to the last layer's output (the generator's final activation). */
  readonly tanh?: boolean;
  /** onnxruntime intra-op threads (0: its default, all cores). */
  readonly threads: number;
}

/** The geometry of one layer for one tile: one step per axis. */
export interface LayerGeometry {
  readonly rows: AxisStep;
  readonly cols: AxisStep;
}

export interface ChainOutput {
  readonly data: Float32Array;
  readonly channels: number;
  readonly height: number;
  readonly width: number;
}

export interface ChainSession {
  /** The chain's layout; the session holds no reference to the weights it was built from. */
  readonly layout: ChainLayout;
  /**
   * Runs the chain on one source region [inChannels, height, width] (the first layer's input span). `norms[i]`
   * is required exactly for the layers marked `normalized`.
   */
  run(
    source: Float32Array,
    height: number,
    width: number,
    geometry: readonly LayerGeometry[],
    norms: readonly (ChannelAffine | undefined)[],
  ): Promise<{ output: ChainOutput; kept?: ChainOutput }>;
  release(): Promise<void>;
}

function layerInChannels(layer: LayerSpec): number {
  return layer.kind === 'conv' ? layer.conv.inChannels : layer.channels;
}

function layerPadMode(layer: LayerSpec): PadMode {
  if (layer.kind === 'conv') return layer.pad;
  return layer.kind === 'down' ? 'reflect' : 'replicate';
}

/** A serialized ModelProto of the chain (see the module comment for its inputs). */
export function chainModelBytes(spec: ChainSpec): Uint8Array {
  if (spec.layers.length === 0) throw new UsageError(`${spec.name}: a layer chain needs at least one layer`);
  const g = new OnnxGraphBuilder();
  g.inputs.push(imageValue('x', spec.inChannels));
  if (spec.layers.some((layer) => layer.kind === 'up')) g.initializer('crop_axes', () => int64Tensor('', [2, 3]));

  let x = 'x';
  let channels = spec.inChannels;
  spec.layers.forEach((layer, i) => {
    if (layerInChannels(layer) !== channels) {
      throw new UsageError(`${spec.name}: layer ${i} takes ${layerInChannels(layer)} channels, it gets ${channels}`);
    }
    if (layer.normalized) {
      // BatchNormalization with the whole image's mean and variance is the finished InstanceNorm in one op.
      g.inputs.push(tensorValueInfo(`mean_${i}`, FLOAT, [channels]), tensorValueInfo(`variance_${i}`, FLOAT, [channels]));
      const ones = g.initializer(`ones_${channels}`, () => floatTensor('', [channels], new Float32Array(channels).fill(1)));
      const zeros = g.initializer(`zeros_${channels}`, () => floatTensor('', [channels], new Float32Array(channels)));
      x = g.node(
        'BatchNormalization',
        [x, ones, zeros, `mean_${i}`, `variance_${i}`],
        [floatAttr('epsilon', INSTANCE_NORM_EPS)],
        `normalized_${i}`,
      );
      x = g.node('Relu', [x], [], `relu_${i}`);
    }
    g.inputs.push(tensorValueInfo(`pads_${i}`, INT64, [8]));
    const mode = { reflect: 'reflect', zero: 'constant', replicate: 'edge' }[layerPadMode(layer)];
    x = g.node('Pad', [x, `pads_${i}`], [stringAttr('mode', mode)], `padded_${i}`);
    if (layer.kind === 'conv') {
      const { conv } = layer;
      const w = g.initializer(`w_${i}`, () => floatTensor('', [conv.outChannels, conv.inChannels, conv.kernel, conv.kernel], conv.weight));
      const b = g.initializer(`b_${i}`, () => floatTensor('', [conv.outChannels], conv.bias));
      x = g.node(
        'Conv',
        [x, w, b],
        [intsAttr('kernel_shape', [conv.kernel, conv.kernel]), intsAttr('pads', [0, 0, 0, 0]), intsAttr('strides', [1, 1])],
        `conv_${i}`,
      );
    } else if (layer.kind === 'down') {
      const f = g.initializer(`f_${i}`, () => floatTensor('', [layer.channels, 1, 3, 3], layer.filter));
      x = g.node(
        'Conv',
        [x, f],
        [intAttr('group', layer.channels), intsAttr('kernel_shape', [3, 3]), intsAttr('pads', [0, 0, 0, 0]), intsAttr('strides', [2, 2])],
        `down_${i}`,
      );
    } else if (layer.filter) {
      const filter = layer.filter;
      const f = g.initializer(`f_${i}`, () => floatTensor('', [layer.channels, 1, 4, 4], filter));
      x = g.node(
        'ConvTranspose',
        [x, f],
        [intAttr('group', layer.channels), intsAttr('kernel_shape', [4, 4]), intsAttr('pads', [3, 3, 3, 3]), intsAttr('strides', [2, 2])],
        `up_${i}`,
      );
    } else {
      const scales = g.initializer('resize_scales', () => floatTensor('', [4], new Float32Array([1, 1, 2, 2])));
      x = g.node(
        'Resize',
        [x, '', scales],
        [stringAttr('mode', 'linear'), stringAttr('coordinate_transformation_mode', 'half_pixel')],
        `up_${i}`,
      );
    }
    if (layer.kind === 'up') {
      g.inputs.push(tensorValueInfo(`crop_start_${i}`, INT64, [2]), tensorValueInfo(`crop_end_${i}`, INT64, [2]));
      x = g.node('Slice', [x, `crop_start_${i}`, `crop_end_${i}`, 'crop_axes'], [], `cropped_${i}`);
    }
    channels = layerShape(layer).outChannels;
    if (spec.keep === i) {
      g.node('Identity', [x], [], 'kept');
      g.outputs.push(imageValue('kept', channels));
    }
  });
  if (spec.tanh) x = g.node('Tanh', [x], [], 'activated');
  g.node('Identity', [x], [], 'y');
  g.outputs.push(imageValue('y', channels));

  return g.encode({
    irVersion: irVersionForOpset(OPSET),
    opsetImport: [{ domain: '', version: OPSET }],
    producerName: '@scenimefy/i2i-core tiled-generator',
    graphName: spec.name,
  });
}

/** An onnxruntime CPU session for a chain, on the runtime given (onnxruntime-node or onnxruntime-web). */
export async function createChainSession(runtime: OrtRuntime, spec: ChainSpec): Promise<ChainSession> {
  let session: OrtInferenceSession;
  const options: OrtSessionOptions = {
    executionProviders: ['cpu'],
    graphOptimizationLevel: 'all',
    executionMode: 'sequential',
    // Without the arena every session returns its tile buffers after each run; with it, each of the ~25
    // sessions keeps its own high-water mark and resident memory doubles.
    enableCpuMemArena: false,
    enableMemPattern: false,
    // ~25 sessions take turns; a finished session's workers spinning for more work would steal the cores
    // from the next one (measured: 1.3× slower passes with spinning on).
    extra: { session: { intra_op: { allow_spinning: '0' } } },
    ...(spec.threads > 0 ? { intraOpNumThreads: spec.threads, interOpNumThreads: 1 } : {}),
  };
  try {
    session = await runtime.InferenceSession.create(chainModelBytes(spec), options);
  } catch (error) {
    throw new BackendError(`onnxruntime cannot create the tiled pass ${spec.name}: ${firstLine(error)}`, { cause: error });
  }
  const layout: ChainLayout = {
    name: spec.name,
    inChannels: spec.inChannels,
    layers: spec.layers.map(layerShape),
    ...(spec.keep !== undefined ? { keep: spec.keep } : {}),
    ...(spec.tanh ? { tanh: true } : {}),
  };
  const { name, inChannels, layers } = layout;
  const affineTensors = new WeakMap<ChannelAffine, [OrtTensor, OrtTensor]>();
  const int64 = (values: readonly number[]): OrtTensor => new runtime.Tensor('int64', BigInt64Array.from(values, BigInt), [values.length]);
  return {
    layout,
    async run(source, height, width, geometry, norms) {
      if (geometry.length !== layers.length) {
        throw new UsageError(`${name}: ${geometry.length} layer geometries for ${layers.length} layers`);
      }
      const feeds: Record<string, OrtTensor> = { x: new runtime.Tensor('float32', source, [1, inChannels, height, width]) };
      layers.forEach((layer, i) => {
        const { rows, cols } = geometry[i] as LayerGeometry;
        feeds[`pads_${i}`] = int64([0, 0, rows.padBefore, cols.padBefore, 0, 0, rows.padAfter, cols.padAfter]);
        if (layer.kind === 'up') {
          if (!rows.crop || !cols.crop) throw new UsageError(`${name}: layer ${i} (upsample) needs a crop`);
          // Resize keeps the padded window's first input sample, 2·(a − 1), where ConvTranspose's pads drop it.
          const shift = layer.resize ? 2 : 0;
          feeds[`crop_start_${i}`] = int64([rows.crop.start + shift, cols.crop.start + shift]);
          feeds[`crop_end_${i}`] = int64([rows.crop.end + shift, cols.crop.end + shift]);
        }
        if (layer.normalized) {
          const affine = norms[i];
          if (!affine) throw new UsageError(`${name}: layer ${i} needs its input's InstanceNorm statistics`);
          let tensors = affineTensors.get(affine);
          if (!tensors) {
            const c = affine.mean.length;
            tensors = [new runtime.Tensor('float32', affine.mean, [c]), new runtime.Tensor('float32', affine.variance, [c])];
            affineTensors.set(affine, tensors);
          }
          [feeds[`mean_${i}`], feeds[`variance_${i}`]] = tensors;
        }
      });
      const results = await session.run(feeds);
      return { output: chainOutput(results.y, name), ...(layout.keep !== undefined ? { kept: chainOutput(results.kept, name) } : {}) };
    },
    release: () => session.release(),
  };
}

function chainOutput(value: unknown, name: string): ChainOutput {
  const output = float32Output(value);
  if (output === undefined || output.dims.length !== 4) {
    throw new BackendError(`onnxruntime returned no float32 NCHW output for the tiled pass ${name}`);
  }
  const [, channels = 0, height = 0, width = 0] = output.dims;
  // onnxruntime copies every CPU output into a fresh JS buffer, so the data outlives the tensor object.
  return { data: output.data, channels, height, width };
}

/** An NCHW float input or output of batch 1 whose height and width are named after it. */
function imageValue(name: string, channels: number) {
  return tensorValueInfo(name, FLOAT, [1, channels, `${name}_h`, `${name}_w`]);
}
