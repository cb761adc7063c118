/**
 * `scenimefy-checkpoint` v2: a folder holding `checkpoint.json` (this contract) and `weights.safetensors`, plus
 * `optimizer.safetensors` and `rng.json` when training can resume from it. The manifest says which networks the
 * weights hold and how each is built; on resume the architecture is read from here, never from flags.
 *
 * v2 records any set of named networks (`{ netG, netD, netD_p, netF, netF_s }` of semi_cut, `{ g, d, g_ema }` of
 * the StyleGAN2 stage, …), each with its architecture config, and the optimisers by name. v1 (semi_cut's five
 * fixed names, `netG` a ResNet-9) is still read: it is checked against its own schema and rules, then upgraded.
 *
 * Rules between networks that only hold for one model (semi_cut's netD judges netG's output, so netD.inputNc =
 * netG.outputNc …) are not part of v2: a name means something to its model, not to the contract, and another model
 * may use the same name differently. semi_cut's loader checks them (i2i-core train/semi-cut-checkpoint.ts); the
 * v1 contract, which is semi_cut's by definition, keeps them.
 */
import { z } from 'zod';

import {
  byteSizeSchema,
  fileNameSchema,
  headerShape,
  jsonValueSchema,
  olderContractVersion,
  sha256Schema,
  type Contract,
  type ContractIssue,
} from './common';

const channels = z.int().positive();

// ---------------------------------------------------------------------------------------------------------
// Network configs (shared by both versions where they agree)

const resnetFields = {
  ngf: channels.meta({ description: 'Filters of the first conv (reference: 64).' }),
  inputNc: channels,
  outputNc: channels,
  antialias: z.boolean().meta({ description: 'Antialiased (blur-pool) downsampling; reference: true.' }),
  antialiasUp: z.boolean().meta({ description: 'Antialiased upsampling; reference: true.' }),
  norm: z.enum(['instance']),
};

/** The translation generator `netG`: CUT's ResnetGenerator with nine residual blocks (SPEC §1). */
export const resnet9GeneratorConfigSchema = z
  .strictObject({ architecture: z.enum(['resnet_9blocks']), ...resnetFields })
  .meta({ description: 'The generator netG (CUT ResnetGenerator).' });

/** CUT's ResnetGenerator with any number of residual blocks. */
export const resnetNGeneratorConfigSchema = z
  .strictObject({
    architecture: z.enum(['resnet_Nblocks']),
    nBlocks: z.int().positive().meta({ description: 'Residual blocks at the bottleneck (the reference: 9, written as resnet_9blocks).' }),
    ...resnetFields,
  })
  .meta({ description: "CUT's ResnetGenerator with nBlocks residual blocks." });

/** A PatchGAN discriminator: semi_cut's `netD` (3 channels) or the conditional `netD_p` (photo ‖ anime, 6), SPEC §3. */
export const discriminatorConfigSchema = z
  .strictObject({
    architecture: z.enum(['basic']),
    ndf: channels.meta({ description: 'Filters of the first conv (reference: 64).' }),
    nLayers: z.int().positive().meta({ description: 'Strided conv layers (reference: 3).' }),
    inputNc: channels,
    norm: z.enum(['instance']),
    antialias: z.boolean(),
  })
  .meta({ description: 'A PatchGAN discriminator (netD, or the conditional netD_p).' });
export type DiscriminatorConfig = z.infer<typeof discriminatorConfigSchema>;

/** A patch projection head, semi_cut's `netF` (SRC/hDCE) or `netF_s` (StylePatchNCE): one MLP per tapped layer, SPEC §4. */
export const patchSamplerConfigSchema = z
  .strictObject({
    architecture: z.enum(['mlp_sample']),
    nc: channels.meta({ description: 'Output features of each MLP (reference: 256).' }),
    layers: z.array(z.int().nonnegative()).min(1).meta({ description: 'Generator encoder layers tapped (reference: [0, 4, 8, 12, 16]).' }),
    inputChannels: z
      .array(channels)
      .optional()
      .meta({ description: 'Channels of each tapped layer, one per `layers` entry; absent before the MLPs are created.' }),
  })
  .meta({ description: 'A patch projection head (PatchSampleF).' });
export type PatchSamplerConfig = z.infer<typeof patchSamplerConfigSchema>;

