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
  type ImageTranslateOptions,
  type ImageTranslatorOptions,
  type TranslateResult,
} from './image-translator';
import { resolveModel, type ResolveModelOptions, type ResolvedModel } from './model-source';
import { nodeOrtRuntime } from './node-runtime';

export { DEFAULT_TILE_PIXEL_BUDGET, MIN_MODEL_SIDE } from './image-translator';
export type { TileSetting, TranslateResult } from './image-translator';

export interface TranslatorOptions extends ResolveModelOptions, ImageTranslatorOptions {}

export interface TranslateOptions extends ImageTranslateOptions {
  /** Options for decoding when the input is a path or bytes (EXIF orientation, pixel limit, alpha, file name). */
  decode?: DecodeImageOptions;
}

export class Translator {
  private disposed = false;

  private constructor(
    readonly model: ResolvedModel,
    private readonly images: ImageTranslator,
  ) {}

  /** Load a generator once (see resolveModel for what `model` may be; undefined = the default model). */
  static async load(model?: string, options: TranslatorOptions = {}): Promise<Translator> {
    const tile = checkTileSetting(options.tile);
    const resolved = await resolveModel(model, options);
    const images = await ImageTranslator.create(nodeOrtRuntime(), resolved, { ...options, tile });
    return new Translator(resolved, images);
  }

  /** Whether an image of `width`×`height` model pixels runs in tiles under the current setting. */
  usesTiles(width: number, height: number): boolean {
    return this.images.usesTiles(width, height);
  }

  /** Translate a decoded image. */
  async translateImage(img: RgbImage, options: TranslateOptions = {}): Promise<TranslateResult> {
    this.assertLive();
    return this.images.translateImage(img, options);
  }

  /** Decode a file path or encoded bytes, then translate. */
  async translate(input: string | Uint8Array, options: TranslateOptions = {}): Promise<TranslateResult> {
    this.assertLive();
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
}
