/** In-process runner for CLI tests: captures stdout/stderr and returns the exit status. */
import { Writable } from 'node:stream';

import { main } from './cli';

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
  /** stdout parsed as NDJSON (for --json runs). */
  events(): Array<Record<string, unknown>>;
}

function sink(chunks: string[]): Writable {
  return new Writable({
    write(chunk, _enc, cb) {
      chunks.push(String(chunk));
      cb();
    },
  });
}

export async function runCli(argv: string[]): Promise<CliRun> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(argv, { stdout: sink(out), stderr: sink(err), isTTY: false });
  const stdout = out.join('');
  return {
    code,
    stdout,
    stderr: err.join(''),
    events: () =>
      stdout
        .split('\n')
        .filter((l) => l.trim() !== '')
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}
