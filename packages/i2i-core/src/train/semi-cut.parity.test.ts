/**
 * One training iteration of `semi_cut` against the PyTorch reference (fixtures/reference/i2i, README §6,
 * train.json): data-dependent init losses, optimize_parameters #1 (losses, then the D, D_p, F and F_s weights
 * after it, in full from train-step1.safetensors), and the losses of optimize_parameters #2 within a looser,
 * documented bound. The reference's patch ids are injected in draw order. The init losses run on cpu, and
 * everything on the training backend: tfjs-node where it is installed, else wasm with the project's training
 * kernels, so that no test here is ever skipped. Options, names and tolerances come from train.json.
 *
 * The fixture's generator update is wrong (torch 2.13 CPU's InstanceNorm backward on channels-last-strided
 * gradients, tools/reference-checks/instance_norm_strided_grad.py), so G after step 1 is not compared with it.
 * Instead our G gradient at the fixture's step-1 state is checked against central finite differences (with the
 * ReLU/LeakyReLU slopes frozen at that state), along directions where the fixture's recorded gradient (`weights_after_step.G.tensors[key].grad_step1`) is far
 * enough from ours that it would fail the same check.
 */
import { availableBackends, loadTf, readSafetensors, readTorchStateDict, tensorToFloat32, tensorToInt32 } from '@scenimefy/io';
import type { BackendCandidate, TensorMap } from '@scenimefy/io';
import { describeIfFixture, loadReferenceFixture, referenceFixturePath } from '@scenimefy/test-utils';
import type { ReferenceFixture } from '@scenimefy/test-utils';
import type { Tensor, Tensor4D, Variable } from '@tensorflow/tfjs-core';
import type { Tf } from '../layers/tf';
import { createPatchDiscriminator, inferDiscriminatorConfig } from '../networks/discriminator';
import { createResnetGenerator, loadGeneratorWeights } from '../networks/generator';
import type { Float32TensorData } from '../networks/generator';
import { createPatchSampleF } from '../networks/patch-sample';
import { registerWasmTrainingKernels } from '../layers/wasm-training-kernels';
import { oihwFromHwio } from '../networks/state-dict';
import { SeededRng } from '../seeded-rng';
import { createSemiCutModel, queuedPatchIds } from './semi-cut';
import type { GeneratorPatchIds, SemiCutBatch, SemiCutLosses, SemiCutModel, SemiCutNetworks } from './semi-cut';

function numberAfter(word: 'atol' | 'rtol' | 'within', text: string, where: string, nth = 0): number {
  const all = [...text.matchAll(new RegExp(`${word}\\s+([0-9.]+(?:e-?[0-9]+)?)`, 'g'))];
  const m = all[nth];
  if (!m) throw new Error(`${where}: no "${word} <number>" (#${nth}) in tolerance guidance: ${text}`);
  return Number(m[1]);
}

function percentOf(text: string, where: string): number {
  const m = /([0-9.]+)%/.exec(text);
  if (!m) throw new Error(`${where}: no "<number>%" in tolerance guidance: ${text}`);
  return Number(m[1]) / 100;
}

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
  'HDCE_both',
  'G',
];

/**
 * Where the optimisation steps and the gradient check run: tfjs-node where it is installed, else wasm with the
 * training kernels it lacks (`registerWasmTrainingKernels`, as the trainer registers them). tfjs-core's cpu kernels
 * take minutes for one backward pass of this model on 2 cores, so the cpu backend reproduces the forward-only
 * init losses only.
 */
const TRAINING_BACKEND: BackendCandidate = availableBackends().some((b) => b.candidate === 'tfjs-node') ? 'tfjs-node' : 'wasm';
const backends: BackendCandidate[] = ['cpu', TRAINING_BACKEND];

/** `loadTf` for a backend of this file, with the wasm training kernels in place. */
async function trainingTf(backend: BackendCandidate): Promise<Tf> {
  const { tf } = await loadTf({ prefer: backend, require: true });
  if (backend === 'wasm') registerWasmTrainingKernels(tf);
  return tf;
}

