import { promises as fsp } from 'node:fs';
import * as path from 'node:path';

import { withTempDir } from '@scenimefy/test-utils';

import { sha256File } from './atomic-file';
import { writeCheckpointManifest } from './contracts/contract-files';
import { float32Tensor, writeSafetensors } from './safetensors';
import { detectWeightsFormat, readWeights, weightsFormatOf } from './weights-format';

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
        formatVersion: 1,
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
