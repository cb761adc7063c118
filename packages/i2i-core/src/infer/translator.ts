/**
 * The inference engine for Node: photo file or bytes in, anime scene out. It is the browser-safe ImageTranslator
 * (image-translator.ts: the reference's preprocessing and postprocessing, SPEC §8, and tiling) on onnxruntime-node,
 * plus what needs Node: model resolution (paths, registry names, the cache), decoding and encoding with sharp
 * through @scenimefy/io, atomic output files.
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
  writeImage,
  type DecodeImageOptions,
  type EncodeImageOptions,
  type ImageFormat,
  type RgbImage,
} from '@scenimefy/io';

import {
  ImageTranslator,
  checkTileSetting,
  modelInputSize,
  type ImageTranslateOptions,
  type ImageTranslatorOptions,
  type TranslateResult,
} from './image-translator';
import { DEFAULT_TRANSLATE_MEMORY_BUDGET, estimateTranslateMemory, type TranslateMemoryEstimate } from './memory-estimate';
import { resolveModel, type ResolveModelOptions, type ResolvedModel } from './model-source';
import { nodeOrtRuntime } from './node-runtime';

export { DEFAULT_TILE_PIXEL_BUDGET, MIN_MODEL_SIDE } from './image-translator';
export type { TileSetting, TranslateResult } from './image-translator';

export interface TranslatorOptions extends ResolveModelOptions, ImageTranslatorOptions {
  /**
   * Refuse, before decoding, an image whose translation is estimated to need more memory than this many bytes
   * (estimateTranslateMemory; default DEFAULT_TRANSLATE_MEMORY_BUDGET, 16 GiB; `Infinity` turns the check off).
   */
  maxMemory?: number;
}

export interface TranslateOptions extends ImageTranslateOptions {
  /** Options for decoding when the input is a path or bytes (EXIF orientation, pixel limit, alpha, file name). */
  decode?: DecodeImageOptions;
}

export class Translator {
  private disposed = false;

  private constructor(
    readonly model: ResolvedModel,
    private readonly images: ImageTranslator,
    private readonly maxMemory: number,
  ) {}

  /** Load a generator once (see resolveModel for what `model` may be; undefined = the default model). */
  static async load(model?: string, options: TranslatorOptions = {}): Promise<Translator> {
    const tile = checkTileSetting(options.tile);
    const maxMemory = options.maxMemory ?? DEFAULT_TRANSLATE_MEMORY_BUDGET;
    if (!(maxMemory === Infinity || (Number.isFinite(maxMemory) && maxMemory > 0))) {
      throw new UsageError(`maxMemory must be a positive number of bytes or Infinity, got ${maxMemory}`);
    }
    const resolved = await resolveModel(model, options);
    const images = await ImageTranslator.create(nodeOrtRuntime(), resolved, { ...options, tile });
    return new Translator(resolved, images, maxMemory);
  }

  /** Whether an image of `width`×`height` model pixels runs in tiles under the current setting. */
  usesTiles(width: number, height: number): boolean {
    return this.images.usesTiles(width, height);
  }

  /** The estimated peak memory of translating a decoded `width`×`height` image with this model and these options. */
  estimateMemory(width: number, height: number, options: Pick<TranslateOptions, 'maxSide'> = {}): TranslateMemoryEstimate {
    const model = modelInputSize(width, height, options.maxSide);
    const ngf = this.model.stateDict.get('model.1.weight')?.shape[0] ?? 64;
    return estimateTranslateMemory(width, height, { model, ngf, tiled: this.usesTiles(model.width, model.height) });
  }

  /** Translate a decoded image. */
  async translateImage(img: RgbImage, options: TranslateOptions = {}): Promise<TranslateResult> {
    this.assertLive();
    this.assertFitsMemory(img.width, img.height, options, img.source?.file);
    return this.images.translateImage(img, options);
  }

  /** Decode a file path or encoded bytes, then translate. */
  async translate(input: string | Uint8Array, options: TranslateOptions = {}): Promise<TranslateResult> {
    this.assertLive();
    // The memory check runs on the size in the header, after io's own header checks (truncation, pixel limit) and
    // before any pixel is decoded.
    const img = await decodeImage(input, {
      ...options.decode,
      beforeDecode: async (header) => {
        await options.decode?.beforeDecode?.(header);
        this.assertFitsMemory(header.width, header.height, options, header.file);
      },
    });
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
    await this.images.dispose();
  }

  private assertLive(): void {
    if (this.disposed) throw new UsageError('this Translator has been disposed');
  }

  /** InputError naming the file when the image's estimated peak memory is over the budget (issue 12 #7). */
  private assertFitsMemory(width: number, height: number, options: TranslateOptions, file: string | undefined): void {
    if (this.maxMemory === Infinity) return;
    let estimate: TranslateMemoryEstimate;
    try {
      estimate = this.estimateMemory(width, height, options);
    } catch {
      return; // a size or option the translation itself refuses, with its own message
    }
    if (estimate.bytes <= this.maxMemory) return;
    const how = estimate.tiled ? 'in tiles' : 'as one image (--tile off)';
    const scaled =
      estimate.model.width !== width || estimate.model.height !== height
        ? ` (run at ${estimate.model.width}×${estimate.model.height})`
        : '';
    const advice = estimate.tiled ? 'downscale it with --max-side' : 'let it run in tiles (--tile auto) or downscale it with --max-side';
    throw new InputError(
      `${width}×${height} pixels${scaled} would need about ${gib(estimate.bytes)} GiB to translate ${how} with this model (ngf ${estimate.ngf}), ` +
        `more than the limit of ${gib(this.maxMemory)} GiB; ${advice}, or raise the limit (maxMemory; --max-memory in the CLI)`,
      file !== undefined ? { file } : {},
    );
  }
}

function gib(bytes: number): string {
  return (bytes / 2 ** 30).toFixed(1);
}
