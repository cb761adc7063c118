/**
 * The installed command as a user runs it: `node bin.js …` over the built package (npm test builds first).
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, promises as fsp } from 'node:fs';
import * as path from 'node:path';

import { describeIfFixture, makeTempDir, referenceFixturePath } from '@scenimefy/test-utils';

const bin = path.resolve(__dirname, '..', 'bin.js');
const built = existsSync(path.resolve(__dirname, '..', 'dist', 'cli.js'));
const photo = path.resolve(__dirname, '..', '..', '..', 'examples', 'photos', 'rocket.jpg');

function run(args: string[], env: NodeJS.ProcessEnv = {}) {
  return spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', env: { ...process.env, ...env } });
}

(built ? describe : describe.skip)('bin.js (built package; run `npm run build` first)', () => {
  it('prints its version and exits 0', () => {
    const r = run(['--version']);
    expect(r.status).toBe(0);
    expect(r.stdout.trim()).toBe(require('../package.json').version);
  });

  it('starts without loading a stage package: --version and --help load no i2i-core, train --help does', () => {
    const loaded = (args: string[]): number => {
      // The count of i2i-core modules in require.cache after main() ran, printed last on stdout by the child.
      const script =
        `const { main } = require(${JSON.stringify(path.resolve(__dirname, '..', 'dist', 'cli.js'))});` +
        `main(${JSON.stringify(args)}).then(() => process.stdout.write('\\n' + ` +
        `Object.keys(require.cache).filter((k) => /[\\\\/]i2i-core[\\\\/]/.test(k)).length + '\\n'));`;
      const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' });
      expect(r.stderr).toBe('');
      return Number(r.stdout.trimEnd().split('\n').at(-1));
    };
    expect(loaded(['--version'])).toBe(0);
    expect(loaded(['--help'])).toBe(0);
    expect(loaded(['translate', '--help'])).toBe(0);
    expect(loaded(['train', '--help'])).toBeGreaterThan(0);
  });

  it('offline without a cached model, says which file to fetch and where, and exits 5', async () => {
    const tmp = await makeTempDir('bin-offline');
    try {
      const r = run(['translate', photo, '-o', path.join(tmp.dir, 'out')], { SCENIMEFY_CACHE_DIR: tmp.dir, SCENIMEFY_OFFLINE: '1' });
      expect(r.status).toBe(5);
      expect(r.stderr.trim()).toBe(
        `scenimefy: model "shinkai" is not in the cache and downloads are off (--offline or SCENIMEFY_OFFLINE=1): download https://github.com/Yuxinn-J/Scenimefy/releases/download/v0.1.0/Shinkai_net_G.pth and put it at ${path.join(tmp.dir, 'models', 'shinkai', 'Shinkai_net_G.pth')}, or pass --model <file>`,
      );
    } finally {
      await tmp.cleanup();
    }
  });

  describeIfFixture('i2i/netG-ngf16.pth', 'with a model file', () => {
    it('translates a real photo end to end', async () => {
      const tmp = await makeTempDir('bin-translate');
      try {
        const out = path.join(tmp.dir, 'out');
        const r = run(['translate', photo, '-o', out, '-m', referenceFixturePath('i2i/netG-ngf16.pth'), '--json']);
        expect(r.status).toBe(0);
        const events = r.stdout
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l) as { event: string; width?: number; height?: number });
        // 640×427: 427/4 = 106.75 → 107 → 428 (SPEC §8).
        expect(events.find((e) => e.event === 'translated')).toMatchObject({ width: 640, height: 428 });
        expect(await fsp.readdir(out)).toEqual(['rocket.png']);
      } finally {
        await tmp.cleanup();
      }
    });

    it('ends quietly with status 141 when its reader closes after one line, like `--json | head -1` (issue 12 #11)', async () => {
      const tmp = await makeTempDir('bin-epipe');
      try {
        const photos = path.join(tmp.dir, 'photos');
        await fsp.mkdir(photos);
        for (let i = 0; i < 6; i++) await fsp.copyFile(photo, path.join(photos, `p${i}.jpg`));
        const out = path.join(tmp.dir, 'out');
        const child = spawn(
          process.execPath,
          [bin, 'translate', photos, '-o', out, '-m', referenceFixturePath('i2i/netG-ngf16.pth'), '--json'],
          {
            stdio: ['ignore', 'pipe', 'pipe'],
          },
        );
        let stderr = '';
        child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
        let firstLine = '';
        // The reader: takes the first line, then closes its end of the pipe.
        child.stdout.on('data', (d: Buffer) => {
          if (firstLine !== '') return;
          firstLine = d.toString().split('\n')[0]!;
          child.stdout.destroy();
        });
        const status = await new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
        expect(JSON.parse(firstLine)).toMatchObject({ event: 'model' });
        expect(stderr).toBe(''); // no "Error: write EPIPE", no stack trace
        expect(status).toBe(141);
        // It stopped early; whatever it wrote is whole (nothing half-written, no temp files).
        const written = await fsp.readdir(out);
        expect(written.length).toBeLessThan(6);
        for (const f of written) expect(f).toMatch(/^p\d\.png$/);
      } finally {
        await tmp.cleanup();
      }
    });
  });
});
