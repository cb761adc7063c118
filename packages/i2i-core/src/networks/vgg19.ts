/**
 * The frozen VGG-19 feature extractor of Scenimefy's content losses (SPEC §5.5, §9): torchvision `vgg19`'s
 * `features[0..25]`, conv1_1 … conv4_4, ending with conv4_4's output BEFORE its ReLU (512 channels at H/8). This
 * is the reference's `VGG19(feature_mode=True)`, which runs `list(features.modules())[1:27]`.
 *
 * The weights are plain tensors, not variables: the network is never trained, so `tf.variableGrads` must never
 * collect it, yet the features stay differentiable with respect to the input image. Like the other networks the
 * public layout is NCHW and the network runs in NHWC inside, with conv weights converted once from PyTorch's OIHW
 * to TF.js's HWIO.
 */
import type { Tensor, Tensor1D, Tensor4D } from '@tensorflow/tfjs-core';
import { InputError, ModelFormatError, UsageError, numel } from '@scenimefy/io/core';
import type { TensorData } from '@scenimefy/io/core';
import type { Tf } from '../layers/tf';
import type { Float32TensorData, StateDictEntrySpec, StateDictLike, StateDictReadOptions } from './tensor-types';
import { float32Of, hwioFromOihw, listed, sameShape, shapeText, stripPrefix } from './state-dict';

type Vgg19Stage =
  | {
      readonly kind: 'conv';
      readonly index: number;
      readonly name: string;
      readonly cin: number;
      readonly cout: number;
      readonly relu: boolean;
    }
  | { readonly kind: 'pool'; readonly index: number; readonly name: Vgg19PoolTap };

export type Vgg19PoolTap = 'pool1' | 'pool2' | 'pool3';

/**
 * `features[0..25]` in torchvision's numbering: each conv is followed by its ReLU at index + 1 (which is why the
 * conv indices skip), and the 2×2/2 max pools sit at 4, 9 and 18. Only conv4_4 (index 25) has no ReLU here.
 */
const STAGES: readonly Vgg19Stage[] = (() => {
  const stages: Vgg19Stage[] = [];
  // [block, convs in the block, output channels]; block 4 stops at conv4_4 because the loss does.
  const blocks: ReadonlyArray<readonly [number, number, number]> = [
    [1, 2, 64],
    [2, 2, 128],
    [3, 4, 256],
    [4, 4, 512],
  ];
  let index = 0;
  let cin = 3;
  for (const [block, convs, cout] of blocks) {
    for (let k = 1; k <= convs; k++) {
      const last = block === 4 && k === convs;
      stages.push({ kind: 'conv', index, name: `conv${block}_${k}`, cin, cout, relu: !last });
      cin = cout;
      index += last ? 1 : 2;
    }
    if (block < 4) {
      stages.push({ kind: 'pool', index, name: `pool${block}` as Vgg19PoolTap });
      index += 1;
    }
  }
  return Object.freeze(stages);
})();

/** Index of the last module the features use (conv4_4); torchvision's `features.26` … `features.36` are never read. */
export const VGG19_LAST_FEATURE_INDEX = 25;
/** Channels of the conv4_4 features. */
export const VGG19_FEATURE_CHANNELS = 512;
/** Spatial reduction of the conv4_4 features (three 2×2 pools, floor mode). */
export const VGG19_FEATURE_STRIDE = 8;

/** torchvision's layer names by `features` index, conv layers only (`0 → conv1_1`, … `25 → conv4_4`). */
export const VGG19_CONV_LAYERS: ReadonlyMap<number, string> = new Map(
  STAGES.filter((s) => s.kind === 'conv').map((s) => [s.index, s.name] as const),
);

/**
 * The 24 tensors the features need, by torchvision key (`features.<i>.weight` [out, in, 3, 3] and
 * `features.<i>.bias` [out]), in module order.
 */
export function vgg19FeaturesStateDictSpec(): Map<string, StateDictEntrySpec> {
  const spec = new Map<string, StateDictEntrySpec>();
  for (const stage of STAGES) {
    if (stage.kind !== 'conv') continue;
    spec.set(`features.${stage.index}.weight`, { shape: [stage.cout, stage.cin, 3, 3], kind: 'parameter' });
    spec.set(`features.${stage.index}.bias`, { shape: [stage.cout], kind: 'parameter' });
  }
  return spec;
}

const FIRST_KEY = 'features.0.weight';

/**
 * The state dict re-keyed to torchvision's `features.<i>.*`: after stripping `options.prefix`, a dict that already
 * has `features.0.weight` is taken as is; one whose first conv is `0.weight` is a saved `features` Sequential; one
 * whose only `…features.0.weight` key carries a prefix (`vgg.`, `module.`, a training checkpoint's `netVGG.`) is
 * read under that prefix.
 */
