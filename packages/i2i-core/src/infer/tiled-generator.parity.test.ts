import { readTorchStateDict } from '@scenimefy/io';
import type { TensorMap } from '@scenimefy/io';
import { describeIfFixture, loadReferenceFixture, referenceFixturePath } from '@scenimefy/test-utils';
import type { ReferenceFixture } from '@scenimefy/test-utils';

import { exportGeneratorOnnx } from '../export/onnx';
import { createOnnxSession } from './node-engine';
import { runGenerator } from './onnx-session';
import type { OnnxSession } from './onnx-session';
import { createTiledGenerator } from './node-engine';
import type { TiledGenerator } from './tiled-generator';

/** The output tolerance the sidecar recommends for a float32 implementation ("atol 5e-5 for a float32 ..."). */
function outputAtol(fixture: ReferenceFixture): number {
  const guidance = fixture.sidecarString(['tolerance_guidance', 'output_*']);
  const match = /atol\s+([0-9.]+e-?[0-9]+|[0-9.]+)/i.exec(guidance);
  if (!match?.[1]) throw new Error(`no atol in ${fixture.sidecarPath} tolerance_guidance.output_*: ${guidance}`);
  return Number(match[1]);
}

function nchw(fixture: ReferenceFixture, name: string): [number, number, number, number] {
  const [n, c, h, w] = fixture.shape(name);
  if (n === undefined || c === undefined || h === undefined || w === undefined) throw new Error(`${name} is not NCHW`);
  return [n, c, h, w];
}

/** Deterministic inputs in [-1, 1) (a 32-bit LCG) for sizes the fixtures do not cover. */
function randomImage(h: number, w: number, seed: number): Float32Array {
  let state = seed >>> 0;
  return Float32Array.from({ length: 3 * h * w }, () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return (2 * state) / 2 ** 32 - 1;
  });
}

// Whole-image onnxruntime vs tiled: the same float32 layers, different summation orders. Observed max |diff|
// 4-7e-6 on the ngf 16 model, the size of float32 rounding itself (the sidecar's float32-vs-float64 is 5.7e-6).
const WHOLE_ATOL = 2e-5;

describeIfFixture(['i2i/netG-ngf16.pth', 'i2i/netG-ngf16-io.safetensors'], 'tiled generator vs whole image, ngf 16', () => {
  let stateDict: TensorMap;
  let fixture: ReferenceFixture;
  let whole: OnnxSession;
  const generators: TiledGenerator[] = [];
  const tiled = async (tileSize: number): Promise<TiledGenerator> => {
    const generator = await createTiledGenerator(stateDict, { tileSize, threads: 2 });
    generators.push(generator);
    return generator;
  };

  beforeAll(async () => {
    stateDict = await readTorchStateDict(referenceFixturePath('i2i', 'netG-ngf16.pth'));
    fixture = await loadReferenceFixture('i2i', 'netG-ngf16-io');
    whole = await createOnnxSession(exportGeneratorOnnx(stateDict), { threads: 2 });
  });
  afterAll(async () => {
    await whole?.release();
    for (const generator of generators) await generator.dispose();
  });

  it.each([
    // [H, W, tile]: grids that do not divide evenly, non-square, tiles smaller than the 15-pixel head halo
    // (tile 8 is 2 pixels at quarter resolution), and a tile larger than the image (one tile).
    [68, 92, 32],
    [92, 68, 20],
    [100, 60, 24],
    [44, 52, 8],
    [12, 20, 1],
    [64, 96, 128],
  ] as const)('%i×%i, tile %i', async (h, w, tileSize) => {
    const input = randomImage(h, w, h * 1000 + w);
    const expected = await runGenerator(whole, input, [1, 3, h, w]);
    const actual = await (await tiled(tileSize)).run(input, [1, 3, h, w]);
    expect(actual).toBeCloseToTensor(expected, { atol: WHOLE_ATOL, rtol: 0, shape: [1, 3, h, w] });
  });

  it.each([
    ['a', 32],
    ['b', 16],
  ] as const)('matches the reference output_%s with tile %i within the sidecar tolerance', async (suffix, tileSize) => {
    const shape = nchw(fixture, `input_${suffix}`);
    const actual = await (await tiled(tileSize)).run(fixture.float32(`input_${suffix}`), shape);
    expect(actual).toBeCloseToTensor(fixture.float32(`output_${suffix}`), { atol: outputAtol(fixture), rtol: 0, shape });
  });
});

describeIfFixture(['i2i/netG-ngf64.pth', 'i2i/netG-ngf64-io.safetensors'], 'tiled generator vs reference, ngf 64', () => {
  let fixture: ReferenceFixture;
  let stateDict: TensorMap;
  let generator: TiledGenerator;

  beforeAll(async () => {
    stateDict = await readTorchStateDict(referenceFixturePath('i2i', 'netG-ngf64.pth'));
    fixture = await loadReferenceFixture('i2i', 'netG-ngf64-io');
    generator = await createTiledGenerator(stateDict, { tileSize: 64, threads: 2 });
  });
  afterAll(async () => {
    await generator?.dispose();
  });

  it('matches the reference output_b (128×192 in 2×3 tiles) within the sidecar tolerance', async () => {
    const shape = nchw(fixture, 'input_b');
    const actual = await generator.run(fixture.float32('input_b'), shape);
    expect(actual).toBeCloseToTensor(fixture.float32('output_b'), { atol: outputAtol(fixture), rtol: 0, shape });
  });
});
