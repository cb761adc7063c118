import { promises as fsp } from 'node:fs';
import * as path from 'node:path';

import { describeIfFixture, referenceFixturePath, withTempDir } from '@scenimefy/test-utils';

import { sha256File } from './atomic-file';
import { writeCheckpointManifest } from './contracts/contract-files';
import { ModelFormatError } from './errors';
import { float32Tensor, serializeSafetensors } from './safetensors';
import { writeSafetensors } from './safetensors-file';
import { detectWeightsFormat, readWeights } from './weights-file';
import { parseWeights, weightsFormatOf } from './weights-format';

describe('weightsFormatOf', () => {
  it('tells zip and legacy PyTorch, safetensors and ONNX apart by content', () => {
    expect(weightsFormatOf(Uint8Array.from([0x50, 0x4b, 3, 4]))).toBe('pytorch');
    expect(weightsFormatOf(Uint8Array.from([0x80, 0x02, 0x8a]))).toBe('pytorch');
    expect(weightsFormatOf(Uint8Array.from([8, 0, 0, 0, 0, 0, 0, 0, 0x7b, 0x22]))).toBe('safetensors');
    expect(weightsFormatOf(Uint8Array.from([0x08, 0x08, 0x12]), 'm.onnx')).toBe('onnx');
    expect(weightsFormatOf(Uint8Array.from([0x08, 0x08, 0x12]), 'm.bin')).toBeUndefined();
    expect(weightsFormatOf(new TextEncoder().encode('hello world, not weights'))).toBeUndefined();
    expect(weightsFormatOf(new Uint8Array(0))).toBeUndefined();
  });

  it('reads only the head of a file and names a missing one', () =>
    withTempDir(async (dir) => {
      const f = path.join(dir, 'w.safetensors');
      await fsp.writeFile(f, Buffer.concat([Buffer.from([2, 0, 0, 0, 0, 0, 0, 0]), Buffer.from('{}')]));
      expect(await detectWeightsFormat(f)).toBe('safetensors');
      const missing = path.join(dir, 'nope.pth');
      await expect(detectWeightsFormat(missing)).rejects.toThrow(`${missing}: no such file`);
    }));
});

describe('readWeights', () => {
  it('reads safetensors, refuses a key there, and names a file that holds no weights', () =>
    withTempDir(async (dir) => {
      const f = path.join(dir, 'w.safetensors');
      await writeSafetensors(f, new Map([['a', float32Tensor([2], Float32Array.of(1, 2))]]), { note: 'x' });
      const w = await readWeights(f);
      expect(w.kind).toBe('safetensors');
      expect([...w.tensors.keys()]).toEqual(['a']);
      expect(w.metadata).toEqual({ note: 'x' });
      await expect(readWeights(f, { key: 'g_ema' })).rejects.toThrow(`${f}: a key (--key) applies to PyTorch checkpoints, not safetensors`);
      const text = path.join(dir, 'notes.pth');
      await fsp.writeFile(text, 'plain text');
      await expect(readWeights(text)).rejects.toThrow(
        `${text}: not a weights file (expected safetensors, a PyTorch .pth/.pt, or a checkpoint folder)`,
      );
      await expect(readWeights(path.join(dir, 'nope'))).rejects.toThrow('no such file or folder');
    }));

  it('reads a checkpoint folder through its manifest', () =>
    withTempDir(async (dir) => {
      const weights = path.join(dir, 'weights.safetensors');
      await writeSafetensors(weights, new Map([['netG.model.1.bias', float32Tensor([1], Float32Array.of(3))]]));
      await writeCheckpointManifest(path.join(dir, 'checkpoint.json'), {
        format: 'scenimefy-checkpoint',
        formatVersion: 2,
        generatedBy: { name: '@scenimefy/io', version: '0.1.0' },
        createdAt: new Date().toISOString(),
        networks: {
          netG: { architecture: 'resnet_9blocks', ngf: 1, inputNc: 3, outputNc: 3, antialias: true, antialiasUp: true, norm: 'instance' },
        },
        tensorNaming: 'network-prefixed-state-dict',
        weights: { file: 'weights.safetensors', sha256: await sha256File(weights), size: (await fsp.stat(weights)).size },
      });
      const w = await readWeights(dir);
      expect(w.kind).toBe('scenimefy-checkpoint');
      expect([...w.tensors.keys()]).toEqual(['netG.model.1.bias']);
    }));
});

describe('parseWeights (bytes)', () => {
  it('reads safetensors bytes with their metadata and names them in errors', () => {
    const bytes = serializeSafetensors(new Map([['a', float32Tensor([2], Float32Array.of(1, 2))]]), { note: 'x' });
    const w = parseWeights(bytes, 'picked.safetensors');
    expect(w).toMatchObject({ kind: 'safetensors', file: 'picked.safetensors', metadata: { note: 'x' } });
    expect([...w.tensors.keys()]).toEqual(['a']);
    expect(() => parseWeights(bytes, 'picked.safetensors', { key: 'g_ema' })).toThrow(
      'picked.safetensors: a key (--key) applies to PyTorch checkpoints, not safetensors',
    );
    expect(() => parseWeights(bytes.subarray(0, 20))).toThrow(ModelFormatError);
  });

  it('refuses ONNX and anything else by content', () => {
    expect(() => parseWeights(Uint8Array.from([0x08, 0x08, 0x12, 0]), 'm.onnx')).toThrow(
      'm.onnx: is an ONNX model, not a weights file (load it as a model instead)',
    );
    expect(() => parseWeights(new TextEncoder().encode('plain text'))).toThrow(
      '<bytes>: not a weights file (expected safetensors or a PyTorch .pth/.pt)',
    );
  });
});

describeIfFixture(['i2i/netG-ngf16.pth', 'i2i/netG-ngf16.legacy.pth'], 'parseWeights of PyTorch checkpoints', () => {
  it('gives the tensors readWeights gives for the file, zip and legacy alike', async () => {
    for (const name of ['netG-ngf16.pth', 'netG-ngf16.legacy.pth']) {
      const file = referenceFixturePath('i2i', name);
      const fromFile = await readWeights(file);
      const fromBytes = parseWeights(new Uint8Array(await fsp.readFile(file)), name);
      expect(fromBytes.kind).toBe('pytorch');
      expect([...fromBytes.tensors.keys()]).toEqual([...fromFile.tensors.keys()]);
      for (const [key, t] of fromFile.tensors) {
        const b = fromBytes.tensors.get(key)!;
        expect([b.dtype, b.shape]).toEqual([t.dtype, t.shape]);
        expect(Buffer.from(b.bytes).equals(Buffer.from(t.bytes))).toBe(true);
      }
    }
  });
});
