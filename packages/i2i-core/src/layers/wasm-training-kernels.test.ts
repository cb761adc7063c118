/**
 * Training on the wasm backend: registration, the gradients of every network against the cpu backend (which
 * would also catch a wasm kernel that runs but computes wrong numbers), and one full `semi_cut` optimisation
 * step against tfjs-node where it is installed (the cpu backend needs minutes for that step).
 */
import { availableBackends, loadTf } from '@scenimefy/io';
import { seededUniform } from '@scenimefy/test-utils';
import type { Tensor, Tensor2D, Tensor4D, Variable } from '@tensorflow/tfjs-core';
import { createPatchDiscriminator } from '../networks/discriminator';
import { createResnetGenerator } from '../networks/generator';
import { createPatchSampleF } from '../networks/patch-sample';
import { createSemiCutModel } from '../train/semi-cut';
import type { SemiCutBatch, SemiCutLosses } from '../train/semi-cut';
import type { Tf } from './tf';
import { WASM_MISSING_TRAINING_KERNELS, WASM_REPLACED_TRAINING_KERNELS, registerWasmTrainingKernels } from './wasm-training-kernels';

type Backend = 'cpu' | 'wasm' | 'tensorflow';

let tf: Tf;
beforeAll(async () => {
  ({ tf } = await loadTf({ prefer: 'cpu', require: true }));
  await loadTf({ prefer: 'wasm', require: true });
});

const size = (shape: readonly number[]): number => shape.reduce((a, d) => a * d, 1);
const seeded = (seed: number, shape: number[]): Tensor => tf.tensor(seededUniform(seed, size(shape)), shape);

describe('registerWasmTrainingKernels', () => {
  it('adds the missing kernels, then the faster replacements when asked, and nothing the second time', () => {
    tf.setBackend('wasm');
    for (const name of WASM_MISSING_TRAINING_KERNELS) expect(tf.getKernel(name, 'wasm')).toBeUndefined();
    const wasmOwn = WASM_REPLACED_TRAINING_KERNELS.map((name) => tf.getKernel(name, 'wasm')?.kernelFunc);
    for (const own of wasmOwn) expect(own).toBeDefined();

    expect(registerWasmTrainingKernels(tf, { replaceSlowKernels: false })).toEqual([...WASM_MISSING_TRAINING_KERNELS]);
    expect(WASM_REPLACED_TRAINING_KERNELS.map((name) => tf.getKernel(name, 'wasm')?.kernelFunc)).toEqual(wasmOwn);
    expect(registerWasmTrainingKernels(tf)).toEqual([...WASM_REPLACED_TRAINING_KERNELS]);
    WASM_REPLACED_TRAINING_KERNELS.forEach((name, i) => expect(tf.getKernel(name, 'wasm')?.kernelFunc).not.toBe(wasmOwn[i]));
    expect(registerWasmTrainingKernels(tf)).toEqual([]);
    for (const name of [...WASM_MISSING_TRAINING_KERNELS, ...WASM_REPLACED_TRAINING_KERNELS]) {
      expect(tf.getKernel(name, 'wasm')).toBeDefined();
    }
  });

  it('does nothing where tfjs-backend-wasm is not loaded', () => {
    const registered: unknown[] = [];
    const withoutWasm = {
      getKernel: (name: string, backend: string) => (backend === 'wasm' ? undefined : tf.getKernel(name, backend)),
      registerKernel: (config: unknown) => registered.push(config),
      unregisterKernel: (name: string) => registered.push(name),
    } as unknown as Tf;
    expect(registerWasmTrainingKernels(withoutWasm)).toEqual([]);
    expect(registered).toEqual([]);
  });
});

/** Gradients of `loss` w.r.t. `variables` (and the extra inputs), flattened per name, computed on `backend`. */
function gradientsOn(
  backend: Backend,
  build: () => { loss: () => Tensor; variables: Map<string, Variable>; dispose: () => void },
): Map<string, Float32Array> {
  tf.setBackend(backend);
  const net = build();
  try {
    const before = tf.memory().numTensors;
    const buffers = tf.engine().backend.numDataIds();
    const { value, grads } = tf.variableGrads(() => net.loss() as never, [...net.variables.values()]);
    const out = new Map<string, Float32Array>();
    for (const [key, v] of net.variables) {
      const g = grads[v.name];
      if (g === undefined) throw new Error(`no gradient for ${key}`);
      out.set(key, g.dataSync() as Float32Array);
    }
    tf.dispose([value, ...Object.values(grads)]);
    expect(tf.memory().numTensors).toBe(before);
    expect(tf.engine().backend.numDataIds()).toBe(buffers);
    return out;
  } finally {
    net.dispose();
  }
}

