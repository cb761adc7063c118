import { createHash } from 'node:crypto';
import { promises as fsp, readFileSync } from 'node:fs';
import * as path from 'node:path';

import { contractRejection, makeTempDir, type TempDir } from '@scenimefy/test-utils';

import { InputError } from '../errors';
import { readDatasetManifest, writeDatasetManifest } from './contract-files';
import { buildDatasetManifest, listReferenceImages, verifyDatasetManifest, type DatasetProgress } from './dataset-files';
import { datasetContract, datasetManifestSchema, isReferenceImageFile, type DatasetManifest } from './dataset-manifest';
import { parseContract } from './parse-contract';

const exampleText = readFileSync(path.join(__dirname, 'examples', 'scenimefy-dataset-v1.json'), 'utf8');
const example = (): DatasetManifest => datasetManifestSchema.parse(JSON.parse(exampleText));
const writer = { name: '@scenimefy/io', version: '0.1.0' };
const sha256 = (s: string): string => createHash('sha256').update(s).digest('hex');

const rejection = (value: unknown): string => contractRejection(value, 'ds/manifest.json', datasetContract);

let tmp: TempDir;
let dir: string;
beforeEach(async () => {
  tmp = await makeTempDir('dataset');
  dir = tmp.dir;
});
afterEach(async () => {
  await tmp.cleanup();
});

/** Create `files` (POSIX path → content) under `dir`. */
async function makeTree(files: Record<string, string>): Promise<void> {
  for (const [p, content] of Object.entries(files)) {
    const file = path.join(dir, ...p.split('/'));
    await fsp.mkdir(path.dirname(file), { recursive: true });
    await fsp.writeFile(file, content);
  }
}

describe('scenimefy-dataset v1 contract', () => {
  it('round-trips a paired dataset manifest', async () => {
    const file = path.join(dir, 'manifest.json');
    await writeDatasetManifest(file, example());
    expect(await readDatasetManifest(file)).toEqual(example());
  });

  it('rejects paths that could leave the dataset folder', () => {
    for (const bad of [
      '/etc/passwd',
      '../x.png',
      'trainA/../../x.png',
      'trainA\\0.png',
      'C:/x.png',
      'trainA//0.png',
      './trainA/0.png',
      'trainA/',
    ]) {
      const m = example();
      m.files[0]!.path = bad;
      expect(rejection(m)).toMatch(/^ds\/manifest\.json: files\[0\]\.path: must be a relative POSIX path inside the folder/);
    }
    // Names that merely contain dots are fine.
    const ok = { ...example(), kind: 'unpaired', pairs: undefined, selection: undefined };
    ok.files[0]!.path = 'trainA/..hidden/a..b.png';
    expect(() => parseContract(JSON.stringify(ok), 'm.json', datasetContract)).not.toThrow();
  });

  it('requires unique paths', () => {
    const m = example();
    m.files[3] = { ...m.files[0]! };
    expect(rejection(m)).toMatch(/^ds\/manifest\.json: files\[3\]\.path: "trainA\/0\.png" is listed twice \(first at files\[0\]\); /);
  });

  it('requires pair members to be listed files, distinct, each in one pair', () => {
    const m = example();
    m.pairs![1] = { a: 'trainA/0.png', b: 'trainB/7.png' };
    expect(rejection(m)).toBe(
      'ds/manifest.json: pairs[1].a: "trainA/0.png" is already in pairs[0]; pairs[1].b: "trainB/7.png" is not a listed file',
    );
    m.pairs = [{ a: 'trainA/1.png', b: 'trainA/1.png' }];
    expect(rejection(m)).toBe(
      'ds/manifest.json: pairs[0].b: "trainA/1.png" is already in pairs[0]; pairs[0].b: a pair needs two different files',
    );
  });

  it('ties pairs and selection to the kind', () => {
    expect(rejection({ ...example(), pairs: undefined })).toBe('ds/manifest.json: pairs: required for a paired dataset');
    expect(rejection({ ...example(), kind: 'unpaired' })).toBe(
      'ds/manifest.json: pairs: an unpaired dataset has no pairs; selection: an unpaired dataset has no selection',
    );
    const m = example();
    m.selection = { ...m.selection!, accepted: 3 };
    expect(rejection(m)).toBe('ds/manifest.json: selection.accepted: 3 pairs accepted out of 2 candidates');
  });

  it('checks score ranges and the criterion', () => {
    const m = example();
    m.pairs![0]!.scores!.pixelAgreement = 1.2;
    m.selection!.criterion = 'clip' as never;
    expect(rejection(m)).toBe(
      'ds/manifest.json: pairs[0].scores.pixelAgreement: Too big: expected number to be <=1; ' +
        'selection.criterion: Invalid option: expected one of "reference"|"pixel-agreement"|"miou"',
    );
  });
});

