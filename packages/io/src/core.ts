/**
 * @module @scenimefy/io/core
 * The part of @scenimefy/io that needs no Node.js: typed errors, tensors, safetensors and PyTorch `.pth` parsing
 * from bytes, contract schemas and parsing from text, and the reference's image-tensor arithmetic. It runs in a
 * browser (a file the user picks becomes bytes) as well as in Node. Nothing reachable from here imports `node:*`,
 * sharp or a native backend; core.browser-graph.test.ts checks it. Only the names exported here are public.
 */

export {
  BackendError,
  ContractError,
  ERROR_MESSAGE_MAX_CHARS,
  EXIT_CODES,
  InputError,
  IntegrityError,
  ModelFormatError,
  NetworkError,
  NumericError,
  QUOTED_VALUE_MAX_CHARS,
  ScenimefyError,
  UsageError,
  capText,
  exitCodeFor,
  isScenimefyError,
  joinCapped,
  quoteValue,
} from './errors';
export type { ScenimefyErrorCode, ScenimefyErrorOptions } from './errors';

export { DTYPE_BYTES, numel } from './tensor';
export type { DType, TensorData, TensorMap } from './tensor';

export {
  SAFETENSORS_MAX_HEADER_BYTES,
  float32Tensor,
  parseSafetensors,
  serializeSafetensors,
  tensorToBigInt64,
  tensorToFloat32,
  tensorToInt32,
} from './safetensors';
export type { SafetensorsContents, SafetensorsReadOptions } from './safetensors';

export {
  TORCH_CHECKPOINT_MAX_BYTES,
  TORCH_CHECKPOINT_MAX_INFLATED_BYTES,
  isTorchCheckpoint,
  isTorchTensor,
  parseTorchCheckpoint,
  stateDictFromCheckpoint,
  torchCheckpointKind,
} from './torch-checkpoint';
export type { ReadTorchCheckpointOptions, ReadTorchStateDictOptions, TorchCheckpointKind } from './torch-checkpoint';
export { ALLOWED_PICKLE_GLOBALS, PICKLE_LIMITS } from './torch-pickle';
export type { PickleLimits } from './torch-pickle';

export { parseWeights, weightsFormatOf } from './weights-format';
export type { LoadedWeights, ParseWeightsOptions, WeightsFormat, WeightsKind } from './weights-format';

export { imageToTensor, referenceResizeTarget, resizeImage, tensorToImage } from './image';
export type { ImageSource, ImageTensor, ResizeOptions, ResizeTarget, RgbImage, TensorToImageOptions } from './image';

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
export { CONTRACTS } from './contracts/registry';
export { contractJsonSchema, contractJsonSchemaFiles, contractSchemaId } from './contracts/json-schema';
export type { JsonSchemaFile } from './contracts/json-schema';
export {
  checkpointContract,
  checkpointContractV1,
  checkpointManifestSchema,
  checkpointManifestV1Schema,
  networkConfigSchema,
} from './contracts/checkpoint-manifest';
export type {
  CheckpointManifest,
  CheckpointManifestV1,
  CheckpointNetworks,
  CheckpointOptimizer,
  CheckpointSource,
  CheckpointTraining,
  DiscriminatorConfig,
  GeneratorConfig,
  LinearConfig,
  NetworkArchitecture,
  NetworkConfig,
  NetworkName,
  PatchSamplerConfig,
  StyleGan2DiscriminatorConfig,
  StyleGan2GeneratorConfig,
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
export { runContract, runContractV1, runManifestSchema, runManifestV1Schema } from './contracts/run-manifest';
export type {
  RunCheckpoint,
  RunDataset,
  RunError,
  RunManifest,
  RunManifestV1,
  RunResume,
  RunStatus,
} from './contracts/run-manifest';

export { PACKAGE_NAME, PACKAGE_VERSION } from './version';
