/**
 * Turn the translate command's arguments (files, folders, globs) into a list of images with predictable output
 * names: a file argument gives `<out>/<stem>.<ext>`; a folder argument keeps its tree (`<out>/<sub>/<stem>.<ext>`);
 * a glob keeps the path below its literal folder prefix. A name is never absolute and never climbs with `..`: a
 * glob match outside the prefix (a pattern that climbs out with `..`) is named by its file name alone.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';

import { InputError } from '@scenimefy/io';
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

async function walk(dir: string, skipReal: string | undefined): Promise<string[]> {
  const out: string[] = [];
  const entries = await fsp.readdir(dir, { withFileTypes: true });
  for (const e of entries) {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) {
      if (skipReal !== undefined && (await fsp.realpath(full).catch(() => undefined)) === skipReal) continue;
      out.push(...(await walk(full, skipReal)));
    } else if (e.isFile() && isImageName(e.name)) out.push(full);
  }
  return out;
}

export async function collectInputs(args: readonly string[], options: CollectOptions = {}): Promise<CollectedInputs> {
  const skipReal = options.skipFolder === undefined ? undefined : await fsp.realpath(options.skipFolder).catch(() => undefined);
  const items: InputItem[] = [];
  const problems: CollectedInputs['problems'] = [];
  for (const arg of args) {
    const stat = await fsp.stat(arg).catch(() => undefined);
    if (stat?.isFile()) {
      items.push({ input: arg, relativeStem: stemOf(path.basename(arg)) });
    } else if (stat?.isDirectory()) {
      const files = (await walk(arg, skipReal)).sort();
      if (files.length === 0) problems.push({ input: arg, message: `${arg}: folder holds no images (${IMAGE_EXTENSIONS.join(' ')})` });
      for (const f of files) items.push({ input: f, relativeStem: stemBelow(arg, f) });
    } else if (isDynamicPattern(arg)) {
      const matches = (await glob(arg, { onlyFiles: true, absolute: false, expandDirectories: false })).filter(isImageName).sort();
      if (matches.length === 0) problems.push({ input: arg, message: `${arg}: pattern matched no images` });
      const base = literalPrefix(arg);
      for (const m of matches) items.push({ input: m, relativeStem: stemBelow(base, m) });
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
