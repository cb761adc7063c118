/**
 * The Scenimefy generator `netG`: CUT's `ResnetGenerator` (resnet_9blocks, InstanceNorm, antialiased
 * down/up-sampling), SPEC §1.
 *
 * Public shapes are NCHW like the reference; inside, the network runs in NHWC because that is the layout
 * TF.js convolutions take, with one transpose at entry and exit (and per encoder tap). Conv weights are
 * converted once from PyTorch's OIHW to TF.js's HWIO when they are set.
 *
 * Modules are numbered exactly like the reference's `nn.Sequential` (`model.<i>`), so state-dict keys and
 * encoder tap indices (`encode(x, [0, 4, 8, 12, 16])`) mean the same as in PyTorch.
 */
import type { Tensor, Tensor4D, Variable } from '@tensorflow/tfjs-core';
import { InputError, ModelFormatError, UsageError, numel } from '@scenimefy/io/core';
import type { TensorData } from '@scenimefy/io/core';
import { instanceNorm2d } from '../layers/instance-norm';
import { reflectPad2d } from '../layers/reflect-pad';
import type { Tf } from '../layers/tf';
import { generatorModuleIndices } from './generator-layout';
import { DOWNSAMPLE_FILTER, DOWNSAMPLE_FILTER_SIZE, UPSAMPLE_FILTER, UPSAMPLE_FILTER_SIZE, blurDownsample, blurUpsample } from './blur';
import {
  assignPyTorchWeights,
  countParameters,
  float32Of,
  listed,
  pyTorchStateDict,
  sameShape,
  shapeText,
  stripPrefix,
} from './state-dict';
import type { Float32TensorData, StateDictEntrySpec, StateDictLike, StateDictReadOptions } from './tensor-types';

// The shared tensor types used to live here; kept importable from this module for existing imports.
export type { Float32TensorData, StateDictEntrySpec, StateDictLike, StateDictReadOptions } from './tensor-types';

export interface ResnetGeneratorConfig {
  /** Channels of the first conv; 64 for the released Shinkai model. */
  readonly ngf: number;
  readonly inputNc: number;
  readonly outputNc: number;
  /** Residual blocks at quarter resolution; 9 for `resnet_9blocks`. */
  readonly nBlocks: number;
}

export type ResnetGeneratorOptions = Pick<ResnetGeneratorConfig, 'ngf'> & Partial<ResnetGeneratorConfig>;

/** The encoder taps CUT's PatchNCE uses (`--nce_layers 0,4,8,12,16`). */
export const DEFAULT_NCE_LAYERS: readonly number[] = Object.freeze([0, 4, 8, 12, 16]);

/** Validated generator parameters in PyTorch layout (OIHW weights), keyed `model.<i>.…` without prefix. */
export interface GeneratorWeights {
  readonly config: ResnetGeneratorConfig;
  readonly tensors: ReadonlyMap<string, Float32TensorData>;
}

function resolvedConfig(options: ResnetGeneratorOptions): ResnetGeneratorConfig {
  const config: ResnetGeneratorConfig = {
    ngf: options.ngf,
    inputNc: options.inputNc ?? 3,
    outputNc: options.outputNc ?? 3,
    nBlocks: options.nBlocks ?? 9,
  };
  for (const [name, value] of Object.entries(config)) {
    if (!Number.isInteger(value) || value < 1) {
      throw new UsageError(`ResnetGenerator: ${name} must be a positive integer, got ${String(value)}`);
    }
  }
  return config;
}

/**
 * Every state-dict key of the generator with its PyTorch shape, in the reference's order (48 parameters and
 * 4 buffers for nBlocks = 9).
 */
