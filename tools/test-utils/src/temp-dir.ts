/** Temporary folders for tests, removed afterwards even when the test throws. */
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { UsageError } from '@scenimefy/io';

export interface TempDir {
  dir: string;
  /** Remove the folder and everything in it; safe to call twice. */
  cleanup: () => Promise<void>;
}

/** A new empty folder under the OS temp dir, named `scenimefy-<prefix>-XXXXXX`. */
export async function makeTempDir(prefix = 'test'): Promise<TempDir> {
  if (/[\\/]/.test(prefix)) throw new UsageError(`makeTempDir: prefix must not contain a path separator, got ${JSON.stringify(prefix)}`);
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), `scenimefy-${prefix}-`));
  return { dir, cleanup: () => fsp.rm(dir, { recursive: true, force: true }) };
}

/** Run `fn` with a fresh temp folder and remove it afterwards, whether `fn` returns or throws. */
export async function withTempDir<T>(fn: (dir: string) => Promise<T> | T, prefix = 'test'): Promise<T> {
  const { dir, cleanup } = await makeTempDir(prefix);
  try {
    return await fn(dir);
  } finally {
    await cleanup();
  }
}
