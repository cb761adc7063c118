import { existsSync, promises as fsp } from 'node:fs';
import * as path from 'node:path';

import { ContractError, InputError, float32Tensor, serializeSafetensors, tensorToFloat32 } from '@scenimefy/io';

import {
  describeIfFixture,
  hasReferenceFixture,
  loadReferenceFixture,
  referenceFixturePath,
  referenceFixturesDir,
  repoRoot,
} from './reference-fixtures';
import { withTempDir } from './temp-dir';

const ENV = 'SCENIMEFY_REFERENCE_FIXTURES';

function withEnv<T>(value: string | undefined, fn: () => T): T {
  const saved = process.env[ENV];
  if (value === undefined) delete process.env[ENV];
  else process.env[ENV] = value;
  try {
    return fn();
  } finally {
    if (saved === undefined) delete process.env[ENV];
    else process.env[ENV] = saved;
  }
}

async function rejectionOf(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a rejection');
}

describe('referenceFixturesDir', () => {
  it('finds the repository root from this package', () => {
    expect(existsSync(path.join(repoRoot(), 'tools', 'test-utils', 'package.json'))).toBe(true);
  });

  it('prefers the environment variable', () => {
    expect(withEnv('/somewhere/else', referenceFixturesDir)).toBe(path.resolve('/somewhere/else'));
    expect(withEnv('/somewhere/else', () => referenceFixturePath('i2i', 'x.json'))).toBe(
      path.join(path.resolve('/somewhere/else'), 'i2i', 'x.json'),
    );
  });

  it('falls back to ../shared/fixtures/reference when present, else to the copies kept in the repo', () => {
    const shared = path.resolve(repoRoot(), '..', 'shared', 'fixtures', 'reference');
    const inRepo = path.join(repoRoot(), 'tools', 'test-utils', 'fixtures', 'reference');
    expect(withEnv(undefined, referenceFixturesDir)).toBe(existsSync(shared) ? shared : inRepo);
    expect(withEnv('', referenceFixturesDir)).toBe(existsSync(shared) ? shared : inRepo);
  });

  it('tells whether a fixture exists', async () => {
    await withTempDir(async (dir) => {
      await fsp.mkdir(path.join(dir, 'g'));
      await fsp.writeFile(path.join(dir, 'g', 'a.json'), '{}');
      expect(withEnv(dir, () => hasReferenceFixture('g/a.json'))).toBe(true);
      expect(withEnv(dir, () => hasReferenceFixture('g/b.json'))).toBe(false);
    });
  });
});

describe('loadReferenceFixture on a fixture made here', () => {
  it('reads the sidecar and tensors, with typed accessors and errors naming the file and field', async () => {
    await withTempDir(async (dir) => {
      await fsp.mkdir(path.join(dir, 'g'));
      const sidecar = {
        tensors: [{ name: 'x', shape: [2, 2], dtype: 'float32', range: [-1, 3] }],
        tol: { atol: 1e-5 },
        label: 'made here',
      };
      await fsp.writeFile(path.join(dir, 'g', 's.json'), JSON.stringify(sidecar));
      const x = float32Tensor([2, 2], new Float32Array([-1, 0, 2, 3]));
      await fsp.writeFile(path.join(dir, 'g', 's.safetensors'), serializeSafetensors([['x', x]]));
      const f = await withEnv(dir, () => loadReferenceFixture('g', 's'));
      expect(f.sidecar).toEqual(sidecar);
      expect(f.sidecarTensors()).toEqual([{ name: 'x', shape: [2, 2], dtype: 'float32', range: [-1, 3], entry: sidecar.tensors[0] }]);
      expect(f.sidecarNumber('tol.atol')).toBe(1e-5);
      expect(f.sidecarNumber(['tensors', 0, 'range', 1])).toBe(3);
      expect(f.sidecarString('label')).toBe('made here');
      expect([...f.float32('x')]).toEqual([-1, 0, 2, 3]);
      expect(f.shape('x')).toEqual([2, 2]);

      const missing = (() => {
        try {
          f.sidecarNumber('tol.rtol');
        } catch (error) {
          return error as Error;
        }
        throw new Error('expected a throw');
      })();
      expect(missing).toBeInstanceOf(ContractError);
      expect(missing.message).toBe(`${f.sidecarPath}: tol.rtol: not in the fixture sidecar`);
      expect(() => f.sidecarString('tol.atol')).toThrow(
        `${f.sidecarPath}: tol.atol: expected a string in the fixture sidecar, got 0.00001`,
      );
      expect(() => f.tensor('y')).toThrow(`${f.tensorsPath}: no tensor "y" (has: x)`);

      const absent = await rejectionOf(withEnv(dir, () => loadReferenceFixture('g', 'nope')));
      expect(absent).toBeInstanceOf(InputError);
      expect(absent.message).toBe(`${path.join(dir, 'g', 'nope.json')}: cannot read fixture sidecar (ENOENT)`);
    });
  });
});

