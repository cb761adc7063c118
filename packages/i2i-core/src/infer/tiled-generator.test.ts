import { InputError, ModelFormatError, UsageError } from '@scenimefy/io';
import type { TensorMap } from '@scenimefy/io';
import '@scenimefy/test-utils';

import { exportGeneratorOnnx, generatorStateDictShapes } from '../export/onnx';
import type { UpsampleMode } from '../export/onnx';
import { createOnnxSession } from './node-engine';
import { runGenerator } from './onnx-session';
import type { OnnxSession } from './onnx-session';
import { createTiledGenerator } from './node-engine';
import type { TiledGenerator } from './tiled-generator';

/** Deterministic pseudo-random numbers in [0, 1) (a 32-bit LCG). */
function lcg(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

const NGF = 4;

/**
 * A small generator with PyTorch-default-like weights (U(±1/√fan_in)) and the standard blur buffers, so that
 * these tests need no fixture; `model.30` is scaled up so the tanh output spans most of (−1, 1).
 */
function syntheticStateDict(ngf: number, seed: number, prefix = ''): TensorMap {
  const rand = lcg(seed);
  const outer = (taps: number[]): number[] => taps.flatMap((a) => taps.map((b) => a * b));
  const down = outer([0.25, 0.5, 0.25]);
  const up = outer([0.25, 0.75, 0.75, 0.25]);
  const map: TensorMap = new Map();
  for (const [key, shape] of generatorStateDictShapes(ngf)) {
    const n = shape.reduce((a, b) => a * b, 1);
    let values: Float32Array;
    if (key.endsWith('.filt')) {
      const filter = shape[2] === 3 ? down : up;
      values = Float32Array.from({ length: n }, (_, i) => filter[i % filter.length] as number);
    } else {
      const layer = key.slice(0, key.lastIndexOf('.'));
      const fanIn = (generatorStateDictShapes(ngf).get(`${layer}.weight`) ?? []).slice(1).reduce((a, b) => a * b, 1);
      const gain = layer === 'model.30' ? 6 : 1;
      values = Float32Array.from({ length: n }, () => ((2 * rand() - 1) * gain) / Math.sqrt(fanIn));
    }
    map.set(prefix + key, { dtype: 'F32', shape: [...shape], bytes: new Uint8Array(values.buffer) });
  }
  return map;
}

/**
 * The generator in float64 on the whole image, written straight from SPEC §1 (torch's padding, InstanceNorm
 * with biased variance and eps 1e-5, blur down/up-sampling as their closed forms): an oracle independent of
 * onnxruntime and of the tiling.
 */
function float64Generator(stateDict: TensorMap, input: Float32Array, h: number, w: number): Float64Array {
  const weights = new Map([...stateDict].map(([key, t]) => [key, Float64Array.from(new Float32Array(t.bytes.slice().buffer))]));
  const shapes = new Map([...stateDict].map(([key, t]) => [key, t.shape]));
  type Act = { data: Float64Array; c: number; h: number; w: number };
  const reflect = (i: number, n: number): number => (i < 0 ? -i : i >= n ? 2 * (n - 1) - i : i);
  const conv = (x: Act, key: string, pad: number, mode: 'reflect' | 'zero'): Act => {
    const [co = 0, ci = 0, k = 0] = shapes.get(`${key}.weight`) ?? [];
    const wt = weights.get(`${key}.weight`)!;
    const bias = weights.get(`${key}.bias`)!;
    const out = new Float64Array(co * x.h * x.w);
    for (let o = 0; o < co; o++) {
      for (let y = 0; y < x.h; y++) {
        for (let z = 0; z < x.w; z++) {
          let acc = bias[o] as number;
          for (let i = 0; i < ci; i++) {
            for (let ky = 0; ky < k; ky++) {
              let sy = y + ky - pad;
              if (sy < 0 || sy >= x.h) {
                if (mode === 'zero') continue;
                sy = reflect(sy, x.h);
              }
              for (let kx = 0; kx < k; kx++) {
                let sx = z + kx - pad;
                if (sx < 0 || sx >= x.w) {
                  if (mode === 'zero') continue;
                  sx = reflect(sx, x.w);
                }
                acc += (wt[((o * ci + i) * k + ky) * k + kx] as number) * (x.data[(i * x.h + sy) * x.w + sx] as number);
              }
            }
          }
          out[(o * x.h + y) * x.w + z] = acc;
        }
      }
    }
    return { data: out, c: co, h: x.h, w: x.w };
  };
  const norm = (x: Act, relu: boolean): Act => {
    const n = x.h * x.w;
    const out = new Float64Array(x.data.length);
    for (let c = 0; c < x.c; c++) {
      const plane = x.data.subarray(c * n, (c + 1) * n);
      const mean = plane.reduce((a, v) => a + v, 0) / n;
      const variance = plane.reduce((a, v) => a + (v - mean) ** 2, 0) / n;
      for (let i = 0; i < n; i++) {
        const v = ((plane[i] as number) - mean) / Math.sqrt(variance + 1e-5);
        out[c * n + i] = relu ? Math.max(0, v) : v;
      }
    }
    return { ...x, data: out };
  };
  const down = (x: Act): Act => {
    const taps = [0.25, 0.5, 0.25];
    const oh = x.h / 2;
    const ow = x.w / 2;
    const out = new Float64Array(x.c * oh * ow);
    for (let c = 0; c < x.c; c++) {
      for (let y = 0; y < oh; y++) {
        for (let z = 0; z < ow; z++) {
          let acc = 0;
          for (let a = -1; a <= 1; a++) {
            for (let b = -1; b <= 1; b++) {
              acc +=
                (taps[a + 1] as number) *
                (taps[b + 1] as number) *
                (x.data[(c * x.h + reflect(2 * y + a, x.h)) * x.w + reflect(2 * z + b, x.w)] as number);
            }
          }
          out[(c * oh + y) * ow + z] = acc;
        }
      }
    }
    return { data: out, c: x.c, h: oh, w: ow };
  };
  const up = (x: Act): Act => {
    // Bilinear ×2, align_corners=False: output 2i mixes i−1, i as 1/4, 3/4; 2i+1 mixes i, i+1 as 3/4, 1/4.
    const taps = (o: number, n: number): [number, number, number, number] => {
      const i = o >> 1;
      const clamp = (j: number): number => Math.min(n - 1, Math.max(0, j));
      return o % 2 === 0 ? [clamp(i - 1), 0.25, i, 0.75] : [i, 0.75, clamp(i + 1), 0.25];
    };
    const out = new Float64Array(x.c * 4 * x.h * x.w);
    for (let c = 0; c < x.c; c++) {
      for (let y = 0; y < 2 * x.h; y++) {
        const [y0, wy0, y1, wy1] = taps(y, x.h);
        for (let z = 0; z < 2 * x.w; z++) {
          const [z0, wz0, z1, wz1] = taps(z, x.w);
          const at = (a: number, b: number): number => x.data[(c * x.h + a) * x.w + b] as number;
          out[(c * 2 * x.h + y) * 2 * x.w + z] = wy0 * (wz0 * at(y0, z0) + wz1 * at(y0, z1)) + wy1 * (wz0 * at(y1, z0) + wz1 * at(y1, z1));
        }
      }
    }
    return { data: out, c: x.c, h: 2 * x.h, w: 2 * x.w };
  };
  let x: Act = { data: Float64Array.from(input), c: 3, h, w };
  x = norm(conv(x, 'model.1', 3, 'reflect'), true);
  x = down(norm(conv(x, 'model.4', 1, 'zero'), true));
  x = down(norm(conv(x, 'model.8', 1, 'zero'), true));
  for (let b = 12; b <= 20; b++) {
    const y = norm(conv(norm(conv(x, `model.${b}.conv_block.1`, 1, 'reflect'), true), `model.${b}.conv_block.5`, 1, 'reflect'), false);
    x = { ...x, data: x.data.map((v, i) => v + (y.data[i] as number)) };
  }
  x = norm(conv(up(x), 'model.22', 1, 'zero'), true);
  x = norm(conv(up(x), 'model.26', 1, 'zero'), true);
  x = conv(x, 'model.30', 3, 'reflect');
  return x.data.map(Math.tanh);
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs((a[i] as number) - (b[i] as number)));
  return worst;
}

