import { promises as fsp } from 'node:fs';
import * as path from 'node:path';

import { DTYPE_BYTES, InputError, numel, readRunManifest, readWeights } from '@scenimefy/io';

import type { Output } from '../output';

/**
 * A training run folder (run.json, no checkpoint.json of its own) stands for its newest complete checkpoint,
 * as it does for `translate --model` and `export` (i2i-core's resolveModel): the same test and the same
 * lookup (i2i-core's latestCheckpoint, which never picks a checkpoint being written or cut short).
 */
async function newestCheckpointOfRun(folder: string): Promise<string | undefined> {
  const isFile = async (name: string): Promise<boolean> =>
    (await fsp.stat(path.join(folder, name)).catch(() => undefined))?.isFile() === true;
  if ((await fsp.stat(folder).catch(() => undefined))?.isDirectory() !== true) return undefined;
  if ((await isFile('checkpoint.json')) || !(await isFile('run.json'))) return undefined;
  await readRunManifest(path.join(folder, 'run.json')); // a folder of something else is refused by name
  // Imported here only: the rest of inspect needs nothing of i2i-core (onnxruntime, TF.js).
  const { latestCheckpoint } = await import('@scenimefy/i2i-core');
  const checkpoint = await latestCheckpoint(folder);
  if (checkpoint === undefined) throw new InputError('training run has no complete checkpoint yet (checkpoints/iter-*)', { file: folder });
  return checkpoint;
}

export async function inspectCommand(file: string, opts: { key?: string }, out: Output): Promise<number> {
  const checkpoint = await newestCheckpointOfRun(file);
  const weights = await readWeights(checkpoint ?? file, { key: opts.key });
  let elements = 0;
  let bytes = 0;
  const rows: string[][] = [];
  const tensors: Array<{ name: string; dtype: string; shape: readonly number[] }> = [];
  for (const [name, t] of weights.tensors) {
    const n = numel(t.shape);
    elements += n;
    bytes += n * DTYPE_BYTES[t.dtype];
    rows.push([name, t.dtype, `[${t.shape.join(', ')}]`]);
    tensors.push({ name, dtype: t.dtype, shape: t.shape });
  }
  const of = checkpoint === undefined ? '' : ` (newest checkpoint of run ${file})`;
  const summary = `${weights.file}: ${weights.kind}, ${weights.tensors.size} tensors, ${elements.toLocaleString('en-US')} elements, ${bytes.toLocaleString('en-US')} bytes${of}`;
  out.result([summary, ...rows], {
    event: 'inspect',
    file: weights.file,
    ...(checkpoint === undefined ? {} : { run: file }),
    kind: weights.kind,
    tensorCount: weights.tensors.size,
    elements,
    bytes,
    metadata: weights.metadata,
    tensors,
  });
  return 0;
}
