/**
 * A restricted unpickler for PyTorch checkpoints. It interprets pickle opcodes (protocols 0–5) into plain
 * JavaScript values and resolves globals only from a frozen allow-list of tensor and container types; any other
 * global is refused the moment it is named. REDUCE, NEWOBJ and BUILD only ever run the JavaScript reconstructors
 * below — nothing from the file is evaluated or imported.
 *
 * Python → JavaScript: dict/OrderedDict → Map, list → array, tuple → frozen array, set/frozenset → Set,
 * int → number (bigint beyond ±2^53), float → number, str → string, bytes → Uint8Array, None → null,
 * bool → boolean, argparse.Namespace → a plain object of its attributes.
 */

import { ModelFormatError, UsageError, quoteValue } from './errors';
import type { DType } from './tensor';

/** A Python global the allow-list knows: a class or function that our own reconstructors stand in for. */
export class PickleGlobal {
  constructor(
    /** `module.name`, as Python spells it. */
    readonly qualifiedName: string,
  ) {}
  toString(): string {
    return this.qualifiedName;
  }
}

/** A `torch.*Storage` class (the storage type in a persistent id): says how to read the storage's raw bytes. */
export class TorchStorageType extends PickleGlobal {
  constructor(
    qualifiedName: string,
    /** Element type; `U8` for `UntypedStorage`, whose elements are bytes. */
    readonly dtype: DType,
    readonly untyped: boolean,
  ) {
    super(qualifiedName);
  }
}

/** A `torch.<dtype>` object, e.g. `torch.float32` (the dtype argument of `_rebuild_tensor_v3`). */
export class TorchDtype extends PickleGlobal {
  constructor(
    qualifiedName: string,
    /** Undefined for a dtype the tensor type cannot hold (complex, uint16, float8, ...). */
    readonly dtype: DType | undefined,
  ) {
    super(qualifiedName);
  }
}

/** What `_rebuild_tensor_v2/v3` asked for; the container turns it into a tensor once storages are known. */
export interface TensorRebuildRequest {
  /** Whatever `persistentLoad` returned for the storage argument (the container checks it). */
  readonly storage: unknown;
  readonly storageOffset: number;
  readonly size: readonly number[];
  readonly stride: readonly number[];
  /** The tensor's dtype when it differs from the storage's (`_rebuild_tensor_v3` over an untyped storage). */
  readonly dtype?: DType;
}

export interface UnpickleOptions {
  /** The file, for error messages. */
  file: string;
  /** Which pickle of the file this is (e.g. `archive/data.pkl`), for error messages. */
  where: string;
  /** Byte offset where the pickle starts (default 0). */
  start?: number;
  /** Resolves BINPERSID/PERSID ids; without it a persistent id is an error. */
  persistentLoad?: (pid: unknown) => unknown;
  /** Builds a tensor for `_rebuild_tensor_v2/v3`; without it a tensor is an error. Must return an object. */
  rebuildTensor?: (request: TensorRebuildRequest) => object;
  /**
   * Limits in place of PICKLE_LIMITS, field by field: lower ones, or higher ones for a file you trust that needs
   * more (its size is then the caller's concern).
   */
  limits?: Partial<PickleLimits>;
}

export interface UnpickleResult {
  value: unknown;
  /** Offset just past the STOP opcode: where a following pickle starts. */
  end: number;
}

/**
 * What one pickle may make the unpickler do. A pickle is a program: a few bytes of opcodes can ask for millions of
 * objects (`]` then `}a` repeated builds a list of empty dicts; a DEFLATED data.pkl of 400 KB holds 200 M
 * APPENDs), so work and memory are bounded by these counts, not only by the file's size.
 */
export interface PickleLimits {
  /** Items on the stack, counting those under every MARK. */
  stackItems: number;
  memoEntries: number;
  /** MARKs open at once. */
  markDepth: number;
  /** Lists, dicts, sets, tuples and reconstructed objects (tensors, OrderedDicts, …) built, in all. */
  containers: number;
  /** Items put into lists, dicts, sets and tuples, in all. */
  containerItems: number;
  /** Bytes of one binary int (LONG1/LONG4). Python writes ints under 2^2040 with LONG1 (at most 255 bytes). */
  intBytes: number;
  /** Digits of one decimal int (INT/LONG of protocol 0); 4300 is Python's own default (`sys.int_info`). */
  intDigits: number;
  /** Bytes of one pickle, checked before a compressed `data.pkl` is inflated and as the pickle is read. */
  pickleBytes: number;
}

/**
 * Far above anything torch.save writes (a large checkpoint's data.pkl holds some 10^5 objects in well under 10 MB),
 * far below memory trouble: at these limits a hostile pickle stops after some 100 MB and well under a second.
 * Raise them for one file with `limits` (parseTorchCheckpoint / readTorchCheckpoint option).
 */
