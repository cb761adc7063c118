/**
 * A generator from the bytes of its file — what a page has once the user picks `Shinkai_net_G.pth` — with no
 * file system: the official `.pth` (zip or legacy), a `.safetensors` with the official key names (optionally
 * `netG.`-prefixed, as scenimefy checkpoints write them) or an `.onnx` exported by Scenimefy.js. The Node model
 * resolution (infer/model-source.ts) reads files and uses this for their contents.
 *
 * Example (in a page):
 * ```ts
 * const model = generatorModelFromBytes(await file.arrayBuffer(), file.name);
 * const translator = await createImageTranslator(ort, model);
 * ```
 */
import { ModelFormatError, parseWeights, weightsFormatOf } from '@scenimefy/io/core';
import type { TensorMap } from '@scenimefy/io/core';

import { exportGeneratorOnnx, generatorStateDictFromOnnx } from '../export/onnx';
import type { GeneratorOnnxOptions } from '../export/onnx';

export type GeneratorFileFormat = 'pytorch' | 'safetensors' | 'onnx';

export interface GeneratorFromBytes {
  /** What the bytes held. */
  readonly format: GeneratorFileFormat;
  /** Generator state dict with the reference's key names (`model.1.weight` …), no prefix. */
  readonly stateDict: TensorMap;
  /** The generator's ONNX graph: the bytes given when they were ONNX, an export of the weights otherwise. */
  readonly onnx: Uint8Array;
  /** The name given with the bytes, for messages. */
  readonly description: string;
}

export interface GeneratorFromBytesOptions {
  /** Options of the ONNX export made for weights files (opset, upsample mode, metadata). */
  readonly export?: Omit<GeneratorOnnxOptions, 'prefix' | 'source'>;
}

/**
 * The generator's tensors with the reference's key names: as they are when `model.1.weight` is there, without the
 * `netG.` prefix of scenimefy checkpoints when that is; ModelFormatError naming `file` otherwise.
 */
export function generatorStateDictOf(tensors: TensorMap, file: string): TensorMap {
  if (tensors.has('model.1.weight')) return tensors;
  if (tensors.has('netG.model.1.weight')) {
    const out: TensorMap = new Map();
    for (const [k, t] of tensors) if (k.startsWith('netG.')) out.set(k.slice('netG.'.length), t);
    return out;
  }
  const some = [...tensors.keys()].slice(0, 3).join(', ');
  throw new ModelFormatError(
    `no generator weights (expected "model.1.weight" or "netG.model.1.weight"; found ${some || 'no tensors'}${tensors.size > 3 ? ', …' : ''})`,
    { file },
  );
}

/** What a generator file's bytes hold (an ONNX model is only recognised with an `.onnx` name), or undefined. */
export function generatorFileFormat(bytes: Uint8Array, name: string): GeneratorFileFormat | undefined {
  return weightsFormatOf(bytes.subarray(0, 16), name);
}

/**
 * The generator in `bytes` (an ArrayBuffer or a view of one) and its ONNX graph; `name` (the file's name) names it
 * in errors and tells an ONNX file apart. Throws ModelFormatError for anything else.
 */
export function generatorModelFromBytes(
  bytes: Uint8Array | ArrayBuffer,
  name = '<bytes>',
  options: GeneratorFromBytesOptions = {},
): GeneratorFromBytes {
  const data = ArrayBuffer.isView(bytes) ? new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength) : new Uint8Array(bytes);
  const format = generatorFileFormat(data, name);
  if (format === 'onnx') {
    return { format, stateDict: generatorStateDictFromOnnx(data, name), onnx: data, description: name };
  }
  if (format === undefined) throw new ModelFormatError('not a model file (expected .pth/.pt, .safetensors or .onnx)', { file: name });
  const { tensors } = parseWeights(data, name);
  const stateDict = generatorStateDictOf(tensors, name);
  return { format, stateDict, onnx: exportGeneratorOnnx(stateDict, { ...options.export, source: name }), description: name };
}
