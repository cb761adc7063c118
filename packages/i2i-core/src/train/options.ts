/**
 * The training options of the `semi_cut` model that change its arithmetic (SPEC §6, §11), declared once as an
 * option group (options/option-schema.ts) with the reference defaults (`train.sh`), their help text and flags.
 * `SEMI_CUT_DEFAULTS`, the `SemiCutOptions` type and `resolvedSemiCutOptions` are derived from it.
 */
import { UsageError } from '@scenimefy/io/core';
import { z } from 'zod';

import { DEFAULT_NCE_LAYERS } from '../networks/generator';
import { optionDefaults, resolveOptions } from '../options/derive';
import { booleanOption, choiceOption, integerListOption, integerOption, numberOption, type OptionsSchema } from '../options/option-schema';

/** `--help` headings of the training flags, in display order. */
export const TRAIN_HEADINGS = Object.freeze({
  architecture: 'Networks:',
  data: 'Data:',
  schedule: 'Schedule:',
  losses: 'Losses (reference values; SPEC §11 quirks noted):',
  run: 'Run folder:',
});

const losses = TRAIN_HEADINGS.losses;
const schedule = TRAIN_HEADINGS.schedule;

/**
 * How λ_pair (the weight of the supervised pseudo-pair branch) moves with the epoch (SPEC §5.6, §11 #1):
 * - `'reference'`: cos(π/2 · N · (e − 1)) with N = nEpochs + nEpochsDecay, as coded — 1 at every epoch when N = 20;
 * - `'cosine'`: cos(π/2 · (e − 1) / N), the decay the reference's docstring describes.
 */
export type PairWeightSchedule = 'reference' | 'cosine';

/**
 * The content loss of the paired (pseudo-pair) branch, inside λ_pair·(G_GAN_p + ·):
 * - `'stylepatchnce'`: StylePatchNCE between G(x_p) and y_p through netF_s (SPEC §5.3), the reference;
 * - `'l1'`: λ_L1_paired · mean|G(x_p) − y_p|, the pixel-level reconstruction of the paper's supplementary
 *   ablation. netF_s is then unused: it draws no ids and gets no gradient (it is still built and saved).
 */
export type PairedContentLoss = 'stylepatchnce' | 'l1';

/**
 * How the [−1, 1] images become the VGG input of the perceptual term (SPEC §5.5, §11 #3), the same names as
 * the VGG loss's own mapping option:
 * - `'reference'`: fake_B + 0.5 (the reference's precedence bug) and (x + 1)/2, no ImageNet normalisation;
 * - `'unit'`: (· + 1)/2 on both sides;
 * - `'imagenet'`: (· + 1)/2, then ImageNet mean/std per channel, on both sides.
 */
export type VggInput = 'reference' | 'unit' | 'imagenet';

/** The group's rule across fields; a run schema that spreads the group's shape applies it too. */
export function checkSemiCutOptions(o: { readonly nEpochs: number; readonly nEpochsDecay: number }, ctx: z.RefinementCtx): void {
  if (o.nEpochs + o.nEpochsDecay < 1) {
    ctx.addIssue({ code: 'custom', path: ['nEpochsDecay'], message: 'must make nEpochs + nEpochsDecay at least 1 epoch' });
  }
}

/**
 * The semi_cut group. Reference names in the help (`--lambda_NCE_s` …) are CUT's flags; each field's default is
 * the reference run's.
 */
