import { mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { guardAgainstSideEffects } from '@scenimefy/test-utils';

import { ModelFormatError } from './errors';
import { ALLOWED_PICKLE_GLOBALS, TorchStorageType, unpickle } from './torch-pickle';
import type { TensorRebuildRequest, UnpickleOptions } from './torch-pickle';

// ---- pickle bytes, written opcode by opcode ----
type Part = number | readonly number[] | Uint8Array;
const bytesOf = (...parts: Part[]): Uint8Array => {
  const out: number[] = [];
  for (const p of parts) {
    if (typeof p === 'number') out.push(p);
    else out.push(...p);
  }
  return Uint8Array.from(out);
};
const ascii = (s: string): number[] => [...Buffer.from(s, 'latin1')];
const u32 = (n: number): number[] => [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff];
const OP = {
  PROTO2: [0x80, 2],
  MARK: 0x28,
  STOP: 0x2e,
  POP: 0x30,
  POP_MARK: 0x31,
  DUP: 0x32,
  NONE: 0x4e,
  NEWTRUE: 0x88,
  NEWFALSE: 0x89,
  EMPTY_TUPLE: 0x29,
  TUPLE: 0x74,
  TUPLE1: 0x85,
  TUPLE2: 0x86,
  TUPLE3: 0x87,
  EMPTY_LIST: 0x5d,
  APPEND: 0x61,
  APPENDS: 0x65,
  LIST: 0x6c,
  EMPTY_DICT: 0x7d,
  DICT: 0x64,
  SETITEM: 0x73,
  SETITEMS: 0x75,
  REDUCE: 0x52,
  BUILD: 0x62,
  NEWOBJ: 0x81,
  STACK_GLOBAL: 0x93,
  MEMOIZE: 0x94,
  EMPTY_SET: 0x8f,
  ADDITEMS: 0x90,
  FROZENSET: 0x91,
  BINPERSID: 0x51,
};
const global = (module: string, name: string): number[] => [0x63, ...ascii(`${module}\n${name}\n`)];
const str = (s: string): number[] => {
  const b = [...Buffer.from(s, 'utf8')];
  return [0x58, ...u32(b.length), ...b];
};
const shortStr = (s: string): number[] => {
  const b = [...Buffer.from(s, 'utf8')];
  return [0x8c, b.length, ...b];
};
const int1 = (n: number): number[] => [0x4b, n];
const int4 = (n: number): number[] => [0x4a, ...u32(n >>> 0)];
const binput = (i: number): number[] => [0x71, i];
const binget = (i: number): number[] => [0x68, i];
const hex = (h: string): Uint8Array => Uint8Array.from(Buffer.from(h, 'hex'));

const FILE = 'evil.pth';
const load = (bytes: Uint8Array, extra: Partial<UnpickleOptions> = {}): unknown =>
  unpickle(bytes, { file: FILE, where: 'data.pkl', ...extra }).value;
const errorOf = (fn: () => unknown): Error => {
  try {
    fn();
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected an error');
};
const expectFormatError = (fn: () => unknown, message: string): void => {
  const err = errorOf(fn);
  expect(err).toBeInstanceOf(ModelFormatError);
  expect(err.message).toBe(message);
};

describe('unpickle: values as Python writes them', () => {
  // pickle.dumps(obj, protocol=p) of one dict, from CPython 3: {'a': [1, -2, 2.5, 'xé中', b'\x00\xff', None, True,
  // False], 'n': 2**70, 'neg': -2**63, 'k': 300, 'big': 70000, (1, 2): (3,), 'od': OrderedDict(w=1.0), 's': {7},
  // 'fs': frozenset(), 'e': b''}
  const PYTHON_PICKLES: Record<number, string> = {
    0: '286470300a56610a70310a286c70320a49310a61492d320a6146322e350a615678e95c75346532640a70330a61635f636f646563730a656e636f64650a70340a28565c7530303030ff0a70350a566c6174696e310a70360a7470370a5270380a614e614930310a614930300a6173566e0a70390a4c313138303539313632303731373431313330333432344c0a73566e65670a7031300a4c2d393232333337323033363835343737353830384c0a73566b0a7031310a493330300a73566269670a7031320a4937303030300a732849310a49320a747031330a2849330a747031340a73566f640a7031350a63636f6c6c656374696f6e730a4f726465726564446963740a7031360a2874527031370a56770a7031380a46312e300a737356730a7031390a635f5f6275696c74696e5f5f0a7365740a7032300a28286c7032310a49370a61747032320a527032330a735666730a7032340a635f5f6275696c74696e5f5f0a66726f7a656e7365740a7032350a28286c7032360a747032370a527032380a7356650a7032390a635f5f6275696c74696e5f5f0a62797465730a7033300a2874527033310a732e',
    2: '80027d71002858010000006171015d7102284b014afeffffff474004000000000000580600000078c3a9e4b8ad7103635f636f646563730a656e636f64650a7104580300000000c3bf710558060000006c6174696e3171068671075271084e88896558010000006e71098a0900000000000000004058030000006e6567710a8a08000000000000008058010000006b710b4d2c015803000000626967710c4a701101004b014b0286710d4b0385710e58020000006f64710f63636f6c6c656374696f6e730a4f726465726564446963740a7110295271115801000000777112473ff0000000000000735801000000737113635f5f6275696c74696e5f5f0a7365740a71145d71154b0761857116527117580200000066737118635f5f6275696c74696e5f5f0a66726f7a656e7365740a71195d711a85711b52711c580100000065711d635f5f6275696c74696e5f5f0a62797465730a711e2952711f752e',
    4: '800495b6000000000000007d94288c0161945d94284b014afeffffff4740040000000000008c0678c3a9e4b8ad94430200ff944e8889658c016e948a090000000000000000408c036e6567948a0800000000000000808c016b944d2c018c03626967944a701101004b014b0286944b0385948c026f64948c0b636f6c6c656374696f6e73948c0b4f726465726564446963749493942952948c017794473ff0000000000000738c0173948f94284b07908c026673942891948c016594430094752e',
    5: '800595b6000000000000007d94288c0161945d94284b014afeffffff4740040000000000008c0678c3a9e4b8ad94430200ff944e8889658c016e948a090000000000000000408c036e6567948a0800000000000000808c016b944d2c018c03626967944a701101004b014b0286944b0385948c026f64948c0b636f6c6c656374696f6e73948c0b4f726465726564446963749493942952948c017794473ff0000000000000738c0173948f94284b07908c026673942891948c016594430094752e',
  };

  it.each([0, 2, 4, 5])('decodes a CPython protocol-%i pickle', (protocol) => {
    const bytes = hex(PYTHON_PICKLES[protocol]!);
    const { value, end } = unpickle(bytes, { file: FILE, where: 'data.pkl' });
    expect(end).toBe(bytes.byteLength);
    const d = value as Map<unknown, unknown>;
    expect(d).toBeInstanceOf(Map);
    const a = d.get('a') as unknown[];
    expect(a.slice(0, 4)).toEqual([1, -2, 2.5, 'x\u00e9\u4e2d']);
    expect([...(a[4] as Uint8Array)]).toEqual([0, 255]);
    expect(a.slice(5)).toEqual([null, true, false]);
    expect(Object.isFrozen(a)).toBe(false);
    expect(d.get('n')).toBe(2n ** 70n);
    expect(d.get('neg')).toBe(-(2n ** 63n));
    expect(d.get('k')).toBe(300);
    expect(d.get('big')).toBe(70000);
    const tupleKey = [...d.keys()].find((k) => Array.isArray(k)) as unknown[];
    expect(tupleKey).toEqual([1, 2]);
    expect(Object.isFrozen(tupleKey)).toBe(true);
    expect(d.get(tupleKey)).toEqual([3]);
    expect(d.get('od')).toEqual(new Map([['w', 1]]));
    expect(d.get('s')).toEqual(new Set([7]));
    expect(d.get('fs')).toEqual(new Set());
    expect((d.get('e') as Uint8Array).byteLength).toBe(0);
    expect([...d.keys()]).toEqual(['a', 'n', 'neg', 'k', 'big', tupleKey, 'od', 's', 'fs', 'e']);
  });

  it('keeps ints as numbers up to 2^53 - 1 and as bigints beyond', () => {
    const long1 = (le: number[]): number[] => [0x8a, le.length, ...le];
    const v = load(
      bytesOf(
        OP.PROTO2,
        OP.MARK,
        long1([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x1f]), // 2^53 - 1
        long1([0, 0, 0, 0, 0, 0, 0x20]), // 2^53
        long1([0x01, 0, 0, 0, 0, 0, 0xe0, 0xff]), // -(2^53 - 1)
        long1([]), // 0
        [0x8b, ...u32(2), 0x00, 0x80], // LONG4 -32768
        int4(-5),
        int1(255),
        [0x4d, 0x34, 0x12], // BININT, BININT1, BININT2
        ascii('I-42\n'),
        ascii('L99999999999999999999L\n'),
        ascii('I01\n'),
        ascii('I00\n'),
        OP.LIST,
        OP.STOP,
      ),
    );
    expect(v).toEqual([2 ** 53 - 1, 2n ** 53n, -(2 ** 53 - 1), 0, -32768, -5, 255, 0x1234, -42, 99999999999999999999n, true, false]);
  });

  it('reads floats in binary and text form, including inf and nan', () => {
    const v = load(
      bytesOf(
        OP.PROTO2,
        OP.MARK,
        [0x47, 0xbf, 0xf8, 0, 0, 0, 0, 0, 0],
        ascii('F1e-3\n'),
        ascii('Finf\n'),
        ascii('F-inf\n'),
        ascii('Fnan\n'),
        OP.LIST,
        OP.STOP,
      ),
    ) as number[];
    expect(v.slice(0, 4)).toEqual([-1.5, 1e-3, Infinity, -Infinity]);
    expect(Number.isNaN(v[4])).toBe(true);
  });

  it('reads every string and bytes opcode', () => {
    const utf = [...Buffer.from('é', 'utf8')];
    const v = load(
      bytesOf(
        OP.PROTO2,
        OP.MARK,
        shortStr('short'),
        [0x8d, 2, 0, 0, 0, 0, 0, 0, 0, ...utf], // BINUNICODE8
        ascii('V\\u00e9t\xe9\\U0001F600\n'), // UNICODE: raw-unicode-escape, latin-1 bytes
        [0x54, ...u32(3), ...ascii('abc')], // BINSTRING
        [0x55, 2, ...utf], // SHORT_BINSTRING (torch.load decodes with utf-8)
        [0x43, 2, 1, 2],
        [0x42, ...u32(1), 3],
        [0x8e, 1, 0, 0, 0, 0, 0, 0, 0, 4],
        [0x96, 1, 0, 0, 0, 0, 0, 0, 0, 5],
        global('_codecs', 'encode'),
        str('\u0000\u00ff'),
        str('latin1'),
        OP.TUPLE2,
        OP.REDUCE,
        global('__builtin__', 'bytes'),
        OP.EMPTY_TUPLE,
        OP.REDUCE,
        OP.LIST,
        OP.STOP,
      ),
    ) as unknown[];
    expect(v.slice(0, 5)).toEqual(['short', 'é', 'été\u{1F600}', 'abc', 'é']);
    expect(v.slice(5).map((b) => [...(b as Uint8Array)])).toEqual([[1, 2], [3], [4], [5], [0, 255], []]);
  });

  it('builds containers with MARK, memo, DUP, POP and POP_MARK', () => {
    const v = load(
      bytesOf(
        OP.PROTO2,
        OP.EMPTY_DICT,
        binput(0),
        OP.MARK,
        int1(1),
        OP.EMPTY_LIST,
        binput(1),
        int1(7),
        OP.APPEND,
        OP.MARK,
        int1(8),
        int1(9),
        OP.APPENDS,
        int1(2),
        binget(1), // the same list object again
        int1(3),
        OP.MARK,
        OP.NONE,
        OP.TUPLE, // (None,)
        int1(4),
        OP.NONE,
        OP.NEWTRUE,
        OP.NEWFALSE,
        OP.TUPLE3,
        int1(5),
        OP.MARK,
        str('k'),
        int1(0),
        OP.DICT,
        OP.SETITEMS,
        int1(6),
        OP.EMPTY_TUPLE,
        OP.DUP,
        OP.TUPLE2,
        OP.SETITEM,
        int1(7),
        OP.EMPTY_SET,
        OP.MARK,
        int1(1),
        int1(1),
        int1(2),
        OP.ADDITEMS,
        OP.SETITEM,
        int1(8),
        OP.MARK,
        int1(3),
        OP.FROZENSET,
        OP.SETITEM,
        int1(99),
        OP.POP,
        OP.MARK,
        int1(1),
        int1(2),
        OP.POP_MARK,
        [0x72, ...u32(70000)],
        [0x6a, ...u32(70000)],
        OP.POP, // LONG_BINPUT / LONG_BINGET
        ascii('p5\n'),
        ascii('g5\n'),
        OP.POP,
        OP.MEMOIZE, // PUT / GET text form, MEMOIZE
        OP.STOP,
      ),
    ) as Map<number, unknown>;
    expect([...v.keys()]).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(v.get(1)).toEqual([7, 8, 9]);
    expect(v.get(2)).toBe(v.get(1));
    expect(v.get(3)).toEqual([null]);
    expect(v.get(4)).toEqual([null, true, false]);
    expect(Object.isFrozen(v.get(4))).toBe(true);
    expect(v.get(5)).toEqual(new Map([['k', 0]]));
    expect(v.get(6)).toEqual([[], []]);
    expect(v.get(7)).toEqual(new Set([1, 2]));
    expect(v.get(8)).toEqual(new Set([3]));
  });

  it('turns argparse.Namespace into a plain object; a "__proto__" attribute stays an own property', () => {
    const v = load(
      bytesOf(
        OP.PROTO2,
        global('argparse', 'Namespace'),
        OP.EMPTY_TUPLE,
        OP.NEWOBJ,
        OP.EMPTY_DICT,
        OP.MARK,
        str('lr'),
        [0x47, 0x3f, 0x60, 0x62, 0x4d, 0xd2, 0xf1, 0xa9, 0xfc],
        str('__proto__'),
        OP.EMPTY_DICT,
        str('polluted'),
        OP.NEWTRUE,
        OP.SETITEM,
        OP.SETITEMS,
        OP.BUILD,
        OP.STOP,
      ),
    ) as Record<string, unknown>;
    expect(Object.keys(v)).toEqual(['lr', '__proto__']);
    expect(v.lr).toBe(0.002);
    expect(Object.getPrototypeOf(v)).toBe(Object.prototype);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.getOwnPropertyDescriptor(v, '__proto__')?.value).toEqual(new Map([['polluted', true]]));
  });

  it('OrderedDict accepts () or a list of pairs, and ignores BUILD state such as _metadata', () => {
    const v = load(
      bytesOf(
        OP.PROTO2,
        global('collections', 'OrderedDict'),
        binput(0),
        OP.MARK,
        OP.MARK,
        str('b'),
        int1(2),
        OP.LIST,
        OP.MARK,
        str('a'),
        int1(1),
        OP.LIST,
        OP.LIST,
        OP.TUPLE1,
        OP.REDUCE,
        OP.EMPTY_DICT,
        str('_metadata'),
        OP.EMPTY_DICT,
        OP.SETITEM,
        OP.BUILD,
        OP.STOP,
      ),
    );
    expect(v).toEqual(
      new Map([
        ['b', 2],
        ['a', 1],
      ]),
    );
    expect([...(v as Map<string, number>).keys()]).toEqual(['b', 'a']);
  });

  it('passes storages and tensors to the container callbacks, and _rebuild_parameter returns the tensor', () => {
    const requests: TensorRebuildRequest[] = [];
    const pids: unknown[] = [];
    const v = load(
      bytesOf(
        OP.PROTO2,
        global('torch._utils', '_rebuild_parameter'),
        global('torch._utils', '_rebuild_tensor_v2'),
        OP.MARK,
        OP.MARK,
        str('storage'),
        global('torch', 'HalfStorage'),
        str('0'),
        str('cpu'),
        int1(6),
        OP.TUPLE,
        OP.BINPERSID,
        int1(2),
        int1(2),
        int1(3),
        OP.TUPLE2,
        int1(1),
        int1(2),
        OP.TUPLE2,
        OP.NEWFALSE,
        global('collections', 'OrderedDict'),
        OP.EMPTY_TUPLE,
        OP.REDUCE,
        OP.TUPLE,
        OP.REDUCE,
        OP.NEWTRUE,
        OP.EMPTY_DICT,
        OP.TUPLE3,
        OP.REDUCE,
        OP.STOP,
      ),
      {
        persistentLoad: (pid) => {
          pids.push(pid);
          return { storage: true };
        },
        rebuildTensor: (request) => {
          requests.push(request);
          return { tensor: requests.length };
        },
      },
    );
    expect(v).toEqual({ tensor: 1 });
    expect(pids).toHaveLength(1);
    const pid = pids[0] as unknown[];
    expect(pid[0]).toBe('storage');
    expect(pid[1]).toBeInstanceOf(TorchStorageType);
    expect((pid[1] as TorchStorageType).dtype).toBe('F16');
    expect(pid.slice(2)).toEqual(['0', 'cpu', 6]);
    expect(requests).toEqual([{ storage: { storage: true }, storageOffset: 2, size: [2, 3], stride: [1, 2] }]);
  });

  it('maps _rebuild_tensor_v3 over an UntypedStorage to the dtype argument', () => {
    const requests: TensorRebuildRequest[] = [];
    load(
      bytesOf(
        OP.PROTO2,
        global('torch._utils', '_rebuild_tensor_v3'),
        OP.MARK,
        OP.MARK,
        str('storage'),
        global('torch.storage', 'UntypedStorage'),
        str('0'),
        str('cpu'),
        int1(8),
        OP.TUPLE,
        OP.BINPERSID,
        int1(0),
        int1(4),
        OP.TUPLE1,
        int1(1),
        OP.TUPLE1,
        OP.NEWFALSE,
        OP.EMPTY_DICT,
        global('torch', 'bfloat16'),
        OP.TUPLE,
        OP.REDUCE,
        OP.STOP,
      ),
      { persistentLoad: () => ({}), rebuildTensor: (r) => (requests.push(r), {}) },
    );
    expect(requests[0]?.dtype).toBe('BF16');
  });

  it('allows only tensor, storage, dtype and container globals', () => {
    expect(
      [...ALLOWED_PICKLE_GLOBALS]
        .filter((g) => !/^torch(\.cuda)?\.\w+Storage$|^torch\.storage\.UntypedStorage$|^torch\.[a-z0-9_]+$/.test(g))
        .sort(),
    ).toEqual([
      '__builtin__.bytes',
      '__builtin__.frozenset',
      '__builtin__.set',
      '_codecs.encode',
      'argparse.Namespace',
      'builtins.bytes',
      'builtins.frozenset',
      'builtins.set',
      'collections.OrderedDict',
      'torch._utils._rebuild_parameter',
      'torch._utils._rebuild_tensor_v2',
      'torch._utils._rebuild_tensor_v3',
    ]);
  });
});

describe('unpickle: hostile pickles are refused before anything runs', () => {
  let dir: string;
  let marker: string;
  // The folder outlives each test so the guard's after-test check sees any marker a payload created.
  beforeAll(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'scenimefy-pickle-'));
    marker = path.join(dir, 'pwned');
  });
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });
  guardAgainstSideEffects(() => marker);

  const refused = (name: string) => `${FILE}: refusing to load global "${name}" (not a tensor or container type)`;
  const callWith = (callee: number[], arg: string): Uint8Array => bytesOf(OP.PROTO2, callee, str(arg), OP.TUPLE1, OP.REDUCE, OP.STOP);

  it.each([
    ['os', 'system'],
    ['posix', 'system'],
    ['nt', 'system'],
    ['subprocess', 'Popen'],
    ['builtins', 'eval'],
    ['builtins', 'exec'],
    ['__builtin__', 'eval'],
    ['builtins', 'getattr'],
    ['torch', 'load'],
    ['collections', 'OrderedDict.__init__'],
  ])('GLOBAL %s.%s + REDUCE', (module, name) => {
    const payload = module === 'subprocess' ? `touch ${marker}` : `__import__('os').system('touch ${marker}')`;
    expectFormatError(() => load(callWith(global(module, name), payload)), refused(`${module}.${name}`));
  });

  it('STACK_GLOBAL (protocol 4) os.system', () => {
    const bytes = bytesOf(
      [0x80, 4],
      shortStr('os'),
      OP.MEMOIZE,
      shortStr('system'),
      OP.MEMOIZE,
      OP.STACK_GLOBAL,
      shortStr(`touch ${marker}`),
      OP.TUPLE1,
      OP.REDUCE,
      OP.STOP,
    );
    expectFormatError(() => load(bytes), refused('os.system'));
  });

  it('STACK_GLOBAL assembled from memoised strings, nested deep inside a valid-looking state dict', () => {
    const bytes = bytesOf(
      OP.PROTO2,
      global('collections', 'OrderedDict'),
      OP.EMPTY_TUPLE,
      OP.REDUCE,
      OP.MARK,
      str('model.0.weight'),
      str('subprocess'),
      binput(1),
      OP.POP,
      str('Popen'),
      binput(2),
      OP.POP,
      OP.EMPTY_LIST,
      OP.MARK,
      binget(1),
      binget(2),
      OP.STACK_GLOBAL,
      OP.MARK,
      str('touch'),
      str(marker),
      OP.LIST,
      OP.TUPLE1,
      OP.REDUCE,
      OP.APPENDS,
      OP.SETITEMS,
      OP.STOP,
    );
    expectFormatError(() => load(bytes), refused('subprocess.Popen'));
  });

  it('names with newlines or quotes are escaped, keeping the message on one line', () => {
    const bytes = bytesOf([0x80, 4], shortStr('os"\nx'), shortStr('system'), OP.STACK_GLOBAL, OP.STOP);
    expectFormatError(() => load(bytes), `${FILE}: refusing to load global "os\\"\\nx.system" (not a tensor or container type)`);
  });

  it('allowed globals cannot be turned into anything else', () => {
    // Calling a storage class, BUILD on a non-container, or _codecs.encode with an unknown codec.
    expectFormatError(
      () => load(bytesOf(OP.PROTO2, global('torch', 'FloatStorage'), int1(3), OP.TUPLE1, OP.REDUCE, OP.STOP)),
      `${FILE}: cannot call torch.FloatStorage (REDUCE at offset 25 of data.pkl)`,
    );
    expectFormatError(
      () => load(bytesOf(OP.PROTO2, global('_codecs', 'encode'), str('x'), str('rot13'), OP.TUPLE2, OP.REDUCE, OP.STOP)),
      `${FILE}: _codecs.encode: unsupported encoding "rot13" (REDUCE at offset 35 of data.pkl)`,
    );
    expectFormatError(
      () => load(bytesOf(OP.PROTO2, OP.EMPTY_LIST, OP.EMPTY_DICT, OP.BUILD, OP.STOP)),
      `${FILE}: malformed pickle: cannot BUILD [] (BUILD at offset 4 of data.pkl)`,
    );
    expectFormatError(
      () =>
        load(
          bytesOf(
            OP.PROTO2,
            global('torch._utils', '_rebuild_parameter'),
            str('x'),
            OP.NEWFALSE,
            OP.EMPTY_DICT,
            OP.TUPLE3,
            OP.REDUCE,
            OP.STOP,
          ),
        ),
      `${FILE}: _rebuild_parameter data "x" is not a tensor (REDUCE at offset 44 of data.pkl)`,
    );
    expectFormatError(
      () => load(bytesOf(OP.PROTO2, global('torch', 'ComplexFloatStorage'), OP.STOP)),
      `${FILE}: unsupported storage type "torch.ComplexFloatStorage"`,
    );
  });
});

