/**
 * Runs tfjs-backend-wasm's own kernels from inside another kernel, so a kernel we add to the 'wasm' backend can
 * do its heavy arithmetic in wasm (XNNPACK) without going through the engine: no tape, no tensors, only the
 * backend's TensorInfos, each of which must be released with `disposeData` exactly once.
 */
import type { DataType, KernelBackend, NamedAttrMap, NamedTensorInfoMap, TensorInfo } from '@tensorflow/tfjs-core';
import { BackendError } from '@scenimefy/io/core';
import type { Tf } from './tf';

/** The part of tfjs-backend-wasm's `BackendWasm` (4.22, public in its typings) these kernels use. */
export interface WasmBackendLike {
  makeOutput(shape: number[], dtype: DataType): TensorInfo;
  /** A view into the wasm heap; invalid after the next allocation may grow the heap. */
  typedArrayFromHeap(info: TensorInfo): Float32Array | Int32Array | Uint8Array;
  disposeData(dataId: object, force?: boolean): boolean;
}

export function asWasmBackend(backend: unknown, kernelName: string): WasmBackendLike {
  const b = backend as Partial<WasmBackendLike> | undefined;
  if (typeof b?.makeOutput !== 'function' || typeof b.typedArrayFromHeap !== 'function' || typeof b.disposeData !== 'function') {
    throw new BackendError(`wasm-training-kernels: ${kernelName} ran on a backend that is not tfjs-backend-wasm 4.22`);
  }
  return b as WasmBackendLike;
}

/** Every TensorInfo a composed kernel makes, so that all but its result are released, also when it throws. */
export class WasmKernelScope {
  private readonly made: TensorInfo[] = [];

  constructor(
    private readonly tf: Tf,
    readonly backend: WasmBackendLike,
  ) {}

  /** Runs the wasm backend's kernel `name`; the output belongs to this scope. */
  run(name: string, inputs: NamedTensorInfoMap | TensorInfo[], attrs: NamedAttrMap = {}): TensorInfo {
    const kernel = this.tf.getKernel(name, 'wasm');
    if (kernel === undefined) throw new BackendError(`wasm-training-kernels: the wasm backend has no ${name} kernel to build on`);
    const out = kernel.kernelFunc({
      inputs: inputs as NamedTensorInfoMap,
      attrs,
      backend: this.backend as unknown as KernelBackend,
    });
    if (Array.isArray(out)) {
      for (const t of out) this.backend.disposeData(t.dataId);
      throw new BackendError(`wasm-training-kernels: wasm kernel ${name} returned ${out.length} outputs, one expected`);
    }
    this.made.push(out);
    return out;
  }

  /** Takes ownership of a TensorInfo a kernel function returned. */
  adopt(info: TensorInfo): TensorInfo {
    this.made.push(info);
    return info;
  }

  /** An uninitialised float32/int32 buffer on the wasm heap, owned by this scope. */
  output(shape: number[], dtype: 'float32' | 'int32'): TensorInfo {
    const out = this.backend.makeOutput(shape, dtype);
    this.made.push(out);
    return out;
  }

  float32(info: TensorInfo): Float32Array {
    if (info.dtype !== 'float32') throw new BackendError(`wasm-training-kernels: expected a float32 tensor, got ${info.dtype}`);
    return this.backend.typedArrayFromHeap(info) as Float32Array;
  }

  owns(info: TensorInfo): boolean {
    return this.made.includes(info);
  }

  /** Releases an intermediate early, to keep peak memory down in loops. */
  release(info: TensorInfo): void {
    const i = this.made.indexOf(info);
    if (i < 0) return;
    this.made.splice(i, 1);
    this.backend.disposeData(info.dataId);
  }

  /** Releases everything made except `result` (which may be undefined after an error). */
  close(result?: TensorInfo): void {
    for (const t of this.made) if (t !== result) this.backend.disposeData(t.dataId);
    this.made.length = 0;
  }
}

/** Runs `body` in a fresh scope and returns its result, releasing every other intermediate. */
export function inWasmScope(tf: Tf, backend: unknown, kernelName: string, body: (scope: WasmKernelScope) => TensorInfo): TensorInfo {
  const scope = new WasmKernelScope(tf, asWasmBackend(backend, kernelName));
  let result: TensorInfo | undefined;
  try {
    result = body(scope);
    // The engine takes the result as a new tensor and will release it; an input handed back must be copied first.
    if (!scope.owns(result)) result = scope.run('Identity', { x: result });
    return result;
  } finally {
    scope.close(result);
  }
}
