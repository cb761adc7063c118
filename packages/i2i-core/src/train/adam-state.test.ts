/** Adam state under a caller-given name in optimizer.safetensors tensors and metadata, in either parameter layout. */
import { ModelFormatError, loadTf, parseSafetensors, serializeSafetensors } from '@scenimefy/io';
import type { Tensor, Variable } from '@tensorflow/tfjs-core';

import type { Tf } from '../layers/tf';
import { Adam } from './adam';
import { adamStateFromTensors, adamStateMetadata, adamStateTensors, checkOptimizerTensors, hasAdamState } from './adam-state';

describe('Adam state in a checkpoint', () => {
  let tf: Tf;
  let params: Map<string, Variable>;
  let adam: Adam;
  beforeAll(async () => {
    ({ tf } = await loadTf({ prefer: 'cpu' }));
    params = new Map([
      ['conv.weight', tf.variable(tf.randomNormal([3, 3, 2, 4], 0, 1, 'float32', 1))],
      ['fc.bias', tf.variable(tf.randomNormal([4], 0, 1, 'float32', 2))],
    ]);
    adam = new Adam(tf, params, { lr: 1e-3, betas: [0, 0.99] });
    for (let seed = 3; seed < 5; seed++) {
      const grads = new Map<string, Tensor>([...params].map(([k, v]) => [k, tf.randomNormal(v.shape, 0, 1, 'float32', seed)]));
      adam.applyGradients(grads);
      tf.dispose([...grads.values()]);
    }
  });
  afterAll(() => {
    adam.dispose();
    for (const v of params.values()) v.dispose();
  });

  it.each(['hwio', 'as-is'] as const)('round-trips through the file under the given name (%s layout)', async (layout) => {
    const state = await adam.state();
    const tensors = adamStateTensors('g_optim', state, new Map(), layout);
    const metadata = adamStateMetadata('g_optim', adam);
    expect(metadata).toEqual({ 'g_optim.step': '2', 'g_optim.lr': '0.001', 'g_optim.betas': '0,0.99', 'g_optim.eps': '1e-8' });
    // PyTorch's OIHW in the file for HWIO variables; as they are otherwise.
    expect(tensors.get('g_optim.conv.weight.exp_avg')?.shape).toEqual(layout === 'hwio' ? [4, 2, 3, 3] : [3, 3, 2, 4]);
    const file = parseSafetensors(serializeSafetensors(tensors, metadata), 'optimizer.safetensors');
    expect(hasAdamState(file.metadata, 'g_optim')).toBe(true);
    expect(hasAdamState(file.metadata, 'd_optim')).toBe(false);
    const back = adamStateFromTensors(file.tensors, file.metadata, 'g_optim', params, 'optimizer.safetensors', layout);
    expect(back.step).toBe(2);
    for (const [key, t] of state.tensors) expect(Array.from(back.tensors.get(key)?.data ?? [])).toEqual(Array.from(t.data));
    checkOptimizerTensors(file.tensors, ['g_optim'], 4, 'optimizer.safetensors');
    expect(() => checkOptimizerTensors(file.tensors, ['d_optim'], 4, 'optimizer.safetensors')).toThrow(
      'tensor g_optim.conv.weight.exp_avg belongs to no optimiser of this checkpoint (d_optim)',
    );
  });

  it('names the file and the tensor when a moment is missing or misshapen', async () => {
    const tensors = adamStateTensors('G', await adam.state());
    tensors.delete('G.fc.bias.exp_avg_sq');
    expect(() => adamStateFromTensors(tensors, adamStateMetadata('G', adam), 'G', params, 'o.safetensors')).toThrow(
      new ModelFormatError('missing tensor G.fc.bias.exp_avg_sq', { file: 'o.safetensors' }).message,
    );
    const hwio = adamStateTensors('G', await adam.state());
    expect(() => adamStateFromTensors(hwio, adamStateMetadata('G', adam), 'G', params, 'o', 'as-is')).toThrow(
      'tensor G.conv.weight.exp_avg is F32 [4,2,3,3], expected F32 [3,3,2,4]',
    );
    expect(() => adamStateFromTensors(tensors, { 'G.step': '1.5' }, 'G', params, 'o')).toThrow(
      '__metadata__ G.step must be an integer ≥ 0',
    );
  });
});
