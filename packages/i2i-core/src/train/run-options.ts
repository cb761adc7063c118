/**
 * The options every training run has, whatever its model: how far it goes and how often the run loop
 * checkpoints, samples and logs. A stage spreads `runLoopOptionShape(...)` into its options schema (with its own
 * defaults); the run loop reads these names. None of them changes the arithmetic, so a resumed run may be given
 * new values (recorded in run.json).
 */
import { integerOption, nullableIntegerOption } from '../options/option-schema';

export interface RunLoopDefaults {
  readonly saveEvery: number;
  readonly keep: number;
  readonly sampleEvery: number;
  readonly logEvery: number;
}

/** The loop's options as the run loop reads them. */
export interface RunLoopOptions extends RunLoopDefaults {
  /** Stop after this many optimisation steps in all (null: run every epoch). */
  readonly maxIterations: number | null;
}

export interface RunLoopHeadings {
  /** Heading of `--max-iterations`. */
  readonly schedule: string;
  /** Heading of the checkpoint, sample and log cadences. */
  readonly run: string;
}

/** The fields of the run loop's options, in options.txt order: maxIterations, saveEvery, keep, sampleEvery, logEvery. */
export function runLoopOptionShape(defaults: RunLoopDefaults, headings: RunLoopHeadings) {
  return {
    maxIterations: nullableIntegerOption({
      default: null,
      min: 1,
      help: 'stop after this many optimisation steps in all (resumable; --resume keeps the cap unless given again, `none` lifts it); default: run every epoch',
      flag: '--max-iterations <n>',
      heading: headings.schedule,
      onResume: 'override',
    }),
    saveEvery: integerOption({
      default: defaults.saveEvery,
      min: 1,
      help: 'a checkpoint every n iterations (and one at each epoch end)',
      flag: '--save-every <n>',
      heading: headings.run,
      onResume: 'override',
    }),
    keep: integerOption({
      default: defaults.keep,
      min: 1,
      help: 'checkpoints kept in the run folder (the newest)',
      flag: '--keep <k>',
      heading: headings.run,
      onResume: 'override',
    }),
    sampleEvery: integerOption({
      default: defaults.sampleEvery,
      min: 0,
      help: 'a sample grid every n iterations (0: none)',
      flag: '--sample-every <n>',
      heading: headings.run,
      onResume: 'override',
    }),
    logEvery: integerOption({
      default: defaults.logEvery,
      min: 1,
      help: 'a loss line in events.ndjson every n iterations (mean of those iterations)',
      flag: '--log-every <n>',
      heading: headings.run,
      onResume: 'override',
    }),
  };
}
