/**
 * Where the CLI writes: human lines and progress go to stderr; with `--json`, machine events go to stdout as
 * NDJSON (one JSON object per line) and stderr carries only errors.
 *
 * Two guarantees live here, once for every command:
 * - Human output never lets a file name or message break a line or drive the terminal: control characters
 *   (newline, carriage return, escape, …), Unicode line separators and bidirectional overrides are written as
 *   visible escapes (`\n`, `\x1b`, `\u{202e}`). NDJSON needs no such step: JSON.stringify escapes them itself.
 * - A reader that goes away (`scenimefy translate --json | head -1`) ends the command quietly: the EPIPE is
 *   caught here instead of crashing with a stack trace, nothing more is written, `Output.closed` aborts so a
 *   command can stop at its next step, and `main` exits with `EXIT_STDOUT_CLOSED`.
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

/**
 * The exit status when stdout's reader went away before the command finished: 141 = 128 + SIGPIPE, what a
 * shell reports for a program killed by SIGPIPE (`yes | head -1`), so `set -o pipefail` scripts see the same
 * status as with any other Unix tool. The command stopped early; what it wrote before is whole.
 */
export const EXIT_STDOUT_CLOSED = 141;

/** One human line, or one row of tab-separated cells (each cell escaped, the tabs kept). */
export type OutputRow = string | readonly string[];

function isUnsafe(code: number): boolean {
  return (
    code < 0x20 || // C0 controls: \n, \r, \t, ESC, …
    (code >= 0x7f && code <= 0x9f) || // DEL and C1 controls (CSI 0x9b is an escape sequence on its own)
    code === 0x2028 ||
    code === 0x2029 || // line and paragraph separators
    (code >= 0x202a && code <= 0x202e) ||
    (code >= 0x2066 && code <= 0x2069) // bidirectional embeddings, overrides and isolates
  );
}

const NAMED_ESCAPES: Readonly<Record<number, string>> = { 0x09: '\\t', 0x0a: '\\n', 0x0d: '\\r' };

/**
 * `text` with every character that could break a line or act on a terminal written as a visible escape.
 * Example: `escapeControl('a\nb\u001b[2J.png')` → `'a\\nb\\x1b[2J.png'`.
 */
export function escapeControl(text: string): string {
  let out = '';
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (!isUnsafe(code)) continue;
    out += text.slice(start, i);
    out += NAMED_ESCAPES[code] ?? (code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u{${code.toString(16)}}`);
    start = i + 1;
  }
  return start === 0 ? text : out + text.slice(start);
}

function formatRow(row: OutputRow): string {
  return typeof row === 'string' ? escapeControl(row) : row.map(escapeControl).join('\t');
}

/** Codes a write fails with once the reader has gone (a closed pipe or socket, a destroyed stream). */
const GONE = new Set(['EPIPE', 'ECONNRESET', 'ERR_STREAM_DESTROYED', 'ERR_STREAM_WRITE_AFTER_END']);

/**
 * One per stream, shared by every Output on it: listens for the stream's errors (an unhandled 'error' event
 * would crash the process with a stack trace), stops writing once it failed, and knows when the last write
 * has been handed to the OS.
 */
class StreamGuard {
  readonly controller = new AbortController();
  private last: Promise<void> = Promise.resolve();

  constructor(private readonly stream: Writable) {
    stream.on('error', (error: NodeJS.ErrnoException) => this.fail(error));
  }

  get broken(): boolean {
    return this.controller.signal.aborted;
  }

  write(text: string): void {
    if (this.broken) return;
    this.last = new Promise((resolve) => {
      try {
        this.stream.write(text, (error?: Error | null) => {
          if (error) this.fail(error as NodeJS.ErrnoException);
          resolve();
        });
      } catch (error) {
        this.fail(error as NodeJS.ErrnoException);
        resolve();
      }
    });
  }

  /** Resolves when every write so far has completed or failed (so a failure is known by then). */
  flushed(): Promise<void> {
    return this.last;
  }

  private fail(error: NodeJS.ErrnoException): void {
    if (this.broken) return;
    const gone = error?.code !== undefined && GONE.has(error.code);
    this.controller.abort(gone ? new Error(`output closed (${error.code})`) : error);
  }
}

const guards = new WeakMap<Writable, StreamGuard>();

function guardOf(stream: Writable): StreamGuard {
  let guard = guards.get(stream);
  if (guard === undefined) {
    guard = new StreamGuard(stream);
    guards.set(stream, guard);
  }
  return guard;
}

/** Write to a CLI stream through its guard (for text that is not ours to escape, e.g. commander's help). */
export function writeGuarded(stream: Writable, text: string): void {
  guardOf(stream).write(text);
}

/** Whether stdout of `streams` has been closed by its reader; waits for pending writes to settle first. */
export async function stdoutClosed(streams: CliStreams): Promise<boolean> {
  const guard = guardOf(streams.stdout);
  await guard.flushed();
  return guard.broken;
}

export class Output {
  /**
   * Aborts when stdout's reader goes away (EPIPE: `| head -1` exited) or stdout fails otherwise. A long
   * command checks it between steps (or passes it on as its AbortSignal, e.g. with
   * `AbortSignal.any([own, out.closed])`) and stops cleanly; `main` then exits with `EXIT_STDOUT_CLOSED`. Later
   * writes to stdout are dropped; stderr keeps working.
   */
  readonly closed: AbortSignal;
  private readonly stdout: StreamGuard;
  private readonly stderr: StreamGuard;

  constructor(
    readonly streams: CliStreams,
    readonly json: boolean,
  ) {
    this.stdout = guardOf(streams.stdout);
    this.stderr = guardOf(streams.stderr);
    this.closed = this.stdout.controller.signal;
  }

  /** A machine-readable event: NDJSON on stdout in --json mode, ignored otherwise. */
  event(event: CliEvent): void {
    if (this.json) this.stdout.write(`${JSON.stringify(event)}\n`);
  }

  /**
   * The primary result of a command: to stdout in human mode (so it can be piped), one line per row; as an
   * event in --json mode.
   */
  result(rows: string | readonly OutputRow[], event: CliEvent): void {
    if (this.json) this.event(event);
    else this.text(rows);
  }

  /**
   * Human lines on stdout (nothing in --json mode, where the events carry the same content): a string is one
   * line, a list holds one line or one row of tab-separated cells per entry.
   */
  text(rows: string | readonly OutputRow[]): void {
    if (this.json) return;
    const list = typeof rows === 'string' ? [rows] : rows;
    if (list.length > 0) this.stdout.write(`${list.map(formatRow).join('\n')}\n`);
  }

  /** A human status line on stderr (suppressed in --json mode). */
  info(line: string): void {
    if (!this.json) this.stderr.write(`${escapeControl(line)}\n`);
  }

  /** A one-line error on stderr, always, plus an `error` event in --json mode. */
  error(line: string, fields: Record<string, unknown> = {}): void {
    this.stderr.write(`scenimefy: ${escapeControl(line)}\n`);
    this.event({ event: 'error', message: line, ...fields });
  }

  /** Resolves once everything written so far has reached the OS or failed. */
  async flushed(): Promise<void> {
    await Promise.all([this.stdout.flushed(), this.stderr.flushed()]);
  }
}
