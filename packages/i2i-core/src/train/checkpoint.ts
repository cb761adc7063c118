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
 * Crash safety: a checkpoint is written whole into a hidden sibling `.iter-….tmp-<pid>-<hex>` (each file fsynced)
 * and renamed into place, which is atomic on POSIX. Re-saving an existing folder moves the old one aside as
 * `.iter-….old-<pid>-<hex>` first; a crash between the two renames leaves that complete old folder, which
 * `latestCheckpoint` still finds and the next save or prune puts back. Pruning renames a folder to
 * `.iter-….deleting-<pid>-<hex>` before removing it, so a half-deleted checkpoint never carries a final name.
 * Killing the process at any moment therefore leaves every final-named folder complete.
 */
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';

import {
  ContractError,
  IntegrityError,
  ModelFormatError,
  UsageError,
  fsyncDir,
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

export const CHECKPOINTS_FOLDER = 'checkpoints';
export const WEIGHTS_FILE = 'weights.safetensors';
export const OPTIMIZER_FILE = 'optimizer.safetensors';
export const RNG_FILE = 'rng.json';
const MANIFEST_FILE = 'checkpoint.json';

const FINAL_NAME = /^iter-(\d{9,})$/;
/** Hidden work folders beside the final ones: `.<name>.<kind>-<pid>-<hex>`. */
const WORK_NAME = /^\.(.+)\.(tmp|old|deleting)-\d+-[0-9a-f]+$/;

/** `iter-000001000`: the folder name of the checkpoint after `iteration` steps. */
export function checkpointFolderName(iteration: number): string {
  if (!Number.isSafeInteger(iteration) || iteration < 0)
    throw new UsageError(`checkpoint iteration must be an integer ≥ 0, got ${String(iteration)}`);
  return `iter-${String(iteration).padStart(9, '0')}`;
}

/** `<runFolder>/checkpoints/iter-<9 digits>`: where a run keeps the checkpoint after `iteration` steps. */
export function checkpointFolderFor(runFolder: string, iteration: number): string {
  return path.join(runFolder, CHECKPOINTS_FOLDER, checkpointFolderName(iteration));
}

// ---------------------------------------------------------------------------------------------------------
// Names

/** Optimiser name in optimizer.safetensors for each optimiser of the model (the reference's network suffixes). */
const OPTIMIZER_NAMES = [
  ['G', 'G'],
  ['D', 'D'],
  ['Dp', 'D_p'],
  ['F', 'F'],
  ['Fs', 'F_s'],
] as const;
type OptimizerKey = (typeof OPTIMIZER_NAMES)[number][0];

/** Which network each optimiser updates, by model field and by checkpoint name. */
const OPTIMIZED_NETWORK: Record<OptimizerKey, keyof SemiCutNetworks> = { G: 'netG', D: 'netD', Dp: 'netDp', F: 'netF', Fs: 'netFs' };

// ---------------------------------------------------------------------------------------------------------
// Small file-system helpers

async function exists(p: string): Promise<boolean> {
  return (await fsp.stat(p).catch(() => undefined)) !== undefined;
}

function workName(finalName: string, kind: 'tmp' | 'old' | 'deleting'): string {
  return `.${finalName}.${kind}-${process.pid}-${randomBytes(6).toString('hex')}`;
}

/** Work folders of saves and prunes still running in this process: never cleaned as stale. */
const inFlight = new Set<string>();

/** Removes a folder by renaming it aside first, so no final-named folder is ever half deleted. */
async function removeFolder(folder: string): Promise<void> {
  const aside = path.join(path.dirname(folder), workName(path.basename(folder), 'deleting'));
  inFlight.add(aside);
  try {
    await fsp.rename(folder, aside);
    await fsyncDir(path.dirname(folder));
    await fsp.rm(aside, { recursive: true, force: true });
  } finally {
    inFlight.delete(aside);
  }
}

/**
 * Tidies `parent` after crashes: removes stale `.tmp` / `.deleting` work folders, puts back a complete `.old`
 * folder whose final name is missing (a crash while replacing it) and removes the other `.old` ones.
 */
async function cleanWorkFolders(parent: string): Promise<void> {
  const entries = await fsp.readdir(parent).catch(() => [] as string[]);
  const restored = new Set<string>();
  for (const entry of entries) {
    const m = WORK_NAME.exec(entry);
    const full = path.join(parent, entry);
    if (m === null || inFlight.has(full)) continue;
    const [, finalName, kind] = m as unknown as [string, string, string];
    if (kind === 'old') {
      const target = path.join(parent, finalName);
      if (!restored.has(finalName) && !(await exists(target)) && (await checkpointProblem(full)) === undefined) {
        await fsp.rename(full, target);
        await fsyncDir(parent);
        restored.add(finalName);
        continue;
      }
    }
    await fsp.rm(full, { recursive: true, force: true });
  }
}

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
  return [
    ['netG', n.netG],
    ['netD', n.netD],
    ['netD_p', n.netDp],
    ['netF', n.netF],
    ['netF_s', n.netFs],
  ];
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
  const target = path.resolve(folder);
  if (await exists(path.join(target, 'run.json'))) {
    throw new UsageError(`saveTrainingCheckpoint: ${target} is a run folder; save into checkpointFolderFor(runFolder, iteration)`);
  }
  const existing = await fsp.stat(target).catch(() => undefined);
  if (
    existing !== undefined &&
    (!existing.isDirectory() || (!(await exists(path.join(target, MANIFEST_FILE))) && (await fsp.readdir(target)).length > 0))
  ) {
    throw new UsageError(`saveTrainingCheckpoint: ${target} exists and holds no checkpoint.json; refusing to replace it`);
  }
  const options = checkedJson(state.options, 'options');
  const rng = checkedJson(state.rng, 'rng');
  const { networks, optimizers } = model;

  const parent = path.dirname(target);
  const finalName = path.basename(target);
  await fsp.mkdir(parent, { recursive: true });
  await cleanWorkFolders(parent);

  const tmp = path.join(parent, workName(finalName, 'tmp'));
  inFlight.add(tmp);
  try {
    await fsp.mkdir(tmp);

    const weights: TensorMap = new Map();
    for (const [name, net] of namedNetworks(networks)) {
      for (const [key, t] of await net.stateDict()) weights.set(`${name}.${key}`, float32Tensor(t.shape, t.data));
    }
    const weightsPath = path.join(tmp, WEIGHTS_FILE);
    await writeSafetensors(weightsPath, weights);

    const moments: TensorMap = new Map();
    const metadata: Record<string, string> = {};
    for (const [key, name] of OPTIMIZER_NAMES) {
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
    await writeCheckpointManifest(path.join(tmp, MANIFEST_FILE), manifest);
    await fsyncDir(tmp);
    await moveIntoPlace(tmp, target);
    return manifest;
  } finally {
    inFlight.delete(tmp);
    await fsp.rm(tmp, { recursive: true, force: true }).catch(() => undefined);
  }
}

/** Renames the finished work folder to `target`, replacing an existing folder of that name only after the new one is whole. */
async function moveIntoPlace(tmp: string, target: string): Promise<void> {
  const parent = path.dirname(target);
  if (!(await exists(target))) {
    await fsp.rename(tmp, target);
    await fsyncDir(parent);
    return;
  }
  const old = path.join(parent, workName(path.basename(target), 'old'));
  inFlight.add(old);
  try {
    await fsp.rename(target, old);
    await fsp.rename(tmp, target);
    await fsyncDir(parent);
    await fsp.rm(old, { recursive: true, force: true });
  } finally {
    inFlight.delete(old);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Completeness and discovery

/** Why `folder` is not a complete checkpoint (its manifest unreadable or invalid, a listed file missing or of the wrong size), or undefined. */
async function checkpointProblem(folder: string): Promise<string | undefined> {
  let manifest: CheckpointManifest;
  try {
    manifest = await readCheckpointManifest(path.join(folder, MANIFEST_FILE));
  } catch (error) {
    return (error as Error).message;
  }
  const weights = await fsp.stat(path.join(folder, manifest.weights.file)).catch(() => undefined);
  if (weights?.isFile() !== true) return `${manifest.weights.file} is missing`;
  if (weights.size !== manifest.weights.size)
    return `${manifest.weights.file} has ${weights.size} bytes, checkpoint.json says ${manifest.weights.size}`;
  for (const file of [manifest.training?.optimizerFile, manifest.training?.rngFile]) {
    if (file !== undefined && (await fsp.stat(path.join(folder, file)).catch(() => undefined))?.isFile() !== true)
      return `${file} is missing`;
  }
  return undefined;
}

interface Candidate {
  iteration: number;
  folder: string;
  /** A final-named folder (not a `.old` one left by a crash while replacing). */
  final: boolean;
}

/** Final-named checkpoint folders and orphaned `.old` ones (their final name missing), newest first. */
async function candidates(runFolder: string): Promise<Candidate[]> {
  const dir = path.join(runFolder, CHECKPOINTS_FOLDER);
  const entries = await fsp.readdir(dir).catch(() => [] as string[]);
  const finals = new Set(entries.filter((e) => FINAL_NAME.test(e)));
  const out: Candidate[] = [];
  for (const entry of entries) {
    const final = FINAL_NAME.exec(entry);
    if (final !== null) {
      out.push({ iteration: Number(final[1]), folder: path.join(dir, entry), final: true });
      continue;
    }
    const work = WORK_NAME.exec(entry);
    const name = work?.[1];
    const iteration = name === undefined ? null : FINAL_NAME.exec(name);
    if (work?.[2] === 'old' && name !== undefined && iteration !== null && !finals.has(name)) {
      out.push({ iteration: Number(iteration[1]), folder: path.join(dir, entry), final: false });
    }
  }
  return out.sort((a, b) => b.iteration - a.iteration || Number(b.final) - Number(a.final));
}

/**
 * The newest complete checkpoint folder of a run (`<runFolder>/checkpoints/iter-…`), or undefined when there is
 * none. Complete: checkpoint.json valid and every file it lists present, the weights with the recorded size.
 * Read-only: it never removes anything, so it is safe while a trainer writes into the run.
 */
export async function latestCheckpoint(runFolder: string): Promise<string | undefined> {
  for (const c of await candidates(runFolder)) {
    if ((await checkpointProblem(c.folder)) === undefined) return c.folder;
  }
  return undefined;
}

/** Accepts absolute paths, paths relative to the run folder (as run.json's `folder`) and bare folder names. */
function protectedFolders(runFolder: string, protect: readonly string[]): Set<string> {
  const out = new Set<string>();
  for (const p of protect) {
    out.add(path.resolve(runFolder, p));
    out.add(path.resolve(runFolder, CHECKPOINTS_FOLDER, p));
  }
  return out;
}

/**
 * Deletes every complete checkpoint of the run but the newest `keep` and those named in `protect` (absolute, relative
 * to the run folder, or bare names), oldest first; also clears work folders left by crashes. Folders that are not
 * complete checkpoints (e.g. of a newer format) are left alone. Returns the deleted folders.
 */
export async function pruneCheckpoints(runFolder: string, keep: number, protect: readonly string[] = []): Promise<string[]> {
  if (!Number.isSafeInteger(keep) || keep < 0) throw new UsageError(`pruneCheckpoints: keep must be an integer ≥ 0, got ${String(keep)}`);
  const dir = path.join(runFolder, CHECKPOINTS_FOLDER);
  await cleanWorkFolders(dir);
  const kept = protectedFolders(runFolder, protect);
  const complete: string[] = [];
  for (const c of await candidates(runFolder)) {
    if (c.final && (await checkpointProblem(c.folder)) === undefined) complete.push(c.folder);
  }
  const doomed = complete.slice(keep).filter((f) => !kept.has(path.resolve(f)));
  doomed.reverse();
  for (const folder of doomed) await removeFolder(folder);
  if (doomed.length > 0) await fsyncDir(dir);
  return doomed;
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
  const manifestFile = path.join(folder, MANIFEST_FILE);
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

    const present = OPTIMIZER_NAMES.filter(([, name]) => optimizer.metadata[`${name}.step`] !== undefined);
    const states: Partial<Record<OptimizerKey, AdamState>> = {};
    let expected = 0;
    for (const [key, name] of present) {
      const variables = networks[OPTIMIZED_NETWORK[key]].variables;
      if (variables.size === 0) {
        throw new ModelFormatError(`holds optimiser ${name} but ${OPTIMIZED_NETWORK[key]} has no heads in checkpoint.json`, {
          file: optimizerFile,
        });
      }
      states[key] = optimizerState(optimizer.tensors, optimizer.metadata, name, variables, optimizerFile);
      expected += 2 * variables.size;
    }
    for (const [key, name] of OPTIMIZER_NAMES.slice(0, 3)) {
      if (states[key] === undefined)
        throw new ModelFormatError(`no state for optimiser ${name} (no __metadata__ ${name}.step)`, { file: optimizerFile });
    }
    checkNoStrayMoments(
      optimizer.tensors,
      present.map(([, name]) => name),
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
