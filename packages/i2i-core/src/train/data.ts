/**
 * The training data loaders of the reference (SPEC §7): the unaligned photo/anime dataset and the aligned
 * pseudo-pair dataset, with `get_transform`'s resize → random crop → make_power_2 → flip → [-1, 1] tensor.
 *
 * Every random draw (epoch shuffle, the random B image, crop offsets, flips) is made synchronously, in sample
 * order, from one seeded generator *before* the sample's images are decoded. That keeps the stream identical
 * whatever the prefetch depth and lets decoding run concurrently in sharp's thread pool while the caller trains.
 */
import * as path from 'node:path';

import {
  InputError,
  UsageError,
  decodeImage,
  imageToTensor,
  listReferenceImages,
  readDatasetManifest,
  referenceResizeTarget,
  resizeImage,
} from '@scenimefy/io';
import type { RgbImage } from '@scenimefy/io';

import { SeededRng, isRngWords } from '../seeded-rng';
import type { RngWords } from '../seeded-rng';

/** `--load_size` / `--crop_size` of the reference (both 256). */
export const DEFAULT_LOAD_SIZE = 256;
export const DEFAULT_CROP_SIZE = 256;
/** Seed used when none is given, so that an unseeded run is still reproducible. */
export const DEFAULT_DATA_SEED = 0;

export interface TransformOptions {
  /** Side of the square bicubic resize, aspect ratio not kept (default 256). */
  loadSize?: number;
  /** Side of the square random crop, ≤ loadSize (default 256: no crop). */
  cropSize?: number;
}

export interface DatasetLoadOptions extends TransformOptions {
  /** Seed of the dataset's generator (default DEFAULT_DATA_SEED). */
  seed?: number;
  /** Passed to decodeImage; its default limit applies otherwise. */
  maxPixels?: number;
  /** Samples decoded ahead of the caller (default 0: decode on demand). Same as calling `prefetch(n)`. */
  prefetch?: number;
}

export interface UnalignedDatasetOptions extends DatasetLoadOptions {
  /** The dataset folder holding `${phase}A/` and `${phase}B/`. */
  root: string;
  /** Default 'train'. */
  phase?: string;
  /** `--no_flip`: no random horizontal flip (default false: A and B each flipped with p = 0.5). */
  noFlip?: boolean;
}

/** Either a folder in the reference layout (A[i] ↔ B[i] by sorted name) or a `scenimefy-dataset` manifest of kind 'paired'. */
export type AlignedDatasetOptions = DatasetLoadOptions & ({ root: string; phase?: string } | { manifest: string });

/** One training sample: two float32 NCHW tensors in [-1, 1] of the same shape. */
export interface DataSample {
  a: Float32Array;
  b: Float32Array;
  shape: [1, 3, number, number];
  aPath: string;
  bPath: string;
  /** The epoch (0-based) and the step inside it (0-based) this sample was drawn at. */
  epoch: number;
  step: number;
}

/**
 * Where a dataset's stream stands after the last sample handed to the caller: JSON-safe, for a run's rng.json.
 * `epochStart` is the generator state the current epoch's shuffle was drawn from (null at an epoch boundary,
 * where the next shuffle is still to be drawn from `state`), so the permutation need not be stored.
 */
export interface DataRngState {
  readonly algorithm: 'xoshiro128**';
  /** Dataset length when the state was saved; restoring into a dataset of another length is refused. */
  readonly length: number;
  readonly epoch: number;
  readonly step: number;
  readonly epochStart: RngWords | null;
  readonly state: RngWords;
}

/** The random choices for one sample, all made before decoding. */
interface SamplePlan {
  aFile: string;
  bFile: string;
  aPath: string;
  bPath: string;
  aCrop: CropBox;
  bCrop: CropBox;
  aFlip: boolean;
  bFlip: boolean;
  epoch: number;
  step: number;
}

interface CropBox {
  top: number;
  left: number;
}

interface Pending {
  result: Promise<DataSample>;
  stateAfter: DataRngState;
}

function checkSize(value: number | undefined, fallback: number, name: string): number {
  const v = value ?? fallback;
  if (!Number.isInteger(v) || v < 1) throw new UsageError(`${name} must be a positive integer, got ${v}`);
  return v;
}