export const PICKLE_LIMITS: Readonly<PickleLimits> = Object.freeze({
  stackItems: 1 << 20,
  memoEntries: 1 << 20,
  markDepth: 1 << 16,
  containers: 1 << 18,
  containerItems: 1 << 21,
  intBytes: 1024,
  intDigits: 4300,
  pickleBytes: 16 * 1024 * 1024,
});

type Reconstructor = (args: readonly unknown[], ctx: CallContext) => unknown;

interface CallContext {
  fail(problem: string): never;
  options: UnpickleOptions;
  tensors: WeakSet<object>;
  namespaces: WeakSet<object>;
}

/** A global that REDUCE/NEWOBJ may call. */
class CallableGlobal extends PickleGlobal {
  constructor(
    qualifiedName: string,
    readonly reduce: Reconstructor | undefined,
    readonly newobj: Reconstructor | undefined,
  ) {
    super(qualifiedName);
  }
}

const STORAGE_DTYPES: Readonly<Record<string, DType>> = Object.freeze({
  FloatStorage: 'F32',
  DoubleStorage: 'F64',
  HalfStorage: 'F16',
  BFloat16Storage: 'BF16',
  LongStorage: 'I64',
  IntStorage: 'I32',
  ShortStorage: 'I16',
  CharStorage: 'I8',
  ByteStorage: 'U8',
  BoolStorage: 'BOOL',
});

const TORCH_DTYPES: Readonly<Record<string, DType | undefined>> = Object.freeze({
  float64: 'F64',
  double: 'F64',
  float32: 'F32',
  float: 'F32',
  float16: 'F16',
  half: 'F16',
  bfloat16: 'BF16',
  int64: 'I64',
  long: 'I64',
  int32: 'I32',
  int: 'I32',
  int16: 'I16',
  short: 'I16',
  int8: 'I8',
  uint8: 'U8',
  bool: 'BOOL',
  uint16: undefined,
  uint32: undefined,
  uint64: undefined,
  complex32: undefined,
  complex64: undefined,
  complex128: undefined,
  cfloat: undefined,
  cdouble: undefined,
  chalf: undefined,
  float8_e4m3fn: undefined,
  float8_e5m2: undefined,
  float8_e4m3fnuz: undefined,
  float8_e5m2fnuz: undefined,
  qint8: undefined,
  quint8: undefined,
  qint32: undefined,
  quint4x2: undefined,
});

const isArray = (v: unknown): v is unknown[] => Array.isArray(v);
const isMap = (v: unknown): v is Map<unknown, unknown> => v instanceof Map;
const isBytes = (v: unknown): v is Uint8Array => ArrayBuffer.isView(v) && Object.prototype.toString.call(v) === '[object Uint8Array]';

function expectArgs(ctx: CallContext, name: string, args: readonly unknown[], min: number, max: number): void {
  if (args.length < min || args.length > max) {
    ctx.fail(`${name} called with ${args.length} arguments (expected ${min === max ? min : `${min}–${max}`})`);
  }
}

function pairsToMap(ctx: CallContext, name: string, items: unknown): Map<unknown, unknown> {
  const map = new Map<unknown, unknown>();
  if (isMap(items)) {
    for (const [k, v] of items) map.set(k, v);
    return map;
  }
  if (!isArray(items)) ctx.fail(`${name} argument is not a list of pairs`);
  for (const pair of items as unknown[]) {
    if (!isArray(pair) || pair.length !== 2) ctx.fail(`${name} argument is not a list of pairs`);
    map.set((pair as unknown[])[0], (pair as unknown[])[1]);
  }
  return map;
}

function nonNegativeInt(ctx: CallContext, what: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
    ctx.fail(`tensor ${what} ${describePythonValue(v)} is not a non-negative integer`);
  }
  return v as number;
}

function intTuple(ctx: CallContext, what: string, v: unknown): number[] {
  if (!isArray(v)) ctx.fail(`tensor ${what} ${describePythonValue(v)} is not a tuple of integers`);
  return (v as unknown[]).map((d) => nonNegativeInt(ctx, `${what} entry`, d));
}

function rebuildTensor(ctx: CallContext, request: TensorRebuildRequest): object {
  const build = ctx.options.rebuildTensor;
  if (build === undefined) ctx.fail(`unexpected tensor in ${ctx.options.where}`);
  const tensor = build!(request);
  ctx.tensors.add(tensor);
  return tensor;
}

const rebuildTensorV2: Reconstructor = (args, ctx) => {
  // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
  expectArgs(ctx, 'torch._utils._rebuild_tensor_v2', args, 6, 7);
  const size = intTuple(ctx, 'size', args[2]);
  const stride = intTuple(ctx, 'stride', args[3]);
  if (size.length !== stride.length) ctx.fail(`tensor size has ${size.length} dims but stride has ${stride.length}`);
  return rebuildTensor(ctx, { storage: args[0], storageOffset: nonNegativeInt(ctx, 'storage offset', args[1]), size, stride });
};

