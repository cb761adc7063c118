/** UnsortedSegmentSum on wasm against tfjs-backend-cpu's kernel and, at PatchSampleF's sizes, a plain scatter-add. */
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

// Sums of at most a handful of float32 values in [-1, 1].
const TOL = { atol: 1e-6, rtol: 1e-6 };

function segmentSum(
  backend: 'cpu' | 'wasm',
  x: Float32Array | Int32Array,
  xShape: number[],
  ids: Int32Array,
  idShape: number[],
  numSegments: number,
) {
  tf.setBackend(backend);
  const buffersBefore = tf.engine().backend.numDataIds();
  const out = tf.tidy(() => {
    const attrs = { numSegments } as unknown as NamedAttrMap;
    const input = tf.tensor(x, xShape, x instanceof Int32Array ? 'int32' : 'float32');
    return tf.engine().runKernel('UnsortedSegmentSum', { x: input, segmentIds: tf.tensor(ids, idShape, 'int32') }, attrs) as Tensor;
  });
  const result = { data: out.dataSync(), shape: out.shape, dtype: out.dtype };
  out.dispose();
  if (backend === 'wasm') expect(tf.engine().backend.numDataIds()).toBe(buffersBefore);
  return result;
}

describe('UnsortedSegmentSum on wasm', () => {
  it('adds rows with the same id and leaves unused segments at 0, as the cpu kernel', () => {
    const x = seededUniform(1, 6 * 3);
    const ids = Int32Array.from([0, 2, 2, 4, 0, 2]);
    const cpu = segmentSum('cpu', x, [6, 3], ids, [6], 5);
    const wasm = segmentSum('wasm', x, [6, 3], ids, [6], 5);
    expect(wasm.shape).toEqual([5, 3]);
    expect(wasm.data).toBeCloseToTensor(cpu.data, TOL);
  });

  it('drops negative and out-of-range ids, as the cpu kernel', () => {
    const x = seededUniform(2, 7 * 2);
    const ids = Int32Array.from([1, -1, 3, 4, 9, 1, 0]);
    const cpu = segmentSum('cpu', x, [7, 2], ids, [7], 4);
    const wasm = segmentSum('wasm', x, [7, 2], ids, [7], 4);
    expect(wasm.shape).toEqual([4, 2]);
    expect(wasm.data).toBeCloseToTensor(cpu.data, TOL);
  });

  it('takes 2-D ids over the leading axes of a rank-4 x, and int32 values, as TF defines it', () => {
    // The cpu kernel handles only the 1-D float ids tfjs-core's ops pass (it returns float32 and mis-broadcasts
    // 2-D ids), so the reference is the definition: out[ids[i, j]] += x[i, j, …].
    const ids = Int32Array.from([2, 0, 2, 1, 1, 0]);
    const x = Int32Array.from(seededUniform(3, 6 * 2 * 3, -50, 50), (v) => Math.round(v));
    const expected = new Int32Array(3 * 6);
    for (let r = 0; r < 6; r++) {
      for (let k = 0; k < 6; k++) {
        const at = (ids[r] as number) * 6 + k;
        expected[at] = (expected[at] as number) + (x[r * 6 + k] as number);
      }
    }
    const wasm = segmentSum('wasm', x, [2, 3, 2, 3], ids, [2, 3], 3);
    expect(wasm.dtype).toBe('int32');
    expect(wasm.shape).toEqual([3, 2, 3]);
    expect(Array.from(wasm.data)).toEqual(Array.from(expected));
  });

  it("is a scatter-add at PatchSampleF's size (2·256·128 rows into 2·128·64² segments)", () => {
    // The cpu kernel loops once per segment, far too slow here; the expected sums are a direct scatter-add.
    const rows = 2 * 256 * 128;
    const numSegments = 2 * 128 * 64 * 64;
    const x = seededUniform(4, rows);
    const ids = Int32Array.from(seededUniform(5, rows, 0, numSegments), Math.floor);
    ids[1] = ids[0] as number;
    const expected = new Float32Array(numSegments);
    for (let i = 0; i < rows; i++) {
      const at = ids[i] as number;
      expected[at] = (expected[at] as number) + (x[i] as number);
    }
    const wasm = segmentSum('wasm', x, [rows], ids, [rows], numSegments);
    expect(wasm.data).toBeCloseToTensor(expected, TOL);
  });

  it("gives tf.gather's gradient, as on cpu", () => {
    const grad = (backend: 'cpu' | 'wasm') => {
      tf.setBackend(backend);
      return tf.tidy(() => {
        const params = tf.tensor(seededUniform(6, 40), [40]);
        const indices = tf.tensor2d([3, 7, 3, 39, 0, 7], [2, 3], 'int32');
        const weights = tf.tensor(seededUniform(7, 6), [2, 3]);
        return tf
          .grad((p: Tensor) => tf.sum(tf.mul(tf.gather(p, indices), weights)))(params)
          .dataSync();
      });
    };
    expect(grad('wasm')).toBeCloseToTensor(grad('cpu'), TOL);
  });
});
