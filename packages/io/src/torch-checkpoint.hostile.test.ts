/**
 * Tiny checkpoints that ask for huge work or memory (issue 12 #4, #6): each is built here byte by byte, small on
 * disk, and must be refused with a ModelFormatError that names the limit it hit, before the work is done.
 */
import { concatBytes, repeatedDeflate, torchZip } from '@scenimefy/test-utils';

import { ModelFormatError, UsageError } from './errors';
import type { TensorData } from './tensor';
import { TORCH_CHECKPOINT_MAX_INFLATED_BYTES, parseTorchCheckpoint, stateDictFromCheckpoint } from './torch-checkpoint';
import { PICKLE_LIMITS } from './torch-pickle';

const MiB = 1024 * 1024;
const bytes = (...parts: Array<Uint8Array | number[]>): Uint8Array =>
  concatBytes(parts.map((p) => (p instanceof Uint8Array ? p : Uint8Array.from(p))));
const ascii = (s: string): Uint8Array => new TextEncoder().encode(s);
const u32 = (n: number): number[] => [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff];
const str = (s: string): Uint8Array => bytes([0x58, ...u32(ascii(s).length)], ascii(s));
const global = (module: string, name: string): Uint8Array => bytes([0x63], ascii(`${module}\n${name}\n`));
const int = (n: number): number[] => [0x4a, ...u32(n)];
const tuple = (...items: Array<Uint8Array | number[]>): Uint8Array => bytes([0x28], ...items, [0x74]);
const orderedDict = bytes(global('collections', 'OrderedDict'), [0x29, 0x52]);
const PROTO2 = [0x80, 2];
const STOP = [0x2e];

/** `{'w': tensor}` whose float32 tensor of `size` (contiguous) views storage "0" of `numel` elements. */
function stateDictPickle(numel: number, size: number[]): Uint8Array {
  const pid = bytes(tuple(str('storage'), global('torch', 'FloatStorage'), str('0'), str('cpu'), int(numel)), [0x51]);
  const stride = size.map((_, d) => size.slice(d + 1).reduce((a, b) => a * b, 1));
  const rebuild = bytes(
    global('torch._utils', '_rebuild_tensor_v2'),
    tuple(pid, int(0), tuple(...size.map(int)), tuple(...stride.map(int)), [0x89], orderedDict),
    [0x52],
  );
  return bytes(PROTO2, orderedDict, [0x28], str('w'), rebuild, [0x75], STOP);
}

/** A zip checkpoint whose DEFLATED data.pkl is `prefix`, `chunk` × `times`, `suffix` (never built in memory). */
function deflatedPickle(chunk: Uint8Array, times: number, prefix: Uint8Array, suffix: Uint8Array = Uint8Array.from(STOP)) {
  return torchZip([{ name: 'archive/data.pkl', deflated: repeatedDeflate(chunk, times, { prefix, suffix }) }]);
}

function refusal(run: () => unknown): ModelFormatError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(ModelFormatError);
    return error as ModelFormatError;
  }
  throw new Error('expected a ModelFormatError');
}

