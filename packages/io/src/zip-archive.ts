/**
 * A read-only zip archive over one in-memory buffer. STORED members are handed out as views of that buffer
 * (no copy), DEFLATED members are inflated on demand. Only what PyTorch checkpoints need: one disk, no
 * encryption, methods 0 and 8, Zip64 sizes and offsets.
 *
 * Hand-written rather than yauzl because yauzl hands member data out only as streams: every tensor would be
 * re-assembled into a fresh buffer, doubling the memory of a checkpoint, and the central directory is a few
 * fixed-layout records. DEFLATED members are inflated with fflate (browser-safe), fed a slice at a time into a
 * buffer of at most their declared size, so that a stream inflating past that size stops at once (a zip bomb costs
 * neither memory nor time beyond the declared size); what to inflate at all is the caller's decision.
 */

import { Inflate } from 'fflate';

import { memberCrc32 } from './crc32';
import { ModelFormatError, capText, quoteValue } from './errors';

export interface ZipMember {
  readonly name: string;
  /** 0 = STORED, 8 = DEFLATED. */
  readonly method: number;
  readonly flags: number;
  readonly crc32: number;
  readonly compressedSize: number;
  readonly uncompressedSize: number;
  readonly localHeaderOffset: number;
}

export interface ZipArchive {
  /** Members by name, in central-directory order. */
  readonly members: ReadonlyMap<string, ZipMember>;
  /** The member's bytes: a view of the archive buffer when STORED, a fresh buffer when DEFLATED. */
  read(member: ZipMember): Uint8Array;
}

export interface ZipOpenOptions {
  /** Check each member's CRC-32 when it is read (default true). */
  verifyCrc?: boolean;
  /** Refuse a DEFLATED member that declares more uncompressed bytes than this (default 4 GiB). */
  maxInflatedBytes?: number;
}

const SIG_LOCAL = 0x04034b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_EOCD = 0x06054b50;
const SIG_ZIP64_EOCD = 0x06064b50;
const SIG_ZIP64_LOCATOR = 0x07064b50;
const EOCD_BYTES = 22;
const ZIP64_LOCATOR_BYTES = 20;
const MAX_COMMENT_BYTES = 0xffff;
const ZIP64_EXTRA_ID = 0x0001;
const FLAG_ENCRYPTED = 0x0001;
const METHOD_STORED = 0;
const METHOD_DEFLATED = 8;

/** True when the bytes start like a zip archive (a local file header, or the end record of an empty archive). */
export function isZipArchive(bytes: Uint8Array): boolean {
  if (bytes.byteLength < 4) return false;
  const sig = (bytes[0]! | (bytes[1]! << 8) | (bytes[2]! << 16) | (bytes[3]! << 24)) >>> 0;
  return sig === SIG_LOCAL || sig === SIG_EOCD;
}

