/**
 * @module @scenimefy/i2i-core
 * The Scenimefy translation model in TF.js and the building blocks other stages reuse, for Node: every name of the
 * browser entry (`@scenimefy/i2i-core/browser`, browser.ts) plus onnxruntime-node as the engine's default runtime,
 * the file-based `Translator`, model resolution and the download cache, and training. Only the names exported
 * here are public.
 */

export type { Tf } from './layers/tf';
export { reflectPad2d } from './layers/reflect-pad';
export type { Padding2d } from './layers/reflect-pad';
export { INSTANCE_NORM_EPS, instanceNorm2d } from './layers/instance-norm';
export { WASM_MISSING_TRAINING_KERNELS, WASM_REPLACED_TRAINING_KERNELS, registerWasmTrainingKernels } from './layers/wasm-training-kernels';
export type { WasmTrainingKernelOptions } from './layers/wasm-training-kernels';

export {
  DOWNSAMPLE_FILTER,
  DOWNSAMPLE_FILTER_SIZE,
  UPSAMPLE_FILTER,
  UPSAMPLE_FILTER_SIZE,
  blurDownsample,
  blurUpsample,
} from './networks/blur';
export {
  STYLEGAN2_BLUR_KERNEL,
  firBlur2d,
  firBlurPadAfterUpsampleConv,
  firBlurPadBeforeDownsampleConv,
  firDownsample2d,
  firDownsamplePad,
  firUpsample2d,
  firUpsamplePad,
  makeFirKernel,
  upfirdn2d,
} from './networks/upfirdn2d';
export type { FirBlurOptions, FirDataFormat, FirKernel, FirKernel2d, FirResampleOptions, UpFirDn2dOptions } from './networks/upfirdn2d';
export {
  DEFAULT_NCE_LAYERS,
  createResnetGenerator,
  generatorStateDictSpec,
  inferGeneratorConfig,
  loadGeneratorWeights,
} from './networks/generator';
export type {
  GeneratorInitOptions,
  GeneratorWeights,
  ResnetGenerator,
  ResnetGeneratorConfig,
  ResnetGeneratorOptions,
} from './networks/generator';
export type { Float32TensorData, StateDictEntrySpec, StateDictLike, StateDictReadOptions } from './networks/tensor-types';
export {
  assignPyTorchWeights,
  countParameters,
  float32Of,
  hwioFromOihw,
  oihwFromHwio,
  pyTorchStateDict,
  stripPrefix,
} from './networks/state-dict';
export { RESNET_9BLOCKS, generatorModuleIndices } from './networks/generator-layout';
export type { GeneratorModuleIndices } from './networks/generator-layout';

export {
  DEFAULT_GENERATOR_OPSET,
  GENERATOR_INPUT_NAME,
  GENERATOR_OUTPUT_NAME,
  MAX_GENERATOR_OPSET,
  exportGeneratorOnnx,
  generatorStateDictFromOnnx,
  generatorStateDictShapes,
  validatedGeneratorStateDict,
} from './export/onnx';
export type { GeneratorLayout, GeneratorOnnxOptions, UpsampleMode } from './export/onnx';
export { exportGeneratorOnnxFile } from './export/onnx-file';
export { runGenerator } from './infer/onnx-session';
export type { OnnxDevice, OnnxSession, OnnxSessionOptions } from './infer/onnx-session';
export { isOrtRuntime } from './infer/ort-runtime';
export type { OrtInferenceSession, OrtRuntime, OrtSessionOptions, OrtTensor } from './infer/ort-runtime';
export { createOnnxSession, createTiledGenerator } from './infer/node-engine';
export { listedOnnxBackends, nodeOrtRuntime } from './infer/node-runtime';
export type { NodeOrtRuntime } from './infer/node-runtime';

export {
  DEFAULT_TILE_PIXEL_BUDGET,
  ImageTranslator,
  MIN_MODEL_SIDE,
  checkTileSetting,
  createImageTranslator,
  modelInputSize,
} from './infer/image-translator';
export type { GeneratorModel, ImageTranslateOptions, ImageTranslatorOptions, TileSetting, TranslateResult } from './infer/image-translator';
export { Translator } from './infer/translator';
export { DEFAULT_TRANSLATE_MEMORY_BUDGET, estimateTranslateMemory, maxTranslatePixels } from './infer/memory-estimate';
export type { TranslateMemoryEstimate, TranslateMemoryOptions } from './infer/memory-estimate';
export type { TranslateOptions, TranslatorOptions } from './infer/translator';
export { generatorFileFormat, generatorModelFromBytes, generatorStateDictOf } from './models/model-bytes';
export type { GeneratorFileFormat, GeneratorFromBytes, GeneratorFromBytesOptions } from './models/model-bytes';
export { resolveModel } from './infer/model-source';
export type { ModelSourceKind, ResolveModelOptions, ResolvedModel } from './infer/model-source';
export {
  DEFAULT_MODEL,
  MODEL_KINDS,
  MODEL_REGISTRY,
  findModelIn,
  parseModelManifest,
  registryEntries,
  registryOfKind,
} from './models/model-registry';
export type { ModelEntry, ModelKind, RegistryOverrides } from './models/model-registry';
export { findModel, resolveRegistry } from './models/model-registry-env';
export type { RegistryEnv } from './models/model-registry-env';
export { cachedModelPath, fetchModel, isModelCached, modelCacheDir } from './models/model-cache';
export type { CacheEnv, CachedModel, DownloadProgress, FetchModelOptions } from './models/model-cache';
export { DEFAULT_TILE_SIZE, planTiles } from './infer/tiled-generator';
export type { TiledGenerator, TiledGeneratorOptions, TileRect } from './infer/tiled-generator';

