import { promises as fsp } from 'node:fs';
import * as path from 'node:path';

import sharp from 'sharp';

import {
  InputError,
  NumericError,
  UsageError,
  decodeImage,
  float32Tensor,
  imageToTensor,
  readTorchStateDict,
  tensorToFloat32,
  tensorToImage,
  writeSafetensors,
  type RgbImage,
} from '@scenimefy/io';
import { describeIfFixture, makeTempDir, referenceFixturePath, type TempDir } from '@scenimefy/test-utils';

import { exportGeneratorOnnx } from '../export/onnx';
import { createOnnxSession } from './node-engine';
import { runGenerator } from './onnx-session';
import { Translator } from './translator';

function image(width: number, height: number): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < data.length; i++) data[i] = (i * 31 + (i % 7) * 17) % 256;
  return { width, height, data };
}

describeIfFixture('i2i/netG-ngf16.pth', 'Translator', () => {
  const model = referenceFixturePath('i2i/netG-ngf16.pth');
  let whole: Translator;
  beforeAll(async () => {
    whole = await Translator.load(model, { tile: 'off', threads: 1 });
  });
  afterAll(async () => {
    await whole.dispose();
  });

  it('gives exactly the generator output with the reference preprocessing and uint8 truncation', async () => {
    const img = image(40, 32);
    const r = await whole.translateImage(img);
    expect(r).toMatchObject({ input: { width: 40, height: 32 }, model: { width: 40, height: 32 }, tiled: false });
    const session = await createOnnxSession(exportGeneratorOnnx(await readTorchStateDict(model)), { threads: 1 });
    try {
      const t = imageToTensor(img);
      const out = await runGenerator(session, t.data, [1, 3, 32, 40]);
      expect(Buffer.from(r.image.data).equals(Buffer.from(tensorToImage(out, [1, 3, 32, 40]).data))).toBe(true);
      const rounded = await whole.translateImage(img, { rounding: 'round' });
      expect(Buffer.from(rounded.image.data).equals(Buffer.from(tensorToImage(out, [1, 3, 32, 40], { rounding: 'round' }).data))).toBe(
        true,
      );
    } finally {
      await session.release();
    }
  });

  it('tiled and whole-image inference agree to the last uint8 level almost everywhere', async () => {
    const tiled = await Translator.load(model, { tile: 16, threads: 1 });
    try {
      const img = image(60, 44);
      const a = await whole.translateImage(img);
      const b = await tiled.translateImage(img);
      expect(b.tiled).toBe(true);
      let maxDiff = 0;
      let differing = 0;
      for (let i = 0; i < a.image.data.length; i++) {
        const d = Math.abs(a.image.data[i]! - b.image.data[i]!);
        maxDiff = Math.max(maxDiff, d);
        if (d > 0) differing++;
      }
      // Float outputs agree within ~1e-5; truncation to uint8 can flip a value sitting on a level boundary.
      expect(maxDiff).toBeLessThanOrEqual(1);
      expect(differing / a.image.data.length).toBeLessThan(0.001);
    } finally {
      await tiled.dispose();
    }
  });

  it('tiles automatically above the pixel budget and not below', async () => {
    const auto = await Translator.load(model, { tile: 'auto', tilePixelBudget: 40 * 40, threads: 1 });
    try {
      expect((await auto.translateImage(image(40, 40))).tiled).toBe(false);
      expect((await auto.translateImage(image(44, 40))).tiled).toBe(true);
    } finally {
      await auto.dispose();
    }
  });

  it('rounds the size half to even, caps the long side, and resizes back on request', async () => {
    const odd = image(66, 50); // 16.5 → 16, 12.5 → 12
    expect((await whole.translateImage(odd)).model).toEqual({ width: 64, height: 48 });
    const back = await whole.translateImage(odd, { resizeBack: true });
    expect([back.image.width, back.image.height]).toEqual([66, 50]);
    const capped = await whole.translateImage(image(200, 100), { maxSide: 64 });
    expect(capped.model).toEqual({ width: 64, height: 32 });
    await expect(whole.translateImage(image(10, 10), { maxSide: 2 })).rejects.toThrow(UsageError);
  });

  it('refuses images too small for the generator, naming the file', async () => {
    const png = await sharp(Buffer.alloc(5 * 5 * 3, 90), { raw: { width: 5, height: 5, channels: 3 } })
      .png()
      .toBuffer();
    const err = await whole.translate(png, { decode: { file: 'tiny.png' } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InputError);
    expect((err as Error).message).toBe(
      'tiny.png: image too small: 5×5 pixels; the generator needs at least 8×8 after rounding to multiples of 4',
    );
  });

  it('returns encoded buffers and sharp pipelines', async () => {
    const src = await sharp(Buffer.from(image(32, 24).data), { raw: { width: 32, height: 24, channels: 3 } })
      .jpeg()
      .toBuffer();
    const webp = await whole.translateToBuffer(src, 'webp');
    expect((await sharp(webp).metadata()).format).toBe('webp');
    const pipeline = await whole.translateToSharp(src);
    const { info } = await pipeline.resize(16, 12).png().toBuffer({ resolveWithObject: true });
    expect([info.width, info.height, info.format]).toEqual([16, 12, 'png']);
    const decoded = await decodeImage(await whole.translateToBuffer(src, 'png'));
    expect([decoded.width, decoded.height]).toEqual([32, 24]);
  });

  it('validates the tile setting and refuses use after dispose', async () => {
    await expect(Translator.load(model, { tile: 10 })).rejects.toThrow("tile must be 'auto', 'off' or a multiple of 4 ≥ 16, got 10");
    const t = await Translator.load(model, { tile: 'off' });
    await t.dispose();
    await expect(t.translateImage(image(16, 16))).rejects.toThrow('this Translator has been disposed');
    const tiledOnly = await Translator.load(model, { tile: 16 });
    expect((await tiledOnly.translateImage(image(16, 16))).tiled).toBe(true);
    await tiledOnly.dispose();
    await expect(tiledOnly.translateImage(image(16, 16))).rejects.toThrow('this Translator has been disposed');
  });
});

describeIfFixture('i2i/netG-ngf16.pth', 'Translator on broken weights (issue 12 #10)', () => {
  let tmp: TempDir;
  beforeAll(async () => {
    tmp = await makeTempDir('translator-numeric');
  });
  afterAll(async () => {
    await tmp.cleanup();
  });

  /** The fixture generator with one weight replaced, written as a .safetensors model file. */
  async function brokenModel(name: string, key: string, value: number): Promise<string> {
    const stateDict = await readTorchStateDict(referenceFixturePath('i2i/netG-ngf16.pth'));
    const values = tensorToFloat32(stateDict.get(key)!).slice();
    values[0] = value;
    stateDict.set(key, float32Tensor(stateDict.get(key)!.shape, values));
    const file = path.join(tmp.dir, name);
    await writeSafetensors(file, stateDict);
    return file;
  }

  it.each([
    ['a NaN bias of the last conv', 'nan.safetensors', 'model.30.bias', NaN, 'off' as const],
    ['an infinite weight of the first conv, tiled', 'inf.safetensors', 'model.1.weight', Infinity, 16],
  ])('fails with a NumericError naming the image and the model for %s', async (_what, name, key, value, tile) => {
    const model = await brokenModel(name, key, value);
    const photo = path.join(tmp.dir, 'photo.png');
    await sharp(Buffer.from(image(24, 16).data), { raw: { width: 24, height: 16, channels: 3 } })
      .png()
      .toFile(photo);
    const translator = await Translator.load(model, { tile, threads: 1 });
    try {
      const output = path.join(tmp.dir, `${name}.png`);
      const err = await translator.translateFile(photo, output).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(NumericError);
      expect((err as NumericError).file).toBe(photo);
      expect((err as Error).message).toMatch(
        new RegExp(
          `^${escapeRegExp(photo)}: the generator returned \\d+ NaN or infinite value\\(s\\) of 1152 for this image \\(model: ${escapeRegExp(model)}\\)`,
        ),
      );
      expect((err as Error).message).not.toContain('\n');
      await expect(fsp.stat(output)).rejects.toThrow(/ENOENT/); // nothing written
    } finally {
      await translator.dispose();
    }
  });
});

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
