// Backends are process-global (and a native addon loads once per process), so every loadTf test lives in this one
// file and runs in order: the default pick comes first, before any explicit `prefer` switches the process.
import { BackendError, UsageError } from './errors';
import { BACKEND_ENV_VAR, availableBackends, describeBackend, loadTf } from './tf-backend';
import type { TfLoadResult } from './tf-backend';

const installed = availableBackends();
const hasTfjsNode = installed.some((b) => b.candidate === 'tfjs-node');
const hasTfjsNodeGpu = installed.some((b) => b.candidate === 'tfjs-node-gpu');

/** conv2d on whatever backend is active, from fixed pseudo-random data so every backend sees the same input. */
function conv2dOnActive(result: TfLoadResult, seed: number): Float32Array {
  const { tf } = result;
  return tf
    .tidy(() => {
      const x = tf.tensor4d(pseudoRandom(1 * 9 * 11 * 3, seed), [1, 9, 11, 3]);
      const w = tf.tensor4d(pseudoRandom(3 * 3 * 3 * 5, seed + 1), [3, 3, 3, 5]);
      const same = tf.conv2d(x, w, 1, 'same');
      const strided = tf.conv2d(x, w, 2, 'valid');
      return tf.concat([tf.reshape(same, [-1]), tf.reshape(strided, [-1])]);
    })
    .dataSync() as Float32Array;
}

/** Values in [-1, 1) from a 32-bit LCG: deterministic without depending on any backend's RNG. */
function pseudoRandom(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let state = seed >>> 0;
  for (let i = 0; i < n; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    out[i] = state / 2 ** 31 - 1;
  }
  return out;
}

function expectClose(actual: Float32Array, expected: Float32Array, atol: number, rtol: number): void {
  expect(actual.length).toBe(expected.length);
  let worst = 0;
  for (let i = 0; i < expected.length; i++) {
    const e = expected[i] as number;
    const excess = Math.abs((actual[i] as number) - e) - (atol + rtol * Math.abs(e));
    worst = Math.max(worst, excess);
  }
  expect(worst).toBeLessThanOrEqual(0);
}

describe('availableBackends', () => {
  test('lists the installed backend packages in preference order without initialising any', () => {
    const candidates = installed.map((b) => b.candidate);
    expect(candidates).toEqual(expect.arrayContaining(['wasm', 'cpu']));
    expect(candidates.slice(-2)).toEqual(['wasm', 'cpu']);
    for (const b of installed) expect(b.version).toBe('4.22.0');
    const tf = require('@tensorflow/tfjs-core') as typeof import('@tensorflow/tfjs-core');
    expect(Object.keys(tf.engine().registry)).toEqual([]);
  });
});

describe('describeBackend', () => {
  test('names backend, package, version, details and threads', () => {
    expect(
      describeBackend({
        backend: 'tensorflow',
        package: '@tensorflow/tfjs-node',
        version: '4.22.0',
        threads: 2,
        details: [],
      }),
    ).toBe('tensorflow (tfjs-node 4.22.0, 2 threads)');
    expect(
      describeBackend({
        backend: 'wasm',
        package: '@tensorflow/tfjs-backend-wasm',
        version: '4.22.0',
        threads: 1,
        details: ['SIMD'],
      }),
    ).toBe('wasm (tfjs-backend-wasm 4.22.0, SIMD, 1 thread)');
  });
});

