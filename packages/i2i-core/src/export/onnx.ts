/**
 * ONNX export of the Scenimefy generator (CUT ResnetGenerator, resnet_9blocks, antialiased; SPEC §1) straight
 * from a state dict: no Python, no tracing. The graph is written node by node so that every layer maps to one
 * reference module, and H, W (and the batch) stay dynamic.
 */

import { DTYPE_BYTES, ModelFormatError, UsageError, numel, tensorToFloat32, writeFileAtomic } from '@scenimefy/io';
import type { TensorData, TensorMap } from '@scenimefy/io';
import { onnx } from 'onnx-proto';

import { generatorStateDictSpec } from '../networks/generator';
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

const N_BLOCKS = 9;
const FIRST_BLOCK = 12;
const IN_EPSILON = 1e-5;
// model.21/25.filt = outer([1,3,3,1], [1,3,3,1]) / 64 · 4 (SPEC §1) = outer(UP_FILTER_1D, UP_FILTER_1D).
const UP_FILTER_1D = [1, 3, 3, 1].map((v) => v / 4);

/** Every key of the generator's state dict (SPEC §2 order) with its expected shape for a given ngf. */
export function generatorStateDictShapes(ngf: number): Map<string, readonly number[]> {
  // One table of keys and shapes for the whole package: the TF.js network's (resnet_9blocks, RGB in and out).
  const spec = generatorStateDictSpec({ ngf, inputNc: 3, outputNc: 3, nBlocks: N_BLOCKS });
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
  return { layout: { ngf, blocks: N_BLOCKS }, tensors: ordered };
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
    for (const key of ['model.21.filt', 'model.25.filt']) {
      const problem = nonStandardFilterProblem(tensors, key, UP_FILTER_1D);
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

  const g = new GraphBuilder(tensors);
  const { ngf } = layout;
  let x = GENERATOR_INPUT_NAME;
  x = g.pad(x, 3, 'reflect');
  x = g.conv(x, 'model.1', { pad: 0 });
  x = g.relu(g.instanceNorm(x, ngf));
  x = g.conv(x, 'model.4', { pad: 1 });
  x = g.relu(g.instanceNorm(x, 2 * ngf));
  x = g.downsample(x, 'model.7', 2 * ngf);
  x = g.conv(x, 'model.8', { pad: 1 });
  x = g.relu(g.instanceNorm(x, 4 * ngf));
  x = g.downsample(x, 'model.11', 4 * ngf);
  for (let b = 0; b < layout.blocks; b++) {
    const block = `model.${FIRST_BLOCK + b}.conv_block`;
    let y = g.pad(x, 1, 'reflect');
    y = g.conv(y, `${block}.1`, { pad: 0 });
    y = g.relu(g.instanceNorm(y, 4 * ngf));
    y = g.pad(y, 1, 'reflect');
    y = g.conv(y, `${block}.5`, { pad: 0 });
    y = g.instanceNorm(y, 4 * ngf);
    x = g.add(x, y);
  }
  x = upsample === 'resize' ? g.resizeUp2(x) : g.upsampleTransposed(x, 'model.21', 4 * ngf);
  x = g.conv(x, 'model.22', { pad: 1 });
  x = g.relu(g.instanceNorm(x, 2 * ngf));
  x = upsample === 'resize' ? g.resizeUp2(x) : g.upsampleTransposed(x, 'model.25', 2 * ngf);
  x = g.conv(x, 'model.26', { pad: 1 });
  x = g.relu(g.instanceNorm(x, ngf));
  x = g.pad(x, 3, 'reflect');
  x = g.conv(x, 'model.30', { pad: 0 });
  g.node('Tanh', [x], [], GENERATOR_OUTPUT_NAME);

  const imageType = (dims: Array<string | number>): onnx.ITypeProto => ({
    tensorType: {
      elemType: onnx.TensorProto.DataType.FLOAT,
      shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
    },
  });
  const metadata: Record<string, string> = {
    'scenimefy.network': 'netG',
    'scenimefy.architecture': 'resnet_9blocks',
    'scenimefy.ngf': String(ngf),
    'scenimefy.upsample': upsample,
    'scenimefy.input_range': '[-1, 1]',
    ...options.metadata,
  };
  const model: onnx.IModelProto = {
    irVersion: irVersionForOpset(opset),
    opsetImport: [{ domain: '', version: opset }],
    producerName: options.producerName ?? '@scenimefy/i2i-core',
    producerVersion: options.producerVersion ?? PACKAGE_VERSION,
    docString:
      options.docString ??
      'Scenimefy generator (CUT ResnetGenerator, resnet_9blocks, antialiased). Input: RGB in [-1, 1], NCHW. ' +
        'Output: tanh RGB in [-1, 1]; same size as the input when height and width are multiples of 4.',
    graph: {
      name: options.name ?? 'scenimefy_generator',
      node: g.nodes,
      initializer: g.initializers,
      input: [{ name: GENERATOR_INPUT_NAME, type: imageType(['batch', 3, 'height', 'width']) }],
      // Sizes that are not multiples of 4 grow (258 → 260, SPEC §1), so the output dims get their own names.
      output: [{ name: GENERATOR_OUTPUT_NAME, type: imageType(['batch', 3, 'out_height', 'out_width']) }],
    },
    metadataProps: Object.entries(metadata).map(([key, value]) => ({ key, value })),
  };
  return onnx.ModelProto.encode(model).finish();
}

/** Export the generator to `outFile` (written atomically: a reader never sees a partial model). */
export async function exportGeneratorOnnxFile(stateDict: TensorMap, outFile: string, options: GeneratorOnnxOptions = {}): Promise<void> {
  await writeFileAtomic(outFile, exportGeneratorOnnx(stateDict, options));
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
      ['model.21.filt', 4 * ngf],
      ['model.25.filt', 2 * ngf],
    ] as const) {
      if (!stateDict.has(key)) stateDict.set(key, standardUpsampleFilter(channels));
    }
  }
  return validatedGeneratorStateDict(stateDict, { source: file }).tensors;
}