/** `torch.nn.Linear`: state dict `weight` [outFeatures, inFeatures] and, with `bias`, `bias` [outFeatures]. */
export const linearConfigSchema = z
  .strictObject({
    architecture: z.enum(['linear']),
    inFeatures: channels,
    outFeatures: channels,
    bias: z.boolean(),
  })
  .meta({ description: 'A linear layer (torch.nn.Linear).' });
export type LinearConfig = z.infer<typeof linearConfigSchema>;

/** Powers of two as the keys of a StyleGAN2 channel table: `"4"`, `"8"`, … */
const resolutionKey = z.string().regex(/^[1-9]\d*$/, 'must be a resolution such as "4" or "256"');
const channelTable = z
  .record(resolutionKey, channels)
  .meta({ description: 'Channels per resolution, every power of two from 4 to size: {"4": 512, …, "256": 128}.' });
const powerOfTwoSize = z.int().min(4).meta({ description: 'Output (or input) side in pixels, a power of two.' });
const blurKernel = z.array(z.number()).min(1).meta({ description: 'The 1-D FIR kernel of blur and resampling (reference: [1, 3, 3, 1]).' });

/** rosinality's StyleGAN2 `Generator` (SPEC §9), with its channel table written out rather than implied by the size. */
export const stylegan2GeneratorConfigSchema = z
  .strictObject({
    architecture: z.enum(['stylegan2_generator']),
    size: powerOfTwoSize,
    styleDim: channels.meta({ description: 'Latent (z and w) size (reference: 512).' }),
    nMlp: z.int().positive().meta({ description: 'Layers of the mapping network (reference: 8).' }),
    channelMultiplier: z.int().positive().meta({ description: 'The reference table multiplier (reference: 2); kept for export.' }),
    channels: channelTable,
    lrMlp: z.number().positive().meta({ description: 'Learning-rate multiplier of the mapping network (reference: 0.01).' }),
    blurKernel,
  })
  .meta({ description: "rosinality's StyleGAN2 generator." });
export type StyleGan2GeneratorConfig = z.infer<typeof stylegan2GeneratorConfigSchema>;

/** rosinality's StyleGAN2 `Discriminator` (residual, minibatch standard deviation). */
export const stylegan2DiscriminatorConfigSchema = z
  .strictObject({
    architecture: z.enum(['stylegan2_discriminator']),
    size: powerOfTwoSize,
    channelMultiplier: z.int().positive(),
    channels: channelTable,
    blurKernel,
    stddevGroup: z.int().positive().meta({ description: 'Minibatch-stddev group size (reference: 4).' }),
    stddevFeat: z.int().positive().meta({ description: 'Minibatch-stddev feature groups (reference: 1).' }),
  })
  .meta({ description: "rosinality's StyleGAN2 discriminator." });
export type StyleGan2DiscriminatorConfig = z.infer<typeof stylegan2DiscriminatorConfigSchema>;

/** Any network a checkpoint can hold, told apart by `architecture`. */
export const networkConfigSchema = z
  .discriminatedUnion('architecture', [
    resnet9GeneratorConfigSchema,
    resnetNGeneratorConfigSchema,
    discriminatorConfigSchema,
    patchSamplerConfigSchema,
    linearConfigSchema,
    stylegan2GeneratorConfigSchema,
    stylegan2DiscriminatorConfigSchema,
  ])
  .meta({ description: 'A network and how it is built.' });
export type NetworkConfig = z.infer<typeof networkConfigSchema>;
export type NetworkArchitecture = NetworkConfig['architecture'];

/** The ResNet generators (nine blocks, as the reference's netG, or any number). */
export type GeneratorConfig = z.infer<typeof resnet9GeneratorConfigSchema> | z.infer<typeof resnetNGeneratorConfigSchema>;

/** A network's name: the prefix of its tensors (`netG.model.1.weight`), so no dot. */
const networkNameSchema = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be an identifier such as netG or g_ema (letters, digits, _)');

export const checkpointNetworksSchema = z
  .record(networkNameSchema, networkConfigSchema)
  .meta({ description: 'The networks whose tensors the weights file holds, by name (the tensor prefix).' });
export type CheckpointNetworks = z.infer<typeof checkpointNetworksSchema>;
export type NetworkName = string;

