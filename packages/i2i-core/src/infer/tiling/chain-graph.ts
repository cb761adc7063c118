/**
 * One tiled pass as one onnxruntime session: a chain of generator layers whose tile geometry arrives as inputs.
 * Each layer is `[BatchNormalization(mean, variance) + Relu] → Pad(pads, mode) → Conv | depthwise blur Conv |
 * Resize or ConvTranspose + Slice`, with no padding inside the convolutions: the per-tile `pads` (and the
 * upsampler's crop) say how much of the layer's border padding the tile's region lacks, so image borders get
 * the layer's own padding and tile edges read real neighbours. The InstanceNorm statistics of a layer's input
 * are inputs too, as they come from earlier passes over the whole image. Weights are initializers, so
 * onnxruntime pre-packs them.
 */
import { BackendError, UsageError } from '@scenimefy/io';
import { onnx } from 'onnx-proto';
import * as ort from 'onnxruntime-node';

import type { AxisStep } from './geometry';

const OPSET = 17;
const IR_VERSION = 8;
const FLOAT = onnx.TensorProto.DataType.FLOAT;
const INT64 = onnx.TensorProto.DataType.INT64;

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

/** InstanceNorm2d's eps (SPEC §1). */
export const INSTANCE_NORM_EPS = 1e-5;

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
  const nodes: onnx.INodeProto[] = [];
  const initializers: onnx.ITensorProto[] = [];
  const inputs: onnx.IValueInfoProto[] = [imageInput('x', spec.inChannels)];
  const outputs: onnx.IValueInfoProto[] = [];
  const node = (opType: string, input: string[], output: string, attribute: onnx.IAttributeProto[] = []): string => {
    nodes.push({ name: `${opType}_${nodes.length}`, opType, input, output: [output], attribute });
    return output;
  };
  if (spec.layers.some((layer) => layer.kind === 'up')) {
    initializers.push({ name: 'crop_axes', dataType: INT64, dims: [2], rawData: bytesOf(new BigInt64Array([2n, 3n])) });
  }

  let x = 'x';
  let channels = spec.inChannels;
  spec.layers.forEach((layer, i) => {
    if (layerInChannels(layer) !== channels) {
      throw new UsageError(`${spec.name}: layer ${i} takes ${layerInChannels(layer)} channels, it gets ${channels}`);
    }
    if (layer.normalized) {
      // BatchNormalization with the whole image's mean and variance is the finished InstanceNorm in one op.
      inputs.push(vectorInput(`mean_${i}`, channels), vectorInput(`variance_${i}`, channels));
      if (!initializers.some((t) => t.name === `ones_${channels}`)) {
        initializers.push(
          floatInitializer(`ones_${channels}`, [channels], new Float32Array(channels).fill(1)),
          floatInitializer(`zeros_${channels}`, [channels], new Float32Array(channels)),
        );
      }
      x = node('BatchNormalization', [x, `ones_${channels}`, `zeros_${channels}`, `mean_${i}`, `variance_${i}`], `normalized_${i}`, [
        floatAttr('epsilon', INSTANCE_NORM_EPS),
      ]);
      x = node('Relu', [x], `relu_${i}`);
    }
    inputs.push({ name: `pads_${i}`, type: { tensorType: { elemType: INT64, shape: { dim: [{ dimValue: 8 }] } } } });
    const mode = { reflect: 'reflect', zero: 'constant', replicate: 'edge' }[layerPadMode(layer)];
    x = node('Pad', [x, `pads_${i}`], `padded_${i}`, [stringAttr('mode', mode)]);
    if (layer.kind === 'conv') {
      const { conv } = layer;
      initializers.push(
        floatInitializer(`w_${i}`, [conv.outChannels, conv.inChannels, conv.kernel, conv.kernel], conv.weight),
        floatInitializer(`b_${i}`, [conv.outChannels], conv.bias),
      );
      x = node('Conv', [x, `w_${i}`, `b_${i}`], `conv_${i}`, [
        intsAttr('kernel_shape', [conv.kernel, conv.kernel]),
        intsAttr('pads', [0, 0, 0, 0]),
        intsAttr('strides', [1, 1]),
      ]);
    } else if (layer.kind === 'down') {
      initializers.push(floatInitializer(`f_${i}`, [layer.channels, 1, 3, 3], layer.filter));
      x = node('Conv', [x, `f_${i}`], `down_${i}`, [
        intAttr('group', layer.channels),
        intsAttr('kernel_shape', [3, 3]),
        intsAttr('pads', [0, 0, 0, 0]),
        intsAttr('strides', [2, 2]),
      ]);
    } else if (layer.filter) {
      initializers.push(floatInitializer(`f_${i}`, [layer.channels, 1, 4, 4], layer.filter));
      x = node('ConvTranspose', [x, `f_${i}`], `up_${i}`, [
        intAttr('group', layer.channels),
        intsAttr('kernel_shape', [4, 4]),
        intsAttr('pads', [3, 3, 3, 3]),
        intsAttr('strides', [2, 2]),
      ]);
    } else {
      if (!initializers.some((t) => t.name === 'resize_scales')) {
        initializers.push(floatInitializer('resize_scales', [4], new Float32Array([1, 1, 2, 2])));
      }
      x = node('Resize', [x, '', 'resize_scales'], `up_${i}`, [
        stringAttr('mode', 'linear'),
        stringAttr('coordinate_transformation_mode', 'half_pixel'),
      ]);
    }
    if (layer.kind === 'up') {
      inputs.push(int64Input(`crop_start_${i}`, 2), int64Input(`crop_end_${i}`, 2));
      x = node('Slice', [x, `crop_start_${i}`, `crop_end_${i}`, 'crop_axes'], `cropped_${i}`);
    }
    channels = layerShape(layer).outChannels;
    if (spec.keep === i) {
      node('Identity', [x], 'kept');
      outputs.push(imageInput('kept', channels));
    }
  });
  if (spec.tanh) x = node('Tanh', [x], 'activated');
  node('Identity', [x], 'y');
  outputs.push(imageInput('y', channels));

  const model: onnx.IModelProto = {
    irVersion: IR_VERSION,
    opsetImport: [{ domain: '', version: OPSET }],
    producerName: '@scenimefy/i2i-core tiled-generator',
    graph: { name: spec.name, node: nodes, initializer: initializers, input: inputs, output: outputs },
  };
  return onnx.ModelProto.encode(model).finish();
}

