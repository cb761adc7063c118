/**
 * The one training loop, for every model (CUT's train.py, generalised): a TrainingStage says what the options,
 * datasets and model are; this does the rest once —
 * - the run folder: run.json (model, datasets with digests, options, non-defaults, checkpoints, resumes, status),
 *   options.txt, events.ndjson, samples/, report.html; its lock (run-lock.ts), taken before anything is written;
 * - resume: the newest complete checkpoint, the architecture from it, the options the run was started with (the
 *   ones marked `override` may be given anew and are recorded in run.json), the recorded datasets (refused when
 *   their files changed unless given again), the random streams and the partial loss window, so a resumed run logs
 *   the same losses and ends with the same weights as one that never stopped;
 * - epochs of `iterationsPerEpoch` steps, the stage's learning rate per epoch, loss means every `logEvery`
 *   iterations, a sample grid every `sampleEvery`, a checkpoint every `saveEvery` and at each epoch end (the
 *   newest `keep` kept), `maxIterations`;
 * - a NaN or infinite loss or weight stops the run with a NumericError before it reaches a checkpoint, keeping
 *   the last good one; an abort stops after the current step with a checkpoint (status 'stopped');
 * - progress after every step, with the losses the model shows.
 */
import { existsSync, promises as fsp } from 'node:fs';
import * as path from 'node:path';

import {
  InputError,
  NumericError,
  UsageError,
  artifactHeader,
  readRunManifest,
  removeStaleTempFiles,
  runContract,
  type BackendPreference,
  type JsonValue,
  type RunManifest,
  type RunStatus,
} from '@scenimefy/io';

import { formatOptionsText, nonDefaultOptionNames, resolveOptions } from '../options/derive';
import { optionFields } from '../options/option-schema';
import { checkpointFolderFor, latestCheckpoint, runRelativePath } from '../store/checkpoint-store';
import { PACKAGE_NAME, PACKAGE_VERSION } from '../version';
import { datasetDigest, type DatasetDigest } from './dataset-digest';
import type { TrainEvent } from './events';
import { readModelCheckpoint, saveModelCheckpoint, type ReadTrainingCheckpoint } from './model-checkpoint';
import { RUN_FILES, RunFolder } from './run-folder';
import { RunLock, describeLockHolder, type AcquiredRunLock, type RunLockHolder } from './run-lock';
import type { RunLoopOptions } from './run-options';
import { writeSampleGrid } from './sample-grid';
import type { TrainableModel, TrainingStage, TrainingTask } from './trainable-model';

const GENERATED_BY = { name: PACKAGE_NAME, version: PACKAGE_VERSION };

export interface TrainRunRequest<Extra> {
  /** The run folder (created; must not hold a run unless `resume`). */
  readonly out: string;
  /** Continue the run in `out` from its newest checkpoint, as it was configured. */
  readonly resume?: boolean;
  /**
   * Options of a new run. On resume, options marked `override` in the schema (maxIterations, the checkpoint and
   * sample cadences, …) may be given to change the run from here on (recorded in run.json's resumes); the others
   * keep the values the run started with (giving another value is refused). A key given as `undefined` sets the
   * option back to its default (e.g. `{ maxIterations: undefined }` lifts a cap).
   */
  readonly options?: Readonly<Record<string, unknown>>;
  /** The datasets' paths by the stage's names. A resumed run uses the recorded ones unless given again. */
  readonly datasets?: Readonly<Record<string, string | undefined>>;
  /** TF.js backend; default: the fastest available (`loadTf`). */
  readonly backend?: BackendPreference;
  /** What the stage takes beyond this (e.g. semi_cut's VGG weights). */
  readonly extra: Extra;
}

export interface TrainProgress {
  readonly iteration: number;
  readonly epoch: number;
  readonly epochIter: number;
  readonly iterationsPerEpoch: number;
  /** Iterations the run will have done when it ends (epochs × iterations per epoch, or maxIterations). */
  readonly totalIterations: number;
  /** Every loss of the step. */
  readonly losses: Readonly<Record<string, number>>;
  /** The losses a progress line shows, as the model names them. */
  readonly progressLosses: readonly string[];
  readonly seconds: number;
}

export interface TrainHooks {
  /** After every optimisation step. */
  readonly onIteration?: (progress: TrainProgress) => void;
  /** Every event written to events.ndjson. */
  readonly onEvent?: (event: TrainEvent) => void;
  /** Aborting stops the run after the current step, with a checkpoint (status 'stopped'). */
  readonly signal?: AbortSignal;
}