const rebuildTensorV3: Reconstructor = (args, ctx) => {
  // (storage, storage_offset, size, stride, requires_grad, backward_hooks, dtype[, metadata])
  expectArgs(ctx, 'torch._utils._rebuild_tensor_v3', args, 7, 8);
  const dtype = args[6];
  if (!(dtype instanceof TorchDtype)) ctx.fail(`_rebuild_tensor_v3 dtype ${describePythonValue(dtype)} is not a torch dtype`);
  const tensorDtype = (dtype as TorchDtype).dtype;
  if (tensorDtype === undefined) ctx.fail(`unsupported tensor dtype ${(dtype as TorchDtype).qualifiedName}`);
  const size = intTuple(ctx, 'size', args[2]);
  const stride = intTuple(ctx, 'stride', args[3]);
  if (size.length !== stride.length) ctx.fail(`tensor size has ${size.length} dims but stride has ${stride.length}`);
  return rebuildTensor(ctx, {
    storage: args[0],
    storageOffset: nonNegativeInt(ctx, 'storage offset', args[1]),
    size,
    stride,
    dtype: tensorDtype!,
  });
};

const rebuildParameter: Reconstructor = (args, ctx) => {
  // nn.Parameter(data, requires_grad, backward_hooks): the parameter is its data tensor.
  expectArgs(ctx, 'torch._utils._rebuild_parameter', args, 3, 3);
  const data = args[0];
  if (typeof data !== 'object' || data === null || !ctx.tensors.has(data)) {
    ctx.fail(`_rebuild_parameter data ${describePythonValue(data)} is not a tensor`);
  }
  return data;
};

const orderedDict: Reconstructor = (args, ctx) => {
  expectArgs(ctx, 'collections.OrderedDict', args, 0, 1);
  return args.length === 0 ? new Map() : pairsToMap(ctx, 'collections.OrderedDict', args[0]);
};

const namespace: Reconstructor = (args, ctx) => {
  expectArgs(ctx, 'argparse.Namespace', args, 0, 0);
  const ns = {};
  ctx.namespaces.add(ns);
  return ns;
};

const codecsEncode: Reconstructor = (args, ctx) => {
  // Protocol 2 writes bytes as _codecs.encode(str, 'latin1').
  expectArgs(ctx, '_codecs.encode', args, 1, 3);
  const [text, encoding = 'utf-8'] = args;
  if (typeof text !== 'string' || typeof encoding !== 'string') ctx.fail('_codecs.encode arguments are not strings');
  const enc = (encoding as string).toLowerCase().replace(/_/g, '-');
  const s = text as string;
  if (enc === 'latin1' || enc === 'latin-1' || enc === 'iso-8859-1' || enc === 'ascii') {
    const limit = enc === 'ascii' ? 0x80 : 0x100;
    const out = new Uint8Array(s.length);
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c >= limit) ctx.fail(`_codecs.encode: character U+${c.toString(16).padStart(4, '0')} is not ${enc}`);
      out[i] = c;
    }
    return out;
  }
  if (enc === 'utf-8' || enc === 'utf8') return new TextEncoder().encode(s);
  return ctx.fail(`_codecs.encode: unsupported encoding ${quoteValue(encoding)}`);
};

const makeSet: Reconstructor = (args, ctx) => {
  expectArgs(ctx, 'set', args, 0, 1);
  if (args.length === 0) return new Set();
  const items = args[0];
  if (!isArray(items) && !(items instanceof Set)) ctx.fail(`set argument ${describePythonValue(items)} is not a list`);
  return new Set(items as Iterable<unknown>);
};

const emptyBytes: Reconstructor = (args, ctx) => {
  // Protocol 2 writes b'' as __builtin__.bytes().
  expectArgs(ctx, 'bytes', args, 0, 0);
  return new Uint8Array(0);
};

/** The allow-list: every global a checkpoint may name. Anything else is refused. */
const ALLOWED_GLOBALS: ReadonlyMap<string, PickleGlobal> = (() => {
  const table = new Map<string, PickleGlobal>();
  const callable = (name: string, reduce: Reconstructor | undefined, newobj: Reconstructor | undefined = reduce) =>
    table.set(name, Object.freeze(new CallableGlobal(name, reduce, newobj)));
  callable('collections.OrderedDict', orderedDict);
  callable('torch._utils._rebuild_tensor_v2', rebuildTensorV2, undefined);
  callable('torch._utils._rebuild_tensor_v3', rebuildTensorV3, undefined);
  callable('torch._utils._rebuild_parameter', rebuildParameter, undefined);
  callable('argparse.Namespace', namespace);
  callable('_codecs.encode', codecsEncode, undefined);
  for (const mod of ['builtins', '__builtin__']) {
    callable(`${mod}.set`, makeSet);
    callable(`${mod}.frozenset`, makeSet);
    callable(`${mod}.bytes`, emptyBytes);
  }
  // Storages saved from a GPU by old torch versions name torch.cuda.*Storage; the bytes are the same.
  for (const mod of ['torch', 'torch.cuda']) {
    for (const [cls, dtype] of Object.entries(STORAGE_DTYPES)) {
      table.set(`${mod}.${cls}`, Object.freeze(new TorchStorageType(`${mod}.${cls}`, dtype, false)));
    }
  }
  for (const name of ['torch.UntypedStorage', 'torch.storage.UntypedStorage']) {
    table.set(name, Object.freeze(new TorchStorageType(name, 'U8', true)));
  }
  for (const [name, dtype] of Object.entries(TORCH_DTYPES)) {
    table.set(`torch.${name}`, Object.freeze(new TorchDtype(`torch.${name}`, dtype)));
  }
  return table;
})();

