import { existsSync, promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { UsageError } from '@scenimefy/io';

import { makeTempDir, withTempDir } from './temp-dir';

describe('makeTempDir', () => {
  it('creates an empty folder under the OS temp dir and removes it with its contents', async () => {
    const { dir, cleanup } = await makeTempDir('unit');
    expect(path.dirname(dir)).toBe(os.tmpdir());
    expect(path.basename(dir)).toMatch(/^scenimefy-unit-/);
    expect(await fsp.readdir(dir)).toEqual([]);
    await fsp.mkdir(path.join(dir, 'a', 'b'), { recursive: true });
    await fsp.writeFile(path.join(dir, 'a', 'b', 'f'), 'x');
    await cleanup();
    expect(existsSync(dir)).toBe(false);
    await cleanup();
  });

  it('gives different folders to concurrent callers and refuses a prefix with a separator', async () => {
    const [a, b] = await Promise.all([makeTempDir(), makeTempDir()]);
    expect(a.dir).not.toBe(b.dir);
    await Promise.all([a.cleanup(), b.cleanup()]);
    await expect(makeTempDir('../escape')).rejects.toBeInstanceOf(UsageError);
  });
});

describe('withTempDir', () => {
  it('returns the callback result and removes the folder', async () => {
    let seen = '';
    const result = await withTempDir(async (dir) => {
      seen = dir;
      await fsp.writeFile(path.join(dir, 'f'), 'x');
      return 42;
    });
    expect(result).toBe(42);
    expect(existsSync(seen)).toBe(false);
  });

  it('removes the folder when the callback throws, and rethrows', async () => {
    let seen = '';
    await expect(
      withTempDir((dir) => {
        seen = dir;
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    expect(seen).not.toBe('');
    expect(existsSync(seen)).toBe(false);
  });
});