function torchvisionKeyed(stateDict: StateDictLike, options: StateDictReadOptions): Map<string, Float32TensorData | TensorData> {
  const source = options.source ?? 'state dict';
  const prefix = options.prefix ?? '';
  const dict = stripPrefix(stateDict, prefix);
  if (dict.has(FIRST_KEY)) return dict;
  if (dict.has('0.weight')) return new Map([...dict].map(([k, v]) => [`features.${k}`, v]));
  const prefixed = [...dict.keys()].filter((k) => k.endsWith(`.${FIRST_KEY}`));
  if (prefixed.length === 1) return stripPrefix(dict, (prefixed[0] as string).slice(0, -FIRST_KEY.length));
  const shown = listed([...stateDict.keys()].slice(0, 7));
  const why = prefixed.length > 1 ? `several candidates (${listed(prefixed.map((k) => prefix + k))}); pass the prefix` : `keys: ${shown}`;
  throw new ModelFormatError(`not a torchvision VGG-19 state dict: no ${prefix}${FIRST_KEY} (${why})`, { file: source });
}

/**
 * Checks a VGG-19 state dict (torchvision's `vgg19-dcbb9e9d.pth`, a features-only copy, or the same under a
 * prefix) and returns the 24 tensors the features use as float32 in PyTorch layout, keyed `features.<i>.*`.
 *
 * Keys the features never read are ignored: `features.28` … `features.34` and `classifier.*` of the full
 * checkpoint. A `features.<i>.*` key at i ≤ 25 that torchvision's `vgg19` does not have (a BatchNorm buffer of
 * `vgg19_bn`, a conv of `vgg16` at another index) means another architecture and is refused, as are missing keys,
 * wrong shapes and non-float tensors, each with a `ModelFormatError` naming the keys.
 */
export function loadVgg19Weights(stateDict: StateDictLike, options: StateDictReadOptions = {}): Map<string, Float32TensorData> {
  const source = options.source ?? 'state dict';
  const dict = torchvisionKeyed(stateDict, options);
  const spec = vgg19FeaturesStateDictSpec();
  const missing = [...spec.keys()].filter((k) => !dict.has(k));
  const foreign = [...dict.keys()].filter((k) => {
    const m = /^features\.(\d+)\./.exec(k);
    return m !== null && Number(m[1]) <= VGG19_LAST_FEATURE_INDEX && !spec.has(k);
  });
  if (missing.length > 0 || foreign.length > 0) {
    const parts: string[] = [];
    if (missing.length > 0) parts.push(`missing keys ${listed(missing)}`);
    if (foreign.length > 0) parts.push(`keys torchvision vgg19 does not have ${listed(foreign)} (vgg19_bn or another VGG?)`);
    throw new ModelFormatError(`VGG-19 state dict: ${parts.join('; ')}`, { file: source });
  }
  const out = new Map<string, Float32TensorData>();
  for (const [key, entry] of spec) {
    const value = dict.get(key) as Float32TensorData | TensorData;
    if (!sameShape(value.shape, entry.shape)) {
      throw new ModelFormatError(`VGG-19 ${key} has shape ${shapeText(value.shape)}, expected ${shapeText(entry.shape)}`, { file: source });
    }
    const data = float32Of('VGG-19', key, value, source);
    if (data.length !== numel(entry.shape)) {
      throw new ModelFormatError(`VGG-19 ${key} holds ${data.length} values, its shape needs ${numel(entry.shape)}`, { file: source });
    }
    out.set(key, { shape: entry.shape, data });
  }
  return out;
}

/** The conv4_4 features with the three pool outputs before them, all NCHW. */
export type Vgg19FeatureTaps = Record<Vgg19PoolTap | 'conv4_4', Tensor4D>;

export interface Vgg19Features {
  /**
   * The frozen parameters by torchvision key: conv weights HWIO ([3, 3, in, out]), biases [out]. Plain tensors,
   * so no optimiser and no `tf.variableGrads` ever sees them.
   */
  readonly weights: ReadonlyMap<string, Tensor>;
  /**
   * conv4_4 (pre-ReLU) of an NCHW float32 image batch [B, 3, H, W] → [B, 512, ⌊⌊⌊H/2⌋/2⌋/2⌋, same for W].
   * The input is whatever the caller maps it to (the reference feeds [0,1] images without ImageNet
   * normalisation; see `vggPerceptualLoss`). Differentiable with respect to x.
   */
  forward(x: Tensor4D): Tensor4D;
  /** `forward` plus the pool1 … pool3 outputs, for checks against the reference's debug taps. */
  forwardWithTaps(x: Tensor4D): Vgg19FeatureTaps;
  dispose(): void;
}

