import { promises as fsp, readFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { ContractError, InputError } from '../errors';
import {
  checkpointContractV1 as checkpointContract,
  checkpointManifestV1Schema as checkpointManifestSchema,
  type CheckpointManifestV1 as CheckpointManifest,
} from './checkpoint-manifest';
import { artifactHeader, formatIssuePath } from './common';
import { readContract, writeContract } from './contract-files';
import { contractIssues, parseContract } from './parse-contract';

// The sample contract is scenimefy-checkpoint v1 on its own (the current v2 reads it too, as an older version).
const exampleText = readFileSync(path.join(__dirname, 'examples', 'scenimefy-checkpoint-v1.json'), 'utf8');
const example = (): CheckpointManifest => checkpointManifestSchema.parse(JSON.parse(exampleText));

let dir: string;
let file: string;
beforeEach(async () => {
  dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'scenimefy-contract-'));
  file = path.join(dir, 'checkpoint.json');
});
afterEach(async () => {
  await fsp.rm(dir, { recursive: true, force: true });
});

/** The error `parseContract` throws for `text` (fails the test if it throws none). */
function parseError(text: string): ContractError {
  try {
    parseContract(text, 'ck/checkpoint.json', checkpointContract);
  } catch (error) {
    expect(error).toBeInstanceOf(ContractError);
    return error as ContractError;
  }
  throw new Error('expected a ContractError');
}

const withFields = (patch: Record<string, unknown>): string => JSON.stringify({ ...JSON.parse(exampleText), ...patch });

describe('readContract / writeContract', () => {
  it('round-trips a valid artifact, written as indented JSON with keys in schema order', async () => {
    const value = example();
    // Keys out of schema order on input come back in schema order.
    const shuffled = Object.fromEntries(Object.entries(value).reverse()) as CheckpointManifest;
    expect(Object.keys(shuffled)[0]).toBe('source');
    await writeContract(file, checkpointContract, shuffled);
    expect(await readContract(file, checkpointContract)).toEqual(value);
    const text = await fsp.readFile(file, 'utf8');
    expect(text.endsWith('}\n')).toBe(true);
    expect(Object.keys(JSON.parse(text))).toEqual([
      'format',
      'formatVersion',
      'generatedBy',
      'createdAt',
      'networks',
      'tensorNaming',
      'weights',
      'training',
      'source',
    ]);
    expect(text.split('\n')[1]).toBe('  "format": "scenimefy-checkpoint",');
  });

  it('reads a file that starts with a byte-order mark', async () => {
    await fsp.writeFile(file, `\uFEFF${exampleText}`);
    expect(await readContract(file, checkpointContract)).toEqual(example());
  });

  it('says InputError, naming the file, when it cannot read it', async () => {
    const missing = path.join(dir, 'nope.json');
    const error = await readContract(missing, checkpointContract).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InputError);
    expect((error as InputError).message).toBe(`${missing}: cannot read scenimefy checkpoint manifest (ENOENT)`);
    await expect(readContract(dir, checkpointContract)).rejects.toThrow(`${dir}: cannot read scenimefy checkpoint manifest (EISDIR)`);
  });

  it('refuses to write an invalid artifact and leaves the old file alone', async () => {
    await writeContract(file, checkpointContract, example());
    const before = await fsp.readFile(file, 'utf8');
    const bad = { ...example(), weights: { ...example().weights, size: -1 } };
    const error = await writeContract(file, checkpointContract, bad).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ContractError);
    expect((error as ContractError).message).toBe(`${file}: weights.size: Too small: expected number to be >=0 (not written)`);
    expect((error as ContractError).field).toBe('weights.size');
    expect(await fsp.readFile(file, 'utf8')).toBe(before);
    expect((await fsp.readdir(dir)).sort()).toEqual(['checkpoint.json']);
  });

  it('refuses to write what breaks a cross-field rule', async () => {
    const bad = example();
    bad.networks.netD_p = { ...bad.networks.netD_p!, inputNc: 3 };
    await expect(writeContract(file, checkpointContract, bad)).rejects.toThrow(
      `${file}: networks.netD_p.inputNc: is 3 but netD_p sees photo and anime stacked, netG.inputNc + netG.outputNc = 6 (not written)`,
    );
    await expect(fsp.access(file)).rejects.toThrow();
  });
});

