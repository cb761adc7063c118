/**
 * The patch projection heads `netF` / `netF_s`: CUT's `PatchSampleF` (`netF='mlp_sample'`), SPEC §4.
 *
 * For each encoder tap it picks the same spatial positions in every image of the batch (unless
 * `perSampleIds`), gathers their feature vectors, maps them through a per-layer MLP
 * `Linear(C_l→nc) → ReLU → Linear(nc→nc)` and L2-normalises each row. The MLPs are created lazily on the first
 * `sample` — their input widths are the taps' channel counts — or pre-built from a state dict with
 * `loadState`.
 *
 * Taps come in the layout `ResnetGenerator.encode` returns: NCHW. A patch id is `h·W + w` on its tap, as in
 * the reference's `feat.permute(0,2,3,1).flatten(1,2)`. Output rows are batch-major: row `b·N + n` is
 * sample b at id n.
 *
 * Random ids cannot match `torch.randperm` (a different generator), so they come from a small seeded
 * xoshiro128** stream whose state can be saved and restored with the run (`rngState` / `setRngState`);
 * parity with the reference goes through injected ids, as in the fixtures.
 */
import type { Tensor, Tensor2D, Tensor4D, Variable } from '@tensorflow/tfjs-core';
import { InputError, ModelFormatError, UsageError, numel } from '@scenimefy/io/core';
import type { TensorData } from '@scenimefy/io/core';
import type { Tf } from '../layers/tf';
import { SeededRng, splitmix32 } from '../seeded-rng';
import type { Float32TensorData, StateDictLike, StateDictReadOptions } from './tensor-types';
import { countParameters, float32Of, listed, shapeText } from './state-dict';

/** Added to each row's L2 norm before dividing (the reference's `Normalize`: `x / (‖x‖₂ + 1e-7)`). */
export const PATCH_NORM_EPS = 1e-7;

/** `--num_patches` default. */
export const DEFAULT_NUM_PATCHES = 256;

/** `--netF_nc` default: the width of every head. */
export const DEFAULT_PATCH_NC = 256;

// ---------------------------------------------------------------------------------------------------------
// Seeded integers. Hand-written because ids must be reproducible and the generator state must round-trip
// through a run's rng.json as plain numbers; no PRNG library is a dependency of i2i-core.

/** The state of the patch-id generator: JSON-safe, restores the stream exactly. */
export interface PatchIdRngState {
  readonly algorithm: 'xoshiro128**';
  /** Four unsigned 32-bit words, not all zero. */
  readonly state: readonly [number, number, number, number];
}

/**
 * The first `count` entries of a uniformly random permutation of 0..n-1 (partial Fisher–Yates), which is
 * what the reference's `randperm(n)[:count]` is in distribution.
 */
function truncatedPermutation(rng: SeededRng, n: number, count: number): Int32Array {
  const perm = new Int32Array(n);
  for (let i = 0; i < n; i++) perm[i] = i;
  for (let i = 0; i < count; i++) {
    const j = i + rng.below(n - i);
    const tmp = perm[i] as number;
    perm[i] = perm[j] as number;
    perm[j] = tmp;
  }
  return perm.slice(0, count);
}

// ---------------------------------------------------------------------------------------------------------

/**
 * The feature rows `sample` feeds to a head: `feat` is NCHW [B, C, H, W]; with shared ids (the reference)
 * the result is [B·N, C] with row b·N + n = feat[b, :, ids[n] / W, ids[n] % W]; with `perSample`, `ids`
 * holds B·N ids, sample b's at [b·N, (b+1)·N). Differentiable w.r.t. `feat` (the gather's gradient is a
 * scatter-add). Ids are trusted here; `sample` validates them.
 */
