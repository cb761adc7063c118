/**
 * ONNX export of the Scenimefy generator (CUT ResnetGenerator, resnet_9blocks, antialiased; SPEC §1) straight
 * from a state dict: no Python, no tracing. The graph is written node by node so that every layer maps to one
 * reference module, and H, W (and the batch) stay dynamic.
 */

import { DTYPE_BYTES, ModelFormatError, UsageError, numel, tensorToFloat32 } from '@scenimefy/io/core';
import type { TensorData, TensorMap } from '@scenimefy/io/core';
import { onnx } from 'onnx-proto';

import { INSTANCE_NORM_EPS } from '../layers/instance-norm';
import { UPSAMPLE_FILTER } from '../networks/blur';
import { generatorStateDictSpec } from '../networks/generator';
import { RESNET_9BLOCKS, generatorModuleIndices } from '../networks/generator-layout';
import {
  FLOAT,
  OnnxGraphBuilder,
  floatAttr,
  floatTensor,
  int64Tensor,
  intAttr,
  intsAttr,
  irVersionForOpset,
  littleEndianBytes,
  stringAttr,
  tensorValueInfo,
} from '../onnx/graph-builder';
import { PACKAGE_VERSION } from '../version';

export const GENERATOR_INPUT_NAME = 'input';
export const GENERATOR_OUTPUT_NAME = 'output';
export const DEFAULT_GENERATOR_OPSET = 17;
/** Newest default-domain opset the exported graph is tested with (onnxruntime-node 1.30 runs it). */
export const MAX_GENERATOR_OPSET = 23;

/** How the two ×2 upsamplers (model.21, model.25) are written; 'auto' picks 'resize' when it is exact. */
export type UpsampleMode = 'auto' | 'conv-transpose' | 'resize';

export interface GeneratorOnnxOptions {
  /** Default-domain opset, 17 ≤ opset ≤ MAX_GENERATOR_OPSET (default 17). */
  opset?: number;
  /** Key prefix of the generator's tensors, e.g. 'netG.' in a scenimefy checkpoint (default ''). */
  prefix?: string;
  /**
   * 'conv-transpose' writes the reference's replicate-pad + transposed blur conv with the state dict's `filt`
   * buffers. 'resize' writes Resize(linear, half_pixel, ×2), which SPEC §1 shows equals it (bilinear,
   * align_corners=False); it is only accepted when the `filt` buffers hold the standard filter, and the model
   * then carries no `filt` initializers. 'auto' (default) writes 'resize' when they do (onnxruntime CPU runs
   * Resize in a quarter of the grouped ConvTranspose's time, with the same parity) and 'conv-transpose' otherwise.
   */
  upsample?: UpsampleMode;
  /** Graph name (default 'scenimefy_generator'). */
  name?: string;
  /** ModelProto.producer_name (default '@scenimefy/i2i-core'). */
  producerName?: string;
  /** ModelProto.producer_version (default: this package's version). */
  producerVersion?: string;
  docString?: string;
  /** Extra ModelProto.metadata_props (e.g. the source checkpoint's sha256). */
  metadata?: Readonly<Record<string, string>>;
  /** Names the state dict's origin in error messages. */
  source?: string;
}

/** ngf-dependent layout of the generator, read from the state dict. */
export interface GeneratorLayout {
  ngf: number;
  /** Number of ResnetBlocks (9 for resnet_9blocks). */
  blocks: number;
}

const LAYOUT = generatorModuleIndices(RESNET_9BLOCKS);

/** Every key of the generator's state dict (SPEC §2 order) with its expected shape for a given ngf. */
export function generatorStateDictShapes(ngf: number): Map<string, readonly number[]> {
  // One table of keys and shapes for the whole package: the TF.js network's (resnet_9blocks, RGB in and out).
  const spec = generatorStateDictSpec({ ngf, inputNc: 3, outputNc: 3, nBlocks: RESNET_9BLOCKS });
  return new Map([...spec].map(([key, entry]) => [key, entry.shape]));
}

/**
 * The generator's tensors (prefix stripped) after checking keys, shapes and dtypes against SPEC §1;
 * throws ModelFormatError naming the first problem.
 */
