/**
 * The Scenimefy discriminators `netD` and `netD_p` (training only): CUT's antialiased PatchGAN
 * `NLayerDiscriminator` with InstanceNorm, SPEC §3. `netD` sees an image (inputNc 3); `netD_p` is the
 * conditional one and sees `concat([x_p, y], channel)` (inputNc 6) — the caller concatenates.
 *
 * Like the generator, the public layout is NCHW and the network runs in NHWC inside; conv weights are held
 * HWIO and converted from/to PyTorch's OIHW at the state-dict boundary. Modules are numbered exactly like the
 * reference's `nn.Sequential`, so `model.<i>.*` keys mean the same as in PyTorch.
 */
import type { Tensor4D, Variable } from '@tensorflow/tfjs-core';
import { InputError, ModelFormatError, UsageError, numel } from '@scenimefy/io/core';
import type { TensorData } from '@scenimefy/io/core';
import { instanceNorm2d } from '../layers/instance-norm';
import type { Tf } from '../layers/tf';
import { DOWNSAMPLE_FILTER, DOWNSAMPLE_FILTER_SIZE, blurDownsample } from './blur';
import type { Float32TensorData, StateDictEntrySpec, StateDictLike, StateDictReadOptions } from './tensor-types';
import { assignPyTorchWeights, countParameters, float32Of, listed, pyTorchStateDict, shapeText, stripPrefix } from './state-dict';

export interface PatchDiscriminatorConfig {
  /** 3 for `netD` (an image), 6 for `netD_p` (photo and image concatenated on channels). */
  readonly inputNc: number;
  /** Channels of the first conv; 64 in the reference training (`--ndf`). */
  readonly ndf: number;
  /** Strided (blur-downsampled) stages; 3 for `netD='basic'`. */
  readonly nLayers: number;
}

export type PatchDiscriminatorOptions = Pick<PatchDiscriminatorConfig, 'inputNc'> & Partial<PatchDiscriminatorConfig>;

export interface DiscriminatorInitOptions {
  /** Seed of the xavier-normal draws; each weight tensor uses seed + its index. Default 0. */
  readonly seed?: number;
  /** xavier gain; the reference trains from `--init_gain 0.02`. */
  readonly gain?: number;
}

/** PatchGAN's conv kernel (`kw = 4`) and its zero padding (`padw = 1`). */
const KERNEL = 4;
const CONV_PAD = 1;
const LEAKY_SLOPE = 0.2;

type Stage =
  | { kind: 'conv'; index: number; cin: number; cout: number; norm: boolean; leaky: boolean }
  | { kind: 'down'; index: number; channels: number };

/**
 * The reference's module list (networks.py `NLayerDiscriminator`, antialiased): for nLayers = 3 the convs
 * sit at 0, 3, 7, 11, 14 and the Downsamples at 2, 6, 10 (SPEC §3). Norm and LeakyReLU occupy the indices
 * between them, which is why the numbering skips.
 */
function stagesOf(config: PatchDiscriminatorConfig): Stage[] {
  const { inputNc, ndf, nLayers } = config;
  const width = (n: number): number => ndf * Math.min(2 ** n, 8);
  const stages: Stage[] = [
    { kind: 'conv', index: 0, cin: inputNc, cout: ndf, norm: false, leaky: true },
    { kind: 'down', index: 2, channels: ndf },
  ];
  let index = 3;
  for (let n = 1; n < nLayers; n++) {
    stages.push({ kind: 'conv', index, cin: width(n - 1), cout: width(n), norm: true, leaky: true });
    stages.push({ kind: 'down', index: index + 3, channels: width(n) });
    index += 4;
  }
  stages.push({ kind: 'conv', index, cin: width(nLayers - 1), cout: width(nLayers), norm: true, leaky: true });
  stages.push({ kind: 'conv', index: index + 3, cin: width(nLayers), cout: 1, norm: false, leaky: false });
  return stages;
}

function resolvedConfig(options: PatchDiscriminatorOptions): PatchDiscriminatorConfig {
  const config: PatchDiscriminatorConfig = {
    inputNc: options.inputNc,
    ndf: options.ndf ?? 64,
    nLayers: options.nLayers ?? 3,
  };
  for (const [name, value] of Object.entries(config)) {
    if (!Number.isInteger(value) || value < 1) {
      throw new UsageError(`PatchDiscriminator: ${name} must be a positive integer, got ${String(value)}`);
    }
  }
  return config;
}

