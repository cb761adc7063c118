/// <reference types="jest" />
/**
 * Finding and loading the reference fixtures (tensors from the PyTorch reference plus their JSON sidecars).
 * Lookup order: env SCENIMEFY_REFERENCE_FIXTURES, then `<repo>/../shared/fixtures/reference` when it exists,
 * then the small copies kept in the repo at `<repo>/tools/test-utils/fixtures/reference`.
 */
import { existsSync, promises as fsp } from 'node:fs';
import * as path from 'node:path';

import { ContractError, InputError, readSafetensors, tensorToFloat32 } from '@scenimefy/io';
import type { TensorData, TensorMap } from '@scenimefy/io';

/** The repository root (this file lives in tools/test-utils/src, or tools/test-utils/dist once built). */
export function repoRoot(): string {
  return path.resolve(__dirname, '..', '..', '..');
}

/** The folder that holds the reference fixture groups (`i2i/`, `clip/`, ...). */
export function referenceFixturesDir(): string {
  const fromEnv = process.env['SCENIMEFY_REFERENCE_FIXTURES'];
  if (fromEnv !== undefined && fromEnv !== '') return path.resolve(fromEnv);
  const shared = path.resolve(repoRoot(), '..', 'shared', 'fixtures', 'reference');
  if (existsSync(shared)) return shared;
  return path.join(repoRoot(), 'tools', 'test-utils', 'fixtures', 'reference');
}

/** Absolute path of a fixture, e.g. `referenceFixturePath('i2i', 'netG-ngf16-io.json')`. */
export function referenceFixturePath(...parts: string[]): string {
  return path.join(referenceFixturesDir(), ...parts);
}

/** Whether a fixture file or folder (path relative to the fixtures folder) is present. */
export function hasReferenceFixture(relPath: string): boolean {
  return existsSync(referenceFixturePath(relPath));
}

/**
 * `describe` when every named fixture is present, otherwise `describe.skip` with the missing one in the title,
 * so a checkout without the big fixtures still runs the rest of the suite.
 */
export function describeIfFixture(relPaths: string | readonly string[], name: string, fn: () => void): void {
  const missing = (typeof relPaths === 'string' ? [relPaths] : relPaths).filter((p) => !hasReferenceFixture(p));
  if (missing.length === 0) describe(name, fn);
  else describe.skip(`${name} (fixture ${missing.join(', ')} absent)`, fn);
}

/** One tensor as a sidecar describes it. */
export interface SidecarTensor {
  name: string;
  shape: number[];
  /** As the sidecar spells it (`float32`, `int64`, ...); undefined when it gives only shapes. */
  dtype: string | undefined;
  /** `[min, max]` of the stored values, when the sidecar records it. */
  range: [number, number] | undefined;
  /** The sidecar's whole entry, for fields such as `meaning` or `layout`. */
  entry: Readonly<Record<string, unknown>>;
}

export interface ReferenceFixture {
  readonly group: string;
  readonly stem: string;
  readonly sidecarPath: string;
  readonly tensorsPath: string;
  /** The parsed JSON sidecar, untyped; read it through the accessors below. */
  readonly sidecar: unknown;
  readonly tensors: TensorMap;
  readonly metadata: Record<string, string>;
  /** The sidecar's tensor list (either a list of entries or a `{name: shape}` map), in sidecar order. */
  sidecarTensors(): SidecarTensor[];
  /** The sidecar value at a dotted path (`'float32_vs_float64.output_a.max_abs_f32_vs_f64'`) or a key list. */
  sidecarValue(keyPath: string | readonly (string | number)[]): unknown;
  sidecarNumber(keyPath: string | readonly (string | number)[]): number;
  sidecarString(keyPath: string | readonly (string | number)[]): string;
  tensor(name: string): TensorData;
  /** The tensor's values as float32 (see io's tensorToFloat32 for when this is a view). */
  float32(name: string): Float32Array;
  shape(name: string): number[];
}

export interface LoadReferenceFixtureOptions {
  /** Tensor file name in the group folder when it is not `<stem>.safetensors` (e.g. `train-io.safetensors`). */
  tensorFile?: string;
}

