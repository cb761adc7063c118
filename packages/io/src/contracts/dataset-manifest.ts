/**
 * `scenimefy-dataset` v1: a folder in the reference layout (`trainA/` photos, `trainB/` anime) plus
 * `manifest.json` (this contract) listing every image with its sha256 and size, and for a paired dataset the
 * pairs with their selection scores and generator provenance (SPEC §7, §10).
 */
import { z } from 'zod';

import { quoteValue } from '../errors';

import {
  byteSizeSchema,
  duplicateIssues,
  headerShape,
  relativePathSchema,
  sha256Schema,
  type Contract,
  type ContractIssue,
} from './common';

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
      if (!listed.has(member)) issues.push({ path: ['pairs', i, side], message: `${quoteValue(member)} is not a listed file` });
      else if (earlier !== undefined)
        issues.push({ path: ['pairs', i, side], message: `${quoteValue(member)} is already in pairs[${earlier}]` });
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

/**
 * SPEC §7: the reference's IMG_EXTENSIONS, each in lower or upper case only (`.png`, `.PNG`; `.Png` is not an
 * image to the reference loader, so it is not one here either).
 */
const REFERENCE_IMAGE_EXTENSIONS = ['.jpg', '.jpeg', '.png', '.ppm', '.bmp', '.tif', '.tiff'].flatMap((e) => [e, e.toUpperCase()]);

/** Whether the reference data loader would take `fileName` as an image (SPEC §7). */
export function isReferenceImageFile(fileName: string): boolean {
  return REFERENCE_IMAGE_EXTENSIONS.some((ext) => fileName.endsWith(ext));
}
