/**
 * The files of a training run folder, for any model: `run.json` (scenimefy-run), `options.txt`,
 * `events.ndjson`, `samples/`, `report.html`, `checkpoints/iter-N/` and the `run.lock` of the trainer writing it.
 * The run loop (run-loop.ts) drives it; this module only knows where things go and keeps run.json, the events,
 * the report and the checkpoint list consistent with each other.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';

import { writeFileAtomic, writeRunManifest, type RunCheckpoint, type RunManifest, type RunStatus } from '@scenimefy/io';

import { CHECKPOINTS_FOLDER, pruneCheckpoints, runRelativePath } from '../store/checkpoint-store';
import { TrainEventLog, readTrainEvents, type TrainEvent } from './events';
import { writeTrainingReport, type ReportChartGroup } from './report';
import { RUN_LOCK_FILE } from './run-lock';

export const RUN_FILES = Object.freeze({
  manifest: 'run.json',
  options: 'options.txt',
  events: 'events.ndjson',
  report: 'report.html',
  samples: 'samples',
  checkpoints: CHECKPOINTS_FOLDER,
  lock: RUN_LOCK_FILE,
});

const isoNow = (): string => new Date().toISOString();

export class RunFolder {
  private log: TrainEventLog | undefined;

  /** `manifest` is kept current by the methods below and written with `writeManifest`. */
  constructor(
    readonly dir: string,
    readonly manifest: RunManifest,
    private readonly onEvent?: (event: TrainEvent) => void,
  ) {}

  /** An absolute path inside the run folder. */
  path(relative: string): string {
    return path.join(this.dir, relative);
  }

  /** `checkpoints/iter-000000006`: a path as run.json and the events record it. */
  relative(target: string): string {
    return runRelativePath(this.dir, target);
  }

  async writeManifest(): Promise<void> {
    this.manifest.updatedAt = isoNow();
    await writeRunManifest(this.path(RUN_FILES.manifest), this.manifest);
  }

  async writeOptionsText(text: string): Promise<void> {
    await writeFileAtomic(this.path(RUN_FILES.options), text);
  }

  /** Opens events.ndjson for appending; the events after `truncateAfterIteration` (of a run that crashed after its checkpoint) are dropped. */
  async openEvents(truncateAfterIteration: number): Promise<void> {
    this.log = await TrainEventLog.open(this.path(RUN_FILES.events), { truncateAfterIteration });
  }

  get eventsOpen(): boolean {
    return this.log !== undefined;
  }

  async emit(event: TrainEvent): Promise<void> {
    if (this.log === undefined) throw new Error('RunFolder.emit before openEvents');
    await this.log.append(event);
    this.onEvent?.(event);
  }

  async closeEvents(): Promise<void> {
    await this.log?.close();
  }

  /**
   * Records a checkpoint just written: prunes the run's checkpoints to the newest `keep` (never `folder`), lists the
   * survivors in run.json, writes it and logs the checkpoint event.
   */
  async recordCheckpoint(folder: string, at: { iteration: number; epoch: number }, keep: number): Promise<RunCheckpoint> {
    const entry: RunCheckpoint = { folder: this.relative(folder), iteration: at.iteration, epoch: at.epoch, createdAt: isoNow() };
    const removed = new Set((await pruneCheckpoints(this.dir, keep, [folder])).map((f) => path.resolve(f)));
    this.manifest.checkpoints = [
      ...this.manifest.checkpoints.filter((c) => c.folder !== entry.folder && !removed.has(path.resolve(this.dir, c.folder))),
      entry,
    ];
    await this.writeManifest();
    await this.emit({ type: 'checkpoint', time: isoNow(), iteration: at.iteration, epoch: at.epoch, folder: entry.folder });
    return entry;
  }

  /** report.html from the events so far, the model's charts and the checkpoints run.json still lists. */
  async writeReport(status: RunStatus, chartGroups: readonly ReportChartGroup[], message?: string): Promise<void> {
    const events = await readTrainEvents(this.path(RUN_FILES.events));
    await writeTrainingReport(this.path(RUN_FILES.report), {
      title: `Scenimefy training run ${path.basename(this.dir)}`,
      status,
      options: { ...this.manifest.options },
      nonDefaults: this.manifest.nonDefaults,
      events,
      chartGroups,
      checkpoints: this.manifest.checkpoints.map((c) => c.folder),
      ...(message !== undefined ? { message } : {}),
    });
  }

  async ensureSamplesFolder(): Promise<void> {
    await fsp.mkdir(this.path(RUN_FILES.samples), { recursive: true });
  }
}