export function generatorStateDictSpec(options: ResnetGeneratorOptions): Map<string, StateDictEntrySpec> {
  const { ngf, inputNc, outputNc, nBlocks } = resolvedConfig(options);
  const idx = generatorModuleIndices(nBlocks);
  const spec = new Map<string, StateDictEntrySpec>();
  const conv = (i: number | string, cout: number, cin: number, k: number): void => {
    spec.set(`model.${i}.weight`, { shape: [cout, cin, k, k], kind: 'parameter' });
    spec.set(`model.${i}.bias`, { shape: [cout], kind: 'parameter' });
  };
  const filt = (i: number, channels: number, k: number): void => {
    spec.set(`model.${i}.filt`, { shape: [channels, 1, k, k], kind: 'buffer' });
  };
  conv(1, ngf, inputNc, 7);
  conv(4, 2 * ngf, ngf, 3);
  filt(7, 2 * ngf, DOWNSAMPLE_FILTER_SIZE);
  conv(8, 4 * ngf, 2 * ngf, 3);
  filt(11, 4 * ngf, DOWNSAMPLE_FILTER_SIZE);
  for (let b = 0; b < nBlocks; b++) {
    conv(`${idx.firstBlock + b}.conv_block.1`, 4 * ngf, 4 * ngf, 3);
    conv(`${idx.firstBlock + b}.conv_block.5`, 4 * ngf, 4 * ngf, 3);
  }
  filt(idx.up1, 4 * ngf, UPSAMPLE_FILTER_SIZE);
  conv(idx.upConv1, 2 * ngf, 4 * ngf, 3);
  filt(idx.up2, 2 * ngf, UPSAMPLE_FILTER_SIZE);
  conv(idx.upConv2, ngf, 2 * ngf, 3);
  conv(idx.headConv, outputNc, ngf, 7);
  return spec;
}

/**
 * The generator architecture a state dict describes: ngf and inputNc from `model.1.weight`, the number of
 * residual blocks from the `conv_block` keys, outputNc from the last conv.
 */
export function inferGeneratorConfig(stateDict: StateDictLike, options: StateDictReadOptions = {}): ResnetGeneratorConfig {
  const source = options.source ?? 'state dict';
  const dict = stripPrefix(stateDict, options.prefix ?? '');
  const first = dict.get('model.1.weight');
  if (first === undefined || first.shape.length !== 4) {
    const prefixed = [...stateDict.keys()].find((k) => k.endsWith('.model.1.weight'));
    const hint = prefixed === undefined ? '' : ` (found ${prefixed}: read it with prefix '${prefixed.slice(0, -'model.1.weight'.length)}')`;
    throw new ModelFormatError(`not a ResnetGenerator state dict: no 4-D ${options.prefix ?? ''}model.1.weight${hint}`, {
      file: source,
    });
  }
  const blocks = new Set<number>();
  for (const key of dict.keys()) {
    const m = /^model\.(\d+)\.conv_block\.1\.weight$/.exec(key);
    if (m) blocks.add(Number(m[1]));
  }
  const nBlocks = blocks.size;
  const head = dict.get(`model.${generatorModuleIndices(nBlocks).headConv}.weight`);
  if (nBlocks === 0 || head === undefined || head.shape.length !== 4) {
    throw new ModelFormatError(`not a ResnetGenerator state dict: found ${nBlocks} residual blocks and no output conv`, {
      file: source,
    });
  }
  return resolvedConfig({
    ngf: first.shape[0] as number,
    inputNc: first.shape[1] as number,
    outputNc: head.shape[0] as number,
    nBlocks,
  });
}

/**
 * Checks a generator state dict against the architecture (the config given, or the one it describes) and
 * returns its parameters as float32 in PyTorch layout. Raises `ModelFormatError` naming missing or unexpected
 * keys, the first shape mismatch, or a `filt` buffer that is not the fixed blur filter (the network computes
 * the blur in closed form, so a different buffer would silently be ignored).
 */
