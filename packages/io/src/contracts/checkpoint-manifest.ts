/**
 * `scenimefy-checkpoint` v1: a folder holding `checkpoint.json` (this contract) and `weights.safetensors`, plus
 * `optimizer.safetensors` and `rng.json` when training can resume from it. The manifest says which networks
 * the weights hold and how they were built; on resume the architecture is read from here, never from flags.
 */
import { z } from 'zod';

import { byteSizeSchema, fileNameSchema, headerShape, jsonValueSchema, sha256Schema, type Contract, type ContractIssue } from './common';

const channels = z.int().positive();

/** The translation generator `netG`: CUT's ResnetGenerator (SPEC §1). */
export const generatorConfigSchema = z
  .strictObject({
    architecture: z.enum(['resnet_9blocks']),
    ngf: channels.meta({ description: 'Filters of the first conv (reference: 64).' }),
    inputNc: channels,
    outputNc: channels,
    antialias: z.boolean().meta({ description: 'Antialiased (blur-pool) downsampling; reference: true.' }),
    antialiasUp: z.boolean().meta({ description: 'Antialiased upsampling; reference: true.' }),
    norm: z.enum(['instance']),
  })
  .meta({ description: 'The generator netG (CUT ResnetGenerator).' });
export type GeneratorConfig = z.infer<typeof generatorConfigSchema>;

/** A PatchGAN discriminator, `netD` (input 3 channels) or the conditional `netD_p` (photo ‖ anime, 6 channels), SPEC §3. */
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

/** A patch projection head, `netF` (SRC/hDCE) or `netF_s` (StylePatchNCE): one MLP per tapped layer, SPEC §4. */
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

export const checkpointNetworksSchema = z
  .strictObject({
    netG: generatorConfigSchema,
    netD: discriminatorConfigSchema.optional(),
    netD_p: discriminatorConfigSchema.optional(),
    netF: patchSamplerConfigSchema.optional(),
    netF_s: patchSamplerConfigSchema.optional(),
  })
  .meta({ description: 'The networks whose tensors the weights file holds.' });
export type CheckpointNetworks = z.infer<typeof checkpointNetworksSchema>;
export type NetworkName = keyof CheckpointNetworks;

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

/**
 * `checkpoint.json`: which networks a checkpoint folder holds, how they are built, where its weights are and,
 * for training checkpoints, how far training got. Tensors in the weights file are named
 * `<network>.<reference state_dict key>` (`netG.model.1.weight`), so a checkpoint round-trips to PyTorch.
 *
 * Example:
 * ```json
 * { "format": "scenimefy-checkpoint", "formatVersion": 1,
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
    ...headerShape('scenimefy-checkpoint', 1),
    networks: checkpointNetworksSchema,
    tensorNaming: z
      .literal('network-prefixed-state-dict')
      .meta({ description: 'Tensor names are "<network>.<reference state_dict key>", e.g. "netG.model.1.weight".' }),
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
export type CheckpointManifest = z.infer<typeof checkpointManifestSchema>;

function checkpointCrossFieldIssues(m: CheckpointManifest): ContractIssue[] {
  const issues: ContractIssue[] = [];
  const { netG, netD, netD_p } = m.networks;
  for (const name of ['netF', 'netF_s'] as const) {
    const f = m.networks[name];
    if (f === undefined) continue;
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

export const checkpointContract: Contract<CheckpointManifest> = Object.freeze({
  format: 'scenimefy-checkpoint',
  formatVersion: 1,
  fileName: 'checkpoint.json',
  title: 'Scenimefy checkpoint manifest',
  schema: checkpointManifestSchema,
  crossFieldIssues: checkpointCrossFieldIssues,
});
