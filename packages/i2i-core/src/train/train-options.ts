/**
 * The options of a `semi_cut` training run (what `scenimefy train` takes): the model's group (options.ts) and
 * the run's settings, flat and JSON-safe so a run can dump them into run.json / options.txt with the
 * non-defaults marked, and resume from them. Declared once, as option groups; the defaults, validation,
 * options.txt, the non-default list and the CLI flags are derived. The defaults are the reference run
 * (`train.sh` over CUT's base/train options, SPEC §6).
 */
import { z } from 'zod';

import { formatOptionsText, nonDefaultOptionNames, optionDefaults, pickOptions, resolveOptions } from '../options/derive';
import { booleanOption, integerOption, numberOption, optionSetRegistry, stringOption, type OptionsSchema } from '../options/option-schema';
import { DEFAULT_CROP_SIZE, DEFAULT_DATA_SEED, DEFAULT_LOAD_SIZE } from './data';
import { TRAIN_HEADINGS, checkSemiCutOptions, semiCutOptionsSchema } from './options';
import type { SemiCutOptions } from './options';
import { runLoopOptionShape } from './run-options';

const { architecture, data, run } = TRAIN_HEADINGS;

/** Run settings that are not part of the model's arithmetic, in options.txt order. */
export const trainRunSettingsSchema = z.strictObject({
  ngf: integerOption({
    default: 64,
    min: 1,
    help: 'generator width (filters of its first conv)',
    flag: '--ngf <n>',
    heading: architecture,
  }),
  ndf: integerOption({ default: 64, min: 1, help: 'discriminator width (D and D_p)', flag: '--ndf <n>', heading: architecture }),
  nLayersD: integerOption({
    default: 3,
    min: 1,
    help: 'strided conv layers of the PatchGAN discriminators',
    flag: '--n-layers-d <n>',
    heading: architecture,
  }),
  netFNc: integerOption({
    default: 256,
    min: 1,
    help: 'output width of the patch projection heads netF / netF_s',
    flag: '--netf-nc <n>',
    heading: architecture,
  }),
  initGain: numberOption({
    default: 0.02,
    min: 0,
    exclusive: true,
    help: 'gain of the xavier-normal init of every network',
    flag: '--init-gain <g>',
    heading: architecture,
  }),
  batchSize: integerOption({
    default: 1,
    min: 1,
    help: '1 reproduces the reference; >1 uses per-sample patch ids and relation matrices (the reference crashes there)',
    flag: '--batch-size <n>',
    heading: data,
  }),
  loadSize: integerOption({
    default: DEFAULT_LOAD_SIZE,
    min: 3,
    help: 'square bicubic resize of every training image (aspect ratio not kept, as the reference)',
    flag: '--load-size <px>',
    heading: data,
  }),
  cropSize: integerOption({
    default: DEFAULT_CROP_SIZE,
    min: 3,
    help: 'square random crop after the resize (paired images share one crop)',
    flag: '--crop-size <px>',
    heading: data,
  }),
  noFlip: booleanOption({
    default: false,
    help: 'no random horizontal flip of the unpaired images (paired images are never flipped)',
    flag: '--no-flip',
    heading: data,
  }),
  phase: stringOption({
    default: 'train',
    pattern: /^[^/\\]+$/,
    description: 'a folder-name prefix such as "train"',
    help: 'dataset folders are <phase>A and <phase>B',
    flag: '--phase <name>',
    heading: data,
  }),
  seed: integerOption({
    default: DEFAULT_DATA_SEED,
    min: 0,
    help: 'seed of every random choice: data order, flips, crops, init, patch ids',
    flag: '--seed <n>',
    heading: data,
  }),
  ...runLoopOptionShape({ saveEvery: 5000, keep: 3, sampleEvery: 400, logEvery: 100 }, { schedule: TRAIN_HEADINGS.schedule, run }),
  prefetch: integerOption({
    default: 4,
    min: 0,
    help: 'images decoded ahead of the model per dataset (decoding runs beside training)',
    flag: '--prefetch <n>',
    heading: data,
    onResume: 'override',
  }),
  // Same numbers either way: TF.js keeps every taped tensor and gradient until the step's gradients are done,
  // so recomputing the ResnetBlocks in the backward pass is what lets a 256² step fit in a few GB.
  gradientCheckpointing: booleanOption({
    default: true,
    help: "keep the generator's ResnetBlock activations instead of recomputing them in the backward pass: ~25% faster steps, several times the memory (a 256² step then needs tens of GB)",
    flag: '--no-gradient-checkpointing',
    heading: run,
    onResume: 'override',
  }),
}) satisfies OptionsSchema;

export type TrainRunSettings = Readonly<z.output<typeof trainRunSettingsSchema>>;

/** Every option of a semi_cut run: the model's group, then the run's settings. */
export const trainOptionsSchema = z
  .strictObject({ ...semiCutOptionsSchema.shape, ...trainRunSettingsSchema.shape })
  .superRefine((o, ctx) => {
    checkSemiCutOptions(o, ctx);
    if (o.loadSize < o.cropSize) {
      ctx.addIssue({
        code: 'custom',
        path: ['loadSize'],
        message: `must be at least the crop size (${o.cropSize}): images are resized, then cropped`,
      });
    }
  }) satisfies OptionsSchema;
optionSetRegistry.add(trainOptionsSchema, { headings: Object.values(TRAIN_HEADINGS) });

/** Every option of a run. */
export type TrainOptions = Readonly<z.output<typeof trainOptionsSchema>>;

export const TRAIN_RUN_DEFAULTS: TrainRunSettings = optionDefaults(trainRunSettingsSchema);

/** The reference run's options. */
export const TRAIN_DEFAULTS: TrainOptions = optionDefaults(trainOptionsSchema);

/** The defaults overridden by `options`, checked (`training options: ngf: must be an integer ≥ 1, got 0`); unknown names are refused. */
export function resolvedTrainOptions(options: Partial<TrainOptions> = {}): TrainOptions {
  return resolveOptions(trainOptionsSchema, options, { what: 'training options' });
}

/** The model's share of the run options. */
export function pickSemiCutOptions(options: TrainOptions): SemiCutOptions {
  return pickOptions<SemiCutOptions>(semiCutOptionsSchema, options);
}

/** Names of the options whose value differs from the reference run's, in option order. */
export function nonDefaultOptions(options: TrainOptions): string[] {
  return nonDefaultOptionNames(trainOptionsSchema, options);
}

/** CUT's `print_options` layout: one `name: value [default: d]` line per option, the default shown only where it differs. */
export function formatTrainOptions(options: TrainOptions): string {
  return formatOptionsText(trainOptionsSchema, options);
}
