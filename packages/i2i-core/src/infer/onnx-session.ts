/**
 * A thin onnxruntime-node wrapper for the exported generator: create a session on CPU or CUDA with typed
 * errors, and run one NCHW float32 image through it.
 */
import { promises as fsp } from 'node:fs';

import { BackendError, InputError, ModelFormatError, UsageError } from '@scenimefy/io';
import * as ort from 'onnxruntime-node';

export type OnnxDevice = 'cpu' | 'cuda';

export interface OnnxSessionOptions {
  /** Threads for one operator (onnxruntime's intraOpNumThreads); default: onnxruntime's choice (all cores). */
  threads?: number;
  /** Execution provider (default 'cpu'). 'cuda' never falls back to CPU silently: it throws BackendError. */
  device?: OnnxDevice;
}

export interface OnnxSession {
  readonly session: ort.InferenceSession;
  readonly device: OnnxDevice;
  readonly inputName: string;
  readonly outputName: string;
  /** Frees the native session; the object is unusable afterwards. */
  release(): Promise<void>;
}

const CUDA_INSTALL_HINT =
  'onnxruntime-node downloads its CUDA provider in its install script (skipped when npm config ' +
  'onnxruntime-node-install=skip is set or install scripts are not approved: reinstall with ' +
  '`npm rebuild onnxruntime-node --onnxruntime-node-install=cuda12`), and it needs the CUDA 12 and cuDNN 9 ' +
  "libraries on the loader path; or use device 'cpu'";

/** An onnxruntime session over an ONNX model given as a file path or its bytes. */
export async function createOnnxSession(model: string | Uint8Array, options: OnnxSessionOptions = {}): Promise<OnnxSession> {
  const device = options.device ?? 'cpu';
  if (device !== 'cpu' && device !== 'cuda') {
    throw new UsageError(`unknown device '${String(device)}' (valid: cpu, cuda)`);
  }
  const threads = options.threads;
  if (threads !== undefined && (!Number.isInteger(threads) || threads < 1)) {
    throw new UsageError(`threads must be a positive integer, got ${threads}`);
  }
  const label = typeof model === 'string' ? model : 'ONNX model (in memory)';
  if (typeof model === 'string') await assertReadableFile(model);
  if (device === 'cuda') assertCudaListed();

  const sessionOptions: ort.InferenceSession.SessionOptions = {
    executionProviders: [device],
    graphOptimizationLevel: 'all',
    executionMode: 'sequential',
    ...(threads !== undefined ? { intraOpNumThreads: threads, interOpNumThreads: 1 } : {}),
  };
  let session: ort.InferenceSession;
  try {
    session =
      typeof model === 'string'
        ? await ort.InferenceSession.create(model, sessionOptions)
        : await ort.InferenceSession.create(model, sessionOptions);
  } catch (error) {
    const message = firstLine(error);
    if (device === 'cuda' && /cuda|shared librar|provider/i.test(message)) {
      throw new BackendError(`CUDA execution provider is not available (${message}); ${CUDA_INSTALL_HINT}`, {
        cause: error,
      });
    }
    throw new ModelFormatError(`onnxruntime cannot load the model: ${message}`, {
      file: typeof model === 'string' ? model : undefined,
      cause: error,
    });
  }
  const inputName = session.inputNames[0];
  const outputName = session.outputNames[0];
  if (session.inputNames.length !== 1 || session.outputNames.length !== 1 || !inputName || !outputName) {
    await session.release();
    throw new ModelFormatError(
      `${label}: expected one input and one output, found inputs [${session.inputNames.join(', ')}] and outputs [${session.outputNames.join(', ')}]`,
      { file: typeof model === 'string' ? model : undefined },
    );
  }
  return { session, device, inputName, outputName, release: () => session.release() };
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
  const feed = new ort.Tensor('float32', input, [n, c, h, w]);
  let outputs: ort.InferenceSession.OnnxValueMapType | undefined;
  try {
    outputs = await generator.session.run({ [generator.inputName]: feed });
    const output = outputs[generator.outputName];
    if (output === undefined) {
      throw new ModelFormatError(`onnxruntime returned no '${generator.outputName}' output`);
    }
    const dims = output.dims;
    if (output.type !== 'float32' || dims.length !== 4 || dims.some((d, i) => d !== shape[i])) {
      throw new ModelFormatError(`generator output is ${output.type} [${dims.join(', ')}], expected float32 [${shape.join(', ')}]`);
    }
    // A copy owned by the caller: disposing the tensor below cannot invalidate it.
    return new Float32Array(output.data as Float32Array);
  } finally {
    feed.dispose();
    if (outputs) for (const value of Object.values(outputs)) value.dispose();
  }
}

/** The execution providers this onnxruntime-node build lists for this platform (bundled or downloadable). */
export function listedOnnxBackends(): string[] {
  return ort.listSupportedBackends().map((b) => b.name);
}

function assertCudaListed(): void {
  const listed = listedOnnxBackends();
  if (!listed.includes('cuda')) {
    throw new BackendError(
      `this onnxruntime-node build has no CUDA execution provider on ${process.platform}-${process.arch} (available: ${listed.join(', ')}); use device 'cpu'`,
    );
  }
}

async function assertReadableFile(file: string): Promise<void> {
  try {
    const stat = await fsp.stat(file);
    if (!stat.isFile()) throw new InputError('ONNX model path is not a file', { file });
  } catch (error) {
    if (error instanceof InputError) throw error;
    const code = (error as NodeJS.ErrnoException).code ?? 'EIO';
    throw new InputError(`cannot read ONNX model (${code})`, { file, cause: error });
  }
}

function firstLine(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.split('\n')[0]?.trim() ?? message;
}