export function loadGeneratorWeights(
  stateDict: StateDictLike,
  options: StateDictReadOptions & { readonly config?: ResnetGeneratorOptions } = {},
): GeneratorWeights {
  const source = options.source ?? 'state dict';
  const prefix = options.prefix ?? '';
  const config = options.config ? resolvedConfig(options.config) : inferGeneratorConfig(stateDict, options);
  const spec = generatorStateDictSpec(config);
  const dict = stripPrefix(stateDict, prefix);

  const missing = [...spec.keys()].filter((k) => !dict.has(k)).map((k) => prefix + k);
  const unexpected = [...dict.keys()].filter((k) => !spec.has(k)).map((k) => prefix + k);
  if (missing.length > 0 || unexpected.length > 0) {
    const parts = [];
    if (missing.length > 0) parts.push(`missing keys ${listed(missing)}`);
    if (unexpected.length > 0) parts.push(`unexpected keys ${listed(unexpected)}`);
    throw new ModelFormatError(`generator state dict (ngf=${config.ngf}, ${config.nBlocks} blocks): ${parts.join('; ')}`, {
      file: source,
    });
  }

  const tensors = new Map<string, Float32TensorData>();
  for (const [key, entry] of spec) {
    const value = dict.get(key) as Float32TensorData | TensorData;
    if (!sameShape(value.shape, entry.shape)) {
      throw new ModelFormatError(
        `${prefix}${key} has shape ${shapeText(value.shape)}, expected ${shapeText(entry.shape)} for ngf=${config.ngf}`,
        { file: source },
      );
    }
    const data = float32Of('generator', prefix + key, value, source);
    if (data.length !== numel(entry.shape)) {
      throw new ModelFormatError(`${prefix}${key} holds ${data.length} values, its shape needs ${numel(entry.shape)}`, {
        file: source,
      });
    }
    if (entry.kind === 'buffer') {
      const expected = entry.shape[2] === DOWNSAMPLE_FILTER_SIZE ? DOWNSAMPLE_FILTER : UPSAMPLE_FILTER;
      const bad = firstFilterMismatch(data, expected);
      if (bad !== undefined) {
        throw new ModelFormatError(`${prefix}${key}[${bad.index}] is ${bad.value}, expected the fixed blur filter value ${bad.expected}`, {
          file: source,
        });
      }
      continue;
    }
    tensors.set(key, { shape: entry.shape, data });
  }
  return { config, tensors };
}

function firstFilterMismatch(
  data: Float32Array,
  filter: Readonly<Float32Array>,
): { index: number; value: number; expected: number } | undefined {
  for (let i = 0; i < data.length; i++) {
    const expected = filter[i % filter.length] as number;
    const value = data[i] as number;
    // The buffers are exact binary fractions (k/16, k/64·4); 1e-6 only forgives a lossy re-encoding.
    if (!(Math.abs(value - expected) <= 1e-6)) return { index: i, value, expected };
  }
  return undefined;
}

export interface GeneratorInitOptions {
  /** Seed of the xavier-normal draws; each tensor uses seed + its index. Default 0. */
  readonly seed?: number;
  /** xavier gain; the reference trains from `--init_gain 0.02`. */
  readonly gain?: number;
}

export interface ResnetGenerator {
  readonly config: ResnetGeneratorConfig;
  /**
   * The learnable tensors by state-dict key (`model.1.weight`, …). Conv weights are stored HWIO
   * ([kh, kw, in, out]), biases [out]. Pass `[...variables.values()]` to `tf.variableGrads`.
   */
  readonly variables: ReadonlyMap<string, Variable>;
  /** netG(x): x is NCHW [B, inputNc, H, W] with H and W multiples of 4; returns NCHW [B, outputNc, H, W] in (−1, 1). */
  forward(x: Tensor4D): Tensor4D;
  /**
   * netG(x, layers, encode_only=True): the NCHW outputs of the listed modules (strictly increasing
   * `nn.Sequential` indices), computing nothing past the last one.
   */
  encode(x: Tensor4D, layers?: readonly number[]): Tensor4D[];
  /** Replaces every parameter with validated weights of the same architecture. */
  setWeights(weights: GeneratorWeights): void;
  /** The state dict in PyTorch layout and reference key order, `filt` buffers included (52 tensors for 9 blocks). */
  stateDict(): Promise<Map<string, Float32TensorData>>;
  /** Learnable scalars (11,378,179 for ngf = 64). */
  numParameters(): number;
  /**
   * Gradient checkpointing (default off): under a gradient tape the network runs as segments (each stage of
   * conv-norm-relu-resample, each ResnetBlock, each tapped conv alone) that keep only their input and are
   * recomputed during the backward pass. Same values and gradients; one more generator forward of compute for
   * a fraction of the memory — TF.js keeps every taped tensor, and every gradient of one, until a gradient
   * call returns, so without it a 256² training step needs tens of GB.
   */
  gradientCheckpointing: boolean;
  dispose(): void;
}

