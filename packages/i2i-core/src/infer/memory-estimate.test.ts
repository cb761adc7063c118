import { spawnSync } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';

import * as zlib from 'node:zlib';

import { InputError, encodeImage } from '@scenimefy/io';
import { describeIfFixture, makeTempDir, referenceFixturePath, type TempDir } from '@scenimefy/test-utils';
import { buildSync } from 'esbuild';

import { DEFAULT_TRANSLATE_MEMORY_BUDGET, estimateTranslateMemory, maxTranslatePixels } from './memory-estimate';
import { Translator } from './translator';

/** A PNG claiming `width`×`height` RGB pixels with the data of one row: its size reads, its pixels cannot decode. */
function pngHeaderOnly(width: number, height: number): Uint8Array {
  const chunk = (type: string, data: Uint8Array): Buffer => {
    const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const out = Buffer.alloc(body.length + 8);
    out.writeUInt32BE(data.length, 0);
    body.copy(out, 4);
    out.writeUInt32BE(zlib.crc32(body), body.length + 4);
    return out;
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 2, 0, 0, 0], 8); // 8-bit RGB
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', zlib.deflateSync(new Uint8Array(1 + 3 * width))),
    chunk('IEND', new Uint8Array()),
  ]);
}

describe('estimateTranslateMemory', () => {
  it('is linear in the pixels: fixed part, decoded pixels, model pixels by path and ngf', () => {
    const MB = 1e6;
    expect(estimateTranslateMemory(1000, 1000, { ngf: 16 }).bytes).toBe(192 * MB + 16 * 7 * MB + 24e6 + (4 * 16 + 48) * 1e6);
    expect(estimateTranslateMemory(1000, 1000).bytes).toBe(192 * MB + 64 * 7 * MB + 24e6 + (4 * 64 + 48) * 1e6);
    expect(estimateTranslateMemory(1000, 1000, { tiled: false }).bytes).toBe(192 * MB + 64 * 7 * MB + 24e6 + 61 * 64 * 1e6 + 550 * MB);
    const capped = estimateTranslateMemory(4000, 3000, { model: { width: 1024, height: 768 } });
    expect(capped.bytes).toBe(192 * MB + 64 * 7 * MB + 24 * 12e6 + (4 * 64 + 48) * 1024 * 768);
    expect(capped).toMatchObject({ model: { width: 1024, height: 768 }, ngf: 64, tiled: true });
  });

  it('allows about 50 megapixels at full size for the official model in the default 16 GiB', () => {
    const pixels = maxTranslatePixels();
    expect(pixels).toBe(50_426_430);
    const side = Math.floor(Math.sqrt(pixels));
    expect(estimateTranslateMemory(side, side).bytes).toBeLessThanOrEqual(DEFAULT_TRANSLATE_MEMORY_BUDGET);
    expect(estimateTranslateMemory(side + 1, side + 1).bytes).toBeGreaterThan(DEFAULT_TRANSLATE_MEMORY_BUDGET);
  });
});

