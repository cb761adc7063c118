import { promises as fsp } from 'node:fs';
import * as path from 'node:path';

import {
  InputError,
  ModelFormatError,
  readTorchStateDict,
  sha256File,
  writeCheckpointManifest,
  writeSafetensors,
  type TensorMap,
} from '@scenimefy/io';
import { describeIfFixture, makeTempDir, referenceFixturePath, startLoopbackServer, type TempDir } from '@scenimefy/test-utils';

import { exportGeneratorOnnx } from '../export/onnx';
import { resolveModel } from './model-source';

function expectSameTensors(a: TensorMap, b: TensorMap): void {
  expect([...a.keys()]).toEqual([...b.keys()]);
  for (const [k, t] of a) {
    const u = b.get(k)!;
    expect(u.shape).toEqual(t.shape);
    expect(Buffer.from(u.bytes).equals(Buffer.from(t.bytes))).toBe(true);
  }
}

describeIfFixture('i2i/netG-ngf16.pth', 'resolveModel', () => {
  const pth = referenceFixturePath('i2i/netG-ngf16.pth');
  let tmp: TempDir;
  let reference: TensorMap;
  beforeAll(async () => {
    reference = await readTorchStateDict(pth);
  });
  beforeEach(async () => {
    tmp = await makeTempDir('model-source');
  });
  afterEach(async () => {
    await tmp.cleanup();
  });

  it('reads the official .pth, zip or legacy, and makes its ONNX graph in memory', async () => {
    for (const file of [pth, referenceFixturePath('i2i/netG-ngf16.legacy.pth')]) {
      const m = await resolveModel(file);
      expect(m.kind).toBe('pytorch');
      expectSameTensors(m.stateDict, reference);
      expect(m.onnx).toBeInstanceOf(Uint8Array);
    }
  });

  it('reads safetensors with plain or netG.-prefixed keys', async () => {
    const plain = path.join(tmp.dir, 'g.safetensors');
    await writeSafetensors(plain, reference);
    expectSameTensors((await resolveModel(plain)).stateDict, reference);
    const prefixed = path.join(tmp.dir, 'gp.safetensors');
    await writeSafetensors(prefixed, new Map([...reference].map(([k, t]) => [`netG.${k}`, t])));
    expectSameTensors((await resolveModel(prefixed)).stateDict, reference);
  });

  it('reads a scenimefy-checkpoint folder', async () => {
    const dir = path.join(tmp.dir, 'ckpt');
    await fsp.mkdir(dir);
    const weights = path.join(dir, 'weights.safetensors');
    await writeSafetensors(weights, new Map([...reference].map(([k, t]) => [`netG.${k}`, t])));
    await writeCheckpointManifest(path.join(dir, 'checkpoint.json'), {
      format: 'scenimefy-checkpoint',
      formatVersion: 1,
      generatedBy: { name: '@scenimefy/i2i-core', version: '0.1.0' },
      createdAt: new Date().toISOString(),
      networks: {
        netG: { architecture: 'resnet_9blocks', ngf: 16, inputNc: 3, outputNc: 3, antialias: true, antialiasUp: true, norm: 'instance' },
      },
      tensorNaming: 'network-prefixed-state-dict',
      weights: { file: 'weights.safetensors', sha256: await sha256File(weights), size: (await fsp.stat(weights)).size },
    });
    const m = await resolveModel(dir);
    expect(m.kind).toBe('scenimefy-checkpoint');
    expectSameTensors(m.stateDict, reference);
  });

  it('reads back the weights of an .onnx it exported', async () => {
    const onnx = path.join(tmp.dir, 'g.onnx');
    await fsp.writeFile(onnx, exportGeneratorOnnx(reference, { upsample: 'conv-transpose' }));
    const m = await resolveModel(onnx);
    expect(m.kind).toBe('onnx');
    expect(m.onnx).toBe(onnx);
    expectSameTensors(m.stateDict, reference);
  });

  it('names the file and the problem for a missing file, a non-model and a state dict without a generator', async () => {
    const missing = path.join(tmp.dir, 'nope.pth');
    await expect(resolveModel(missing)).rejects.toThrow(new InputError(`no such model file or folder (known model names: shinkai)`, { file: missing }).message);
    const text = path.join(tmp.dir, 'model.pth');
    await fsp.writeFile(text, 'hello');
    await expect(resolveModel(text)).rejects.toThrow(ModelFormatError);
    await expect(resolveModel(text)).rejects.toThrow(`${text}: not a model file (expected .pth/.pt, .safetensors, .onnx or a checkpoint folder)`);
    const netD = referenceFixturePath('i2i/netD-ndf16.pth');
    await expect(resolveModel(netD)).rejects.toThrow(
      `${netD}: no generator weights (expected "model.1.weight" or "netG.model.1.weight"; found model.0.weight, model.0.bias, model.2.filt, …)`,
    );
  });

  it('downloads the default model once from a mirror, converts it to ONNX once, then works offline', async () => {
    const bytes = await fsp.readFile(pth);
    const server = await startLoopbackServer({ '/netG-ngf16.pth': { body: bytes } });
    try {
      const manifest = path.join(tmp.dir, 'mirror.json');
      await fsp.writeFile(
        manifest,
        JSON.stringify({ models: [{ name: 'shinkai', file: 'netG-ngf16.pth', url: server.url('/netG-ngf16.pth'), sha256: await sha256File(pth), bytes: bytes.length }] }),
      );
      const env = { SCENIMEFY_MODEL_MANIFEST: manifest };
      const cacheDir = path.join(tmp.dir, 'cache');
      const first = await resolveModel(undefined, { env, cacheDir, offline: false });
      expect(first.kind).toBe('registry');
      expect(first.onnx).toBe(path.join(cacheDir, 'models', 'shinkai', 'model.onnx'));
      expectSameTensors(first.stateDict, reference);
      const onnxStat = await fsp.stat(first.onnx as string);
      const second = await resolveModel('shinkai', { env, cacheDir, offline: true });
      expect(second.onnx).toBe(first.onnx);
      expect((await fsp.stat(first.onnx as string)).mtimeMs).toBe(onnxStat.mtimeMs); // not re-exported
      expect(server.requests).toHaveLength(1);
    } finally {
      await server.close();
    }
  });
});
