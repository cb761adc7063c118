import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { ContractError, InputError, UsageError } from '@scenimefy/io';

import { TrainEventLog, readTrainEvents, serializeTrainEvent, trainEventSchema } from './events';
import type { TrainEvent } from './events';

const T = '2025-01-31T12:00:00.000Z';

function start(iteration: number, resumedFrom?: string): TrainEvent {
  return {
    type: 'start',
    time: T,
    iteration,
    epoch: 1,
    backend: 'tensorflow',
    options: { lr: 0.0002 },
    ...(resumedFrom ? { resumedFrom } : {}),
  };
}

function iter(iteration: number, losses: Record<string, number> = { D: 0.5 / (iteration + 1), G: 1 + iteration }): TrainEvent {
  return { type: 'iteration', time: T, iteration, epoch: 1, epochIter: iteration, lr: 0.0002, losses, seconds: 0.25 };
}

function everyKind(): TrainEvent[] {
  return [
    start(0),
    iter(1, { D: 0.25, G: Number.NaN, G_GAN: Number.POSITIVE_INFINITY, NCE_s: Number.NEGATIVE_INFINITY, SRC: 1e-30 }),
    { type: 'epoch', time: T, epoch: 1, iteration: 1, lr: 0.0002, seconds: 12.5 },
    { type: 'checkpoint', time: T, iteration: 1, epoch: 1, folder: 'checkpoints/iter-1' },
    { type: 'sample', time: T, iteration: 1, epoch: 1, file: 'samples/iter-000001.png' },
    { type: 'end', time: T, iteration: 1, epoch: 1, status: 'failed', message: 'loss G is NaN — «ünïcode»', code: 'E_NUMERIC' },
  ];
}

let dir: string;
beforeEach(async () => {
  dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'scenimefy-events-'));
});
afterEach(async () => {
  await fsp.rm(dir, { recursive: true, force: true });
});

async function writeLog(file: string, events: TrainEvent[]): Promise<void> {
  const log = await TrainEventLog.open(file);
  for (const e of events) await log.append(e);
  await log.close();
}

