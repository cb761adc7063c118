/**
 * `events.ndjson` of a training run folder: one JSON object per line, appended as the run goes (start,
 * iterations with their losses, epoch ends, checkpoints, samples, notes, end).
 *
 * JSON has no NaN or ±Infinity, and a diverging run logs exactly those, so a non-finite loss is written as the
 * string "NaN", "Infinity" or "-Infinity" and read back as the number. A process killed mid-write leaves a torn
 * last line: readers skip it, and opening the log for appending cuts it off first so the next line starts clean.
 */
import { createReadStream, promises as fsp } from 'node:fs';

import { z } from 'zod';

import { ContractError, InputError, UsageError, relativePathSchema, writeFileAtomic } from '@scenimefy/io';

export type TrainEventStatus = 'completed' | 'failed' | 'stopped';

export type TrainEvent =
  | {
      type: 'start';
      time: string;
      iteration: number;
      epoch: number;
      /** The checkpoint folder (relative to the run folder) a resumed run continued from. */
      resumedFrom?: string;
      backend: string;
      options: Record<string, unknown>;
    }
  | {
      type: 'iteration';
      time: string;
      iteration: number;
      epoch: number;
      epochIter: number;
      lr: number;
      losses: Record<string, number>;
      /** Wall time of this iteration. */
      seconds: number;
    }
  | { type: 'epoch'; time: string; epoch: number; iteration: number; lr: number; seconds: number }
  | { type: 'checkpoint'; time: string; iteration: number; epoch: number; folder: string }
  | { type: 'sample'; time: string; iteration: number; epoch: number; file: string }
  /** Something a person reading the log should know (a stale lock taken over, options overridden on resume). */
  | { type: 'note'; time: string; iteration: number; epoch: number; message: string }
  | { type: 'end'; time: string; iteration: number; epoch: number; status: TrainEventStatus; message?: string; code?: string };

export type TrainEventType = TrainEvent['type'];

const NON_FINITE_NAMES = { NaN: Number.NaN, Infinity: Number.POSITIVE_INFINITY, '-Infinity': Number.NEGATIVE_INFINITY } as const;

type NonFiniteName = keyof typeof NON_FINITE_NAMES;

/**
 * A loss as stored: a JSON number, or the name of a non-finite value. A custom check rather than a union of
 * number and enum: it halves the cost of reading a line, which matters for a log of a million iterations.
 */
const lossValueSchema = z
  .custom<number | NonFiniteName>(
    (v) => typeof v === 'number' || (typeof v === 'string' && Object.hasOwn(NON_FINITE_NAMES, v)),
    'must be a number or one of "NaN", "Infinity", "-Infinity"',
  )
  .transform((v) => (typeof v === 'number' ? v : NON_FINITE_NAMES[v]));

const count = z.int().nonnegative();
const seconds = z.number().nonnegative();
const base = { time: z.iso.datetime({ offset: true }), iteration: count, epoch: count };

/** The zod schema of one line of `events.ndjson` (as parsed JSON); its output is a TrainEvent. */
export const trainEventSchema = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('start'),
    ...base,
    resumedFrom: relativePathSchema.optional(),
    backend: z.string().min(1),
    options: z.record(z.string(), z.unknown()),
  }),
  z.object({
    type: z.literal('iteration'),
    ...base,
    epochIter: count,
    lr: z.number().nonnegative(),
    losses: z.record(z.string().min(1), lossValueSchema),
    seconds,
  }),
  z.object({ type: z.literal('epoch'), ...base, lr: z.number().nonnegative(), seconds }),
  z.object({ type: z.literal('checkpoint'), ...base, folder: relativePathSchema }),
  z.object({ type: z.literal('sample'), ...base, file: relativePathSchema }),
  z.object({ type: z.literal('note'), ...base, message: z.string().min(1) }),
  z.object({
    type: z.literal('end'),
    ...base,
    status: z.enum(['completed', 'failed', 'stopped']),
    message: z.string().optional(),
    code: z.string().optional(),
  }),
]);

// Compile-time proof that the schema and the declared type agree both ways.
type SchemaOutput = z.output<typeof trainEventSchema>;
const schemaMatchesType: [SchemaOutput] extends [TrainEvent] ? ([TrainEvent] extends [SchemaOutput] ? true : false) : false = true;
void schemaMatchesType;

function issueText(error: z.ZodError): string {
  const issue = error.issues[0];
  if (issue === undefined) return 'invalid event';
  const where = issue.path.length > 0 ? `${issue.path.join('.')}: ` : '';
  return `${where}${issue.message}`;
}