/** The model options of the fixture run (train.json → effective_settings). */
function fixtureOptions(fixture: ReferenceFixture) {
  const settings = (key: string): unknown => fixture.sidecarValue(['effective_settings', key]);
  return {
    numPatches: settings('num_patches') as number,
    nceLayers: settings('nce_layers') as number[],
    nceT: settings('nce_T') as number,
    lambdaGan: settings('lambda_GAN') as number,
    lambdaGanP: settings('lambda_GAN_p') as number,
    lambdaHdce: settings('lambda_HDCE') as number,
    lambdaSrc: settings('lambda_SRC') as number,
    lambdaNceS: settings('lambda_NCE_s_effective') as number,
    dceIdt: settings('dce_idt') as boolean,
    useCurriculum: settings('use_curriculum') as boolean,
  };
}

/** Every draw of the fixture run, per layer. */
function fixtureDraws(fixture: ReferenceFixture): Int32Array[][] {
  const layers = fixture.sidecarValue(['effective_settings', 'nce_layers']) as number[];
  return (fixture.sidecarValue('draws') as unknown[]).map((_, k) =>
    layers.map((layer) => tensorToInt32(fixture.tensor(`ids_draw${k}_L${layer}`))),
  );
}

/** The fixture's images as a batch. */
function fixtureBatch(tf: Tf, fixture: ReferenceFixture): SemiCutBatch {
  const image = (name: string): Tensor4D => tf.tensor4d(fixture.float32(name), fixture.shape(name) as [number, number, number, number]);
  return { x: image('x'), y: image('y'), xP: image('x_p'), yP: image('y_p') };
}

const reached: string[] = [];
afterAll(() => {
  if (reached.length > 0) process.stdout.write(`semi_cut parity:\n  ${reached.join('\n  ')}\n`);
});

