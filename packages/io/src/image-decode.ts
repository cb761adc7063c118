/**
 * Decoding image files to 8-bit sRGB with sharp, the way the reference's `Image.open(path).convert('RGB')` does
 * (SPEC §8 step 1), except that EXIF orientation is applied by default (SPEC §11 #12). Every failure is an
 * InputError of one line naming the file.
 */
import sharp from 'sharp';

import { InputError, UsageError, capText, quoteValue } from './errors';
import type { ImageSource, RgbImage } from './image';
import { jpegShortfall } from './jpeg-scan';
import { openRegularFile } from './regular-file';

/** sharp's own default: 0x3FFF × 0x3FFF pixels. */
export const DEFAULT_MAX_PIXELS = 268_402_689;

export interface DecodeImageOptions {
  /**
   * Refuse images whose stored width × height exceeds this, checked from the header before any pixel is decoded
   * (default DEFAULT_MAX_PIXELS = 16383², about 268 megapixels; `Infinity` turns the check off).
   */
  maxPixels?: number;
  /**
   * 'exif' (default): rotate/flip by the EXIF orientation tag so photos come out upright — a departure from the
   * reference, which ignores it (SPEC §11 #12). 'ignore': keep the stored orientation, as the reference does.
   */
  orientation?: 'exif' | 'ignore';
  /**
   * 'drop' (default): discard alpha and keep the stored colour, as PIL's `convert('RGB')` does (no compositing).
   * `{ flatten: colour }`: composite over a background (CSS colour string or {r, g, b}) instead.
   */
  alpha?: 'drop' | { flatten: string | { r: number; g: number; b: number } };
  /**
   * 'ignore' (default): take stored RGB values as sRGB whatever ICC profile is embedded, as PIL's `convert('RGB')`
   * does, so the pixels equal the reference's (checked on an Adobe RGB JPEG). 'convert': colour-manage embedded
   * profiles (Adobe RGB, Display P3, …) to sRGB. CMYK is converted to sRGB either way (with sharp's built-in CMYK
   * profile when the file has none), which differs from PIL's naive CMYK formula.
   */
  iccProfile?: 'ignore' | 'convert';
  /** Name used in errors and in `source.file` when `input` is bytes (default '<bytes>'). */
  file?: string;
  /**
   * Called with the stored size once the header passed every check here (format, truncation, `maxPixels`) and
   * before any pixel is decoded; throw to refuse the image (e.g. a memory budget that depends on the size).
   */
  beforeDecode?: (header: DecodeHeader) => void | Promise<void>;
}

/** What `beforeDecode` learns from the header: the stored size (before EXIF rotation) and the format. */
export interface DecodeHeader {
  readonly width: number;
  readonly height: number;
  readonly format: string;
  readonly file: string;
}

/**
 * Formats decoded here. Anything else sharp might read (SVG, vips) is refused; BMP and PPM, which the reference's
 * loader lists, have no decoder in sharp's prebuilt libvips and get their own message. HEIC (HEVC-coded HEIF) reads
 * its header but cannot be decoded, so it is refused from the header.
 */
const ACCEPTED_FORMATS = new Set(['jpeg', 'png', 'webp', 'tiff', 'gif', 'heif']);
const SUPPORTED_LIST = 'JPEG, PNG, WebP, TIFF, GIF, AVIF';

/** Container names for messages: libvips words its failures per decoder, users know the format's name. */
const FORMAT_LABEL: Readonly<Record<string, string>> = {
  jpeg: 'JPEG',
  png: 'PNG',
  webp: 'WebP',
  tiff: 'TIFF',
  gif: 'GIF',
  heif: 'AVIF/HEIF',
  bmp: 'BMP',
  ppm: 'PPM',
};

const HEIF_BRANDS = new Set(['avif', 'avis', 'heic', 'heix', 'heim', 'heis', 'hevc', 'hevx', 'mif1', 'msf1']);

