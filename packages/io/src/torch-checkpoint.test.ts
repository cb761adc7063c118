import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';

import { guardAgainstSideEffects } from '@scenimefy/test-utils';

import { InputError, ModelFormatError } from './errors';
import type { DType, TensorData } from './tensor';
import { isTorchCheckpoint, isTorchTensor, parseTorchCheckpoint, torchCheckpointKind } from './torch-checkpoint';
import { readTorchCheckpoint, readTorchStateDict } from './torch-checkpoint-file';

// ---- pickle bytes (protocol 2, as torch.save writes them) ----
type Part = number | readonly number[] | Uint8Array;
const cat = (...parts: Part[]): Uint8Array => {
  const out: number[] = [];
  for (const p of parts) {
    if (typeof p === 'number') out.push(p);
    else out.push(...p);
  }
  return Uint8Array.from(out);
};
const u32 = (n: number): number[] => [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff];
const u16 = (n: number): number[] => [n & 0xff, (n >>> 8) & 0xff];
const u64 = (n: number): number[] => [...u32(n % 2 ** 32), ...u32(Math.floor(n / 2 ** 32))];
const ascii = (s: string): number[] => [...Buffer.from(s, 'latin1')];
const MARK = 0x28,
  STOP = 0x2e,
  TUPLE = 0x74,
  TUPLE1 = 0x85,
  TUPLE3 = 0x87,
  REDUCE = 0x52;
const EMPTY_TUPLE = 0x29,
  EMPTY_DICT = 0x7d,
  EMPTY_LIST = 0x5d,
  SETITEMS = 0x75,
  SETITEM = 0x73,
  APPENDS = 0x65;
const NONE = 0x4e,
  NEWFALSE = 0x89,
  NEWTRUE = 0x88,
  BINPERSID = 0x51,
  PROTO2 = [0x80, 2];
const global = (module: string, name: string): number[] => [0x63, ...ascii(`${module}\n${name}\n`)];
const str = (s: string): number[] => {
  const b = [...Buffer.from(s, 'utf8')];
  return [0x58, ...u32(b.length), ...b];
};
const int = (n: number): number[] => [0x4a, ...u32(n >>> 0)];
const ints = (xs: readonly number[]): number[] => [MARK, ...xs.flatMap(int), TUPLE];
const orderedDict = (): number[] => [...global('collections', 'OrderedDict'), EMPTY_TUPLE, REDUCE];
const pickle = (...body: Part[]): Uint8Array => cat(PROTO2, ...body, STOP);

interface TensorSpec {
  name: string;
  key: string;
  numel: number;
  cls?: string;
  module?: string;
  location?: string;
  offset?: number;
  size: number[];
  stride?: number[];
  parameter?: boolean;
}
const contiguousStride = (size: readonly number[]): number[] => {
  const stride = new Array<number>(size.length);
  for (let d = size.length - 1, s = 1; d >= 0; d--) {
    stride[d] = s;
    s *= size[d]!;
  }
  return stride;
};
/** `_rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict())`, optionally wrapped in a Parameter. */
const tensorOps = (t: TensorSpec, legacy: boolean): number[] => {
  const pid = [
    MARK,
    ...str('storage'),
    ...global(t.module ?? 'torch', t.cls ?? 'FloatStorage'),
    ...str(t.key),
    ...str(t.location ?? 'cpu'),
    ...int(t.numel),
    ...(legacy ? [NONE] : []),
    TUPLE,
    BINPERSID,
  ];
  const rebuild = [
    ...global('torch._utils', '_rebuild_tensor_v2'),
    MARK,
    ...pid,
    ...int(t.offset ?? 0),
    ...ints(t.size),
    ...ints(t.stride ?? contiguousStride(t.size)),
    NEWFALSE,
    ...orderedDict(),
    TUPLE,
    REDUCE,
  ];
  if (!t.parameter) return rebuild;
  return [...global('torch._utils', '_rebuild_parameter'), ...rebuild, NEWTRUE, ...orderedDict(), TUPLE3, REDUCE];
};
/** Pushes an OrderedDict state dict of the given tensors (plus any extra raw key/value ops). */
const stateDictOps = (tensors: readonly TensorSpec[], legacy = false, extra: readonly number[] = []): number[] => [
  ...orderedDict(),
  MARK,
  ...tensors.flatMap((t) => [...str(t.name), ...tensorOps(t, legacy)]),
  ...extra,
  SETITEMS,
];