describe('parseContract rejections', () => {
  it('invalid JSON, naming line, column and position', () => {
    const e = parseError('{\n  "format": "scenimefy-checkpoint",\n  "formatVersion": 1,\n}');
    expect(e.message).toBe('ck/checkpoint.json: invalid JSON: property name expected at line 4 column 1 (position 60)');
    expect(e.file).toBe('ck/checkpoint.json');
    expect(parseError('').message).toBe('ck/checkpoint.json: invalid JSON: value expected at line 1 column 1 (position 0)');
    expect(parseError('{"format": "scenimefy-checkpoint" "x": 1}').message).toBe(
      'ck/checkpoint.json: invalid JSON: comma expected at line 1 column 35 (position 34)',
    );
    expect(parseError('{"a": 1} // note').message).toBe(
      'ck/checkpoint.json: invalid JSON: invalid comment token at line 1 column 10 (position 9)',
    );
  });

  it('JSON that is not an object', () => {
    expect(parseError('[1, 2]').message).toBe('ck/checkpoint.json: expected a JSON object, got an array');
    expect(parseError('null').message).toBe('ck/checkpoint.json: expected a JSON object, got null');
  });

  it('a missing or unknown format, listing the known ones', () => {
    const missing = parseError(JSON.stringify({ formatVersion: 1 }));
    expect(missing.field).toBe('format');
    expect(missing.message).toBe(
      'ck/checkpoint.json: format: missing; expected "scenimefy-checkpoint" (known formats: scenimefy-checkpoint, scenimefy-dataset, scenimefy-run)',
    );
    expect(parseError(withFields({ format: 'cut-checkpoint' })).message).toBe(
      'ck/checkpoint.json: format: unknown format "cut-checkpoint"; expected "scenimefy-checkpoint" ' +
        '(known formats: scenimefy-checkpoint, scenimefy-dataset, scenimefy-run)',
    );
    expect(parseError(withFields({ format: 7 })).message).toBe(
      'ck/checkpoint.json: format: unknown format 7; expected "scenimefy-checkpoint" (known formats: scenimefy-checkpoint, scenimefy-dataset, scenimefy-run)',
    );
  });

  it('another known format', () => {
    const e = parseError(withFields({ format: 'scenimefy-dataset' }));
    expect(e.field).toBe('format');
    expect(e.message).toBe('ck/checkpoint.json: format: this is a "scenimefy-dataset" file, expected "scenimefy-checkpoint"');
  });

  it('a formatVersion from a newer Scenimefy.js, an unknown old one, or none', () => {
    const newer = parseError(withFields({ formatVersion: 2, somethingNew: true }));
    expect(newer.field).toBe('formatVersion');
    expect(newer.message).toBe(
      'ck/checkpoint.json: formatVersion: written by a newer Scenimefy.js (formatVersion 2); this version reads 1',
    );
    expect(parseError(withFields({ formatVersion: 0 })).message).toBe(
      'ck/checkpoint.json: formatVersion: expected a positive integer, got 0',
    );
    expect(parseError(withFields({ formatVersion: '1' })).message).toBe(
      'ck/checkpoint.json: formatVersion: expected a positive integer, got "1"',
    );
    expect(parseError(withFields({ formatVersion: undefined })).message).toBe(
      'ck/checkpoint.json: formatVersion: missing; this version reads 1',
    );
  });

  it('a schema violation, naming the first failing field and listing up to three issues', () => {
    const one = parseError(withFields({ weights: { file: 'weights.safetensors', sha256: 'ABC', size: 1 } }));
    expect(one.field).toBe('weights.sha256');
    expect(one.message).toBe('ck/checkpoint.json: weights.sha256: must be 64 lower-case hex digits (sha256)');

    const value = JSON.parse(exampleText);
    value.networks.netF.layers[2] = -8;
    value.networks.netG.ngf = 'sixty-four';
    value.createdAt = '2025-01-31 12:00';
    value.training.epoch = 1.5;
    value.weights.file = '../weights.safetensors';
    const many = parseError(JSON.stringify(value));
    expect(many.field).toBe('createdAt');
    expect(many.message).toBe(
      'ck/checkpoint.json: createdAt: Invalid ISO datetime; networks.netG.ngf: Invalid input: expected number, received string; ' +
        'networks.netF.layers[2]: Too small: expected number to be >=0 (and 2 more)',
    );
  });

  it('unknown fields, each at its own path', () => {
    const value = JSON.parse(exampleText);
    value.networks.netG.dropout = false;
    value.ema = true;
    const e = parseError(JSON.stringify(value));
    expect(e.field).toBe('networks.netG.dropout');
    expect(e.message).toBe('ck/checkpoint.json: networks.netG.dropout: unknown field; ema: unknown field');
  });
});

describe('helpers', () => {
  it('contractIssues lists schema issues, or cross-field ones once the schema holds', () => {
    expect(contractIssues(example(), checkpointContract)).toEqual([]);
    expect(contractIssues({ ...example(), tensorNaming: 'flat' }, checkpointContract)).toEqual([
      { path: ['tensorNaming'], message: 'Invalid input: expected "network-prefixed-state-dict"' },
    ]);
  });

  it('formatIssuePath writes paths as code would', () => {
    expect(formatIssuePath(['pairs', 3, 'b'])).toBe('pairs[3].b');
    expect(formatIssuePath(['options', 'lambda.nce', 0])).toBe('options["lambda.nce"][0]');
    expect(formatIssuePath([])).toBe('');
  });

  it('artifactHeader stamps the format, version, writer and time', () => {
    expect(artifactHeader(checkpointContract, { name: '@scenimefy/cli', version: '0.2.0' }, new Date(Date.UTC(2025, 0, 31)))).toEqual({
      format: 'scenimefy-checkpoint',
      formatVersion: 1,
      generatedBy: { name: '@scenimefy/cli', version: '0.2.0' },
      createdAt: '2025-01-31T00:00:00.000Z',
    });
  });
});
