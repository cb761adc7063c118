import { UsageError } from '@scenimefy/io';
import '@scenimefy/test-utils';

import { nodeOrtRuntime } from '../node-runtime';
import { chainGeometry, runChainTile } from './chain';
import { chainModelBytes, createChainSession } from './chain-graph';
import type { ChainSession, ChannelAffine, LayerSpec } from './chain-graph';
import { planTiles } from './geometry';
import { allocateRegion, copyRect } from './kernels';
import type { Region } from './kernels';

function lcg(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

const C = 3;
const rand = lcg(21);
const values = (n: number): Float32Array => Float32Array.from({ length: n }, () => 2 * rand() - 1);
const upFilter = Float32Array.from(
  { length: C * 16 },
  (_, i) => [0.25, 0.75, 0.75, 0.25][(i >> 2) & 3]! * [0.25, 0.75, 0.75, 0.25][i & 3]!,
);
const downFilter = Float32Array.from({ length: C * 9 }, (_, i) => [0.25, 0.5, 0.25][Math.floor(i / 3) % 3]! * [0.25, 0.5, 0.25][i % 3]!);
const conv = (k: number, pad: 'reflect' | 'zero', normalized: boolean): LayerSpec => ({
  kind: 'conv',
  conv: { weight: values(C * C * k * k), bias: values(C), inChannels: C, outChannels: C, kernel: k },
  pad,
  normalized,
});
const norm: ChannelAffine = {
  mean: Float32Array.from([0.1, -0.2, 0.05]),
  variance: Float32Array.from([0.5, 2, 1]),
  scale: Float32Array.from([0.5, 2, 1].map((v) => 1 / Math.sqrt(v + 1e-5))),
};

/** The chain's result over a whole h × w source, assembled from the given tiles of its output level. */
async function tiledResult(
  session: ChainSession,
  source: Region,
  outH: number,
  outW: number,
  tile: number,
  norms: (ChannelAffine | undefined)[],
): Promise<Float32Array> {
  const result = allocateRegion(C, { start: 0, end: outH }, { start: 0, end: outW });
  for (const t of planTiles(outH, outW, tile)) {
    const { output } = await runChainTile(session, source, t, norms);
    copyRect(output, result, { start: t.y0, end: t.y0 + t.height }, { start: t.x0, end: t.x0 + t.width });
  }
  return result.data;
}

describe('layer chains on onnxruntime', () => {
  const sessions: ChainSession[] = [];
  afterAll(async () => {
    for (const s of sessions) await s.release();
  });
  const session = async (layers: LayerSpec[]): Promise<ChainSession> => {
    const s = await createChainSession(nodeOrtRuntime(), { name: 'test', inChannels: C, layers, threads: 1 });
    sessions.push(s);
    return s;
  };

  it('gives the same output for every tiling, through every layer kind and padding mode', async () => {
    const [h, w] = [10, 14];
    const source: Region = { data: values(C * h * w), channels: C, rows: { start: 0, end: h }, cols: { start: 0, end: w } };
    const layers: LayerSpec[] = [
      conv(7, 'reflect', false),
      { kind: 'down', filter: downFilter, channels: C, normalized: true },
      conv(3, 'zero', true),
      { kind: 'up', channels: C, normalized: true },
      conv(3, 'reflect', true),
    ];
    const norms = [undefined, norm, norm, norm, norm];
    const s = await session(layers);
    const whole = await tiledResult(s, source, h, w, 64, norms);
    for (const tile of [1, 3, 4]) {
      expect(await tiledResult(s, source, h, w, tile, norms)).toBeCloseToTensor(whole, { atol: 1e-6, rtol: 0 });
    }
  });

  it('upsamples the same with the standard filter as a transposed convolution and as Resize', async () => {
    const [h, w] = [5, 7];
    const source: Region = { data: values(C * h * w), channels: C, rows: { start: 0, end: h }, cols: { start: 0, end: w } };
    const transposed = await session([{ kind: 'up', filter: upFilter, channels: C }]);
    const resize = await session([{ kind: 'up', channels: C }]);
    const expected = await tiledResult(transposed, source, 2 * h, 2 * w, 64, []);
    for (const tile of [3, 64]) {
      expect(await tiledResult(resize, source, 2 * h, 2 * w, tile, [])).toBeCloseToTensor(expected, { atol: 1e-6, rtol: 0 });
      expect(await tiledResult(transposed, source, 2 * h, 2 * w, tile, [])).toBeCloseToTensor(expected, { atol: 1e-6, rtol: 0 });
    }
  });

  it('refuses tiles outside the output, missing statistics and mismatched channels', async () => {
    const layers = [conv(3, 'zero', true)];
    expect(() =>
      chainGeometry(
        layers.map(() => ({ kind: 'conv', kernel: 3, outChannels: C, normalized: true })),
        { height: 8, width: 8 },
        { y0: 4, x0: 0, height: 5, width: 8 },
      ),
    ).toThrow(new UsageError('tile 5×8 at (4, 0) is outside the 8×8 output'));
    const s = await session(layers);
    const source: Region = { data: values(C * 64), channels: C, rows: { start: 0, end: 8 }, cols: { start: 0, end: 8 } };
    await expect(runChainTile(s, source, { y0: 0, x0: 0, height: 8, width: 8 }, [])).rejects.toThrow(
      "test: layer 0 needs its input's InstanceNorm statistics",
    );
    expect(() => chainModelBytes({ name: 'bad', inChannels: 4, layers, threads: 1 })).toThrow('bad: layer 0 takes 3 channels, it gets 4');
  });
});
