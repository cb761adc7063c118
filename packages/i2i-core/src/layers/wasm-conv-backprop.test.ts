/**
 * The wasm conv-gradient kernels against tfjs-backend-cpu's (direct loops over the definition), called the way
 * the engine calls them, on random inputs: strides 1/2/mixed, 'valid'/'same'/numeric/explicit padding, odd
 * sizes, batch 1 and 2, NCHW; plus the gradients tfjs-core's conv ops ask for, and no leaked wasm buffers.
 */
import { loadTf } from '@scenimefy/io';
import { seededUniform } from '@scenimefy/test-utils';
import type { NamedAttrMap, Tensor, Tensor4D } from '@tensorflow/tfjs-core';
import type { Tf } from './tf';
import { registerWasmTrainingKernels } from './wasm-training-kernels';

let tf: Tf;
beforeAll(async () => {
  ({ tf } = await loadTf({ prefer: 'cpu', require: true }));
  await loadTf({ prefer: 'wasm', require: true });
  registerWasmTrainingKernels(tf);
});

// float32 sums of a few hundred products of values in [-1, 1] (magnitudes up to ~20) in different orders.
const TOL = { atol: 1e-4, rtol: 1e-4 };

const size = (shape: readonly number[]): number => shape.reduce((a, d) => a * d, 1);
const seeded = (seed: number, shape: number[]): Tensor => tf.tensor(seededUniform(seed, size(shape)), shape);

interface Result {
  data: Float32Array;
  shape: number[];
}

/** Runs `f` on `backend` and reads its result; on wasm also checks that no backend buffer outlives it. */
function on(backend: 'cpu' | 'wasm', f: () => Tensor): Result {
  tf.setBackend(backend);
  const buffersBefore = tf.engine().backend.numDataIds();
  const out = tf.tidy(f);
  const result = { data: out.dataSync() as Float32Array, shape: out.shape };
  out.dispose();
  if (backend === 'wasm') expect(tf.engine().backend.numDataIds()).toBe(buffersBefore);
  return result;
}

function expectSameOnWasmAsCpu(f: () => Tensor): void {
  const cpu = on('cpu', f);
  const wasm = on('wasm', f);
  expect(wasm.shape).toEqual(cpu.shape);
  expect(wasm.data).toBeCloseToTensor(cpu.data, { ...TOL, shape: cpu.shape });
}

type Pad = 'valid' | 'same' | number | [[number, number], [number, number], [number, number], [number, number]];
interface ConvCase {
  name: string;
  x: [number, number, number, number];
  filter: [number, number, number, number];
  strides: number | [number, number];
  pad: Pad;
  dataFormat: 'NHWC' | 'NCHW';
}

const CONV_CASES: ConvCase[] = [
  { name: '3x3 stride 1 valid, batch 2', x: [2, 9, 11, 5], filter: [3, 3, 5, 7], strides: 1, pad: 'valid', dataFormat: 'NHWC' },
  { name: '3x3 stride 2 same, odd sizes', x: [1, 9, 11, 5], filter: [3, 3, 5, 7], strides: 2, pad: 'same', dataFormat: 'NHWC' },
  { name: '4x4 stride 2 pad 1, batch 2 (PatchGAN)', x: [2, 8, 7, 3], filter: [4, 4, 3, 2], strides: 2, pad: 1, dataFormat: 'NHWC' },
  {
    name: '3x2 strides [2,1], explicit uneven pads',
    x: [1, 10, 10, 4],
    filter: [3, 2, 4, 3],
    strides: [2, 1],
    pad: [
      [0, 0],
      [2, 0],
      [1, 3],
      [0, 0],
    ],
    dataFormat: 'NHWC',
  },
  { name: '3x3 stride 1 same, NCHW, batch 2', x: [2, 5, 9, 10], filter: [3, 3, 5, 4], strides: 1, pad: 'same', dataFormat: 'NCHW' },
  { name: '7x7 stride 3 valid', x: [1, 13, 13, 2], filter: [7, 7, 2, 3], strides: 3, pad: 'valid', dataFormat: 'NHWC' },
  { name: '7x7 stride 1 valid, 1 output channel', x: [2, 12, 10, 6], filter: [7, 7, 6, 1], strides: 1, pad: 'valid', dataFormat: 'NHWC' },
  { name: '1x1 stride 1 same', x: [1, 5, 6, 8], filter: [1, 1, 8, 3], strides: 1, pad: 'same', dataFormat: 'NHWC' },
];

