/**
 * Crash-safe checkpoint folders of a run, whatever model wrote them: `<run>/checkpoints/iter-<9 digits>/`, each a
 * scenimefy-checkpoint folder (checkpoint.json + the files it lists). Training writes and prunes them; inference
 * picks the newest complete one. Nothing here knows what the weights hold.
 *
 * Crash safety: a checkpoint is written whole into a hidden sibling `.iter-….tmp-<pid>-<hex>` (each file fsynced)
 * and renamed into place, which is atomic on POSIX. Re-saving an existing folder moves the old one aside as
 * `.iter-….old-<pid>-<hex>` first; a crash between the two renames leaves that complete old folder, which
 * `latestCheckpoint` still finds and the next save or prune puts back. Pruning renames a folder to
 * `.iter-….deleting-<pid>-<hex>` before removing it, so a half-deleted checkpoint never carries a final name.
 * Killing the process at any moment therefore leaves every final-named folder complete.
 */
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';

import { UsageError, fsyncDir, readCheckpointManifest, type CheckpointManifest } from '@scenimefy/io';

export const CHECKPOINTS_FOLDER = 'checkpoints';
/** The manifest of every checkpoint folder. */
export const CHECKPOINT_MANIFEST_FILE = 'checkpoint.json';

const FINAL_NAME = /^iter-(\d{9,})$/;
/** Hidden work folders beside the final ones: `.<name>.<kind>-<pid>-<hex>`. */
const WORK_NAME = /^\.(.+)\.(tmp|old|deleting)-\d+-[0-9a-f]+$/;

/** `iter-000001000`: the folder name of the checkpoint after `iteration` steps. */
export function checkpointFolderName(iteration: number): string {
  if (!Number.isSafeInteger(iteration) || iteration < 0)
    throw new UsageError(`checkpoint iteration must be an integer ≥ 0, got ${String(iteration)}`);
  return `iter-${String(iteration).padStart(9, '0')}`;
}

/** `<runFolder>/checkpoints/iter-<9 digits>`: where a run keeps the checkpoint after `iteration` steps. */
export function checkpointFolderFor(runFolder: string, iteration: number): string {
  return path.join(runFolder, CHECKPOINTS_FOLDER, checkpointFolderName(iteration));
}

/**
 * `checkpoints/iter-000000006`: a path inside a folder as run.json, events.ndjson and dataset digests record it
 * (relative, `/`-separated on every platform).
 */
export function runRelativePath(runFolder: string, target: string): string {
  return path.relative(runFolder, target).split(path.sep).join('/');
}

// ---------------------------------------------------------------------------------------------------------
// Small file-system helpers

async function exists(p: string): Promise<boolean> {
  return (await fsp.stat(p).catch(() => undefined)) !== undefined;
}

function workName(finalName: string, kind: 'tmp' | 'old' | 'deleting'): string {
  return `.${finalName}.${kind}-${process.pid}-${randomBytes(6).toString('hex')}`;
}

/** Work folders of saves and prunes still running in this process: never cleaned as stale. */
const inFlight = new Set<string>();

/** Removes a folder by renaming it aside first, so no final-named folder is ever half deleted. */
async function removeFolder(folder: string): Promise<void> {
  const aside = path.join(path.dirname(folder), workName(path.basename(folder), 'deleting'));
  inFlight.add(aside);
  try {
    await fsp.rename(folder, aside);
    await fsyncDir(path.dirname(folder));
    await fsp.rm(aside, { recursive: true, force: true });
  } finally {
    inFlight.delete(aside);
  }
}

/**
 * Tidies `parent` after crashes: removes stale `.tmp` / `.deleting` work folders, puts back a complete `.old`
 * folder whose final name is missing (a crash while replacing it) and removes the other `.old` ones. Work folders
 * of this process's saves in progress are left alone; a run's lock keeps other processes out.
 */