/** An optimiser of a training checkpoint; its moments and step count are in optimizer.safetensors under its name. */
export const checkpointOptimizerSchema = z
  .strictObject({
    algorithm: z.literal('adam').meta({ description: 'torch.optim.Adam (no weight decay, no amsgrad).' }),
    networks: z.array(networkNameSchema).min(1).meta({ description: 'The networks whose parameters it updates.' }),
    lr: z.number().nonnegative(),
    betas: z.tuple([z.number().nonnegative(), z.number().nonnegative()]),
    eps: z.number().nonnegative(),
  })
  .meta({ description: 'An optimiser and its hyper-parameters.' });
export type CheckpointOptimizer = z.infer<typeof checkpointOptimizerSchema>;

export const checkpointWeightsSchema = z
  .strictObject({
    file: fileNameSchema.meta({ description: 'The safetensors file beside checkpoint.json (conventionally weights.safetensors).' }),
    sha256: sha256Schema,
    size: byteSizeSchema,
  })
  .meta({ description: 'The weights file and its digest.' });

export const checkpointTrainingSchema = z
  .strictObject({
    epoch: z.int().nonnegative(),
    iteration: z.int().nonnegative().meta({ description: 'Optimisation steps done in all.' }),
    epochIter: z.int().nonnegative().optional().meta({ description: 'Samples consumed in the current epoch.' }),
    optimizerFile: fileNameSchema.optional().meta({ description: 'Adam state (safetensors) for resuming.' }),
    rngFile: fileNameSchema.optional().meta({ description: 'Random generator state (JSON) for resuming.' }),
    options: z
      .record(z.string(), jsonValueSchema)
      .optional()
      .meta({ description: 'The resolved training options at the time of the checkpoint.' }),
  })
  .meta({ description: 'Where training stood; present in checkpoints written by training.' });
export type CheckpointTraining = z.infer<typeof checkpointTrainingSchema>;

export const checkpointSourceSchema = z
  .strictObject({
    kind: z.enum(['pytorch', 'scenimefy', 'onnx']),
    file: z.string().min(1).optional().meta({ description: 'The file imported, as given (e.g. Shinkai_net_G.pth).' }),
    sha256: sha256Schema.optional(),
  })
  .meta({ description: 'What the weights were imported or converted from.' });
export type CheckpointSource = z.infer<typeof checkpointSourceSchema>;

const tensorNamingSchema = z
  .literal('network-prefixed-state-dict')
  .meta({ description: 'Tensor names are "<network>.<reference state_dict key>", e.g. "netG.model.1.weight".' });

// ---------------------------------------------------------------------------------------------------------
// v2

/**
 * `checkpoint.json`: which networks a checkpoint folder holds, how each is built, where its weights are and, for
 * training checkpoints, the model that wrote it, its optimisers and how far training got. Tensors in the weights
 * file are named `<network>.<reference state_dict key>` (`netG.model.1.weight`), so a checkpoint round-trips to
 * PyTorch.
 *
 * Example:
 * ```json
 * { "format": "scenimefy-checkpoint", "formatVersion": 2,
 *   "generatedBy": { "name": "@scenimefy/cli", "version": "0.1.0" }, "createdAt": "2025-01-31T12:00:00.000Z",
 *   "networks": { "netG": { "architecture": "resnet_9blocks", "ngf": 64, "inputNc": 3, "outputNc": 3,
 *     "antialias": true, "antialiasUp": true, "norm": "instance" } },
 *   "tensorNaming": "network-prefixed-state-dict",
 *   "weights": { "file": "weights.safetensors", "sha256": "3bdece…", "size": 45570000 },
 *   "source": { "kind": "pytorch", "file": "Shinkai_net_G.pth" } }
 * ```
 */
export const checkpointManifestSchema = z
  .strictObject({
    ...headerShape('scenimefy-checkpoint', 2),
    model: z
      .string()
      .regex(/^[a-z][a-z0-9_]*$/, 'must be a model name such as semi_cut')
      .optional()
      .meta({ description: 'The training model that wrote the checkpoint and can resume from it (e.g. semi_cut).' }),
    networks: checkpointNetworksSchema,
    optimizers: z
      .record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be an identifier such as G or D_p'), checkpointOptimizerSchema)
      .optional()
      .meta({ description: 'The optimisers of a training checkpoint by name (their state is in training.optimizerFile).' }),
    tensorNaming: tensorNamingSchema,
    weights: checkpointWeightsSchema,
    training: checkpointTrainingSchema.optional(),
    source: checkpointSourceSchema.optional(),
  })
  .meta({
    description:
      'checkpoint.json of a Scenimefy.js checkpoint folder. Beyond this schema: at least one network; a patch head has one ' +
      'inputChannels entry per layer and no layer twice; a StyleGAN2 size is a power of two and its channel table lists every ' +
      'power of two from 4 to it; an optimiser updates networks the checkpoint holds; the weights, optimizer and RNG files are distinct.',
  });
