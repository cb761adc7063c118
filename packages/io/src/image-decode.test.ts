// Every input is made here with sharp (or by hand for broken files), so nothing binary is committed.
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { deflateSync } from 'node:zlib';

import { repoRoot } from '@scenimefy/test-utils';
import sharp from 'sharp';

import { InputError, UsageError } from './errors';
import { DEFAULT_MAX_PIXELS, decodeImage } from './image-decode';
import { jpegShortfall } from './jpeg-scan';

let dir: string;
beforeAll(async () => {
  dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'scenimefy-decode-'));
});
afterAll(async () => {
  await fsp.rm(dir, { recursive: true, force: true });
});

/** 8-bit RGB test pattern: smooth ramps, so lossy codecs stay close. */
function pattern(width: number, height: number): Buffer {
  const data = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const p = (y * width + x) * 3;
      data[p] = Math.round((255 * x) / Math.max(width - 1, 1));
      data[p + 1] = Math.round((255 * y) / Math.max(height - 1, 1));
      data[p + 2] = 100;
    }
  }
  return data;
}

const raw = (data: Buffer | Uint16Array, width: number, height: number, channels: 1 | 2 | 3 | 4) =>
  sharp(data, { raw: { width, height, channels } });

async function errorOf(p: Promise<unknown>): Promise<Error> {
  const result = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(result instanceof Error)) throw new Error('expected a rejection');
  return result;
}

function maxAbsDiff(a: Uint8Array, b: Uint8Array): number {
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!));
  return d;
}