function convOutputShape(c: ConvCase): number[] {
  tf.setBackend('cpu');
  return tf.tidy(() => tf.conv2d(tf.zeros(c.x) as Tensor4D, tf.zeros(c.filter) as Tensor4D, c.strides, c.pad, c.dataFormat).shape);
}

describe('Conv2DBackpropFilter on wasm', () => {
  it.each(CONV_CASES)('$name equals the cpu kernel', (c) => {
    const dyShape = convOutputShape(c);
    const attrs = { strides: c.strides, pad: c.pad, dataFormat: c.dataFormat, filterShape: c.filter } as unknown as NamedAttrMap;
    expectSameOnWasmAsCpu(
      () => tf.engine().runKernel('Conv2DBackpropFilter', { x: seeded(1, c.x), dy: seeded(2, dyShape) }, attrs) as Tensor,
    );
  });

  it('splits the taps of a large input over several GEMMs and still sums every window', () => {
    // 64 channels × 128² positions fill an eighth of the 2²³-float window matrix: 8 taps, then 1. The cpu
    // kernel is too slow at this size, so the reference is the definition summed in float64.
    const [h, w, ci, co] = [130, 130, 64, 2];
    const xData = seededUniform(3, h * w * ci);
    const dyData = seededUniform(4, 128 * 128 * co);
    const expected = new Float64Array(9 * ci * co);
    for (let t = 0; t < 9; t++) {
      const [kh, kw] = [Math.floor(t / 3), t % 3];
      for (let y = 0; y < 128; y++)
        for (let x = 0; x < 128; x++) {
          const xRow = ((y + kh) * w + x + kw) * ci;
          const dyRow = (y * 128 + x) * co;
          for (let c = 0; c < ci; c++)
            for (let o = 0; o < co; o++) {
              const at = (t * ci + c) * co + o;
              expected[at] = (expected[at] as number) + (xData[xRow + c] as number) * (dyData[dyRow + o] as number);
            }
        }
    }
    const attrs = { strides: 1, pad: 'valid', dataFormat: 'NHWC', filterShape: [3, 3, ci, co] } as unknown as NamedAttrMap;
    const wasm = on(
      'wasm',
      () =>
        tf
          .engine()
          .runKernel(
            'Conv2DBackpropFilter',
            { x: tf.tensor(xData, [1, h, w, ci]), dy: tf.tensor(dyData, [1, 128, 128, co]) },
            attrs,
          ) as Tensor,
    );
    // float32 sums of 16384 products (|sum| up to ~60).
    expect(wasm.data).toBeCloseToTensor(expected, { atol: 1e-3, rtol: 1e-4 });
  });
});

describe('Conv2DBackpropInput on wasm (XNNPACK Conv2D in place of the scalar kernel)', () => {
  it.each(CONV_CASES)('$name equals the cpu kernel', (c) => {
    const dyShape = convOutputShape(c);
    const attrs = { strides: c.strides, pad: c.pad, dataFormat: c.dataFormat, inputShape: c.x } as unknown as NamedAttrMap;
    expectSameOnWasmAsCpu(
      () => tf.engine().runKernel('Conv2DBackpropInput', { dy: seeded(2, dyShape), filter: seeded(5, c.filter) }, attrs) as Tensor,
    );
  });
});

interface DepthwiseCase {
  name: string;
  x: [number, number, number, number];
  filter: [number, number, number, number];
  strides: number;
  pad: Pad;
}

