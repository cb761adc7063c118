/**
 * What `--model` may name, resolved to the generator's weights and its ONNX graph:
 * - nothing: the default registry model (the official Shinkai generator), fetched once into the cache and
 *   converted to ONNX once (`model.onnx` beside it, tagged with the source's sha256);
 * - a registry name such as `shinkai`;
 * - the official `.pth` (zip or legacy), a `.safetensors` file with the official key names (optionally
 *   prefixed `netG.`), a scenimefy-checkpoint folder, or an `.onnx` file;
 * - a training run folder (`run.json`): the generator of its newest complete checkpoint.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';

import {
  InputError,
  ModelFormatError,
  assertRegularFile,
  readRunManifest,
  readWeights,
  writeFileAtomic,
  type TensorMap,
} from '@scenimefy/io';

import { exportGeneratorOnnx, generatorStateDictFromOnnx } from '../export/onnx';
import { generatorFileFormat, generatorModelFromBytes, generatorStateDictOf } from '../models/model-bytes';
import { fetchModel, type FetchModelOptions } from '../models/model-cache';
import { DEFAULT_MODEL } from '../models/model-registry';
import { findModel, resolveRegistry } from '../models/model-registry-env';
import { latestCheckpoint } from '../store/checkpoint-store';

export type ModelSourceKind = 'registry' | 'pytorch' | 'safetensors' | 'scenimefy-checkpoint' | 'onnx';

export interface ResolvedModel {
  kind: ModelSourceKind;
  /** Human description for logs, e.g. `shinkai (…/Shinkai_net_G.pth)`. */
  description: string;
  /** The file or folder the weights came from. */
  file: string;
  /** Generator state dict with the reference's key names (`model.1.weight` …), no prefix. */
  stateDict: TensorMap;
  /** The ONNX graph of the generator: a file path (cached export or user .onnx) or bytes made in memory. */
  onnx: string | Uint8Array;
}

export interface ResolveModelOptions extends FetchModelOptions {
  env?: NodeJS.ProcessEnv;
}

/** Resolve `spec` (a path, a registry name, or undefined for the default) to weights and an ONNX graph. */
export async function resolveModel(spec: string | undefined, options: ResolveModelOptions = {}): Promise<ResolvedModel> {
  const env = options.env ?? process.env;
  if (spec === undefined || (!spec.includes('/') && !spec.includes('\\') && !spec.includes('.') && spec in resolveRegistry(env))) {
    return resolveRegistryModel(spec ?? DEFAULT_MODEL, options);
  }
  const stat = await fsp.stat(spec).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') {
      throw new InputError(`no such model file or folder (known model names: ${Object.keys(resolveRegistry(env)).sort().join(', ')})`, {
        file: spec,
      });
    }
    throw new InputError(`cannot read (${error.code})`, { file: spec });
  });
  if (stat.isDirectory()) {
    if (await isRunFolder(spec)) return resolveRunModel(spec);
    const stateDict = generatorStateDictOf((await readWeights(spec)).tensors, spec);
    return {
      kind: 'scenimefy-checkpoint',
      description: `checkpoint ${spec}`,
      file: spec,
      stateDict,
      onnx: exportGeneratorOnnx(stateDict, { source: spec }),
    };
  }
  // Only a regular file (links followed) is read: a FIFO would block the read forever, a device never ends.
  await assertRegularFile(spec, 'the model');
  const bytes = await fsp.readFile(spec).catch((error: NodeJS.ErrnoException) => {
    throw new InputError(`cannot read (${error.code ?? 'EIO'})`, { file: spec, cause: error });
  });
  const format = generatorFileFormat(bytes, spec);
  if (format === undefined) {
    throw new ModelFormatError('not a model file (expected .pth/.pt, .safetensors, .onnx or a checkpoint folder)', { file: spec });
  }
  const model = generatorModelFromBytes(bytes, spec);
  // onnxruntime reads a user's .onnx itself; the bytes read here only gave the weights.
  return { kind: format, description: spec, file: spec, stateDict: model.stateDict, onnx: format === 'onnx' ? spec : model.onnx };
}

/** A folder with run.json and no checkpoint.json of its own: a training run, not a checkpoint. */
async function isRunFolder(folder: string): Promise<boolean> {
  const has = async (name: string): Promise<boolean> => (await fsp.stat(path.join(folder, name)).catch(() => undefined))?.isFile() === true;
  return !(await has('checkpoint.json')) && (await has('run.json'));
}

/** A training run: the generator of its newest complete checkpoint (a checkpoint being written is never picked). */
async function resolveRunModel(runFolder: string): Promise<ResolvedModel> {
  // Validates run.json, so that a folder of something else is refused by name rather than searched.
  await readRunManifest(path.join(runFolder, 'run.json'));
  const folder = await latestCheckpoint(runFolder);
  if (folder === undefined) throw new InputError('training run has no complete checkpoint yet (checkpoints/iter-*)', { file: runFolder });
  const stateDict = generatorStateDictOf((await readWeights(folder)).tensors, folder);
  const description = `run ${runFolder}, checkpoint ${path.basename(folder)}`;
  return { kind: 'scenimefy-checkpoint', description, file: folder, stateDict, onnx: exportGeneratorOnnx(stateDict, { source: folder }) };
}

/** The default/registry model: fetched once, converted to ONNX once, both kept in the cache. */
async function resolveRegistryModel(name: string, options: ResolveModelOptions): Promise<ResolvedModel> {
  const entry = findModel(name, options.env ?? process.env);
  const cached = await fetchModel(entry, options);
  if (entry.format === 'onnx') {
    const stateDict = generatorStateDictFromOnnx(await fsp.readFile(cached.file), cached.file);
    return { kind: 'registry', description: `${entry.name} (${cached.file})`, file: cached.file, stateDict, onnx: cached.file };
  }
  const stateDict = generatorStateDictOf((await readWeights(cached.file)).tensors, cached.file);
  const onnxFile = path.join(path.dirname(cached.file), 'model.onnx');
  const tagFile = `${onnxFile}.source-sha256`;
  const tag = await fsp.readFile(tagFile, 'utf8').catch(() => '');
  // The tag ties the ONNX file to the weights file it was made from (digest checked at download, plus size and
  // mtime so a replaced file gets a fresh export without hashing 45 MB on every run).
  const stat = await fsp.stat(cached.file);
  const sourceTag = `${entry.sha256} ${stat.size} ${Math.trunc(stat.mtimeMs)}`;
  if (tag.trim() !== sourceTag || !(await fsp.stat(onnxFile).catch(() => undefined))) {
    const onnx = exportGeneratorOnnx(stateDict, { source: cached.file, metadata: { 'scenimefy.source_sha256': entry.sha256 } });
    await writeFileAtomic(onnxFile, onnx);
    await writeFileAtomic(tagFile, `${sourceTag}\n`);
  }
  return { kind: 'registry', description: `${entry.name} (${cached.file})`, file: cached.file, stateDict, onnx: onnxFile };
}