function checkPrefetch(n: number): number {
  if (!Number.isInteger(n) || n < 0) throw new UsageError(`prefetch depth must be a non-negative integer, got ${n}`);
  return n;
}

/** The rows top..top+size-1 and columns left..left+size-1 of an HWC RGB image. */
function croppedImage(img: RgbImage, top: number, left: number, size: number): RgbImage {
  if (top === 0 && left === 0 && size === img.width && size === img.height) return img;
  const out = new Uint8Array(size * size * 3);
  for (let y = 0; y < size; y++) {
    const from = ((top + y) * img.width + left) * 3;
    out.set(img.data.subarray(from, from + size * 3), y * size * 3);
  }
  return { width: size, height: size, data: out };
}

/** The image mirrored left to right (PIL FLIP_LEFT_RIGHT). */
function mirroredImage(img: RgbImage): RgbImage {
  const { width: w, height: h, data } = img;
  const out = new Uint8Array(data.length);
  for (let y = 0; y < h; y++) {
    const row = y * w * 3;
    for (let x = 0; x < w; x++) {
      const src = row + x * 3;
      const dst = row + (w - 1 - x) * 3;
      out[dst] = data[src]!;
      out[dst + 1] = data[src + 1]!;
      out[dst + 2] = data[src + 2]!;
    }
  }
  return { width: w, height: h, data: out };
}

/**
 * Shared machinery: the seeded cursor over shuffled epochs, planning ahead, decoding concurrently, and handing
 * samples out in order. Subclasses say how an index becomes a plan (which files, which random choices).
 */
abstract class ShuffledImageDataset implements AsyncIterable<DataSample> {
  readonly loadSize: number;
  readonly cropSize: number;
  /** Output side after make_power_2(base 4) of the crop. */
  readonly outputSize: number;

  private readonly rng: SeededRng;
  private readonly maxPixels: number | undefined;
  // Planning cursor: runs ahead of what the caller has received by the number of pending samples.
  private epoch = 0;
  private step = 0;
  private perm: Uint32Array | undefined;
  private epochStart: RngWords | null = null;
  private committed: DataRngState;
  private queue: Pending[] = [];
  private depth = 0;

  /** Samples per epoch. */
  readonly length: number;

  protected constructor(options: DatasetLoadOptions, length: number) {
    this.length = length;
    this.loadSize = checkSize(options.loadSize, DEFAULT_LOAD_SIZE, 'loadSize');
    this.cropSize = checkSize(options.cropSize, DEFAULT_CROP_SIZE, 'cropSize');
    if (this.cropSize > this.loadSize) {
      throw new UsageError(`cropSize ${this.cropSize} exceeds loadSize ${this.loadSize}; the reference's RandomCrop would fail`);
    }
    // make_power_2 rounds a side of 1 or 2 pixels to 0, which the reference cannot resize to.
    if (this.cropSize < 3) throw new UsageError(`cropSize must be at least 3, got ${this.cropSize}`);
    this.outputSize = referenceResizeTarget(this.cropSize, this.cropSize).width;
    this.rng = SeededRng.fromSeed(options.seed ?? DEFAULT_DATA_SEED);
    this.maxPixels = options.maxPixels;
    this.committed = this.cursorState();
  }

  /** The files and random choices for dataset index `index`, drawing from `rng` in the reference's order. */
  protected abstract plannedSample(rng: SeededRng, index: number): Omit<SamplePlan, 'epoch' | 'step'>;

  /** The epoch (0-based) of the next sample the caller will receive. */
  get currentEpoch(): number {
    return this.committed.step === this.length ? this.committed.epoch + 1 : this.committed.epoch;
  }

  /** The generator and cursor after the last sample the caller received; restore with `setRngState`. */
  rngState(): DataRngState {
    return { ...this.committed, epochStart: this.committed.epochStart && [...this.committed.epochStart], state: [...this.committed.state] };
  }

