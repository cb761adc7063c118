/**
 * `scenimefy-dataset` v1: a folder in the reference layout (`trainA/` photos, `trainB/` anime) plus
 * `manifest.json` (this contract) listing every image with its sha256 and size, and for a paired dataset the
 * pairs with their selection scores and generator provenance (SPEC §7, §10).
 */
import { type Dirent, promises as fsp } from 'node:fs';
import * as path from 'node:path';

import { z } from 'zod';

import { sha256File } from '../atomic-file';
import { ContractError, InputError } from '../errors';
import {
  artifactHeader,
  byteSizeSchema,
  duplicateIssues,
  formatIssuePath,
  headerShape,
  isSafeRelativePath,
  relativePathSchema,
  sha256Schema,
  type Contract,
  type ContractIssue,
  type GeneratedBy,
} from './common';
import { contractIssues, readContract, writeContract } from './read-contract';

export const datasetFileSchema = z
  .strictObject({
    path: relativePathSchema.meta({ description: 'POSIX path relative to the dataset folder, e.g. "trainA/0.png".' }),
    sha256: sha256Schema,
    size: byteSizeSchema,
    width: z.int().positive().optional(),
    height: z.int().positive().optional(),
  })
  .meta({ description: 'One image of the dataset.' });
export type DatasetFile = z.infer<typeof datasetFileSchema>;

export const pairScoresSchema = z
  .strictObject({
    segLoss: z.number().optional().meta({ description: 'Segmentation "cross-entropy" of the reference criterion (SPEC §10).' }),
    segClassCount: z.int().nonnegative().optional().meta({ description: 'Distinct argmax classes in the photo.' }),
    pixelAgreement: z.number().min(0).max(1).optional().meta({ description: 'Fraction of pixels whose argmax class agrees.' }),
    miou: z.number().min(0).max(1).optional().meta({ description: 'Mean IoU of the two segmentations.' }),
    accepted: z.boolean().meta({ description: 'Whether the pair passed the selection criterion.' }),
  })
  .meta({ description: 'Segmentation-guided selection scores of a pair.' });
export type PairScores = z.infer<typeof pairScoresSchema>;

export const generatorRefSchema = z
  .strictObject({
    file: z.string().min(1).meta({ description: 'The generator checkpoint, as given (e.g. lhq-220000.pt).' }),
    sha256: sha256Schema,
  })
  .meta({ description: 'A StyleGAN2 checkpoint that generated one side of a pair.' });
export type GeneratorRef = z.infer<typeof generatorRefSchema>;

export const pairProvenanceSchema = z
  .strictObject({
    seed: z.int().optional().meta({ description: 'Seed of the latent z.' }),
    truncation: z.number().optional().meta({ description: 'Truncation ψ (reference: 0.7).' }),
    shareNoise: z.boolean().optional().meta({ description: 'Whether both generators got the same noise (SPEC §11 #8).' }),
    generatorA: generatorRefSchema.optional().meta({ description: 'The photo-domain generator.' }),
    generatorB: generatorRefSchema.optional().meta({ description: 'The anime-domain (finetuned) generator.' }),
  })
  .meta({ description: 'How a pair was generated.' });
export type PairProvenance = z.infer<typeof pairProvenanceSchema>;

export const datasetPairSchema = z
  .strictObject({
    a: relativePathSchema.meta({ description: 'The photo (trainA) of the pair; a listed file.' }),
    b: relativePathSchema.meta({ description: 'The anime image (trainB) of the pair; a listed file.' }),
    scores: pairScoresSchema.optional(),
    provenance: pairProvenanceSchema.optional(),
  })
  .meta({ description: 'A pseudo-pair.' });
export type DatasetPair = z.infer<typeof datasetPairSchema>;

export const datasetSelectionSchema = z
  .strictObject({
    criterion: z
      .enum(['reference', 'pixel-agreement', 'miou'])
      .meta({ description: 'reference: segLoss < 5.0 and ≥ 2 classes; or the corrected criteria of SPEC §11 #9.' }),
    thresholds: z
      .record(z.string(), z.number())
      .meta({ description: 'The thresholds applied, by score name, e.g. { "segLoss": 5, "segClassCount": 1 }.' }),
    candidates: z.int().nonnegative().optional().meta({ description: 'Pairs scored.' }),
    accepted: z.int().nonnegative().optional().meta({ description: 'Pairs that passed.' }),
  })
  .meta({ description: 'How the pairs were selected.' });
export type DatasetSelection = z.infer<typeof datasetSelectionSchema>;

