/**
 * Dataset folders on disk (Node): building a `scenimefy-dataset` manifest from `trainA/`/`trainB/` the way the
 * reference loader lists them, and verifying a manifest's digests against the folder. The contract itself is
 * dataset-manifest.ts.
 */
import { type Dirent, promises as fsp } from 'node:fs';
import * as path from 'node:path';

import { sha256File } from '../atomic-file';
import { ContractError, InputError } from '../errors';
import { artifactHeader, formatIssuePath, isSafeRelativePath, type GeneratedBy } from './common';
import {
  datasetContract,
  isReferenceImageFile,
  type DatasetFile,
  type DatasetKind,
  type DatasetManifest,
  type DatasetPair,
  type DatasetSelection,
} from './dataset-manifest';
import { contractIssues } from './parse-contract';

export interface DatasetProgress {
  /** Files finished so far. */
  done: number;
  total: number;
  /** The file just finished (manifest path). */
  path: string;
}

export interface DatasetProblem {
  path: string;
  problem: 'missing' | 'size' | 'sha256';
}

export interface VerifyDatasetOptions {
  onProgress?: (progress: DatasetProgress) => void;
  /** Files hashed at once (default 4): overlapping reads helps on SSDs and network disks alike. */
  concurrency?: number;
}

/**
 * Check the files of `manifest` in `dir`: each must exist with the listed size and sha256 (streamed, so any
 * size works). A file of the wrong size is not hashed. Problems come in manifest order.
 */
export async function verifyDatasetManifest(
  dir: string,
  manifest: DatasetManifest,
  options: VerifyDatasetOptions = {},
): Promise<{ ok: boolean; problems: DatasetProblem[] }> {
  const found: Array<DatasetProblem | undefined> = new Array(manifest.files.length);
  let done = 0;
  await forEachConcurrently(manifest.files, options.concurrency ?? 4, async (entry, i) => {
    if (!isSafeRelativePath(entry.path)) {
      throw new ContractError('must be a relative POSIX path inside the folder', { file: dir, field: `files[${i}].path` });
    }
    const file = path.join(dir, ...entry.path.split('/'));
    const size = await fileSizeOrUndefined(file);
    if (size === undefined) found[i] = { path: entry.path, problem: 'missing' };
    else if (size !== entry.size) found[i] = { path: entry.path, problem: 'size' };
    else if ((await sha256File(file)) !== entry.sha256) found[i] = { path: entry.path, problem: 'sha256' };
    done += 1;
    options.onProgress?.({ done, total: manifest.files.length, path: entry.path });
  });
  const problems = found.filter((p): p is DatasetProblem => p !== undefined);
  return { ok: problems.length === 0, problems };
}

export interface BuildDatasetManifestOptions {
  kind: DatasetKind;
  generatedBy: GeneratedBy;
  /** Default: now. */
  createdAt?: Date | string;
  /** Folders are `${phase}A` and `${phase}B` (default 'train'), as in the reference. */
  phase?: string;
  /** For a paired dataset: how the pairs were selected. */
  selection?: DatasetSelection;
  /** For a paired dataset: scores and provenance of each pair, by its two manifest paths. */
  pairDetails?: (pair: { a: string; b: string }) => Pick<DatasetPair, 'scores' | 'provenance'> | undefined;
  onProgress?: (progress: DatasetProgress) => void;
  /** Files hashed at once (default 4). */
  concurrency?: number;
}

/**
 * Scan `dir/trainA` and `dir/trainB` as the reference loader does (recursive, reference image extensions,
 * each list sorted as strings), hash every file, and return a valid manifest. A paired dataset pairs files of
 * the same relative name (`trainA/x/1.png` ↔ `trainB/x/1.png`) — what the reference's index pairing of two
 * sorted lists amounts to — and any file without a partner is an InputError.
 */