  /**
   * Continue from a state saved by `rngState` (this instance's or another over the same files): the next samples
   * are those that followed when the state was saved. Samples already decoded ahead are discarded.
   */
  setRngState(state: DataRngState): void {
    const valid =
      state?.algorithm === 'xoshiro128**' &&
      state.length === this.length &&
      Number.isSafeInteger(state.epoch) &&
      state.epoch >= 0 &&
      Number.isSafeInteger(state.step) &&
      state.step >= 0 &&
      state.step <= this.length &&
      isRngWords(state.state) &&
      (state.step === 0 || state.step === this.length
        ? state.epochStart === null || isRngWords(state.epochStart)
        : isRngWords(state.epochStart));
    if (!valid) {
      throw new UsageError(
        `setRngState: expected a DataRngState of a dataset of length ${this.length} ` +
          `({ algorithm: 'xoshiro128**', length, epoch, step ≤ length, epochStart, state }), got ${JSON.stringify(state)}`,
      );
    }
    this.discardQueue();
    this.epoch = state.epoch;
    this.step = state.step;
    this.perm = undefined;
    this.epochStart = null;
    if (state.step > 0 && state.step < this.length && state.epochStart !== null) {
      // Redraw the epoch's permutation from where it was drawn, then jump to the saved position in the stream.
      this.rng.setState(state.epochStart);
      this.perm = this.rng.permutation(this.length);
      this.epochStart = [...state.epochStart];
    }
    this.rng.setState(state.state);
    this.committed = this.cursorState();
  }

  /**
   * Keep `n` samples decoding ahead of the caller (0: decode on demand). Decoding runs in sharp's thread pool,
   * so a depth of 2–4 hides it behind a training step. Order and random draws do not depend on `n`.
   */
  prefetch(n: number): void {
    this.depth = checkPrefetch(n);
    this.fillQueue();
  }

  /**
   * The next sample in the dataset's order, epochs cycling without end (a new shuffle each epoch). An image that
   * cannot be decoded rejects with an InputError naming the file; the sample still counts as consumed, so
   * calling `next()` again moves on (skip) — or the caller stops.
   */
  async next(): Promise<DataSample> {
    if (this.queue.length === 0) this.queue.push(this.startNext());
    const head = this.queue.shift()!;
    this.committed = head.stateAfter;
    this.fillQueue();
    return head.result;
  }

  /** Endless: `for await (const s of dataset)` — break out when the run is done. */
  async *[Symbol.asyncIterator](): AsyncIterator<DataSample> {
    for (;;) yield await this.next();
  }

  /** Resolves once every sample decoded ahead has finished decoding, successfully or not. */
  async ready(): Promise<void> {
    await Promise.allSettled(this.queue.map((p) => p.result));
  }

  /** The next `count` samples, in order. */
  async take(count: number): Promise<DataSample[]> {
    const out: DataSample[] = [];
    for (let i = 0; i < count; i++) out.push(await this.next());
    return out;
  }

  private cursorState(): DataRngState {
    return {
      algorithm: 'xoshiro128**',
      length: this.length,
      epoch: this.epoch,
      step: this.step,
      epochStart: this.epochStart && [...this.epochStart],
      state: this.rng.state(),
    };
  }

  private fillQueue(): void {
    while (this.queue.length < this.depth) this.queue.push(this.startNext());
  }

  private discardQueue(): void {
    this.queue = [];
  }

  /** Plans the next sample (all random draws, synchronously) and starts decoding it. */
  private startNext(): Pending {
    if (this.step === this.length || this.perm === undefined) {
      if (this.step === this.length) {
        this.epoch += 1;
        this.step = 0;
      }
      this.epochStart = this.rng.state();
      this.perm = this.rng.permutation(this.length);
    }
    const plan: SamplePlan = { ...this.plannedSample(this.rng, this.perm[this.step]!), epoch: this.epoch, step: this.step };
    this.step += 1;
    const result = this.loadedSample(plan);
    // A sample decoded ahead may be discarded unread (setRngState); its failure must not become an unhandled rejection.
    result.catch(() => undefined);
    return { result, stateAfter: this.cursorState() };
  }

  /** Random crop box for a square of side loadSize: torchvision draws nothing when the crop is the whole image. */
  protected drawnCrop(rng: SeededRng): CropBox {
    if (this.cropSize === this.loadSize) return { top: 0, left: 0 };
    const top = rng.below(this.loadSize - this.cropSize + 1);
    const left = rng.below(this.loadSize - this.cropSize + 1);
    return { top, left };
  }

