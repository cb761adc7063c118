/**
 * Weights files on disk (Node): which format a file holds, from its first bytes, and reading any weights file or
 * scenimefy-checkpoint folder into tensors. Formats from bytes are weights-format.ts.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';

import { readCheckpointManifest } from './contracts/contract-files';
import { InputError, ModelFormatError } from './errors';
import { assertRegularFile, danglingLinkError, openRegularFile } from './regular-file';
import { readSafetensors } from './safetensors-file';
import { stateDictFromCheckpoint } from './torch-checkpoint';
import { readTorchCheckpoint } from './torch-checkpoint-file';
import { type LoadedWeights, type ParseWeightsOptions, type WeightsFormat, weightsFormatOf } from './weights-format';

/** The format of `file` from its first 16 bytes; InputError when it cannot be read. */
export async function detectWeightsFormat(file: string): Promise<WeightsFormat | undefined> {
  let handle: fsp.FileHandle | undefined;
  try {
    handle = await openRegularFile(file, 'weights file');
    const head = new Uint8Array(16);
    const { bytesRead } = await handle.read(head, 0, 16, 0);
    return weightsFormatOf(head.subarray(0, bytesRead), file);
  } catch (error) {
    if (error instanceof InputError) throw error;
    const code = (error as NodeJS.ErrnoException).code ?? 'EIO';
    throw new InputError(code === 'ENOENT' ? 'no such file' : `cannot read (${code})`, { file, cause: error });
  } finally {
    await handle?.close();
  }
}

/**
 * The tensors of "some weights file", told apart by content: safetensors, a PyTorch `.pth`/`.pt` (zip or legacy;
 * `key` picks the state dict inside a nested checkpoint such as a StyleGAN2 `.pt`), or a scenimefy-checkpoint
 * folder (its `weights.safetensors`, names prefixed by network).
 */
export async function readWeights(file: string, options: ParseWeightsOptions = {}): Promise<LoadedWeights> {
  const stat = await fsp.stat(file).catch(async (error: NodeJS.ErrnoException) => {
    const dangling = error.code === 'ENOENT' ? await danglingLinkError(file, 'weights', error) : undefined;
    throw (
      dangling ?? new InputError(error.code === 'ENOENT' ? 'no such file or folder' : `cannot read (${error.code})`, { file, cause: error })
    );
  });
  // A FIFO, socket or device is neither a weights file nor a checkpoint folder: say what it is.
  if (!stat.isDirectory() && !stat.isFile()) await assertRegularFile(file, 'weights');
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
    const checkpoint = await readTorchCheckpoint(file, { maxInflatedBytes: options.maxInflatedBytes, limits: options.limits });
    return { kind, file, tensors: stateDictFromCheckpoint(checkpoint, file, { key: options.key }), metadata: {} };
  }
  throw new ModelFormatError('not a weights file (expected safetensors, a PyTorch .pth/.pt, or a checkpoint folder)', { file });
}
