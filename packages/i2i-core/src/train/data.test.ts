import { promises as fsp } from 'node:fs';
import * as path from 'node:path';

import {
  InputError,
  UsageError,
  buildDatasetManifest,
  decodeImage,
  imageToTensor,
  resizeImage,
  writeDatasetManifest,
  writeImage,
} from '@scenimefy/io';
import type { RgbImage } from '@scenimefy/io';
import { makeTempDir } from '@scenimefy/test-utils';
import type { TempDir } from '@scenimefy/test-utils';

import { AlignedDataset, UnalignedDataset } from './data';
import type { DataSample } from './data';
import { SeededRng } from '../seeded-rng';

const W = 40;
const H = 30;

/** Seeded noise: every file differs everywhere, so a crop offset, a flip or a file is identified by its pixels. */
function noiseImage(seed: number, width = W, height = H): RgbImage {
  const rng = SeededRng.fromSeed(seed);
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < data.length; i++) data[i] = rng.below(256);
  return { width, height, data };
}

async function writeNoise(file: string, seed: number, width = W, height = H): Promise<void> {
  await fsp.mkdir(path.dirname(file), { recursive: true });
  await writeImage(file, noiseImage(seed, width, height));
}

/** Test-side crop and flip of an HWC image (the reference's PIL crop and FLIP_LEFT_RIGHT). */
function cropFlip(img: RgbImage, top: number, left: number, size: number, flip: boolean): RgbImage {
  const data = new Uint8Array(size * size * 3);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const sx = flip ? left + size - 1 - x : left + x;
      for (let c = 0; c < 3; c++) data[(y * size + x) * 3 + c] = img.data[((top + y) * img.width + sx) * 3 + c]!;
    }
  }
  return { width: size, height: size, data };
}

interface Candidate {
  top: number;
  left: number;
  flip: boolean;
  tensor: Float32Array;
}

/** Every output the transform can give for `file`: each crop offset, flipped or not (flip after make_power_2). */
async function candidatesOf(file: string, load: number, crop: number, out: number): Promise<Candidate[]> {
  const resized = resizeImage(await decodeImage(file, { orientation: 'ignore' }), load, load);
  const found: Candidate[] = [];
  for (let top = 0; top <= load - crop; top++) {
    for (let left = 0; left <= load - crop; left++) {
      for (const flip of [false, true]) {
        let img = cropFlip(resized, top, left, crop, false);
        if (out !== crop) img = resizeImage(img, out, out);
        if (flip) img = cropFlip(img, 0, 0, out, true);
        found.push({ top, left, flip, tensor: imageToTensor(img).data });
      }
    }
  }
  return found;
}

function matchesOf(tensor: Float32Array, candidates: Candidate[]): Candidate[] {
  return candidates.filter((c) => c.tensor.length === tensor.length && c.tensor.every((v, i) => v === tensor[i]));
}

function summary(s: DataSample): string {
  return `${s.epoch}:${s.step}:${s.aPath}:${s.bPath}`;
}

function expectSameSamples(x: DataSample[], y: DataSample[]): void {
  expect(x.map(summary)).toEqual(y.map(summary));
  x.forEach((s, i) => {
    expect(s.a).toEqual(y[i]!.a);
    expect(s.b).toEqual(y[i]!.b);
  });
}