/** Names of every global the unpickler accepts (for documentation and tests). */
export const ALLOWED_PICKLE_GLOBALS: readonly string[] = Object.freeze([...ALLOWED_GLOBALS.keys()]);

function resolveGlobal(module: string, name: string, fail: (problem: string) => never): PickleGlobal {
  const qualified = `${module}.${name}`;
  const known = ALLOWED_GLOBALS.get(qualified);
  if (known !== undefined) return known;
  if (/^torch(\.cuda)?\.\w+Storage$/.test(qualified)) fail(`unsupported storage type ${quoteValue(qualified)}`);
  return fail(`refusing to load global ${quoteValue(qualified)} (not a tensor or container type)`);
}

/** A short one-line Python-like rendering of a value, for error messages. */
export function describePythonValue(value: unknown, depth = 0): string {
  if (value === null) return 'None';
  if (value === true) return 'True';
  if (value === false) return 'False';
  if (typeof value === 'number' || typeof value === 'bigint') return quoteValue(value);
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (value instanceof PickleGlobal) return value.qualifiedName;
  if (isBytes(value)) return `bytes[${value.byteLength}]`;
  if (depth >= 2) return '…';
  if (isArray(value)) {
    const items = value.slice(0, 6).map((v) => describePythonValue(v, depth + 1));
    if (value.length > 6) items.push('…');
    return Object.isFrozen(value) ? `(${items.join(', ')}${value.length === 1 ? ',' : ''})` : `[${items.join(', ')}]`;
  }
  if (isMap(value)) return `dict[${value.size}]`;
  if (value instanceof Set) return `set[${value.size}]`;
  return 'object';
}

const OPCODE_NAMES: Readonly<Record<number, string>> = Object.freeze({
  0x28: 'MARK',
  0x2e: 'STOP',
  0x30: 'POP',
  0x31: 'POP_MARK',
  0x32: 'DUP',
  0x46: 'FLOAT',
  0x49: 'INT',
  0x4a: 'BININT',
  0x4b: 'BININT1',
  0x4c: 'LONG',
  0x4d: 'BININT2',
  0x4e: 'NONE',
  0x50: 'PERSID',
  0x51: 'BINPERSID',
  0x52: 'REDUCE',
  0x53: 'STRING',
  0x54: 'BINSTRING',
  0x55: 'SHORT_BINSTRING',
  0x56: 'UNICODE',
  0x58: 'BINUNICODE',
  0x61: 'APPEND',
  0x62: 'BUILD',
  0x63: 'GLOBAL',
  0x64: 'DICT',
  0x7d: 'EMPTY_DICT',
  0x65: 'APPENDS',
  0x67: 'GET',
  0x68: 'BINGET',
  0x69: 'INST',
  0x6a: 'LONG_BINGET',
  0x6c: 'LIST',
  0x5d: 'EMPTY_LIST',
  0x6f: 'OBJ',
  0x70: 'PUT',
  0x71: 'BINPUT',
  0x72: 'LONG_BINPUT',
  0x73: 'SETITEM',
  0x74: 'TUPLE',
  0x29: 'EMPTY_TUPLE',
  0x75: 'SETITEMS',
  0x47: 'BINFLOAT',
  0x80: 'PROTO',
  0x81: 'NEWOBJ',
  0x82: 'EXT1',
  0x83: 'EXT2',
  0x84: 'EXT4',
  0x85: 'TUPLE1',
  0x86: 'TUPLE2',
  0x87: 'TUPLE3',
  0x88: 'NEWTRUE',
  0x89: 'NEWFALSE',
  0x8a: 'LONG1',
  0x8b: 'LONG4',
  0x42: 'BINBYTES',
  0x43: 'SHORT_BINBYTES',
  0x8c: 'SHORT_BINUNICODE',
  0x8d: 'BINUNICODE8',
  0x8e: 'BINBYTES8',
  0x8f: 'EMPTY_SET',
  0x90: 'ADDITEMS',
  0x91: 'FROZENSET',
  0x92: 'NEWOBJ_EX',
  0x93: 'STACK_GLOBAL',
  0x94: 'MEMOIZE',
  0x95: 'FRAME',
  0x96: 'BYTEARRAY8',
  0x97: 'NEXT_BUFFER',
  0x98: 'READONLY_BUFFER',
});

