/** Progress bars on stderr (only on a terminal and never in --json mode), with ETA. */
import { Format, SingleBar } from 'cli-progress';

import { escapeControl, type Output } from '../output';

export interface Progress {
  update(value: number, payload?: Record<string, unknown>): void;
  stop(): void;
}

const silent: Progress = { update: () => undefined, stop: () => undefined };

/** The tokens cli-progress fills in itself; every other `{token}` of a format comes from the payload. */
const BUILT_IN_TOKENS = new Set(['bar', 'percentage', 'total', 'value', 'eta', 'eta_formatted', 'duration', 'duration_formatted']);

/**
 * The ETA as cli-progress prints it, except before there is a rate to estimate from: cli-progress passes the
 * strings "NULL"/"INF" then, which its formatter turns into "NFs".
 */
function formatTime(t: number, options: Parameters<typeof Format.TimeFormat>[1], roundTo: number): string {
  return typeof t === 'number' && Number.isFinite(t) ? Format.TimeFormat(t, options, roundTo) : '?';
}

/** File names and other text in a payload are shown escaped, like every human line (output.ts). */
function escaped(payload: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(payload)) out[k] = typeof v === 'string' ? escapeControl(v) : v;
  return out;
}

export function startProgress(out: Output, total: number, format: string): Progress {
  if (out.json || !out.streams.isTTY || total <= 0) return silent;
  const bar = new SingleBar({
    format,
    formatTime,
    stream: out.streams.stderr as NodeJS.WriteStream,
    hideCursor: true,
    etaBuffer: 20,
    fps: 5,
    clearOnComplete: false,
  });
  // The first frame is drawn at once: every payload token starts empty instead of showing as "{file}".
  const blank: Record<string, string> = {};
  for (const [, token] of format.matchAll(/\{(\w+)\}/g)) if (!BUILT_IN_TOKENS.has(token!)) blank[token!] = '';
  bar.start(total, 0, blank);
  return {
    update: (value, payload) => bar.update(value, escaped(payload ?? {})),
    stop: () => bar.stop(),
  };
}

export function megabytes(bytes: number): string {
  return (bytes / 1e6).toFixed(1);
}
