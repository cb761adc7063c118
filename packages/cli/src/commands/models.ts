import { promises as fsp } from 'node:fs';
import * as path from 'node:path';

import { MODEL_KINDS, cachedModelPath, fetchModel, isModelCached, modelCacheDir, resolveModel, resolveRegistry } from '@scenimefy/i2i-core';
import { IntegrityError, InputError, produceFileAtomic, sha256File } from '@scenimefy/io';

import type { Output, OutputRow } from '../output';
import { asModelError } from './load-translator';
import { megabytes, startProgress, type Progress } from './progress';

/** The way round a download that cannot happen, for `models fetch` (whose users have no --model flag). */
const IMPORT_HINT = 'put a copy you have into the cache with `scenimefy models import <file>`';

export async function modelsListCommand(out: Output): Promise<number> {
  const rows: OutputRow[] = [`cache: ${modelCacheDir()}`];
  for (const entry of MODEL_KINDS.flatMap((kind) => Object.values(resolveRegistry(process.env, kind)))) {
    const cached = await isModelCached(entry);
    rows.push(
      [entry.name, cached ? 'cached' : 'not cached', `${megabytes(entry.bytes)} MB`, entry.description],
      ['', cached ? cachedModelPath(entry) : entry.url],
    );
    out.event({
      event: 'model',
      name: entry.name,
      cached,
      file: cachedModelPath(entry),
      url: entry.url,
      bytes: entry.bytes,
      sha256: entry.sha256,
    });
  }
  out.text(rows);
  return 0;
}

export async function modelsFetchCommand(name: string, out: Output): Promise<number> {
  let bar: Progress | undefined;
  const download = {
    hint: IMPORT_HINT,
    onDownloadStart: (entry: { file: string; bytes: number }, url: string) => {
      out.info(`downloading ${entry.file} (${megabytes(entry.bytes)} MB) from ${url}`);
      bar = startProgress(out, entry.bytes, '  {bar} {percentage}% | ETA {eta_formatted}');
    },
    onProgress: (p: { received: number }) => bar?.update(p.received),
  };
  const auxiliary = MODEL_KINDS.filter((k) => k !== 'generator')
    .map((kind) => resolveRegistry(process.env, kind)[name])
    .find((e) => e !== undefined);
  if (auxiliary !== undefined) {
    // Not a generator (e.g. vgg19 for --lambda-vgg): cached as downloaded, no ONNX conversion.
    const cached = await fetchModel(auxiliary, download);
    bar?.stop();
    out.result(`${name}: ${cached.file}`, { event: 'fetched', name, file: cached.file, onnx: null });
    return 0;
  }
  const model = await resolveModel(name, download).catch((error: unknown) => {
    throw asModelError(error);
  });
  bar?.stop();
  out.result(`${name}: ${model.file} (ONNX: ${typeof model.onnx === 'string' ? model.onnx : 'in memory'})`, {
    event: 'fetched',
    name,
    file: model.file,
    onnx: typeof model.onnx === 'string' ? model.onnx : null,
  });
  return 0;
}

export async function modelsImportCommand(file: string, out: Output): Promise<number> {
  const stat = await fsp.stat(file).catch(() => undefined);
  if (!stat?.isFile()) throw new InputError('no such file', { file });
  const digest = await sha256File(file);
  const known = MODEL_KINDS.flatMap((kind) => Object.values(resolveRegistry(process.env, kind)));
  const entry = known.find((e) => e.sha256 === digest);
  if (!entry) {
    throw new IntegrityError(
      `sha256 ${digest} matches no known model (${known.map((e) => `${e.name}: ${e.sha256}`).join('; ')}); use it directly with --model instead`,
      { file },
    );
  }
  const target = cachedModelPath(entry);
  await fsp.mkdir(path.dirname(target), { recursive: true });
  // Copied under a temp name beside the target, then renamed: the cache never holds half a file.
  await produceFileAtomic(target, (tmp) => fsp.copyFile(file, tmp));
  await fetchModel(entry, { offline: true }); // confirms the cache now serves it (generators get their ONNX at first use)
  out.result(`imported ${file} as ${entry.name} → ${target}`, { event: 'imported', name: entry.name, file: target });
  return 0;
}
