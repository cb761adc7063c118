/**
 * The one run loop with a toy TrainableModel — linear regression on seeded points with one Adam, declared in a
 * few dozen lines — trains, checkpoints, reports and resumes to the same losses and weights as an uninterrupted
 * run, with the run folder's lock (issue 12 #2) and the resume rules (issue 12 #3) that every model gets. Runs on
 * the pure-JS cpu backend: no native TensorFlow needed.
 */
import { spawn } from 'node:child_process';
import { existsSync, promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { UsageError, loadTf, readRunManifest, readSafetensors, tensorToFloat32 } from '@scenimefy/io';
import { makeTempDir, type TempDir } from '@scenimefy/test-utils';
import type { Tensor, Variable } from '@tensorflow/tfjs-core';
import { z } from 'zod';

import type { Tf } from '../layers/tf';
import { integerOption, numberOption } from '../options/option-schema';
import { SeededRng } from '../seeded-rng';
import { latestCheckpoint } from '../store/checkpoint-store';
import type { TrainEvent } from './events';
import { readTrainEvents } from './events';
import { restoreOptimizers } from './model-checkpoint';
import { Adam } from './adam';
import { runTraining, type TrainRunRequest } from './run-loop';
import { RUN_LOCK_FILE } from './run-lock';
import { runLoopOptionShape } from './run-options';
import type { TrainableModel, TrainingStage } from './trainable-model';

// ---------------------------------------------------------------------------------------------------------
// The toy stage: y = x·w + b on points.json, batches of 4 in a seeded order per epoch.

const toyOptionsSchema = z.strictObject({
  lr: numberOption({ default: 0.05, min: 0, exclusive: true, help: 'Adam learning rate' }),
  epochs: integerOption({ default: 3, min: 1, help: 'epochs over the points' }),
  seed: integerOption({ default: 1, min: 0, help: 'seed of the data order and the init' }),
  ...runLoopOptionShape({ saveEvery: 4, keep: 2, sampleEvery: 0, logEvery: 1 }, { schedule: 'Schedule:', run: 'Run:' }),
});
type ToyOptions = z.output<typeof toyOptionsSchema>;
interface ToyBatch {
  x: Tensor;
  y: Tensor;
}

function toyModel(tf: Tf, weight: Variable, bias: Variable, lr: number): TrainableModel<ToyBatch> {
  const variables = new Map([
    ['weight', weight],
    ['bias', bias],
  ]);
  const adam = new Adam(tf, variables, { lr });
  return {
    name: 'toy',
    lossNames: ['mse'],
    progressLosses: ['mse'],
    chartGroups: [{ id: 'fit', title: 'Fit', losses: ['mse'] }],
    networks: () =>
      new Map([
        [
          'linear',
          {
            architecture: () => ({ architecture: 'linear', inFeatures: 3, outFeatures: 1, bias: true }),
            stateDict: async () =>
              new Map([...variables].map(([k, v]) => [k, { shape: v.shape, data: (v.dataSync() as Float32Array).slice() }])),
            variables,
          },
        ],
      ]),
    optimizers: () => new Map([['opt', { networks: ['linear'], adam }]]),
    beginEpoch: (_epoch, rate) => {
      adam.lr = rate;
    },
    step: ({ x, y }) => {
      const { value, grads } = tf.variableGrads(
        () => tf.mean(tf.square(tf.sub(tf.add(tf.matMul(x, weight, false, true), bias), y))),
        [weight, bias],
      );
      adam.applyGradients(
        new Map([
          ['weight', grads[weight.name]!],
          ['bias', grads[bias.name]!],
        ]),
      );
      const mse = value.dataSync()[0] as number;
      tf.dispose([value, ...Object.values(grads)]);
      return { mse };
    },
    visuals: async () => [],
    saveState: () => ({}),
    dispose: () => {
      adam.dispose();
      weight.dispose();
      bias.dispose();
    },
  };
}

const toyStage: TrainingStage<ToyOptions, ToyBatch> = {
  description: { name: 'toy', lossNames: ['mse'], progressLosses: ['mse'], chartGroups: [{ id: 'fit', title: 'Fit', losses: ['mse'] }] },
  optionsSchema: toyOptionsSchema,
  optionsWhat: 'toy options',
  datasets: ['points'],
  openTask: async ({ options: o, datasets }) => {
    const points = JSON.parse(await fsp.readFile(path.join(datasets['points'] as string, 'points.json'), 'utf8')) as number[][];
    const { tf } = await loadTf({ prefer: 'cpu' });
    let rng = SeededRng.fromSeed(o.seed);
    let order = Array.from(rng.permutation(points.length));
    let cursor = 0;
    const batchSize = 4;
    return {
      tf,
      backend: 'cpu',
      totalEpochs: o.epochs,
      learningRate: () => o.lr,
      data: {
        iterationsPerEpoch: Math.floor(points.length / batchSize),
        next: async () => {
          const rows = order.slice(cursor, cursor + batchSize).map((i) => points[i] as number[]);
          cursor += batchSize;
          return { x: tf.tensor2d(rows.map((r) => r.slice(0, 3))), y: tf.tensor2d(rows.map((r) => [r[3] as number])) };
        },
        disposeBatch: (b) => tf.dispose([b.x, b.y]),
        endEpoch: async () => {
          order = Array.from(rng.permutation(points.length));
          cursor = 0;
        },
        rngState: () => ({ words: [...rng.state()], order, cursor }),
        setRngState: (s) => {
          rng = new SeededRng(s['words'] as number[]);
          order = s['order'] as number[];
          cursor = s['cursor'] as number;
        },
        close: async () => undefined,
      },
      createModel: (_batch, { lr }) => {
        const init = SeededRng.fromSeed(o.seed + 1);
        const weight = tf.variable(tf.tensor2d([[init.uniform() - 0.5, init.uniform() - 0.5, init.uniform() - 0.5]]));
        return toyModel(tf, weight, tf.variable(tf.zeros([1])), lr);
      },
      loadModel: (checkpoint) => {
        const read = (key: string): Float32Array => tensorToFloat32(checkpoint.weights.get(`linear.${key}`)!);
        const model = toyModel(tf, tf.variable(tf.tensor2d(read('weight'), [1, 3])), tf.variable(tf.tensor1d(read('bias'))), o.lr);
        restoreOptimizers(checkpoint, model.optimizers());
        return model;
      },
      dispose: () => undefined,
    };
  },
};

/** 40 points of y = 2x₀ − x₁ + 0.5x₂ + 0.3 with a little noise. */
async function writePoints(dir: string, seed = 5, count = 40): Promise<string> {
  const rng = SeededRng.fromSeed(seed);
  const points = Array.from({ length: count }, () => {
    const x = [rng.uniform() * 2 - 1, rng.uniform() * 2 - 1, rng.uniform() * 2 - 1] as const;
    return [...x, 2 * x[0] - x[1] + 0.5 * x[2] + 0.3 + (rng.uniform() - 0.5) * 0.01];
  });
  await fsp.mkdir(dir, { recursive: true });
  await fsp.writeFile(path.join(dir, 'points.json'), JSON.stringify(points));
  return dir;
}

const train = (request: Omit<TrainRunRequest<undefined>, 'extra'>, hooks = {}) =>
  runTraining(toyStage, { ...request, extra: undefined }, hooks);

const lossLines = (events: TrainEvent[]) =>
  events
    .filter((e): e is Extract<TrainEvent, { type: 'iteration' }> => e.type === 'iteration')
    .map((e) => [e.iteration, e.epoch, e.losses['mse']]);

async function weightsOf(run: string): Promise<Map<string, Uint8Array>> {
  const { tensors } = await readSafetensors(path.join((await latestCheckpoint(run)) as string, 'weights.safetensors'));
  return new Map([...tensors].map(([k, t]) => [k, t.bytes]));
}

describe('the run loop with a toy model', () => {
  let tmp: TempDir;
  let points: string;
  let full: string;
  beforeAll(async () => {
    tmp = await makeTempDir('run-loop');
    points = await writePoints(path.join(tmp.dir, 'points'));
    full = path.join(tmp.dir, 'full');
  });
  afterAll(async () => {
    await tmp?.cleanup();
  });

  it("trains, checkpoints every N and per epoch keeping the newest k, and reports with the model's charts", async () => {
    const seen: Array<[number, readonly string[]]> = [];
    const result = await train(
      { out: full, options: { epochs: 4, lr: 0.1 }, datasets: { points } },
      { onIteration: (p: { iteration: number; progressLosses: readonly string[] }) => seen.push([p.iteration, p.progressLosses]) },
    );
    expect(result).toMatchObject({ status: 'completed', iteration: 40, epoch: 4, backend: 'cpu' });
    expect(seen.map(([i]) => i)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
    expect(seen[0]![1]).toEqual(['mse']);

    const losses = lossLines(await readTrainEvents(path.join(full, 'events.ndjson'))).map((l) => l[2] as number);
    expect(losses.at(-1)!).toBeLessThan(losses[0]! / 20);
    const run = await readRunManifest(path.join(full, 'run.json'));
    expect(run).toMatchObject({ model: 'toy', status: 'completed', nonDefaults: ['lr', 'epochs'] });
    expect(run.datasets?.['points']).toMatchObject({ path: points, files: 1 });
    expect(run.checkpoints.map((c) => c.folder)).toEqual(['checkpoints/iter-000000036', 'checkpoints/iter-000000040']);
    expect((await fsp.readdir(path.join(full, 'checkpoints'))).sort()).toEqual(['iter-000000036', 'iter-000000040']);
    expect(existsSync(path.join(full, RUN_LOCK_FILE))).toBe(false);

    const report = await fsp.readFile(path.join(full, 'report.html'), 'utf8');
    expect([...report.matchAll(/<figure class="chart" id="chart-([^"]+)"/g)].map((m) => m[1])).toEqual(['fit', 'lr']);
    // Only the checkpoints that are still there (issue 12 #15).
    expect([...report.matchAll(/<td><code>(checkpoints\/[^<]+)<\/code>/g)].map((m) => m[1])).toEqual([
      'checkpoints/iter-000000040',
      'checkpoints/iter-000000036',
    ]);
    const manifest = JSON.parse(await fsp.readFile(path.join(full, 'checkpoints', 'iter-000000040', 'checkpoint.json'), 'utf8'));
    expect(manifest).toMatchObject({
      formatVersion: 2,
      model: 'toy',
      networks: { linear: { architecture: 'linear', inFeatures: 3, outFeatures: 1, bias: true } },
      optimizers: { opt: { algorithm: 'adam', networks: ['linear'], lr: 0.1 } },
      training: { epoch: 4, iteration: 40, epochIter: 10 },
    });
  });

  it('resumes to the same losses and weights as the run that never stopped, keeping its cap unless given anew', async () => {
    const split = path.join(tmp.dir, 'split');
    expect(await train({ out: split, options: { epochs: 4, lr: 0.1, maxIterations: 13 }, datasets: { points } })).toMatchObject({
      status: 'completed',
      iteration: 13,
    });
    // Issue 12 #3: a resume without --max-iterations continues the run as configured: it is complete.
    await expect(train({ out: split, resume: true })).rejects.toThrow(
      /the run is complete at iteration 13 \(maxIterations 13\); give a larger --max-iterations \(or none\)/,
    );
    // A new cap is an override, recorded; no dataset needs giving again.
    expect(await train({ out: split, resume: true, options: { maxIterations: 27 } })).toMatchObject({ iteration: 27 });
    // Another value of an option the run keeps is refused; the same value is fine.
    await expect(train({ out: split, resume: true, options: { lr: 0.2 } })).rejects.toThrow(
      'a resumed run keeps the options it was started with; drop "lr" (on resume only maxIterations, saveEvery, keep, sampleEvery, logEvery may change)',
    );
    expect(await train({ out: split, resume: true, options: { lr: 0.1, maxIterations: undefined }, datasets: { points } })).toMatchObject({
      status: 'completed',
      iteration: 40,
    });
    expect(lossLines(await readTrainEvents(path.join(split, 'events.ndjson')))).toEqual(
      lossLines(await readTrainEvents(path.join(full, 'events.ndjson'))),
    );
    expect(await weightsOf(split)).toEqual(await weightsOf(full));

    const run = await readRunManifest(path.join(split, 'run.json'));
    expect(run.options['maxIterations']).toBeNull();
    expect(run.resumes?.map((r) => [r.iteration, r.overrides])).toEqual([
      [13, { maxIterations: 27 }],
      [27, { maxIterations: null }],
    ]);
    const notes = (await readTrainEvents(path.join(split, 'events.ndjson'))).filter((e) => e.type === 'note');
    expect(notes.map((e) => (e as { message: string }).message)).toEqual([
      'resumed with maxIterations 27 (recorded in run.json)',
      'resumed with maxIterations null (recorded in run.json)',
    ]);
  });

  it('refuses to resume on data that changed since the run started, unless the dataset is given again', async () => {
    const data = await writePoints(path.join(tmp.dir, 'moving'), 5);
    const run = path.join(tmp.dir, 'moving-run');
    await train({ out: run, options: { epochs: 2, maxIterations: 5 }, datasets: { points: data } });
    await writePoints(data, 6); // same file name and size class, other points
    await fsp.appendFile(path.join(data, 'points.json'), ' ');
    await expect(train({ out: run, resume: true, options: { maxIterations: 8 } })).rejects.toThrow(
      `the points dataset at ${data} changed since the run started (1 files, other names or sizes); give it again (--points ${data}) to train on it as it is now`,
    );
    expect(await train({ out: run, resume: true, options: { maxIterations: 8 }, datasets: { points: data } })).toMatchObject({
      iteration: 8,
    });
    const manifest = await readRunManifest(path.join(run, 'run.json'));
    expect(manifest.resumes?.at(-1)).toMatchObject({ iteration: 5, datasets: ['points'] });
    await fsp.rm(data, { recursive: true });
    await expect(train({ out: run, resume: true, options: { maxIterations: 9 } })).rejects.toThrow(
      `the points dataset the run trained on is gone (${data})`,
    );
  });

  it('removes the temp files that writers killed mid-write left in the run folder, and says so (issue 12 #9)', async () => {
    const run = path.join(tmp.dir, 'killed');
    await train({ out: run, options: { epochs: 2, maxIterations: 5 }, datasets: { points } });
    const child = spawn(process.execPath, ['-e', '0'], { stdio: 'ignore' });
    const dead = child.pid as number;
    await new Promise((r) => child.on('exit', r));
    // What kill -9 leaves behind while run.json and a sample grid were being written, an hour ago; and a live writer's file.
    const leftovers = [`.run.json.${dead}.0123456789ab.tmp`, `samples/.iter-000000004.png.${dead}.0123456789ab.tmp`];
    const live = `.report.html.${process.pid}.0123456789ab.tmp`;
    const hourAgo = new Date(Date.now() - 3_600_000);
    for (const name of [...leftovers, live]) {
      await fsp.writeFile(path.join(run, name), 'partial');
      await fsp.utimes(path.join(run, name), hourAgo, hourAgo);
    }
    await train({ out: run, resume: true, options: { maxIterations: 6 } });
    for (const name of leftovers) expect(existsSync(path.join(run, name))).toBe(false);
    expect(existsSync(path.join(run, live))).toBe(true);
    const notes = (await readTrainEvents(path.join(run, 'events.ndjson'))).filter((e) => e.type === 'note');
    expect(notes.map((e) => (e as { message: string }).message)).toContain(
      `removed 2 temp file(s) of writers killed mid-write: ${leftovers.join(', ')}`,
    );
    await fsp.rm(path.join(run, live));
  });

  it('lets one trainer of two into a run folder; the other is refused naming the holder (issue 12 #2)', async () => {
    const both = path.join(tmp.dir, 'both');
    const results = await Promise.allSettled([
      train({ out: both, options: { epochs: 4, maxIterations: 12 }, datasets: { points } }),
      train({ out: both, options: { epochs: 4, maxIterations: 12 }, datasets: { points } }),
    ]);
    const ok = results.filter((r) => r.status === 'fulfilled');
    const refused = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(ok).toHaveLength(1);
    expect(refused).toHaveLength(1);
    expect(refused[0]!.reason).toBeInstanceOf(UsageError);
    expect((refused[0]!.reason as Error).message).toMatch(
      new RegExp(`another trainer holds this run \\(pid ${process.pid} on host ${os.hostname()} since \\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z\\)`),
    );
    // The winner's run is whole: every checkpoint it lists exists, and it ended.
    const run = await readRunManifest(path.join(both, 'run.json'));
    expect(run.status).toBe('completed');
    for (const c of run.checkpoints) expect(existsSync(path.join(both, c.folder, 'checkpoint.json'))).toBe(true);
    expect(existsSync(path.join(both, RUN_LOCK_FILE))).toBe(false);
    // A resume while a trainer runs is refused the same way.
    const running = train({ out: both, resume: true, options: { maxIterations: 30 } });
    await new Promise((r) => setTimeout(r, 0));
    const second = await train({ out: both, resume: true, options: { maxIterations: 30 } }).catch((e: unknown) => e);
    await running;
    expect(String(second)).toMatch(/another trainer holds this run/);
  });

  it('takes over the lock of a trainer that died, noting it in the events; refuses one held by a live process', async () => {
    const stale = path.join(tmp.dir, 'stale');
    await fsp.mkdir(stale, { recursive: true });
    // A pid that just exited on this host.
    const child = spawn(process.execPath, ['-e', '0'], { stdio: 'ignore' });
    const deadPid = child.pid as number;
    await new Promise((r) => child.on('exit', r));
    const lock = { pid: deadPid, hostname: os.hostname(), startedAt: '2025-01-31T12:00:00.000Z' };
    await fsp.writeFile(path.join(stale, RUN_LOCK_FILE), JSON.stringify(lock));
    expect(await train({ out: stale, options: { epochs: 1 }, datasets: { points } })).toMatchObject({ status: 'completed' });
    const notes = (await readTrainEvents(path.join(stale, 'events.ndjson'))).filter((e) => e.type === 'note');
    expect(notes.map((e) => (e as { message: string }).message)).toEqual([
      `took over the lock of a trainer that is gone (pid ${deadPid} on host ${os.hostname()} since 2025-01-31T12:00:00.000Z)`,
    ]);
    expect(existsSync(path.join(stale, RUN_LOCK_FILE))).toBe(false);

    const held = path.join(tmp.dir, 'held');
    await fsp.mkdir(held, { recursive: true });
    const sleeper = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' });
    const sleeperGone = new Promise((r) => sleeper.on('exit', r));
    try {
      const other = { pid: sleeper.pid, hostname: os.hostname(), startedAt: '2025-01-31T12:00:00.000Z' };
      await fsp.writeFile(path.join(held, RUN_LOCK_FILE), JSON.stringify(other));
      await expect(train({ out: held, options: { epochs: 1 }, datasets: { points } })).rejects.toThrow(
        `${held}: another trainer holds this run (pid ${sleeper.pid} on host ${os.hostname()} since 2025-01-31T12:00:00.000Z)`,
      );
      // Nothing was written, and the other's lock is untouched.
      expect(await fsp.readdir(held)).toEqual([RUN_LOCK_FILE]);
      // A lock of another host cannot be judged: refused, saying how to clear it.
      await fsp.writeFile(path.join(held, RUN_LOCK_FILE), JSON.stringify({ ...other, hostname: 'elsewhere' }));
      await expect(train({ out: held, options: { epochs: 1 }, datasets: { points } })).rejects.toThrow(
        `(if it is dead, remove ${path.join(held, RUN_LOCK_FILE)})`,
      );
    } finally {
      sleeper.kill();
      await sleeperGone;
    }
  });
});
