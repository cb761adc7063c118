// Parity with the reference's preprocessing stack: Pillow (decode, BICUBIC resize), torchvision (ToTensor +
// Normalize) and util.tensor2im. pil-reference.json is committed (made by test-fixtures/make-pil-reference.py);
// preprocess.json comes from the shared reference fixtures and is skipped when they are absent.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';

import { InputError } from './errors';
import { imageToTensor, referenceResizeTarget, resizeImage, tensorToImage } from './image';
import { decodeImage } from './image-decode';

interface PilReference {
  generated_by: string;
  resize: { in_w: number; in_h: number; out_w: number; out_h: number; input_rgb_b64: string; output_rgb_b64: string }[];
  rocket: {
    file: string;
    width: number;
    height: number;
    decoded_rgb_sha256: string;
    decoded_rgb_first_pixels: number[];
    bicubic_resized_rgb_sha256: Record<string, string>;
  };
  to_tensor_normalize: number[];
}

const localFixtures = path.resolve(__dirname, '..', 'test-fixtures');
const pil = JSON.parse(readFileSync(path.join(localFixtures, 'pil-reference.json'), 'utf8')) as PilReference;

const referenceDir =
  process.env['SCENIMEFY_REFERENCE_FIXTURES'] ?? path.resolve(__dirname, '..', '..', '..', '..', 'shared', 'fixtures', 'reference');
const preprocessFile = path.join(referenceDir, 'i2i', 'preprocess.json');
const describeWithReference = existsSync(preprocessFile) ? describe : describe.skip;

const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
const fromB64 = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'base64'));

describe('imageToTensor matches torchvision ToTensor + Normalize(0.5, 0.5) in float32', () => {
  it('gives the fixture value for every uint8 level, bit for bit', () => {
    const expected = pil.to_tensor_normalize;
    expect(expected).toHaveLength(256);
    const data = new Uint8Array(256 * 3);
    for (let v = 0; v < 256; v++) data.fill(v, 3 * v, 3 * v + 3);
    const t = imageToTensor({ width: 256, height: 1, data });
    expect(t.shape).toEqual([1, 3, 1, 256]);
    for (let c = 0; c < 3; c++) expect(Array.from(t.data.subarray(c * 256, (c + 1) * 256))).toEqual(expected);
  });

  it('the fixture distinguishes step-wise float32 rounding from a single rounding (so the test above can fail)', () => {
    const once = pil.to_tensor_normalize.map((_, v) => Math.fround((v / 255 - 0.5) / 0.5));
    const differing = once.filter((x, v) => x !== pil.to_tensor_normalize[v]).length;
    expect(differing).toBeGreaterThan(0);
  });
});

describe('resizeImage bicubic-pil equals Pillow Image.resize(BICUBIC)', () => {
  it.each(pil.resize.map((c) => [`${c.in_w}×${c.in_h} → ${c.out_w}×${c.out_h}`, c] as const))('%s', (_name, c) => {
    const out = resizeImage({ width: c.in_w, height: c.in_h, data: fromB64(c.input_rgb_b64) }, c.out_w, c.out_h);
    expect(out.width).toBe(c.out_w);
    expect(out.height).toBe(c.out_h);
    expect(Buffer.from(out.data).equals(Buffer.from(fromB64(c.output_rgb_b64)))).toBe(true);
  });
});

describe('decode + resize of a real photo (rocket.jpg, Adobe RGB profile) equals PIL', () => {
  const rocketPath = path.join(localFixtures, pil.rocket.file);

  it("decodes to PIL's convert('RGB') pixels with the default iccProfile: 'ignore'", async () => {
    const img = await decodeImage(rocketPath);
    expect([img.width, img.height]).toEqual([pil.rocket.width, pil.rocket.height]);
    expect(Array.from(img.data.subarray(0, 12))).toEqual(pil.rocket.decoded_rgb_first_pixels);
    expect(sha256(img.data)).toBe(pil.rocket.decoded_rgb_sha256);
    expect(img.source?.hasIccProfile).toBe(true);
    expect(img.source?.iccProfileApplied).toBe(false);
  });

  it("iccProfile: 'convert' colour-manages the Adobe RGB profile and so departs from PIL", async () => {
    const img = await decodeImage(rocketPath, { iccProfile: 'convert' });
    expect(img.source?.iccProfileApplied).toBe(true);
    expect(sha256(img.data)).not.toBe(pil.rocket.decoded_rgb_sha256);
  });

  it.each(Object.entries(pil.rocket.bicubic_resized_rgb_sha256))('resizes to %s as PIL does', async (size, digest) => {
    const [w, h] = size.split('x').map(Number) as [number, number];
    const img = await decodeImage(rocketPath);
    expect(sha256(resizeImage(img, w, h).data)).toBe(digest);
  });
});

