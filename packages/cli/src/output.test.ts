import { Writable } from 'node:stream';

import { main } from './cli';
import { EXIT_STDOUT_CLOSED, Output, escapeControl, stdoutClosed } from './output';

/** A stream that keeps what it is given; with `failAfter`, every write after that many fails like a closed pipe. */
function sink(failAfter = Number.POSITIVE_INFINITY): Writable & { text: string; writes: number } {
  const s = new Writable({
    write(chunk, _enc, cb) {
      s.writes += 1;
      if (s.writes > failAfter) {
        cb(Object.assign(new Error('write EPIPE'), { code: 'EPIPE', errno: -32, syscall: 'write' }));
        return;
      }
      s.text += String(chunk);
      cb();
    },
  }) as Writable & { text: string; writes: number };
  s.text = '';
  s.writes = 0;
  return s;
}

describe('escapeControl', () => {
  it('writes line breaks, terminal escapes, C1 controls, line separators and bidi overrides as visible escapes', () => {
    expect(escapeControl('plain name ü 写真.png')).toBe('plain name ü 写真.png');
    expect(escapeControl('a\nb\r\tc')).toBe('a\\nb\\r\\tc');
    expect(escapeControl('\u001b[2J\u0000\u007f\u009b')).toBe('\\x1b[2J\\x00\\x7f\\x9b');
    expect(escapeControl('x\u2028y\u2029z')).toBe('x\\u{2028}y\\u{2029}z');
    expect(escapeControl('evil\u202egnp.exe')).toBe('evil\\u{202e}gnp.exe');
  });
});

describe('Output (issue 12 #10: one line per message)', () => {
  it('keeps every human line one line, whatever a file name holds, and NDJSON parseable', () => {
    const stdout = sink();
    const stderr = sink();
    const human = new Output({ stdout, stderr }, false);
    human.error('photos/bad\nname.png: not an image');
    human.info('model: a\r\u001b[31mred');
    human.result(['summary\nline', ['cell\tone', 'two']], { event: 'x' });
    expect(stderr.text).toBe('scenimefy: photos/bad\\nname.png: not an image\nmodel: a\\r\\x1b[31mred\n');
    expect(stdout.text).toBe('summary\\nline\ncell\\tone\ttwo\n');

    const jsonOut = sink();
    const json = new Output({ stdout: jsonOut, stderr: sink() }, true);
    json.error('bad\nname.png: not an image', { input: 'bad\nname.png' });
    json.event({ event: 'translated', input: 'a\u2028b\n.png' });
    const lines = jsonOut.text.trimEnd().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines.map((l) => JSON.parse(l))).toEqual([
      { event: 'error', message: 'bad\nname.png: not an image', input: 'bad\nname.png' },
      { event: 'translated', input: 'a\u2028b\n.png' },
    ]);
  });
});

describe('Output (issue 12 #11: a reader that goes away)', () => {
  it('aborts `closed` on EPIPE, drops later writes, throws nothing', async () => {
    const stdout = sink(1);
    const out = new Output({ stdout, stderr: sink() }, true);
    const reasons: unknown[] = [];
    out.closed.addEventListener('abort', () => reasons.push(out.closed.reason));
    out.event({ event: 'one' });
    expect(out.closed.aborted).toBe(false);
    out.event({ event: 'two' }); // fails: the reader is gone
    await out.flushed();
    expect(out.closed.aborted).toBe(true);
    expect(String(reasons[0])).toBe('Error: output closed (EPIPE)');
    out.event({ event: 'three' });
    out.result('ignored', { event: 'four' });
    await out.flushed();
    expect(stdout.writes).toBe(2); // nothing attempted after the failure
    expect(stdout.text).toBe('{"event":"one"}\n');
    // Every Output on the same stream sees it (main makes its own for errors).
    expect(new Output({ stdout, stderr: sink() }, false).closed.aborted).toBe(true);
    expect(await stdoutClosed({ stdout, stderr: sink() })).toBe(true);
  });

  it('makes main exit with the SIGPIPE-like status, quietly', async () => {
    const stdout = sink(0);
    const stderr = sink();
    const code = await main(['--help'], { stdout, stderr });
    expect(code).toBe(EXIT_STDOUT_CLOSED);
    expect(EXIT_STDOUT_CLOSED).toBe(141);
    expect(stderr.text).toBe('');
    expect(await main(['--help'], { stdout: sink(), stderr })).toBe(0);
  });
});
