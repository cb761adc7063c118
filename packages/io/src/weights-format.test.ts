import { promises as fsp } from 'node:fs';
import * as path from 'node:path';

import { withTempDir } from '@scenimefy/test-utils';

import { detectWeightsFormat, weightsFormatOf } from './weights-format';

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