describeIfFixture('i2i/netG-ngf16-io.safetensors', 'loadReferenceFixture on a real fixture', () => {
  it('loads netG-ngf16-io and agrees with its sidecar', async () => {
    const f = await loadReferenceFixture('i2i', 'netG-ngf16-io');
    expect(f.tensorsPath).toBe(referenceFixturePath('i2i', 'netG-ngf16-io.safetensors'));
    expect(f.sidecarString('file')).toBe('netG-ngf16-io.safetensors');
    const entries = f.sidecarTensors();
    expect(entries.map((e) => e.name).sort()).toEqual([...f.tensors.keys()].sort());
    for (const entry of entries) {
      expect({ name: entry.name, shape: f.shape(entry.name) }).toEqual({ name: entry.name, shape: entry.shape });
      const values = f.float32(entry.name);
      expect(values).toBeInstanceOf(Float32Array);
      const range = values.reduce<[number, number]>(([lo, hi], v) => [Math.min(lo, v), Math.max(hi, v)], [Infinity, -Infinity]);
      expect({ name: entry.name, range }).toEqual({ name: entry.name, range: entry.range });
      expect([...values.subarray(0, 8)]).toEqual([...tensorToFloat32(f.tensor(entry.name)).subarray(0, 8)]);
    }
    const measured = f.sidecarValue('float32_vs_float64') as Record<string, unknown>;
    for (const name of Object.keys(measured)) {
      expect(f.sidecarNumber(['float32_vs_float64', name, 'max_abs_f32_vs_f64'])).toBeGreaterThanOrEqual(0);
      expect(f.tensors.has(name)).toBe(true);
    }
  });
});

describeIfFixture('metrics/fid-kid.safetensors', 'loadReferenceFixture on a shapes-only sidecar', () => {
  it('reads the {name: shape} form of the sidecar tensor list', async () => {
    const f = await loadReferenceFixture('metrics', 'fid-kid');
    for (const entry of f.sidecarTensors()) {
      expect({ name: entry.name, shape: f.shape(entry.name) }).toEqual({ name: entry.name, shape: entry.shape });
      expect(entry.dtype).toBeUndefined();
    }
  });
});

describeIfFixture(['i2i/train.json', 'i2i/train-io.safetensors'], 'loadReferenceFixture with tensorFile', () => {
  it('loads a tensor file named apart from its sidecar', async () => {
    const f = await loadReferenceFixture('i2i', 'train', { tensorFile: 'train-io.safetensors' });
    expect(f.tensorsPath).toBe(referenceFixturePath('i2i', 'train-io.safetensors'));
    expect(f.tensors.size).toBeGreaterThan(0);
  });
});

// If the helper failed to skip, this block's only test would run and fail.
describeIfFixture('no-such-group/no-such-fixture.safetensors', 'describeIfFixture with an absent fixture', () => {
  it('is skipped', () => {
    throw new Error('describeIfFixture ran a block whose fixture is absent');
  });
});
