/**
 * The adversarial terms of Scenimefy (SPEC §5.4): CUT's `GANLoss('lsgan')`, i.e. `MSELoss()` (mean over every
 * element of the score map) against a map filled with the real label 1.0 or the fake label 0.0.
 *
 * Detaching is the caller's part, as in the reference: the discriminator step scores `fake.detach()` (so the
 * prediction passed here keeps D's gradient and none reaches G), the generator step scores the live fake.
 */
import type { Scalar, Tensor } from '@tensorflow/tfjs-core';
import { InputError } from '@scenimefy/io/core';
import type { Tf } from '../layers/tf';

/** `GANLoss(target_real_label=1.0)`. */
export const LSGAN_REAL_LABEL = 1.0;
/** `GANLoss(target_fake_label=0.0)`. */
export const LSGAN_FAKE_LABEL = 0.0;

// A type alias rather than an interface: only aliases satisfy TensorContainer, so `tf.tidy` can return it.
export type LsganDiscriminatorLoss = {
  /** ½[fake → 0 + real → 1]: L_D (or L_Dp), what D's step minimises. */
  loss: Scalar;
  /** MSE of the fake scores against 0 (`loss_D_fake`). */
  fake: Scalar;
  /** MSE of the real scores against 1 (`loss_D_real`). */
  real: Scalar;
};

/** mean((prediction − label)²) with label 1.0 when `targetIsReal`, else 0.0. */
export function lsganLoss(tf: Tf, prediction: Tensor, targetIsReal: boolean): Scalar {
  if (prediction.size === 0) throw new InputError(`lsganLoss: the score map [${prediction.shape.join(',')}] is empty`);
  const label = targetIsReal ? LSGAN_REAL_LABEL : LSGAN_FAKE_LABEL;
  return tf.tidy(() => tf.mean(tf.square(tf.sub(prediction, label))) as Scalar);
}

/** L_D = ½[MSE(D(fake.detach()), 0) + MSE(D(real), 1)], with both halves for logging. */
export function lsganDiscriminatorLoss(tf: Tf, predFake: Tensor, predReal: Tensor): LsganDiscriminatorLoss {
  return tf.tidy(() => {
    const fake = lsganLoss(tf, predFake, false);
    const real = lsganLoss(tf, predReal, true);
    return { loss: tf.mul(0.5, tf.add(fake, real)) as Scalar, fake, real };
  });
}

/** G_GAN = MSE(D(fake), 1), before λ_GAN. */
export function lsganGeneratorLoss(tf: Tf, predFake: Tensor): Scalar {
  return lsganLoss(tf, predFake, true);
}