export function gatherPatchRows(tf: Tf, feat: Tensor4D, ids: Int32Array, perSample = false): Tensor2D {
  const [b, c, h, w] = feat.shape;
  const hw = h * w;
  const n = perSample ? ids.length / b : ids.length;
  // One gather from the flat tap with an index per output element ((b·C + c)·H·W + id): it needs no transpose
  // of the (possibly 256²) tap and no `batchDims`, which the wasm backend's GatherV2 gets wrong (tfjs 4.22).
  const index = new Int32Array(b * n * c);
  for (let s = 0; s < b; s++)
    for (let k = 0; k < n; k++) {
      const id = ids[perSample ? s * n + k : k] as number;
      const row = (s * n + k) * c;
      for (let ch = 0; ch < c; ch++) index[row + ch] = (s * c + ch) * hw + id;
    }
  return tf.tidy(() => {
    const flat: Tensor = tf.reshape(feat, [b * c * hw]);
    return tf.gather(flat, tf.tensor2d(index, [b * n, c], 'int32')) as Tensor2D;
  });
}

export interface PatchSampleFOptions {
  /** Output width of every head (`--netF_nc`); 256 in the reference. When omitted, `loadState` may set it. */
  readonly nc?: number;
  /** xavier-normal gain of the head weights (`--init_gain`). Default 0.02. */
  readonly initGain?: number;
  /**
   * Seeds the head weights and the patch-id stream (two independent streams). Default: a random seed, kept
   * in `seed` so the run can be replayed. Give netF and netF_s different seeds, as the reference's global RNG
   * gives them different weights.
   */
  readonly seed?: number;
}

export interface PatchSampleCallOptions {
  /**
   * Draw (or take) separate ids for every sample of the batch: SPEC §11 #4's corrected behaviour for batch
   * > 1. Each layer's id array then holds B·N ids (sample b's at [b·N, (b+1)·N)), and given ids must have a
   * length divisible by B. Default false: the reference shares one id set across the batch, which makes
   * SRC/hDCE's relation matrices mix samples at batch > 1.
   */
  readonly perSampleIds?: boolean;
}

export interface PatchSampleResult {
  /** Per layer, [B·N, nc] unit rows (`x / (‖x‖₂ + 1e-7)`), batch-major. The caller disposes them. */
  readonly features: Tensor2D[];
  /** Per layer, the ids used (new arrays when drawn, the given arrays themselves otherwise), to pass to the partner images' `sample`. */
  readonly patchIds: Int32Array[];
}

export interface PatchSampleF {
  /** Width of each head's output. */
  readonly nc: number;
  /** The seed the heads and ids were drawn from. */
  readonly seed: number;
  /**
   * The learnable tensors by state-dict key (`mlp_0.0.weight`, …), weights in PyTorch Linear layout
   * [out, in]. Empty until the heads exist (first `sample` or `loadState`): build them before collecting
   * variables for an optimiser, as the reference's data-dependent init does.
   */
  readonly variables: ReadonlyMap<string, Variable>;
  /** C_l per head, in layer order; empty before the heads exist. */
  headChannels(): number[];
  /**
   * PatchSampleF.forward(feats, num_patches, patch_ids). `feats` are encoder taps (NCHW, as
   * `ResnetGenerator.encode` returns them). Without `patchIds`, each layer draws a random permutation of
   * its H·W positions truncated to `numPatches` (all positions, in permutation order, when H·W ≤
   * numPatches). Given `patchIds` are used as they are (any length; `numPatches` is then ignored, as in the
   * reference). Builds the heads on first use. Differentiable w.r.t. the taps and the head variables.
   */
  sample(
    feats: readonly Tensor4D[],
    numPatches?: number,
    patchIds?: readonly Int32Array[],
    options?: PatchSampleCallOptions,
  ): PatchSampleResult;
  /** The patch-id generator's state, for a run's rng.json. */
  rngState(): PatchIdRngState;
  /** Continues the patch-id stream from a saved state. */
  setRngState(state: PatchIdRngState): void;
  /**
   * Loads `mlp_<i>.{0,2}.{weight,bias}` tensors (e.g. `train-netF-init.pth`, a `{epoch}_net_F.pth`, or a
   * scenimefy-checkpoint with `prefix: 'netF.'`). C_l and nc come from the shapes. Before the heads exist this
   * builds them (adopting the state's nc unless `nc` was given and differs); afterwards the layer count and
   * every shape must match. Raises `ModelFormatError` naming missing/unexpected keys or the first bad shape.
   */
  loadState(stateDict: StateDictLike, options?: StateDictReadOptions): void;
  /** The state dict in PyTorch layout and the reference's key order (4 tensors per head). */
  stateDict(): Promise<Map<string, Float32TensorData>>;
  /** Learnable scalars over the heads built so far. */
  numParameters(): number;
  dispose(): void;
}