/** The container a file claims to be, from its first bytes; used for messages only, never to pick a decoder. */
function sniffFormat(b: Uint8Array): string | undefined {
  const ascii = (from: number, to: number): string => String.fromCharCode(...b.subarray(from, to));
  if (b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return 'jpeg';
  if (b[0] === 0x89 && ascii(1, 4) === 'PNG') return 'png';
  if (ascii(0, 4) === 'GIF8') return 'gif';
  if (ascii(0, 4) === 'RIFF' && ascii(8, 12) === 'WEBP') return 'webp';
  if (ascii(0, 4) === 'II*\0' || ascii(0, 4) === 'MM\0*') return 'tiff';
  if (ascii(4, 8) === 'ftyp' && HEIF_BRANDS.has(ascii(8, 12))) return 'heif';
  if (ascii(0, 2) === 'BM' && b.length >= 18) {
    const dibHeader = b[14]! | (b[15]! << 8) | (b[16]! << 16) | (b[17]! << 24);
    if ([12, 16, 40, 52, 56, 64, 108, 124].includes(dibHeader)) return 'bmp';
  }
  if (b[0] === 0x50 && b[1]! >= 0x31 && b[1]! <= 0x36 && (b[2] === 0x0a || b[2] === 0x20 || b[2] === 0x0d || b[2] === 0x09)) return 'ppm';
  return undefined;
}

/** A one-line reason for a sharp/libvips failure, in the user's terms. */
function decodeFailureReason(message: string, format: string | undefined): string {
  const label = format !== undefined ? (FORMAT_LABEL[format] ?? format.toUpperCase()) : undefined;
  if (/Input (Buffer|file) is empty/i.test(message)) return 'empty file';
  if (/unsupported image format/i.test(message)) {
    return label !== undefined ? `corrupt ${label} data` : `unrecognised format; supported: ${SUPPORTED_LIST}`;
  }
  if (/premature end|truncat|unexpected end|end of (file|stream|data)|short read/i.test(message)) {
    return `truncated ${label ?? 'image'} data`;
  }
  if (/read error/i.test(message)) return `truncated or corrupt ${label ?? 'image'} data`;
  const firstLine = message
    .replace(/^Input (buffer|file) has corrupt header:\s*/i, '')
    .split('\n')
    .map((l) => l.trim())
    .find((l) => l.length > 0);
  return `corrupt ${label ?? 'image'} data${firstLine !== undefined ? `: ${capText(firstLine)}` : ''}`;
}

async function readInput(input: string | Uint8Array, name: string | undefined): Promise<{ bytes: Uint8Array; file: string }> {
  if (typeof input !== 'string') return { bytes: input, file: name ?? '<bytes>' };
  const file = input;
  try {
    const handle = await openRegularFile(file, 'image');
    try {
      return { bytes: await handle.readFile(), file };
    } finally {
      await handle.close();
    }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EISDIR') throw new InputError('is a folder, not an image file', { file, cause: error });
    if (error instanceof InputError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new InputError('no such file', { file, cause: error });
    if (code === 'EACCES' || code === 'EPERM') throw new InputError('cannot read (permission denied)', { file, cause: error });
    throw new InputError(`cannot read (${code ?? String(error)})`, { file, cause: error });
  }
}

function checkOptions(options: DecodeImageOptions): number {
  const maxPixels = options.maxPixels ?? DEFAULT_MAX_PIXELS;
  if (!(maxPixels === Infinity || (Number.isInteger(maxPixels) && maxPixels > 0))) {
    throw new UsageError(`decodeImage: maxPixels must be a positive integer or Infinity, got ${maxPixels}`);
  }
  if (options.orientation !== undefined && options.orientation !== 'exif' && options.orientation !== 'ignore') {
    throw new UsageError(`decodeImage: orientation must be 'exif' or 'ignore', got '${String(options.orientation)}'`);
  }
  if (options.iccProfile !== undefined && options.iccProfile !== 'ignore' && options.iccProfile !== 'convert') {
    throw new UsageError(`decodeImage: iccProfile must be 'ignore' or 'convert', got '${String(options.iccProfile)}'`);
  }
  const alpha = options.alpha;
  if (alpha !== undefined && alpha !== 'drop' && (typeof alpha !== 'object' || alpha === null || !('flatten' in alpha))) {
    throw new UsageError(`decodeImage: alpha must be 'drop' or { flatten: colour }`);
  }
  return maxPixels;
}

/**
 * Decode a JPEG, PNG, WebP, TIFF (first page), GIF (first frame) or AVIF file — or its bytes — to 8-bit sRGB HWC.
 * Grey, palette, 16-bit (reduced to the high byte) and CMYK inputs all come out as RGB.
 *
 * Errors (InputError, one line naming the file):
 *   `x.jpg: no such file`, `dir: is a folder, not an image file`,
 *   `big.png: 100000×100000 pixels exceeds the decode limit of 268402689 pixels; raise the limit (maxPixels; --max-pixels in the CLI) to decode it`,
 *   `photo.jpg: not a decodable image (truncated JPEG data)`,
 *   `tiny.jpg: not a decodable image (truncated JPEG data: 16000×16000 pixels need at least 500000 bytes of scan data, the file holds 420)`,
 *   `empty.png: not a decodable image (empty file)`, `notes.png: not a decodable image (unrecognised format; …)`,
 *   `scan.bmp: unsupported format BMP (sharp cannot decode it; convert it to PNG or JPEG)`.
 *
 * Example: const img = await decodeImage('photo.jpg'); img.width, img.height, img.data.length === w * h * 3
 */
export async function decodeImage(input: string | Uint8Array, options: DecodeImageOptions = {}): Promise<RgbImage> {
  const maxPixels = checkOptions(options);
  const { bytes, file } = await readInput(input, options.file);
  if (bytes.length === 0) throw new InputError('not a decodable image (empty file)', { file });

  const sniffed = sniffFormat(bytes);
  if (sniffed === 'bmp' || sniffed === 'ppm') {
    throw new InputError(`unsupported format ${FORMAT_LABEL[sniffed]!} (sharp cannot decode it; convert it to PNG or JPEG)`, { file });
  }

  // 'error' refuses truncated and corrupt data (sharp would otherwise fill the missing part with grey) but, like
  // PIL, accepts files whose decoder only warns, e.g. a JPEG with extraneous bytes before a marker.
  const failOn = 'error' as const;
  let meta: sharp.Metadata;
  try {
    meta = await sharp(bytes, { failOn, limitInputPixels: false }).metadata();
  } catch (error) {
    throw new InputError(`not a decodable image (${decodeFailureReason((error as Error).message, sniffed)})`, { file, cause: error });
  }
  if (!ACCEPTED_FORMATS.has(meta.format)) {
    throw new InputError(`unsupported format ${meta.format} (supported: ${SUPPORTED_LIST})`, { file });
  }
  if (meta.format === 'heif' && meta.compression === 'hevc') {
    throw new InputError('unsupported format HEIC (HEVC-coded HEIF; sharp decodes AVIF only; convert it to JPEG)', { file });
  }
  // SPEC-free hardening (issue 12 #7): libjpeg fills a scan that ends early with grey, so a tiny file claiming a
  // huge frame would decode into that many pixels; refuse it from its structure before decoding anything.
  const shortfall = meta.format === 'jpeg' ? jpegShortfall(bytes) : undefined;
  if (shortfall !== undefined) throw new InputError(`not a decodable image (truncated JPEG data: ${shortfall})`, { file });
  const pixels = meta.width * meta.height;
  if (pixels > maxPixels) {
    throw new InputError(
      `${meta.width}×${meta.height} pixels exceeds the decode limit of ${maxPixels} pixels; raise the limit (maxPixels; --max-pixels in the CLI) to decode it`,
      { file },
    );
  }
  await options.beforeDecode?.({ width: meta.width, height: meta.height, format: meta.format, file });

  const applyOrientation = (options.orientation ?? 'exif') === 'exif';
  const applyIcc = options.iccProfile === 'convert';
  const alpha = options.alpha ?? 'drop';
  let pipeline = sharp(bytes, {
    failOn,
    limitInputPixels: Number.isFinite(maxPixels) ? maxPixels : false,
    autoOrient: applyOrientation,
    ignoreIcc: !applyIcc,
    pages: 1,
    page: 0,
  });
  if (alpha === 'drop') {
    pipeline = pipeline.removeAlpha();
  } else {
    try {
      pipeline = pipeline.flatten({ background: alpha.flatten });
    } catch (error) {
      throw new UsageError(`decodeImage: bad flatten colour ${quoteValue(alpha.flatten)}: ${capText((error as Error).message)}`);
    }
  }
  let decoded: { data: Buffer; info: sharp.OutputInfo };
  try {
    decoded = await pipeline.toColourspace('srgb').raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
  } catch (error) {
    throw new InputError(`not a decodable image (${decodeFailureReason((error as Error).message, meta.format)})`, {
      file,
      cause: error,
    });
  }
  const { data, info } = decoded;
  if (info.channels !== 3) {
    throw new InputError(`not a decodable image (decoder returned ${info.channels} channels, expected 3)`, { file });
  }
  const orientation = meta.orientation ?? 1;
  const format = meta.format === 'heif' && meta.compression === 'av1' ? 'avif' : meta.format;
  const source: ImageSource = {
    file,
    format,
    width: meta.width,
    height: meta.height,
    channels: meta.channels,
    hasAlpha: meta.hasAlpha,
    orientation,
    orientationApplied: applyOrientation && orientation !== 1,
    space: meta.space,
    depth: meta.depth,
    hasIccProfile: meta.hasProfile,
    iccProfileApplied: applyIcc && meta.hasProfile,
  };
  return {
    width: info.width,
    height: info.height,
    data: new Uint8Array(data.buffer, data.byteOffset, data.length),
    source,
  };
}
