import { UsageError, loadTf } from '@scenimefy/io';
import type { Variable } from '@tensorflow/tfjs-core';
import type { Tf } from '../layers/tf';
import { Adam } from './adam';

/** torch.optim.Adam (single-tensor path, no weight decay), in float64, one parameter vector over several steps. */
function torchAdamF64(p0: number[], grads: number[][], lr: number, b1: number, b2: number, eps: number): number[] {
  const p = [...p0];
  const m = p0.map(() => 0);
  const v = p0.map(() => 0);
  grads.forEach((g, s) => {
    const t = s + 1;
    const bc1 = 1 - b1 ** t;
    const bc2 = 1 - b2 ** t;
    for (let i = 0; i < p.length; i++) {
      const gi = g[i] as number;
      m[i] = (m[i] as number) + (gi - (m[i] as number)) * (1 - b1);
      v[i] = (v[i] as number) * b2 + (1 - b2) * gi * gi;
      const denom = Math.sqrt(v[i] as number) / Math.sqrt(bc2) + eps;
      p[i] = (p[i] as number) - ((lr / bc1) * (m[i] as number)) / denom;
    }
  });
  return p;
}

describe('Adam (torch.optim.Adam semantics)', () => {
  let tf: Tf;
  beforeAll(async () => {
    ({ tf } = await loadTf({ prefer: 'cpu', require: true }));
  });

  const p0 = [0.3, -1.2, 0.05, 2.0, 0, -0.7];
  // Mixed scales and signs, a zero gradient and one smaller than eps, so the eps placement shows.
  const grads = [
    [0.5, -3e-3, 1e-9, 0, 2.5, -0.25],
    [-0.4, -2e-3, 3e-9, 1e-4, 2.0, 0.75],
    [0.1, 5e-3, -1e-9, -1e-4, -1.5, 0.5],
  ];

  const run = (options: ConstructorParameters<typeof Adam>[2], steps: number): { values: number[]; adam: Adam; w: Variable } => {
    const w = tf.variable(tf.tensor1d(p0));
    const adam = new Adam(tf, new Map([['w', w]]), options);
    for (let s = 0; s < steps; s++) {
      const g = tf.tensor1d(grads[s] as number[]);
      adam.applyGradients(new Map([['w', g]]));
      g.dispose();
    }
    return { values: Array.from(w.dataSync()), adam, w };
  };

  it.each([1, 2, 3])('matches the float64 torch formula after %i step(s) with the reference hyper-parameters', (steps) => {
    const { values, adam, w } = run({}, steps);
    const want = torchAdamF64(p0, grads.slice(0, steps), 2e-4, 0.5, 0.999, 1e-8);
    // float32 parameters around 1 carry ~1e-7 rounding; the update itself is ~2e-4.
    expect(values).toBeCloseToTensor(want, { atol: 3e-7, rtol: 0 });
    expect(adam.step).toBe(steps);
    adam.dispose();
    w.dispose();
  });

  it('at t = 1 moves each entry by lr·g/(|g| + eps): a full lr step for a large gradient, a damped one below eps', () => {
    const { values, adam, w } = run({ lr: 0.01, betas: [0.9, 0.99] }, 1);
    const want = torchAdamF64(p0, grads.slice(0, 1), 0.01, 0.9, 0.99, 1e-8);
    expect(values).toBeCloseToTensor(want, { atol: 1e-6, rtol: 0 });
    expect((values[0] as number) - (p0[0] as number)).toBeCloseTo(-0.01, 6);
    expect(values[3]).toBe(Math.fround(p0[3] as number));
    // g = 1e-9 against eps 1e-8: the step is lr·1e-9/(1e-9 + 1e-8) ≈ lr/11.
    expect((values[2] as number) - (p0[2] as number)).toBeCloseTo(-0.01 / 11, 5);
    adam.dispose();
    w.dispose();
  });

  it('exports and re-imports its state so that a resumed run takes the same step', async () => {
    const first = run({}, 2);
    const state = await first.adam.state();
    expect(state.step).toBe(2);
    expect([...state.tensors.keys()]).toEqual(['w.exp_avg', 'w.exp_avg_sq']);
    const w = tf.variable(tf.tensor1d(first.values));
    const resumed = new Adam(tf, new Map([['w', w]]));
    resumed.loadState(state);
    const g = tf.tensor1d(grads[2] as number[]);
    const before = tf.memory().numTensors;
    resumed.applyGradients(new Map([['w', g]]));
    first.adam.applyGradients(new Map([['w', g]]));
    expect(tf.memory().numTensors).toBe(before);
    expect(Array.from(w.dataSync())).toEqual(Array.from(first.w.dataSync()));
    g.dispose();
    tf.dispose([w, first.w]);
    resumed.dispose();
    first.adam.dispose();
  });

  it('skips parameters without a gradient and refuses unknown names, bad states and bad hyper-parameters', () => {
    const a = tf.variable(tf.tensor1d([1, 2]));
    const b = tf.variable(tf.tensor1d([3]));
    const adam = new Adam(
      tf,
      new Map([
        ['a', a],
        ['b', b],
      ]),
    );
    const g = tf.tensor1d([1, -1]);
    adam.applyGradients(new Map([['a', g]]));
    expect(Array.from(b.dataSync())).toEqual([3]);
    expect(() => adam.applyGradients(new Map([['c', g]]))).toThrow(UsageError);
    expect(() => adam.loadState({ step: 1, tensors: new Map([['a.exp_avg', { shape: [2], data: new Float32Array(2) }]]) })).toThrow(
      /a needs both exp_avg and exp_avg_sq/,
    );
    expect(() => new Adam(tf, new Map([['a', a]]), { betas: [1, 0.999] })).toThrow(UsageError);
    expect(() => new Adam(tf, new Map())).toThrow(UsageError);
    g.dispose();
    adam.dispose();
    tf.dispose([a, b]);
  });
});