interface Head {
  readonly channels: number;
  readonly w0: Variable;
  readonly b0: Variable;
  readonly w2: Variable;
  readonly b2: Variable;
}

function headKeys(layer: number): [string, string, string, string] {
  return [`mlp_${layer}.0.weight`, `mlp_${layer}.0.bias`, `mlp_${layer}.2.weight`, `mlp_${layer}.2.bias`];
}

interface HeadTensors {
  readonly channels: number;
  readonly nc: number;
  readonly data: [Float32Array, Float32Array, Float32Array, Float32Array];
}

/** Reads and checks the heads of a PatchSampleF state dict (layers 0..L-1, 4 tensors each, one nc). */
function headTensorsOf(stateDict: StateDictLike, options: StateDictReadOptions): HeadTensors[] {
  const source = options.source ?? 'state dict';
  const prefix = options.prefix ?? '';
  const dict = new Map<string, Float32TensorData | TensorData>();
  for (const [key, value] of stateDict) if (key.startsWith(prefix)) dict.set(key.slice(prefix.length), value);

  let layers = 0;
  for (const key of dict.keys()) {
    const m = /^mlp_(\d+)\./.exec(key);
    if (m) layers = Math.max(layers, Number(m[1]) + 1);
  }
  if (layers === 0) throw new ModelFormatError(`not a PatchSampleF state dict: no ${prefix}mlp_<i>.* keys`, { file: source });
  const expected = new Set<string>();
  for (let l = 0; l < layers; l++) for (const k of headKeys(l)) expected.add(k);
  const missing = [...expected].filter((k) => !dict.has(k)).map((k) => prefix + k);
  const unexpected = [...dict.keys()].filter((k) => !expected.has(k)).map((k) => prefix + k);
  if (missing.length > 0 || unexpected.length > 0) {
    const parts = [];
    if (missing.length > 0) parts.push(`missing keys ${listed(missing)}`);
    if (unexpected.length > 0) parts.push(`unexpected keys ${listed(unexpected)}`);
    throw new ModelFormatError(`PatchSampleF state dict (${layers} heads): ${parts.join('; ')}`, { file: source });
  }

  const first = dict.get('mlp_0.0.weight') as Float32TensorData | TensorData;
  const nc = first.shape[0];
  if (first.shape.length !== 2 || nc === undefined || nc < 1) {
    throw new ModelFormatError(`${prefix}mlp_0.0.weight has shape ${shapeText(first.shape)}, expected [nc, C]`, { file: source });
  }
  const heads: HeadTensors[] = [];
  for (let l = 0; l < layers; l++) {
    const keys = headKeys(l);
    const w0 = dict.get(keys[0]) as Float32TensorData | TensorData;
    const channels = w0.shape.length === 2 ? (w0.shape[1] as number) : -1;
    const shapes: number[][] = [[nc, channels], [nc], [nc, nc], [nc]];
    const data = keys.map((key, j) => {
      const value = dict.get(key) as Float32TensorData | TensorData;
      const want = shapes[j] as number[];
      if (channels < 1 || value.shape.length !== want.length || value.shape.some((d, i) => d !== want[i])) {
        throw new ModelFormatError(
          `${prefix}${key} has shape ${shapeText(value.shape)}, expected ${channels < 1 ? '[nc, C]' : shapeText(want)} (nc=${nc} from mlp_0.0.weight)`,
          { file: source },
        );
      }
      const values = float32Of('PatchSampleF', prefix + key, value, source);
      if (values.length !== numel(want)) {
        throw new ModelFormatError(`${prefix}${key} holds ${values.length} values, its shape needs ${numel(want)}`, { file: source });
      }
      return values;
    }) as [Float32Array, Float32Array, Float32Array, Float32Array];
    heads.push({ channels, nc, data });
  }
  return heads;
}

