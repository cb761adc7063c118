/**
 * State-dict plumbing shared by the TF.js networks: PyTorch key prefixes, shape checks, dtype conversion and the
 * OIHW ↔ HWIO conv weight layouts (PyTorch stores OIHW; TF.js convolves with HWIO).
 */
import { ModelFormatError, numel, tensorToFloat32 } from '@scenimefy/io/core';
import type { TensorData } from '@scenimefy/io/core';

import type { Variable } from '@tensorflow/tfjs-core';

import type { Tf } from '../layers/tf';
import type { Float32TensorData, StateDictEntrySpec, StateDictLike } from './tensor-types';

export function stripPrefix(stateDict: StateDictLike, prefix: string): Map<string, Float32TensorData | TensorData> {
  const out = new Map<string, Float32TensorData | TensorData>();
  for (const [key, value] of stateDict) {
    if (prefix === '') out.set(key, value);
    else if (key.startsWith(prefix)) out.set(key.slice(prefix.length), value);
  }
  return out;
}

export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

export function shapeText(shape: readonly number[]): string {
  return `[${shape.join(',')}]`;
}

export function listed(keys: readonly string[]): string {
  const shown = keys.slice(0, 6).join(', ');
  return keys.length > 6 ? `${shown} … (${keys.length} in all)` : shown;
}

export function hwioFromOihw(data: Float32Array, shape: readonly number[]): Float32Array {
  const [o, i, h, w] = shape as [number, number, number, number];
  const out = new Float32Array(data.length);
  for (let oo = 0; oo < o; oo++)
    for (let ii = 0; ii < i; ii++)
      for (let hh = 0; hh < h; hh++)
        for (let ww = 0; ww < w; ww++) out[((hh * w + ww) * i + ii) * o + oo] = data[((oo * i + ii) * h + hh) * w + ww] as number;
  return out;
}

export function oihwFromHwio(data: Float32Array, torchShape: readonly number[]): Float32Array {
  const [o, i, h, w] = torchShape as [number, number, number, number];
  const out = new Float32Array(data.length);
  for (let oo = 0; oo < o; oo++)
    for (let ii = 0; ii < i; ii++)
      for (let hh = 0; hh < h; hh++)
        for (let ww = 0; ww < w; ww++) out[((oo * i + ii) * h + hh) * w + ww] = data[((hh * w + ww) * i + ii) * o + oo] as number;
  return out;
}

/** The float32 values of a state-dict entry; `what` names the network in the error for a non-float dtype. */
export function float32Of(what: string, key: string, value: Float32TensorData | TensorData, source: string): Float32Array {
  if ('data' in value) return value.data;
  if (value.dtype !== 'F32' && value.dtype !== 'F64' && value.dtype !== 'F16' && value.dtype !== 'BF16') {
    throw new ModelFormatError(`${what} tensor ${key} has dtype ${value.dtype}, expected a float type`, { file: source });
  }
  return tensorToFloat32(value);
}

/** Assign PyTorch-layout tensors (OIHW convs) to TF.js variables (HWIO convs), key by key. */
export function assignPyTorchWeights(
  tf: Tf,
  variables: ReadonlyMap<string, Variable>,
  tensorFor: (key: string) => Float32TensorData,
): void {
  for (const [key, variable] of variables) {
    const t = tensorFor(key);
    const data = t.shape.length === 4 ? hwioFromOihw(t.data, t.shape) : t.data;
    tf.tidy(() => variable.assign(tf.tensor(data, variable.shape, 'float32')));
  }
}

/**
 * A network's state dict in PyTorch layout and key order: parameters read back from their variables (convs as
 * OIHW), fixed blur buffers written out from their closed form (`bufferFilter` gives the per-channel filter).
 */
export async function pyTorchStateDict(
  spec: ReadonlyMap<string, StateDictEntrySpec>,
  param: (key: string) => Variable,
  bufferFilter: (shape: readonly number[]) => ArrayLike<number>,
): Promise<Map<string, Float32TensorData>> {
  const out = new Map<string, Float32TensorData>();
  for (const [key, entry] of spec) {
    if (entry.kind === 'buffer') {
      const filter = bufferFilter(entry.shape);
      const data = new Float32Array(numel(entry.shape));
      for (let c = 0; c < (entry.shape[0] as number); c++) data.set(filter, c * filter.length);
      out.set(key, { shape: entry.shape, data });
      continue;
    }
    const values = (await param(key).data()) as Float32Array;
    out.set(key, { shape: entry.shape, data: entry.shape.length === 4 ? oihwFromHwio(values, entry.shape) : values.slice() });
  }
  return out;
}

/** Number of scalar parameters held by `variables`. */
export function countParameters(variables: ReadonlyMap<string, Variable>): number {
  let n = 0;
  for (const v of variables.values()) n += v.size;
  return n;
}