export interface TrainResult {
  readonly status: Exclude<RunStatus, 'running'>;
  readonly iteration: number;
  readonly epoch: number;
  /** The newest checkpoint folder (absolute), if any was written. */
  readonly checkpoint: string | undefined;
  readonly runFolder: string;
  readonly backend: string;
}

/** Running sums of the losses since the last logged line; saved with checkpoints so a resumed run logs the same means. */
interface LossWindow {
  count: number;
  sums: Record<string, number>;
}

const isoNow = (): string => new Date().toISOString();

function sameValue(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** The first loss that is not a finite number, if any. */
function nonFiniteLoss(losses: Readonly<Record<string, number>>): [string, number] | undefined {
  return Object.entries(losses).find(([, v]) => !Number.isFinite(v));
}

/** The first network holding a NaN or infinite weight (x·0 is NaN exactly for those), if any. */
function nonFiniteWeights(task: TrainingTask<unknown>, model: TrainableModel<unknown>): string | undefined {
  const tf = task.tf;
  for (const [name, net] of model.networks()) {
    const vars = net.variables;
    if (vars.size === 0) continue;
    const probe = tf.tidy(() => tf.addN([...vars.values()].map((v) => tf.sum(tf.mul(v, 0)))));
    const value = probe.dataSync()[0] as number;
    probe.dispose();
    if (!Number.isFinite(value)) return name;
  }
  return undefined;
}

/** What a run starts from, checked before anything is written. */
interface Prepared<Options> {
  readonly options: Options;
  readonly datasets: Record<string, string>;
  /** Resume: the digests checked now; a new run: computed once its data opened. */
  digests: Record<string, DatasetDigest>;
  readonly previous: RunManifest | undefined;
  readonly overrides: Record<string, JsonValue>;
  /** Datasets given again on resume at another path or with other files. */
  readonly regiven: string[];
}

/** The options of a resumed run: as recorded, with the overridable ones given now (and `undefined` meaning the default). */
function resumedOptions<Options>(
  stage: TrainingStage<RunLoopOptions, unknown, unknown>,
  runFolder: string,
  previous: RunManifest,
  given: Readonly<Record<string, unknown>>,
): { options: Options; overrides: Record<string, JsonValue> } {
  const fields = new Map(optionFields(stage.optionsSchema).map((f) => [f.key, f]));
  const refused: string[] = [];
  const overrides: Record<string, JsonValue> = {};
  const unknown: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(given)) {
    const field = fields.get(key);
    if (field === undefined) {
      unknown[key] = value;
      continue;
    }
    const wanted = value === undefined ? field.meta.default : value;
    if (sameValue(wanted, previous.options[key])) continue;
    if (field.meta.onResume === 'fixed') refused.push(key);
    else overrides[key] = wanted as JsonValue;
  }
  if (refused.length > 0) {
    const changeable = [...fields.values()].filter((f) => f.meta.onResume === 'override').map((f) => f.key);
    throw new UsageError(
      `${runFolder}: a resumed run keeps the options it was started with; drop ${refused.map((k) => `"${k}"`).join(', ')} (on resume only ${changeable.join(', ')} may change)`,
    );
  }
  const options = resolveOptions(stage.optionsSchema, { ...previous.options, ...overrides, ...unknown }, { what: stage.optionsWhat });
  return { options: options as Options, overrides };
}

async function resumedDatasets(
  stage: TrainingStage<RunLoopOptions, unknown, unknown>,
  runFolder: string,
  previous: RunManifest,
  given: Readonly<Record<string, string | undefined>>,
): Promise<{ datasets: Record<string, string>; digests: Record<string, DatasetDigest>; regiven: string[] }> {
  const datasets: Record<string, string> = {};
  const digests: Record<string, DatasetDigest> = {};
  const regiven: string[] = [];
  for (const name of stage.datasets) {
    const recorded = previous.datasets?.[name];
    const givenPath = given[name];
    if (givenPath !== undefined) {
      const absolute = path.resolve(givenPath);
      const digest = await datasetDigest(absolute);
      if (recorded === undefined || recorded.path !== absolute || recorded.digest !== digest.digest) regiven.push(name);
      datasets[name] = absolute;
      digests[name] = digest;
      continue;
    }
    if (recorded === undefined) {
      throw new UsageError(`${runFolder}: run.json records no ${name} dataset (an older Scenimefy.js wrote it); give it again (--${name})`);
    }
    const digest = await datasetDigest(recorded.path).catch((error: unknown) => {
      if (error instanceof InputError) {
        throw new UsageError(
          `${runFolder}: the ${name} dataset the run trained on is gone (${recorded.path}); give its new place (--${name})`,
        );
      }
      throw error;
    });
    if (digest.digest !== recorded.digest) {
      const counts =
        digest.files === recorded.files
          ? `${digest.files} files, other names or sizes`
          : `${recorded.files} files then, ${digest.files} now`;
      throw new UsageError(
        `${runFolder}: the ${name} dataset at ${recorded.path} changed since the run started (${counts}); give it again (--${name} ${recorded.path}) to train on it as it is now`,
      );
    }
    datasets[name] = recorded.path;
    digests[name] = digest;
  }
  return { datasets, digests, regiven };
}

