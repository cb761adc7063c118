import { execFileSync } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';

import {
  ContractError,
  InputError,
  ModelFormatError,
  float32Tensor,
  readTorchStateDict,
  sha256File,
  tensorToFloat32,
  writeCheckpointManifest,
  writeRunManifest,
  writeSafetensors,
  type TensorMap,
} from '@scenimefy/io';
import { describeIfFixture, makeTempDir, referenceFixturePath, startLoopbackServer, type TempDir } from '@scenimefy/test-utils';

import { exportGeneratorOnnx } from '../export/onnx';
import { resolveModel } from './model-source';

/** A scenimefy-checkpoint folder holding only a generator, as `scenimefy models import` writes one. */
async function writeGeneratorCheckpoint(dir: string, generator: TensorMap): Promise<void> {
  await fsp.mkdir(dir, { recursive: true });
  const weights = path.join(dir, 'weights.safetensors');
  await writeSafetensors(weights, new Map([...generator].map(([k, t]) => [`netG.${k}`, t])));
  await writeCheckpointManifest(path.join(dir, 'checkpoint.json'), {
    format: 'scenimefy-checkpoint',
    formatVersion: 2,
    generatedBy: { name: '@scenimefy/i2i-core', version: '0.1.0' },
    createdAt: new Date().toISOString(),
    networks: {
      netG: { architecture: 'resnet_9blocks', ngf: 16, inputNc: 3, outputNc: 3, antialias: true, antialiasUp: true, norm: 'instance' },
    },
    tensorNaming: 'network-prefixed-state-dict',
    weights: { file: 'weights.safetensors', sha256: await sha256File(weights), size: (await fsp.stat(weights)).size },
  });
}

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
    await writeGeneratorCheckpoint(dir, reference);
    const m = await resolveModel(dir);
    expect(m.kind).toBe('scenimefy-checkpoint');
    expectSameTensors(m.stateDict, reference);
  });

  it("reads a training run folder as its newest complete checkpoint's generator", async () => {
    const run = path.join(tmp.dir, 'run');
    await fsp.mkdir(run);
    const checkpoint = (iteration: number): string => path.join(run, 'checkpoints', `iter-${String(iteration).padStart(9, '0')}`);
    await writeRunManifest(path.join(run, 'run.json'), {
      format: 'scenimefy-run',
      formatVersion: 2,
      generatedBy: { name: '@scenimefy/i2i-core', version: '0.1.0' },
      createdAt: new Date().toISOString(),
      status: 'running',
      options: { nEpochs: 1 },
      nonDefaults: ['nEpochs'],
      checkpoints: [],
      events: 'events.ndjson',
    });
    await expect(resolveModel(run)).rejects.toThrow(`${run}: training run has no complete checkpoint yet (checkpoints/iter-*)`);

    // Older, different weights; the newest complete one; a newer one whose weights were cut short; a save in progress.
    const scaled: TensorMap = new Map(
      [...reference].map(([k, t]) => [
        k,
        k.endsWith('.filt')
          ? t
          : float32Tensor(
              t.shape,
              tensorToFloat32(t).map((v) => v * 2),
            ),
      ]),
    );
    await writeGeneratorCheckpoint(checkpoint(3), scaled);
    await writeGeneratorCheckpoint(checkpoint(5), reference);
    await writeGeneratorCheckpoint(checkpoint(8), scaled);
    const cut = path.join(checkpoint(8), 'weights.safetensors');
    await fsp.truncate(cut, (await fsp.stat(cut)).size - 64);
    await writeGeneratorCheckpoint(path.join(run, 'checkpoints', `.iter-000000009.tmp-${process.pid}-0123456789ab`), scaled);

    const m = await resolveModel(run);
    expect(m.kind).toBe('scenimefy-checkpoint');
    expect(m.file).toBe(checkpoint(5));
    expect(m.description).toBe(`run ${run}, checkpoint iter-000000005`);
    expectSameTensors(m.stateDict, reference);
    expect(m.onnx).toBeInstanceOf(Uint8Array);

    await fsp.writeFile(path.join(run, 'run.json'), '{"format": "scenimefy-dataset"}');
    await expect(resolveModel(run)).rejects.toThrow(ContractError);
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
    await expect(resolveModel(missing)).rejects.toThrow(
      new InputError(`no such model file or folder (known model names: shinkai)`, { file: missing }).message,
    );
    const text = path.join(tmp.dir, 'model.pth');
    await fsp.writeFile(text, 'hello');
    await expect(resolveModel(text)).rejects.toThrow(ModelFormatError);
    await expect(resolveModel(text)).rejects.toThrow(
      `${text}: not a model file (expected .pth/.pt, .safetensors, .onnx or a checkpoint folder)`,
    );
    const netD = referenceFixturePath('i2i/netD-ndf16.pth');
    await expect(resolveModel(netD)).rejects.toThrow(
      `${netD}: no generator weights (expected "model.1.weight" or "netG.model.1.weight"; found model.0.weight, model.0.bias, model.2.filt, …)`,
    );
  });

  it('refuses a FIFO or a device as --model by name instead of blocking on it (issue 12 #5)', async () => {
    const fifo = path.join(tmp.dir, 'model.pth');
    execFileSync('mkfifo', [fifo]);
    // Before the fix the first bytes were read from the pipe, which blocks until a writer comes: the test timed out.
    await expect(resolveModel(fifo)).rejects.toThrow(
      new InputError('cannot read the model: is a FIFO (named pipe), not a regular file', { file: fifo }).message,
    );
    const link = path.join(tmp.dir, 'zero.safetensors');
    await fsp.symlink('/dev/zero', link);
    await expect(resolveModel(link)).rejects.toThrow(
      new InputError('cannot read the model: is a symbolic link to "/dev/zero", a character device, not a regular file', { file: link })
        .message,
    );
  }, 10_000);

  it('downloads the default model once from a mirror, converts it to ONNX once, then works offline', async () => {
    const bytes = await fsp.readFile(pth);
    const server = await startLoopbackServer({ '/netG-ngf16.pth': { body: bytes } });
    try {
      const manifest = path.join(tmp.dir, 'mirror.json');
      await fsp.writeFile(
        manifest,
        JSON.stringify({
          models: [
            {
              name: 'shinkai',
              file: 'netG-ngf16.pth',
              url: server.url('/netG-ngf16.pth'),
              sha256: await sha256File(pth),
              bytes: bytes.length,
            },
          ],
        }),
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
