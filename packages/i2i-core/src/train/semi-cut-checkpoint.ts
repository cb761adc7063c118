/**
 * semi_cut's training checkpoints: its five networks and optimisers (train/semi-cut-parts.ts) written and read by
 * the generic model checkpoint (model-checkpoint.ts, scenimefy-checkpoint v2; v1 folders still load):
 * - `weights.safetensors`: tensors `<network>.<state_dict key>` with networks netG, netD, netD_p, netF, netF_s (the
 *   reference's names), so the generator loaders read it as is;
 * - `optimizer.safetensors`: the Adam moments of optimisers G, D, D_p, F, F_s in PyTorch layout, with their step
 *   counts and hyper-parameters in `__metadata__` (`G.step`, `G.lr`, …);
 * - `rng.json`: `{ "rng": <the run loop's RNG states>, "patchIds": { netF, netF_s: { seed, state } } }`;
 * - `checkpoint.json`: model `semi_cut`, the five architectures, the optimisers, the weights' digest and size.
 * Loading checks what the v2 contract leaves to the model: all five networks, of semi_cut's architectures, wired
 * as semi_cut wires them (netD judges netG's output, netD_p photo and anime stacked).
 *
 * The folders are written, found and pruned by the generic store (store/checkpoint-store.ts: temp folder and
 * rename, newest complete, keep-last-k), so a kill at any moment leaves the newest complete checkpoint intact.
 */
import {
  ContractError,
  ModelFormatError,
  type CheckpointManifest,
  type DiscriminatorConfig,
  type GeneratedBy,
  type GeneratorConfig,
  type JsonValue,
  type NetworkConfig,
  type PatchSamplerConfig,
  type TensorMap,
} from '@scenimefy/io';

import type { Tf } from '../layers/tf';
import { createPatchDiscriminator, type PatchDiscriminator } from '../networks/discriminator';
import { createResnetGenerator, loadGeneratorWeights, type ResnetGenerator } from '../networks/generator';
import { createPatchSampleF, type PatchIdRngState, type PatchSampleF } from '../networks/patch-sample';
import { shapeText } from '../networks/state-dict';
import {
  CHECKPOINTS_FOLDER,
  checkpointFolderFor,
  checkpointFolderName,
  latestCheckpoint,
  pruneCheckpoints,
} from '../store/checkpoint-store';
import type { AdamState } from './adam';
import { adamStateFromTensors, checkOptimizerTensors, hasAdamState } from './adam-state';
import {
  readModelCheckpoint,
  saveModelCheckpoint,
  type CheckpointableModel,
  type ReadTrainingCheckpoint,
  type TrainingCheckpointState,
} from './model-checkpoint';
import type { SemiCutModel, SemiCutNetworks, SemiCutOptimizerStates } from './semi-cut';
import { SEMI_CUT_ALWAYS_OPTIMIZED, SEMI_CUT_PARTS, type SemiCutOptimizerKey } from './semi-cut-parts';
import type { TrainableNetwork, TrainableOptimizer } from './trainable-model';

// The folder mechanics live in the generic store; re-exported for the modules and tests that use them with checkpoints.
export { CHECKPOINTS_FOLDER, checkpointFolderFor, checkpointFolderName, latestCheckpoint, pruneCheckpoints };
export type { TrainingCheckpointState };

/** The model name semi_cut's checkpoints record. */
export const SEMI_CUT_MODEL_NAME = 'semi_cut';

export interface LoadedTrainingCheckpoint {
  /** checkpoint.json, in v2 (a v1 one upgraded). */
  manifest: CheckpointManifest;
  /** Built from the manifest's configs with the checkpoint's weights; netF / netF_s also get their seed and patch-id stream back. */
  networks: SemiCutNetworks;
  /** Adam states in the variables' own layout, ready for `Adam.loadState`; F / Fs only when those optimisers existed at save time (after `dataDependentInit`). */
  optimizerStates: { G: AdamState; D: AdamState; Dp: AdamState; F?: AdamState; Fs?: AdamState };
  state: TrainingCheckpointState;
  /** The checkpoint folder it was read from. */
  folder: string;
}