describe('hostile checkpoints are refused before the work they ask for', () => {
  it('a DEFLATED data.pkl of 200 M APPENDs (416 KB on disk) is not inflated', () => {
    // `]` then `Na` (NONE, APPEND) × 200 M: 400 MB of pickle, which used to end in "invalid size error" at 2.7 GB.
    const file = deflatedPickle(ascii('Na'.repeat(MiB / 2)), 400, Uint8Array.of(...PROTO2, 0x5d));
    expect(file.byteLength).toBeLessThan(500_000);
    expect(refusal(() => parseTorchCheckpoint(file, 'append.pth')).message).toBe(
      `append.pth: archive/data.pkl would inflate to 419430404 bytes, more than the pickle limit of ${16 * MiB} (limits.pickleBytes)`,
    );
  });

  it('APPENDs within the pickle size stop at the container item limit', () => {
    const file = deflatedPickle(ascii('Na'.repeat(MiB / 2)), 15, Uint8Array.of(...PROTO2, 0x5d));
    expect(refusal(() => parseTorchCheckpoint(file, 'append.pth')).message).toMatch(
      /^append\.pth: pickle puts more than 2097152 items into lists, dicts, sets and tuples \(limits\.containerItems\) \(APPEND at offset \d+ of archive\/data\.pkl\)$/,
    );
  });

  it('`}a` × 50 M (a list of 50 M empty dicts, 104 KB on disk) is refused; within the pickle size it stops at the object limit', () => {
    const big = deflatedPickle(ascii('}a'.repeat(MiB / 2)), 100, Uint8Array.of(...PROTO2, 0x5d));
    expect(refusal(() => parseTorchCheckpoint(big, 'dicts.pth')).message).toContain(
      'more than the pickle limit of 16777216 (limits.pickleBytes)',
    );
    const small = deflatedPickle(ascii('}a'.repeat(MiB / 2)), 15, Uint8Array.of(...PROTO2, 0x5d));
    expect(refusal(() => parseTorchCheckpoint(small, 'dicts.pth')).message).toMatch(
      /^dicts\.pth: pickle builds more than 262144 objects \(limits\.containers\) \(EMPTY_DICT at offset \d+ of archive\/data\.pkl\)$/,
    );
  });

  it('memo and stack bombs stop at their limits', () => {
    const memo = deflatedPickle(new Uint8Array(MiB).fill(0x94), 15, Uint8Array.of(0x80, 4, 0x4e));
    expect(refusal(() => parseTorchCheckpoint(memo, 'memo.pth')).message).toContain(
      `pickle memo exceeds ${1 << 20} entries (MEMOIZE at offset`,
    );
    const dup = deflatedPickle(new Uint8Array(MiB).fill(0x32), 15, Uint8Array.of(...PROTO2, 0x4e));
    expect(refusal(() => parseTorchCheckpoint(dup, 'dup.pth')).message).toContain(`pickle stack exceeds ${1 << 20} items (DUP at offset`);
  });

  it('a LONG4 of 8 MB (8.4 KB on disk) is refused by its length, with a short message', () => {
    const file = deflatedPickle(new Uint8Array(MiB).fill(1), 8, Uint8Array.of(...PROTO2, 0x8b, ...u32(8 * MiB)));
    expect(file.byteLength).toBeLessThan(10_000);
    expect(refusal(() => parseTorchCheckpoint(file, 'long.pth')).message).toBe(
      'long.pth: LONG4 int of 8388608 bytes is longer than the limit of 1024 (limits.intBytes) (LONG4 at offset 2 of archive/data.pkl)',
    );
  });

  it('a protocol-0 LONG of a million digits gives a one-line message of normal length', () => {
    // It used to make a 1,000,082-character message; digits beyond Python's own limit are refused now.
    const pkl = bytes(PROTO2, [0x4c], ascii(`${'9'.repeat(1_000_000)}L\n`), STOP);
    const message = refusal(() => parseTorchCheckpoint(torchZip([{ name: 'a/data.pkl', data: pkl }]), 'long.pth')).message;
    expect(message).toBe(
      'long.pth: decimal int of 1000000 digits is longer than the limit of 4300 (limits.intDigits) (LONG at offset 2 of a/data.pkl)',
    );
    // An int allowed by a raised limit is still quoted short where a message shows it.
    const asOffset = bytes(PROTO2, [0x4c], ascii(`${'9'.repeat(5000)}L\n`), STOP);
    const value = parseTorchCheckpoint(torchZip([{ name: 'a/data.pkl', data: asOffset }]), 'long.pth', { limits: { intDigits: 6000 } });
    expect(refusal(() => stateDictFromCheckpoint(value, 'long.pth')).message).toBe(
      'long.pth: is not a state dict: the checkpoint is an integer of about 16612 bits',
    );
  });

  it('a 1 GiB zero storage compressed to 1 MB is not inflated for a tensor that views 4 bytes of it', () => {
    const file = torchZip([
      { name: 'archive/data.pkl', data: stateDictPickle(1 << 28, [1]) },
      { name: 'archive/data/0', deflated: repeatedDeflate(new Uint8Array(MiB), 1024) },
    ]);
    expect(file.byteLength).toBeLessThan(1.1 * MiB);
    expect(refusal(() => parseTorchCheckpoint(file, 'zeros.pth')).message).toBe(
      'zeros.pth: storage "0" (archive/data/0) would inflate to 1073741824 bytes but its tensors view only 4; ' +
        'a compressed storage is inflated only as far as its tensors use it',
    );
  });

  it('caps what compressed members inflate to in all; maxInflatedBytes raises the cap', () => {
    // 64 MiB of zeros that the tensor does view in full: refused under a 32 MiB cap, read under the default 1 GiB.
    const file = torchZip([
      { name: 'archive/data.pkl', data: stateDictPickle(16 * MiB, [16 * MiB]) },
      { name: 'archive/data/0', deflated: repeatedDeflate(new Uint8Array(MiB), 64) },
    ]);
    expect(refusal(() => parseTorchCheckpoint(file, 'zeros.pth', { maxInflatedBytes: 32 * MiB })).message).toBe(
      'zeros.pth: compressed zip members would inflate to more than 33554432 bytes in all (at archive/data/0); ' +
        'raise maxInflatedBytes to read a recompressed checkpoint you trust',
    );
    expect(TORCH_CHECKPOINT_MAX_INFLATED_BYTES).toBe(2 ** 30);
    const w = (parseTorchCheckpoint(file, 'zeros.pth') as Map<string, TensorData>).get('w')!;
    expect(w.shape).toEqual([16 * MiB]);
    expect(w.bytes.byteLength).toBe(64 * MiB);
    expect(Buffer.from(w.bytes.buffer, w.bytes.byteOffset, w.bytes.byteLength).equals(Buffer.alloc(64 * MiB))).toBe(true);
  });

  it('limits can be raised for one file, and a bad limit is a usage error', () => {
    // 300 000 empty lists in a list: more objects than the default allows, fine with a raised limit.
    const pkl = bytes(PROTO2, [0x5d, 0x28], new Uint8Array(300_000).fill(0x5d), [0x65], STOP);
    const file = torchZip([{ name: 'a/data.pkl', data: pkl }]);
    expect(refusal(() => parseTorchCheckpoint(file, 'lists.pth')).message).toContain('(limits.containers)');
    expect((parseTorchCheckpoint(file, 'lists.pth', { limits: { containers: 400_000 } }) as unknown[]).length).toBe(300_000);
    expect(() => parseTorchCheckpoint(file, 'lists.pth', { limits: { containers: 0 } })).toThrow(UsageError);
    expect(() => parseTorchCheckpoint(file, 'lists.pth', { limits: { objects: 5 } as never })).toThrow('unknown pickle limit "objects"');
    expect(PICKLE_LIMITS.containers).toBe(1 << 18);
  });
});
