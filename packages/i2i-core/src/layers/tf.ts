/**
 * The TF.js namespace every network and layer of i2i-core computes with. It is passed in, never imported at run
 * time, so that the same code runs on whichever backend `@scenimefy/io`'s `loadTf` chose (tfjs-node, wasm, cpu)
 * and in the browser entry, and so that a process never ends up with two tfjs-core engines.
 */
import type * as tfc from '@tensorflow/tfjs-core';

export type Tf = typeof tfc;
