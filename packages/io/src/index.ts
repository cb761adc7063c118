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

export { fsyncDir, produceFileAtomic, sha256File, sha256Hex, tempPathFor, writeFileAtomic } from './atomic-file';
export type { AtomicWriteOptions } from './atomic-file';

export {
  SAFETENSORS_MAX_HEADER_BYTES,
  float32Tensor,
  parseSafetensors,
  readSafetensors,
  serializeSafetensors,
  tensorToBigInt64,
  tensorToFloat32,
  tensorToInt32,
  writeSafetensors,
} from './safetensors';
export type { SafetensorsContents, SafetensorsReadOptions } from './safetensors';

export { imageToTensor, referenceResizeTarget, resizeImage, tensorToImage } from './image';
export type { ImageSource, ImageTensor, ResizeOptions, ResizeTarget, RgbImage, TensorToImageOptions } from './image';
export { DEFAULT_MAX_PIXELS, decodeImage } from './image-decode';
export type { DecodeImageOptions } from './image-decode';
export { DEFAULT_IMAGE_QUALITY, encodeImage, imageFormatForFile, writeImage } from './image-encode';
export type { EncodeImageOptions, ImageFormat } from './image-encode';

export { KNOWN_FORMATS, artifactHeader, isSafeRelativePath, olderContractVersion, relativePathSchema } from './contracts/common';
export type {
  ArtifactHeader,
  Contract,
  ContractFormat,
  ContractIssue,
  GeneratedBy,
  JsonValue,
  OlderContractVersion,
} from './contracts/common';
export { contractIssues, parseContract } from './contracts/parse-contract';
export {
  readCheckpointManifest,
  readContract,
  readDatasetManifest,
  readRunManifest,
  writeCheckpointManifest,
  writeContract,
  writeDatasetManifest,
  writeRunManifest,
} from './contracts/contract-files';
export { CONTRACTS } from './contracts/registry';
export { contractJsonSchema, contractJsonSchemaFiles, contractSchemaId } from './contracts/json-schema';
export type { JsonSchemaFile } from './contracts/json-schema';
export { checkpointContract, checkpointManifestSchema } from './contracts/checkpoint-manifest';
export type {
  CheckpointManifest,
  CheckpointNetworks,
  CheckpointSource,
  CheckpointTraining,
  DiscriminatorConfig,
  GeneratorConfig,
  NetworkName,
  PatchSamplerConfig,
} from './contracts/checkpoint-manifest';
export { datasetContract, datasetManifestSchema, isReferenceImageFile } from './contracts/dataset-manifest';
export type {
  DatasetFile,
  DatasetKind,
  DatasetManifest,
  DatasetPair,
  DatasetSelection,
  GeneratorRef,
  PairProvenance,
  PairScores,
} from './contracts/dataset-manifest';
export { buildDatasetManifest, listReferenceImages, verifyDatasetManifest } from './contracts/dataset-files';
export type { BuildDatasetManifestOptions, DatasetProblem, DatasetProgress, VerifyDatasetOptions } from './contracts/dataset-files';
export { runContract, runManifestSchema } from './contracts/run-manifest';
export type { RunCheckpoint, RunError, RunManifest, RunStatus } from './contracts/run-manifest';

export {
  isTorchCheckpoint,
  isTorchTensor,
  parseTorchCheckpoint,
  readTorchCheckpoint,
  readTorchStateDict,
  stateDictFromCheckpoint,
  torchCheckpointKind,
} from './torch-checkpoint';
export type { ReadTorchCheckpointOptions, ReadTorchStateDictOptions, TorchCheckpointKind } from './torch-checkpoint';
export { ALLOWED_PICKLE_GLOBALS, PICKLE_LIMITS } from './torch-pickle';

export { BACKEND_CANDIDATES, BACKEND_ENV_VAR, availableBackends, describeBackend, loadTf } from './tf-backend';
export type {
  BackendCandidate,
  BackendPreference,
  InstalledBackend,
  LoadTfOptions,
  SkippedBackend,
  TfBackendName,
  TfLoadResult,
} from './tf-backend';

export { detectWeightsFormat, readWeights, weightsFormatOf } from './weights-format';
export type { LoadedWeights, WeightsFormat, WeightsKind } from './weights-format';
