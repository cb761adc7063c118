/**
 * `scenimefy doctor`: what this installation can use — Node, the TF.js backend (and why the others were
 * skipped), onnxruntime and its execution providers, image codecs, and the model cache (where, how big, which
 * models are in it).
 */
import { existsSync, promises as fsp, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';

import { MODEL_KINDS, cachedModelPath, isModelCached, listedOnnxBackends, modelCacheDir, resolveRegistry } from '@scenimefy/i2i-core';
import { availableBackends, describeBackend, loadTf } from '@scenimefy/io';

import type { Output } from '../output';
import { megabytes } from './progress';

// Required through the module registry that loaded io's sharp: a second copy of its native addon is not wanted.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const sharpVersions = (): Record<string, string> => (require('sharp') as { versions: Record<string, string> }).versions;

/** onnxruntime-node is i2i-core's dependency: resolved from there, and only resolved (i2i-core loads it). */
const fromCore = createRequire(require.resolve('@scenimefy/i2i-core/package.json'));

/** The folder and version of the onnxruntime-node that i2i-core loads, found without loading it a second time. */
function onnxruntimePackage(): { dir: string; version: string } {
  let dir = path.dirname(fromCore.resolve('onnxruntime-node'));
  while (!existsSync(path.join(dir, 'package.json')) && path.dirname(dir) !== dir) dir = path.dirname(dir);
  const { version } = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as { version: string };
  return { dir, version };
}

/**
 * Providers that onnxruntime-node lists but ships separately (its install script downloads them): present when
 * their library lies beside the binding, as onnxruntime loads it from there.
 */
const SEPARATE_PROVIDERS: Readonly<Record<string, string>> = {
  cuda: 'onnxruntime_providers_cuda',
  tensorrt: 'onnxruntime_providers_tensorrt',
};

const SEPARATE_PROVIDER_NOTE = 'not installed (`npm rebuild onnxruntime-node --onnxruntime-node-install=cuda12` downloads it)';

interface ProviderState {
  name: string;
  installed: boolean;
  note?: string;
}

function executionProviders(ortDir: string): ProviderState[] {
  const bindingDir = path.join(ortDir, 'bin', 'napi-v6', process.platform, process.arch);
  const libraryFile = (base: string) => (process.platform === 'win32' ? `${base}.dll` : `lib${base}.so`);
  return listedOnnxBackends().map((name) => {
    const library = SEPARATE_PROVIDERS[name];
    if (library === undefined) return { name, installed: true };
    const installed = existsSync(path.join(bindingDir, libraryFile(library)));
    return installed ? { name, installed } : { name, installed, note: SEPARATE_PROVIDER_NOTE };
  });
}

/** Bytes under `dir`, links not followed (the tfjs-node setup links node_modules into this cache, not back). */
async function folderBytes(dir: string): Promise<number> {
  let total = 0;
  const entries = await fsp.readdir(dir, { withFileTypes: true }).catch(() => []);
  for (const e of entries) {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) total += await folderBytes(full);
    else if (e.isFile()) total += (await fsp.lstat(full).catch(() => ({ size: 0 }))).size;
  }
  return total;
}

export async function doctorCommand(out: Output): Promise<number> {
  const installed = availableBackends();
  const tf = await loadTf({});
  const sharp = sharpVersions();
  const ort = onnxruntimePackage();
  const providers = executionProviders(ort.dir);
  const cacheDir = modelCacheDir();
  const cacheBytes = await folderBytes(cacheDir);
  const models = [];
  for (const entry of MODEL_KINDS.flatMap((kind) => Object.values(resolveRegistry(process.env, kind)))) {
    models.push({ name: entry.name, kind: entry.kind ?? 'generator', cached: await isModelCached(entry), file: cachedModelPath(entry) });
  }
  const cachedNames = models.filter((m) => m.cached).map((m) => m.name);
  const lines = [
    `node ${process.version} on ${process.platform}-${process.arch}`,
    `TF.js backend: ${describeBackend(tf)} — ${tf.reason}`,
    ...tf.skipped.map((s) => `  skipped ${s.candidate}: ${s.reason}`),
    `installed TF.js backends: ${installed.map((b) => `${b.package}@${b.version}`).join(', ') || 'none'}`,
    `onnxruntime-node ${ort.version} (inference); execution providers: ${providers.map((p) => p.name).join(', ')}`,
    ...providers.filter((p) => !p.installed).map((p) => `  ${p.name}: ${p.note}`),
    `sharp ${sharp.sharp ?? '?'} (libvips ${sharp.vips ?? '?'})`,
    `model cache: ${cacheDir} (${existsSync(cacheDir) ? `${megabytes(cacheBytes)} MB` : 'not created yet'})`,
    `  cached models: ${cachedNames.join(', ') || 'none'}${
      models.length > cachedNames.length
        ? `; not cached: ${models
            .filter((m) => !m.cached)
            .map((m) => m.name)
            .join(', ')}`
        : ''
    }`,
  ];
  out.result(lines, {
    event: 'doctor',
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    tf: { backend: tf.backend, package: tf.package, version: tf.version, threads: tf.threads, reason: tf.reason, skipped: tf.skipped },
    installedBackends: installed.map((b) => ({ package: b.package, version: b.version })),
    onnxruntime: { package: 'onnxruntime-node', version: ort.version, providers },
    sharp,
    cache: { dir: cacheDir, exists: existsSync(cacheDir), bytes: cacheBytes, models },
  });
  return 0;
}
