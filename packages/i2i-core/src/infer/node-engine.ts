/**
 * The engine as the Node entry offers it: the same functions as the browser entry, whose runtime argument may be
 * left out there — onnxruntime-node is used, loaded at first use, with the checks only Node can make (a model
 * path is a readable file, this build has a CUDA provider; see node-runtime.ts).
 */
import type { TensorMap } from '@scenimefy/io';

import { nodeOrtRuntime } from './node-runtime';
import { createOnnxSession as createSessionOn, type OnnxSession, type OnnxSessionOptions } from './onnx-session';
import { isOrtRuntime, type OrtRuntime } from './ort-runtime';
import { createTiledGenerator as createTiledOn, type TiledGenerator, type TiledGeneratorOptions } from './tiled-generator';

/**
 * An onnxruntime session over an ONNX model given as a file path or its bytes, on onnxruntime-node unless a
 * runtime is given first. Device 'cuda' never falls back to the CPU: it throws BackendError, saying how to
 * install the provider.
 */
export function createOnnxSession(runtime: OrtRuntime, model: string | Uint8Array, options?: OnnxSessionOptions): Promise<OnnxSession>;
export function createOnnxSession(model: string | Uint8Array, options?: OnnxSessionOptions): Promise<OnnxSession>;
export function createOnnxSession(
  ...args: [string | Uint8Array, OnnxSessionOptions?] | [OrtRuntime, string | Uint8Array, OnnxSessionOptions?]
): Promise<OnnxSession> {
  if (isOrtRuntime(args[0])) {
    const [runtime, model, options] = args as [OrtRuntime, string | Uint8Array, OnnxSessionOptions?];
    return createSessionOn(runtime, model, options);
  }
  const [model, options] = args as [string | Uint8Array, OnnxSessionOptions?];
  return createSessionOn(nodeOrtRuntime(), model, options);
}

/** Exact tiled inference (tiled-generator.ts) on onnxruntime-node unless a runtime is given first. */
export function createTiledGenerator(runtime: OrtRuntime, stateDict: TensorMap, options?: TiledGeneratorOptions): Promise<TiledGenerator>;
export function createTiledGenerator(stateDict: TensorMap, options?: TiledGeneratorOptions): Promise<TiledGenerator>;
export function createTiledGenerator(
  ...args: [TensorMap, TiledGeneratorOptions?] | [OrtRuntime, TensorMap, TiledGeneratorOptions?]
): Promise<TiledGenerator> {
  if (isOrtRuntime(args[0])) {
    const [runtime, stateDict, options] = args as [OrtRuntime, TensorMap, TiledGeneratorOptions?];
    return createTiledOn(runtime, stateDict, options);
  }
  const [stateDict, options] = args as [TensorMap, TiledGeneratorOptions?];
  return createTiledOn(nodeOrtRuntime(), stateDict, options);
}
