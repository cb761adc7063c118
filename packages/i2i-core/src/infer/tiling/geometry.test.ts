import { UsageError } from '@scenimefy/io';

import { convStep, downsampleStep, planTiles, splitAxis, upsampleStep } from './geometry';
import type { AxisStep, Span } from './geometry';

type Mode = 'reflect' | 'zero' | 'replicate';

/** Whole-signal padding the way torch pads (reflect without repeating the edge). */
function padWhole(x: number[], before: number, after: number, mode: Mode): number[] {
  const n = x.length;
  const at = (i: number): number => {
    if (i >= 0 && i < n) return x[i] as number;
    if (mode === 'zero') return 0;
    if (mode === 'replicate') return x[i < 0 ? 0 : n - 1] as number;
    return x[i < 0 ? -i : 2 * (n - 1) - i] as number;
  };
  return Array.from({ length: n + before + after }, (_, j) => at(j - before));
}

/** Valid correlation with stride. */
function correlate(x: number[], taps: number[], stride: number): number[] {
  const out: number[] = [];
  for (let o = 0; o * stride + taps.length <= x.length; o++) {
    out.push(taps.reduce((acc, t, k) => acc + t * (x[o * stride + k] as number), 0));
  }
  return out;
}

/** Transposed convolution, stride 2, then dropping `crop` samples on each side (ONNX ConvTranspose pads). */
function transposed(x: number[], taps: number[], crop: number): number[] {
  const full = new Array<number>(2 * (x.length - 1) + taps.length).fill(0);
  x.forEach((v, i) => taps.forEach((t, k) => (full[2 * i + k] = (full[2 * i + k] as number) + v * t)));
  return full.slice(crop, full.length - crop);
}

const KERNEL7 = [0.3, -1, 0.5, 2, -0.7, 0.1, 0.9];
const KERNEL3 = [0.4, -1.3, 0.8];
const DOWN = [0.25, 0.5, 0.25];
const UP = [0.25, 0.75, 0.75, 0.25];

/** The 1-D layers of the generator on a whole signal, as the reference computes them. */
const LAYERS: Record<
  string,
  { whole: (x: number[]) => number[]; step: (out: Span, n: number) => AxisStep; mode: Mode; apply: (p: number[]) => number[] }
> = {
  'conv7 reflect': {
    whole: (x) => correlate(padWhole(x, 3, 3, 'reflect'), KERNEL7, 1),
    step: (out, n) => convStep(out, n, 7),
    mode: 'reflect',
    apply: (p) => correlate(p, KERNEL7, 1),
  },
  'conv3 zero': {
    whole: (x) => correlate(padWhole(x, 1, 1, 'zero'), KERNEL3, 1),
    step: (out, n) => convStep(out, n, 3),
    mode: 'zero',
    apply: (p) => correlate(p, KERNEL3, 1),
  },
  'conv3 reflect': {
    whole: (x) => correlate(padWhole(x, 1, 1, 'reflect'), KERNEL3, 1),
    step: (out, n) => convStep(out, n, 3),
    mode: 'reflect',
    apply: (p) => correlate(p, KERNEL3, 1),
  },
  downsample: {
    whole: (x) => correlate(padWhole(x, 1, 1, 'reflect'), DOWN, 2),
    step: downsampleStep,
    mode: 'reflect',
    apply: (p) => correlate(p, DOWN, 2),
  },
  upsample: {
    whole: (x) => transposed(padWhole(x, 1, 1, 'replicate'), UP, 3),
    step: upsampleStep,
    mode: 'replicate',
    apply: (p) => transposed(p, UP, 3),
  },
};

describe('splitAxis / planTiles', () => {
  it('covers every pixel exactly once with balanced tiles no larger than the tile size', () => {
    for (const [h, w, t] of [
      [68, 92, 32],
      [100, 60, 24],
      [8, 8, 3],
      [17, 5, 1],
      [64, 96, 128],
    ] as const) {
      const tiles = planTiles(h, w, t);
      const seen = new Uint8Array(h * w);
      for (const tile of tiles) {
        expect(tile.height).toBeLessThanOrEqual(t);
        expect(tile.width).toBeLessThanOrEqual(t);
        for (let y = tile.y0; y < tile.y0 + tile.height; y++) {
          for (let x = tile.x0; x < tile.x0 + tile.width; x++) seen[y * w + x] = (seen[y * w + x] as number) + 1;
        }
      }
      expect(seen.every((v) => v === 1)).toBe(true);
      expect(tiles).toHaveLength(Math.ceil(h / t) * Math.ceil(w / t));
      const heights = new Set(tiles.map((tile) => tile.height));
      expect(Math.max(...heights) - Math.min(...heights)).toBeLessThanOrEqual(1);
    }
  });

  it('gives one tile when the tile size reaches the image', () => {
    expect(planTiles(64, 96, 96)).toEqual([{ y0: 0, x0: 0, height: 64, width: 96 }]);
  });

  it('splits 100 into balanced parts of at most 24', () => {
    expect(splitAxis(100, 24).map((s) => s.end - s.start)).toEqual([20, 20, 20, 20, 20]);
    expect(splitAxis(10, 4)).toEqual([
      { start: 0, end: 3 },
      { start: 3, end: 6 },
      { start: 6, end: 10 },
    ]);
  });

  it('refuses sizes that are not positive integers', () => {
    expect(() => planTiles(64, 64, 0)).toThrow(UsageError);
    expect(() => planTiles(64, 64, 2.5)).toThrow('tile size must be a positive integer, got 2.5');
    expect(() => splitAxis(0, 4)).toThrow('axis length must be a positive integer, got 0');
  });
});

describe('layer steps: a padded window reproduces the whole-signal layer', () => {
  const signal = (n: number): number[] => Array.from({ length: n }, (_, i) => Math.sin(1.7 * i + 0.3) + 0.1 * i);

  it.each(Object.keys(LAYERS))('%s: every output span of every length', (name) => {
    const layer = LAYERS[name]!;
    for (const n of [4, 5, 8, 13]) {
      const x = signal(n);
      const whole = layer.whole(x);
      for (let start = 0; start < whole.length; start++) {
        for (let end = start + 1; end <= whole.length; end++) {
          const step = layer.step({ start, end }, n);
          expect(step.need.start).toBeGreaterThanOrEqual(0);
          expect(step.need.end).toBeLessThanOrEqual(n);
          const window = padWhole(x.slice(step.need.start, step.need.end), step.padBefore, step.padAfter, layer.mode);
          let out = layer.apply(window);
          if (step.crop) out = out.slice(step.crop.start, step.crop.end);
          const expected = whole.slice(start, end);
          expect(out).toHaveLength(expected.length);
          out.forEach((v, i) => expect(v).toBeCloseTo(expected[i] as number, 12));
        }
      }
    }
  });

  it('pads only at the image border and reads real neighbours inside', () => {
    expect(convStep({ start: 10, end: 20 }, 40, 7)).toEqual({ need: { start: 7, end: 23 }, padBefore: 0, padAfter: 0 });
    expect(convStep({ start: 0, end: 2 }, 40, 7)).toEqual({ need: { start: 0, end: 5 }, padBefore: 3, padAfter: 0 });
    expect(downsampleStep({ start: 3, end: 5 }, 12)).toEqual({ need: { start: 5, end: 10 }, padBefore: 0, padAfter: 0 });
    expect(upsampleStep({ start: 5, end: 8 }, 6)).toEqual({
      need: { start: 1, end: 5 },
      padBefore: 0,
      padAfter: 0,
      crop: { start: 1, end: 4 },
    });
  });
});
