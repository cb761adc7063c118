import { promises as fsp } from 'node:fs';

import type { RgbImage } from '@scenimefy/io';
import { describeIfFixture, referenceFixturePath } from '@scenimefy/test-utils';
import * as ort from 'onnxruntime-node';

import { ImageTranslator, checkTileSetting, createImageTranslator, generatorModelFromBytes, modelInputSize } from '../browser';
import { Translator } from './translator';

function image(width: number, height: number): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < data.length; i++) data[i] = (i * 31 + (i % 7) * 17) % 256;
  return { width, height, data };
}

describeIfFixture('i2i/netG-ngf16.pth', 'the browser path in Node (onnxruntime-node injected)', () => {
  const file = referenceFixturePath('i2i/netG-ngf16.pth');

  it.each([
    ['whole image', 'off' as const, image(40, 32), {}],
    ['tiled', 16, image(60, 44), {}],
    [
      'resized to a multiple of 4, capped and resized back, rounded',
      'off' as const,
      image(66, 50),
      { maxSide: 60, resizeBack: true, rounding: 'round' as const },
    ],
  ])('gives the same pixels as the Node Translator: %s', async (_what, tile, img, options) => {
    // What a page does: the bytes of a picked file, then the translator on them.
    const bytes = await fsp.readFile(file);
    const model = generatorModelFromBytes(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength), 'netG-ngf16.pth');
    const browser = await createImageTranslator(ort, model, { tile, threads: 1 });
    const node = await Translator.load(file, { tile, threads: 1 });
    try {
      const a = await browser.translateImage(img, options);
      const b = await node.translateImage(img, options);
      expect({ ...a, generatorMs: 0, image: undefined }).toEqual({ ...b, generatorMs: 0, image: undefined });
      expect([a.image.width, a.image.height]).toEqual([b.image.width, b.image.height]);
      expect(Buffer.from(a.image.data).equals(Buffer.from(b.image.data))).toBe(true);
    } finally {
      await browser.dispose();
      await node.dispose();
    }
  });

  it('says the size the generator runs at, and refuses bad settings and use after dispose', async () => {
    expect(modelInputSize(66, 50)).toEqual({ width: 64, height: 48 });
    expect(modelInputSize(200, 100, 64)).toEqual({ width: 64, height: 32 });
    expect(() => modelInputSize(10, 10, 2)).toThrow('max-side must be an integer ≥ 4, got 2');
    expect(() => checkTileSetting(10)).toThrow("tile must be 'auto', 'off' or a multiple of 4 ≥ 16, got 10");
    const bytes = await fsp.readFile(file);
    const translator = await ImageTranslator.create(ort, generatorModelFromBytes(bytes, 'g.pth'), { tile: 'off' });
    await translator.dispose();
    await expect(translator.translateImage(image(16, 16))).rejects.toThrow('this ImageTranslator has been disposed');
  });
});
