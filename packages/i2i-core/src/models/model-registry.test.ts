import { promises as fsp } from 'node:fs';
import * as path from 'node:path';

import { ContractError, UsageError } from '@scenimefy/io';
import { withTempDir } from '@scenimefy/test-utils';

import { DEFAULT_MODEL, MODEL_REGISTRY } from './model-registry';
import { findModel, resolveRegistry } from './model-registry-env';

describe('model registry', () => {
  it('holds the official Shinkai generator with the published size and digest (SPEC §13)', () => {
    const e = MODEL_REGISTRY[DEFAULT_MODEL]!;
    expect(e.file).toBe('Shinkai_net_G.pth');
    expect(e.bytes).toBe(45_570_633);
    expect(e.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(Object.isFrozen(MODEL_REGISTRY)).toBe(true);
  });

  it("holds torchvision's VGG-19 as a vgg19-features file whose digest starts with its name's hash prefix", () => {
    const e = MODEL_REGISTRY['vgg19']!;
    expect(e).toMatchObject({ kind: 'vgg19-features', file: 'vgg19-dcbb9e9d.pth', bytes: 574_673_361, format: 'pytorch' });
    expect(e.url).toBe('https://download.pytorch.org/models/vgg19-dcbb9e9d.pth');
    expect(e.sha256).toMatch(/^[0-9a-f]{64}$/);
    // torchvision names its files <arch>-<first 8 hex digits of the sha256>.pth and checks only that prefix.
    const prefix = /-([0-9a-f]{8})\.pth$/.exec(e.file)![1]!;
    expect(e.sha256.startsWith(prefix)).toBe(true);
    expect(MODEL_REGISTRY[DEFAULT_MODEL]!.kind).toBe('generator');
  });

  it('shows one kind of file at a time: generators by default, the VGG weights only when asked for', () => {
    expect(Object.keys(resolveRegistry({}))).toEqual(['shinkai']);
    expect(Object.keys(resolveRegistry({}, 'vgg19-features'))).toEqual(['vgg19']);
    expect(findModel('vgg19', {}, 'vgg19-features').file).toBe('vgg19-dcbb9e9d.pth');
    expect(() => findModel('vgg19', {})).toThrow(UsageError);
    expect(() => findModel('vgg19', {})).toThrow('model "vgg19" is a vgg19-features file, not a generator; known models: shinkai');
    expect(() => findModel('shinkai', {}, 'vgg19-features')).toThrow(
      'model "shinkai" is a generator file, not a vgg19-features; known models: vgg19',
    );
    expect(findModel('vgg19', { SCENIMEFY_MODEL_BASE_URL: 'http://127.0.0.1:9/m/' }, 'vgg19-features').url).toBe(
      'http://127.0.0.1:9/m/vgg19-dcbb9e9d.pth',
    );
  });

  it('rejects an unknown name listing the valid ones', () => {
    expect(() => findModel('ghibli', {})).toThrow(UsageError);
    expect(() => findModel('ghibli', {})).toThrow('unknown model "ghibli"; known models: shinkai');
  });

  it('rebases download URLs onto SCENIMEFY_MODEL_BASE_URL', () => {
    expect(findModel('shinkai', { SCENIMEFY_MODEL_BASE_URL: 'http://127.0.0.1:9/m' }).url).toBe('http://127.0.0.1:9/m/Shinkai_net_G.pth');
  });

  it('takes entries from a mirror manifest and validates them field by field', () =>
    withTempDir(async (dir) => {
      const ok = path.join(dir, 'ok.json');
      await fsp.writeFile(
        ok,
        JSON.stringify({ models: [{ name: 'tiny', file: 't.pth', url: 'http://127.0.0.1/t.pth', sha256: 'a'.repeat(64), bytes: 10 }] }),
      );
      const reg = resolveRegistry({ SCENIMEFY_MODEL_MANIFEST: ok });
      expect(Object.keys(reg).sort()).toEqual(['shinkai', 'tiny']);
      expect(reg.tiny!.format).toBe('pytorch');
      expect(reg.tiny!.kind).toBe('generator');

      const vgg = path.join(dir, 'vgg.json');
      const mirrored = {
        name: 'vgg19',
        kind: 'vgg19-features',
        file: 'v.pth',
        url: 'http://127.0.0.1/v.pth',
        sha256: 'b'.repeat(64),
        bytes: 7,
      };
      await fsp.writeFile(vgg, JSON.stringify({ models: [mirrored] }));
      expect(findModel('vgg19', { SCENIMEFY_MODEL_MANIFEST: vgg }, 'vgg19-features')).toMatchObject({ file: 'v.pth', bytes: 7 });
      const badKind = path.join(dir, 'bad-kind.json');
      await fsp.writeFile(badKind, JSON.stringify({ models: [{ ...mirrored, kind: 'vgg16' }] }));
      expect(() => resolveRegistry({ SCENIMEFY_MODEL_MANIFEST: badKind })).toThrow(
        `${badKind}: models[0].kind: must be "generator" or "vgg19-features"`,
      );

      const bad = path.join(dir, 'bad.json');
      await fsp.writeFile(bad, JSON.stringify({ models: [{ name: 'x', file: 'x', url: 'u', sha256: 'nothex', bytes: 1 }] }));
      expect(() => resolveRegistry({ SCENIMEFY_MODEL_MANIFEST: bad })).toThrow(ContractError);
      expect(() => resolveRegistry({ SCENIMEFY_MODEL_MANIFEST: bad })).toThrow(`${bad}: models[0].sha256: must be 64 lowercase hex digits`);
    }));
});
