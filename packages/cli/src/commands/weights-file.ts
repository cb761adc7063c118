/**
 * Reading "some weights file" as the CLI accepts it: safetensors, PyTorch .pth/.pt (zip or legacy, told apart by
 * content, not by extension), or a scenimefy-checkpoint folder.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';

import {
  InputError,
  detectWeightsFormat,
  ModelFormatError,
  readCheckpointManifest,
  readSafetensors,
  readTorchCheckpoint,
  stateDictFromCheckpoint,
  type TensorMap,
} from '@scenimefy/io';

export type WeightsKind = 'safetensors' | 'pytorch' | 'onnx' | 'scenimefy-checkpoint';

export interface LoadedWeights {
  kind: WeightsKind;
  file: string;
  tensors: TensorMap;
  metadata: Record<string, string>;
}

export async function loadWeights(file: string, options: { key?: string } = {}): Promise<LoadedWeights> {
  const stat = await fsp.stat(file).catch((error: NodeJS.ErrnoException) => {
    throw new InputError(error.code === 'ENOENT' ? 'no such file or folder' : `cannot read (${error.code})`, { file });
  });
  if (stat.isDirectory()) {
    const manifestFile = path.join(file, 'checkpoint.json');
    const manifest = await readCheckpointManifest(manifestFile);
    const weightsFile = path.join(file, manifest.weights.file);
    const { tensors, metadata } = await readSafetensors(weightsFile);
    return { kind: 'scenimefy-checkpoint', file, tensors, metadata };
  }
  const kind = await detectWeightsFormat(file);
  if (kind === 'safetensors') {
    if (options.key !== undefined) throw new InputError('--key applies to PyTorch checkpoints, not safetensors', { file });
    const { tensors, metadata } = await readSafetensors(file);
    return { kind, file, tensors, metadata };
  }
  if (kind === 'pytorch') {
    const checkpoint = await readTorchCheckpoint(file);
    return { kind, file, tensors: stateDictFromCheckpoint(checkpoint, file, { key: options.key }), metadata: {} };
  }
  throw new ModelFormatError('not a weights file (expected safetensors, a PyTorch .pth/.pt, or a checkpoint folder)', { file });
}
