/**
 * The pretrained models `scenimefy` knows by name (SPEC §13). A frozen registry keyed by name; an unknown name
 * gets an error listing the valid ones. A mirror can replace entries with a JSON manifest
 * (`SCENIMEFY_MODEL_MANIFEST`) and the download base with `SCENIMEFY_MODEL_BASE_URL`.
 */
import { readFileSync } from 'node:fs';

import { UsageError, ContractError } from '@scenimefy/io';

export interface ModelEntry {
  /** Registry name, e.g. "shinkai". */
  readonly name: string;
  readonly description: string;
  /** File name as published, e.g. "Shinkai_net_G.pth". */
  readonly file: string;
  /** Full download URL of the published file. */
  readonly url: string;
  /** Expected sha256 of the file (hex). */
  readonly sha256: string;
  /** Expected size in bytes. */
  readonly bytes: number;
  readonly format: 'pytorch' | 'safetensors' | 'onnx';
  /** Where the file comes from, for humans. */
  readonly source: string;
}

const OFFICIAL_RELEASE = 'https://github.com/Yuxinn-J/Scenimefy/releases/download/v0.1.0/';

export const MODEL_REGISTRY: Readonly<Record<string, ModelEntry>> = Object.freeze({
  shinkai: Object.freeze({
    name: 'shinkai',
    description: 'official Scenimefy generator, Makoto Shinkai style (ResNet-9, ngf 64)',
    file: 'Shinkai_net_G.pth',
    url: `${OFFICIAL_RELEASE}Shinkai_net_G.pth`,
    // The HF Space's LFS digest of the same file (SPEC §13); a mismatch is reported, never ignored.
    sha256: '3bdeced133287fbb95832f4342aaff399f6f73507b515118918cc27ccd98ad8c',
    bytes: 45_570_633,
    format: 'pytorch',
    source: 'GitHub release v0.1.0 of Yuxinn-J/Scenimefy (also in the HF Space YuxinJ/Scenimefy)',
  }),
});

export const DEFAULT_MODEL = 'shinkai';

export interface RegistryEnv {
  SCENIMEFY_MODEL_BASE_URL?: string;
  SCENIMEFY_MODEL_MANIFEST?: string;
}

/**
 * The registry in force: the built-in entries, replaced by a mirror manifest's entries when
 * `SCENIMEFY_MODEL_MANIFEST` names one, with URLs rebased onto `SCENIMEFY_MODEL_BASE_URL` when set.
 */
export function resolveRegistry(env: RegistryEnv = process.env): Readonly<Record<string, ModelEntry>> {
  let entries: Record<string, ModelEntry> = { ...MODEL_REGISTRY };
  if (env.SCENIMEFY_MODEL_MANIFEST) entries = { ...entries, ...readMirrorManifest(env.SCENIMEFY_MODEL_MANIFEST) };
  const base = env.SCENIMEFY_MODEL_BASE_URL;
  if (base) {
    const prefix = base.endsWith('/') ? base : `${base}/`;
    entries = Object.fromEntries(Object.entries(entries).map(([k, e]) => [k, { ...e, url: `${prefix}${e.file}` }]));
  }
  return Object.freeze(entries);
}

/** The entry for `name`, or a UsageError listing the known names. */
export function findModel(name: string, env: RegistryEnv = process.env): ModelEntry {
  const registry = resolveRegistry(env);
  const entry = registry[name];
  if (!entry) {
    throw new UsageError(`unknown model "${name}"; known models: ${Object.keys(registry).sort().join(', ')}`);
  }
  return entry;
}

function readMirrorManifest(file: string): Record<string, ModelEntry> {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new ContractError(`cannot read the model manifest (${(error as Error).message})`, { file });
  }
  const models = (raw as { models?: unknown }).models;
  if (!Array.isArray(models)) throw new ContractError('expected an object with a "models" array', { file, field: 'models' });
  const out: Record<string, ModelEntry> = {};
  models.forEach((m: Record<string, unknown>, i) => {
    for (const field of ['name', 'file', 'url', 'sha256'] as const) {
      if (typeof m[field] !== 'string' || m[field] === '') {
        throw new ContractError('must be a non-empty string', { file, field: `models[${i}].${field}` });
      }
    }
    if (!/^[0-9a-f]{64}$/.test(m.sha256 as string)) {
      throw new ContractError('must be 64 lowercase hex digits', { file, field: `models[${i}].sha256` });
    }
    if (typeof m.bytes !== 'number' || !Number.isInteger(m.bytes) || m.bytes <= 0) {
      throw new ContractError('must be a positive integer', { file, field: `models[${i}].bytes` });
    }
    const format = (m.format ?? 'pytorch') as ModelEntry['format'];
    if (!['pytorch', 'safetensors', 'onnx'].includes(format)) {
      throw new ContractError('must be "pytorch", "safetensors" or "onnx"', { file, field: `models[${i}].format` });
    }
    const name = m.name as string;
    out[name] = Object.freeze({
      name,
      description: typeof m.description === 'string' ? m.description : name,
      file: m.file as string,
      url: m.url as string,
      sha256: m.sha256 as string,
      bytes: m.bytes,
      format,
      source: typeof m.source === 'string' ? m.source : `mirror manifest ${file}`,
    });
  });
  return out;
}
