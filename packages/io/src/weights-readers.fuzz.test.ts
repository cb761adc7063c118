/**
 * Seeded mutation fuzzing of the weight readers (issue 12, "Done when"): thousands of variants of the reference
 * fixtures — a zip `.pth` (as stored, and recompressed), a legacy `.pth` and a safetensors file — with flipped bits, truncations, inserted and
 * deleted runs, and length fields set to extreme values, most of them aimed at the structure (zip records, pickle
 * opcodes, the safetensors header) where a reader can go wrong. Every case must either parse or throw a
 * ScenimefyError (never a RangeError, TypeError or plain Error), and stay within the time and memory bounds below.
 * A failure names the case's seed and mutation, so `mutate(fixture, seed)` reproduces it.
 */
import { readFileSync } from 'node:fs';

import { deflateMember, describeIfFixture, referenceFixturePath, torchZip } from '@scenimefy/test-utils';

import { ScenimefyError } from './errors';
import { parseSafetensors, tensorToFloat32 } from './safetensors';
import type { TensorMap } from './tensor';
import { parseTorchCheckpoint, stateDictFromCheckpoint } from './torch-checkpoint';
import { openZipArchive } from './zip-archive';

/** Per case, with a wide margin for a loaded 2-core machine: a case takes ~1–20 ms. */
const MAX_CASE_MS = 2000;
/** Heap plus ArrayBuffer growth across one case (no GC is forced, so garbage counts): the files are 1.6–2.9 MB. */
const MAX_CASE_GROWTH_BYTES = 384 * 1024 * 1024;

type Rng = () => number;

/** mulberry32: a small, well-mixed 32-bit PRNG, enough for choosing mutations reproducibly. */
function rng(seed: number): Rng {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

interface Field {
  at: number;
  bytes: 2 | 4 | 8;
}

/** Where a fixture's structure is: byte ranges worth aiming at, and little-endian length/offset fields. */
interface Structure {
  hot: Array<[number, number]>;
  fields: Field[];
}

function zipStructure(b: Uint8Array): Structure {
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const hot: Array<[number, number]> = [];
  const fields: Field[] = [];
  for (let p = 0; p + 4 <= b.length; p++) {
    const sig = view.getUint32(p, true);
    if (sig === 0x04034b50 && p + 30 <= b.length) {
      hot.push([p, Math.min(b.length, p + 30 + view.getUint16(p + 26, true) + view.getUint16(p + 28, true) + 64)]);
      for (const at of [14, 18, 22]) fields.push({ at: p + at, bytes: 4 });
      for (const at of [8, 26, 28]) fields.push({ at: p + at, bytes: 2 });
      const name = new TextDecoder().decode(b.subarray(p + 30, p + 30 + view.getUint16(p + 26, true)));
      if (name.endsWith('data.pkl')) {
        const start = p + 30 + view.getUint16(p + 26, true) + view.getUint16(p + 28, true);
        const end = start + view.getUint32(p + 18, true);
        hot.push([start, end]);
        fields.push(...pickleFields(b, start, end));
      }
    } else if (sig === 0x02014b50 && p + 46 <= b.length) {
      hot.push([p, Math.min(b.length, p + 46 + view.getUint16(p + 28, true))]);
      for (const at of [16, 20, 24, 42]) fields.push({ at: p + at, bytes: 4 });
      for (const at of [10, 28, 30, 32]) fields.push({ at: p + at, bytes: 2 });
    } else if (sig === 0x06054b50 && p + 22 <= b.length) {
      hot.push([p, b.length]);
      for (const at of [12, 16]) fields.push({ at: p + at, bytes: 4 });
      for (const at of [8, 10, 20]) fields.push({ at: p + at, bytes: 2 });
    }
  }
  return { hot, fields };
}

/** u32 operands of BINUNICODE, BININT and LONG_BINPUT/GET in a pickle: lengths, sizes, numels, memo indices. */
function pickleFields(b: Uint8Array, start: number, end: number): Field[] {
  const fields: Field[] = [];
  for (let p = start; p + 5 <= end; p++)
    if (b[p] === 0x58 || b[p] === 0x4a || b[p] === 0x72 || b[p] === 0x6a) fields.push({ at: p + 1, bytes: 4 });
  return fields;
}

function legacyStructure(b: Uint8Array): Structure {
  // The pickles (magic, protocol, sys_info, main, key list) come first; storages follow, each after a u64 count.
  const pickles = Math.min(b.length, 64 * 1024);
  return { hot: [[0, pickles]], fields: pickleFields(b, 0, pickles) };
}

function safetensorsStructure(b: Uint8Array): Structure {
  const headerLength = Number(new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0, true));
  return { hot: [[0, 8 + headerLength]], fields: [{ at: 0, bytes: 8 }] };
}