/**
 * Every gradient tensor equal to float32 rounding in another summation order: atol 1e-4·max|g| of the tensor
 * plus 1e-5·max|g| of the network, rtol 1e-3. The network-wide term covers gradients that are zero in exact
 * arithmetic (the bias of a conv followed by InstanceNorm), which both backends give as rounding noise.
 */
function expectSameGradients(actual: Map<string, Float32Array>, expected: Map<string, Float32Array>): void {
  expect([...actual.keys()]).toEqual([...expected.keys()]);
  const maxAbs = (a: Float32Array): number => a.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  const networkScale = Math.max(...[...expected.values()].map(maxAbs));
  expect(networkScale).toBeGreaterThan(0);
  for (const [key, want] of expected) {
    const got = actual.get(key) as Float32Array;
    try {
      expect(got).toBeCloseToTensor(want, { atol: 1e-4 * maxAbs(want) + 1e-5 * networkScale, rtol: 1e-3 });
    } catch (error) {
      throw new Error(`gradient of ${key}: ${(error as Error).message}`);
    }
  }
}

describe('network gradients on wasm equal cpu', () => {
  beforeAll(() => {
    registerWasmTrainingKernels(tf);
  });

  it('ResnetGenerator (ngf 4, 2 blocks, batch 2, 12x12: odd sizes after downsampling): output and encoder taps', () => {
    const build = () => {
      // gain 1: with the training init's 0.02 most weight gradients are too small to compare meaningfully.
      const g = createResnetGenerator(tf, { ngf: 4, nBlocks: 2 }, { init: { seed: 3, gain: 1 } });
      const x = seeded(1, [2, 3, 12, 12]) as Tensor4D;
      const loss = () => {
        const taps = g.encode(x, [0, 4, 8, 12]);
        let total = tf.sum(tf.mul(g.forward(x), seeded(2, [2, 3, 12, 12])));
        taps.forEach((t, i) => (total = tf.add(total, tf.sum(tf.mul(t, seeded(10 + i, t.shape))))));
        return total;
      };
      return { loss, variables: new Map(g.variables), dispose: () => (g.dispose(), x.dispose()) };
    };
    expectSameGradients(gradientsOn('wasm', build), gradientsOn('cpu', build));
  });

  it('PatchDiscriminator (ndf 4, 6 channels, batch 2, 24x24: odd sizes inside), including the input gradient', () => {
    const build = () => {
      const d = createPatchDiscriminator(tf, { inputNc: 6, ndf: 4 }, { init: { seed: 4, gain: 1 } });
      const x = tf.variable(seeded(5, [2, 6, 24, 24]), true, `disc-input-${tf.getBackend()}`);
      const loss = () => {
        const y = d.forward(x as unknown as Tensor4D);
        return tf.sum(tf.mul(y, seeded(6, y.shape)));
      };
      const variables = new Map<string, Variable>([...d.variables, ['input', x]]);
      return { loss, variables, dispose: () => (d.dispose(), x.dispose()) };
    };
    expectSameGradients(gradientsOn('wasm', build), gradientsOn('cpu', build));
  });

  it('PatchSampleF (gather, MLP heads, L2 norm), including the tap gradients', () => {
    const build = () => {
      const f = createPatchSampleF(tf, { nc: 8, seed: 7 });
      const taps = [
        tf.variable(seeded(8, [2, 5, 6, 7]), true, `tap0-${tf.getBackend()}`),
        tf.variable(seeded(9, [2, 3, 4, 4]), true, `tap1-${tf.getBackend()}`),
      ];
      const ids = [Int32Array.from([0, 41, 17, 17, 5]), Int32Array.from([15, 2, 9, 0, 3])];
      tf.tidy(() => f.sample(taps as unknown as Tensor4D[], 5, ids).features); // builds the heads
      const loss = () => {
        const { features } = f.sample(taps as unknown as Tensor4D[], 5, ids);
        return features.reduce((acc: Tensor, q: Tensor2D, l) => tf.add(acc, tf.sum(tf.mul(q, seeded(20 + l, q.shape)))), tf.scalar(0));
      };
      const variables = new Map<string, Variable>([...f.variables, ['tap0', taps[0] as Variable], ['tap1', taps[1] as Variable]]);
      return { loss, variables, dispose: () => (f.dispose(), tf.dispose(taps)) };
    };
    expectSameGradients(gradientsOn('wasm', build), gradientsOn('cpu', build));
  });
});

const hasTfjsNode = availableBackends().some((b) => b.candidate === 'tfjs-node');
// The reference step needs a fast backend with every training kernel: tfjs-node. cpu would take minutes.
const describeWithTfjsNode = hasTfjsNode ? describe : describe.skip;

