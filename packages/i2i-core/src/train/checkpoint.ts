/**
 * Training checkpoints in the `scenimefy-checkpoint` v1 format (packages/io contracts/checkpoint-manifest.ts).
 *
 * A run folder keeps them as `checkpoints/iter-<iteration, 9 digits>/`, each holding
 * - `weights.safetensors`: every network's state dict in PyTorch layout, tensors `<network>.<state_dict key>`
 *   with networks netG, netD, netD_p, netF, netF_s (the reference's names), so the generator loaders read it as is;
 * - `optimizer.safetensors`: the Adam moments `<optimizer>.<param>.exp_avg|exp_avg_sq` for optimizers G, D, D_p, F,
 *   F_s, in the parameter's PyTorch layout (OIHW convs, like the weights, so they map onto `torch.optim.Adam`
 *   state), with each optimiser's step count and hyper-parameters in `__metadata__` (`G.step`, `G.lr`, …);
 * - `rng.json`: `{ "rng": <the trainer's opaque RNG states>, "patchIds": { netF, netF_s: { seed, state } } }`;
 * - `checkpoint.json`: the manifest (architectures, weights sha256 and size, epoch / iteration / options).
 *
 * The folders are written, found and pruned by the generic store (store/checkpoint-store.ts: temp folder and
 * rename, newest complete, keep-last-k), so a kill at any moment leaves the newest complete checkpoint intact.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';

import {
  ContractError,
  IntegrityError,
  ModelFormatError,
  UsageError,
  float32Tensor,
  readCheckpointManifest,
  readSafetensors,
  sha256File,
  tensorToFloat32,
  writeCheckpointManifest,
  writeFileAtomic,
  writeSafetensors,
  type CheckpointManifest,
  type CheckpointNetworks,
  type JsonValue,
  type TensorMap,
} from '@scenimefy/io';
import type { Variable } from '@tensorflow/tfjs-core';

import type { Tf } from '../layers/tf';
import { createPatchDiscriminator, type PatchDiscriminator } from '../networks/discriminator';
import { createResnetGenerator, loadGeneratorWeights, type ResnetGenerator } from '../networks/generator';
import type { Float32TensorData } from '../networks/generator';
import { createPatchSampleF, type PatchIdRngState, type PatchSampleF } from '../networks/patch-sample';
import { hwioFromOihw, oihwFromHwio, shapeText } from '../networks/state-dict';
import type { Adam, AdamState } from './adam';
import type { SemiCutModel, SemiCutNetworks } from './semi-cut';
import { SEMI_CUT_ALWAYS_OPTIMIZED, SEMI_CUT_PARTS, type SemiCutOptimizerKey } from './semi-cut-parts';
import {
  CHECKPOINT_MANIFEST_FILE,
  CHECKPOINTS_FOLDER,
  checkpointFolderFor,
  checkpointFolderName,
  latestCheckpoint,
  pruneCheckpoints,
  writeCheckpointFolder,
} from '../store/checkpoint-store';

// The folder mechanics live in the generic store; re-exported for the modules and tests that use them with checkpoints.
export { CHECKPOINTS_FOLDER, checkpointFolderFor, checkpointFolderName, latestCheckpoint, pruneCheckpoints };

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

export interface LoadedTrainingCheckpoint {
  manifest: CheckpointManifest;
  /** Built from the manifest's configs with the checkpoint's weights; netF / netF_s also get their seed and patch-id stream back. */
  networks: SemiCutNetworks;
  /** Adam states in the variables' own layout, ready for `Adam.loadState`; F / Fs only when those optimisers existed at save time (after `dataDependentInit`). */
  optimizerStates: { G: AdamState; D: AdamState; Dp: AdamState; F?: AdamState; Fs?: AdamState };
  state: TrainingCheckpointState;
  /** The checkpoint folder it was read from. */
  folder: string;
}

export const WEIGHTS_FILE = 'weights.safetensors';
export const OPTIMIZER_FILE = 'optimizer.safetensors';
export const RNG_FILE = 'rng.json';

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