  private async loadedSample(plan: SamplePlan): Promise<DataSample> {
    const [a, b] = await Promise.all([
      this.transformed(plan.aFile, plan.aCrop, plan.aFlip),
      this.transformed(plan.bFile, plan.bCrop, plan.bFlip),
    ]);
    return {
      a,
      b,
      shape: [1, 3, this.outputSize, this.outputSize],
      aPath: plan.aPath,
      bPath: plan.bPath,
      epoch: plan.epoch,
      step: plan.step,
    };
  }

  /** get_transform: resize (load, load) → crop → make_power_2 → optional flip → [-1, 1]. */
  private async transformed(file: string, crop: CropBox, flip: boolean): Promise<Float32Array> {
    const decoded = await decodeImage(file, {
      orientation: 'ignore',
      ...(this.maxPixels !== undefined ? { maxPixels: this.maxPixels } : {}),
    });
    let img = resizeImage(decoded, this.loadSize, this.loadSize);
    img = croppedImage(img, crop.top, crop.left, this.cropSize);
    if (this.outputSize !== this.cropSize) img = resizeImage(img, this.outputSize, this.outputSize);
    if (flip) img = mirroredImage(img);
    return imageToTensor(img).data;
  }
}

async function listedDomain(folder: string): Promise<string[]> {
  const names = await listReferenceImages(folder);
  if (names.length === 0) throw new InputError('no images (jpg/jpeg/png/ppm/bmp/tif/tiff) in this folder', { file: folder });
  return names;
}

/**
 * Both domains listed at once; a problem with A is reported before one with B whichever listing fails sooner,
 * so the error for a wrong dataset root does not depend on timing.
 */
async function listedDomains(dirA: string, dirB: string): Promise<[string[], string[]]> {
  const [a, b] = await Promise.allSettled([listedDomain(dirA), listedDomain(dirB)]);
  if (a.status === 'rejected') throw a.reason;
  if (b.status === 'rejected') throw b.reason;
  return [a.value, b.value];
}

/**
 * The reference's unaligned dataset: length max(|A|, |B|); index i takes A[i mod |A|] (indices in a fresh
 * shuffle each epoch) and a B drawn uniformly at random on each call; A and B each get their own crop and flip.
 *
 * Example: const ds = await UnalignedDataset.open({ root: 'datasets/unpaired_s2a', seed: 1 }); ds.prefetch(2);
 *          const { a, b, shape } = await ds.next();  // shape [1, 3, 256, 256]
 */
export class UnalignedDataset extends ShuffledImageDataset {
  readonly root: string;
  /** Relative POSIX paths under `${phase}A` / `${phase}B`, sorted as the reference sorts them. */
  readonly aPaths: readonly string[];
  readonly bPaths: readonly string[];
  readonly noFlip: boolean;
  private readonly dirA: string;
  private readonly dirB: string;

  private constructor(options: UnalignedDatasetOptions, dirA: string, dirB: string, aPaths: string[], bPaths: string[]) {
    super(options, Math.max(aPaths.length, bPaths.length));
    this.root = options.root;
    this.dirA = dirA;
    this.dirB = dirB;
    this.aPaths = aPaths;
    this.bPaths = bPaths;
    this.noFlip = options.noFlip ?? false;
    this.prefetch(options.prefetch ?? 0);
  }

  static async open(options: UnalignedDatasetOptions): Promise<UnalignedDataset> {
    const phase = options.phase ?? 'train';
    const dirA = path.join(options.root, `${phase}A`);
    const dirB = path.join(options.root, `${phase}B`);
    const [aPaths, bPaths] = await listedDomains(dirA, dirB);
    return new UnalignedDataset(options, dirA, dirB, aPaths, bPaths);
  }