describe('UnalignedDataset', () => {
  let tmp: TempDir;
  beforeAll(async () => {
    tmp = await makeTempDir('unaligned');
    // |A| = 3, |B| = 5 (one in a subfolder, one upper-case extension): length 5.
    await Promise.all([
      writeNoise(path.join(tmp.dir, 'trainA', 'a0.png'), 100),
      writeNoise(path.join(tmp.dir, 'trainA', 'a1.png'), 101),
      writeNoise(path.join(tmp.dir, 'trainA', 'a2.PNG'), 102),
      writeNoise(path.join(tmp.dir, 'trainB', 'b0.png'), 200),
      writeNoise(path.join(tmp.dir, 'trainB', 'b1.png'), 201),
      writeNoise(path.join(tmp.dir, 'trainB', 'b2.png'), 202),
      writeNoise(path.join(tmp.dir, 'trainB', 'b3.png'), 203),
      writeNoise(path.join(tmp.dir, 'trainB', 'sub', 'b4.png'), 204),
      fsp.writeFile(path.join(tmp.dir, 'trainB', 'notes.txt'), 'not an image'),
    ]);
  });
  afterAll(() => tmp.cleanup());

  it('has length max(|A|, |B|) and takes A[i mod |A|] over a fresh shuffle each epoch', async () => {
    const ds = await UnalignedDataset.open({ root: tmp.dir, seed: 1, loadSize: 8, cropSize: 8 });
    expect(ds.length).toBe(5);
    expect(ds.aPaths).toEqual(['a0.png', 'a1.png', 'a2.PNG']);
    expect(ds.bPaths).toEqual(['b0.png', 'b1.png', 'b2.png', 'b3.png', 'sub/b4.png']);
    const orders: string[][] = [];
    for (let e = 0; e < 4; e++) {
      const epoch = await ds.take(5);
      expect(epoch.map((s) => [s.epoch, s.step])).toEqual([0, 1, 2, 3, 4].map((i) => [e, i]));
      // Indices 0..4 mod 3: a0 and a1 twice, a2 once, whatever the shuffle.
      expect(epoch.map((s) => s.aPath).sort()).toEqual(['a0.png', 'a0.png', 'a1.png', 'a1.png', 'a2.PNG']);
      orders.push(epoch.map((s) => s.aPath));
    }
    expect(new Set(orders.map((o) => o.join())).size).toBeGreaterThan(1);
    expect(ds.currentEpoch).toBe(4);
  });

  it('draws B uniformly on each call, independent of the A index', async () => {
    const ds = await UnalignedDataset.open({ root: tmp.dir, seed: 2, loadSize: 4, cropSize: 4 });
    const counts = new Map<string, number>();
    for (const s of await ds.take(100)) counts.set(s.bPath, (counts.get(s.bPath) ?? 0) + 1);
    expect([...counts.keys()].sort()).toEqual(ds.bPaths.slice().sort());
    // Binomial(100, 1/5): mean 20, sd 4; 5..40 is far outside chance for a uniform draw.
    for (const c of counts.values()) {
      expect(c).toBeGreaterThanOrEqual(5);
      expect(c).toBeLessThanOrEqual(40);
    }
  });

  it('resizes, crops and flips A and B independently, as get_transform does', async () => {
    const ds = await UnalignedDataset.open({ root: tmp.dir, seed: 3, loadSize: 12, cropSize: 9 });
    // make_power_2(base 4) of the 9×9 crop: round(9/4)·4 = 8.
    const cand = new Map<string, Candidate[]>();
    for (const rel of ds.aPaths) cand.set(`A/${rel}`, await candidatesOf(path.join(tmp.dir, 'trainA', rel), 12, 9, 8));
    for (const rel of ds.bPaths) cand.set(`B/${rel}`, await candidatesOf(path.join(tmp.dir, 'trainB', rel), 12, 9, 8));
    const offsets = new Set<string>();
    const flips = { a: new Set<boolean>(), b: new Set<boolean>() };
    let independent = false;
    for (const s of await ds.take(24)) {
      expect(s.shape).toEqual([1, 3, 8, 8]);
      const ma = matchesOf(s.a, cand.get(`A/${s.aPath}`)!);
      const mb = matchesOf(s.b, cand.get(`B/${s.bPath}`)!);
      expect(ma).toHaveLength(1);
      expect(mb).toHaveLength(1);
      offsets.add(`${ma[0]!.top},${ma[0]!.left}`);
      flips.a.add(ma[0]!.flip);
      flips.b.add(mb[0]!.flip);
      if (ma[0]!.flip !== mb[0]!.flip || ma[0]!.top !== mb[0]!.top || ma[0]!.left !== mb[0]!.left) independent = true;
    }
    expect(offsets.size).toBeGreaterThan(3);
    expect(flips.a).toEqual(new Set([false, true]));
    expect(flips.b).toEqual(new Set([false, true]));
    expect(independent).toBe(true);
  });

  it('with load = crop = 256-style sizes is a plain resize, and noFlip never flips', async () => {
    const ds = await UnalignedDataset.open({ root: tmp.dir, seed: 4, loadSize: 8, cropSize: 8, noFlip: true });
    for (const s of await ds.take(10)) {
      const expectedA = imageToTensor(resizeImage(await decodeImage(path.join(tmp.dir, 'trainA', s.aPath)), 8, 8)).data;
      const expectedB = imageToTensor(resizeImage(await decodeImage(path.join(tmp.dir, 'trainB', s.bPath)), 8, 8)).data;
      expect(s.a).toEqual(expectedA);
      expect(s.b).toEqual(expectedB);
    }
  });

  it('is deterministic per seed and resumes mid-epoch from a saved state in a new instance', async () => {
    const opts = { root: tmp.dir, loadSize: 10, cropSize: 8 };
    const x = await UnalignedDataset.open({ ...opts, seed: 5, prefetch: 3 });
    const y = await UnalignedDataset.open({ ...opts, seed: 5 });
    const z = await UnalignedDataset.open({ ...opts, seed: 6 });
    const first = await x.take(3);
    expectSameSamples(first, await y.take(3));
    expect((await z.take(3)).map(summary)).not.toEqual(first.map(summary));

    // Saved while x has samples decoded ahead: the state is that of the samples handed out, not of the prefetch.
    const saved = JSON.parse(JSON.stringify(x.rngState())) as ReturnType<typeof x.rngState>;
    expect(saved.epoch).toBe(0);
    expect(saved.step).toBe(3);
    const expected = await x.take(9); // crosses two epoch boundaries
    const resumed = await UnalignedDataset.open({ ...opts, seed: 999 });
    resumed.setRngState(saved);
    expectSameSamples(await resumed.take(9), expected);

    // Restoring into the same instance discards its prefetched samples and replays.
    x.setRngState(saved);
    expectSameSamples(await x.take(9), expected);
  });

  it('resumes from a state saved at an epoch boundary', async () => {
    const opts = { root: tmp.dir, loadSize: 8, cropSize: 8, seed: 7 };
    const x = await UnalignedDataset.open(opts);
    await x.take(5);
    const saved = x.rngState();
    expect(saved.step).toBe(5);
    const expected = await x.take(4);
    expect(expected[0]!.epoch).toBe(1);
    const y = await UnalignedDataset.open(opts);
    y.setRngState(saved);
    expectSameSamples(await y.take(4), expected);
  });

  it('refuses a state of another dataset length or a malformed one', async () => {
    const ds = await UnalignedDataset.open({ root: tmp.dir, loadSize: 8, cropSize: 8 });
    const good = ds.rngState();
    expect(() => ds.setRngState({ ...good, length: 6 })).toThrow(UsageError);
    expect(() => ds.setRngState({ ...good, step: 2, epochStart: null })).toThrow(UsageError);
    expect(() => ds.setRngState({ ...good, state: [0, 0, 0, 0] })).toThrow(UsageError);
  });

  it('refuses bad transform sizes', async () => {
    await expect(UnalignedDataset.open({ root: tmp.dir, loadSize: 8, cropSize: 9 })).rejects.toThrow(UsageError);
    await expect(UnalignedDataset.open({ root: tmp.dir, loadSize: 0 })).rejects.toThrow(UsageError);
  });
});

