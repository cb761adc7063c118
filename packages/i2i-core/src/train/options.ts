/**
 * The training options of the `semi_cut` model that change its arithmetic (SPEC §6, §11), with the reference
 * defaults (`train.sh`). A plain typed object: the CLI layer validates user input before it gets here.
 */
import { UsageError } from '@scenimefy/io';
import { DEFAULT_NCE_LAYERS } from '../networks/generator';

/**
 * How λ_pair (the weight of the supervised pseudo-pair branch) moves with the epoch (SPEC §5.6, §11 #1):
 * - `'reference'`: cos(π/2 · N · (e − 1)) with N = nEpochs + nEpochsDecay, as coded — 1 at every epoch when N = 20;
 * - `'cosine'`: cos(π/2 · (e − 1) / N), the decay the reference's docstring describes.
 */
export type PairWeightSchedule = 'reference' | 'cosine';

export interface SemiCutOptions {
  /** `--num_patches`: patches per layer for every contrastive loss. */
  readonly numPatches: number;
  /** `--nce_layers`: generator modules tapped for the contrastive losses. */
  readonly nceLayers: readonly number[];
  /** `--nce_T`: temperature of PatchNCE and hDCE. */
  readonly nceT: number;
  /** `--lambda_GAN`: weight of G_GAN. */
  readonly lambdaGan: number;
  /** `--lambda_GAN_p`: weight of G_GAN_p (inside the λ_pair branch). */
  readonly lambdaGanP: number;
  /** `--lambda_HDCE`: per-layer weight of hDCE (and of hDCE_Y). */
  readonly lambdaHdce: number;
  /** `--lambda_SRC`: per-layer weight of SRC. */
  readonly lambdaSrc: number;
  /**
   * EFFECTIVE weight of StylePatchNCE. The reference multiplies by `--lambda_NCE_s` twice (SPEC §11 #2), so
   * its `train.sh` value 0.05 acts as 0.05² = 0.0025; this option is that product, applied once.
   */
  readonly lambdaNceS: number;
  /** `--dce_idt`: the identity branch G(y) with hDCE_Y, averaged with hDCE. */
  readonly dceIdt: boolean;
  /** `--use_curriculum`: γ of the hDCE weights runs from `hdceGammaStart` towards `hdceGammaMin`. */
  readonly useCurriculum: boolean;
  /** `--HDCE_gamma`. */
  readonly hdceGammaStart: number;
  /** `--HDCE_gamma_min`. */
  readonly hdceGammaMin: number;
  /** `--n_epochs` (constant LR). */
  readonly nEpochs: number;
  /** `--n_epochs_decay` (linearly decaying LR). */
  readonly nEpochsDecay: number;
  readonly pairWeightSchedule: PairWeightSchedule;
  /** Adam's learning rate, `--lr`. */
  readonly lr: number;
  /** Adam's β1, `--beta1` (β2 is PyTorch's default 0.999). */
  readonly beta1: number;
  readonly beta2: number;
}

/** The reference run (`train.sh` over `base_options`/`train_options`). */
export const SEMI_CUT_DEFAULTS: Readonly<SemiCutOptions> = Object.freeze({
  numPatches: 256,
  nceLayers: DEFAULT_NCE_LAYERS,
  nceT: 0.07,
  lambdaGan: 1,
  lambdaGanP: 1,
  lambdaHdce: 0.1,
  lambdaSrc: 0.05,
  lambdaNceS: 0.05 * 0.05,
  dceIdt: true,
  useCurriculum: true,
  hdceGammaStart: 50,
  hdceGammaMin: 10,
  nEpochs: 10,
  nEpochsDecay: 10,
  pairWeightSchedule: 'reference',
  lr: 2e-4,
  beta1: 0.5,
  beta2: 0.999,
});

/** The defaults overridden by `options`, checked. */
export function resolvedSemiCutOptions(options: Partial<SemiCutOptions> = {}): SemiCutOptions {
  const resolved: SemiCutOptions = { ...SEMI_CUT_DEFAULTS, ...options };
  const positive: Array<keyof SemiCutOptions> = ['nceT', 'hdceGammaStart', 'hdceGammaMin', 'lr'];
  const nonNegative: Array<keyof SemiCutOptions> = ['lambdaGan', 'lambdaGanP', 'lambdaHdce', 'lambdaSrc', 'lambdaNceS', 'beta1', 'beta2'];
  for (const key of positive) {
    const value = resolved[key] as number;
    if (!(Number.isFinite(value) && value > 0)) throw new UsageError(`semi_cut options: ${key} must be a positive number, got ${String(value)}`);
  }
  for (const key of nonNegative) {
    const value = resolved[key] as number;
    if (!(Number.isFinite(value) && value >= 0)) throw new UsageError(`semi_cut options: ${key} must be a number ≥ 0, got ${String(value)}`);
  }
  if (!Number.isInteger(resolved.numPatches) || resolved.numPatches < 1) {
    throw new UsageError(`semi_cut options: numPatches must be a positive integer, got ${String(resolved.numPatches)}`);
  }
  if (!Number.isInteger(resolved.nEpochs) || !Number.isInteger(resolved.nEpochsDecay) || resolved.nEpochs + resolved.nEpochsDecay < 1) {
    throw new UsageError(`semi_cut options: nEpochs and nEpochsDecay must be integers with a positive sum`);
  }
  if (resolved.pairWeightSchedule !== 'reference' && resolved.pairWeightSchedule !== 'cosine') {
    throw new UsageError(`semi_cut options: pairWeightSchedule must be 'reference' or 'cosine', got ${String(resolved.pairWeightSchedule)}`);
  }
  if (resolved.nceLayers.length === 0) throw new UsageError('semi_cut options: nceLayers is empty');
  return resolved;
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
