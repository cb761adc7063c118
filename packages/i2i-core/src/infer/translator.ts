/**
 * The inference engine: photo in, anime scene out, exactly as the reference's test.py does it (SPEC §8) —
 * decode, round the size to a multiple of 4 with Python's half-to-even rounding, PIL-bicubic resize only when
 * the size changes, map to [-1, 1], run the generator, clamp and truncate to uint8 — plus the options users ask
 * for: a cap on the long side, resizing the result back to the input size, rounding instead of truncation, and
 * exact tiled inference for images too large to run whole.
 *
 * Example:
 * ```ts
 * const translator = await Translator.load('Shinkai_net_G.pth');
 * const png = await translator.translateToBuffer('photo.jpg', 'png');
 * await translator.dispose();
 * ```
 */
import {
  InputError,
  UsageError,
  decodeImage,
  encodeImage,
  imageFormatForFile,
  imageToTensor,
  referenceResizeTarget,
  resizeImage,
  tensorToImage,
  writeImage,
  type DecodeImageOptions,
  type EncodeImageOptions,
  type ImageFormat,
  type RgbImage,
} from '@scenimefy/io';

import { resolveModel, type ResolveModelOptions, type ResolvedModel } from './model-source';
import { createOnnxSession, runGenerator, type OnnxDevice, type OnnxSession } from './onnx-session';
import { createTiledGenerator, type TiledGenerator } from './tiled-generator';

/** Above this many model-input pixels, 'auto' tiling runs the image in tiles (exactly; see tiled-generator.ts). */
// Whole-image onnxruntime needs ≈ 0.55 GB + 3.9 KB per pixel (4.5 GB at 1024²); tiles need ≈ 0.7–1.2 GB at any size
// but take ≈ 1.5× longer. Above this budget memory wins.
export const DEFAULT_TILE_PIXEL_BUDGET = 512 * 768;
/** Smallest side the generator runs at: two ×2 downsamplings, then reflect padding of 1 needs ≥ 2 pixels. */
export const MIN_MODEL_SIDE = 8;

export type TileSetting = 'auto' | 'off' | number;

export interface TranslatorOptions extends ResolveModelOptions {
  /** onnxruntime intra-op threads (default: all cores). */
  threads?: number;
  device?: OnnxDevice;
  /** 'auto' (default): tiles above `tilePixelBudget`; 'off': always whole; a number: always tiles of that size. */
  tile?: TileSetting;
  tilePixelBudget?: number;
}

export interface TranslateOptions {
  /** Downscale (PIL bicubic, aspect kept) so the long side is at most this many pixels before inference. */
  maxSide?: number;
  /** Resize the result back to the decoded input size (PIL bicubic) when preprocessing changed it. */
  resizeBack?: boolean;
  /** 'truncate' (reference tensor2im, default) or 'round' (SPEC §11 #7 corrected option). */
  rounding?: 'truncate' | 'round';
  /** Options for decoding when the input is a path or bytes (EXIF orientation, pixel limit, alpha, file name). */
  decode?: DecodeImageOptions;
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

export class Translator {
  private whole: OnnxSession | undefined;
  private disposed = false;
  private tiledRunner: TiledGenerator | undefined;

  private constructor(
    readonly model: ResolvedModel,
    private readonly options: TranslatorOptions,
  ) {}

  /** Load a generator once (see resolveModel for what `model` may be; undefined = the default model). */
  static async load(model?: string, options: TranslatorOptions = {}): Promise<Translator> {
    const tile = options.tile ?? 'auto';
    if (tile !== 'auto' && tile !== 'off' && (!Number.isInteger(tile) || tile < 16 || tile % 4 !== 0)) {
      throw new UsageError(`tile must be 'auto', 'off' or a multiple of 4 ≥ 16, got ${String(tile)}`);
    }
    const resolved = await resolveModel(model, options);
    const translator = new Translator(resolved, { ...options, tile });
    // The whole-image session is what most images use: create it now so the first image is not slower — unless
    // every image will run in tiles, which use their own sessions.
    if (typeof tile !== 'number') await translator.session();
    return translator;
  }