export type CheckpointManifest = z.infer<typeof checkpointManifestSchema>;

function patchSamplerIssues(name: string, f: PatchSamplerConfig): ContractIssue[] {
  const issues: ContractIssue[] = [];
  const seen = new Set<number>();
  f.layers.forEach((layer, i) => {
    if (seen.has(layer)) issues.push({ path: ['networks', name, 'layers', i], message: `layer ${layer} is listed twice` });
    seen.add(layer);
  });
  if (f.inputChannels !== undefined && f.inputChannels.length !== f.layers.length) {
    issues.push({
      path: ['networks', name, 'inputChannels'],
      message: `has ${f.inputChannels.length} entries but layers has ${f.layers.length}; one per tapped layer`,
    });
  }
  return issues;
}

function channelTableIssues(name: string, config: { size: number; channels: Record<string, number> }): ContractIssue[] {
  const { size } = config;
  if ((size & (size - 1)) !== 0) return [{ path: ['networks', name, 'size'], message: `${size} is not a power of two` }];
  const want: string[] = [];
  for (let r = 4; r <= size; r *= 2) want.push(String(r));
  const have = Object.keys(config.channels);
  const missing = want.filter((r) => !have.includes(r));
  const extra = have.filter((r) => !want.includes(r));
  const issues: ContractIssue[] = [];
  if (missing.length > 0)
    issues.push({ path: ['networks', name, 'channels'], message: `lacks resolution ${missing.join(', ')} (needs 4 to ${size})` });
  if (extra.length > 0)
    issues.push({ path: ['networks', name, 'channels'], message: `has resolution ${extra.join(', ')} outside 4 to ${size}` });
  return issues;
}

function distinctFileIssues(m: {
  weights: { file: string };
  training?: { optimizerFile?: string; rngFile?: string } | undefined;
}): ContractIssue[] {
  const issues: ContractIssue[] = [];
  const files: Array<[ContractIssue['path'], string | undefined]> = [
    [['weights', 'file'], m.weights.file],
    [['training', 'optimizerFile'], m.training?.optimizerFile],
    [['training', 'rngFile'], m.training?.rngFile],
  ];
  const claimed = new Map<string, string>();
  for (const [where, name] of files) {
    if (name === undefined) continue;
    const owner = claimed.get(name);
    if (owner !== undefined) issues.push({ path: where, message: `"${name}" is already used by ${owner}` });
    else claimed.set(name, where.join('.'));
  }
  return issues;
}

function checkpointCrossFieldIssues(m: CheckpointManifest): ContractIssue[] {
  const issues: ContractIssue[] = [];
  const names = Object.keys(m.networks);
  if (names.length === 0) issues.push({ path: ['networks'], message: 'holds no network' });
  for (const [name, config] of Object.entries(m.networks)) {
    if (config.architecture === 'mlp_sample') issues.push(...patchSamplerIssues(name, config));
    if (config.architecture === 'stylegan2_generator' || config.architecture === 'stylegan2_discriminator') {
      issues.push(...channelTableIssues(name, config));
    }
  }
  for (const [name, optimizer] of Object.entries(m.optimizers ?? {})) {
    optimizer.networks.forEach((network, i) => {
      if (!Object.hasOwn(m.networks, network)) {
        issues.push({ path: ['optimizers', name, 'networks', i], message: `"${network}" is not one of networks (${names.join(', ')})` });
      }
    });
  }
  if (m.optimizers !== undefined && m.training?.optimizerFile === undefined) {
    issues.push({ path: ['optimizers'], message: 'needs training.optimizerFile, which holds their state' });
  }
  issues.push(...distinctFileIssues(m));
  return issues;
}

// ---------------------------------------------------------------------------------------------------------
// v1 (read, upgraded to v2)

