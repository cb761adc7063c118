/**
 * UnsortedSegmentSum for tfjs-backend-wasm 4.22, which lacks it; tfjs-core's gather gradient (PatchSampleF's row
 * gather) needs it. It is wasm's ScatterNd, which adds duplicate indices: out[id[i]] += x[i]. As in TF and the cpu
 * backend, rows whose id is negative or ≥ numSegments are dropped; they are routed to one extra segment that is
 * cut off, because ScatterNd itself does not check its indices.
 */
import type { KernelFunc, TensorInfo, UnsortedSegmentSumAttrs } from '@tensorflow/tfjs-core';
import { BackendError } from '@scenimefy/io/core';
import type { Tf } from './tf';
import { inWasmScope } from './wasm-kernel-scope';

export function unsortedSegmentSumKernel(tf: Tf): KernelFunc {
  return ({ inputs, backend, attrs }) =>
    inWasmScope(tf, backend, 'UnsortedSegmentSum', (scope) => {
      const { x, segmentIds } = inputs as { x: TensorInfo; segmentIds: TensorInfo };
      const { numSegments } = attrs as unknown as UnsortedSegmentSumAttrs;
      if (segmentIds.dtype !== 'int32')
        throw new BackendError(`wasm-training-kernels: UnsortedSegmentSum takes int32 segment ids, got ${segmentIds.dtype}`);
      const idRank = segmentIds.shape.length;
      const inner = x.shape.slice(idRank);
      const innerSize = inner.reduce((a, d) => a * d, 1);
      const rows = segmentIds.shape.reduce((a, d) => a * d, 1);
      const outShape = [numSegments, ...inner];
      const ids = scope.backend.typedArrayFromHeap(segmentIds) as Int32Array;
      let dropped = false;
      for (let i = 0; i < rows; i++) {
        const id = ids[i] as number;
        if (id < 0 || id >= numSegments) {
          dropped = true;
          break;
        }
      }
      const updates = scope.run('Reshape', { x }, { shape: [rows, innerSize] });
      if (!dropped) {
        const indices = scope.run('Reshape', { x: segmentIds }, { shape: [rows, 1] });
        const sums = scope.run('ScatterNd', { indices, updates }, { shape: [numSegments, innerSize] });
        return scope.run('Reshape', { x: sums }, { shape: outShape });
      }
      const routed = scope.output([rows, 1], 'int32');
      const source = scope.backend.typedArrayFromHeap(segmentIds) as Int32Array;
      const target = scope.backend.typedArrayFromHeap(routed) as Int32Array;
      for (let i = 0; i < rows; i++) {
        const id = source[i] as number;
        target[i] = id < 0 || id >= numSegments ? numSegments : id;
      }
      const sums = scope.run('ScatterNd', { indices: routed, updates }, { shape: [numSegments + 1, innerSize] });
      const kept = scope.run('Slice', { x: sums }, { begin: [0, 0], size: [numSegments, innerSize] });
      return scope.run('Reshape', { x: kept }, { shape: outShape });
    });
}