const DEPTHWISE_CASES: DepthwiseCase[] = [
  { name: '4x4 stride 2 valid (blur downsample), batch 2', x: [2, 9, 9, 3], filter: [4, 4, 3, 1], strides: 2, pad: 'valid' },
  { name: '3x3 stride 1 same, multiplier 3', x: [1, 8, 10, 2], filter: [3, 3, 2, 3], strides: 1, pad: 'same' },
  { name: '3x2 stride 2 pad 1, multiplier 2, odd sizes', x: [1, 9, 7, 2], filter: [3, 2, 2, 2], strides: 2, pad: 1 },
  {
    name: '3x3 stride 2 explicit pads',
    x: [2, 7, 8, 4],
    filter: [3, 3, 4, 1],
    strides: 2,
    pad: [
      [0, 0],
      [0, 2],
      [1, 1],
      [0, 0],
    ],
  },
];

describe('DepthwiseConv2dNativeBackpropInput on wasm', () => {
  it.each(DEPTHWISE_CASES)('$name equals the cpu kernel', (c) => {
    tf.setBackend('cpu');
    const dyShape = tf.tidy(() => tf.depthwiseConv2d(tf.zeros(c.x) as Tensor4D, tf.zeros(c.filter) as Tensor4D, c.strides, c.pad).shape);
    const attrs = { strides: c.strides, pad: c.pad, dilations: 1, inputShape: c.x } as unknown as NamedAttrMap;
    expectSameOnWasmAsCpu(
      () =>
        tf
          .engine()
          .runKernel('DepthwiseConv2dNativeBackpropInput', { dy: seeded(6, dyShape), filter: seeded(7, c.filter) }, attrs) as Tensor,
    );
  });

  it('with dilation 2 is the adjoint of the forward depthwise conv: <conv(x), dy> = <x, dx(dy)>', () => {
    // The cpu kernel ignores dilations (tfjs-core's gradient refuses them), so the check is the defining identity.
    const x: [number, number, number, number] = [1, 11, 9, 2];
    const filter: [number, number, number, number] = [3, 3, 2, 2];
    tf.setBackend('wasm');
    const [lhs, rhs] = tf.tidy(() => {
      const input = seeded(8, x) as Tensor4D;
      const w = seeded(9, filter) as Tensor4D;
      const y = tf.depthwiseConv2d(input, w, 1, 'same', 'NHWC', 2);
      const dy = seeded(10, y.shape);
      const attrs = { strides: 1, pad: 'same', dilations: 2, inputShape: x } as unknown as NamedAttrMap;
      const dx = tf.engine().runKernel('DepthwiseConv2dNativeBackpropInput', { dy, filter: w }, attrs) as Tensor;
      return [tf.sum(tf.mul(y, dy)).dataSync()[0] as number, tf.sum(tf.mul(input, dx)).dataSync()[0] as number];
    });
    expect(Math.abs(lhs - rhs)).toBeLessThanOrEqual(1e-4 * Math.max(1, Math.abs(lhs)));
  });
});

describe('gradients of tfjs-core conv ops on wasm', () => {
  it('tf.grad of conv2d (weights and input, stride 2 same) equals cpu', () => {
    const grads = (): Tensor => {
      const x = seeded(11, [2, 9, 8, 3]) as Tensor4D;
      const w = seeded(12, [3, 3, 3, 4]) as Tensor4D;
      const r = seeded(13, [2, 5, 4, 4]);
      const [dx, dw] = tf.grads((a: Tensor, b: Tensor) => tf.sum(tf.mul(tf.conv2d(a as Tensor4D, b as Tensor4D, 2, 'same'), r)))([x, w]);
      return tf.concat([tf.reshape(dx as Tensor, [-1]), tf.reshape(dw as Tensor, [-1])]);
    };
    expectSameOnWasmAsCpu(grads);
  });

  it('tf.grad of a stride-2 depthwiseConv2d (the blur downsample) equals cpu', () => {
    const grads = (): Tensor => {
      const x = seeded(14, [1, 10, 10, 3]) as Tensor4D;
      const w = seeded(15, [4, 4, 3, 1]) as Tensor4D;
      const r = seeded(16, [1, 4, 4, 3]);
      return tf.grad((a: Tensor) => tf.sum(tf.mul(tf.depthwiseConv2d(a as Tensor4D, w, 2, 'valid'), r)))(x);
    };
    expectSameOnWasmAsCpu(grads);
  });
});
