/**
 * A resumable `scenimefy-checkpoint` (v2) of any TrainableModel, in a checkpoint folder of the store:
 * - `weights.safetensors`: every network's state dict in PyTorch layout, tensors `<network>.<state_dict key>`;
 * - `optimizer.safetensors`: each optimiser's Adam moments and step under its name (train/adam-state.ts);
 * - `rng.json`: `{ "rng": <the run loop's state: data streams, loss window>, …the model's saveState() }`;
 * - `checkpoint.json`: the model's name, every network's architecture, the optimisers, the weights' digest and
 *   size, and where training stood (epoch, iteration, options).
 * Reading checks the weights' size and sha256 against checkpoint.json and hands the model the tensors; building
 * the networks from their configs is the model's (its stage's `loadModel`).
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';

import {
  ContractError,
  IntegrityError,
  ModelFormatError,
  UsageError,
  artifactHeader,
  checkpointContract,
  float32Tensor,
  readCheckpointManifest,
  readSafetensors,
  sha256File,
  writeCheckpointManifest,
  writeFileAtomic,
  writeSafetensors,
  type CheckpointManifest,
  type CheckpointNetworks,
  type CheckpointOptimizer,
  type GeneratedBy,
  type JsonValue,
  type SafetensorsContents,
  type TensorMap,
} from '@scenimefy/io';

import { CHECKPOINT_MANIFEST_FILE, writeCheckpointFolder } from '../store/checkpoint-store';
import { Adam } from './adam';
import {
  adamStateFromTensors,
  adamStateMetadata,
  adamStateTensors,
  checkOptimizerTensors,
  hasAdamState,
  type MomentLayout,
} from './adam-state';
import type { TrainableModel } from './trainable-model';

export const WEIGHTS_FILE = 'weights.safetensors';
export const OPTIMIZER_FILE = 'optimizer.safetensors';
export const RNG_FILE = 'rng.json';

/** Where training stands when a checkpoint is written. */
export interface TrainingCheckpointState {
  /** 1-based epoch the run is in (or just finished). */
  epoch: number;
  /** Optimisation steps done in all. */
  iteration: number;
  /** Samples consumed in the current epoch. */
  epochIter: number;
  /** The resolved training options (JSON-safe). */
  options: Record<string, unknown>;
  /** JSON-safe RNG states (datasets, …), stored in rng.json as given. */
  rng: Record<string, unknown>;
}

/** The part of a model a checkpoint holds. */
export type CheckpointableModel = Pick<TrainableModel<unknown>, 'name' | 'networks' | 'optimizers' | 'saveState'>;

// ---------------------------------------------------------------------------------------------------------
// JSON safety

/** The path of the first value that JSON cannot hold as it is (undefined, NaN, a typed array, a class instance …). */
function firstNonJson(value: unknown, at: string): string | undefined {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return undefined;
  if (typeof value === 'number') return Number.isFinite(value) ? undefined : `${at} (${String(value)})`;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const bad = firstNonJson(value[i], `${at}[${i}]`);
      if (bad !== undefined) return bad;
    }
    return undefined;
  }
  if (typeof value === 'object') {
    const proto = Object.getPrototypeOf(value) as unknown;
    if (proto !== Object.prototype && proto !== null) return `${at} (a ${(value as object).constructor?.name ?? 'non-plain'} object)`;
    for (const [key, v] of Object.entries(value as Record<string, unknown>)) {
      const bad = firstNonJson(v, `${at}.${key}`);
      if (bad !== undefined) return bad;
    }
    return undefined;
  }
  return `${at} (${typeof value})`;
}

function checkedJson(value: Record<string, unknown>, what: string): Record<string, JsonValue> {
  const bad = firstNonJson(value, what);
  if (bad !== undefined) throw new UsageError(`saveTrainingCheckpoint: ${bad} is not JSON-safe`);
  return value as Record<string, JsonValue>;
}

// ---------------------------------------------------------------------------------------------------------
// Save

function optimizerRecord(networks: readonly string[], adam: Adam): CheckpointOptimizer {
  return { algorithm: 'adam', networks: [...networks], lr: adam.lr, betas: [adam.beta1, adam.beta2], eps: adam.eps };
}

/**
 * Writes `model` and `state` as a resumable scenimefy-checkpoint v2 in `folder` (normally
 * `checkpointFolderFor(runFolder, state.iteration)`), atomically: the folder appears whole or not at all, and an
 * existing checkpoint folder of that name is replaced only once the new one is complete. Returns the manifest.
 */
