/**
 * A tiny synthetic photo ↔ anime pair of domains for training tests. A *scene* (from a seed) is a sky/ground
 * split and a few overlapping ellipses, each region given one colour of a small palette. The two renderings:
 *
 * - photo: soft region edges, a colour cast and a smooth shading gradient per region, and a fine noise texture;
 * - anime: the same regions as flat palette colours, no texture, with a dark one-pixel ink outline wherever a
 *   pixel's 4-neighbour belongs to another region.
 *
 * So translating photo → anime means: drop the texture, flatten the shading onto the palette, and ink the
 * boundaries, which is the kind of change the semi_cut losses are meant to learn. Everything is rendered in
 * 8-bit RGB first and converted with io's `imageToTensor`, so a tensor and its PNG file hold the same values.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';

import { UsageError, imageToTensor, writeImage } from '@scenimefy/io';
import type { ImageTensor, RgbImage } from '@scenimefy/io';

import { seededUniform } from './seeded-data';

/** The anime palette, 8-bit sRGB: sky, cloud, grass, forest, roof, blossom, sand, dusk. */
export const SYNTHETIC_PALETTE: readonly (readonly [number, number, number])[] = Object.freeze([
  [96, 170, 235],
  [236, 244, 250],
  [112, 196, 84],
  [38, 110, 72],
  [222, 110, 60],
  [240, 160, 190],
  [236, 210, 140],
  [120, 96, 170],
]);

/** The ink colour of the anime outlines, 8-bit sRGB. */
export const SYNTHETIC_INK: readonly [number, number, number] = Object.freeze([24, 20, 32]) as readonly [number, number, number];

export interface SyntheticScene {
  /** Region index of each pixel (row-major, `size × size`): 0 sky, 1 ground, 2… the ellipses in paint order. */
  readonly labels: Uint8Array;
  /** Palette index of each region. */
  readonly regionColours: readonly number[];
  readonly size: number;
}

export interface SyntheticPair {
  /** The textured rendering (8-bit RGB). */
  readonly photo: RgbImage;
  /** The flat, ink-outlined rendering of the same scene (8-bit RGB). */
  readonly anime: RgbImage;
  readonly scene: SyntheticScene;
}

/**
 * A 32-bit integer hash (hash-prospector's two-round 0x21f0aaad / 0x735a2d97 finaliser): nearby seeds (0, 1, 2, …)
 * give unrelated Park–Miller states, whose first draws would otherwise differ by only ~2e-5 per unit of seed.
 */
function mixedSeed(seed: number, stream: number): number {
  let z = (Math.imul(seed >>> 0, 0x9e3779b9) + Math.imul(stream + 1, 0x85ebca6b)) >>> 0;
  z = Math.imul(z ^ (z >>> 16), 0x21f0aaad) >>> 0;
  z = Math.imul(z ^ (z >>> 15), 0x735a2d97) >>> 0;
  z = (z ^ (z >>> 15)) >>> 0;
  // Park–Miller needs a state in [1, 2^31 − 2].
  return 1 + (z % 2147483646);
}

/** Reads values of a fixed seeded stream in order. */
function uniformStream(seed: number, stream: number, n: number): () => number {
  const values = seededUniform(mixedSeed(seed, stream), n, 0, 1);
  let next = 0;
  return () => {
    const v = values[next++];
    if (v === undefined) throw new Error(`synthetic-domains: stream ${stream} of seed ${seed} ran out after ${n} draws`);
    return v;
  };
}

interface Ellipse {
  cx: number;
  cy: number;
  rx: number;
  ry: number;
  cos: number;
  sin: number;
}

interface Region {
  /** Signed membership: > 0 inside, 0 on the edge, in pixels (roughly). */
  membership: (x: number, y: number) => number;
  colour: number;
  /** Photo only: a colour cast per channel, and a shading gradient (levels per pixel along x and y, all channels). */
  cast: [number, number, number];
  shadeX: number;
  shadeY: number;
}

function checkedSize(size: number, what: string): void {
  if (!Number.isInteger(size) || size < 8 || size > 1024)
    throw new UsageError(`${what}: size must be an integer from 8 to 1024, got ${String(size)}`);
}

function checkedSeed(seed: number, what: string): void {
  if (!Number.isInteger(seed) || seed < 0 || seed >= 2 ** 32)
    throw new UsageError(`${what}: seed must be an integer in [0, 2^32), got ${String(seed)}`);
}