export type DatasetKind = 'unpaired' | 'paired';

/**
 * `manifest.json` of a dataset folder: every image with digest and size; for a paired dataset the pairs, their
 * scores and provenance, and how they were selected.
 *
 * Example:
 * ```json
 * { "format": "scenimefy-dataset", "formatVersion": 1,
 *   "generatedBy": { "name": "@scenimefy/pair-selection", "version": "0.1.0" }, "createdAt": "2025-01-31T12:00:00.000Z",
 *   "kind": "paired",
 *   "files": [ { "path": "trainA/0.png", "sha256": "…", "size": 139210, "width": 256, "height": 256 },
 *              { "path": "trainB/0.png", "sha256": "…", "size": 120873, "width": 256, "height": 256 } ],
 *   "pairs": [ { "a": "trainA/0.png", "b": "trainB/0.png", "scores": { "segLoss": 4.91, "segClassCount": 3, "accepted": true } } ],
 *   "selection": { "criterion": "reference", "thresholds": { "segLoss": 5, "segClassCount": 1 } } }
 * ```
 */
export const datasetManifestSchema = z
  .strictObject({
    ...headerShape('scenimefy-dataset', 1),
    kind: z.enum(['unpaired', 'paired']),
    files: z.array(datasetFileSchema),
    pairs: z.array(datasetPairSchema).optional().meta({ description: 'Required for a paired dataset, absent otherwise.' }),
    selection: datasetSelectionSchema.optional().meta({ description: 'Only for a paired dataset.' }),
  })
  .meta({
    description:
      'manifest.json of a Scenimefy.js dataset folder (trainA/, trainB/). Beyond this schema: file paths are unique; a paired ' +
      'dataset has pairs, an unpaired one has neither pairs nor selection; each pair member is a listed file, a ≠ b, and no ' +
      'file is in two pairs; selection.accepted ≤ selection.candidates.',
  });
export type DatasetManifest = z.infer<typeof datasetManifestSchema>;

function datasetCrossFieldIssues(m: DatasetManifest): ContractIssue[] {
  const issues = duplicateIssues(
    m.files.map((f) => f.path),
    (i) => ['files', i, 'path'],
    (i) => `files[${i}]`,
  );
  if (m.kind === 'paired' && m.pairs === undefined) issues.push({ path: ['pairs'], message: 'required for a paired dataset' });
  if (m.kind === 'unpaired') {
    if (m.pairs !== undefined) issues.push({ path: ['pairs'], message: 'an unpaired dataset has no pairs' });
    if (m.selection !== undefined) issues.push({ path: ['selection'], message: 'an unpaired dataset has no selection' });
  }
  const listed = new Set(m.files.map((f) => f.path));
  const pairOf = new Map<string, number>();
  (m.pairs ?? []).forEach((pair, i) => {
    for (const side of ['a', 'b'] as const) {
      const member = pair[side];
      const earlier = pairOf.get(member);
      if (!listed.has(member)) issues.push({ path: ['pairs', i, side], message: `"${member}" is not a listed file` });
      else if (earlier !== undefined) issues.push({ path: ['pairs', i, side], message: `"${member}" is already in pairs[${earlier}]` });
      else pairOf.set(member, i);
    }
    if (pair.a === pair.b) issues.push({ path: ['pairs', i, 'b'], message: 'a pair needs two different files' });
  });
  const sel = m.selection;
  if (sel?.accepted !== undefined && sel.candidates !== undefined && sel.accepted > sel.candidates) {
    issues.push({ path: ['selection', 'accepted'], message: `${sel.accepted} pairs accepted out of ${sel.candidates} candidates` });
  }
  return issues;
}

export const datasetContract: Contract<DatasetManifest> = Object.freeze({
  format: 'scenimefy-dataset',
  formatVersion: 1,
  fileName: 'manifest.json',
  title: 'Scenimefy dataset manifest',
  schema: datasetManifestSchema,
  crossFieldIssues: datasetCrossFieldIssues,
});

/** Read a dataset `manifest.json`; InputError if unreadable, ContractError if it breaks the contract. */
export function readDatasetManifest(file: string): Promise<DatasetManifest> {
  return readContract(file, datasetContract);
}

/** Validate and write a dataset `manifest.json` atomically. */
export function writeDatasetManifest(file: string, manifest: DatasetManifest): Promise<void> {
  return writeContract(file, datasetContract, manifest);
}

export interface DatasetProgress {
  /** Files finished so far. */
  done: number;
  total: number;
  /** The file just finished (manifest path). */
  path: string;
}