export async function saveModelCheckpoint(
  folder: string,
  model: CheckpointableModel,
  state: TrainingCheckpointState,
  meta: { generatedBy: GeneratedBy },
): Promise<CheckpointManifest> {
  const options = checkedJson(state.options, 'options');
  const rng = checkedJson(state.rng, 'rng');
  const extra = checkedJson(model.saveState(), 'saveState()');
  if (Object.hasOwn(extra, 'rng')) throw new UsageError(`saveTrainingCheckpoint: ${model.name}'s saveState() uses the loop's key "rng"`);
  const networks = model.networks();
  const optimizers = model.optimizers();

  return writeCheckpointFolder(folder, async (tmp) => {
    const weights: TensorMap = new Map();
    const configs: CheckpointNetworks = {};
    for (const [name, net] of networks) {
      configs[name] = net.architecture();
      for (const [key, t] of await net.stateDict()) weights.set(`${name}.${key}`, float32Tensor(t.shape, t.data));
    }
    const weightsPath = path.join(tmp, WEIGHTS_FILE);
    await writeSafetensors(weightsPath, weights);

    const moments: TensorMap = new Map();
    const metadata: Record<string, string> = {};
    const records: Record<string, CheckpointOptimizer> = {};
    for (const [name, { networks: updated, adam, layout }] of optimizers) {
      adamStateTensors(name, await adam.state(), moments, layout);
      adamStateMetadata(name, adam, metadata);
      records[name] = optimizerRecord(updated, adam);
    }
    await writeSafetensors(path.join(tmp, OPTIMIZER_FILE), moments, metadata);
    await writeFileAtomic(path.join(tmp, RNG_FILE), `${JSON.stringify({ rng, ...extra }, null, 2)}\n`);

    const manifest: CheckpointManifest = {
      ...artifactHeader(checkpointContract, meta.generatedBy),
      model: model.name,
      networks: configs,
      optimizers: records,
      tensorNaming: 'network-prefixed-state-dict',
      weights: { file: WEIGHTS_FILE, sha256: await sha256File(weightsPath), size: (await fsp.stat(weightsPath)).size },
      training: {
        epoch: state.epoch,
        iteration: state.iteration,
        epochIter: state.epochIter,
        optimizerFile: OPTIMIZER_FILE,
        rngFile: RNG_FILE,
        options,
      },
    };
    // Written last: inside the work folder a checkpoint.json means every other file is already there.
    await writeCheckpointManifest(path.join(tmp, CHECKPOINT_MANIFEST_FILE), manifest);
    return manifest;
  });
}

// ---------------------------------------------------------------------------------------------------------
// Read

/** A training checkpoint as read: checked files, for a stage's `loadModel` to build its model from. */
export interface ReadTrainingCheckpoint {
  readonly folder: string;
  /** Always v2 (a v1 checkpoint.json is upgraded on reading). */
  readonly manifest: CheckpointManifest;
  readonly files: { readonly manifest: string; readonly weights: string; readonly optimizer: string; readonly rng: string };
  /** Every tensor of weights.safetensors (size and sha256 checked against checkpoint.json), names `<network>.<key>`. */
  readonly weights: TensorMap;
  readonly optimizer: SafetensorsContents;
  /** rng.json's `rng`: the run loop's state. */
  readonly rng: Record<string, unknown>;
  /** rng.json's other keys: what the model's `saveState()` returned. */
  readonly extra: Record<string, unknown>;
  readonly state: TrainingCheckpointState;
}