export const semiCutOptionsSchema = z
  .strictObject({
    numPatches: integerOption({
      default: 256,
      min: 1,
      help: 'patches per layer for every contrastive loss',
      flag: '--num-patches <n>',
      heading: losses,
    }),
    nceLayers: integerListOption({
      default: DEFAULT_NCE_LAYERS,
      min: 0,
      help: 'generator modules tapped by the contrastive losses',
      flag: '--nce-layers <list>',
      heading: losses,
    }),
    nceT: numberOption({
      default: 0.07,
      min: 0,
      exclusive: true,
      help: 'temperature of PatchNCE and hDCE',
      flag: '--nce-t <t>',
      heading: losses,
    }),
    lambdaGan: numberOption({
      default: 1,
      min: 0,
      help: 'weight of the unpaired LSGAN term G_GAN',
      flag: '--lambda-gan <w>',
      heading: losses,
    }),
    lambdaGanP: numberOption({
      default: 1,
      min: 0,
      help: 'weight of the paired (conditional) LSGAN term G_GAN_p',
      flag: '--lambda-gan-p <w>',
      heading: losses,
    }),
    lambdaHdce: numberOption({ default: 0.1, min: 0, help: 'weight of hDCE (and hDCE_Y)', flag: '--lambda-hdce <w>', heading: losses }),
    lambdaSrc: numberOption({ default: 0.05, min: 0, help: 'weight of SRC', flag: '--lambda-src <w>', heading: losses }),
    // SPEC §11 #2: the reference multiplies by --lambda_NCE_s twice; this option is the effective product, applied once.
    lambdaNceS: numberOption({
      default: 0.05 * 0.05,
      min: 0,
      help: "EFFECTIVE weight of StylePatchNCE: the reference multiplies by --lambda_NCE_s twice, so its train.sh value 0.05 acts as 0.05² = 0.0025 (give 0.01 for the reference's default 0.1)",
      flag: '--lambda-nce-s <w>',
      heading: losses,
    }),
    dceIdt: booleanOption({
      default: true,
      help: 'drop the identity branch G(y) and its hDCE_Y term (on in train.sh)',
      flag: '--no-dce-idt',
      heading: losses,
    }),
    useCurriculum: booleanOption({
      default: true,
      help: 'keep the hDCE weight temperature at --hdce-gamma instead of the curriculum (on in train.sh)',
      flag: '--no-curriculum',
      heading: losses,
    }),
    hdceGammaStart: numberOption({
      default: 50,
      min: 0,
      exclusive: true,
      help: 'hDCE weight temperature at the start of the curriculum',
      flag: '--hdce-gamma <g>',
      heading: losses,
    }),
    hdceGammaMin: numberOption({
      default: 10,
      min: 0,
      exclusive: true,
      help: 'hDCE weight temperature at the end of the curriculum',
      flag: '--hdce-gamma-min <g>',
      heading: losses,
    }),
    nEpochs: integerOption({ default: 10, min: 0, help: 'epochs at the initial learning rate', flag: '--n-epochs <n>', heading: schedule }),
    nEpochsDecay: integerOption({
      default: 10,
      min: 0,
      help: 'epochs of linearly decaying learning rate (the reference never reaches 0: last epoch at 1/(n+1))',
      flag: '--n-epochs-decay <n>',
      heading: schedule,
    }),
    pairWeightSchedule: choiceOption({
      choices: ['reference', 'cosine'],
      default: 'reference',
      help: "λ_pair over epochs: 'reference' = cos(π/2·N·(e−1)) as coded, constant 1 for 20 epochs; 'cosine' = cos(π/2·(e−1)/N), the decay its docstring describes",
      flag: '--pair-weight-schedule <s>',
      heading: losses,
    }),
    pairedLoss: choiceOption({
      choices: ['stylepatchnce', 'l1'],
      default: 'stylepatchnce',
      help: "content loss of the paired branch: 'stylepatchnce' (the paper) or 'l1', the plain L1 reconstruction of its supplementary ablation",
      flag: '--paired-loss <loss>',
      heading: losses,
    }),
    // Default 10, CycleGAN's weight for its mean-L1 reconstruction next to an LSGAN term (the pairing CUT's code
    // base inherits); pix2pix's 100 goes with a BCE GAN loss and exact targets, and pseudo pairs are approximate.
    lambdaL1Paired: numberOption({
      default: 10,
      min: 0,
      help: "weight of mean|G(x_p) − y_p| with --paired-loss l1 (CycleGAN's weight for a mean L1 beside LSGAN)",
      flag: '--lambda-l1-paired <w>',
      heading: losses,
    }),
    lambdaL1Source: numberOption({
      default: 0,
      min: 0,
      help: 'weight of mean|G(x) − x|, a content term that keeps fine detail such as text (0: off, as the reference)',
      flag: '--lambda-l1-source <w>',
      heading: losses,
    }),
    // train.sh turns the perceptual term off with −1; its option default 0.1 is never used there.
    lambdaVgg: numberOption({
      default: 0,
      min: 0,
      help: "weight of the VGG-19 conv4_4 perceptual term (0: off, as train.sh's -1; the README suggests 0.2 for low-quality anime data); needs VGG-19 weights (--vgg-weights, or `scenimefy models fetch vgg19`)",
      flag: '--lambda-vgg <w>',
      heading: losses,
    }),
    vggInput: choiceOption({
      choices: ['reference', 'unit', 'imagenet'],
      default: 'reference',
      help: "VGG input mapping: 'reference' (fake+0.5 vs (x+1)/2, no ImageNet normalisation: the reference's precedence bug), 'unit' ((x+1)/2 for both) or 'imagenet' (plus ImageNet mean/std)",
      flag: '--vgg-input <mapping>',
      heading: losses,
    }),
    lr: numberOption({
      default: 2e-4,
      min: 0,
      exclusive: true,
      help: 'Adam learning rate of all five optimisers',
      flag: '--lr <rate>',
      heading: schedule,
    }),
    // β2 is PyTorch's default; the reference never sets it.
    beta1: numberOption({ default: 0.5, min: 0, help: "Adam's beta1", flag: '--beta1 <b>', heading: schedule }),
    beta2: numberOption({ default: 0.999, min: 0, help: "Adam's beta2", flag: '--beta2 <b>', heading: schedule }),
  })
  .superRefine((o, ctx) => checkSemiCutOptions(o, ctx)) satisfies OptionsSchema;

