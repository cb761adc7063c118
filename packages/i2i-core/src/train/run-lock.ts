/**
 * The lock of a run folder: `run.lock`, created exclusively (O_EXCL) and holding the trainer's pid, host name
 * and start time, so two trainers never write into one run (the second would delete the first's checkpoint temp
 * folders and list checkpoints that do not exist). A second trainer is refused with a UsageError naming the holder.
 *
 * Stale rule: a lock whose holder ran on this host and whose pid is no longer alive (kill -9, power loss) is taken
 * over, and the caller notes it in the run's events. A lock of another host cannot be judged and is never taken
 * over. No heartbeat: a synchronous training step can block the event loop for many seconds, so a timer-based
 * freshness check (proper-lockfile's mtime) would call a live trainer stale.
 *
 * The lock is released (the file removed) when the run ends, and on process exit if it is still held (a second
 * Ctrl-C exits at once).
 */
import { randomBytes } from 'node:crypto';
import { promises as fsp, unlinkSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { UsageError } from '@scenimefy/io';

export const RUN_LOCK_FILE = 'run.lock';

export interface RunLockHolder {
  readonly pid: number;
  readonly hostname: string;
  /** When the holder took the lock (ISO 8601). */
  readonly startedAt: string;
}

/** Locks this process holds, by file: a lock carrying our own pid that is not among them is a stale one of an earlier process. */
const held = new Map<string, RunLock>();
/** Locks this process is creating right now (registered before the file exists, so a second acquirer here never sees ours as stale). */
const creating = new Map<string, RunLockHolder>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const lock of held.values()) lock.releaseSync();
  });
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: the process exists but belongs to someone else.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function parseHolder(text: string): RunLockHolder | undefined {
  try {
    const json = JSON.parse(text) as Partial<RunLockHolder>;
    if (Number.isSafeInteger(json.pid) && typeof json.hostname === 'string' && typeof json.startedAt === 'string') {
      return { pid: json.pid as number, hostname: json.hostname, startedAt: json.startedAt };
    }
  } catch {
    // A lock file cut short by a crash right after its creation: judged below by its age.
  }
  return undefined;
}

/** `pid 4242 on host gpu-1 since 2025-01-31T12:00:00.000Z`. */
export function describeLockHolder(holder: RunLockHolder): string {
  return `pid ${holder.pid} on host ${holder.hostname} since ${holder.startedAt}`;
}

export interface AcquiredRunLock {
  readonly lock: RunLock;
  /** The stale lock this one replaced, if any (its holder was dead). */
  readonly tookOver: RunLockHolder | undefined;
}

export class RunLock {
  private released = false;

  private constructor(
    readonly file: string,
    readonly holder: RunLockHolder,
  ) {}

  /**
   * Takes the lock of `runFolder` (which must exist), taking over a stale one. UsageError when another live trainer
   * (or one of another host) holds it.
   */
  static async acquire(runFolder: string): Promise<AcquiredRunLock> {
    const file = path.join(path.resolve(runFolder), RUN_LOCK_FILE);
    const holder: RunLockHolder = { pid: process.pid, hostname: os.hostname(), startedAt: new Date().toISOString() };
    const text = `${JSON.stringify(holder, null, 2)}\n`;
    let tookOver: RunLockHolder | undefined;
    // Each round either creates the lock, refuses, or removes a stale one and tries again.
    for (let round = 0; round < 5; round++) {
      const inProcess = creating.get(file);
      if (inProcess !== undefined) throw RunLock.heldBy(runFolder, inProcess, file);
      {
        creating.set(file, holder);
        try {
          const handle = await fsp.open(file, 'wx', 0o644);
          try {
            await handle.writeFile(text);
            await handle.sync();
          } finally {
            await handle.close();
          }
          const lock = new RunLock(file, holder);
          held.set(file, lock);
          installExitHook();
          return { lock, tookOver };
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
        } finally {
          creating.delete(file);
        }
      }
      const existing = await fsp.readFile(file, 'utf8').catch(() => undefined);
      if (existing === undefined) continue; // released meanwhile
      const other = parseHolder(existing);
      if (other === undefined) {
        // Unreadable: a crash between creating and writing it, if it is old enough; otherwise a writer still at it.
        const age = Date.now() - ((await fsp.stat(file).catch(() => undefined))?.mtimeMs ?? Date.now());
        if (age < 10_000) throw new UsageError(`${runFolder}: another trainer is taking the run's lock (${RUN_LOCK_FILE}); try again`);
      } else if (!RunLock.isStale(other, file)) {
        throw RunLock.heldBy(runFolder, other, file);
      }
      if (await RunLock.removeIfUnchanged(file, existing)) tookOver = other ?? tookOver;
    }
    throw new UsageError(`${runFolder}: could not take the run's lock (${RUN_LOCK_FILE}): it keeps changing`);
  }

  private static heldBy(runFolder: string, other: RunLockHolder, file: string): UsageError {
    return new UsageError(
      `${runFolder}: another trainer holds this run (${describeLockHolder(other)}); wait for it to end or use another --out` +
        (other.hostname === os.hostname() ? '' : ` (if it is dead, remove ${file})`),
    );
  }

  /** Dead holder on this host; or our own pid, left by an earlier process that had it (a restarted container) and not held by us. */
  private static isStale(other: RunLockHolder, file: string): boolean {
    if (other.hostname !== os.hostname()) return false;
    if (other.pid === process.pid) return !held.has(file) && !creating.has(file);
    return !isAlive(other.pid);
  }

  /**
   * Removes the lock file only if it still holds `expected`: it is moved aside under a unique name (atomic), then
   * checked; a lock some other trainer took meanwhile is put back.
   */
  private static async removeIfUnchanged(file: string, expected: string): Promise<boolean> {
    const aside = `${file}.stale-${process.pid}-${randomBytes(6).toString('hex')}`;
    try {
      await fsp.rename(file, aside);
    } catch {
      return false; // gone already: someone else took it over
    }
    const moved = await fsp.readFile(aside, 'utf8').catch(() => undefined);
    if (moved === expected) {
      await fsp.rm(aside, { force: true });
      return true;
    }
    // A fresh lock taken between our read and our rename: put it back (link fails if yet another one exists).
    await fsp.link(aside, file).catch(() => undefined);
    await fsp.rm(aside, { force: true });
    return false;
  }

  /** Removes the lock file (if it is still ours). Releasing twice is harmless. */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    held.delete(this.file);
    const current = await fsp.readFile(this.file, 'utf8').catch(() => undefined);
    const holder = current === undefined ? undefined : parseHolder(current);
    const ours =
      holder !== undefined &&
      holder.pid === this.holder.pid &&
      holder.hostname === this.holder.hostname &&
      holder.startedAt === this.holder.startedAt;
    if (ours) await fsp.rm(this.file, { force: true });
  }

  /** For process exit, where nothing asynchronous runs any more. */
  releaseSync(): void {
    if (this.released) return;
    this.released = true;
    held.delete(this.file);
    try {
      unlinkSync(this.file);
    } catch {
      // Already gone.
    }
  }
}