describe('prefetch', () => {
  let tmp: TempDir;
  beforeAll(async () => {
    tmp = await makeTempDir('prefetch');
    // One large A image decodes much more slowly than the others, so concurrent decodes finish out of order.
    await Promise.all([
      writeNoise(path.join(tmp.dir, 'trainA', 'big.png'), 300, 900, 700),
      ...[0, 1, 2, 3, 4, 5].map((i) => writeNoise(path.join(tmp.dir, 'trainA', `s${i}.png`), 310 + i)),
      writeNoise(path.join(tmp.dir, 'trainB', 'b.png'), 320),
    ]);
  });
  afterAll(() => tmp.cleanup());

  it('hands samples out in order, identical to decoding on demand', async () => {
    const opts = { root: tmp.dir, loadSize: 8, cropSize: 8, seed: 11 };
    const eager = await UnalignedDataset.open({ ...opts, prefetch: 5 });
    const lazy = await UnalignedDataset.open(opts);
    const fromIterator: DataSample[] = [];
    for await (const s of eager) {
      fromIterator.push(s);
      if (fromIterator.length === 10) break;
    }
    expectSameSamples(fromIterator, await lazy.take(10));
    expect(fromIterator.map((s) => s.aPath)).toContain('big.png');
  });

  it('decodes ahead: samples already decoded survive their files being deleted', async () => {
    const copy = await makeTempDir('prefetch-copy');
    try {
      await fsp.cp(tmp.dir, copy.dir, { recursive: true });
      const ds = await UnalignedDataset.open({ root: copy.dir, loadSize: 8, cropSize: 8, seed: 12 });
      ds.prefetch(3);
      await ds.ready();
      await fsp.rm(path.join(copy.dir, 'trainA'), { recursive: true });
      const got = await ds.take(3);
      expect(got.map((s) => s.step)).toEqual([0, 1, 2]);
      // The fourth was started after the deletion.
      await expect(ds.next()).rejects.toThrow(InputError);
    } finally {
      await copy.cleanup();
    }
  });

  it('refuses a negative depth', async () => {
    const ds = await UnalignedDataset.open({ root: tmp.dir, loadSize: 8, cropSize: 8 });
    expect(() => ds.prefetch(-1)).toThrow(UsageError);
  });
});