/** Signals running off the end of the data; turned into a "truncated" error naming the opcode. */
class Truncated extends Error {}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** ISO-8859-1 (TextDecoder's 'latin1' is really windows-1252, which remaps 0x80–0x9f). */
function latin1Decode(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i < b.byteLength; i += 0x2000) s += String.fromCharCode(...b.subarray(i, i + 0x2000));
  return s;
}

/**
 * Unpickle one pickle starting at `options.start` of `bytes`. Throws ModelFormatError naming the file for a
 * refused global, a malformed or truncated pickle, or an unknown opcode.
 */
export function unpickle(bytes: Uint8Array, options: UnpickleOptions): UnpickleResult {
  const { file, where } = options;
  const fail = (problem: string): never => {
    throw new ModelFormatError(problem, { file });
  };
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const end = bytes.byteLength;
  let pos = options.start ?? 0;
  let opStart = pos;
  let opcode = 0;

  let stack: unknown[] = [];
  const metastack: unknown[][] = [];
  let stackItems = 0; // items held in `stack` and every list of `metastack`
  const memo = new Map<number, unknown>();
  const limits = pickleLimits(options.limits);
  const begin = pos;
  let containers = 0;
  let containerItems = 0;
  const ctx: CallContext = {
    fail: (problem) => fail(`${problem} (${OPCODE_NAMES[opcode] ?? 'opcode'} at offset ${opStart} of ${where})`),
    options,
    tensors: new WeakSet(),
    namespaces: new WeakSet(),
  };
  const malformed = (problem: string): never => ctx.fail(`malformed pickle: ${problem}`);

  const need = (n: number): void => {
    if (n > end - pos) throw new Truncated();
  };
  const readU8 = (): number => {
    need(1);
    return bytes[pos++]!;
  };
  const readU16 = (): number => {
    need(2);
    const v = view.getUint16(pos, true);
    pos += 2;
    return v;
  };
  const readI32 = (): number => {
    need(4);
    const v = view.getInt32(pos, true);
    pos += 4;
    return v;
  };
  const readU32 = (): number => {
    need(4);
    const v = view.getUint32(pos, true);
    pos += 4;
    return v;
  };
  const readU64 = (): number => {
    need(8);
    const v = view.getBigUint64(pos, true);
    pos += 8;
    if (v > BigInt(end)) throw new Truncated(); // a length longer than the data is truncation
    return Number(v);
  };
  const take = (n: number): Uint8Array => {
    if (n < 0) malformed(`negative length ${n}`);
    need(n);
    const out = bytes.subarray(pos, pos + n);
    pos += n;
    return out;
  };
  const readLineBytes = (): Uint8Array => {
    const nl = bytes.indexOf(0x0a, pos);
    if (nl < 0) throw new Truncated();
    const line = bytes.subarray(pos, nl);
    pos = nl + 1;
    return line;
  };
  const readLine = (): string => decodeUtf8(readLineBytes());
  const decodeUtf8 = (b: Uint8Array): string => {
    try {
      return utf8.decode(b);
    } catch {
      return malformed('string is not valid UTF-8');
    }
  };
  const copyBytes = (b: Uint8Array): Uint8Array => new Uint8Array(b);

  const push = (v: unknown): void => {
    if (++stackItems > limits.stackItems) ctx.fail(`pickle stack exceeds ${limits.stackItems} items`);
    stack.push(v);
  };
  /** Counts a container (or reconstructed object) of `items` items against the limits. */
  const built = (items: number): void => {
    if (++containers > limits.containers) ctx.fail(`pickle builds more than ${limits.containers} objects (limits.containers)`);
    countItems(items);
  };
  const countItems = (items: number): void => {
    containerItems += items;
    if (containerItems > limits.containerItems) {
      ctx.fail(`pickle puts more than ${limits.containerItems} items into lists, dicts, sets and tuples (limits.containerItems)`);
    }
  };
  const pop = (): unknown => {
    if (stack.length === 0) malformed('stack underflow');
    stackItems--;
    return stack.pop();
  };
  const top = (): unknown => {
    if (stack.length === 0) malformed('stack underflow');
    return stack[stack.length - 1];
  };
  const popMark = (): unknown[] => {
    const items = stack;
    const previous = metastack.pop();
    if (previous === undefined) malformed('no MARK on the stack');
    stack = previous!;
    stackItems -= items.length;
    return items;
  };
  const memoPut = (index: number, value: unknown): void => {
    if (!memo.has(index) && memo.size >= limits.memoEntries) {
      ctx.fail(`pickle memo exceeds ${limits.memoEntries} entries`);
    }
    memo.set(index, value);
  };
  const memoGet = (index: number): unknown => {
    if (!memo.has(index)) malformed(`memo entry ${index} is not defined`);
    return memo.get(index);
  };
  const tuple = (items: unknown[]): unknown[] => {
    built(items.length);
    return Object.freeze(items) as unknown[];
  };
  const list = (items: unknown[]): unknown[] => {
    built(items.length);
    return items;
  };
  const binaryInt = (length: number, what: string): bigint => {
    if (length > limits.intBytes)
      ctx.fail(`${what} int of ${length} bytes is longer than the limit of ${limits.intBytes} (limits.intBytes)`);
    return twosComplement(take(length));
  };
  const decimalInt = (text: string): bigint => {
    const digits = text.replace(/^[+-]/, '').length;
    if (digits > limits.intDigits)
      ctx.fail(`decimal int of ${digits} digits is longer than the limit of ${limits.intDigits} (limits.intDigits)`);
    return parseDecimal(text, malformed);
  };
  const int = (v: bigint): number | bigint => (v >= -MAX_SAFE && v <= MAX_SAFE ? Number(v) : v);
  const decimalLine = (what: string): number => {
    const line = readLine();
    if (!/^\d+$/.test(line)) malformed(`${what} index ${quoteValue(line)} is not a number`);
    return Number(line);
  };
  const appendTo = (target: unknown, items: unknown[]): void => {
    if (!isArray(target) || Object.isFrozen(target)) malformed(`cannot append to ${describePythonValue(target)}`);
    countItems(items.length);
    for (const item of items) (target as unknown[]).push(item);
  };
  const setItems = (target: unknown, items: unknown[]): void => {
    if (!isMap(target)) malformed(`cannot set items on ${describePythonValue(target)}`);
    if (items.length % 2 !== 0) malformed('odd number of items for SETITEMS');
    countItems(items.length / 2);
    for (let i = 0; i < items.length; i += 2) (target as Map<unknown, unknown>).set(items[i], items[i + 1]);
  };
  const callGlobal = (callee: unknown, args: unknown, how: 'reduce' | 'newobj'): unknown => {
    if (!isArray(args)) malformed(`arguments ${describePythonValue(args)} are not a tuple`);
    const fn = callee instanceof CallableGlobal ? (how === 'reduce' ? callee.reduce : callee.newobj) : undefined;
    if (fn === undefined) ctx.fail(`cannot call ${describePythonValue(callee)}`);
    const made = fn!(args as unknown[], ctx);
    built(made instanceof Map || made instanceof Set ? made.size : 0);
    return made;
  };
  const build = (inst: unknown, state: unknown): void => {
    if (isMap(inst)) return; // OrderedDict state (e.g. a state dict's `_metadata`) is not needed
    if (typeof inst === 'object' && inst !== null && ctx.namespaces.has(inst)) {
      const attrs = isArray(state) && state.length === 2 ? state[0] : state;
      if (!isMap(attrs)) malformed(`argparse.Namespace state ${describePythonValue(state)} is not a dict`);
      for (const [k, v] of attrs as Map<unknown, unknown>) {
        if (typeof k !== 'string') malformed(`attribute name ${describePythonValue(k)} is not a string`);
        // defineProperty: a key such as "__proto__" becomes an ordinary own property, never the prototype.
        Object.defineProperty(inst, k as string, { value: v, enumerable: true, writable: true, configurable: true });
      }
      return;
    }
    malformed(`cannot BUILD ${describePythonValue(inst)}`);
  };

  try {
    for (;;) {
      opStart = pos;
      if (pos >= end) return fail(`truncated pickle: ${where} ends at offset ${end} without a STOP opcode`);
      if (pos - begin > limits.pickleBytes) ctx.fail(`pickle is longer than the limit of ${limits.pickleBytes} bytes (limits.pickleBytes)`);
      opcode = bytes[pos++]!;
      switch (opcode) {
        case 0x80: {
          // PROTO
          const version = readU8();
          if (version > 5) ctx.fail(`unsupported pickle protocol ${version}`);
          break;
        }
        case 0x95: // FRAME: framing is advisory; only the length needs to fit
          need(readU64());
          break;
        case 0x2e: // STOP
          if (stack.length === 0) malformed('empty stack at STOP');
          return { value: stack[stack.length - 1], end: pos };
        case 0x28: // MARK
          if (metastack.length >= limits.markDepth) ctx.fail(`MARKs nested deeper than ${limits.markDepth}`);
          metastack.push(stack);
          stack = [];
          break;
        case 0x30: // POP
          pop();
          break;
        case 0x31: // POP_MARK
          popMark();
          break;
        case 0x32: // DUP
          push(top());
          break;

        case 0x63: {
          // GLOBAL
          const module = readLine();
          const name = readLine();
          push(resolveGlobal(module, name, fail));
          break;
        }
        case 0x93: {
          // STACK_GLOBAL
          const name = pop();
          const module = pop();
          if (typeof module !== 'string' || typeof name !== 'string') malformed('STACK_GLOBAL operands are not strings');
          push(resolveGlobal(module as string, name as string, fail));
          break;
        }

        case 0x70: // PUT
          memoPut(decimalLine('PUT'), top());
          break;
        case 0x71: // BINPUT
          memoPut(readU8(), top());
          break;
        case 0x72: // LONG_BINPUT
          memoPut(readU32(), top());
          break;
        case 0x94: // MEMOIZE
          memoPut(memo.size, top());
          break;
        case 0x67: // GET
          push(memoGet(decimalLine('GET')));
          break;
        case 0x68: // BINGET
          push(memoGet(readU8()));
          break;
        case 0x6a: // LONG_BINGET
          push(memoGet(readU32()));
          break;

        case 0x29: // EMPTY_TUPLE
          push(tuple([]));
          break;
        case 0x74: // TUPLE
          push(tuple(popMark()));
          break;
        case 0x85: // TUPLE1
          push(tuple([pop()]));
          break;
        case 0x86: {
          // TUPLE2
          const b = pop();
          const a = pop();
          push(tuple([a, b]));
          break;
        }
        case 0x87: {
          // TUPLE3
          const c = pop();
          const b = pop();
          const a = pop();
          push(tuple([a, b, c]));
          break;
        }
        case 0x5d: // EMPTY_LIST
          push(list([]));
          break;
        case 0x6c: // LIST
          push(list(popMark()));
          break;
        case 0x61: {
          // APPEND
          const item = pop();
          appendTo(top(), [item]);
          break;
        }
        case 0x65: {
          // APPENDS
          const items = popMark();
          appendTo(top(), items);
          break;
        }
        case 0x7d: // EMPTY_DICT
          built(0);
          push(new Map());
          break;
        case 0x64: {
          // DICT
          const items = popMark();
          built(0);
          const map = new Map<unknown, unknown>();
          setItems(map, items);
          push(map);
          break;
        }
        case 0x73: {
          // SETITEM
          const value = pop();
          const key = pop();
          setItems(top(), [key, value]);
          break;
        }
        case 0x75: {
          // SETITEMS
          const items = popMark();
          setItems(top(), items);
          break;
        }
        case 0x8f: // EMPTY_SET
          built(0);
          push(new Set());
          break;
        case 0x90: {
          // ADDITEMS
          const items = popMark();
          const target = top();
          if (!(target instanceof Set)) malformed(`cannot add items to ${describePythonValue(target)}`);
          countItems(items.length);
          for (const item of items) (target as Set<unknown>).add(item);
          break;
        }
        case 0x91: {
          // FROZENSET
          const items = popMark();
          built(items.length);
          push(new Set(items));
          break;
        }

        case 0x4e: // NONE
          push(null);
          break;
        case 0x88: // NEWTRUE
          push(true);
          break;
        case 0x89: // NEWFALSE
          push(false);
          break;
        case 0x4a: // BININT
          push(readI32());
          break;
        case 0x4b: // BININT1
          push(readU8());
          break;
        case 0x4d: // BININT2
          push(readU16());
          break;
        case 0x49: {
          // INT (protocol 0); "01"/"00" are True/False
          const line = readLine().trim();
          if (line === '01') push(true);
          else if (line === '00') push(false);
          else push(int(decimalInt(line)));
          break;
        }
        case 0x4c: // LONG (protocol 0)
          push(int(decimalInt(readLine().trim().replace(/L$/, ''))));
          break;
        case 0x8a: // LONG1
          push(int(binaryInt(readU8(), 'LONG1')));
          break;
        case 0x8b: {
          // LONG4
          const length = readI32();
          if (length < 0) malformed(`negative length ${length}`);
          push(int(binaryInt(length, 'LONG4')));
          break;
        }
        case 0x47: // BINFLOAT (big-endian)
          need(8);
          push(view.getFloat64(pos, false));
          pos += 8;
          break;
        case 0x46: // FLOAT (protocol 0)
          push(parsePythonFloat(readLine().trim(), malformed));
          break;

        case 0x58: // BINUNICODE
          push(decodeUtf8(take(readU32())));
          break;
        case 0x8c: // SHORT_BINUNICODE
          push(decodeUtf8(take(readU8())));
          break;
        case 0x8d: // BINUNICODE8
          push(decodeUtf8(take(readU64())));
          break;
        case 0x56: // UNICODE (raw-unicode-escape line)
          push(decodeRawUnicodeEscape(latin1Decode(readLineBytes()), malformed));
          break;
        // Python 2 str: torch.load decodes it with encoding='utf-8'.
        case 0x54: // BINSTRING
          push(decodeUtf8(take(readI32())));
          break;
        case 0x55: // SHORT_BINSTRING
          push(decodeUtf8(take(readU8())));
          break;
        case 0x42: // BINBYTES
          push(copyBytes(take(readU32())));
          break;
        case 0x43: // SHORT_BINBYTES
          push(copyBytes(take(readU8())));
          break;
        case 0x8e: // BINBYTES8
        case 0x96: // BYTEARRAY8
          push(copyBytes(take(readU64())));
          break;

        case 0x51: {
          // BINPERSID
          const pid = pop();
          if (options.persistentLoad === undefined) ctx.fail(`unexpected persistent id in ${where}`);
          push(options.persistentLoad!(pid));
          break;
        }
        case 0x50: {
          // PERSID
          const pid = readLine();
          if (options.persistentLoad === undefined) ctx.fail(`unexpected persistent id in ${where}`);
          push(options.persistentLoad!(pid));
          break;
        }
        case 0x52: {
          // REDUCE
          const args = pop();
          const callee = pop();
          push(callGlobal(callee, args, 'reduce'));
          break;
        }
        case 0x81: {
          // NEWOBJ
          const args = pop();
          const cls = pop();
          push(callGlobal(cls, args, 'newobj'));
          break;
        }
        case 0x92: {
          // NEWOBJ_EX
          const kwargs = pop();
          const args = pop();
          const cls = pop();
          if (!isMap(kwargs) || kwargs.size !== 0) malformed('NEWOBJ_EX with keyword arguments');
          push(callGlobal(cls, args, 'newobj'));
          break;
        }
        case 0x62: {
          // BUILD
          const state = pop();
          build(top(), state);
          break;
        }

        default: {
          const name = OPCODE_NAMES[opcode];
          const hex = `0x${opcode.toString(16).padStart(2, '0')}`;
          if (name !== undefined) fail(`unsupported pickle opcode ${name} (${hex}) at offset ${opStart} of ${where}`);
          fail(`unknown pickle opcode ${hex} at offset ${opStart} of ${where}`);
        }
      }
    }
  } catch (error) {
    if (!(error instanceof Truncated)) throw error;
    return fail(`truncated pickle: ${where} ends at offset ${end} inside ${OPCODE_NAMES[opcode]} (at offset ${opStart})`);
  }
}

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/** PICKLE_LIMITS with `overrides` (each field raised or lowered); refuses a limit that is not a positive integer. */
export function pickleLimits(overrides: Partial<PickleLimits> = {}): PickleLimits {
  const limits = { ...PICKLE_LIMITS };
  for (const [key, value] of Object.entries(overrides) as Array<[keyof PickleLimits, number | undefined]>) {
    if (value === undefined) continue;
    if (!(key in PICKLE_LIMITS))
      throw new UsageError(`unknown pickle limit ${quoteValue(key)} (known: ${Object.keys(PICKLE_LIMITS).join(', ')})`);
    if (!Number.isSafeInteger(value) || value < 1)
      throw new UsageError(`pickle limit ${key} must be a positive integer, got ${quoteValue(value)}`);
    limits[key] = value;
  }
  return limits;
}

