/**
 * State-dict plumbing shared by the TF.js networks: PyTorch key prefixes, shape checks, dtype conversion and the
 * OIHW ↔ HWIO conv weight layouts (PyTorch stores OIHW; TF.js convolves with HWIO).
 */
import { ModelFormatError, tensorToFloat32 } from '@scenimefy/io';
import type { TensorData } from '@scenimefy/io';

import type { Float32TensorData, StateDictLike } from './generator';

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
