/**
 * An Adam optimiser's state in a checkpoint's `optimizer.safetensors`, under a name the caller chooses: tensors
 * `<name>.<param>.exp_avg` / `<name>.<param>.exp_avg_sq` in the parameter's PyTorch layout (4-D conv moments
 * as OIHW, like the weights, so they map onto `torch.optim.Adam` state) and `<name>.step`, `<name>.lr`,
 * `<name>.betas`, `<name>.eps` in the file's `__metadata__`. Any model with named optimisers stores them this way.
 */
import { ModelFormatError, float32Tensor, tensorToFloat32, type TensorMap } from '@scenimefy/io';
import type { Variable } from '@tensorflow/tfjs-core';

import type { Float32TensorData } from '../networks/generator';
import { hwioFromOihw, oihwFromHwio, shapeText } from '../networks/state-dict';
import type { Adam, AdamState } from './adam';

/**
 * How a model keeps its 4-D parameters as TF.js variables: `'hwio'` — conv filters in TF.js's [kh, kw, in, out], as
 * every i2i-core network does, written to the file in PyTorch's OIHW like the weights; `'as-is'` — already in the
 * layout the file should hold (e.g. a model that keeps PyTorch's layout and transposes where it convolves).
 */
export type MomentLayout = 'hwio' | 'as-is';

/** The file tensors of `state` under `name`, added to `into` (with `'hwio'`, conv moments turned into OIHW). */
export function adamStateTensors(name: string, state: AdamState, into: TensorMap = new Map(), layout: MomentLayout = 'hwio'): TensorMap {
  for (const [key, t] of state.tensors) {
    if (t.shape.length === 4 && layout === 'hwio') {
      const [kh, kw, cin, cout] = t.shape as [number, number, number, number];
      const torchShape = [cout, cin, kh, kw];
      into.set(`${name}.${key}`, float32Tensor(torchShape, oihwFromHwio(t.data, torchShape)));
    } else {
      into.set(`${name}.${key}`, float32Tensor(t.shape, t.data));
    }
  }
  return into;
}

/** `<name>.step`, `<name>.lr`, `<name>.betas`, `<name>.eps` of `adam`, added to `into`. */
export function adamStateMetadata(name: string, adam: Adam, into: Record<string, string> = {}): Record<string, string> {
  into[`${name}.step`] = String(adam.step);
  into[`${name}.lr`] = String(adam.lr);
  into[`${name}.betas`] = `${adam.beta1},${adam.beta2}`;
  into[`${name}.eps`] = String(adam.eps);
  return into;
}

/** Whether the file holds a state for the optimiser `name` (its `<name>.step`). */
export function hasAdamState(metadata: Readonly<Record<string, string>>, name: string): boolean {
  return metadata[`${name}.step`] !== undefined;
}

/**
 * The state of optimiser `name` read back from the file's tensors and metadata, each moment checked against its
 * parameter among `variables` and returned in the variables' own layout, ready for `Adam.loadState`. A missing or
 * misshapen tensor or a bad step count is a ModelFormatError naming `file`.
 */
export function adamStateFromTensors(
  tensors: TensorMap,
  metadata: Readonly<Record<string, string>>,
  name: string,
  variables: ReadonlyMap<string, Variable>,
  file: string,
  layout: MomentLayout = 'hwio',
): AdamState {
  const stepText = metadata[`${name}.step`];
  const step = stepText !== undefined && /^\d+$/.test(stepText) ? Number(stepText) : Number.NaN;
  if (!Number.isSafeInteger(step))
    throw new ModelFormatError(`__metadata__ ${name}.step must be an integer ≥ 0, got ${JSON.stringify(stepText)}`, { file });
  const out = new Map<string, Float32TensorData>();
  for (const [param, variable] of variables) {
    for (const moment of ['exp_avg', 'exp_avg_sq']) {
      const key = `${name}.${param}.${moment}`;
      const t = tensors.get(key);
      if (t === undefined) throw new ModelFormatError(`missing tensor ${key}`, { file });
      const hwio = variable.shape;
      const convert = hwio.length === 4 && layout === 'hwio';
      const torchShape = convert ? [hwio[3], hwio[2], hwio[0], hwio[1]] : hwio;
      if (t.dtype !== 'F32' || t.shape.length !== torchShape.length || t.shape.some((d, i) => d !== torchShape[i])) {
        throw new ModelFormatError(`tensor ${key} is ${t.dtype} ${shapeText(t.shape)}, expected F32 ${shapeText(torchShape as number[])}`, {
          file,
        });
      }
      const data = tensorToFloat32(t);
      out.set(`${param}.${moment}`, { shape: hwio, data: convert ? hwioFromOihw(data, t.shape) : data });
    }
  }
  return { step, tensors: out };
}

/**
 * Refuses an optimizer file holding tensors of no listed optimiser, or more or fewer than the optimisers'
 * parameters need (`expected`: two moments per parameter of every optimiser read).
 */
export function checkOptimizerTensors(tensors: TensorMap, names: readonly string[], expected: number, file: string): void {
  const stray = [...tensors.keys()].find((k) => !names.some((n) => k.startsWith(`${n}.`)));
  if (stray !== undefined)
    throw new ModelFormatError(`tensor ${stray} belongs to no optimiser of this checkpoint (${names.join(', ')})`, { file });
  if (tensors.size !== expected)
    throw new ModelFormatError(`holds ${tensors.size} tensors, the optimisers' parameters need ${expected}`, { file });
}
