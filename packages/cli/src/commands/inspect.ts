import { DTYPE_BYTES, numel, readWeights } from '@scenimefy/io';

import type { Output } from '../output';

export async function inspectCommand(file: string, opts: { key?: string }, out: Output): Promise<number> {
  const weights = await readWeights(file, { key: opts.key });
  let elements = 0;
  let bytes = 0;
  const rows: string[][] = [];
  const tensors: Array<{ name: string; dtype: string; shape: readonly number[] }> = [];
  for (const [name, t] of weights.tensors) {
    const n = numel(t.shape);
    elements += n;
    bytes += n * DTYPE_BYTES[t.dtype];
    rows.push([name, t.dtype, `[${t.shape.join(', ')}]`]);
    tensors.push({ name, dtype: t.dtype, shape: t.shape });
  }
  const summary = `${weights.file}: ${weights.kind}, ${weights.tensors.size} tensors, ${elements.toLocaleString('en-US')} elements, ${bytes.toLocaleString('en-US')} bytes`;
  out.result([summary, ...rows], {
    event: 'inspect',
    file: weights.file,
    kind: weights.kind,
    tensorCount: weights.tensors.size,
    elements,
    bytes,
    metadata: weights.metadata,
    tensors,
  });
  return 0;
}
