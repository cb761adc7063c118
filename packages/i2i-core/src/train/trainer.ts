/**
 * A `semi_cut` training run (CUT's train.py with Scenimefy's paired loader, SPEC §5.7, §7): epochs over the
 * unaligned photo/anime set with one pseudo pair per sample, the data-dependent init on the first batch, the
 * linear LR policy per epoch, checkpoints every `saveEvery` iterations and at each epoch end, the newest `keep`
 * kept; `events.ndjson`, sample grids, `report.html` and `run.json` in the run folder.
 *
 * Resuming continues exactly: weights, Adam moments, every random stream (data order, flips, crops, patch ids)
 * and the partial loss window are in the checkpoint, so a resumed run logs the same losses as one that never
 * stopped. A NaN or infinite loss stops the run with a NumericError; the last good checkpoint is kept.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';

import {
  NumericError,
  UsageError,
  artifactHeader,
  loadTf,
  readRunManifest,
  readWeights,
  runContract,
  writeFileAtomic,
  writeRunManifest,
  type BackendPreference,
  type RunCheckpoint,
  type RunManifest,
  type RunStatus,
} from '@scenimefy/io';
import type { Tensor4D } from '@tensorflow/tfjs-core';

import type { Tf } from '../layers/tf';
import { registerWasmTrainingKernels } from '../layers/wasm-training-kernels';
import { vggPerceptualLoss } from '../losses/vgg-perceptual';
import { fetchModel } from '../models/model-cache';
import { findModel } from '../models/model-registry';
import { createVgg19Features } from '../networks/vgg19';
import type { Vgg19Features } from '../networks/vgg19';
import { createPatchDiscriminator } from '../networks/discriminator';
import { createResnetGenerator } from '../networks/generator';
import { createPatchSampleF } from '../networks/patch-sample';
import { splitmix32 } from '../seeded-rng';
import { latestCheckpoint, loadTrainingCheckpoint, pruneCheckpoints, saveTrainingCheckpoint } from './semi-cut-checkpoint';
import { AlignedDataset, UnalignedDataset } from './data';
import type { DataRngState, DataSample } from './data';
import { TrainEventLog, readTrainEvents } from './events';
import type { TrainEvent } from './events';
import { linearLrFactor } from './lr-schedule';
import { writeTrainingReport } from './report';
import { writeSampleGrid } from './sample-grid';
import { createSemiCutModel } from './semi-cut';
import type { SemiCutBatch, SemiCutLosses, SemiCutModel, SemiCutNetworks } from './semi-cut';
import { formatTrainOptions, nonDefaultOptions, pickSemiCutOptions, resolvedTrainOptions } from './train-options';
import type { TrainOptions } from './train-options';
import type { VggInput } from './options';
import { PACKAGE_NAME, PACKAGE_VERSION } from '../version';

const GENERATED_BY = { name: PACKAGE_NAME, version: PACKAGE_VERSION };

export const RUN_FILES = Object.freeze({
  manifest: 'run.json',
  options: 'options.txt',
  events: 'events.ndjson',
  report: 'report.html',
  samples: 'samples',
  checkpoints: 'checkpoints',
});

export interface TrainRunInput {
  /** Unaligned dataset root holding `${phase}A/` (photos) and `${phase}B/` (anime). */
  readonly unpaired: string;
  /** Paired dataset: a root with same-name `${phase}A/` and `${phase}B/`, or a scenimefy-dataset manifest (.json). */
  readonly paired: string;
  /** The run folder (created; must not hold a run unless `resume`). */
  readonly out: string;
  /** Continue the run in `out` from its newest checkpoint, with the options it was started with. */
  readonly resume?: boolean;
  /**
   * Options of a new run. With `resume` only `maxIterations` may be given: it bounds this invocation (absent:
   * train to the end of the run's epochs).
   */
  readonly options?: Partial<TrainOptions>;
  /** TF.js backend; default: the fastest available (`loadTf`). */
  readonly backend?: BackendPreference;
  /** VGG-19 weights for `lambdaVgg` > 0 (torchvision keys); default: the registry's `vgg19`, from the cache or downloaded. */
  readonly vggWeights?: string;
  /** Never download the VGG-19 weights (default: env SCENIMEFY_OFFLINE=1). */
  readonly offline?: boolean;
}

