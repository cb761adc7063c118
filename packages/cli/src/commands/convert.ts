import { promises as fsp } from 'node:fs';

import { InputError, readWeights, writeSafetensors, type TensorData } from '@scenimefy/io';

import type { Output } from '../output';

export async function convertCommand(
  input: string,
  opts: { output: string; key?: string; prefix: string; force: boolean },
  out: Output,
): Promise<number> {
  if (!opts.output.endsWith('.safetensors')) {
    throw new InputError('the output must be a .safetensors file', { file: opts.output });
  }
  if (!opts.force && (await fsp.stat(opts.output).catch(() => undefined))) {
    throw new InputError('already exists (pass --force to overwrite)', { file: opts.output });
  }
  const weights = await readWeights(input, { key: opts.key });
  const renamed = new Map<string, TensorData>();
  for (const [name, t] of weights.tensors) renamed.set(`${opts.prefix}${name}`, t);
  const metadata: Record<string, string> = {
    ...weights.metadata,
    source_file: input,
    source_kind: weights.kind,
    ...(opts.key !== undefined ? { source_key: opts.key } : {}),
  };
  await writeSafetensors(opts.output, renamed, metadata);
  out.info(`wrote ${opts.output} (${renamed.size} tensors from ${input})`);
  out.event({ event: 'converted', input, output: opts.output, tensorCount: renamed.size });
  return 0;
}
