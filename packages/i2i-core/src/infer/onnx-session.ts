/**
 * The generator as one onnxruntime session, on whichever onnxruntime the caller passes in (ort-runtime.ts):
 * create the session with typed errors, and run one NCHW float32 image through it. Browser-safe; the Node entry
 * adds files, onnxruntime-node and its CUDA checks (node-engine.ts).
 */
import { BackendError, InputError, ModelFormatError, UsageError, isScenimefyError } from '@scenimefy/io/core';

import type { OrtInferenceSession, OrtRuntime, OrtSessionOptions, OrtValueMap } from './ort-runtime';
import { float32Output } from './ort-runtime';

export type OnnxDevice = 'cpu' | 'cuda';

const DEVICES: readonly OnnxDevice[] = ['cpu', 'cuda'];

export interface OnnxSessionOptions {
  /** Threads for one operator (onnxruntime's intraOpNumThreads); default: onnxruntime's choice (all cores). */
  threads?: number;
  /** Execution provider (default 'cpu'). 'cuda' never falls back to CPU silently: it throws BackendError. */
  device?: OnnxDevice;
  /** Names an in-memory model in error messages (a path given as the model names itself). */
  source?: string;
}

export interface OnnxSession {
  readonly session: OrtInferenceSession;
  /** The onnxruntime the session was made with; its Tensor class feeds the session. */
  readonly runtime: OrtRuntime;
  readonly device: OnnxDevice;
  readonly inputName: string;
  readonly outputName: string;
  /** Frees the session; the object is unusable afterwards. */
  release(): Promise<void>;
}

/** Throws UsageError for a device or thread count the engine does not take. */
export function checkSessionOptions(options: OnnxSessionOptions): OnnxDevice {
  const device = options.device ?? 'cpu';
  if (!DEVICES.includes(device)) {
    throw new UsageError(`unknown device '${String(device)}' (valid: ${DEVICES.join(', ')})`);
  }
  const threads = options.threads;
  if (threads !== undefined && (!Number.isInteger(threads) || threads < 1)) {
    throw new UsageError(`threads must be a positive integer, got ${threads}`);
  }
  return device;
}

/**
 * An onnxruntime session over an ONNX model given as its bytes (or a path/URL the runtime itself loads), with the
 * generator's one input and one output.
 */
export async function createOnnxSession(
  runtime: OrtRuntime,
  model: string | Uint8Array,
  options: OnnxSessionOptions = {},
): Promise<OnnxSession> {
  const device = checkSessionOptions(options);
  const threads = options.threads;
  const file = typeof model === 'string' ? model : options.source;
  const label = file ?? 'ONNX model (in memory)';
  const sessionOptions: OrtSessionOptions = {
    executionProviders: [device],
    graphOptimizationLevel: 'all',
    executionMode: 'sequential',
    ...(threads !== undefined ? { intraOpNumThreads: threads, interOpNumThreads: 1 } : {}),
  };
  let session: OrtInferenceSession;
  try {
    session =
      typeof model === 'string'
        ? await runtime.InferenceSession.create(model, sessionOptions)
        : await runtime.InferenceSession.create(model, sessionOptions);
  } catch (error) {
    // A runtime that checks models itself (the Node runtime: files, CUDA) already says what is wrong.
    if (isScenimefyError(error)) throw error;
    const message = firstLine(error);
    if (device !== 'cpu' && /cuda|shared librar|provider/i.test(message)) {
      throw new BackendError(`${device.toUpperCase()} execution provider is not available (${message})`, { cause: error });
    }
    throw new ModelFormatError(`onnxruntime cannot load the model: ${message}`, { file, cause: error });
  }
  const inputName = session.inputNames[0];
  const outputName = session.outputNames[0];
  if (session.inputNames.length !== 1 || session.outputNames.length !== 1 || !inputName || !outputName) {
    await session.release();
    throw new ModelFormatError(
      `${label}: expected one input and one output, found inputs [${session.inputNames.join(', ')}] and outputs [${session.outputNames.join(', ')}]`,
      { file },
    );
  }
  return { session, runtime, device, inputName, outputName, release: () => session.release() };
}

/**
 * The generator's output for one NCHW float32 input in [-1, 1]; H and W must be multiples of 4 (≥ 8) so that
 * the output has the input's shape (SPEC §1 sizes, §8 preprocessing).
 */
export async function runGenerator(
  generator: OnnxSession,
  input: Float32Array,
  shape: readonly [number, number, number, number],
): Promise<Float32Array> {
  const [n, c, h, w] = shape;
  if (c !== 3 || n < 1 || h < 8 || w < 8 || h % 4 !== 0 || w % 4 !== 0) {
    throw new InputError(`generator input must be [N, 3, H, W] with H and W multiples of 4 and at least 8, got [${shape.join(', ')}]`);
  }
  if (input.length !== n * c * h * w) {
    throw new InputError(`generator input has ${input.length} values, shape [${shape.join(', ')}] needs ${n * c * h * w}`);
  }
  const feed = new generator.runtime.Tensor('float32', input, [n, c, h, w]);
  let outputs: OrtValueMap | undefined;
  try {
    outputs = await generator.session.run({ [generator.inputName]: feed });
    const value = outputs[generator.outputName];
    if (value === undefined) {
      throw new ModelFormatError(`onnxruntime returned no '${generator.outputName}' output`);
    }
    const output = float32Output(value);
    const dims = output?.dims ?? value.dims;
    if (output === undefined || dims.length !== 4 || dims.some((d, i) => d !== shape[i])) {
      throw new ModelFormatError(`generator output is ${value.type} [${dims.join(', ')}], expected float32 [${shape.join(', ')}]`);
    }
    // A copy owned by the caller: disposing the tensor below cannot invalidate it.
    return new Float32Array(output.data);
  } finally {
    feed.dispose();
    if (outputs) for (const value of Object.values(outputs)) value.dispose();
  }
}

export function firstLine(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.split('\n')[0]?.trim() ?? message;
}
