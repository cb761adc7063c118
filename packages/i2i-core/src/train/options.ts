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
  /** Content loss of the paired branch; `'stylepatchnce'` is the reference (see `PairedContentLoss`). */
  readonly pairedLoss: PairedContentLoss;
  /**
   * Weight of mean|G(x_p) − y_p| when `pairedLoss` is `'l1'` (unused otherwise); it sits inside λ_pair like
   * StylePatchNCE. Default 10, the weight CycleGAN gives its mean-L1 reconstruction next to an LSGAN term (the
   * pairing CUT's code base inherits). pix2pix's 100 goes with a BCE GAN loss and exact targets; pseudo pairs
   * are approximate, so the lighter weight. The paper does not state the ablation's weight.
   */
  readonly lambdaL1Paired: number;
  /**
   * Weight of mean|G(x) − x|, an L1 content term on the unpaired photo that keeps fine detail such as text
   * (the paper's limitations suggest content losses). 0 (the reference) turns it off.
   */
  readonly lambdaL1Source: number;
  /**
   * `--lambda_VGG`: weight of the VGG-19 conv4_4 perceptual term MSE(VGG(fake_B'), VGG(x')) (SPEC §5.5). 0
   * turns it off, as the reference's `train.sh` does with −1 (its option default 0.1 is never used there). Needs
   * the model's `perceptualLoss` function when positive.
   */
  readonly lambdaVgg: number;
  /** Input mapping of the perceptual term (see `VggInput`); `'reference'` reproduces the reference's. */
  readonly vggInput: VggInput;
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
  pairedLoss: 'stylepatchnce',
  lambdaL1Paired: 10,
  lambdaL1Source: 0,
  lambdaVgg: 0,
  vggInput: 'reference',
  lr: 2e-4,
  beta1: 0.5,
  beta2: 0.999,
});

/** The defaults overridden by `options`, checked. */
export function resolvedSemiCutOptions(options: Partial<SemiCutOptions> = {}): SemiCutOptions {
  const resolved: SemiCutOptions = { ...SEMI_CUT_DEFAULTS, ...options };
  const positive: Array<keyof SemiCutOptions> = ['nceT', 'hdceGammaStart', 'hdceGammaMin', 'lr'];
  const nonNegative: Array<keyof SemiCutOptions> = [
    'lambdaGan',
    'lambdaGanP',
    'lambdaHdce',
    'lambdaSrc',
    'lambdaNceS',
    'lambdaL1Paired',
    'lambdaL1Source',
    'lambdaVgg',
    'beta1',
    'beta2',
  ];
  for (const key of positive) {
    const value = resolved[key] as number;
    if (!(Number.isFinite(value) && value > 0))
      throw new UsageError(`semi_cut options: ${key} must be a positive number, got ${String(value)}`);
  }
  for (const key of nonNegative) {
    const value = resolved[key] as number;
    if (!(Number.isFinite(value) && value >= 0))
      throw new UsageError(`semi_cut options: ${key} must be a number ≥ 0, got ${String(value)}`);
  }
  if (!Number.isInteger(resolved.numPatches) || resolved.numPatches < 1) {
    throw new UsageError(`semi_cut options: numPatches must be a positive integer, got ${String(resolved.numPatches)}`);
  }
  if (!Number.isInteger(resolved.nEpochs) || !Number.isInteger(resolved.nEpochsDecay) || resolved.nEpochs + resolved.nEpochsDecay < 1) {
    throw new UsageError(`semi_cut options: nEpochs and nEpochsDecay must be integers with a positive sum`);
  }
  if (resolved.pairWeightSchedule !== 'reference' && resolved.pairWeightSchedule !== 'cosine') {
    throw new UsageError(
      `semi_cut options: pairWeightSchedule must be 'reference' or 'cosine', got ${String(resolved.pairWeightSchedule)}`,
    );
  }
  if (resolved.pairedLoss !== 'stylepatchnce' && resolved.pairedLoss !== 'l1') {
    throw new UsageError(`semi_cut options: pairedLoss must be 'stylepatchnce' or 'l1', got ${String(resolved.pairedLoss)}`);
  }
  if (resolved.vggInput !== 'reference' && resolved.vggInput !== 'unit' && resolved.vggInput !== 'imagenet') {
    throw new UsageError(`semi_cut options: vggInput must be 'reference', 'unit' or 'imagenet', got ${String(resolved.vggInput)}`);
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
