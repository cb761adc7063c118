/**
 * How much memory translating one image takes, so that the Node translator can refuse an image it cannot finish
 * before decoding it, instead of being killed for memory an hour in. The model is linear in the pixels, fitted
 * with margin to peak RSS measured with onnxruntime-node on CPU (translate of a PNG, 2 threads, default tiles):
 *
 * | model | path, input                 | size    | measured peak     | estimate |
 * |-------|-----------------------------|---------|-------------------|----------|
 * | ngf16 | tiled, decoded image        | 1024²   | 271, 295 MB       | 447 MB   |
 * | ngf16 | tiled, decoded image        | 4096²   | 1520, 1881 MB     | 2.59 GB  |
 * | ngf16 | tiled, PNG file to PNG file | 2048²   | 615 MB            | 874 MB   |
 * | ngf64 | tiled, decoded image        | 1024²   | 807, 820 MB       | 984 MB   |
 * | ngf64 | tiled, decoded image        | 2048²   | 1601, 1839 MB     | 2.02 GB  |
 * | ngf64 | tiled, PNG file to PNG file | 2048²   | 1649, 1702 MB     | 2.02 GB  |
 * | ngf16 | whole, decoded image        | 1024²   | 853 MB            | 1.90 GB  |
 * | ngf64 | whole, decoded image        | 768×512 | 950 MB            | 2.73 GB  |
 * | ngf64 | whole, decoded image        | 1024²   | 3002 MB           | 5.31 GB  |
 *
 * Runs of the same case differ by up to 20 % (the pairs above): V8 frees the tiles' output buffers only at its
 * next collection, so how much garbage is waiting at the peak varies. The coefficients keep ≥ 10 % above the
 * highest run.
 *
 * Tiled inference holds three quarter-resolution activations of 4·ngf channels (3·ngf bytes per image pixel),
 * its float32 input and result (24 B), and the translator's uint8 images; the whole-image path holds every
 * activation onnxruntime plans for, about 61·ngf bytes per pixel (3.9 KB for ngf 64).
 */

/** Default translation memory budget: 16 GiB, which leaves 8 GB of a 24 GB machine to everything else. */
export const DEFAULT_TRANSLATE_MEMORY_BUDGET = 16 * 2 ** 30;

const MB = 1e6;
/** Node, onnxruntime and the sessions with their packed weights: a fixed part and one growing with ngf. */
const FIXED_BYTES = 192 * MB;
const FIXED_BYTES_PER_NGF = 7 * MB;
/** Per decoded pixel: the encoded file, sharp's decode buffers, the RGB image, the encoded output. */
const DECODE_BYTES_PER_PIXEL = 24;
/** Per model pixel, tiled: 3·ngf for the quarter-resolution activations (+ margin), the float input/result and uint8 copies. */
const TILED_BYTES_PER_PIXEL_PER_NGF = 4;
const TILED_BYTES_PER_PIXEL = 48;
/** Per model pixel, whole image (onnxruntime's planned activations), plus its arena's start. */
const WHOLE_BYTES_PER_PIXEL_PER_NGF = 61;
const WHOLE_FIXED_BYTES = 550 * MB;

export interface TranslateMemoryOptions {
  /** Size the generator runs at (after max-side and the rounding to multiples of 4); default: the decoded size. */
  readonly model?: { readonly width: number; readonly height: number };
  /** The generator's ngf (64 for the official model). */
  readonly ngf?: number;
  /** Whether the image runs in tiles (default true: what 'auto' does above 512×768). */
  readonly tiled?: boolean;
}

export interface TranslateMemoryEstimate {
  /** Estimated peak resident memory of the process, in bytes. */
  readonly bytes: number;
  readonly model: { readonly width: number; readonly height: number };
  readonly ngf: number;
  readonly tiled: boolean;
}

/**
 * The estimated peak memory of translating a decoded `width`×`height` image (a file's, decoded, then encoded):
 * `192 MB + 7 MB·ngf + 24 B·decoded pixels + model pixels·(4·ngf + 48 B)` tiled, and
 * `192 MB + 7 MB·ngf + 24 B·decoded pixels + model pixels·61·ngf B + 550 MB` whole.
 *
 * Example: estimateTranslateMemory(8000, 6000).bytes → 16 384 000 000 (about 15.3 GiB, ngf 64, tiled)
 */
export function estimateTranslateMemory(width: number, height: number, options: TranslateMemoryOptions = {}): TranslateMemoryEstimate {
  const ngf = options.ngf ?? 64;
  const tiled = options.tiled ?? true;
  const model = options.model ?? { width, height };
  const modelPixels = model.width * model.height;
  const perModelPixel = tiled ? TILED_BYTES_PER_PIXEL_PER_NGF * ngf + TILED_BYTES_PER_PIXEL : WHOLE_BYTES_PER_PIXEL_PER_NGF * ngf;
  const bytes =
    FIXED_BYTES +
    FIXED_BYTES_PER_NGF * ngf +
    DECODE_BYTES_PER_PIXEL * width * height +
    perModelPixel * modelPixels +
    (tiled ? 0 : WHOLE_FIXED_BYTES);
  return { bytes, model: { width: model.width, height: model.height }, ngf, tiled };
}

/**
 * The most pixels an image may have to translate at full size (tiled) within `budget` bytes with a generator of
 * `ngf`: 50.4 million (7,101 × 7,101) for the official model in the default 16 GiB.
 */
export function maxTranslatePixels(budget: number = DEFAULT_TRANSLATE_MEMORY_BUDGET, ngf = 64): number {
  const perPixel = DECODE_BYTES_PER_PIXEL + TILED_BYTES_PER_PIXEL_PER_NGF * ngf + TILED_BYTES_PER_PIXEL;
  return Math.max(0, Math.floor((budget - FIXED_BYTES - FIXED_BYTES_PER_NGF * ngf) / perPixel));
}
