import { promises as fsp } from 'node:fs';

import { ModelFormatError, readTorchStateDict, serializeSafetensors, type TensorMap } from '@scenimefy/io';
import { describeIfFixture, referenceFixturePath } from '@scenimefy/test-utils';
import { onnx } from 'onnx-proto';

import { exportGeneratorOnnx } from '../export/onnx';
import { generatorModelFromBytes, generatorStateDictOf } from './model-bytes';

function expectSameTensors(a: TensorMap, b: TensorMap): void {
  expect([...a.keys()]).toEqual([...b.keys()]);
  for (const [k, t] of a) {
    const u = b.get(k)!;
    expect(u.shape).toEqual(t.shape);
    expect(Buffer.from(u.bytes).equals(Buffer.from(t.bytes))).toBe(true);
  }
}

describeIfFixture('i2i/netG-ngf16.pth', 'generatorModelFromBytes', () => {
  const pth = referenceFixturePath('i2i/netG-ngf16.pth');
  let reference: TensorMap;
  beforeAll(async () => {
    reference = await readTorchStateDict(pth);
  });

  it('reads the official .pth, zip or legacy, from an ArrayBuffer or a view, and exports its ONNX graph', async () => {
    for (const file of [pth, referenceFixturePath('i2i/netG-ngf16.legacy.pth')]) {
      const bytes = await fsp.readFile(file);
      const fromView = generatorModelFromBytes(bytes, 'netG.pth');
      expect(fromView.format).toBe('pytorch');
      expect(fromView.description).toBe('netG.pth');
      expectSameTensors(fromView.stateDict, reference);
      expect(Buffer.from(fromView.onnx).equals(Buffer.from(exportGeneratorOnnx(reference)))).toBe(true);
      const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
      expectSameTensors(generatorModelFromBytes(buffer, 'netG.pth').stateDict, reference);
    }
  });

  it('reads safetensors with plain or netG.-prefixed keys', () => {
    const plain = serializeSafetensors(reference);
    expect(generatorModelFromBytes(plain, 'g.safetensors').format).toBe('safetensors');
    expectSameTensors(generatorModelFromBytes(plain, 'g.safetensors').stateDict, reference);
    const prefixed = serializeSafetensors(new Map([...reference].map(([k, t]) => [`netG.${k}`, t])));
    expectSameTensors(generatorModelFromBytes(prefixed, 'checkpoint.safetensors').stateDict, reference);
  });

  it('keeps the bytes of an .onnx it was given and reads its weights back', () => {
    const bytes = exportGeneratorOnnx(reference, { upsample: 'conv-transpose' });
    const model = generatorModelFromBytes(bytes, 'picked.onnx');
    expect(model.format).toBe('onnx');
    expect(model.onnx.buffer).toBe(bytes.buffer); // the same bytes, not a copy
    expect(Buffer.from(model.onnx).equals(Buffer.from(bytes))).toBe(true);
    expectSameTensors(model.stateDict, reference);
  });

  it('names the bytes and the problem for a non-generator, a non-model and a foreign ONNX model', async () => {
    const netD = await fsp.readFile(referenceFixturePath('i2i/netD-ndf16.pth'));
    expect(() => generatorModelFromBytes(netD, 'netD.pth')).toThrow(
      new ModelFormatError(
        'no generator weights (expected "model.1.weight" or "netG.model.1.weight"; found model.0.weight, model.0.bias, model.2.filt, …)',
        { file: 'netD.pth' },
      ).message,
    );
    expect(() => generatorModelFromBytes(new TextEncoder().encode('hello'), 'notes.pth')).toThrow(
      new ModelFormatError('not a model file (expected .pth/.pt, .safetensors or .onnx)', { file: 'notes.pth' }).message,
    );
    expect(() => generatorModelFromBytes(new Uint8Array(0))).toThrow('<bytes>: not a model file');
    const foreign = onnx.ModelProto.encode({ irVersion: 8, graph: { name: 'empty' } }).finish();
    expect(() => generatorModelFromBytes(foreign, 'other.onnx')).toThrow(ModelFormatError);
    expect(() => generatorModelFromBytes(foreign, 'other.onnx')).toThrow(/^other\.onnx: no initializer named like the generator/);
  });

  it('strips only the netG. network of a checkpoint', () => {
    const mixed: TensorMap = new Map([
      ...[...reference].map(([k, t]) => [`netG.${k}`, t] as const),
      ['netD.model.0.weight', reference.get('model.1.weight')!] as const,
    ]);
    expectSameTensors(generatorStateDictOf(mixed, 'ckpt'), reference);
  });
});
