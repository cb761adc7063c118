/**
 * Building `torch.save`-style zip archives in tests, byte by byte, including hostile ones: a member's declared
 * sizes and CRC can say anything, and a DEFLATE stream of a chunk repeated any number of times costs about one
 * compressed chunk per repeat (a few hundred KB for hundreds of MB), so tests can build a zip bomb without
 * holding what it inflates to.
 */
import * as zlib from 'node:zlib';

/** A member as it goes into the archive. */
export interface TorchZipMember {
  name: string;
  /** STORED content. */
  data?: Uint8Array;
  /** DEFLATED content: the raw DEFLATE stream and what the headers declare (see `repeatedDeflate`). */
  deflated?: DeflatedMember;
}

export interface DeflatedMember {
  /** The raw DEFLATE stream (no zlib or gzip wrapper). */
  raw: Uint8Array;
  /** Declared uncompressed size (what the stream inflates to, unless a test lies). */
  size: number;
  /** Declared CRC-32 of the uncompressed bytes. */
  crc32: number;
}

/** `data` DEFLATED, with its true size and CRC. */
export function deflateMember(data: Uint8Array): DeflatedMember {
  return { raw: zlib.deflateRawSync(data), size: data.byteLength, crc32: zlib.crc32(data) };
}

/**
 * A DEFLATE stream that inflates to `prefix`, then `chunk` repeated `times` times, then `suffix`. Each part is
 * compressed on its own, ending on a full flush (byte-aligned, no reference to anything before it), so copies of
 * the chunk's block can follow each other; the suffix ends the stream. Size and CRC are computed without building
 * the repeats.
 */
export function repeatedDeflate(
  chunk: Uint8Array,
  times: number,
  { prefix = new Uint8Array(0), suffix = new Uint8Array(0) }: { prefix?: Uint8Array; suffix?: Uint8Array } = {},
): DeflatedMember {
  const flushed = (data: Uint8Array): Uint8Array => zlib.deflateRawSync(data, { finishFlush: zlib.constants.Z_FULL_FLUSH });
  const head = flushed(prefix);
  const block = flushed(chunk);
  const tail = zlib.deflateRawSync(suffix); // ends with the final block
  const raw = new Uint8Array(head.byteLength + block.byteLength * times + tail.byteLength);
  raw.set(head, 0);
  for (let i = 0; i < times; i++) raw.set(block, head.byteLength + i * block.byteLength);
  raw.set(tail, head.byteLength + block.byteLength * times);
  let crc = 0;
  for (const part of [prefix, ...new Array<Uint8Array>(times).fill(chunk), suffix]) if (part.byteLength > 0) crc = zlib.crc32(part, crc);
  return { raw, size: prefix.byteLength + chunk.byteLength * times + suffix.byteLength, crc32: crc };
}

/**
 * A zip archive of `members` in order, laid out as torch.save lays it out (one disk, no data descriptors, 32-bit
 * sizes): each local header, its data, then the central directory and the end record.
 */
export function torchZip(members: readonly TorchZipMember[]): Uint8Array {
  const parts: Uint8Array[] = [];
  const central: Uint8Array[] = [];
  let offset = 0;
  for (const m of members) {
    const name = new TextEncoder().encode(m.name);
    const stored = m.deflated === undefined;
    const body = m.deflated?.raw ?? m.data ?? new Uint8Array(0);
    const size = m.deflated?.size ?? body.byteLength;
    const crc = m.deflated?.crc32 ?? zlib.crc32(body);
    const method = stored ? 0 : 8;
    const local = record(30 + name.byteLength, (v) => {
      v.setUint32(0, 0x04034b50, true);
      v.setUint16(4, 20, true);
      v.setUint16(8, method, true);
      v.setUint32(14, crc, true);
      v.setUint32(18, body.byteLength, true);
      v.setUint32(22, size, true);
      v.setUint16(26, name.byteLength, true);
    });
    local.set(name, 30);
    const entry = record(46 + name.byteLength, (v) => {
      v.setUint32(0, 0x02014b50, true);
      v.setUint16(4, 20, true);
      v.setUint16(6, 20, true);
      v.setUint16(10, method, true);
      v.setUint32(16, crc, true);
      v.setUint32(20, body.byteLength, true);
      v.setUint32(24, size, true);
      v.setUint16(28, name.byteLength, true);
      v.setUint32(42, offset, true);
    });
    entry.set(name, 46);
    parts.push(local, body);
    central.push(entry);
    offset += local.byteLength + body.byteLength;
  }
  const cdSize = central.reduce((n, c) => n + c.byteLength, 0);
  const end = record(22, (v) => {
    v.setUint32(0, 0x06054b50, true);
    v.setUint16(8, members.length, true);
    v.setUint16(10, members.length, true);
    v.setUint32(12, cdSize, true);
    v.setUint32(16, offset, true);
  });
  return concatBytes([...parts, ...central, end]);
}

/** The byte arrays one after another in a new array. */
export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}

function record(length: number, fill: (view: DataView) => void): Uint8Array {
  const bytes = new Uint8Array(length);
  fill(new DataView(bytes.buffer));
  return bytes;
}
