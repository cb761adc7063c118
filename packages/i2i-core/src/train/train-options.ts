/**
 * The options of a `semi_cut` training run (what `scenimefy train` takes), flat and JSON-safe so a run can
 * dump them into run.json / options.txt with the non-defaults marked, and resume from them. The defaults are
 * the reference run (`train.sh` over CUT's base/train options, SPEC §6); the model's arithmetic options are
 * `SemiCutOptions` (options.ts), repeated here under the same names.
 */
import { UsageError } from '@scenimefy/io';

import { DEFAULT_CROP_SIZE, DEFAULT_DATA_SEED, DEFAULT_LOAD_SIZE } from './data';
import { SEMI_CUT_DEFAULTS, resolvedSemiCutOptions } from './options';
import type { SemiCutOptions } from './options';

/** Run options that are not part of the model's arithmetic. */
export interface TrainRunSettings {
  /** `--ngf`: filters of the generator's first conv. */
  readonly ngf: number;
  /** `--ndf`: filters of both discriminators' first conv. */
  readonly ndf: number;
  /** `--n_layers_D`. */
  readonly nLayersD: number;
  /** `--netF_nc`: output width of the patch heads. */
  readonly netFNc: number;
  /** `--init_gain` of the xavier-normal init of every network (the reference: 0.02). */
  readonly initGain: number;
  /** `--batch_size`. 1 reproduces the reference; > 1 uses per-sample patch ids and relation matrices (SPEC §11 #4). */
  readonly batchSize: number;
  /** `--load_size`: square bicubic resize of every training image. */
  readonly loadSize: number;
  /** `--crop_size`: square random crop after the resize. */
  readonly cropSize: number;
  /** `--no_flip`: no random horizontal flip of the unpaired images (the paired ones are never flipped, as in the reference). */
  readonly noFlip: boolean;
  /** Folder names are `${phase}A` / `${phase}B`. */
  readonly phase: string;
  /** Seed of every random choice of the run: data order, flips, crops, network init, patch ids. */
  readonly seed: number;
  /** Stop after this many optimisation steps in all (null: run every epoch). The run ends 'stopped', resumable. */
  readonly maxIterations: number | null;
  /** `--save_latest_freq`: a checkpoint every this many iterations (and one at every epoch end). */
  readonly saveEvery: number;
  /** Checkpoints kept in the run folder (the newest ones). */
  readonly keep: number;
  /** A sample grid every this many iterations (0: none). */
  readonly sampleEvery: number;
  /** One loss line in events.ndjson every this many iterations, the mean of the iterations since the last. */
  readonly logEvery: number;
  /** Images decoded ahead of the model, per dataset. */
  readonly prefetch: number;
  /**
   * Recompute the generator's ResnetBlocks in the backward pass instead of keeping their insides (same
   * numbers): a 256² step then fits in a few GB instead of tens (TF.js keeps every taped tensor and gradient
   * until the step's gradients are done), for about a third more generator compute.
   */
  readonly gradientCheckpointing: boolean;
}

/** Every option of a run. */
export type TrainOptions = TrainRunSettings & SemiCutOptions;

export const TRAIN_RUN_DEFAULTS: Readonly<TrainRunSettings> = Object.freeze({
  ngf: 64,
  ndf: 64,
  nLayersD: 3,
  netFNc: 256,
  initGain: 0.02,
  batchSize: 1,
  loadSize: DEFAULT_LOAD_SIZE,
  cropSize: DEFAULT_CROP_SIZE,
  noFlip: false,
  phase: 'train',
  seed: DEFAULT_DATA_SEED,
  maxIterations: null,
  saveEvery: 5000,
  keep: 3,
  sampleEvery: 400,
  logEvery: 100,
  prefetch: 4,
  gradientCheckpointing: true,
});

/** The reference run's options. */
export const TRAIN_DEFAULTS: Readonly<TrainOptions> = Object.freeze({ ...SEMI_CUT_DEFAULTS, ...TRAIN_RUN_DEFAULTS });