describeWithTfjsNode('one semi_cut optimisation step on wasm equals tfjs-node', () => {
  const LOSS_NAMES: Array<keyof SemiCutLosses> = [
    'D_fake',
    'D_real',
    'D',
    'D_p_fake',
    'D_p_real',
    'D_p',
    'G_GAN',
    'G_GAN_p',
    'NCE_s',
    'SRC',
    'HDCE',
    'HDCE_Y',
    'G',
  ];

  interface StepResult {
    init: SemiCutLosses;
    step: SemiCutLosses;
    before: Map<string, Float32Array>;
    after: Map<string, Float32Array>;
  }

  const weightsOf = (nets: Record<string, { variables: ReadonlyMap<string, Variable> }>): Map<string, Float32Array> => {
    const out = new Map<string, Float32Array>();
    for (const [net, n] of Object.entries(nets)) for (const [key, v] of n.variables) out.set(`${net}.${key}`, v.dataSync() as Float32Array);
    return out;
  };

  function stepOn(backend: Backend): StepResult {
    tf.setBackend(backend);
    const netG = createResnetGenerator(tf, { ngf: 8 }, { init: { seed: 1 } });
    const netD = createPatchDiscriminator(tf, { inputNc: 3, ndf: 8 }, { init: { seed: 2 } });
    const netDp = createPatchDiscriminator(tf, { inputNc: 6, ndf: 8 }, { init: { seed: 3 } });
    const netF = createPatchSampleF(tf, { nc: 16, seed: 4 });
    const netFs = createPatchSampleF(tf, { nc: 16, seed: 5 });
    const model = createSemiCutModel(tf, { netG, netD, netDp, netF, netFs }, { options: { numPatches: 32 } });
    const image = (seed: number) => seeded(seed, [1, 3, 32, 32]) as Tensor4D;
    const batch: SemiCutBatch = { x: image(11), y: image(12), xP: image(13), yP: image(14) };
    try {
      const init = model.dataDependentInit(batch);
      const before = weightsOf(model.networks as never);
      const tensors = tf.memory().numTensors;
      const step = model.optimizeParameters(batch);
      // Buffers are not compared here: Adam's two moments share one zeros buffer until their first update.
      expect(tf.memory().numTensors).toBe(tensors);
      return { init, step, before, after: weightsOf(model.networks as never) };
    } finally {
      model.dispose();
      tf.dispose([batch.x, batch.y, batch.xP, batch.yP]);
    }
  }

  let reference: StepResult;
  let wasm: StepResult;
  beforeAll(async () => {
    await loadTf({ prefer: 'tfjs-node', require: true });
    reference = stepOn('tensorflow');
    await loadTf({ prefer: 'wasm', require: true });
    registerWasmTrainingKernels(tf);
    wasm = stepOn('wasm');
  }, 120_000);

  it('starts from the same weights and gives the same init and step losses', () => {
    expect([...wasm.before.keys()]).toEqual([...reference.before.keys()]);
    for (const [key, w] of reference.before) expect(wasm.before.get(key)).toEqual(w);
    for (const phase of ['init', 'step'] as const) {
      const got = LOSS_NAMES.map((n) => wasm[phase][n]);
      const want = LOSS_NAMES.map((n) => reference[phase][n]);
      expect(Float32Array.from(got)).toBeCloseToTensor(Float32Array.from(want), { atol: 1e-6, rtol: 1e-4 });
    }
  });

  it('updates every weight the same way (Adam step 1 moves each by ≈ lr·sign(g))', () => {
    // A gradient within rounding of 0 may take the other sign on the other backend, which moves that entry by
    // up to 2·lr the other way; anywhere else the update is the same to float32 rounding. Whole bias tensors
    // are such: a conv bias followed by InstanceNorm has gradient 0 in exact arithmetic, so only the 2·lr bound
    // holds for biases. Conv and linear weights must agree nearly everywhere.
    const lr = 0.0002;
    let weights = 0;
    let moved = 0;
    let flipped = 0;
    const far: string[] = [];
    for (const [key, after] of reference.after) {
      const ours = wasm.after.get(key) as Float32Array;
      const before = reference.before.get(key) as Float32Array;
      const isWeight = !key.endsWith('.bias');
      for (let i = 0; i < after.length; i++) {
        const want = after[i] as number;
        const d = Math.abs((ours[i] as number) - want);
        if (d > 2 * lr + 1e-6) far.push(`${key}[${i}]: ${ours[i]} vs ${want}`);
        if (!isWeight) continue;
        weights++;
        if (Math.abs(want - (before[i] as number)) > 0.5 * lr) moved++;
        if (d > 1e-6 + 1e-5 * Math.abs(want)) flipped++;
      }
    }
    expect(far.slice(0, 5)).toEqual([]);
    expect(moved).toBeGreaterThan(0.9 * weights);
    expect(flipped).toBeLessThanOrEqual(0.001 * weights);
  });
});
