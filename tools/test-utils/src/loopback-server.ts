/**
 * A throwaway HTTP server on 127.0.0.1 (port chosen by the OS) for testing network code without the network:
 * files served with Content-Length and byte ranges, bodies cut off mid-way, chosen status codes, slow answers.
 */
import { promises as fsp } from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

import { UsageError } from '@scenimefy/io';

export type RouteHandler = (req: http.IncomingMessage, res: http.ServerResponse) => void | Promise<void>;

/** A canned response. Body comes from `body` or `file` (read at request time); both absent means empty. */
export interface RouteSpec {
  /** Status code (default 200). Range requests are answered only for 200 routes. */
  status?: number;
  headers?: Record<string, string>;
  body?: string | Uint8Array;
  file?: string;
  /** Declare the full Content-Length, send only this many body bytes, then drop the connection. */
  truncateAfter?: number;
  /** Wait this long before sending the status line and headers. */
  delayMs?: number;
  /** Send the body in pieces of `chunkBytes`, `chunkDelayMs` apart (a slow download). */
  chunkBytes?: number;
  chunkDelayMs?: number;
  /** Answer `Range: bytes=a-b` with 206 (default true). */
  ranges?: boolean;
}

export type Route = RouteHandler | RouteSpec;

export interface RecordedRequest {
  method: string;
  /** Path and query as sent. */
  url: string;
  /** Path without the query, as routes are matched. */
  path: string;
  headers: http.IncomingHttpHeaders;
  receivedAt: number;
}

export interface LoopbackServer {
  /** `http://127.0.0.1:<port>` */
  baseUrl: string;
  /** `baseUrl` joined with a path. */
  url(pathname: string): string;
  /** Every request received, in order. */
  requests: RecordedRequest[];
  /** Stop listening, drop open connections and pending slow responses. */
  close(): Promise<void>;
}

/**
 * Start a server on 127.0.0.1:0. `routes` maps a path (`/model.bin`, query ignored) to a handler or a canned
 * response; unknown paths get 404. A single handler function answers every request instead.
 */
export async function startLoopbackServer(routes: Record<string, Route> | RouteHandler): Promise<LoopbackServer> {
  if (typeof routes !== 'function') {
    for (const key of Object.keys(routes)) {
      if (!key.startsWith('/')) throw new UsageError(`startLoopbackServer: route ${JSON.stringify(key)} must start with "/"`);
    }
  }
  const requests: RecordedRequest[] = [];
  const timers = new Set<NodeJS.Timeout>();
  let closing = false;
  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        timers.delete(timer);
        resolve();
      }, ms);
      timers.add(timer);
    });

  const server = http.createServer((req, res) => {
    const url = req.url ?? '/';
    const pathname = url.split('?')[0] ?? '/';
    requests.push({ method: req.method ?? 'GET', url, path: pathname, headers: req.headers, receivedAt: Date.now() });
    const route = typeof routes === 'function' ? routes : Object.hasOwn(routes, pathname) ? routes[pathname] : undefined;
    const answer = async () => {
      if (route === undefined) {
        res.writeHead(404, { 'content-type': 'text/plain' }).end(`no route for ${pathname}`);
      } else if (typeof route === 'function') {
        await route(req, res);
      } else {
        await answerWithSpec(route, req, res, sleep, () => closing);
      }
    };
    answer().catch((error: unknown) => {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' }).end(String(error));
      else res.destroy();
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const baseUrl = `http://127.0.0.1:${port}`;

  return {
    baseUrl,
    url: (pathname) => `${baseUrl}${pathname.startsWith('/') ? '' : '/'}${pathname}`,
    requests,
    close: async () => {
      closing = true;
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
  };
}

async function answerWithSpec(
  spec: RouteSpec,
  req: http.IncomingMessage,
  res: http.ServerResponse,
  sleep: (ms: number) => Promise<void>,
  isClosing: () => boolean,
): Promise<void> {
  const full =
    spec.file !== undefined
      ? new Uint8Array(await fsp.readFile(spec.file))
      : typeof spec.body === 'string'
        ? new TextEncoder().encode(spec.body)
        : (spec.body ?? new Uint8Array(0));
  let status = spec.status ?? 200;
  const headers: Record<string, string | number> = { 'content-type': 'application/octet-stream', ...spec.headers };
  let body = full;
  if (status === 200 && spec.ranges !== false) {
    headers['accept-ranges'] = 'bytes';
    const range = parseRange(req.headers.range, full.length);
    if (range === 'unsatisfiable') {
      status = 416;
      headers['content-range'] = `bytes */${full.length}`;
      body = new Uint8Array(0);
    } else if (range !== undefined) {
      status = 206;
      headers['content-range'] = `bytes ${range.start}-${range.end}/${full.length}`;
      body = full.subarray(range.start, range.end + 1);
    }
  }
  headers['content-length'] = body.length;

  if (spec.delayMs !== undefined) await sleep(spec.delayMs);
  if (isClosing() || res.destroyed) return;
  res.writeHead(status, headers);
  if (req.method === 'HEAD') {
    res.end();
    return;
  }
  const sent = spec.truncateAfter !== undefined ? body.subarray(0, Math.min(spec.truncateAfter, body.length)) : body;
  const step = spec.chunkBytes !== undefined && spec.chunkBytes > 0 ? spec.chunkBytes : Math.max(sent.length, 1);
  for (let at = 0; at < sent.length; at += step) {
    if (at > 0 && spec.chunkDelayMs !== undefined) await sleep(spec.chunkDelayMs);
    if (isClosing() || res.destroyed) return;
    await new Promise<void>((resolve) => res.write(sent.subarray(at, at + step), () => resolve()));
  }
  if (spec.truncateAfter !== undefined && sent.length < body.length) {
    // Destroying the socket after the bytes are flushed is what a dropped connection looks like to the client.
    res.socket?.destroy();
    return;
  }
  res.end();
}

/** A single `bytes=start-end`, `bytes=start-` or `bytes=-suffix` range; multi-range requests are served whole. */
function parseRange(header: string | undefined, size: number): { start: number; end: number } | 'unsatisfiable' | undefined {
  const match = header === undefined ? null : /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (match === null) return undefined;
  const [, from = '', to = ''] = match;
  if (from === '' && to === '') return undefined;
  let start: number;
  let end: number;
  if (from === '') {
    const suffix = Number(to);
    if (suffix === 0) return 'unsatisfiable';
    start = Math.max(size - suffix, 0);
    end = size - 1;
  } else {
    start = Number(from);
    end = to === '' ? size - 1 : Math.min(Number(to), size - 1);
    if (start >= size || end < start) return 'unsatisfiable';
  }
  return { start, end };
}
