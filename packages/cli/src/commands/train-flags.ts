/**
 * The flags of `scenimefy train`: one per training option, derived from i2i-core's options schema (each
 * option's default, help, flag and heading are declared there once).
 */
import { trainOptionsSchema } from '@scenimefy/i2i-core';
import type { Option } from 'commander';

import {
  attributeOf,
  commanderOptions,
  flagName,
  flagsFromSchema,
  optionsFromFlags as optionsFromSchemaFlags,
  type SchemaFlag,
} from './option-flags';

export type TrainFlag = SchemaFlag;

export const TRAIN_FLAGS: readonly TrainFlag[] = Object.freeze(flagsFromSchema(trainOptionsSchema));

/** Commander options for the training flags (and `extra` ones); no commander defaults, so only flags the user gave reach the options. */
export function trainOptions(extra: readonly TrainFlag[] = []): Option[] {
  return commanderOptions([...TRAIN_FLAGS, ...extra]);
}

export { attributeOf };

/** The TrainOptions the user set on the command line, from commander's parsed values. */
export function optionsFromFlags(values: Record<string, unknown>, flags: readonly TrainFlag[] = TRAIN_FLAGS): Record<string, unknown> {
  return optionsFromSchemaFlags(values, flags);
}

/** The flags a resumed run takes anew (the others keep the values the run started with). */
export function resumeOverrideFlags(): string[] {
  return TRAIN_FLAGS.filter((f) => f.onResume === 'override').map(flagName);
}

/** The flag that sets option `key` (`loadSize` → `--load-size`), for messages; the key itself when it has none. */
export function flagOfOption(key: string): string {
  const flag = TRAIN_FLAGS.find((f) => f.key === key);
  return flag === undefined ? key : flagName(flag);
}
