/**
 * The TF.js generator against the PyTorch reference (fixtures/reference/i2i, README §1–§2): the official
 * checkpoints, inputs, outputs and encoder taps; tensor names, shapes and tolerances come from the sidecars.
 * Both run on the wasm backend: the pure-JS cpu backend needs ~18 s for one ngf16 forward at 64×96, wasm
 * ~8 s for ngf64 at 256². The cpu kernels are checked layer by layer in the unit tests.
 */
import { existsSync, readFileSync } from 'node:fs';
import { loadTf, readTorchStateDict } from '@scenimefy/io';
import type { BackendCandidate } from '@scenimefy/io';
import { describeIfFixture, loadReferenceFixture, referenceFixturePath } from '@scenimefy/test-utils';
import type { ReferenceFixture } from '@scenimefy/test-utils';
import type { Tensor4D } from '@tensorflow/tfjs-core';
import type { Tf } from '../layers/tf';
import { createResnetGenerator, loadGeneratorWeights } from './generator';
import type { ResnetGenerator } from './generator';

/** The number after "atol" in a tolerance_guidance line, e.g. "atol 5e-5 for a float32 implementation". */
function guidanceNumber(fixture: ReferenceFixture, key: string, pattern: RegExp): number {
  const text = fixture.sidecarString(['tolerance_guidance', key]);
  const m = pattern.exec(text);
  if (!m) throw new Error(`${fixture.sidecarPath}: tolerance_guidance.${key} does not match ${pattern}: ${text}`);
  return Number(m[1]);
}
const outputAtolOf = (f: ReferenceFixture) => guidanceNumber(f, 'output_*', /atol\s+([0-9.]+e-?[0-9]+)/);
const tapScaleOf = (f: ReferenceFixture) => guidanceNumber(f, 'tap_*', /atol\s*=\s*([0-9.]+e-?[0-9]+)\s*\*\s*max\|tap\|/);

function maxAbs(values: Float32Array): number {
  let m = 0;
  for (const v of values) m = Math.max(m, Math.abs(v));
  return m;
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/**
 * Sidecar outputs `output_<case>` with their inputs `input_<case>`, and taps `tap_<case>_L<layer>`. Read
 * synchronously so that jest can name one test per case; an absent sidecar gives no cases.
 */
function casesOf(stem: string) {
  const sidecarPath = referenceFixturePath('i2i', `${stem}.json`);
  if (!existsSync(sidecarPath)) return [];
  const sidecar = JSON.parse(readFileSync(sidecarPath, 'utf8')) as { tensors: Array<{ name: string }> };
  const names = sidecar.tensors.map((t) => t.name);
  const outputs = names.filter((n) => n.startsWith('output_')).map((n) => n.slice('output_'.length));
  return outputs.map((id) => ({
    id,
    taps: names
      .map((n) => new RegExp(`^tap_${id}_L(\\d+)$`).exec(n))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => ({ name: m[0], layer: Number(m[1]) }))
      .sort((a, b) => a.layer - b.layer),
  }));
}

function defineParity(stem: string, backend: BackendCandidate, slow: boolean): void {
  let tf: Tf;
  let fixture: ReferenceFixture;
  let netG: ResnetGenerator;
  const reached: string[] = [];
  const cases = casesOf(stem);

  beforeAll(async () => {
    ({ tf } = await loadTf({ prefer: backend, require: true }));
    fixture = await loadReferenceFixture('i2i', stem);
    const checkpoint = fixture.sidecarString('checkpoint');
    const file = referenceFixturePath('i2i', checkpoint);
    const weights = loadGeneratorWeights(await readTorchStateDict(file), { source: file });
    netG = createResnetGenerator(tf, weights.config, { weights });
  }, 120_000);

  afterAll(() => {
    netG?.dispose();
    // The max differences reached, for the record (the README's table has PyTorch's own float32-vs-float64 spread).
    if (reached.length > 0) process.stdout.write(`${stem} on ${backend}: ${reached.join('; ')}\n`);
  });

  it('has cases and the resnet_9blocks checkpoint the sidecar names', () => {
    expect(cases.length).toBeGreaterThan(0);
    expect(netG.config.nBlocks).toBe(9);
  });

  it.each(cases.map((c) => c.id))(
    'output_%s matches the reference within the sidecar atol',
    (id) => {
      const inputName = `input_${id}`;
      const outputName = `output_${id}`;
      const x = tf.tensor4d(fixture.float32(inputName), fixture.shape(inputName) as [number, number, number, number]);
      const before = tf.memory().numTensors;
      const started = performance.now();
      const y = netG.forward(x);
      const values = y.dataSync();
      const ms = performance.now() - started;
      expect(y.shape).toEqual(fixture.shape(outputName));
      const atol = outputAtolOf(fixture);
      expect(values).toBeCloseToTensor(fixture.float32(outputName), { atol, rtol: 0, shape: y.shape });
      reached.push(
        `${outputName} max|Δ| ${maxAbsDiff(values, fixture.float32(outputName)).toExponential(2)} (atol ${atol}, ${ms.toFixed(0)} ms)`,
      );
      y.dispose();
      expect(tf.memory().numTensors).toBe(before);
      x.dispose();
    },
    slow ? 300_000 : 120_000,
  );

  for (const { id, taps } of cases.filter((c) => c.taps.length > 0)) {
    it(`encodes the ${taps.length} taps of case ${id} within the sidecar tolerance (atol ∝ max|tap|)`, () => {
      const inputName = `input_${id}`;
      const x = tf.tensor4d(fixture.float32(inputName), fixture.shape(inputName) as [number, number, number, number]);
      const before = tf.memory().numTensors;
      const got = netG.encode(
        x,
        taps.map((t) => t.layer),
      );
      expect(got).toHaveLength(taps.length);
      const scale = tapScaleOf(fixture);
      taps.forEach((tap, i) => {
        const expected = fixture.float32(tap.name);
        const actual = got[i] as Tensor4D;
        expect(actual.shape).toEqual(fixture.shape(tap.name));
        const atol = scale * maxAbs(expected);
        const values = actual.dataSync();
        expect(values).toBeCloseToTensor(expected, { atol, rtol: 0, shape: actual.shape });
        reached.push(`${tap.name} max|Δ| ${maxAbsDiff(values, expected).toExponential(2)} (atol ${atol.toExponential(2)})`);
      });
      tf.dispose(got);
      expect(tf.memory().numTensors).toBe(before);
      x.dispose();
    });
  }
}

describe('ResnetGenerator ngf16 vs PyTorch (wasm backend)', () => {
  defineParity('netG-ngf16-io', 'wasm', false);
});

describeIfFixture(['i2i/netG-ngf64.pth', 'i2i/netG-ngf64-io.safetensors'], 'ResnetGenerator ngf64 vs PyTorch (wasm backend)', () => {
  defineParity('netG-ngf64-io', 'wasm', true);
});