/** The line `event` is stored as (no trailing newline); non-finite losses become their names. */
export function serializeTrainEvent(event: TrainEvent): string {
  const stored = jsonSafe(event);
  const checked = trainEventSchema.safeParse(stored);
  if (!checked.success) {
    throw new ContractError(`not a valid '${String((event as { type?: unknown }).type)}' train event: ${issueText(checked.error)}`, {
      field: 'event',
    });
  }
  return JSON.stringify(stored);
}

function jsonSafe(event: TrainEvent): unknown {
  if (event.type !== 'iteration') return event;
  const losses: Record<string, number | string> = {};
  for (const [name, value] of Object.entries(event.losses)) losses[name] = Number.isFinite(value) ? value : String(value);
  return { ...event, losses };
}

/** One stored line back to an event, or why it is not one (the caller knows the file and line number). */
function parseLine(text: string): { ok: true; event: TrainEvent } | { ok: false; reason: string } {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    return { ok: false, reason: `not JSON (${(error as Error).message})` };
  }
  const parsed = trainEventSchema.safeParse(json);
  if (!parsed.success) return { ok: false, reason: issueText(parsed.error) };
  return { ok: true, event: parsed.data };
}

interface RawLine {
  /** 1-based line number in the file. */
  number: number;
  text: string;
  /** False only for the last line of a file that does not end with a newline (a torn write). */
  terminated: boolean;
}

/** The file's lines, streamed (a long run's log outgrows the largest string V8 can hold). */
async function* rawLines(file: string): AsyncGenerator<RawLine> {
  let pending: Buffer[] = [];
  let number = 0;
  try {
    for await (const chunk of createReadStream(file)) {
      let buf = chunk as Buffer;
      // 0x0A never occurs inside a multi-byte UTF-8 sequence, so splitting bytes before decoding is safe.
      for (let nl = buf.indexOf(0x0a); nl !== -1; nl = buf.indexOf(0x0a)) {
        pending.push(buf.subarray(0, nl));
        number++;
        yield { number, text: Buffer.concat(pending).toString('utf8'), terminated: true };
        pending = [];
        buf = buf.subarray(nl + 1);
      }
      if (buf.length > 0) pending.push(buf);
    }
  } catch (error) {
    if (error instanceof ContractError || error instanceof InputError) throw error;
    const code = (error as NodeJS.ErrnoException).code ?? 'EIO';
    throw new InputError(`cannot read the training events (${code})`, { file, cause: error });
  }
  if (pending.length > 0) yield { number: number + 1, text: Buffer.concat(pending).toString('utf8'), terminated: false };
}

interface StoredEvent {
  event: TrainEvent;
  text: string;
}

/** Every valid event with its stored text; a bad line is an InputError unless it is a torn last line. */
async function* storedEvents(file: string): AsyncGenerator<StoredEvent> {
  for await (const line of rawLines(file)) {
    if (line.text.trim() === '') continue;
    const parsed = parseLine(line.text);
    if (parsed.ok) {
      yield { event: parsed.event, text: line.text };
    } else if (line.terminated) {
      throw new InputError(`line ${line.number}: bad training event: ${parsed.reason}`, { file });
    }
    // An unterminated last line that does not parse is a write cut short by a kill: it never happened.
  }
}

/**
 * The events of an `events.ndjson`, one by one, in file order. Blank lines are skipped and a torn last line (no
 * newline, not a valid event) is ignored; any other bad line is an InputError naming the file and line number.
 */
export async function* iterateTrainEvents(file: string): AsyncGenerator<TrainEvent> {
  for await (const { event } of storedEvents(file)) yield event;
}

/** All events of an `events.ndjson` (see iterateTrainEvents for what is tolerated). */
export async function readTrainEvents(file: string): Promise<TrainEvent[]> {
  const events: TrainEvent[] = [];
  for await (const event of iterateTrainEvents(file)) events.push(event);
  return events;
}

export interface TrainEventLogOptions {
  /**
   * On resume: keep only the events whose iteration is ≤ this number (those up to the checkpoint resumed from),
   * rewriting the file atomically, so events logged after the checkpoint by the run that crashed are dropped.
   */
  truncateAfterIteration?: number;
}

async function fileSize(file: string): Promise<number | undefined> {
  try {
    return (await fsp.stat(file)).size;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new InputError(`cannot read the training events (${(error as NodeJS.ErrnoException).code ?? 'EIO'})`, { file, cause: error });
  }
}