describe('verifyDatasetManifest', () => {
  it('passes an intact dataset and reports a modified, a missing and a resized file, in manifest order', async () => {
    const content: Record<string, string> = {
      'trainA/0.png': 'photo zero',
      'trainA/1.png': 'photo one',
      'trainB/0.png': 'anime zero',
      'trainB/1.png': 'anime one',
    };
    await makeTree(content);
    const manifest = await buildDatasetManifest(dir, { kind: 'paired', generatedBy: writer });
    const progress: DatasetProgress[] = [];
    expect(await verifyDatasetManifest(dir, manifest, { onProgress: (p) => progress.push(p) })).toEqual({ ok: true, problems: [] });
    expect(progress.map((p) => p.done)).toEqual([1, 2, 3, 4]);
    expect(progress.every((p) => p.total === 4)).toBe(true);
    expect(progress.map((p) => p.path).sort()).toEqual(Object.keys(content).sort());

    await fsp.writeFile(path.join(dir, 'trainB', '1.png'), 'anime 0ne'); // same size, other bytes
    await fsp.rm(path.join(dir, 'trainA', '1.png'));
    await fsp.appendFile(path.join(dir, 'trainA', '0.png'), '!');
    expect(await verifyDatasetManifest(dir, manifest, { concurrency: 2 })).toEqual({
      ok: false,
      problems: [
        { path: 'trainA/0.png', problem: 'size' },
        { path: 'trainA/1.png', problem: 'missing' },
        { path: 'trainB/1.png', problem: 'sha256' },
      ],
    });
  });

  it('takes a folder where a file should be as missing', async () => {
    await makeTree({ 'trainA/0.png/inner.txt': 'x' });
    const manifest: DatasetManifest = { ...example(), kind: 'unpaired', pairs: undefined, selection: undefined };
    manifest.files = [{ path: 'trainA/0.png', sha256: sha256('x'), size: 1 }];
    expect((await verifyDatasetManifest(dir, manifest)).problems).toEqual([{ path: 'trainA/0.png', problem: 'missing' }]);
  });
});

