/**
 * PyTorch checkpoints on disk (Node): the file is read into one buffer, which its tensors then view. Parsing is
 * torch-checkpoint.ts.
 */
import type { promises as fsp } from 'node:fs';

import './crc32-node';
import { InputError, ModelFormatError } from './errors';
import { openRegularFile } from './regular-file';
import type { TensorMap } from './tensor';
import { TORCH_CHECKPOINT_MAX_BYTES, parseTorchCheckpoint, stateDictFromCheckpoint } from './torch-checkpoint';
import type { ReadTorchCheckpointOptions, ReadTorchStateDictOptions } from './torch-checkpoint';

/**
 * Read a `torch.save` file into plain values: tensors become TensorData, dicts Maps, lists arrays, tuples frozen
 * arrays, argparse.Namespace a plain object. Throws InputError when the file cannot be read and ModelFormatError
 * (naming the file) when it is malformed or names anything beyond tensors and containers.
 */
export async function readTorchCheckpoint(file: string, options: ReadTorchCheckpointOptions = {}): Promise<unknown> {
  const bytes = await readWholeFile(file, options.maxBytes ?? TORCH_CHECKPOINT_MAX_BYTES);
  return parseTorchCheckpoint(bytes, file, options);
}

/**
 * Read the state dict (tensor name → tensor, in file order) of a `torch.save` file: the whole file when it is a
 * plain state dict, or the one stored under `options.key`.
 */
export async function readTorchStateDict(file: string, options: ReadTorchStateDictOptions = {}): Promise<TensorMap> {
  return stateDictFromCheckpoint(await readTorchCheckpoint(file, options), file, options);
}

async function readWholeFile(file: string, maxBytes: number): Promise<Uint8Array> {
  let handle: fsp.FileHandle;
  try {
    handle = await openRegularFile(file, 'PyTorch checkpoint');
  } catch (error) {
    if (error instanceof InputError) throw error;
    const code = (error as NodeJS.ErrnoException).code ?? 'EIO';
    throw new InputError(`cannot read PyTorch checkpoint (${code})`, { file, cause: error });
  }
  try {
    const { size } = await handle.stat();
    if (size > maxBytes) throw new ModelFormatError(`${size} bytes, more than the limit of ${maxBytes}`, { file });
    // One unpooled buffer for the whole file: tensors become views of it, and it starts 64-byte aligned.
    const buffer = Buffer.allocUnsafeSlow(size);
    let filled = 0;
    while (filled < size) {
      const { bytesRead } = await handle.read(buffer, filled, Math.min(size - filled, 1 << 30), filled);
      if (bytesRead === 0) throw new InputError(`file shrank while being read (${filled} of ${size} bytes)`, { file });
      filled += bytesRead;
    }
    return buffer;
  } catch (error) {
    if (error instanceof InputError || error instanceof ModelFormatError) throw error;
    const code = (error as NodeJS.ErrnoException).code ?? 'EIO';
    throw new InputError(`cannot read PyTorch checkpoint (${code})`, { file, cause: error });
  } finally {
    await handle.close();
  }
}