describeIfFixture('i2i/train-step1.safetensors', 'semi_cut one iteration vs PyTorch', () => {
  describe.each(backends)('%s backend', (backend) => {
    // The steps are defined on the training backend only (see TRAINING_BACKEND), never skipped.
    const steps = backend === TRAINING_BACKEND;
    let tf: Tf;
    let fixture: ReferenceFixture;
    let model: SemiCutModel;
    let batch: SemiCutBatch;
    let step1: TensorMap;
    let guidance: Record<string, string>;

    const lossesOf = (phase: string): Record<string, number> => {
      const out: Record<string, number> = {};
      for (const name of LOSS_NAMES) out[name] = fixture.sidecarNumber(['losses', phase, name, 'float32']);
      return out;
    };

    const compareLosses = (phase: string, got: SemiCutLosses, atol: number, rtol: number): void => {
      const want = lossesOf(phase);
      let worst = 0;
      const bad: string[] = [];
      for (const name of LOSS_NAMES) {
        const diff = Math.abs(got[name] - (want[name] as number));
        worst = Math.max(worst, diff);
        if (!(diff <= atol + rtol * Math.abs(want[name] as number))) bad.push(`${name}: got ${got[name]}, reference ${want[name]}`);
      }
      reached.push(`${backend} losses.${phase} max|Δ| ${worst.toExponential(2)} (atol ${atol}, rtol ${rtol})`);
      expect(bad).toEqual([]);
      expect([got.VGG, got.L1_source, got.L1_paired]).toEqual([0, 0, 0]);
    };

    beforeAll(async () => {
      tf = await trainingTf(backend);
      fixture = await loadReferenceFixture('i2i', 'train', { tensorFile: 'train-io.safetensors' });
      guidance = fixture.sidecarValue('tolerance_guidance') as Record<string, string>;
      const initial = fixture.sidecarValue('initial_weights') as Record<string, string>;
      const settings = (key: string): unknown => fixture.sidecarValue(['effective_settings', key]);
      const file = (name: string): string => referenceFixturePath('i2i', name.split(' ')[0] as string);

      const gWeights = loadGeneratorWeights(await readTorchStateDict(file(initial.G as string)));
      const netG = createResnetGenerator(tf, gWeights.config, { weights: gWeights });
      const discriminator = async (name: string) => {
        const weights = await readTorchStateDict(file(name));
        return createPatchDiscriminator(tf, inferDiscriminatorConfig(weights, { source: name }), { weights, source: name });
      };
      const netD = await discriminator(initial.D as string);
      const netDp = await discriminator(initial.D_p as string);
      const head = async (name: string) => {
        const f = createPatchSampleF(tf, { nc: settings('netF_nc') as number, seed: 0 });
        f.loadState(await readTorchStateDict(file(name)), { source: name });
        return f;
      };
      const netF = await head(initial.F as string);
      const netFs = await head(initial.F_s as string);
      expect([netG.config.ngf, netD.config.ndf]).toEqual([settings('ngf'), settings('ndf')]);

      const options = fixtureOptions(fixture);
      expect(options.lambdaNceS).toBeCloseTo((settings('lambda_NCE_s') as number) ** 2, 12);
      model = createSemiCutModel(
        tf,
        { netG, netD, netDp, netF, netFs },
        { epoch: settings('epoch') as number, patchIds: queuedPatchIds(fixtureDraws(fixture)), options },
      );
      expect(model.hdceGamma).toBe(settings('HDCE_gamma_at_epoch1'));
      expect(model.pairWeight).toBe(1);
      batch = fixtureBatch(tf, fixture);
      step1 = (await readSafetensors(referenceFixturePath('i2i', 'train-step1.safetensors'))).tensors;
    }, 120_000);

    afterAll(() => {
      model?.dispose();
      if (batch !== undefined) tf.dispose([batch.x, batch.y, batch.xP, batch.yP]);
    });

    it('data-dependent init reproduces losses.init', () => {
      const text = guidance['init losses and init intermediates (fake_B, pools, D maps)'] as string;
      const losses = model.dataDependentInit(batch);
      compareLosses('init', losses, numberAfter('atol', text, 'init'), numberAfter('rtol', text, 'init'));
    }, 120_000);

    if (!steps) return;

    it('optimize_parameters #1 reproduces losses.step1 without leaking tensors', () => {
      const before = tf.memory().numTensors;
      const losses = model.optimizeParameters(batch);
      expect(tf.memory().numTensors).toBe(before);
      const text = guidance['step1 losses'] as string;
      compareLosses('step1', losses, numberAfter('atol', text, 'step1'), 0);
      expect(model.optimizers.G.step).toBe(1);
    }, 120_000);

    it('D, D_p, F and F_s weights after step 1 match train-step1.safetensors', async () => {
      const real = guidance['step1 weights, tensors with real gradient'] as string;
      const share = percentOf(real, 'step1 weights');
      const close = numberAfter('within', real, 'step1 weights', 0);
      const bound = numberAfter('within', real, 'step1 weights', 1);
      const zeroBound = numberAfter('within', guidance['step1 weights, zero_gradient_tensors'] as string, 'zero-grad');
      const nets = [
        { name: 'D', state: await model.networks.netD.stateDict() },
        { name: 'D_p', state: await model.networks.netDp.stateDict() },
        { name: 'F', state: await model.networks.netF.stateDict() },
        { name: 'F_s', state: await model.networks.netFs.stateDict() },
      ];
      const problems: string[] = [];
      for (const { name, state } of nets) {
        const zeroGrad = new Set(fixture.sidecarValue(['weights_after_step', name, 'zero_gradient_tensors']) as string[]);
        let entries = 0;
        let near = 0;
        let worst = 0;
        for (const [key, ours] of state as Map<string, Float32TensorData>) {
          if (key.endsWith('.filt')) continue;
          const want = step1.get(`${name}.${key}`);
          if (want === undefined) throw new Error(`train-step1.safetensors has no ${name}.${key}`);
          const ref = tensorToFloat32(want);
          expect(ours.data.length).toBe(ref.length);
          const limit = zeroGrad.has(key) ? zeroBound : bound;
          for (let i = 0; i < ref.length; i++) {
            const d = Math.abs((ours.data[i] as number) - (ref[i] as number));
            if (d > limit) problems.push(`${name}.${key}[${i}] off by ${d}`);
            if (zeroGrad.has(key)) continue;
            entries++;
            if (d <= close) near++;
            worst = Math.max(worst, d);
          }
        }
        reached.push(`${backend} ${name} after step1: ${near}/${entries} within ${close}, max|Δ| ${worst.toExponential(2)}`);
        if (near < share * entries) problems.push(`${name}: only ${near}/${entries} entries within ${close}`);
      }
      expect(problems.slice(0, 10)).toEqual([]);
    });

    // Step 2 starts from the G update of step 1, which differs from the fixture's (see the module comment):
    // Adam's first step is ≈ lr·sign(g), so G entries whose gradient sign differs land 2·lr apart, and every
    // step-2 term that G enters moves with that difference — on reference data of this layout made with other
    // seeds (tools/reference-checks/semi_cut_other_seeds.py) by up to 68% of the term's own step-1→2 move, so no
    // tolerance derived from one fixture holds for them. They are reported, not asserted; what step 2 adds to
    // step 1 (Adam at t = 2, the moments carried over) is checked exactly by the terms G does not enter:
    // D_real and D_p_real read D and D_p after their step-1 update only, within the fixture's step-2 tolerance.
    it('optimize_parameters #2: the terms G does not enter equal losses.step2; the others are reported', () => {
      const text = guidance['step2 losses'] as string;
      const atol = numberAfter('atol', text, 'step2');
      const rtol = numberAfter('rtol', text, 'step2');
      const before = tf.memory().numTensors;
      const got = model.optimizeParameters(batch);
      expect(tf.memory().numTensors).toBe(before);
      const s1 = lossesOf('step1');
      const s2 = lossesOf('step2');
      let worstShare = 0;
      let worstName = '';
      for (const name of LOSS_NAMES) {
        const want = s2[name] as number;
        const moved = Math.abs(want - (s1[name] as number));
        const share = moved > 0 ? Math.abs(got[name] - want) / moved : 0;
        if (share > worstShare) [worstShare, worstName] = [share, name];
      }
      const bad: string[] = [];
      for (const name of LOSS_NAMES) if (!Number.isFinite(got[name])) bad.push(`${name}: ${got[name]}`);
      for (const name of ['D_real', 'D_p_real'] as const) {
        if (!(Math.abs(got[name] - (s2[name] as number)) <= atol + rtol * Math.abs(s2[name] as number)))
          bad.push(`${name}: got ${got[name]}, reference ${s2[name]}`);
      }
      reached.push(
        `${backend} losses.step2: D_real Δ ${Math.abs(got.D_real - (s2.D_real as number)).toExponential(2)}, D_p_real Δ ${Math.abs(got.D_p_real - (s2.D_p_real as number)).toExponential(2)} (atol ${atol}); terms G enters: worst |Δ| ${(100 * worstShare).toFixed(2)}% of the step-1→2 move (${worstName}), reported only`,
      );
      expect(bad).toEqual([]);
    }, 120_000);
  });
});

