/**
 * semi_cut runs and their run folder, as a user hits them (issue 12): two trainers on one --out (#2), a lock
 * left by a trainer killed with SIGKILL (#2), a resume that must keep the run's cap and needs no dataset flags
 * (#3), and a resume on data that changed (#3). Tiny networks on tfjs-node.
 */
import { spawn } from 'node:child_process';
import { existsSync, promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { UsageError, availableBackends, loadTf, readRunManifest } from '@scenimefy/io';
import { makeTempDir, writeSyntheticDataset, type TempDir } from '@scenimefy/test-utils';

import { readTrainEvents } from './events';
import type { TrainOptions } from './train-options';
import { trainSemiCut } from './trainer';

const hasNode = availableBackends().some((b) => b.candidate === 'tfjs-node');
const describeNode = hasNode ? describe : describe.skip;

const TINY: Partial<TrainOptions> = {
  ngf: 8,
  ndf: 8,
  netFNc: 16,
  numPatches: 16,
  loadSize: 32,
  cropSize: 32,
  nEpochs: 1,
  nEpochsDecay: 1,
  saveEvery: 1,
  sampleEvery: 0,
  logEvery: 1,
  prefetch: 1,
};

describeNode('semi_cut run folders (tfjs-node)', () => {
  let tmp: TempDir;
  let data: { unpaired: string; paired: string };
  beforeAll(async () => {
    await loadTf({ prefer: 'tfjs-node', require: true });
    tmp = await makeTempDir('trainer-run-folder');
    const written = await writeSyntheticDataset(path.join(tmp.dir, 'data'), { count: 3, size: 32, seed: 5 });
    data = { unpaired: written.unpairedRoot, paired: written.pairedRoot };
  }, 60_000);
  afterAll(async () => {
    await tmp?.cleanup();
  });

  it('#2: lets one of two trainers on one --out in, and refuses the other naming the holder', async () => {
    const out = path.join(tmp.dir, 'both');
    const results = await Promise.allSettled([
      trainSemiCut({ ...data, out, options: { ...TINY, maxIterations: 2 }, backend: 'tfjs-node' }),
      trainSemiCut({ ...data, out, options: { ...TINY, maxIterations: 2 }, backend: 'tfjs-node' }),
    ]);
    const refused = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    expect(refused).toHaveLength(1);
    expect(refused[0]!.reason).toBeInstanceOf(UsageError);
    expect((refused[0]!.reason as Error).message).toMatch(new RegExp(`another trainer holds this run \\(pid ${process.pid} on host `));
    const run = await readRunManifest(path.join(out, 'run.json'));
    expect(run.status).toBe('completed');
    for (const c of run.checkpoints) expect(existsSync(path.join(out, c.folder, 'weights.safetensors'))).toBe(true);
  }, 120_000);

  it('#2: takes over the lock of a trainer that is gone, and says so in the events', async () => {
    const out = path.join(tmp.dir, 'stale');
    await fsp.mkdir(out, { recursive: true });
    const child = spawn(process.execPath, ['-e', '0'], { stdio: 'ignore' });
    await new Promise((r) => child.on('exit', r));
    await fsp.writeFile(
      path.join(out, 'run.lock'),
      JSON.stringify({ pid: child.pid, hostname: os.hostname(), startedAt: '2025-01-31T12:00:00.000Z' }),
    );
    await trainSemiCut({ ...data, out, options: { ...TINY, maxIterations: 1 }, backend: 'tfjs-node' });
    const notes = (await readTrainEvents(path.join(out, 'events.ndjson'))).filter((e) => e.type === 'note');
    expect(notes).toHaveLength(1);
    expect(notes[0]).toMatchObject({ message: expect.stringContaining(`took over the lock of a trainer that is gone (pid ${child.pid} `) });
    expect(existsSync(path.join(out, 'run.lock'))).toBe(false);
  }, 120_000);

  it('#3: a resume keeps the cap the run was started with, takes a new one as an override, and needs no dataset flags', async () => {
    const out = path.join(tmp.dir, 'capped');
    await trainSemiCut({ ...data, out, options: { ...TINY, maxIterations: 2 }, backend: 'tfjs-node' });
    await expect(trainSemiCut({ out, resume: true, backend: 'tfjs-node' })).rejects.toThrow(
      'the run is complete at iteration 2 (maxIterations 2); give a larger --max-iterations (or none) to train further',
    );
    const result = await trainSemiCut({ out, resume: true, options: { maxIterations: 3 }, backend: 'tfjs-node' });
    expect(result).toMatchObject({ status: 'completed', iteration: 3 });
    const run = await readRunManifest(path.join(out, 'run.json'));
    expect(run.options['maxIterations']).toBe(3);
    expect(run.resumes).toEqual([{ at: expect.any(String), iteration: 2, overrides: { maxIterations: 3 } }]);
    expect(run.datasets?.['unpaired']?.path).toBe(path.resolve(data.unpaired));
  }, 120_000);

  it('#3: refuses to resume on a dataset whose files changed, unless it is given again', async () => {
    const copy = path.join(tmp.dir, 'data-copy');
    await fsp.cp(path.dirname(data.unpaired), copy, { recursive: true });
    const unpaired = path.join(copy, path.basename(data.unpaired));
    const paired = path.join(copy, path.basename(data.paired));
    const out = path.join(tmp.dir, 'changed');
    await trainSemiCut({ unpaired, paired, out, options: { ...TINY, maxIterations: 1 }, backend: 'tfjs-node' });
    // One anime frame replaced by another of the set: the same count, other bytes.
    const anime = path.join(unpaired, 'trainB');
    const [first, second] = (await fsp.readdir(anime)).sort();
    await fsp.copyFile(path.join(anime, second as string), path.join(anime, first as string));
    await expect(trainSemiCut({ out, resume: true, options: { maxIterations: 2 }, backend: 'tfjs-node' })).rejects.toThrow(
      `the unpaired dataset at ${unpaired} changed since the run started (6 files, other names or sizes); give it again (--unpaired ${unpaired})`,
    );
    await trainSemiCut({ out, resume: true, unpaired, options: { maxIterations: 2 }, backend: 'tfjs-node' });
    const run = await readRunManifest(path.join(out, 'run.json'));
    expect(run.resumes?.at(-1)).toMatchObject({ iteration: 1, datasets: ['unpaired'] });
    // More photos: the saved data order cannot continue, given again or not.
    const photos = path.join(unpaired, 'trainA');
    const [photo] = await fsp.readdir(photos);
    await fsp.copyFile(path.join(photos, photo as string), path.join(photos, `more-${photo}`));
    await expect(trainSemiCut({ out, resume: true, unpaired, options: { maxIterations: 3 }, backend: 'tfjs-node' })).rejects.toThrow(
      "the unpaired dataset now has 4 samples per epoch, the checkpoint's data order is for 3",
    );
    expect((await readRunManifest(path.join(out, 'run.json'))).status).toBe('completed');
  }, 120_000);
});
