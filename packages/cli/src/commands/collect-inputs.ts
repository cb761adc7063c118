/**
 * Turn the translate command's arguments (files, folders, globs) into a list of images with predictable output
 * names: a file argument gives `<out>/<stem>.<ext>`; a folder argument keeps its tree (`<out>/<sub>/<stem>.<ext>`);
 * a glob keeps the path below its static prefix.
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

async function walk(dir: string): Promise<string[]> {
  const out: string[] = [];
  const entries = await fsp.readdir(dir, { withFileTypes: true });
  for (const e of entries) {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...(await walk(full)));
    else if (e.isFile() && isImageName(e.name)) out.push(full);
  }
  return out;
}

export async function collectInputs(args: readonly string[]): Promise<CollectedInputs> {
  const items: InputItem[] = [];
  const problems: CollectedInputs['problems'] = [];
  for (const arg of args) {
    const stat = await fsp.stat(arg).catch(() => undefined);
    if (stat?.isFile()) {
      items.push({ input: arg, relativeStem: stemOf(path.basename(arg)) });
    } else if (stat?.isDirectory()) {
      const files = (await walk(arg)).sort();
      if (files.length === 0) problems.push({ input: arg, message: `${arg}: folder holds no images (${IMAGE_EXTENSIONS.join(' ')})` });
      for (const f of files) items.push({ input: f, relativeStem: stemOf(path.relative(arg, f)) });
    } else if (isDynamicPattern(arg)) {
      const matches = (await glob(arg, { onlyFiles: true, absolute: false, expandDirectories: false })).filter(isImageName).sort();
      if (matches.length === 0) problems.push({ input: arg, message: `${arg}: pattern matched no images` });
      const base = staticPrefix(arg);
      for (const m of matches) items.push({ input: m, relativeStem: stemOf(path.relative(base, m)) });
    } else {
      problems.push({ input: arg, message: new InputError('no such file or folder', { file: arg }).message });
    }
  }
  return { items, problems };
}

/** The folder part of a glob before its first dynamic segment ("photos/2024/*.jpg" → "photos/2024"). */
function staticPrefix(pattern: string): string {
  const parts = pattern.split('/');
  const fixed: string[] = [];
  for (const p of parts) {
    if (isDynamicPattern(p)) break;
    fixed.push(p);
  }
  return fixed.length === 0 ? '.' : fixed.join('/') || '/';
}
