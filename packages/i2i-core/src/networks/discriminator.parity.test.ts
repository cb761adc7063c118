/**
 * The TF.js discriminators against the PyTorch reference (fixtures/reference/i2i, README §3 and §6): the
 * official ndf16 checkpoints of netD and netD_p on the stored inputs, on every backend a test run can count on
 * (cpu, wasm) and on tfjs-node where it is installed. Names, shapes and tolerances come from the sidecars.
 */
import { availableBackends, loadTf, readTorchStateDict, tensorToFloat32 } from '@scenimefy/io';
import type { BackendCandidate } from '@scenimefy/io';
import { describeIfFixture, loadReferenceFixture, referenceFixturePath } from '@scenimefy/test-utils';
import type { ReferenceFixture } from '@scenimefy/test-utils';
import type { Tensor4D } from '@tensorflow/tfjs-core';
import type { Tf } from '../layers/tf';
import { createPatchDiscriminator, inferDiscriminatorConfig } from './discriminator';
import type { PatchDiscriminator } from './discriminator';

function atolOf(text: string, where: string): number {
  const m = /atol\s+([0-9.]+e-?[0-9]+)/.exec(text);
  if (!m) throw new Error(`${where}: no "atol <number>" in tolerance guidance: ${text}`);
  return Number(m[1]);
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

const backends: BackendCandidate[] = ['cpu', 'wasm'];
if (availableBackends().some((b) => b.candidate === 'tfjs-node')) backends.push('tfjs-node');

const reached: string[] = [];
afterAll(() => {
  if (reached.length > 0) process.stdout.write(`discriminator parity: ${reached.join('; ')}\n`);
});

/** netD-io lists each network's checkpoint in `checkpoints` and its IO as `<net>_input_a` / `<net>_output_a`. */
const nets = [
  { name: 'netD', checkpoint: 'netD-ndf16.pth' },
  { name: 'netDp', checkpoint: 'netDp-ndf16.pth' },
];

describe.each(backends)('PatchDiscriminator ndf16 vs PyTorch (%s backend)', (backend) => {
  let tf: Tf;
  let fixture: ReferenceFixture;
  const built = new Map<string, PatchDiscriminator>();

  beforeAll(async () => {
    ({ tf } = await loadTf({ prefer: backend, require: true }));
    fixture = await loadReferenceFixture('i2i', 'netD-io');
    const listed = fixture.sidecarValue('checkpoints') as string[];
    for (const { name, checkpoint } of nets) {
      expect(listed).toContain(checkpoint);
      const file = referenceFixturePath('i2i', checkpoint);
      const weights = await readTorchStateDict(file);
      built.set(name, createPatchDiscriminator(tf, inferDiscriminatorConfig(weights, { source: file }), { weights, source: file }));
    }
  }, 120_000);

  afterAll(() => {
    for (const d of built.values()) d.dispose();
  });

  it.each(nets.map((n) => n.name))('%s_output_a matches the reference within the sidecar atol', (name) => {
    const netD = built.get(name)!;
    const input = `${name}_input_a`;
    const output = `${name}_output_a`;
    expect(netD.config).toEqual({ inputNc: fixture.shape(input)[1], ndf: 16, nLayers: 3 });
    const x = tf.tensor4d(fixture.float32(input), fixture.shape(input) as [number, number, number, number]);
    const before = tf.memory().numTensors;
    const y = netD.forward(x);
    const values = y.dataSync();
    expect(y.shape).toEqual(fixture.shape(output));
    const atol = atolOf(fixture.sidecarString('tolerance_guidance'), fixture.sidecarPath);
    expect(values).toBeCloseToTensor(fixture.float32(output), { atol, rtol: 0, shape: y.shape });
    reached.push(`${backend} ${output} max|Δ| ${maxAbsDiff(values, fixture.float32(output)).toExponential(2)} (atol ${atol})`);
    y.dispose();
    expect(tf.memory().numTensors).toBe(before);
    x.dispose();
  });

  it('gives back the checkpoints tensor for tensor, filt buffers included', async () => {
    for (const { name, checkpoint } of nets) {
      const original = await readTorchStateDict(referenceFixturePath('i2i', checkpoint));
      const out = await built.get(name)!.stateDict();
      expect([...out.keys()]).toEqual([...original.keys()]);
      for (const [key, tensor] of original) {
        expect({ key, shape: out.get(key)!.shape }).toEqual({ key, shape: tensor.shape });
        expect({ key, maxAbsDiff: maxAbsDiff(out.get(key)!.data, tensorToFloat32(tensor)) }).toEqual({ key, maxAbsDiff: 0 });
      }
    }
  });
});

describeIfFixture(['i2i/train.json', 'i2i/train-io.safetensors'], 'PatchDiscriminator on the training fixture (cpu backend)', () => {
  // README §6: the init forward scores y with netD and cat[x_p, y_p] with netD_p, both at their initial weights.
  it('reproduces init_pred_D_real and init_pred_Dp_real within the sidecar tolerance', async () => {
    const { tf } = await loadTf({ prefer: 'cpu', require: true });
    const train = await loadReferenceFixture('i2i', 'train', { tensorFile: 'train-io.safetensors' });
    const guidance = train.sidecarString(['tolerance_guidance', 'init losses and init intermediates (fake_B, pools, D maps)']);
    const atol = atolOf(guidance, train.sidecarPath);
    const rtol = Number(/rtol\s+([0-9.]+e-?[0-9]+)/.exec(guidance)?.[1]);
    expect(rtol).toBeGreaterThan(0);
    const image = (name: string) => tf.tensor4d(train.float32(name), train.shape(name) as [number, number, number, number]);
    const cases: Array<{ key: 'D' | 'D_p'; expected: string; input: () => Tensor4D }> = [
      { key: 'D', expected: 'init_pred_D_real', input: () => image('y') },
      { key: 'D_p', expected: 'init_pred_Dp_real', input: () => tf.concat([image('x_p'), image('y_p')], 1) },
    ];
    for (const { key, expected, input } of cases) {
      const file = referenceFixturePath('i2i', train.sidecarString(['initial_weights', key]));
      const weights = await readTorchStateDict(file);
      const netD = createPatchDiscriminator(tf, inferDiscriminatorConfig(weights), { weights, source: file });
      const x = tf.tidy(input);
      const y = netD.forward(x);
      const values = y.dataSync();
      expect(y.shape).toEqual(train.shape(expected));
      expect(values).toBeCloseToTensor(train.float32(expected), { atol, rtol, shape: y.shape });
      reached.push(`cpu ${expected} max|Δ| ${maxAbsDiff(values, train.float32(expected)).toExponential(2)} (atol ${atol}, rtol ${rtol})`);
      tf.dispose([x, y]);
      netD.dispose();
    }
  });
});
