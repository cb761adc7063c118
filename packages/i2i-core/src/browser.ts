/**
 * @module @scenimefy/i2i-core/browser
 * The part of i2i-core that needs no Node.js: the TF.js layers, networks and losses (TF.js passed in), the ONNX
 * export (bytes in, bytes out), the inference engine over an onnxruntime passed in (onnxruntime-web in a page),
 * exact tiled inference, the image translator on decoded RGB images, generators from the bytes of a picked file,
 * and the registry table. Nothing reachable from here imports `node:*`, sharp, onnxruntime-node, tfjs-node or a
 * Node-only module of @scenimefy/io; browser.browser-graph.test.ts checks it. The Node entry
 * (`@scenimefy/i2i-core`) exports every name here too. Only the names exported here are public.
 *
 * Example:
 * ```ts
 * import * as ort from 'onnxruntime-web';
 * import { createImageTranslator, generatorModelFromBytes } from '@scenimefy/i2i-core/browser';
 *
 * const model = generatorModelFromBytes(await file.arrayBuffer(), file.name); // .pth, .safetensors or .onnx
 * const translator = await createImageTranslator(ort, model);
 * const { image } = await translator.translateImage({ width, height, data: rgb }); // HWC uint8 RGB
 * ```
 */

export type { Tf } from './layers/tf';
export { reflectPad2d } from './layers/reflect-pad';
export type { Padding2d } from './layers/reflect-pad';
export { INSTANCE_NORM_EPS, instanceNorm2d } from './layers/instance-norm';
export { WASM_MISSING_TRAINING_KERNELS, WASM_REPLACED_TRAINING_KERNELS, registerWasmTrainingKernels } from './layers/wasm-training-kernels';
export type { WasmTrainingKernelOptions } from './layers/wasm-training-kernels';

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
export { SeededRng, isRngWords } from './seeded-rng';
export type { RngWords } from './seeded-rng';

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

export { isOrtRuntime } from './infer/ort-runtime';
export type { OrtInferenceSession, OrtRuntime, OrtSessionOptions, OrtTensor } from './infer/ort-runtime';
export { createOnnxSession, runGenerator } from './infer/onnx-session';
export type { OnnxDevice, OnnxSession, OnnxSessionOptions } from './infer/onnx-session';
export { DEFAULT_TILE_SIZE, createTiledGenerator, planTiles } from './infer/tiled-generator';
export type { TiledGenerator, TiledGeneratorOptions, TileRect } from './infer/tiled-generator';
export {
  DEFAULT_TILE_PIXEL_BUDGET,
  ImageTranslator,
  MIN_MODEL_SIDE,
  checkTileSetting,
  createImageTranslator,
  modelInputSize,
} from './infer/image-translator';
export type { GeneratorModel, ImageTranslateOptions, ImageTranslatorOptions, TileSetting, TranslateResult } from './infer/image-translator';

export { generatorFileFormat, generatorModelFromBytes, generatorStateDictOf } from './models/model-bytes';
export type { GeneratorFileFormat, GeneratorFromBytes, GeneratorFromBytesOptions } from './models/model-bytes';
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
