import { promises as fsp } from 'node:fs';
import * as path from 'node:path';

import { decodeImage, imageToTensor } from '@scenimefy/io';

import {
  SYNTHETIC_INK,
  SYNTHETIC_PALETTE,
  syntheticAnime,
  syntheticPair,
  syntheticPhoto,
  syntheticSceneSeed,
  writeSyntheticDataset,
} from './synthetic-domains';
import { withTempDir } from './temp-dir';

const key = (rgb: ArrayLike<number>, i: number): string => `${rgb[3 * i]},${rgb[3 * i + 1]},${rgb[3 * i + 2]}`;

describe('syntheticPair', () => {
  it('is deterministic and differs between seeds', () => {
    const a = syntheticPair(7, 32);
    const same = (u: Uint8Array, v: Uint8Array): boolean => Buffer.from(u).equals(Buffer.from(v));
    const b = syntheticPair(7, 32);
    expect([same(b.photo.data, a.photo.data), same(b.anime.data, a.anime.data)]).toEqual([true, true]);
    expect(same(syntheticPair(8, 32).photo.data, a.photo.data)).toBe(false);
  });

  it('renders the anime frame with palette colours and ink only, ink exactly on region boundaries', () => {
    for (const seed of [0, 1, 2, 3]) {
      const { anime, scene } = syntheticPair(seed, 32);
      const allowed = new Set([...SYNTHETIC_PALETTE, SYNTHETIC_INK].map((c) => c.join(',')));
      const inkKey = SYNTHETIC_INK.join(',');
      const s = scene.size;
      let inkCount = 0;
      const bad: string[] = [];
      for (let i = 0; i < s * s; i++) {
        const x = i % s;
        const y = Math.floor(i / s);
        const l = scene.labels[i]!;
        const boundary = [
          [x + 1, y],
          [x - 1, y],
          [x, y + 1],
          [x, y - 1],
        ].some(([u, v]) => u! >= 0 && v! >= 0 && u! < s && v! < s && scene.labels[v! * s + u!] !== l);
        const got = key(anime.data, i);
        const want = boundary ? inkKey : (SYNTHETIC_PALETTE[scene.regionColours[l]!] as readonly number[]).join(',');
        if (!allowed.has(got) || got !== want) bad.push(`seed ${seed} (${x}, ${y}): ${got}, want ${want}`);
        if (got === inkKey) inkCount++;
      }
      expect(bad.slice(0, 5)).toEqual([]);
      // Every scene has a horizon and at least three ellipses, so there is ink but not everywhere.
      expect(inkCount).toBeGreaterThan(s);
      expect(inkCount).toBeLessThan((s * s) / 2);
    }
  });

  it('gives the photo texture and shading the anime frame lacks', () => {
    // Mean |pixel − right neighbour| inside regions: 0 for the flat anime frame, the noise level for the photo.
    for (const seed of [0, 5]) {
      const { photo, anime, scene } = syntheticPair(seed, 48);
      const s = scene.size;
      let photoRough = 0;
      let animeRough = 0;
      let n = 0;
      let off = 0;
      for (let y = 0; y < s; y++) {
        for (let x = 0; x + 1 < s; x++) {
          const i = y * s + x;
          // Away from every boundary by 2 px, past the photo's soft edges and the anime's ink.
          let inside = true;
          for (let v = Math.max(0, y - 2); v <= Math.min(s - 1, y + 2); v++) {
            for (let u = Math.max(0, x - 2); u <= Math.min(s - 1, x + 3); u++) inside &&= scene.labels[v * s + u] === scene.labels[i];
          }
          if (!inside) continue;
          for (let c = 0; c < 3; c++) {
            photoRough += Math.abs(photo.data[3 * i + c]! - photo.data[3 * i + 3 + c]!);
            animeRough += Math.abs(anime.data[3 * i + c]! - anime.data[3 * i + 3 + c]!);
            off += Math.abs(photo.data[3 * i + c]! - anime.data[3 * i + c]!);
          }
          n += 3;
        }
      }
      expect(animeRough).toBe(0);
      // Uniform noise of ±18 levels: E|u − v| = 12 levels; the shading gradient adds a little.
      expect(photoRough / n).toBeGreaterThan(8);
      expect(photoRough / n).toBeLessThan(18);
      // Colour cast and shading put the photo's regions off the palette colour.
      expect(off / n).toBeGreaterThan(10);
    }
  });

  it('returns [1, 3, S, S] float32 tensors in [-1, 1] equal to imageToTensor of the images', () => {
    const photo = syntheticPhoto(3, 16);
    const anime = syntheticAnime(3, 16);
    const pair = syntheticPair(3, 16);
    expect(photo.shape).toEqual([1, 3, 16, 16]);
    expect(photo.data).toEqual(imageToTensor(pair.photo).data);
    expect(anime.data).toEqual(imageToTensor(pair.anime).data);
    expect(Math.min(...photo.data)).toBeGreaterThanOrEqual(-1);
    expect(Math.max(...photo.data)).toBeLessThanOrEqual(1);
  });

  it('refuses bad sizes and seeds', () => {
    expect(() => syntheticPair(1, 4)).toThrow(/size must be an integer from 8/);
    expect(() => syntheticPair(1, 31.5)).toThrow(/size/);
    expect(() => syntheticPair(-1, 32)).toThrow(/seed must be an integer/);
  });
});