function extremeValue(r: Rng, bytes: number, old: bigint): bigint {
  const max = (1n << BigInt(8 * bytes)) - 1n;
  const choices = [0n, 1n, max, max >> 1n, (max >> 1n) + 1n, old + 1n, old - 1n, old * 2n, BigInt(Math.floor(r() * 2 ** 32)), 0x7fffn];
  const v = choices[Math.floor(r() * choices.length)]!;
  return ((v % (max + 1n)) + (max + 1n)) % (max + 1n);
}

/** One seeded mutation of `base`: the bytes and what was done, for the failure message. */
function mutate(base: Uint8Array, structure: Structure, seed: number, json = false): { bytes: Uint8Array; what: string } {
  const r = rng(seed);
  const pick = (): number => {
    if (r() < 0.7 && structure.hot.length > 0) {
      const [from, to] = structure.hot[Math.floor(r() * structure.hot.length)]!;
      return Math.min(base.length - 1, from + Math.floor(r() * Math.max(1, to - from)));
    }
    return Math.floor(r() * base.length);
  };
  const kind = Math.floor(r() * (json ? 6 : 5));
  switch (kind) {
    case 0: {
      const bytes = base.slice();
      const flips: number[] = [];
      for (let k = 1 + Math.floor(r() * 8); k > 0; k--) {
        const at = pick();
        bytes[at]! ^= 1 << Math.floor(r() * 8);
        flips.push(at);
      }
      return { bytes, what: `bit flips at ${flips.join(',')}` };
    }
    case 1: {
      const at = pick();
      return { bytes: base.slice(0, at), what: `truncated to ${at} bytes` };
    }
    case 2: {
      const at = pick();
      const n = 1 + Math.floor(r() * 64);
      const fill = r() < 0.5 ? -1 : Math.floor(r() * 256);
      const run = Uint8Array.from({ length: n }, () => (fill < 0 ? Math.floor(r() * 256) : fill));
      const bytes = new Uint8Array(base.length + n);
      bytes.set(base.subarray(0, at));
      bytes.set(run, at);
      bytes.set(base.subarray(at), at + n);
      return { bytes, what: `${n} bytes inserted at ${at}` };
    }
    case 3: {
      const n = Math.min(base.length, 1 + Math.floor(r() * 64));
      const at = Math.min(pick(), base.length - n);
      const bytes = new Uint8Array(Math.max(0, base.length - n));
      bytes.set(base.subarray(0, at));
      bytes.set(base.subarray(Math.min(base.length, at + n)), at);
      return { bytes, what: `${n} bytes deleted at ${at}` };
    }
    case 4: {
      const bytes = base.slice();
      const field = structure.fields[Math.floor(r() * structure.fields.length)]!;
      const view = new DataView(bytes.buffer);
      const old =
        field.bytes === 8
          ? view.getBigUint64(field.at, true)
          : BigInt(field.bytes === 4 ? view.getUint32(field.at, true) : view.getUint16(field.at, true));
      const v = extremeValue(r, field.bytes, old);
      if (field.bytes === 8) view.setBigUint64(field.at, v, true);
      else if (field.bytes === 4) view.setUint32(field.at, Number(v), true);
      else view.setUint16(field.at, Number(v), true);
      return { bytes, what: `u${8 * field.bytes} at ${field.at}: ${old} → ${v}` };
    }
    default: {
      // A number in the safetensors JSON header (shape, data_offsets, header padding) replaced.
      const bytes = base.slice();
      const [, end] = structure.hot[0]!;
      const digits: number[] = [];
      for (let p = 8; p < end; p++) if (bytes[p]! >= 0x30 && bytes[p]! <= 0x39) digits.push(p);
      const at = digits[Math.floor(r() * digits.length)]!;
      const replacement = ['9', '0', '-', '.', 'e', '"', ']', '}'][Math.floor(r() * 8)]!;
      bytes[at] = replacement.charCodeAt(0);
      return { bytes, what: `header byte ${at} → ${JSON.stringify(replacement)}` };
    }
  }
}

interface FuzzStats {
  cases: number;
  parsed: number;
  refused: number;
  maxMs: number;
  maxGrowth: number;
  failures: string[];
}