export const checkpointNetworksV1Schema = z
  .strictObject({
    netG: resnet9GeneratorConfigSchema,
    netD: discriminatorConfigSchema.optional(),
    netD_p: discriminatorConfigSchema.optional(),
    netF: patchSamplerConfigSchema.optional(),
    netF_s: patchSamplerConfigSchema.optional(),
  })
  .meta({ description: 'The networks whose tensors the weights file holds.' });

/** `checkpoint.json` as Scenimefy.js 0.1 wrote it: semi_cut's five networks under fixed names, netG a ResNet-9. */
export const checkpointManifestV1Schema = z
  .strictObject({
    ...headerShape('scenimefy-checkpoint', 1),
    networks: checkpointNetworksV1Schema,
    tensorNaming: tensorNamingSchema,
    weights: checkpointWeightsSchema,
    training: checkpointTrainingSchema.optional(),
    source: checkpointSourceSchema.optional(),
  })
  .meta({
    description:
      'checkpoint.json of a Scenimefy.js checkpoint folder. Beyond this schema: netF/netF_s inputChannels has one entry per layer, ' +
      'layers are unique, netD.inputNc = netG.outputNc, netD_p.inputNc = netG.inputNc + netG.outputNc, and the weights, ' +
      'optimizer and RNG files are distinct.',
  });
export type CheckpointManifestV1 = z.infer<typeof checkpointManifestV1Schema>;

function checkpointV1CrossFieldIssues(m: CheckpointManifestV1): ContractIssue[] {
  const issues: ContractIssue[] = [];
  const { netG, netD, netD_p } = m.networks;
  for (const name of ['netF', 'netF_s'] as const) {
    const f = m.networks[name];
    if (f !== undefined) issues.push(...patchSamplerIssues(name, f));
  }
  if (netD !== undefined && netD.inputNc !== netG.outputNc) {
    issues.push({
      path: ['networks', 'netD', 'inputNc'],
      message: `is ${netD.inputNc} but netD judges netG's output, which has ${netG.outputNc} channels`,
    });
  }
  if (netD_p !== undefined && netD_p.inputNc !== netG.inputNc + netG.outputNc) {
    issues.push({
      path: ['networks', 'netD_p', 'inputNc'],
      message: `is ${netD_p.inputNc} but netD_p sees photo and anime stacked, netG.inputNc + netG.outputNc = ${netG.inputNc + netG.outputNc}`,
    });
  }
  issues.push(...distinctFileIssues(m));
  return issues;
}

/** v1 as v2: the same networks under the same names; a training checkpoint of v1 was always semi_cut's. */
function upgradeCheckpointV1(old: CheckpointManifestV1): CheckpointManifest {
  const networks: CheckpointNetworks = {};
  for (const [name, config] of Object.entries(old.networks)) if (config !== undefined) networks[name] = config;
  return {
    format: old.format,
    formatVersion: 2,
    generatedBy: old.generatedBy,
    createdAt: old.createdAt,
    ...(old.training !== undefined ? { model: 'semi_cut' } : {}),
    networks,
    tensorNaming: old.tensorNaming,
    weights: old.weights,
    ...(old.training !== undefined ? { training: old.training } : {}),
    ...(old.source !== undefined ? { source: old.source } : {}),
  };
}

/** The v1 contract on its own: its schema and rules, as v1 files are checked before their upgrade (and for its JSON Schema). */
export const checkpointContractV1: Contract<CheckpointManifestV1> = Object.freeze({
  format: 'scenimefy-checkpoint',
  formatVersion: 1,
  fileName: 'checkpoint.json',
  title: 'Scenimefy checkpoint manifest',
  schema: checkpointManifestV1Schema,
  crossFieldIssues: checkpointV1CrossFieldIssues,
});

export const checkpointContract: Contract<CheckpointManifest> = Object.freeze({
  format: 'scenimefy-checkpoint',
  formatVersion: 2,
  fileName: 'checkpoint.json',
  title: 'Scenimefy checkpoint manifest',
  schema: checkpointManifestSchema,
  crossFieldIssues: checkpointCrossFieldIssues,
  olderVersions: [
    olderContractVersion<CheckpointManifest, CheckpointManifestV1>({
      formatVersion: 1,
      schema: checkpointManifestV1Schema,
      crossFieldIssues: checkpointV1CrossFieldIssues,
      upgrade: upgradeCheckpointV1,
    }),
  ],
});