export async function buildDatasetManifest(dir: string, options: BuildDatasetManifestOptions): Promise<DatasetManifest> {
  const phase = options.phase ?? 'train';
  const domainA = `${phase}A`;
  const domainB = `${phase}B`;
  const namesA = await listReferenceImages(path.join(dir, domainA));
  const namesB = await listReferenceImages(path.join(dir, domainB));
  const paths = [...namesA.map((n) => `${domainA}/${n}`), ...namesB.map((n) => `${domainB}/${n}`)];
  // Pair before hashing, so that an unmatched file fails at once rather than after reading the whole dataset.
  const pairs = options.kind === 'paired' ? pairsBySameName(dir, domainA, namesA, domainB, namesB) : undefined;

  const files: DatasetFile[] = new Array(paths.length);
  let done = 0;
  await forEachConcurrently(paths, options.concurrency ?? 4, async (p, i) => {
    const file = path.join(dir, ...p.split('/'));
    const [sha256, size] = await Promise.all([sha256File(file), fileSizeOrUndefined(file)]);
    if (size === undefined) throw new InputError('disappeared while the dataset was being scanned', { file });
    files[i] = { path: p, sha256, size };
    done += 1;
    options.onProgress?.({ done, total: paths.length, path: p });
  });

  const manifest: DatasetManifest = {
    ...artifactHeader(datasetContract, options.generatedBy, options.createdAt),
    kind: options.kind,
    files,
  };
  if (pairs !== undefined) {
    manifest.pairs = pairs.map((pair) => ({ ...pair, ...options.pairDetails?.(pair) }));
    if (options.selection !== undefined) manifest.selection = options.selection;
  }
  const issues = contractIssues(manifest, datasetContract);
  const first = issues[0];
  if (first !== undefined) {
    throw new ContractError(`cannot describe this folder as a dataset: ${first.message}`, {
      file: path.join(dir, datasetContract.fileName),
      field: formatIssuePath(first.path) || undefined,
    });
  }
  return manifest;
}

function pairsBySameName(
  dir: string,
  domainA: string,
  namesA: string[],
  domainB: string,
  namesB: string[],
): Array<{ a: string; b: string }> {
  const inB = new Set(namesB);
  const inA = new Set(namesA);
  const unmatched = [
    ...namesA.filter((n) => !inB.has(n)).map((n) => `${domainA}/${n} has no ${domainB}/${n}`),
    ...namesB.filter((n) => !inA.has(n)).map((n) => `${domainB}/${n} has no ${domainA}/${n}`),
  ];
  if (unmatched.length > 0) {
    const more = unmatched.length > 3 ? ` (and ${unmatched.length - 3} more)` : '';
    throw new InputError(`a paired dataset pairs files of the same name: ${unmatched.slice(0, 3).join('; ')}${more}`, { file: dir });
  }
  return namesA.map((n) => ({ a: `${domainA}/${n}`, b: `${domainB}/${n}` }));
}

/**
 * The images the reference loader takes from `folder` (SPEC §7): recursive, reference extensions only, as POSIX
 * paths relative to `folder`, sorted as Python sorts strings. InputError when `folder` cannot be read.
 */
export async function listReferenceImages(folder: string): Promise<string[]> {
  const found: string[] = [];
  async function walk(current: string, prefix: string): Promise<void> {
    let entries: Dirent[];
    try {
      entries = await fsp.readdir(current, { withFileTypes: true });
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? 'EIO';
      const why = code === 'ENOENT' ? 'folder not found' : code === 'ENOTDIR' ? 'not a folder' : `cannot read folder (${code})`;
      throw new InputError(why, { file: current, cause: error });
    }
    for (const entry of entries) {
      const rel = prefix === '' ? entry.name : `${prefix}/${entry.name}`;
      // os.walk does not descend into symlinked folders but does list symlinked files; do the same.
      if (entry.isDirectory()) await walk(path.join(current, entry.name), rel);
      else if (
        isReferenceImageFile(entry.name) &&
        (entry.isFile() || (entry.isSymbolicLink() && (await isFile(path.join(current, entry.name)))))
      ) {
        found.push(rel);
      }
    }
  }
  await walk(folder, '');
  // UTF-8 byte order is code point order, Python's order for str; JS's `<` compares UTF-16 units instead.
  const keyed = found.map((p) => ({ p, key: Buffer.from(p, 'utf8') }));
  keyed.sort((x, y) => Buffer.compare(x.key, y.key));
  return keyed.map((k) => k.p);
}

async function isFile(file: string): Promise<boolean> {
  try {
    return (await fsp.stat(file)).isFile();
  } catch {
    return false;
  }
}

/** Size of a regular file, or undefined when there is none at `file`. */
async function fileSizeOrUndefined(file: string): Promise<number | undefined> {
  try {
    const stat = await fsp.stat(file);
    return stat.isFile() ? stat.size : undefined;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw new InputError(`cannot read (${code ?? 'EIO'})`, { file, cause: error });
  }
}

/**
 * Run `fn` over `items` with at most `limit` calls in flight; rejects with the first failure. Hand-written
 * (a dozen lines) rather than a dependency such as p-limit, which is ESM-only in its current versions.
 */
async function forEachConcurrently<T>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0;
  let failed = false;
  const worker = async (): Promise<void> => {
    while (!failed && next < items.length) {
      const i = next++;
      try {
        await fn(items[i] as T, i);
      } catch (error) {
        failed = true;
        throw error;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
}
