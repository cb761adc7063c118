import { existsSync, promises as fsp, readdirSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { InputError, ModelFormatError } from './errors';
import { float32Tensor, parseSafetensors, serializeSafetensors, tensorToBigInt64, tensorToFloat32, tensorToInt32 } from './safetensors';
import { readSafetensors, writeSafetensors } from './safetensors-file';
import type { DType, TensorData, TensorMap } from './tensor';

/**
 * Written by the reference Python library (safetensors 0.8.0, safetensors.numpy.save with ml_dtypes for BF16):
 *   f64 [[1.5,-2.25,1e300],[0.1,-0.0,3.0]], f32 [1,-1.5,FLT_MAX,1e-45], f16 bits [3c00 c000 7bff 0001 03ff 0400
 *   8000 7c00 fc00 7e00], bf16 bits [3f80 c040 7f7f 0001 0080 8000 7f80 ff80 7fc0], i64 [0,-1,2^62,-2^63,2^63-1,
 *   123456789012], i32 [[7],[-2^31],[2^31-1]], i16 [-32768,32767,5], i8 [-128,127,0], u8 [0,255,17,3,9],
 *   bool [[T,F],[F,T]], scalar 2.5 (shape []), empty zeros((0,3)), metadata {"format":"np","note":"all dtypes é \"q\"\n"}.
 */
const REFERENCE_ALL_DTYPES = Buffer.from(
  'CAMAAAAAAAB7Il9fbWV0YWRhdGFfXyI6eyJub3RlIjoiYWxsIGR0eXBlcyDDqSBcInFcIlxuIiwiZm9ybWF0IjoibnAifSwiaTY0' +
    'Ijp7ImR0eXBlIjoiSTY0Iiwic2hhcGUiOls2XSwiZGF0YV9vZmZzZXRzIjpbMCw0OF19LCJmNjQiOnsiZHR5cGUiOiJGNjQiLCJz' +
    'aGFwZSI6WzIsM10sImRhdGFfb2Zmc2V0cyI6WzQ4LDk2XX0sImVtcHR5Ijp7ImR0eXBlIjoiRjMyIiwic2hhcGUiOlswLDNdLCJk' +
    'YXRhX29mZnNldHMiOls5Niw5Nl19LCJmMzIiOnsiZHR5cGUiOiJGMzIiLCJzaGFwZSI6WzRdLCJkYXRhX29mZnNldHMiOls5Niwx' +
    'MTJdfSwic2NhbGFyIjp7ImR0eXBlIjoiRjMyIiwic2hhcGUiOltdLCJkYXRhX29mZnNldHMiOlsxMTIsMTE2XX0sImkzMiI6eyJk' +
    'dHlwZSI6IkkzMiIsInNoYXBlIjpbMywxXSwiZGF0YV9vZmZzZXRzIjpbMTE2LDEyOF19LCJiZjE2Ijp7ImR0eXBlIjoiQkYxNiIs' +
    'InNoYXBlIjpbOV0sImRhdGFfb2Zmc2V0cyI6WzEyOCwxNDZdfSwiZjE2Ijp7ImR0eXBlIjoiRjE2Iiwic2hhcGUiOlsxMF0sImRh' +
    'dGFfb2Zmc2V0cyI6WzE0NiwxNjZdfSwiaTE2Ijp7ImR0eXBlIjoiSTE2Iiwic2hhcGUiOlszXSwiZGF0YV9vZmZzZXRzIjpbMTY2' +
    'LDE3Ml19LCJpOCI6eyJkdHlwZSI6Ikk4Iiwic2hhcGUiOlszXSwiZGF0YV9vZmZzZXRzIjpbMTcyLDE3NV19LCJ1OCI6eyJkdHlw' +
    'ZSI6IlU4Iiwic2hhcGUiOls1XSwiZGF0YV9vZmZzZXRzIjpbMTc1LDE4MF19LCJib29sIjp7ImR0eXBlIjoiQk9PTCIsInNoYXBl' +
    'IjpbMiwyXSwiZGF0YV9vZmZzZXRzIjpbMTgwLDE4NF19fQAAAAAAAAAA//////////8AAAAAAAAAQAAAAAAAAACA/////////38U' +
    'Gpm+HAAAAAAAAAAAAPg/AAAAAAAAAsCcdQCIPOQ3fpqZmZmZmbk/AAAAAAAAAIAAAAAAAAAIQAAAgD8AAMC///9/fwEAAAAAACBA' +
    'BwAAAAAAAID///9/gD9AwH9/AQCAAACAgH+A/8B/ADwAwP97AQD/AwAEAIAAfAD8AH4AgP9/BQCAfwAA/xEDCQEAAAE=',
  'base64',
);

function bytesOf(view: ArrayBufferView): Uint8Array {
  return new Uint8Array(view.buffer, view.byteOffset, view.byteLength).slice();
}

function tensor(dtype: DType, shape: number[], view: ArrayBufferView): TensorData {
  return { dtype, shape, bytes: bytesOf(view) };
}

/** The same tensors as REFERENCE_ALL_DTYPES, built independently, in the reference file's order. */
function allDtypeTensors(): TensorMap {
  return new Map<string, TensorData>([
    ['i64', tensor('I64', [6], new BigInt64Array([0n, -1n, 2n ** 62n, -(2n ** 63n), 2n ** 63n - 1n, 123456789012n]))],
    ['f64', tensor('F64', [2, 3], new Float64Array([1.5, -2.25, 1e300, 0.1, -0, 3]))],
    ['empty', tensor('F32', [0, 3], new Float32Array(0))],
    ['f32', tensor('F32', [4], new Float32Array([1, -1.5, 3.4028234663852886e38, 1e-45]))],
    ['scalar', tensor('F32', [], new Float32Array([2.5]))],
    ['i32', tensor('I32', [3, 1], new Int32Array([7, -2147483648, 2147483647]))],
    ['bf16', tensor('BF16', [9], new Uint16Array([0x3f80, 0xc040, 0x7f7f, 0x0001, 0x0080, 0x8000, 0x7f80, 0xff80, 0x7fc0]))],
    ['f16', tensor('F16', [10], new Uint16Array([0x3c00, 0xc000, 0x7bff, 0x0001, 0x03ff, 0x0400, 0x8000, 0x7c00, 0xfc00, 0x7e00]))],
    ['i16', tensor('I16', [3], new Int16Array([-32768, 32767, 5]))],
    ['i8', tensor('I8', [3], new Int8Array([-128, 127, 0]))],
    ['u8', tensor('U8', [5], new Uint8Array([0, 255, 17, 3, 9]))],
    ['bool', tensor('BOOL', [2, 2], new Uint8Array([1, 0, 0, 1]))],
  ]);
}

const REFERENCE_METADATA = { note: 'all dtypes é "q"\n', format: 'np' };

/** A safetensors file with the given header text (not padded) and data section. */
function fileWith(header: string, data: Uint8Array = new Uint8Array(0)): Uint8Array {
  const json = Buffer.from(header, 'utf8');
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

function errorOf(fn: () => unknown): Error {
  try {
    fn();
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a throw');
}

async function rejectionOf(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a rejection');
}

function expectFormatError(bytes: Uint8Array, problem: string, options?: { maxHeaderBytes?: number }): void {
  const error = errorOf(() => parseSafetensors(bytes, 'bad.safetensors', options));
  expect(error).toBeInstanceOf(ModelFormatError);
  expect(error.message).toBe(`bad.safetensors: invalid safetensors file: ${problem}`);
  expect(error.message).not.toContain('\n');
}

let dir: string;
beforeEach(async () => {
  dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'scenimefy-safetensors-'));
});
afterEach(async () => {
  await fsp.rm(dir, { recursive: true, force: true });
});

describe('parseSafetensors on a file written by the reference library', () => {
  it('reads every dtype, shape and the metadata, with bytes as views into the input', () => {
    const { tensors, metadata } = parseSafetensors(REFERENCE_ALL_DTYPES);
    expect(metadata).toEqual(REFERENCE_METADATA);
    const expected = allDtypeTensors();
    expect([...tensors.keys()]).toEqual([...expected.keys()]);
    for (const [name, want] of expected) {
      const got = tensors.get(name)!;
      expect({ name, dtype: got.dtype, shape: got.shape }).toEqual({ name, dtype: want.dtype, shape: want.shape });
      expect(Buffer.from(got.bytes).equals(Buffer.from(want.bytes))).toBe(true);
      expect(got.bytes.buffer).toBe(REFERENCE_ALL_DTYPES.buffer);
    }
    expect([...tensorToFloat32(tensors.get('f64')!)]).toEqual([1.5, -2.25, Infinity, Math.fround(0.1), -0, 3]);
    expect([...tensorToBigInt64(tensors.get('i64')!)]).toEqual([0n, -1n, 2n ** 62n, -(2n ** 63n), 2n ** 63n - 1n, 123456789012n]);
    expect([...tensorToInt32(tensors.get('i32')!)]).toEqual([7, -2147483648, 2147483647]);
    expect([...tensorToFloat32(tensors.get('bool')!)]).toEqual([1, 0, 0, 1]);
    expect([...tensorToFloat32(tensors.get('scalar')!)]).toEqual([2.5]);
    expect(tensorToFloat32(tensors.get('empty')!).length).toBe(0);
  });

  it('serializes the same tensors and metadata to the identical bytes', () => {
    const ours = serializeSafetensors(allDtypeTensors(), REFERENCE_METADATA);
    expect(Buffer.from(ours).equals(REFERENCE_ALL_DTYPES)).toBe(true);
  });
});

describe('round trip', () => {
  it('keeps every dtype, shape, byte and the insertion order through serialize and parse', () => {
    const tensors = new Map([...allDtypeTensors()].reverse());
    const bytes = serializeSafetensors(tensors, { b: '2', a: '1', '10': 'ten' });
    const back = parseSafetensors(bytes);
    expect([...back.tensors.keys()]).toEqual([...tensors.keys()]);
    expect(Object.keys(back.metadata)).toEqual(['10', 'b', 'a']);
    expect(back.metadata).toEqual({ b: '2', a: '1', '10': 'ten' });
    for (const [name, t] of tensors) {
      const got = back.tensors.get(name)!;
      expect(got.dtype).toBe(t.dtype);
      expect(got.shape).toEqual(t.shape);
      expect(Buffer.from(got.bytes).equals(Buffer.from(t.bytes))).toBe(true);
    }
  });

  it('pads the header with spaces to a multiple of 8 bytes', () => {
    for (const name of ['a', 'ab', 'abc', 'abcd', 'abcde', 'abcdef', 'abcdefg', 'abcdefgh']) {
      const bytes = serializeSafetensors([[name, float32Tensor([1], new Float32Array([1]))]]);
      const headerLength = Number(new DataView(bytes.buffer).getBigUint64(0, true));
      const json = `{"${name}":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`;
      expect(headerLength % 8).toBe(0);
      expect(headerLength - json.length).toBeLessThan(8);
      expect(Buffer.from(bytes.subarray(8, 8 + headerLength)).toString('utf8')).toBe(json.padEnd(headerLength, ' '));
    }
  });

  it('omits an empty __metadata__ and treats a missing one as empty', () => {
    const t = float32Tensor([2], new Float32Array([1, 2]));
    const bytes = serializeSafetensors(new Map([['t', t]]), {});
    expect(Buffer.from(bytes).toString('utf8')).not.toContain('__metadata__');
    expect(parseSafetensors(bytes).metadata).toEqual({});
  });

  it('writes atomically and reads back the same tensors', async () => {
    const file = path.join(dir, 'w.safetensors');
    await writeSafetensors(file, allDtypeTensors(), REFERENCE_METADATA);
    expect((await fsp.readFile(file)).equals(REFERENCE_ALL_DTYPES)).toBe(true);
    const { tensors, metadata } = await readSafetensors(file);
    expect(metadata).toEqual(REFERENCE_METADATA);
    expect([...tensors.keys()]).toEqual([...allDtypeTensors().keys()]);
    expect(readdirSync(dir)).toEqual(['w.safetensors']);
  });

  it('keeps a "__proto__" metadata key as an ordinary entry', () => {
    const bytes = fileWith('{"__metadata__":{"__proto__":"x"}}');
    const { metadata } = parseSafetensors(bytes);
    expect(Object.getPrototypeOf(metadata)).toBe(Object.prototype);
    expect(Object.keys(metadata)).toEqual(['__proto__']);
    expect(Object.getOwnPropertyDescriptor(metadata, '__proto__')?.value).toBe('x');
  });
});

describe('float conversions', () => {
  const halves = (bits: number[], dtype: 'F16' | 'BF16') => tensorToFloat32(tensor(dtype, [bits.length], new Uint16Array(bits)));

  it('converts F16 bit patterns exactly, including inf, nan, subnormals and -0', () => {
    const got = halves([0x3c00, 0xc000, 0x7bff, 0x0001, 0x03ff, 0x0400, 0x8000, 0x7c00, 0xfc00, 0x7e00, 0x3555, 0x8001], 'F16');
    const want = [1, -2, 65504, 2 ** -24, 1023 * 2 ** -24, 2 ** -14, -0, Infinity, -Infinity, NaN, 0.333251953125, -(2 ** -24)];
    expect(got.length).toBe(want.length);
    want.forEach((w, i) => expect(Object.is(got[i], w)).toBe(true));
  });

  it('converts BF16 bit patterns exactly, including inf, nan, subnormals and -0, keeping NaN payloads', () => {
    const bits = [0x3f80, 0xc040, 0x7f7f, 0x0001, 0x0080, 0x8000, 0x7f80, 0xff80, 0x7fc1, 0x3eab];
    const got = halves(bits, 'BF16');
    const want = [1, -3, 3.3895313892515355e38, 2 ** -133, 2 ** -126, -0, Infinity, -Infinity, NaN, 0.333984375];
    want.forEach((w, i) => expect(Object.is(got[i], w)).toBe(true));
    expect(new Uint32Array(got.buffer)[8]).toBe(0x7fc10000);
  });

  it('rounds F64 and large integers to the nearest float32, ties to even, without double rounding', () => {
    const f64 = tensorToFloat32(tensor('F64', [3], new Float64Array([0.1, 1 + 2 ** -24, 1 + 3 * 2 ** -24])));
    expect([...f64]).toEqual([Math.fround(0.1), 1, 1 + 2 ** -22]);
    const big = [2n ** 60n + 2n ** 36n + 1n, 2n ** 60n + 2n ** 36n, -(2n ** 60n + 2n ** 36n + 1n), 2n ** 24n + 1n, 2n ** 24n + 3n];
    const got = tensorToFloat32(tensor('I64', [big.length], new BigInt64Array(big)));
    // Through float64 first, 2^60+2^36+1 would land on the midpoint 2^60+2^36 and tie down to 2^60.
    expect([...got]).toEqual([2 ** 60 + 2 ** 37, 2 ** 60, -(2 ** 60 + 2 ** 37), 2 ** 24, 2 ** 24 + 4]);
    const i32 = tensorToFloat32(tensor('I32', [2], new Int32Array([16777217, -16777219])));
    expect([...i32]).toEqual([16777216, -16777220]);
  });

  it('converts the integer dtypes exactly', () => {
    expect([...tensorToFloat32(tensor('I16', [2], new Int16Array([-32768, 32767])))]).toEqual([-32768, 32767]);
    expect([...tensorToFloat32(tensor('I8', [2], new Int8Array([-128, 127])))]).toEqual([-128, 127]);
    expect([...tensorToFloat32(tensor('U8', [2], new Uint8Array([0, 255])))]).toEqual([0, 255]);
    expect([...tensorToFloat32(tensor('BOOL', [3], new Uint8Array([0, 1, 2])))]).toEqual([0, 1, 1]);
  });
});

describe('alignment', () => {
  /** `payload` placed at byte offset `at` of a larger buffer, as a safetensors data offset may place it. */
  function at(offsetInBuffer: number, payload: ArrayBufferView): Uint8Array {
    const src = bytesOf(payload);
    const buffer = new Uint8Array(offsetInBuffer + src.length + 3);
    buffer.set(src, offsetInBuffer);
    return buffer.subarray(offsetInBuffer, offsetInBuffer + src.length);
  }

  it('returns an F32 view sharing memory when 4-aligned, and a correct copy when not', () => {
    const values = new Float32Array([1.25, -7, 3e-39]);
    const aligned: TensorData = { dtype: 'F32', shape: [3], bytes: at(8, values) };
    const view = tensorToFloat32(aligned);
    expect([...view]).toEqual([...values]);
    expect(view.buffer).toBe(aligned.bytes.buffer);
    for (const offset of [1, 2, 3, 5]) {
      const t: TensorData = { dtype: 'F32', shape: [3], bytes: at(offset, values) };
      const copy = tensorToFloat32(t);
      expect([...copy]).toEqual([...values]);
      expect(copy.buffer).not.toBe(t.bytes.buffer);
    }
  });

  it('reads unaligned F64, F16, BF16, I64, I32 and I16 correctly', () => {
    const cases: [DType, ArrayBufferView, number[]][] = [
      ['F64', new Float64Array([0.5, -2]), [0.5, -2]],
      ['F16', new Uint16Array([0x3c00, 0xc000]), [1, -2]],
      ['BF16', new Uint16Array([0x3f80, 0xc040]), [1, -3]],
      ['I64', new BigInt64Array([-5n, 9n]), [-5, 9]],
      ['I32', new Int32Array([-5, 9]), [-5, 9]],
      ['I16', new Int16Array([-5, 9]), [-5, 9]],
    ];
    for (const [dtype, payload, want] of cases) {
      for (const offset of [1, 3, 6]) {
        expect([...tensorToFloat32({ dtype, shape: [2], bytes: at(offset, payload) })]).toEqual(want);
      }
    }
    expect([...tensorToInt32({ dtype: 'I64', shape: [2], bytes: at(3, new BigInt64Array([-5n, 9n])) })]).toEqual([-5, 9]);
    expect([...tensorToBigInt64({ dtype: 'I64', shape: [2], bytes: at(5, new BigInt64Array([-5n, 9n])) })]).toEqual([-5n, 9n]);
    expect([...tensorToInt32({ dtype: 'I32', shape: [2], bytes: at(2, new Int32Array([-5, 9])) })]).toEqual([-5, 9]);
  });

  it('copies unaligned tensors correctly when the source is a Buffer, as readSafetensors gives', () => {
    const buffer = Buffer.alloc(16);
    Buffer.from(bytesOf(new Float32Array([1.5, -2]))).copy(buffer, 3);
    const t: TensorData = { dtype: 'F32', shape: [2], bytes: buffer.subarray(3, 11) };
    expect([...tensorToFloat32(t)]).toEqual([1.5, -2]);
  });

  it('reads a file whose tensors are not aligned to their element size', async () => {
    const file = path.join(dir, 'unaligned.safetensors');
    const tensors = new Map<string, TensorData>([
      ['flags', tensor('U8', [3], new Uint8Array([1, 2, 3]))],
      ['f32', tensor('F32', [3], new Float32Array([0.25, -8, 1e-3]))],
      ['i64', tensor('I64', [2], new BigInt64Array([-7n, 2n ** 40n]))],
      ['f16', tensor('F16', [1], new Uint16Array([0x3c00]))],
    ]);
    await writeSafetensors(file, tensors);
    const back = (await readSafetensors(file)).tensors;
    expect(back.get('f32')!.bytes.byteOffset % 4).not.toBe(0);
    // Plain Uint8Array views, so slice() copies as it does for any Uint8Array (Buffer#slice would not).
    expect(back.get('f32')!.bytes.slice().buffer).not.toBe(back.get('f32')!.bytes.buffer);
    expect([...tensorToFloat32(back.get('f32')!)]).toEqual([0.25, -8, Math.fround(1e-3)]);
    expect([...tensorToBigInt64(back.get('i64')!)]).toEqual([-7n, 2n ** 40n]);
    expect([...tensorToFloat32(back.get('f16')!)]).toEqual([1]);
  });
});

describe('integer conversions', () => {
  it('narrows I64 to int32 and refuses values that do not fit', () => {
    const ok = tensor('I64', [3], new BigInt64Array([-2147483648n, 0n, 2147483647n]));
    expect([...tensorToInt32(ok)]).toEqual([-2147483648, 0, 2147483647]);
    const tooBig = tensor('I64', [2], new BigInt64Array([1n, 2147483648n]));
    const error = errorOf(() => tensorToInt32(tooBig));
    expect(error).toBeInstanceOf(ModelFormatError);
    expect(error.message).toBe('I64 tensor value 2147483648 at index 1 does not fit in int32');
  });

  it('widens small integer dtypes and refuses floating-point ones', () => {
    expect([...tensorToInt32(tensor('U8', [2], new Uint8Array([255, 1])))]).toEqual([255, 1]);
    expect([...tensorToBigInt64(tensor('I8', [2], new Int8Array([-128, 1])))]).toEqual([-128n, 1n]);
    for (const dtype of ['F32', 'F16', 'BF16', 'F64'] as const) {
      const t = tensor(dtype, [0], new Uint8Array(0));
      expect(errorOf(() => tensorToInt32(t)).message).toBe(
        `cannot read a ${dtype} tensor as int32 without rounding; expected an integer dtype`,
      );
      expect(errorOf(() => tensorToBigInt64(t))).toBeInstanceOf(ModelFormatError);
    }
  });
});

describe('float32Tensor', () => {
  it('wraps the data without copying', () => {
    const data = new Float32Array([1, 2, 3, 4, 5, 6]);
    const t = float32Tensor([2, 3], data);
    expect(t).toMatchObject({ dtype: 'F32', shape: [2, 3] });
    expect(t.bytes.buffer).toBe(data.buffer);
    expect(t.bytes.byteLength).toBe(24);
  });

  it('refuses a shape that does not match the data', () => {
    const error = errorOf(() => float32Tensor([2, 2], new Float32Array(6)));
    expect(error).toBeInstanceOf(ModelFormatError);
    expect(error.message).toBe('float32 tensor shape [2, 2] holds 4 elements, data has 6');
    expect(errorOf(() => float32Tensor([-1], new Float32Array(0))).message).toBe(
      'float32 tensor shape must be non-negative integers, got [-1]',
    );
  });
});

describe('malformed files', () => {
  const t = (name: string, dtype: string, shape: unknown, offsets: unknown) =>
    `${JSON.stringify(name)}:{"dtype":${JSON.stringify(dtype)},"shape":${JSON.stringify(shape)},"data_offsets":${JSON.stringify(offsets)}}`;
  const data16 = new Uint8Array(16);

  it('a file shorter than the 8-byte length field', () => {
    expectFormatError(new Uint8Array(5), '5 bytes long, shorter than the 8-byte header length');
  });

  it('a header length over the limit, default or given', () => {
    const huge = new Uint8Array(16);
    new DataView(huge.buffer).setBigUint64(0, 100_000_001n, true);
    expectFormatError(huge, 'header length 100000001 exceeds the limit of 100000000 bytes');
    const max = new Uint8Array(16);
    new DataView(max.buffer).setBigUint64(0, 2n ** 64n - 1n, true);
    expectFormatError(max, 'header length 18446744073709551615 exceeds the limit of 100000000 bytes');
    expectFormatError(fileWith('{}      '), 'header length 8 exceeds the limit of 4 bytes', { maxHeaderBytes: 4 });
  });

  it('a header length beyond the end of the file', () => {
    const bytes = fileWith('{}');
    new DataView(bytes.buffer).setBigUint64(0, 3n, true);
    expectFormatError(bytes, 'header length 3 exceeds the 2 bytes after the length field');
  });

  it('a header that is not UTF-8, not JSON, or not an object', () => {
    const bad = fileWith('{"a":1}');
    bad[10] = 0xff;
    expectFormatError(bad, 'header is not valid UTF-8');
    const notJson = errorOf(() => parseSafetensors(fileWith('{"a":\n}'), 'bad.safetensors'));
    expect(notJson).toBeInstanceOf(ModelFormatError);
    expect(notJson.message).toMatch(/^bad\.safetensors: invalid safetensors file: header is not valid JSON \(.+\)$/);
    expect(notJson.message).not.toContain('\n');
    expectFormatError(fileWith('[1,2]'), 'header is not a JSON object (got an array)');
    expectFormatError(fileWith('"x"'), 'header is not a JSON object (got string "x")');
    expectFormatError(fileWith('null'), 'header is not a JSON object (got null)');
  });

  it('a tensor entry that is not an object', () => {
    expectFormatError(fileWith('{"w":[1]}'), 'tensor "w" must be an object with dtype, shape and data_offsets, got an array');
  });

  it('an unknown or missing dtype', () => {
    expectFormatError(
      fileWith(`{${t('w', 'F8_E4M3', [16], [0, 16])}}`, data16),
      'tensor "w" has unsupported dtype "F8_E4M3" (supported: F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL)',
    );
    expectFormatError(fileWith('{"w":{"shape":[0],"data_offsets":[0,0]}}'), 'tensor "w" has no dtype');
  });

  it('a shape that is not an array of non-negative integers', () => {
    for (const shape of [[-1], [1.5], '4', ['4'], null]) {
      expectFormatError(
        fileWith(`{${t('w', 'U8', shape, [0, 16])}}`, data16),
        `tensor "w" shape must be an array of non-negative integers, got ${JSON.stringify(shape)}`,
      );
    }
  });

  it('data_offsets that are not [begin, end] integers', () => {
    for (const offsets of [[0], [0, 16, 16], [8, 4], [0, '16'], [-4, 12], [0.5, 16]]) {
      expectFormatError(
        fileWith(`{${t('w', 'U8', [16], offsets)}}`, data16),
        `tensor "w" data_offsets must be [begin, end] non-negative integers with begin <= end, got ${JSON.stringify(offsets)}`,
      );
    }
  });

  it('data_offsets outside the data section', () => {
    expectFormatError(
      fileWith(`{${t('w', 'U8', [32], [0, 32])}}`, data16),
      'tensor "w" data_offsets [0, 32] lie outside the data section of 16 bytes',
    );
  });

  it('a byte span that does not match numel times the dtype size', () => {
    expectFormatError(
      fileWith(`{${t('w', 'F32', [2, 3], [0, 16])}}`, data16),
      'tensor "w" data_offsets [0, 16] span 16 bytes but F32 shape [2, 3] needs 24',
    );
  });

  it('overlapping tensors', () => {
    expectFormatError(
      fileWith(`{${t('a', 'U8', [12], [0, 12])},${t('b', 'U8', [8], [8, 16])}}`, data16),
      'tensors "a" [0, 12] and "b" [8, 16] overlap',
    );
  });

  it('a gap between tensors, before the first, or after the last', () => {
    expectFormatError(
      fileWith(`{${t('a', 'U8', [4], [0, 4])},${t('b', 'U8', [8], [8, 16])}}`, data16),
      'bytes [4, 8) of the data section belong to no tensor (gap before "b")',
    );
    expectFormatError(
      fileWith(`{${t('b', 'U8', [8], [8, 16])}}`, data16),
      'bytes [0, 8) of the data section belong to no tensor (gap before "b")',
    );
    expectFormatError(
      fileWith(`{${t('a', 'U8', [12], [0, 12])}}`, data16),
      'the data section has 4 bytes after the last tensor (tensors cover 12 of 16)',
    );
  });

  it('metadata that is not an object of strings', () => {
    expectFormatError(fileWith('{"__metadata__":{"epoch":3}}'), '__metadata__.epoch must be a string, got number 3');
    expectFormatError(fileWith('{"__metadata__":"pt"}'), '__metadata__ must be an object of strings, got string "pt"');
  });

  it('duplicate keys at any level', () => {
    expectFormatError(fileWith(`{${t('a', 'U8', [8], [0, 8])},${t('a', 'U8', [8], [8, 16])}}`, data16), 'duplicate key "a" in the header');
    expectFormatError(
      fileWith('{"w":{"dtype":"U8","dtype":"I8","shape":[16],"data_offsets":[0,16]}}', data16),
      'duplicate key "dtype" in tensor "w"',
    );
    expectFormatError(fileWith('{"__metadata__":{"k":"1", "k" :"2"}}'), 'duplicate key "k" in __metadata__');
    // Same key text in different objects, and escaped quotes inside strings, are not duplicates.
    const ok = fileWith(`{"__metadata__":{"a":"x\\"a\\":"},${t('a', 'U8', [16], [0, 16])}}`, data16);
    expect(parseSafetensors(ok).metadata).toEqual({ a: 'x"a":' });
  });

  it('accepts zero-size tensors anywhere in the tiling', () => {
    const bytes = fileWith(`{${t('z', 'F32', [0, 4], [8, 8])},${t('a', 'U8', [8], [0, 8])},${t('b', 'U8', [8], [8, 16])}}`, data16);
    expect([...parseSafetensors(bytes).tensors.keys()]).toEqual(['a', 'z', 'b']);
  });
});

describe('write errors', () => {
  it('refuses inconsistent tensors, duplicate or reserved names and non-string metadata', () => {
    const good = float32Tensor([1], new Float32Array([1]));
    const cases: [() => unknown, string][] = [
      [
        () => serializeSafetensors([['w', { dtype: 'F32', shape: [2], bytes: new Uint8Array(4) }]]),
        'tensor "w" holds 4 bytes but F32 shape [2] needs 8',
      ],
      [
        () =>
          serializeSafetensors([
            ['w', good],
            ['w', good],
          ]),
        'duplicate tensor name "w"',
      ],
      [() => serializeSafetensors([['__metadata__', good]]), '__metadata__ is reserved and cannot name a tensor'],
      [
        () => serializeSafetensors([['w', { ...good, dtype: 'U16' as DType }]]),
        'tensor "w" has unsupported dtype "U16" (supported: F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL)',
      ],
      [() => serializeSafetensors([['w', { ...good, shape: [1.5] }]]), 'tensor "w" shape must be non-negative integers, got [1.5]'],
      [() => serializeSafetensors([['w', good]], { n: 1 as unknown as string }), '__metadata__.n must be a string, got number 1'],
    ];
    for (const [fn, problem] of cases) {
      const error = errorOf(fn);
      expect(error).toBeInstanceOf(ModelFormatError);
      expect(error.message).toBe(`<buffer>: cannot write safetensors: ${problem}`);
    }
  });

  it('names the target file when writing fails, and leaves nothing behind', async () => {
    const file = path.join(dir, 'x.safetensors');
    const bad = await rejectionOf(writeSafetensors(file, [['w', { dtype: 'F32', shape: [2], bytes: new Uint8Array(4) }]]));
    expect(bad).toBeInstanceOf(ModelFormatError);
    expect(bad.message).toBe(`${file}: cannot write safetensors: tensor "w" holds 4 bytes but F32 shape [2] needs 8`);
    const missing = path.join(dir, 'no-such-folder', 'x.safetensors');
    const noFolder = await rejectionOf(writeSafetensors(missing, [['w', float32Tensor([1], new Float32Array([1]))]]));
    expect(noFolder).toBeInstanceOf(InputError);
    expect(noFolder.message).toContain(missing);
    expect(readdirSync(dir)).toEqual([]);
  });
});

describe('readSafetensors errors', () => {
  it('reports a missing file or a folder as InputError naming it', async () => {
    const missing = path.join(dir, 'nope.safetensors');
    const error = await rejectionOf(readSafetensors(missing));
    expect(error).toBeInstanceOf(InputError);
    expect(error.message).toBe(`${missing}: cannot read safetensors file (ENOENT: no such file)`);
    const folder = await rejectionOf(readSafetensors(dir));
    expect(folder).toBeInstanceOf(InputError);
    expect(folder.message).toBe(`${dir}: cannot read safetensors file (EISDIR: is a folder)`);
  });

  it('reports a malformed file as ModelFormatError naming it', async () => {
    const file = path.join(dir, 'short.safetensors');
    await fsp.writeFile(file, new Uint8Array(3));
    const error = await rejectionOf(readSafetensors(file));
    expect(error).toBeInstanceOf(ModelFormatError);
    expect(error.message).toBe(`${file}: invalid safetensors file: 3 bytes long, shorter than the 8-byte header length`);
  });
});

// Reference fixtures, found the way every test finds them (see DEVELOPERS.md); skipped when absent.
const fixturesDir =
  process.env['SCENIMEFY_REFERENCE_FIXTURES'] ?? path.resolve(__dirname, '..', '..', '..', '..', 'shared', 'fixtures', 'reference');
const netGIo = path.join(fixturesDir, 'i2i', 'netG-ngf16-io');
const describeWithFixtures = existsSync(`${netGIo}.safetensors`) ? describe : describe.skip;

const SIDECAR_DTYPES: Record<string, DType> = { float32: 'F32', float64: 'F64', int64: 'I64', int32: 'I32', uint8: 'U8', bool: 'BOOL' };

describeWithFixtures('reference fixtures', () => {
  it('netG-ngf16-io matches its sidecar: names, shapes, dtypes and exact value ranges', async () => {
    const sidecar = JSON.parse(await fsp.readFile(`${netGIo}.json`, 'utf8')) as {
      tensors: { name: string; shape: number[]; dtype: string; range: [number, number] }[];
    };
    const { tensors } = await readSafetensors(`${netGIo}.safetensors`);
    expect([...tensors.keys()].sort()).toEqual(sidecar.tensors.map((e) => e.name).sort());
    for (const entry of sidecar.tensors) {
      const t = tensors.get(entry.name)!;
      expect({ name: entry.name, dtype: t.dtype, shape: t.shape }).toEqual({
        name: entry.name,
        dtype: SIDECAR_DTYPES[entry.dtype],
        shape: entry.shape,
      });
      const values = tensorToFloat32(t);
      let min = Infinity;
      let max = -Infinity;
      for (const v of values) {
        if (v < min) min = v;
        if (v > max) max = v;
      }
      // The sidecar ranges are the float32 extremes printed as float64, so they compare exactly.
      expect({ name: entry.name, range: [min, max] }).toEqual({ name: entry.name, range: entry.range });
    }
  });

  it('reads the int64 patch ids of patchF-io as in-range int32 indices', async () => {
    const file = path.join(fixturesDir, 'i2i', 'patchF-io.safetensors');
    const sidecar = JSON.parse(await fsp.readFile(path.join(fixturesDir, 'i2i', 'patchF-io.json'), 'utf8')) as {
      tensors: { name: string; dtype: string; range?: [number, number] }[];
    };
    const { tensors } = await readSafetensors(file);
    const idEntries = sidecar.tensors.filter((e) => e.dtype === 'int64');
    expect(idEntries.length).toBeGreaterThan(0);
    for (const entry of idEntries) {
      const ids = tensorToInt32(tensors.get(entry.name)!);
      expect(ids.length).toBeGreaterThan(0);
      if (entry.range) expect([Math.min(...ids), Math.max(...ids)]).toEqual(entry.range);
      expect([...ids]).toEqual([...tensorToBigInt64(tensors.get(entry.name)!)].map(Number));
    }
  });

  it('re-serializes every fixture written by the reference library to identical bytes', async () => {
    const files = (await fsp.readdir(fixturesDir, { recursive: true }))
      .filter((f) => f.endsWith('.safetensors'))
      .map((f) => path.join(fixturesDir, f));
    expect(files.length).toBeGreaterThan(0);
    for (const file of files) {
      const original = await fsp.readFile(file);
      const { tensors, metadata } = parseSafetensors(original, file);
      const ours = serializeSafetensors(tensors, metadata);
      expect({ file, identical: Buffer.from(ours).equals(original) }).toEqual({ file, identical: true });
    }
  });
});
