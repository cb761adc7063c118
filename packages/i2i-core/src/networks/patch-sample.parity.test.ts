/**
 * PatchSampleF against the PyTorch reference (fixtures/reference/i2i, README §4 and §6). The taps come from
 * this package's generator (netG-ngf16.pth on the stored input, computed once on wasm, checked against the
 * reference in generator.parity.test.ts); the reference's ids are injected, since torch.randperm cannot be
 * reproduced. Each backend a test run can count on (wasm, cpu), and tfjs-node where it is installed, runs the
 * gather and the heads. Names, shapes and tolerances come from the sidecars.
 */
import { availableBackends, loadTf, readTorchStateDict, tensorToFloat32, tensorToInt32 } from '@scenimefy/io';
import type { BackendCandidate } from '@scenimefy/io';
import { describeIfFixture, loadReferenceFixture, referenceFixturePath } from '@scenimefy/test-utils';
import type { ReferenceFixture } from '@scenimefy/test-utils';
import type { Tensor4D } from '@tensorflow/tfjs-core';
import type { Tf } from '../layers/tf';
import { createResnetGenerator, loadGeneratorWeights } from './generator';
import { createPatchSampleF, gatherPatchRows } from './patch-sample';
import type { PatchSampleF } from './patch-sample';

function numberAfter(word: 'atol' | 'rtol', text: string, where: string): number {
  const m = new RegExp(`${word}\\s+([0-9.]+e-?[0-9]+)`).exec(text);
  if (!m) throw new Error(`${where}: no "${word} <number>" in tolerance guidance: ${text}`);
  return Number(m[1]);
}

function maxAbs(values: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < values.length; i++) m = Math.max(m, Math.abs(values[i]!));
  return m;
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

interface Tap {
  layer: number;
  shape: [number, number, number, number];
  data: Float32Array;
}

/** netG(input, layers, encode_only=True) on wasm, as plain arrays so any backend can take them. */
async function encodedTaps(checkpoint: string, input: Float32Array, shape: number[], layers: number[]): Promise<Tap[]> {
  const { tf } = await loadTf({ prefer: 'wasm', require: true });
  const file = referenceFixturePath('i2i', checkpoint);
  const weights = loadGeneratorWeights(await readTorchStateDict(file), { source: file });
  const netG = createResnetGenerator(tf, weights.config, { weights });
  const x = tf.tensor4d(input, shape as [number, number, number, number]);
  const taps = netG.encode(x, layers);
  const out = taps.map((t, i) => ({ layer: layers[i]!, shape: t.shape, data: t.dataSync() as Float32Array }));
  tf.dispose([x, ...taps]);
  netG.dispose();
  return out;
}

const backends: BackendCandidate[] = ['wasm', 'cpu'];
if (availableBackends().some((b) => b.candidate === 'tfjs-node')) backends.push('tfjs-node');

const reached: string[] = [];
afterAll(() => {
  if (reached.length > 0) process.stdout.write(`PatchSampleF parity:\n  ${reached.join('\n  ')}\n`);
});