/** Parse the central directory of the zip archive held in `bytes`; `file` names it in errors. */
export function openZipArchive(bytes: Uint8Array, file: string, options: ZipOpenOptions = {}): ZipArchive {
  const verifyCrc = options.verifyCrc ?? true;
  const maxInflatedBytes = options.maxInflatedBytes ?? 2 ** 32;
  const fail = (problem: string): never => {
    throw new ModelFormatError(problem, { file });
  };
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const size = bytes.byteLength;
  const u16 = (at: number): number => view.getUint16(at, true);
  const u32 = (at: number): number => view.getUint32(at, true);
  const u64 = (at: number, what: string): number => {
    const v = view.getBigUint64(at, true);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) fail(`corrupt zip archive (${what} ${v} is out of range)`);
    return Number(v);
  };

  const eocd = findEndOfCentralDirectory(view);
  if (eocd < 0) fail('truncated zip archive (end-of-central-directory record not found)');
  if (u16(eocd + 4) !== 0 || u16(eocd + 6) !== 0) fail('multi-disk zip archives are not supported');
  let entryCount = u16(eocd + 10);
  let cdSize = u32(eocd + 12);
  let cdOffset = u32(eocd + 16);

  const locator = eocd - ZIP64_LOCATOR_BYTES;
  if (locator >= 0 && u32(locator) === SIG_ZIP64_LOCATOR) {
    const zip64Eocd = u64(locator + 8, 'Zip64 end record offset');
    if (zip64Eocd + 56 > locator || u32(zip64Eocd) !== SIG_ZIP64_EOCD) {
      fail('corrupt zip archive (Zip64 end-of-central-directory record not found)');
    }
    entryCount = u64(zip64Eocd + 32, 'Zip64 entry count');
    cdSize = u64(zip64Eocd + 40, 'Zip64 central directory size');
    cdOffset = u64(zip64Eocd + 48, 'Zip64 central directory offset');
  }
  if (cdOffset + cdSize > size) {
    fail(`truncated zip archive (central directory at ${cdOffset}..${cdOffset + cdSize} is past the end of the ${size}-byte file)`);
  }

  const members = new Map<string, ZipMember>();
  const decoder = new TextDecoder('utf-8');
  let at = cdOffset;
  for (let i = 0; i < entryCount; i++) {
    if (at + 46 > cdOffset + cdSize || u32(at) !== SIG_CENTRAL) {
      fail(`corrupt zip archive (central directory entry ${i} of ${entryCount} is missing)`);
    }
    const flags = u16(at + 8);
    const method = u16(at + 10);
    const crc32 = u32(at + 16);
    let compressedSize = u32(at + 20);
    let uncompressedSize = u32(at + 24);
    const nameLength = u16(at + 28);
    const extraLength = u16(at + 30);
    const commentLength = u16(at + 32);
    let localHeaderOffset = u32(at + 42);
    const nameStart = at + 46;
    const extraStart = nameStart + nameLength;
    const next = extraStart + extraLength + commentLength;
    if (next > cdOffset + cdSize) fail(`corrupt zip archive (central directory entry ${i} overruns the directory)`);
    const name = decoder.decode(bytes.subarray(nameStart, extraStart));

    // Zip64: the 64-bit values follow in this order, each present only when its 32-bit field is saturated.
    const needUncompressed = uncompressedSize === 0xffffffff;
    const needCompressed = compressedSize === 0xffffffff;
    const needOffset = localHeaderOffset === 0xffffffff;
    if (needUncompressed || needCompressed || needOffset) {
      let found = false;
      for (let e = extraStart; e + 4 <= extraStart + extraLength; ) {
        const id = u16(e);
        const length = u16(e + 2);
        if (e + 4 + length > extraStart + extraLength) break;
        if (id === ZIP64_EXTRA_ID) {
          let p = e + 4;
          const take = (what: string): number => {
            if (p + 8 > e + 4 + length) fail(`corrupt zip archive (member ${quoteValue(name)}: Zip64 field ${what} missing)`);
            const v = u64(p, `member ${quoteValue(name)} ${what}`);
            p += 8;
            return v;
          };
          if (needUncompressed) uncompressedSize = take('uncompressed size');
          if (needCompressed) compressedSize = take('compressed size');
          if (needOffset) localHeaderOffset = take('local header offset');
          found = true;
          break;
        }
        e += 4 + length;
      }
      if (!found) fail(`corrupt zip archive (member ${quoteValue(name)} lacks its Zip64 extra field)`);
    }
    if (members.has(name)) fail(`corrupt zip archive (member ${quoteValue(name)} appears twice)`);
    members.set(name, Object.freeze({ name, method, flags, crc32, compressedSize, uncompressedSize, localHeaderOffset }));
    at = next;
  }

  const read = (member: ZipMember): Uint8Array => {
    const { name } = member;
    if (member.flags & FLAG_ENCRYPTED) fail(`zip member ${quoteValue(name)} is encrypted`);
    const header = member.localHeaderOffset;
    if (header + 30 > size) fail(`truncated zip archive (member ${quoteValue(name)} starts past the end of the file)`);
    if (u32(header) !== SIG_LOCAL) fail(`corrupt zip archive (member ${quoteValue(name)} has no local header)`);
    // The local header's own name/extra lengths count: PyTorch pads the local extra field to align data.
    const dataStart = header + 30 + u16(header + 26) + u16(header + 28);
    const dataEnd = dataStart + member.compressedSize;
    if (dataEnd > size) {
      fail(`truncated zip archive (member ${quoteValue(name)} ends at byte ${dataEnd} of a ${size}-byte file)`);
    }
    const raw = bytes.subarray(dataStart, dataEnd);
    let data: Uint8Array;
    if (member.method === METHOD_STORED) {
      if (member.compressedSize !== member.uncompressedSize) {
        fail(`corrupt zip archive (stored member ${quoteValue(name)} has different compressed and uncompressed sizes)`);
      }
      data = raw;
    } else if (member.method === METHOD_DEFLATED) {
      if (member.uncompressedSize > maxInflatedBytes) {
        fail(`zip member ${quoteValue(name)} inflates to ${member.uncompressedSize} bytes, more than the limit of ${maxInflatedBytes}`);
      }
      const inflated = inflateBounded(raw, member.uncompressedSize);
      if (typeof inflated === 'string')
        return fail(`corrupt zip archive (member ${quoteValue(name)} does not inflate: ${capText(inflated)})`);
      if (inflated.byteLength !== member.uncompressedSize) {
        const got = inflated.byteLength > member.uncompressedSize ? 'more than its declared' : `${inflated.byteLength} bytes, expected`;
        fail(`corrupt zip archive (member ${quoteValue(name)} inflates to ${got} ${member.uncompressedSize})`);
      }
      data = inflated;
    } else {
      return fail(`zip member ${quoteValue(name)} uses unsupported compression method ${member.method}`);
    }
    if (verifyCrc && memberCrc32(data) !== member.crc32) {
      fail(`corrupt zip archive (member ${quoteValue(name)} fails its CRC-32 check)`);
    }
    return data;
  };

  return Object.freeze({ members, read });
}