/**
 * Where the torn last line of `file` starts, or undefined when the file ends with a newline (or is empty). Reads
 * backwards from the end in small blocks, so a large log is not read whole.
 */
async function tornTailStart(file: string, size: number): Promise<number | undefined> {
  if (size === 0) return undefined;
  const handle = await fsp.open(file, 'r');
  try {
    const block = Buffer.alloc(64 * 1024);
    let end = size;
    let first = true;
    while (end > 0) {
      const start = Math.max(0, end - block.length);
      const { bytesRead } = await handle.read(block, 0, end - start, start);
      const view = block.subarray(0, bytesRead);
      if (first && view[view.length - 1] === 0x0a) return undefined;
      first = false;
      const nl = view.lastIndexOf(0x0a);
      if (nl !== -1) return start + nl + 1;
      end = start;
    }
    return 0;
  } finally {
    await handle.close();
  }
}

/** Make the file end at a line boundary: terminate a complete last event, cut off a torn one. */
async function repairTornTail(file: string, size: number): Promise<void> {
  const tailStart = await tornTailStart(file, size);
  if (tailStart === undefined) return;
  const handle = await fsp.open(file, 'r+');
  try {
    const tail = Buffer.alloc(size - tailStart);
    await handle.read(tail, 0, tail.length, tailStart);
    if (parseLine(tail.toString('utf8')).ok) {
      await handle.write('\n', size);
    } else {
      await handle.truncate(tailStart);
    }
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** An append-only `events.ndjson`. Appends are serialised, so concurrent calls never interleave their lines. */
export class TrainEventLog {
  readonly file: string;
  private handle: fsp.FileHandle | undefined;
  private queue: Promise<void> = Promise.resolve();

  private constructor(file: string, handle: fsp.FileHandle) {
    this.file = file;
    this.handle = handle;
  }

  /**
   * Open (creating if missing) `file` for appending. With `truncateAfterIteration` the events after that
   * iteration are dropped first (atomic rewrite); without it a torn last line is cut off.
   *
   * Example: const log = await TrainEventLog.open('runs/a/events.ndjson', { truncateAfterIteration: 5000 });
   */
  static async open(file: string, options: TrainEventLogOptions = {}): Promise<TrainEventLog> {
    const { truncateAfterIteration } = options;
    if (truncateAfterIteration !== undefined && !(Number.isInteger(truncateAfterIteration) && truncateAfterIteration >= 0)) {
      throw new UsageError(`TrainEventLog.open: truncateAfterIteration must be a non-negative integer, got ${truncateAfterIteration}`);
    }
    const size = await fileSize(file);
    if (size !== undefined) {
      if (truncateAfterIteration !== undefined) {
        await writeFileAtomic(file, keptLines(file, truncateAfterIteration));
      } else {
        await repairTornTail(file, size);
      }
    }
    let handle: fsp.FileHandle;
    try {
      handle = await fsp.open(file, 'a');
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? 'EIO';
      throw new InputError(`cannot open the training events for appending (${code})`, { file, cause: error });
    }
    return new TrainEventLog(file, handle);
  }

  /**
   * Append one event as one line. A checkpoint or end event is also synced to disk, so after a power loss the log
   * reaches at least the last checkpoint a resume would start from. A malformed event is a ContractError.
   */
  append(event: TrainEvent): Promise<void> {
    let line: string;
    try {
      line = `${serializeTrainEvent(event)}\n`;
    } catch (error) {
      return Promise.reject(error);
    }
    const durable = event.type === 'checkpoint' || event.type === 'end';
    const next = this.queue.then(async () => {
      const handle = this.handle;
      if (handle === undefined) throw new UsageError(`TrainEventLog: append after close (${this.file})`);
      try {
        await handle.write(line);
        if (durable) await handle.sync();
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code ?? 'EIO';
        throw new InputError(`cannot append a training event (${code})`, { file: this.file, cause: error });
      }
    });
    // A failed append must not poison the ones after it; its own caller still sees the error.
    this.queue = next.catch(() => undefined);
    return next;
  }

  /** Wait for pending appends, sync and close. Closing twice is harmless. */
  async close(): Promise<void> {
    await this.queue;
    const handle = this.handle;
    this.handle = undefined;
    if (handle === undefined) return;
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  }
}

/** The stored lines of the events with iteration ≤ `last`, each with its newline, for the atomic rewrite. */
async function* keptLines(file: string, last: number): AsyncGenerator<Uint8Array> {
  for await (const { event, text } of storedEvents(file)) {
    if (event.iteration <= last) yield Buffer.from(`${text}\n`, 'utf8');
  }
}