/**
 * Every state-dict key of the discriminator with its PyTorch shape, in the reference's order: conv
 * weight/bias pairs and the `filt` buffers of the Downsamples (13 tensors for nLayers = 3).
 */
export function discriminatorStateDictSpec(options: PatchDiscriminatorOptions): Map<string, StateDictEntrySpec> {
  const spec = new Map<string, StateDictEntrySpec>();
  for (const stage of stagesOf(resolvedConfig(options))) {
    if (stage.kind === 'conv') {
      spec.set(`model.${stage.index}.weight`, { shape: [stage.cout, stage.cin, KERNEL, KERNEL], kind: 'parameter' });
      spec.set(`model.${stage.index}.bias`, { shape: [stage.cout], kind: 'parameter' });
    } else {
      spec.set(`model.${stage.index}.filt`, {
        shape: [stage.channels, 1, DOWNSAMPLE_FILTER_SIZE, DOWNSAMPLE_FILTER_SIZE],
        kind: 'buffer',
      });
    }
  }
  return spec;
}

/**
 * Side of the score map for an input side (SPEC §3 / netD-io.json): each k4 p1 conv takes one pixel off and
 * each Downsample halves, rounding up; 256 → 30, 64 → 6. Undefined when the input is too small — a reflect
 * pad needs at least 2 pixels and the map at least 1.
 */
export function discriminatorOutputSize(size: number, nLayers = 3): number | undefined {
  let s = size;
  for (let n = 0; n < nLayers; n++) {
    s -= 1;
    if (s < 2) return undefined;
    s = Math.ceil(s / 2);
  }
  s -= 2;
  return s >= 1 ? s : undefined;
}

/**
 * The discriminator architecture a state dict describes: ndf and inputNc from `model.0.weight`, nLayers from
 * the number of `filt` buffers (one per Downsample).
 */
export function inferDiscriminatorConfig(stateDict: StateDictLike, options: StateDictReadOptions = {}): PatchDiscriminatorConfig {
  const source = options.source ?? 'state dict';
  const dict = stripPrefix(stateDict, options.prefix ?? '');
  const first = dict.get('model.0.weight');
  if (first === undefined || first.shape.length !== 4) {
    throw new ModelFormatError(`not a PatchGAN discriminator state dict: no 4-D ${options.prefix ?? ''}model.0.weight`, { file: source });
  }
  const nLayers = [...dict.keys()].filter((k) => /^model\.\d+\.filt$/.test(k)).length;
  if (nLayers === 0) {
    throw new ModelFormatError('not an antialiased PatchGAN discriminator state dict: no model.<i>.filt buffers', { file: source });
  }
  return resolvedConfig({ ndf: first.shape[0] as number, inputNc: first.shape[1] as number, nLayers });
}

/**
 * Checks a discriminator state dict against `config` and returns its parameters as float32 in PyTorch
 * layout. Raises `ModelFormatError` naming missing or unexpected keys, the first shape mismatch, or a `filt`
 * buffer that is not the fixed blur filter (the blur is computed in closed form, so a different buffer would
 * silently be ignored).
 */
