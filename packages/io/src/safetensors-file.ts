/**
 * safetensors files on disk (Node): read a file into one buffer and parse it, or write tensors atomically
 * without assembling the whole file in memory. The format itself is safetensors.ts.
 */
import { writeFileAtomic } from './atomic-file';
import { InputError } from './errors';
import { openRegularFile } from './regular-file';
import { parseSafetensors, safetensorsChunks } from './safetensors';
import type { SafetensorsContents, SafetensorsReadOptions } from './safetensors';
import type { TensorData, TensorMap } from './tensor';

/**
 * Read a safetensors file into one buffer and parse it; tensors are views into that buffer (no second copy).
 * Throws InputError naming the file when it cannot be read, ModelFormatError when it is malformed.
 */
export async function readSafetensors(file: string, options: SafetensorsReadOptions = {}): Promise<SafetensorsContents> {
  let buffer: Buffer;
  try {
    const handle = await openRegularFile(file, 'safetensors file');
    try {
      buffer = await handle.readFile();
    } finally {
      await handle.close();
    }
  } catch (error) {
    if (error instanceof InputError) throw error;
    const code = (error as NodeJS.ErrnoException).code ?? 'EIO';
    throw new InputError(`cannot read safetensors file (${code}: ${readProblem(code)})`, { file, cause: error });
  }
  return parseSafetensors(buffer, file, options);
}

/**
 * Write tensors (in the order given) and optional metadata to `file` atomically, streaming each tensor's bytes
 * after the header instead of assembling the whole file in memory.
 */
export async function writeSafetensors(
  file: string,
  tensors: TensorMap | Iterable<readonly [string, TensorData]>,
  metadata?: Record<string, string>,
): Promise<void> {
  await writeFileAtomic(file, safetensorsChunks(tensors, metadata, file));
}

function readProblem(code: string): string {
  switch (code) {
    case 'ENOENT':
      return 'no such file';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'EISDIR':
      return 'is a folder';
    case 'ERR_FS_FILE_TOO_LARGE':
      return 'larger than one buffer can hold';
    default:
      return 'read failed';
  }
}
