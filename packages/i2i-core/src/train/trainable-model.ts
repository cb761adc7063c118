/**
 * What the run loop (run-loop.ts) needs of a model, in the spirit of CUT's `BaseModel`: named networks (each with
 * its architecture config for checkpoint.json and its state dict), named Adam optimisers, the loss names, how the
 * report charts them and which the progress line shows, one optimisation step, sample-grid rows, extra state to
 * save, and dispose. Everything else — run.json, the lock, resume, events, loss windows, the NaN stop,
 * checkpoints, samples, the report, abort, progress — the loop does once for every model.
 *
 * A stage adds a `TrainingStage`: its options schema, the datasets it reads, and how it opens a `TrainingTask`
 * (the data, a fresh model on the first batch, a model from a checkpoint).
 */
import type { BackendPreference } from '@scenimefy/io';
import type { CheckpointManifest, JsonValue, NetworkConfig } from '@scenimefy/io/core';
import type { Variable } from '@tensorflow/tfjs-core';

import type { Tf } from '../layers/tf';
import type { Float32TensorData } from '../networks/generator';
import type { OptionsSchema } from '../options/option-schema';
import type { Adam } from './adam';
import type { MomentLayout } from './adam-state';
import type { ReadTrainingCheckpoint } from './model-checkpoint';
import type { ReportChartGroup } from './report';
import type { RunLoopOptions } from './run-options';
import type { SampleGridRow } from './sample-grid';

export type { ReportChartGroup };

/** A network as a checkpoint holds it: tensors `<name>.<state_dict key>` and its entry in checkpoint.json's networks. */
export interface TrainableNetwork {
  /** How it is built, as of now (a lazily built part, such as PatchSampleF's heads, shows once it exists). */
  architecture(): NetworkConfig;
  /** Its state dict in PyTorch layout (parameters and buffers), for weights.safetensors. */
  stateDict(): Promise<Map<string, Float32TensorData>>;
  /** Its trainable variables; checked for NaN and infinity before every checkpoint. */
  readonly variables: ReadonlyMap<string, Variable>;
}

/** An optimiser: the networks it updates (recorded in checkpoint.json) and its Adam, saved under its name. */
export interface TrainableOptimizer {
  readonly networks: readonly string[];
  readonly adam: Adam;
  /** How its 4-D parameters are laid out (default `'hwio'`, as i2i-core's conv variables; see adam-state.ts). */
  readonly layout?: MomentLayout;
}

/** What a model's losses are called and how they are shown; known before the model is built. */
export interface ModelDescription {
  /** The model name checkpoint.json records (`semi_cut`); a resume refuses a checkpoint of another model. */
  readonly name: string;
  /** Every loss `step` returns, in the order the reference prints them. */
  readonly lossNames: readonly string[];
  /** The losses the CLI's progress line shows. */
  readonly progressLosses: readonly string[];
  /** The loss charts of report.html, in page order (the learning rate is charted after them). */
  readonly chartGroups: readonly ReportChartGroup[];
}

export interface TrainableModel<Batch> extends ModelDescription {
  /** The networks by checkpoint name, in the order their tensors are written. */
  networks(): ReadonlyMap<string, TrainableNetwork>;
  /** The optimisers that exist now, by checkpoint name (a model may create some later, e.g. after a data-dependent init). */
  optimizers(): ReadonlyMap<string, TrainableOptimizer>;
  /** Before the first step of each epoch (and after a resume): epoch-dependent weights and the learning rate. */
  beginEpoch(epoch: number, lr: number): void;
  /** One optimisation step; every loss as a number. */
  step(batch: Batch): Promise<Record<string, number>> | Record<string, number>;
  /** Rows of a sample grid made from the batch just trained on (the loop writes and logs it). */
  visuals(batch: Batch): Promise<SampleGridRow[]>;
  /** JSON-safe state beside the loop's in rng.json (e.g. random streams of the networks), merged at its top level. */
  saveState(): Record<string, JsonValue>;
  /** Frees its networks and optimiser state. */
  dispose(): void;
}

/** A stage's data: batches one after another, epoch by epoch, with its random state saved in checkpoints. */
export interface TrainingData<Batch> {
  /** Batches per epoch. */
  readonly iterationsPerEpoch: number;
  /** The next batch; the loop disposes it (`disposeBatch`) after the step. */
  next(): Promise<Batch>;
  disposeBatch(batch: Batch): void;
  /** After an epoch's last batch (semi_cut draws and drops the samples that do not fill a batch, as drop_last). */
  endEpoch(): Promise<void>;
  /** JSON-safe random state (rng.json's `rng`, beside the loop's loss window). */
  rngState(): Record<string, JsonValue>;
  setRngState(state: Record<string, unknown>): void;
  /** Waits for decoding still running and frees what the data holds. */
  close(): Promise<void>;
}

/** A stage opened for one invocation: its backend, data and how it makes a model. */
export interface TrainingTask<Batch> {
  readonly tf: Tf;
  /** The TF.js backend in use, as events and the result name it. */
  readonly backend: string;
  readonly data: TrainingData<Batch>;
  /** Epochs of the whole run. */
  readonly totalEpochs: number;
  /** The learning rate of a 1-based epoch (the loop logs it and hands it to `beginEpoch`). */
  learningRate(epoch: number): number;
  /** A fresh model, built and initialised on the run's first batch (CUT's data-dependent init), then given `lr`. */
  createModel(firstBatch: Batch, at: { epoch: number; lr: number }): TrainableModel<Batch> | Promise<TrainableModel<Batch>>;
  /** The model of a checkpoint: architecture, weights, optimiser states and its saved state restored. */
  loadModel(checkpoint: ReadTrainingCheckpoint, at: { epoch: number }): TrainableModel<Batch> | Promise<TrainableModel<Batch>>;
  /** Frees what the task holds besides the data and the model (e.g. a frozen VGG). */
  dispose(): void;
}

/** What `openTask` gets: the resolved options, the datasets' absolute paths, and the caller's stage-specific input. */
export interface TaskContext<Options, Extra> {
  readonly options: Options;
  readonly datasets: Readonly<Record<string, string>>;
  readonly backend: BackendPreference | undefined;
  readonly extra: Extra;
}

/** A kind of training run: its options, datasets and model. `Extra` is what its API takes beyond the generic input. */
export interface TrainingStage<Options extends RunLoopOptions, Batch, Extra = undefined> {
  readonly description: ModelDescription;
  /** Every option of the run, the run loop's (`runLoopOptionShape`) included. */
  readonly optionsSchema: OptionsSchema;
  /** Prefix of option errors, e.g. `training options`. */
  readonly optionsWhat: string;
  /** Names of the datasets it reads (recorded in run.json with their paths and digests), e.g. ['unpaired', 'paired']. */
  readonly datasets: readonly string[];
  /** Model-specific checks of a checkpoint.json to resume from, before its weights are read (e.g. its networks' wiring). */
  readonly checkCheckpoint?: (manifest: CheckpointManifest, file: string) => void;
  /** Opens the data (refusing bad input before anything is written), loads the backend and what the model needs. */
  openTask(context: TaskContext<Options, Extra>): Promise<TrainingTask<Batch>>;
}