function checkedSeed(seed: number | undefined): number {
  if (seed === undefined) return Math.floor(Math.random() * 2 ** 32);
  if (!Number.isInteger(seed) || seed < 0 || seed >= 2 ** 32) {
    throw new UsageError(`PatchSampleF: seed must be an integer in [0, 2^32), got ${String(seed)}`);
  }
  return seed;
}

class TfPatchSampleF implements PatchSampleF {
  readonly seed: number;
  readonly variables = new Map<string, Variable>();
  private ncValue: number;
  private readonly ncGiven: boolean;
  private readonly initGain: number;
  private readonly heads: Head[] = [];
  private rng: SeededRng;
  private disposed = false;

  constructor(
    private readonly tf: Tf,
    options: PatchSampleFOptions,
  ) {
    const nc = options.nc ?? DEFAULT_PATCH_NC;
    if (!Number.isInteger(nc) || nc < 1) throw new UsageError(`PatchSampleF: nc must be a positive integer, got ${String(nc)}`);
    const gain = options.initGain ?? 0.02;
    if (!(gain > 0) || !Number.isFinite(gain))
      throw new UsageError(`PatchSampleF: initGain must be a positive number, got ${String(gain)}`);
    this.ncValue = nc;
    this.ncGiven = options.nc !== undefined;
    this.initGain = gain;
    this.seed = checkedSeed(options.seed);
    this.rng = SeededRng.fromSeed(this.seed);
  }

  get nc(): number {
    return this.ncValue;
  }

  headChannels(): number[] {
    return this.heads.map((h) => h.channels);
  }

  private checkUsable(): void {
    if (this.disposed) throw new UsageError('PatchSampleF: used after dispose()');
  }

  /** Registers one head's variables under its state-dict keys; values default to the reference's init. */
  private addHead(channels: number, values?: HeadTensors['data']): void {
    const tf = this.tf;
    const layer = this.heads.length;
    const nc = this.ncValue;
    const keys = headKeys(layer);
    const shapes: Array<[number, number] | [number]> = [[nc, channels], [nc], [nc, nc], [nc]];
    const made = keys.map((key, j) => {
      const shape = shapes[j] as number[];
      const initial = tf.tidy(() => {
        if (values !== undefined) return tf.tensor(values[j] as Float32Array, shape, 'float32');
        if (shape.length === 1) return tf.zeros(shape);
        // SPEC §4: xavier_normal_(gain) weights (fan_in + fan_out = in + out for a Linear), zero biases. Each
        // weight's seed is a hash of (seed, layer, j), independent of the patch-id stream.
        const std = this.initGain * Math.sqrt(2 / ((shape[0] as number) + (shape[1] as number)));
        const tensorSeed = splitmix32((this.seed ^ splitmix32(0x5a17 + 4 * layer + j)) >>> 0);
        return tf.randomNormal(shape, 0, std, 'float32', tensorSeed);
      });
      // Heads may be built inside a caller's tidy (the first `sample`); variables are not swept by it.
      const variable = tf.variable(initial, true, undefined, 'float32');
      initial.dispose();
      this.variables.set(key, variable);
      return variable;
    });
    this.heads.push({ channels, w0: made[0] as Variable, b0: made[1] as Variable, w2: made[2] as Variable, b2: made[3] as Variable });
  }

