import { promises as fsp } from 'node:fs';
import * as path from 'node:path';

import type { TileSetting } from '@scenimefy/i2i-core';
import { InputError, isScenimefyError, removeStaleTempFiles, type ImageFormat } from '@scenimefy/io';

import type { Output } from '../output';
import { collectInputs } from './collect-inputs';
import { loadTranslator } from './load-translator';
import { assertOutputsAreNotInputs, outputPathFor, prepareTargetFolder, type PlannedOutput } from './output-paths';
import { startProgress } from './progress';

export type IfExists = 'fail' | 'skip' | 'overwrite';

const ABORTS_THE_RUN: ReadonlySet<string> = new Set(['E_USAGE', 'E_BACKEND', 'E_MODEL_FORMAT', 'E_NETWORK']);

export interface TranslateFlags {
  output: string;
  format: ImageFormat;
  quality?: number;
  ifExists: IfExists;
  model?: string;
  maxSide?: number;
  resizeBack: boolean;
  roundOutput: boolean;
  exif: boolean;
  maxPixels?: number;
  maxMemory?: number;
  threads?: number;
  device: 'cpu' | 'cuda';
  tile: TileSetting;
  offline: boolean;
}

export async function translateCommand(inputs: string[], flags: TranslateFlags, out: Output): Promise<number> {
  const started = performance.now();
  const { items, problems } = await collectInputs(inputs, { skipFolder: flags.output });
  for (const p of problems) out.error(p.message, { input: p.input, code: 'E_INPUT' });
  if (items.length === 0) {
    out.error('no images to translate');
    return 1;
  }
  const ext = flags.format === 'jpeg' ? 'jpg' : flags.format;
  const plan: PlannedOutput[] = items.map((item) => ({ input: item.input, target: outputPathFor(flags.output, item.relativeStem, ext) }));
  await assertOutputsAreNotInputs(plan);
  await prepareOutputFolder(flags.output);
  const outReal = await fsp.realpath(flags.output);
  const translator = await loadTranslator(flags, out);
  const claimed = new Map<string, string>();
  // A writer killed mid-write (kill -9, power loss) leaves its .<name>.<pid>.<hex>.tmp behind: each output
  // folder is swept once, when it is first written to (so only folders known to lie inside -o).
  const cleaned = new Set<string>();
  const cleanOnce = async (folder: string): Promise<void> => {
    if (cleaned.has(folder)) return;
    cleaned.add(folder);
    try {
      const removed = await removeStaleTempFiles(folder);
      if (removed.length > 0) {
        out.info(`removed ${removed.length} temp file(s) left in ${folder} by an interrupted run`);
        out.event({ event: 'cleaned', folder, files: removed });
      }
    } catch (error) {
      if (!isScenimefyError(error)) throw error;
      // Leftovers are untidy, not a reason to fail the image.
      out.info(`could not remove stale temp files: ${error.message}`);
      out.event({ event: 'warning', message: error.message });
    }
  };
  let ok = 0;
  let failed = problems.length;
  let skipped = 0;
  out.event({ event: 'start', total: items.length, output: flags.output });
  const bar = startProgress(out, items.length, '{bar} {value}/{total} | ETA {eta_formatted} | {file}');
  try {
    for (const [index, item] of items.entries()) {
      if (out.closed.aborted) break; // stdout's reader went away: stop before the next image
      const target = plan[index]!.target;
      bar.update(index, { file: path.basename(item.input) });
      const previous = claimed.get(target);
      if (previous !== undefined) {
        failed++;
        out.error(`${item.input}: output ${target} is already taken by ${previous} in this run; rename one of them`, {
          input: item.input,
          code: 'E_INPUT',
        });
        continue;
      }
      claimed.set(target, item.input);
      if (flags.ifExists !== 'overwrite' && (await fsp.stat(target).catch(() => undefined))) {
        if (flags.ifExists === 'skip') {
          skipped++;
          out.event({ event: 'skipped', input: item.input, output: target, reason: 'exists' });
          continue;
        }
        failed++;
        out.error(`${target}: already exists (use --if-exists skip or overwrite)`, { input: item.input, code: 'E_INPUT' });
        continue;
      }
      const t0 = performance.now();
      try {
        await prepareTargetFolder(target, flags.output, outReal);
        await cleanOnce(path.dirname(target));
        const r = await translator.translateFile(item.input, target, {
          maxSide: flags.maxSide,
          resizeBack: flags.resizeBack,
          rounding: flags.roundOutput ? 'round' : 'truncate',
          quality: flags.quality,
          decode: { orientation: flags.exif ? 'exif' : 'ignore', maxPixels: flags.maxPixels },
        });
        ok++;
        out.event({
          event: 'translated',
          input: item.input,
          output: target,
          width: r.image.width,
          height: r.image.height,
          modelWidth: r.model.width,
          modelHeight: r.model.height,
          tiled: r.tiled,
          ms: Math.round(performance.now() - t0),
        });
      } catch (error) {
        // A bad image fails alone; a problem no other image escapes (usage, backend, model) ends the command
        // with its own exit status instead of being reported once per file.
        if (!isScenimefyError(error) || ABORTS_THE_RUN.has(error.code)) throw error;
        failed++;
        out.error(error.message, { input: item.input, code: error.code });
      }
    }
    bar.update(items.length, { file: '' });
  } finally {
    bar.stop();
    await translator.dispose();
  }
  const seconds = (performance.now() - started) / 1000;
  out.info(`translated ${ok}, failed ${failed}, skipped ${skipped} in ${seconds.toFixed(1)} s → ${flags.output}`);
  out.event({ event: 'summary', translated: ok, failed, skipped, seconds: Number(seconds.toFixed(3)) });
  return failed > 0 ? 1 : 0;
}

async function prepareOutputFolder(dir: string): Promise<void> {
  try {
    await fsp.mkdir(dir, { recursive: true });
    await fsp.access(dir, fsp.constants.W_OK);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'EIO';
    const why =
      code === 'EEXIST' || code === 'ENOTDIR'
        ? 'is a file, not a folder'
        : code === 'EACCES' || code === 'EPERM'
          ? 'is not writable'
          : `cannot be created (${code})`;
    throw new InputError(`output folder ${why}`, { file: dir, cause: error });
  }
  const stat = await fsp.stat(dir);
  if (!stat.isDirectory()) throw new InputError('output folder is a file, not a folder', { file: dir });
}
