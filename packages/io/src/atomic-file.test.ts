import { promises as fsp, readdirSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { produceFileAtomic, sha256File, sha256Hex, writeFileAtomic } from './atomic-file';
import { InputError } from './errors';

let dir: string;
beforeEach(async () => {
  dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'scenimefy-atomic-'));
});
afterEach(async () => {
  await fsp.rm(dir, { recursive: true, force: true });
});

describe('writeFileAtomic', () => {
  it('writes strings, bytes and chunk streams, replacing an old file whole', async () => {
    const f = path.join(dir, 'a.json');
    await writeFileAtomic(f, 'old');
    await writeFileAtomic(f, new Uint8Array([104, 105]));
    expect(await fsp.readFile(f, 'utf8')).toBe('hi');
    async function* chunks() {
      yield new Uint8Array([1, 2]);
      yield new Uint8Array([3]);
    }
    await writeFileAtomic(f, chunks());
    expect([...(await fsp.readFile(f))]).toEqual([1, 2, 3]);
    expect(readdirSync(dir)).toEqual(['a.json']);
  });

  it('leaves the old file and no temp file when the producer fails midway', async () => {
    const f = path.join(dir, 'b.bin');
    await writeFileAtomic(f, 'keep me');
    async function* failing() {
      yield new Uint8Array([1, 2, 3]);
      throw new Error('disk on fire');
    }
    await expect(writeFileAtomic(f, failing())).rejects.toThrow('disk on fire');
    expect(await fsp.readFile(f, 'utf8')).toBe('keep me');
    expect(readdirSync(dir)).toEqual(['b.bin']);
  });

  it('names the target when its folder does not exist', async () => {
    const f = path.join(dir, 'missing', 'c.txt');
    const err = await writeFileAtomic(f, 'x').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InputError);
    expect((err as Error).message).toBe(`${f}: cannot write (ENOENT: folder does not exist)`);
  });

  it('produceFileAtomic renames what the producer wrote and cleans up after a failure', async () => {
    const f = path.join(dir, 'd.txt');
    await produceFileAtomic(f, (tmp) => fsp.writeFile(tmp, 'made'));
    expect(await fsp.readFile(f, 'utf8')).toBe('made');
    await expect(
      produceFileAtomic(f, async (tmp) => {
        await fsp.writeFile(tmp, 'half');
        throw new Error('encoder crashed');
      }),
    ).rejects.toThrow('encoder crashed');
    expect(await fsp.readFile(f, 'utf8')).toBe('made');
    expect(readdirSync(dir)).toEqual(['d.txt']);
  });
});

describe('sha256', () => {
  it('hashes bytes and files to the known digest of "abc"', async () => {
    const abc = 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad';
    expect(sha256Hex('abc')).toBe(abc);
    const f = path.join(dir, 'abc.txt');
    await fsp.writeFile(f, 'abc');
    expect(await sha256File(f)).toBe(abc);
  });

  it('names a missing file', async () => {
    const f = path.join(dir, 'nope');
    await expect(sha256File(f)).rejects.toThrow(`${f}: cannot read (ENOENT)`);
  });
});
