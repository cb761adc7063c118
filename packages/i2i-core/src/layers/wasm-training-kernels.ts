/**
 * Makes training run on tfjs-backend-wasm 4.22. Its kernel set covers inference only: a `semi_cut` step also
 * needs Conv2DBackpropFilter (every conv weight gradient), DepthwiseConv2dNativeBackpropInput (the gradient of
 * the blur downsample) and UnsortedSegmentSum (the gradient of PatchSampleF's gather), which it lacks. Two
 * kernels it has are scalar loops about ten times slower than its XNNPACK ones, and are replaced by default:
 * Conv2DBackpropInput (every conv's input gradient) and BatchMatMul with a transposed operand (the heads'
 * Linear layers, PatchNCE's q·kᵀ, every matmul gradient). Each kernel composes wasm's own kernels (XNNPACK
 * GEMM / conv, ScatterNd), see wasm-conv-backprop.ts, wasm-matmul.ts and wasm-segment-sum.ts.
 *
 * What still limits training on wasm: its heap is at most 4 GiB (wasm32), and a step keeps every forward
 * intermediate until the gradients are done. With ngf 64 that is ~3.2 GB at 64² crops and ~8.9 GB at 128² (as
 * tfjs-node counts it), so ngf-64 steps fit only at crops of about 64² (larger ones end in a wasm "Aborted()" or
 * "memory access out of bounds"). Node gets no wasm threads from tfjs-backend-wasm 4.22 (it turns them off
 * there), so everything runs on one core.
 */
import type { KernelFunc } from '@tensorflow/tfjs-core';
import { BackendError } from '@scenimefy/io/core';
import type { Tf } from './tf';
import { conv2dBackpropFilterKernel, conv2dBackpropInputKernel, depthwiseConv2dNativeBackpropInputKernel } from './wasm-conv-backprop';
import { batchMatMulKernel } from './wasm-matmul';
import { unsortedSegmentSumKernel } from './wasm-segment-sum';

/** Kernels a training step needs that tfjs-backend-wasm 4.22 does not have. */
export const WASM_MISSING_TRAINING_KERNELS: readonly string[] = Object.freeze([
  'Conv2DBackpropFilter',
  'DepthwiseConv2dNativeBackpropInput',
  'UnsortedSegmentSum',
]);

/** wasm kernels that exist but are replaced by faster ones (unless `replaceSlowKernels: false`). */
export const WASM_REPLACED_TRAINING_KERNELS: readonly string[] = Object.freeze(['Conv2DBackpropInput', 'BatchMatMul']);

/** The wasm kernels the added ones are built from. */
const BUILDING_BLOCKS = [
  'BatchMatMul',
  'Concat',
  'Conv2D',
  'DepthwiseConv2dNative',
  'Identity',
  'Reshape',
  'ScatterNd',
  'Slice',
  'Sum',
  'Transpose',
];

/** Tags our kernel functions, so a second registration (even from another copy of this module) recognises them. */
const OURS = Symbol.for('@scenimefy/i2i-core/wasm-training-kernel');

export interface WasmTrainingKernelOptions {
  /**
   * Replace wasm's Conv2DBackpropInput and its BatchMatMul with transposed operands (scalar loops) by ones
   * computed with its XNNPACK Conv2D / GEMM (`WASM_REPLACED_TRAINING_KERNELS`). Default true. With false an
   * already replaced kernel stays replaced: the option only decides what this call adds.
   */
  readonly replaceSlowKernels?: boolean;
}

function isOurs(kernelFunc: KernelFunc | undefined): boolean {
  return kernelFunc !== undefined && (kernelFunc as unknown as Record<symbol, unknown>)[OURS] === true;
}

function tagged(kernelFunc: KernelFunc): KernelFunc {
  (kernelFunc as unknown as Record<symbol, unknown>)[OURS] = true;
  return kernelFunc;
}

/**
 * Registers the training kernels for the 'wasm' backend of `tf` and returns the names it registered in this
 * call (empty when they are all in place already, or when tfjs-backend-wasm is not loaded in this process).
 * Kernels are looked up at every op, so this works before or after the wasm backend is initialised or chosen.
 *
 * Example:
 *   const { tf } = await loadTf({ prefer: 'wasm' });
 *   registerWasmTrainingKernels(tf);
 *   // ['Conv2DBackpropFilter', 'DepthwiseConv2dNativeBackpropInput', 'UnsortedSegmentSum', 'Conv2DBackpropInput', 'BatchMatMul']
 */
export function registerWasmTrainingKernels(tf: Tf, options: WasmTrainingKernelOptions = {}): string[] {
  if (tf.getKernel('Conv2D', 'wasm') === undefined) return [];
  const absent = BUILDING_BLOCKS.filter((name) => tf.getKernel(name, 'wasm') === undefined);
  if (absent.length > 0) {
    throw new BackendError(
      `registerWasmTrainingKernels: the wasm backend lacks ${absent.join(', ')}; Scenimefy.js needs tfjs-backend-wasm 4.22.0`,
    );
  }
  // `own` is the wasm backend's kernel being replaced, where the new one falls back on it.
  const makers: Record<string, (tf: Tf, own: KernelFunc | undefined) => KernelFunc> = {
    Conv2DBackpropFilter: conv2dBackpropFilterKernel,
    DepthwiseConv2dNativeBackpropInput: depthwiseConv2dNativeBackpropInputKernel,
    UnsortedSegmentSum: unsortedSegmentSumKernel,
    Conv2DBackpropInput: conv2dBackpropInputKernel,
    BatchMatMul: (t, own) => batchMatMulKernel(t, own as KernelFunc),
  };
  const wanted = [...WASM_MISSING_TRAINING_KERNELS];
  if (options.replaceSlowKernels ?? true) wanted.push(...WASM_REPLACED_TRAINING_KERNELS);
  const added: string[] = [];
  for (const kernelName of wanted) {
    const existing = tf.getKernel(kernelName, 'wasm');
    if (isOurs(existing?.kernelFunc)) continue;
    // A later tfjs-backend-wasm that brings its own missing kernel keeps it.
    if (existing !== undefined && WASM_MISSING_TRAINING_KERNELS.includes(kernelName)) continue;
    if (existing !== undefined) tf.unregisterKernel(kernelName, 'wasm');
    const make = makers[kernelName] as (tf: Tf, own: KernelFunc | undefined) => KernelFunc;
    tf.registerKernel({ kernelName, backendName: 'wasm', kernelFunc: tagged(make(tf, existing?.kernelFunc)) });
    added.push(kernelName);
  }
  return added;
}
