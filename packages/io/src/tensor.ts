/**
 * The in-memory form of a stored tensor, shared by every weight format (safetensors, PyTorch checkpoints).
 * `bytes` holds the raw little-endian element data; it is usually a view into the file's buffer (no copy).
 */

export type DType = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';

export const DTYPE_BYTES: Readonly<Record<DType, number>> = Object.freeze({
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
});

export interface TensorData {
  readonly dtype: DType;
  readonly shape: readonly number[];
  /** Raw little-endian element bytes, `numel(shape) * DTYPE_BYTES[dtype]` long. */
  readonly bytes: Uint8Array;
}

/** Tensors by name, in file order. */
export type TensorMap = Map<string, TensorData>;

export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}