function newRunDatasets(
  stage: TrainingStage<RunLoopOptions, unknown, unknown>,
  given: Readonly<Record<string, string | undefined>>,
): Record<string, string> {
  const datasets: Record<string, string> = {};
  for (const name of stage.datasets) {
    const p = given[name];
    if (p === undefined) throw new UsageError(`a new run needs the ${name} dataset (--${name})`);
    datasets[name] = path.resolve(p);
  }
  return datasets;
}

/**
 * Trains (or resumes) a run of `stage` to its end, its `maxIterations`, an abort, or a numerical failure. Bad input
 * (missing folders, unreadable images, a run folder that holds a run or is locked by another trainer) raises a
 * ScenimefyError before anything is written.
 */
export async function runTraining<Options extends RunLoopOptions, Batch, Extra>(
  stage: TrainingStage<Options, Batch, Extra>,
  request: TrainRunRequest<Extra>,
  hooks: TrainHooks = {},
): Promise<TrainResult> {
  const runFolder = path.resolve(request.out);
  const manifestFile = path.join(runFolder, RUN_FILES.manifest);
  const anyStage = stage as unknown as TrainingStage<RunLoopOptions, unknown, unknown>;
  const given = request.datasets ?? {};
  let acquired: AcquiredRunLock | undefined;
  let prepared: Prepared<Options>;
  try {
    if (request.resume) {
      if (!existsSync(manifestFile)) {
        throw new UsageError(`${runFolder}: no run to resume (no ${RUN_FILES.manifest}); start it without --resume`);
      }
      // Locked before run.json is read: another trainer of this run could be rewriting it.
      acquired = await RunLock.acquire(runFolder);
      const previous = await readRunManifest(manifestFile);
      if (previous.model !== undefined && previous.model !== stage.description.name) {
        throw new UsageError(`${runFolder}: is a ${previous.model} run; this trains ${stage.description.name}`);
      }
      const { options, overrides } = resumedOptions<Options>(anyStage, runFolder, previous, request.options ?? {});
      const { datasets, digests, regiven } = await resumedDatasets(anyStage, runFolder, previous, given);
      prepared = { options, datasets, digests, previous, overrides, regiven };
    } else {
      if (existsSync(manifestFile)) {
        throw new UsageError(`${runFolder}: already holds a training run; pass --resume to continue it or choose another --out`);
      }
      const options = resolveOptions(stage.optionsSchema, request.options ?? {}, { what: stage.optionsWhat }) as Options;
      prepared = { options, datasets: newRunDatasets(anyStage, given), digests: {}, previous: undefined, overrides: {}, regiven: [] };
    }
  } catch (error) {
    await acquired?.lock.release();
    throw error;
  }

  const options = prepared.options;
  let task: TrainingTask<Batch>;
  try {
    task = await stage.openTask({ options, datasets: prepared.datasets, backend: request.backend, extra: request.extra });
  } catch (error) {
    await acquired?.lock.release();
    throw error;
  }
  let model: TrainableModel<Batch> | undefined;
  try {
    const { data } = task;
    const iterationsPerEpoch = data.iterationsPerEpoch;
    const totalEpochs = task.totalEpochs;
    const epochIterations = totalEpochs * iterationsPerEpoch;
    const totalIterations = options.maxIterations === null ? epochIterations : Math.min(options.maxIterations, epochIterations);
    const resumeFrom = request.resume ? await latestCheckpoint(runFolder) : undefined;
    let checkpoint =
      resumeFrom === undefined
        ? undefined
        : await readModelCheckpoint(resumeFrom, stage.checkCheckpoint !== undefined ? { checkManifest: stage.checkCheckpoint } : {});
    if (checkpoint !== undefined && checkpoint.state.iteration >= totalIterations) {
      const cap = options.maxIterations !== null && options.maxIterations < epochIterations;
      throw new UsageError(
        `${runFolder}: the run is complete at iteration ${checkpoint.state.iteration} (${cap ? `maxIterations ${options.maxIterations}` : `all ${totalEpochs} epochs`}); ` +
          (cap ? 'give a larger --max-iterations (or none) to train further' : 'nothing is left to train'),
      );
    }

    if (!request.resume) {
      for (const [name, p] of Object.entries(prepared.datasets)) prepared.digests[name] = await datasetDigest(p);
      await fsp.mkdir(runFolder, { recursive: true });
      acquired = await RunLock.acquire(runFolder);
      if (existsSync(manifestFile)) {
        throw new UsageError(`${runFolder}: already holds a training run (another trainer started it meanwhile); choose another --out`);
      }
    }

    // Temp files of writers killed mid-write (run.json, report.html, sample grids); the lock keeps live ones out.
    const staleTempFiles = [
      ...(await removeStaleTempFiles(runFolder)),
      ...(await removeStaleTempFiles(path.join(runFolder, RUN_FILES.samples))),
    ].map((f) => runRelativePath(runFolder, f));

    const datasets = Object.fromEntries(
      Object.entries(prepared.datasets).map(([name, p]) => [
        name,
        { path: p, files: prepared.digests[name]!.files, digest: prepared.digests[name]!.digest },
      ]),
    );
    const optionsJson = { ...options } as unknown as Record<string, JsonValue>;
    const nonDefaults = nonDefaultOptionNames(stage.optionsSchema, optionsJson);
    let manifest: RunManifest;
    if (prepared.previous !== undefined) {
      // A resumed run drops the previous invocation's error.
      const { error: _endedWith, ...previousRun } = prepared.previous;
      manifest = {
        ...previousRun,
        model: stage.description.name,
        status: 'running',
        options: optionsJson,
        nonDefaults,
        datasets: { ...previousRun.datasets, ...datasets },
        resumes: [
          ...(previousRun.resumes ?? []),
          {
            at: isoNow(),
            iteration: checkpoint?.state.iteration ?? 0,
            overrides: prepared.overrides,
            ...(prepared.regiven.length > 0 ? { datasets: prepared.regiven } : {}),
          },
        ],
      };
    } else {
      manifest = {
        ...artifactHeader(runContract, GENERATED_BY),
        model: stage.description.name,
        status: 'running',
        options: optionsJson,
        nonDefaults,
        checkpoints: [],
        events: RUN_FILES.events,
        samples: RUN_FILES.samples,
        report: RUN_FILES.report,
        datasets,
      };
    }
    const run = new RunFolder(runFolder, manifest, hooks.onEvent);
    const setup: LoopSetup<Options> = {
      options,
      iterationsPerEpoch,
      totalEpochs,
      totalIterations,
      checkpoint,
      resume: request.resume === true,
      tookOverLock: acquired?.tookOver,
      overrides: prepared.overrides,
      regiven: prepared.regiven,
      staleTempFiles,
      hooks,
      setModel: (m) => {
        model = m as unknown as TrainableModel<Batch>;
      },
    };
    checkpoint = undefined;
    return await trainLoop(stage, task, run, setup);
  } finally {
    model?.dispose();
    task.dispose();
    await task.data.close().catch(() => undefined);
    await acquired?.lock.release();
  }
}

