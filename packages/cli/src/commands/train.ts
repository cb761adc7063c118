/**
 * `scenimefy train`: a semi_cut training run from an unpaired and a paired dataset into a run folder, with a
 * progress bar (iteration, the model's losses, ETA), NDJSON events in --json mode, and Ctrl-C stopping after the
 * current step with a checkpoint (a second Ctrl-C exits at once; the newest checkpoint on disk stays intact). A
 * reader of stdout that goes away (`--json | head -1`) stops the run the same way, quietly.
 */
import * as path from 'node:path';

import type { TrainEvent, TrainOptions, TrainProgress } from '@scenimefy/i2i-core';
import { UsageError, type BackendPreference } from '@scenimefy/io';

import { EXIT_STDOUT_CLOSED, type Output } from '../output';
import { startProgress } from './progress';
import { flagOfOption } from './train-flags';

export interface TrainFlags {
  /** Needed for a new run; a resumed run uses the recorded datasets unless they are given again. */
  unpaired?: string;
  paired?: string;
  out: string;
  resume: boolean;
  vggWeights?: string;
  offline: boolean;
  backend?: BackendPreference;
  options: Partial<TrainOptions>;
}

function short(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  return Math.abs(value) >= 100 ? value.toFixed(1) : value.toPrecision(3);
}

export async function trainCommand(flags: TrainFlags, out: Output): Promise<number> {
  const { optionIssues, trainOptionsSchema, trainSemiCut } = await import('@scenimefy/i2i-core');
  if (!flags.resume) {
    // Rules between flags (--load-size ≥ --crop-size, …), named as the user typed them; a resume merges the
    // flags with the recorded options, which the run checks.
    const [first] = optionIssues(trainOptionsSchema, flags.options, (p) => flagOfOption(String(p[0])));
    if (first !== undefined) throw new UsageError(first);
  }
  const controller = new AbortController();
  // Aborts when stdout's reader goes away (`--json | head -1`): the run stops after this step with its checkpoint.
  const stdoutClosed = out.closed;
  let interrupts = 0;
  const onSigint = (): void => {
    interrupts += 1;
    if (interrupts === 1) {
      out.info('stopping after this step and writing a checkpoint (Ctrl-C again to quit at once)');
      controller.abort();
    } else {
      process.exit(130);
    }
  };
  process.on('SIGINT', onSigint);
  let bar: ReturnType<typeof startProgress> | undefined;
  let barTotal = 0;
  try {
    const result = await trainSemiCut(
      {
        unpaired: flags.unpaired,
        paired: flags.paired,
        out: flags.out,
        resume: flags.resume,
        options: flags.options,
        backend: flags.backend,
        vggWeights: flags.vggWeights,
        offline: flags.offline,
      },
      {
        signal: AbortSignal.any([controller.signal, stdoutClosed]),
        onEvent: (event: TrainEvent) => {
          out.event({ ...event, event: event.type } as never);
          if (event.type === 'start') {
            out.info(
              `${event.resumedFrom ? `resuming ${flags.out} from ${event.resumedFrom}` : `training into ${flags.out}`} on ${event.backend}` +
                ` (iteration ${event.iteration}, epoch ${event.epoch})`,
            );
          } else if (event.type === 'note') {
            out.info(`note: ${event.message}`);
          } else if (event.type === 'checkpoint') {
            if (bar === undefined) out.info(`checkpoint ${event.folder}`);
          } else if (event.type === 'iteration' && bar === undefined) {
            const losses = Object.entries(event.losses)
              .map(([k, v]) => `${k} ${short(v)}`)
              .join(' ');
            out.info(`iter ${event.iteration} epoch ${event.epoch}: ${losses}`);
          }
        },
        onIteration: (p: TrainProgress) => {
          if (bar === undefined || barTotal !== p.totalIterations) {
            bar?.stop();
            barTotal = p.totalIterations;
            bar = startProgress(out, p.totalIterations, 'iter {value}/{total} epoch {epoch} | {losses} | {spi}s/it | ETA {eta_formatted}');
            if (out.json || !out.streams.isTTY) bar = undefined;
          }
          bar?.update(p.iteration, {
            epoch: p.epoch,
            // The model names the losses its progress line shows.
            losses: p.progressLosses
              .filter((name) => p.losses[name] !== undefined)
              .map((name) => `${name} ${short(p.losses[name] as number)}`)
              .join(' '),
            spi: p.seconds.toFixed(2),
          });
        },
      },
    );
    bar?.stop();
    bar = undefined;
    // Nothing more goes to a stdout nobody reads; the run stopped with its checkpoint.
    if (stdoutClosed.aborted) return EXIT_STDOUT_CLOSED;
    const where = result.checkpoint ? path.relative(process.cwd(), result.checkpoint) || result.checkpoint : 'no checkpoint';
    out.result(
      `${result.status}: ${result.iteration} iterations, epoch ${result.epoch}, newest checkpoint ${where}; report ${path.join(flags.out, 'report.html')}`,
      {
        event: 'done',
        status: result.status,
        iteration: result.iteration,
        epoch: result.epoch,
        checkpoint: result.checkpoint,
        backend: result.backend,
      },
    );
    return result.status === 'stopped' && interrupts > 0 ? 130 : 0;
  } finally {
    bar?.stop();
    process.off('SIGINT', onSigint);
  }
}