/**
 * A `tf` whose relu and leakyRelu can be frozen at a base point, for the finite differences below. `record(f)`
 * evaluates f as usual and keeps every activation's slope map (1 where its input is > 0, else 0 for ReLU and α
 * for LeakyReLU), in call order; `replay(f)` evaluates f with each activation replaced by its input times the
 * recorded slope map, so that f becomes smooth in the weights around the base point, with the base point's value
 * and gradient; it also counts the units whose input is on the other side of 0 than at the base point (the kinks
 * the plain activations would have crossed). Outside record and replay it is plain tf.
 */
interface FrozenActivations {
  readonly tf: Tf;
  record<T>(f: () => T): T;
  replay<T>(f: () => T): { value: T; crossed: number };
  dispose(): void;
}

function frozenActivations(tf: Tf): FrozenActivations {
  let mode: 'plain' | 'record' | 'replay' = 'plain';
  const slopes: Tensor[] = [];
  const crossings: Tensor[] = [];
  let next = 0;
  const activation = (x: Tensor, alpha: number, plain: () => Tensor): Tensor => {
    if (mode === 'plain') return plain();
    if (mode === 'record') {
      slopes.push(tf.keep(tf.where(tf.greater(x, 0), tf.onesLike(x), tf.fill(x.shape, alpha))));
      return plain();
    }
    const slope = slopes[next];
    next += 1;
    if (slope === undefined || slope.shape.join() !== x.shape.join()) {
      throw new Error(`frozen activations: call ${next} [${x.shape.join(', ')}] is not the recorded evaluation's`);
    }
    crossings.push(tf.keep(tf.sum(tf.cast(tf.notEqual(tf.greater(x, 0), tf.greater(slope, alpha)), 'int32'))));
    return tf.mul(x, slope);
  };
  const wrapped = Object.create(tf, {
    relu: { value: (x: Tensor) => activation(x, 0, () => tf.relu(x)) },
    leakyRelu: { value: (x: Tensor, alpha = 0.2) => activation(x, alpha, () => tf.leakyRelu(x, alpha)) },
  }) as Tf;
  return {
    tf: wrapped,
    record(f) {
      tf.dispose(slopes.splice(0));
      mode = 'record';
      try {
        return f();
      } finally {
        mode = 'plain';
      }
    },
    replay(f) {
      mode = 'replay';
      next = 0;
      try {
        const value = f();
        if (next !== slopes.length) throw new Error(`frozen activations: ${next} calls, the recorded evaluation made ${slopes.length}`);
        return { value, crossed: crossings.reduce((sum, t) => sum + (t.dataSync()[0] as number), 0) };
      } finally {
        mode = 'plain';
        tf.dispose(crossings.splice(0));
      }
    },
    dispose() {
      tf.dispose(slopes.splice(0));
    },
  };
}

