/**
 * BatchMatMul for tfjs-backend-wasm 4.22 with transposed operands. wasm's own kernel hands a single matrix
 * product to XNNPACK only when neither operand is transposed; with transposeA or transposeB (a Linear layer's
 * `x·Wᵀ`, PatchNCE's `q·kᵀ`, and every matmul gradient) it runs a scalar blocked loop about ten times slower.
 * Here the transposed operand is transposed once (a copy, linear in its size) and the product goes to the
 * XNNPACK path. Batched products (a batch dimension above 1) keep wasm's own kernel.
 */
import type { BatchMatMulAttrs, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import type { Tf } from './tf';
import { inWasmScope } from './wasm-kernel-scope';
import type { WasmKernelScope } from './wasm-kernel-scope';

function lastTwoSwapped(scope: WasmKernelScope, t: TensorInfo): TensorInfo {
  const rank = t.shape.length;
  const perm = [...Array(rank).keys()];
  perm[rank - 2] = rank - 1;
  perm[rank - 1] = rank - 2;
  return scope.run('Transpose', { x: t }, { perm });
}

const batchOf = (t: TensorInfo): number => t.shape.slice(0, -2).reduce((a, d) => a * d, 1);

/** `original` is the wasm backend's own BatchMatMul kernel function. */
export function batchMatMulKernel(tf: Tf, original: KernelFunc): KernelFunc {
  return (args) => {
    const { a, b } = args.inputs as { a: TensorInfo; b: TensorInfo };
    const { transposeA, transposeB } = args.attrs as unknown as BatchMatMulAttrs;
    const direct = (!transposeA && !transposeB) || batchOf(a) !== 1 || batchOf(b) !== 1 || a.dtype !== 'float32' || b.dtype !== 'float32';
    if (direct) return original(args);
    return inWasmScope(tf, args.backend, 'BatchMatMul', (scope) => {
      const left = transposeA ? lastTwoSwapped(scope, a) : a;
      const right = transposeB ? lastTwoSwapped(scope, b) : b;
      const out = original({
        inputs: { a: left, b: right },
        attrs: { transposeA: false, transposeB: false },
        backend: args.backend,
      }) as TensorInfo;
      return scope.adopt(out);
    });
  };
}
