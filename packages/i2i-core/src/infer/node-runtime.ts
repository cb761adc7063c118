/**
 * onnxruntime-node as the engine's runtime (Node only), and the only module that names it. It is required on
 * first use, not at import, so that the Node entry loads without the native addon until something runs a session
 * (training never does). The runtime it returns checks what only Node can before onnxruntime sees a model: that a
 * model path is a readable file, and that this build has a CUDA provider when one is asked for.
 */
import { BackendError, assertRegularFile } from '@scenimefy/io';

import { firstLine } from './onnx-session';
import type { OrtRuntime, OrtSessionOptions } from './ort-runtime';

type OnnxruntimeNode = typeof import('onnxruntime-node');

/** onnxruntime-node behind the engine's runtime interface, with its env and backend list. */
export interface NodeOrtRuntime extends OrtRuntime {
  readonly env: OnnxruntimeNode['env'];
  listSupportedBackends: OnnxruntimeNode['listSupportedBackends'];
}

let loaded: NodeOrtRuntime | undefined;

export const CUDA_INSTALL_HINT =
  'onnxruntime-node downloads its CUDA provider in its install script (skipped when npm config ' +
  'onnxruntime-node-install=skip is set or install scripts are not approved: reinstall with ' +
  '`npm rebuild onnxruntime-node --onnxruntime-node-install=cuda12`), and it needs the CUDA 12 and cuDNN 9 ' +
  "libraries on the loader path; or use device 'cpu'";

/**
 * The onnxruntime-node runtime. Its own log lines are turned off (env.logLevel 'fatal') unless the caller set
 * another level first: every failure reaches the caller as an exception, which the engine turns into one typed
 * line, and onnxruntime would otherwise print a raw `[E:onnxruntime:…]` line of its own before it (a CUDA provider
 * that cannot load does). onnxruntime fixes its log level when its first session is created.
 */
export function nodeOrtRuntime(): NodeOrtRuntime {
  if (loaded !== undefined) return loaded;
  // A require at first use keeps the native addon out of processes that never infer.
  const ort = require('onnxruntime-node') as OnnxruntimeNode;
  if (ort.env.logLevel === 'warning') ort.env.logLevel = 'fatal';
  const create = ort.InferenceSession.create as (...args: unknown[]) => ReturnType<OnnxruntimeNode['InferenceSession']['create']>;
  loaded = {
    Tensor: ort.Tensor,
    env: ort.env,
    listSupportedBackends: ort.listSupportedBackends,
    InferenceSession: {
      create: (async (...args: unknown[]) => {
        if (typeof args[0] === 'string') await assertRegularFile(args[0], 'the ONNX model');
        const options = args.find((a): a is OrtSessionOptions => typeof a === 'object' && a !== null && 'executionProviders' in a);
        const cuda = options?.executionProviders?.some((ep) => (typeof ep === 'string' ? ep : ep.name) === 'cuda') ?? false;
        if (cuda) assertCudaListed(ort);
        try {
          return await create(...args);
        } catch (error) {
          const message = firstLine(error);
          if (cuda && /cuda|shared librar|provider/i.test(message)) {
            throw new BackendError(`CUDA execution provider is not available (${message}); ${CUDA_INSTALL_HINT}`, { cause: error });
          }
          throw error;
        }
      }) as OrtRuntime['InferenceSession']['create'],
    },
  };
  return loaded;
}

/** The execution providers this onnxruntime-node build lists for this platform (bundled or downloadable). */
export function listedOnnxBackends(): string[] {
  return nodeOrtRuntime()
    .listSupportedBackends()
    .map((b) => b.name);
}

function assertCudaListed(ort: OnnxruntimeNode): void {
  const listed = ort.listSupportedBackends().map((b) => b.name);
  if (!listed.includes('cuda')) {
    throw new BackendError(
      `this onnxruntime-node build has no CUDA execution provider on ${process.platform}-${process.arch} (available: ${listed.join(', ')}); use device 'cpu'`,
    );
  }
}
