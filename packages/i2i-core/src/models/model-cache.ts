/**
 * The user's model cache: pretrained files are downloaded once into `$SCENIMEFY_CACHE_DIR`
 * (default `$XDG_CACHE_HOME/scenimefy`, else `~/.cache/scenimefy`), checked against their size and sha256 while
 * they stream in, and renamed into place only when whole and correct. Offline, the error says exactly which file
 * to fetch and where to put it.
 */
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { IntegrityError, NetworkError, sha256File, writeFileAtomic } from '@scenimefy/io';

import type { ModelEntry } from './model-registry';

export interface CacheEnv {
  SCENIMEFY_CACHE_DIR?: string;
  XDG_CACHE_HOME?: string;
  SCENIMEFY_OFFLINE?: string;
}

/** The cache root for this user. */
export function modelCacheDir(env: CacheEnv = process.env): string {
  if (env.SCENIMEFY_CACHE_DIR) return path.resolve(env.SCENIMEFY_CACHE_DIR);
  const xdg = env.XDG_CACHE_HOME && path.isAbsolute(env.XDG_CACHE_HOME) ? env.XDG_CACHE_HOME : path.join(os.homedir(), '.cache');
  return path.join(xdg, 'scenimefy');
}

/** Where `entry`'s file lives in the cache (whether or not it is there yet). */
export function cachedModelPath(entry: ModelEntry, cacheDir: string = modelCacheDir()): string {
  return path.join(cacheDir, 'models', entry.name, entry.file);
}

export interface DownloadProgress {
  received: number;
  total: number | undefined;
}

export interface FetchModelOptions {
  cacheDir?: string;
  /** Refuse to download (default: env SCENIMEFY_OFFLINE=1). */
  offline?: boolean;
  onProgress?: (progress: DownloadProgress) => void;
  /** Called once when a download actually starts (not when the file is already cached). */
  onDownloadStart?: (entry: ModelEntry, url: string) => void;
  signal?: AbortSignal;
  /** Re-hash a cached file before trusting it (default false: size check only, the hash was checked on download). */
  verifyCached?: boolean;
  /**
   * The caller's way round a failed download, ending the advice of a NetworkError ("…, or <hint>"); default
   * "pass --model <file>" (translate). E.g. `models fetch` suggests `scenimefy models import <file>`.
   */
  hint?: string;
}

export interface CachedModel {
  entry: ModelEntry;
  file: string;
  /** True when this call downloaded the file. */
  downloaded: boolean;
}

const DEFAULT_HINT = 'pass --model <file>';

/** Is `entry` in the cache with the right size? */
export async function isModelCached(entry: ModelEntry, cacheDir: string = modelCacheDir()): Promise<boolean> {
  const stat = await fsp.stat(cachedModelPath(entry, cacheDir)).catch(() => undefined);
  return stat?.isFile() === true && stat.size === entry.bytes;
}

/**
 * The cached file of `entry`, downloading it first when it is missing. A file of the wrong size or digest is
 * never kept.
 */
export async function fetchModel(entry: ModelEntry, options: FetchModelOptions = {}): Promise<CachedModel> {
  const cacheDir = options.cacheDir ?? modelCacheDir();
  const file = cachedModelPath(entry, cacheDir);
  if (await isModelCached(entry, cacheDir)) {
    if (options.verifyCached) {
      const digest = await sha256File(file);
      if (digest !== entry.sha256) {
        throw new IntegrityError(`cached ${entry.file} has sha256 ${digest}, expected ${entry.sha256}; delete it and fetch again`, {
          file,
        });
      }
    }
    return { entry, file, downloaded: false };
  }
  const offline = options.offline ?? process.env.SCENIMEFY_OFFLINE === '1';
  if (offline) {
    throw new NetworkError(
      `model "${entry.name}" is not in the cache and downloads are off (--offline or SCENIMEFY_OFFLINE=1): ` +
        `download ${entry.url} and put it at ${file}, or ${options.hint ?? DEFAULT_HINT}`,
    );
  }
  await fsp.mkdir(path.dirname(file), { recursive: true });
  options.onDownloadStart?.(entry, entry.url);
  await downloadVerified(entry, file, options);
  return { entry, file, downloaded: true };
}

async function downloadVerified(entry: ModelEntry, file: string, options: FetchModelOptions): Promise<void> {
  const advice = `download ${entry.url} yourself and put it at ${file}, or ${options.hint ?? DEFAULT_HINT}`;
  let response: Response;
  try {
    response = await fetch(entry.url, { signal: options.signal, redirect: 'follow' });
  } catch (error) {
    const cause = (error as { cause?: { code?: string; message?: string } }).cause;
    const reason = cause?.code ?? cause?.message ?? (error as Error).message;
    throw new NetworkError(`cannot download ${entry.file} (${reason}); ${advice}`, { cause: error });
  }
  if (!response.ok || !response.body) {
    await response.body?.cancel().catch(() => undefined);
    throw new NetworkError(`cannot download ${entry.file}: HTTP ${response.status} from ${entry.url}; ${advice}`);
  }
  const header = response.headers.get('content-length');
  const total = header !== null && /^\d+$/.test(header) ? Number(header) : undefined;
  if (total !== undefined && total !== entry.bytes) {
    await response.body.cancel().catch(() => undefined);
    throw new IntegrityError(`${entry.url} serves ${total} bytes, expected ${entry.bytes} for ${entry.file}; not downloading it`);
  }
  const hash = createHash('sha256');
  let received = 0;
  const body = response.body;
  async function* chunks(): AsyncGenerator<Uint8Array> {
    try {
      for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) {
        received += chunk.byteLength;
        if (received > entry.bytes) {
          throw new IntegrityError(`${entry.url} sent more than the expected ${entry.bytes} bytes of ${entry.file}`);
        }
        hash.update(chunk);
        options.onProgress?.({ received, total: total ?? entry.bytes });
        yield chunk;
      }
    } catch (error) {
      if (error instanceof IntegrityError) throw error;
      throw new NetworkError(`download of ${entry.file} broke off after ${received} bytes (${(error as Error).message}); ${advice}`, {
        cause: error,
      });
    }
    if (received !== entry.bytes) {
      throw new NetworkError(`download of ${entry.file} ended after ${received} of ${entry.bytes} bytes; ${advice}`);
    }
    const digest = hash.digest('hex');
    if (digest !== entry.sha256) {
      throw new IntegrityError(
        `downloaded ${entry.file} has sha256 ${digest}, expected ${entry.sha256}; the file was not kept (${entry.url})`,
      );
    }
  }
  await writeFileAtomic(file, chunks());
}
