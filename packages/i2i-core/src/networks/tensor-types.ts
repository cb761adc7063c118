/**
 * The tensor and state-dict types every network, loss and stage shares, in a module of their own so that code
 * which only passes weights around (checkpoints, ONNX export, other stages) need not import a network.
 */
import type { TensorData, TensorMap } from '@scenimefy/io/core';

/** A float32 tensor in PyTorch layout, the plain form weights take outside a state-dict file. */
export interface Float32TensorData {
  readonly shape: readonly number[];
  readonly data: Float32Array;
}

/** A state dict as read from a file (`TensorMap`) or as plain float32 arrays. */
export type StateDictLike = TensorMap | ReadonlyMap<string, Float32TensorData | TensorData>;

/** One key of a network's state dict: its PyTorch shape, and whether it is learned. */
export interface StateDictEntrySpec {
  readonly shape: readonly number[];
  /** Parameters are learned; buffers are fixed (the `filt` blur filters). */
  readonly kind: 'parameter' | 'buffer';
}

export interface StateDictReadOptions {
  /** Only keys starting with this are read, without it (`'netG.'` in a scenimefy-checkpoint). Default ''. */
  readonly prefix?: string;
  /** The file the state dict came from, named in errors. */
  readonly source?: string;
}