function generatorConfigOf(netG: ResnetGenerator): CheckpointNetworks['netG'] {
  const c = netG.config;
  if (c.nBlocks !== 9)
    throw new UsageError(
      `saveTrainingCheckpoint: netG has ${c.nBlocks} residual blocks; scenimefy-checkpoint v1 knows resnet_9blocks only`,
    );
  return {
    architecture: 'resnet_9blocks',
    ngf: c.ngf,
    inputNc: c.inputNc,
    outputNc: c.outputNc,
    antialias: true,
    antialiasUp: true,
    norm: 'instance',
  };
}

function discriminatorConfigOf(net: PatchDiscriminator): NonNullable<CheckpointNetworks['netD']> {
  const c = net.config;
  return { architecture: 'basic', ndf: c.ndf, nLayers: c.nLayers, inputNc: c.inputNc, norm: 'instance', antialias: true };
}

function patchSamplerConfigOf(net: PatchSampleF, layers: readonly number[]): NonNullable<CheckpointNetworks['netF']> {
  const channels = net.headChannels();
  return { architecture: 'mlp_sample', nc: net.nc, layers: [...layers], ...(channels.length > 0 ? { inputChannels: channels } : {}) };
}

/** The networks of the model under their checkpoint names, in the file's order. */
function namedNetworks(n: SemiCutNetworks): Array<[string, { stateDict(): Promise<Map<string, Float32TensorData>> }]> {
  return SEMI_CUT_PARTS.map((p) => [p.network, n[p.field]]);
}

/** An Adam state as file tensors: conv moments turned from the variables' HWIO into PyTorch's OIHW. */
function optimizerTensors(name: string, state: AdamState, tensors: TensorMap): void {
  for (const [key, t] of state.tensors) {
    if (t.shape.length === 4) {
      const [kh, kw, cin, cout] = t.shape as [number, number, number, number];
      const torchShape = [cout, cin, kh, kw];
      tensors.set(`${name}.${key}`, float32Tensor(torchShape, oihwFromHwio(t.data, torchShape)));
    } else {
      tensors.set(`${name}.${key}`, float32Tensor(t.shape, t.data));
    }
  }
}

function optimizerMetadata(name: string, adam: Adam, metadata: Record<string, string>): void {
  metadata[`${name}.step`] = String(adam.step);
  metadata[`${name}.lr`] = String(adam.lr);
  metadata[`${name}.betas`] = `${adam.beta1},${adam.beta2}`;
  metadata[`${name}.eps`] = String(adam.eps);
}

/**
 * Writes `model` and `state` as a resumable scenimefy-checkpoint in `folder` (normally
 * `checkpointFolderFor(runFolder, state.iteration)`), atomically: the folder appears whole or not at all, and an
 * existing checkpoint folder of that name is replaced only once the new one is complete. Returns the manifest.
 *
 * Example:
 *   await saveTrainingCheckpoint(checkpointFolderFor(run, 5000), model,
 *     { epoch: 1, iteration: 5000, epochIter: 5000, options, rng: { data: dataset.rngState() } },
 *     { generatedBy: { name: '@scenimefy/i2i-core', version: '0.1.0' } });
 */