async function verifiedWeights(folder: string, manifest: CheckpointManifest): Promise<TensorMap> {
  const file = path.join(folder, manifest.weights.file);
  const stat = await fsp.stat(file).catch(() => undefined);
  if (stat?.isFile() !== true) throw new IntegrityError('missing (listed in checkpoint.json)', { file });
  if (stat.size !== manifest.weights.size) {
    throw new IntegrityError(`has ${stat.size} bytes, checkpoint.json records ${manifest.weights.size} (truncated or replaced)`, { file });
  }
  const digest = await sha256File(file);
  if (digest !== manifest.weights.sha256)
    throw new IntegrityError(`sha256 is ${digest}, checkpoint.json records ${manifest.weights.sha256}`, { file });
  const { tensors } = await readSafetensors(file);
  const prefixes = Object.keys(manifest.networks).map((n) => `${n}.`);
  for (const key of tensors.keys()) {
    if (!prefixes.some((p) => key.startsWith(p))) {
      throw new ModelFormatError(`tensor ${key} belongs to no network of checkpoint.json (${prefixes.join(', ')})`, { file });
    }
  }
  return tensors;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

async function readRngFile(file: string): Promise<{ rng: Record<string, unknown>; extra: Record<string, unknown> }> {
  let text: string;
  try {
    text = await fsp.readFile(file, 'utf8');
  } catch (error) {
    throw new ContractError(`cannot read (${(error as NodeJS.ErrnoException).code ?? 'EIO'})`, { file, cause: error });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new ContractError(`invalid JSON (${(error as Error).message})`, { file, cause: error });
  }
  if (!isObject(json)) throw new ContractError('expected a JSON object', { file });
  const { rng, ...extra } = json;
  if (!isObject(rng)) throw new ContractError('expected an object', { file, field: 'rng' });
  return { rng, extra };
}

export interface ReadModelCheckpointOptions {
  /** Model-specific checks of checkpoint.json (its networks, their wiring), run before the weights are read. */
  readonly checkManifest?: (manifest: CheckpointManifest, file: string) => void;
}

/**
 * Reads a resumable checkpoint written by `saveModelCheckpoint` (or by Scenimefy.js 0.1 in v1): checkpoint.json,
 * then the weights (size and sha256 checked), rng.json and optimizer.safetensors. Errors name the file:
 * ContractError for a bad checkpoint.json or rng.json, IntegrityError for a truncated or altered weights file,
 * ModelFormatError for a tensor of no listed network or a broken safetensors file.
 */
export async function readModelCheckpoint(folder: string, options: ReadModelCheckpointOptions = {}): Promise<ReadTrainingCheckpoint> {
  const manifestFile = path.join(folder, CHECKPOINT_MANIFEST_FILE);
  const manifest = await readCheckpointManifest(manifestFile);
  const training = manifest.training;
  if (training?.optimizerFile === undefined || training.rngFile === undefined) {
    throw new ContractError('not a resumable training checkpoint: it lists no optimizer and rng files', {
      file: manifestFile,
      field: 'training',
    });
  }
  options.checkManifest?.(manifest, manifestFile);
  const files = {
    manifest: manifestFile,
    weights: path.join(folder, manifest.weights.file),
    optimizer: path.join(folder, training.optimizerFile),
    rng: path.join(folder, training.rngFile),
  };
  const weights = await verifiedWeights(folder, manifest);
  const { rng, extra } = await readRngFile(files.rng);
  const optimizer = await readSafetensors(files.optimizer);
  return {
    folder,
    manifest,
    files,
    weights,
    optimizer,
    rng,
    extra,
    state: {
      epoch: training.epoch,
      iteration: training.iteration,
      epochIter: training.epochIter ?? 0,
      options: (training.options ?? {}) as Record<string, unknown>,
      rng,
    },
  };
}

/**
 * Gives the optimisers of a model their saved states: each name in `optimizers` that the file holds is loaded (its
 * moments checked against the optimiser's parameters); those in `required` must be there; a tensor of no listed
 * optimiser, or a count that does not add up, is refused. Returns the names restored.
 */
export function restoreOptimizers(
  checkpoint: ReadTrainingCheckpoint,
  optimizers: ReadonlyMap<string, Adam | { readonly adam: Adam; readonly layout?: MomentLayout }>,
  required: readonly string[] = [...optimizers.keys()],
): string[] {
  const { tensors, metadata } = checkpoint.optimizer;
  const file = checkpoint.files.optimizer;
  for (const name of required) {
    if (!hasAdamState(metadata, name))
      throw new ModelFormatError(`no state for optimiser ${name} (no __metadata__ ${name}.step)`, { file });
  }
  const restored: string[] = [];
  let expected = 0;
  for (const [name, entry] of optimizers) {
    if (!hasAdamState(metadata, name)) continue;
    const { adam, layout } = entry instanceof Adam ? { adam: entry, layout: undefined } : entry;
    adam.loadState(adamStateFromTensors(tensors, metadata, name, adam.params, file, layout));
    restored.push(name);
    expected += 2 * adam.params.size;
  }
  checkOptimizerTensors(tensors, restored, expected, file);
  return restored;
}
