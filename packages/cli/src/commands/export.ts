import { promises as fsp } from 'node:fs';

import { exportGeneratorOnnxFile, resolveModel } from '@scenimefy/i2i-core';
import { InputError } from '@scenimefy/io';

import type { Output } from '../output';
import { asModelError } from './load-translator';

export async function exportCommand(
  model: string,
  opts: { onnx: string; opset: number; upsample: 'conv-transpose' | 'resize'; force: boolean },
  out: Output,
): Promise<number> {
  if (!opts.onnx.toLowerCase().endsWith('.onnx')) throw new InputError('the output must be an .onnx file', { file: opts.onnx });
  if (!opts.force && (await fsp.stat(opts.onnx).catch(() => undefined))) {
    throw new InputError('already exists (pass --force to overwrite)', { file: opts.onnx });
  }
  const resolved = await resolveModel(model, { hint: 'export a file you have: `scenimefy export <file> --onnx <out>`' }).catch(
    (error: unknown) => {
      throw asModelError(error);
    },
  );
  await exportGeneratorOnnxFile(resolved.stateDict, opts.onnx, {
    opset: opts.opset,
    upsample: opts.upsample,
    source: resolved.file,
    metadata: { 'scenimefy.source': resolved.description },
  });
  const { size } = await fsp.stat(opts.onnx);
  out.result(`wrote ${opts.onnx} (${(size / 1e6).toFixed(1)} MB, opset ${opts.opset}) from ${resolved.description}`, {
    event: 'exported',
    input: resolved.file,
    output: opts.onnx,
    bytes: size,
    opset: opts.opset,
  });
  return 0;
}