function regionsOf(seed: number, size: number): Region[] {
  const u = uniformStream(seed, 0, 128);
  const pick = (): number => Math.min(SYNTHETIC_PALETTE.length - 1, Math.floor(u() * SYNTHETIC_PALETTE.length));
  const photoLook = (): Pick<Region, 'cast' | 'shadeX' | 'shadeY'> => ({
    cast: [(u() - 0.5) * 50, (u() - 0.5) * 50, (u() - 0.5) * 50],
    shadeX: ((u() - 0.5) * 120) / size,
    shadeY: ((u() - 0.5) * 120) / size,
  });
  // Sky above a sloped horizon, ground below: both regions cover the image, the horizon decides which shows.
  const horizon = size * (0.35 + 0.3 * u());
  const slope = (u() - 0.5) * 0.6;
  const sky: Region = { membership: () => 1e9, colour: u() < 0.7 ? 0 : 7, ...photoLook() };
  const ground: Region = {
    membership: (x, y) => y - (horizon + slope * (x - size / 2)),
    colour: [2, 3, 6][Math.min(2, Math.floor(u() * 3))] as number,
    ...photoLook(),
  };
  const regions = [sky, ground];
  const blobs = 3 + Math.floor(u() * 3);
  for (let k = 0; k < blobs; k++) {
    const angle = u() * Math.PI;
    const e: Ellipse = {
      cx: size * (0.1 + 0.8 * u()),
      cy: size * (0.1 + 0.8 * u()),
      rx: size * (0.1 + 0.22 * u()),
      ry: size * (0.1 + 0.22 * u()),
      cos: Math.cos(angle),
      sin: Math.sin(angle),
    };
    const scale = Math.min(e.rx, e.ry);
    regions.push({
      // (1 − normalised radius) times the short radius: about the distance to the edge in pixels near it.
      membership: (x, y) => {
        const dx = x - e.cx;
        const dy = y - e.cy;
        const a = (dx * e.cos + dy * e.sin) / e.rx;
        const b = (-dx * e.sin + dy * e.cos) / e.ry;
        return (1 - Math.sqrt(a * a + b * b)) * scale;
      },
      colour: pick(),
      ...photoLook(),
    });
  }
  return regions;
}

const clampByte = (v: number): number => (v <= 0 ? 0 : v >= 255 ? 255 : Math.round(v));

/**
 * The photo and anime renderings of scene `seed` at `size × size` pixels. Pure: the same arguments give the same
 * bytes on every machine.
 *
 * Example: const { photo, anime } = syntheticPair(3, 32); // two 32×32 RgbImages of one scene
 */
export function syntheticPair(seed: number, size: number): SyntheticPair {
  checkedSeed(seed, 'syntheticPair');
  checkedSize(size, 'syntheticPair');
  const regions = regionsOf(seed, size);
  const plane = size * size;
  const labels = new Uint8Array(plane);
  const photo = new Uint8Array(plane * 3);
  const anime = new Uint8Array(plane * 3);
  const noise = uniformStream(seed, 1, plane * 3);
  // Region edges in the photo blend over about ±1 px, like a lens; the anime's are hard.
  const softness = 0.6;
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const px = x + 0.5;
      const py = y + 0.5;
      const i = y * size + x;
      let label = 0;
      let r0 = 0;
      let g0 = 0;
      let b0 = 0;
      for (let r = 0; r < regions.length; r++) {
        const region = regions[r] as Region;
        const m = region.membership(px, py);
        if (m > 0) label = r;
        const alpha = 1 / (1 + Math.exp(-m / softness));
        const base = SYNTHETIC_PALETTE[region.colour] as readonly [number, number, number];
        const shade = region.shadeX * (px - size / 2) + region.shadeY * (py - size / 2);
        r0 += alpha * (base[0] + region.cast[0] + shade - r0);
        g0 += alpha * (base[1] + region.cast[1] + shade - g0);
        b0 += alpha * (base[2] + region.cast[2] + shade - b0);
      }
      labels[i] = label;
      // Fine texture: independent per channel, ±18 levels, the part of the photo no anime frame has.
      photo[3 * i] = clampByte(r0 + (noise() - 0.5) * 36);
      photo[3 * i + 1] = clampByte(g0 + (noise() - 0.5) * 36);
      photo[3 * i + 2] = clampByte(b0 + (noise() - 0.5) * 36);
    }
  }
  const regionColours = regions.map((r) => r.colour);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const i = y * size + x;
      const label = labels[i] as number;
      const edge =
        (x + 1 < size && labels[i + 1] !== label) ||
        (x > 0 && labels[i - 1] !== label) ||
        (y + 1 < size && labels[i + size] !== label) ||
        (y > 0 && labels[i - size] !== label);
      // Both sides of a boundary are inked, so lines are 2 px wide and still visible at 32 px.
      const colour = edge ? SYNTHETIC_INK : (SYNTHETIC_PALETTE[regionColours[label] as number] as readonly number[]);
      for (let c = 0; c < 3; c++) anime[3 * i + c] = colour[c] as number;
    }
  }
  return {
    photo: { width: size, height: size, data: photo },
    anime: { width: size, height: size, data: anime },
    scene: { labels, regionColours, size },
  };
}

