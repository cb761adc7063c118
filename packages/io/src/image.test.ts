import { ContractError, InputError, NumericError, UsageError } from './errors';
import { imageToTensor, referenceResizeTarget, resizeImage, tensorToImage } from './image';
import type { RgbImage } from './image';

function rampImage(width: number, height: number): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < data.length; i++) data[i] = (i * 29 + 7) % 256;
  return { width, height, data };
}

describe('imageToTensor', () => {
  it('lays HWC RGB out as NCHW planes', () => {
    // 2×1 image: pixel 0 = (0, 255, 51), pixel 1 = (102, 153, 204)
    const t = imageToTensor({ width: 2, height: 1, data: Uint8Array.of(0, 255, 51, 102, 153, 204) });
    expect(t.shape).toEqual([1, 3, 1, 2]);
    const expected = [0, 102, 255, 153, 51, 204].map((v) => (v / 255 - 0.5) / 0.5);
    Array.from(t.data).forEach((x, i) => expect(x).toBeCloseTo(expected[i]!, 6));
  });

  it('refuses data whose length does not match the size', () => {
    expect(() => imageToTensor({ width: 2, height: 2, data: new Uint8Array(11) })).toThrow(ContractError);
  });
});

describe('tensorToImage', () => {
  it("'round' inverts imageToTensor for every level; 'truncate' (the reference) only ever loses one level", () => {
    const data = new Uint8Array(256 * 3);
    for (let v = 0; v < 256; v++) data.fill(v, 3 * v, 3 * v + 3);
    const t = imageToTensor({ width: 256, height: 1, data });
    expect(Array.from(tensorToImage(t.data, t.shape, { rounding: 'round' }).data)).toEqual(Array.from(data));
    const truncated = tensorToImage(t.data, t.shape).data;
    truncated.forEach((v, i) => expect(data[i]! - v === 0 || data[i]! - v === 1).toBe(true));
  });

  it('accepts CHW, clamps infinities and distinguishes truncation from rounding at 127.5', () => {
    const img = tensorToImage(Float32Array.of(0, -Infinity, Infinity), [3, 1, 1]);
    expect(Array.from(img.data)).toEqual([127, 0, 255]);
    expect(Array.from(tensorToImage(Float32Array.of(0, 0, 0), [3, 1, 1], { rounding: 'round' }).data)).toEqual([128, 128, 128]);
    expect(img.source).toBeUndefined();
  });

  it('throws NumericError on NaN and ContractError on a bad shape', () => {
    expect(() => tensorToImage(Float32Array.of(0, NaN, 0), [1, 3, 1, 1])).toThrow(NumericError);
    expect(() => tensorToImage(Float32Array.of(0, NaN, 0), [1, 3, 1, 1])).toThrow('1 NaN value(s)');
    expect(() => tensorToImage(new Float32Array(8), [1, 2, 2, 2])).toThrow(ContractError);
    expect(() => tensorToImage(new Float32Array(5), [1, 3, 1, 2])).toThrow('needs 6 values, got 5');
    expect(() => tensorToImage(new Float32Array(6), [6])).toThrow(ContractError);
  });
});

describe('referenceResizeTarget', () => {
  it("rounds halves to even like Python's round, unlike Math.round", () => {
    expect(referenceResizeTarget(262, 258)).toEqual({ width: 264, height: 256, resized: true });
    expect(referenceResizeTarget(10, 6)).toEqual({ width: 8, height: 8, resized: true });
    expect(referenceResizeTarget(64, 96)).toEqual({ width: 64, height: 96, resized: false });
    expect(referenceResizeTarget(10, 7, 3)).toEqual({ width: 9, height: 6, resized: true });
  });

  it('refuses sides that round to 0 with an InputError naming the file, and bad arguments with UsageError', () => {
    expect(() => referenceResizeTarget(1, 1, 4, 'dot.png')).toThrow(
      new InputError('dot.png: image too small: 1×1 pixels; each side must be at least 3 pixels (it is rounded to a multiple of 4)'),
    );
    expect(() => referenceResizeTarget(3, 3)).not.toThrow();
    expect(() => referenceResizeTarget(0, 5)).toThrow(UsageError);
    expect(() => referenceResizeTarget(5, 5, 0)).toThrow(UsageError);
  });
});

describe('resizeImage', () => {
  it('keeps a flat colour flat when scaling up and down (weights sum to one)', () => {
    const flat: RgbImage = { width: 9, height: 7, data: new Uint8Array(9 * 7 * 3).fill(77) };
    for (const [w, h] of [
      [20, 3],
      [4, 16],
      [2, 2],
    ] as const) {
      const out = resizeImage(flat, w, h);
      expect(out.data.length).toBe(w * h * 3);
      expect(out.data.every((v) => v === 77)).toBe(true);
    }
  });

  it('returns a copy for an unchanged size and carries `source` over', () => {
    const img = rampImage(5, 4);
    const source = {
      file: 'a.png',
      format: 'png',
      width: 5,
      height: 4,
      channels: 3,
      hasAlpha: false,
      orientation: 1,
      orientationApplied: false,
      space: 'srgb',
      depth: 'uchar',
      hasIccProfile: false,
      iccProfileApplied: false,
    };
    const same = resizeImage({ ...img, source }, 5, 4);
    expect(same.data).not.toBe(img.data);
    expect(Array.from(same.data)).toEqual(Array.from(img.data));
    expect(resizeImage({ ...img, source }, 8, 8).source).toBe(source);
  });

  it('refuses non-positive targets, unknown kernels and malformed images', () => {
    expect(() => resizeImage(rampImage(4, 4), 0, 4)).toThrow(UsageError);
    expect(() => resizeImage(rampImage(4, 4), 4, 4, { kernel: 'lanczos' as 'bicubic-pil' })).toThrow("unknown kernel 'lanczos'");
    expect(() => resizeImage({ width: 4, height: 4, data: new Uint8Array(3) }, 2, 2)).toThrow(ContractError);
  });
});
