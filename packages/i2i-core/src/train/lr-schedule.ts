/**
 * The reference's 'linear' LR policy (SPEC §5.7), stepped at the end of every epoch: epochs 1..nEpochs keep the
 * base rate, then it falls by 1/(nEpochsDecay + 1) per epoch — and never reaches 0 (SPEC §11 #6: the last epoch
 * runs at 1/(nEpochsDecay + 1) of the base rate, as in the reference).
 */
import { UsageError } from '@scenimefy/io';

export interface LinearLrOptions {
  nEpochs: number;
  nEpochsDecay: number;
  /** The reference's `epoch_count` (first epoch number; 1 unless resuming the reference's way). */
  epochCount?: number;
}

/** Multiplier of the base learning rate during 1-based training epoch `epoch`. */
export function linearLrFactor(epoch: number, options: LinearLrOptions): number {
  const { nEpochs, nEpochsDecay, epochCount = 1 } = options;
  if (!Number.isInteger(epoch) || epoch < 1) throw new UsageError(`linearLrFactor: epoch is 1-based, got ${String(epoch)}`);
  if (!Number.isInteger(nEpochs) || nEpochs < 0 || !Number.isInteger(nEpochsDecay) || nEpochsDecay < 0) {
    throw new UsageError(`linearLrFactor: nEpochs and nEpochsDecay must be non-negative integers, got ${nEpochs} and ${nEpochsDecay}`);
  }
  // LambdaLR calls the rule with a 0-based counter that scheduler.step() advances at each epoch end:
  // lr_l = 1 - max(0, counter + epoch_count - n_epochs) / (n_epochs_decay + 1).
  const counter = epoch - 1;
  return 1 - Math.max(0, counter + epochCount - nEpochs) / (nEpochsDecay + 1);
}