describe('unpickle: malformed pickles', () => {
  it('names an unknown opcode and its offset', () => {
    expectFormatError(
      () => load(bytesOf(OP.PROTO2, OP.NONE, 0xff, OP.STOP)),
      `${FILE}: unknown pickle opcode 0xff at offset 3 of data.pkl`,
    );
  });

  it('names a known opcode it does not support', () => {
    expectFormatError(
      () => load(bytesOf(OP.PROTO2, 0x82, 1, OP.STOP)),
      `${FILE}: unsupported pickle opcode EXT1 (0x82) at offset 2 of data.pkl`,
    );
    expectFormatError(
      () => load(bytesOf(ascii('(i__main__\nX\n'), OP.STOP)),
      `${FILE}: unsupported pickle opcode INST (0x69) at offset 1 of data.pkl`,
    );
  });

  it('reports truncation inside an opcode and a missing STOP', () => {
    expectFormatError(
      () => load(bytesOf(OP.PROTO2, [0x58, 10, 0, 0, 0], ascii('abc'))),
      `${FILE}: truncated pickle: data.pkl ends at offset 10 inside BINUNICODE (at offset 2)`,
    );
    expectFormatError(
      () => load(bytesOf(OP.PROTO2, OP.NONE)),
      `${FILE}: truncated pickle: data.pkl ends at offset 3 without a STOP opcode`,
    );
    expectFormatError(
      () => load(bytesOf(OP.PROTO2, ascii('cos\nsys'))),
      `${FILE}: truncated pickle: data.pkl ends at offset 9 inside GLOBAL (at offset 2)`,
    );
    expectFormatError(
      () => load(bytesOf(OP.PROTO2, [0x8d, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f], OP.STOP)),
      `${FILE}: truncated pickle: data.pkl ends at offset 12 inside BINUNICODE8 (at offset 2)`,
    );
    expectFormatError(() => load(new Uint8Array(0)), `${FILE}: truncated pickle: data.pkl ends at offset 0 without a STOP opcode`);
  });

  it('rejects structural errors', () => {
    const cases: [Uint8Array, string][] = [
      [bytesOf(OP.PROTO2, OP.REDUCE, OP.STOP), 'malformed pickle: stack underflow (REDUCE at offset 2 of data.pkl)'],
      [bytesOf(OP.PROTO2, binget(3), OP.STOP), 'malformed pickle: memo entry 3 is not defined (BINGET at offset 2 of data.pkl)'],
      [
        bytesOf(OP.PROTO2, OP.EMPTY_TUPLE, int1(1), OP.APPEND, OP.STOP),
        'malformed pickle: cannot append to () (APPEND at offset 5 of data.pkl)',
      ],
      [
        bytesOf(OP.PROTO2, OP.EMPTY_LIST, int1(1), int1(2), OP.SETITEM, OP.STOP),
        'malformed pickle: cannot set items on [] (SETITEM at offset 7 of data.pkl)',
      ],
      [
        bytesOf(OP.PROTO2, OP.EMPTY_DICT, OP.MARK, int1(1), OP.SETITEMS, OP.STOP),
        'malformed pickle: odd number of items for SETITEMS (SETITEMS at offset 6 of data.pkl)',
      ],
      [bytesOf(OP.PROTO2, OP.TUPLE, OP.STOP), 'malformed pickle: no MARK on the stack (TUPLE at offset 2 of data.pkl)'],
      [
        bytesOf(OP.PROTO2, int1(1), int1(2), OP.STACK_GLOBAL, OP.STOP),
        'malformed pickle: STACK_GLOBAL operands are not strings (STACK_GLOBAL at offset 6 of data.pkl)',
      ],
      [
        bytesOf(OP.PROTO2, [0x58, 1, 0, 0, 0, 0xff], OP.STOP),
        'malformed pickle: string is not valid UTF-8 (BINUNICODE at offset 2 of data.pkl)',
      ],
      [bytesOf([0x80, 6], OP.NONE, OP.STOP), 'unsupported pickle protocol 6 (PROTO at offset 0 of data.pkl)'],
      [bytesOf(OP.PROTO2, OP.STOP), 'malformed pickle: empty stack at STOP (STOP at offset 2 of data.pkl)'],
      [
        bytesOf(OP.PROTO2, OP.MARK, str('storage'), OP.TUPLE1, OP.BINPERSID, OP.STOP),
        'unexpected persistent id in data.pkl (BINPERSID at offset 16 of data.pkl)',
      ],
      [
        bytesOf(OP.PROTO2, global('collections', 'OrderedDict'), int1(5), OP.TUPLE1, OP.REDUCE, OP.STOP),
        'collections.OrderedDict argument is not a list of pairs (REDUCE at offset 30 of data.pkl)',
      ],
    ];
    for (const [bytes, message] of cases) expectFormatError(() => load(bytes), `${FILE}: ${message}`);
  });

  it('bounds the stack, the memo and MARK nesting', () => {
    const dups = bytesOf(OP.PROTO2, OP.NONE, ...new Array<number>(20).fill(OP.DUP), OP.STOP);
    expect(load(dups, { limits: { stackItems: 21 } })).toBeNull();
    expectFormatError(
      () => load(dups, { limits: { stackItems: 20 } }),
      `${FILE}: pickle stack exceeds 20 items (DUP at offset 22 of data.pkl)`,
    );
    const memos = bytesOf(OP.PROTO2, OP.NONE, OP.MEMOIZE, OP.MEMOIZE, OP.MEMOIZE, OP.STOP);
    expectFormatError(
      () => load(memos, { limits: { memoEntries: 2 } }),
      `${FILE}: pickle memo exceeds 2 entries (MEMOIZE at offset 5 of data.pkl)`,
    );
    const marks = bytesOf(OP.PROTO2, OP.MARK, OP.MARK, OP.MARK, OP.STOP);
    expectFormatError(
      () => load(marks, { limits: { markDepth: 2 } }),
      `${FILE}: MARKs nested deeper than 2 (MARK at offset 4 of data.pkl)`,
    );
  });
});