export { LSGAN_FAKE_LABEL, LSGAN_REAL_LABEL, lsganDiscriminatorLoss, lsganGeneratorLoss, lsganLoss } from './losses/gan';
export type { LsganDiscriminatorLoss } from './losses/gan';
export { NCE_DIAGONAL_FILL, NCE_TEMPERATURE, detached, patchNceLoss } from './losses/patch-nce';
export type { PatchNceLoss, PatchNceOptions } from './losses/patch-nce';
export { DEFAULT_HDCE_GAMMA_OPTIONS, SRC_NORMALIZE_EPS, hdceGamma, hdceWeights, srcLoss } from './losses/src';
export type { HdceGammaOptions, HdceWeightOptions, SrcLoss, SrcOptions } from './losses/src';
export { patchHdceLoss } from './losses/hdce';
export type { HdceLoss, HdceOptions } from './losses/hdce';
export { IMAGENET_MEAN, IMAGENET_STD, VGG_INPUT_MAPPINGS, vggInputImage, vggPerceptualLoss } from './losses/vgg-perceptual';
export type { VggInputMapping, VggPerceptualOptions } from './losses/vgg-perceptual';

export {
  createPatchDiscriminator,
  discriminatorOutputSize,
  discriminatorStateDictSpec,
  inferDiscriminatorConfig,
} from './networks/discriminator';
export type {
  DiscriminatorInitOptions,
  PatchDiscriminator,
  PatchDiscriminatorConfig,
  PatchDiscriminatorOptions,
} from './networks/discriminator';
export { DEFAULT_NUM_PATCHES, DEFAULT_PATCH_NC, PATCH_NORM_EPS, createPatchSampleF, gatherPatchRows } from './networks/patch-sample';
export type {
  PatchIdRngState,
  PatchSampleCallOptions,
  PatchSampleF,
  PatchSampleFOptions,
  PatchSampleResult,
} from './networks/patch-sample';
export {
  VGG19_CONV_LAYERS,
  VGG19_FEATURE_CHANNELS,
  VGG19_FEATURE_STRIDE,
  VGG19_LAST_FEATURE_INDEX,
  createVgg19Features,
  loadVgg19Weights,
  vgg19FeaturesStateDictSpec,
} from './networks/vgg19';
export type { Vgg19FeatureTaps, Vgg19Features, Vgg19PoolTap } from './networks/vgg19';

export { AlignedDataset, DEFAULT_CROP_SIZE, DEFAULT_DATA_SEED, DEFAULT_LOAD_SIZE, UnalignedDataset } from './train/data';
export type {
  AlignedDatasetOptions,
  DataRngState,
  DataSample,
  DatasetLoadOptions,
  TransformOptions,
  UnalignedDatasetOptions,
} from './train/data';
export { SeededRng, isRngWords } from './seeded-rng';
export type { RngWords } from './seeded-rng';
export { ADAM_DEFAULTS, Adam } from './train/adam';
export type { AdamOptions, AdamState } from './train/adam';
export { linearLrFactor } from './train/lr-schedule';
export type { LinearLrOptions } from './train/lr-schedule';
export {
  SEMI_CUT_DEFAULTS,
  TRAIN_HEADINGS,
  checkSemiCutOptions,
  pairWeight,
  resolvedSemiCutOptions,
  semiCutOptionsSchema,
} from './train/options';
export type { PairWeightSchedule, PairedContentLoss, SemiCutOptions, VggInput } from './train/options';
export { SemiCutModel, createSemiCutModel, queuedPatchIds } from './train/semi-cut';
export type {
  GeneratorGradients,
  GeneratorObjectiveOptions,
  GeneratorPatchIds,
  PatchIdDraw,
  PatchIdSource,
  PerceptualLoss,
  SemiCutBatch,
  SemiCutEvaluationOptions,
  SemiCutLosses,
  SemiCutModelOptions,
  SemiCutNetworks,
  SemiCutOptimizerStates,
  SemiCutOptimizers,
} from './train/semi-cut';
export { TrainEventLog, iterateTrainEvents, readTrainEvents, serializeTrainEvent, trainEventSchema } from './train/events';
export type { TrainEvent, TrainEventLogOptions, TrainEventStatus, TrainEventType } from './train/events';
export { writeSampleGrid } from './train/sample-grid';
export type { SampleGridImage, SampleGridOptions, SampleGridResult, SampleGridRow } from './train/sample-grid';
export {
  DEFAULT_MAX_POINTS_PER_SERIES,
  DEFAULT_MAX_REPORT_SAMPLES,
  escapeHtml,
  renderTrainingReport,
  writeTrainingReport,
} from './train/report';
export type { ReportChartGroup, TrainingReportInput, TrainingReportOptions, TrainingReportStatus } from './train/report';