interface LoopSetup<Options extends RunLoopOptions> {
  readonly options: Options;
  readonly iterationsPerEpoch: number;
  readonly totalEpochs: number;
  readonly totalIterations: number;
  /** The checkpoint to resume from; dropped once the model is built from it (its tensors are the model's size several times). */
  checkpoint: ReadTrainingCheckpoint | undefined;
  readonly resume: boolean;
  readonly tookOverLock: RunLockHolder | undefined;
  readonly overrides: Record<string, JsonValue>;
  readonly regiven: readonly string[];
  /** Temp files of dead writers removed before the run started (run-relative). */
  readonly staleTempFiles: readonly string[];
  readonly hooks: TrainHooks;
  readonly setModel: (model: TrainableModel<never>) => void;
}

async function trainLoop<Options extends RunLoopOptions, Batch>(
  stage: TrainingStage<Options, Batch, unknown>,
  task: TrainingTask<Batch>,
  run: RunFolder,
  setup: LoopSetup<Options>,
): Promise<TrainResult> {
  const { options, iterationsPerEpoch, totalEpochs, totalIterations, hooks } = setup;
  // Held only until the model is built from it.
  let checkpoint = setup.checkpoint;
  setup.checkpoint = undefined;
  const { data } = task;
  const description = stage.description;
  let model: TrainableModel<Batch> | undefined;
  const own = (m: TrainableModel<Batch>): TrainableModel<Batch> => {
    model = m;
    setup.setModel(m as unknown as TrainableModel<never>);
    return m;
  };
  let iteration = 0;
  let epoch = 1;
  let epochIter = 0;
  let window: LossWindow = { count: 0, sums: {} };
  let newestCheckpoint: string | undefined = checkpoint?.folder;
  const resumedFrom = checkpoint === undefined ? undefined : run.relative(checkpoint.folder);
  let newestIteration = -1;
  const chartGroups = description.chartGroups;

  const checkpointNow = async (): Promise<void> => {
    const m = model as TrainableModel<Batch>;
    const broken = nonFiniteWeights(task as TrainingTask<unknown>, m as TrainableModel<unknown>);
    if (broken !== undefined) {
      throw new NumericError(
        `weights of ${broken} became NaN or infinite by iteration ${iteration} (epoch ${epoch}); stopped before checkpointing them`,
        { file: run.dir },
      );
    }
    const folder = checkpointFolderFor(run.dir, iteration);
    const rng = { ...data.rngState(), lossWindow: { count: window.count, sums: { ...window.sums } } };
    await saveModelCheckpoint(
      folder,
      m,
      { epoch, iteration, epochIter, options: { ...options } as Record<string, unknown>, rng },
      { generatedBy: GENERATED_BY },
    );
    newestCheckpoint = folder;
    newestIteration = iteration;
    await run.recordCheckpoint(folder, { iteration, epoch }, options.keep);
    await run.writeReport('running', chartGroups);
  };
  const note = async (message: string): Promise<void> => {
    await run.emit({ type: 'note', time: isoNow(), iteration, epoch, message });
  };

  let status: Exclude<RunStatus, 'running'> = 'completed';
  let failure: Error | undefined;
  try {
    await run.ensureSamplesFolder();
    if (checkpoint !== undefined) {
      own(await task.loadModel(checkpoint, { epoch: Math.max(1, checkpoint.state.epoch) }));
      const { lossWindow, ...dataRng } = checkpoint.rng as { lossWindow?: LossWindow } & Record<string, unknown>;
      data.setRngState(dataRng);
      const restored = lossWindow ?? { count: 0, sums: {} };
      window = { count: restored.count, sums: { ...restored.sums } };
      iteration = checkpoint.state.iteration;
      newestIteration = iteration;
      epoch = checkpoint.state.epoch;
      epochIter = checkpoint.state.epochIter;
      checkpoint = undefined;
    } else if (setup.resume) {
      // A run that stopped before its first checkpoint starts again from scratch with its own options.
      await fsp.rm(run.path(RUN_FILES.events), { force: true });
    }
    // Rewritten on a resume that changed options, so options.txt always shows what the run trains with now.
    if (!setup.resume || Object.keys(setup.overrides).length > 0) {
      await run.writeOptionsText(formatOptionsText(stage.optionsSchema, options as unknown as Record<string, unknown>));
    }
    await run.writeManifest();
    await run.openEvents(iteration);
    await run.emit({
      type: 'start',
      time: isoNow(),
      iteration,
      epoch,
      backend: task.backend,
      options: { ...options } as Record<string, unknown>,
      ...(resumedFrom !== undefined ? { resumedFrom } : {}),
    });
    const took = setup.tookOverLock;
    if (took !== undefined) await note(`took over the lock of a trainer that is gone (${describeLockHolder(took)})`);
    const overridden = Object.entries(setup.overrides);
    if (overridden.length > 0) {
      await note(`resumed with ${overridden.map(([k, v]) => `${k} ${JSON.stringify(v)}`).join(', ')} (recorded in run.json)`);
    }
    if (setup.regiven.length > 0) await note(`resumed on the datasets given again: ${setup.regiven.join(', ')} (recorded in run.json)`);
    if (setup.staleTempFiles.length > 0) {
      await note(`removed ${setup.staleTempFiles.length} temp file(s) of writers killed mid-write: ${setup.staleTempFiles.join(', ')}`);
    }

    // An epoch ends after `iterationsPerEpoch` batches; a checkpoint taken at its end has epochIter = that count.
    if (epochIter >= iterationsPerEpoch) {
      epoch += 1;
      epochIter = 0;
    }
    let epochStarted = performance.now();
    outer: while (epoch <= totalEpochs && iteration < totalIterations) {
      const lr = task.learningRate(epoch);
      model?.beginEpoch(epoch, lr);
      while (epochIter < iterationsPerEpoch) {
        if (iteration >= totalIterations) break outer;
        if (hooks.signal?.aborted) {
          status = 'stopped';
          break outer;
        }
        const t0 = performance.now();
        const batch = await data.next();
        let losses: Record<string, number>;
        try {
          const m = model ?? own(await task.createModel(batch, { epoch, lr }));
          losses = await m.step(batch);
          if (options.sampleEvery > 0 && (iteration + 1) % options.sampleEvery === 0) {
            const file = `${RUN_FILES.samples}/iter-${String(iteration + 1).padStart(9, '0')}.png`;
            await writeSampleGrid(run.path(file), await m.visuals(batch));
            await run.emit({ type: 'sample', time: isoNow(), iteration: iteration + 1, epoch, file });
          }
        } finally {
          data.disposeBatch(batch);
        }
        const bad = nonFiniteLoss(losses);
        if (bad !== undefined) {
          const kept =
            newestCheckpoint === undefined
              ? 'no checkpoint was written yet'
              : `the last good checkpoint is ${path.relative(run.dir, newestCheckpoint)}`;
          throw new NumericError(`loss ${bad[0]} became ${bad[1]} at iteration ${iteration + 1} (epoch ${epoch}); stopped, ${kept}`, {
            file: run.dir,
          });
        }
        iteration += 1;
        epochIter += 1;
        const seconds = (performance.now() - t0) / 1000;
        window.count += 1;
        for (const [name, value] of Object.entries(losses)) window.sums[name] = (window.sums[name] ?? 0) + value;
        if (iteration % options.logEvery === 0) {
          const means = Object.fromEntries(Object.entries(window.sums).map(([k, v]) => [k, v / window.count]));
          await run.emit({ type: 'iteration', time: isoNow(), iteration, epoch, epochIter, lr, losses: means, seconds });
          window = { count: 0, sums: {} };
        }
        hooks.onIteration?.({
          iteration,
          epoch,
          epochIter,
          iterationsPerEpoch,
          totalIterations,
          losses,
          progressLosses: description.progressLosses,
          seconds,
        });
        const epochDone = epochIter === iterationsPerEpoch;
        if (epochDone) {
          await data.endEpoch();
          await run.emit({ type: 'epoch', time: isoNow(), epoch, iteration, lr, seconds: (performance.now() - epochStarted) / 1000 });
        }
        if (epochDone || iteration % options.saveEvery === 0) await checkpointNow();
      }
      epoch += 1;
      epochIter = 0;
      epochStarted = performance.now();
    }
    // The loop leaves `epoch` one past a finished epoch; a checkpoint records the finished one (epochIter = its length).
    if (epochIter === 0 && epoch > 1) {
      epoch -= 1;
      epochIter = iterationsPerEpoch;
    }
    if (model !== undefined && newestIteration !== iteration) await checkpointNow();
  } catch (error) {
    failure = error as Error;
    status = 'failed';
  }

  if (run.eventsOpen) {
    const code = (failure as { code?: string } | undefined)?.code;
    await run.emit({
      type: 'end',
      time: isoNow(),
      iteration,
      epoch: Math.min(epoch, totalEpochs),
      status,
      ...(failure ? { message: failure.message } : {}),
      ...(code !== undefined ? { code } : {}),
    });
    await run.closeEvents();
    run.manifest.status = status;
    if (failure) run.manifest.error = { message: failure.message, ...(code !== undefined ? { code } : {}) };
    await run.writeManifest();
    await run.writeReport(status, chartGroups, failure?.message);
  }
  if (failure) throw failure;
  return {
    status,
    iteration,
    epoch: Math.min(epoch, totalEpochs),
    checkpoint: newestCheckpoint,
    runFolder: run.dir,
    backend: task.backend,
  };
}
