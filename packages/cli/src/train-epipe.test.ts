/**
 * `scenimefy train --json | head -1` (issue 12 #11): when stdout's reader goes away the run used to die with an
 * EPIPE stack trace and leave run.json "running". It stops after the current step with a checkpoint, quietly,
 * exiting 141 as a program whose stdout closed does. Runs the built bin (npm test builds first) on tfjs-node.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import * as path from 'node:path';

import { latestCheckpoint } from '@scenimefy/i2i-core';
import { availableBackends, readRunManifest } from '@scenimefy/io';
import { makeTempDir, writeSyntheticDataset, type TempDir } from '@scenimefy/test-utils';

const bin = path.resolve(__dirname, '..', 'bin.js');
const built = existsSync(path.resolve(__dirname, '..', 'dist', 'cli.js'));
const hasNode = availableBackends().some((b) => b.candidate === 'tfjs-node');

const TINY = ['--ngf', '8', '--ndf', '8', '--netf-nc', '16', '--num-patches', '16', '--load-size', '32', '--crop-size', '32'];

(built && hasNode ? describe : describe.skip)('scenimefy train --json | head -1 (built bin, tfjs-node)', () => {
  let tmp: TempDir;
  beforeAll(async () => {
    tmp = await makeTempDir('train-epipe');
  });
  afterAll(async () => {
    await tmp?.cleanup();
  });

  it('stops cleanly with a checkpoint and no stack trace when stdout is closed', async () => {
    const data = await writeSyntheticDataset(path.join(tmp.dir, 'data'), { count: 4, size: 32, seed: 5 });
    const run = path.join(tmp.dir, 'run');
    const args = ['train', '--unpaired', data.unpairedRoot, '--paired', data.pairedRoot, '--out', run, ...TINY];
    const child = spawn(process.execPath, [bin, ...args, '--n-epochs', '5', '--sample-every', '0', '--backend', 'tfjs-node', '--json'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    let firstLine: string | undefined;
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    // Like `head -1`: read one line, then close the pipe.
    child.stdout.on('data', (d: Buffer) => {
      if (firstLine !== undefined) return;
      firstLine = d.toString().split('\n')[0];
      child.stdout.destroy();
    });
    const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    expect(JSON.parse(firstLine as string)).toMatchObject({ event: 'start', iteration: 0 });
    expect(stderr).not.toMatch(/EPIPE|Error|\n\s+at /);
    expect(code).toBe(141);
    const manifest = await readRunManifest(path.join(run, 'run.json'));
    expect(manifest.status).toBe('stopped');
    const newest = await latestCheckpoint(run);
    expect(newest).toBeDefined();
    expect(manifest.checkpoints.at(-1)?.folder).toBe(`checkpoints/${path.basename(newest as string)}`);
    // Stopped early, well before the end of its 5 epochs.
    expect(manifest.checkpoints.at(-1)?.iteration).toBeLessThan(20);
    expect(existsSync(path.join(run, 'run.lock'))).toBe(false);
  }, 120_000);
});
