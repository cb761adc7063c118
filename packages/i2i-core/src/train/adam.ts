/**
 * `torch.optim.Adam` as the reference trains with it (SPEC §5.7: lr 2e-4, betas (0.5, 0.999), eps 1e-8, no
 * weight decay, no amsgrad), single-tensor path, written out op by op in PyTorch's order so a float32 step
 * lands where PyTorch's does:
 *
 *   step += 1
 *   m.lerp_(g, 1 − β1)                         (ATen lerp: weight ≥ ½ → g − (g − m)·(1 − w))
 *   v.mul_(β2).addcmul_(g, g, value = 1 − β2)   (v·β2 + ((1 − β2)·g)·g)
 *   step_size = lr / (1 − β1^t)                 (double, then one float32 scalar)
 *   denom = sqrt(v) / sqrt(1 − β2^t) + eps
 *   p.addcdiv_(m, denom, value = −step_size)    (p + (−step_size·m) / denom)
 *
 * tfjs-core's own `tf.train.adam` folds the bias corrections into the learning rate and puts eps outside the
 * corrected root, which moves every first step by up to eps·√(1−β2^t) relative; hence this hand-written one.
 *
 * State (`exp_avg`, `exp_avg_sq` per parameter and the step count) exports to and imports from plain float32
 * arrays keyed `<param>.exp_avg` / `<param>.exp_avg_sq`, so a checkpoint can hold it next to the weights.
 */
import type { Tensor, Variable } from '@tensorflow/tfjs-core';
import { UsageError } from '@scenimefy/io';
import type { Tf } from '../layers/tf';
import type { Float32TensorData } from '../networks/generator';

export interface AdamOptions {
  /** Learning rate; the reference's `--lr` 2e-4. */
  readonly lr?: number;
  /** (β1, β2); the reference's `--beta1 0.5` and PyTorch's default β2 0.999. */
  readonly betas?: readonly [number, number];
  /** Added to the bias-corrected root; PyTorch's default 1e-8. */
  readonly eps?: number;
}

export const ADAM_DEFAULTS = Object.freeze({ lr: 2e-4, betas: Object.freeze([0.5, 0.999] as const), eps: 1e-8 });

/** Everything needed to continue an Adam run: the step count and both moments of every parameter. */
export interface AdamState {
  /** Steps taken so far (PyTorch's `state[p]['step']`, equal for every parameter here). */
  readonly step: number;
  /** `<param>.exp_avg` and `<param>.exp_avg_sq`, float32 in the parameter's own layout. */
  readonly tensors: ReadonlyMap<string, Float32TensorData>;
}

interface Moments {
  readonly m: Variable;
  readonly v: Variable;
}

/**
 * ATen's CPU `lerp(self, end, w)`: for |w| < ½ `self + w·(end − self)`, otherwise `end − (end − self)·(1 − w)`.
 * The branch matters in float32: with w = ½ (β1 = 0.5) PyTorch takes the second form.
 */
function lerp(tf: Tf, self: Tensor, end: Tensor, weight: number): Tensor {
  const diff = tf.sub(end, self);
  return Math.abs(weight) < 0.5 ? tf.add(self, tf.mul(diff, weight)) : tf.sub(end, tf.mul(diff, 1 - weight));
}

export class Adam {
  /** Mutable so a scheduler can set it between steps, like `param_group['lr']`. */
  lr: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  private stepCount = 0;
  private readonly moments = new Map<string, Moments>();
  private disposed = false;

  /** `params` by name (e.g. state-dict keys); the names key the gradients given to `step` and the exported state. */
  constructor(
    private readonly tf: Tf,
    readonly params: ReadonlyMap<string, Variable>,
    options: AdamOptions = {},
  ) {
    this.lr = options.lr ?? ADAM_DEFAULTS.lr;
    const [beta1, beta2] = options.betas ?? ADAM_DEFAULTS.betas;
    this.beta1 = beta1;
    this.beta2 = beta2;
    this.eps = options.eps ?? ADAM_DEFAULTS.eps;
    for (const [name, value] of Object.entries({ lr: this.lr, beta1, beta2, eps: this.eps })) {
      if (!Number.isFinite(value) || value < 0) throw new UsageError(`Adam: ${name} must be a finite number ≥ 0, got ${String(value)}`);
    }
    if (beta1 >= 1 || beta2 >= 1) throw new UsageError(`Adam: betas must be below 1, got (${beta1}, ${beta2})`);
    if (params.size === 0) throw new UsageError('Adam: no parameters to optimise');
    // Made up front (PyTorch makes them at the first step) so that a step allocates nothing that outlives it.
    for (const [name, param] of params) this.momentsOf(name, param);
  }

  /** Steps taken so far. */
  get step(): number {
    return this.stepCount;
  }

  private checkUsable(): void {
    if (this.disposed) throw new UsageError('Adam: used after dispose()');
  }