function checkInteger(options: TrainOptions, key: keyof TrainRunSettings, min: number): void {
  const value = options[key];
  if (!Number.isSafeInteger(value) || (value as number) < min) {
    throw new UsageError(`training options: ${key} must be an integer ≥ ${min}, got ${JSON.stringify(value)}`);
  }
}

/** The defaults overridden by `options`, checked; unknown names are refused. */
export function resolvedTrainOptions(options: Partial<TrainOptions> = {}): TrainOptions {
  for (const key of Object.keys(options)) {
    if (!Object.hasOwn(TRAIN_DEFAULTS, key)) throw new UsageError(`training options: unknown option "${key}"`);
  }
  const defined = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) as Partial<TrainOptions>;
  const merged = { ...TRAIN_DEFAULTS, ...defined } as TrainOptions;
  const model = resolvedSemiCutOptions(pickSemiCutOptions(merged));
  const resolved: TrainOptions = { ...merged, ...model };
  for (const key of ['ngf', 'ndf', 'nLayersD', 'netFNc', 'batchSize', 'saveEvery', 'keep', 'logEvery'] as const)
    checkInteger(resolved, key, 1);
  for (const key of ['sampleEvery', 'prefetch', 'seed'] as const) checkInteger(resolved, key, 0);
  checkInteger(resolved, 'cropSize', 3);
  checkInteger(resolved, 'loadSize', resolved.cropSize);
  if (resolved.maxIterations !== null) {
    if (!Number.isSafeInteger(resolved.maxIterations) || resolved.maxIterations < 1) {
      throw new UsageError(
        `training options: maxIterations must be a positive integer or null, got ${JSON.stringify(resolved.maxIterations)}`,
      );
    }
  }
  if (!(Number.isFinite(resolved.initGain) && resolved.initGain > 0))
    throw new UsageError(`training options: initGain must be a positive number, got ${resolved.initGain}`);
  for (const key of ['noFlip', 'gradientCheckpointing'] as const) {
    if (typeof resolved[key] !== 'boolean') throw new UsageError(`training options: ${key} must be true or false`);
  }
  if (typeof resolved.phase !== 'string' || resolved.phase.length === 0 || /[/\\]/.test(resolved.phase)) {
    throw new UsageError(`training options: phase must be a folder-name prefix such as "train", got ${JSON.stringify(resolved.phase)}`);
  }
  return resolved;
}

/** The model's share of the run options. */
export function pickSemiCutOptions(options: TrainOptions): SemiCutOptions {
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(SEMI_CUT_DEFAULTS)) out[key] = (options as unknown as Record<string, unknown>)[key];
  return out as unknown as SemiCutOptions;
}

function sameValue(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** Names of the options whose value differs from the reference run's, in option order. */
export function nonDefaultOptions(options: TrainOptions): string[] {
  return Object.keys(TRAIN_DEFAULTS).filter(
    (key) => !sameValue((options as unknown as Record<string, unknown>)[key], (TRAIN_DEFAULTS as unknown as Record<string, unknown>)[key]),
  );
}

/** CUT's `print_options` layout: one `name: value [default: d]` line per option, the default shown only where it differs. */
export function formatTrainOptions(options: TrainOptions): string {
  const keys = Object.keys(TRAIN_DEFAULTS);
  const width = Math.max(...keys.map((k) => k.length));
  const lines = ['----------------- Options ---------------'];
  for (const key of keys) {
    const value = (options as unknown as Record<string, unknown>)[key];
    const fallback = (TRAIN_DEFAULTS as unknown as Record<string, unknown>)[key];
    const mark = sameValue(value, fallback) ? '' : `\t[default: ${JSON.stringify(fallback)}]`;
    lines.push(`${key.padStart(width)}: ${JSON.stringify(value)}${mark}`);
  }
  lines.push('----------------- End -------------------');
  return `${lines.join('\n')}\n`;
}