export function validatedGeneratorStateDict(
  stateDict: TensorMap,
  options: { prefix?: string; source?: string } = {},
): { layout: GeneratorLayout; tensors: Map<string, TensorData> } {
  const prefix = options.prefix ?? '';
  const where = options.source ?? 'state dict';
  const tensors = new Map<string, TensorData>();
  for (const [key, tensor] of stateDict) {
    if (key.startsWith(prefix)) tensors.set(key.slice(prefix.length), tensor);
  }
  if (tensors.size === 0) {
    const sample = [...stateDict.keys()].slice(0, 3).join(', ');
    throw new ModelFormatError(
      `${where}: no tensor has the prefix '${prefix}' (first keys: ${sample || 'none'}); is this a generator checkpoint?`,
      { file: options.source },
    );
  }
  const stem = tensors.get('model.1.weight');
  if (stem === undefined) {
    throw new ModelFormatError(`${where}: missing '${prefix}model.1.weight' (the generator's first conv)`, {
      file: options.source,
    });
  }
  const ngf = stem.shape[0];
  if (stem.shape.length !== 4 || ngf === undefined || ngf < 1) {
    throw new ModelFormatError(`${where}: '${prefix}model.1.weight' has shape [${stem.shape.join(', ')}], expected [ngf, 3, 7, 7]`, {
      file: options.source,
    });
  }
  const expected = generatorStateDictShapes(ngf);
  for (const [key, shape] of expected) {
    const tensor = tensors.get(key);
    if (tensor === undefined) {
      throw new ModelFormatError(`${where}: missing '${prefix}${key}' (expected shape [${shape.join(', ')}])`, {
        file: options.source,
      });
    }
    if (!sameShape(tensor.shape, shape)) {
      throw new ModelFormatError(
        `${where}: '${prefix}${key}' has shape [${tensor.shape.join(', ')}], expected [${shape.join(', ')}] for ngf=${ngf}`,
        { file: options.source },
      );
    }
    if (tensor.dtype !== 'F32' && tensor.dtype !== 'F16' && tensor.dtype !== 'BF16' && tensor.dtype !== 'F64') {
      throw new ModelFormatError(`${where}: '${prefix}${key}' has dtype ${tensor.dtype}, expected a float type`, {
        file: options.source,
      });
    }
    if (tensor.bytes.byteLength !== numel(shape) * DTYPE_BYTES[tensor.dtype]) {
      throw new ModelFormatError(
        `${where}: '${prefix}${key}' holds ${tensor.bytes.byteLength} bytes, its ${tensor.dtype} shape needs ${numel(shape) * DTYPE_BYTES[tensor.dtype]}`,
        { file: options.source },
      );
    }
  }
  for (const key of tensors.keys()) {
    if (!expected.has(key)) {
      throw new ModelFormatError(`${where}: unexpected key '${prefix}${key}' (not part of the resnet_9blocks generator)`, {
        file: options.source,
      });
    }
  }
  // Canonical (SPEC §2) order, whatever order the source listed them in.
  const ordered = new Map<string, TensorData>();
  for (const key of expected.keys()) ordered.set(key, tensors.get(key) as TensorData);
  return { layout: { ngf, blocks: RESNET_9BLOCKS }, tensors: ordered };
}

