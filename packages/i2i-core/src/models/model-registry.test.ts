import { promises as fsp } from 'node:fs';
import * as path from 'node:path';

import { ContractError, UsageError } from '@scenimefy/io';
import { withTempDir } from '@scenimefy/test-utils';

import { DEFAULT_MODEL, MODEL_REGISTRY, findModel, resolveRegistry } from './model-registry';

describe('model registry', () => {
  it('holds the official Shinkai generator with the published size and digest (SPEC §13)', () => {
    const e = MODEL_REGISTRY[DEFAULT_MODEL]!;
    expect(e.file).toBe('Shinkai_net_G.pth');
    expect(e.bytes).toBe(45_570_633);
    expect(e.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(Object.isFrozen(MODEL_REGISTRY)).toBe(true);
  });

  it('rejects an unknown name listing the valid ones', () => {
    expect(() => findModel('ghibli', {})).toThrow(UsageError);
    expect(() => findModel('ghibli', {})).toThrow('unknown model "ghibli"; known models: shinkai');
  });

  it('rebases download URLs onto SCENIMEFY_MODEL_BASE_URL', () => {
    expect(findModel('shinkai', { SCENIMEFY_MODEL_BASE_URL: 'http://127.0.0.1:9/m' }).url).toBe(
      'http://127.0.0.1:9/m/Shinkai_net_G.pth',
    );
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

      const bad = path.join(dir, 'bad.json');
      await fsp.writeFile(bad, JSON.stringify({ models: [{ name: 'x', file: 'x', url: 'u', sha256: 'nothex', bytes: 1 }] }));
      expect(() => resolveRegistry({ SCENIMEFY_MODEL_MANIFEST: bad })).toThrow(ContractError);
      expect(() => resolveRegistry({ SCENIMEFY_MODEL_MANIFEST: bad })).toThrow(`${bad}: models[0].sha256: must be 64 lowercase hex digits`);
    }));
});
