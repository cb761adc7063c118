/**
 * Which weights format some bytes hold, and parsing weights from bytes (browser-safe; files are weights-file.ts).
 *
 * The format is told from the first bytes (never from the extension alone): a PyTorch checkpoint (zip `PK` or a
 * legacy pickle), safetensors (u64 header length, then `{`), or ONNX (a ModelProto starting with field 1,
 * `ir_version`; only trusted with an `.onnx` name since the tag byte is common).
 */
import { InputError, ModelFormatError } from './errors';
import { parseSafetensors } from './safetensors';
import type { TensorMap } from './tensor';
import { parseTorchCheckpoint, stateDictFromCheckpoint } from './torch-checkpoint';
import type { ReadTorchCheckpointOptions } from './torch-checkpoint';

export type WeightsFormat = 'pytorch' | 'safetensors' | 'onnx';

export function weightsFormatOf(head: Uint8Array, file = ''): WeightsFormat | undefined {
  if (head.length >= 2 && head[0] === 0x50 && head[1] === 0x4b) return 'pytorch';
  if (head.length >= 2 && head[0] === 0x80 && head[1]! >= 2 && head[1]! <= 5) return 'pytorch';
  if (head.length >= 9 && head[8] === 0x7b) return 'safetensors';
  if (head.length >= 2 && head[0] === 0x08 && file.toLowerCase().endsWith('.onnx')) return 'onnx';
  return undefined;
}

export type WeightsKind = 'safetensors' | 'pytorch' | 'scenimefy-checkpoint';

export interface LoadedWeights {
  kind: WeightsKind;
  /** The file, or the name given with the bytes. */
  file: string;
  /** Tensors by name, in file order. */
  tensors: TensorMap;
  /** safetensors `__metadata__` (empty for the other kinds). */
  metadata: Record<string, string>;
}

export interface ParseWeightsOptions extends Pick<ReadTorchCheckpointOptions, 'maxInflatedBytes' | 'limits'> {
  /** Take the state dict stored under this top-level key of a PyTorch checkpoint (e.g. `g_ema`). */
  key?: string;
}

/**
 * The tensors of a weights file held in memory (e.g. a file picked in a web page), told apart by content:
 * safetensors or a PyTorch `.pth`/`.pt` (zip or legacy; `key` picks the state dict inside a nested checkpoint).
 * `name` names the bytes in errors (default `<bytes>`). ONNX models are not weights: i2i-core loads them.
 * Throws ModelFormatError for anything else or anything malformed; tensors are views of `bytes`.
 */
export function parseWeights(bytes: Uint8Array, name = '<bytes>', options: ParseWeightsOptions = {}): LoadedWeights {
  const kind = weightsFormatOf(bytes.subarray(0, 16), name);
  if (kind === 'safetensors') {
    if (options.key !== undefined) throw new InputError('a key (--key) applies to PyTorch checkpoints, not safetensors', { file: name });
    const { tensors, metadata } = parseSafetensors(bytes, name);
    return { kind, file: name, tensors, metadata };
  }
  if (kind === 'pytorch') {
    const checkpoint = parseTorchCheckpoint(bytes, name, { maxInflatedBytes: options.maxInflatedBytes, limits: options.limits });
    return { kind, file: name, tensors: stateDictFromCheckpoint(checkpoint, name, { key: options.key }), metadata: {} };
  }
  if (kind === 'onnx') throw new ModelFormatError('is an ONNX model, not a weights file (load it as a model instead)', { file: name });
  throw new ModelFormatError('not a weights file (expected safetensors or a PyTorch .pth/.pt)', { file: name });
}
