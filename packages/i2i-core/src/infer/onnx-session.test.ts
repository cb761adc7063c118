import { BackendError, ModelFormatError, UsageError, readTorchStateDict } from '@scenimefy/io';
import { describeIfFixture, referenceFixturePath } from '@scenimefy/test-utils';
import * as ort from 'onnxruntime-node';

import { exportGeneratorOnnx } from '../export/onnx';
import { createOnnxSession, runGenerator } from './onnx-session';
import { isOrtRuntime, type OrtRuntime, type OrtSessionOptions } from './ort-runtime';
import { createTiledGenerator } from './tiled-generator';

/** onnxruntime-node behind a runtime that records what the engine asks of it. */
function recordingRuntime(): OrtRuntime & { sessions: OrtSessionOptions[]; tensors: number } {
  const record = {
    sessions: [] as OrtSessionOptions[],
    tensors: 0,
    InferenceSession: {
      create: (async (model: Uint8Array, options: OrtSessionOptions) => {
        record.sessions.push(options);
        return ort.InferenceSession.create(model, options);
      }) as OrtRuntime['InferenceSession']['create'],
    },
    Tensor: new Proxy(ort.Tensor, {
      construct(target, args) {
        record.tensors++;
        return Reflect.construct(target, args);
      },
    }),
  };
  return record;
}

/** A runtime whose sessions cannot be created, with onnxruntime's message. */
function failingRuntime(message: string): OrtRuntime {
  return {
    InferenceSession: {
      create: (async () => {
        throw new Error(`${message}\nsecond line`);
      }) as OrtRuntime['InferenceSession']['create'],
    },
    Tensor: ort.Tensor,
  };
}

describe('the engine on an injected runtime', () => {
  it('tells a runtime from a model', () => {
    expect(isOrtRuntime(ort)).toBe(true);
    expect(isOrtRuntime(recordingRuntime())).toBe(true);
    expect(isOrtRuntime(new Uint8Array(4))).toBe(false);
    expect(isOrtRuntime('model.onnx')).toBe(false);
    expect(isOrtRuntime(new Map())).toBe(false);
    expect(isOrtRuntime({ InferenceSession: {}, Tensor: ort.Tensor })).toBe(false);
  });

  it('turns runtime failures into typed one-line errors', async () => {
    const bytes = new Uint8Array([8, 1]);
    const model = await createOnnxSession(failingRuntime('bad protobuf'), bytes, { source: 'picked.onnx' }).catch((e: unknown) => e);
    expect(model).toBeInstanceOf(ModelFormatError);
    expect((model as Error).message).toBe('picked.onnx: onnxruntime cannot load the model: bad protobuf');
    const cuda = await createOnnxSession(failingRuntime('Failed to load shared library'), bytes, { device: 'cuda' }).catch(
      (e: unknown) => e,
    );
    expect(cuda).toBeInstanceOf(BackendError);
    expect((cuda as Error).message).toBe('CUDA execution provider is not available (Failed to load shared library)');
    await expect(createOnnxSession(failingRuntime('x'), bytes, { device: 'tpu' as 'cpu' })).rejects.toThrow(
      new UsageError("unknown device 'tpu' (valid: cpu, cuda)"),
    );
  });
});

describeIfFixture('i2i/netG-ngf16.pth', 'the engine on an injected runtime with the ngf16 generator', () => {
  it('creates every session and tensor through the runtime given, whole and tiled, with the same output', async () => {
    const stateDict = await readTorchStateDict(referenceFixturePath('i2i/netG-ngf16.pth'));
    const runtime = recordingRuntime();
    const shape = [1, 3, 32, 40] as const;
    const input = Float32Array.from({ length: 3 * 32 * 40 }, (_, i) => Math.sin(i / 7));
    const whole = await createOnnxSession(runtime, exportGeneratorOnnx(stateDict), { threads: 1 });
    const tiled = await createTiledGenerator(runtime, stateDict, { tileSize: 16, threads: 1 });
    try {
      // One whole-image session, then one per tiled pass: 4 head, 2 per residual block, 3 tail.
      expect(runtime.sessions).toHaveLength(1 + 4 + 2 * 9 + 3);
      expect(runtime.sessions[0]).toMatchObject({ executionProviders: ['cpu'], intraOpNumThreads: 1 });
      const a = await runGenerator(whole, input, shape);
      expect(runtime.tensors).toBe(1);
      const b = await tiled.run(input, shape);
      expect(runtime.tensors).toBeGreaterThan(1);
      expect(b).toBeCloseToTensor(a, { atol: 2e-5, rtol: 0 });
    } finally {
      await whole.release();
      await tiled.dispose();
    }
  });
});