/** Read `<group>/<stem>.json` and `<group>/<stem>.safetensors` (or `options.tensorFile`) from the fixtures folder. */
export async function loadReferenceFixture(
  group: string,
  stem: string,
  options: LoadReferenceFixtureOptions = {},
): Promise<ReferenceFixture> {
  const sidecarPath = referenceFixturePath(group, `${stem}.json`);
  const tensorsPath = referenceFixturePath(group, options.tensorFile ?? `${stem}.safetensors`);
  let text: string;
  try {
    text = await fsp.readFile(sidecarPath, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'EIO';
    throw new InputError(`cannot read fixture sidecar (${code})`, { file: sidecarPath, cause: error });
  }
  let sidecar: unknown;
  try {
    sidecar = JSON.parse(text);
  } catch (error) {
    throw new ContractError(`fixture sidecar is not valid JSON (${(error as Error).message.replace(/\s+/g, ' ')})`, {
      file: sidecarPath,
      cause: error,
    });
  }
  const { tensors, metadata } = await readSafetensors(tensorsPath);

  const sidecarValue = (keyPath: string | readonly (string | number)[]): unknown => {
    const keys = typeof keyPath === 'string' ? keyPath.split('.') : keyPath;
    let node: unknown = sidecar;
    for (const key of keys) {
      if (typeof node !== 'object' || node === null || !Object.hasOwn(node, key)) {
        throw new ContractError('not in the fixture sidecar', { file: sidecarPath, field: keys.join('.') });
      }
      node = (node as Record<string | number, unknown>)[key];
    }
    return node;
  };
  const typed = <T>(keyPath: string | readonly (string | number)[], kind: string, check: (v: unknown) => v is T): T => {
    const value = sidecarValue(keyPath);
    if (!check(value)) {
      const field = typeof keyPath === 'string' ? keyPath : keyPath.join('.');
      throw new ContractError(`expected a ${kind} in the fixture sidecar, got ${JSON.stringify(value)}`, { file: sidecarPath, field });
    }
    return value;
  };
  const tensor = (name: string): TensorData => {
    const t = tensors.get(name);
    if (t === undefined) {
      throw new ContractError(`no tensor ${JSON.stringify(name)} (has: ${[...tensors.keys()].join(', ')})`, { file: tensorsPath });
    }
    return t;
  };

  return {
    group,
    stem,
    sidecarPath,
    tensorsPath,
    sidecar,
    tensors,
    metadata,
    sidecarTensors: () => sidecarTensorsOf(sidecar, sidecarPath),
    sidecarValue,
    sidecarNumber: (keyPath) => typed(keyPath, 'number', (v): v is number => typeof v === 'number'),
    sidecarString: (keyPath) => typed(keyPath, 'string', (v): v is string => typeof v === 'string'),
    tensor,
    float32: (name) => tensorToFloat32(tensor(name)),
    shape: (name) => [...tensor(name).shape],
  };
}

function sidecarTensorsOf(sidecar: unknown, file: string): SidecarTensor[] {
  const list = typeof sidecar === 'object' && sidecar !== null ? (sidecar as Record<string, unknown>)['tensors'] : undefined;
  const bad = (field: string, problem: string): never => {
    throw new ContractError(problem, { file, field });
  };
  const isShape = (v: unknown): v is number[] => Array.isArray(v) && v.every((d) => Number.isInteger(d) && (d as number) >= 0);
  if (Array.isArray(list)) {
    return list.map((raw: unknown, i) => {
      if (typeof raw !== 'object' || raw === null) return bad(`tensors.${i}`, 'expected an object');
      const entry = raw as Record<string, unknown>;
      const { name, shape, dtype, range } = entry;
      if (typeof name !== 'string') return bad(`tensors.${i}.name`, 'expected a string');
      if (!isShape(shape)) return bad(`tensors.${i}.shape`, 'expected a list of non-negative integers');
      if (dtype !== undefined && typeof dtype !== 'string') return bad(`tensors.${i}.dtype`, 'expected a string');
      const isRange = Array.isArray(range) && range.length === 2 && range.every((v) => typeof v === 'number');
      if (range !== undefined && !isRange) return bad(`tensors.${i}.range`, 'expected [min, max]');
      return { name, shape: [...shape], dtype, range: range as [number, number] | undefined, entry };
    });
  }
  if (typeof list === 'object' && list !== null) {
    return Object.entries(list as Record<string, unknown>).map(([name, shape]) => {
      if (!isShape(shape)) return bad(`tensors.${name}`, 'expected a list of non-negative integers');
      return { name, shape: [...shape], dtype: undefined, range: undefined, entry: { name, shape } };
    });
  }
  return bad('tensors', 'the sidecar lists no tensors');
}
