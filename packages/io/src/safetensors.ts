/**
 * safetensors read/write (https://github.com/huggingface/safetensors, format as of safetensors 0.8).
 *
 * Layout: u64 little-endian header length N, N bytes of UTF-8 JSON, then the data section. The header maps
 * tensor names to `{dtype, shape, data_offsets: [begin, end]}` (offsets relative to the data section) and may
 * hold `__metadata__`, a string→string map.
 *
 * Reading is zero-copy: every `TensorData.bytes` is a subarray view of the buffer the file was read into.
 * Validation follows the reference Rust reader: tensors sorted by offset must tile the data section exactly
 * (no gap, no overlap, no trailing bytes), and each byte span must equal numel × dtype size.
 * Writing reproduces the reference writer byte for byte when given the same tensor order: compact JSON with
 * `__metadata__` first, tensors in the order given, the header padded with spaces to a multiple of 8 bytes.
 *
 * No npm library covers this: the format is a JSON header over raw bytes, and the validation is the point.
 * This module works on bytes only (browser-safe); reading and writing files is safetensors-file.ts.
 */
import { ModelFormatError, capText, joinCapped, quoteValue } from './errors';
import { DTYPE_BYTES, numel } from './tensor';
import type { DType, TensorData, TensorMap } from './tensor';

/** The reference reader's limit (safetensors `MAX_HEADER_SIZE`); a larger header is refused before it is decoded. */
export const SAFETENSORS_MAX_HEADER_BYTES = 100_000_000;

const HEADER_LENGTH_BYTES = 8;
const METADATA_KEY = '__metadata__';
const DTYPES = Object.keys(DTYPE_BYTES) as DType[];

export interface SafetensorsReadOptions {
  /** Refuse headers longer than this many bytes (default {@link SAFETENSORS_MAX_HEADER_BYTES}). */
  maxHeaderBytes?: number;
}

export interface SafetensorsContents {
  /** Tensors in file (data offset) order; each `bytes` is a view into the file's buffer. */
  tensors: TensorMap;
  /** The `__metadata__` map; empty when the file has none. */
  metadata: Record<string, string>;
}

const IS_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * Parse a safetensors file held in memory. `file` names it in error messages.
 * Throws ModelFormatError (one line naming `file` and the problem) for any malformed input.
 */
