/**
 * `scenimefy-run` v2: `run.json` at the top of a training run folder. It holds the resolved options with the
 * non-defaults named (as CUT's `print_options` marks them), the checkpoints written so far, where the loss
 * events, samples and report are, and how the run stands; v2 adds the model, the datasets the run reads (absolute
 * paths with a digest of their file lists, so `--resume` needs neither and notices changed data) and every
 * resume with the options it overrode. v1 files are still read (upgraded: they record no datasets or resumes).
 */
import { z } from 'zod';

import {
  duplicateIssues,
  headerShape,
  isoDateTimeSchema,
  jsonValueSchema,
  relativePathSchema,
  olderContractVersion,
  sha256Schema,
  type Contract,
  type ContractIssue,
} from './common';

export const runStatusSchema = z.enum(['running', 'completed', 'failed', 'stopped']);
export type RunStatus = z.infer<typeof runStatusSchema>;

export const runCheckpointSchema = z
  .strictObject({
    folder: relativePathSchema.meta({ description: 'The scenimefy-checkpoint folder, relative to the run folder.' }),
    iteration: z.int().nonnegative(),
    epoch: z.int().nonnegative(),
    createdAt: isoDateTimeSchema,
  })
  .meta({ description: 'A checkpoint the run wrote.' });
export type RunCheckpoint = z.infer<typeof runCheckpointSchema>;

export const runErrorSchema = z
  .strictObject({
    code: z.string().min(1).optional().meta({ description: 'The ScenimefyError code, when the error had one.' }),
    message: z.string().min(1),
  })
  .meta({ description: 'Why the run failed or stopped.' });
export type RunError = z.infer<typeof runErrorSchema>;

/** An absolute path (POSIX `/…` or Windows `C:\\…`), as a run records where its data lives. */
const absolutePathSchema = z
  .string()
  .regex(/^(?:\/|[A-Za-z]:[\\/])/, 'must be an absolute path')
  .meta({ description: 'An absolute path on the machine that trained.' });

export const runDatasetSchema = z
  .strictObject({
    path: absolutePathSchema.meta({ description: 'The dataset folder or manifest file, absolute.' }),
    files: z.int().nonnegative().meta({ description: 'Regular files the digest lists.' }),
    digest: sha256Schema.meta({
      description:
        'sha256 of the sorted "relative/path<TAB>size" lines of its files (hidden names left out); a manifest counts its folder.',
    }),
  })
  .meta({ description: 'A dataset the run trains on.' });
export type RunDataset = z.infer<typeof runDatasetSchema>;

export const runResumeSchema = z
  .strictObject({
    at: isoDateTimeSchema.meta({ description: 'When the resume started.' }),
    iteration: z.int().nonnegative().meta({ description: 'The iteration it continued from (0: no checkpoint yet, started again).' }),
    overrides: z
      .record(z.string(), jsonValueSchema)
      .meta({ description: 'Options given on resume that changed the run, with their new values (e.g. maxIterations).' }),
    datasets: z
      .array(z.string().min(1))
      .optional()
      .meta({ description: 'Datasets given again on resume at another path or with other files (their new state is in datasets).' }),
  })
  .meta({ description: 'One invocation that resumed the run.' });
export type RunResume = z.infer<typeof runResumeSchema>;

const runFields = {
  updatedAt: isoDateTimeSchema.optional().meta({ description: 'When run.json was last rewritten.' }),
  status: runStatusSchema,
  error: runErrorSchema.optional().meta({ description: 'Required when status is "failed"; allowed when "stopped".' }),
  options: z.record(z.string(), jsonValueSchema).meta({ description: 'Every training option, resolved, by name.' }),
  nonDefaults: z.array(z.string().min(1)).meta({ description: 'Names of the options whose value differs from the default.' }),
  checkpoints: z.array(runCheckpointSchema),
  events: relativePathSchema.meta({ description: 'NDJSON file of losses and other events (conventionally events.ndjson).' }),
  samples: relativePathSchema.optional().meta({ description: 'Folder of sample images, when the run writes them.' }),
  report: relativePathSchema.optional().meta({ description: 'HTML report, when the run writes one (conventionally report.html).' }),
};

/**
 * `run.json`: a training run's model, datasets, resolved options, checkpoints, files, resumes and status.
 *
 * Example:
 * ```json
 * { "format": "scenimefy-run", "formatVersion": 2,
 *   "generatedBy": { "name": "@scenimefy/i2i-core", "version": "0.1.0" }, "createdAt": "2025-01-31T12:00:00.000Z",
 *   "model": "semi_cut", "status": "running",
 *   "datasets": { "unpaired": { "path": "/data/unpaired_s2a", "files": 12000, "digest": "5d1b…" } },
 *   "options": { "lr": 0.0002, "lambdaNceS": 0.0025, "nEpochs": 10, "maxIterations": 80 }, "nonDefaults": ["maxIterations"],
 *   "checkpoints": [ { "folder": "checkpoints/iter-5000", "iteration": 5000, "epoch": 1, "createdAt": "2025-01-31T13:00:00.000Z" } ],
 *   "resumes": [ { "at": "2025-02-01T08:00:00.000Z", "iteration": 20, "overrides": { "maxIterations": 80 } } ],
 *   "events": "events.ndjson", "samples": "samples", "report": "report.html" }
 * ```
 */
