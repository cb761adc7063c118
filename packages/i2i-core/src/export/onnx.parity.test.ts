import { ModelFormatError, readTorchStateDict } from '@scenimefy/io';
import type { TensorMap } from '@scenimefy/io';
import { describeIfFixture, loadReferenceFixture, referenceFixturePath } from '@scenimefy/test-utils';
import type { ReferenceFixture } from '@scenimefy/test-utils';
import { onnx } from 'onnx-proto';

import { createOnnxSession } from '../infer/node-engine';
import { runGenerator } from '../infer/onnx-session';
import type { OnnxSession } from '../infer/onnx-session';
import { exportGeneratorOnnx } from './onnx';
import type { UpsampleMode } from './onnx';

/** The output tolerance the sidecar recommends for a float32 implementation ("atol 5e-5 for a float32 ..."). */
function outputAtol(fixture: ReferenceFixture): number {
  const guidance = fixture.sidecarString(['tolerance_guidance', 'output_*']);
  const match = /atol\s+([0-9.]+e-?[0-9]+|[0-9.]+)/i.exec(guidance);
  if (!match?.[1]) throw new Error(`no atol in ${fixture.sidecarPath} tolerance_guidance.output_*: ${guidance}`);
  return Number(match[1]);
}

async function expectOutputMatches(session: OnnxSession, fixture: ReferenceFixture, suffix: 'a' | 'b'): Promise<void> {
  const shape = fixture.shape(`input_${suffix}`);
  const [n, c, h, w] = shape;
  if (shape.length !== 4 || n === undefined || c === undefined || h === undefined || w === undefined) {
    throw new Error(`input_${suffix} is not NCHW: [${shape.join(', ')}]`);
  }
  expect(fixture.shape(`output_${suffix}`)).toEqual(shape);
  const actual = await runGenerator(session, fixture.float32(`input_${suffix}`), [n, c, h, w]);
  expect(actual).toBeCloseToTensor(fixture.float32(`output_${suffix}`), { atol: outputAtol(fixture), rtol: 0, shape });
}

describeIfFixture(['i2i/netG-ngf16.pth', 'i2i/netG-ngf16-io.safetensors'], 'ONNX generator vs reference, ngf 16', () => {
  let stateDict: TensorMap;
  let fixture: ReferenceFixture;
  const sessions = new Map<UpsampleMode, OnnxSession>();

  beforeAll(async () => {
    stateDict = await readTorchStateDict(referenceFixturePath('i2i', 'netG-ngf16.pth'));
    fixture = await loadReferenceFixture('i2i', 'netG-ngf16-io');
    for (const upsample of ['conv-transpose', 'resize'] as const) {
      sessions.set(upsample, await createOnnxSession(exportGeneratorOnnx(stateDict, { upsample }), { threads: 1 }));
    }
  });
  afterAll(async () => {
    for (const session of sessions.values()) await session.release();
  });

  it.each([
    ['conv-transpose', 'a'],
    ['conv-transpose', 'b'],
    ['resize', 'a'],
    ['resize', 'b'],
  ] as const)('upsample %s: output_%s matches within the sidecar tolerance', async (upsample, suffix) => {
    await expectOutputMatches(sessions.get(upsample)!, fixture, suffix);
  });

  it('is an opset-17 graph with dynamic dims and the checkpoint tensors as initializers', () => {
    const model = onnx.ModelProto.decode(exportGeneratorOnnx(stateDict));
    expect(model.opsetImport.map((o) => Number(o.version))).toEqual([17]);
    const dims = (model.graph?.input?.[0]?.type?.tensorType?.shape?.dim ?? []).map((d) => d.dimParam || Number(d.dimValue));
    expect(dims).toEqual(['batch', 3, 'height', 'width']);
    const meta = Object.fromEntries(model.metadataProps.map((p) => [p.key, p.value]));
    expect(meta).toMatchObject({ 'scenimefy.ngf': '16', 'scenimefy.upsample': 'resize' });
    // The checkpoint's filt buffers are standard, so 'auto' writes Resize and leaves the Upsample buffers out.
    const used = [...stateDict.keys()].filter((key) => key !== 'model.21.filt' && key !== 'model.25.filt');
    const names = new Set(model.graph?.initializer?.map((t) => t.name));
    expect(used.filter((key) => !names.has(key))).toEqual([]);
    // + InstanceNorm scale/bias for 16, 32, 64 channels, pads for 3 and 1, Resize scales.
    expect(model.graph?.initializer).toHaveLength(used.length + 6 + 2 + 1);
  });

  it('refuses the checkpoint with a tensor missing or reshaped', () => {
    const missing: TensorMap = new Map(stateDict);
    missing.delete('model.26.bias');
    expect(() => exportGeneratorOnnx(missing, { source: 'netG-ngf16.pth' })).toThrow(
      new ModelFormatError("netG-ngf16.pth: missing 'model.26.bias' (expected shape [16])"),
    );
    const reshaped: TensorMap = new Map(stateDict);
    const w = stateDict.get('model.30.weight')!;
    reshaped.set('model.30.weight', { ...w, shape: [3, 16, 49, 1] });
    expect(() => exportGeneratorOnnx(reshaped, { source: 'netG-ngf16.pth' })).toThrow(
      "netG-ngf16.pth: 'model.30.weight' has shape [3, 16, 49, 1], expected [3, 16, 7, 7] for ngf=16",
    );
  });
});

describeIfFixture(['i2i/netG-ngf64.pth', 'i2i/netG-ngf64-io.safetensors'], 'ONNX generator vs reference, ngf 64', () => {
  let fixture: ReferenceFixture;
  let session: OnnxSession;

  beforeAll(async () => {
    const stateDict = await readTorchStateDict(referenceFixturePath('i2i', 'netG-ngf64.pth'));
    fixture = await loadReferenceFixture('i2i', 'netG-ngf64-io');
    session = await createOnnxSession(exportGeneratorOnnx(stateDict), { threads: 2 });
  });
  afterAll(async () => {
    await session?.release();
  });

  it.each(['a', 'b'] as const)('output_%s matches within the sidecar tolerance', async (suffix) => {
    await expectOutputMatches(session, fixture, suffix);
  });
});
