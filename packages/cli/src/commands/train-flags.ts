/**
 * The flags of `scenimefy train`, one per training option (i2i-core's TrainOptions), with the option name it
 * sets, its parser, and the default shown in `--help`. Kept free of heavy imports so `scenimefy --help` stays
 * fast; train-flags.test.ts checks every default here against i2i-core's TRAIN_DEFAULTS and that every option
 * has a flag.
 */
import { InvalidArgumentError, Option } from 'commander';

export interface TrainFlag {
  /** Commander flag spec, e.g. `--lambda-src <w>`. */
  readonly flags: string;
  /** The TrainOptions key it sets. */
  readonly key: string;
  readonly help: string;
  /** The reference run's value (what `--help` shows); checked against TRAIN_DEFAULTS by a test. */
  readonly shownDefault: unknown;
  readonly parse?: (value: string) => unknown;
  readonly choices?: readonly string[];
  /** Boolean options written as a negating flag (`--no-flip` sets noFlip true, `--no-dce-idt` sets dceIdt false). */
  readonly boolean?: 'sets-true' | 'sets-false';
  readonly group: 'architecture' | 'data' | 'schedule' | 'losses' | 'run';
}

function integer(flag: string, min: number): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < min)
      throw new InvalidArgumentError(`${flag} takes an integer ≥ ${min}, got "${value}"`);
    return n;
  };
}

function nonNegative(flag: string): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n) || n < 0) throw new InvalidArgumentError(`${flag} takes a number ≥ 0, got "${value}"`);
    return n;
  };
}

function positive(flag: string): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`${flag} takes a number > 0, got "${value}"`);
    return n;
  };
}

function layerList(value: string): number[] {
  const parts = value.split(',').map((p) => p.trim());
  if (parts.length === 0 || parts.some((p) => !/^\d+$/.test(p))) {
    throw new InvalidArgumentError(`--nce-layers takes comma-separated generator module indices such as 0,4,8,12,16, got "${value}"`);
  }
  return parts.map(Number);
}

