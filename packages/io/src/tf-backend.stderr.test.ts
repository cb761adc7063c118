// Issue 12 #13: TensorFlow's C++ log lines (oneDNN, CPU features) reached the user's terminal when tfjs-node loaded.
// loadTf sets TF_CPP_MIN_LOG_LEVEL=2 first unless the user set it. Checked in a child process: jest gives each test
// file its own copy of process.env, which a native library never sees, so only a real process shows the effect.
import { spawnSync } from 'node:child_process';
import * as os from 'node:os';
import * as path from 'node:path';
import { promises as fsp } from 'node:fs';

import { repoRoot } from '@scenimefy/test-utils';
import { buildSync } from 'esbuild';

import { availableBackends } from './tf-backend';

const hasTfjsNode = availableBackends().some((b) => b.candidate === 'tfjs-node');

/**
 * Two lines libtensorflow_framework prints from its static initialisers while it is being loaded, before any
 * setting can reach absl's logger (TF_CPP_MIN_LOG_LEVEL=3 does not stop them; only TF_ENABLE_ONEDNN_OPTS=0, which
 * turns oneDNN's kernels off and changes numerics, does). Everything else must be gone.
 */
const LOAD_TIME_LINES = [
  /^WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR$/,
  /^I\d{4} [\d:.]+ +\d+ port\.cc:\d+\] oneDNN custom operations are on\./,
];

let bundle: string;
let tmp: string;
beforeAll(async () => {
  tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'scenimefy-tf-stderr-'));
  bundle = path.join(tmp, 'tf-backend.cjs');
  buildSync({
    entryPoints: [path.join(__dirname, 'tf-backend.ts')],
    bundle: true,
    platform: 'node',
    format: 'cjs',
    outfile: bundle,
    external: ['@tensorflow/*'],
    logLevel: 'silent',
  });
});
afterAll(async () => {
  await fsp.rm(tmp, { recursive: true, force: true });
});

/** stderr of a child that loads tfjs-node through loadTf and runs one conv2d. */
function childStderr(env: Record<string, string | undefined>): { stdout: string; lines: string[] } {
  const script = `
    require(${JSON.stringify(bundle)}).loadTf({ prefer: 'tfjs-node', require: true }).then(({ tf }) => {
      const y = tf.conv2d(tf.ones([1, 8, 8, 3]), tf.ones([3, 3, 3, 4]), 1, 'same');
      process.stdout.write('sum ' + y.sum().dataSync()[0]);
    });`;
  const childEnv: Record<string, string> = { ...(process.env as Record<string, string>), NODE_PATH: path.join(repoRoot(), 'node_modules') };
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined) delete childEnv[k];
    else childEnv[k] = v;
  }
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', env: childEnv, timeout: 60_000 });
  return { stdout: r.stdout, lines: r.stderr.split('\n').filter((l) => l.trim() !== '') };
}

const describeNative = hasTfjsNode ? describe : describe.skip;
describeNative(
  hasTfjsNode ? 'tfjs-node start-up logging' : 'tfjs-node start-up logging — SKIPPED: @tensorflow/tfjs-node is not installed',
  () => {
    it('keeps TensorFlow log lines off stderr, except the two printed while its library loads', () => {
      const { stdout, lines } = childStderr({ TF_CPP_MIN_LOG_LEVEL: undefined });
      expect(stdout).toBe('sum 5808');
      expect(lines.filter((l) => !LOAD_TIME_LINES.some((known) => known.test(l)))).toEqual([]);
    });

    it("respects the user's own TF_CPP_MIN_LOG_LEVEL (and the check sees TensorFlow's lines when they come)", () => {
      const { stdout, lines } = childStderr({ TF_CPP_MIN_LOG_LEVEL: '0' });
      expect(stdout).toBe('sum 5808');
      expect(lines.some((l) => /cpu_feature_guard\.cc:\d+\]/.test(l))).toBe(true);
    });
  },
);
