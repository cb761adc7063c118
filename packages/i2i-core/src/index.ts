/**
 * @module @scenimefy/i2i-core
 * The Scenimefy translation model in TF.js and the building blocks other stages reuse. Only the names exported
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
  Float32TensorData,
  GeneratorInitOptions,
  GeneratorWeights,
  ResnetGenerator,
  ResnetGeneratorConfig,
  ResnetGeneratorOptions,
  StateDictEntrySpec,
  StateDictLike,
  StateDictReadOptions,
} from './networks/generator';

export {
  DEFAULT_GENERATOR_OPSET,
  GENERATOR_INPUT_NAME,
  GENERATOR_OUTPUT_NAME,
  MAX_GENERATOR_OPSET,
  exportGeneratorOnnx,
  exportGeneratorOnnxFile,
  generatorStateDictFromOnnx,
  generatorStateDictShapes,
  validatedGeneratorStateDict,
} from './export/onnx';
export type { GeneratorLayout, GeneratorOnnxOptions, UpsampleMode } from './export/onnx';
export { createOnnxSession, listedOnnxBackends, runGenerator } from './infer/onnx-session';
export type { OnnxDevice, OnnxSession, OnnxSessionOptions } from './infer/onnx-session';

export {
  DEFAULT_TILE_PIXEL_BUDGET,
  MIN_MODEL_SIDE,
  Translator,
} from './infer/translator';
export type { TileSetting, TranslateOptions, TranslateResult, TranslatorOptions } from './infer/translator';
export { resolveModel } from './infer/model-source';
export type { ModelSourceKind, ResolveModelOptions, ResolvedModel } from './infer/model-source';
export { DEFAULT_MODEL, MODEL_KINDS, MODEL_REGISTRY, findModel, resolveRegistry } from './models/model-registry';
export type { ModelEntry, ModelKind, RegistryEnv } from './models/model-registry';
export { cachedModelPath, fetchModel, isModelCached, modelCacheDir } from './models/model-cache';
export type { CacheEnv, CachedModel, DownloadProgress, FetchModelOptions } from './models/model-cache';
export { DEFAULT_TILE_SIZE, createTiledGenerator, planTiles } from './infer/tiled-generator';
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
export { SEMI_CUT_DEFAULTS, pairWeight, resolvedSemiCutOptions } from './train/options';
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
export type { TrainingReportInput, TrainingReportOptions, TrainingReportStatus } from './train/report';

export {
  TRAIN_DEFAULTS,
  TRAIN_RUN_DEFAULTS,
  formatTrainOptions,
  nonDefaultOptions,
  pickSemiCutOptions,
  resolvedTrainOptions,
} from './train/train-options';
export type { TrainOptions, TrainRunSettings } from './train/train-options';
export { RUN_FILES, trainSemiCut } from './train/trainer';
export type { TrainHooks, TrainProgress, TrainResult, TrainRunInput } from './train/trainer';
export {
  CHECKPOINTS_FOLDER,
  checkpointFolderFor,
  checkpointFolderName,
  latestCheckpoint,
  loadTrainingCheckpoint,
  pruneCheckpoints,
  saveTrainingCheckpoint,
} from './train/checkpoint';
export type { LoadedTrainingCheckpoint, TrainingCheckpointState } from './train/checkpoint';
