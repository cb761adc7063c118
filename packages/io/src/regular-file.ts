/**
 * Only regular files are read. A FIFO opened for reading blocks until a writer comes (a `--model` FIFO hung
 * forever), `/dev/zero` never ends, and a socket or folder is not data: each is refused with an InputError that
 * says what it is. The path is checked with stat (links followed) before anything opens it, and the opened handle
 * again (it is opened non-blocking, so a file swapped for a FIFO in between cannot block either).
 */
import { type Stats, constants as fsConstants, promises as fsp } from 'node:fs';

import { InputError, quoteValue } from './errors';

/** O_NONBLOCK where the platform has it: opening a FIFO then returns at once instead of waiting for a writer. */
const OPEN_FLAGS = fsConstants.O_RDONLY | (fsConstants.O_NONBLOCK ?? 0);

/** What a path is, in words: 'a regular file', 'a folder', 'a FIFO (named pipe)', 'a socket', 'a character device', … */
export function describeFileKind(stats: Stats): string {
  if (stats.isFile()) return 'a regular file';
  if (stats.isDirectory()) return 'a folder';
  if (stats.isFIFO()) return 'a FIFO (named pipe)';
  if (stats.isSocket()) return 'a socket';
  if (stats.isCharacterDevice()) return 'a character device';
  if (stats.isBlockDevice()) return 'a block device';
  return 'not a regular file';
}

/**
 * The stats of `file` (links followed) when it is a regular file. Otherwise an InputError naming what it is, e.g.
 * `in.fifo: cannot read the model: is a FIFO (named pipe), not a regular file`, `z: … is a symbolic link to
 * "/dev/zero", a character device, not a regular file`, `x: … is a symbolic link to "gone", which does not exist`,
 * or `nope.pth: … no such file`. `what` names what the caller wanted to read (default 'it').
 */
export async function assertRegularFile(file: string, what = 'it'): Promise<Stats> {
  let stats: Stats;
  try {
    stats = await fsp.stat(file);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      throw (await danglingLinkError(file, what, error)) ?? new InputError(`cannot read ${what}: no such file`, { file, cause: error });
    }
    if (code === 'ENOTDIR') throw new InputError(`cannot read ${what}: no such file (a parent is not a folder)`, { file, cause: error });
    if (code === 'EACCES' || code === 'EPERM') throw new InputError(`cannot read ${what}: permission denied`, { file, cause: error });
    throw new InputError(`cannot read ${what} (${code ?? 'EIO'})`, { file, cause: error });
  }
  if (!stats.isFile()) throw await notRegularError(file, what, stats);
  return stats;
}

/**
 * Open `file` for reading once it is known to be a regular file. For one that is not, an InputError as
 * `assertRegularFile` gives, except that a folder and a missing file come back as the errors opening or reading
 * them gives (`EISDIR`, `ENOENT`), so that each reader words those as it always has. A dangling link is an
 * InputError naming its target.
 */
export async function openRegularFile(file: string, what: string): Promise<fsp.FileHandle> {
  let stats: Stats | undefined;
  try {
    stats = await fsp.stat(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      const dangling = await danglingLinkError(file, what, error);
      if (dangling !== undefined) throw dangling;
    }
    throw error;
  }
  if (stats.isDirectory()) throw eisdir(file);
  if (!stats.isFile()) throw await notRegularError(file, what, stats);
  const handle = await fsp.open(file, OPEN_FLAGS);
  try {
    const opened = await handle.stat();
    if (opened.isDirectory()) throw eisdir(file);
    if (!opened.isFile()) throw await notRegularError(file, what, opened);
    return handle;
  } catch (error) {
    await handle.close().catch(() => undefined);
    throw error;
  }
}

async function notRegularError(file: string, what: string, stats: Stats): Promise<InputError> {
  const kind = describeFileKind(stats);
  const target = await linkTarget(file);
  const is = target === undefined ? `is ${kind}` : `is a symbolic link to ${quoteValue(target)}, ${kind}`;
  return new InputError(`cannot read ${what}: ${is}, not a regular file`, { file });
}

/** An InputError naming the missing target when `file` is a dangling symbolic link, else undefined. */
export async function danglingLinkError(file: string, what: string, cause: unknown): Promise<InputError | undefined> {
  const target = await linkTarget(file);
  if (target === undefined) return undefined;
  return new InputError(`cannot read ${what}: is a symbolic link to ${quoteValue(target)}, which does not exist`, { file, cause });
}

/** The target of `file` when it is a symbolic link, else undefined. */
async function linkTarget(file: string): Promise<string | undefined> {
  try {
    const stats = await fsp.lstat(file);
    return stats.isSymbolicLink() ? await fsp.readlink(file) : undefined;
  } catch {
    return undefined;
  }
}

/** The error reading a folder as a file gives, so that callers word it as they always have. */
function eisdir(file: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`EISDIR: illegal operation on a directory, read '${file}'`), {
    code: 'EISDIR',
    errno: -21,
    syscall: 'read',
    path: file,
  });
}
