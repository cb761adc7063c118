/**
 * Encoding RgbImages to PNG / JPEG / WebP with sharp, and writing them atomically (nothing half-written is ever
 * visible under the target name). The reference saves its results as PNG (SPEC §8 step 6).
 */
import * as path from 'node:path';

import sharp from 'sharp';

import { writeFileAtomic } from './atomic-file';
import { ContractError, InputError, UsageError } from './errors';
import type { RgbImage } from './image';

export type ImageFormat = 'png' | 'jpg' | 'jpeg' | 'webp';

/** Default quality of the lossy formats; PNG is lossless and ignores it. */
export const DEFAULT_IMAGE_QUALITY = 90;

export interface EncodeImageOptions {
  /** JPEG/WebP quality, an integer 1–100 (default DEFAULT_IMAGE_QUALITY). */
  quality?: number;
}

const EXTENSION_FORMATS: Readonly<Record<string, ImageFormat>> = {
  '.png': 'png',
  '.jpg': 'jpg',
  '.jpeg': 'jpeg',
  '.webp': 'webp',
};

/**
 * The encoded file's bytes. No metadata is written (no EXIF, no ICC profile): the pixels are sRGB and upright.
 *
 * Example: const png = await encodeImage(img, 'png'); // Uint8Array starting 0x89 'P' 'N' 'G'
 */
export async function encodeImage(img: RgbImage, format: ImageFormat, options: EncodeImageOptions = {}): Promise<Uint8Array> {
  const { width, height, data } = img;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1 || data.length !== width * height * 3) {
    throw new ContractError(`encodeImage: expected ${width}×${height}×3 = ${width * height * 3} bytes of RGB, got ${data.length}`, {
      field: 'data',
    });
  }
  const quality = options.quality ?? DEFAULT_IMAGE_QUALITY;
  if (!Number.isInteger(quality) || quality < 1 || quality > 100) {
    throw new UsageError(`encodeImage: quality must be an integer from 1 to 100, got ${quality}`);
  }
  const raw = sharp(data, { raw: { width, height, channels: 3 } });
  let encoded: Buffer;
  switch (format) {
    case 'png':
      encoded = await raw.png().toBuffer();
      break;
    case 'jpg':
    case 'jpeg':
      encoded = await raw.jpeg({ quality }).toBuffer();
      break;
    case 'webp':
      encoded = await raw.webp({ quality }).toBuffer();
      break;
    default:
      throw new UsageError(`encodeImage: unknown format '${String(format)}' (known: png, jpg, jpeg, webp)`);
  }
  return new Uint8Array(encoded.buffer, encoded.byteOffset, encoded.length);
}

/** The format `writeImage` picks for a file name, by its extension (any case); InputError for anything else. */
export function imageFormatForFile(file: string): ImageFormat {
  const ext = path.extname(file).toLowerCase();
  const format = EXTENSION_FORMATS[ext];
  if (format === undefined) {
    throw new InputError(
      `unknown image extension ${ext === '' ? '(none)' : `'${ext}'`}; use ${Object.keys(EXTENSION_FORMATS).join(', ')}`,
      { file },
    );
  }
  return format;
}

/**
 * Encode `img` in the format its extension names and write it atomically. An unwritable or missing folder is an
 * InputError naming the file, and leaves no temp file behind.
 *
 * Example: await writeImage('out/фото.png', img);
 */
export async function writeImage(file: string, img: RgbImage, options: EncodeImageOptions = {}): Promise<void> {
  const format = imageFormatForFile(file);
  const bytes = await encodeImage(img, format, options);
  await writeFileAtomic(file, bytes);
}