/** The photo of scene `seed` as a float32 NCHW tensor [1, 3, size, size] in [−1, 1]. */
export function syntheticPhoto(seed: number, size: number): ImageTensor {
  return imageToTensor(syntheticPair(seed, size).photo);
}

/** The anime rendering of scene `seed` as a float32 NCHW tensor [1, 3, size, size] in [−1, 1]. */
export function syntheticAnime(seed: number, size: number): ImageTensor {
  return imageToTensor(syntheticPair(seed, size).anime);
}

export interface SyntheticDatasetOptions {
  /** Images per folder. */
  readonly count: number;
  /** Side of the square images (≥ 8). */
  readonly size: number;
  /** Base seed; the scenes of one dataset never repeat across its folders. Default 0. */
  readonly seed?: number;
}

export interface SyntheticDataset {
  /** `<root>/unpaired`: trainA photos, trainB anime frames of other scenes (the reference's `--dataroot`). */
  readonly unpairedRoot: string;
  /** `<root>/paired`: trainA photos and trainB their anime renderings, same file names (`--paired_dataroot`). */
  readonly pairedRoot: string;
  /** The scene seed behind each written file, by path relative to `root`. */
  readonly sceneSeeds: ReadonlyMap<string, number>;
}

/** The scene seed of image `index` of folder `folder` (0 unpaired A, 1 unpaired B, 2 paired) of a dataset. */
export function syntheticSceneSeed(datasetSeed: number, folder: 0 | 1 | 2, index: number): number {
  return mixedSeed(datasetSeed, 1000 + folder * 1_000_003 + index) >>> 0;
}

/**
 * Writes a synthetic dataset in the reference layouts (SPEC §7) under `root` (created if missing):
 * `unpaired/trainA` (photos), `unpaired/trainB` (anime renderings of *different* scenes, so the unpaired set is
 * really unpaired), `paired/trainA` + `paired/trainB` (photo and anime of the same scene under the same name).
 * Files are PNG, named `0000.png`, `0001.png`, …
 *
 * Example: const { unpairedRoot, pairedRoot } = await writeSyntheticDataset(dir, { count: 12, size: 32, seed: 1 });
 */
export async function writeSyntheticDataset(root: string, options: SyntheticDatasetOptions): Promise<SyntheticDataset> {
  const { count, size } = options;
  const seed = options.seed ?? 0;
  if (!Number.isInteger(count) || count < 1 || count > 9999) {
    throw new UsageError(`writeSyntheticDataset: count must be an integer from 1 to 9999, got ${String(count)}`);
  }
  checkedSize(size, 'writeSyntheticDataset');
  checkedSeed(seed, 'writeSyntheticDataset');
  const unpairedRoot = path.join(root, 'unpaired');
  const pairedRoot = path.join(root, 'paired');
  const folders = [
    path.join(unpairedRoot, 'trainA'),
    path.join(unpairedRoot, 'trainB'),
    path.join(pairedRoot, 'trainA'),
    path.join(pairedRoot, 'trainB'),
  ];
  await Promise.all(folders.map((f) => fsp.mkdir(f, { recursive: true })));
  const sceneSeeds = new Map<string, number>();
  const writes: Promise<void>[] = [];
  const put = (folder: string, name: string, img: RgbImage, sceneSeed: number): void => {
    const file = path.join(folder, name);
    sceneSeeds.set(path.relative(root, file), sceneSeed);
    writes.push(writeImage(file, img));
  };
  for (let i = 0; i < count; i++) {
    const name = `${String(i).padStart(4, '0')}.png`;
    const a = syntheticSceneSeed(seed, 0, i);
    const b = syntheticSceneSeed(seed, 1, i);
    const p = syntheticSceneSeed(seed, 2, i);
    put(folders[0] as string, name, syntheticPair(a, size).photo, a);
    put(folders[1] as string, name, syntheticPair(b, size).anime, b);
    const pair = syntheticPair(p, size);
    put(folders[2] as string, name, pair.photo, p);
    put(folders[3] as string, name, pair.anime, p);
  }
  await Promise.all(writes);
  return { unpairedRoot, pairedRoot, sceneSeeds };
}