/** A PNG made of chunks; CRCs are computed so only the content we choose is wrong. */
function pngWithHeader(width: number, height: number, idat: Buffer): Buffer {
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc32 = (b: Buffer) => {
    let c = 0xffffffff;
    for (const byte of b) c = crcTable[(c ^ byte) & 0xff]! ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type: string, data: Buffer) => {
    const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(body));
    return Buffer.concat([len, body, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // RGB
  return Buffer.concat([
    Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]),
    chunk('IHDR', ihdr),
    chunk('IDAT', idat),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

describe('decodeImage: formats', () => {
  const W = 24;
  const H = 16;
  const src = pattern(W, H);

  it.each([
    ['png', 0, () => raw(src, W, H, 3).png()],
    ['webp', 0, () => raw(src, W, H, 3).webp({ lossless: true })],
    ['tiff', 0, () => raw(src, W, H, 3).tiff({ compression: 'lzw' })],
    ['avif', 0, () => raw(src, W, H, 3).avif({ lossless: true })],
    ['jpeg', 6, () => raw(src, W, H, 3).jpeg({ quality: 95, chromaSubsampling: '4:4:4' })],
  ] as const)('%s decodes to the same RGB (max diff %d)', async (format, tolerance, make) => {
    const bytes = await make().toBuffer();
    const img = await decodeImage(bytes, { file: `pattern.${format}` });
    expect([img.width, img.height]).toEqual([W, H]);
    expect(img.source).toMatchObject({ file: `pattern.${format}`, format, width: W, height: H, orientation: 1 });
    expect(maxAbsDiff(img.data, src)).toBeLessThanOrEqual(tolerance);
  });

  it('takes the first frame of an animated GIF', async () => {
    const blue = Buffer.alloc(4 * 4 * 4);
    const red = Buffer.alloc(4 * 4 * 4);
    for (let i = 0; i < 16; i++) {
      blue.set([0, 0, 255, 255], i * 4);
      red.set([255, 0, 0, 255], i * 4);
    }
    const gif = await sharp(Buffer.concat([blue, red]), { raw: { width: 4, height: 8, channels: 4, pageHeight: 4 } })
      .gif()
      .toBuffer();
    expect((await sharp(gif).metadata()).pages).toBe(2);
    const img = await decodeImage(gif);
    expect([img.width, img.height, img.source?.format]).toEqual([4, 4, 'gif']);
    for (let i = 0; i < 16; i++) expect(Array.from(img.data.subarray(3 * i, 3 * i + 3))).toEqual([0, 0, 255]);
  });

  it('expands greyscale and palette PNGs to RGB', async () => {
    const grey = await raw(Buffer.from([0, 50, 100, 255]), 2, 2, 1)
      .toColourspace('b-w')
      .png()
      .toBuffer();
    const g = await decodeImage(grey);
    expect(g.source).toMatchObject({ channels: 1, space: 'b-w' });
    expect(Array.from(g.data)).toEqual([0, 0, 0, 50, 50, 50, 100, 100, 100, 255, 255, 255]);

    const colours = Buffer.from([255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30]);
    const palette = await raw(colours, 2, 2, 3).png({ palette: true, colours: 8, dither: 0 }).toBuffer();
    expect((await sharp(palette).metadata()).isPalette).toBe(true);
    expect(Array.from((await decodeImage(palette)).data)).toEqual(Array.from(colours));
  });

  it('reduces 16-bit RGB PNGs to their high byte (as PIL does for 16-bit RGB)', async () => {
    const levels = [0, 255, 256, 0x80ff, 0x8000, 65535, 0x7f80, 0x7f7f, 1, 0xfeff, 0xff00, 12345];
    const png16 = await raw(Uint16Array.from(levels), 2, 2, 3).toColourspace('rgb16').png().toBuffer();
    const img = await decodeImage(png16);
    expect(img.source).toMatchObject({ depth: 'ushort', space: 'rgb16' });
    expect(Array.from(img.data)).toEqual(levels.map((v) => v >> 8));
  });

  it('converts CMYK JPEGs to sRGB', async () => {
    const rgb = Buffer.from([255, 0, 0, 255, 255, 255, 0, 0, 0, 128, 128, 128]);
    const cmyk = await raw(rgb, 4, 1, 3).toColourspace('cmyk').jpeg({ quality: 100 }).toBuffer();
    const img = await decodeImage(cmyk);
    expect(img.source).toMatchObject({ space: 'cmyk', channels: 4 });
    const px = (i: number) => Array.from(img.data.subarray(3 * i, 3 * i + 3));
    const [red, white, black, grey] = [px(0), px(1), px(2), px(3)];
    // Through sharp's CMYK profile saturated red lands near (231, 0, 0): check hue and lightness, not exact values.
    expect(red[0]).toBeGreaterThan(200);
    expect(Math.max(red[1]!, red[2]!)).toBeLessThan(30);
    expect(Math.min(...white)).toBeGreaterThanOrEqual(250);
    expect(Math.max(...black)).toBeLessThanOrEqual(20);
    expect(Math.max(...grey) - Math.min(...grey)).toBeLessThanOrEqual(6);
  });

  it("drops alpha like PIL's convert('RGB') by default, and flattens over a colour on request", async () => {
    const rgba = Buffer.from([255, 0, 0, 0, 0, 255, 0, 128, 0, 0, 255, 255, 10, 20, 30, 40]);
    const png = await raw(rgba, 2, 2, 4).png().toBuffer();
    const dropped = await decodeImage(png);
    expect(dropped.source?.hasAlpha).toBe(true);
    expect(Array.from(dropped.data)).toEqual([255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30]);

    const flat = await decodeImage(png, { alpha: { flatten: '#ffffff' } });
    const expected = [0, 1, 2, 3].flatMap((p) => {
      const a = rgba[4 * p + 3]! / 255;
      return [0, 1, 2].map((c) => rgba[4 * p + c]! * a + 255 * (1 - a));
    });
    Array.from(flat.data).forEach((v, i) => expect(Math.abs(v - expected[i]!)).toBeLessThanOrEqual(1));
    const black = await decodeImage(png, { alpha: { flatten: { r: 0, g: 0, b: 0 } } });
    expect(Array.from(black.data.subarray(0, 3))).toEqual([0, 0, 0]);
  });

  it('decodes a 1×1 image given as a Uint8Array view into a larger buffer', async () => {
    const png = await raw(Buffer.from([1, 2, 3]), 1, 1, 3)
      .png()
      .toBuffer();
    const backing = new Uint8Array(png.length + 10);
    backing.set(png, 5);
    const img = await decodeImage(backing.subarray(5, 5 + png.length));
    expect([img.width, img.height, Array.from(img.data)]).toEqual([1, 1, [1, 2, 3]]);
  });
});

describe('decodeImage: EXIF orientation', () => {
  // Stored 16×8: left half red, right half blue. Orientation 6 means "rotate 90° clockwise to display".
  const W = 16;
  const H = 8;
  const stored = Buffer.alloc(W * H * 3);
  for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) stored.set(x < W / 2 ? [255, 0, 0] : [0, 0, 255], (y * W + x) * 3);
  const jpeg = () => raw(stored, W, H, 3).jpeg({ quality: 100, chromaSubsampling: '4:4:4' }).withMetadata({ orientation: 6 }).toBuffer();
  const pixel = (img: { width: number; data: Uint8Array }, x: number, y: number) =>
    Array.from(img.data.subarray((y * img.width + x) * 3, (y * img.width + x) * 3 + 3));
  const isRed = (p: number[]) => p[0]! > 200 && p[2]! < 60;
  const isBlue = (p: number[]) => p[2]! > 200 && p[0]! < 60;

  it('is applied by default: the picture comes out upright, width and height swapped', async () => {
    const img = await decodeImage(await jpeg());
    expect([img.width, img.height]).toEqual([H, W]);
    expect(img.source).toMatchObject({ orientation: 6, orientationApplied: true, width: W, height: H });
    expect(isRed(pixel(img, 4, 3))).toBe(true); // top half red
    expect(isBlue(pixel(img, 4, 12))).toBe(true); // bottom half blue
  });

  it("is left alone with orientation: 'ignore', as the reference does", async () => {
    const img = await decodeImage(await jpeg(), { orientation: 'ignore' });
    expect([img.width, img.height]).toEqual([W, H]);
    expect(img.source).toMatchObject({ orientation: 6, orientationApplied: false });
    expect(isRed(pixel(img, 3, 4))).toBe(true);
    expect(isBlue(pixel(img, 12, 4))).toBe(true);
  });
});

describe('decodeImage: files and failures', () => {
  it('reads files with unicode names and names them in errors', async () => {
    const file = path.join(dir, 'фото 写真.jpg');
    await fsp.writeFile(file, await raw(pattern(8, 8), 8, 8, 3).jpeg().toBuffer());
    const img = await decodeImage(file);
    expect(img.source?.file).toBe(file);
    expect([img.width, img.height]).toEqual([8, 8]);

    const missing = path.join(dir, 'нет 无.png');
    const err = await errorOf(decodeImage(missing));
    expect(err).toBeInstanceOf(InputError);
    expect(err.message).toBe(`${missing}: no such file`);
  });

  it('refuses a folder', async () => {
    const err = await errorOf(decodeImage(dir));
    expect(err).toBeInstanceOf(InputError);
    expect(err.message).toBe(`${dir}: is a folder, not an image file`);
  });

  it('refuses a truncated JPEG instead of filling it with grey', async () => {
    const full = await raw(pattern(256, 192), 256, 192, 3).jpeg().toBuffer();
    const file = path.join(dir, 'photo.jpg');
    await fsp.writeFile(file, full.subarray(0, Math.floor(full.length * 0.6)));
    const err = await errorOf(decodeImage(file));
    expect(err).toBeInstanceOf(InputError);
    expect(err.message).toBe(`${file}: not a decodable image (truncated JPEG data)`);
  });

  it('accepts a JPEG whose decoder only warns about corrupt data, as PIL does (sharp alone would refuse it)', async () => {
    const jpeg = Buffer.from(await raw(pattern(64, 48), 64, 48, 3).jpeg().toBuffer());
    // A stray restart marker mid-scan: libjpeg warns "premature end of data segment" and carries on.
    const mid = Math.floor(jpeg.length * 0.6);
    jpeg[mid] = 0xff;
    jpeg[mid + 1] = 0xd1;
    await expect(sharp(jpeg).raw().toBuffer()).rejects.toThrow('Corrupt JPEG data');
    const img = await decodeImage(jpeg, { file: 'glitch.jpg' });
    expect([img.width, img.height]).toEqual([64, 48]);
  });

  it('refuses a truncated PNG', async () => {
    const full = await raw(pattern(64, 64), 64, 64, 3).png().toBuffer();
    const err = await errorOf(decodeImage(full.subarray(0, full.length - 40), { file: 'cut.png' }));
    expect(err).toBeInstanceOf(InputError);
    expect(err.message).toBe('cut.png: not a decodable image (truncated or corrupt PNG data)');
  });

  it('refuses a zero-byte file', async () => {
    const file = path.join(dir, 'empty.png');
    await fsp.writeFile(file, Buffer.alloc(0));
    const err = await errorOf(decodeImage(file));
    expect(err).toBeInstanceOf(InputError);
    expect(err.message).toBe(`${file}: not a decodable image (empty file)`);
  });

  it('refuses a text file named .png', async () => {
    const file = path.join(dir, 'notes.png');
    await fsp.writeFile(file, 'shopping list: eggs, rice\n');
    const err = await errorOf(decodeImage(file));
    expect(err).toBeInstanceOf(InputError);
    expect(err.message).toBe(`${file}: not a decodable image (unrecognised format; supported: JPEG, PNG, WebP, TIFF, GIF, AVIF)`);
  });

  it('names BMP as unsupported (sharp has no BMP decoder)', async () => {
    // 1×1 24-bit BMP: 14-byte file header, 40-byte BITMAPINFOHEADER, one padded pixel row.
    const bmp = Buffer.from(
      '424d3a000000000000003600000028000000010000000100000001001800000000000400000013' + '0b0000130b00000000000000000000ff000000',
      'hex',
    );
    const err = await errorOf(decodeImage(bmp, { file: 'scan.bmp' }));
    expect(err).toBeInstanceOf(InputError);
    expect(err.message).toBe('scan.bmp: unsupported format BMP (sharp cannot decode it; convert it to PNG or JPEG)');
  });

  it('checks the pixel limit from the header, before decoding any pixel', async () => {
    // A valid IHDR claiming 100000×100000 and an IDAT with almost nothing in it: only the header can be read.
    const huge = pngWithHeader(100_000, 100_000, deflateSync(Buffer.alloc(16)));
    const err = await errorOf(decodeImage(huge, { file: 'bomb.png' }));
    expect(err).toBeInstanceOf(InputError);
    expect(err.message).toBe(
      `bomb.png: 100000×100000 pixels exceeds the decode limit of ${DEFAULT_MAX_PIXELS} pixels; raise the limit (maxPixels; --max-pixels in the CLI) to decode it`,
    );

    // Same construction at 300×200: over a lowered limit it is the limit that fails; within it, the decode does.
    const small = pngWithHeader(300, 200, deflateSync(Buffer.alloc(16)));
    const limited = await errorOf(decodeImage(small, { file: 'short.png', maxPixels: 59_999 }));
    expect(limited.message).toBe(
      'short.png: 300×200 pixels exceeds the decode limit of 59999 pixels; raise the limit (maxPixels; --max-pixels in the CLI) to decode it',
    );
    const decoded = await errorOf(decodeImage(small, { file: 'short.png', maxPixels: 60_000 }));
    expect(decoded).toBeInstanceOf(InputError);
    expect(decoded.message).toMatch(/^short\.png: not a decodable image \(truncated or corrupt PNG data\)$/);
  });

  it('refuses bad options with UsageError', async () => {
    const png = await raw(Buffer.from([1, 2, 3]), 1, 1, 3)
      .png()
      .toBuffer();
    await expect(decodeImage(png, { maxPixels: 0 })).rejects.toThrow(UsageError);
    await expect(decodeImage(png, { orientation: 'auto' as 'exif' })).rejects.toThrow(UsageError);
    await expect(decodeImage(png, { alpha: { flatten: 'not-a-colour' } })).rejects.toThrow(UsageError);
  });
});

describe('JPEGs whose scan data is far too short for their frame (issue 12 #7)', () => {
  /** A real small JPEG (rocket.jpg shrunk to 48×32) whose SOF0 now claims 16000×16000. */
  async function claimingHuge(): Promise<Buffer> {
    const photo = await fsp.readFile(path.join(repoRoot(), 'packages', 'io', 'test-fixtures', 'rocket.jpg'));
    const jpeg = Buffer.from(await sharp(photo).resize(48, 32).jpeg({ quality: 75 }).toBuffer());
    for (let at = 2; at < jpeg.length; ) {
      const marker = jpeg[at + 1]!;
      if (marker === 0xc0) {
        jpeg.writeUInt16BE(16000, at + 5);
        jpeg.writeUInt16BE(16000, at + 7);
        return jpeg;
      }
      at += 2 + jpeg.readUInt16BE(at + 2);
    }
    throw new Error('no SOF0 in the test JPEG');
  }

  it('refuses a 600-byte JPEG that claims 16000×16000 before decoding it (libjpeg would fill it with grey)', async () => {
    const jpeg = await claimingHuge();
    expect(jpeg.length).toBeLessThan(800);
    expect(jpeg.subarray(-2)).toEqual(Buffer.from([0xff, 0xd9])); // complete: sharp's failOn sees nothing wrong
    const err = await errorOf(decodeImage(jpeg, { file: 'tiny.jpg' }));
    expect(err).toBeInstanceOf(InputError);
    expect(err.message).toMatch(
      /^tiny\.jpg: not a decodable image \(truncated JPEG data: 16000×16000 pixels need at least 375000 bytes of scan data, the file holds \d{3}\)$/,
    );
  });

  it('calls beforeDecode only for a header that passed every check, and a throw there refuses the image', async () => {
    const seen: unknown[] = [];
    const beforeDecode = (header: unknown) => {
      seen.push(header);
    };
    await expect(decodeImage(await claimingHuge(), { file: 'tiny.jpg', beforeDecode })).rejects.toThrow(/truncated JPEG data/);
    await expect(decodeImage(await claimingHuge(), { file: 'tiny.jpg', maxPixels: 1000, beforeDecode })).rejects.toThrow(
      /truncated JPEG data/,
    );
    expect(seen).toEqual([]);
    const photo = await fsp.readFile(path.join(repoRoot(), 'packages', 'io', 'test-fixtures', 'rocket.jpg'));
    const img = await decodeImage(photo, { file: 'rocket.jpg', beforeDecode });
    expect(seen).toEqual([{ width: img.source?.width, height: img.source?.height, format: 'jpeg', file: 'rocket.jpg' }]);
    const refused = await errorOf(
      decodeImage(photo, {
        file: 'rocket.jpg',
        beforeDecode: () => {
          throw new InputError('over budget', { file: 'rocket.jpg' });
        },
      }),
    );
    expect(refused.message).toBe('rocket.jpg: over budget');
  });

  it('refuses the same file truncated to 500 bytes', async () => {
    const err = await errorOf(decodeImage((await claimingHuge()).subarray(0, 500), { file: 'cut.jpg' }));
    expect(err.message).toMatch(/^cut\.jpg: not a decodable image \(truncated JPEG data: 16000×16000 pixels need at least 375000 bytes/);
  });

  it('passes the real photos and the most compact JPEGs an encoder makes (flat, quality 1, optimised Huffman)', async () => {
    const photos = [
      path.join(repoRoot(), 'examples', 'photos', 'rocket.jpg'),
      path.join(repoRoot(), 'packages', 'io', 'test-fixtures', 'rocket.jpg'),
      ...['rocket.jpg'].map((f) => path.join(repoRoot(), '..', 'shared', 'samples', f)),
    ];
    for (const file of photos) {
      const bytes = await fsp.readFile(file).catch(() => undefined);
      if (bytes === undefined) continue; // ../shared may be absent outside this workspace; the fixture copy is not
      expect(jpegShortfall(bytes)).toBeUndefined();
    }
    for (const options of [{ quality: 1, mozjpeg: true }, { quality: 1, progressive: true, optimiseCoding: true }, { quality: 1 }]) {
      const flat = await sharp({ create: { width: 2048, height: 1536, channels: 3, background: '#000' } })
        .jpeg(options)
        .toBuffer();
      // mozjpeg spends one bit per 8×8 block here, the least Huffman coding can: twice the bound refused.
      expect(jpegShortfall(flat)).toBeUndefined();
      const img = await decodeImage(flat, { file: 'flat.jpg' });
      expect([img.width, img.height]).toEqual([2048, 1536]);
    }
  });
});
