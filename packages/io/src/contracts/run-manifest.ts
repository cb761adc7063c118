/**
 * `scenimefy-run` v1: `run.json` at the top of a training run folder. It holds the resolved options with the
 * non-defaults named (as CUT's `print_options` marks them), the checkpoints written so far, where the loss
 * events, samples and report are, and how the run stands.
 */
import { z } from 'zod';

import {
  duplicateIssues,
  headerShape,
  isoDateTimeSchema,
  jsonValueSchema,
  relativePathSchema,
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

/**
 * `run.json`: a training run's resolved options, checkpoints, files and status.
 *
 * Example:
 * ```json
 * { "format": "scenimefy-run", "formatVersion": 1,
 *   "generatedBy": { "name": "@scenimefy/i2i-core", "version": "0.1.0" }, "createdAt": "2025-01-31T12:00:00.000Z",
 *   "status": "running", "options": { "lr": 0.0002, "lambdaNceS": 0.0025, "nEpochs": 10 }, "nonDefaults": ["nEpochs"],
 *   "checkpoints": [ { "folder": "checkpoints/iter-5000", "iteration": 5000, "epoch": 1, "createdAt": "2025-01-31T13:00:00.000Z" } ],
 *   "events": "events.ndjson", "samples": "samples", "report": "report.html" }
 * ```
 */
export const runManifestSchema = z
  .strictObject({
    ...headerShape('scenimefy-run', 1),
    updatedAt: isoDateTimeSchema.optional().meta({ description: 'When run.json was last rewritten.' }),
    status: runStatusSchema,
    error: runErrorSchema.optional().meta({ description: 'Required when status is "failed"; allowed when "stopped".' }),
    options: z.record(z.string(), jsonValueSchema).meta({ description: 'Every training option, resolved, by name.' }),
    nonDefaults: z.array(z.string().min(1)).meta({ description: 'Names of the options whose value differs from the default.' }),
    checkpoints: z.array(runCheckpointSchema),
    events: relativePathSchema.meta({ description: 'NDJSON file of losses and other events (conventionally events.ndjson).' }),
    samples: relativePathSchema.optional().meta({ description: 'Folder of sample images, when the run writes them.' }),
    report: relativePathSchema.optional().meta({ description: 'HTML report, when the run writes one (conventionally report.html).' }),
  })
  .meta({
    description:
      'run.json of a Scenimefy.js training run folder. Beyond this schema: nonDefaults are unique keys of options, checkpoint ' +
      'folders are unique, a failed run has an error and a running or completed one has none.',
  });
export type RunManifest = z.infer<typeof runManifestSchema>;

function runCrossFieldIssues(m: RunManifest): ContractIssue[] {
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

export const runContract: Contract<RunManifest> = Object.freeze({
  format: 'scenimefy-run',
  formatVersion: 1,
  fileName: 'run.json',
  title: 'Scenimefy training run manifest',
  schema: runManifestSchema,
  crossFieldIssues: runCrossFieldIssues,
});
