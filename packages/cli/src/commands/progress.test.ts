import { Writable } from 'node:stream';

import { Output } from '../output';
import { startProgress } from './progress';

/** A stream that says it is a terminal and keeps what cli-progress draws on it. */
function terminal(): Writable & { text: string } {
  const s = new Writable({
    write(chunk, _enc, cb) {
      s.text += String(chunk);
      cb();
    },
  }) as Writable & { text: string; isTTY: boolean; columns: number };
  s.text = '';
  s.isTTY = true;
  s.columns = 200;
  return s;
}

describe('startProgress (issue 12 #13)', () => {
  it('draws a first frame without a literal {file} or an ETA of "NFs"', () => {
    const stderr = terminal();
    const out = new Output({ stdout: terminal(), stderr, isTTY: true }, false);
    const bar = startProgress(out, 3, '{bar} {value}/{total} | ETA {eta_formatted} | {file}');
    const first = stderr.text;
    bar.update(1, { file: 'a\nb.png' });
    bar.stop();
    expect(first).toContain('0/3 | ETA ? | ');
    expect(first).not.toContain('{file}');
    expect(stderr.text).not.toContain('NF');
    expect(stderr.text).toContain('a\\nb.png'); // a name is escaped on the bar too
    expect(stderr.text).not.toContain('a\nb.png');
  });

  it('draws nothing when stderr is not a terminal or in --json mode', () => {
    const stderr = terminal();
    startProgress(new Output({ stdout: terminal(), stderr, isTTY: false }, false), 3, '{bar}').update(1);
    startProgress(new Output({ stdout: terminal(), stderr, isTTY: true }, true), 3, '{bar}').update(1);
    expect(stderr.text).toBe('');
  });
});
