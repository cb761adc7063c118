/**
 * Scenimefy's SRC (semantic relation consistency, `models/SRC.py`, SPEC §5.1) and, from the same module, the
 * hard-negative weights of hDCE with their curriculum γ.
 *
 * Batches: the reference builds one relation matrix over all rows (`batch_dim_for_bmm = 1`) with an N×N
 * diagonal mask, so it only runs at B = 1 (SPEC §11 #4). Here the `(B·N) × C` rows split into B images of N
 * rows; each image gets its own N×N matrices, exactly what the reference computes for that image alone, and
 * - the SRC loss is the MEAN over images of each image's JSD (each one a sum over its N×N entries, as in the
 *   reference), so B = 1 is the reference value and the scale does not grow with B;
 * - the hDCE weights are `[B, N, N]`, image b's block being the reference's `[1, N, N]` for that image.
 */
import type { Scalar, Tensor1D, Tensor2D, Tensor3D } from '@tensorflow/tfjs-core';
import { UsageError } from '@scenimefy/io/core';
import type { Tf } from '../layers/tf';
import { NCE_DIAGONAL_FILL, blockSimilarities, detached, diagonalMask, rowBlocksOf } from './patch-nce';

/** The reference `Normalize` adds this to the row norm before dividing. */
export const SRC_NORMALIZE_EPS = 1e-7;

export interface SrcOptions {
  /** Images B in the batch; the rows split into B blocks of N = rows / B. Default 1. */
  batchSize?: number;
}

// A type alias rather than an interface: only aliases satisfy TensorContainer, so `tf.tidy` can return it.
export type SrcLoss = {
  /** Mean over images of the per-image JSD: the reference's `loss_src` at B = 1 (before λ_SRC). */
  loss: Scalar;
  /** Each image's JSD, summed over its N×N entries, `[B]`. */
  perImage: Tensor1D;
};

export interface HdceWeightOptions {
  /** γ, the softmax temperature of the relations (see `hdceGamma`). */
  gamma: number;
  /** Images B in the batch. Default 1. */
  batchSize?: number;
}

export interface HdceGammaOptions {
  /** `--HDCE_gamma`, γ at epoch 0. */
  gamma: number;
  /** `--HDCE_gamma_min`, γ at the last epoch. */
  gammaMin: number;
  /** `--n_epochs`. */
  nEpochs: number;
  /** `--n_epochs_decay`. */
  nEpochsDecay: number;
}

/** The reference options (`train.sh` with `--use_curriculum`). */
export const DEFAULT_HDCE_GAMMA_OPTIONS: Readonly<HdceGammaOptions> = Object.freeze({
  gamma: 50,
  gammaMin: 10,
  nEpochs: 10,
  nEpochsDecay: 10,
});

/**
 * γ of the hDCE weights at a 1-based `epoch` with `--use_curriculum`: linear from `gamma` towards `gammaMin`,
 * reaching it at epoch nEpochs + nEpochsDecay (48 at epoch 1 and 10 at epoch 20 with the defaults). The
 * operations run in the reference's order so the double result is the same. `step_gamma` is off in the
 * reference configuration and not modelled.
 */
export function hdceGamma(epoch: number, options: HdceGammaOptions = DEFAULT_HDCE_GAMMA_OPTIONS): number {
  const { gamma, gammaMin, nEpochs, nEpochsDecay } = options;
  if (!Number.isInteger(epoch) || epoch < 1) throw new UsageError(`hdceGamma: epoch is 1-based, got ${String(epoch)}`);
  for (const [name, value] of Object.entries({ gamma, gammaMin, nEpochs, nEpochsDecay })) {
    if (!Number.isFinite(value)) throw new UsageError(`hdceGamma: ${name} must be a finite number, got ${String(value)}`);
  }
  if (nEpochs + nEpochsDecay <= 0)
    throw new UsageError(`hdceGamma: nEpochs + nEpochsDecay must be positive, got ${nEpochs + nEpochsDecay}`);
  const g = gamma + ((gammaMin - gamma) * epoch) / (nEpochs + nEpochsDecay);
  if (!(g > 0)) throw new UsageError(`hdceGamma: γ at epoch ${epoch} is ${g}; it divides the relations, so it must be positive`);
  return g;
}