function validatedParameters(
  stateDict: StateDictLike,
  config: PatchDiscriminatorConfig,
  options: StateDictReadOptions,
): Map<string, Float32TensorData> {
  const source = options.source ?? 'state dict';
  const prefix = options.prefix ?? '';
  const spec = discriminatorStateDictSpec(config);
  const dict = stripPrefix(stateDict, prefix);
  const what = `discriminator state dict (inputNc=${config.inputNc}, ndf=${config.ndf}, nLayers=${config.nLayers})`;

  const missing = [...spec.keys()].filter((k) => !dict.has(k)).map((k) => prefix + k);
  const unexpected = [...dict.keys()].filter((k) => !spec.has(k)).map((k) => prefix + k);
  if (missing.length > 0 || unexpected.length > 0) {
    const parts = [];
    if (missing.length > 0) parts.push(`missing keys ${listed(missing)}`);
    if (unexpected.length > 0) parts.push(`unexpected keys ${listed(unexpected)}`);
    throw new ModelFormatError(`${what}: ${parts.join('; ')}`, { file: source });
  }

  const tensors = new Map<string, Float32TensorData>();
  for (const [key, entry] of spec) {
    const value = dict.get(key) as Float32TensorData | TensorData;
    if (value.shape.length !== entry.shape.length || value.shape.some((d, i) => d !== entry.shape[i])) {
      throw new ModelFormatError(
        `${prefix}${key} has shape ${shapeText(value.shape)}, expected ${shapeText(entry.shape)} for the ${what}`,
        {
          file: source,
        },
      );
    }
    const data = float32Of('discriminator', prefix + key, value, source);
    if (data.length !== numel(entry.shape)) {
      throw new ModelFormatError(`${prefix}${key} holds ${data.length} values, its shape needs ${numel(entry.shape)}`, { file: source });
    }
    if (entry.kind === 'buffer') {
      for (let i = 0; i < data.length; i++) {
        const expected = DOWNSAMPLE_FILTER[i % DOWNSAMPLE_FILTER.length] as number;
        // The buffer holds exact binary fractions (k/16); 1e-6 only forgives a lossy re-encoding.
        if (!(Math.abs((data[i] as number) - expected) <= 1e-6)) {
          throw new ModelFormatError(`${prefix}${key}[${i}] is ${data[i]}, expected the fixed blur filter value ${expected}`, {
            file: source,
          });
        }
      }
      continue;
    }
    tensors.set(key, { shape: entry.shape, data });
  }
  return tensors;
}

/** OIHW (PyTorch) → HWIO (TF.js conv2d). */
/** HWIO (TF.js) → OIHW (PyTorch). */
export interface PatchDiscriminator {
  readonly config: PatchDiscriminatorConfig;
  /**
   * The learnable tensors by state-dict key (`model.0.weight`, …). Conv weights are stored HWIO
   * ([kh, kw, in, out]), biases [out]. Pass `[...variables.values()]` to `tf.variableGrads`.
   */
  readonly variables: ReadonlyMap<string, Variable>;
  /**
   * D(x): x is NCHW [B, inputNc, H, W] float32; returns the raw PatchGAN score map NCHW [B, 1, H', W'] (no
   * sigmoid; H' = `discriminatorOutputSize(H)`, 30 for 256). Differentiable w.r.t. x and the variables.
   */
  forward(x: Tensor4D): Tensor4D;
  /** Replaces every parameter with those of a validated state dict of the same architecture (`filt` buffers checked). */
  setWeights(stateDict: StateDictLike, options?: StateDictReadOptions): void;
  /** The state dict in PyTorch layout and reference key order, `filt` buffers included (13 tensors for nLayers 3). */
  stateDict(): Promise<Map<string, Float32TensorData>>;
  /** Learnable scalars (2,764,737 for ndf 64 and inputNc 3; 2,767,809 for inputNc 6). */
  numParameters(): number;
  dispose(): void;
}

class TfPatchDiscriminator implements PatchDiscriminator {
  readonly config: PatchDiscriminatorConfig;
  readonly variables: ReadonlyMap<string, Variable>;
  private readonly spec: Map<string, StateDictEntrySpec>;
  private readonly stages: Stage[];
  private disposed = false;

  constructor(
    private readonly tf: Tf,
    config: PatchDiscriminatorConfig,
    init: DiscriminatorInitOptions,
  ) {
    this.config = config;
    this.spec = discriminatorStateDictSpec(config);
    this.stages = stagesOf(config);
    const gain = init.gain ?? 0.02;
    const seed = init.seed ?? 0;
    const variables = new Map<string, Variable>();
    let index = 0;
    for (const [key, entry] of this.spec) {
      if (entry.kind !== 'parameter') continue;
      const s = entry.shape as number[];
      // SPEC §1 "Weight init": xavier_normal_(gain) on conv weights, zero biases (init_weights applies it to D too).
      const initial =
        s.length === 4
          ? tf.randomNormal(
              [s[2] as number, s[3] as number, s[1] as number, s[0] as number],
              0,
              gain * Math.sqrt(2 / (((s[0] as number) + (s[1] as number)) * (s[2] as number) * (s[3] as number))),
              'float32',
              seed + index,
            )
          : tf.zeros(s);
      variables.set(key, tf.variable(initial, true));
      initial.dispose();
      index++;
    }
    this.variables = variables;
  }

  private param(key: string): Variable {
    const v = this.variables.get(key);
    if (v === undefined) throw new Error(`discriminator has no parameter ${key}`);
    return v;
  }