/** A serialized ONNX ModelProto of the generator: input `input` [batch,3,height,width], output `output`. */
export function exportGeneratorOnnx(stateDict: TensorMap, options: GeneratorOnnxOptions = {}): Uint8Array {
  const opset = options.opset ?? DEFAULT_GENERATOR_OPSET;
  if (!Number.isInteger(opset) || opset < DEFAULT_GENERATOR_OPSET || opset > MAX_GENERATOR_OPSET) {
    throw new UsageError(`ONNX opset must be an integer from ${DEFAULT_GENERATOR_OPSET} to ${MAX_GENERATOR_OPSET}, got ${opset}`);
  }
  const requested = options.upsample ?? 'auto';
  if (requested !== 'auto' && requested !== 'conv-transpose' && requested !== 'resize') {
    throw new UsageError(`unknown upsample mode '${String(requested)}' (valid: auto, conv-transpose, resize)`);
  }
  const { layout, tensors } = validatedGeneratorStateDict(stateDict, options);
  const where = options.source ?? 'state dict';
  let upsample: 'conv-transpose' | 'resize' = requested === 'auto' ? 'resize' : requested;
  if (requested !== 'conv-transpose') {
    for (const key of [`model.${LAYOUT.up1}.filt`, `model.${LAYOUT.up2}.filt`]) {
      const problem = nonStandardFilterProblem(tensors, key, UPSAMPLE_FILTER);
      if (problem === undefined) continue;
      if (requested === 'auto') {
        upsample = 'conv-transpose';
        break;
      }
      throw new ModelFormatError(
        `${where}: '${options.prefix ?? ''}${key}' is not the standard blur filter (${problem}); export with upsample 'conv-transpose'`,
        { file: options.source },
      );
    }
  }

  const g = new GeneratorGraph(tensors);
  const { ngf } = layout;
  const model = (i: number): string => `model.${i}`;
  let x = GENERATOR_INPUT_NAME;
  x = g.pad(x, 3, 'reflect');
  x = g.conv(x, model(LAYOUT.stemConv), { pad: 0 });
  x = g.relu(g.instanceNorm(x, ngf));
  x = g.conv(x, model(LAYOUT.downConv1), { pad: 1 });
  x = g.relu(g.instanceNorm(x, 2 * ngf));
  x = g.downsample(x, model(LAYOUT.down1), 2 * ngf);
  x = g.conv(x, model(LAYOUT.downConv2), { pad: 1 });
  x = g.relu(g.instanceNorm(x, 4 * ngf));
  x = g.downsample(x, model(LAYOUT.down2), 4 * ngf);
  for (let b = 0; b < layout.blocks; b++) {
    const block = `${model(LAYOUT.firstBlock + b)}.conv_block`;
    let y = g.pad(x, 1, 'reflect');
    y = g.conv(y, `${block}.1`, { pad: 0 });
    y = g.relu(g.instanceNorm(y, 4 * ngf));
    y = g.pad(y, 1, 'reflect');
    y = g.conv(y, `${block}.5`, { pad: 0 });
    y = g.instanceNorm(y, 4 * ngf);
    x = g.add(x, y);
  }
  x = upsample === 'resize' ? g.resizeUp2(x) : g.upsampleTransposed(x, model(LAYOUT.up1), 4 * ngf);
  x = g.conv(x, model(LAYOUT.upConv1), { pad: 1 });
  x = g.relu(g.instanceNorm(x, 2 * ngf));
  x = upsample === 'resize' ? g.resizeUp2(x) : g.upsampleTransposed(x, model(LAYOUT.up2), 2 * ngf);
  x = g.conv(x, model(LAYOUT.upConv2), { pad: 1 });
  x = g.relu(g.instanceNorm(x, ngf));
  x = g.pad(x, 3, 'reflect');
  x = g.conv(x, model(LAYOUT.headConv), { pad: 0 });
  g.node('Tanh', [x], [], GENERATOR_OUTPUT_NAME);
  g.inputs.push(tensorValueInfo(GENERATOR_INPUT_NAME, FLOAT, ['batch', 3, 'height', 'width']));
  // Sizes that are not multiples of 4 grow (258 → 260, SPEC §1), so the output dims get their own names.
  g.outputs.push(tensorValueInfo(GENERATOR_OUTPUT_NAME, FLOAT, ['batch', 3, 'out_height', 'out_width']));

  const metadata: Record<string, string> = {
    'scenimefy.network': 'netG',
    'scenimefy.architecture': 'resnet_9blocks',
    'scenimefy.ngf': String(ngf),
    'scenimefy.upsample': upsample,
    'scenimefy.input_range': '[-1, 1]',
    ...options.metadata,
  };
  return g.encode({
    irVersion: irVersionForOpset(opset),
    opsetImport: [{ domain: '', version: opset }],
    producerName: options.producerName ?? '@scenimefy/i2i-core',
    producerVersion: options.producerVersion ?? PACKAGE_VERSION,
    docString:
      options.docString ??
      'Scenimefy generator (CUT ResnetGenerator, resnet_9blocks, antialiased). Input: RGB in [-1, 1], NCHW. ' +
        'Output: tanh RGB in [-1, 1]; same size as the input when height and width are multiples of 4.',
    graphName: options.name ?? 'scenimefy_generator',
    metadataProps: Object.entries(metadata).map(([key, value]) => ({ key, value })),
  });
}

