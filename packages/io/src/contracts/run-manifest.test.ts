import { promises as fsp, readFileSync } from 'node:fs';
import * as path from 'node:path';

import { contractRejection, makeTempDir, type TempDir } from '@scenimefy/test-utils';

import { readContract, writeContract } from './contract-files';
import { parseContract } from './parse-contract';
import { runContractV1, runManifestV1Schema, type RunManifestV1 } from './run-manifest';

// v1 on its own contract: the files Scenimefy.js 0.1 wrote are checked by these rules before their upgrade to v2
// (run-manifest-v2.test.ts).
const runContract = runContractV1;
const runManifestSchema = runManifestV1Schema;
type RunManifest = RunManifestV1;
const readRunManifest = (file: string): Promise<RunManifest> => readContract(file, runContractV1);
const writeRunManifest = (file: string, m: RunManifest): Promise<void> => writeContract(file, runContractV1, m);

const exampleText = readFileSync(path.join(__dirname, 'examples', 'scenimefy-run-v1.json'), 'utf8');
const example = (): RunManifest => runManifestSchema.parse(JSON.parse(exampleText));

const rejection = (value: unknown): string => contractRejection(value, 'run/run.json', runContract);

let tmp: TempDir;
let dir: string;
beforeEach(async () => {
  tmp = await makeTempDir('run');
  dir = tmp.dir;
});
afterEach(async () => {
  await tmp.cleanup();
});

describe('scenimefy-run v1', () => {
  it('round-trips a failed run and a fresh running one', async () => {
    const fresh: RunManifest = {
      ...example(),
      status: 'running',
      error: undefined,
      checkpoints: [],
      nonDefaults: [],
      samples: undefined,
      report: undefined,
    };
    const file = path.join(dir, 'run.json');
    for (const manifest of [example(), fresh]) {
      await writeRunManifest(file, manifest);
      expect(await readRunManifest(file)).toEqual(JSON.parse(JSON.stringify(manifest)));
    }
    expect(Object.keys(JSON.parse(await fsp.readFile(file, 'utf8')))).not.toContain('error');
  });

  it('names each non-default once, and only options that exist', () => {
    const m = example();
    m.nonDefaults = ['dceIdt', 'useCurriculum', 'dceIdt', 'lambdaVgg'];
    expect(rejection(m)).toBe(
      'run/run.json: nonDefaults[2]: "dceIdt" is listed twice (first at nonDefaults[0]); nonDefaults[3]: "lambdaVgg" is not one of options',
    );
  });

  it('lists each checkpoint folder once, inside the run folder', () => {
    const m = example();
    m.checkpoints.push({ ...m.checkpoints[0]!, iteration: 20000 });
    expect(rejection(m)).toBe('run/run.json: checkpoints[2].folder: "checkpoints/iter-5000" is listed twice (first at checkpoints[0])');
    m.checkpoints = [{ ...m.checkpoints[0]!, folder: '/abs/ckpt' }];
    expect(rejection(m)).toBe(
      'run/run.json: checkpoints[0].folder: must be a relative POSIX path inside the folder (no leading "/", no "\\", no "." or ".." segment)',
    );
  });

  it('ties the error to the status', () => {
    const failed = example();
    delete failed.error;
    expect(rejection(failed)).toBe('run/run.json: error: required when status is "failed"');
    expect(rejection({ ...example(), status: 'completed' })).toBe('run/run.json: error: a completed run has no error');
    expect(() => parseContract(JSON.stringify({ ...example(), status: 'stopped' }), 'run.json', runContract)).not.toThrow();
  });

  it('rejects an unknown status', () => {
    expect(rejection({ ...example(), status: 'paused' })).toBe(
      'run/run.json: status: Invalid option: expected one of "running"|"completed"|"failed"|"stopped"',
    );
  });
});
