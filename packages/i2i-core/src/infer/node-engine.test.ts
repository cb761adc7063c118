import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';

import { buildSync } from 'esbuild';

import { BackendError, InputError, ModelFormatError, UsageError } from '@scenimefy/io';
import { onnx } from 'onnx-proto';

import { createOnnxSession } from './node-engine';
import { listedOnnxBackends } from './node-runtime';
import { runGenerator } from './onnx-session';

/** A stand-in "generator" y = tanh(x) with the exported generator's I/O signature. */
function tanhModel(extraInput = false): Uint8Array {
  const image = (name: string): onnx.IValueInfoProto => ({
    name,
    type: {
      tensorType: {
        elemType: onnx.TensorProto.DataType.FLOAT,
        shape: { dim: [{ dimParam: 'batch' }, { dimValue: 3 }, { dimParam: 'height' }, { dimParam: 'width' }] },
      },
    },
  });
  return onnx.ModelProto.encode({
    irVersion: 8,
    opsetImport: [{ domain: '', version: 17 }],
    graph: {
      name: 'tanh',
      node: extraInput
        ? [{ opType: 'Add', input: ['input', 'other'], output: ['output'] }]
        : [{ opType: 'Tanh', input: ['input'], output: ['output'] }],
      input: extraInput ? [image('input'), image('other')] : [image('input')],
      output: [image('output')],
    },
  }).finish();
}

function rampInput(n: number): Float32Array {
  return Float32Array.from({ length: n }, (_, i) => ((i % 17) - 8) / 4);
}

describe('createOnnxSession / runGenerator', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'onnx-session-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('runs a model from bytes and from a file with the same result', async () => {
    const file = path.join(dir, 'tanh.onnx');
    writeFileSync(file, tanhModel());
    const shape = [1, 3, 8, 12] as const;
    const input = rampInput(3 * 8 * 12);
    const fromBytes = await createOnnxSession(tanhModel(), { threads: 1 });
    const fromFile = await createOnnxSession(file, { threads: 2, device: 'cpu' });
    try {
      expect(fromBytes.device).toBe('cpu');
      expect([fromBytes.inputName, fromBytes.outputName]).toEqual(['input', 'output']);
      const a = await runGenerator(fromBytes, input, shape);
      const b = await runGenerator(fromFile, input, shape);
      expect(a).toBeInstanceOf(Float32Array);
      expect(a.length).toBe(input.length);
      let maxDiff = 0;
      for (let i = 0; i < a.length; i++) maxDiff = Math.max(maxDiff, Math.abs((a[i] ?? NaN) - Math.tanh(input[i] ?? NaN)));
      expect(maxDiff).toBeLessThan(1e-6);
      expect(b).toEqual(a);
    } finally {
      await fromBytes.release();
      await fromFile.release();
    }
  });

  it('rejects bad options, missing files and malformed models with typed errors', async () => {
    await expect(createOnnxSession(tanhModel(), { threads: 0 })).rejects.toThrow(UsageError);
    await expect(createOnnxSession(tanhModel(), { device: 'tpu' as 'cpu' })).rejects.toThrow(/unknown device 'tpu'/);
    const missing = path.join(dir, 'nope.onnx');
    await expect(createOnnxSession(missing)).rejects.toThrow(InputError);
    await expect(createOnnxSession(missing)).rejects.toThrow(missing);
    const garbage = path.join(dir, 'garbage.onnx');
    writeFileSync(garbage, Buffer.from('this is not a protobuf'));
    const err = await createOnnxSession(garbage).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ModelFormatError);
    expect((err as Error).message).toContain(garbage);
    await expect(createOnnxSession(tanhModel(true))).rejects.toThrow(/expected one input and one output/);
  });

  it('checks the input shape and length', async () => {
    const session = await createOnnxSession(tanhModel(), { threads: 1 });
    try {
      await expect(runGenerator(session, rampInput(3 * 10 * 12), [1, 3, 10, 12])).rejects.toThrow(InputError);
      await expect(runGenerator(session, rampInput(3 * 4 * 4), [1, 3, 4, 4])).rejects.toThrow(/at least 8/);
      await expect(runGenerator(session, rampInput(5), [1, 3, 8, 8])).rejects.toThrow(/has 5 values/);
    } finally {
      await session.release();
    }
  });

  it("device 'cuda' either runs on CUDA or throws BackendError, never silently uses the CPU", async () => {
    const outcome = await createOnnxSession(tanhModel(), { device: 'cuda' }).catch((e: unknown) => e);
    if (outcome instanceof Error) {
      expect(outcome).toBeInstanceOf(BackendError);
      expect((outcome as BackendError).code).toBe('E_BACKEND');
      expect(outcome.message).toMatch(listedOnnxBackends().includes('cuda') ? /CUDA execution provider/ : /no CUDA/);
      expect(outcome.message).not.toContain('\n');
    } else {
      const session = outcome as Awaited<ReturnType<typeof createOnnxSession>>;
      expect(session.device).toBe('cuda');
      const out = await runGenerator(session, rampInput(3 * 8 * 8), [1, 3, 8, 8]);
      expect(Math.abs((out[1] ?? NaN) - Math.tanh(rampInput(2)[1] ?? NaN))).toBeLessThan(1e-5);
      await session.release();
    }
  });

  it("device 'cuda' prints only the one-line error: onnxruntime's own log stays quiet (issue 12 #13)", () => {
    const model = path.join(dir, 'tanh-cuda.onnx');
    writeFileSync(model, tanhModel());
    // A child process, because onnxruntime prints to the process's stderr from native code, where jest cannot look.
    const script = path.join(dir, 'cuda-child.js');
    buildSync({
      stdin: {
        contents: `
          import { createOnnxSession } from './node-engine';
          createOnnxSession(process.argv[2], { device: 'cuda' }).then(
            (s) => { process.stdout.write(JSON.stringify({ device: s.device })); return s.release(); },
            (e) => { process.stdout.write(JSON.stringify({ error: e.name, message: e.message })); },
          );`,
        resolveDir: __dirname,
        loader: 'ts',
      },
      bundle: true,
      platform: 'node',
      outfile: script,
      conditions: ['@scenimefy/source'],
      mainFields: ['module', 'main'],
      external: ['onnxruntime-node', 'sharp', '@tensorflow/*'],
      logLevel: 'silent',
    });
    const child = spawnSync(process.execPath, [script, model], {
      encoding: 'utf8',
      env: { ...process.env, NODE_PATH: path.resolve(__dirname, '../../../../node_modules') },
    });
    expect(child.status).toBe(0);
    const outcome = JSON.parse(child.stdout) as { device?: string; error?: string; message?: string };
    if (outcome.error !== undefined) {
      expect(outcome.error).toBe('BackendError');
      expect(outcome.message).toMatch(/CUDA execution provider/);
    } else {
      expect(outcome.device).toBe('cuda');
    }
    expect(child.stderr).toBe('');
  });
});