describe('buildDatasetManifest', () => {
  it('lists images as the reference loader does: recursive, reference extensions, sorted as Python sorts str', async () => {
    const images: Record<string, string> = {
      'trainA/b.png': 'b',
      'trainA/B.PNG': 'B',
      'trainA/10.jpg': '10',
      'trainA/2.jpeg': '2',
      'trainA/a/z.bmp': 'az',
      'trainA/a.tif': 'a',
      'trainA/a/b/c.TIFF': 'abc',
      'trainA/\uFF5E.ppm': 'fullwidth tilde',
      'trainA/\u{1F600}.PPM': 'emoji',
      'trainB/x.JPG': 'x',
      'trainB/y.JPEG': 'y',
    };
    const skipped = {
      'trainA/mixed.Png': 'the reference takes .png or .PNG only',
      'trainA/notes.txt': 'not an image',
      'trainA/a/b/archive.png.zip': 'not an image',
      'trainB/.hidden/readme.md': 'not an image',
      'testA/q.png': 'other phase',
      'manifest.json': '{}',
    };
    await makeTree({ ...images, ...skipped });
    const progress: DatasetProgress[] = [];
    const m = await buildDatasetManifest(dir, {
      kind: 'unpaired',
      generatedBy: writer,
      createdAt: '2025-03-01T00:00:00Z',
      onProgress: (p) => progress.push(p),
    });
    expect(m.files.map((f) => f.path)).toEqual([
      'trainA/10.jpg',
      'trainA/2.jpeg',
      'trainA/B.PNG',
      'trainA/a.tif',
      'trainA/a/b/c.TIFF',
      'trainA/a/z.bmp',
      'trainA/b.png',
      'trainA/\uFF5E.ppm', // U+FF5E before U+1F600 by code point, though JS's UTF-16 sort puts the emoji first
      'trainA/\u{1F600}.PPM',
      'trainB/x.JPG',
      'trainB/y.JPEG',
    ]);
    for (const f of m.files) {
      const content = images[f.path]!;
      expect(f).toEqual({ path: f.path, sha256: sha256(content), size: Buffer.byteLength(content) });
    }
    expect(m).toMatchObject({
      format: 'scenimefy-dataset',
      formatVersion: 1,
      generatedBy: writer,
      createdAt: '2025-03-01T00:00:00Z',
      kind: 'unpaired',
    });
    expect(m.pairs).toBeUndefined();
    expect(progress).toHaveLength(11);
    // What it builds, it writes and reads back.
    await writeDatasetManifest(path.join(dir, 'manifest.json'), m);
    expect(await readDatasetManifest(path.join(dir, 'manifest.json'))).toEqual(m);
    expect((await verifyDatasetManifest(dir, m)).ok).toBe(true);
  });

  it('pairs files of the same name for a paired dataset, with the scores given', async () => {
    await makeTree({ 'trainA/s/1.png': 'a1', 'trainA/0.png': 'a0', 'trainB/0.png': 'b0', 'trainB/s/1.png': 'b1' });
    const m = await buildDatasetManifest(dir, {
      kind: 'paired',
      generatedBy: writer,
      selection: { criterion: 'pixel-agreement', thresholds: { pixelAgreement: 0.6 } },
      pairDetails: ({ a }) => (a === 'trainA/0.png' ? { scores: { pixelAgreement: 0.75, accepted: true } } : undefined),
    });
    expect(m.pairs).toEqual([
      { a: 'trainA/0.png', b: 'trainB/0.png', scores: { pixelAgreement: 0.75, accepted: true } },
      { a: 'trainA/s/1.png', b: 'trainB/s/1.png' },
    ]);
    expect(m.selection).toEqual({ criterion: 'pixel-agreement', thresholds: { pixelAgreement: 0.6 } });
    expect(Date.parse(m.createdAt)).toBeGreaterThan(Date.parse('2025-01-01T00:00:00Z'));
  });

  it('names unmatched files of a paired dataset', async () => {
    await makeTree({ 'trainA/0.png': 'a0', 'trainA/1.png': 'a1', 'trainB/0.png': 'b0', 'trainB/2.png': 'b2' });
    const error = await buildDatasetManifest(dir, { kind: 'paired', generatedBy: writer }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InputError);
    expect((error as Error).message).toBe(
      `${dir}: a paired dataset pairs files of the same name: trainA/1.png has no trainB/1.png; trainB/2.png has no trainA/2.png`,
    );
  });

  it('says which domain folder is missing, and uses the phase given', async () => {
    await makeTree({ 'trainA/0.png': 'a0', 'testA/0.png': 't0', 'testB/0.png': 'u0' });
    const error = await buildDatasetManifest(dir, { kind: 'unpaired', generatedBy: writer }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InputError);
    expect((error as Error).message).toBe(`${path.join(dir, 'trainB')}: folder not found`);
    const test = await buildDatasetManifest(dir, { kind: 'unpaired', generatedBy: writer, phase: 'test' });
    expect(test.files.map((f) => f.path)).toEqual(['testA/0.png', 'testB/0.png']);
  });

  it('refuses a file name the contract cannot hold', async () => {
    await makeTree({ 'trainA/back\\slash.png': 'a', 'trainB/0.png': 'b' });
    await expect(buildDatasetManifest(dir, { kind: 'unpaired', generatedBy: writer })).rejects.toThrow(
      `${path.join(dir, 'manifest.json')}: files[0].path: cannot describe this folder as a dataset: must be a relative POSIX path`,
    );
  });
});

describe('reference image listing', () => {
  it('takes the reference extensions in lower or upper case only', () => {
    expect(['a.jpg', 'a.JPG', 'a.jpeg', 'a.png', 'a.ppm', 'a.bmp', 'a.tif', 'a.TIFF'].every(isReferenceImageFile)).toBe(true);
    expect(['a.Jpg', 'a.webp', 'a.gif', 'png', 'a.png.txt'].some(isReferenceImageFile)).toBe(false);
  });

  it('lists relative POSIX paths and fails on a missing folder', async () => {
    await makeTree({ 'x/b/1.png': '1', 'x/a.png': 'a' });
    expect(await listReferenceImages(path.join(dir, 'x'))).toEqual(['a.png', 'b/1.png']);
    await expect(listReferenceImages(path.join(dir, 'y'))).rejects.toBeInstanceOf(InputError);
  });
});