export interface TrainProgress {
  readonly iteration: number;
  readonly epoch: number;
  readonly epochIter: number;
  readonly iterationsPerEpoch: number;
  /** Iterations the run will have done when it ends (epochs × iterations per epoch, or maxIterations). */
  readonly totalIterations: number;
  readonly losses: SemiCutLosses;
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

/** rng.json's trainer part; the patch-id streams of netF / netF_s are saved and restored by the checkpoint module. */
interface RunRngState {
  unpaired: DataRngState;
  paired: DataRngState;
  lossWindow: LossWindow;
  [key: string]: unknown;
}

const isoNow = (): string => new Date().toISOString();

function lossRecord(losses: SemiCutLosses): Record<string, number> {
  return Object.fromEntries(Object.entries(losses).filter(([, v]) => typeof v === 'number')) as Record<string, number>;
}

/** The first loss that is not a finite number, if any. */
function nonFiniteLoss(losses: SemiCutLosses): [string, number] | undefined {
  return Object.entries(lossRecord(losses)).find(([, v]) => !Number.isFinite(v));
}

/** The first network holding a NaN or infinite weight (x·0 is NaN exactly for those), if any. */
function nonFiniteWeights(tf: Tf, model: SemiCutModel): string | undefined {
  const n = model.networks;
  const nets: Array<[string, ReadonlyMap<string, import('@tensorflow/tfjs-core').Variable>]> = [
    ['netG', n.netG.variables],
    ['netD', n.netD.variables],
    ['netD_p', n.netDp.variables],
    ['netF', n.netF.variables],
    ['netF_s', n.netFs.variables],
  ];
  for (const [name, vars] of nets) {
    if (vars.size === 0) continue;
    const probe = tf.tidy(() => tf.addN([...vars.values()].map((v) => tf.sum(tf.mul(v, 0)))));
    const value = probe.dataSync()[0] as number;
    probe.dispose();
    if (!Number.isFinite(value)) return name;
  }
  return undefined;
}

/** Seeds of the independent random streams of a run, all derived from its one seed. */
function derivedSeeds(seed: number): {
  unpaired: number;
  paired: number;
  netG: number;
  netD: number;
  netDp: number;
  netF: number;
  netFs: number;
} {
  // splitmix32 is a counter-based hash: distinct counters give independent-looking seeds.
  const at = (k: number): number => splitmix32((seed * 8 + k) >>> 0);
  return { unpaired: seed, paired: at(1), netG: at(2), netD: at(3), netDp: at(4), netF: at(5), netFs: at(6) };
}

function freshNetworks(tf: Tf, o: TrainOptions): SemiCutNetworks {
  const seeds = derivedSeeds(o.seed);
  const made: Array<{ dispose(): void }> = [];
  try {
    const netG = createResnetGenerator(tf, { ngf: o.ngf }, { init: { seed: seeds.netG, gain: o.initGain } });
    made.push(netG);
    const d = (inputNc: number, seed: number) => {
      const net = createPatchDiscriminator(tf, { inputNc, ndf: o.ndf, nLayers: o.nLayersD }, { init: { seed, gain: o.initGain } });
      made.push(net);
      return net;
    };
    const netD = d(netG.config.outputNc, seeds.netD);
    const netDp = d(netG.config.inputNc + netG.config.outputNc, seeds.netDp);
    const netF = createPatchSampleF(tf, { nc: o.netFNc, initGain: o.initGain, seed: seeds.netF });
    made.push(netF);
    const netFs = createPatchSampleF(tf, { nc: o.netFNc, initGain: o.initGain, seed: seeds.netFs });
    return { netG, netD, netDp, netF, netFs };
  } catch (error) {
    for (const net of made) net.dispose();
    throw error;
  }
}

async function pathExists(p: string): Promise<boolean> {
  return fsp.stat(p).then(
    () => true,
    () => false,
  );
}

/** Takes `batchSize` samples from a dataset as one NCHW batch. */
async function nextBatch(
  tf: Tf,
  dataset: UnalignedDataset | AlignedDataset,
  batchSize: number,
): Promise<{ a: Tensor4D; b: Tensor4D; samples: DataSample[] }> {
  const samples: DataSample[] = [];
  for (let i = 0; i < batchSize; i++) samples.push(await dataset.next());
  const [, c, h, w] = (samples[0] as DataSample).shape;
  const stack = (pick: (s: DataSample) => Float32Array): Tensor4D => {
    const data = new Float32Array(batchSize * c * h * w);
    samples.forEach((s, i) => data.set(pick(s), i * c * h * w));
    return tf.tensor4d(data, [batchSize, c, h, w]);
  };
  return { a: stack((s) => s.a), b: stack((s) => s.b), samples };
}

/**
 * Trains (or resumes) a run to its end, its `maxIterations`, an abort, or a numerical failure. Bad input
 * (missing folders, unreadable images, a run folder that already holds a run) raises a ScenimefyError before
 * anything is written.
 */
export async function trainSemiCut(input: TrainRunInput, hooks: TrainHooks = {}): Promise<TrainResult> {
  const runFolder = path.resolve(input.out);
  const manifestFile = path.join(runFolder, RUN_FILES.manifest);
  const existing = await pathExists(manifestFile);
  let options: TrainOptions;
  let previous: RunManifest | undefined;
  let resumeFrom: string | undefined;
  if (input.resume) {
    if (!existing) throw new UsageError(`${runFolder}: no run to resume (no ${RUN_FILES.manifest}); start it without --resume`);
    previous = await readRunManifest(manifestFile);
    const extra = Object.keys(input.options ?? {}).filter(
      (k) => k !== 'maxIterations' && (input.options as Record<string, unknown>)[k] !== undefined,
    );
    if (extra.length > 0) {
      throw new UsageError(
        `${runFolder}: a resumed run keeps the options it was started with; drop ${extra.map((k) => `"${k}"`).join(', ')} (only maxIterations may change)`,
      );
    }
    // maxIterations bounds one invocation: a resumed run without it trains to the end of its epochs.
    options = resolvedTrainOptions({ ...(previous.options as Partial<TrainOptions>), maxIterations: input.options?.maxIterations ?? null });
    resumeFrom = await latestCheckpoint(runFolder);
  } else {
    if (existing) throw new UsageError(`${runFolder}: already holds a training run; pass --resume to continue it or choose another --out`);
    options = resolvedTrainOptions(input.options);
  }

  const seeds = derivedSeeds(options.seed);
  const dataOptions = { loadSize: options.loadSize, cropSize: options.cropSize, prefetch: options.prefetch };
  const unpaired = await UnalignedDataset.open({
    ...dataOptions,
    root: input.unpaired,
    phase: options.phase,
    noFlip: options.noFlip,
    seed: seeds.unpaired,
  });
  const pairedIsManifest = (await fsp.stat(input.paired).catch(() => undefined))?.isFile() === true;
  const paired = await AlignedDataset.open(
    pairedIsManifest
      ? { ...dataOptions, manifest: input.paired, seed: seeds.paired }
      : { ...dataOptions, root: input.paired, phase: options.phase, seed: seeds.paired },
  );
  const iterationsPerEpoch = Math.floor(unpaired.length / options.batchSize);
  if (iterationsPerEpoch < 1) {
    throw new UsageError(`${input.unpaired}: ${unpaired.length} images per epoch is fewer than one batch of ${options.batchSize}`);
  }
  const totalEpochs = options.nEpochs + options.nEpochsDecay;
  const epochIterations = totalEpochs * iterationsPerEpoch;
  const totalIterations = options.maxIterations === null ? epochIterations : Math.min(options.maxIterations, epochIterations);

  const { tf, candidate: backend } = await loadTf({ prefer: input.backend });
  if (backend === 'wasm') registerWasmTrainingKernels(tf);

  const vgg = options.lambdaVgg > 0 ? await loadVgg(tf, input) : undefined;
  const perceptualLoss =
    vgg === undefined
      ? undefined
      : (fake: Tensor4D, real: Tensor4D, mapping: VggInput) => vggPerceptualLoss(tf, vgg, fake, real, { input: mapping });
  const modelExtras = { options: pickSemiCutOptions(options), ...(perceptualLoss !== undefined ? { perceptualLoss } : {}) };
  let model: SemiCutModel | undefined;
  let log: TrainEventLog | undefined;
  let iteration = 0;
  let epoch = 1;
  let epochIter = 0;
  let window: LossWindow = { count: 0, sums: {} };
  let newestCheckpoint: string | undefined = resumeFrom;
  let newestIteration = -1;
  // A resumed run drops the previous invocation's error; its options gain only the new maxIterations.
  const { error: _endedWith, ...previousRun } = previous ?? {};
  const manifest: RunManifest = previous
    ? {
        ...(previousRun as RunManifest),
        status: 'running',
        options: { ...options } as unknown as RunManifest['options'],
        updatedAt: isoNow(),
      }
    : {
        ...artifactHeader(runContract, GENERATED_BY),
        status: 'running',
        options: { ...options } as unknown as RunManifest['options'],
        nonDefaults: nonDefaultOptions(options),
        checkpoints: [],
        events: RUN_FILES.events,
        samples: RUN_FILES.samples,
        report: RUN_FILES.report,
      };

  const emit = async (event: TrainEvent): Promise<void> => {
    await (log as TrainEventLog).append(event);
    hooks.onEvent?.(event);
  };
  const writeReport = async (status: RunStatus, message?: string): Promise<void> => {
    const events = await readTrainEvents(path.join(runFolder, RUN_FILES.events));
    await writeTrainingReport(path.join(runFolder, RUN_FILES.report), {
      title: `Scenimefy training run ${path.basename(runFolder)}`,
      status,
      options: { ...options },
      nonDefaults: manifest.nonDefaults,
      events,
      ...(message !== undefined ? { message } : {}),
    });
  };
  const writeManifest = async (): Promise<void> => {
    manifest.updatedAt = isoNow();
    await writeRunManifest(manifestFile, manifest);
  };
  const checkpointNow = async (): Promise<void> => {
    const m = model as SemiCutModel;
    const broken = nonFiniteWeights(tf, m);
    if (broken !== undefined) {
      throw new NumericError(
        `weights of ${broken} became NaN or infinite by iteration ${iteration} (epoch ${epoch}); stopped before checkpointing them`,
        { file: runFolder },
      );
    }
    const folder = path.join(runFolder, RUN_FILES.checkpoints, `iter-${String(iteration).padStart(9, '0')}`);
    const rng: RunRngState = {
      unpaired: unpaired.rngState(),
      paired: paired.rngState(),
      lossWindow: { count: window.count, sums: { ...window.sums } },
    };
    await saveTrainingCheckpoint(folder, m, { epoch, iteration, epochIter, options: { ...options }, rng }, { generatedBy: GENERATED_BY });
    newestCheckpoint = folder;
    newestIteration = iteration;
    const entry: RunCheckpoint = {
      folder: path.relative(runFolder, folder).split(path.sep).join('/'),
      iteration,
      epoch,
      createdAt: isoNow(),
    };
    const removed = new Set((await pruneCheckpoints(runFolder, options.keep, [folder])).map((f) => path.resolve(f)));
    manifest.checkpoints = [
      ...manifest.checkpoints.filter((c) => c.folder !== entry.folder && !removed.has(path.resolve(runFolder, c.folder))),
      entry,
    ];
    await writeManifest();
    await emit({ type: 'checkpoint', time: isoNow(), iteration, epoch, folder: entry.folder });
    await writeReport('running');
  };

  let status: Exclude<RunStatus, 'running'> = 'completed';
  let failure: Error | undefined;
  try {
    await fsp.mkdir(path.join(runFolder, RUN_FILES.samples), { recursive: true });
    if (resumeFrom !== undefined) {
      const loaded = await loadTrainingCheckpoint(tf, resumeFrom);
      model = createSemiCutModel(tf, loaded.networks, { ...modelExtras, epoch: Math.max(1, loaded.state.epoch) });
      model.networks.netG.gradientCheckpointing = options.gradientCheckpointing;
      model.loadOptimizerStates(loaded.optimizerStates);
      const rng = loaded.state.rng as unknown as RunRngState;
      unpaired.setRngState(rng.unpaired);
      paired.setRngState(rng.paired);
      window = { count: rng.lossWindow.count, sums: { ...rng.lossWindow.sums } };
      iteration = loaded.state.iteration;
      newestIteration = iteration;
      epoch = loaded.state.epoch;
      epochIter = loaded.state.epochIter;
    } else if (input.resume) {
      // A run that stopped before its first checkpoint starts again from scratch with its own options.
      await fsp.rm(path.join(runFolder, RUN_FILES.events), { force: true });
    }
    if (!input.resume) {
      await fsp.mkdir(runFolder, { recursive: true });
      await writeFileAtomic(path.join(runFolder, RUN_FILES.options), formatTrainOptions(options));
    }
    await writeManifest();
    log = await TrainEventLog.open(path.join(runFolder, RUN_FILES.events), { truncateAfterIteration: iteration });
    await emit({
      type: 'start',
      time: isoNow(),
      iteration,
      epoch,
      backend,
      options: { ...options },
      ...(resumeFrom !== undefined ? { resumedFrom: path.relative(runFolder, resumeFrom).split(path.sep).join('/') } : {}),
    });

    // An epoch ends after `iterationsPerEpoch` batches; a checkpoint taken at its end has epochIter = that count.
    if (epochIter >= iterationsPerEpoch) {
      epoch += 1;
      epochIter = 0;
    }
    let epochStarted = performance.now();
    outer: while (epoch <= totalEpochs && iteration < totalIterations) {
      const lr = options.lr * linearLrFactor(epoch, options);
      if (model !== undefined) {
        model.setEpoch(epoch);
        model.setLearningRate(lr);
      }
      while (epochIter < iterationsPerEpoch) {
        if (iteration >= totalIterations) break outer;
        if (hooks.signal?.aborted) {
          status = 'stopped';
          break outer;
        }
        const t0 = performance.now();
        const unpairedBatch = await nextBatch(tf, unpaired, options.batchSize);
        const pairedBatch = await nextBatch(tf, paired, options.batchSize);
        const batch: SemiCutBatch = { x: unpairedBatch.a, y: unpairedBatch.b, xP: pairedBatch.a, yP: pairedBatch.b };
        let losses: SemiCutLosses;
        try {
          if (model === undefined) {
            model = createSemiCutModel(tf, freshNetworks(tf, options), { ...modelExtras, epoch });
            model.networks.netG.gradientCheckpointing = options.gradientCheckpointing;
            model.setLearningRate(lr);
            model.dataDependentInit(batch);
          }
          losses = model.optimizeParameters(batch);
          if (options.sampleEvery > 0 && (iteration + 1) % options.sampleEvery === 0) {
            const file = `${RUN_FILES.samples}/iter-${String(iteration + 1).padStart(9, '0')}.png`;
            await writeSamples(tf, model, batch, path.join(runFolder, file));
            await emit({ type: 'sample', time: isoNow(), iteration: iteration + 1, epoch, file });
          }
        } finally {
          tf.dispose([batch.x, batch.y, batch.xP, batch.yP]);
        }
        const bad = nonFiniteLoss(losses);
        if (bad !== undefined) {
          const kept =
            newestCheckpoint === undefined
              ? 'no checkpoint was written yet'
              : `the last good checkpoint is ${path.relative(runFolder, newestCheckpoint)}`;
          throw new NumericError(`loss ${bad[0]} became ${bad[1]} at iteration ${iteration + 1} (epoch ${epoch}); stopped, ${kept}`, {
            file: runFolder,
          });
        }
        iteration += 1;
        epochIter += 1;
        const seconds = (performance.now() - t0) / 1000;
        window.count += 1;
        for (const [name, value] of Object.entries(lossRecord(losses))) window.sums[name] = (window.sums[name] ?? 0) + value;
        if (iteration % options.logEvery === 0) {
          const means = Object.fromEntries(Object.entries(window.sums).map(([k, v]) => [k, v / window.count]));
          await emit({ type: 'iteration', time: isoNow(), iteration, epoch, epochIter, lr, losses: means, seconds });
          window = { count: 0, sums: {} };
        }
        hooks.onIteration?.({ iteration, epoch, epochIter, iterationsPerEpoch, totalIterations, losses, seconds });
        const epochDone = epochIter === iterationsPerEpoch;
        if (epochDone) {
          // drop_last: the samples of the epoch that do not fill a batch are drawn and discarded.
          for (let i = iterationsPerEpoch * options.batchSize; i < unpaired.length; i++) await unpaired.next();
          await emit({ type: 'epoch', time: isoNow(), epoch, iteration, lr, seconds: (performance.now() - epochStarted) / 1000 });
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

  try {
    if (log !== undefined) {
      const code = (failure as { code?: string } | undefined)?.code;
      await emit({
        type: 'end',
        time: isoNow(),
        iteration,
        epoch: Math.min(epoch, totalEpochs),
        status,
        ...(failure ? { message: failure.message } : {}),
        ...(code !== undefined ? { code } : {}),
      });
      await log.close();
      manifest.status = status;
      if (failure)
        manifest.error = {
          message: failure.message,
          ...((failure as { code?: string }).code ? { code: (failure as { code?: string }).code as string } : {}),
        };
      await writeManifest();
      await writeReport(status, failure?.message);
    }
  } finally {
    model?.dispose();
    vgg?.dispose();
    await Promise.all([unpaired.ready(), paired.ready()]).catch(() => undefined);
  }
  if (failure) throw failure;
  return { status, iteration, epoch: Math.min(epoch, totalEpochs), checkpoint: newestCheckpoint, runFolder, backend };
}

/** The frozen VGG-19 of the perceptual term: the given weights, else the registry's vgg19 (cached or fetched). */
async function loadVgg(tf: Tf, input: TrainRunInput): Promise<Vgg19Features> {
  let file = input.vggWeights;
  if (file === undefined) {
    const entry = findModel('vgg19', process.env, 'vgg19-features');
    file = (await fetchModel(entry, input.offline !== undefined ? { offline: input.offline } : {})).file;
  }
  return createVgg19Features(tf, (await readWeights(file)).tensors, { source: file });
}

/** One grid per sample of the batch's first image: real_A | fake_B | real_B | idt_B, then real_A_p | fake_B_p | real_B_p. */
async function writeSamples(tf: Tf, model: SemiCutModel, batch: SemiCutBatch, file: string): Promise<void> {
  const first = (t: Tensor4D): Tensor4D => tf.slice(t, [0, 0, 0, 0], [1, -1, -1, -1]) as Tensor4D;
  const images = tf.tidy(() => {
    const g = model.networks.netG;
    const x = first(batch.x);
    const y = first(batch.y);
    const xP = first(batch.xP);
    const yP = first(batch.yP);
    return { x, fakeB: g.forward(x), y, idtB: g.forward(y), xP, fakeBP: g.forward(xP), yP };
  });
  try {
    const image = async (caption: string, t: Tensor4D) => ({
      caption,
      data: (await t.data()) as Float32Array,
      shape: t.shape as [1, 3, number, number],
    });
    await writeSampleGrid(file, [
      {
        label: 'unpaired',
        images: [
          await image('real_A', images.x),
          await image('fake_B', images.fakeB),
          await image('real_B', images.y),
          await image('idt_B', images.idtB),
        ],
      },
      {
        label: 'paired',
        images: [await image('real_A_p', images.xP), await image('fake_B_p', images.fakeBP), await image('real_B_p', images.yP)],
      },
    ]);
  } finally {
    tf.dispose(Object.values(images));
  }
}
