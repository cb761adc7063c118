/**
 * CUT's `PatchNCELoss` (`patchnce.py`), which Scenimefy uses as StylePatchNCE against the pseudo target
 * (SPEC §5.3), plus the row-block helpers the other contrastive losses share.
 *
 * Features are `(B·N) × C` row matrices, batch-major (rows `b·N .. b·N+N−1` belong to image b), as PatchSampleF
 * produces them. Negatives come from the same image only (`nce_includes_all_negatives_from_minibatch=False`,
 * the reference default), so every image gets its own N×N similarity block; the loss is the mean over all B·N
 * rows, which equals the mean over images of each image's row mean because every image has N rows.
 *
 * The λ_NCE_s weighting (applied twice by the reference, SPEC §11 #2) is the caller's business: this returns
 * the unweighted per-layer CE.
 */
import type { Scalar, Tensor, Tensor1D, Tensor2D, Tensor3D } from '@tensorflow/tfjs-core';
import { InputError, UsageError } from '@scenimefy/io/core';
import type { Tf } from '../layers/tf';

/** `--nce_T`, the temperature of every contrastive loss of the reference. */
export const NCE_TEMPERATURE = 0.07;

/** The logit the reference writes over each row's own key in the negatives block (`masked_fill_(diagonal, -10)`). */
export const NCE_DIAGONAL_FILL = -10;

export interface PatchNceOptions {
  /** τ, default `NCE_TEMPERATURE` (0.07). */
  tau?: number;
  /** Images B in the batch; the rows split into B blocks of N = rows / B. Default 1. */
  batchSize?: number;
}

// A type alias rather than an interface: only aliases satisfy TensorContainer, so `tf.tidy` can return it.
export type PatchNceLoss = {
  /** Mean over all B·N rows of the per-row CE: what the model adds to its objective (before weighting). */
  loss: Scalar;
  /** Per-row CE, `[B·N]`, as the reference module returns it (`reduction='none'`). */
  perRow: Tensor1D;
};

/** Feature-matrix geometry: B images of N rows of C channels. */
export interface RowBlocks {
  readonly batchSize: number;
  readonly rowsPerImage: number;
  readonly channels: number;
}

/**
 * B, N and C of a `(B·N) × C` query/key pair, checked: rank 2, equal shapes, rows divisible by B.
 * `who` names the loss in the error.
 */
export function rowBlocksOf(who: string, featQ: Tensor, featK: Tensor, batchSize: number | undefined): RowBlocks {
  const b = batchSize ?? 1;
  if (!Number.isInteger(b) || b < 1) throw new UsageError(`${who}: batchSize must be a positive integer, got ${String(batchSize)}`);
  if (featQ.rank !== 2 || featK.rank !== 2) {
    throw new InputError(`${who}: features must be (B·N)×C matrices, got q [${featQ.shape.join(',')}] and k [${featK.shape.join(',')}]`);
  }
  const [rows, channels] = featQ.shape as [number, number];
  if (featK.shape[0] !== rows || featK.shape[1] !== channels) {
    throw new InputError(`${who}: q [${featQ.shape.join(',')}] and k [${featK.shape.join(',')}] must have the same shape`);
  }
  if (rows === 0 || rows % b !== 0) {
    throw new InputError(`${who}: ${rows} feature rows do not split into batchSize ${b} images of equal patch count`);
  }
  return { batchSize: b, rowsPerImage: rows / b, channels };
}

/** τ from the options, checked; τ divides every logit, so it must be a positive finite number. */
export function temperatureOf(who: string, tau: number | undefined): number {
  const t = tau ?? NCE_TEMPERATURE;
  if (!(Number.isFinite(t) && t > 0)) throw new UsageError(`${who}: tau must be a positive finite number, got ${String(tau)}`);
  return t;
}

/**
 * `x` with its gradient cut (PyTorch's `.detach()`): the same values, and zero gradient towards `x`. tfjs-core
 * has no stop-gradient op, so it is a custom gradient that returns zeros.
 */
export function detached<T extends Tensor>(tf: Tf, x: T): T {
  const stop = tf.customGrad((...args) => {
    const input = args[0] as Tensor;
    return { value: tf.clone(input), gradFunc: (dy) => tf.zerosLike(dy) };
  });
  return stop(x) as T;
}

/** The `[N, N]` boolean mask of the diagonal, which broadcasts over the B blocks of a `[B, N, N]` tensor. */
export function diagonalMask(tf: Tf, n: number): Tensor2D {
  return tf.tidy(() => tf.cast(tf.eye(n), 'bool'));
}

/**
 * Per image, `q_i·k_j` for every pair of its rows: `[B, N, N]`. Image b's block is `Q_b K_bᵀ` — the reference's
 * `bmm(feat_q.view(B, -1, C), feat_k.view(B, -1, C).transpose(2, 1))`.
 */
export function blockSimilarities(tf: Tf, featQ: Tensor2D, featK: Tensor2D, blocks: RowBlocks): Tensor3D {
  const { batchSize, rowsPerImage, channels } = blocks;
  const q = tf.reshape(featQ, [batchSize, rowsPerImage, channels]);
  const k = tf.reshape(featK, [batchSize, rowsPerImage, channels]);
  return tf.matMul(q, k, false, true);
}

/** `q_i·k_i` per row, `[B·N, 1]`: the reference's `l_pos`. */
export function positiveLogits(tf: Tf, featQ: Tensor2D, featK: Tensor2D): Tensor2D {
  return tf.sum(tf.mul(featQ, featK), 1, true);
}

/**
 * Per-row CE with target 0 over logits `[l_pos_i, l_neg_i·] / τ`: `logsumexp(logits_i) − logits_i0`, the same
 * as PyTorch's `CrossEntropyLoss(reduction='none')` with all-zero targets.
 */
export function positiveFirstCrossEntropy(tf: Tf, lPos: Tensor2D, lNeg: Tensor2D, tau: number): Tensor1D {
  const logits = tf.div(tf.concat([lPos, lNeg], 1), tau);
  const positive = tf.reshape(tf.div(lPos, tau), [-1]);
  return tf.sub(tf.logSumExp(logits, 1), positive) as Tensor1D;
}

/**
 * CUT PatchNCE on queries `featQ` and keys `featK` (both `(B·N) × C`; k is detached): per row i,
 * logits = [q_i·k_i, q_i·k_j for every j of the same image (j = i set to −10)] / τ and CE with target 0.
 */
export function patchNceLoss(tf: Tf, featQ: Tensor2D, featK: Tensor2D, options: PatchNceOptions = {}): PatchNceLoss {
  const blocks = rowBlocksOf('patchNceLoss', featQ, featK, options.batchSize);
  const tau = temperatureOf('patchNceLoss', options.tau);
  return tf.tidy(() => {
    const k = detached(tf, featK);
    const lPos = positiveLogits(tf, featQ, k);
    const masked = tf.where(diagonalMask(tf, blocks.rowsPerImage), NCE_DIAGONAL_FILL, blockSimilarities(tf, featQ, k, blocks));
    const lNeg = tf.reshape(masked, [-1, blocks.rowsPerImage]) as Tensor2D;
    const perRow = positiveFirstCrossEntropy(tf, lPos, lNeg, tau);
    return { loss: tf.mean(perRow) as Scalar, perRow };
  });
}