/** The reference's Upsample buffer: outer(UP_FILTER_1D, UP_FILTER_1D) for every channel, [C, 1, 4, 4]. */
function standardUpsampleFilter(channels: number): TensorData {
  const kernel = UP_FILTER_1D.flatMap((a) => UP_FILTER_1D.map((b) => a * b));
  const values = Float32Array.from({ length: channels * kernel.length }, (_, i) => kernel[i % kernel.length] ?? NaN);
  return { dtype: 'F32', shape: [channels, 1, 4, 4], bytes: littleEndianBytes(values) };
}

function firstLine(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.split('\n')[0] ?? message;
}

/** IR version that goes with an opset (onnx/helper.py VERSION_TABLE). */
function irVersionForOpset(opset: number): number {
  if (opset <= 18) return 8;
  if (opset <= 20) return 9;
  if (opset <= 22) return 10;
  return 11;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** Why the k×k depthwise `filt` buffer is not outer(taps1d, taps1d) in every channel, or undefined when it is. */
function nonStandardFilterProblem(tensors: Map<string, TensorData>, key: string, taps1d: readonly number[]): string | undefined {
  const tensor = tensors.get(key);
  if (tensor === undefined) return 'missing';
  const k = taps1d.length;
  const values = tensorToFloat32(tensor);
  for (let i = 0; i < values.length; i++) {
    const expected = (taps1d[Math.floor((i % (k * k)) / k)] ?? NaN) * (taps1d[i % k] ?? NaN);
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

/** Accumulates nodes and initializers; every method returns the name of the value it produces. */
class GraphBuilder {
  readonly nodes: onnx.INodeProto[] = [];
  readonly initializers: onnx.ITensorProto[] = [];
  private readonly shared = new Map<string, string>();
  private counter = 0;

  constructor(private readonly tensors: Map<string, TensorData>) {}

  node(op: string, inputs: string[], attributes: onnx.IAttributeProto[] = [], output?: string): string {
    const out = output ?? `${op.toLowerCase()}_${this.counter}`;
    this.nodes.push({
      name: `${op}_${this.counter}`,
      opType: op,
      input: inputs,
      output: [out],
      attribute: attributes,
    });
    this.counter++;
    return out;
  }

  /** An initializer from the state dict, named after its key. */
  weight(key: string): string {
    if (!this.shared.has(key)) {
      const tensor = this.tensors.get(key);
      if (tensor === undefined) throw new ModelFormatError(`state dict: missing '${key}'`);
      this.initializers.push({
        name: key,
        dataType: onnx.TensorProto.DataType.FLOAT,
        dims: [...tensor.shape],
        rawData: float32Bytes(tensor),
      });
      this.shared.set(key, key);
    }
    return key;
  }

  /** A constant initializer, created once per distinct name. */
  constant(name: string, dims: number[], dataType: onnx.TensorProto.DataType, bytes: Uint8Array): string {
    if (!this.shared.has(name)) {
      this.initializers.push({ name, dataType, dims, rawData: bytes });
      this.shared.set(name, name);
    }
    return name;
  }

  pad(x: string, p: number, mode: 'reflect' | 'edge'): string {
    // Pads' opset ≥ 11 form: the amounts are an int64 input, all begins then all ends, for N, C, H, W.
    const pads = this.constant(`pads_hw${p}`, [8], onnx.TensorProto.DataType.INT64, int64Bytes([0, 0, p, p, 0, 0, p, p]));
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
    const scale = this.constant(`in_scale_${channels}`, [channels], onnx.TensorProto.DataType.FLOAT, float32Fill(channels, 1));
    const bias = this.constant(`in_bias_${channels}`, [channels], onnx.TensorProto.DataType.FLOAT, float32Fill(channels, 0));
    return this.node('InstanceNormalization', [x, scale, bias], [floatAttr('epsilon', IN_EPSILON)]);
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
    const scales = this.constant('resize_scales_x2', [4], onnx.TensorProto.DataType.FLOAT, float32Bytes4([1, 1, 2, 2]));
    return this.node('Resize', [x, '', scales], [stringAttr('mode', 'linear'), stringAttr('coordinate_transformation_mode', 'half_pixel')]);
  }
}

function intAttr(name: string, i: number): onnx.IAttributeProto {
  return { name, type: onnx.AttributeProto.AttributeType.INT, i };
}

function intsAttr(name: string, ints: number[]): onnx.IAttributeProto {
  return { name, type: onnx.AttributeProto.AttributeType.INTS, ints };
}

function floatAttr(name: string, f: number): onnx.IAttributeProto {
  return { name, type: onnx.AttributeProto.AttributeType.FLOAT, f };
}

function stringAttr(name: string, value: string): onnx.IAttributeProto {
  return { name, type: onnx.AttributeProto.AttributeType.STRING, s: new TextEncoder().encode(value) };
}

function int64Bytes(values: number[]): Uint8Array {
  const out = new BigInt64Array(values.map((v) => BigInt(v)));
  return littleEndianBytes(out);
}

function float32Fill(n: number, value: number): Uint8Array {
  return littleEndianBytes(new Float32Array(n).fill(value));
}

function float32Bytes4(values: number[]): Uint8Array {
  return littleEndianBytes(new Float32Array(values));
}

function littleEndianBytes(view: BigInt64Array | Float32Array): Uint8Array {
  // Typed arrays use the host's byte order; ONNX raw_data is little-endian, like every host Node supports.
  return new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
}