describe('AlignedDataset', () => {
  let tmp: TempDir;
  beforeAll(async () => {
    tmp = await makeTempDir('aligned');
    const names = ['0.png', '1.png', '10.png', '2.png'];
    // "same": B holds the same pixels as A, so a shared crop gives a === b; "distinct": B differs from A.
    await Promise.all(
      names.flatMap((n, i) => [
        writeNoise(path.join(tmp.dir, 'same', 'trainA', n), 400 + i),
        writeNoise(path.join(tmp.dir, 'same', 'trainB', n), 400 + i),
        writeNoise(path.join(tmp.dir, 'distinct', 'trainA', n), 500 + i),
        writeNoise(path.join(tmp.dir, 'distinct', 'trainB', n), 600 + i),
      ]),
    );
  });
  afterAll(() => tmp.cleanup());

  it('pairs A[i] with B[i] by sorted name and cycles shuffled epochs', async () => {
    const root = path.join(tmp.dir, 'distinct');
    const ds = await AlignedDataset.open({ root, loadSize: 8, cropSize: 8, seed: 1 });
    expect(ds.length).toBe(4);
    expect(ds.pairs.map((p) => p.aPath)).toEqual(['0.png', '1.png', '10.png', '2.png']);
    const samples = await ds.take(12);
    for (let e = 0; e < 3; e++) {
      const epoch = samples.slice(4 * e, 4 * e + 4);
      expect(epoch.map((s) => s.epoch)).toEqual([e, e, e, e]);
      expect(epoch.map((s) => s.aPath).sort()).toEqual(['0.png', '1.png', '10.png', '2.png']);
    }
    for (const s of samples.slice(0, 4)) {
      expect(s.bPath).toBe(s.aPath);
      expect(s.b).toEqual(imageToTensor(resizeImage(await decodeImage(path.join(root, 'trainB', s.bPath)), 8, 8)).data);
    }
  });

  it('shares one random crop between A and B and never flips', async () => {
    const root = path.join(tmp.dir, 'same');
    const ds = await AlignedDataset.open({ root, loadSize: 12, cropSize: 8, seed: 2 });
    const offsets = new Set<string>();
    for (const s of await ds.take(16)) {
      expect(s.b).toEqual(s.a);
      const m = matchesOf(s.a, await candidatesOf(path.join(root, 'trainA', s.aPath), 12, 8, 8));
      expect(m).toHaveLength(1);
      expect(m[0]!.flip).toBe(false);
      offsets.add(`${m[0]!.top},${m[0]!.left}`);
    }
    expect(offsets.size).toBeGreaterThan(3);
  });

  it('resumes from a saved state', async () => {
    const opts = { root: path.join(tmp.dir, 'distinct'), loadSize: 10, cropSize: 8, seed: 3 };
    const x = await AlignedDataset.open({ ...opts, prefetch: 2 });
    await x.take(2);
    const saved = x.rngState();
    const expected = await x.take(6);
    const y = await AlignedDataset.open(opts);
    y.setRngState(saved);
    expectSameSamples(await y.take(6), expected);
  });

  it('opens a paired scenimefy-dataset manifest', async () => {
    const root = path.join(tmp.dir, 'distinct');
    const manifest = await buildDatasetManifest(root, { kind: 'paired', generatedBy: { name: 'test', version: '0' } });
    const file = path.join(root, 'manifest.json');
    await writeDatasetManifest(file, manifest);
    const ds = await AlignedDataset.open({ manifest: file, loadSize: 8, cropSize: 8, seed: 4 });
    expect(ds.root).toBe(root);
    expect(ds.pairs.map((p) => [p.aPath, p.bPath])).toEqual(manifest.pairs!.map((p) => [p.a, p.b]));
    const s = await ds.next();
    expect(s.aPath.startsWith('trainA/')).toBe(true);
    expect(s.bPath).toBe(s.aPath.replace('trainA/', 'trainB/'));
    expect(s.a).toEqual(imageToTensor(resizeImage(await decodeImage(path.join(root, s.aPath)), 8, 8)).data);

    const unpairedFile = path.join(tmp.dir, 'unpaired-manifest.json');
    await writeDatasetManifest(unpairedFile, { ...manifest, kind: 'unpaired', pairs: undefined, files: [] });
    await expect(AlignedDataset.open({ manifest: unpairedFile })).rejects.toThrow(/unpaired-manifest\.json: .*kind 'unpaired'/);
  });

  it('names the first mismatch when the folders do not pair up', async () => {
    const root = path.join(tmp.dir, 'mismatch');
    await writeNoise(path.join(root, 'trainA', '0.png'), 1);
    await writeNoise(path.join(root, 'trainA', '1.png'), 2);
    await writeNoise(path.join(root, 'trainB', '0.png'), 3);
    await writeNoise(path.join(root, 'trainB', '2.png'), 4);
    await expect(AlignedDataset.open({ root })).rejects.toThrow(/trainA\/1\.png is paired with trainB\/2\.png/);
    await writeNoise(path.join(root, 'trainA', '2.png'), 5);
    await writeNoise(path.join(root, 'trainB', '1.png'), 6);
    await writeNoise(path.join(root, 'trainB', '3.png'), 7);
    const error = await AlignedDataset.open({ root }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InputError);
    expect((error as Error).message).toMatch(/trainA has 3 images, trainB has 4; trainB\/3\.png has no partner/);
  });
});

