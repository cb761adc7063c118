/**
 * The antialiased resampling layers of the CUT generator and discriminator (SPEC §1), on NHWC tensors.
 *
 * - `blurDownsample` is CUT's `Downsample(filt_size=3)`: reflect-pad 1, then the depthwise blur
 *   [1,2,1]ᵀ[1,2,1]/16 with stride 2. Output size ceil(H/2) × ceil(W/2).
 * - `blurUpsample` is CUT's `Upsample(filt_size=4)`: replicate-pad 1, transposed depthwise conv with
 *   [1,3,3,1]ᵀ[1,3,3,1]/64·4 at stride 2, crop. That equals bilinear ×2 with align_corners=False (SPEC §1), so
 *   the forward pass is `tf.image.resizeBilinear(…, halfPixelCenters)`. Its registered gradient cannot be used:
 *   the cpu backend's ResizeBilinearGrad ignores halfPixelCenters, so the exact adjoint is attached instead.
 *
 * The reference stores its filters as `filt` buffers; `DOWNSAMPLE_FILTER` and `UPSAMPLE_FILTER` are their
 * per-channel values (row-major), used to check imported buffers and to write them back out.
 */
import type { Tensor, Tensor4D } from '@tensorflow/tfjs-core';
import { reflectPad2d } from '../layers/reflect-pad';
import type { Tf } from '../layers/tf';

function outer(a: readonly number[], b: readonly number[], scale: number): Float32Array {
  const out = new Float32Array(a.length * b.length);
  a.forEach((ai, i) => b.forEach((bj, j) => (out[i * b.length + j] = ai * bj * scale)));
  return out;
}

/** `Downsample.filt[c, 0]`: outer([1,2,1], [1,2,1]) / 16, shape 3×3. */
export const DOWNSAMPLE_FILTER: Readonly<Float32Array> = outer([1, 2, 1], [1, 2, 1], 1 / 16);
export const DOWNSAMPLE_FILTER_SIZE = 3;

/** `Upsample.filt[c, 0]`: outer([1,3,3,1], [1,3,3,1]) / 64 · 4 (stride²), shape 4×4. */
export const UPSAMPLE_FILTER: Readonly<Float32Array> = outer([1, 3, 3, 1], [1, 3, 3, 1], 4 / 64);
export const UPSAMPLE_FILTER_SIZE = 4;

/** Blur-then-subsample by 2 of an NHWC tensor: [B,H,W,C] → [B,⌈H/2⌉,⌈W/2⌉,C]. */
export function blurDownsample(tf: Tf, x: Tensor4D): Tensor4D {
  return tf.tidy(() => {
    const channels = x.shape[3];
    const filter = tf.tile(tf.tensor4d(DOWNSAMPLE_FILTER, [DOWNSAMPLE_FILTER_SIZE, DOWNSAMPLE_FILTER_SIZE, 1, 1]), [
      1,
      1,
      channels,
      1,
    ]) as Tensor4D;
    return tf.depthwiseConv2d(reflectPad2d(tf, x, 1), filter, 2, 'valid');
  });
}

/**
 * Bilinear ×2 upsampling of an NHWC tensor (align_corners=False): [B,H,W,C] → [B,2H,2W,C].
 *
 * Forward: one resize kernel, several times faster than composing it from slices. Backward: per axis,
 * out[2i] = ¾x[i] + ¼x[i−1] and out[2i+1] = ¾x[i] + ¼x[i+1] with the edge sample repeated, so
 * dx[j] = ¼dy[2j−1] + ¾dy[2j] + ¾dy[2j+1] + ¼dy[2j+2] with dy's edge repeated once: a stride-2 depthwise conv
 * with the same [1,3,3,1]ᵀ[1,3,3,1]/16 filter over dy padded by 1 in 'symmetric' mode (= replicate for 1).
 */
export function blurUpsample(tf: Tf, x: Tensor4D): Tensor4D {
  const [, h, w, channels] = x.shape;
  const upsampleWithAdjointGrad = tf.customGrad((...args: Array<Tensor | ((save: Tensor[]) => void)>) => {
    const input = args[0] as Tensor4D;
    const value = tf.image.resizeBilinear(input, [2 * h, 2 * w], false, true);
    const gradFunc = (dy: Tensor4D): Tensor4D => {
      const filter = tf.tile(tf.tensor4d(UPSAMPLE_FILTER, [UPSAMPLE_FILTER_SIZE, UPSAMPLE_FILTER_SIZE, 1, 1]), [
        1,
        1,
        channels,
        1,
      ]) as Tensor4D;
      const padded = tf.mirrorPad(
        dy,
        [
          [0, 0],
          [1, 1],
          [1, 1],
          [0, 0],
        ],
        'symmetric',
      );
      return tf.depthwiseConv2d(padded, filter, 2, 'valid');
    };
    return { value, gradFunc };
  });
  return upsampleWithAdjointGrad(x);
}