export const TRAIN_FLAGS: readonly TrainFlag[] = [
  // architecture
  {
    flags: '--ngf <n>',
    key: 'ngf',
    help: 'generator width (filters of its first conv)',
    shownDefault: 64,
    parse: integer('--ngf', 1),
    group: 'architecture',
  },
  {
    flags: '--ndf <n>',
    key: 'ndf',
    help: 'discriminator width (D and D_p)',
    shownDefault: 64,
    parse: integer('--ndf', 1),
    group: 'architecture',
  },
  {
    flags: '--n-layers-d <n>',
    key: 'nLayersD',
    help: 'strided conv layers of the PatchGAN discriminators',
    shownDefault: 3,
    parse: integer('--n-layers-d', 1),
    group: 'architecture',
  },
  {
    flags: '--netf-nc <n>',
    key: 'netFNc',
    help: 'output width of the patch projection heads netF / netF_s',
    shownDefault: 256,
    parse: integer('--netf-nc', 1),
    group: 'architecture',
  },
  {
    flags: '--init-gain <g>',
    key: 'initGain',
    help: 'gain of the xavier-normal init of every network',
    shownDefault: 0.02,
    parse: positive('--init-gain'),
    group: 'architecture',
  },
  // data
  {
    flags: '--batch-size <n>',
    key: 'batchSize',
    help: '1 reproduces the reference; >1 uses per-sample patch ids and relation matrices (the reference crashes there)',
    shownDefault: 1,
    parse: integer('--batch-size', 1),
    group: 'data',
  },
  {
    flags: '--load-size <px>',
    key: 'loadSize',
    help: 'square bicubic resize of every training image (aspect ratio not kept, as the reference)',
    shownDefault: 256,
    parse: integer('--load-size', 3),
    group: 'data',
  },
  {
    flags: '--crop-size <px>',
    key: 'cropSize',
    help: 'square random crop after the resize (paired images share one crop)',
    shownDefault: 256,
    parse: integer('--crop-size', 3),
    group: 'data',
  },
  {
    flags: '--no-flip',
    key: 'noFlip',
    help: 'no random horizontal flip of the unpaired images (paired images are never flipped)',
    shownDefault: false,
    boolean: 'sets-true',
    group: 'data',
  },
  { flags: '--phase <name>', key: 'phase', help: 'dataset folders are <phase>A and <phase>B', shownDefault: 'train', group: 'data' },
  {
    flags: '--seed <n>',
    key: 'seed',
    help: 'seed of every random choice: data order, flips, crops, init, patch ids',
    shownDefault: 0,
    parse: integer('--seed', 0),
    group: 'data',
  },
  {
    flags: '--no-gradient-checkpointing',
    key: 'gradientCheckpointing',
    help: "keep the generator's ResnetBlock activations instead of recomputing them in the backward pass: ~25% faster steps, several times the memory (a 256² step then needs tens of GB)",
    shownDefault: true,
    boolean: 'sets-false',
    group: 'run',
  },
  {
    flags: '--prefetch <n>',
    key: 'prefetch',
    help: 'images decoded ahead of the model per dataset (decoding runs beside training)',
    shownDefault: 4,
    parse: integer('--prefetch', 0),
    group: 'data',
  },
  // schedule
  {
    flags: '--n-epochs <n>',
    key: 'nEpochs',
    help: 'epochs at the initial learning rate',
    shownDefault: 10,
    parse: integer('--n-epochs', 0),
    group: 'schedule',
  },
  {
    flags: '--n-epochs-decay <n>',
    key: 'nEpochsDecay',
    help: 'epochs of linearly decaying learning rate (the reference never reaches 0: last epoch at 1/(n+1))',
    shownDefault: 10,
    parse: integer('--n-epochs-decay', 0),
    group: 'schedule',
  },
  {
    flags: '--lr <rate>',
    key: 'lr',
    help: 'Adam learning rate of all five optimisers',
    shownDefault: 0.0002,
    parse: positive('--lr'),
    group: 'schedule',
  },
  { flags: '--beta1 <b>', key: 'beta1', help: "Adam's beta1", shownDefault: 0.5, parse: nonNegative('--beta1'), group: 'schedule' },
  { flags: '--beta2 <b>', key: 'beta2', help: "Adam's beta2", shownDefault: 0.999, parse: nonNegative('--beta2'), group: 'schedule' },
  {
    flags: '--max-iterations <n>',
    key: 'maxIterations',
    help: 'stop after this many optimisation steps in all (resumable); default: run every epoch',
    shownDefault: null,
    parse: integer('--max-iterations', 1),
    group: 'schedule',
  },
  // losses
  {
    flags: '--num-patches <n>',
    key: 'numPatches',
    help: 'patches per layer for every contrastive loss',
    shownDefault: 256,
    parse: integer('--num-patches', 1),
    group: 'losses',
  },
  {
    flags: '--nce-layers <list>',
    key: 'nceLayers',
    help: 'generator modules tapped by the contrastive losses',
    shownDefault: [0, 4, 8, 12, 16],
    parse: layerList,
    group: 'losses',
  },
  {
    flags: '--nce-t <t>',
    key: 'nceT',
    help: 'temperature of PatchNCE and hDCE',
    shownDefault: 0.07,
    parse: positive('--nce-t'),
    group: 'losses',
  },
  {
    flags: '--lambda-gan <w>',
    key: 'lambdaGan',
    help: 'weight of the unpaired LSGAN term G_GAN',
    shownDefault: 1,
    parse: nonNegative('--lambda-gan'),
    group: 'losses',
  },
  {
    flags: '--lambda-gan-p <w>',
    key: 'lambdaGanP',
    help: 'weight of the paired (conditional) LSGAN term G_GAN_p',
    shownDefault: 1,
    parse: nonNegative('--lambda-gan-p'),
    group: 'losses',
  },
  {
    flags: '--lambda-hdce <w>',
    key: 'lambdaHdce',
    help: 'weight of hDCE (and hDCE_Y)',
    shownDefault: 0.1,
    parse: nonNegative('--lambda-hdce'),
    group: 'losses',
  },
  {
    flags: '--lambda-src <w>',
    key: 'lambdaSrc',
    help: 'weight of SRC',
    shownDefault: 0.05,
    parse: nonNegative('--lambda-src'),
    group: 'losses',
  },
  {
    flags: '--lambda-nce-s <w>',
    key: 'lambdaNceS',
    help: "EFFECTIVE weight of StylePatchNCE: the reference multiplies by --lambda_NCE_s twice, so its train.sh value 0.05 acts as 0.05² = 0.0025 (give 0.01 for the reference's default 0.1)",
    shownDefault: 0.05 * 0.05,
    parse: nonNegative('--lambda-nce-s'),
    group: 'losses',
  },
  {
    flags: '--no-dce-idt',
    key: 'dceIdt',
    help: 'drop the identity branch G(y) and its hDCE_Y term (on in train.sh)',
    shownDefault: true,
    boolean: 'sets-false',
    group: 'losses',
  },
  {
    flags: '--no-curriculum',
    key: 'useCurriculum',
    help: 'keep the hDCE weight temperature at --hdce-gamma instead of the curriculum (on in train.sh)',
    shownDefault: true,
    boolean: 'sets-false',
    group: 'losses',
  },
  {
    flags: '--hdce-gamma <g>',
    key: 'hdceGammaStart',
    help: 'hDCE weight temperature at the start of the curriculum',
    shownDefault: 50,
    parse: positive('--hdce-gamma'),
    group: 'losses',
  },
  {
    flags: '--hdce-gamma-min <g>',
    key: 'hdceGammaMin',
    help: 'hDCE weight temperature at the end of the curriculum',
    shownDefault: 10,
    parse: positive('--hdce-gamma-min'),
    group: 'losses',
  },
  {
    flags: '--pair-weight-schedule <s>',
    key: 'pairWeightSchedule',
    help: "λ_pair over epochs: 'reference' = cos(π/2·N·(e−1)) as coded, constant 1 for 20 epochs; 'cosine' = cos(π/2·(e−1)/N), the decay its docstring describes",
    shownDefault: 'reference',
    choices: ['reference', 'cosine'],
    group: 'losses',
  },
  {
    flags: '--paired-loss <loss>',
    key: 'pairedLoss',
    help: "content loss of the paired branch: 'stylepatchnce' (the paper) or 'l1', the plain L1 reconstruction of its supplementary ablation",
    shownDefault: 'stylepatchnce',
    choices: ['stylepatchnce', 'l1'],
    group: 'losses',
  },
  {
    flags: '--lambda-l1-paired <w>',
    key: 'lambdaL1Paired',
    help: "weight of mean|G(x_p) − y_p| with --paired-loss l1 (CycleGAN's weight for a mean L1 beside LSGAN)",
    shownDefault: 10,
    parse: nonNegative('--lambda-l1-paired'),
    group: 'losses',
  },
  {
    flags: '--lambda-l1-source <w>',
    key: 'lambdaL1Source',
    help: 'weight of mean|G(x) − x|, a content term that keeps fine detail such as text (0: off, as the reference)',
    shownDefault: 0,
    parse: nonNegative('--lambda-l1-source'),
    group: 'losses',
  },
  {
    flags: '--lambda-vgg <w>',
    key: 'lambdaVgg',
    help: "weight of the VGG-19 conv4_4 perceptual term (0: off, as train.sh's -1; the README suggests 0.2 for low-quality anime data); needs VGG-19 weights (--vgg-weights, or `scenimefy models fetch vgg19`)",
    shownDefault: 0,
    parse: nonNegative('--lambda-vgg'),
    group: 'losses',
  },
  {
    flags: '--vgg-input <mapping>',
    key: 'vggInput',
    help: "VGG input mapping: 'reference' (fake+0.5 vs (x+1)/2, no ImageNet normalisation: the reference's precedence bug), 'unit' ((x+1)/2 for both) or 'imagenet' (plus ImageNet mean/std)",
    shownDefault: 'reference',
    choices: ['reference', 'unit', 'imagenet'],
    group: 'losses',
  },
  // run
  {
    flags: '--save-every <n>',
    key: 'saveEvery',
    help: 'a checkpoint every n iterations (and one at each epoch end)',
    shownDefault: 5000,
    parse: integer('--save-every', 1),
    group: 'run',
  },
  {
    flags: '--keep <k>',
    key: 'keep',
    help: 'checkpoints kept in the run folder (the newest)',
    shownDefault: 3,
    parse: integer('--keep', 1),
    group: 'run',
  },
  {
    flags: '--sample-every <n>',
    key: 'sampleEvery',
    help: 'a sample grid every n iterations (0: none)',
    shownDefault: 400,
    parse: integer('--sample-every', 0),
    group: 'run',
  },
  {
    flags: '--log-every <n>',
    key: 'logEvery',
    help: 'a loss line in events.ndjson every n iterations (mean of those iterations)',
    shownDefault: 100,
    parse: integer('--log-every', 1),
    group: 'run',
  },
];

