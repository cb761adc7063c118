/** Every contract this version of Scenimefy.js reads and writes, keyed by `format`. */
import { checkpointContract } from './checkpoint-manifest';
import type { ContractFormat } from './common';
import { datasetContract } from './dataset-manifest';
import { runContract } from './run-manifest';

export const CONTRACTS = Object.freeze({
  'scenimefy-checkpoint': checkpointContract,
  'scenimefy-dataset': datasetContract,
  'scenimefy-run': runContract,
} as const satisfies Record<ContractFormat, unknown>);