  private momentsOf(name: string, param: Variable): Moments {
    let moments = this.moments.get(name);
    if (moments === undefined) {
      const tf = this.tf;
      const zeros = tf.zerosLike(param);
      // A variable shares its initial tensor's data, so the zeros handle is released once both exist.
      moments = { m: tf.variable(zeros, false), v: tf.variable(zeros, false) };
      zeros.dispose();
      this.moments.set(name, moments);
    }
    return moments;
  }

  /**
   * One `optimizer.step()`. `grads` maps parameter names to gradients; a parameter without one is skipped
   * (PyTorch skips `p.grad is None`) and keeps its moments. The gradients stay the caller's to dispose.
   */
  applyGradients(grads: ReadonlyMap<string, Tensor>): void {
    this.checkUsable();
    for (const name of grads.keys()) {
      if (!this.params.has(name)) throw new UsageError(`Adam.applyGradients: ${name} is not one of this optimiser's parameters`);
    }
    const tf = this.tf;
    this.stepCount += 1;
    const t = this.stepCount;
    const biasCorrection1 = 1 - this.beta1 ** t;
    const biasCorrection2 = 1 - this.beta2 ** t;
    const stepSize = this.lr / biasCorrection1;
    const biasCorrection2Sqrt = Math.sqrt(biasCorrection2);
    for (const [name, param] of this.params) {
      const g = grads.get(name);
      if (g === undefined) continue;
      if (g.size !== param.size) {
        throw new UsageError(
          `Adam.applyGradients: gradient of ${name} has shape [${g.shape.join(',')}], parameter [${param.shape.join(',')}]`,
        );
      }
      const { m, v } = this.momentsOf(name, param);
      tf.tidy(() => {
        const grad = tf.reshape(g, param.shape);
        m.assign(lerp(tf, m, grad, 1 - this.beta1));
        v.assign(tf.add(tf.mul(v, this.beta2), tf.mul(tf.mul(grad, 1 - this.beta2), grad)));
        const denom = tf.add(tf.div(tf.sqrt(v), biasCorrection2Sqrt), this.eps);
        param.assign(tf.add(param, tf.div(tf.mul(m, -stepSize), denom)));
      });
    }
  }

  /** The step count and both moments of every parameter as float32 arrays. */
  async state(): Promise<AdamState> {
    this.checkUsable();
    const tensors = new Map<string, Float32TensorData>();
    for (const [name, { m, v }] of this.moments) {
      tensors.set(`${name}.exp_avg`, { shape: m.shape, data: ((await m.data()) as Float32Array).slice() });
      tensors.set(`${name}.exp_avg_sq`, { shape: v.shape, data: ((await v.data()) as Float32Array).slice() });
    }
    return { step: this.stepCount, tensors };
  }

  /** Continues from an exported state, which must hold both moments of every parameter, each with its shape. */
  loadState(state: AdamState): void {
    this.checkUsable();
    if (!Number.isInteger(state.step) || state.step < 0)
      throw new UsageError(`Adam.loadState: step must be an integer ≥ 0, got ${String(state.step)}`);
    const pending = new Map<string, { m?: Float32TensorData; v?: Float32TensorData }>();
    for (const [key, value] of state.tensors) {
      const match = /^(.*)\.(exp_avg|exp_avg_sq)$/.exec(key);
      const name = match?.[1];
      const param = name === undefined ? undefined : this.params.get(name);
      if (match === null || name === undefined || param === undefined) {
        throw new UsageError(`Adam.loadState: ${key} is not <param>.exp_avg or <param>.exp_avg_sq of a parameter of this optimiser`);
      }
      if (
        value.shape.length !== param.shape.length ||
        value.shape.some((d, i) => d !== param.shape[i]) ||
        value.data.length !== param.size
      ) {
        throw new UsageError(
          `Adam.loadState: ${key} has shape [${value.shape.join(',')}], parameter ${name} is [${param.shape.join(',')}]`,
        );
      }
      const entry = pending.get(name) ?? {};
      if (match[2] === 'exp_avg') entry.m = value;
      else entry.v = value;
      pending.set(name, entry);
    }
    for (const name of this.params.keys()) {
      const entry = pending.get(name);
      if (entry?.m === undefined || entry.v === undefined)
        throw new UsageError(`Adam.loadState: ${name} needs both exp_avg and exp_avg_sq`);
    }
    const tf = this.tf;
    for (const [name, entry] of pending) {
      const param = this.params.get(name) as Variable;
      const { m, v } = this.momentsOf(name, param);
      tf.tidy(() => {
        m.assign(tf.tensor((entry.m as Float32TensorData).data, param.shape, 'float32'));
        v.assign(tf.tensor((entry.v as Float32TensorData).data, param.shape, 'float32'));
      });
    }
    this.stepCount = state.step;
  }

  private disposeMoments(): void {
    for (const { m, v } of this.moments.values()) {
      m.dispose();
      v.dispose();
    }
    this.moments.clear();
  }

  /** Frees the moments (not the parameters, which belong to their network). */
  dispose(): void {
    if (this.disposed) return;
    this.disposeMoments();
    this.disposed = true;
  }
}
