import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import sharp from 'sharp';

import { ContractError, UsageError, tensorToImage } from '@scenimefy/io';

import { writeSampleGrid } from './sample-grid';
import type { SampleGridImage } from './sample-grid';

/** A deterministic [1,3,H,W] tensor in [-1, 1] that differs per channel, row and column. */
function tensor(h: number, w: number, seed: number): Omit<SampleGridImage, 'caption'> {
  const data = new Float32Array(3 * h * w);
  for (let c = 0; c < 3; c++) {
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) data[(c * h + y) * w + x] = Math.sin(seed + 0.7 * c + 0.31 * y + 0.17 * x);
    }
  }
  return { data, shape: [1, 3, h, w] };
}

async function decode(file: string): Promise<{ width: number; height: number; data: Buffer }> {
  const { data, info } = await sharp(file).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, data };
}

function pixel(img: { width: number; data: Buffer }, x: number, y: number): number[] {
  const i = (y * img.width + x) * 3;
  return [img.data[i]!, img.data[i + 1]!, img.data[i + 2]!];
}

/** Whether this machine's sharp draws SVG text at all (it needs fontconfig and one font). */
async function textRenders(): Promise<boolean> {
  const svg =
    '<svg xmlns="http://www.w3.org/2000/svg" width="60" height="20"><text x="2" y="14" font-size="14" font-family="sans-serif">Hg</text></svg>';
  const { data } = await sharp(Buffer.from(svg)).raw().toBuffer({ resolveWithObject: true });
  for (let i = 3; i < data.length; i += 4) if (data[i]! > 128) return true;
  return false;
}

let dir: string;
beforeEach(async () => {
  dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'scenimefy-grid-'));
});
afterEach(async () => {
  await fsp.rm(dir, { recursive: true, force: true });
});

describe('writeSampleGrid', () => {
  it('places every image exactly, with the gap around and between them, in a PNG', async () => {
    const a = tensor(8, 10, 1);
    const b = tensor(8, 6, 2);
    const c = tensor(5, 7, 3);
    const file = path.join(dir, 'samples', 'iter-000010.png');
    const result = await writeSampleGrid(
      file,
      [
        {
          label: 'unpaired',
          images: [
            { caption: 'real_A', ...a },
            { caption: 'fake_B', ...b },
          ],
        },
        { label: 'pair', images: [{ caption: 'real_A_p', ...c }] },
      ],
      { captions: false, gap: 3, background: [10, 20, 30] },
    );
    // Width: 3 + 10 + 3 + 6 + 3; height: 3 + 8 + 3 + 5 + 3.
    expect(result).toEqual({ file, width: 25, height: 22 });
    expect((await fsp.readFile(file)).subarray(0, 4)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47]));
    const img = await decode(file);
    expect([img.width, img.height]).toEqual([25, 22]);

    const expectAt = (t: Omit<SampleGridImage, 'caption'>, left: number, top: number): void => {
      const ref = tensorToImage(t.data, t.shape);
      for (let y = 0; y < ref.height; y++) {
        for (let x = 0; x < ref.width; x++) {
          const i = (y * ref.width + x) * 3;
          expect(pixel(img, left + x, top + y)).toEqual([ref.data[i], ref.data[i + 1], ref.data[i + 2]]);
        }
      }
    };
    expectAt(a, 3, 3);
    expectAt(b, 16, 3);
    expectAt(c, 3, 14);
    for (const [x, y] of [
      [0, 0],
      [13, 5],
      [24, 21],
      [20, 12],
      [15, 16],
    ] as const)
      expect(pixel(img, x, y)).toEqual([10, 20, 30]);
    // Nothing but the grid is left in the folder (atomic write).
    expect(await fsp.readdir(path.dirname(file))).toEqual(['iter-000010.png']);
  });

  it('adds a caption band per row and a label column, with text in them where the machine has a font', async () => {
    const t = tensor(32, 48, 4);
    const rows = [
      {
        label: 'unpaired',
        images: [
          { caption: 'real_A', ...t },
          { caption: 'fake_B', ...t },
        ],
      },
      { label: 'pair', images: [{ caption: 'real_B <&>"\'', ...t }] },
    ];
    const plain = await writeSampleGrid(path.join(dir, 'plain.png'), rows, { captions: false });
    const captioned = await writeSampleGrid(path.join(dir, 'captioned.png'), rows);
    expect(captioned.height).toBe(plain.height + 2 * 16);
    expect(captioned.width).toBeGreaterThan(plain.width);

    const img = await decode(captioned.file);
    const labelWidth = captioned.width - plain.width;
    const darkIn = (x0: number, y0: number, x1: number, y1: number): number => {
      let dark = 0;
      for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) if (pixel(img, x, y).every((v) => v < 128)) dark++;
      return dark;
    };
    const captionBand = darkIn(4 + labelWidth, 4, 4 + labelWidth + 48, 4 + 16);
    const labelColumn = darkIn(0, 4 + 16, labelWidth, 4 + 16 + 32);
    if (await textRenders()) {
      expect(captionBand).toBeGreaterThan(10);
      expect(labelColumn).toBeGreaterThan(10);
    } else {
      expect(captionBand + labelColumn).toBe(0);
    }
    // The image itself sits below its caption band, unchanged.
    const ref = tensorToImage(t.data, t.shape);
    expect(pixel(img, 4 + labelWidth, 4 + 16)).toEqual([ref.data[0], ref.data[1], ref.data[2]]);
  });

  it('paints NaN pixels magenta instead of failing, so a diverged sample is still written', async () => {
    const t = tensor(4, 4, 5);
    t.data[5] = Number.NaN; // channel 0, pixel (1, 1)
    t.data[16 + 16 + 14] = Number.NaN; // channel 2, pixel (2, 3)
    const file = path.join(dir, 'nan.png');
    await writeSampleGrid(file, [{ label: '', images: [{ caption: 'fake_B', ...t }] }], { captions: false, gap: 0 });
    const img = await decode(file);
    expect(pixel(img, 1, 1)).toEqual([255, 0, 255]);
    expect(pixel(img, 2, 3)).toEqual([255, 0, 255]);
    const clean = { ...t, data: t.data.map((v) => (Number.isNaN(v) ? 0 : v)) };
    const ref = tensorToImage(clean.data, clean.shape);
    expect(pixel(img, 0, 0)).toEqual([ref.data[0], ref.data[1], ref.data[2]]);
  });

  it('refuses shapes other than [1, 3, H, W] and data of the wrong length, naming the image', async () => {
    const t = tensor(4, 4, 6);
    const file = path.join(dir, 'bad.png');
    const bad = (images: SampleGridImage[]) =>
      writeSampleGrid(file, [
        { label: 'x', images: [{ caption: 'ok', ...t }] },
        { label: 'y', images },
      ]);
    await expect(
      bad([{ caption: 'b2', data: new Float32Array(96), shape: [2, 3, 4, 4] as unknown as [1, 3, number, number] }]),
    ).rejects.toThrow(ContractError);
    await expect(bad([{ caption: 'short', data: new Float32Array(10), shape: [1, 3, 4, 4] }])).rejects.toThrow(
      /rows\[1\]\.images\[0\]\.data/,
    );
    await expect(writeSampleGrid(file, [])).rejects.toThrow(UsageError);
    await expect(writeSampleGrid(file, [{ label: 'x', images: [] }])).rejects.toThrow(UsageError);
    await expect(writeSampleGrid(file, [{ label: 'x', images: [{ caption: 'ok', ...t }] }], { gap: -1 })).rejects.toThrow(UsageError);
    await expect(fsp.readdir(dir)).resolves.toEqual([]);
  });
});
