/**
 * Where `translate` may write. Three rules keep the inputs and everything outside `-o` safe:
 * 1. every output path lies inside the output folder (names are made so; `outputPathFor` checks it anyway);
 * 2. an output is never one of the inputs: existing targets are compared with the inputs by device and inode,
 *    which sees through symbolic links, hard links, `..` and case-insensitive file systems alike; a clash is a
 *    usage error before any work (`assertOutputsAreNotInputs`);
 * 3. a symbolic link inside the output folder is never followed out of it: the real path of each output's
 *    folder is checked just before writing (`assertWritableInside`).
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';

import { InputError, UsageError } from '@scenimefy/io';

/** Whether `child` is `parent` or lies below it (both absolute and normalised). */
export function isInside(parent: string, child: string): boolean {
  const rel = path.relative(parent, child);
  return rel === '' || (rel !== '..' && !rel.startsWith(`..${path.sep}`) && !path.isAbsolute(rel));
}

/** `<outDir>/<relativeStem>.<ext>`, refused if it would not lie strictly inside `outDir`. */
export function outputPathFor(outDir: string, relativeStem: string, ext: string): string {
  const target = path.join(outDir, `${relativeStem}.${ext}`);
  const root = path.resolve(outDir);
  const resolved = path.resolve(target);
  if (resolved === root || !isInside(root, resolved)) {
    throw new InputError(`output name "${relativeStem}.${ext}" would lie outside the output folder ${outDir}`, { file: target });
  }
  return target;
}

export interface PlannedOutput {
  input: string;
  target: string;
}

/**
 * Refuse, before any work, a plan in which an output file is one of the inputs (the same file reached by
 * another name counts: a link, another spelling of the path, another letter case on a case-insensitive disk).
 */
export async function assertOutputsAreNotInputs(plan: readonly PlannedOutput[]): Promise<void> {
  const identity = (s: { dev: number; ino: number }) => `${s.dev}:${s.ino}`;
  const inputs = new Map<string, string>();
  for (const { input } of plan) {
    const stat = await fsp.stat(input).catch(() => undefined);
    if (stat) inputs.set(identity(stat), input);
  }
  const clashes: Array<{ target: string; input: string }> = [];
  for (const { target } of plan) {
    const stat = await fsp.stat(target).catch(() => undefined);
    const input = stat && inputs.get(identity(stat));
    if (input !== undefined) clashes.push({ target, input });
  }
  const [first] = clashes;
  if (first === undefined) return;
  const more = clashes.length > 1 ? ` (and ${clashes.length - 1} more)` : '';
  throw new UsageError(
    `output ${first.target} is the input ${first.input}${more}: translating would replace the photo; choose an output folder (-o) apart from the inputs`,
  );
}

/**
 * Make the folder of `target` and check, before and after, that its real path lies inside `outReal` (the real
 * path of the output folder): a symbolic link inside the output folder that leads elsewhere is not followed,
 * and no folder is created through it.
 */
export async function prepareTargetFolder(target: string, outDir: string, outReal: string): Promise<void> {
  const folder = path.dirname(path.resolve(target));
  const refuse = (through: string): never => {
    throw new InputError(`output folder ${through} leads outside ${outDir} (a symbolic link); not writing there`, { file: target });
  };
  // The deepest folder that exists already decides where mkdir would create the rest.
  let existing = folder;
  for (;;) {
    const real = await fsp.realpath(existing).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return undefined;
      throw new InputError(`cannot resolve output folder ${existing} (${error.code ?? 'EIO'})`, { file: target, cause: error });
    });
    if (real !== undefined) {
      if (!isInside(outReal, real)) refuse(existing);
      break;
    }
    const parent = path.dirname(existing);
    if (parent === existing) break;
    existing = parent;
  }
  await fsp.mkdir(folder, { recursive: true });
  // A link swapped in meanwhile is caught here, before the image is written.
  if (!isInside(outReal, await fsp.realpath(folder))) refuse(folder);
}