/** One `nn.Sequential` entry: the parameters it reads and its computation on NHWC activations. */
interface Module {
  readonly params: readonly Tensor[];
  apply(x: Tensor4D, params: readonly Tensor[]): Tensor4D;
}

/**
 * Runs `f` (which takes gradients of its own) from inside a backward pass. tfjs-core 4.22 keeps one
 * `activeTape`: a nested `tf.grads` started while the outer backward runs (gradient depth 0) replaces it and
 * sets it to null when done, so the outer call could no longer free its saved tensors and would fail. The
 * outer tape is put back afterwards; the nested call has already freed its own.
 */
function withOuterTapeKept<T>(tf: Tf, f: () => T): T {
  const state = (tf.engine() as unknown as { state: { activeTape: unknown } }).state;
  const outer = state.activeTape;
  try {
    return f();
  } finally {
    state.activeTape = outer;
  }
}

class TfResnetGenerator implements ResnetGenerator {
  readonly config: ResnetGeneratorConfig;
  readonly variables: ReadonlyMap<string, Variable>;
  private readonly spec: Map<string, StateDictEntrySpec>;
  private readonly modules: Module[];
  private segmentEnds: ReadonlySet<number> = new Set();
  private disposed = false;
  gradientCheckpointing = false;

  constructor(
    private readonly tf: Tf,
    config: ResnetGeneratorConfig,
    init: GeneratorInitOptions,
  ) {
    this.config = config;
    this.spec = generatorStateDictSpec(config);
    const variables = new Map<string, Variable>();
    const gain = init.gain ?? 0.02;
    const seed = init.seed ?? 0;
    let index = 0;
    for (const [key, entry] of this.spec) {
      if (entry.kind !== 'parameter') continue;
      const s = entry.shape;
      // SPEC §1: xavier_normal_(gain) on conv weights, zero biases, as the reference's init_weights.
      const initial =
        s.length === 4
          ? tf.randomNormal(
              [s[2] as number, s[3] as number, s[1] as number, s[0] as number],
              0,
              gain * Math.sqrt(2 / (((s[0] as number) + (s[1] as number)) * (s[2] as number) * (s[3] as number))),
              'float32',
              seed + index,
            )
          : tf.zeros(s as number[]);
      variables.set(key, tf.variable(initial, true));
      initial.dispose();
      index++;
    }
    this.variables = variables;
    this.modules = this.buildModules();
  }

  private param(key: string): Variable {
    const v = this.variables.get(key);
    if (v === undefined) throw new Error(`generator has no parameter ${key}`);
    return v;
  }

  private buildModules(): Module[] {
    const tf = this.tf;
    const { nBlocks } = this.config;
    const idx = generatorModuleIndices(nBlocks);
    const conv = (name: string, pad: 'valid' | 'same'): Module => ({
      params: [this.param(`${name}.weight`), this.param(`${name}.bias`)],
      apply: (x, [filter, bias]) => tf.fused.conv2d({ x, filter: filter as Tensor4D, strides: 1, pad, bias }),
    });
    const plain = (apply: (x: Tensor4D) => Tensor4D): Module => ({ params: [], apply: (x) => apply(x) });
    const norm = plain((x) => instanceNorm2d(tf, x));
    const relu = plain((x) => tf.relu(x));
    const resBlock = (i: number): Module => {
      const c1 = conv(`model.${i}.conv_block.1`, 'valid');
      const c2 = conv(`model.${i}.conv_block.5`, 'valid');
      return {
        params: [...c1.params, ...c2.params],
        apply: (x, p) =>
          tf.tidy(() => {
            const h = tf.relu(instanceNorm2d(tf, c1.apply(reflectPad2d(tf, x, 1), p.slice(0, 2))));
            return tf.add(x, instanceNorm2d(tf, c2.apply(reflectPad2d(tf, h, 1), p.slice(2, 4))));
          }),
      };
    };
    const modules: Module[] = [
      plain((x) => reflectPad2d(tf, x, 3)),
      conv('model.1', 'valid'),
      norm,
      relu,
      // The 3×3 down/up convs use zero padding 1, which is 'same' at stride 1.
      conv('model.4', 'same'),
      norm,
      relu,
      plain((x) => blurDownsample(tf, x)),
      conv('model.8', 'same'),
      norm,
      relu,
      plain((x) => blurDownsample(tf, x)),
    ];
    for (let b = 0; b < nBlocks; b++) modules.push(resBlock(idx.firstBlock + b));
    modules.push(
      plain((x) => blurUpsample(tf, x)),
      conv(`model.${idx.upConv1}`, 'same'),
      norm,
      relu,
      plain((x) => blurUpsample(tf, x)),
      conv(`model.${idx.upConv2}`, 'same'),
      norm,
      relu,
      plain((x) => reflectPad2d(tf, x, 3)),
      conv(`model.${idx.headConv}`, 'valid'),
      plain((x) => tf.tanh(x)),
    );
    if (modules.length !== idx.tanh + 1) throw new Error('generator module table out of step with moduleIndices');
    // Segment ends for checkpointing: each conv whose output is a contrastive tap stands alone, the rest are
    // conv-norm-relu(-resample) stages and single ResnetBlocks.
    this.segmentEnds = new Set([
      0,
      3,
      4,
      7,
      8,
      11,
      ...Array.from({ length: nBlocks }, (_, b) => idx.firstBlock + b),
      idx.upConv1 + 2,
      idx.upConv2 + 2,
      idx.tanh,
    ]);
    return modules;
  }