describe('writeSyntheticDataset', () => {
  it('writes the reference layouts: unpaired A/B of different scenes, paired A/B of the same scenes', async () => {
    await withTempDir(async (dir) => {
      const ds = await writeSyntheticDataset(dir, { count: 24, size: 32, seed: 5 });
      expect(ds.unpairedRoot).toBe(path.join(dir, 'unpaired'));
      expect(ds.pairedRoot).toBe(path.join(dir, 'paired'));
      const names = Array.from({ length: 24 }, (_, i) => `${String(i).padStart(4, '0')}.png`);
      for (const folder of ['unpaired/trainA', 'unpaired/trainB', 'paired/trainA', 'paired/trainB']) {
        expect((await fsp.readdir(path.join(dir, folder))).sort()).toEqual(names);
      }
      const seedOf = (rel: string): number => {
        const s = ds.sceneSeeds.get(rel);
        if (s === undefined) throw new Error(`no scene seed for ${rel}`);
        return s;
      };
      const unpairedA = names.map((n) => seedOf(path.join('unpaired', 'trainA', n)));
      const unpairedB = names.map((n) => seedOf(path.join('unpaired', 'trainB', n)));
      const paired = names.map((n) => seedOf(path.join('paired', 'trainA', n)));
      expect(names.map((n) => seedOf(path.join('paired', 'trainB', n)))).toEqual(paired);
      expect(new Set([...unpairedA, ...unpairedB, ...paired]).size).toBe(3 * 24);
      expect(unpairedA[3]).toBe(syntheticSceneSeed(5, 0, 3));

      // The PNGs decode to exactly the generators' tensors (8-bit rendering, lossless PNG).
      const check = async (rel: string, want: Float32Array): Promise<void> => {
        const img = await decodeImage(path.join(dir, rel));
        expect(imageToTensor(img).data).toEqual(want);
      };
      await check(path.join('unpaired', 'trainA', '0003.png'), syntheticPhoto(unpairedA[3]!, 32).data);
      await check(path.join('unpaired', 'trainB', '0004.png'), syntheticAnime(unpairedB[4]!, 32).data);
      await check(path.join('paired', 'trainA', '0005.png'), syntheticPhoto(paired[5]!, 32).data);
      await check(path.join('paired', 'trainB', '0005.png'), syntheticAnime(paired[5]!, 32).data);
    }, 'synthetic');
  });

  it('refuses a bad count', async () => {
    await expect(writeSyntheticDataset('/nonexistent-never-created', { count: 0, size: 32 })).rejects.toThrow(/count must be an integer/);
  });
});