  private checkUsable(): void {
    if (this.disposed) throw new UsageError('PatchDiscriminator: used after dispose()');
  }

  private checkInput(x: Tensor4D): void {
    this.checkUsable();
    if (x.rank !== 4) throw new InputError(`discriminator input must be NCHW rank 4, got shape ${shapeText(x.shape)}`);
    const [, c, h, w] = x.shape;
    if (c !== this.config.inputNc) {
      throw new InputError(`discriminator input has ${c} channels, expected ${this.config.inputNc} (NCHW)`);
    }
    if (discriminatorOutputSize(h, this.config.nLayers) === undefined || discriminatorOutputSize(w, this.config.nLayers) === undefined) {
      throw new InputError(`discriminator input is ${h}x${w}, too small for ${this.config.nLayers} downsampling stages`);
    }
    if (x.dtype !== 'float32') throw new InputError(`discriminator input must be float32, got ${x.dtype}`);
  }

  forward(x: Tensor4D): Tensor4D {
    this.checkInput(x);
    const tf = this.tf;
    return tf.tidy(() => {
      let h = tf.transpose(x, [0, 2, 3, 1]);
      for (const stage of this.stages) {
        if (stage.kind === 'down') {
          h = blurDownsample(tf, h);
          continue;
        }
        // k4 with zero padding 1 on every side: TF's 'same' would pad an even kernel asymmetrically (1/2),
        // and a numeric pad is refused by tfjs-node's Conv2D, so pad explicitly and convolve 'valid'.
        const padded = tf.pad(h, [
          [0, 0],
          [CONV_PAD, CONV_PAD],
          [CONV_PAD, CONV_PAD],
          [0, 0],
        ]);
        h = tf.fused.conv2d({
          x: padded,
          filter: this.param(`model.${stage.index}.weight`) as unknown as Tensor4D,
          bias: this.param(`model.${stage.index}.bias`),
          strides: 1,
          pad: 'valid',
        });
        if (stage.norm) h = instanceNorm2d(tf, h);
        // Applied apart from the conv: fused conv2d has no gradient for a fused leakyrelu.
        if (stage.leaky) h = tf.leakyRelu(h, LEAKY_SLOPE);
      }
      return tf.transpose(h, [0, 3, 1, 2]);
    });
  }

  setWeights(stateDict: StateDictLike, options: StateDictReadOptions = {}): void {
    this.checkUsable();
    const tensors = validatedParameters(stateDict, this.config, options);
    assignPyTorchWeights(this.tf, this.variables, (key) => tensors.get(key) as Float32TensorData);
  }

  async stateDict(): Promise<Map<string, Float32TensorData>> {
    this.checkUsable();
    return pyTorchStateDict(
      this.spec,
      (key) => this.param(key),
      () => DOWNSAMPLE_FILTER,
    );
  }

  numParameters(): number {
    return countParameters(this.variables);
  }

  dispose(): void {
    if (this.disposed) return;
    for (const v of this.variables.values()) v.dispose();
    this.disposed = true;
  }
}

/**
 * Builds a PatchGAN discriminator on the given TF.js namespace. Parameters start from the reference's
 * training init (xavier-normal, gain 0.02, zero biases) unless `weights` (a state dict, e.g. from
 * `readTorchStateDict('latest_net_D.pth')`, or a scenimefy-checkpoint's tensors with `prefix: 'netD.'`) are
 * given; they are validated against the architecture.
 *
 * Example:
 *   const netD = createPatchDiscriminator(tf, { inputNc: 3 }, { weights: await readTorchStateDict('latest_net_D.pth') });
 *   const scores = netD.forward(x); // x: [1, 3, 256, 256] → [1, 1, 30, 30]
 */
export function createPatchDiscriminator(
  tf: Tf,
  options: PatchDiscriminatorOptions,
  extra: StateDictReadOptions & { readonly weights?: StateDictLike; readonly init?: DiscriminatorInitOptions } = {},
): PatchDiscriminator {
  const discriminator = new TfPatchDiscriminator(tf, resolvedConfig(options), extra.init ?? {});
  if (extra.weights !== undefined) {
    try {
      discriminator.setWeights(extra.weights, extra);
    } catch (error) {
      discriminator.dispose();
      throw error;
    }
  }
  return discriminator;
}
