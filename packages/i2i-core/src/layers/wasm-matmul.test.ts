/** BatchMatMul on wasm with every transpose combination, against tfjs-backend-cpu, and without leaked buffers. */
import { loadTf } from '@scenimefy/io';
import { seededUniform } from '@scenimefy/test-utils';
import type { NamedAttrMap, Tensor } from '@tensorflow/tfjs-core';
import type { Tf } from './tf';
import { registerWasmTrainingKernels } from './wasm-training-kernels';

let tf: Tf;
beforeAll(async () => {
  ({ tf } = await loadTf({ prefer: 'cpu', require: true }));
  await loadTf({ prefer: 'wasm', require: true });
  registerWasmTrainingKernels(tf);
});

// float32 dot products of up to 70 values in [-1, 1] in different orders.
const TOL = { atol: 1e-5, rtol: 1e-5 };
const size = (shape: readonly number[]): number => shape.reduce((a, d) => a * d, 1);

function product(backend: 'cpu' | 'wasm', aShape: number[], bShape: number[], transposeA: boolean, transposeB: boolean) {
  tf.setBackend(backend);
  const buffersBefore = tf.engine().backend.numDataIds();
  const out = tf.tidy(() => {
    const a = tf.tensor(seededUniform(1, size(aShape)), aShape);
    const b = tf.tensor(seededUniform(2, size(bShape)), bShape);
    return tf.engine().runKernel('BatchMatMul', { a, b }, { transposeA, transposeB } as unknown as NamedAttrMap) as Tensor;
  });
  const result = { data: out.dataSync() as Float32Array, shape: out.shape };
  out.dispose();
  if (backend === 'wasm') expect(tf.engine().backend.numDataIds()).toBe(buffersBefore);
  return result;
}

describe('BatchMatMul on wasm', () => {
  it.each([
    { name: 'a·b', a: [7, 70], b: [70, 5], tA: false, tB: false },
    { name: 'a·bᵀ (Linear layer, PatchNCE)', a: [33, 17], b: [9, 17], tA: false, tB: true },
    { name: 'aᵀ·b (weight gradient)', a: [17, 33], b: [17, 9], tA: true, tB: false },
    { name: 'aᵀ·bᵀ', a: [17, 6], b: [11, 17], tA: true, tB: true },
    { name: 'rank 3, batch 1, a·bᵀ', a: [1, 8, 12], b: [1, 5, 12], tA: false, tB: true },
    { name: 'batch 3 (wasm’s own kernel), aᵀ·b', a: [3, 12, 8], b: [3, 12, 5], tA: true, tB: false },
    { name: 'batch 2 broadcast against batch 1, a·bᵀ', a: [2, 8, 12], b: [1, 5, 12], tA: false, tB: true },
  ])('$name equals the cpu kernel', ({ a, b, tA, tB }) => {
    const cpu = product('cpu', a, b, tA, tB);
    const wasm = product('wasm', a, b, tA, tB);
    expect(wasm.shape).toEqual(cpu.shape);
    expect(wasm.data).toBeCloseToTensor(cpu.data, { ...TOL, shape: cpu.shape });
  });
});
