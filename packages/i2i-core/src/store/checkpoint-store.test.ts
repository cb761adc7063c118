/**
 * The generic checkpoint store on folders that hold nothing but a manifest and a weights file: atomic writes,
 * the newest complete folder, pruning. (train/checkpoint.test.ts covers crashes in the middle of semi_cut saves.)
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';

import { UsageError, float32Tensor, sha256File, writeCheckpointManifest, writeSafetensors } from '@scenimefy/io';
import { makeTempDir, type TempDir } from '@scenimefy/test-utils';

import {
  checkpointFolderFor,
  checkpointFolderProblem,
  latestCheckpoint,
  pruneCheckpoints,
  runRelativePath,
  writeCheckpointFolder,
} from './checkpoint-store';

/** A generator-only checkpoint (what `models import` writes), its one weight set to `value`. */
async function writeTiny(tmp: string, value: number): Promise<void> {
  const weights = path.join(tmp, 'weights.safetensors');
  await writeSafetensors(weights, new Map([['netG.model.1.bias', float32Tensor([1], Float32Array.of(value))]]));
  await writeCheckpointManifest(path.join(tmp, 'checkpoint.json'), {
    format: 'scenimefy-checkpoint',
    formatVersion: 2,
    generatedBy: { name: '@scenimefy/i2i-core', version: '0.1.0' },
    createdAt: new Date().toISOString(),
    networks: {
      netG: { architecture: 'resnet_9blocks', ngf: 1, inputNc: 3, outputNc: 3, antialias: true, antialiasUp: true, norm: 'instance' },
    },
    tensorNaming: 'network-prefixed-state-dict',
    weights: { file: 'weights.safetensors', sha256: await sha256File(weights), size: (await fsp.stat(weights)).size },
  });
}

describe('checkpoint store', () => {
  let tmp: TempDir;
  beforeEach(async () => {
    tmp = await makeTempDir('checkpoint-store');
  });
  afterEach(async () => {
    await tmp.cleanup();
  });

  it('writes a folder whole or not at all, and replaces one only with a whole new one', async () => {
    const run = path.join(tmp.dir, 'run');
    const folder = checkpointFolderFor(run, 3);
    expect(runRelativePath(run, folder)).toBe('checkpoints/iter-000000003');
    const seen = await writeCheckpointFolder(folder, async (dir) => {
      expect(path.basename(dir)).toMatch(/^\.iter-000000003\.tmp-\d+-[0-9a-f]{12}$/);
      await writeTiny(dir, 1);
      return dir;
    });
    expect(await fsp.readdir(path.dirname(folder))).toEqual(['iter-000000003']);
    await expect(fsp.stat(seen)).rejects.toThrow();
    expect(await checkpointFolderProblem(folder)).toBeUndefined();

    // A writer that fails half-way leaves the old folder as it was and no work folder.
    const before = await fsp.readFile(path.join(folder, 'weights.safetensors'));
    await expect(
      writeCheckpointFolder(folder, async (dir) => {
        await fsp.writeFile(path.join(dir, 'weights.safetensors'), 'partial');
        throw new Error('disk full');
      }),
    ).rejects.toThrow('disk full');
    // A writer that forgets checkpoint.json is refused the same way.
    await expect(writeCheckpointFolder(folder, async (dir) => fsp.writeFile(path.join(dir, 'weights.safetensors'), 'x'))).rejects.toThrow(
      'wrote no checkpoint.json',
    );
    expect(await fsp.readdir(path.dirname(folder))).toEqual(['iter-000000003']);
    expect((await fsp.readFile(path.join(folder, 'weights.safetensors'))).equals(before)).toBe(true);

    await writeCheckpointFolder(folder, (dir) => writeTiny(dir, 2));
    expect((await fsp.readFile(path.join(folder, 'weights.safetensors'))).equals(before)).toBe(false);
    expect(await fsp.readdir(path.dirname(folder))).toEqual(['iter-000000003']);
  });

  it('refuses to write over a run folder or a folder that is not a checkpoint', async () => {
    const plain = path.join(tmp.dir, 'plain');
    await fsp.mkdir(plain);
    await fsp.writeFile(path.join(plain, 'notes.txt'), 'mine');
    await expect(writeCheckpointFolder(plain, (dir) => writeTiny(dir, 1))).rejects.toThrow(UsageError);
    await fsp.writeFile(path.join(plain, 'run.json'), '{}');
    await expect(writeCheckpointFolder(plain, (dir) => writeTiny(dir, 1))).rejects.toThrow('is a run folder');
    expect((await fsp.readdir(plain)).sort()).toEqual(['notes.txt', 'run.json']);
  });

  it('finds the newest complete folder and prunes the older ones, whatever the checkpoints hold', async () => {
    const run = path.join(tmp.dir, 'run');
    for (const it of [1, 2, 3, 4]) await writeCheckpointFolder(checkpointFolderFor(run, it), (dir) => writeTiny(dir, it));
    // Iteration 4's weights lose bytes: no longer complete.
    const weights4 = path.join(checkpointFolderFor(run, 4), 'weights.safetensors');
    await fsp.truncate(weights4, 10);
    expect(await checkpointFolderProblem(checkpointFolderFor(run, 4))).toMatch(
      /weights\.safetensors has 10 bytes, checkpoint\.json says \d+/,
    );
    expect(await latestCheckpoint(run)).toBe(checkpointFolderFor(run, 3));
    expect(await pruneCheckpoints(run, 1, ['iter-000000001'])).toEqual([checkpointFolderFor(run, 2)]);
    expect((await fsp.readdir(path.join(run, 'checkpoints'))).sort()).toEqual(['iter-000000001', 'iter-000000003', 'iter-000000004']);
  });
});