  protected plannedSample(rng: SeededRng, index: number): Omit<SamplePlan, 'epoch' | 'step'> {
    const aRel = this.aPaths[index % this.aPaths.length]!;
    // Reference order: random.randint for B, then A's transform (crop, flip), then B's.
    const bRel = this.bPaths[rng.below(this.bPaths.length)]!;
    const aCrop = this.drawnCrop(rng);
    const aFlip = !this.noFlip && rng.uniform() < 0.5;
    const bCrop = this.drawnCrop(rng);
    const bFlip = !this.noFlip && rng.uniform() < 0.5;
    return {
      aFile: path.join(this.dirA, ...aRel.split('/')),
      bFile: path.join(this.dirB, ...bRel.split('/')),
      aPath: aRel,
      bPath: bRel,
      aCrop,
      bCrop,
      aFlip,
      bFlip,
    };
  }
}

/** One pair of an aligned dataset: file paths on disk and the names reported in samples. */
interface PairFiles {
  aFile: string;
  bFile: string;
  aPath: string;
  bPath: string;
}

/**
 * The pseudo-pair dataset: A[i] ↔ B[i], its own shuffle each epoch, cycling without end (one pair per unpaired
 * sample). Same transforms as the unaligned set but no flip (the reference passes a truthy string as no_flip)
 * and one random crop shared by both images (SPEC §11 #11; identical to the reference when load = crop).
 *
 * Example: const pairs = await AlignedDataset.open({ manifest: 'datasets/pair_s2a/manifest.json', seed: 1 });
 */
export class AlignedDataset extends ShuffledImageDataset {
  /** The dataset folder (the manifest's folder when opened from a manifest). */
  readonly root: string;
  readonly pairs: readonly PairFiles[];

  private constructor(options: AlignedDatasetOptions, root: string, pairs: PairFiles[]) {
    super(options, pairs.length);
    this.root = root;
    this.pairs = pairs;
    this.prefetch(options.prefetch ?? 0);
  }

  static async open(options: AlignedDatasetOptions): Promise<AlignedDataset> {
    if ('manifest' in options) {
      const manifest = await readDatasetManifest(options.manifest);
      if (manifest.kind !== 'paired') {
        throw new InputError(`a paired dataset is needed, this manifest is of kind '${manifest.kind}'`, { file: options.manifest });
      }
      const pairs = manifest.pairs ?? [];
      if (pairs.length === 0) throw new InputError('the paired dataset lists no pairs', { file: options.manifest });
      const root = path.dirname(options.manifest);
      const files = pairs.map((p) => ({
        aFile: path.join(root, ...p.a.split('/')),
        bFile: path.join(root, ...p.b.split('/')),
        aPath: p.a,
        bPath: p.b,
      }));
      return new AlignedDataset(options, root, files);
    }
    const phase = options.phase ?? 'train';
    const dirA = path.join(options.root, `${phase}A`);
    const dirB = path.join(options.root, `${phase}B`);
    const [aPaths, bPaths] = await listedDomains(dirA, dirB);
    const n = Math.min(aPaths.length, bPaths.length);
    for (let i = 0; i < n; i++) {
      if (aPaths[i] !== bPaths[i]) {
        throw new InputError(
          `paired folders must hold the same file names: after sorting, ${phase}A/${aPaths[i]!} is paired with ${phase}B/${bPaths[i]!}`,
          { file: options.root },
        );
      }
    }
    if (aPaths.length !== bPaths.length) {
      const [more, extra] = aPaths.length > bPaths.length ? [`${phase}A`, aPaths[n]!] : [`${phase}B`, bPaths[n]!];
      throw new InputError(
        `paired folders must hold the same file names: ${phase}A has ${aPaths.length} images, ${phase}B has ${bPaths.length}; ${more}/${extra} has no partner`,
        { file: options.root },
      );
    }
    const files = aPaths.map((rel) => ({
      aFile: path.join(dirA, ...rel.split('/')),
      bFile: path.join(dirB, ...rel.split('/')),
      aPath: rel,
      bPath: rel,
    }));
    return new AlignedDataset(options, options.root, files);
  }

  protected plannedSample(rng: SeededRng, index: number): Omit<SamplePlan, 'epoch' | 'step'> {
    const pair = this.pairs[index]!;
    const crop = this.drawnCrop(rng);
    return { ...pair, aCrop: crop, bCrop: crop, aFlip: false, bFlip: false };
  }
}