/** `x / (‖x‖₂ + 1e-7)` per row: the reference's `Normalize`, which SRC applies even to unit rows. */
function normalizedRows(tf: Tf, x: Tensor2D): Tensor2D {
  return tf.div(x, tf.add(tf.sqrt(tf.sum(tf.square(x), 1, true)), SRC_NORMALIZE_EPS));
}

/** `nn.Softmax(dim=1)` of a `[B, N, N]` tensor: each column of each block sums to 1. */
function columnSoftmax(tf: Tf, s: Tensor3D): Tensor3D {
  return tf.transpose(tf.softmax(tf.transpose(s, [0, 2, 1])), [0, 2, 1]);
}

/**
 * `KLDivLoss(reduction='sum', log_target=True)(logM, logP)` per image: Σ exp(log P)·(log P − log M) over each
 * block. The reference feeds it `torch.log` of the probabilities (not log-softmax), so the same logs are taken
 * here and P re-enters as exp(log P), as PyTorch's kernel has it.
 */
function klDivSumLogTarget(tf: Tf, logM: Tensor3D, logP: Tensor3D): Tensor1D {
  return tf.sum(tf.mul(tf.exp(logP), tf.sub(logP, logM)), [1, 2]);
}

/**
 * SRC on queries `featQ` and keys `featK` (`(B·N) × C`; k detached): per image, rows re-normalised,
 * P_q = column-softmax(Q Qᵀ), P_k = column-softmax(K Kᵀ) (no gradient), M = ½(P_q + P_k) and
 * JSD = ½[KL(P_q‖M) + KL(P_k‖M)] summed over all N×N entries.
 */
export function srcLoss(tf: Tf, featQ: Tensor2D, featK: Tensor2D, options: SrcOptions = {}): SrcLoss {
  const blocks = rowBlocksOf('srcLoss', featQ, featK, options.batchSize);
  return tf.tidy(() => {
    const q = normalizedRows(tf, featQ);
    const k = normalizedRows(tf, detached(tf, featK));
    const pQ = columnSoftmax(tf, blockSimilarities(tf, q, q, blocks));
    const pK = detached(tf, columnSoftmax(tf, blockSimilarities(tf, k, k, blocks)));
    const logM = tf.log(tf.mul(0.5, tf.add(pQ, pK))) as Tensor3D;
    const perImage = tf.mul(0.5, tf.add(klDivSumLogTarget(tf, logM, tf.log(pQ)), klDivSumLogTarget(tf, logM, tf.log(pK)))) as Tensor1D;
    return { loss: tf.mean(perImage) as Scalar, perImage };
  });
}

/**
 * The hDCE weights SRC_Loss returns (also its `only_weight` mode), `[B, N, N]`, without gradient: per image,
 * W_seed = K Kᵀ of the re-normalised keys with the diagonal set to −10, W = row-softmax(W_seed / γ), and each
 * row divided by its maximum so that it peaks at exactly 1.
 */
export function hdceWeights(tf: Tf, featK: Tensor2D, options: HdceWeightOptions): Tensor3D {
  const blocks = rowBlocksOf('hdceWeights', featK, featK, options.batchSize);
  const { gamma } = options;
  if (!(Number.isFinite(gamma) && gamma > 0))
    throw new UsageError(`hdceWeights: gamma must be a positive finite number, got ${String(gamma)}`);
  return tf.tidy(() => {
    const k = normalizedRows(tf, detached(tf, featK));
    const seed = tf.where(diagonalMask(tf, blocks.rowsPerImage), NCE_DIAGONAL_FILL, blockSimilarities(tf, k, k, blocks));
    const w = tf.softmax(tf.div(seed, gamma)) as Tensor3D;
    return detached(tf, tf.div(w, tf.max(w, 2, true)));
  });
}
