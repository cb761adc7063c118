/**
 * Photo in, anime scene out, on decoded images and an injected onnxruntime — no files, no image codecs, so it
 * runs in a page as well as in Node. The pixels are the reference test.py's (SPEC §8): round the size to a
 * multiple of 4 with Python's half-to-even rounding, PIL-bicubic resize only when the size changes, map to
 * [-1, 1], run the generator, clamp and truncate to uint8 — plus the options users ask for: a cap on the long
 * side, resizing the result back to the input size, rounding instead of truncation, and exact tiled inference for
 * images too large to run whole. The Node `Translator` (translator.ts) is this plus files, sharp and model
 * resolution.
 *
 * Example (in a page):
 * ```ts
 * import * as ort from 'onnxruntime-web';
 * const model = generatorModelFromBytes(new Uint8Array(await file.arrayBuffer()), file.name);
 * const translator = await createImageTranslator(ort, model);
 * const { image } = await translator.translateImage({ width, height, data: rgbBytes });
 * ```
 */
import { InputError, NumericError, UsageError, imageToTensor, referenceResizeTarget, resizeImage, tensorToImage } from '@scenimefy/io/core';
import type { RgbImage, TensorMap } from '@scenimefy/io/core';

import { createOnnxSession, runGenerator, type OnnxDevice, type OnnxSession } from './onnx-session';
import type { OrtRuntime } from './ort-runtime';
import { createTiledGenerator, type TiledGenerator } from './tiled-generator';

/** Above this many model-input pixels, 'auto' tiling runs the image in tiles (exactly; see tiled-generator.ts). */
// Whole-image onnxruntime needs ≈ 61·ngf bytes per pixel (3.0 GB measured at 1024² for ngf 64), tiles ≈ 4·ngf + 48
// (memory-estimate.ts) but take ≈ 1.5× longer. Above this budget memory wins.
export const DEFAULT_TILE_PIXEL_BUDGET = 512 * 768;
/** Smallest side the generator runs at: two ×2 downsamplings, then reflect padding of 1 needs ≥ 2 pixels. */
export const MIN_MODEL_SIDE = 8;

export type TileSetting = 'auto' | 'off' | number;

/** A generator to translate with: its weights (for tiled inference) and its ONNX graph (bytes, or a path/URL the runtime loads). */
export interface GeneratorModel {
  /** Generator state dict with the reference's key names (`model.1.weight` …), no prefix. */
  readonly stateDict: TensorMap;
  readonly onnx: string | Uint8Array;
  /** Names the model in messages, e.g. `shinkai (…/Shinkai_net_G.pth)` or a picked file's name. */
  readonly description?: string;
}

export interface ImageTranslatorOptions {
  /** onnxruntime intra-op threads (default: all cores). */
  threads?: number;
  device?: OnnxDevice;
  /** 'auto' (default): tiles above `tilePixelBudget`; 'off': always whole; a number: always tiles of that size. */
  tile?: TileSetting;
  tilePixelBudget?: number;
}

export interface ImageTranslateOptions {
  /** Downscale (PIL bicubic, aspect kept) so the long side is at most this many pixels before inference. */
  maxSide?: number;
  /** Resize the result back to the decoded input size (PIL bicubic) when preprocessing changed it. */
  resizeBack?: boolean;
  /** 'truncate' (reference tensor2im, default) or 'round' (SPEC §11 #7 corrected option). */
  rounding?: 'truncate' | 'round';
}

export interface TranslateResult {
  image: RgbImage;
  /** Size of the decoded input. */
  input: { width: number; height: number };
  /** Size the generator ran at (multiple of 4). */
  model: { width: number; height: number };
  tiled: boolean;
  /** Milliseconds spent in the generator. */
  generatorMs: number;
}

/** Throws UsageError unless `tile` is 'auto', 'off' or a multiple of 4 ≥ 16; returns the setting (default 'auto'). */
export function checkTileSetting(tile: TileSetting | undefined): TileSetting {
  const setting = tile ?? 'auto';
  if (setting !== 'auto' && setting !== 'off' && (!Number.isInteger(setting) || setting < 16 || setting % 4 !== 0)) {
    throw new UsageError(`tile must be 'auto', 'off' or a multiple of 4 ≥ 16, got ${String(setting)}`);
  }
  return setting;
}

/** The size a `width`×`height` image is scaled to so that its long side is at most `maxSide` (aspect kept). */
function cappedSize(width: number, height: number, maxSide: number | undefined): { width: number; height: number } {
  if (maxSide === undefined) return { width, height };
  if (!Number.isInteger(maxSide) || maxSide < 4) throw new UsageError(`max-side must be an integer ≥ 4, got ${maxSide}`);
  const long = Math.max(width, height);
  if (long <= maxSide) return { width, height };
  const scale = maxSide / long;
  return { width: Math.max(1, Math.round(width * scale)), height: Math.max(1, Math.round(height * scale)) };
}

/**
 * The size the generator runs at for a `width`×`height` image: the long side capped at `maxSide`, then rounded to
 * multiples of 4 (SPEC §8). Throws InputError (naming `file`) for an image too small to round.
 */