describe('PatchSampleF nc32 vs PyTorch', () => {
  let fixture: ReferenceFixture;
  let taps: Tap[];
  let layers: number[];
  let tapScale: number;
  let outAtol: number;
  const stateFile = referenceFixturePath('i2i', 'patchF-nc32.pth');

  beforeAll(async () => {
    fixture = await loadReferenceFixture('i2i', 'patchF-io');
    layers = (fixture.sidecarValue('taps') as Array<{ layer: number }>).map((t) => t.layer);
    outAtol = numberAfter('atol', fixture.sidecarString('tolerance_guidance'), fixture.sidecarPath);
    const generatorIo = await loadReferenceFixture('i2i', 'netG-ngf16-io');
    // "use atol = 1e-5 * max|tap| per tensor": the taps (and so the rows gathered from them) carry this error.
    const tapGuidance = generatorIo.sidecarString(['tolerance_guidance', 'tap_*']);
    tapScale = Number(/atol\s*=\s*([0-9.]+e-?[0-9]+)\s*\*\s*max\|tap\|/.exec(tapGuidance)?.[1]);
    expect(tapScale).toBeGreaterThan(0);
    taps = await encodedTaps(fixture.sidecarString('generator_checkpoint'), fixture.float32('input'), fixture.shape('input'), layers);
  }, 120_000);

  it('encodes taps of the shapes the sidecar lists', () => {
    const listed = fixture.sidecarValue('taps') as Array<{ layer: number; tap_shape: number[] }>;
    expect(taps.map((t) => t.shape)).toEqual(listed.map((t) => t.tap_shape));
  });

  describe.each(backends)('on %s', (backend) => {
    let tf: Tf;
    let netF: PatchSampleF;
    const ids = (n: number, layer: number) => tensorToInt32(fixture.tensor(`ids${n}_L${layer}`));
    const tapTensors = () => taps.map((t) => tf.tensor4d(t.data, t.shape));

    beforeAll(async () => {
      ({ tf } = await loadTf({ prefer: backend, require: true }));
      netF = createPatchSampleF(tf);
      netF.loadState(await readTorchStateDict(stateFile), { source: stateFile });
    });
    afterAll(() => netF.dispose());

    it('pre-builds the heads of patchF-nc32.pth with C_l and nc from its shapes', async () => {
      const sidecarState = fixture.sidecarValue('state_dict') as Array<{ key: string; shape: number[] }>;
      expect(netF.nc).toBe(sidecarState.find((e) => e.key === 'mlp_0.2.weight')!.shape[0]);
      expect(netF.headChannels()).toEqual(taps.map((t) => t.shape[1]));
      const out = await netF.stateDict();
      expect([...out].map(([k, v]) => ({ key: k, shape: v.shape }))).toEqual(sidecarState.map((e) => ({ key: e.key, shape: e.shape })));
      const original = await readTorchStateDict(stateFile);
      for (const [key, tensor] of original)
        expect({ key, maxAbsDiff: maxAbsDiff(out.get(key)!.data, tensorToFloat32(tensor)) }).toEqual({ key, maxAbsDiff: 0 });
    });

    it('gathers the rows at ids64 (sampled64_L*) within the tap tolerance', () => {
      const feats = tapTensors();
      taps.forEach((tap, i) => {
        const name = `sampled64_L${tap.layer}`;
        const rows = gatherPatchRows(tf, feats[i]!, ids(64, tap.layer));
        const atol = tapScale * maxAbs(tap.data);
        const values = rows.dataSync();
        expect(rows.shape).toEqual(fixture.shape(name));
        expect(values).toBeCloseToTensor(fixture.float32(name), { atol, rtol: 0, shape: rows.shape });
        if (backend === 'wasm')
          reached.push(`${name} max|Δ| ${maxAbsDiff(values, fixture.float32(name)).toExponential(2)} (atol ${atol.toExponential(2)})`);
        rows.dispose();
      });
      tf.dispose(feats);
    });

    it('maps the reference`s own sampled rows to out64_L* (heads alone) within the sidecar atol', () => {
      // Rows laid out as a 1×N feature map and taken in order isolate the MLP and the normalisation from the taps.
      const feats = taps.map((tap) => {
        const name = `sampled64_L${tap.layer}`;
        const [n, c] = fixture.shape(name) as [number, number];
        return tf.tidy(() => tf.reshape(tf.transpose(tf.tensor2d(fixture.float32(name), [n, c])), [1, c, 1, n]) as Tensor4D);
      });
      const inOrder = feats.map((f) => Int32Array.from({ length: f.shape[3] }, (_, i) => i));
      const before = tf.memory().numTensors;
      const { features } = netF.sample(feats, 64, inOrder);
      taps.forEach((tap, i) => {
        const name = `out64_L${tap.layer}`;
        const values = features[i]!.dataSync();
        expect(features[i]!.shape).toEqual(fixture.shape(name));
        expect(values).toBeCloseToTensor(fixture.float32(name), { atol: outAtol, rtol: 0, shape: features[i]!.shape });
        reached.push(`${backend} heads ${name} max|Δ| ${maxAbsDiff(values, fixture.float32(name)).toExponential(2)} (atol ${outAtol})`);
      });
      tf.dispose(features);
      expect(tf.memory().numTensors).toBe(before);
      tf.dispose(feats);
    });

    it.each([64, 256])('samples the taps at ids%i into the matching out_L* within the sidecar atol', (n) => {
      const feats = tapTensors();
      const given = taps.map((t) => ids(n, t.layer));
      const before = tf.memory().numTensors;
      const { features, patchIds } = netF.sample(feats, n, given);
      expect(patchIds).toEqual(given);
      taps.forEach((tap, i) => {
        const name = `out${n}_L${tap.layer}`;
        const values = features[i]!.dataSync();
        expect(features[i]!.shape).toEqual(fixture.shape(name));
        expect(values).toBeCloseToTensor(fixture.float32(name), { atol: outAtol, rtol: 0, shape: features[i]!.shape });
        reached.push(`${backend} ${name} max|Δ| ${maxAbsDiff(values, fixture.float32(name)).toExponential(2)} (atol ${outAtol})`);
      });
      tf.dispose(features);
      expect(tf.memory().numTensors).toBe(before);
      tf.dispose(feats);
    });
  });
});

