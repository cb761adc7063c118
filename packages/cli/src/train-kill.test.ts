/**
 * Killing `scenimefy train` (SIGKILL, no chance to clean up) at arbitrary moments never corrupts the newest
 * checkpoint: after every kill the newest complete checkpoint loads with its digests checked, and `--resume`
 * finishes the run. Runs the built bin (npm test builds first) on tfjs-node.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import * as path from 'node:path';

import { latestCheckpoint, loadTrainingCheckpoint } from '@scenimefy/i2i-core';
import { availableBackends, loadTf, readRunManifest } from '@scenimefy/io';
import { makeTempDir, writeSyntheticDataset, type TempDir } from '@scenimefy/test-utils';

const bin = path.resolve(__dirname, '..', 'bin.js');
const built = existsSync(path.resolve(__dirname, '..', 'dist', 'cli.js'));
const hasNode = availableBackends().some((b) => b.candidate === 'tfjs-node');

const TINY = [
  '--ngf',
  '8',
  '--ndf',
  '8',
  '--netf-nc',
  '16',
  '--num-patches',
  '16',
  '--load-size',
  '32',
  '--crop-size',
  '32',
  '--n-epochs',
  '3',
  '--n-epochs-decay',
  '0',
  '--save-every',
  '1',
  '--keep',
  '2',
  '--sample-every',
  '0',
  '--log-every',
  '1',
  '--backend',
  'tfjs-node',
];

/** Starts training and SIGKILLs it `delayMs` after its `checkpoints`-th checkpoint event; resolves to that event's iteration. */
function trainAndKill(args: string[], checkpoints: number, delayMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args, '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let seen = 0;
    let buffered = '';
    let stderr = '';
    let killedAfter: number | undefined;
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdout.on('data', (d: Buffer) => {
      buffered += d.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop() ?? '';
      for (const line of lines) {
        const e = JSON.parse(line) as { event: string; iteration: number };
        if (e.event === 'checkpoint' && ++seen === checkpoints && killedAfter === undefined) {
          killedAfter = e.iteration;
          setTimeout(() => child.kill('SIGKILL'), delayMs);
        }
      }
    });
    child.on('exit', (code, signal) => {
      if (killedAfter !== undefined && signal === 'SIGKILL') resolve(killedAfter);
      else reject(new Error(`train exited (code ${code}, signal ${signal}) before being killed: ${stderr}`));
    });
  });
}

(built && hasNode ? describe : describe.skip)('killing scenimefy train (built bin, tfjs-node)', () => {
  let tmp: TempDir;
  beforeAll(async () => {
    tmp = await makeTempDir('train-kill');
  });
  afterAll(async () => {
    await tmp?.cleanup();
  });

  it('leaves a loadable newest checkpoint after each kill, and the run resumes to its end', async () => {
    const data = await writeSyntheticDataset(path.join(tmp.dir, 'data'), { count: 4, size: 32, seed: 3 });
    const run = path.join(tmp.dir, 'run');
    const base = ['train', '--unpaired', data.unpairedRoot, '--paired', data.pairedRoot, '--out', run];
    const { tf } = await loadTf({ prefer: 'tfjs-node', require: true });
    // Kill right after a checkpoint event (the next save is starting) and a little later (mid-step or mid-save).
    let killedAt = await trainAndKill([...base, ...TINY], 2, 0);
    for (const [checkpoints, delay] of [
      [1, 0],
      [2, 15],
      [1, 40],
    ] as const) {
      const newest = await latestCheckpoint(run);
      expect(newest).toBeDefined();
      const loaded = await loadTrainingCheckpoint(tf, newest as string);
      expect(loaded.state.iteration).toBeGreaterThanOrEqual(killedAt);
      for (const net of Object.values(loaded.networks)) net.dispose();
      killedAt = await trainAndKill([...base, '--resume', '--backend', 'tfjs-node'], checkpoints, delay);
    }
    const finish = spawn(process.execPath, [bin, ...base, '--resume', '--backend', 'tfjs-node'], { stdio: 'ignore' });
    const code = await new Promise<number | null>((resolve) => finish.on('exit', resolve));
    expect(code).toBe(0);
    const manifest = await readRunManifest(path.join(run, 'run.json'));
    expect(manifest.status).toBe('completed');
    expect(manifest.checkpoints.at(-1)?.iteration).toBe(12);
  }, 240_000);
});
