import { createHash } from 'node:crypto';
import { promises as fsp, readdirSync } from 'node:fs';
import * as path from 'node:path';

import { IntegrityError, NetworkError } from '@scenimefy/io';
import { makeTempDir, startLoopbackServer, type LoopbackServer, type TempDir } from '@scenimefy/test-utils';

import { cachedModelPath, fetchModel, isModelCached, modelCacheDir } from './model-cache';
import type { ModelEntry } from './model-registry';

// A deterministic stand-in for a checkpoint: the cache only cares about bytes, size and digest.
const payload = new Uint8Array(300_000).map((_, i) => (i * 2654435761) >>> 24);
const digest = createHash('sha256').update(payload).digest('hex');

function entryFor(server: LoopbackServer, overrides: Partial<ModelEntry> = {}): ModelEntry {
  return {
    name: 'tiny',
    description: 'test model',
    file: 'tiny_net_G.pth',
    url: server.url('/tiny_net_G.pth'),
    sha256: digest,
    bytes: payload.byteLength,
    format: 'pytorch',
    source: 'loopback',
    ...overrides,
  };
}

let tmp: TempDir;
let server: LoopbackServer;
beforeEach(async () => {
  tmp = await makeTempDir('model-cache');
  server = await startLoopbackServer({
    '/tiny_net_G.pth': { body: payload, chunkBytes: 65_536 },
    '/cut.pth': { body: payload, truncateAfter: 100_000 },
    '/missing.pth': { status: 404, body: 'not found' },
  });
});
afterEach(async () => {
  await server.close();
  await tmp.cleanup();
});

function filesUnder(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(path.join(d, e.name));
      else out.push(path.relative(dir, path.join(d, e.name)));
    }
  };
  walk(dir);
  return out;
}

describe('fetchModel', () => {
  it('downloads once with progress, verifies the digest, then reuses the cached file', async () => {
    const entry = entryFor(server);
    const progress: number[] = [];
    const first = await fetchModel(entry, { cacheDir: tmp.dir, offline: false, onProgress: (p) => progress.push(p.received) });
    expect(first.downloaded).toBe(true);
    expect(first.file).toBe(path.join(tmp.dir, 'models', 'tiny', 'tiny_net_G.pth'));
    expect(new Uint8Array(await fsp.readFile(first.file))).toEqual(payload);
    expect(progress.at(-1)).toBe(payload.byteLength);
    expect(progress.length).toBeGreaterThan(1);

    const second = await fetchModel(entry, { cacheDir: tmp.dir, offline: true, verifyCached: true });
    expect(second.downloaded).toBe(false);
    expect(server.requests).toHaveLength(1);
    expect(await isModelCached(entry, tmp.dir)).toBe(true);
  });

  it('keeps nothing when the digest does not match', async () => {
    const entry = entryFor(server, { sha256: '0'.repeat(64) });
    const err = await fetchModel(entry, { cacheDir: tmp.dir, offline: false }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(IntegrityError);
    expect((err as Error).message).toBe(
      `downloaded tiny_net_G.pth has sha256 ${digest}, expected ${'0'.repeat(64)}; the file was not kept (${entry.url})`,
    );
    expect(filesUnder(tmp.dir)).toEqual([]);
  });

  it('keeps nothing when the connection drops mid-body', async () => {
    const entry = entryFor(server, { url: server.url('/cut.pth') });
    const err = await fetchModel(entry, { cacheDir: tmp.dir, offline: false }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NetworkError);
    expect((err as Error).message).toMatch(
      /^download of tiny_net_G\.pth broke off after \d+ bytes .*; download .* and put it at .*tiny_net_G\.pth, or pass --model <file>$/,
    );
    expect(filesUnder(tmp.dir)).toEqual([]);
  });

  it('reports an HTTP error with the URL and what to do instead', async () => {
    const entry = entryFor(server, { url: server.url('/missing.pth') });
    await expect(fetchModel(entry, { cacheDir: tmp.dir, offline: false })).rejects.toThrow(
      `cannot download tiny_net_G.pth: HTTP 404 from ${entry.url}; download ${entry.url} yourself and put it at ${cachedModelPath(entry, tmp.dir)}, or pass --model <file>`,
    );
  });

  it('refuses a server that announces the wrong size before reading the body', async () => {
    const entry = entryFor(server, { bytes: payload.byteLength + 1 });
    await expect(fetchModel(entry, { cacheDir: tmp.dir, offline: false })).rejects.toThrow(IntegrityError);
    expect(filesUnder(tmp.dir)).toEqual([]);
  });

  it('offline, says which file to download and where to put it, without touching the network', async () => {
    const entry = entryFor(server);
    await expect(fetchModel(entry, { cacheDir: tmp.dir, offline: true })).rejects.toThrow(
      `model "tiny" is not in the cache and downloads are off (--offline or SCENIMEFY_OFFLINE=1): download ${entry.url} and put it at ${cachedModelPath(entry, tmp.dir)}, or pass --model <file>`,
    );
    expect(server.requests).toHaveLength(0);
  });

  it('names an unreachable host', async () => {
    const closed = entryFor(server);
    await server.close();
    const err = await fetchModel(closed, { cacheDir: tmp.dir, offline: false }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NetworkError);
    expect((err as Error).message).toMatch(/^cannot download tiny_net_G\.pth \(ECONNREFUSED\)/);
  });
});

describe('modelCacheDir', () => {
  it('prefers SCENIMEFY_CACHE_DIR, then XDG_CACHE_HOME, then ~/.cache', () => {
    expect(modelCacheDir({ SCENIMEFY_CACHE_DIR: '/x/y' })).toBe('/x/y');
    expect(modelCacheDir({ XDG_CACHE_HOME: '/xdg' })).toBe('/xdg/scenimefy');
    expect(modelCacheDir({ XDG_CACHE_HOME: 'relative' })).toMatch(/\.cache\/scenimefy$/);
  });
});