export interface DatasetProblem {
  path: string;
  problem: 'missing' | 'size' | 'sha256';
}

export interface VerifyDatasetOptions {
  onProgress?: (progress: DatasetProgress) => void;
  /** Files hashed at once (default 4): overlapping reads helps on SSDs and network disks alike. */
  concurrency?: number;
}

/**
 * Check the files of `manifest` in `dir`: each must exist with the listed size and sha256 (streamed, so any
 * size works). A file of the wrong size is not hashed. Problems come in manifest order.
 */
export async function verifyDatasetManifest(
  dir: string,
  manifest: DatasetManifest,
  options: VerifyDatasetOptions = {},
): Promise<{ ok: boolean; problems: DatasetProblem[] }> {
  const found: Array<DatasetProblem | undefined> = new Array(manifest.files.length);
  let done = 0;
  await forEachConcurrently(manifest.files, options.concurrency ?? 4, async (entry, i) => {
    if (!isSafeRelativePath(entry.path)) {
      throw new ContractError('must be a relative POSIX path inside the folder', { file: dir, field: `files[${i}].path` });
    }
    const file = path.join(dir, ...entry.path.split('/'));
    const size = await fileSizeOrUndefined(file);
    if (size === undefined) found[i] = { path: entry.path, problem: 'missing' };
    else if (size !== entry.size) found[i] = { path: entry.path, problem: 'size' };
    else if ((await sha256File(file)) !== entry.sha256) found[i] = { path: entry.path, problem: 'sha256' };
    done += 1;
    options.onProgress?.({ done, total: manifest.files.length, path: entry.path });
  });
  const problems = found.filter((p): p is DatasetProblem => p !== undefined);
  return { ok: problems.length === 0, problems };
}

/**
 * SPEC §7: the reference's IMG_EXTENSIONS, each in lower or upper case only (`.png`, `.PNG`; `.Png` is not an
 * image to the reference loader, so it is not one here either).
 */
const REFERENCE_IMAGE_EXTENSIONS = ['.jpg', '.jpeg', '.png', '.ppm', '.bmp', '.tif', '.tiff'].flatMap((e) => [e, e.toUpperCase()]);

/** Whether the reference data loader would take `fileName` as an image (SPEC §7). */
export function isReferenceImageFile(fileName: string): boolean {
  return REFERENCE_IMAGE_EXTENSIONS.some((ext) => fileName.endsWith(ext));
}

export interface BuildDatasetManifestOptions {
  kind: DatasetKind;
  generatedBy: GeneratedBy;
  /** Default: now. */
  createdAt?: Date | string;
  /** Folders are `${phase}A` and `${phase}B` (default 'train'), as in the reference. */
  phase?: string;
  /** For a paired dataset: how the pairs were selected. */
  selection?: DatasetSelection;
  /** For a paired dataset: scores and provenance of each pair, by its two manifest paths. */
  pairDetails?: (pair: { a: string; b: string }) => Pick<DatasetPair, 'scores' | 'provenance'> | undefined;
  onProgress?: (progress: DatasetProgress) => void;
  /** Files hashed at once (default 4). */
  concurrency?: number;
}

/**
 * Scan `dir/trainA` and `dir/trainB` as the reference loader does (recursive, reference image extensions,
 * each list sorted as strings), hash every file, and return a valid manifest. A paired dataset pairs files of
 * the same relative name (`trainA/x/1.png` ↔ `trainB/x/1.png`) — what the reference's index pairing of two
 * sorted lists amounts to — and any file without a partner is an InputError.
 */