/** An onnxruntime CPU session for a chain. */
export async function createChainSession(spec: ChainSpec): Promise<ChainSession> {
  let session: ort.InferenceSession;
  try {
    session = await ort.InferenceSession.create(chainModelBytes(spec), {
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
    });
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
  const affineTensors = new WeakMap<ChannelAffine, [ort.Tensor, ort.Tensor]>();
  return {
    layout,
    async run(source, height, width, geometry, norms) {
      if (geometry.length !== layers.length) {
        throw new UsageError(`${name}: ${geometry.length} layer geometries for ${layers.length} layers`);
      }
      const feeds: Record<string, ort.Tensor> = { x: new ort.Tensor('float32', source, [1, inChannels, height, width]) };
      layers.forEach((layer, i) => {
        const { rows, cols } = geometry[i] as LayerGeometry;
        feeds[`pads_${i}`] = new ort.Tensor(
          'int64',
          BigInt64Array.from([0, 0, rows.padBefore, cols.padBefore, 0, 0, rows.padAfter, cols.padAfter], BigInt),
          [8],
        );
        if (layer.kind === 'up') {
          if (!rows.crop || !cols.crop) throw new UsageError(`${name}: layer ${i} (upsample) needs a crop`);
          // Resize keeps the padded window's first input sample, 2·(a − 1), where ConvTranspose's pads drop it.
          const shift = layer.resize ? 2 : 0;
          const starts = [rows.crop.start + shift, cols.crop.start + shift];
          feeds[`crop_start_${i}`] = new ort.Tensor('int64', BigInt64Array.from(starts, BigInt), [2]);
          feeds[`crop_end_${i}`] = new ort.Tensor('int64', BigInt64Array.from([rows.crop.end + shift, cols.crop.end + shift], BigInt), [2]);
        }
        if (layer.normalized) {
          const affine = norms[i];
          if (!affine) throw new UsageError(`${name}: layer ${i} needs its input's InstanceNorm statistics`);
          let tensors = affineTensors.get(affine);
          if (!tensors) {
            const c = affine.mean.length;
            tensors = [new ort.Tensor('float32', affine.mean, [c]), new ort.Tensor('float32', affine.variance, [c])];
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

function chainOutput(value: ort.OnnxValue | undefined, name: string): ChainOutput {
  if (value === undefined || !(value instanceof ort.Tensor) || value.type !== 'float32' || value.dims.length !== 4) {
    throw new BackendError(`onnxruntime returned no float32 NCHW output for the tiled pass ${name}`);
  }
  const [, channels = 0, height = 0, width = 0] = value.dims;
  // onnxruntime-node copies every output into a fresh JS buffer, so the data outlives the tensor object.
  return { data: value.data as Float32Array, channels, height, width };
}

function imageInput(name: string, channels: number): onnx.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType: FLOAT,
        shape: { dim: [{ dimValue: 1 }, { dimValue: channels }, { dimParam: `${name}_h` }, { dimParam: `${name}_w` }] },
      },
    },
  };
}

function vectorInput(name: string, length: number): onnx.IValueInfoProto {
  return { name, type: { tensorType: { elemType: FLOAT, shape: { dim: [{ dimValue: length }] } } } };
}

function int64Input(name: string, length: number): onnx.IValueInfoProto {
  return { name, type: { tensorType: { elemType: INT64, shape: { dim: [{ dimValue: length }] } } } };
}

function floatInitializer(name: string, dims: number[], values: Float32Array): onnx.ITensorProto {
  return { name, dataType: FLOAT, dims, rawData: bytesOf(values) };
}

function intAttr(name: string, i: number): onnx.IAttributeProto {
  return { name, type: onnx.AttributeProto.AttributeType.INT, i };
}

function floatAttr(name: string, f: number): onnx.IAttributeProto {
  return { name, type: onnx.AttributeProto.AttributeType.FLOAT, f };
}

function intsAttr(name: string, ints: number[]): onnx.IAttributeProto {
  return { name, type: onnx.AttributeProto.AttributeType.INTS, ints };
}

function stringAttr(name: string, value: string): onnx.IAttributeProto {
  return { name, type: onnx.AttributeProto.AttributeType.STRING, s: new TextEncoder().encode(value) };
}

function bytesOf(view: Float32Array | BigInt64Array): Uint8Array {
  // Typed arrays use the host's byte order; ONNX raw_data is little-endian, like every host Node supports.
  return new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
}

function firstLine(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.split('\n')[0]?.trim() ?? message;
}
