/**
 * `scenimefy train` end to end, in-process, on a tiny synthetic dataset: the run trains, its model translates
 * with `translate --model <run>` and exports with `export <run>`, `--resume` continues it, and bad input gets a
 * one-line error and a non-zero status. Needs tfjs-node (training on the pure-JS backend takes minutes).
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';

import { availableBackends, decodeImage, readRunManifest } from '@scenimefy/io';
import { makeTempDir, writeSyntheticDataset, type TempDir } from '@scenimefy/test-utils';

import { runCli } from '../cli-harness';

const hasNode = availableBackends().some((b) => b.candidate === 'tfjs-node');
const describeNode = hasNode ? describe : describe.skip;

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
  '1',
  '--n-epochs-decay',
  '0',
  '--save-every',
  '2',
  '--sample-every',
  '2',
  '--log-every',
  '1',
  '--backend',
  'tfjs-node',
];

describeNode('scenimefy train (tfjs-node)', () => {
  let tmp: TempDir;
  let unpaired: string;
  let paired: string;
  let run: string;

  beforeAll(async () => {
    tmp = await makeTempDir('cli-train');
    const data = await writeSyntheticDataset(path.join(tmp.dir, 'data'), { count: 3, size: 32, seed: 5 });
    unpaired = data.unpairedRoot;
    paired = data.pairedRoot;
    run = path.join(tmp.dir, 'run');
  }, 60_000);
  afterAll(async () => {
    await tmp?.cleanup();
  });

  it('trains, then the run translates and exports like any model', async () => {
    const r = await runCli(['train', '--unpaired', unpaired, '--paired', paired, '--out', run, '--max-iterations', '2', '--json', ...TINY]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const events = r.events();
    expect(events[0]).toMatchObject({ event: 'start', iteration: 0, backend: 'tfjs-node' });
    expect(events.filter((e) => e.event === 'iteration').map((e) => e.iteration)).toEqual([1, 2]);
    expect(events.at(-1)).toMatchObject({ event: 'done', status: 'completed', iteration: 2 });
    expect((await readRunManifest(path.join(run, 'run.json'))).checkpoints.map((c) => c.iteration)).toEqual([2]);

    const photo = path.join(paired, 'trainA', (await fsp.readdir(path.join(paired, 'trainA')))[0] as string);
    const t = await runCli(['translate', photo, '-o', path.join(tmp.dir, 'out'), '--model', run]);
    expect(t.stderr).toContain(`model: run ${run}, checkpoint iter-000000002`);
    expect(t.code).toBe(0);
    const produced = await fsp.readdir(path.join(tmp.dir, 'out'));
    expect(produced).toHaveLength(1);
    const img = await decodeImage(path.join(tmp.dir, 'out', produced[0] as string));
    expect([img.width, img.height]).toEqual([32, 32]);

    const onnx = path.join(tmp.dir, 'model.onnx');
    const e = await runCli(['export', run, '--onnx', onnx]);
    expect(e.code).toBe(0);
    expect((await fsp.stat(onnx)).size).toBeGreaterThan(10_000);
  }, 300_000);

  // Issue 12 #3: --resume used to drop the run's --max-iterations (and trained on to the end of the epochs) and
  // needed --unpaired/--paired again. It continues the run as configured: this one is complete at its cap.
  it("--resume keeps the run's --max-iterations, and needs no dataset flags", async () => {
    const again = await runCli(['train', '--unpaired', unpaired, '--paired', paired, '--out', run, '--resume', '--backend', 'tfjs-node']);
    expect(again.code).toBe(2);
    expect(again.stderr).toContain('the run is complete at iteration 2 (maxIterations 2); give a larger --max-iterations (or none)');
    const none = await runCli(['train', '--out', run, '--resume']);
    expect(none.code).toBe(2);
    expect((await readRunManifest(path.join(run, 'run.json'))).checkpoints.map((c) => c.iteration)).toEqual([2]);
  }, 300_000);

  it('--resume --max-iterations none continues the run to the end of its epochs, and run.json records it', async () => {
    const r = await runCli(['train', '--out', run, '--resume', '--max-iterations', 'none', '--backend', 'tfjs-node']);
    expect(r.stderr).toContain('note: resumed with maxIterations null (recorded in run.json)');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^completed: 3 iterations, epoch 1, newest checkpoint .*iter-000000003/);
    const manifest = await readRunManifest(path.join(run, 'run.json'));
    expect(manifest.status).toBe('completed');
    expect(manifest.options['maxIterations']).toBeNull();
    expect(manifest.resumes?.map((x) => x.overrides)).toEqual([{ maxIterations: null }]);
  }, 300_000);

  it('refuses a run folder in use, changed options on resume, and a missing dataset, each in one line', async () => {
    const again = await runCli(['train', '--unpaired', unpaired, '--paired', paired, '--out', run, ...TINY]);
    expect(again.code).toBe(2);
    expect(again.stderr.trim().split('\n')).toHaveLength(1);
    expect(again.stderr).toContain('already holds a training run');

    const changed = await runCli(['train', '--unpaired', unpaired, '--paired', paired, '--out', run, '--resume', '--lr', '0.001']);
    expect(changed.code).toBe(2);
    expect(changed.stderr).toContain('drop "lr"');

    const noData = await runCli(['train', '--out', path.join(tmp.dir, 'run3'), ...TINY]);
    expect(noData.code).toBe(2);
    expect(noData.stderr.trim()).toBe('scenimefy: a new run needs the unpaired dataset (--unpaired)');

    const crop = await runCli([
      'train',
      '--unpaired',
      unpaired,
      '--paired',
      paired,
      '--out',
      path.join(tmp.dir, 'run4'),
      '--load-size',
      '128',
    ]);
    expect(crop.code).toBe(2);
    expect(crop.stderr.trim()).toBe(
      'scenimefy: --load-size: must be at least the crop size (256): images are resized, then cropped, got 128',
    );

    const missing = path.join(tmp.dir, 'missing');
    const bad = await runCli(['train', '--unpaired', missing, '--paired', paired, '--out', path.join(tmp.dir, 'run2'), ...TINY]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
    expect(bad.stderr).toContain(missing);
    await expect(fsp.stat(path.join(tmp.dir, 'run2'))).rejects.toThrow();
  }, 120_000);
});
