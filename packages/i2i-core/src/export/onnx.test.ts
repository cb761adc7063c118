import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';

import { ModelFormatError, UsageError, tensorToFloat32 } from '@scenimefy/io';
import type { TensorData, TensorMap } from '@scenimefy/io';
import { onnx } from 'onnx-proto';

import { createOnnxSession } from '../infer/node-engine';
import { runGenerator } from '../infer/onnx-session';
import {
  MAX_GENERATOR_OPSET,
  exportGeneratorOnnx,
  generatorStateDictFromOnnx,
  generatorStateDictShapes,
  validatedGeneratorStateDict,
} from './onnx';
import type { UpsampleMode } from './onnx';
import { exportGeneratorOnnxFile } from './onnx-file';

function f32(shape: readonly number[], values: Float32Array): TensorData {
  return { dtype: 'F32', shape: [...shape], bytes: new Uint8Array(values.buffer, values.byteOffset, values.byteLength) };
}

function outer(taps: number[]): number[] {
  return taps.flatMap((a) => taps.map((b) => a * b));
}

/** A generator state dict with the reference's key set, deterministic pseudo-random weights and the SPEC filters. */
function syntheticStateDict(ngf: number, prefix = ''): TensorMap {
  let seed = 12345;
  const uniform = (): number => {
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
    return seed / 2 ** 32 - 0.5;
  };
  const map: TensorMap = new Map();
  for (const [key, shape] of generatorStateDictShapes(ngf)) {
    const n = shape.reduce((a, b) => a * b, 1);
    let values: Float32Array;
    if (key.endsWith('.filt')) {
      const kernel = shape[2] === 3 ? outer([1, 2, 1]).map((v) => v / 16) : outer([1, 3, 3, 1]).map((v) => v / 16);
      values = Float32Array.from({ length: n }, (_, i) => kernel[i % kernel.length] ?? NaN);
    } else {
      const fanIn = shape.slice(1).reduce((a, b) => a * b, 1);
      const scale = key === 'model.30.weight' ? 4 / Math.sqrt(fanIn) : 1 / Math.sqrt(Math.max(fanIn, 1));
      values = Float32Array.from({ length: n }, () => uniform() * 2 * scale);
    }
    map.set(prefix + key, f32(shape, values));
  }
  return map;
}

function withTensor(map: TensorMap, key: string, tensor: TensorData | undefined): TensorMap {
  const copy: TensorMap = new Map(map);
  if (tensor === undefined) copy.delete(key);
  else copy.set(key, tensor);
  return copy;
}

function dimsOf(value: onnx.IValueInfoProto | undefined): Array<string | number> {
  return (value?.type?.tensorType?.shape?.dim ?? []).map((d) => (d.dimParam ? d.dimParam : Number(d.dimValue)));
}

