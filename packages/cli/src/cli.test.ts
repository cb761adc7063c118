import { promises as fsp } from 'node:fs';
import * as path from 'node:path';

import {
  readSafetensors,
  readTorchStateDict,
  sha256File,
  writeCheckpointManifest,
  writeRunManifest,
  writeSafetensors,
  type TensorMap,
} from '@scenimefy/io';
import { describeIfFixture, makeTempDir, referenceFixturePath, type TempDir } from '@scenimefy/test-utils';

import { runCli } from './cli-harness';

let tmp: TempDir;
beforeEach(async () => {
  tmp = await makeTempDir('cli');
});
afterEach(async () => {
  await tmp.cleanup();
});

describe('scenimefy (general)', () => {
  it('prints help and usage errors with exit status 2', async () => {
    const help = await runCli(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('Usage: scenimefy');
    const bad = await runCli(['frobnicate']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("unknown command 'frobnicate'");
    const none = await runCli([]);
    expect(none.code).toBe(2);
  });

  it('prints its version', async () => {
    const r = await runCli(['--version']);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
  });
});

describe('scenimefy inspect / convert', () => {
  it('reports a missing file in one line with exit status 1', async () => {
    const missing = path.join(tmp.dir, 'nope.pth');
    const r = await runCli(['inspect', missing]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`scenimefy: ${missing}: no such file or folder\n`);
  });

  it('refuses a text file posing as weights with exit status 3', async () => {
    const f = path.join(tmp.dir, 'weights.pth');
    await fsp.writeFile(f, 'hello, I am not a checkpoint\n');
    const r = await runCli(['inspect', f, '--json']);
    expect(r.code).toBe(3);
    expect(r.stderr).toBe(`scenimefy: ${f}: not a weights file (expected safetensors, a PyTorch .pth/.pt, or a checkpoint folder)\n`);
    expect(r.events()).toEqual([expect.objectContaining({ event: 'error', code: 'E_MODEL_FORMAT' })]);
  });

  describeIfFixture('i2i/netG-ngf16.pth', 'on the reference generator', () => {
    const pth = referenceFixturePath('i2i/netG-ngf16.pth');
    const legacy = referenceFixturePath('i2i/netG-ngf16.legacy.pth');

    it('lists the zip and the legacy checkpoint alike', async () => {
      const zip = await runCli(['inspect', pth, '--json']);
      const leg = await runCli(['inspect', legacy, '--json']);
      expect(zip.code).toBe(0);
      const [a] = zip.events();
      const [b] = leg.events();
      expect(a).toMatchObject({ event: 'inspect', kind: 'pytorch', tensorCount: 52 });
      expect(a!.tensors).toEqual(b!.tensors);
      const human = await runCli(['inspect', pth]);
      expect(human.stdout.split('\n')[1]).toBe('model.1.weight\tF32\t[16, 3, 7, 7]');
    });

    it('converts .pth to safetensors with identical tensors, atomically and without clobbering', async () => {
      const out = path.join(tmp.dir, 'g.safetensors');
      const r = await runCli(['convert', pth, '-o', out, '--prefix', 'netG.']);
      expect(r.code).toBe(0);
      const original = await readTorchStateDict(pth);
      const { tensors, metadata } = await readSafetensors(out);
      expect(metadata.source_kind).toBe('pytorch');
      expect([...tensors.keys()]).toEqual([...original.keys()].map((k) => `netG.${k}`));
      for (const [k, t] of original) {
        const c = tensors.get(`netG.${k}`)!;
        expect(c.shape).toEqual(t.shape);
        expect(Buffer.from(c.bytes).equals(Buffer.from(t.bytes))).toBe(true);
      }
      const again = await runCli(['convert', pth, '-o', out]);
      expect(again.code).toBe(1);
      expect(again.stderr).toBe(`scenimefy: ${out}: already exists (pass --force to overwrite)\n`);
      expect((await fsp.readdir(tmp.dir)).sort()).toEqual(['g.safetensors']);
    });
  });

  describeIfFixture('i2i/netG-ngf16.pth', 'on a training run folder (issue 12 #14)', () => {
    /** A scenimefy-checkpoint folder holding only a generator, as a training run writes one per save. */
    async function writeGeneratorCheckpoint(dir: string, generator: TensorMap): Promise<void> {
      await fsp.mkdir(dir, { recursive: true });
      const weights = path.join(dir, 'weights.safetensors');
      await writeSafetensors(weights, new Map([...generator].map(([k, t]) => [`netG.${k}`, t])));
      await writeCheckpointManifest(path.join(dir, 'checkpoint.json'), {
        format: 'scenimefy-checkpoint',
        formatVersion: 2,
        generatedBy: { name: '@scenimefy/i2i-core', version: '0.1.0' },
        createdAt: new Date().toISOString(),
        networks: {
          netG: { architecture: 'resnet_9blocks', ngf: 16, inputNc: 3, outputNc: 3, antialias: true, antialiasUp: true, norm: 'instance' },
        },
        tensorNaming: 'network-prefixed-state-dict',
        weights: { file: 'weights.safetensors', sha256: await sha256File(weights), size: (await fsp.stat(weights)).size },
      });
    }

    it('inspects the newest complete checkpoint, as translate and export take the run', async () => {
      const generator = await readTorchStateDict(referenceFixturePath('i2i/netG-ngf16.pth'));
      const run = path.join(tmp.dir, 'run');
      await fsp.mkdir(run);
      await writeRunManifest(path.join(run, 'run.json'), {
        format: 'scenimefy-run',
        formatVersion: 2,
        generatedBy: { name: '@scenimefy/i2i-core', version: '0.1.0' },
        createdAt: new Date().toISOString(),
        status: 'running',
        options: { nEpochs: 1 },
        nonDefaults: ['nEpochs'],
        checkpoints: [],
        events: 'events.ndjson',
      });
      const empty = await runCli(['inspect', run]);
      expect(empty.code).toBe(1);
      expect(empty.stderr).toBe(`scenimefy: ${run}: training run has no complete checkpoint yet (checkpoints/iter-*)\n`);

      const checkpoint = (i: number) => path.join(run, 'checkpoints', `iter-${String(i).padStart(9, '0')}`);
      await writeGeneratorCheckpoint(checkpoint(2), new Map([...generator].slice(0, 3)));
      await writeGeneratorCheckpoint(checkpoint(4), generator);
      // A save in progress is never picked.
      await writeGeneratorCheckpoint(path.join(run, 'checkpoints', `.iter-000000006.tmp-${process.pid}-0123456789ab`), generator);
      const r = await runCli(['inspect', run, '--json']);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(r.events()[0]).toMatchObject({ event: 'inspect', file: checkpoint(4), run, kind: 'scenimefy-checkpoint', tensorCount: 52 });
      const human = await runCli(['inspect', run]);
      expect(human.stdout.split('\n')[0]).toMatch(
        new RegExp(`^${checkpoint(4)}: scenimefy-checkpoint, 52 tensors, .* bytes \\(newest checkpoint of run ${run}\\)$`),
      );
      expect(human.stdout.split('\n')[1]).toBe('netG.model.1.weight\tF32\t[16, 3, 7, 7]');
    });
  });

  describeIfFixture('stylegan2/000100.pt', 'on a nested StyleGAN2 checkpoint', () => {
    it('needs --key and lists the state dicts it could take', async () => {
      const pt = referenceFixturePath('stylegan2/000100.pt');
      const without = await runCli(['inspect', pt]);
      expect(without.code).toBe(3);
      expect(without.stderr).toMatch(/^scenimefy: .*000100\.pt: .*\n$/);
      const withKey = await runCli(['inspect', pt, '--key', 'g_ema', '--json']);
      expect(withKey.code).toBe(0);
      expect(withKey.events()[0]).toMatchObject({ tensorCount: 69 });
    });
  });
});
