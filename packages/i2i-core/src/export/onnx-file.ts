/** The Node side of the ONNX export: writing the model to a file. */
import { writeFileAtomic } from '@scenimefy/io';
import type { TensorMap } from '@scenimefy/io';

import { exportGeneratorOnnx } from './onnx';
import type { GeneratorOnnxOptions } from './onnx';

/** Export the generator to `outFile` (written atomically: a reader never sees a partial model). */
export async function exportGeneratorOnnxFile(stateDict: TensorMap, outFile: string, options: GeneratorOnnxOptions = {}): Promise<void> {
  await writeFileAtomic(outFile, exportGeneratorOnnx(stateDict, options));
}