export async function buildDatasetManifest(dir: string, options: BuildDatasetManifestOptions): Promise<DatasetManifest> {
  const phase = options.phase ?? 'train';
  const domainA = `${phase}A`;
  const domainB = `${phase}B`;
  const namesA = await listReferenceImages(path.join(dir, domainA));
  const namesB = await listReferenceImages(path.join(dir, domainB));
  const paths = [...namesA.map((n) => `${domainA}/${n}`), ...namesB.map((n) => `${domainB}/${n}`)];
  // Pair before hashing, so that an unmatched file fails at once rather than after reading the whole dataset.
  const pairs = options.kind === 'paired' ? pairsBySameName(dir, domainA, namesA, domainB, namesB) : undefined;

  const files: DatasetFile[] = new Array(paths.length);
  let done = 0;
  await forEachConcurrently(paths, options.concurrency ?? 4, async (p, i) => {
    const file = path.join(dir, ...p.split('/'));
    const [sha256, size] = await Promise.all([sha256File(file), fileSizeOrUndefined(file)]);
    if (size === undefined) throw new InputError('disappeared while the dataset was being scanned', { file });
    files[i] = { path: p, sha256, size };
    done += 1;
    options.onProgress?.({ done, total: paths.length, path: p });
  });

  const manifest: DatasetManifest = {
    ...artifactHeader(datasetContract, options.generatedBy, options.createdAt),
    kind: options.kind,
    files,
  };
  if (pairs !== undefined) {
    manifest.pairs = pairs.map((pair) => ({ ...pair, ...options.pairDetails?.(pair) }));
    if (options.selection !== undefined) manifest.selection = options.selection;
  }
  const issues = contractIssues(manifest, datasetContract);
  const first = issues[0];
  if (first !== undefined) {
    throw new ContractError(`cannot describe this folder as a dataset: ${first.message}`, {
      file: path.join(dir, datasetContract.fileName),
      field: formatIssuePath(first.path) || undefined,
    });
  }
  return manifest;
}

function pairsBySameName(
  dir: string,
  domainA: string,
  namesA: string[],
  domainB: string,
  namesB: string[],
): Array<{ a: string; b: string }> {
  const inB = new Set(namesB);
  const inA = new Set(namesA);
  const unmatched = [
    ...namesA.filter((n) => !inB.has(n)).map((n) => `${domainA}/${n} has no ${domainB}/${n}`),
    ...namesB.filter((n) => !inA.has(n)).map((n) => `${domainB}/${n} has no ${domainA}/${n}`),
  ];
  if (unmatched.length > 0) {
    const more = unmatched.length > 3 ? ` (and ${unmatched.length - 3} more)` : '';
    throw new InputError(`a paired dataset pairs files of the same name: ${unmatched.slice(0, 3).join('; ')}${more}`, { file: dir });
  }
  return namesA.map((n) => ({ a: `${domainA}/${n}`, b: `${domainB}/${n}` }));
}

/**
 * The images the reference loader takes from `folder` (SPEC §7): recursive, reference extensions only, as POSIX
 * paths relative to `folder`, sorted as Python sorts strings. InputError when `folder` cannot be read.
 */
export async function listReferenceImages(folder: string): Promise<string[]> {
  const found: string[] = [];
  async function walk(current: string, prefix: string): Promise<void> {
    let entries: Dirent[];
    try {
      entries = await fsp.readdir(current, { withFileTypes: true });
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? 'EIO';
      const why = code === 'ENOENT' ? 'folder not found' : code === 'ENOTDIR' ? 'not a folder' : `cannot read folder (${code})`;
      throw new InputError(why, { file: current, cause: error });
    }
    for (const entry of entries) {
      const rel = prefix === '' ? entry.name : `${prefix}/${entry.name}`;
      // os.walk does not descend into symlinked folders but does list symlinked files; do the same.
      if (entry.isDirectory()) await walk(path.join(current, entry.name), rel);
      else if (
        isReferenceImageFile(entry.name) &&
        (entry.isFile() || (entry.isSymbolicLink() && (await isFile(path.join(current, entry.name)))))
      ) {
        found.push(rel);
      }
    }
  }
  await walk(folder, '');
  // UTF-8 byte order is code point order, Python's order for str; JS's `<` compares UTF-16 units instead.
  const keyed = found.map((p) => ({ p, key: Buffer.from(p, 'utf8') }));
  keyed.sort((x, y) => Buffer.compare(x.key, y.key));
  return keyed.map((k) => k.p);
}

async function isFile(file: string): Promise<boolean> {
  try {
    return (await fsp.stat(file)).isFile();
  } catch {
    return false;
  }
}

/** Size of a regular file, or undefined when there is none at `file`. */
async function fileSizeOrUndefined(file: string): Promise<number | undefined> {
  try {
    const stat = await fsp.stat(file);
    return stat.isFile() ? stat.size : undefined;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw new InputError(`cannot read (${code ?? 'EIO'})`, { file, cause: error });
  }
}

/**
 * Run `fn` over `items` with at most `limit` calls in flight; rejects with the first failure. Hand-written
 * (a dozen lines) rather than a dependency such as p-limit, which is ESM-only in its current versions.
 */
async function forEachConcurrently<T>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0;
  let failed = false;
  const worker = async (): Promise<void> => {
    while (!failed && next < items.length) {
      const i = next++;
      try {
        await fn(items[i] as T, i);
      } catch (error) {
        failed = true;
        throw error;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
}
