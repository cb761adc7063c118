/**
 * Scenimefy's hDCE, the hard-negative decoupled contrastive loss (`models/hDCE.py`, SPEC §5.2).
 *
 * The reference module returns `mean_j exp(v_j − v_j.detach()) − 1 + CE_i.detach()`: its value is the ordinary
 * InfoNCE cross-entropy, its gradient that of the decoupled mean_i v_i (SPEC §11 #5). Here the two are separate
 * results — `loss` carries the gradient, `displayed` is the value to log — plus `reference`, the single scalar
 * the reference adds to its objective (value of `displayed`, gradient of `loss`).
 *
 * Batches: rows `(B·N) × C` split into B images of N rows with negatives from the same image only
 * (`nce_includes_all_negatives_from_minibatch=False`); the weights are `[B, N, N]` (see `hdceWeights`). Every
 * mean is over all B·N rows, i.e. the mean over images of each image's row mean (equal N per image), so B = 1 is
 * the reference exactly.
 */
import type { Scalar, Tensor1D, Tensor2D, Tensor3D } from '@tensorflow/tfjs-core';
import { InputError } from '@scenimefy/io/core';
import type { Tf } from '../layers/tf';
import {
  NCE_DIAGONAL_FILL,
  blockSimilarities,
  detached,
  diagonalMask,
  positiveFirstCrossEntropy,
  positiveLogits,
  rowBlocksOf,
  temperatureOf,
} from './patch-nce';

export interface HdceOptions {
  /** `[B, N, N]` relation weights from `hdceWeights` (`[N, N]` is accepted at B = 1); none: plain decoupled NCE. */
  weight?: Tensor3D | Tensor2D;
  /** τ, default 0.07. */
  tau?: number;
  /** Images B in the batch. Default 1. */
  batchSize?: number;
}

// A type alias rather than an interface: only aliases satisfy TensorContainer, so `tf.tidy` can return it.
export type HdceLoss = {
  /** mean_i v_i: the quantity whose gradient the reference optimises (before λ_HDCE). */
  loss: Scalar;
  /** mean_i CE_i, without gradient: the value the reference logs and reports as its hDCE loss. */
  displayed: Scalar;
  /** `displayed` in value, `loss` in gradient: what the reference module's output `.mean()` adds to L_G. */
  reference: Scalar;
  /** v_i = logsumexp_j((s_ij − s⁺_i)/τ), `[B·N]`. */
  v: Tensor1D;
  /** Per-row CE −s⁺_i/τ + logsumexp([s⁺_i, s_i·]/τ), `[B·N]`, without gradient (the reference's returned vector). */
  crossEntropy: Tensor1D;
};

/**
 * hDCE on queries `featQ` and keys `featK` (`(B·N) × C`; k detached): s⁺_i = q_i·k_i and, within each image,
 * s_ij = (q_i·k_j)·W_ij with the diagonal set to −10 after weighting; v_i = logsumexp over all N of
 * (s_ij − s⁺_i)/τ (the positive is not in the sum).
 */
export function patchHdceLoss(tf: Tf, featQ: Tensor2D, featK: Tensor2D, options: HdceOptions = {}): HdceLoss {
  const blocks = rowBlocksOf('patchHdceLoss', featQ, featK, options.batchSize);
  const tau = temperatureOf('patchHdceLoss', options.tau);
  const { weight } = options;
  const { batchSize: b, rowsPerImage: n } = blocks;
  if (weight !== undefined) {
    const fits =
      (weight.rank === 3 && weight.shape[0] === b && weight.shape[1] === n && weight.shape[2] === n) ||
      (weight.rank === 2 && b === 1 && weight.shape[0] === n && weight.shape[1] === n);
    if (!fits) {
      const got = weight.shape.join(',');
      throw new InputError(`patchHdceLoss: weight [${got}] does not fit ${b} image(s) of ${n} patches; expected [${b},${n},${n}]`);
    }
  }
  return tf.tidy(() => {
    const k = detached(tf, featK);
    const lPos = positiveLogits(tf, featQ, k);
    const similarities = blockSimilarities(tf, featQ, k, blocks);
    const weighted = weight === undefined ? similarities : tf.mul(similarities, detached(tf, weight));
    const masked = tf.where(diagonalMask(tf, n), NCE_DIAGONAL_FILL, weighted);
    const lNeg = tf.reshape(masked, [-1, n]) as Tensor2D;
    const v = tf.logSumExp(tf.div(tf.sub(lNeg, lPos), tau), 1) as Tensor1D;
    const loss = tf.mean(v) as Scalar;
    const crossEntropy = detached(tf, positiveFirstCrossEntropy(tf, lPos, lNeg, tau));
    const displayed = tf.mean(crossEntropy) as Scalar;
    // loss − stopgrad(loss) is exactly 0, so the value is `displayed` to the bit while the gradient is `loss`'s.
    const reference = tf.add(tf.sub(loss, detached(tf, loss)), displayed) as Scalar;
    return { loss, displayed, reference, v, crossEntropy };
  });
}
