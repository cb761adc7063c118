/**
 * @module @scenimefy/io
 * Everything of Scenimefy.js that crosses the disk. Only the names exported here are public.
 */

export {
  BackendError,
  ContractError,
  EXIT_CODES,
  InputError,
  IntegrityError,
  ModelFormatError,
  NetworkError,
  NumericError,
  ScenimefyError,
  UsageError,
  exitCodeFor,
  isScenimefyError,
} from './errors';
export type { ScenimefyErrorCode, ScenimefyErrorOptions } from './errors';

export { DTYPE_BYTES, numel } from './tensor';
export type { DType, TensorData, TensorMap } from './tensor';

export { produceFileAtomic, sha256File, sha256Hex, tempPathFor, writeFileAtomic } from './atomic-file';
export type { AtomicWriteOptions } from './atomic-file';
