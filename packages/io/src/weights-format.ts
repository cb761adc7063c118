/**
 * Which weights format a file holds, told from its first bytes (never from its extension alone): a PyTorch
 * checkpoint (zip `PK` or a legacy pickle), safetensors (u64 header length, then `{`), or ONNX (a ModelProto
 * starting with field 1, `ir_version`; only trusted with an `.onnx` name since the tag byte is common).
 */
import { promises as fsp } from 'node:fs';

import { InputError } from './errors';

export type WeightsFormat = 'pytorch' | 'safetensors' | 'onnx';

export function weightsFormatOf(head: Uint8Array, file = ''): WeightsFormat | undefined {
  if (head.length >= 2 && head[0] === 0x50 && head[1] === 0x4b) return 'pytorch';
  if (head.length >= 2 && head[0] === 0x80 && head[1]! >= 2 && head[1]! <= 5) return 'pytorch';
  if (head.length >= 9 && head[8] === 0x7b) return 'safetensors';
  if (head.length >= 2 && head[0] === 0x08 && file.toLowerCase().endsWith('.onnx')) return 'onnx';
  return undefined;
}

/** The format of `file` from its first 16 bytes; InputError when it cannot be read. */
export async function detectWeightsFormat(file: string): Promise<WeightsFormat | undefined> {
  let handle: fsp.FileHandle | undefined;
  try {
    handle = await fsp.open(file, 'r');
    const head = new Uint8Array(16);
    const { bytesRead } = await handle.read(head, 0, 16, 0);
    return weightsFormatOf(head.subarray(0, bytesRead), file);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'EIO';
    throw new InputError(code === 'ENOENT' ? 'no such file' : `cannot read (${code})`, { file, cause: error });
  } finally {
    await handle?.close();
  }
}