/**
 * Our G gradient at the fixture's step-1 state (initial G, F and F_s; D and D_p as the fixture's step 1 left
 * them; the step's patch ids) against central finite differences of the objective the G step follows.
 *
 * That objective is not L_G's logged value: the reference detaches the keys (netF(enc(x)), netF(enc(y)),
 * netF_s(enc(y_p))), SRC's P_k and the hDCE weights although they depend on G, and hDCE's value is the CE while
 * its gradient is that of mean_i v_i (SPEC §11 #5). `generatorObjective` evaluates L_G with hDCE as mean_i v_i
 * and the keys from a frozen copy of G, so that its finite differences are what the tape differentiates.
 *
 * Activations frozen at the base point (`frozenActivations`). A step of ±ε moves the inputs of hundreds of the
 * ~3.9 M ReLU/LeakyReLU units of G, D, D_p and the heads across 0 (≈ 470 for one model.1 weight at the former
 * ε = 2e-4, ≈ 10,000 at ε = 4e-3):
 * the plain objective is piecewise smooth with kinks at every such crossing, so its central difference errs by
 * O(ε) rather than O(ε²) and no ε serves every weight of every data set (issue 12 #18: the former check at
 * ε = 2e-4 failed on reference data of this layout made with other seeds). With every activation's slope held at
 * its base-point value, the objective is smooth, equals the plain one at the base point and has the same
 * gradient there (no unit sits exactly at 0), so the central difference converges to exactly what autograd
 * computes, and an error in the backward pass, the fixture's among them, still shows.
 *
 * Noise floor (measured here): the objective (≈ 2.14 in float32) is deterministic at fixed weights, but moving
 * the weights by amounts far below any real change of the value (k·1e-7 along a unit direction) moves it by up to
 * 2–4 ulp (jitter 2e-7 to 1e-6): rounding reorders. That probe leaves most roundings as they were; one weight of the
 * first layers moved alone reorders more of them, up to 2.2× the probe's jitter (4.4 ulp; seen on data of this
 * layout made with other seeds), so each evaluation is taken to be off by up to NOISE_FACTOR = 4 times the
 * jitter, and a central difference at step ε by up to 2·4·jitter/(2ε) = 4·jitter/ε: the tolerance. With the
 * activations frozen the truncation error is O(ε²) and ε can be large: at ε = 4e-3 it is ≤ 3e-5 (single weights
 * of model.1, the most curved, and random unit directions over all of G), against a tolerance of 4e-4 to 1e-3;
 * observed |FD − ours| there ≤ 1.9e-4 on the shipped fixture and ≤ 1.6e-4 on six data sets of this layout made
 * with other seeds (the former check failed on five of them).
 *
 * Directions: for every tensor with a real gradient, the one of its first 8 entries (the fixture records
 * first8) where the fixture's gradient is furthest from ours, if that gap exceeds 2·tol — then the fixture's
 * value is more than tol from the finite difference and would fail (asserted); at least 12 such weights;
 * plus two random unit directions over all of G. How far the fixture is: per tensor the L2 norms agree within
 * ~1% but the sums differ up to sign (model.12.conv_block.1.weight: ours +7.86, fixture −1.45; model.22.weight
 * −5.55 vs +2.33) and first8 entries by up to 4.9e-2 (model.1.weight, entries ≈ 0.4); the float64 summary
 * (`grad_step1_f64`) has the same error.
 */
