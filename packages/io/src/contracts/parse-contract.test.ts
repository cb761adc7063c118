import { promises as fsp } from 'node:fs';
import * as path from 'node:path';

import { withTempDir } from '@scenimefy/test-utils';
import { z } from 'zod';

import { ContractError } from '../errors';
import { headerShape, olderContractVersion, type Contract, type ContractIssue } from './common';
import { readContract, writeContract } from './contract-files';
import { parseContract } from './parse-contract';

// A toy contract in its third version; version 1 listed one `tag`, version 3 lists `tags` (unique, at most 3).
// Version 2 was never released, so it is not read.
const toyV1Schema = z.strictObject({ ...headerShape('scenimefy-run', 1), tag: z.string().min(1), retired: z.boolean() });
type ToyV1 = z.infer<typeof toyV1Schema>;
const toySchema = z.strictObject({ ...headerShape('scenimefy-run', 3), tags: z.array(z.string().min(1)).max(3) });
type Toy = z.infer<typeof toySchema>;

const uniqueTags = (m: Toy): ContractIssue[] =>
  new Set(m.tags).size === m.tags.length ? [] : [{ path: ['tags'], message: 'lists a tag twice' }];

const toyContract: Contract<Toy> = Object.freeze({
  format: 'scenimefy-run',
  formatVersion: 3,
  fileName: 'toy.json',
  title: 'Toy manifest',
  schema: toySchema,
  crossFieldIssues: uniqueTags,
  olderVersions: [
    olderContractVersion<Toy, ToyV1>({
      formatVersion: 1,
      schema: toyV1Schema,
      crossFieldIssues: (old) => (old.retired && old.tag === 'live' ? [{ path: ['tag'], message: 'a retired entry is not "live"' }] : []),
      // v1's tag "a,b" was already a list in all but name; v3 splits it.
      upgrade: ({ generatedBy, createdAt, tag }) => ({
        format: 'scenimefy-run',
        formatVersion: 3,
        generatedBy,
        createdAt,
        tags: tag.split(','),
      }),
    }),
  ],
});

const header = (formatVersion: number) => ({
  format: 'scenimefy-run',
  formatVersion,
  generatedBy: { name: '@scenimefy/io', version: '0.1.0' },
  createdAt: '2025-01-31T12:00:00.000Z',
});

function parseError(value: unknown): ContractError {
  try {
    parseContract(JSON.stringify(value), 'toy.json', toyContract);
  } catch (error) {
    expect(error).toBeInstanceOf(ContractError);
    return error as ContractError;
  }
  throw new Error('expected a ContractError');
}

describe('parseContract with older versions', () => {
  it('reads the current version as it is', () => {
    expect(parseContract(JSON.stringify({ ...header(3), tags: ['x'] }), 'toy.json', toyContract)).toEqual({ ...header(3), tags: ['x'] });
  });

  it('checks an older version against its own schema, then upgrades it to the current one', () => {
    const old = { ...header(1), tag: 'a,b', retired: false };
    expect(parseContract(JSON.stringify(old), 'toy.json', toyContract)).toEqual({ ...header(3), tags: ['a', 'b'] });
  });

  it("refuses an older file that breaks that version's schema or cross-field rules, naming the field", () => {
    const noTag = parseError({ ...header(1), retired: false });
    expect(noTag.field).toBe('tag');
    expect(noTag.message).toBe('toy.json: tag: Invalid input: expected string, received undefined');
    // A v3 field in a v1 file is an unknown field of v1.
    expect(parseError({ ...header(1), tag: 'a', retired: false, tags: [] }).message).toBe('toy.json: tags: unknown field');
    expect(parseError({ ...header(1), tag: 'live', retired: true }).message).toBe('toy.json: tag: a retired entry is not "live"');
  });

  it('refuses what the upgrade makes of an old file when the current contract forbids it', () => {
    expect(parseError({ ...header(1), tag: 'a,a', retired: false }).message).toBe(
      'toy.json: tags: lists a tag twice (after upgrading from formatVersion 1)',
    );
    expect(parseError({ ...header(1), tag: 'a,b,c,d', retired: false }).field).toBe('tags');
  });

  it('names the versions it reads for an unread older version, a newer one, or none', () => {
    expect(parseError({ ...header(2), tags: [] }).message).toBe(
      'toy.json: formatVersion: scenimefy-run formatVersion 2 is not supported; this version reads 3 (and older 1)',
    );
    expect(parseError({ ...header(4), tags: [] }).message).toBe(
      'toy.json: formatVersion: written by a newer Scenimefy.js (formatVersion 4); this version reads 3 (and older 1)',
    );
    const { formatVersion: _, ...noVersion } = header(1);
    expect(parseError(noVersion).message).toBe('toy.json: formatVersion: missing; this version reads 3 (and older 1)');
  });

  it('writes only the current version', () =>
    withTempDir(async (dir) => {
      const file = path.join(dir, 'toy.json');
      const old = { ...header(1), tag: 'a', retired: false } as unknown as Toy;
      await expect(writeContract(file, toyContract, old)).rejects.toThrow(
        `${file}: formatVersion: Invalid input: expected 3; tags: Invalid input: expected array, received undefined; tag: unknown field (and 1 more) (not written)`,
      );
      await fsp.writeFile(file, JSON.stringify(old));
      // Reading an old file and writing it back upgrades it on disk.
      await writeContract(file, toyContract, await readContract(file, toyContract));
      expect(JSON.parse(await fsp.readFile(file, 'utf8'))).toEqual({ ...header(3), tags: ['a'] });
    }));
});