function randomImage(h: number, w: number, seed: number, batch = 1): Float32Array {
  const rand = lcg(seed);
  return Float32Array.from({ length: batch * 3 * h * w }, () => 2 * rand() - 1);
}

// Whole-image onnxruntime and the tiled engine run the same float32 layers; they differ by the order of float32
// sums (instance-norm statistics, convolution blocking): ~1e-5 on this model, as each is from float64.
const ATOL = 2e-5;

describe('createTiledGenerator on a synthetic ngf 4 generator', () => {
  const stateDict = syntheticStateDict(NGF, 11);
  const wholes = new Map<UpsampleMode, OnnxSession>();
  const generators: TiledGenerator[] = [];
  const tiled = async (options: Parameters<typeof createTiledGenerator>[1], sd: TensorMap = stateDict): Promise<TiledGenerator> => {
    const generator = await createTiledGenerator(sd, { threads: 1, ...options });
    generators.push(generator);
    return generator;
  };

  beforeAll(async () => {
    wholes.set('conv-transpose', await createOnnxSession(exportGeneratorOnnx(stateDict), { threads: 1 }));
  });
  afterAll(async () => {
    for (const session of wholes.values()) await session.release();
    for (const generator of generators) await generator.dispose();
  });

  it.each([
    [36, 20, 8],
    [20, 28, 5],
    [12, 16, 4],
    [8, 12, 1],
    [8, 8, 3],
    [24, 16, 64],
  ] as const)('%i×%i with tile %i equals whole-image inference up to float32 rounding', async (h, w, tileSize) => {
    const generator = await tiled({ tileSize });
    const input = randomImage(h, w, h * 100 + w);
    const exact = float64Generator(stateDict, input, h, w);
    const whole = await runGenerator(wholes.get('conv-transpose')!, input, [1, 3, h, w]);
    const actual = await generator.run(input, [1, 3, h, w]);
    // Tiny images make the quarter-resolution norms ill-conditioned (statistics over 6 pixels at 8×12), so
    // both float32 engines stray up to ~1e-4 from float64 there; the tiled one must stray no further than
    // twice as far as whole-image inference does, and on larger images agree with it within ATOL.
    const wholeError = maxAbsDiff(whole, exact);
    expect(maxAbsDiff(actual, exact)).toBeLessThanOrEqual(2 * wholeError);
    if (h * w >= 12 * 16) expect(actual).toBeCloseToTensor(whole, { atol: ATOL, rtol: 0, shape: [1, 3, h, w] });
  });

  it('gives the same result for every tiling, up to the order of the statistics sums', async () => {
    const input = randomImage(28, 36, 5);
    const reference = await (await tiled({ tileSize: 1024 })).run(input, [1, 3, 28, 36]);
    for (const tileSize of [4, 7, 12]) {
      const actual = await (await tiled({ tileSize })).run(input, [1, 3, 28, 36]);
      // Only the order of the float64 statistics sums differs, which moves a float32 mean or variance by an ulp.
      expect(actual).toBeCloseToTensor(reference, { atol: 4e-6, rtol: 0 });
    }
  });

  it('runs a batch image by image', async () => {
    const generator = await tiled({ tileSize: 8 });
    const batch = randomImage(12, 16, 9, 2);
    const both = await generator.run(batch, [2, 3, 12, 16]);
    const plane = 3 * 12 * 16;
    const second = await generator.run(batch.subarray(plane), [1, 3, 12, 16]);
    expect(both.subarray(plane)).toBeCloseToTensor(second, { atol: 0, rtol: 0 });
  });

  it('follows a non-standard upsampling filter with the transposed convolution', async () => {
    const odd = new Map(stateDict);
    const filt = odd.get('model.21.filt')!;
    const values = new Float32Array(filt.bytes.slice().buffer);
    for (let i = 0; i < values.length; i += 16) values[i] = (values[i] as number) + 0.2;
    odd.set('model.21.filt', { ...filt, bytes: new Uint8Array(values.buffer) });
    const whole = await createOnnxSession(exportGeneratorOnnx(odd), { threads: 1 });
    try {
      const input = randomImage(16, 20, 3);
      const expected = await runGenerator(whole, input, [1, 3, 16, 20]);
      const actual = await (await tiled({ tileSize: 6 }, odd)).run(input, [1, 3, 16, 20]);
      expect(actual).toBeCloseToTensor(expected, { atol: ATOL, rtol: 0 });
    } finally {
      await whole.release();
    }
  });

  it('reads a prefixed checkpoint', async () => {
    const generator = await tiled({ tileSize: 8, prefix: 'netG.' }, syntheticStateDict(NGF, 11, 'netG.'));
    const input = randomImage(8, 8, 1);
    expect(await generator.run(input, [1, 3, 8, 8])).toBeCloseToTensor(
      await runGenerator(wholes.get('conv-transpose')!, input, [1, 3, 8, 8]),
      { atol: ATOL, rtol: 0 },
    );
    expect(generator.ngf).toBe(NGF);
  });

  it('refuses bad options, bad inputs and use after dispose', async () => {
    await expect(createTiledGenerator(stateDict, { tileSize: 0 })).rejects.toThrow(
      new UsageError('tileSize must be a positive integer, got 0'),
    );
    await expect(createTiledGenerator(stateDict, { threads: 1.5 })).rejects.toThrow(UsageError);
    const missing = new Map(stateDict);
    missing.delete('model.22.bias');
    await expect(createTiledGenerator(missing, { source: 'g.pth' })).rejects.toThrow(
      new ModelFormatError("g.pth: missing 'model.22.bias' (expected shape [8])"),
    );
    const generator = await createTiledGenerator(stateDict, { tileSize: 8, threads: 1 });
    await expect(generator.run(new Float32Array(3 * 10 * 12), [1, 3, 10, 12])).rejects.toThrow(InputError);
    await expect(generator.run(new Float32Array(5), [1, 3, 8, 8])).rejects.toThrow(
      'generator input has 5 values, shape [1, 3, 8, 8] needs 192',
    );
    await generator.dispose();
    await expect(generator.run(new Float32Array(192), [1, 3, 8, 8])).rejects.toThrow(UsageError);
  });
});