const gradientCheck = (): void => {
  /** Central-difference step, for one weight and for a unit direction over all of G alike. */
  const EPS = 4e-3;
  /** How many times the measured jitter one evaluation may be off (see above). */
  const NOISE_FACTOR = 4;
  /** Fewest single weights where the fixture's gradient must be told apart from ours. */
  const MIN_SINGLE_WEIGHTS = 12;
  let tf: Tf;
  let frozen: FrozenActivations;
  let fixture: ReferenceFixture;
  let model: SemiCutModel;
  let keyG: ReturnType<typeof createResnetGenerator>;
  let batch: SemiCutBatch;
  let patchIds: GeneratorPatchIds;
  let loss: number;
  const grads = new Map<string, Float32Array>();

  beforeAll(async () => {
    const plainTf = await trainingTf(TRAINING_BACKEND);
    // Every network computes with the wrapped tf, so that the objective's activations can be frozen.
    frozen = frozenActivations(plainTf);
    tf = frozen.tf;
    fixture = await loadReferenceFixture('i2i', 'train', { tensorFile: 'train-io.safetensors' });
    const initial = fixture.sidecarValue('initial_weights') as Record<string, string>;
    const file = (name: string): string => referenceFixturePath('i2i', name.split(' ')[0] as string);
    const gWeights = loadGeneratorWeights(await readTorchStateDict(file(initial.G as string)));
    const step1 = (await readSafetensors(referenceFixturePath('i2i', 'train-step1.safetensors'))).tensors;
    const afterStep1 = (prefix: string) =>
      createPatchDiscriminator(tf, inferDiscriminatorConfig(step1, { prefix }), { weights: step1, prefix, source: prefix });
    const head = async (name: string) => {
      const f = createPatchSampleF(tf, { seed: 0 });
      f.loadState(await readTorchStateDict(file(name)), { source: name });
      return f;
    };
    const networks: SemiCutNetworks = {
      netG: createResnetGenerator(tf, gWeights.config, { weights: gWeights }),
      netD: afterStep1('D.'),
      netDp: afterStep1('D_p.'),
      netF: await head(initial.F as string),
      netFs: await head(initial.F_s as string),
    };
    keyG = createResnetGenerator(tf, gWeights.config, { weights: gWeights });
    model = createSemiCutModel(tf, networks, { options: fixtureOptions(fixture) });
    batch = fixtureBatch(tf, fixture);
    const draws = fixtureDraws(fixture);
    const drawOf = (by: string): Int32Array[] => {
      const k = (fixture.sidecarValue('draws') as Array<{ phase: string; requested_by: string }>).findIndex(
        (d) => d.phase === 'step1' && d.requested_by === by,
      );
      return draws[k] as Int32Array[];
    };
    patchIds = { F: drawOf('netF'), F_s: drawOf('netF_s') };
    const g = model.generatorGradients(batch, { patchIds });
    loss = g.loss;
    for (const [key, t] of g.grads) grads.set(key, (t.dataSync() as Float32Array).slice());
    tf.dispose([...g.grads.values()] as Tensor[]);
  }, 120_000);

  afterAll(() => {
    model?.dispose();
    keyG?.dispose();
    frozen?.dispose();
    if (batch !== undefined) tf.dispose([batch.x, batch.y, batch.xP, batch.yP]);
  });

  it('L_G there is losses.step1.G', () => {
    const atol = numberAfter(
      'atol',
      (fixture.sidecarValue('tolerance_guidance') as Record<string, string>)['step1 losses'] as string,
      'step1',
    );
    expect(Math.abs(loss - fixture.sidecarNumber(['losses', 'step1', 'G', 'float32']))).toBeLessThanOrEqual(atol);
  });

  it('matches central differences with the activations frozen at the base point, along directions where the fixture gradient is off', () => {
    const netG = model.networks.netG;
    const base = new Map<string, Float32Array>();
    for (const [key, v] of netG.variables) base.set(key, (v.dataSync() as Float32Array).slice());
    const assign = (v: Variable, data: Float32Array): void => {
      tf.tidy(() => v.assign(tf.tensor(data, v.shape, 'float32')));
    };
    const objective = (): number => model.generatorObjective(batch, { patchIds, keyGenerator: keyG });
    /** The frozen objective at w0 + t·d for a direction given per tensor (absent tensors: 0). */
    const at = (direction: ReadonlyMap<string, Float32Array>, t: number): { value: number; crossed: number } => {
      for (const [key, d] of direction)
        assign(
          netG.variables.get(key) as Variable,
          (base.get(key) as Float32Array).map((w, i) => w + t * (d[i] as number)),
        );
      try {
        return frozen.replay(objective);
      } finally {
        for (const key of direction.keys()) assign(netG.variables.get(key) as Variable, base.get(key) as Float32Array);
      }
    };
    const dot = (direction: ReadonlyMap<string, Float32Array>): number => {
      let s = 0;
      for (const [key, d] of direction) (grads.get(key) as Float32Array).forEach((g, i) => (s += g * (d[i] as number)));
      return s;
    };
    const rng = SeededRng.fromSeed(2024);
    const randomDirection = (): Map<string, Float32Array> => {
      const out = new Map<string, Float32Array>();
      let norm2 = 0;
      for (const [key, v] of netG.variables) {
        // Box–Muller normals, normalised to a unit vector over all of G below.
        const d = new Float32Array(v.size).map(() => Math.sqrt(-2 * Math.log(1 - rng.uniform())) * Math.cos(2 * Math.PI * rng.uniform()));
        d.forEach((x) => (norm2 += x * x));
        out.set(key, d);
      }
      for (const d of out.values()) d.forEach((x, i) => (d[i] = x / Math.sqrt(norm2)));
      return out;
    };

    const f0 = frozen.record(objective);
    expect(objective()).toBe(f0);
    // The frozen objective is the plain one at the base point: x·1 = relu(x) for x > 0, x·0 = 0 otherwise.
    expect(frozen.replay(objective)).toEqual({ value: f0, crossed: 0 });
    const probe = randomDirection();
    let jitter = 0;
    for (let k = 1; k <= 6; k++) jitter = Math.max(jitter, Math.abs(at(probe, k * 1e-7).value - f0));
    const ulp = 2 ** (Math.floor(Math.log2(Math.abs(f0))) - 23);
    // Both evaluations off by the full noise bound, in opposite directions: (n + n) / 2ε.
    const tol = (NOISE_FACTOR * Math.max(jitter, ulp)) / EPS;

    const summaries = fixture.sidecarValue(['weights_after_step', 'G', 'tensors']) as Record<
      string,
      { shape: number[]; grad_mathematically_zero: boolean; grad_step1: { first8: number[] } }
    >;
    const rows: string[] = [];
    const bad: string[] = [];
    let checked = 0;
    let worstOurs = 0;
    let closestFixture = Infinity;
    let kinks = 0;
    for (const [key, summary] of Object.entries(summaries)) {
      // Zero-gradient biases have nothing to tell apart; the blur `filt` buffers are not parameters.
      if (summary.grad_mathematically_zero || !grads.has(key)) continue;
      const shape = summary.shape;
      const ours = shape.length === 4 ? oihwFromHwio(grads.get(key) as Float32Array, shape) : (grads.get(key) as Float32Array);
      const gaps = summary.grad_step1.first8.map((g, i) => Math.abs(g - (ours[i] as number)));
      const i = gaps.indexOf(Math.max(...gaps));
      if (!((gaps[i] as number) > 2 * tol)) continue;
      // Entry i of the PyTorch (OIHW) layout is one weight; move it alone and divide by the float32 step taken.
      const variable = netG.variables.get(key) as Variable;
      const index = shape.length === 4 ? hwioIndexOf(i, shape) : i;
      const w = base.get(key) as Float32Array;
      const plus = Math.fround((w[index] as number) + EPS);
      const minus = Math.fround((w[index] as number) - EPS);
      const direction = new Map([[key, new Float32Array(variable.size)]]);
      (direction.get(key) as Float32Array)[index] = 1;
      const up = at(direction, plus - (w[index] as number));
      const down = at(direction, minus - (w[index] as number));
      const fd = (up.value - down.value) / (plus - minus);
      const mine = Math.abs(fd - (ours[i] as number));
      const theirs = Math.abs(fd - (summary.grad_step1.first8[i] as number));
      checked++;
      kinks = Math.max(kinks, up.crossed + down.crossed);
      worstOurs = Math.max(worstOurs, mine);
      closestFixture = Math.min(closestFixture, theirs);
      rows.push(
        `${key}[${i}]: FD ${fd.toExponential(4)}, ours ${(ours[i] as number).toExponential(4)}, fixture ${(summary.grad_step1.first8[i] as number).toExponential(4)} (±ε crosses ${up.crossed + down.crossed} kinks)`,
      );
      if (!(mine <= tol)) bad.push(`${key}[${i}]: |FD − ours| = ${mine} > ${tol}`);
      if (!(theirs > tol))
        bad.push(`${key}[${i}]: the fixture's gradient is within ${tol} of FD, so this direction does not tell them apart`);
    }
    for (let r = 0; r < 2; r++) {
      const direction = randomDirection();
      const up = at(direction, EPS);
      const down = at(direction, -EPS);
      const fd = (up.value - down.value) / (2 * EPS);
      const mine = Math.abs(fd - dot(direction));
      worstOurs = Math.max(worstOurs, mine);
      rows.push(
        `random unit direction ${r}: FD ${fd.toExponential(4)}, ours ${dot(direction).toExponential(4)} (±ε crosses ${up.crossed + down.crossed} kinks)`,
      );
      if (!(mine <= tol)) bad.push(`random direction ${r}: |FD − ours| = ${mine} > ${tol}`);
    }
    reached.push(
      `G gradient vs central differences, activations frozen (jitter ${jitter.toExponential(2)}, ε ${EPS}, tol ${tol.toExponential(2)}): ` +
        `${checked} single weights and 2 random directions, max |FD − ours| ${worstOurs.toExponential(2)}, min |FD − fixture| ${closestFixture.toExponential(2)}, ` +
        `up to ${kinks} kinks crossed per weight\n    ${rows.join('\n    ')}`,
    );
    expect(bad).toEqual([]);
    // Enough directions that a gradient like the fixture's cannot pass by luck.
    expect(checked).toBeGreaterThanOrEqual(MIN_SINGLE_WEIGHTS);
  }, 120_000);
};
describeIfFixture(
  'i2i/train-step1.safetensors',
  `semi_cut G gradient at the fixture's step-1 state vs finite differences (${TRAINING_BACKEND} backend)`,
  gradientCheck,
);

/** Index in the HWIO layout of entry `i` of the OIHW layout of shape `[O, I, H, W]`. */
function hwioIndexOf(i: number, shape: readonly number[]): number {
  const [o, c, h, w] = shape as [number, number, number, number];
  const ww = i % w;
  const hh = Math.floor(i / w) % h;
  const cc = Math.floor(i / (w * h)) % c;
  const oo = Math.floor(i / (w * h * c));
  return ((hh * w + ww) * c + cc) * o + oo;
}
