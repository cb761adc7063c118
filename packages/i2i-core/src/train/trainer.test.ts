/**
 * Training runs end to end on tiny networks and images (ngf 8, 32 px): the run folder's files, resume equal to
 * an uninterrupted run (losses and final weights bit for bit), stop by signal, NaN stop keeping the last good
 * checkpoint, and refusals. Needs a backend that trains at test speed (tfjs-node).
 */
import { existsSync, promises as fsp } from 'node:fs';
import * as path from 'node:path';

import { NumericError, UsageError, availableBackends, loadTf, readRunManifest, readSafetensors, writeImage } from '@scenimefy/io';
import { makeTempDir, referenceFixturesDir, type TempDir } from '@scenimefy/test-utils';

import { SeededRng } from '../seeded-rng';
import { latestCheckpoint, loadTrainingCheckpoint } from './semi-cut-checkpoint';
import { readTrainEvents } from './events';
import type { TrainEvent } from './events';
import { trainSemiCut } from './trainer';
import type { TrainOptions } from './train-options';

const hasNode = availableBackends().some((b) => b.candidate === 'tfjs-node');
const describeNode = hasNode ? describe : describe.skip;
const vggFile = path.join(referenceFixturesDir(), 'vgg19', 'vgg19_features.pth');
const itIfVgg = existsSync(vggFile) ? it : it.skip;

/** Small, fast options: 3 unpaired images → 3 iterations per epoch, 2 epochs. */
const TINY: Partial<TrainOptions> = {
  ngf: 8,
  ndf: 8,
  netFNc: 16,
  numPatches: 16,
  loadSize: 32,
  cropSize: 32,
  nEpochs: 1,
  nEpochsDecay: 1,
  saveEvery: 2,
  keep: 2,
  sampleEvery: 3,
  logEvery: 1,
  prefetch: 2,
  seed: 7,
};

async function noiseImage(file: string, seed: number, size: number): Promise<void> {
  const rng = SeededRng.fromSeed(seed);
  const data = new Uint8Array(size * size * 3);
  for (let i = 0; i < data.length; i++) data[i] = rng.below(256);
  await fsp.mkdir(path.dirname(file), { recursive: true });
  await writeImage(file, { width: size, height: size, data });
}

async function dataset(root: string): Promise<{ unpaired: string; paired: string }> {
  const unpaired = path.join(root, 'unpaired');
  const paired = path.join(root, 'paired');
  for (let i = 0; i < 3; i++) await noiseImage(path.join(unpaired, 'trainA', `a${i}.png`), 100 + i, 40);
  for (let i = 0; i < 2; i++) await noiseImage(path.join(unpaired, 'trainB', `b${i}.png`), 200 + i, 36);
  for (let i = 0; i < 2; i++) {
    await noiseImage(path.join(paired, 'trainA', `${i}.png`), 300 + i, 32);
    await noiseImage(path.join(paired, 'trainB', `${i}.png`), 400 + i, 32);
  }
  return { unpaired, paired };
}

const lossLines = (events: TrainEvent[]) =>
  events
    .filter((e): e is Extract<TrainEvent, { type: 'iteration' }> => e.type === 'iteration')
    .map((e) => ({ iteration: e.iteration, epoch: e.epoch, lr: e.lr, losses: e.losses }));

async function weightsOf(runFolder: string): Promise<Map<string, Uint8Array>> {
  const newest = await latestCheckpoint(runFolder);
  if (newest === undefined) throw new Error(`${runFolder}: no checkpoint`);
  const { tensors } = await readSafetensors(path.join(newest, 'weights.safetensors'));
  return new Map([...tensors].map(([k, t]) => [k, t.bytes]));
}

