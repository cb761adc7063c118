import { promises as fsp, readFileSync } from 'node:fs';
import * as path from 'node:path';

import { makeTempDir, type TempDir } from '@scenimefy/test-utils';

import { runCli } from '../cli-harness';

describe('scenimefy doctor (issue 12 #14)', () => {
  let tmp: TempDir;
  const saved = { ...process.env };
  beforeEach(async () => {
    tmp = await makeTempDir('doctor');
  });
  afterEach(async () => {
    process.env = { ...saved };
    await tmp.cleanup();
  });

  it('names onnxruntime, its execution providers, the model cache, its size and the cached models', async () => {
    const cache = path.join(tmp.dir, 'cache');
    const bytes = Buffer.from('a cached stand-in of 43 bytes, size-checked');
    await fsp.mkdir(path.join(cache, 'models', 'tiny'), { recursive: true });
    await fsp.writeFile(path.join(cache, 'models', 'tiny', 'tiny.pth'), bytes);
    const manifest = path.join(tmp.dir, 'manifest.json');
    const entry = { name: 'tiny', file: 'tiny.pth', url: 'https://example.invalid/tiny.pth', sha256: 'a'.repeat(64), bytes: bytes.length };
    await fsp.writeFile(manifest, JSON.stringify({ models: [entry] }));
    process.env.SCENIMEFY_CACHE_DIR = cache;
    process.env.SCENIMEFY_MODEL_MANIFEST = manifest;

    const ortVersion = (JSON.parse(readFileSync(require.resolve('onnxruntime-node/package.json'), 'utf8')) as { version: string }).version;
    const json = await runCli(['doctor', '--json']);
    expect(json.code).toBe(0);
    const [doctor] = json.events();
    expect(doctor).toMatchObject({
      event: 'doctor',
      onnxruntime: { package: 'onnxruntime-node', version: ortVersion },
      cache: { dir: cache, exists: true, bytes: bytes.length },
    });
    const providers = (doctor!.onnxruntime as { providers: Array<{ name: string; installed: boolean }> }).providers;
    expect(providers).toContainEqual({ name: 'cpu', installed: true });
    const models = (doctor!.cache as { models: Array<{ name: string; cached: boolean; file: string }> }).models;
    expect(models.find((m) => m.name === 'tiny')).toMatchObject({ cached: true, file: path.join(cache, 'models', 'tiny', 'tiny.pth') });
    expect(models.find((m) => m.name === 'shinkai')).toMatchObject({ cached: false });

    const human = await runCli(['doctor']);
    expect(human.code).toBe(0);
    const lines = human.stdout.split('\n');
    expect(lines).toContainEqual(
      expect.stringMatching(new RegExp(`^onnxruntime-node ${ortVersion.replace(/\./g, '\\.')} \\(inference\\); execution providers: cpu`)),
    );
    expect(lines).toContain(`model cache: ${cache} (0.0 MB)`);
    expect(lines).toContainEqual(expect.stringMatching(/^ {2}cached models: tiny; not cached: .*shinkai/));
  });
});