/** Run `count` seeded cases of `parse` on mutations of `base`. */
function fuzz(
  name: string,
  base: Uint8Array,
  structure: Structure,
  parse: (b: Uint8Array) => TensorMap,
  count: number,
  json = false,
): FuzzStats {
  const stats: FuzzStats = { cases: 0, parsed: 0, refused: 0, maxMs: 0, maxGrowth: 0, failures: [] };
  const used = (): number => {
    const m = process.memoryUsage();
    return m.heapUsed + m.arrayBuffers;
  };
  for (let seed = 1; seed <= count; seed++) {
    const { bytes, what } = mutate(base, structure, seed, json);
    const before = used();
    const started = performance.now();
    try {
      const tensors = parse(bytes);
      // Touch every tensor the way a loader would, so conversions meet the mutated data too.
      for (const t of tensors.values()) tensorToFloat32(t);
      stats.parsed++;
    } catch (error) {
      if (error instanceof ScenimefyError) stats.refused++;
      else
        stats.failures.push(
          `${name} seed ${seed} (${what}): ${(error as Error)?.constructor?.name}: ${String((error as Error)?.message).slice(0, 200)}`,
        );
    }
    const ms = performance.now() - started;
    stats.maxMs = Math.max(stats.maxMs, ms);
    stats.maxGrowth = Math.max(stats.maxGrowth, used() - before);
    if (ms > MAX_CASE_MS) stats.failures.push(`${name} seed ${seed} (${what}): took ${ms.toFixed(0)} ms`);
    stats.cases++;
  }
  return stats;
}

function report(name: string, s: FuzzStats): void {
  console.log(
    `${name}: ${s.cases} cases, ${s.parsed} parsed, ${s.refused} refused with a typed error; slowest ${s.maxMs.toFixed(1)} ms, ` +
      `largest heap+ArrayBuffer growth ${(s.maxGrowth / 2 ** 20).toFixed(1)} MiB`,
  );
  expect(s.failures.slice(0, 10)).toEqual([]);
  expect(s.cases).toBe(s.parsed + s.refused);
  // Most mutations must be refused: a fuzzer whose cases all parse is not reaching the structure.
  expect(s.refused).toBeGreaterThan(s.cases / 3);
  expect(s.maxGrowth).toBeLessThan(MAX_CASE_GROWTH_BYTES);
}

const i2i = (name: string): Uint8Array => new Uint8Array(readFileSync(referenceFixturePath('i2i', name)));
const torchStateDict = (name: string) => (b: Uint8Array) => stateDictFromCheckpoint(parseTorchCheckpoint(b, name), name);

describeIfFixture(
  ['i2i/netG-ngf16.pth', 'i2i/netG-ngf16.legacy.pth', 'i2i/netG-ngf16-io.safetensors'],
  'weight readers under seeded mutation',
  () => {
    it('zip .pth: 1000 mutations', () => {
      const base = i2i('netG-ngf16.pth');
      report('netG-ngf16.pth', fuzz('netG-ngf16.pth', base, zipStructure(base), torchStateDict('netG-ngf16.pth'), 1000));
    });

    it('legacy .pth: 1000 mutations', () => {
      const base = i2i('netG-ngf16.legacy.pth');
      report(
        'netG-ngf16.legacy.pth',
        fuzz('netG-ngf16.legacy.pth', base, legacyStructure(base), torchStateDict('netG-ngf16.legacy.pth'), 1000),
      );
    });

    it('zip .pth with DEFLATED members (as a recompressing tool writes them): 600 mutations', () => {
      // torch.save stores members uncompressed; this copy exercises the inflating path (fflate, the size bounds).
      // Members under 64 KB (data.pkl and most storages) are DEFLATED, the large ones stay STORED to keep cases fast.
      const stored = i2i('netG-ngf16.pth');
      const archive = openZipArchive(stored, 'netG-ngf16.pth');
      const base = torchZip(
        [...archive.members.values()].map((m) => {
          const data = archive.read(m);
          return data.byteLength < 65536 ? { name: m.name, deflated: deflateMember(data) } : { name: m.name, data };
        }),
      );
      const name = 'netG-ngf16.deflated.pth';
      report(name, fuzz(name, base, zipStructure(base), torchStateDict(name), 600));
    });

    it('safetensors: 1500 mutations', () => {
      const base = i2i('netG-ngf16-io.safetensors');
      const parse = (b: Uint8Array) => parseSafetensors(b, 'netG-ngf16-io.safetensors').tensors;
      report('netG-ngf16-io.safetensors', fuzz('netG-ngf16-io.safetensors', base, safetensorsStructure(base), parse, 1500, true));
    });
  },
);
