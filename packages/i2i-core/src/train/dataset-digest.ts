/**
 * A cheap fingerprint of a dataset on disk, recorded in run.json so a resumed run can tell whether the data it
 * trained on is still the same: the sha256 of its file list, one `relative/path<TAB>size` line per regular file,
 * sorted. Names and sizes only — no file is read — so a dataset of a million images is listed in seconds. Hidden
 * names (`.DS_Store`, the temp files of writers) are left out.
 *
 * A folder is listed recursively; a file (a dataset manifest) counts itself and the folder it sits in, where the
 * files it names are.
 */
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';

import { InputError } from '@scenimefy/io';

import { runRelativePath } from '../store/checkpoint-store';

export interface DatasetDigest {
  /** Regular files listed. */
  readonly files: number;
  /** Lower-case hex sha256 of the sorted `path\tsize` lines. */
  readonly digest: string;
}

async function listFiles(root: string, dir: string, out: string[]): Promise<void> {
  let entries: string[];
  try {
    entries = await fsp.readdir(dir);
  } catch (error) {
    throw new InputError(`cannot list the dataset (${(error as NodeJS.ErrnoException).code ?? 'EIO'})`, { file: dir, cause: error });
  }
  for (const name of entries) {
    if (name.startsWith('.')) continue;
    const full = path.join(dir, name);
    // stat follows links, as the dataset loaders do.
    const stat = await fsp.stat(full).catch(() => undefined);
    if (stat === undefined) continue;
    if (stat.isDirectory()) await listFiles(root, full, out);
    else if (stat.isFile()) out.push(`${runRelativePath(root, full)}\t${stat.size}`);
  }
}

/** The digest of the dataset at `target` (a folder, or a manifest file and its folder). InputError when it is not there. */
export async function datasetDigest(target: string): Promise<DatasetDigest> {
  const stat = await fsp.stat(target).catch((error: NodeJS.ErrnoException) => {
    throw new InputError(error.code === 'ENOENT' ? 'no such dataset folder or manifest' : `cannot read the dataset (${error.code})`, {
      file: target,
      cause: error,
    });
  });
  const root = stat.isDirectory() ? target : path.dirname(target);
  const lines: string[] = [];
  await listFiles(root, root, lines);
  lines.sort();
  const hash = createHash('sha256');
  for (const line of lines) hash.update(`${line}\n`);
  return { files: lines.length, digest: hash.digest('hex') };
}