  private checkFeats(feats: readonly Tensor4D[]): void {
    if (feats.length === 0) throw new UsageError('PatchSampleF.sample: no feature maps given');
    feats.forEach((f, l) => {
      if (f.rank !== 4) throw new InputError(`PatchSampleF.sample: feature map ${l} must be NCHW rank 4, got shape ${shapeText(f.shape)}`);
      if (f.dtype !== 'float32') throw new InputError(`PatchSampleF.sample: feature map ${l} must be float32, got ${f.dtype}`);
      if (f.shape.some((d) => d < 1)) throw new InputError(`PatchSampleF.sample: feature map ${l} is empty, shape ${shapeText(f.shape)}`);
    });
    if (this.heads.length === 0) return;
    if (feats.length !== this.heads.length) {
      throw new InputError(`PatchSampleF.sample: got ${feats.length} feature maps, the heads were built for ${this.heads.length} layers`);
    }
    feats.forEach((f, l) => {
      const want = (this.heads[l] as Head).channels;
      if (f.shape[1] !== want) {
        throw new InputError(`PatchSampleF.sample: feature map ${l} has ${f.shape[1]} channels, head mlp_${l} takes ${want} (NCHW)`);
      }
    });
  }

  private idsFor(feat: Tensor4D, layer: number, numPatches: number, given: Int32Array | undefined, perSample: boolean): Int32Array {
    const [b, , h, w] = feat.shape;
    const hw = h * w;
    if (given === undefined) {
      const count = Math.min(numPatches, hw);
      if (!perSample) return truncatedPermutation(this.rng, hw, count);
      const ids = new Int32Array(b * count);
      for (let s = 0; s < b; s++) ids.set(truncatedPermutation(this.rng, hw, count), s * count);
      return ids;
    }
    if (!(given instanceof Int32Array) || given.length === 0) {
      throw new InputError(`PatchSampleF.sample: patchIds[${layer}] must be a non-empty Int32Array`);
    }
    if (perSample && given.length % b !== 0) {
      throw new InputError(
        `PatchSampleF.sample: patchIds[${layer}] holds ${given.length} ids, not a multiple of the batch ${b} (perSampleIds)`,
      );
    }
    for (let i = 0; i < given.length; i++) {
      const id = given[i] as number;
      if (id < 0 || id >= hw) {
        throw new InputError(`PatchSampleF.sample: patchIds[${layer}][${i}] = ${id} is outside the ${h}x${w} feature map (0..${hw - 1})`);
      }
    }
    return given;
  }

  sample(
    feats: readonly Tensor4D[],
    numPatches: number = DEFAULT_NUM_PATCHES,
    patchIds?: readonly Int32Array[],
    options: PatchSampleCallOptions = {},
  ): PatchSampleResult {
    this.checkUsable();
    if (!Number.isInteger(numPatches) || numPatches < 1) {
      throw new UsageError(`PatchSampleF.sample: numPatches must be a positive integer, got ${String(numPatches)}`);
    }
    if (patchIds !== undefined && patchIds.length !== feats.length) {
      throw new InputError(`PatchSampleF.sample: ${patchIds.length} patch id arrays for ${feats.length} feature maps`);
    }
    this.checkFeats(feats);
    const perSample = options.perSampleIds === true;
    // Ids first, so that a bad id array fails before any head or tensor is made.
    const ids = feats.map((feat, l) => this.idsFor(feat, l, numPatches, patchIds?.[l], perSample));
    if (this.heads.length === 0) for (const feat of feats) this.addHead(feat.shape[1]);

    const tf = this.tf;
    const features = feats.map((feat, l) =>
      tf.tidy(() => {
        const head = this.heads[l] as Head;
        const rows = gatherPatchRows(tf, feat, ids[l] as Int32Array, perSample);
        // Unfused on purpose: the wasm backend's _FusedMatMul with transposeB returns wrong values whenever the
        // weight is not square (tfjs 4.22; caught by patch-sample.parity.test.ts), and the heads are tiny.
        const hidden = tf.relu(tf.add(tf.matMul(rows, head.w0, false, true), head.b0));
        const out = tf.add(tf.matMul(hidden, head.w2, false, true), head.b2);
        const norm = tf.sqrt(tf.sum(tf.square(out), 1, true));
        return tf.div(out, tf.add(norm, PATCH_NORM_EPS)) as Tensor2D;
      }),
    );
    return { features, patchIds: ids };
  }