describeNode('trainSemiCut (tfjs-node)', () => {
  let tmp: TempDir;
  let data: { unpaired: string; paired: string };
  let full: string;

  beforeAll(async () => {
    await loadTf({ prefer: 'tfjs-node', require: true });
    tmp = await makeTempDir('trainer');
    data = await dataset(path.join(tmp.dir, 'data'));
    full = path.join(tmp.dir, 'full');
  }, 60_000);
  afterAll(async () => {
    await tmp?.cleanup();
  });

  it('runs every epoch and leaves a complete run folder, without leaking tensors', async () => {
    const { tf } = await loadTf({ prefer: 'tfjs-node' });
    const before = tf.memory().numTensors;
    const seen: number[] = [];
    const result = await trainSemiCut(
      { ...data, out: full, options: TINY, backend: 'tfjs-node' },
      { onIteration: (p) => seen.push(p.iteration) },
    );
    expect(tf.memory().numTensors).toBe(before);
    expect(result).toMatchObject({ status: 'completed', iteration: 6, epoch: 2, backend: 'tfjs-node' });
    expect(seen).toEqual([1, 2, 3, 4, 5, 6]);

    const run = await readRunManifest(path.join(full, 'run.json'));
    expect(run.status).toBe('completed');
    expect(run.nonDefaults).toEqual(expect.arrayContaining(['ngf', 'numPatches', 'nEpochs', 'saveEvery']));
    expect(run.nonDefaults).not.toContain('lambdaNceS');
    // Checkpoints at 2, 3 (epoch end), 4, 6 (epoch end, also the last); keep 2.
    expect(run.checkpoints.map((c) => [c.folder, c.epoch])).toEqual([
      ['checkpoints/iter-000000004', 2],
      ['checkpoints/iter-000000006', 2],
    ]);
    expect((await fsp.readdir(path.join(full, 'checkpoints'))).sort()).toEqual(['iter-000000004', 'iter-000000006']);
    expect(await fsp.readFile(path.join(full, 'options.txt'), 'utf8')).toMatch(/ngf: 8\t\[default: 64\]/);

    const events = await readTrainEvents(path.join(full, 'events.ndjson'));
    expect(events.map((e) => e.type)).toEqual([
      'start',
      'iteration',
      'iteration',
      'checkpoint',
      'sample',
      'iteration',
      'epoch',
      'checkpoint',
      'iteration',
      'checkpoint',
      'iteration',
      'sample',
      'iteration',
      'epoch',
      'checkpoint',
      'end',
    ]);
    const lines = lossLines(events);
    expect(lines.map((l) => [l.epoch, l.lr])).toEqual([
      [1, 2e-4],
      [1, 2e-4],
      [1, 2e-4],
      // linear policy: epoch 2 of 1 + 1 runs at 1 − 1/2 of the base rate
      [2, 1e-4],
      [2, 1e-4],
      [2, 1e-4],
    ]);
    for (const l of lines) for (const v of Object.values(l.losses)) expect(Number.isFinite(v)).toBe(true);
    const samples = events.filter((e) => e.type === 'sample').map((e) => (e as { file: string }).file);
    expect(samples).toEqual(['samples/iter-000000003.png', 'samples/iter-000000006.png']);
    for (const s of samples) expect((await fsp.stat(path.join(full, s))).size).toBeGreaterThan(100);
    const report = await fsp.readFile(path.join(full, 'report.html'), 'utf8');
    expect(report).toContain('samples/iter-000000006.png');
    expect(report).toContain('<svg');

    const loaded = await loadTrainingCheckpoint(tf, path.join(full, 'checkpoints/iter-000000006'));
    try {
      expect(loaded.state).toMatchObject({ iteration: 6, epoch: 2, epochIter: 3 });
      expect(loaded.optimizerStates.G.step).toBe(6);
    } finally {
      for (const net of Object.values(loaded.networks)) net.dispose();
    }
  }, 300_000);

  it('a run resumed after --max-iterations logs the same losses and ends with the same weights', async () => {
    const split = path.join(tmp.dir, 'split');
    const first = await trainSemiCut({ ...data, out: split, options: { ...TINY, maxIterations: 4 }, backend: 'tfjs-node' });
    expect(first).toMatchObject({ status: 'completed', iteration: 4 });
    const second = await trainSemiCut({ ...data, out: split, resume: true, options: { maxIterations: undefined }, backend: 'tfjs-node' });
    expect(second).toMatchObject({ status: 'completed', iteration: 6, epoch: 2 });
    const want = lossLines(await readTrainEvents(path.join(full, 'events.ndjson')));
    const got = lossLines(await readTrainEvents(path.join(split, 'events.ndjson')));
    expect(got).toEqual(want);
    expect(await weightsOf(split)).toEqual(await weightsOf(full));
  }, 300_000);

  it('stops on abort after the current step with a checkpoint, and resumes to the same result', async () => {
    const stopped = path.join(tmp.dir, 'stopped');
    const controller = new AbortController();
    const result = await trainSemiCut(
      { ...data, out: stopped, options: TINY, backend: 'tfjs-node' },
      { signal: controller.signal, onIteration: (p) => p.iteration === 5 && controller.abort() },
    );
    expect(result).toMatchObject({ status: 'stopped', iteration: 5 });
    expect((await readRunManifest(path.join(stopped, 'run.json'))).status).toBe('stopped');
    expect(path.basename((await latestCheckpoint(stopped)) as string)).toBe('iter-000000005');
    await trainSemiCut({ ...data, out: stopped, resume: true, backend: 'tfjs-node' });
    expect(lossLines(await readTrainEvents(path.join(stopped, 'events.ndjson')))).toEqual(
      lossLines(await readTrainEvents(path.join(full, 'events.ndjson'))),
    );
    expect(await weightsOf(stopped)).toEqual(await weightsOf(full));
  }, 300_000);

  it('stops with a NumericError when the losses blow up, keeping only finite checkpoints', async () => {
    const blown = path.join(tmp.dir, 'blown');
    const error = await trainSemiCut({ ...data, out: blown, options: { ...TINY, lr: 1e30, saveEvery: 1 }, backend: 'tfjs-node' }).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(NumericError);
    expect((error as Error).message).toMatch(/(loss \S+ became|weights of \S+ became) (NaN|Infinity|-Infinity|NaN or infinite)/);
    const run = await readRunManifest(path.join(blown, 'run.json'));
    expect(run.status).toBe('failed');
    expect(run.error?.message).toBe((error as Error).message);
    const events = await readTrainEvents(path.join(blown, 'events.ndjson'));
    expect(events.at(-1)).toMatchObject({ type: 'end', status: 'failed' });
    const { tf } = await loadTf({ prefer: 'tfjs-node' });
    for (const c of run.checkpoints) {
      const { tensors } = await readSafetensors(path.join(blown, c.folder, 'weights.safetensors'));
      for (const [key, t] of tensors) {
        const values = new Float32Array(t.bytes.buffer, t.bytes.byteOffset, t.bytes.byteLength / 4);
        expect({ key, finite: values.every(Number.isFinite) }).toEqual({ key, finite: true });
      }
    }
    expect(tf.memory().numTensors).toBeGreaterThanOrEqual(0);
  }, 300_000);

  // The 40 MB VGG fixture is not copied into the repo; without ../shared this one is skipped.
  itIfVgg(
    'trains with the content-loss variants: VGG perceptual term, L1 to the source, L1 paired branch',
    async () => {
      const out = path.join(tmp.dir, 'variants');
      const options = {
        ...TINY,
        maxIterations: 2,
        lambdaVgg: 0.1,
        vggInput: 'unit' as const,
        lambdaL1Source: 1,
        pairedLoss: 'l1' as const,
      };
      const result = await trainSemiCut({ ...data, out, options, vggWeights: vggFile, backend: 'tfjs-node' });
      expect(result.status).toBe('completed');
      const [firstLine] = lossLines(await readTrainEvents(path.join(out, 'events.ndjson')));
      const l = (firstLine as { losses: Record<string, number> }).losses;
      expect(l.VGG).toBeGreaterThan(0);
      expect(l.L1_source).toBeGreaterThan(0);
      expect(l.L1_paired).toBeGreaterThan(0);
      expect(l.NCE_s).toBe(0);
      const run = await readRunManifest(path.join(out, 'run.json'));
      expect(run.nonDefaults).toEqual(expect.arrayContaining(['lambdaVgg', 'vggInput', 'lambdaL1Source', 'pairedLoss']));
      await expect(
        trainSemiCut({
          ...data,
          out: path.join(tmp.dir, 'novgg'),
          options,
          vggWeights: path.join(tmp.dir, 'missing.pth'),
          backend: 'tfjs-node',
        }),
      ).rejects.toThrow(/missing\.pth/);
    },
    300_000,
  );

  it('refuses to overwrite a run, to resume nothing, and to change options on resume', async () => {
    await expect(trainSemiCut({ ...data, out: full, options: TINY, backend: 'tfjs-node' })).rejects.toThrow(
      /already holds a training run; pass --resume/,
    );
    await expect(trainSemiCut({ ...data, out: path.join(tmp.dir, 'none'), resume: true, backend: 'tfjs-node' })).rejects.toThrow(
      UsageError,
    );
    await expect(trainSemiCut({ ...data, out: full, resume: true, options: { lr: 1e-3 }, backend: 'tfjs-node' })).rejects.toThrow(
      /keeps the options it was started with; drop "lr"/,
    );
  });

  it('refuses a missing dataset before writing anything', async () => {
    const out = path.join(tmp.dir, 'never');
    await expect(
      trainSemiCut({ unpaired: path.join(tmp.dir, 'nope'), paired: data.paired, out, options: TINY, backend: 'tfjs-node' }),
    ).rejects.toThrow(/nope/);
    await expect(fsp.stat(out)).rejects.toThrow();
  });
});
