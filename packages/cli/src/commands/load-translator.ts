/** Load the translator for a command, showing the one-time model download and saying which model is used. */
import { Translator, type TileSetting } from '@scenimefy/i2i-core';
import { ModelFormatError, isScenimefyError } from '@scenimefy/io';

import type { Output } from '../output';
import { megabytes, startProgress, type Progress } from './progress';

export interface ModelFlags {
  model?: string;
  threads?: number;
  device?: 'cpu' | 'cuda';
  tile?: TileSetting;
  offline?: boolean;
  /** GiB (translate's --max-memory). */
  maxMemory?: number;
}

/**
 * What goes wrong while resolving a model is a model error (exit 3), also when the cause is an input error of
 * the resolver: a model file that does not exist, an unknown model name, a run without a checkpoint yet. The
 * message is kept; only the category changes, so that exit 1 keeps meaning "some images failed".
 */
export function asModelError(error: unknown): unknown {
  if (!isScenimefyError(error) || error.code !== 'E_INPUT') return error;
  return new ModelFormatError(error.message, { file: error.file, cause: error });
}

export async function loadTranslator(flags: ModelFlags, out: Output): Promise<Translator> {
  let bar: Progress | undefined;
  const translator = await Translator.load(flags.model, {
    threads: flags.threads,
    device: flags.device,
    tile: flags.tile,
    offline: flags.offline ? true : undefined,
    maxMemory: flags.maxMemory !== undefined ? flags.maxMemory * 2 ** 30 : undefined,
    onDownloadStart: (entry, url) => {
      out.info(`downloading ${entry.file} (${megabytes(entry.bytes)} MB) from ${url} — once; it is kept in the cache`);
      out.event({ event: 'download-start', model: entry.name, url, bytes: entry.bytes });
      bar = startProgress(out, entry.bytes, '  {bar} {percentage}% | {value}/{total} bytes | ETA {eta_formatted}');
    },
    onProgress: (p) => bar?.update(p.received),
  }).catch((error: unknown) => {
    throw asModelError(error);
  });
  bar?.stop();
  out.info(`model: ${translator.model.description}`);
  out.event({ event: 'model', kind: translator.model.kind, file: translator.model.file });
  return translator;
}
