import { UsageError } from '@scenimefy/io';

import { ChannelMoments, addNormalized, allocateRegion, copyRect, cropRegion } from './kernels';
import type { Region } from './kernels';

/** Deterministic pseudo-random numbers in [0, 1) (a 32-bit LCG), so the data is the same on every run. */
function lcg(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

function ramp(channels: number, rows: number, cols: number): Region {
  const region = allocateRegion(channels, { start: 0, end: rows }, { start: 0, end: cols });
  region.data.forEach((_, i) => (region.data[i] = i));
  return region;
}

describe('ChannelMoments', () => {
  it('matches a two-pass float64 mean and biased variance when summed over uneven tiles', () => {
    const channels = 3;
    const pixels = 10007;
    const rand = lcg(7);
    // A large offset next to a small spread is where E[x²] − E[x]² without a shift loses every digit in float32.
    const data = Float32Array.from({ length: channels * pixels }, (_, i) => 1000 * (1 + Math.floor(i / pixels)) + rand() * 0.01);
    const moments = new ChannelMoments(channels);
    const cuts = [0, 1, 2000, 2001, 7777, pixels];
    for (let t = 0; t + 1 < cuts.length; t++) {
      const [a, b] = [cuts[t] as number, cuts[t + 1] as number];
      const tile = new Float32Array(channels * (b - a));
      for (let c = 0; c < channels; c++) tile.set(data.subarray(c * pixels + a, c * pixels + b), c * (b - a));
      moments.add(tile);
    }
    expect(moments.pixels).toBe(pixels);
    const { mean, variance, scale } = moments.normalization(1e-5);
    for (let c = 0; c < channels; c++) {
      const values = Array.from(data.subarray(c * pixels, (c + 1) * pixels));
      const m = values.reduce((acc, v) => acc + v, 0) / pixels;
      const v = values.reduce((acc, x) => acc + (x - m) ** 2, 0) / pixels;
      expect(Math.abs((mean[c] as number) - m)).toBeLessThanOrEqual(Math.abs(m) * 2 ** -24);
      expect(Math.abs((variance[c] as number) - v)).toBeLessThanOrEqual(v * 1e-6);
      expect(Math.abs((scale[c] as number) - 1 / Math.sqrt(v + 1e-5))).toBeLessThanOrEqual(1e-6 / Math.sqrt(v + 1e-5));
    }
  });

  it('refuses statistics of nothing and data that is not whole pixels', () => {
    const moments = new ChannelMoments(2);
    expect(() => moments.normalization(1e-5)).toThrow(new UsageError('instance norm statistics over zero pixels'));
    expect(() => moments.add(new Float32Array(3))).toThrow('3 values are not 2 channels of pixels');
  });
});

describe('copyRect / cropRegion', () => {
  it('copies a window between regions that hold it at different origins', () => {
    const src = ramp(2, 4, 5);
    const dst = allocateRegion(2, { start: 1, end: 5 }, { start: 2, end: 6 });
    copyRect(src, dst, { start: 1, end: 3 }, { start: 2, end: 4 });
    // dst row 0 is image row 1, dst col 0 is image col 2; src is [2, 4, 5] with value = index.
    expect(Array.from(dst.data.subarray(0, 8))).toEqual([7, 8, 0, 0, 12, 13, 0, 0]);
    expect(Array.from(dst.data.subarray(16, 24))).toEqual([27, 28, 0, 0, 32, 33, 0, 0]);
  });

  it('crops a contiguous region and returns a whole match unchanged', () => {
    const src = ramp(1, 4, 5);
    const crop = cropRegion(src, { start: 2, end: 4 }, { start: 0, end: 5 });
    expect(Array.from(crop.data)).toEqual([10, 11, 12, 13, 14, 15, 16, 17, 18, 19]);
    expect(cropRegion(src, src.rows, src.cols)).toBe(src);
  });

  it('refuses a window the source does not hold', () => {
    const src = ramp(1, 4, 5);
    expect(() => cropRegion(src, { start: 3, end: 5 }, { start: 0, end: 2 })).toThrow(
      'copy source needs rows [3, 5) × cols [0, 2) but the region holds [0, 4) × [0, 5)',
    );
  });
});

describe('addNormalized', () => {
  it('adds the per-channel normalised branch to the state', () => {
    const state = ramp(2, 1, 2);
    const branch = ramp(2, 1, 2);
    addNormalized(state, branch, {
      mean: Float32Array.from([1, 2]),
      variance: Float32Array.from([0, 0]),
      scale: Float32Array.from([2, -1]),
    });
    expect(Array.from(state.data)).toEqual([0 + (0 - 1) * 2, 1 + (1 - 1) * 2, 2 - (2 - 2), 3 - (3 - 2)]);
  });
});