export const runManifestSchema = z
  .strictObject({
    ...headerShape('scenimefy-run', 2),
    model: z
      .string()
      .regex(/^[a-z][a-z0-9_]*$/, 'must be a model name such as semi_cut')
      .optional()
      .meta({ description: 'The training model of the run (e.g. semi_cut).' }),
    ...runFields,
    datasets: z
      .record(z.string().regex(/^[a-z][A-Za-z0-9]*$/, 'must be a dataset name such as unpaired'), runDatasetSchema)
      .optional()
      .meta({ description: 'The datasets the run trains on, by name (the flag that gives it: unpaired → --unpaired).' }),
    resumes: z.array(runResumeSchema).optional().meta({ description: 'Every invocation that resumed the run, oldest first.' }),
  })
  .meta({
    description:
      'run.json of a Scenimefy.js training run folder. Beyond this schema: nonDefaults are unique keys of options, checkpoint ' +
      'folders are unique, a failed run has an error and a running or completed one has none, and a resume overrides only options ' +
      'the run has and names only datasets it records.',
  });
export type RunManifest = z.infer<typeof runManifestSchema>;

/** `run.json` as Scenimefy.js 0.1 wrote it (no model, datasets or resumes). */
export const runManifestV1Schema = z.strictObject({ ...headerShape('scenimefy-run', 1), ...runFields }).meta({
  description:
    'run.json of a Scenimefy.js training run folder. Beyond this schema: nonDefaults are unique keys of options, checkpoint ' +
    'folders are unique, a failed run has an error and a running or completed one has none.',
});
export type RunManifestV1 = z.infer<typeof runManifestV1Schema>;

function commonRunIssues(m: RunManifestV1 | RunManifest): ContractIssue[] {
  const issues = duplicateIssues(
    m.nonDefaults,
    (i) => ['nonDefaults', i],
    (i) => `nonDefaults[${i}]`,
  );
  m.nonDefaults.forEach((name, i) => {
    if (!Object.hasOwn(m.options, name)) issues.push({ path: ['nonDefaults', i], message: `"${name}" is not one of options` });
  });
  issues.push(
    ...duplicateIssues(
      m.checkpoints.map((c) => c.folder),
      (i) => ['checkpoints', i, 'folder'],
      (i) => `checkpoints[${i}]`,
    ),
  );
  if (m.status === 'failed' && m.error === undefined) issues.push({ path: ['error'], message: 'required when status is "failed"' });
  if ((m.status === 'running' || m.status === 'completed') && m.error !== undefined) {
    issues.push({ path: ['error'], message: `a ${m.status} run has no error` });
  }
  return issues;
}

function runCrossFieldIssues(m: RunManifest): ContractIssue[] {
  const issues = commonRunIssues(m);
  (m.resumes ?? []).forEach((resume, i) => {
    for (const name of Object.keys(resume.overrides)) {
      if (!Object.hasOwn(m.options, name))
        issues.push({ path: ['resumes', i, 'overrides', name], message: `"${name}" is not one of options` });
    }
    (resume.datasets ?? []).forEach((name, j) => {
      if (!Object.hasOwn(m.datasets ?? {}, name))
        issues.push({ path: ['resumes', i, 'datasets', j], message: `"${name}" is not one of datasets` });
    });
  });
  return issues;
}

/** v1 as v2: the same run, its model, datasets and resumes unknown. */
function upgradeRunV1(old: RunManifestV1): RunManifest {
  return { ...old, formatVersion: 2 };
}

export const runContract: Contract<RunManifest> = Object.freeze({
  format: 'scenimefy-run',
  formatVersion: 2,
  fileName: 'run.json',
  title: 'Scenimefy training run manifest',
  schema: runManifestSchema,
  crossFieldIssues: runCrossFieldIssues,
  olderVersions: [
    olderContractVersion<RunManifest, RunManifestV1>({
      formatVersion: 1,
      schema: runManifestV1Schema,
      crossFieldIssues: commonRunIssues,
      upgrade: upgradeRunV1,
    }),
  ],
});

/** The v1 contract on its own (its schema and rules), as v1 files are checked before their upgrade. */
export const runContractV1: Contract<RunManifestV1> = Object.freeze({
  format: 'scenimefy-run',
  formatVersion: 1,
  fileName: 'run.json',
  title: 'Scenimefy training run manifest',
  schema: runManifestV1Schema,
  crossFieldIssues: commonRunIssues,
});
