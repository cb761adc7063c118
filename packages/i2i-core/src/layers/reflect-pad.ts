/**
 * Reflection padding of NHWC images (PyTorch `ReflectionPad2d`) with a correct gradient.
 *
 * The forward pass is `tf.mirrorPad(..., 'reflect')`. Its registered gradient in tfjs-core only crops the
 * padded border away, so the gradient that flows into the border is lost; a reflection pad must instead add
 * each border row/column back onto the row/column it copied. `reflectPad2d` attaches that gradient through
 * `tf.customGrad`, built from slice/reverse/pad/add, which every backend implements.
 */
import type { Tensor, Tensor4D } from '@tensorflow/tfjs-core';
import { InputError, UsageError } from '@scenimefy/io/core';
import type { Tf } from './tf';

/** One size for all four sides, or `[top, bottom, left, right]` (PyTorch's ReflectionPad2d takes left, right, top, bottom). */
export type Padding2d = number | readonly [top: number, bottom: number, left: number, right: number];

function normalisedPadding(padding: Padding2d): [number, number, number, number] {
  const p: [number, number, number, number] =
    typeof padding === 'number' ? [padding, padding, padding, padding] : [padding[0], padding[1], padding[2], padding[3]];
  for (const v of p) {
    if (!Number.isInteger(v) || v < 0) throw new UsageError(`reflectPad2d: padding must be non-negative integers, got [${p.join(', ')}]`);
  }
  return p;
}

/**
 * Adds the gradient of the mirrored borders along `axis` back onto the rows they were copied from.
 * Padded index `before - k` (k = 1..before) copies input index k; padded index `before + n - 1 + k` copies n-1-k.
 */
function foldedReflectGrad(tf: Tf, dy: Tensor4D, axis: 1 | 2, before: number, after: number, n: number): Tensor4D {
  // Fresh arrays per call: tf.slice keeps its begin/size as the attrs its gradient reads later.
  const sliceAxis = (start: number, length: number): Tensor4D => {
    const begin = [0, 0, 0, 0];
    const size = [-1, -1, -1, -1];
    begin[axis] = start;
    size[axis] = length;
    return tf.slice(dy, begin, size);
  };
  const paddingAlong = (lo: number, hi: number): Array<[number, number]> => {
    const pads: Array<[number, number]> = [
      [0, 0],
      [0, 0],
      [0, 0],
      [0, 0],
    ];
    pads[axis] = [lo, hi];
    return pads;
  };
  let dx = sliceAxis(before, n);
  if (before > 0) {
    const mirrored = tf.reverse(sliceAxis(0, before), axis);
    dx = tf.add(dx, tf.pad(mirrored, paddingAlong(1, n - 1 - before)));
  }
  if (after > 0) {
    const mirrored = tf.reverse(sliceAxis(before + n, after), axis);
    dx = tf.add(dx, tf.pad(mirrored, paddingAlong(n - 1 - after, 1)));
  }
  return dx;
}

/**
 * Reflection-pads the H and W axes of an NHWC tensor. Each padding must be smaller than the axis it pads
 * (as in PyTorch), otherwise an `InputError` names the sizes.
 */
export function reflectPad2d(tf: Tf, x: Tensor4D, padding: Padding2d): Tensor4D {
  const [top, bottom, left, right] = normalisedPadding(padding);
  const [, h, w] = x.shape;
  if (Math.max(top, bottom) >= h || Math.max(left, right) >= w) {
    throw new InputError(`reflectPad2d: padding [${top}, ${bottom}, ${left}, ${right}] needs H and W larger than it, got ${h}x${w}`);
  }
  const padWithFoldingGrad = tf.customGrad((...args: Array<Tensor | ((save: Tensor[]) => void)>) => {
    const input = args[0] as Tensor4D;
    const value = tf.mirrorPad(
      input,
      [
        [0, 0],
        [top, bottom],
        [left, right],
        [0, 0],
      ],
      'reflect',
    );
    const gradFunc = (dy: Tensor4D): Tensor4D => foldedReflectGrad(tf, foldedReflectGrad(tf, dy, 2, left, right, w), 1, top, bottom, h);
    return { value, gradFunc };
  });
  return padWithFoldingGrad(x);
}
