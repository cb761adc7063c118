/**
 * A `semi_cut` training run (CUT's train.py with Scenimefy's paired loader, SPEC §5.7, §7) as a stage of the one
 * run loop (run-loop.ts): epochs over the unaligned photo/anime set with one pseudo pair per sample, the
 * data-dependent init on the first batch, the linear LR policy per epoch; the loop does the run folder,
 * checkpoints, resume, events, samples, report and the NaN stop.
 *
 * Resuming continues exactly: weights, Adam moments, every random stream (data order, flips, crops, patch ids)
 * and the partial loss window are in the checkpoint, so a resumed run logs the same losses as one that never
 * stopped.
 */
import { promises as fsp } from 'node:fs';

import { UsageError, loadTf, type BackendPreference } from '@scenimefy/io';
import type { Tensor4D } from '@tensorflow/tfjs-core';

import type { Tf } from '../layers/tf';
import { registerWasmTrainingKernels } from '../layers/wasm-training-kernels';
import { vggPerceptualLoss } from '../losses/vgg-perceptual';
import { createPatchDiscriminator } from '../networks/discriminator';
import { createResnetGenerator } from '../networks/generator';
import { createPatchSampleF } from '../networks/patch-sample';
import type { Vgg19Features } from '../networks/vgg19';
import { splitmix32 } from '../seeded-rng';
import { AlignedDataset, UnalignedDataset } from './data';
import type { DataRngState, DataSample } from './data';
import { linearLrFactor } from './lr-schedule';
import type { VggInput } from './options';
import { runTraining, type TrainHooks, type TrainResult } from './run-loop';
import { createSemiCutModel } from './semi-cut';
import type { SemiCutBatch, SemiCutNetworks } from './semi-cut';
import { checkSemiCutManifest, semiCutFromCheckpoint } from './semi-cut-checkpoint';
import { SEMI_CUT_DESCRIPTION, semiCutTrainable } from './semi-cut-trainable';
import { pickSemiCutOptions, trainOptionsSchema } from './train-options';
import type { TrainOptions } from './train-options';
import type { TaskContext, TrainingStage, TrainingTask } from './trainable-model';
import { loadVgg19FeaturesFromWeights } from './vgg-weights';

export { RUN_FILES } from './run-folder';
export type { TrainHooks, TrainProgress, TrainResult } from './run-loop';

export interface TrainRunInput {
  /**
   * Unaligned dataset root holding `${phase}A/` (photos) and `${phase}B/` (anime). Required for a new run; a
   * resumed run uses the recorded one (refusing it if its files changed) unless given again.
   */
  readonly unpaired?: string;
  /** Paired dataset: a root with same-name `${phase}A/` and `${phase}B/`, or a scenimefy-dataset manifest (.json); as `unpaired` on resume. */
  readonly paired?: string;
  /** The run folder (created; must not hold a run unless `resume`). */
  readonly out: string;
  /** Continue the run in `out` from its newest checkpoint, as it was configured. */
  readonly resume?: boolean;
  /**
   * Options of a new run. With `resume`, only the run's cadences and cap (maxIterations, saveEvery, keep,
   * sampleEvery, logEvery, prefetch, gradientCheckpointing) may be given; they apply from here on and are recorded
   * in run.json. `{ maxIterations: undefined }` lifts the cap the run was started with.
   */
  readonly options?: Partial<TrainOptions>;
  /** TF.js backend; default: the fastest available (`loadTf`). */
  readonly backend?: BackendPreference;
  /** VGG-19 weights for `lambdaVgg` > 0 (torchvision keys); default: the registry's `vgg19`, from the cache or downloaded. */
  readonly vggWeights?: string;
  /** Never download the VGG-19 weights (default: env SCENIMEFY_OFFLINE=1). */
  readonly offline?: boolean;
}