class TfVgg19Features implements Vgg19Features {
  readonly weights: ReadonlyMap<string, Tensor>;
  private disposed = false;

  constructor(
    private readonly tf: Tf,
    parameters: ReadonlyMap<string, Float32TensorData>,
  ) {
    const weights = new Map<string, Tensor>();
    for (const [key, t] of parameters) {
      const data = t.shape.length === 4 ? hwioFromOihw(t.data, t.shape) : t.data;
      const shape = t.shape.length === 4 ? [t.shape[2], t.shape[3], t.shape[1], t.shape[0]] : t.shape;
      // Kept, so that building the network inside a caller's tf.tidy does not dispose its weights.
      weights.set(key, tf.keep(tf.tensor(data, shape as number[], 'float32')));
    }
    this.weights = weights;
  }

  private weight(key: string): Tensor {
    const t = this.weights.get(key);
    if (t === undefined) throw new Error(`VGG-19 has no tensor ${key}`);
    return t;
  }

  private checkInput(x: Tensor4D): void {
    if (this.disposed) throw new UsageError('Vgg19Features: used after dispose()');
    if (x.rank !== 4) throw new InputError(`VGG-19 input must be NCHW rank 4, got shape ${shapeText(x.shape)}`);
    const [, c, h, w] = x.shape;
    if (c !== 3) throw new InputError(`VGG-19 input has ${c} channels, expected 3 (NCHW)`);
    if (h < VGG19_FEATURE_STRIDE || w < VGG19_FEATURE_STRIDE) {
      throw new InputError(`VGG-19 input is ${h}x${w}; three 2x2 pools need at least ${VGG19_FEATURE_STRIDE}x${VGG19_FEATURE_STRIDE}`);
    }
    if (x.dtype !== 'float32') throw new InputError(`VGG-19 input must be float32, got ${x.dtype}`);
  }

  private run(x: Tensor4D, withTaps: boolean): Vgg19FeatureTaps | Tensor4D {
    this.checkInput(x);
    const tf = this.tf;
    return tf.tidy(() => {
      const taps: Partial<Vgg19FeatureTaps> = {};
      let h = tf.transpose(x, [0, 2, 3, 1]);
      for (const stage of STAGES) {
        if (stage.kind === 'pool') {
          // 2×2/2 'valid' floors odd sides exactly like PyTorch's MaxPool2d(2, 2) (ceil_mode False).
          h = tf.maxPool(h, 2, 2, 'valid');
          if (withTaps) taps[stage.name] = tf.transpose(h, [0, 3, 1, 2]);
          continue;
        }
        // Unfused on purpose: a fused conv's gradient always computes the filter and bias gradients too, which the
        // frozen network never needs; the unfused ops' filter gradients are pruned from the tape.
        h = tf.add(
          tf.conv2d(h, this.weight(`features.${stage.index}.weight`) as Tensor4D, 1, 'same'),
          this.weight(`features.${stage.index}.bias`) as Tensor1D,
        );
        if (stage.relu) h = tf.relu(h);
      }
      const conv44 = tf.transpose(h, [0, 3, 1, 2]);
      return withTaps ? ({ ...taps, conv4_4: conv44 } as Vgg19FeatureTaps) : conv44;
    });
  }

  forward(x: Tensor4D): Tensor4D {
    return this.run(x, false) as Tensor4D;
  }

  forwardWithTaps(x: Tensor4D): Vgg19FeatureTaps {
    return this.run(x, true) as Vgg19FeatureTaps;
  }

  dispose(): void {
    if (this.disposed) return;
    for (const t of this.weights.values()) t.dispose();
    this.disposed = true;
  }
}

/**
 * Builds the frozen VGG-19 features (conv1_1 … conv4_4, pre-ReLU) from a state dict, validated by
 * `loadVgg19Weights` (so torchvision's full `vgg19-dcbb9e9d.pth` works as is).
 *
 * Example:
 *   const file = '~/.cache/scenimefy/models/vgg19/vgg19-dcbb9e9d.pth';
 *   const vgg = createVgg19Features(tf, await readTorchStateDict(file), { source: file });
 *   const f = vgg.forward(x); // x: [1, 3, 256, 256] in [0,1] → [1, 512, 32, 32]
 */
export function createVgg19Features(tf: Tf, weights: StateDictLike, options: StateDictReadOptions = {}): Vgg19Features {
  return new TfVgg19Features(tf, loadVgg19Weights(weights, options));
}