export async function removeStaleWorkFolders(parent: string): Promise<void> {
  const entries = await fsp.readdir(parent).catch(() => [] as string[]);
  const restored = new Set<string>();
  for (const entry of entries) {
    const m = WORK_NAME.exec(entry);
    const full = path.join(parent, entry);
    if (m === null || inFlight.has(full)) continue;
    const [, finalName, kind] = m as unknown as [string, string, string];
    if (kind === 'old') {
      const target = path.join(parent, finalName);
      if (!restored.has(finalName) && !(await exists(target)) && (await checkpointFolderProblem(full)) === undefined) {
        await fsp.rename(full, target);
        await fsyncDir(parent);
        restored.add(finalName);
        continue;
      }
    }
    await fsp.rm(full, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------------------
// Write

/** fsync every regular file directly inside `dir` (the writers may or may not have). */
async function fsyncFiles(dir: string): Promise<void> {
  for (const entry of await fsp.readdir(dir, { withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const handle = await fsp.open(path.join(dir, entry.name), 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  }
}

/** Renames the finished work folder to `target`, replacing an existing folder of that name only after the new one is whole. */
async function moveIntoPlace(tmp: string, target: string): Promise<void> {
  const parent = path.dirname(target);
  if (!(await exists(target))) {
    await fsp.rename(tmp, target);
    await fsyncDir(parent);
    return;
  }
  const old = path.join(parent, workName(path.basename(target), 'old'));
  inFlight.add(old);
  try {
    await fsp.rename(target, old);
    await fsp.rename(tmp, target);
    await fsyncDir(parent);
    await fsp.rm(old, { recursive: true, force: true });
  } finally {
    inFlight.delete(old);
  }
}

/** Refuses a target that is a run folder or a folder holding something other than a checkpoint. */
export async function checkCheckpointTarget(folder: string): Promise<void> {
  const target = path.resolve(folder);
  if (await exists(path.join(target, 'run.json'))) {
    throw new UsageError(`${target} is a run folder; save a checkpoint into checkpointFolderFor(runFolder, iteration)`);
  }
  const existing = await fsp.stat(target).catch(() => undefined);
  if (
    existing !== undefined &&
    (!existing.isDirectory() || (!(await exists(path.join(target, CHECKPOINT_MANIFEST_FILE))) && (await fsp.readdir(target)).length > 0))
  ) {
    throw new UsageError(`${target} exists and holds no ${CHECKPOINT_MANIFEST_FILE}; refusing to replace it`);
  }
}

/**
 * Writes a checkpoint folder atomically: `write` fills a hidden temporary sibling of `folder` (and must write
 * checkpoint.json last: inside the work folder a checkpoint.json means every other file is there); its files are
 * fsynced and it is renamed to `folder`, replacing an existing checkpoint of that name only once the new one is
 * whole. Stale work folders of crashed writes beside it are removed first. Returns what `write` returns.
 *
 * Example:
 *   await writeCheckpointFolder(checkpointFolderFor(run, 5000), async (tmp) => {
 *     await writeSafetensors(path.join(tmp, 'weights.safetensors'), tensors);
 *     await writeCheckpointManifest(path.join(tmp, 'checkpoint.json'), manifest);
 *   });
 */
export async function writeCheckpointFolder<T>(folder: string, write: (tmpDir: string) => Promise<T>): Promise<T> {
  const target = path.resolve(folder);
  await checkCheckpointTarget(target);
  const parent = path.dirname(target);
  await fsp.mkdir(parent, { recursive: true });
  await removeStaleWorkFolders(parent);

  const tmp = path.join(parent, workName(path.basename(target), 'tmp'));
  inFlight.add(tmp);
  try {
    await fsp.mkdir(tmp);
    const result = await write(tmp);
    if (!(await exists(path.join(tmp, CHECKPOINT_MANIFEST_FILE)))) {
      throw new UsageError(`writeCheckpointFolder: the writer of ${target} wrote no ${CHECKPOINT_MANIFEST_FILE}`);
    }
    await fsyncFiles(tmp);
    await fsyncDir(tmp);
    await moveIntoPlace(tmp, target);
    return result;
  } finally {
    inFlight.delete(tmp);
    await fsp.rm(tmp, { recursive: true, force: true }).catch(() => undefined);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Completeness and discovery

/**
 * Why `folder` is not a complete checkpoint (its manifest unreadable or invalid, a listed file missing, the
 * weights of another size than recorded), or undefined when it is one.
 */
export async function checkpointFolderProblem(folder: string): Promise<string | undefined> {
  let manifest: CheckpointManifest;
  try {
    manifest = await readCheckpointManifest(path.join(folder, CHECKPOINT_MANIFEST_FILE));
  } catch (error) {
    return (error as Error).message;
  }
  const weights = await fsp.stat(path.join(folder, manifest.weights.file)).catch(() => undefined);
  if (weights?.isFile() !== true) return `${manifest.weights.file} is missing`;
  if (weights.size !== manifest.weights.size)
    return `${manifest.weights.file} has ${weights.size} bytes, checkpoint.json says ${manifest.weights.size}`;
  for (const file of [manifest.training?.optimizerFile, manifest.training?.rngFile]) {
    if (file !== undefined && (await fsp.stat(path.join(folder, file)).catch(() => undefined))?.isFile() !== true)
      return `${file} is missing`;
  }
  return undefined;
}

interface Candidate {
  iteration: number;
  folder: string;
  /** A final-named folder (not a `.old` one left by a crash while replacing). */
  final: boolean;
}

/** Final-named checkpoint folders and orphaned `.old` ones (their final name missing), newest first. */
async function candidates(runFolder: string): Promise<Candidate[]> {
  const dir = path.join(runFolder, CHECKPOINTS_FOLDER);
  const entries = await fsp.readdir(dir).catch(() => [] as string[]);
  const finals = new Set(entries.filter((e) => FINAL_NAME.test(e)));
  const out: Candidate[] = [];
  for (const entry of entries) {
    const final = FINAL_NAME.exec(entry);
    if (final !== null) {
      out.push({ iteration: Number(final[1]), folder: path.join(dir, entry), final: true });
      continue;
    }
    const work = WORK_NAME.exec(entry);
    const name = work?.[1];
    const iteration = name === undefined ? null : FINAL_NAME.exec(name);
    if (work?.[2] === 'old' && name !== undefined && iteration !== null && !finals.has(name)) {
      out.push({ iteration: Number(iteration[1]), folder: path.join(dir, entry), final: false });
    }
  }
  return out.sort((a, b) => b.iteration - a.iteration || Number(b.final) - Number(a.final));
}

/**
 * The newest complete checkpoint folder of a run (`<runFolder>/checkpoints/iter-…`), or undefined when there is
 * none. Complete: checkpoint.json valid and every file it lists present, the weights with the recorded size.
 * Read-only: it never removes anything, so it is safe while a trainer writes into the run.
 */
export async function latestCheckpoint(runFolder: string): Promise<string | undefined> {
  for (const c of await candidates(runFolder)) {
    if ((await checkpointFolderProblem(c.folder)) === undefined) return c.folder;
  }
  return undefined;
}

/** Accepts absolute paths, paths relative to the run folder (as run.json's `folder`) and bare folder names. */
function protectedFolders(runFolder: string, protect: readonly string[]): Set<string> {
  const out = new Set<string>();
  for (const p of protect) {
    out.add(path.resolve(runFolder, p));
    out.add(path.resolve(runFolder, CHECKPOINTS_FOLDER, p));
  }
  return out;
}

/**
 * Deletes every complete checkpoint of the run but the newest `keep` and those named in `protect` (absolute, relative
 * to the run folder, or bare names), oldest first; also clears work folders left by crashes. Folders that are not
 * complete checkpoints (e.g. of a newer format) are left alone. Returns the deleted folders.
 */
export async function pruneCheckpoints(runFolder: string, keep: number, protect: readonly string[] = []): Promise<string[]> {
  if (!Number.isSafeInteger(keep) || keep < 0) throw new UsageError(`pruneCheckpoints: keep must be an integer ≥ 0, got ${String(keep)}`);
  const dir = path.join(runFolder, CHECKPOINTS_FOLDER);
  await removeStaleWorkFolders(dir);
  const kept = protectedFolders(runFolder, protect);
  const complete: string[] = [];
  for (const c of await candidates(runFolder)) {
    if (c.final && (await checkpointFolderProblem(c.folder)) === undefined) complete.push(c.folder);
  }
  const doomed = complete.slice(keep).filter((f) => !kept.has(path.resolve(f)));
  doomed.reverse();
  for (const folder of doomed) await removeFolder(folder);
  if (doomed.length > 0) await fsyncDir(dir);
  return doomed;
}