// ---------------------------------------------------------------------------------------------------------
// Save

function generatorConfigOf(netG: ResnetGenerator): GeneratorConfig {
  const c = netG.config;
  const common = { ngf: c.ngf, inputNc: c.inputNc, outputNc: c.outputNc, antialias: true, antialiasUp: true, norm: 'instance' } as const;
  return c.nBlocks === 9
    ? { architecture: 'resnet_9blocks', ...common }
    : { architecture: 'resnet_Nblocks', nBlocks: c.nBlocks, ...common };
}

function discriminatorConfigOf(net: PatchDiscriminator): DiscriminatorConfig {
  const c = net.config;
  return { architecture: 'basic', ndf: c.ndf, nLayers: c.nLayers, inputNc: c.inputNc, norm: 'instance', antialias: true };
}

function patchSamplerConfigOf(net: PatchSampleF, layers: readonly number[]): PatchSamplerConfig {
  const channels = net.headChannels();
  return { architecture: 'mlp_sample', nc: net.nc, layers: [...layers], ...(channels.length > 0 ? { inputChannels: channels } : {}) };
}

/** semi_cut's networks as checkpoint parts, in the file's order (SEMI_CUT_PARTS). */
export function semiCutTrainableNetworks(model: SemiCutModel): Map<string, TrainableNetwork> {
  const n = model.networks;
  const layers = model.options.nceLayers;
  const architecture: Record<(typeof SEMI_CUT_PARTS)[number]['field'], () => NetworkConfig> = {
    netG: () => generatorConfigOf(n.netG),
    netD: () => discriminatorConfigOf(n.netD),
    netDp: () => discriminatorConfigOf(n.netDp),
    netF: () => patchSamplerConfigOf(n.netF, layers),
    netFs: () => patchSamplerConfigOf(n.netFs, layers),
  };
  return new Map(
    SEMI_CUT_PARTS.map((p) => {
      const net = n[p.field];
      return [p.network, { architecture: architecture[p.field], stateDict: () => net.stateDict(), variables: net.variables }];
    }),
  );
}

/** The optimisers the model has now (F and F_s once the heads exist), under their checkpoint names. */
export function semiCutTrainableOptimizers(model: SemiCutModel): Map<string, TrainableOptimizer> {
  const out = new Map<string, TrainableOptimizer>();
  for (const p of SEMI_CUT_PARTS) {
    const adam = model.optimizers[p.optimizerKey];
    if (adam !== undefined) out.set(p.optimizer, { networks: [p.network], adam });
  }
  return out;
}

/** rng.json's `patchIds`: each head's seed and id stream. */
export function semiCutSaveState(model: SemiCutModel): Record<string, JsonValue> {
  const patchIds: Record<string, JsonValue> = {};
  for (const [name, net] of [
    ['netF', model.networks.netF],
    ['netF_s', model.networks.netFs],
  ] as const) {
    patchIds[name] = { seed: net.seed, state: net.rngState() as unknown as JsonValue };
  }
  return { patchIds };
}