/** Little-endian two's complement, as LONG1/LONG4 store a Python int. */
function twosComplement(b: Uint8Array): bigint {
  if (b.byteLength === 0) return 0n;
  let hex = '';
  for (let i = b.byteLength - 1; i >= 0; i--) hex += b[i]!.toString(16).padStart(2, '0');
  let v = BigInt(`0x${hex}`);
  if (b[b.byteLength - 1]! & 0x80) v -= 1n << BigInt(8 * b.byteLength);
  return v;
}

function parseDecimal(text: string, malformed: (p: string) => never): bigint {
  if (!/^[+-]?\d+$/.test(text)) malformed(`integer ${quoteValue(text)} is not a number`);
  return BigInt(text);
}

function parsePythonFloat(text: string, malformed: (p: string) => never): number {
  const lower = text.toLowerCase();
  if (lower === 'inf' || lower === '+inf') return Infinity;
  if (lower === '-inf') return -Infinity;
  if (lower === 'nan' || lower === '-nan' || lower === '+nan') return NaN;
  if (!/^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(text)) malformed(`float ${quoteValue(text)} is not a number`);
  return Number(text);
}

/** Python's raw-unicode-escape: only \uXXXX and \UXXXXXXXX are escapes. */
function decodeRawUnicodeEscape(text: string, malformed: (p: string) => never): string {
  return text.replace(/\\u([0-9a-fA-F]{4})|\\U([0-9a-fA-F]{8})/g, (_m, u4?: string, u8?: string) => {
    const cp = parseInt((u4 ?? u8)!, 16);
    if (cp > 0x10ffff) malformed(`\\U escape ${u8} is not a code point`);
    return String.fromCodePoint(cp);
  });
}