  /** Whether an image of `width`×`height` model pixels runs in tiles under the current setting. */
  usesTiles(width: number, height: number): boolean {
    const tile = this.options.tile ?? 'auto';
    if (tile === 'off') return false;
    if (tile === 'auto') return width * height > (this.options.tilePixelBudget ?? DEFAULT_TILE_PIXEL_BUDGET);
    return true;
  }

  /** Translate a decoded image. */
  async translateImage(img: RgbImage, options: TranslateOptions = {}): Promise<TranslateResult> {
    const input = { width: img.width, height: img.height };
    let work = img;
    if (options.maxSide !== undefined) {
      if (!Number.isInteger(options.maxSide) || options.maxSide < 4) {
        throw new UsageError(`max-side must be an integer ≥ 4, got ${options.maxSide}`);
      }
      const long = Math.max(work.width, work.height);
      if (long > options.maxSide) {
        const scale = options.maxSide / long;
        work = resizeImage(work, Math.max(1, Math.round(work.width * scale)), Math.max(1, Math.round(work.height * scale)));
      }
    }
    const target = referenceResizeTarget(work.width, work.height, 4, img.source?.file);
    if (target.width < MIN_MODEL_SIDE || target.height < MIN_MODEL_SIDE) {
      // The reference crashes here too: reflect padding needs more than one pixel at quarter resolution.
      throw new InputError(
        `image too small: ${work.width}×${work.height} pixels; the generator needs at least ${MIN_MODEL_SIDE}×${MIN_MODEL_SIDE} after rounding to multiples of 4`,
        img.source?.file !== undefined ? { file: img.source.file } : {},
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
    let image = tensorToImage(output, shape, { rounding: options.rounding ?? 'truncate' });
    if (options.resizeBack && (image.width !== input.width || image.height !== input.height)) {
      image = resizeImage(image, input.width, input.height);
    }
    return { image, input, model: { width: work.width, height: work.height }, tiled, generatorMs };
  }

  /** Decode a file path or encoded bytes, then translate. */
  async translate(input: string | Uint8Array, options: TranslateOptions = {}): Promise<TranslateResult> {
    const img = await decodeImage(input, options.decode);
    return this.translateImage(img, options);
  }

  /** Translate and encode (PNG, JPEG or WebP) in memory. */
  async translateToBuffer(
    input: string | Uint8Array,
    format: ImageFormat = 'png',
    options: TranslateOptions & EncodeImageOptions = {},
  ): Promise<Uint8Array> {
    const { image } = await this.translate(input, options);
    return encodeImage(image, format, options);
  }

  /** Translate into a sharp pipeline (raw RGB input), for callers that want to keep processing with sharp. */
  async translateToSharp(input: string | Uint8Array, options: TranslateOptions = {}): Promise<import('sharp').Sharp> {
    const { image } = await this.translate(input, options);
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const sharp = require('sharp') as typeof import('sharp');
    return sharp(image.data, { raw: { width: image.width, height: image.height, channels: 3 } });
  }

  /** Translate `input` and write it to `output` atomically (format from the extension). */
  async translateFile(input: string, output: string, options: TranslateOptions & EncodeImageOptions = {}): Promise<TranslateResult> {
    imageFormatForFile(output); // fail on a bad extension before spending time on the model
    const result = await this.translate(input, { ...options, decode: { file: input, ...options.decode } });
    await writeImage(output, result.image, options);
    return result;
  }

  async dispose(): Promise<void> {
    this.disposed = true;
    await this.whole?.release();
    this.whole = undefined;
    await this.tiledRunner?.dispose();
    this.tiledRunner = undefined;
  }

  private async session(): Promise<OnnxSession> {
    if (this.disposed) throw new UsageError('this Translator has been disposed');
    this.whole ??= await createOnnxSession(this.model.onnx, { threads: this.options.threads, device: this.options.device });
    return this.whole;
  }

  private async tiled(): Promise<TiledGenerator> {
    if (this.disposed) throw new UsageError('this Translator has been disposed');
    if (!this.tiledRunner) {
      const tile = this.options.tile;
      this.tiledRunner = await createTiledGenerator(this.model.stateDict, {
        tileSize: typeof tile === 'number' ? tile : undefined,
        threads: this.options.threads,
      });
    }
    return this.tiledRunner;
  }
}
