/**
 * Reading and writing contract artifacts on disk (Node). Reading checks the text with `parseContract`; writing
 * validates first, so nothing touches the disk for an invalid value, then writes atomically.
 */
import { writeFileAtomic } from '../atomic-file';
import { InputError } from '../errors';
import { openRegularFile } from '../regular-file';
import { type CheckpointManifest, checkpointContract } from './checkpoint-manifest';
import type { ArtifactHeader, Contract } from './common';
import { type DatasetManifest, datasetContract } from './dataset-manifest';
import { contractValueToWrite, parseContract } from './parse-contract';
import { type RunManifest, runContract } from './run-manifest';

/** Read and check an artifact. InputError when the file cannot be read; ContractError as `parseContract`. */
export async function readContract<T extends ArtifactHeader>(file: string, contract: Contract<T>): Promise<T> {
  let text: string;
  try {
    const handle = await openRegularFile(file, contract.title.toLowerCase());
    try {
      text = await handle.readFile('utf8');
    } finally {
      await handle.close();
    }
  } catch (error) {
    if (error instanceof InputError) throw error;
    const code = (error as NodeJS.ErrnoException).code ?? 'EIO';
    throw new InputError(`cannot read ${contract.title.toLowerCase()} (${code})`, { file, cause: error });
  }
  return parseContract(text, file, contract);
}

/**
 * Check `value` against `contract` and write it to `file` atomically as indented JSON with a trailing newline,
 * always in the contract's current formatVersion. Throws ContractError (nothing is written) when the value
 * breaks the contract.
 */
export async function writeContract<T extends ArtifactHeader>(file: string, contract: Contract<T>, value: T): Promise<void> {
  const checked = contractValueToWrite(value, file, contract);
  await writeFileAtomic(file, `${JSON.stringify(checked, null, 2)}\n`);
}

/** Read `checkpoint.json`; InputError if unreadable, ContractError if it breaks the contract. */
export function readCheckpointManifest(file: string): Promise<CheckpointManifest> {
  return readContract(file, checkpointContract);
}

/** Validate and write `checkpoint.json` atomically. */
export function writeCheckpointManifest(file: string, manifest: CheckpointManifest): Promise<void> {
  return writeContract(file, checkpointContract, manifest);
}

/** Read a run folder's `run.json`; InputError if unreadable, ContractError if it breaks the contract. */
export function readRunManifest(file: string): Promise<RunManifest> {
  return readContract(file, runContract);
}

/** Validate and write `run.json` atomically. */
export function writeRunManifest(file: string, manifest: RunManifest): Promise<void> {
  return writeContract(file, runContract, manifest);
}

/** Read a dataset `manifest.json`; InputError if unreadable, ContractError if it breaks the contract. */
export function readDatasetManifest(file: string): Promise<DatasetManifest> {
  return readContract(file, datasetContract);
}

/** Validate and write a dataset `manifest.json` atomically. */
export function writeDatasetManifest(file: string, manifest: DatasetManifest): Promise<void> {
  return writeContract(file, datasetContract, manifest);
}