const GROUP_HEADINGS: Record<TrainFlag['group'], string> = {
  architecture: 'Networks:',
  data: 'Data:',
  schedule: 'Schedule:',
  losses: 'Losses (reference values; SPEC §11 quirks noted):',
  run: 'Run folder:',
};

function shown(value: unknown): string {
  if (value === null) return 'none';
  if (Array.isArray(value)) return value.join(',');
  // 0.05 * 0.05 is 0.0025000000000000005 in binary; help shows the decimal a user would type.
  if (typeof value === 'number') return String(Number(value.toPrecision(12)));
  return String(value);
}

/** Commander options for the table; no commander defaults, so only flags the user gave reach the options. */
export function trainOptions(extra: readonly TrainFlag[] = []): Option[] {
  return [...TRAIN_FLAGS, ...extra].map((f) => {
    const help = f.boolean
      ? `${f.help} (default: ${f.boolean === 'sets-true' ? 'off' : 'on'})`
      : `${f.help} (default: ${shown(f.shownDefault)})`;
    const option = new Option(f.flags, help).helpGroup(GROUP_HEADINGS[f.group]);
    if (f.choices) option.choices([...f.choices]);
    if (f.parse) option.argParser(f.parse as (value: string, previous: unknown) => unknown);
    return option;
  });
}

/** Commander's attribute name of a flag (`--lambda-nce-s` → lambdaNceS, `--no-flip` → flip). */
export function attributeOf(flag: TrainFlag): string {
  const long = (flag.flags.split(/[ ,]+/).find((p) => p.startsWith('--')) as string).slice(2).replace(/^no-/, '');
  return long.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

/** The TrainOptions the user set on the command line, from commander's parsed values. */
export function optionsFromFlags(values: Record<string, unknown>, flags: readonly TrainFlag[] = TRAIN_FLAGS): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const f of flags) {
    const value = values[attributeOf(f)];
    if (f.boolean) {
      // Commander sets a negating flag's attribute to false when given (and true by default, which we ignore).
      if (value === false) out[f.key] = f.boolean === 'sets-true';
      continue;
    }
    if (value !== undefined) out[f.key] = value;
  }
  return out;
}
