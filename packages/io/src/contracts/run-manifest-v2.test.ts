import { readFileSync } from 'node:fs';
import * as path from 'node:path';

import { contractRejection, makeTempDir, type TempDir } from '@scenimefy/test-utils';

import { readRunManifest, writeRunManifest } from './contract-files';
import { contractIssues, parseContract } from './parse-contract';
import { runContract, runManifestSchema, type RunManifest } from './run-manifest';

const examples = path.join(__dirname, 'examples');
const v1Text = readFileSync(path.join(examples, 'scenimefy-run-v1.json'), 'utf8');
const example = (): RunManifest => runManifestSchema.parse(JSON.parse(readFileSync(path.join(examples, 'scenimefy-run-v2.json'), 'utf8')));
const rejection = (value: unknown): string => contractRejection(value, 'run/run.json', runContract);

let tmp: TempDir;
beforeEach(async () => {
  tmp = await makeTempDir('run-v2');
});
afterEach(async () => {
  await tmp.cleanup();
});

describe('scenimefy-run v2', () => {
  it('round-trips a run with its model, datasets and resumes', async () => {
    const file = path.join(tmp.dir, 'run.json');
    expect(contractIssues(example(), runContract)).toEqual([]);
    await writeRunManifest(file, example());
    expect(await readRunManifest(file)).toEqual(example());
  });

  it('reads a v1 run.json as v2, with no datasets or resumes', () => {
    expect(parseContract(v1Text, 'run.json', runContract)).toEqual({ ...JSON.parse(v1Text), formatVersion: 2 });
  });

  it('records datasets by absolute path with a digest, and resumes that override only options the run has', () => {
    const relative = example();
    relative.datasets!.unpaired!.path = 'data/unpaired';
    expect(rejection(relative)).toBe('run/run.json: datasets.unpaired.path: must be an absolute path');
    const windows = example();
    windows.datasets!.unpaired!.path = 'D:\\data\\unpaired';
    expect(contractIssues(windows, runContract)).toEqual([]);
    const bad = example();
    bad.resumes = [
      { at: '2025-02-01T08:00:00.000Z', iteration: 10, overrides: { maxIterations: 20, lrate: 1 } },
      { at: '2025-02-02T08:00:00.000Z', iteration: 20, overrides: {}, datasets: ['unpaired', 'photos'] },
    ];
    expect(rejection(bad)).toBe(
      'run/run.json: resumes[0].overrides.lrate: "lrate" is not one of options; resumes[1].datasets[1]: "photos" is not one of datasets',
    );
  });
});