describeIfFixture('i2i/netG-ngf16.pth', 'Translator memory budget (issue 12 #7)', () => {
  const model = referenceFixturePath('i2i/netG-ngf16.pth');
  let tmp: TempDir;
  beforeAll(async () => {
    tmp = await makeTempDir('memory-budget');
  });
  afterAll(async () => {
    await tmp.cleanup();
  });

  it('refuses, from the header and before decoding, an image whose translation would exceed the budget', async () => {
    const big = path.join(tmp.dir, 'big.png');
    await fsp.writeFile(big, pngHeaderOnly(12_000, 12_000));
    const translator = await Translator.load(model, { threads: 1 });
    try {
      // Without the check this reached the decoder (whose error it would be here; a real 12000² file decoded and
      // then needed about 20 GB). Now the header alone is enough to refuse it.
      const err = await translator.translateFile(big, path.join(tmp.dir, 'out.png')).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(InputError);
      expect((err as Error).message).toBe(
        `${big}: 12000×12000 pixels would need about 18.5 GiB to translate in tiles with this model (ngf 16), more than the limit ` +
          'of 16.0 GiB; downscale it with --max-side, or raise the limit (maxMemory; --max-memory in the CLI)',
      );
      // Capped at 4096 pixels it fits, so it goes on to the decoder, which finds no pixel data.
      await expect(translator.translate(big, { maxSide: 4096 })).rejects.toThrow(/not a decodable image/);
    } finally {
      await translator.dispose();
    }
  });

  it("leaves a truncated JPEG to io's header check, which runs before the memory budget", async () => {
    // A 48×32 JPEG whose SOF0 claims 16000×16000: over the memory budget, but first of all not a whole image.
    const jpeg = Buffer.from(await encodeImage({ width: 48, height: 32, data: new Uint8Array(48 * 32 * 3).fill(128) }, 'jpg'));
    for (let at = 2; at < jpeg.length; at += 2 + jpeg.readUInt16BE(at + 2)) {
      if (jpeg[at + 1] !== 0xc0) continue;
      jpeg.writeUInt16BE(16000, at + 5);
      jpeg.writeUInt16BE(16000, at + 7);
      break;
    }
    const translator = await Translator.load(model, { threads: 1 });
    try {
      await expect(translator.translate(jpeg, { decode: { file: 'tiny.jpg' } })).rejects.toThrow(
        /^tiny\.jpg: not a decodable image \(truncated JPEG data: 16000×16000 pixels/,
      );
    } finally {
      await translator.dispose();
    }
  });

  it('counts the whole-image path for --tile off and takes a raised limit', async () => {
    const wide = pngHeaderOnly(2000, 2000);
    const whole = await Translator.load(model, { tile: 'off', maxMemory: 2 * 2 ** 30, threads: 1 });
    try {
      await expect(whole.translate(wide, { decode: { file: 'wide.png' } })).rejects.toThrow(
        'wide.png: 2000×2000 pixels would need about 4.5 GiB to translate as one image (--tile off) with this model (ngf 16), more than the ' +
          'limit of 2.0 GiB; let it run in tiles (--tile auto) or downscale it with --max-side, or raise the limit (maxMemory; --max-memory in the CLI)',
      );
    } finally {
      await whole.dispose();
    }
    const raised = await Translator.load(model, { tile: 'off', maxMemory: Infinity, threads: 1 });
    try {
      await expect(raised.translate(wide)).rejects.toThrow(/not a decodable image/);
    } finally {
      await raised.dispose();
    }
    await expect(Translator.load(model, { maxMemory: 0 })).rejects.toThrow(
      'maxMemory must be a positive number of bytes or Infinity, got 0',
    );
  });

  it('bounds the measured peak memory of a tiled translation (child process, 1024², ngf 16)', async () => {
    const photo = path.join(tmp.dir, 'photo.png');
    const width = 1024;
    const data = new Uint8Array(width * width * 3);
    for (let i = 0; i < data.length; i++) data[i] = (i * 31 + (i % 7) * 17) % 256;
    await fsp.writeFile(photo, await encodeImage({ width, height: width, data }, 'png'));
    const script = path.join(tmp.dir, 'translate-child.js');
    buildSync({
      stdin: {
        contents: `
          import { Translator } from './translator';
          (async () => {
            const t = await Translator.load(process.argv[2], { threads: 2 });
            const r = await t.translateFile(process.argv[3], process.argv[4]);
            const estimate = t.estimateMemory(${width}, ${width}).bytes;
            await t.dispose();
            // VmHWM, not resourceUsage().maxRSS: Linux carries the parent's RSS at fork into a child's maxrss
            // across exec, so a child of a large jest worker would report the worker's size.
            let status = '';
            try { status = require('node:fs').readFileSync('/proc/self/status', 'utf8'); } catch {}
            const hwm = /VmHWM:\\s+(\\d+) kB/.exec(status);
            const peak = hwm ? Number(hwm[1]) * 1024 : process.resourceUsage().maxRSS * 1024;
            process.stdout.write(JSON.stringify({ tiled: r.tiled, peak, estimate }));
          })();`,
        resolveDir: __dirname,
        loader: 'ts',
      },
      bundle: true,
      platform: 'node',
      outfile: script,
      conditions: ['@scenimefy/source'],
      mainFields: ['module', 'main'],
      external: ['onnxruntime-node', 'sharp', '@tensorflow/*'],
      logLevel: 'silent',
    });
    const child = spawnSync(process.execPath, [script, model, photo, path.join(tmp.dir, 'anime.png')], {
      encoding: 'utf8',
      env: { ...process.env, NODE_PATH: path.resolve(__dirname, '../../../../node_modules') },
    });
    expect(child.stderr).toBe('');
    const { tiled, peak, estimate } = JSON.parse(child.stdout) as { tiled: boolean; peak: number; estimate: number };
    expect(tiled).toBe(true);
    // An upper bound, and not a vacuous one: measured 0.29 GB against 0.45 GB estimated.
    expect(peak).toBeLessThanOrEqual(estimate);
    expect(peak).toBeGreaterThan(0.5 * estimate);
  }, 120_000);
});