/**
 * The generator's state dict (reference key names, no prefix) read back from an ONNX model whose initializers
 * carry those names, as exportGeneratorOnnx writes them; throws ModelFormatError when the bytes are not an
 * ONNX model or its initializers do not form a complete generator.
 */
export function generatorStateDictFromOnnx(bytes: Uint8Array, file?: string): TensorMap {
  let model: onnx.ModelProto;
  try {
    model = onnx.ModelProto.decode(bytes);
  } catch (error) {
    throw new ModelFormatError(`not an ONNX model (${firstLine(error)})`, { file, cause: error });
  }
  const stateDict: TensorMap = new Map();
  for (const init of model.graph?.initializer ?? []) {
    const name = init.name ?? '';
    if (!name.startsWith('model.')) continue;
    const shape = (init.dims ?? []).map(Number);
    if (init.dataType !== onnx.TensorProto.DataType.FLOAT) {
      throw new ModelFormatError(`initializer '${name}' has ONNX data type ${init.dataType}, expected FLOAT (1)`, { file });
    }
    let data: Uint8Array;
    if (init.rawData && init.rawData.byteLength > 0) data = init.rawData;
    else if (init.externalData && init.externalData.length > 0) {
      throw new ModelFormatError(`initializer '${name}' uses external data, which is not supported`, { file });
    } else data = littleEndianBytes(Float32Array.from(init.floatData ?? []));
    stateDict.set(name, { dtype: 'F32', shape, bytes: data });
  }
  if (stateDict.size === 0) {
    throw new ModelFormatError(
      "no initializer named like the generator's state dict ('model.1.weight' …); was this model exported by Scenimefy.js?",
      { file },
    );
  }
  const upsample = model.metadataProps.find((p) => p.key === 'scenimefy.upsample')?.value;
  const ngf = stateDict.get('model.1.weight')?.shape[0];
  if (upsample === 'resize' && ngf !== undefined) {
    // A 'resize' export is only written when both buffers are the standard filter, so they are restored as such.
    for (const [key, channels] of [
      [`model.${LAYOUT.up1}.filt`, 4 * ngf],
      [`model.${LAYOUT.up2}.filt`, 2 * ngf],
    ] as const) {
      if (!stateDict.has(key)) stateDict.set(key, standardUpsampleFilter(channels));
    }
  }
  return validatedGeneratorStateDict(stateDict, { source: file }).tensors;
}

/** The reference's Upsample buffer: UPSAMPLE_FILTER for every channel, [C, 1, 4, 4]. */
function standardUpsampleFilter(channels: number): TensorData {
  const values = Float32Array.from(
    { length: channels * UPSAMPLE_FILTER.length },
    (_, i) => UPSAMPLE_FILTER[i % UPSAMPLE_FILTER.length] ?? NaN,
  );
  return { dtype: 'F32', shape: [channels, 1, 4, 4], bytes: littleEndianBytes(values) };
}