describe('errors', () => {
  let tmp: TempDir;
  beforeAll(async () => {
    tmp = await makeTempDir('data-errors');
  });
  afterAll(() => tmp.cleanup());

  it('an empty or missing domain folder is an InputError naming it', async () => {
    const root = path.join(tmp.dir, 'empty');
    await writeNoise(path.join(root, 'trainA', 'a.png'), 1);
    await fsp.mkdir(path.join(root, 'trainB'), { recursive: true });
    await fsp.writeFile(path.join(root, 'trainB', 'readme.txt'), 'no images here');
    const error = await UnalignedDataset.open({ root }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InputError);
    expect((error as Error).message).toContain(path.join(root, 'trainB'));
    await expect(AlignedDataset.open({ root })).rejects.toThrow(InputError);
    await expect(UnalignedDataset.open({ root: path.join(tmp.dir, 'nowhere') })).rejects.toThrow(/nowhere.trainA/);
  });

  it('an undecodable image rejects with an InputError naming it; the next call moves on', async () => {
    const root = path.join(tmp.dir, 'bad');
    await writeNoise(path.join(root, 'trainA', 'good.png'), 1);
    await writeNoise(path.join(root, 'trainB', 'b.png'), 2);
    await fsp.writeFile(path.join(root, 'trainA', 'broken.png'), 'this is not a png');
    const ds = await UnalignedDataset.open({ root, loadSize: 8, cropSize: 8, seed: 1, prefetch: 2 });
    const outcomes: string[] = [];
    for (let i = 0; i < 4; i++) {
      try {
        outcomes.push((await ds.next()).aPath);
      } catch (error) {
        expect(error).toBeInstanceOf(InputError);
        expect((error as Error).message).toContain(path.join(root, 'trainA', 'broken.png'));
        outcomes.push('error');
      }
    }
    expect(outcomes.slice(0, 2).sort()).toEqual(['error', 'good.png']);
    expect(outcomes.slice(2).sort()).toEqual(['error', 'good.png']);
    expect(ds.currentEpoch).toBe(2);
  });
});