  /** Modules first..last as one step; with checkpointing, a customGrad that keeps only its input and replays under a local tape. */
  private segment(first: number, last: number): (x: Tensor4D) => Tensor4D {
    const tf = this.tf;
    const mods = this.modules.slice(first, last + 1);
    const params = mods.flatMap((m) => m.params);
    const compute = (x: Tensor4D, p: readonly Tensor[]): Tensor4D =>
      tf.tidy(() => {
        let h = x;
        let at = 0;
        for (const m of mods) {
          h = m.apply(h, p.slice(at, at + m.params.length));
          at += m.params.length;
        }
        return h;
      });
    if (!this.gradientCheckpointing) return (x) => compute(x, params);
    // customGrad runs its forward untaped and tidied: only the saved input outlives it. The backward replays
    // the segment under a local tape (tf.grads), whose intermediates and their gradients die with it.
    const checkpointed = tf.customGrad((...args: Array<Tensor | ((save: Tensor[]) => void)>) => {
      const inputs = args.slice(0, 1 + params.length) as Tensor[];
      const save = args[1 + params.length] as (tensors: Tensor[]) => void;
      save([inputs[0] as Tensor]);
      const gradFunc = (dy: Tensor4D, saved: Tensor[]): Tensor[] =>
        withOuterTapeKept(tf, () =>
          tf.grads((...xs: Tensor[]) => compute(xs[0] as Tensor4D, xs.slice(1)))([saved[0] as Tensor, ...params], dy),
        );
      return { value: compute(inputs[0] as Tensor4D, params), gradFunc };
    });
    return (x) => checkpointed(x, ...params) as Tensor4D;
  }

  private checkInput(x: Tensor4D): void {
    if (this.disposed) throw new UsageError('ResnetGenerator: used after dispose()');
    if (x.rank !== 4) throw new InputError(`generator input must be NCHW rank 4, got shape ${shapeText(x.shape)}`);
    const [, c, h, w] = x.shape;
    if (c !== this.config.inputNc) {
      throw new InputError(`generator input has ${c} channels, expected ${this.config.inputNc} (NCHW)`);
    }
    // SPEC §1: other sizes come out larger than they went in; the ResBlocks' reflect pad needs H/4, W/4 ≥ 2.
    if (h % 4 !== 0 || w % 4 !== 0 || h < 8 || w < 8) {
      throw new InputError(`generator input is ${h}x${w}; height and width must be multiples of 4 and at least 8`);
    }
    if (x.dtype !== 'float32') throw new InputError(`generator input must be float32, got ${x.dtype}`);
  }