/** A SemiCutModel as the generic checkpoint writer sees it. */
export function semiCutCheckpointable(model: SemiCutModel): CheckpointableModel {
  return {
    name: SEMI_CUT_MODEL_NAME,
    networks: () => semiCutTrainableNetworks(model),
    optimizers: () => semiCutTrainableOptimizers(model),
    saveState: () => semiCutSaveState(model),
  };
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
export function saveTrainingCheckpoint(
  folder: string,
  model: SemiCutModel,
  state: TrainingCheckpointState,
  meta: { generatedBy: GeneratedBy },
): Promise<CheckpointManifest> {
  return saveModelCheckpoint(folder, semiCutCheckpointable(model), state, meta);
}

// ---------------------------------------------------------------------------------------------------------
// Load

type Architecture<A extends NetworkConfig['architecture']> = Extract<NetworkConfig, { architecture: A }>;

function requiredNetwork<A extends NetworkConfig['architecture']>(
  manifest: CheckpointManifest,
  name: string,
  architectures: readonly A[],
  file: string,
): Architecture<A> {
  const config = manifest.networks[name];
  if (config === undefined) throw new ContractError('a training checkpoint needs all five networks', { file, field: `networks.${name}` });
  if (!(architectures as readonly string[]).includes(config.architecture)) {
    throw new ContractError(`is ${config.architecture}; semi_cut's ${name} is ${architectures.join(' or ')}`, {
      file,
      field: `networks.${name}.architecture`,
    });
  }
  return config as Architecture<A>;
}

interface SemiCutConfigs {
  netG: GeneratorConfig;
  netD: DiscriminatorConfig;
  netD_p: DiscriminatorConfig;
  netF: PatchSamplerConfig;
  netF_s: PatchSamplerConfig;
}

/** The five configs of a semi_cut checkpoint, checked as semi_cut wires them. */
function semiCutConfigs(manifest: CheckpointManifest, file: string): SemiCutConfigs {
  if (manifest.model !== undefined && manifest.model !== SEMI_CUT_MODEL_NAME) {
    throw new ContractError(`is a ${manifest.model} checkpoint; semi_cut cannot resume it`, { file, field: 'model' });
  }
  const netG = requiredNetwork(manifest, 'netG', ['resnet_9blocks', 'resnet_Nblocks'], file);
  const netD = requiredNetwork(manifest, 'netD', ['basic'], file);
  const netDp = requiredNetwork(manifest, 'netD_p', ['basic'], file);
  const netF = requiredNetwork(manifest, 'netF', ['mlp_sample'], file);
  const netFs = requiredNetwork(manifest, 'netF_s', ['mlp_sample'], file);
  // The wiring v2 leaves to the model: netD judges G's output, netD_p sees photo ‖ anime.
  if (netD.inputNc !== netG.outputNc) {
    throw new ContractError(`is ${netD.inputNc} but netD judges netG's output, which has ${netG.outputNc} channels`, {
      file,
      field: 'networks.netD.inputNc',
    });
  }
  if (netDp.inputNc !== netG.inputNc + netG.outputNc) {
    throw new ContractError(
      `is ${netDp.inputNc} but netD_p sees photo and anime stacked, netG.inputNc + netG.outputNc = ${netG.inputNc + netG.outputNc}`,
      { file, field: 'networks.netD_p.inputNc' },
    );
  }
  if (!netG.antialias || !netG.antialiasUp) {
    throw new ModelFormatError('netG without antialiased down/upsampling is not supported (networks.netG.antialias/antialiasUp)', { file });
  }
  for (const [name, config] of [
    ['netD', netD],
    ['netD_p', netDp],
  ] as const) {
    if (!config.antialias) {
      throw new ModelFormatError(`${name} without antialiased downsampling is not supported (networks.${name}.antialias)`, { file });
    }
  }
  return { netG, netD, netD_p: netDp, netF, netF_s: netFs };
}

/** semi_cut's checks of a checkpoint.json (run before its weights are read). */
export function checkSemiCutManifest(manifest: CheckpointManifest, file: string): void {
  semiCutConfigs(manifest, file);
}

interface PatchIdsEntry {
  seed: number;
  state: PatchIdRngState;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function patchIdsOf(extra: Record<string, unknown>, file: string): Record<string, PatchIdsEntry | undefined> {
  const patchIds: Record<string, PatchIdsEntry | undefined> = {};
  const given = extra['patchIds'];
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
  return patchIds;
}

function buildPatchSampler(
  tf: Tf,
  name: 'netF' | 'netF_s',
  config: PatchSamplerConfig,
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

/** The five networks and the optimiser states of a checkpoint read by `readModelCheckpoint`. */
export function semiCutFromCheckpoint(tf: Tf, checkpoint: ReadTrainingCheckpoint): LoadedTrainingCheckpoint {
  const { manifest, weights, files } = checkpoint;
  const configs = semiCutConfigs(manifest, files.manifest);
  const patchIds = patchIdsOf(checkpoint.extra, files.rng);
  const built: Array<{ dispose(): void }> = [];
  const keep = <T extends { dispose(): void }>(net: T): T => {
    built.push(net);
    return net;
  };
  try {
    const g = configs.netG;
    const generator = loadGeneratorWeights(weights, {
      prefix: 'netG.',
      source: files.weights,
      config: { ngf: g.ngf, inputNc: g.inputNc, outputNc: g.outputNc, nBlocks: g.architecture === 'resnet_Nblocks' ? g.nBlocks : 9 },
    });
    const netG = keep(createResnetGenerator(tf, generator.config, { weights: generator }));
    const netD = keep(createPatchDiscriminator(tf, configs.netD, { weights, prefix: 'netD.', source: files.weights }));
    const netDp = keep(createPatchDiscriminator(tf, configs.netD_p, { weights, prefix: 'netD_p.', source: files.weights }));
    const sources = { weights: files.weights, rng: files.rng };
    const netF = keep(buildPatchSampler(tf, 'netF', configs.netF, weights, patchIds['netF'], sources));
    const netFs = keep(buildPatchSampler(tf, 'netF_s', configs.netF_s, weights, patchIds['netF_s'], sources));
    const networks: SemiCutNetworks = { netG, netD, netDp, netF, netFs };

    const { tensors, metadata } = checkpoint.optimizer;
    const present = SEMI_CUT_PARTS.filter((p) => hasAdamState(metadata, p.optimizer));
    const states: Partial<Record<SemiCutOptimizerKey, AdamState>> = {};
    let expected = 0;
    for (const p of present) {
      const variables = networks[p.field].variables;
      if (variables.size === 0) {
        throw new ModelFormatError(`holds optimiser ${p.optimizer} but ${p.network} has no heads in checkpoint.json`, {
          file: files.optimizer,
        });
      }
      states[p.optimizerKey] = adamStateFromTensors(tensors, metadata, p.optimizer, variables, files.optimizer);
      expected += 2 * variables.size;
    }
    for (const p of SEMI_CUT_PARTS.filter((part) => SEMI_CUT_ALWAYS_OPTIMIZED.includes(part.optimizerKey))) {
      if (states[p.optimizerKey] === undefined)
        throw new ModelFormatError(`no state for optimiser ${p.optimizer} (no __metadata__ ${p.optimizer}.step)`, {
          file: files.optimizer,
        });
    }
    checkOptimizerTensors(
      tensors,
      present.map((p) => p.optimizer),
      expected,
      files.optimizer,
    );
    const optimizerStates: SemiCutOptimizerStates = {
      G: states.G as AdamState,
      D: states.D as AdamState,
      Dp: states.Dp as AdamState,
      ...(states.F !== undefined ? { F: states.F } : {}),
      ...(states.Fs !== undefined ? { Fs: states.Fs } : {}),
    };
    return { manifest, networks, optimizerStates, state: checkpoint.state, folder: checkpoint.folder };
  } catch (error) {
    for (const net of built) net.dispose();
    throw error;
  }
}

/**
 * Reads a checkpoint written by `saveTrainingCheckpoint` (v2, or v1 of Scenimefy.js 0.1): checks the weights
 * file's size and sha256 against checkpoint.json, builds the five networks from the manifest's configs with those
 * weights, and returns the Adam states and training state. Errors name the file: IntegrityError for a truncated
 * or altered weights file, ModelFormatError for tensors that do not fit the architectures, ContractError for a bad
 * checkpoint.json (or one of another model) or rng.json.
 *
 * Example:
 *   const ckpt = await loadTrainingCheckpoint(tf, (await latestCheckpoint(run))!);
 *   const model = createSemiCutModel(tf, ckpt.networks, { options, epoch: ckpt.state.epoch });
 *   model.loadOptimizerStates(ckpt.optimizerStates);
 */
export async function loadTrainingCheckpoint(tf: Tf, folder: string): Promise<LoadedTrainingCheckpoint> {
  return semiCutFromCheckpoint(tf, await readModelCheckpoint(folder, { checkManifest: checkSemiCutManifest }));
}
