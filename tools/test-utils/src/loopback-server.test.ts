import { promises as fsp } from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';

import { UsageError } from '@scenimefy/io';

import { startLoopbackServer } from './loopback-server';
import type { LoopbackServer } from './loopback-server';
import { makeTempDir } from './temp-dir';
import type { TempDir } from './temp-dir';

/** A GET through node:http (not fetch), so a cut-off body shows up as an error and nothing is pooled. */
function get(
  url: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
      res.on('aborted', () => reject(new Error(`aborted after ${Buffer.concat(chunks).length} bytes`)));
    });
    req.on('error', reject);
  });
}

const payload = Buffer.from(Array.from({ length: 1000 }, (_, i) => i % 251));
let server: LoopbackServer | undefined;
let temp: TempDir;

beforeEach(async () => {
  temp = await makeTempDir('loopback');
});
afterEach(async () => {
  await server?.close();
  server = undefined;
  await temp.cleanup();
});

describe('startLoopbackServer', () => {
  it('listens on 127.0.0.1 only and serves a file with Content-Length', async () => {
    const file = path.join(temp.dir, 'model.bin');
    await fsp.writeFile(file, payload);
    server = await startLoopbackServer({ '/model.bin': { file } });
    expect(server.baseUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const res = await get(server.url('/model.bin'));
    expect(res.status).toBe(200);
    expect(res.headers['content-length']).toBe('1000');
    expect(res.headers['accept-ranges']).toBe('bytes');
    expect(res.body.equals(payload)).toBe(true);
  });

  it('answers byte ranges with 206, and an unsatisfiable one with 416', async () => {
    server = await startLoopbackServer({ '/b': { body: payload } });
    const tail = await get(server.url('/b'), { range: 'bytes=990-' });
    expect(tail.status).toBe(206);
    expect(tail.headers['content-range']).toBe('bytes 990-999/1000');
    expect(tail.body.equals(payload.subarray(990))).toBe(true);
    const middle = await get(server.url('/b'), { range: 'bytes=10-19' });
    expect(middle.body.equals(payload.subarray(10, 20))).toBe(true);
    const suffix = await get(server.url('/b'), { range: 'bytes=-5' });
    expect(suffix.body.equals(payload.subarray(995))).toBe(true);
    const beyond = await get(server.url('/b'), { range: 'bytes=1000-' });
    expect(beyond.status).toBe(416);
    expect(beyond.headers['content-range']).toBe('bytes */1000');
  });

  it('cuts a body off mid-way after declaring the full length', async () => {
    server = await startLoopbackServer({ '/cut': { body: payload, truncateAfter: 300 } });
    await expect(get(server.url('/cut'))).rejects.toThrow(/aborted after 300 bytes|socket hang up|ECONNRESET/);
  });

  it('returns a chosen status code with a body and headers', async () => {
    server = await startLoopbackServer({ '/gone': { status: 503, body: 'busy', headers: { 'retry-after': '1' } } });
    const res = await get(server.url('/gone'));
    expect(res.status).toBe(503);
    expect(res.headers['retry-after']).toBe('1');
    expect(res.body.toString()).toBe('busy');
    expect((await get(server.url('/unknown'))).status).toBe(404);
  });

  it('delays the response and trickles the body on a slow route', async () => {
    server = await startLoopbackServer({ '/slow': { body: payload.subarray(0, 40), delayMs: 150, chunkBytes: 10, chunkDelayMs: 50 } });
    const started = Date.now();
    const res = await get(server.url('/slow'));
    // 150 ms before the headers, then three 50 ms gaps between four chunks; timers may fire a little early.
    expect(Date.now() - started).toBeGreaterThanOrEqual(280);
    expect(res.body.equals(payload.subarray(0, 40))).toBe(true);
  });

  it('lets a client time out on a slow route, and closes promptly with the response pending', async () => {
    server = await startLoopbackServer({ '/stall': { body: 'late', delayMs: 60_000 } });
    await expect(fetch(server.url('/stall'), { signal: AbortSignal.timeout(100) })).rejects.toThrow();
    const pending = get(server.url('/stall')).then(
      () => 'answered',
      (error: Error) => error.message,
    );
    await new Promise((resolve) => setTimeout(resolve, 50));
    const started = Date.now();
    await server.close();
    server = undefined;
    expect(Date.now() - started).toBeLessThan(2000);
    expect(await pending).toMatch(/socket hang up|ECONNRESET/);
  });

  it('logs every request and accepts a handler for everything', async () => {
    server = await startLoopbackServer((req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' }).end(`${req.method} ${req.url}`);
    });
    expect((await get(server.url('/a?x=1'))).body.toString()).toBe('GET /a?x=1');
    await get(server.url('b'), { 'x-test': 'yes' });
    expect(server.requests.map((r) => [r.method, r.url, r.path])).toEqual([
      ['GET', '/a?x=1', '/a'],
      ['GET', '/b', '/b'],
    ]);
    expect(server.requests[1]?.headers['x-test']).toBe('yes');
  });

  it('answers 500 when a handler throws, and refuses routes without a leading slash', async () => {
    server = await startLoopbackServer({
      '/throws': () => {
        throw new Error('handler broke');
      },
    });
    const res = await get(server.url('/throws'));
    expect(res.status).toBe(500);
    expect(res.body.toString()).toBe('Error: handler broke');
    await expect(startLoopbackServer({ nope: { body: '' } })).rejects.toBeInstanceOf(UsageError);
  });
});
