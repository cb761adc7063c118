/**
 * tools/run-jest.js (the last step of `npm test`): a parity test that does not run fails the run and is named.
 * The end-to-end cases run the real runner over small test files written here, so jest's own JSON is what is read.
 */
import { spawnSync } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';

import { withTempDir } from './temp-dir';

interface JestResults {
  numPassedTests: number;
  numFailedTests: number;
  numPendingTests: number;
  numTodoTests: number;
  testResults: Array<{ name: string; assertionResults: Array<{ status: string; title: string; ancestorTitles: string[] }> }>;
}
// Plain JavaScript; the test calls its exports and runs it as npm test does.
const runJest = require('../../run-jest.js') as {
  closingLine: (results: JestResults) => string;
  filtersByName: (args: string[]) => boolean;
  paritySkips: (results: JestResults) => string[];
};
const root = path.resolve(__dirname, '..', '..', '..');
const runner = path.join(root, 'tools', 'run-jest.js');

const PARITY = [
  "describe('group', () => {",
  "  it('runs', () => expect(1).toBe(1));",
  "  it.skip('is skipped', () => expect(1).toBe(1));",
  "  it.todo('is a todo');",
  '});',
  "describe.skip('whole suite (fixture absent)', () => {",
  "  it('never runs', () => expect(1).toBe(1));",
  '});',
  '',
].join('\n');

/** Runs tools/run-jest.js over the test files given (written into a temp folder that is jest's whole root). */
async function runOver(files: Record<string, string>, env: Record<string, string> = {}) {
  return withTempDir(async (dir) => {
    for (const [name, text] of Object.entries(files)) await fsp.writeFile(path.join(dir, name), text);
    const config = {
      rootDir: dir,
      testMatch: ['<rootDir>/*.test.ts'],
      transform: {
        '^.+\\.ts$': [require.resolve('@swc/jest'), { jsc: { parser: { syntax: 'typescript' } }, module: { type: 'commonjs' } }],
      },
    };
    const childEnv: NodeJS.ProcessEnv = { ...process.env, ...env };
    delete childEnv['SCENIMEFY_JEST_SUMMARY'];
    if (!('SCENIMEFY_ALLOW_PARITY_SKIPS' in env)) delete childEnv['SCENIMEFY_ALLOW_PARITY_SKIPS'];
    const r = spawnSync(process.execPath, [runner, '--config', JSON.stringify(config), '--ci'], {
      cwd: root,
      encoding: 'utf8',
      env: childEnv,
    });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr, dir: path.relative(root, dir) };
  }, 'run-jest');
}

describe('tools/run-jest.js', () => {
  it('fails when tests of a parity file are skipped, todo, or in a skipped suite, and names each', async () => {
    const r = await runOver({ 'x.parity.test.ts': PARITY, 'other.test.ts': "it.skip('not parity', () => {});\nit('ok', () => {});\n" });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(
      [
        'run-jest: 3 parity tests did not run:',
        `  ${r.dir}/x.parity.test.ts: group › is skipped (pending)`,
        `  ${r.dir}/x.parity.test.ts: group › is a todo (todo)`,
        `  ${r.dir}/x.parity.test.ts: whole suite (fixture absent) › never runs (pending)`,
      ].join('\n'),
    );
    expect(r.stdout.trim().split('\n').at(-1)).toBe('tests: 2 passed, 0 failed, 4 skipped');
  }, 60_000);

  it('passes when only other test files skip, and still prints the closing line', async () => {
    const r = await runOver({ 'y.parity.test.ts': "it('runs', () => {});\n", 'other.test.ts': "it.skip('not parity', () => {});\n" });
    expect(r.stderr).not.toContain('parity test');
    expect(r.stdout.trim().split('\n').at(-1)).toBe('tests: 1 passed, 0 failed, 1 skipped');
    expect(r.status).toBe(0);
  }, 60_000);

  it('lists the skipped parity tests without failing when SCENIMEFY_ALLOW_PARITY_SKIPS=1', async () => {
    const r = await runOver({ 'x.parity.test.ts': PARITY }, { SCENIMEFY_ALLOW_PARITY_SKIPS: '1' });
    expect(r.stderr).toContain('run-jest: 3 parity tests did not run (allowed by SCENIMEFY_ALLOW_PARITY_SKIPS=1):');
    expect(r.status).toBe(0);
  }, 60_000);

  it('keeps a failing run failing', async () => {
    const r = await runOver({ 'z.parity.test.ts': "it('fails', () => expect(1).toBe(2));\n" });
    expect(r.status).toBe(1);
    expect(r.stdout.trim().split('\n').at(-1)).toBe('tests: 0 passed, 1 failed, 0 skipped');
  }, 60_000);
});

describe('paritySkips and filtersByName', () => {
  const results = (statuses: Array<[string, string]>): JestResults => ({
    numPassedTests: 0,
    numFailedTests: 0,
    numPendingTests: 0,
    numTodoTests: 0,
    testResults: statuses.map(([name, status]) => ({
      name: path.join(root, name),
      assertionResults: [{ status, title: 't', ancestorTitles: ['a'] }],
    })),
  });

  it('counts every status other than passed and failed as not run, in parity files only', () => {
    expect(
      runJest.paritySkips(
        results([
          ['p.parity.test.ts', 'passed'],
          ['p.parity.test.ts', 'failed'],
          ['p.parity.test.ts', 'disabled'],
          ['p.parity.test.ts', 'skipped'],
          ['q.test.ts', 'pending'],
        ]),
      ),
    ).toEqual(['p.parity.test.ts: a › t (disabled)', 'p.parity.test.ts: a › t (skipped)']);
  });

  it('knows a run filtered by test name (every other test reads "pending" then)', () => {
    expect(['-t', '--testNamePattern=x', '--testNamePattern', '-t=x'].map((a) => runJest.filtersByName([a]))).toEqual([
      true,
      true,
      true,
      true,
    ]);
    expect(runJest.filtersByName(['packages/io', '--ci'])).toBe(false);
  });
});
