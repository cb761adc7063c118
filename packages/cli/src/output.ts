/**
 * Where the CLI writes: human lines and progress go to stderr; with `--json`, machine events go to stdout as
 * NDJSON (one JSON object per line) and stderr carries only errors.
 */
import type { Writable } from 'node:stream';

export interface CliStreams {
  stdout: Writable;
  stderr: Writable;
  /** Whether stderr is a terminal (progress bars only then). */
  isTTY?: boolean;
}

export interface CliEvent {
  event: string;
  [field: string]: unknown;
}

export class Output {
  constructor(
    readonly streams: CliStreams,
    readonly json: boolean,
  ) {}

  /** A machine-readable event: NDJSON on stdout in --json mode, ignored otherwise. */
  event(event: CliEvent): void {
    if (this.json) this.streams.stdout.write(`${JSON.stringify(event)}\n`);
  }

  /** The primary result of a command: to stdout in human mode (so it can be piped); as an event in --json mode. */
  result(text: string, event: CliEvent): void {
    if (this.json) this.event(event);
    else this.streams.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
  }

  /** A human status line on stderr (suppressed in --json mode). */
  info(line: string): void {
    if (!this.json) this.streams.stderr.write(`${line}\n`);
  }

  /** A one-line error on stderr, always, plus an `error` event in --json mode. */
  error(line: string, fields: Record<string, unknown> = {}): void {
    this.streams.stderr.write(`scenimefy: ${line}\n`);
    this.event({ event: 'error', message: line, ...fields });
  }
}
