/** Progress bars on stderr (only on a terminal and never in --json mode), with ETA. */
import { SingleBar } from 'cli-progress';

import type { Output } from '../output';

export interface Progress {
  update(value: number, payload?: Record<string, unknown>): void;
  stop(): void;
}

const silent: Progress = { update: () => undefined, stop: () => undefined };

export function startProgress(out: Output, total: number, format: string): Progress {
  if (out.json || !out.streams.isTTY || total <= 0) return silent;
  const bar = new SingleBar({
    format,
    stream: out.streams.stderr as NodeJS.WriteStream,
    hideCursor: true,
    etaBuffer: 20,
    fps: 5,
    clearOnComplete: false,
  });
  bar.start(total, 0, {});
  return {
    update: (value, payload) => bar.update(value, payload ?? {}),
    stop: () => bar.stop(),
  };
}

export function megabytes(bytes: number): string {
  return (bytes / 1e6).toFixed(1);
}