  rngState(): PatchIdRngState {
    return { algorithm: 'xoshiro128**', state: this.rng.state() };
  }

  setRngState(state: PatchIdRngState): void {
    const words = state?.state;
    const valid =
      state?.algorithm === 'xoshiro128**' &&
      Array.isArray(words) &&
      words.length === 4 &&
      words.every((v) => Number.isInteger(v) && v >= 0 && v < 2 ** 32) &&
      words.some((v) => v !== 0);
    if (!valid) {
      throw new UsageError(
        `PatchSampleF.setRngState: expected { algorithm: 'xoshiro128**', state: four uint32 words, not all 0 }, got ${JSON.stringify(state)}`,
      );
    }
    this.rng = new SeededRng(words);
  }

  loadState(stateDict: StateDictLike, options: StateDictReadOptions = {}): void {
    this.checkUsable();
    const source = options.source ?? 'state dict';
    const loaded = headTensorsOf(stateDict, options);
    const nc = (loaded[0] as HeadTensors).nc;
    if (this.heads.length === 0) {
      if (this.ncGiven && nc !== this.ncValue) {
        throw new ModelFormatError(`PatchSampleF state dict has nc=${nc}, this PatchSampleF was created with nc=${this.ncValue}`, {
          file: source,
        });
      }
      this.ncValue = nc;
      for (const head of loaded) this.addHead(head.channels, head.data);
      return;
    }
    const own = this.headChannels();
    if (nc !== this.ncValue || loaded.length !== own.length || loaded.some((h, l) => h.channels !== own[l])) {
      throw new ModelFormatError(
        `PatchSampleF state dict has heads C=[${loaded.map((h) => h.channels).join(',')}] → nc=${nc}, ` +
          `the built heads are C=[${own.join(',')}] → nc=${this.ncValue}`,
        { file: source },
      );
    }
    const tf = this.tf;
    loaded.forEach((head, l) => {
      const keys = headKeys(l);
      keys.forEach((key, j) => {
        const variable = this.variables.get(key) as Variable;
        tf.tidy(() => variable.assign(tf.tensor(head.data[j] as Float32Array, variable.shape, 'float32')));
      });
    });
  }

  async stateDict(): Promise<Map<string, Float32TensorData>> {
    this.checkUsable();
    const out = new Map<string, Float32TensorData>();
    for (const [key, variable] of this.variables) {
      out.set(key, { shape: variable.shape, data: ((await variable.data()) as Float32Array).slice() });
    }
    return out;
  }

  numParameters(): number {
    return countParameters(this.variables);
  }

  dispose(): void {
    if (this.disposed) return;
    for (const v of this.variables.values()) v.dispose();
    this.variables.clear();
    this.heads.length = 0;
    this.disposed = true;
  }
}

/**
 * Builds an (empty) PatchSampleF on the given TF.js namespace; its heads appear on the first `sample` or
 * `loadState`.
 *
 * Example:
 *   const netF = createPatchSampleF(tf, { nc: 256, seed: 7 });
 *   const { features: q, patchIds } = netF.sample(netG.encode(fakeB), 256);
 *   const { features: k } = netF.sample(netG.encode(realA), 256, patchIds); // same positions
 */
export function createPatchSampleF(tf: Tf, options: PatchSampleFOptions = {}): PatchSampleF {
  return new TfPatchSampleF(tf, options);
}