export function parseSafetensors(bytes: Uint8Array, file = '<buffer>', options: SafetensorsReadOptions = {}): SafetensorsContents {
  const fail = (problem: string): never => {
    throw new ModelFormatError(`invalid safetensors file: ${problem}`, { file });
  };
  const maxHeaderBytes = options.maxHeaderBytes ?? SAFETENSORS_MAX_HEADER_BYTES;

  if (bytes.byteLength < HEADER_LENGTH_BYTES) {
    fail(`${bytes.byteLength} bytes long, shorter than the 8-byte header length`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength64 = view.getBigUint64(0, true);
  if (Number(headerLength64) > maxHeaderBytes) {
    fail(`header length ${headerLength64} exceeds the limit of ${maxHeaderBytes} bytes`);
  }
  const headerLength = Number(headerLength64);
  if (headerLength > bytes.byteLength - HEADER_LENGTH_BYTES) {
    fail(`header length ${headerLength} exceeds the ${bytes.byteLength - HEADER_LENGTH_BYTES} bytes after the length field`);
  }

  let headerText: string;
  try {
    headerText = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(
      bytes.subarray(HEADER_LENGTH_BYTES, HEADER_LENGTH_BYTES + headerLength),
    );
  } catch {
    return fail('header is not valid UTF-8');
  }
  let header: unknown;
  try {
    header = JSON.parse(headerText);
  } catch (error) {
    return fail(`header is not valid JSON (${capText(oneLine((error as Error).message))})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) {
    fail(`header is not a JSON object (got ${jsonKind(header)})`);
  }
  // JSON.parse keeps the last of duplicate keys silently; a duplicate tensor name would hide a tensor.
  const duplicate = firstDuplicateKey(headerText);
  if (duplicate !== undefined) fail(duplicate);

  const dataStart = HEADER_LENGTH_BYTES + headerLength;
  const dataLength = bytes.byteLength - dataStart;
  const metadata: Record<string, string> = {};
  const entries: { name: string; dtype: DType; shape: number[]; begin: number; end: number }[] = [];

  for (const [name, value] of Object.entries(header as Record<string, unknown>)) {
    if (name === METADATA_KEY) {
      if (typeof value !== 'object' || value === null || Array.isArray(value)) {
        fail(`__metadata__ must be an object of strings, got ${jsonKind(value)}`);
      }
      for (const [key, text] of Object.entries(value as Record<string, unknown>)) {
        if (typeof text !== 'string') fail(`__metadata__.${capText(key)} must be a string, got ${jsonKind(text)}`);
        // defineProperty, not assignment, so a "__proto__" key stays an ordinary entry.
        Object.defineProperty(metadata, key, { value: text, enumerable: true, writable: true, configurable: true });
      }
      continue;
    }
    const where = `tensor ${quoteValue(name)}`;
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      fail(`${where} must be an object with dtype, shape and data_offsets, got ${jsonKind(value)}`);
    }
    const info = value as Record<string, unknown>;
    const dtype = info['dtype'];
    if (dtype === undefined) fail(`${where} has no dtype`);
    if (typeof dtype !== 'string' || !(DTYPES as string[]).includes(dtype)) {
      fail(`${where} has unsupported dtype ${jsonPreview(dtype)} (supported: ${DTYPES.join(', ')})`);
    }
    const shape = info['shape'];
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && (d as number) >= 0)) {
      fail(`${where} shape must be an array of non-negative integers, got ${jsonPreview(shape)}`);
    }
    const offsets = info['data_offsets'];
    if (
      !Array.isArray(offsets) ||
      offsets.length !== 2 ||
      !offsets.every((o) => Number.isSafeInteger(o) && (o as number) >= 0) ||
      (offsets[0] as number) > (offsets[1] as number)
    ) {
      fail(`${where} data_offsets must be [begin, end] non-negative integers with begin <= end, got ${jsonPreview(offsets)}`);
    }
    const [begin, end] = offsets as [number, number];
    if (end > dataLength) {
      fail(`${where} data_offsets [${begin}, ${end}] lie outside the data section of ${dataLength} bytes`);
    }
    const needed = numel(shape as number[]) * DTYPE_BYTES[dtype as DType];
    if (end - begin !== needed) {
      fail(
        `${where} data_offsets [${begin}, ${end}] span ${end - begin} bytes but ${dtype} shape [${joinCapped(shape as number[])}] needs ${needed}`,
      );
    }
    entries.push({ name, dtype: dtype as DType, shape: shape as number[], begin, end });
  }

  // Array.prototype.sort is stable, so zero-size tensors at one offset keep their header order.
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let cursor = 0;
  let previous: (typeof entries)[number] | undefined;
  for (const entry of entries) {
    if (entry.begin < cursor && previous !== undefined) {
      fail(
        `tensors ${quoteValue(previous.name)} [${previous.begin}, ${previous.end}] and ${quoteValue(entry.name)} [${entry.begin}, ${entry.end}] overlap`,
      );
    }
    if (entry.begin > cursor) {
      fail(`bytes [${cursor}, ${entry.begin}) of the data section belong to no tensor (gap before ${quoteValue(entry.name)})`);
    }
    cursor = entry.end;
    previous = entry;
  }
  if (cursor !== dataLength) {
    fail(`the data section has ${dataLength - cursor} bytes after the last tensor (tensors cover ${cursor} of ${dataLength})`);
  }

  // Views of a plain Uint8Array, not of a Buffer, whose slice() would share memory where callers expect a copy.
  const plain = new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const tensors: TensorMap = new Map();
  for (const { name, dtype, shape, begin, end } of entries) {
    tensors.set(name, { dtype, shape, bytes: plain.subarray(dataStart + begin, dataStart + end) });
  }
  return { tensors, metadata };
}

/**
 * Serialize tensors (in the order given) and optional string metadata to safetensors bytes.
 * An empty metadata object writes no `__metadata__`, so a parsed file without one re-serializes identically.
 */
export function serializeSafetensors(
  tensors: TensorMap | Iterable<readonly [string, TensorData]>,
  metadata?: Record<string, string>,
): Uint8Array {
  const chunks = safetensorsChunks(tensors, metadata, '<buffer>');
  const total = chunks.reduce((n, c) => n + c.byteLength, 0);
  const out = new Uint8Array(total);
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.byteLength;
  }
  return out;
}

/**
 * The file as chunks: length + header, then each tensor's bytes (the caller's own views, not copies). What
 * `writeSafetensors` streams to disk; `file` names the target in errors.
 */
export function safetensorsChunks(
  tensors: TensorMap | Iterable<readonly [string, TensorData]>,
  metadata: Record<string, string> | undefined,
  file: string,
): Uint8Array[] {
  const fail = (problem: string): never => {
    throw new ModelFormatError(`cannot write safetensors: ${problem}`, { file });
  };
  const parts: string[] = [];
  if (metadata !== undefined) {
    const fields: string[] = [];
    for (const [key, value] of Object.entries(metadata)) {
      if (typeof value !== 'string') fail(`__metadata__.${capText(key)} must be a string, got ${jsonKind(value)}`);
      fields.push(`${JSON.stringify(key)}:${JSON.stringify(value)}`);
    }
    // Written by hand rather than JSON.stringify(metadata): object key order puts integer-like keys first.
    if (fields.length > 0) parts.push(`"${METADATA_KEY}":{${fields.join(',')}}`);
  }
  const data: Uint8Array[] = [];
  const seen = new Set<string>();
  let offset = 0;
  for (const [name, tensor] of tensors) {
    const where = `tensor ${quoteValue(name)}`;
    if (name === METADATA_KEY) fail(`${METADATA_KEY} is reserved and cannot name a tensor`);
    if (seen.has(name)) fail(`duplicate tensor name ${quoteValue(name)}`);
    seen.add(name);
    if (!(DTYPES as string[]).includes(tensor.dtype)) {
      fail(`${where} has unsupported dtype ${jsonPreview(tensor.dtype)} (supported: ${DTYPES.join(', ')})`);
    }
    if (!tensor.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      fail(`${where} shape must be non-negative integers, got [${joinCapped(tensor.shape)}]`);
    }
    const needed = numel(tensor.shape) * DTYPE_BYTES[tensor.dtype];
    if (tensor.bytes.byteLength !== needed) {
      fail(`${where} holds ${tensor.bytes.byteLength} bytes but ${tensor.dtype} shape [${joinCapped(tensor.shape)}] needs ${needed}`);
    }
    parts.push(
      `${JSON.stringify(name)}:{"dtype":"${tensor.dtype}","shape":[${tensor.shape.join(',')}],"data_offsets":[${offset},${offset + needed}]}`,
    );
    offset += needed;
    data.push(tensor.bytes);
  }
  const json = new TextEncoder().encode(`{${parts.join(',')}}`);
  const padded = Math.ceil(json.byteLength / HEADER_LENGTH_BYTES) * HEADER_LENGTH_BYTES;
  const head = new Uint8Array(HEADER_LENGTH_BYTES + padded).fill(0x20, HEADER_LENGTH_BYTES + json.byteLength);
  new DataView(head.buffer).setBigUint64(0, BigInt(padded), true);
  head.set(json, HEADER_LENGTH_BYTES);
  return [head, ...data];
}

/**
 * The tensor's values as float32. F32: a view sharing memory with `t.bytes` when its byte offset is a multiple
 * of 4 (no copy; writing to it writes to the source), otherwise an aligned copy. Every other dtype: a new array,
 * converted exactly where float32 can hold the value (F16, BF16, 8/16-bit integers, BOOL as 0/1, integers up to
 * 2^24) and correctly rounded to nearest-even otherwise (F64, large I32/I64).
 */
export function tensorToFloat32(t: TensorData): Float32Array {
  const n = numel(t.shape);
  switch (t.dtype) {
    case 'F32':
      return elementsOf(t, Float32Array, 4);
    case 'F64':
      return Float32Array.from(elementsOf(t, Float64Array, 8));
    case 'F16': {
      const halves = elementsOf(t, Uint16Array, 2);
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = halfToNumber(halves[i] as number);
      return out;
    }
    case 'BF16': {
      // bfloat16 is the top half of a float32, so widening is a shift and keeps NaN payloads.
      const halves = elementsOf(t, Uint16Array, 2);
      const out = new Float32Array(n);
      const bits = new Uint32Array(out.buffer);
      for (let i = 0; i < n; i++) bits[i] = (halves[i] as number) << 16;
      return out;
    }
    case 'I64': {
      const ints = elementsOf(t, BigInt64Array, 8);
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = bigIntToFloat32(ints[i] as bigint);
      return out;
    }
    case 'I32':
      return Float32Array.from(elementsOf(t, Int32Array, 4));
    case 'I16':
      return Float32Array.from(elementsOf(t, Int16Array, 2));
    case 'I8':
      return Float32Array.from(new Int8Array(t.bytes.buffer, t.bytes.byteOffset, t.bytes.byteLength));
    case 'U8':
      return Float32Array.from(t.bytes);
    case 'BOOL':
      return Float32Array.from(t.bytes, (b) => (b !== 0 ? 1 : 0));
  }
}

/**
 * The tensor's values as int32, for indices such as patch ids (stored as I64 by PyTorch). I32: a view when
 * 4-aligned, else a copy; I64: a copy, and a ModelFormatError if a value does not fit in int32; I16/I8/U8/BOOL:
 * a widened copy. Floating-point dtypes are refused (ModelFormatError) rather than truncated.
 */
export function tensorToInt32(t: TensorData): Int32Array {
  switch (t.dtype) {
    case 'I32':
      return elementsOf(t, Int32Array, 4);
    case 'I64': {
      const ints = elementsOf(t, BigInt64Array, 8);
      const out = new Int32Array(ints.length);
      for (let i = 0; i < ints.length; i++) {
        const v = ints[i] as bigint;
        if (v < -2147483648n || v > 2147483647n) {
          throw new ModelFormatError(`I64 tensor value ${v} at index ${i} does not fit in int32`);
        }
        out[i] = Number(v);
      }
      return out;
    }
    case 'I16':
      return Int32Array.from(elementsOf(t, Int16Array, 2));
    case 'I8':
      return Int32Array.from(new Int8Array(t.bytes.buffer, t.bytes.byteOffset, t.bytes.byteLength));
    case 'U8':
      return Int32Array.from(t.bytes);
    case 'BOOL':
      return Int32Array.from(t.bytes, (b) => (b !== 0 ? 1 : 0));
    default:
      throw new ModelFormatError(`cannot read a ${t.dtype} tensor as int32 without rounding; expected an integer dtype`);
  }
}

/**
 * The tensor's values as int64. I64: a view when 8-aligned, else a copy; other integer dtypes and BOOL: a
 * widened copy. Floating-point dtypes are refused (ModelFormatError).
 */
export function tensorToBigInt64(t: TensorData): BigInt64Array {
  switch (t.dtype) {
    case 'I64':
      return elementsOf(t, BigInt64Array, 8);
    case 'I32':
    case 'I16':
    case 'I8':
    case 'U8':
    case 'BOOL':
      return BigInt64Array.from(tensorToInt32(t), (v) => BigInt(v));
    default:
      throw new ModelFormatError(`cannot read a ${t.dtype} tensor as int64 without rounding; expected an integer dtype`);
  }
}

/**
 * An F32 tensor over `data`. On little-endian hosts (all supported ones) `bytes` is a view of `data`, not a copy.
 * Throws ModelFormatError when the shape does not hold exactly `data.length` elements.
 */
export function float32Tensor(shape: readonly number[], data: Float32Array): TensorData {
  if (!shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw new ModelFormatError(`float32 tensor shape must be non-negative integers, got [${joinCapped(shape)}]`);
  }
  if (numel(shape) !== data.length) {
    throw new ModelFormatError(`float32 tensor shape [${joinCapped(shape)}] holds ${numel(shape)} elements, data has ${data.length}`);
  }
  let bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (!IS_LITTLE_ENDIAN) bytes = swapBytes(bytes, 4);
  return { dtype: 'F32', shape: [...shape], bytes };
}

type ElementArray = Float32Array | Float64Array | Uint16Array | Int16Array | Int32Array | BigInt64Array;
interface ElementArrayConstructor<T extends ElementArray> {
  new (buffer: ArrayBufferLike, byteOffset?: number, length?: number): T;
}

/** A typed array over the tensor's elements: a view when aligned (little-endian hosts), otherwise a copy. */
function elementsOf<T extends ElementArray>(t: TensorData, Ctor: ElementArrayConstructor<T>, size: number): T {
  const { bytes } = t;
  const length = bytes.byteLength / size;
  if (IS_LITTLE_ENDIAN && bytes.byteOffset % size === 0) return new Ctor(bytes.buffer, bytes.byteOffset, length);
  // new Uint8Array(view) copies into a fresh buffer at offset 0; Buffer#slice would return another view.
  const copy = IS_LITTLE_ENDIAN ? new Uint8Array(bytes) : swapBytes(bytes, size);
  return new Ctor(copy.buffer, 0, length);
}

function swapBytes(bytes: Uint8Array, size: number): Uint8Array {
  const out = new Uint8Array(bytes.byteLength);
  for (let i = 0; i < bytes.byteLength; i += size) {
    for (let j = 0; j < size; j++) out[i + j] = bytes[i + size - 1 - j] as number;
  }
  return out;
}

/** IEEE 754 binary16 bits to their exact value (every half is exactly representable in float32). */
function halfToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >> 10) & 0x1f;
  const mantissa = h & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 0x1f) return mantissa === 0 ? sign * Infinity : NaN;
  return sign * (1024 + mantissa) * 2 ** (exponent - 25);
}

/**
 * Nearest-even float32 of an int64. Going through Number (float64) first can round twice: a value just above
 * a float32 midpoint may land exactly on it and then tie to even in the wrong direction, so that case is fixed.
 */
function bigIntToFloat32(v: bigint): number {
  const asDouble = Number(v);
  const rounded = Math.fround(asDouble);
  const residue = v - BigInt(asDouble);
  if (residue === 0n || rounded === asDouble) return rounded;
  // A float32 midpoint is halfway between float32 neighbours: ulp/2 away from both.
  const below = asDouble < rounded ? nextFloat32Down(rounded) : rounded;
  const above = asDouble < rounded ? rounded : nextFloat32Up(rounded);
  if (asDouble - below !== above - asDouble) return rounded;
  return residue > 0n ? above : below;
}

function nextFloat32Up(x: number): number {
  const f = new Float32Array([x]);
  const bits = new Int32Array(f.buffer);
  bits[0] = (bits[0] as number) + (x >= 0 ? 1 : -1);
  return f[0] as number;
}

function nextFloat32Down(x: number): number {
  return -nextFloat32Up(-x);
}

/**
 * The first duplicate key in JSON text that JSON.parse has already accepted, described with where it is,
 * or undefined. A scan of strings and brackets suffices because the text is known to be valid JSON.
 */
function firstDuplicateKey(text: string): string | undefined {
  interface Frame {
    keys: Set<string> | undefined;
    owner: string | undefined;
  }
  const stack: Frame[] = [];
  let lastKey: string | undefined;
  let i = 0;
  while (i < text.length) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      let j = i + 1;
      while (text.charCodeAt(j) !== 0x22) j += text.charCodeAt(j) === 0x5c ? 2 : 1;
      const frame = stack[stack.length - 1];
      const token = text.slice(i, j + 1);
      i = j + 1;
      if (frame?.keys === undefined) continue;
      let k = i;
      while (k < text.length && /\s/.test(text.charAt(k))) k++;
      if (text.charCodeAt(k) !== 0x3a) continue;
      const key = JSON.parse(token) as string;
      if (frame.keys.has(key)) {
        const owners = stack.slice(1).map((f) => f.owner ?? '');
        const where =
          owners.length === 0
            ? 'the header'
            : owners.length === 1 && owners[0] !== METADATA_KEY
              ? `tensor ${quoteValue(owners[0])}`
              : capText(owners.join('.'));
        return `duplicate key ${quoteValue(key)} in ${where}`;
      }
      frame.keys.add(key);
      lastKey = key;
      continue;
    }
    if (c === 0x7b) stack.push({ keys: new Set(), owner: lastKey });
    else if (c === 0x5b) stack.push({ keys: undefined, owner: lastKey });
    else if (c === 0x7d || c === 0x5d) stack.pop();
    i++;
  }
  return undefined;
}

function jsonKind(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : `${typeof value} ${jsonPreview(value)}`;
}

function jsonPreview(value: unknown): string {
  return value === undefined ? 'nothing' : quoteValue(value, 60);
}

function oneLine(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}
