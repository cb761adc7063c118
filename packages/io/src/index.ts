/**
 * @module @scenimefy/io
 * Everything of Scenimefy.js that crosses the disk (Node.js): all of `@scenimefy/io/core` (core.ts), plus files —
 * atomic writes, hashing, reading weights and contracts from paths, dataset folders — images through sharp, and
 * the TF.js backend loader. Only the names exported here are public.
 */

// The Node runtime's faster pieces for the core: node:zlib's CRC-32 for the zip reader.
import './crc32-node';

// Everything of the browser-safe core, name by name (core.browser-graph.test.ts checks that none is missing).
export {
  ALLOWED_PICKLE_GLOBALS,
  BackendError,
  CONTRACTS,
  ContractError,
  DTYPE_BYTES,
  ERROR_MESSAGE_MAX_CHARS,
  EXIT_CODES,
  InputError,
  IntegrityError,
  KNOWN_FORMATS,
  ModelFormatError,
  NetworkError,
  NumericError,
  PACKAGE_NAME,
  PACKAGE_VERSION,
  PICKLE_LIMITS,
  QUOTED_VALUE_MAX_CHARS,
  SAFETENSORS_MAX_HEADER_BYTES,
  ScenimefyError,
  TORCH_CHECKPOINT_MAX_BYTES,
  TORCH_CHECKPOINT_MAX_INFLATED_BYTES,
  UsageError,
  artifactHeader,
  capText,
  checkpointContract,
  checkpointContractV1,
  checkpointManifestSchema,
  checkpointManifestV1Schema,
  contractIssues,
  contractJsonSchema,
  contractJsonSchemaFiles,
  contractSchemaId,
  datasetContract,
  datasetManifestSchema,
  exitCodeFor,
  float32Tensor,
  imageToTensor,
  isReferenceImageFile,
  isSafeRelativePath,
  isScenimefyError,
  isTorchCheckpoint,
  isTorchTensor,
  joinCapped,
  networkConfigSchema,
  numel,
  olderContractVersion,
  parseContract,
  parseSafetensors,
  parseTorchCheckpoint,
  parseWeights,
  quoteValue,
  referenceResizeTarget,
  relativePathSchema,
  resizeImage,
  runContract,
  runContractV1,
  runManifestSchema,
  runManifestV1Schema,
  serializeSafetensors,
  stateDictFromCheckpoint,
  tensorToBigInt64,
  tensorToFloat32,
  tensorToImage,
  tensorToInt32,
  torchCheckpointKind,
  weightsFormatOf,
} from './core';
export type {
  ArtifactHeader,
  CheckpointManifest,
  CheckpointManifestV1,
  CheckpointNetworks,
  CheckpointOptimizer,
  CheckpointSource,
  CheckpointTraining,
  Contract,
  ContractFormat,
  ContractIssue,
  DType,
  DatasetFile,
  DatasetKind,
  DatasetManifest,
  DatasetPair,
  DatasetSelection,
  DiscriminatorConfig,
  GeneratedBy,
  GeneratorConfig,
  GeneratorRef,
  ImageSource,
  ImageTensor,
  JsonSchemaFile,
  JsonValue,
  LinearConfig,
  LoadedWeights,
  NetworkArchitecture,
  NetworkConfig,
  NetworkName,
  OlderContractVersion,
  PairProvenance,
  PairScores,
  ParseWeightsOptions,
  PatchSamplerConfig,
  PickleLimits,
  ReadTorchCheckpointOptions,
  ReadTorchStateDictOptions,
  ResizeOptions,
  ResizeTarget,
  RgbImage,
  RunCheckpoint,
  RunDataset,
  RunError,
  RunManifest,
  RunManifestV1,
  RunResume,
  RunStatus,
  SafetensorsContents,
  SafetensorsReadOptions,
  ScenimefyErrorCode,
  StyleGan2DiscriminatorConfig,
  StyleGan2GeneratorConfig,
  ScenimefyErrorOptions,
  TensorData,
  TensorMap,
  TensorToImageOptions,
  TorchCheckpointKind,
  WeightsFormat,
  WeightsKind,
} from './core';

// Node only: files, sharp, native backends.
export {
  fsyncDir,
  produceFileAtomic,
  removeStaleTempFiles,
  sha256File,
  sha256Hex,
  tempPathFor,
  writeFileAtomic,
} from './atomic-file';
export type { AtomicWriteOptions, RemoveStaleTempFilesOptions } from './atomic-file';

export { assertRegularFile, describeFileKind } from './regular-file';
export { readSafetensors, writeSafetensors } from './safetensors-file';
export { readTorchCheckpoint, readTorchStateDict } from './torch-checkpoint-file';
export { detectWeightsFormat, readWeights } from './weights-file';

export { DEFAULT_MAX_PIXELS, decodeImage } from './image-decode';
export type { DecodeHeader, DecodeImageOptions } from './image-decode';
export { DEFAULT_IMAGE_QUALITY, encodeImage, imageFormatForFile, writeImage } from './image-encode';
export type { EncodeImageOptions, ImageFormat } from './image-encode';

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
export { buildDatasetManifest, listReferenceImages, verifyDatasetManifest } from './contracts/dataset-files';
export type { BuildDatasetManifestOptions, DatasetProblem, DatasetProgress, VerifyDatasetOptions } from './contracts/dataset-files';

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
