import { promises as fsp, readdirSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import sharp from 'sharp';

import { ContractError, InputError, UsageError } from './errors';
import type { RgbImage } from './image';
import { decodeImage } from './image-decode';
import { encodeImage, imageFormatForFile, writeImage } from './image-encode';

let dir: string;
beforeEach(async () => {
  dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'scenimefy-encode-'));
});
afterEach(async () => {
  await fsp.chmod(dir, 0o755).catch(() => undefined);
  await fsp.rm(dir, { recursive: true, force: true });
});

function gradient(width: number, height: number): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) data.set([(x * 255) / (width - 1), (y * 255) / (height - 1), 90], (y * width + x) * 3);
  }
  return { width, height, data };
}

function meanAbsDiff(a: Uint8Array, b: Uint8Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += Math.abs(a[i]! - b[i]!);
  return s / a.length;
}

describe('encodeImage', () => {
  const img = gradient(32, 24);

  it('writes lossless PNG that decodes to the same bytes', async () => {
    const png = await encodeImage(img, 'png');
    expect(Array.from(png.subarray(0, 4))).toEqual([0x89, 0x50, 0x4e, 0x47]);
    expect(Array.from((await decodeImage(png)).data)).toEqual(Array.from(img.data));
  });

  it.each(['jpg', 'jpeg', 'webp'] as const)('writes %s close to the input, smaller at lower quality', async (format) => {
    const high = await encodeImage(img, format, { quality: 95 });
    const low = await encodeImage(img, format, { quality: 20 });
    const meta = await sharp(high).metadata();
    expect(meta.format).toBe(format === 'webp' ? 'webp' : 'jpeg');
    expect([meta.width, meta.height]).toEqual([32, 24]);
    expect(meanAbsDiff((await decodeImage(high)).data, img.data)).toBeLessThan(2);
    expect(low.length).toBeLessThan(high.length);
  });

  it('refuses malformed images, bad quality and unknown formats', async () => {
    await expect(encodeImage({ width: 2, height: 2, data: new Uint8Array(5) }, 'png')).rejects.toThrow(ContractError);
    await expect(encodeImage(img, 'jpg', { quality: 0 })).rejects.toThrow(UsageError);
    await expect(encodeImage(img, 'jpg', { quality: 50.5 })).rejects.toThrow(UsageError);
    await expect(encodeImage(img, 'bmp' as 'png')).rejects.toThrow("unknown format 'bmp'");
  });
});

describe('writeImage', () => {
  const img = gradient(8, 6);

  it('infers the format from the extension, in any case, and writes unicode names', async () => {
    expect(imageFormatForFile('a/b.PNG')).toBe('png');
    expect(imageFormatForFile('x.JpEg')).toBe('jpeg');
    const file = path.join(dir, 'фото 写真.webp');
    await writeImage(file, img);
    expect((await sharp(file).metadata()).format).toBe('webp');
    const png = path.join(dir, 'out.png');
    await writeImage(png, img);
    expect(Array.from((await decodeImage(png)).data)).toEqual(Array.from(img.data));
    expect(readdirSync(dir).sort()).toEqual(['out.png', 'фото 写真.webp'].sort());
  });

  it('refuses an unknown extension before writing anything', async () => {
    const file = path.join(dir, 'out.bmp');
    const err = await writeImage(file, img).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InputError);
    expect((err as Error).message).toBe(`${file}: unknown image extension '.bmp'; use .png, .jpg, .jpeg, .webp`);
    await expect(writeImage(path.join(dir, 'noext'), img)).rejects.toThrow('unknown image extension (none)');
    expect(readdirSync(dir)).toEqual([]);
  });

  it('names the file when its folder is missing or is a file, and leaves nothing behind', async () => {
    const missing = path.join(dir, 'missing', 'out.png');
    const err = await writeImage(missing, img).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InputError);
    expect((err as Error).message).toBe(`${missing}: cannot write (ENOENT: folder does not exist)`);

    await fsp.writeFile(path.join(dir, 'plain'), 'x');
    const underFile = path.join(dir, 'plain', 'out.png');
    const err2 = await writeImage(underFile, img).catch((e: unknown) => e);
    expect(err2).toBeInstanceOf(InputError);
    expect((err2 as Error).message).toBe(`${underFile}: cannot write (ENOTDIR: a parent is not a folder)`);
    expect(readdirSync(dir)).toEqual(['plain']);
  });

  // Root ignores folder permissions, so this case only means something for other users.
  const itUnlessRoot = process.getuid?.() === 0 ? it.skip : it;
  itUnlessRoot('names the file when its folder is read-only, and leaves no temp file', async () => {
    const ro = path.join(dir, 'ro');
    await fsp.mkdir(ro);
    await fsp.chmod(ro, 0o555);
    const file = path.join(ro, 'out.png');
    const err = await writeImage(file, img).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InputError);
    expect((err as Error).message).toBe(`${file}: cannot write (EACCES: permission denied)`);
    expect(readdirSync(ro)).toEqual([]);
  });
});
