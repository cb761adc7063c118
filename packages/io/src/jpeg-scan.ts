/**
 * How much entropy-coded data a JPEG holds against what its frame header claims. libjpeg fills a scan that ends
 * early with grey and only warns, so a 600-byte file whose SOF says 16000×16000 decodes into a 256-megapixel
 * image (sharp's `failOn: 'error'` lets it through). Huffman coding spends at least one bit on every 8×8 block of
 * every component (its DC code; in a progressive file, in the first DC scan), so a file with far less scan data
 * than that cannot be a whole image. Only the marker structure is read; nothing is decoded.
 */

export interface JpegScanSummary {
  width: number;
  height: number;
  /** 8×8 blocks of all components, as the frame's sampling factors make them. */
  blocks: number;
  /** Bytes of entropy-coded data in all scans (restart markers and stuffed zero bytes included). */
  scanBytes: number;
  /** Arithmetic coding (SOF9–SOF15) can spend much less than a bit per block: no bound applies. */
  arithmetic: boolean;
}

/**
 * Scan data below this fraction of a bit per block is refused: half the least a whole Huffman-coded image can
 * have, i.e. about one byte per 1024 pixels of a greyscale image. Real photos have 1 byte per 1–10 pixels.
 */
export const MIN_SCAN_BITS_PER_BLOCK = 0.5;

/** The frame and scan sizes of a JPEG, or undefined when the bytes are not a JPEG with a frame header. */
export function summarizeJpegScans(bytes: Uint8Array): JpegScanSummary | undefined {
  if (bytes.length < 4 || bytes[0] !== 0xff || bytes[1] !== 0xd8) return undefined;
  let frame: Omit<JpegScanSummary, 'scanBytes'> | undefined;
  let scanBytes = 0;
  let at = 2;
  while (at + 1 < bytes.length) {
    if (bytes[at] !== 0xff) {
      at++; // stray bytes between segments: libjpeg skips them with a warning
      continue;
    }
    const marker = bytes[at + 1]!;
    if (marker === 0xff) {
      at++; // fill byte
      continue;
    }
    at += 2;
    if (marker === 0xd9) break; // EOI
    if (marker === 0xd8 || marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) continue; // no length
    if (at + 2 > bytes.length) break;
    const length = (bytes[at]! << 8) | bytes[at + 1]!;
    const segment = at + 2;
    if (isStartOfFrame(marker) && frame === undefined && segment + 6 <= bytes.length) {
      frame = readFrame(bytes, segment, Math.min(bytes.length, at + length), marker);
    }
    at += length;
    if (marker === 0xda) {
      // Entropy-coded data runs to the next marker other than a stuffed zero or a restart marker.
      const start = at;
      while (at + 1 < bytes.length) {
        if (bytes[at] === 0xff) {
          const next = bytes[at + 1]!;
          if (next !== 0x00 && !(next >= 0xd0 && next <= 0xd7)) break;
        }
        at++;
      }
      if (at + 1 >= bytes.length) at = bytes.length;
      scanBytes += at - start;
    }
  }
  return frame === undefined ? undefined : { ...frame, scanBytes };
}

/**
 * Why a JPEG is too short for the image its header claims, or undefined when it is not (or has no bound, as with
 * arithmetic coding or a height given later by a DNL marker).
 */
export function jpegShortfall(bytes: Uint8Array): string | undefined {
  const s = summarizeJpegScans(bytes);
  if (s === undefined || s.arithmetic || s.height === 0 || s.blocks === 0) return undefined;
  const needed = Math.ceil((s.blocks * MIN_SCAN_BITS_PER_BLOCK) / 8);
  if (s.scanBytes >= needed) return undefined;
  return `${s.width}×${s.height} pixels need at least ${needed} bytes of scan data, the file holds ${s.scanBytes}`;
}

function isStartOfFrame(marker: number): boolean {
  return marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
}

function readFrame(bytes: Uint8Array, at: number, end: number, marker: number): Omit<JpegScanSummary, 'scanBytes'> {
  const height = (bytes[at + 1]! << 8) | bytes[at + 2]!;
  const width = (bytes[at + 3]! << 8) | bytes[at + 4]!;
  const count = bytes[at + 5]!;
  const sampling: Array<[number, number]> = [];
  for (let c = 0, p = at + 6; c < count && p + 3 <= end; c++, p += 3) {
    sampling.push([Math.max(1, bytes[p + 1]! >> 4), Math.max(1, bytes[p + 1]! & 0x0f)]);
  }
  const hMax = Math.max(1, ...sampling.map(([h]) => h));
  const vMax = Math.max(1, ...sampling.map(([, v]) => v));
  let blocks = 0;
  for (const [h, v] of sampling) {
    blocks += Math.ceil(Math.ceil((width * h) / hMax) / 8) * Math.ceil(Math.ceil((height * v) / vMax) / 8);
  }
  return { width, height, blocks, arithmetic: marker >= 0xc9 };
}
