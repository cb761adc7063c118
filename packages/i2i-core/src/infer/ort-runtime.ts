/**
 * The onnxruntime the engine runs on, passed in rather than imported: the `InferenceSession` and `Tensor` of
 * onnxruntime-common's API, which onnxruntime-node and onnxruntime-web both export. The way onnxruntime's own
 * `js/common` keeps the interfaces apart from its node and web backends, nothing here loads a backend, so the
 * engine runs in a page (onnxruntime-web) and in Node (onnxruntime-node, see node-runtime.ts) unchanged.
 *
 * Example:
 * ```ts
 * import * as ort from 'onnxruntime-web'; // or 'onnxruntime-node'
 * const session = await createOnnxSession(ort, onnxBytes);
 * ```
 */
import type * as ortCommon from 'onnxruntime-common';

/** An onnxruntime module: `import * as ort from 'onnxruntime-web'` or `'onnxruntime-node'` satisfies it. */
export interface OrtRuntime {
  readonly InferenceSession: Pick<typeof ortCommon.InferenceSession, 'create'>;
  readonly Tensor: typeof ortCommon.Tensor;
}

export type OrtInferenceSession = ortCommon.InferenceSession;
export type OrtSessionOptions = ortCommon.InferenceSession.SessionOptions;
export type OrtTensor = ortCommon.Tensor;
export type OrtValueMap = ortCommon.InferenceSession.OnnxValueMapType;

/** Whether `value` looks like an onnxruntime module (used to tell a runtime argument from a model argument). */
export function isOrtRuntime(value: unknown): value is OrtRuntime {
  if (typeof value !== 'object' || value === null) return false;
  const candidate = value as Partial<Record<keyof OrtRuntime, unknown>>;
  const session = candidate.InferenceSession as { create?: unknown } | undefined;
  return typeof session?.create === 'function' && typeof candidate.Tensor === 'function';
}

/** A float32 NCHW tensor among a session's outputs, checked by shape rather than by class (runtimes may differ). */
export function float32Output(value: unknown): { data: Float32Array; dims: readonly number[] } | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const tensor = value as Partial<OrtTensor>;
  // Not `instanceof`: a native runtime may make its arrays in another realm (jest's vm contexts, jest #11864).
  if (tensor.type !== 'float32' || !Array.isArray(tensor.dims) || Object.prototype.toString.call(tensor.data) !== '[object Float32Array]') {
    return undefined;
  }
  return { data: tensor.data as Float32Array, dims: tensor.dims };
}