/** The options of the semi_cut model's arithmetic (each documented by its help text in the schema). */
export type SemiCutOptions = Readonly<z.output<typeof semiCutOptionsSchema>>;

// The choice types above are the schema's own.
const choicesMatch: [PairWeightSchedule, PairedContentLoss, VggInput] extends [
  SemiCutOptions['pairWeightSchedule'],
  SemiCutOptions['pairedLoss'],
  SemiCutOptions['vggInput'],
]
  ? true
  : false = true;
void choicesMatch;

/** The reference run (`train.sh` over `base_options`/`train_options`). */
export const SEMI_CUT_DEFAULTS: SemiCutOptions = optionDefaults(semiCutOptionsSchema);

/** The defaults overridden by `options`, checked (`semi_cut options: lr: must be a number > 0, got 0`); names of other groups are ignored. */
export function resolvedSemiCutOptions(options: Partial<SemiCutOptions> = {}): SemiCutOptions {
  const known = Object.fromEntries(Object.entries(options).filter(([key]) => Object.hasOwn(semiCutOptionsSchema.shape, key)));
  return resolveOptions(semiCutOptionsSchema, known, { what: 'semi_cut options' });
}

/** λ_pair at a 1-based epoch (SPEC §5.6). */
export function pairWeight(epoch: number, options: Pick<SemiCutOptions, 'nEpochs' | 'nEpochsDecay' | 'pairWeightSchedule'>): number {
  if (!Number.isInteger(epoch) || epoch < 1) throw new UsageError(`pairWeight: epoch is 1-based, got ${String(epoch)}`);
  const total = options.nEpochs + options.nEpochsDecay;
  // The reference evaluates math.cos(math.pi / 2 * N_EPOCHS * (epoch - 1)) in double, in this order.
  return options.pairWeightSchedule === 'reference'
    ? Math.cos((Math.PI / 2) * total * (epoch - 1))
    : Math.cos(((Math.PI / 2) * (epoch - 1)) / total);
}