export function modelInputSize(width: number, height: number, maxSide?: number, file?: string): { width: number; height: number } {
  const capped = cappedSize(width, height, maxSide);
  const target = referenceResizeTarget(capped.width, capped.height, 4, file);
  return { width: target.width, height: target.height };
}

export class ImageTranslator {
  private whole: OnnxSession | undefined;
  private disposed = false;
  private tiledRunner: TiledGenerator | undefined;
  private readonly tile: TileSetting;

  private constructor(
    readonly runtime: OrtRuntime,
    readonly model: GeneratorModel,
    private readonly options: ImageTranslatorOptions,
  ) {
    this.tile = checkTileSetting(options.tile);
  }

  /** A translator for `model` on `runtime`; the whole-image session is made now unless every image will run in tiles. */
  static async create(runtime: OrtRuntime, model: GeneratorModel, options: ImageTranslatorOptions = {}): Promise<ImageTranslator> {
    const translator = new ImageTranslator(runtime, model, options);
    // The whole-image session is what most images use: create it now so the first image is not slower — unless
    // every image will run in tiles, which use their own sessions.
    if (typeof translator.tile !== 'number') await translator.session();
    return translator;
  }

  /** Whether an image of `width`×`height` model pixels runs in tiles under the current setting. */
  usesTiles(width: number, height: number): boolean {
    if (this.tile === 'off') return false;
    if (this.tile === 'auto') return width * height > (this.options.tilePixelBudget ?? DEFAULT_TILE_PIXEL_BUDGET);
    return true;
  }

  /** Translate a decoded image. */
  async translateImage(img: RgbImage, options: ImageTranslateOptions = {}): Promise<TranslateResult> {
    this.assertLive();
    const input = { width: img.width, height: img.height };
    let work = img;
    const capped = cappedSize(img.width, img.height, options.maxSide);
    if (capped.width !== img.width || capped.height !== img.height) work = resizeImage(work, capped.width, capped.height);
    const file = img.source?.file;
    const target = referenceResizeTarget(work.width, work.height, 4, file);
    if (target.width < MIN_MODEL_SIDE || target.height < MIN_MODEL_SIDE) {
      // The reference crashes here too: reflect padding needs more than one pixel at quarter resolution.
      throw new InputError(
        `image too small: ${work.width}×${work.height} pixels; the generator needs at least ${MIN_MODEL_SIDE}×${MIN_MODEL_SIDE} after rounding to multiples of 4`,
        file !== undefined ? { file } : {},
      );
    }
    if (target.resized) work = resizeImage(work, target.width, target.height);
    const tensor = imageToTensor(work);
    const shape = [1, 3, work.height, work.width] as const;
    const tiled = this.usesTiles(work.width, work.height);
    const started = performance.now();
    const output = tiled
      ? await (await this.tiled()).run(tensor.data, shape)
      : await runGenerator(await this.session(), tensor.data, shape);
    const generatorMs = performance.now() - started;
    this.assertFinite(output, file, input);
    let image = tensorToImage(output, shape, { rounding: options.rounding ?? 'truncate' });
    if (options.resizeBack && (image.width !== input.width || image.height !== input.height)) {
      image = resizeImage(image, input.width, input.height);
    }
    return { image, input, model: { width: work.width, height: work.height }, tiled, generatorMs };
  }

  async dispose(): Promise<void> {
    this.disposed = true;
    await this.whole?.release();
    this.whole = undefined;
    await this.tiledRunner?.dispose();
    this.tiledRunner = undefined;
  }

  /** A NaN or infinite output means broken weights: say which image and which model, not only that it happened. */
  private assertFinite(output: Float32Array, file: string | undefined, input: { width: number; height: number }): void {
    let bad = 0;
    for (let i = 0; i < output.length; i++) if (!Number.isFinite(output[i] as number)) bad++;
    if (bad === 0) return;
    const model = this.model.description ?? 'the generator';
    const image = file !== undefined ? 'this image' : `the ${input.width}×${input.height} image`;
    throw new NumericError(
      `the generator returned ${bad} NaN or infinite value(s) of ${output.length} for ${image} (model: ${model}); its weights are probably broken`,
      file !== undefined ? { file } : {},
    );
  }

  private assertLive(): void {
    if (this.disposed) throw new UsageError('this ImageTranslator has been disposed');
  }

  private async session(): Promise<OnnxSession> {
    this.assertLive();
    this.whole ??= await createOnnxSession(this.runtime, this.model.onnx, { threads: this.options.threads, device: this.options.device });
    return this.whole;
  }

  private async tiled(): Promise<TiledGenerator> {
    this.assertLive();
    if (!this.tiledRunner) {
      const tile = this.tile;
      this.tiledRunner = await createTiledGenerator(this.runtime, this.model.stateDict, {
        tileSize: typeof tile === 'number' ? tile : undefined,
        threads: this.options.threads,
      });
    }
    return this.tiledRunner;
  }
}

/** An ImageTranslator for `model` on `runtime` (onnxruntime-web in a page, onnxruntime-node in Node). */
export function createImageTranslator(
  runtime: OrtRuntime,
  model: GeneratorModel,
  options: ImageTranslatorOptions = {},
): Promise<ImageTranslator> {
  return ImageTranslator.create(runtime, model, options);
}
