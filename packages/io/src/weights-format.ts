/**
 * Which weights format a file holds, and reading any of them into tensors.
 *
 * Which weights format a file holds, told from its first bytes (never from its extension alone): a PyTorch
 * checkpoint (zip `PK` or a legacy pickle), safetensors (u64 header length, then `{`), or ONNX (a ModelProto
 * starting with field 1, `ir_version`; only trusted with an `.onnx` name since the tag byte is common).
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';

import { readCheckpointManifest } from './contracts/contract-files';
import { InputError, ModelFormatError } from './errors';
import { readSafetensors } from './safetensors';
import type { TensorMap } from './tensor';
import { readTorchCheckpoint, stateDictFromCheckpoint } from './torch-checkpoint';

export type WeightsFormat = 'pytorch' | 'safetensors' | 'onnx';

export function weightsFormatOf(head: Uint8Array, file = ''): WeightsFormat | undefined {
  if (head.length >= 2 && head[0] === 0x50 && head[1] === 0x4b) return 'pytorch';
  if (head.length >= 2 && head[0] === 0x80 && head[1]! >= 2 && head[1]! <= 5) return 'pytorch';
  if (head.length >= 9 && head[8] === 0x7b) return 'safetensors';
  if (head.length >= 2 && head[0] === 0x08 && file.toLowerCase().endsWith('.onnx')) return 'onnx';
  return undefined;
}

/** The format of `file` from its first 16 bytes; InputError when it cannot be read. */
export async function detectWeightsFormat(file: string): Promise<WeightsFormat | undefined> {
  let handle: fsp.FileHandle | undefined;
  try {
    handle = await fsp.open(file, 'r');
    const head = new Uint8Array(16);
    const { bytesRead } = await handle.read(head, 0, 16, 0);
    return weightsFormatOf(head.subarray(0, bytesRead), file);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'EIO';
    throw new InputError(code === 'ENOENT' ? 'no such file' : `cannot read (${code})`, { file, cause: error });
  } finally {
    await handle?.close();
  }
}

export type WeightsKind = 'safetensors' | 'pytorch' | 'scenimefy-checkpoint';

export interface LoadedWeights {
  kind: WeightsKind;
  file: string;
  /** Tensors by name, in file order. */
  tensors: TensorMap;
  /** safetensors `__metadata__` (empty for the other kinds). */
  metadata: Record<string, string>;
}

/**
 * The tensors of "some weights file", told apart by content: safetensors, a PyTorch `.pth`/`.pt` (zip or legacy;
 * `key` picks the state dict inside a nested checkpoint such as a StyleGAN2 `.pt`), or a scenimefy-checkpoint
 * folder (its `weights.safetensors`, names prefixed by network).
 */
export async function readWeights(file: string, options: { key?: string } = {}): Promise<LoadedWeights> {
  const stat = await fsp.stat(file).catch((error: NodeJS.ErrnoException) => {
    throw new InputError(error.code === 'ENOENT' ? 'no such file or folder' : `cannot read (${error.code})`, { file, cause: error });
  });
  if (stat.isDirectory()) {
    const manifest = await readCheckpointManifest(path.join(file, 'checkpoint.json'));
    const { tensors, metadata } = await readSafetensors(path.join(file, manifest.weights.file));
    return { kind: 'scenimefy-checkpoint', file, tensors, metadata };
  }
  const kind = await detectWeightsFormat(file);
  if (kind === 'safetensors') {
    if (options.key !== undefined) throw new InputError('a key (--key) applies to PyTorch checkpoints, not safetensors', { file });
    const { tensors, metadata } = await readSafetensors(file);
    return { kind, file, tensors, metadata };
  }
  if (kind === 'pytorch') {
    return { kind, file, tensors: stateDictFromCheckpoint(await readTorchCheckpoint(file), file, { key: options.key }), metadata: {} };
  }
  throw new ModelFormatError('not a weights file (expected safetensors, a PyTorch .pth/.pt, or a checkpoint folder)', { file });
}