describe('exportGeneratorOnnx', () => {
  const ngf = 2;
  const stateDict = syntheticStateDict(ngf);

  const opCounts = (model: onnx.ModelProto): Record<string, number> => {
    const counts: Record<string, number> = {};
    for (const node of model.graph?.node ?? []) counts[node.opType ?? ''] = (counts[node.opType ?? ''] ?? 0) + 1;
    return counts;
  };

  it('writes an opset-17 ModelProto with dynamic batch/H/W and one initializer per tensor plus shared constants', () => {
    const model = onnx.ModelProto.decode(exportGeneratorOnnx(stateDict, { upsample: 'conv-transpose' }));
    expect(model.opsetImport.map((o) => [o.domain, Number(o.version)])).toEqual([['', 17]]);
    expect(Number(model.irVersion)).toBe(8);
    expect(model.producerName).toBe('@scenimefy/i2i-core');
    const graph = model.graph!;
    expect(graph.input?.map((i) => i.name)).toEqual(['input']);
    expect(graph.output?.map((o) => o.name)).toEqual(['output']);
    expect(dimsOf(graph.input?.[0])).toEqual(['batch', 3, 'height', 'width']);
    expect(dimsOf(graph.output?.[0])).toEqual(['batch', 3, 'out_height', 'out_width']);
    // 52 state-dict tensors + IN scale/bias for ngf, 2ngf, 4ngf channels + pads for 3 and 1.
    expect(graph.initializer).toHaveLength(52 + 6 + 2);
    expect(opCounts(model)).toEqual({
      Pad: 2 + 2 + 18 + 2,
      Conv: 24 + 2,
      InstanceNormalization: 23,
      Relu: 14,
      Add: 9,
      ConvTranspose: 2,
      Tanh: 1,
    });
    const stem = graph.initializer?.find((t) => t.name === 'model.1.weight');
    expect(stem?.dims?.map(Number)).toEqual([ngf, 3, 7, 7]);
    expect(stem?.dataType).toBe(onnx.TensorProto.DataType.FLOAT);
    expect(Buffer.from(stem!.rawData!)).toEqual(Buffer.from(stateDict.get('model.1.weight')!.bytes));
    const meta = Object.fromEntries(model.metadataProps.map((p) => [p.key, p.value]));
    expect(meta['scenimefy.ngf']).toBe('2');
    expect(meta['scenimefy.upsample']).toBe('conv-transpose');
  });

  it("upsample 'auto' writes Resize for the standard filters and the transposed conv for any other", () => {
    const auto = onnx.ModelProto.decode(exportGeneratorOnnx(stateDict));
    expect(opCounts(auto)).toMatchObject({ Resize: 2, Pad: 2 + 2 + 18 });
    expect(opCounts(auto)['ConvTranspose']).toBeUndefined();
    // The two filt buffers are not needed; one scales constant is added.
    expect(auto.graph?.initializer).toHaveLength(50 + 6 + 2 + 1);
    expect(auto.metadataProps.find((p) => p.key === 'scenimefy.upsample')?.value).toBe('resize');
    const resize = auto.graph?.node?.find((n) => n.opType === 'Resize');
    const attrs = Object.fromEntries((resize?.attribute ?? []).map((a) => [a.name, new TextDecoder().decode(a.s!)]));
    expect(attrs).toEqual({ mode: 'linear', coordinate_transformation_mode: 'half_pixel' });

    const odd = withTensor(stateDict, 'model.25.filt', f32([4, 1, 4, 4], new Float32Array(64).fill(0.0625)));
    const fallback = onnx.ModelProto.decode(exportGeneratorOnnx(odd));
    expect(opCounts(fallback)).toMatchObject({ ConvTranspose: 2 });
    expect(opCounts(fallback)['Resize']).toBeUndefined();
  });

  it('runs in onnxruntime at several sizes, and the Resize form of the upsamplers agrees with the transposed conv', async () => {
    const transposed = await createOnnxSession(exportGeneratorOnnx(stateDict, { upsample: 'conv-transpose' }), {
      threads: 1,
    });
    const resized = await createOnnxSession(exportGeneratorOnnx(stateDict, { upsample: 'resize', opset: 18 }), {
      threads: 1,
    });
    try {
      for (const [h, w] of [
        [8, 8],
        [12, 20],
        [32, 24],
      ] as const) {
        const input = Float32Array.from({ length: 3 * h * w }, (_, i) => Math.sin(i * 0.37));
        const a = await runGenerator(transposed, input, [1, 3, h, w]);
        const b = await runGenerator(resized, input, [1, 3, h, w]);
        let maxDiff = 0;
        for (let i = 0; i < a.length; i++) maxDiff = Math.max(maxDiff, Math.abs((a[i] ?? NaN) - (b[i] ?? NaN)));
        expect(maxDiff).toBeLessThan(1e-5);
        expect(a.every((v) => v > -1 && v < 1)).toBe(true);
        expect(Math.max(...a) - Math.min(...a)).toBeGreaterThan(0.1);
      }
    } finally {
      await transposed.release();
      await resized.release();
    }
  });

  it('keeps the batch dynamic: a batch of two equals the two images run alone', async () => {
    const session = await createOnnxSession(exportGeneratorOnnx(stateDict), { threads: 1 });
    try {
      const n = 3 * 8 * 12;
      const both = Float32Array.from({ length: 2 * n }, (_, i) => Math.cos(i * 0.11));
      const batched = await runGenerator(session, both, [2, 3, 8, 12]);
      const first = await runGenerator(session, both.subarray(0, n), [1, 3, 8, 12]);
      const second = await runGenerator(session, both.subarray(n), [1, 3, 8, 12]);
      const maxDiff = (a: Float32Array, b: Float32Array): number => a.reduce((m, v, i) => Math.max(m, Math.abs(v - (b[i] ?? NaN))), 0);
      expect(maxDiff(batched.subarray(0, n), first)).toBeLessThan(1e-6);
      expect(maxDiff(batched.subarray(n), second)).toBeLessThan(1e-6);
    } finally {
      await session.release();
    }
  });

  it('accepts every opset up to MAX_GENERATOR_OPSET with the matching IR version', async () => {
    const input = Float32Array.from({ length: 3 * 8 * 8 }, (_, i) => Math.sin(i));
    const base = await createOnnxSession(exportGeneratorOnnx(stateDict), { threads: 1 });
    const expected = await runGenerator(base, input, [1, 3, 8, 8]);
    await base.release();
    const irByOpset: Record<number, number> = { 18: 8, 19: 9, 21: 10, [MAX_GENERATOR_OPSET]: 11 };
    for (const [opset, ir] of Object.entries(irByOpset).map(([o, i]) => [Number(o), i] as const)) {
      const bytes = exportGeneratorOnnx(stateDict, { opset });
      expect(Number(onnx.ModelProto.decode(bytes).irVersion)).toBe(ir);
      const session = await createOnnxSession(bytes, { threads: 1 });
      const out = await runGenerator(session, input, [1, 3, 8, 8]);
      await session.release();
      expect(out.reduce((m, v, i) => Math.max(m, Math.abs(v - (expected[i] ?? NaN))), 0)).toBeLessThan(1e-6);
    }
  });

  it('reads a prefixed checkpoint (netG.) and ignores the other networks in it', () => {
    const combined: TensorMap = new Map([...syntheticStateDict(ngf, 'netG.'), ['netD.model.0.weight', f32([1], new Float32Array(1))]]);
    const a = exportGeneratorOnnx(combined, { prefix: 'netG.' });
    expect(Buffer.from(a)).toEqual(Buffer.from(exportGeneratorOnnx(stateDict)));
  });

  it('converts F16 weights to float32 initializers', () => {
    const half: TensorMap = new Map(stateDict);
    // 0x3c00 is 1.0 and 0xc000 is -2.0 in IEEE half precision.
    half.set('model.1.bias', { dtype: 'F16', shape: [ngf], bytes: Uint8Array.from([0x00, 0x3c, 0x00, 0xc0]) });
    const model = onnx.ModelProto.decode(exportGeneratorOnnx(half));
    const bias = model.graph?.initializer?.find((t) => t.name === 'model.1.bias');
    const raw = bias!.rawData!;
    expect(Array.from(new Float32Array(Uint8Array.from(raw).buffer))).toEqual([1, -2]);
  });

  it('names the problem in a ModelFormatError for malformed state dicts', () => {
    const fail = (map: TensorMap, prefix?: string, upsample?: UpsampleMode): string => {
      try {
        exportGeneratorOnnx(map, { prefix, upsample, source: 'ckpt.pth' });
      } catch (error) {
        expect(error).toBeInstanceOf(ModelFormatError);
        return (error as Error).message;
      }
      throw new Error('expected a ModelFormatError');
    };
    expect(fail(withTensor(stateDict, 'model.20.conv_block.5.weight', undefined))).toBe(
      "ckpt.pth: missing 'model.20.conv_block.5.weight' (expected shape [8, 8, 3, 3])",
    );
    expect(fail(withTensor(stateDict, 'model.22.bias', f32([3], new Float32Array(3))))).toBe(
      "ckpt.pth: 'model.22.bias' has shape [3], expected [4] for ngf=2",
    );
    expect(fail(withTensor(stateDict, 'model.1.weight', undefined))).toMatch(/missing 'model\.1\.weight'/);
    expect(fail(withTensor(stateDict, 'model.1.weight', f32([2, 3, 7], new Float32Array(42))))).toMatch(
      /'model\.1\.weight' has shape \[2, 3, 7\], expected \[ngf, 3, 7, 7\]/,
    );
    expect(fail(withTensor(stateDict, 'model.31.weight', f32([1], new Float32Array(1))))).toMatch(/unexpected key 'model\.31\.weight'/);
    expect(fail(stateDict, 'netG.')).toMatch(/no tensor has the prefix 'netG\.'/);
    expect(fail(withTensor(stateDict, 'model.1.bias', { dtype: 'I64', shape: [2], bytes: new Uint8Array(16) }))).toMatch(
      /dtype I64, expected a float type/,
    );
    expect(fail(withTensor(stateDict, 'model.1.bias', { dtype: 'F32', shape: [2], bytes: new Uint8Array(7) }))).toMatch(
      /holds 7 bytes, its F32 shape needs 8/,
    );
    const oddFilter = f32([8, 1, 4, 4], new Float32Array(128).fill(0.0625));
    expect(fail(withTensor(stateDict, 'model.21.filt', oddFilter), undefined, 'resize')).toBe(
      "ckpt.pth: 'model.21.filt' is not the standard blur filter (entry 1 is 0.0625, expected 0.1875); export with upsample 'conv-transpose'",
    );
  });

  it('rejects opsets outside 17..MAX_GENERATOR_OPSET and unknown upsample modes with a UsageError', () => {
    expect(() => exportGeneratorOnnx(stateDict, { opset: 16 })).toThrow(UsageError);
    expect(() => exportGeneratorOnnx(stateDict, { opset: MAX_GENERATOR_OPSET + 1 })).toThrow(UsageError);
    expect(() => exportGeneratorOnnx(stateDict, { upsample: 'nearest' as 'resize' })).toThrow(/unknown upsample mode 'nearest'/);
  });

  it('infers ngf from model.1.weight', () => {
    expect(validatedGeneratorStateDict(syntheticStateDict(3)).layout).toEqual({ ngf: 3, blocks: 9 });
  });

  it.each(['conv-transpose', 'resize'] as const)('generatorStateDictFromOnnx reads a %s export back unchanged', (upsample) => {
    const back = generatorStateDictFromOnnx(exportGeneratorOnnx(stateDict, { upsample }), 'netG.onnx');
    expect([...back.keys()]).toEqual([...generatorStateDictShapes(ngf).keys()]);
    for (const [key, tensor] of stateDict) {
      expect(back.get(key)?.shape).toEqual(tensor.shape);
      expect(Array.from(tensorToFloat32(back.get(key)!))).toEqual(Array.from(tensorToFloat32(tensor)));
    }
  });

  it('generatorStateDictFromOnnx refuses what is not a complete generator', () => {
    expect(() => generatorStateDictFromOnnx(Uint8Array.from([0x0a, 0xff, 0xff]), 'bad.onnx')).toThrow(/bad\.onnx: not an ONNX model/);
    const foreign = onnx.ModelProto.encode({ irVersion: 8, graph: { name: 'empty' } }).finish();
    expect(() => generatorStateDictFromOnnx(foreign, 'other.onnx')).toThrow(ModelFormatError);
    const partial = onnx.ModelProto.decode(exportGeneratorOnnx(stateDict, { upsample: 'conv-transpose' }));
    partial.graph!.initializer = partial.graph!.initializer!.filter((t) => t.name !== 'model.25.filt');
    expect(() => generatorStateDictFromOnnx(onnx.ModelProto.encode(partial).finish(), 'partial.onnx')).toThrow(
      "partial.onnx: missing 'model.25.filt' (expected shape [4, 1, 4, 4])",
    );
  });

  it('exportGeneratorOnnxFile writes the same bytes to disk', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'onnx-export-'));
    try {
      const file = path.join(dir, 'netG.onnx');
      await exportGeneratorOnnxFile(stateDict, file, { metadata: { source: 'synthetic' } });
      const written = readFileSync(file);
      expect(written.equals(Buffer.from(exportGeneratorOnnx(stateDict, { metadata: { source: 'synthetic' } })))).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
