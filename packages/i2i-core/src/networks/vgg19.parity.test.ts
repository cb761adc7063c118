/**
 * The TF.js VGG-19 features against the PyTorch reference (fixtures/reference/vgg19, README there): the stored
 * features-only state dict read with io's readTorchStateDict, its key list against weights.json, and conv4_4 plus
 * the pool1–pool3 debug taps of forward.safetensors on cpu, wasm and (where installed) tfjs-node.
 *
 * Tolerance, per the README's rule: atol = max(20·Δ, 2e-6·max|ref|), Δ and max|ref| being the sidecar's
 * float32-vs-float64 figures for that tensor.
 */
import { availableBackends, loadTf, readTorchStateDict } from '@scenimefy/io';
import type { BackendCandidate, TensorMap } from '@scenimefy/io';
import { describeIfFixture, loadReferenceFixture, referenceFixturePath } from '@scenimefy/test-utils';
import type { ReferenceFixture } from '@scenimefy/test-utils';
import type { Tensor4D } from '@tensorflow/tfjs-core';
import { promises as fsp } from 'node:fs';
import { createVgg19Features, loadVgg19Weights } from './vgg19';
import type { Vgg19FeatureTaps } from './vgg19';

const backends: BackendCandidate[] = ['cpu', 'wasm'];
if (availableBackends().some((b) => b.candidate === 'tfjs-node')) backends.push('tfjs-node');

/** forward.json's tensor names → the taps `forwardWithTaps` returns. */
const TAPS: ReadonlyArray<readonly [string, keyof Vgg19FeatureTaps]> = [
  ['conv4_4', 'conv4_4'],
  ['inter_pool1', 'pool1'],
  ['inter_pool2', 'pool2'],
  ['inter_pool3', 'pool3'],
];

function readmeAtol(fixture: ReferenceFixture, name: string): number {
  const delta = fixture.sidecarNumber(['f32_vs_f64', name, 'max_abs_diff']);
  const maxRef = fixture.sidecarNumber(['f32_vs_f64', name, 'max_abs_ref']);
  return Math.max(20 * delta, 2e-6 * maxRef);
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

const FILES = ['vgg19/vgg19_features.pth', 'vgg19/weights.json', 'vgg19/forward.json', 'vgg19/forward.safetensors'];

describeIfFixture(FILES, 'VGG-19 features vs PyTorch', () => {
  let stateDict: TensorMap;
  let pth: string;
  const reached: string[] = [];

  beforeAll(async () => {
    pth = referenceFixturePath('vgg19', 'vgg19_features.pth');
    stateDict = await readTorchStateDict(pth);
  }, 60_000);

  afterAll(() => {
    if (reached.length > 0) process.stdout.write(`vgg19 parity (max|Δ| vs atol): ${reached.join('; ')}\n`);
  });

  it('reads the features-only .pth: the keys and shapes weights.json lists, in its order', async () => {
    const sidecar = JSON.parse(await fsp.readFile(referenceFixturePath('vgg19', 'weights.json'), 'utf8')) as {
      keys: Array<[string, number[]]>;
      layer_map: Record<string, string>;
    };
    const weights = loadVgg19Weights(stateDict, { source: pth });
    expect([...weights].map(([k, t]) => [k, [...t.shape]])).toEqual(sidecar.keys);
    expect([...stateDict.keys()]).toEqual(sidecar.keys.map(([k]) => k));
  });

  it('ignores the parts of the full torchvision checkpoint the loss never uses (features.28+, classifier.*)', () => {
    const full = new Map(stateDict);
    const extra = stateDict.get('features.25.bias')!;
    for (const key of ['features.28.bias', 'features.34.bias', 'classifier.6.bias']) full.set(key, extra);
    const weights = loadVgg19Weights(full, { source: pth });
    expect(weights.size).toBe(24);
    expect(weights.get('features.25.bias')!.data).toEqual(loadVgg19Weights(stateDict).get('features.25.bias')!.data);
  });

  describe.each(backends)('on %s', (backend) => {
    it('conv4_4 (pre-ReLU) and the pool1-pool3 taps match forward.safetensors', async () => {
      const { tf } = await loadTf({ prefer: backend, require: true });
      const fixture = await loadReferenceFixture('vgg19', 'forward');
      const vgg = createVgg19Features(tf, stateDict, { source: pth });
      const before = tf.memory().numTensors;
      const x = tf.tensor4d(fixture.float32('input'), fixture.shape('input') as [number, number, number, number]);
      const taps = vgg.forwardWithTaps(x);
      for (const [name, tap] of TAPS) {
        const got = taps[tap] as Tensor4D;
        expect({ name, shape: got.shape }).toEqual({ name, shape: fixture.shape(name) });
        const values = got.dataSync();
        const atol = readmeAtol(fixture, name);
        expect(values).toBeCloseToTensor(fixture.float32(name), { atol, rtol: 0, shape: got.shape });
        reached.push(`${backend} ${name} ${maxAbsDiff(values, fixture.float32(name)).toExponential(2)} vs ${atol.toExponential(1)}`);
      }
      tf.dispose([x, ...Object.values(taps)]);
      expect(tf.memory().numTensors).toBe(before);
      vgg.dispose();
    }, 120_000);
  });
});