/** The most DEFLATE can expand: 258 bytes from a 2-bit length code and a 1-bit distance code, about 1032:1. */
const MAX_DEFLATE_RATIO = 1032;

/** Compressed bytes handed to the inflater at a time: bounds what one step can produce to ~1032× this (~16 MiB). */
const INFLATE_STEP_BYTES = 16 * 1024;

/**
 * Raw DEFLATE `raw` into a buffer of `expected` bytes. Returns the bytes (longer than `expected` by one when the
 * stream holds more, and the inflating stops there), or the decoder's complaint for a corrupt stream.
 */
function inflateBounded(raw: Uint8Array, expected: number): Uint8Array | string {
  // DEFLATE expands at most 1032:1, so a header declaring more than that is not believed for the first allocation;
  // the buffer grows (up to the declared size) only if the data really comes.
  const limit = expected + 1;
  let out = new Uint8Array(Math.min(limit, MAX_DEFLATE_RATIO * raw.byteLength + 1));
  let filled = 0;
  let overflow = false;
  const inflater = new Inflate((chunk) => {
    if (filled + chunk.byteLength > out.byteLength && out.byteLength < limit) {
      const grown = new Uint8Array(Math.min(limit, Math.max(2 * out.byteLength, filled + chunk.byteLength)));
      grown.set(out.subarray(0, filled));
      out = grown;
    }
    const room = out.byteLength - filled;
    out.set(chunk.byteLength <= room ? chunk : chunk.subarray(0, room), filled);
    filled += Math.min(chunk.byteLength, room);
    if (filled > expected) overflow = true;
  });
  try {
    for (let at = 0; at < raw.byteLength && !overflow; at += INFLATE_STEP_BYTES) {
      const end = Math.min(raw.byteLength, at + INFLATE_STEP_BYTES);
      inflater.push(raw.subarray(at, end), end === raw.byteLength);
    }
    if (raw.byteLength === 0) inflater.push(raw, true);
  } catch (error) {
    return (error as Error).message;
  }
  return out.subarray(0, filled);
}

/** Offset of the end-of-central-directory record, searching back over a possible archive comment; -1 if none. */
function findEndOfCentralDirectory(view: DataView): number {
  const last = view.byteLength - EOCD_BYTES;
  const first = Math.max(0, last - MAX_COMMENT_BYTES);
  for (let at = last; at >= first; at--) {
    if (view.getUint32(at, true) === SIG_EOCD && at + EOCD_BYTES + view.getUint16(at + 20, true) === view.byteLength) {
      return at;
    }
  }
  return -1;
}