describe('loadTf', () => {
  const savedEnv = process.env[BACKEND_ENV_VAR];
  afterEach(() => {
    if (savedEnv === undefined) delete process.env[BACKEND_ENV_VAR];
    else process.env[BACKEND_ENV_VAR] = savedEnv;
  });

  let first: TfLoadResult;

  test('default: loads the fastest working backend and says why it skipped the others', async () => {
    delete process.env[BACKEND_ENV_VAR];
    const lines: string[] = [];
    first = await loadTf({ log: (line) => lines.push(line) });
    expect(first.tf.getBackend()).toBe(first.backend);
    expect(first.reason).toMatch(/tfjs-node-gpu → tfjs-node → wasm → cpu/);
    if (!hasTfjsNodeGpu) expect(first.skipped).toContainEqual({ candidate: 'tfjs-node-gpu', reason: 'not installed' });
    if (hasTfjsNode) {
      expect(first).toMatchObject({
        backend: 'tensorflow',
        candidate: 'tfjs-node',
        package: '@tensorflow/tfjs-node',
        version: '4.22.0',
      });
      expect(first.details.join(' ')).toMatch(/^TensorFlow \d+\.\d+/);
    } else {
      expect(first.skipped).toContainEqual({ candidate: 'tfjs-node', reason: 'not installed' });
      expect(first).toMatchObject({ backend: 'wasm', candidate: 'wasm' });
    }
    // One line per skipped candidate, then the choice.
    expect(lines).toHaveLength(first.skipped.length + 1);
    expect(lines.at(-1)).toContain(describeBackend(first));
  });

  test('a second call returns the same result without registering anything again', async () => {
    const registered = Object.keys(first.tf.engine().registryFactory);
    const initialised = Object.keys(first.tf.engine().registry);
    const again = await loadTf();
    expect(again).toBe(first);
    expect(Object.keys(first.tf.engine().registryFactory)).toEqual(registered);
    expect(Object.keys(first.tf.engine().registry)).toEqual(initialised);
  });

  test('SCENIMEFY_TF_BACKEND chooses the backend when prefer is not given', async () => {
    process.env[BACKEND_ENV_VAR] = 'cpu';
    const viaEnv = await loadTf();
    expect(viaEnv).toMatchObject({ backend: 'cpu', candidate: 'cpu', threads: 1, skipped: [] });
    expect(viaEnv.reason).toContain('requested by SCENIMEFY_TF_BACKEND=cpu');
    expect(viaEnv.tf.getBackend()).toBe('cpu');
    // An explicit prefer wins over the variable.
    const explicit = await loadTf({ prefer: 'wasm' });
    expect(explicit.backend).toBe('wasm');
    process.env[BACKEND_ENV_VAR] = 'tfjs-nodes';
    await expect(loadTf()).rejects.toThrow(UsageError);
    await expect(loadTf()).rejects.toThrow(/SCENIMEFY_TF_BACKEND=tfjs-nodes is not a backend/);
  });

  test("prefer 'cpu' and 'wasm' both work and agree on a conv2d (atol 1e-5, rtol 0)", async () => {
    const cpu = await loadTf({ prefer: 'cpu' });
    expect(cpu.tf.getBackend()).toBe('cpu');
    expect(cpu.reason).toContain("requested by prefer: 'cpu'");
    const onCpu = conv2dOnActive(cpu, 7);

    const wasm = await loadTf({ prefer: 'wasm', wasmThreads: 4 });
    expect(wasm.tf).toBe(cpu.tf);
    expect(wasm.tf.getBackend()).toBe('wasm');
    expect(wasm.threads).toBe(1);
    expect(wasm.reason).toMatch(/single-threaded: tfjs-backend-wasm 4\.22\.0 turns its thread pool off in Node/);
    expect(describeBackend(wasm)).toMatch(/^wasm \(tfjs-backend-wasm 4\.22\.0, (no )?SIMD, 1 thread\)$/);
    const onWasm = conv2dOnActive(wasm, 7);

    expect(onCpu.some((v) => Math.abs(v) > 1)).toBe(true);
    expectClose(onWasm, onCpu, 1e-5, 0);
  });

  test('gradients and chained ops exist on every backend: grad of a conv2d wrt its input, cpu vs wasm (atol 1e-5)', async () => {
    const inputGrad = (result: TfLoadResult): Float32Array => {
      const { tf } = result;
      return tf
        .tidy(() => {
          const x = tf.tensor4d(pseudoRandom(1 * 6 * 7 * 2, 3), [1, 6, 7, 2]);
          const w = tf.tensor4d(pseudoRandom(3 * 3 * 2 * 4, 4), [3, 3, 2, 4]);
          const target = tf.tensor4d(pseudoRandom(6 * 7 * 4, 5), [1, 6, 7, 4]);
          const loss = (input: import('@tensorflow/tfjs-core').Tensor) =>
            tf.mean(tf.square(tf.sub(tf.conv2d(input as import('@tensorflow/tfjs-core').Tensor4D, w, 1, 'same'), target)));
          return tf.grad(loss)(x);
        })
        .dataSync() as Float32Array;
    };
    const cpu = await loadTf({ prefer: 'cpu' });
    // Chained ops are registered at run time; tfjs-core's own typings leave them out.
    const probe = cpu.tf.scalar(1) as unknown as { flatten?: unknown; sub?: unknown };
    expect([typeof probe.flatten, typeof probe.sub]).toEqual(['function', 'function']);
    const onCpu = inputGrad(cpu);
    const onWasm = inputGrad(await loadTf({ prefer: 'wasm' }));
    expect(onCpu.some((v) => v !== 0)).toBe(true);
    expectClose(onWasm, onCpu, 1e-5, 0);
  });

  test('require: true with an unavailable backend throws a BackendError that says how to install it', async () => {
    const before = (await loadTf({ prefer: 'cpu' })).tf.getBackend();
    if (!hasTfjsNodeGpu) {
      const attempt = loadTf({ prefer: 'tfjs-node-gpu', require: true });
      await expect(attempt).rejects.toThrow(BackendError);
      await expect(attempt).rejects.toThrow(
        /@tensorflow\/tfjs-node-gpu\) is unavailable: not installed; to install it, .*npm install @tensorflow\/tfjs-node-gpu@4\.22\.0.*npx scenimefy setup tfjs-node/,
      );
    }
    if (!hasTfjsNode) {
      await expect(loadTf({ prefer: 'tfjs-node', require: true })).rejects.toThrow(
        /backend tfjs-node \(@tensorflow\/tfjs-node\) is unavailable: not installed; to install it, run `npx scenimefy setup tfjs-node` \(or `npm run setup:tfjs-node` in the Scenimefy\.js checkout/,
      );
    }
    // A failed request leaves the process on the backend it had.
    const after = await loadTf();
    expect(after.tf.getBackend()).toBe(before);
    expect(after.candidate).toBe('cpu');
    await expect(loadTf({ require: true })).rejects.toThrow(UsageError);
  });

  test('without require, an unavailable preference falls back and names the missing one in the reason', async () => {
    const missing = !hasTfjsNodeGpu ? 'tfjs-node-gpu' : !hasTfjsNode ? 'tfjs-node' : undefined;
    if (missing === undefined) return;
    const result = await loadTf({ prefer: missing });
    expect(result.candidate).not.toBe(missing);
    expect(result.skipped[0]).toEqual({ candidate: missing, reason: 'not installed' });
    expect(result.reason).toContain(`${missing} (prefer: '${missing}') unavailable: not installed; fell back`);
  });

  (hasTfjsNode ? test : test.skip)('tfjs-node matches the cpu backend on a conv2d (atol 1e-5, rtol 1e-5)', async () => {
    const cpu = await loadTf({ prefer: 'cpu' });
    const onCpu = conv2dOnActive(cpu, 11);
    const native = await loadTf({ prefer: 'tfjs-node', require: true });
    expect(native.tf).toBe(cpu.tf);
    expect(native.tf.getBackend()).toBe('tensorflow');
    expect(native.threads).toBeGreaterThanOrEqual(1);
    const onNative = conv2dOnActive(native, 11);
    expectClose(onNative, onCpu, 1e-5, 1e-5);
  });
});