// ---- containers ----
interface ZipInput {
  name: string;
  data: Uint8Array;
  deflate?: boolean;
  zip64?: boolean;
  method?: number;
  flags?: number;
}
/** A zip archive laid out like torch.save's: data aligned to 64 bytes by padding the local extra field. */
const zipArchive = (entries: readonly ZipInput[], options: { zip64Eocd?: boolean } = {}): Uint8Array => {
  const chunks: number[] = [];
  const central: number[] = [];
  for (const e of entries) {
    const name = [...Buffer.from(e.name, 'utf8')];
    const stored = e.deflate ? [...zlib.deflateRawSync(e.data)] : [...e.data];
    const method = e.method ?? (e.deflate ? 8 : 0);
    const crc = zlib.crc32(e.data);
    const offset = chunks.length;
    const pad = (64 - ((offset + 30 + name.length + 4) % 64)) % 64;
    const extra = [0x46, 0x42, ...u16(pad), ...new Array<number>(pad).fill(0x5a)];
    chunks.push(
      ...u32(0x04034b50),
      ...u16(20),
      ...u16(e.flags ?? 0),
      ...u16(method),
      0,
      0,
      0,
      0,
      ...u32(crc),
      ...u32(stored.length),
      ...u32(e.data.length),
      ...u16(name.length),
      ...u16(extra.length),
      ...name,
      ...extra,
      ...stored,
    );
    const big = e.zip64 === true;
    const cextra = big ? [...u16(1), ...u16(24), ...u64(e.data.length), ...u64(stored.length), ...u64(offset)] : [];
    central.push(
      ...u32(0x02014b50),
      ...u16(45),
      ...u16(45),
      ...u16(e.flags ?? 0),
      ...u16(method),
      0,
      0,
      0,
      0,
      ...u32(crc),
      ...u32(big ? 0xffffffff : stored.length),
      ...u32(big ? 0xffffffff : e.data.length),
      ...u16(name.length),
      ...u16(cextra.length),
      0,
      0,
      0,
      0,
      0,
      0,
      0,
      0,
      0,
      0,
      ...u32(big ? 0xffffffff : offset),
      ...name,
      ...cextra,
    );
  }
  const cdOffset = chunks.length;
  chunks.push(...central);
  if (options.zip64Eocd) {
    const zip64At = chunks.length;
    chunks.push(
      ...u32(0x06064b50),
      ...u64(44),
      ...u16(45),
      ...u16(45),
      ...u32(0),
      ...u32(0),
      ...u64(entries.length),
      ...u64(entries.length),
      ...u64(central.length),
      ...u64(cdOffset),
    );
    chunks.push(...u32(0x07064b50), ...u32(0), ...u64(zip64At), ...u32(1));
    chunks.push(...u32(0x06054b50), 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, ...u32(0xffffffff), ...u32(0xffffffff), 0, 0);
  } else {
    chunks.push(
      ...u32(0x06054b50),
      0,
      0,
      0,
      0,
      ...u16(entries.length),
      ...u16(entries.length),
      ...u32(central.length),
      ...u32(cdOffset),
      0,
      0,
    );
  }
  return Uint8Array.from(chunks);
};
const torchZip = (prefix: string, dataPkl: Uint8Array, storages: Record<string, Uint8Array>, more: ZipInput[] = []): Uint8Array =>
  zipArchive([
    { name: `${prefix}/data.pkl`, data: dataPkl },
    { name: `${prefix}/byteorder`, data: Uint8Array.from(ascii('little')) },
    ...Object.entries(storages).map(([key, data]) => ({ name: `${prefix}/data/${key}`, data })),
    { name: `${prefix}/version`, data: Uint8Array.from(ascii('3\n')) },
    ...more,
  ]);
const MAGIC_PICKLE = cat(PROTO2, 0x8a, 10, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, STOP);
const sysInfo = (littleEndian = true): Uint8Array =>
  pickle(
    EMPTY_DICT,
    MARK,
    ...str('protocol_version'),
    ...int(1001),
    ...str('little_endian'),
    littleEndian ? NEWTRUE : NEWFALSE,
    ...str('type_sizes'),
    EMPTY_DICT,
    SETITEMS,
  );
/** torch.save(..., _use_new_zipfile_serialization=False): magic, protocol, sys_info, main pickle, keys, storages. */
const legacyFile = (
  main: Uint8Array,
  storages: readonly [string, number, Uint8Array][],
  options: { protocol?: number; littleEndian?: boolean } = {},
): Uint8Array =>
  cat(
    MAGIC_PICKLE,
    pickle(int(options.protocol ?? 1001)),
    sysInfo(options.littleEndian),
    main,
    pickle(MARK, ...storages.flatMap(([key]) => str(key)), 0x6c),
    ...storages.flatMap(([, count, data]) => [...u64(count), ...data]),
  );

const f32 = (...xs: number[]): Uint8Array => new Uint8Array(Float32Array.from(xs).buffer);
const valuesOf = (t: TensorData): number[] => {
  const copy = new Uint8Array(t.bytes);
  switch (t.dtype) {
    case 'F32':
      return [...new Float32Array(copy.buffer)];
    case 'F64':
      return [...new Float64Array(copy.buffer)];
    case 'I64':
      return [...new BigInt64Array(copy.buffer)].map(Number);
    case 'I32':
      return [...new Int32Array(copy.buffer)];
    case 'I16':
      return [...new Int16Array(copy.buffer)];
    case 'I8':
      return [...new Int8Array(copy.buffer)];
    default:
      return [...copy];
  }
};