export {
  TRAIN_DEFAULTS,
  TRAIN_RUN_DEFAULTS,
  formatTrainOptions,
  nonDefaultOptions,
  pickSemiCutOptions,
  resolvedTrainOptions,
  trainOptionsSchema,
  trainRunSettingsSchema,
} from './train/train-options';
export { runLoopOptionShape } from './train/run-options';
export type { RunLoopDefaults, RunLoopHeadings, RunLoopOptions } from './train/run-options';

export {
  booleanOption,
  choiceOption,
  describeOptionKind,
  integerListOption,
  integerOption,
  nullableIntegerOption,
  numberOption,
  optionFields,
  optionMetaRegistry,
  optionSetRegistry,
  stringOption,
} from './options/option-schema';
export type { OnResume, OptionField, OptionKind, OptionMeta, OptionSetMeta, OptionsSchema } from './options/option-schema';
export {
  formatOptionsText,
  nonDefaultOptionNames,
  optionDefaults,
  optionIssues,
  pickOptions,
  resolveOptions,
} from './options/derive';
export type { OptionsOf, ResolveOptionsSettings } from './options/derive';
export type { TrainOptions, TrainRunSettings } from './train/train-options';
export { RUN_FILES, SEMI_CUT_STAGE, trainSemiCut } from './train/trainer';
export type { SemiCutStageInput, TrainHooks, TrainProgress, TrainResult, TrainRunInput } from './train/trainer';
export { runTraining } from './train/run-loop';
export type { TrainRunRequest } from './train/run-loop';
export { RunFolder } from './train/run-folder';
export { RUN_LOCK_FILE, RunLock, describeLockHolder } from './train/run-lock';
export type { AcquiredRunLock, RunLockHolder } from './train/run-lock';
export type {
  ModelDescription,
  TaskContext,
  TrainableModel,
  TrainableNetwork,
  TrainableOptimizer,
  TrainingData,
  TrainingStage,
  TrainingTask,
} from './train/trainable-model';
export {
  OPTIMIZER_FILE,
  RNG_FILE,
  WEIGHTS_FILE,
  readModelCheckpoint,
  restoreOptimizers,
  saveModelCheckpoint,
} from './train/model-checkpoint';
export type {
  CheckpointableModel,
  ReadModelCheckpointOptions,
  ReadTrainingCheckpoint,
  TrainingCheckpointState,
} from './train/model-checkpoint';
export { adamStateFromTensors, adamStateMetadata, adamStateTensors, checkOptimizerTensors, hasAdamState } from './train/adam-state';
export type { MomentLayout } from './train/adam-state';
export { datasetDigest } from './train/dataset-digest';
export type { DatasetDigest } from './train/dataset-digest';
export { loadVgg19FeaturesFromWeights } from './train/vgg-weights';
export type { Vgg19WeightsOptions } from './train/vgg-weights';
export { SEMI_CUT_DESCRIPTION, semiCutTrainable } from './train/semi-cut-trainable';
export { SEMI_CUT_PARTS } from './train/semi-cut-parts';
export type { SemiCutNetworkField, SemiCutOptimizerKey, SemiCutPart } from './train/semi-cut-parts';
export {
  SEMI_CUT_MODEL_NAME,
  checkSemiCutManifest,
  loadTrainingCheckpoint,
  saveTrainingCheckpoint,
  semiCutCheckpointable,
  semiCutFromCheckpoint,
} from './train/semi-cut-checkpoint';
export {
  CHECKPOINTS_FOLDER,
  CHECKPOINT_MANIFEST_FILE,
  checkCheckpointTarget,
  checkpointFolderFor,
  checkpointFolderName,
  checkpointFolderProblem,
  latestCheckpoint,
  pruneCheckpoints,
  removeStaleWorkFolders,
  runRelativePath,
  writeCheckpointFolder,
} from './store/checkpoint-store';
export type { LoadedTrainingCheckpoint } from './train/semi-cut-checkpoint';
