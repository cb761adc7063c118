import { promises as fsp } from 'node:fs';
import * as path from 'node:path';

import { createOnnxSession, resolveModel } from '@scenimefy/i2i-core';
import { readTorchStateDict, sha256File } from '@scenimefy/io';
import { describeIfFixture, makeTempDir, referenceFixturePath, startLoopbackServer, type TempDir } from '@scenimefy/test-utils';

import { runCli } from '../cli-harness';

describeIfFixture('i2i/netG-ngf16.pth', 'scenimefy export / models', () => {
  const pth = referenceFixturePath('i2i/netG-ngf16.pth');
  let tmp: TempDir;
  const saved = { ...process.env };
  beforeEach(async () => {
    tmp = await makeTempDir('cli-models');
    process.env.SCENIMEFY_CACHE_DIR = path.join(tmp.dir, 'cache');
  });
  afterEach(async () => {
    process.env = { ...saved };
    await tmp.cleanup();
  });

  it('exports an ONNX model that onnxruntime loads and whose weights round-trip', async () => {
    const out = path.join(tmp.dir, 'g.onnx');
    const r = await runCli(['export', pth, '--onnx', out, '--opset', '18', '--json']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.events()[0]).toMatchObject({ event: 'exported', output: out, opset: 18 });
    const session = await createOnnxSession(out);
    expect(session.inputName).toBe('input');
    await session.release();
    const back = await resolveModel(out);
    const original = await readTorchStateDict(pth);
    expect(Buffer.from(back.stateDict.get('model.30.weight')!.bytes).equals(Buffer.from(original.get('model.30.weight')!.bytes))).toBe(
      true,
    );
    const again = await runCli(['export', pth, '--onnx', out]);
    expect(again.code).toBe(1);
    expect(again.stderr).toBe(`scenimefy: ${out}: already exists (pass --force to overwrite)\n`);
    const badOpset = await runCli(['export', pth, '--onnx', path.join(tmp.dir, 'x.onnx'), '--opset', '12']);
    expect(badOpset.code).toBe(2);
    expect(badOpset.stderr).toBe('scenimefy: ONNX opset must be an integer from 17 to 23, got 12\n');
  });

  it('lists models with their cache state, fetches from a mirror, and imports a file by its digest', async () => {
    const bytes = await fsp.readFile(pth);
    const vggBytes = Buffer.from('stand-in for vgg19 weights: fetch checks only size and digest');
    const server = await startLoopbackServer({ '/netG-ngf16.pth': { body: bytes }, '/vgg.pth': { body: vggBytes } });
    try {
      const manifest = path.join(tmp.dir, 'mirror.json');
      const entry = {
        name: 'tiny',
        file: 'netG-ngf16.pth',
        url: server.url('/netG-ngf16.pth'),
        sha256: await sha256File(pth),
        bytes: bytes.length,
      };
      const vggFile = path.join(tmp.dir, 'vgg.pth');
      await fsp.writeFile(vggFile, vggBytes);
      const vgg = {
        name: 'tinyvgg',
        kind: 'vgg19-features',
        file: 'vgg.pth',
        url: server.url('/vgg.pth'),
        sha256: await sha256File(vggFile),
        bytes: vggBytes.length,
      };
      await fsp.writeFile(manifest, JSON.stringify({ models: [entry, vgg] }));
      process.env.SCENIMEFY_MODEL_MANIFEST = manifest;
      process.env.SCENIMEFY_OFFLINE = '0';

      let list = await runCli(['models', 'list', '--json']);
      expect(list.events().map((e) => [e.name, e.cached])).toEqual([
        ['shinkai', false],
        ['tiny', false],
        ['vgg19', false],
        ['tinyvgg', false],
      ]);
      // A non-generator model (VGG-19 weights for --lambda-vgg) is fetched as is, without an ONNX conversion.
      const fetchedVgg = await runCli(['models', 'fetch', 'tinyvgg', '--json']);
      expect(fetchedVgg.code).toBe(0);
      expect(fetchedVgg.events().at(-1)).toMatchObject({
        event: 'fetched',
        name: 'tinyvgg',
        file: path.join(tmp.dir, 'cache', 'models', 'tinyvgg', 'vgg.pth'),
        onnx: null,
      });
      const fetched = await runCli(['models', 'fetch', 'tiny', '--json']);
      expect(fetched.code).toBe(0);
      expect(fetched.events().at(-1)).toMatchObject({
        event: 'fetched',
        name: 'tiny',
        onnx: path.join(tmp.dir, 'cache', 'models', 'tiny', 'model.onnx'),
      });
      list = await runCli(['models', 'list', '--json']);
      expect(list.events().find((e) => e.name === 'tiny')).toMatchObject({ cached: true });

      // import: a second cache, the same file from disk.
      process.env.SCENIMEFY_CACHE_DIR = path.join(tmp.dir, 'cache2');
      const imported = await runCli(['models', 'import', pth, '--json']);
      expect(imported.code).toBe(0);
      expect(imported.events()[0]).toMatchObject({
        event: 'imported',
        name: 'tiny',
        file: path.join(tmp.dir, 'cache2', 'models', 'tiny', 'netG-ngf16.pth'),
      });
      const stranger = path.join(tmp.dir, 'other.pth');
      await fsp.writeFile(stranger, 'not a known model');
      const refused = await runCli(['models', 'import', stranger]);
      expect(refused.code).toBe(3);
      expect(refused.stderr).toMatch(
        /^scenimefy: .*other\.pth: sha256 [0-9a-f]{64} matches no known model \(shinkai: 3bdeced1.*; use it directly with --model instead\n$/,
      );
      expect(server.requests).toHaveLength(2);
    } finally {
      await server.close();
    }
  });

  it('exits 3 for a model that does not exist, by file or by name (issue 12 #12)', async () => {
    const missing = path.join(tmp.dir, 'missing.pth');
    const exported = await runCli(['export', missing, '--onnx', path.join(tmp.dir, 'x.onnx')]);
    expect(exported.code).toBe(3);
    expect(exported.stderr).toBe(`scenimefy: ${missing}: no such model file or folder (known model names: shinkai)\n`);
    const fetched = await runCli(['models', 'fetch', 'hayao']);
    expect(fetched.code).toBe(3);
    expect(fetched.stderr).toBe('scenimefy: hayao: no such model file or folder (known model names: shinkai)\n');
    const opset = await runCli(['export', pth, '--onnx', path.join(tmp.dir, 'x.onnx'), '--opset', 'new']);
    expect(opset.code).toBe(2);
    expect(opset.stderr).toContain('--opset takes an integer from 17 to 23, got "new"');
  });

  it('suggests the way round a download that fits the command, not --model (issue 12 #13)', async () => {
    process.env.SCENIMEFY_OFFLINE = '1';
    const vgg = await runCli(['models', 'fetch', 'vgg19']);
    expect(vgg.code).toBe(5);
    expect(vgg.stderr).toMatch(
      /^scenimefy: model "vgg19" is not in the cache and downloads are off .*, or put a copy you have into the cache with `scenimefy models import <file>`\n$/,
    );
    const shinkai = await runCli(['models', 'fetch']);
    expect(shinkai.stderr).toMatch(/, or put a copy you have into the cache with `scenimefy models import <file>`\n$/);
    const exported = await runCli(['export', 'shinkai', '--onnx', path.join(tmp.dir, 'x.onnx')]);
    expect(exported.code).toBe(5);
    expect(exported.stderr).toMatch(
      /^scenimefy: model "shinkai" is not in the cache .*, or export a file you have: `scenimefy export <file> --onnx <out>`\n$/,
    );
    for (const r of [vgg, shinkai, exported]) expect(r.stderr).not.toContain('--model');
  });

  it('fails a download whose digest does not match, keeping nothing, with exit status 3', async () => {
    const server = await startLoopbackServer({ '/Shinkai_net_G.pth': { body: 'x'.repeat(1000) } });
    try {
      process.env.SCENIMEFY_MODEL_BASE_URL = server.baseUrl;
      process.env.SCENIMEFY_OFFLINE = '0';
      const r = await runCli(['models', 'fetch']);
      expect(r.code).toBe(3);
      expect(r.stderr.split('\n')[1]).toBe(
        `scenimefy: ${server.url('/Shinkai_net_G.pth')} serves 1000 bytes, expected 45570633 for Shinkai_net_G.pth; not downloading it`,
      );
      await expect(fsp.readdir(path.join(tmp.dir, 'cache', 'models', 'shinkai'))).resolves.toEqual([]);
    } finally {
      await server.close();
    }
  });
});