let dir: string;
beforeEach(async () => {
  dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'scenimefy-torch-'));
});
afterEach(async () => {
  await fsp.rm(dir, { recursive: true, force: true });
});
const writeFile = async (name: string, bytes: Uint8Array): Promise<string> => {
  const file = path.join(dir, name);
  await fsp.writeFile(file, bytes);
  return file;
};
const formatError = async (promise: Promise<unknown>): Promise<string> => {
  const err = await promise.then(
    () => {
      throw new Error('expected a ModelFormatError');
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ModelFormatError);
  return (err as Error).message;
};

const TWO_TENSORS: TensorSpec[] = [
  { name: 'conv.weight', key: '0', numel: 6, size: [2, 3] },
  { name: 'conv.bias', key: '1', numel: 2, size: [2], parameter: true },
];
const TWO_STORAGES = { '0': f32(1, 2, 3, 4, 5, 6), '1': f32(-1, -2) };

describe('zip checkpoints', () => {
  it('reads a state dict under any archive prefix, with tensors as views of the one file buffer', async () => {
    const bytes = Buffer.from(torchZip('some/odd prefix', pickle(stateDictOps(TWO_TENSORS)), TWO_STORAGES));
    const sd = parseTorchCheckpoint(bytes, 'm.pth') as Map<string, TensorData>;
    expect([...sd.keys()]).toEqual(['conv.weight', 'conv.bias']);
    const w = sd.get('conv.weight')!;
    expect(w.dtype).toBe('F32');
    expect(w.shape).toEqual([2, 3]);
    expect(valuesOf(w)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(valuesOf(sd.get('conv.bias')!)).toEqual([-1, -2]);
    for (const t of sd.values()) {
      expect(t.bytes.buffer).toBe(bytes.buffer);
      expect((t.bytes.byteOffset - bytes.byteOffset) % 64).toBe(0);
      expect(isTorchTensor(t)).toBe(true);
      expect(Object.isFrozen(t)).toBe(true);
    }
    expect(await readTorchStateDict(await writeFile('m.pth', bytes))).toEqual(sd);
  });

  it.each<[string, DType, number[], Uint8Array]>([
    ['FloatStorage', 'F32', [1.5, -2], f32(1.5, -2)],
    ['DoubleStorage', 'F64', [0.1, -3], new Uint8Array(Float64Array.from([0.1, -3]).buffer)],
    ['HalfStorage', 'F16', [0x00, 0x3c, 0x00, 0xc0], Uint8Array.from([0x00, 0x3c, 0x00, 0xc0])],
    ['BFloat16Storage', 'BF16', [0x80, 0x3f, 0x00, 0xc0], Uint8Array.from([0x80, 0x3f, 0x00, 0xc0])],
    ['LongStorage', 'I64', [7, -9], new Uint8Array(BigInt64Array.from([7n, -9n]).buffer)],
    ['IntStorage', 'I32', [70000, -1], new Uint8Array(Int32Array.from([70000, -1]).buffer)],
    ['ShortStorage', 'I16', [-300, 2], new Uint8Array(Int16Array.from([-300, 2]).buffer)],
    ['CharStorage', 'I8', [-5, 5], Uint8Array.from([0xfb, 5])],
    ['ByteStorage', 'U8', [250, 1], Uint8Array.from([250, 1])],
    ['BoolStorage', 'BOOL', [1, 0], Uint8Array.from([1, 0])],
  ])('maps torch.%s to %s', (cls, dtype, values, data) => {
    const bytes = torchZip('a', pickle(stateDictOps([{ name: 't', key: '0', numel: 2, cls, size: [2] }])), { '0': data });
    const t = (parseTorchCheckpoint(bytes, 'd.pth') as Map<string, TensorData>).get('t')!;
    expect(t.dtype).toBe(dtype);
    expect(valuesOf(t)).toEqual(values);
  });

  it('shares one storage between tensors at different offsets, and reads zero-dim and empty tensors', () => {
    const specs: TensorSpec[] = [
      { name: 'head', key: '0', numel: 6, size: [2], offset: 1 },
      { name: 'tail', key: '0', numel: 6, size: [3], offset: 3 },
      { name: 'scalar', key: '0', numel: 6, size: [], stride: [], offset: 5 },
      { name: 'empty', key: '0', numel: 6, size: [0, 4], offset: 6 },
    ];
    const sd = parseTorchCheckpoint(torchZip('a', pickle(stateDictOps(specs)), { '0': f32(0, 1, 2, 3, 4, 5) }), 's.pth') as Map<
      string,
      TensorData
    >;
    expect(valuesOf(sd.get('head')!)).toEqual([1, 2]);
    expect(valuesOf(sd.get('tail')!)).toEqual([3, 4, 5]);
    expect(sd.get('scalar')!.shape).toEqual([]);
    expect(valuesOf(sd.get('scalar')!)).toEqual([5]);
    expect(sd.get('empty')!.shape).toEqual([0, 4]);
    expect(sd.get('empty')!.bytes.byteLength).toBe(0);
    expect(sd.get('head')!.bytes.buffer).toBe(sd.get('tail')!.bytes.buffer);
  });

  it('materialises non-contiguous strides as a contiguous copy', () => {
    // Storage 0..23. 't' = arange(6).view(2,3).t() → shape [3,2], stride [1,3]; 'p' = arange(24).view(2,3,4)
    // .permute(2,0,1)[:, :, 1:] at offset 4 → shape [4,2,2], stride [1,12,4]; 'e' = expand of element 7 to [2,3].
    const storage = f32(...Array.from({ length: 24 }, (_, i) => i));
    const specs: TensorSpec[] = [
      { name: 't', key: '0', numel: 24, size: [3, 2], stride: [1, 3] },
      { name: 'p', key: '0', numel: 24, size: [4, 2, 2], stride: [1, 12, 4], offset: 4 },
      { name: 'e', key: '0', numel: 24, size: [2, 3], stride: [0, 0], offset: 7 },
      { name: 'unit', key: '0', numel: 24, size: [1, 3, 1], stride: [99, 1, 5], offset: 2 },
    ];
    const bytes = torchZip('a', pickle(stateDictOps(specs)), { '0': storage });
    const sd = parseTorchCheckpoint(bytes, 'nc.pth') as Map<string, TensorData>;
    expect(valuesOf(sd.get('t')!)).toEqual([0, 3, 1, 4, 2, 5]);
    const expected: number[] = [];
    for (let a = 0; a < 4; a++) for (let b = 0; b < 2; b++) for (let c = 0; c < 2; c++) expected.push(4 + a + 12 * b + 4 * c);
    expect(valuesOf(sd.get('p')!)).toEqual(expected);
    expect(valuesOf(sd.get('e')!)).toEqual([7, 7, 7, 7, 7, 7]);
    expect(sd.get('t')!.bytes.buffer).not.toBe(bytes.buffer);
    // Unit dimensions' strides never address anything, so this one is still a zero-copy view.
    expect(valuesOf(sd.get('unit')!)).toEqual([2, 3, 4]);
    expect(sd.get('unit')!.bytes.buffer).toBe(bytes.buffer);
  });

  it('inflates DEFLATED members and reads Zip64 sizes, offsets and end records', () => {
    const dataPkl = pickle(stateDictOps(TWO_TENSORS));
    const bytes = zipArchive(
      [
        { name: 'z/data.pkl', data: dataPkl, deflate: true, zip64: true },
        { name: 'z/data/0', data: TWO_STORAGES['0'], deflate: true },
        { name: 'z/data/1', data: TWO_STORAGES['1'], zip64: true },
        { name: 'z/.data/serialization_id', data: Uint8Array.from(ascii('123')) },
      ],
      { zip64Eocd: true },
    );
    const sd = parseTorchCheckpoint(bytes, 'z.pth') as Map<string, TensorData>;
    expect(valuesOf(sd.get('conv.weight')!)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(valuesOf(sd.get('conv.bias')!)).toEqual([-1, -2]);
  });

  it('byte-swaps storages of an archive whose byteorder is "big"', () => {
    const be = (xs: number[]): Uint8Array => {
      const b = Buffer.alloc(xs.length * 4);
      xs.forEach((x, i) => b.writeFloatBE(x, i * 4));
      return b;
    };
    const specs: TensorSpec[] = [
      { name: 'w', key: '0', numel: 4, size: [2, 2] },
      { name: 'wt', key: '0', numel: 4, size: [2, 2], stride: [1, 2] },
      { name: 'u', key: '1', numel: 3, cls: 'ByteStorage', size: [3] },
    ];
    const bytes = zipArchive([
      { name: 'b/data.pkl', data: pickle(stateDictOps(specs)) },
      { name: 'b/byteorder', data: Uint8Array.from(ascii('big')) },
      { name: 'b/data/0', data: be([1.5, -2, 3.25, 4]) },
      { name: 'b/data/1', data: Uint8Array.from([1, 2, 3]) },
    ]);
    const sd = parseTorchCheckpoint(bytes, 'be.pth') as Map<string, TensorData>;
    expect(valuesOf(sd.get('w')!)).toEqual([1.5, -2, 3.25, 4]);
    expect(valuesOf(sd.get('wt')!)).toEqual([1.5, 3.25, -2, 4]);
    expect(valuesOf(sd.get('u')!)).toEqual([1, 2, 3]);
  });

  it('accepts GPU storages (torch.cuda.*Storage, location cuda:0) and the torch 2.x untyped form', () => {
    const v3 = [
      ...global('torch._utils', '_rebuild_tensor_v3'),
      MARK,
      MARK,
      ...str('storage'),
      ...global('torch', 'UntypedStorage'),
      ...str('1'),
      ...str('cpu'),
      ...int(4),
      TUPLE,
      BINPERSID,
      ...int(0),
      ...ints([2]),
      ...ints([1]),
      NEWFALSE,
      ...orderedDict(),
      ...global('torch', 'float16'),
      TUPLE,
      REDUCE,
    ];
    const specs: TensorSpec[] = [
      { name: 'g', key: '0', numel: 2, module: 'torch.cuda', cls: 'FloatStorage', location: 'cuda:0', size: [2] },
    ];
    const bytes = torchZip('c', pickle(stateDictOps(specs, false, [...str('h'), ...v3])), {
      '0': f32(8, 9),
      '1': Uint8Array.from([0, 0x3c, 0, 0x40]),
    });
    const sd = parseTorchCheckpoint(bytes, 'gpu.pth') as Map<string, TensorData>;
    expect(valuesOf(sd.get('g')!)).toEqual([8, 9]);
    expect(sd.get('h')!.dtype).toBe('F16');
    expect([...sd.get('h')!.bytes]).toEqual([0, 0x3c, 0, 0x40]);
  });

  it('returns nested structures: optimizer state with int keys, a Namespace, plain numbers', async () => {
    const step = { name: '', key: '9', numel: 1, size: [], stride: [] } satisfies TensorSpec;
    const ns = [
      ...global('argparse', 'Namespace'),
      EMPTY_TUPLE,
      0x81,
      EMPTY_DICT,
      MARK,
      ...str('lr'),
      0x47,
      0x3f,
      0x60,
      0x62,
      0x4d,
      0xd2,
      0xf1,
      0xa9,
      0xfc,
      ...str('name'),
      ...str('run'),
      SETITEMS,
      0x62,
    ];
    const main = pickle(
      EMPTY_DICT,
      MARK,
      ...str('g_ema'),
      ...stateDictOps(TWO_TENSORS),
      ...str('g_optim'),
      EMPTY_DICT,
      MARK,
      ...str('state'),
      EMPTY_DICT,
      ...int(3),
      EMPTY_DICT,
      ...str('step'),
      ...tensorOps(step, false),
      SETITEM,
      SETITEM,
      ...str('param_groups'),
      EMPTY_LIST,
      MARK,
      EMPTY_DICT,
      ...str('params'),
      ...ints([0, 1]),
      SETITEM,
      APPENDS,
      SETITEMS,
      ...str('args'),
      ...ns,
      ...str('ada_aug_p'),
      0x47,
      0,
      0,
      0,
      0,
      0,
      0,
      0,
      0,
      SETITEMS,
    );
    const file = await writeFile('000100.pt', torchZip('000100', main, { ...TWO_STORAGES, '9': f32(100) }));
    const ck = (await readTorchCheckpoint(file)) as Map<string, unknown>;
    expect([...ck.keys()]).toEqual(['g_ema', 'g_optim', 'args', 'ada_aug_p']);
    const state = (ck.get('g_optim') as Map<string, Map<number, Map<string, TensorData>>>).get('state')!;
    expect(valuesOf(state.get(3)!.get('step')!)).toEqual([100]);
    expect(ck.get('args')).toEqual({ lr: 0.002, name: 'run' });
    expect(ck.get('ada_aug_p')).toBe(0);

    const g = await readTorchStateDict(file, { key: 'g_ema' });
    expect([...g.keys()]).toEqual(['conv.weight', 'conv.bias']);
    expect(await formatError(readTorchStateDict(file, { key: 'g' }))).toBe(
      `${file}: no key "g" in the checkpoint (top-level keys: g_ema, g_optim, args, ada_aug_p)`,
    );
    expect(await formatError(readTorchStateDict(file, { key: 'args' }))).toBe(
      `${file}: "args" is not a state dict of tensors (state dicts in this checkpoint: g_ema)`,
    );
    expect(await formatError(readTorchStateDict(file))).toBe(
      `${file}: is not a plain state dict (top-level keys: g_ema, g_optim, args, ada_aug_p; state dicts among them: g_ema); choose one with a key`,
    );
  });

  it('strips a DataParallel prefix only when asked, and refuses a stripped name that collides', async () => {
    const specs = TWO_TENSORS.map((t) => ({ ...t, name: `module.${t.name}` }));
    const file = await writeFile('dp.pth', torchZip('dp', pickle(stateDictOps(specs)), TWO_STORAGES));
    expect([...(await readTorchStateDict(file)).keys()]).toEqual(['module.conv.weight', 'module.conv.bias']);
    expect([...(await readTorchStateDict(file, { stripPrefix: 'module.' })).keys()]).toEqual(['conv.weight', 'conv.bias']);
    const clash = await writeFile(
      'clash.pth',
      torchZip('c', pickle(stateDictOps([specs[0]!, { ...TWO_TENSORS[0]!, key: '1', numel: 2, size: [2] }])), TWO_STORAGES),
    );
    expect(await formatError(readTorchStateDict(clash, { stripPrefix: 'module.' }))).toBe(
      `${clash}: stripping "module." from tensor names makes two tensors named "conv.weight"`,
    );
  });

  it('sniffs zip and legacy checkpoints from their first bytes', () => {
    const zip = torchZip('a', pickle(stateDictOps(TWO_TENSORS)), TWO_STORAGES);
    expect(torchCheckpointKind(zip.subarray(0, 16))).toBe('zip');
    expect(torchCheckpointKind(MAGIC_PICKLE)).toBe('legacy');
    expect(isTorchCheckpoint(cat(MAGIC_PICKLE, 0x80))).toBe(true);
    expect(isTorchCheckpoint(pickle(EMPTY_DICT))).toBe(false);
    expect(isTorchCheckpoint(Uint8Array.from(ascii('\x89PNG\r\n')))).toBe(false);
    expect(isTorchCheckpoint(new Uint8Array(0))).toBe(false);
  });
});

describe('legacy checkpoints', () => {
  it('reads storages in key-list order (not pickle order), with shared storages and pre-1.0 storage views', () => {
    const view = [
      MARK,
      ...str('storage'),
      ...global('torch', 'FloatStorage'),
      ...str('100'),
      ...str('cpu'),
      ...int(6),
      ...str('101'),
      ...int(2),
      ...int(3),
      TUPLE3,
      TUPLE,
      BINPERSID,
    ];
    const viaView = [
      ...global('torch._utils', '_rebuild_tensor_v2'),
      MARK,
      ...view,
      ...int(1),
      ...ints([2]),
      ...ints([1]),
      NEWFALSE,
      ...orderedDict(),
      TUPLE,
      REDUCE,
    ];
    const specs: TensorSpec[] = [
      { name: 'a', key: '200', numel: 2, cls: 'LongStorage', size: [2] },
      { name: 'b', key: '100', numel: 6, size: [3, 2], stride: [1, 3] },
    ];
    const main = pickle(stateDictOps(specs, true, [...str('c'), ...viaView]));
    const bytes = Buffer.from(
      legacyFile(main, [
        ['100', 6, f32(0, 1, 2, 3, 4, 5)],
        ['200', 2, new Uint8Array(BigInt64Array.from([-4n, 2n ** 40n]).buffer)],
      ]),
    );
    const sd = parseTorchCheckpoint(bytes, 'old.pth') as Map<string, TensorData>;
    expect([...sd.keys()]).toEqual(['a', 'b', 'c']);
    expect(valuesOf(sd.get('a')!)).toEqual([-4, 2 ** 40]);
    expect(sd.get('a')!.bytes.buffer).toBe(bytes.buffer);
    expect(valuesOf(sd.get('b')!)).toEqual([0, 3, 1, 4, 2, 5]);
    // view = storage[2:5]; the tensor starts at offset 1 of the view → elements 3, 4.
    expect(valuesOf(sd.get('c')!)).toEqual([3, 4]);
  });

  it('reports legacy-specific corruption', async () => {
    const specs: TensorSpec[] = [{ name: 'w', key: '7', numel: 2, size: [2] }];
    const main = pickle(stateDictOps(specs, true));
    const good = legacyFile(main, [['7', 2, f32(1, 2)]]);
    const headerOnly = cat(MAGIC_PICKLE, pickle(int(1001)), sysInfo());
    expect(valuesOf((parseTorchCheckpoint(good, 'ok.pth') as Map<string, TensorData>).get('w')!)).toEqual([1, 2]);
    const cases: [Uint8Array, string][] = [
      [
        good.subarray(0, good.byteLength - 3),
        `truncated legacy checkpoint (storage "7" needs bytes ${good.byteLength - 8}..${good.byteLength} of a ${good.byteLength - 3}-byte file)`,
      ],
      [legacyFile(main, [['7', 3, f32(1, 2, 3)]]), 'storage "7" records 3 elements where its persistent id says 2'],
      [
        legacyFile(main, [
          ['7', 2, f32(1, 2)],
          ['8', 1, f32(3)],
        ]),
        'storage key "8" is listed but no tensor uses it',
      ],
      [legacyFile(main, []), 'storage "7" is missing from the legacy checkpoint\'s data section'],
      [legacyFile(main, [['7', 2, f32(1, 2)]], { protocol: 1000 }), 'unsupported legacy checkpoint protocol 1000 (expected 1001)'],
      [
        legacyFile(main, [['7', 2, f32(1, 2)]], { littleEndian: false }),
        'legacy checkpoint was written on a big-endian machine, which is not supported',
      ],
      [
        legacyFile(pickle(stateDictOps(specs, false)), [['7', 2, f32(1, 2)]]),
        'persistent id ("storage", torch.FloatStorage, "7", "cpu", 2) is not a storage tuple (\'storage\', torch.<Type>Storage, key, location, numel, view_metadata)',
      ],
      [headerOnly, `truncated pickle: main pickle ends at offset ${headerOnly.byteLength} without a STOP opcode`],
    ];
    for (const [bytes, message] of cases) {
      const file = await writeFile('bad.pth', bytes);
      expect(await formatError(readTorchCheckpoint(file))).toBe(`${file}: ${message}`);
    }
  });
});

describe('malformed files', () => {
  const zipWith = (storages: Record<string, Uint8Array>, specs = TWO_TENSORS) => torchZip('m', pickle(stateDictOps(specs)), storages);
  const good = (): Uint8Array => zipWith(TWO_STORAGES);
  const centralOffset = (zip: Uint8Array): number => Buffer.from(zip).indexOf(Buffer.from([0x50, 0x4b, 1, 2]));

  const MIB64 = 64 * 1024 * 1024;
  it.each<[string, () => Uint8Array, string | ((bytes: Uint8Array) => string)]>([
    ['a zero-byte file', () => new Uint8Array(0), 'empty file (0 bytes), not a PyTorch checkpoint'],
    [
      'text',
      () => Uint8Array.from(ascii('hello, world\n')),
      'not a PyTorch checkpoint (neither a zip archive nor a legacy torch.save pickle)',
    ],
    [
      'a bare pickle without the magic number',
      () => pickle(EMPTY_DICT),
      'not a PyTorch checkpoint (neither a zip archive nor a legacy torch.save pickle)',
    ],
    ['a truncated zip', () => good().subarray(0, 700), 'truncated zip archive (end-of-central-directory record not found)'],
    [
      'a zip without data.pkl',
      () => zipArchive([{ name: 'm/version', data: Uint8Array.from([51]) }]),
      'zip archive has no data.pkl member, so it is not a torch.save checkpoint',
    ],
    [
      'a zip with two data.pkl',
      () =>
        zipArchive([
          { name: 'a/data.pkl', data: pickle(EMPTY_DICT) },
          { name: 'b/data.pkl', data: pickle(EMPTY_DICT) },
        ]),
      'zip archive has 2 data.pkl members (a/data.pkl, b/data.pkl); expected one',
    ],
    ['a missing storage member', () => zipWith({ '0': TWO_STORAGES['0'] }), 'storage "1" is missing from the archive (no member m/data/1)'],
    [
      'a storage member shorter than its numel',
      () => zipWith({ '0': f32(1, 2, 3), '1': TWO_STORAGES['1'] }),
      'storage "0" (m/data/0) holds 12 bytes, less than its 6 × torch.FloatStorage elements (24 bytes)',
    ],
    [
      'a tensor extending past its storage',
      () => zipWith(TWO_STORAGES, [{ name: 'w', key: '0', numel: 6, size: [2, 3], offset: 1 }]),
      'storage "0" holds 24 bytes, too short for a F32 tensor of shape [2, 3] (stride [3, 1], offset 1) that needs 28',
    ],
    [
      'a strided tensor reaching past its storage',
      () => zipWith(TWO_STORAGES, [{ name: 'w', key: '0', numel: 6, size: [3, 2], stride: [1, 3], offset: 2 }]),
      'storage "0" holds 24 bytes, too short for a F32 tensor of shape [3, 2] (stride [1, 3], offset 2) that needs 32',
    ],
    [
      'an unsupported storage type',
      () => zipWith(TWO_STORAGES, [{ name: 'w', key: '0', numel: 3, cls: 'ComplexFloatStorage', size: [3] }]),
      'unsupported storage type "torch.ComplexFloatStorage"',
    ],
    [
      'a storage named with two types',
      () =>
        zipWith(TWO_STORAGES, [
          { name: 'w', key: '0', numel: 6, size: [6] },
          { name: 'v', key: '0', numel: 6, cls: 'IntStorage', size: [6] },
        ]),
      'storage "0" is named twice with different types or sizes (torch.FloatStorage × 6, torch.IntStorage × 6)',
    ],
    [
      'a member whose data was altered',
      () => {
        const z = good();
        const at = Buffer.from(z).indexOf(Buffer.from(f32(-1, -2)));
        z[at] = z[at]! ^ 1;
        return z;
      },
      'corrupt zip archive (member "m/data/1" fails its CRC-32 check)',
    ],
    [
      'a member running past the end of the file',
      () => {
        const z = good();
        const view = new DataView(z.buffer);
        const cd = centralOffset(z); // first central entry: m/data.pkl
        view.setUint32(cd + 20, 1e6, true);
        view.setUint32(cd + 24, 1e6, true);
        return z;
      },
      (z) => `truncated zip archive (member "m/data.pkl" ends at byte ${1e6 + 64} of a ${z.byteLength}-byte file)`,
    ],
    [
      'an encrypted member',
      () => zipArchive([{ name: 'm/data.pkl', data: pickle(EMPTY_DICT), flags: 1 }]),
      'zip member "m/data.pkl" is encrypted',
    ],
    [
      'an unknown compression method',
      () => zipArchive([{ name: 'm/data.pkl', data: pickle(EMPTY_DICT), method: 12 }]),
      'zip member "m/data.pkl" uses unsupported compression method 12',
    ],
    [
      'an invalid byteorder',
      () =>
        zipArchive([
          { name: 'm/data.pkl', data: pickle(EMPTY_DICT) },
          { name: 'm/byteorder', data: Uint8Array.from(ascii('middle')) },
        ]),
      'm/byteorder says "middle", not "little" or "big"',
    ],
    [
      'a zero-stride tensor that would expand a tiny file into gigabytes',
      () => zipWith(TWO_STORAGES, [{ name: 'w', key: '1', numel: 2, size: [1 << 20, 1 << 10], stride: [0, 0] }]),
      (z) => `tensor copies (non-contiguous or byte-swapped tensors) would exceed ${z.byteLength + MIB64} bytes`,
    ],
  ])('%s', async (_what, build, message) => {
    const bytes = build();
    const file = await writeFile('bad.pth', bytes);
    expect(await formatError(readTorchCheckpoint(file))).toBe(`${file}: ${typeof message === 'string' ? message : message(bytes)}`);
  });

  it('a file that cannot be read is an InputError; one over maxBytes is refused before it is read', async () => {
    const missing = path.join(dir, 'nope.pth');
    const err = await readTorchCheckpoint(missing).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InputError);
    expect((err as Error).message).toBe(`${missing}: cannot read PyTorch checkpoint (ENOENT)`);
    const file = await writeFile('big.pth', good());
    expect(await formatError(readTorchCheckpoint(file, { maxBytes: 100 }))).toBe(
      `${file}: ${good().byteLength} bytes, more than the limit of 100`,
    );
  });
});

describe('hostile checkpoints', () => {
  let marker: string;
  beforeEach(() => {
    marker = path.join(dir, 'pwned');
  });
  guardAgainstSideEffects(() => marker);
  const call = (module: string, name: string): number[] => [...global(module, name), ...str(`touch ${marker}`), TUPLE1, REDUCE];
  const refused = (file: string, name: string) => `${file}: refusing to load global "${name}" (not a tensor or container type)`;

  it.each([
    ['os', 'system'],
    ['posix', 'system'],
    ['subprocess', 'Popen'],
    ['builtins', 'eval'],
  ])('zip: %s.%s as a value inside an otherwise valid state dict', async (module, name) => {
    const file = await writeFile(
      'evil.pth',
      torchZip('evil', pickle(stateDictOps(TWO_TENSORS, false, [...str('x'), ...call(module, name)])), TWO_STORAGES),
    );
    expect(await formatError(readTorchCheckpoint(file))).toBe(refused(file, `${module}.${name}`));
    expect(await formatError(readTorchStateDict(file))).toBe(refused(file, `${module}.${name}`));
  });

  it('zip: STACK_GLOBAL in a protocol-4 data.pkl', async () => {
    const short = (s: string): number[] => [0x8c, s.length, ...ascii(s)];
    const dataPkl = cat(
      [0x80, 4],
      EMPTY_DICT,
      short('w'),
      short('os'),
      short('system'),
      0x93,
      short(`touch ${marker}`),
      TUPLE1,
      REDUCE,
      SETITEM,
      STOP,
    );
    const file = await writeFile('evil4.pth', torchZip('e', dataPkl, {}));
    expect(await formatError(readTorchCheckpoint(file))).toBe(refused(file, 'os.system'));
  });

  it('zip: a tensor whose storage argument is not a storage', async () => {
    const fake = [
      ...global('torch._utils', '_rebuild_tensor_v2'),
      MARK,
      ...str('not a storage'),
      ...int(0),
      ...ints([1]),
      ...ints([1]),
      NEWFALSE,
      ...orderedDict(),
      TUPLE,
      REDUCE,
    ];
    const file = await writeFile('fake.pth', torchZip('e', pickle(stateDictOps([], false, [...str('w'), ...fake])), {}));
    expect(await formatError(readTorchCheckpoint(file))).toBe(
      `${file}: tensor storage "not a storage" is not a storage from a persistent id`,
    );
  });

  it.each<[string, number[], string]>([
    [
      'a module source id',
      [MARK, ...str('module'), ...global('collections', 'OrderedDict'), ...str('x.py'), ...str('import os'), TUPLE],
      '("module", collections.OrderedDict, "x.py", "import os")',
    ],
    [
      'a storage type given as a string',
      [MARK, ...str('storage'), ...str('FloatStorage'), ...str('0'), ...str('cpu'), ...int(1), TUPLE],
      '("storage", "FloatStorage", "0", "cpu", 1)',
    ],
    ['a bare string', [...str(`touch ${'/tmp/x'}`)], '"touch /tmp/x"'],
  ])('zip: a persistent id that is not a storage tuple (%s)', async (_what, pid, shown) => {
    const file = await writeFile('pid.pth', torchZip('e', pickle(EMPTY_DICT, ...str('w'), ...pid, BINPERSID, SETITEM), {}));
    expect(await formatError(readTorchCheckpoint(file))).toBe(
      `${file}: persistent id ${shown} is not a storage tuple ('storage', torch.<Type>Storage, key, location, numel)`,
    );
  });

  it('legacy: posix.system in the main pickle, and builtins.eval in place of the magic number', async () => {
    const main = pickle(stateDictOps([{ name: 'w', key: '7', numel: 2, size: [2] }], true, [...str('x'), ...call('posix', 'system')]));
    const file = await writeFile('evil-legacy.pth', legacyFile(main, [['7', 2, f32(1, 2)]]));
    expect(await formatError(readTorchCheckpoint(file))).toBe(refused(file, 'posix.system'));
    const magic = await writeFile('evil-magic.pth', cat(pickle(call('builtins', 'eval')), pickle(int(1001))));
    expect(await formatError(readTorchCheckpoint(magic))).toBe(
      `${magic}: not a PyTorch checkpoint (neither a zip archive nor a legacy torch.save pickle)`,
    );
  });

  it('legacy: a persistent id in the zip form (no view metadata)', async () => {
    const file = await writeFile(
      'pid-legacy.pth',
      legacyFile(
        pickle(
          EMPTY_DICT,
          ...str('w'),
          MARK,
          ...str('storage'),
          ...global('torch', 'FloatStorage'),
          ...str('7'),
          ...str('cpu'),
          ...int(2),
          TUPLE,
          BINPERSID,
          SETITEM,
        ),
        [],
      ),
    );
    expect(await formatError(readTorchCheckpoint(file))).toBe(
      `${file}: persistent id ("storage", torch.FloatStorage, "7", "cpu", 2) is not a storage tuple ('storage', torch.<Type>Storage, key, location, numel, view_metadata)`,
    );
  });
});
