/**
 * Turn the translate command's arguments (files, folders, globs) into a list of images with predictable output
 * names: a file argument gives `<out>/<stem>.<ext>`; a folder argument keeps its tree (`<out>/<sub>/<stem>.<ext>`);
 * a glob keeps the path below its literal folder prefix. A name is never absolute and never climbs with `..`: a
 * glob match outside the prefix (a pattern that climbs out with `..`) is named by its file name alone.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';

import { InputError, assertRegularFile, isScenimefyError } from '@scenimefy/io';
import { glob, isDynamicPattern } from 'tinyglobby';

/** Extensions the translate command picks up inside folders and globs (explicit files are always tried). */
export const IMAGE_EXTENSIONS = Object.freeze(['.jpg', '.jpeg', '.png', '.webp', '.tif', '.tiff', '.gif', '.avif', '.heic', '.heif']);

export interface InputItem {
  /** The input image path. */
  input: string;
  /** Output path relative to the output folder, without extension. */
  relativeStem: string;
}

export interface CollectedInputs {
  items: InputItem[];
  /** Arguments that matched nothing or do not exist, with why. */
  problems: Array<{ input: string; message: string }>;
}

function isImageName(name: string): boolean {
  return IMAGE_EXTENSIONS.includes(path.extname(name).toLowerCase());
}

function stemOf(rel: string): string {
  const ext = path.extname(rel);
  return (ext ? rel.slice(0, -ext.length) : rel).split(path.sep).join('/');
}

/** `file`'s path below `base` as an output stem, or its file name alone when it does not lie below `base`. */
function stemBelow(base: string, file: string): string {
  const rel = path.relative(path.resolve(base), path.resolve(file));
  const climbs = rel === '' || rel === '..' || rel.startsWith(`..${path.sep}`) || path.isAbsolute(rel);
  return stemOf(climbs ? path.basename(file) : rel);
}

export interface CollectOptions {
  /**
   * A folder never searched when it turns up inside a folder argument (translate passes its output folder, so
   * `translate photos -o photos/anime` run twice does not translate its own results).
   */
  skipFolder?: string;
}

/** What a path names once symbolic links are followed; `other` carries io's one-line InputError message. */
type PathKind = { kind: 'file' } | { kind: 'folder' } | { kind: 'missing' } | { kind: 'other'; message: string };

/**
 * Classify `file` after following links. Only regular files are ever read (io's rule: a FIFO would block the
 * read forever and /dev/zero never ends), so anything else but a folder is named for what it is.
 */
async function pathKind(file: string): Promise<PathKind> {
  try {
    await assertRegularFile(file, 'the image');
    return { kind: 'file' };
  } catch (error) {
    if (!isScenimefyError(error)) throw error;
    if ((await fsp.stat(file).catch(() => undefined))?.isDirectory()) return { kind: 'folder' };
    // Nothing at all by that name (not even a dangling link): for an argument, maybe a glob.
    if ((await fsp.lstat(file).catch(() => undefined)) === undefined) return { kind: 'missing' };
    return { kind: 'other', message: error.message };
  }
}

interface Walked {
  files: string[];
  problems: Array<{ input: string; message: string }>;
}

/**
 * The images below `dir`. Links to regular files are followed (named after the link); links to folders are not
 * (a cycle or a tree elsewhere), and they, dangling links, FIFOs, sockets and devices with an image name are
 * reported by name instead of skipped silently.
 */
async function walk(dir: string, skipReal: string | undefined, into: Walked): Promise<void> {
  const entries = await fsp.readdir(dir, { withFileTypes: true }).catch((error: NodeJS.ErrnoException) => {
    into.problems.push({ input: dir, message: new InputError(`cannot read folder (${error.code ?? 'EIO'})`, { file: dir }).message });
    return [];
  });
  for (const e of entries) {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) {
      if (skipReal !== undefined && (await fsp.realpath(full).catch(() => undefined)) === skipReal) continue;
      await walk(full, skipReal, into);
    } else if (e.isFile()) {
      if (isImageName(e.name)) into.files.push(full);
    } else {
      // A link, FIFO, socket or device: followed when it leads to a regular file, else reported.
      const kind = await pathKind(full);
      if (kind.kind === 'file') {
        if (isImageName(e.name)) into.files.push(full);
      } else if (kind.kind === 'folder') {
        const message = 'symbolic link to a folder, not followed (give it as an input of its own)';
        into.problems.push({ input: full, message: new InputError(message, { file: full }).message });
      } else if (kind.kind === 'other' && isImageName(e.name)) {
        into.problems.push({ input: full, message: kind.message });
      }
    }
  }
}

export async function collectInputs(args: readonly string[], options: CollectOptions = {}): Promise<CollectedInputs> {
  const skipReal = options.skipFolder === undefined ? undefined : await fsp.realpath(options.skipFolder).catch(() => undefined);
  const items: InputItem[] = [];
  const problems: CollectedInputs['problems'] = [];
  const byInput = (a: { input: string }, b: { input: string }) => (a.input < b.input ? -1 : a.input > b.input ? 1 : 0);
  for (const arg of args) {
    const kind = await pathKind(arg);
    if (kind.kind === 'file') {
      items.push({ input: arg, relativeStem: stemOf(path.basename(arg)) });
    } else if (kind.kind === 'folder') {
      const walked: Walked = { files: [], problems: [] };
      await walk(arg, skipReal, walked);
      const files = walked.files.sort();
      problems.push(...walked.problems.sort(byInput));
      if (files.length === 0 && walked.problems.length === 0) {
        problems.push({ input: arg, message: `${arg}: folder holds no images (${IMAGE_EXTENSIONS.join(' ')})` });
      }
      for (const f of files) items.push({ input: f, relativeStem: stemBelow(arg, f) });
    } else if (kind.kind === 'other') {
      problems.push({ input: arg, message: kind.message });
    } else if (isDynamicPattern(arg)) {
      const matches = (await glob(arg, { onlyFiles: true, absolute: false, expandDirectories: false })).filter(isImageName).sort();
      if (matches.length === 0) problems.push({ input: arg, message: `${arg}: pattern matched no images` });
      const base = literalPrefix(arg);
      for (const m of matches) {
        // The glob follows links and lists devices reached through them (a link to /dev/zero): read files only.
        const match = await pathKind(m);
        if (match.kind === 'file') items.push({ input: m, relativeStem: stemBelow(base, m) });
        else if (match.kind === 'other') problems.push({ input: m, message: match.message });
      }
    } else {
      problems.push({ input: arg, message: new InputError('no such file or folder', { file: arg }).message });
    }
  }
  return { items, problems };
}

/**
 * The folder part of a glob before its first dynamic segment ("photos/2024/*.jpg" → "photos/2024"). A segment
 * holding a brace is not literal even when it looks so on its own: a brace group may contain "/"
 * ("{sub/a,other}/*.png" splits into "{sub" and "a,other}"). Names stay safe whatever this returns: a match
 * outside it is named by its file name (`stemBelow`).
 */
function literalPrefix(pattern: string): string {
  const parts = pattern.split('/');
  const fixed: string[] = [];
  for (const p of parts) {
    if (isDynamicPattern(p) || p.includes('{') || p.includes('}')) break;
    fixed.push(p);
  }
  return fixed.length === 0 ? '.' : fixed.join('/') || '/';
}