describeIfFixture(
  ['i2i/train.json', 'i2i/train-io.safetensors', 'i2i/train-netF-init.pth', 'i2i/train-netFs-init.pth'],
  'PatchSampleF on the training fixture: netF and netF_s init weights with the injected ids (wasm backend)',
  () => {
    let train: ReferenceFixture;
    beforeAll(async () => {
      train = await loadReferenceFixture('i2i', 'train', { tensorFile: 'train-io.safetensors' });
    });

    // README §6: draw 0 (netF, on G(x)) is reused for x; draw 1 (netF_s) is drawn on y_p.
    it.each([
      { net: 'F', image: 'x', draw: 0, pool: 'init_pool_k_realA' },
      { net: 'F_s', image: 'y_p', draw: 1, pool: 'init_pool_k_yp' },
    ])('$net on the taps of $image with ids_draw$draw reproduces the $pool rows of every layer', async ({ net, image, draw, pool }) => {
      const guidance = train.sidecarString(['tolerance_guidance', 'init losses and init intermediates (fake_B, pools, D maps)']);
      const atol = numberAfter('atol', guidance, train.sidecarPath);
      const rtol = numberAfter('rtol', guidance, train.sidecarPath);
      const layers = (train.sidecarValue('tensors_io') as Array<{ name: string }>)
        .map((t) => new RegExp(`^${pool}_L(\\d+)$`).exec(t.name))
        .filter((m): m is RegExpExecArray => m !== null)
        .map((m) => Number(m[1]));
      expect(layers.length).toBeGreaterThan(0);
      const generator = train.sidecarString(['initial_weights', 'G']).split(' ')[0]!;
      const taps = await encodedTaps(generator, train.float32(image), train.shape(image), layers);
      const { tf } = await loadTf({ prefer: 'wasm', require: true });
      const file = referenceFixturePath('i2i', train.sidecarString(['initial_weights', net]).split(' ')[0]!);
      const netF = createPatchSampleF(tf);
      netF.loadState(await readTorchStateDict(file), { source: file });
      expect(netF.headChannels()).toEqual(taps.map((t) => t.shape[1]));
      const feats = taps.map((t) => tf.tensor4d(t.data, t.shape));
      const ids = layers.map((l) => tensorToInt32(train.tensor(`ids_draw${draw}_L${l}`)));
      const { features } = netF.sample(feats, ids[0]!.length, ids);
      layers.forEach((layer, i) => {
        const name = `${pool}_L${layer}`;
        const values = features[i]!.dataSync();
        expect(features[i]!.shape).toEqual(train.shape(name));
        expect(values).toBeCloseToTensor(train.float32(name), { atol, rtol, shape: features[i]!.shape });
        reached.push(`wasm ${net} ${name} max|Δ| ${maxAbsDiff(values, train.float32(name)).toExponential(2)} (atol ${atol}, rtol ${rtol})`);
      });
      tf.dispose([...feats, ...features]);
      netF.dispose();
    });
  },
);
