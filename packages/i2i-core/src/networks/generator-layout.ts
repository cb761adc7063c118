/**
 * Where each layer of the generator's `nn.Sequential` sits (SPEC §1 table): one table for the TF.js network, the
 * ONNX export and the tiled engine, so that a module index (`model.22`, …) is written down once.
 */

/** Residual blocks of `resnet_9blocks`, the only architecture the ONNX export and the engine take. */
export const RESNET_9BLOCKS = 9;

/** Module indices of the generator for a block count (21, 22, 25, 26, 30 … for nBlocks = 9). */
export interface GeneratorModuleIndices {
  /** conv 7×7 after reflect-pad 3 (module 0). */
  readonly stemConv: 1;
  /** conv 3×3 stride 1 (zero pad 1) before the first downsampling. */
  readonly downConv1: 4;
  /** Downsample blur, `filt` buffer. */
  readonly down1: 7;
  readonly downConv2: 8;
  readonly down2: 11;
  readonly firstBlock: 12;
  /** Upsample blur, `filt` buffer. */
  readonly up1: number;
  readonly upConv1: number;
  readonly up2: number;
  readonly upConv2: number;
  /** reflect-pad 3 before the last conv. */
  readonly headPad: number;
  readonly headConv: number;
  readonly tanh: number;
}

export function generatorModuleIndices(nBlocks: number = RESNET_9BLOCKS): GeneratorModuleIndices {
  return {
    stemConv: 1,
    downConv1: 4,
    down1: 7,
    downConv2: 8,
    down2: 11,
    firstBlock: 12,
    up1: 12 + nBlocks,
    upConv1: 13 + nBlocks,
    up2: 16 + nBlocks,
    upConv2: 17 + nBlocks,
    headPad: 20 + nBlocks,
    headConv: 21 + nBlocks,
    tanh: 22 + nBlocks,
  };
}
