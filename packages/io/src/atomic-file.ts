/**
 * Atomic file writes: the data goes to a temp file in the same folder, is fsynced, then renamed over the
 * target, and the folder is fsynced. A crash at any moment leaves the old file or the new one, never a torn one.
 */
import { createHash, randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';

import { InputError } from './errors';
import { openRegularFile } from './regular-file';

export interface AtomicWriteOptions {
  /** File mode of the new file (default 0o644). */
  mode?: number;
}

/**
 * A temp path beside `target` that no other writer will pick: `.<name>.<pid>.<12 hex>.tmp`, removed by the caller
 * on failure. The writer's pid in the name is what lets `removeStaleTempFiles` tell a dead writer's leftover.
 */
export function tempPathFor(target: string): string {
  const dir = path.dirname(target);
  return path.join(dir, `.${path.basename(target)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
}

/** The names `tempPathFor` makes; group 1 is the writer's pid. */
const TEMP_NAME = /^\..+\.([1-9]\d{0,9})\.[0-9a-f]{12}\.tmp$/;

export interface RemoveStaleTempFilesOptions {
  /** Keep temp files modified less than this long ago, whoever wrote them (default 60 s). */
  graceMs?: number;
}

/**
 * Remove the temp files that writers killed mid-write (kill -9, power loss) left in `folder`: files named as
 * `tempPathFor` names them whose writer's pid is not alive on this host and that have not been modified for
 * `graceMs`. Nothing else is touched: not other files, not folders or links of that name, not files of live
 * writers (a pid that is alive, even someone else's, counts as alive), not subfolders. Returns the paths removed;
 * a folder that does not exist has none. Call it before writing into an output or run folder.
 */
export async function removeStaleTempFiles(folder: string, options: RemoveStaleTempFilesOptions = {}): Promise<string[]> {
  const graceMs = options.graceMs ?? 60_000;
  let names: string[];
  try {
    names = await fsp.readdir(folder);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return [];
    throw new InputError(`cannot list folder (${code ?? 'EIO'})`, { file: folder, cause: error });
  }
  const removed: string[] = [];
  const now = Date.now();
  for (const name of names) {
    const match = TEMP_NAME.exec(name);
    if (match === null || isProcessAlive(Number(match[1]))) continue;
    const file = path.join(folder, name);
    const stats = await fsp.lstat(file).catch(() => undefined);
    if (stats === undefined || !stats.isFile() || now - stats.mtimeMs < graceMs) continue;
    // Gone already (another cleaner was first) is as good as removed by us; anything else is worth hearing about.
    await fsp.rm(file).then(
      () => removed.push(file),
      (error: NodeJS.ErrnoException) => {
        if (error.code !== 'ENOENT') throw new InputError(`cannot remove stale temp file (${error.code ?? 'EIO'})`, { file, cause: error });
      },
    );
  }
  return removed;
}

/** Whether a process with this pid exists on this host (signal 0 checks without sending anything). */
function isProcessAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists but belongs to someone else. Only ESRCH says there is no such process.
    return (error as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

/** fsync a folder so a rename inside it is durable; a no-op where the file system refuses folder fsync. */
export async function fsyncDir(dir: string): Promise<void> {
  let handle: fsp.FileHandle | undefined;
  try {
    handle = await fsp.open(dir, 'r');
    await handle.sync();
  } catch {
    // Some file systems refuse fsync on directories; the rename itself is still atomic there.
  } finally {
    await handle?.close();
  }
}

/**
 * Write `data` (or the chunks it yields) to `target` atomically.
 * Throws InputError naming the target when the folder is missing or not writable.
 */
export async function writeFileAtomic(
  target: string,
  data: string | Uint8Array | Iterable<Uint8Array> | AsyncIterable<Uint8Array>,
  options: AtomicWriteOptions = {},
): Promise<void> {
  const tmp = tempPathFor(target);
  let handle: fsp.FileHandle | undefined;
  try {
    handle = await fsp.open(tmp, 'wx', options.mode ?? 0o644);
    if (typeof data === 'string' || data instanceof Uint8Array) {
      await handle.writeFile(data);
    } else {
      for await (const chunk of data as AsyncIterable<Uint8Array>) await handle.write(chunk);
    }
    await handle.sync();
    await handle.close();
    handle = undefined;
    await fsp.rename(tmp, target);
    await fsyncDir(path.dirname(target));
  } catch (error) {
    await handle?.close().catch(() => undefined);
    await fsp.rm(tmp, { force: true }).catch(() => undefined);
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'EACCES' || code === 'EPERM' || code === 'EROFS' || code === 'ENOTDIR' || code === 'EISDIR') {
      throw new InputError(`cannot write (${code}: ${describeErrno(code)})`, { file: target, cause: error });
    }
    throw error;
  }
}

/**
 * Run `produce(tmpPath)` to create a file (e.g. with a library that writes to a path), then rename it over
 * `target` atomically. The temp file is removed if `produce` throws.
 */
export async function produceFileAtomic(target: string, produce: (tmpPath: string) => Promise<void>): Promise<void> {
  const tmp = tempPathFor(target);
  try {
    await produce(tmp);
    const handle = await fsp.open(tmp, 'r+');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
    await fsp.rename(tmp, target);
    await fsyncDir(path.dirname(target));
  } catch (error) {
    await fsp.rm(tmp, { force: true }).catch(() => undefined);
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'EACCES' || code === 'EPERM' || code === 'EROFS' || code === 'ENOTDIR') {
      throw new InputError(`cannot write (${code}: ${describeErrno(code)})`, { file: target, cause: error });
    }
    throw error;
  }
}

function describeErrno(code: string): string {
  switch (code) {
    case 'ENOENT':
      return 'folder does not exist';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'EROFS':
      return 'read-only file system';
    case 'ENOTDIR':
      return 'a parent is not a folder';
    case 'EISDIR':
      return 'target is a folder';
    default:
      return code;
  }
}

/** Hex sha256 of bytes. */
export function sha256Hex(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Hex sha256 of a file, streamed (constant memory). */
export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  try {
    const handle = await openRegularFile(file, 'file to hash');
    // The stream closes the handle when it ends or fails.
    for await (const chunk of handle.createReadStream()) hash.update(chunk as Buffer);
  } catch (error) {
    if (error instanceof InputError) throw error;
    const code = (error as NodeJS.ErrnoException).code ?? 'EIO';
    throw new InputError(`cannot read (${code})`, { file, cause: error });
  }
  return hash.digest('hex');
}
