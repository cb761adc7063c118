/**
 * The VGG content (perceptual) loss of Scenimefy (SPEC §5.5 for the I2I model, §9 for the StyleGAN finetuning):
 * `MSELoss()(VGG(fake'), VGG(real'))`, the mean over every conv4_4 (pre-ReLU) element of the squared difference,
 * where fake' and real' are the [-1,1] images mapped to the VGG's input range.
 *
 * The reference maps the two sides differently (SPEC §11 #3): it writes `VGG(fake + 1 / 2.)` and
 * `VGG((real + 1) / 2.)`, and operator precedence makes the first `fake + 0.5`, not `(fake + 1) / 2`. Neither
 * side gets ImageNet mean/std normalisation although the weights are torchvision's ImageNet ones. The default
 * `input: 'reference'` reproduces that, because it is what the published training ran; `'unit'` and
 * `'imagenet'` are the corrected mappings.
 *
 * The loss weight (λ_VGG = 0.1 by default in the I2I options, 0.01 in the finetuning) is the caller's.
 */
import type { Scalar, Tensor4D } from '@tensorflow/tfjs-core';
import { InputError, UsageError } from '@scenimefy/io/core';
import type { Tf } from '../layers/tf';
import type { Vgg19Features } from '../networks/vgg19';

/**
 * How a [-1,1] image becomes the VGG input:
 * - `'reference'`: fake + 0.5 for the fake (the reference's precedence bug), (real + 1)/2 for the real; no
 *   ImageNet normalisation. The default: it reproduces the reference's loss values and gradients.
 * - `'unit'`: (x + 1)/2 for both, i.e. [0,1] images as the reference meant them; no ImageNet normalisation.
 * - `'imagenet'`: (x + 1)/2, then (· − mean)/std per channel with torchvision's ImageNet statistics, for both;
 *   the input the VGG weights were trained on.
 */
export type VggInputMapping = 'reference' | 'unit' | 'imagenet';

export const VGG_INPUT_MAPPINGS: readonly VggInputMapping[] = Object.freeze(['reference', 'unit', 'imagenet'] as const);

/** torchvision's ImageNet channel means (RGB), for `input: 'imagenet'`. */
export const IMAGENET_MEAN: readonly [number, number, number] = Object.freeze([0.485, 0.456, 0.406] as const);
/** torchvision's ImageNet channel standard deviations (RGB), for `input: 'imagenet'`. */
export const IMAGENET_STD: readonly [number, number, number] = Object.freeze([0.229, 0.224, 0.225] as const);

export interface VggPerceptualOptions {
  /** How the [-1,1] images are mapped to the VGG input; default `'reference'` (see `VggInputMapping`). */
  readonly input?: VggInputMapping;
}

function checkedMapping(input: unknown): VggInputMapping {
  if (!(VGG_INPUT_MAPPINGS as readonly unknown[]).includes(input)) {
    throw new UsageError(`vggPerceptualLoss: input must be one of ${VGG_INPUT_MAPPINGS.join(', ')}, got ${String(input)}`);
  }
  return input as VggInputMapping;
}

/**
 * The VGG input for a [-1,1] NCHW image under `mapping`; `side` matters only for `'reference'`, where the fake
 * is shifted by 0.5 instead of mapped with (x + 1)/2.
 */
export function vggInputImage(tf: Tf, x: Tensor4D, mapping: VggInputMapping, side: 'fake' | 'real'): Tensor4D {
  checkedMapping(mapping);
  return tf.tidy((): Tensor4D => {
    // SPEC §11 #3: the reference writes `fake + 1 / 2.`, which is fake + 0.5.
    if (mapping === 'reference' && side === 'fake') return tf.add(x, 0.5);
    const unit: Tensor4D = tf.mul(tf.add(x, 1), 0.5);
    if (mapping !== 'imagenet') return unit;
    const mean = tf.tensor4d([...IMAGENET_MEAN], [1, 3, 1, 1]);
    const std = tf.tensor4d([...IMAGENET_STD], [1, 3, 1, 1]);
    return tf.div(tf.sub(unit, mean), std);
  });
}

/**
 * mean((VGG(fake') − VGG(real'))²) over every conv4_4 element, as `nn.MSELoss()` computes it; fake and real are
 * NCHW [B, 3, H, W] images in [-1,1] of the same shape.
 *
 * With `input: 'reference'` (the default) this is the reference's term, precedence bug included:
 * `MSE(VGG(fake + 0.5), VGG((real + 1)/2))` — see the module comment and SPEC §11 #3.
 *
 * Differentiable with respect to both images; the VGG's weights are constants and never get a gradient. In the
 * reference `real` is data (the photo, or the frozen source generator's output), so nothing flows into it there
 * either; a caller whose `real` comes from a network that must not learn from this term detaches it first.
 *
 * Example (the finetuning's content term, which enters its objective as 0.01 · loss):
 *   const vgg = createVgg19Features(tf, await readTorchStateDict(vggFile), { source: vggFile });
 *   const loss = vggPerceptualLoss(tf, vgg, fake, nature); // fake, nature: [1, 3, 256, 256] in [-1,1] → scalar
 */
export function vggPerceptualLoss(tf: Tf, vgg: Vgg19Features, fake: Tensor4D, real: Tensor4D, options: VggPerceptualOptions = {}): Scalar {
  const mapping = checkedMapping(options.input ?? 'reference');
  if (fake.rank !== 4 || fake.shape.some((d, i) => d !== real.shape[i]) || real.rank !== 4) {
    throw new InputError(
      `vggPerceptualLoss: fake [${fake.shape.join(',')}] and real [${real.shape.join(',')}] must be NCHW images of the same shape`,
    );
  }
  return tf.tidy(() => {
    const a = vgg.forward(vggInputImage(tf, fake, mapping, 'fake'));
    const b = vgg.forward(vggInputImage(tf, real, mapping, 'real'));
    return tf.mean(tf.squaredDifference(a, b)) as Scalar;
  });
}