describe('TrainEventLog and readTrainEvents', () => {
  it('round-trips every event kind, non-finite losses included, one JSON object per line', async () => {
    const file = path.join(dir, 'events.ndjson');
    await writeLog(file, everyKind());
    const text = await fsp.readFile(file, 'utf8');
    const lines = text.split('\n');
    expect(lines).toHaveLength(everyKind().length + 1);
    expect(lines.at(-1)).toBe('');
    for (const line of lines.slice(0, -1)) expect(() => JSON.parse(line)).not.toThrow();
    expect(JSON.parse(lines[1]!).losses).toEqual({ D: 0.25, G: 'NaN', G_GAN: 'Infinity', NCE_s: '-Infinity', SRC: 1e-30 });

    const read = await readTrainEvents(file);
    expect(read).toEqual(everyKind());
    const losses = (read[1] as Extract<TrainEvent, { type: 'iteration' }>).losses;
    expect(Number.isNaN(losses.G)).toBe(true);
    expect(losses.G_GAN).toBe(Number.POSITIVE_INFINITY);
    expect(losses.NCE_s).toBe(Number.NEGATIVE_INFINITY);
  });

  it('appends to an existing log on reopen', async () => {
    const file = path.join(dir, 'events.ndjson');
    await writeLog(file, [start(0), iter(1)]);
    await writeLog(file, [iter(2)]);
    expect(await readTrainEvents(file)).toEqual([start(0), iter(1), iter(2)]);
  });

  it('ignores a torn last line but names the file and line of a bad line elsewhere', async () => {
    const file = path.join(dir, 'events.ndjson');
    const good = [start(0), iter(1), iter(2)].map((e) => serializeTrainEvent(e)).join('\n');
    await fsp.writeFile(file, `${good}\n{"type":"iteration","time":"${T}","itera`);
    expect(await readTrainEvents(file)).toEqual([start(0), iter(1), iter(2)]);

    await fsp.writeFile(file, `${serializeTrainEvent(start(0))}\n{"type":"iteration",\n${serializeTrainEvent(iter(2))}\n`);
    const error = await readTrainEvents(file).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InputError);
    expect((error as InputError).message).toContain(file);
    expect((error as InputError).message).toContain('line 2');
  });

  it('rejects a bad last line that was completely written (it ends with a newline)', async () => {
    const file = path.join(dir, 'events.ndjson');
    await fsp.writeFile(
      file,
      `${serializeTrainEvent(start(0))}\n{"type":"sample","time":"${T}","iteration":1,"epoch":1,"file":"../x.png"}\n`,
    );
    await expect(readTrainEvents(file)).rejects.toThrow(/line 2: bad training event: file: must be a relative POSIX path/);
  });

  it('rejects an event of a valid type with a wrong field, naming the field', async () => {
    const file = path.join(dir, 'events.ndjson');
    await fsp.writeFile(file, `${JSON.stringify({ ...iter(1), iteration: -1 })}\n`);
    await expect(readTrainEvents(file)).rejects.toThrow(/line 1: bad training event: iteration:/);
  });

  it('is an InputError naming the file when the log is missing', async () => {
    const file = path.join(dir, 'missing.ndjson');
    await expect(readTrainEvents(file)).rejects.toThrow(InputError);
    await expect(readTrainEvents(file)).rejects.toThrow(file);
  });

  it('cuts a torn last line off on open so the next append starts on its own line', async () => {
    const file = path.join(dir, 'events.ndjson');
    await fsp.writeFile(file, `${serializeTrainEvent(start(0))}\n${serializeTrainEvent(iter(1))}\n{"type":"iter`);
    await writeLog(file, [iter(2)]);
    expect(await readTrainEvents(file)).toEqual([start(0), iter(1), iter(2)]);
  });

  it('keeps a complete last event that lacks only its newline, terminating it on open', async () => {
    const file = path.join(dir, 'events.ndjson');
    await fsp.writeFile(file, `${serializeTrainEvent(start(0))}\n${serializeTrainEvent(iter(1))}`);
    expect(await readTrainEvents(file)).toEqual([start(0), iter(1)]);
    await writeLog(file, [iter(2)]);
    expect(await readTrainEvents(file)).toEqual([start(0), iter(1), iter(2)]);
  });

  it('on resume, drops the events after the checkpoint so the log equals an uninterrupted run', async () => {
    const checkpoint: TrainEvent = { type: 'checkpoint', time: T, iteration: 4, epoch: 1, folder: 'checkpoints/iter-4' };
    const uninterrupted = path.join(dir, 'straight.ndjson');
    const crashed = path.join(dir, 'events.ndjson');
    const before = [start(0), iter(1), iter(2), iter(3), iter(4), checkpoint];
    const after = [iter(5), iter(6), iter(7)];
    await writeLog(uninterrupted, [...before, ...after]);

    // The crashed run logged iterations 5 and 6 after the checkpoint and was killed while writing 7.
    await writeLog(crashed, [...before, iter(5), iter(6)]);
    await fsp.appendFile(crashed, '{"type":"iteration","ti');

    const log = await TrainEventLog.open(crashed, { truncateAfterIteration: 4 });
    expect(await readTrainEvents(crashed)).toEqual(before);
    for (const e of after) await log.append(e);
    await log.close();
    expect(await fsp.readFile(crashed, 'utf8')).toBe(await fsp.readFile(uninterrupted, 'utf8'));
    // The atomic rewrite leaves no temp file behind.
    expect((await fsp.readdir(dir)).sort()).toEqual(['events.ndjson', 'straight.ndjson']);
  });

  it('keeps the stored lines byte for byte when truncating (fields it does not know survive)', async () => {
    const file = path.join(dir, 'events.ndjson');
    const withExtra = JSON.stringify({ ...iter(1), note: 'from a newer writer' });
    await fsp.writeFile(file, `${withExtra}\n${serializeTrainEvent(iter(2))}\n`);
    const log = await TrainEventLog.open(file, { truncateAfterIteration: 1 });
    await log.close();
    expect(await fsp.readFile(file, 'utf8')).toBe(`${withExtra}\n`);
  });

  it('leaves the log untouched when truncation meets a bad line', async () => {
    const file = path.join(dir, 'events.ndjson');
    const text = `${serializeTrainEvent(start(0))}\nnot json\n${serializeTrainEvent(iter(2))}\n`;
    await fsp.writeFile(file, text);
    await expect(TrainEventLog.open(file, { truncateAfterIteration: 1 })).rejects.toThrow(/line 2/);
    expect(await fsp.readFile(file, 'utf8')).toBe(text);
    expect(await fsp.readdir(dir)).toEqual(['events.ndjson']);
  });

  it('creates the log on resume when there was none', async () => {
    const file = path.join(dir, 'events.ndjson');
    const log = await TrainEventLog.open(file, { truncateAfterIteration: 10 });
    await log.append(start(10, 'checkpoints/iter-10'));
    await log.close();
    expect(await readTrainEvents(file)).toEqual([start(10, 'checkpoints/iter-10')]);
  });

  it('writes concurrent appends whole and in call order', async () => {
    const file = path.join(dir, 'events.ndjson');
    const log = await TrainEventLog.open(file);
    const events = Array.from({ length: 200 }, (_, i) => iter(i));
    await Promise.all(events.map((e) => log.append(e)));
    await log.close();
    expect(await readTrainEvents(file)).toEqual(events);
  });

  it('refuses a malformed event with a ContractError and keeps working', async () => {
    const file = path.join(dir, 'events.ndjson');
    const log = await TrainEventLog.open(file);
    const bad = { type: 'checkpoint', time: T, iteration: 1, epoch: 1, folder: '/abs/iter-1' } as TrainEvent;
    await expect(log.append(bad)).rejects.toThrow(ContractError);
    await expect(log.append({ ...iter(1), time: 'yesterday' })).rejects.toThrow(/time/);
    await log.append(iter(2));
    await log.close();
    expect(await readTrainEvents(file)).toEqual([iter(2)]);
  });

  it('refuses appends after close, and a bad truncation point', async () => {
    const file = path.join(dir, 'events.ndjson');
    const log = await TrainEventLog.open(file);
    await log.close();
    await log.close();
    await expect(log.append(iter(1))).rejects.toThrow(UsageError);
    await expect(TrainEventLog.open(file, { truncateAfterIteration: -1 })).rejects.toThrow(UsageError);
    await expect(TrainEventLog.open(file, { truncateAfterIteration: 1.5 })).rejects.toThrow(UsageError);
  });

  it('is an InputError naming the file when its folder does not exist', async () => {
    const file = path.join(dir, 'nope', 'events.ndjson');
    await expect(TrainEventLog.open(file)).rejects.toThrow(InputError);
    await expect(TrainEventLog.open(file)).rejects.toThrow(file);
  });

  it('reads a log larger than its read-stream chunks with lines split across chunks', async () => {
    const file = path.join(dir, 'events.ndjson');
    const events = Array.from({ length: 3000 }, (_, i) => iter(i, { D: i / 7, G_GAN: Math.sqrt(i), 'loss «é»': -i - 1 }));
    await fsp.writeFile(file, `${events.map(serializeTrainEvent).join('\n')}\n`);
    expect((await fsp.stat(file)).size).toBeGreaterThan(3 * 64 * 1024);
    expect(await readTrainEvents(file)).toEqual(events);
  });
});

describe('trainEventSchema', () => {
  it('reads stored non-finite names back as numbers and rejects other strings', () => {
    const parsed = trainEventSchema.parse({ ...iter(1), losses: { G: 'NaN', D: '-Infinity' } });
    expect(parsed.type === 'iteration' && Number.isNaN(parsed.losses.G) && parsed.losses.D === Number.NEGATIVE_INFINITY).toBe(true);
    expect(trainEventSchema.safeParse({ ...iter(1), losses: { G: 'nan' } }).success).toBe(false);
    expect(trainEventSchema.safeParse({ ...start(0), type: 'restart' }).success).toBe(false);
  });
});
