/**
 * The registry in force for this process (Node only): the built-in entries as changed by the environment — a
 * mirror manifest file named by `SCENIMEFY_MODEL_MANIFEST` and a download base `SCENIMEFY_MODEL_BASE_URL`.
 */
import { readFileSync } from 'node:fs';

import { ContractError } from '@scenimefy/io';

import { findModelIn, parseModelManifest, registryEntries, registryOfKind } from './model-registry';
import type { ModelEntry, ModelKind } from './model-registry';

export interface RegistryEnv {
  SCENIMEFY_MODEL_BASE_URL?: string;
  SCENIMEFY_MODEL_MANIFEST?: string;
}

/**
 * The registry in force for one kind of file (generators by default): the built-in entries, replaced by a mirror
 * manifest's entries when `SCENIMEFY_MODEL_MANIFEST` names one, with URLs rebased onto `SCENIMEFY_MODEL_BASE_URL`
 * when set.
 */
export function resolveRegistry(env: RegistryEnv = process.env, kind: ModelKind = 'generator'): Readonly<Record<string, ModelEntry>> {
  return registryOfKind(entriesInForce(env), kind);
}

/**
 * The entry for `name` among the files of `kind` (generators by default), or a UsageError listing the known names
 * (and saying so when `name` is a file of another kind).
 */
export function findModel(name: string, env: RegistryEnv = process.env, kind: ModelKind = 'generator'): ModelEntry {
  return findModelIn(entriesInForce(env), name, kind);
}

function entriesInForce(env: RegistryEnv): Record<string, ModelEntry> {
  const file = env.SCENIMEFY_MODEL_MANIFEST;
  return registryEntries({
    ...(file ? { entries: parseModelManifest(readManifest(file), file) } : {}),
    ...(env.SCENIMEFY_MODEL_BASE_URL ? { baseUrl: env.SCENIMEFY_MODEL_BASE_URL } : {}),
  });
}

function readManifest(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (error) {
    throw new ContractError(`cannot read the model manifest (${(error as Error).message})`, { file });
  }
}