/** What semi_cut's stage takes beyond the generic run input. */
export interface SemiCutStageInput {
  readonly vggWeights?: string;
  readonly offline?: boolean;
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

/** Opens the datasets (bad input refused before anything is written), the backend and the VGG if the options need it. */
async function openSemiCutTask(context: TaskContext<TrainOptions, SemiCutStageInput>): Promise<TrainingTask<SemiCutBatch>> {
  const o = context.options;
  const seeds = derivedSeeds(o.seed);
  const dataOptions = { loadSize: o.loadSize, cropSize: o.cropSize, prefetch: o.prefetch };
  const unpairedRoot = context.datasets['unpaired'] as string;
  const pairedPath = context.datasets['paired'] as string;
  const unpaired = await UnalignedDataset.open({
    ...dataOptions,
    root: unpairedRoot,
    phase: o.phase,
    noFlip: o.noFlip,
    seed: seeds.unpaired,
  });
  let paired: AlignedDataset | undefined;
  let vgg: Vgg19Features | undefined;
  try {
    const pairedIsManifest = (await fsp.stat(pairedPath).catch(() => undefined))?.isFile() === true;
    paired = await AlignedDataset.open(
      pairedIsManifest
        ? { ...dataOptions, manifest: pairedPath, seed: seeds.paired }
        : { ...dataOptions, root: pairedPath, phase: o.phase, seed: seeds.paired },
    );
    const iterationsPerEpoch = Math.floor(unpaired.length / o.batchSize);
    if (iterationsPerEpoch < 1) {
      throw new UsageError(`${unpairedRoot}: ${unpaired.length} images per epoch is fewer than one batch of ${o.batchSize}`);
    }
    const { tf, candidate: backend } = await loadTf({ prefer: context.backend });
    if (backend === 'wasm') registerWasmTrainingKernels(tf);
    vgg =
      o.lambdaVgg > 0
        ? await loadVgg19FeaturesFromWeights(tf, {
            ...(context.extra.vggWeights !== undefined ? { file: context.extra.vggWeights } : {}),
            ...(context.extra.offline !== undefined ? { offline: context.extra.offline } : {}),
          })
        : undefined;
    const frozenVgg = vgg;
    const perceptualLoss =
      frozenVgg === undefined
        ? undefined
        : (fake: Tensor4D, real: Tensor4D, mapping: VggInput) => vggPerceptualLoss(tf, frozenVgg, fake, real, { input: mapping });
    const modelExtras = { options: pickSemiCutOptions(o), ...(perceptualLoss !== undefined ? { perceptualLoss } : {}) };
    const pairs = paired;
    return {
      tf,
      backend,
      totalEpochs: o.nEpochs + o.nEpochsDecay,
      data: {
        iterationsPerEpoch,
        next: async () => {
          const u = await nextBatch(tf, unpaired, o.batchSize);
          const p = await nextBatch(tf, pairs, o.batchSize);
          return { x: u.a, y: u.b, xP: p.a, yP: p.b };
        },
        disposeBatch: (batch) => tf.dispose([batch.x, batch.y, batch.xP, batch.yP]),
        // drop_last: the samples of the epoch that do not fill a batch are drawn and discarded.
        endEpoch: async () => {
          for (let i = iterationsPerEpoch * o.batchSize; i < unpaired.length; i++) await unpaired.next();
        },
        rngState: () => ({ unpaired: unpaired.rngState() as never, paired: pairs.rngState() as never }),
        setRngState: (state) => {
          for (const [name, dataset] of [
            ['unpaired', unpaired],
            ['paired', pairs],
          ] as const) {
            const saved = state[name] as DataRngState;
            // A dataset given again after a change must still have the length its saved order was drawn for.
            if (saved?.length !== undefined && saved.length !== dataset.length) {
              throw new UsageError(
                `the ${name} dataset now has ${dataset.length} samples per epoch, the checkpoint's data order is for ${saved.length}: ` +
                  'a run continues exactly only on data of the same size; start a new run to train on this data',
              );
            }
            dataset.setRngState(saved);
          }
        },
        close: async () => {
          await Promise.all([unpaired.ready(), pairs.ready()]);
        },
      },
      learningRate: (epoch) => o.lr * linearLrFactor(epoch, o),
      createModel: (batch, { epoch, lr }) => {
        const model = createSemiCutModel(tf, freshNetworks(tf, o), { ...modelExtras, epoch });
        try {
          model.networks.netG.gradientCheckpointing = o.gradientCheckpointing;
          model.setLearningRate(lr);
          model.dataDependentInit(batch);
        } catch (error) {
          model.dispose();
          throw error;
        }
        return semiCutTrainable(tf, model);
      },
      loadModel: (checkpoint, { epoch }) => {
        const loaded = semiCutFromCheckpoint(tf, checkpoint);
        const model = createSemiCutModel(tf, loaded.networks, { ...modelExtras, epoch });
        try {
          model.networks.netG.gradientCheckpointing = o.gradientCheckpointing;
          model.loadOptimizerStates(loaded.optimizerStates);
        } catch (error) {
          model.dispose();
          throw error;
        }
        return semiCutTrainable(tf, model);
      },
      dispose: () => frozenVgg?.dispose(),
    };
  } catch (error) {
    vgg?.dispose();
    await Promise.all([unpaired.ready(), paired?.ready()]).catch(() => undefined);
    throw error;
  }
}

/** semi_cut as a stage of the run loop. */
export const SEMI_CUT_STAGE: TrainingStage<TrainOptions, SemiCutBatch, SemiCutStageInput> = Object.freeze({
  description: SEMI_CUT_DESCRIPTION,
  optionsSchema: trainOptionsSchema,
  optionsWhat: 'training options',
  datasets: Object.freeze(['unpaired', 'paired']),
  checkCheckpoint: checkSemiCutManifest,
  openTask: openSemiCutTask,
});

/**
 * Trains (or resumes) a semi_cut run to its end, its `maxIterations`, an abort, or a numerical failure. Bad input
 * (missing folders, unreadable images, a run folder that already holds a run or that another trainer holds) raises
 * a ScenimefyError before anything is written.
 */
export function trainSemiCut(input: TrainRunInput, hooks: TrainHooks = {}): Promise<TrainResult> {
  return runTraining(
    SEMI_CUT_STAGE,
    {
      out: input.out,
      ...(input.resume !== undefined ? { resume: input.resume } : {}),
      ...(input.options !== undefined ? { options: input.options } : {}),
      datasets: { unpaired: input.unpaired, paired: input.paired },
      ...(input.backend !== undefined ? { backend: input.backend } : {}),
      extra: {
        ...(input.vggWeights !== undefined ? { vggWeights: input.vggWeights } : {}),
        ...(input.offline !== undefined ? { offline: input.offline } : {}),
      },
    },
    hooks,
  );
}