function firstLine(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.split('\n')[0] ?? message;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** Why the depthwise `filt` buffer is not `filter` in every channel, or undefined when it is. */
function nonStandardFilterProblem(tensors: Map<string, TensorData>, key: string, filter: Readonly<Float32Array>): string | undefined {
  const tensor = tensors.get(key);
  if (tensor === undefined) return 'missing';
  const values = tensorToFloat32(tensor);
  for (let i = 0; i < values.length; i++) {
    const expected = filter[i % filter.length] ?? NaN;
    if (!(Math.abs((values[i] ?? NaN) - expected) <= 1e-6)) return `entry ${i} is ${values[i]}, expected ${expected}`;
  }
  return undefined;
}

/** Little-endian float32 bytes of a tensor, without a copy when it already is float32. */
function float32Bytes(tensor: TensorData): Uint8Array {
  if (tensor.dtype === 'F32') return tensor.bytes;
  const values = tensorToFloat32(tensor);
  return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
}

/** The generator's layers as ONNX nodes; every method returns the name of the value it produces. */
class GeneratorGraph extends OnnxGraphBuilder {
  constructor(private readonly tensors: Map<string, TensorData>) {
    super();
  }

  /** An initializer from the state dict, named after its key. */
  weight(key: string): string {
    return this.initializer(key, () => {
      const tensor = this.tensors.get(key);
      if (tensor === undefined) throw new ModelFormatError(`state dict: missing '${key}'`);
      return { dataType: FLOAT, dims: [...tensor.shape], rawData: float32Bytes(tensor) };
    });
  }

  pad(x: string, p: number, mode: 'reflect' | 'edge'): string {
    // Pads' opset ≥ 11 form: the amounts are an int64 input, all begins then all ends, for N, C, H, W.
    const pads = this.initializer(`pads_hw${p}`, () => int64Tensor('', [0, 0, p, p, 0, 0, p, p]));
    return this.node('Pad', [x, pads], [stringAttr('mode', mode)]);
  }

  conv(x: string, prefix: string, { pad }: { pad: number }): string {
    const w = this.tensors.get(`${prefix}.weight`);
    const k = w?.shape[2] ?? 0;
    return this.node(
      'Conv',
      [x, this.weight(`${prefix}.weight`), this.weight(`${prefix}.bias`)],
      [intsAttr('kernel_shape', [k, k]), intsAttr('pads', [pad, pad, pad, pad]), intsAttr('strides', [1, 1])],
    );
  }

  instanceNorm(x: string, channels: number): string {
    // IN has no parameters in the reference (affine=False); ONNX needs scale and bias, so they are 1 and 0.
    const scale = this.initializer(`in_scale_${channels}`, () => floatTensor('', [channels], new Float32Array(channels).fill(1)));
    const bias = this.initializer(`in_bias_${channels}`, () => floatTensor('', [channels], new Float32Array(channels)));
    return this.node('InstanceNormalization', [x, scale, bias], [floatAttr('epsilon', INSTANCE_NORM_EPS)]);
  }

  relu(x: string): string {
    return this.node('Relu', [x]);
  }

  add(a: string, b: string): string {
    return this.node('Add', [a, b]);
  }

  /** Downsample (SPEC §1 idx 7/11): reflect-pad 1, depthwise 3×3 blur, stride 2; output ceil(H/2). */
  downsample(x: string, prefix: string, channels: number): string {
    const padded = this.pad(x, 1, 'reflect');
    return this.node(
      'Conv',
      [padded, this.weight(`${prefix}.filt`)],
      [intAttr('group', channels), intsAttr('kernel_shape', [3, 3]), intsAttr('pads', [0, 0, 0, 0]), intsAttr('strides', [2, 2])],
    );
  }

  /**
   * Upsample (SPEC §1 idx 21/25): `conv_transpose2d(replicate_pad1(x), filt, stride 2, padding 2)[:, :, 1:-1, 1:-1]`.
   * The full transposed output of the padded (H+2) input is 2H+6 long; torch's padding 2 plus the crop of
   * one on each side is ONNX pads 3 on every side, leaving exactly 2H.
   */
  upsampleTransposed(x: string, prefix: string, channels: number): string {
    const padded = this.pad(x, 1, 'edge');
    return this.node(
      'ConvTranspose',
      [padded, this.weight(`${prefix}.filt`)],
      [intAttr('group', channels), intsAttr('kernel_shape', [4, 4]), intsAttr('pads', [3, 3, 3, 3]), intsAttr('strides', [2, 2])],
    );
  }

  /** Bilinear ×2 with align_corners=False, equal to the transposed blur (SPEC §1 closed form). */
  resizeUp2(x: string): string {
    const scales = this.initializer('resize_scales_x2', () => floatTensor('', [4], new Float32Array([1, 1, 2, 2])));
    return this.node('Resize', [x, '', scales], [stringAttr('mode', 'linear'), stringAttr('coordinate_transformation_mode', 'half_pixel')]);
  }
}
