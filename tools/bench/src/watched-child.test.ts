import { existsSync } from 'node:fs';

import { runWatched } from './watched-child';

const node = process.execPath;
const procfs = existsSync('/proc/self/status');

describe('runWatched', () => {
  it('returns the last stdout line as JSON', async () => {
    const run = await runWatched(node, ['-e', 'console.log("progress"); console.log(JSON.stringify({ a: 1 }))'], {
      timeoutS: 30,
      maxRssMb: 4096,
    });
    expect(run).toMatchObject({ ok: true, json: { a: 1 } });
  });

  it('reports a failing child by its last stderr line', async () => {
    const run = await runWatched(node, ['-e', 'console.error("first"); console.error("boom"); process.exit(3)'], {
      timeoutS: 30,
      maxRssMb: 4096,
    });
    expect(run).toMatchObject({ ok: false, error: 'boom' });
  });

  it('kills a child that runs past the time limit', async () => {
    const t0 = performance.now();
    const run = await runWatched(node, ['-e', 'setTimeout(() => {}, 60_000)'], { timeoutS: 0.5, maxRssMb: 4096 });
    expect(run).toMatchObject({ ok: false, error: 'stopped after 0.5 s (time limit)' });
    expect(performance.now() - t0).toBeLessThan(20_000);
  });

  (procfs ? it : it.skip)('kills a child whose resident memory passes the cap', async () => {
    // Touches 400 MB page by page and then waits: only the cap can end it before the time limit.
    const grow = 'const a = []; for (let i = 0; i < 400; i++) a.push(Buffer.alloc(1 << 20, 1)); setTimeout(() => {}, 60_000)';
    const run = await runWatched(node, ['-e', grow], { timeoutS: 60, maxRssMb: 200 });
    expect(run.ok).toBe(false);
    if (!run.ok) expect(run.error).toMatch(/^stopped at \d+ MB resident, over the 200 MB cap$/);
    expect(run.observedRssMb).toBeGreaterThan(200);
  });
});