  /** Runs modules 0..last on NHWC activations, freeing each step's input once its output exists; taps come back NCHW. */
  private run(x: Tensor4D, last: number, taps: ReadonlySet<number>): { output: Tensor4D; taps: Tensor4D[] } {
    const tf = this.tf;
    const tapped: Tensor4D[] = [];
    let h = tf.transpose(x, [0, 2, 3, 1]);
    // Without checkpointing every module is its own step, as before; with it, steps are segments, cut at taps.
    let first = 0;
    for (let i = 0; i <= last; i++) {
      const end = i === last || taps.has(i) || !this.gradientCheckpointing || this.segmentEnds.has(i);
      if (!end) continue;
      const step = this.segment(first, i);
      const next = tf.tidy(() => step(h));
      h.dispose();
      h = next;
      first = i + 1;
      if (taps.has(i)) tapped.push(tf.transpose(h, [0, 3, 1, 2]));
    }
    return { output: h, taps: tapped };
  }

  forward(x: Tensor4D): Tensor4D {
    this.checkInput(x);
    const { output } = this.run(x, this.modules.length - 1, new Set());
    const nchw = this.tf.transpose(output, [0, 3, 1, 2]);
    output.dispose();
    return nchw;
  }

  encode(x: Tensor4D, layers: readonly number[] = DEFAULT_NCE_LAYERS): Tensor4D[] {
    this.checkInput(x);
    if (layers.length === 0) throw new UsageError('ResnetGenerator.encode: no layers requested');
    layers.forEach((layer, i) => {
      if (!Number.isInteger(layer) || layer < 0 || layer >= this.modules.length) {
        throw new UsageError(`ResnetGenerator.encode: layer ${layer} is not a module index 0..${this.modules.length - 1}`);
      }
      if (i > 0 && layer <= (layers[i - 1] as number)) {
        throw new UsageError(`ResnetGenerator.encode: layers must be strictly increasing, got [${layers.join(', ')}]`);
      }
    });
    const { output, taps } = this.run(x, layers[layers.length - 1] as number, new Set(layers));
    output.dispose();
    return taps;
  }

  setWeights(weights: GeneratorWeights): void {
    if (this.disposed) throw new UsageError('ResnetGenerator: used after dispose()');
    const c = weights.config;
    const own = this.config;
    if (c.ngf !== own.ngf || c.inputNc !== own.inputNc || c.outputNc !== own.outputNc || c.nBlocks !== own.nBlocks) {
      throw new UsageError(
        `ResnetGenerator.setWeights: weights are for ngf=${c.ngf}, ${c.nBlocks} blocks, ${c.inputNc}→${c.outputNc}; ` +
          `this generator has ngf=${own.ngf}, ${own.nBlocks} blocks, ${own.inputNc}→${own.outputNc}`,
      );
    }
    assignPyTorchWeights(this.tf, this.variables, (key) => {
      const t = weights.tensors.get(key);
      if (t === undefined) throw new UsageError(`ResnetGenerator.setWeights: no tensor ${key}`);
      return t;
    });
  }

  async stateDict(): Promise<Map<string, Float32TensorData>> {
    return pyTorchStateDict(
      this.spec,
      (key) => this.param(key),
      (shape) => (shape[2] === DOWNSAMPLE_FILTER_SIZE ? DOWNSAMPLE_FILTER : UPSAMPLE_FILTER),
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
 * Builds the generator on the given TF.js namespace. Parameters start from the reference's training init
 * (xavier-normal, gain 0.02, zero biases) unless `weights` (from `loadGeneratorWeights`) are given.
 *
 * Example:
 *   const weights = loadGeneratorWeights(await readTorchStateDict('Shinkai_net_G.pth'));
 *   const netG = createResnetGenerator(tf, weights.config, { weights });
 *   const y = netG.forward(x); // x: [1, 3, 256, 256] in [-1, 1]
 */
export function createResnetGenerator(
  tf: Tf,
  options: ResnetGeneratorOptions,
  extra: { readonly weights?: GeneratorWeights; readonly init?: GeneratorInitOptions } = {},
): ResnetGenerator {
  const generator = new TfResnetGenerator(tf, resolvedConfig(options), extra.init ?? {});
  if (extra.weights !== undefined) {
    try {
      generator.setWeights(extra.weights);
    } catch (error) {
      generator.dispose();
      throw error;
    }
  }
  return generator;
}
