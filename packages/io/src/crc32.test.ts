import * as zlib from 'node:zlib';

import { seededUniform } from '@scenimefy/test-utils';

import { crc32, memberCrc32, registerCrc32 } from './crc32';

describe('crc32', () => {
  it('gives the check value of CRC-32/ISO-HDLC and agrees with zlib on every length around the 8-byte step', () => {
    expect(crc32(new TextEncoder().encode('123456789'))).toBe(0xcbf43926);
    expect(crc32(new Uint8Array(0))).toBe(0);
    const bytes = Uint8Array.from(seededUniform(7, 1000, 0, 1), (v) => Math.floor(v * 255.99));
    for (let n = 0; n <= 40; n++) expect(crc32(bytes.subarray(3, 3 + n))).toBe(zlib.crc32(bytes.subarray(3, 3 + n)));
    expect(crc32(bytes)).toBe(zlib.crc32(bytes));
  });

  it('continues from the CRC of the bytes before', () => {
    const bytes = Uint8Array.from({ length: 100 }, (_, i) => (i * 37) & 0xff);
    expect(crc32(bytes.subarray(45), crc32(bytes.subarray(0, 45)))).toBe(crc32(bytes));
  });
});

describe('memberCrc32', () => {
  it("is node:zlib's once the Node entry has loaded, and whatever a runtime registers", () => {
    require('./crc32-node');
    const bytes = Uint8Array.from({ length: 1000 }, (_, i) => (i * 131) & 0xff);
    expect(memberCrc32(bytes)).toBe(zlib.crc32(bytes));
    const seen: number[] = [];
    registerCrc32((b) => {
      seen.push(b.length);
      return crc32(b);
    });
    try {
      expect(memberCrc32(bytes)).toBe(crc32(bytes));
      expect(seen).toEqual([1000]);
    } finally {
      registerCrc32(crc32);
    }
  });
});
