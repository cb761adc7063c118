#!/usr/bin/env node
// The long semi_cut learning check: runs packages/i2i-core/src/train/learning.test.ts in its long mode through
// jest (which already compiles the workspace's TypeScript sources) and leaves curve.ndjson, curve.md and sample
// sheets in the output folder. See README.md beside this file for what it measures and the last results.
//
// Usage: node tools/learning-check/run.js [--out DIR] [--iterations N] [--seeds 1,2] [--eval-every N] [--sheet-every N]

const { spawnSync } = require('node:child_process');
const os = require('node:os');
const path = require('node:path');
const { parseArgs } = require('node:util');

const repoRoot = path.resolve(__dirname, '..', '..');

function positiveInteger(name, text) {
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1) {
    process.stderr.write(`learning-check: --${name} must be a positive integer, got ${JSON.stringify(text)}\n`);
    process.exit(2);
  }
  return String(value);
}

let values;
try {
  ({ values } = parseArgs({
    options: {
      out: { type: 'string', default: path.join(os.tmpdir(), 'scenimefy-learning-check') },
      iterations: { type: 'string', default: '500' },
      seeds: { type: 'string', default: '1' },
      'eval-every': { type: 'string', default: '25' },
      'sheet-every': { type: 'string', default: '250' },
      help: { type: 'boolean', default: false },
    },
  }));
} catch (error) {
  process.stderr.write(`learning-check: ${error.message}\n`);
  process.exit(2);
}
if (values.help) {
  process.stdout.write('node tools/learning-check/run.js [--out DIR] [--iterations N] [--seeds 1,2] [--eval-every N] [--sheet-every N]\n');
  process.exit(0);
}
if (!/^\d+(,\d+)*$/.test(values.seeds)) {
  process.stderr.write(`learning-check: --seeds must be comma-separated integers, got ${JSON.stringify(values.seeds)}\n`);
  process.exit(2);
}

const env = {
  ...process.env,
  SCENIMEFY_LEARNING_CHECK_OUT: path.resolve(values.out),
  SCENIMEFY_LEARNING_CHECK_ITERATIONS: positiveInteger('iterations', values.iterations),
  SCENIMEFY_LEARNING_CHECK_SEEDS: values.seeds,
  SCENIMEFY_LEARNING_CHECK_EVAL_EVERY: positiveInteger('eval-every', values['eval-every']),
  SCENIMEFY_LEARNING_CHECK_SHEET_EVERY: positiveInteger('sheet-every', values['sheet-every']),
};
const jest = require.resolve('jest/bin/jest', { paths: [repoRoot] });
const result = spawnSync(
  process.execPath,
  [jest, '--runInBand', '--testTimeout', String(24 * 3600 * 1000), 'packages/i2i-core/src/train/learning.test.ts'],
  { cwd: repoRoot, env, stdio: 'inherit' },
);
process.exit(result.status ?? 1);