export async function saveTrainingCheckpoint(
  folder: string,
  model: SemiCutModel,
  state: TrainingCheckpointState,
  meta: { generatedBy: { name: string; version: string } },
): Promise<CheckpointManifest> {
  const options = checkedJson(state.options, 'options');
  const rng = checkedJson(state.rng, 'rng');
  const { networks, optimizers } = model;

  return writeCheckpointFolder(folder, async (tmp) => {
    const weights: TensorMap = new Map();
    for (const [name, net] of namedNetworks(networks)) {
      for (const [key, t] of await net.stateDict()) weights.set(`${name}.${key}`, float32Tensor(t.shape, t.data));
    }
    const weightsPath = path.join(tmp, WEIGHTS_FILE);
    await writeSafetensors(weightsPath, weights);

    const moments: TensorMap = new Map();
    const metadata: Record<string, string> = {};
    for (const { optimizerKey: key, optimizer: name } of SEMI_CUT_PARTS) {
      const adam = optimizers[key];
      if (adam === undefined) continue;
      optimizerTensors(name, await adam.state(), moments);
      optimizerMetadata(name, adam, metadata);
    }
    await writeSafetensors(path.join(tmp, OPTIMIZER_FILE), moments, metadata);

    const patchIds: Record<string, JsonValue> = {};
    for (const [name, net] of [
      ['netF', networks.netF],
      ['netF_s', networks.netFs],
    ] as const) {
      patchIds[name] = { seed: net.seed, state: net.rngState() as unknown as JsonValue };
    }
    await writeFileAtomic(path.join(tmp, RNG_FILE), `${JSON.stringify({ rng, patchIds }, null, 2)}\n`);

    const layers = model.options.nceLayers;
    const manifest: CheckpointManifest = {
      format: 'scenimefy-checkpoint',
      formatVersion: 1,
      generatedBy: { name: meta.generatedBy.name, version: meta.generatedBy.version },
      createdAt: new Date().toISOString(),
      networks: {
        netG: generatorConfigOf(networks.netG),
        netD: discriminatorConfigOf(networks.netD),
        netD_p: discriminatorConfigOf(networks.netDp),
        netF: patchSamplerConfigOf(networks.netF, layers),
        netF_s: patchSamplerConfigOf(networks.netFs, layers),
      },
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
// Load

function requiredNetwork<K extends keyof CheckpointNetworks>(
  manifest: CheckpointManifest,
  name: K,
  file: string,
): NonNullable<CheckpointNetworks[K]> {
  const config = manifest.networks[name];
  if (config === undefined) throw new ContractError('a training checkpoint needs all five networks', { file, field: `networks.${name}` });
  return config as NonNullable<CheckpointNetworks[K]>;
}

function checkSupported(manifest: CheckpointManifest, file: string): void {
  const g = manifest.networks.netG;
  if (!g.antialias || !g.antialiasUp) {
    throw new ModelFormatError('netG without antialiased down/upsampling is not supported (networks.netG.antialias/antialiasUp)', { file });
  }
  for (const name of ['netD', 'netD_p'] as const) {
    if (manifest.networks[name]?.antialias === false) {
      throw new ModelFormatError(`${name} without antialiased downsampling is not supported (networks.${name}.antialias)`, { file });
    }
  }
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

interface PatchIdsEntry {
  seed: number;
  state: PatchIdRngState;
}

async function readRngFile(file: string): Promise<{ rng: Record<string, unknown>; patchIds: Record<string, PatchIdsEntry | undefined> }> {
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
  const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  if (!isObject(json)) throw new ContractError('expected a JSON object', { file });
  if (!isObject(json['rng'])) throw new ContractError('expected an object', { file, field: 'rng' });
  const patchIds: Record<string, PatchIdsEntry | undefined> = {};
  const given = json['patchIds'];
  if (given !== undefined && !isObject(given)) throw new ContractError('expected an object', { file, field: 'patchIds' });
  for (const name of ['netF', 'netF_s']) {
    const entry = given?.[name];
    if (entry === undefined) continue;
    const seed = isObject(entry) ? entry['seed'] : undefined;
    if (!isObject(entry) || !Number.isInteger(seed) || (seed as number) < 0 || (seed as number) >= 2 ** 32 || !isObject(entry['state'])) {
      throw new ContractError('expected { seed: uint32, state: { algorithm, state } }', { file, field: `patchIds.${name}` });
    }
    patchIds[name] = { seed: seed as number, state: entry['state'] as unknown as PatchIdRngState };
  }
  return { rng: json['rng'], patchIds };
}

function buildPatchSampler(
  tf: Tf,
  name: 'netF' | 'netF_s',
  config: NonNullable<CheckpointNetworks['netF']>,
  weights: TensorMap,
  patchIds: PatchIdsEntry | undefined,
  files: { weights: string; rng: string },
): PatchSampleF {
  const net = createPatchSampleF(tf, { nc: config.nc, ...(patchIds !== undefined ? { seed: patchIds.seed } : {}) });
  try {
    if (patchIds !== undefined) {
      try {
        net.setRngState(patchIds.state);
      } catch (error) {
        throw new ContractError((error as Error).message, { file: files.rng, field: `patchIds.${name}.state`, cause: error });
      }
    }
    const hasTensors = [...weights.keys()].some((k) => k.startsWith(`${name}.`));
    if (config.inputChannels === undefined) {
      if (hasTensors)
        throw new ModelFormatError(`holds ${name} tensors but checkpoint.json gives no networks.${name}.inputChannels`, {
          file: files.weights,
        });
      return net;
    }
    net.loadState(weights, { prefix: `${name}.`, source: files.weights });
    const channels = net.headChannels();
    if (channels.length !== config.inputChannels.length || channels.some((c, i) => c !== config.inputChannels?.[i])) {
      throw new ModelFormatError(
        `${name} heads take C=${shapeText(channels)}, checkpoint.json says networks.${name}.inputChannels ${shapeText(config.inputChannels)}`,
        { file: files.weights },
      );
    }
    return net;
  } catch (error) {
    net.dispose();
    throw error;
  }
}

/** Reads one optimiser's moments from the file, checked against its network's variables, back into the variables' layout. */
function optimizerState(
  tensors: TensorMap,
  metadata: Record<string, string>,
  name: string,
  variables: ReadonlyMap<string, Variable>,
  file: string,
): AdamState {
  const stepText = metadata[`${name}.step`];
  const step = stepText !== undefined && /^\d+$/.test(stepText) ? Number(stepText) : NaN;
  if (!Number.isSafeInteger(step))
    throw new ModelFormatError(`__metadata__ ${name}.step must be an integer ≥ 0, got ${JSON.stringify(stepText)}`, { file });
  const out = new Map<string, Float32TensorData>();
  for (const [param, variable] of variables) {
    for (const moment of ['exp_avg', 'exp_avg_sq']) {
      const key = `${name}.${param}.${moment}`;
      const t = tensors.get(key);
      if (t === undefined) throw new ModelFormatError(`missing tensor ${key}`, { file });
      const hwio = variable.shape;
      const torchShape = hwio.length === 4 ? [hwio[3], hwio[2], hwio[0], hwio[1]] : hwio;
      if (t.dtype !== 'F32' || t.shape.length !== torchShape.length || t.shape.some((d, i) => d !== torchShape[i])) {
        throw new ModelFormatError(`tensor ${key} is ${t.dtype} ${shapeText(t.shape)}, expected F32 ${shapeText(torchShape as number[])}`, {
          file,
        });
      }
      const data = tensorToFloat32(t);
      out.set(`${param}.${moment}`, { shape: hwio, data: hwio.length === 4 ? hwioFromOihw(data, t.shape) : data });
    }
  }
  return { step, tensors: out };
}

function checkNoStrayMoments(tensors: TensorMap, names: readonly string[], expected: number, file: string): void {
  const stray = [...tensors.keys()].find((k) => !names.some((n) => k.startsWith(`${n}.`)));
  if (stray !== undefined)
    throw new ModelFormatError(`tensor ${stray} belongs to no optimiser of this checkpoint (${names.join(', ')})`, { file });
  if (tensors.size !== expected)
    throw new ModelFormatError(`holds ${tensors.size} tensors, the optimisers' parameters need ${expected}`, { file });
}

/**
 * Reads a checkpoint written by `saveTrainingCheckpoint`: checks the weights file's size and sha256 against
 * checkpoint.json, builds the five networks from the manifest's configs with those weights, and returns the
 * Adam states and training state. Errors name the file: IntegrityError for a truncated or altered weights file,
 * ModelFormatError for tensors that do not fit the architectures, ContractError for a bad checkpoint.json or rng.json.
 *
 * Example:
 *   const ckpt = await loadTrainingCheckpoint(tf, (await latestCheckpoint(run))!);
 *   const model = createSemiCutModel(tf, ckpt.networks, { options, epoch: ckpt.state.epoch });
 *   model.optimizers.G.loadState(ckpt.optimizerStates.G); // … D, Dp; F and Fs after dataDependentInit
 */
export async function loadTrainingCheckpoint(tf: Tf, folder: string): Promise<LoadedTrainingCheckpoint> {
  const manifestFile = path.join(folder, CHECKPOINT_MANIFEST_FILE);
  const manifest = await readCheckpointManifest(manifestFile);
  const training = manifest.training;
  if (training?.optimizerFile === undefined || training.rngFile === undefined) {
    throw new ContractError('not a resumable training checkpoint: it lists no optimizer and rng files', {
      file: manifestFile,
      field: 'training',
    });
  }
  const g = manifest.networks.netG;
  const dConfig = requiredNetwork(manifest, 'netD', manifestFile);
  const dpConfig = requiredNetwork(manifest, 'netD_p', manifestFile);
  const fConfig = requiredNetwork(manifest, 'netF', manifestFile);
  const fsConfig = requiredNetwork(manifest, 'netF_s', manifestFile);
  checkSupported(manifest, manifestFile);

  const weightsFile = path.join(folder, manifest.weights.file);
  const rngFile = path.join(folder, training.rngFile);
  const optimizerFile = path.join(folder, training.optimizerFile);
  const weights = await verifiedWeights(folder, manifest);
  const rngJson = await readRngFile(rngFile);
  const optimizer = await readSafetensors(optimizerFile);

  const built: Array<{ dispose(): void }> = [];
  const keep = <T extends { dispose(): void }>(net: T): T => {
    built.push(net);
    return net;
  };
  try {
    const generator = loadGeneratorWeights(weights, {
      prefix: 'netG.',
      source: weightsFile,
      config: { ngf: g.ngf, inputNc: g.inputNc, outputNc: g.outputNc, nBlocks: 9 },
    });
    const netG = keep(createResnetGenerator(tf, generator.config, { weights: generator }));
    const netD = keep(createPatchDiscriminator(tf, dConfig, { weights, prefix: 'netD.', source: weightsFile }));
    const netDp = keep(createPatchDiscriminator(tf, dpConfig, { weights, prefix: 'netD_p.', source: weightsFile }));
    const files = { weights: weightsFile, rng: rngFile };
    const netF = keep(buildPatchSampler(tf, 'netF', fConfig, weights, rngJson.patchIds['netF'], files));
    const netFs = keep(buildPatchSampler(tf, 'netF_s', fsConfig, weights, rngJson.patchIds['netF_s'], files));
    const networks: SemiCutNetworks = { netG, netD, netDp, netF, netFs };

    const present = SEMI_CUT_PARTS.filter((p) => optimizer.metadata[`${p.optimizer}.step`] !== undefined);
    const states: Partial<Record<SemiCutOptimizerKey, AdamState>> = {};
    let expected = 0;
    for (const p of present) {
      const variables = networks[p.field].variables;
      if (variables.size === 0) {
        throw new ModelFormatError(`holds optimiser ${p.optimizer} but ${p.network} has no heads in checkpoint.json`, {
          file: optimizerFile,
        });
      }
      states[p.optimizerKey] = optimizerState(optimizer.tensors, optimizer.metadata, p.optimizer, variables, optimizerFile);
      expected += 2 * variables.size;
    }
    for (const p of SEMI_CUT_PARTS.filter((part) => SEMI_CUT_ALWAYS_OPTIMIZED.includes(part.optimizerKey))) {
      if (states[p.optimizerKey] === undefined)
        throw new ModelFormatError(`no state for optimiser ${p.optimizer} (no __metadata__ ${p.optimizer}.step)`, { file: optimizerFile });
    }
    checkNoStrayMoments(
      optimizer.tensors,
      present.map((p) => p.optimizer),
      expected,
      optimizerFile,
    );

    return {
      manifest,
      networks,
      optimizerStates: {
        G: states.G as AdamState,
        D: states.D as AdamState,
        Dp: states.Dp as AdamState,
        ...(states.F !== undefined ? { F: states.F } : {}),
        ...(states.Fs !== undefined ? { Fs: states.Fs } : {}),
      },
      state: {
        epoch: training.epoch,
        iteration: training.iteration,
        epochIter: training.epochIter ?? 0,
        options: (training.options ?? {}) as Record<string, unknown>,
        rng: rngJson.rng,
      },
      folder,
    };
  } catch (error) {
    for (const net of built) net.dispose();
    throw error;
  }
}