interface PreprocessFixture {
  make_power_2: {
    table: { h: number; w: number; out_h: number; out_w: number; resized: boolean; pil_resize_error?: string }[];
  };
  tensor2im: {
    examples: {
      description: string;
      input_shape_NCHW: number[];
      input: unknown;
      input_float32_hex: string[];
      output_shape_HWC: number[];
      output_uint8_HWC: unknown;
      float64_arithmetic_would_give_HWC: unknown;
      float32_vs_float64_arithmetic_differs: boolean;
    }[];
  };
}

/** Python's float.hex() → number (`-0x1.f9f9fa0000000p-3`, `0x0.0p+0`). */
function fromPythonHex(s: string): number {
  const m = /^(-?)0x([01])\.([0-9a-f]+)p([+-]\d+)$/.exec(s);
  if (m === null) throw new Error(`bad float hex ${s}`);
  const mantissa = Number.parseInt(m[2]! + m[3]!, 16) / 16 ** m[3]!.length;
  return (m[1] === '-' ? -1 : 1) * mantissa * 2 ** Number(m[4]);
}

describeWithReference('reference preprocess.json (SPEC §8)', () => {
  const fixture = (): PreprocessFixture => JSON.parse(readFileSync(preprocessFile, 'utf8')) as PreprocessFixture;

  it('referenceResizeTarget reproduces every make_power_2 row, and refuses the sizes PIL refuses', () => {
    const { table } = fixture().make_power_2;
    expect(table.length).toBeGreaterThan(0);
    for (const row of table) {
      if (row.pil_resize_error !== undefined) {
        expect(() => referenceResizeTarget(row.w, row.h)).toThrow(InputError);
        expect(() => referenceResizeTarget(row.w, row.h)).toThrow(`image too small: ${row.w}×${row.h} pixels`);
      } else {
        expect(referenceResizeTarget(row.w, row.h)).toEqual({ width: row.out_w, height: row.out_h, resized: row.resized });
      }
    }
  });

  it('tensorToImage reproduces every tensor2im example exactly, and differs from float64 arithmetic where the fixture says', () => {
    const { examples } = fixture().tensor2im;
    expect(examples.length).toBeGreaterThan(0);
    for (const ex of examples) {
      const data = Float32Array.from(ex.input_float32_hex.map(fromPythonHex));
      expect(Array.from(data)).toEqual((ex.input as number[]).flat(3));
      const img = tensorToImage(data, ex.input_shape_NCHW);
      const [h, w, c] = ex.output_shape_HWC as [number, number, number];
      expect([img.height, img.width, c]).toEqual([h, w, 3]);
      expect(Array.from(img.data)).toEqual((ex.output_uint8_HWC as number[]).flat(2));
      // The same formula without float32 rounding gives the fixture's float64 answer: the rounding is what matters.
      const f64 = Array.from(img.data, (_, j) => {
        const [ch, i] = [j % 3, Math.floor(j / 3)];
        const y = data[(ex.input_shape_NCHW[1] === 1 ? 0 : ch) * h * w + i]!;
        return Math.trunc(((Math.min(1, Math.max(-1, y)) + 1) / 2) * 255);
      });
      expect(f64).toEqual((ex.float64_arithmetic_would_give_HWC as number[]).flat(2));
      expect(f64.some((v, j) => v !== img.data[j])).toBe(ex.float32_vs_float64_arithmetic_differs);
    }
  });
});
