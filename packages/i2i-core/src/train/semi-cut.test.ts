/**
 * The semi_cut model on tiny random networks (ngf 4, 32×32 images): batch > 1 (SPEC §11 #4), the optional
 * terms of options.ts, the gradient/evaluation entry points and the optimiser plumbing. Parity with the
 * PyTorch reference is semi-cut.parity.test.ts. Forward-only tests run on tfjs-node when it is installed,
 * else on cpu; tests that take a step need tfjs-node (the cpu kernels take minutes per backward pass).
 */
import { InputError, UsageError, availableBackends, loadTf } from '@scenimefy/io';
import type { Scalar, Tensor4D } from '@tensorflow/tfjs-core';
import type { Tf } from '../layers/tf';
import { createPatchDiscriminator } from '../networks/discriminator';
import { createResnetGenerator } from '../networks/generator';
import { createPatchSampleF } from '../networks/patch-sample';
import { SeededRng } from '../seeded-rng';
import type { SemiCutOptions, VggInput } from './options';
import { createSemiCutModel, queuedPatchIds } from './semi-cut';
import type {
  GeneratorPatchIds,
  PatchIdDraw,
  PatchIdSource,
  PerceptualLoss,
  SemiCutBatch,
  SemiCutLosses,
  SemiCutNetworks,
} from './semi-cut';

const SIZE = 32;
const NUM_PATCHES = 16;
const LOSS_TOL = { atol: 1e-6, rtol: 1e-5 };
const hasTfjsNode = availableBackends().some((b) => b.candidate === 'tfjs-node');
const stepIt = hasTfjsNode ? it : it.skip;

let tf: Tf;
beforeAll(async () => {
  ({ tf } = await loadTf({ prefer: hasTfjsNode ? 'tfjs-node' : 'cpu', require: true }));
});

/** Fresh networks whose weights depend only on `seed` (gain 1 so that G's output is not the constant ~0 of gain 0.02). */
function networks(seed: number): SemiCutNetworks {
  const init = { seed, gain: 1 };
  return {
    netG: createResnetGenerator(tf, { ngf: 4, nBlocks: 5 }, { init }),
    netD: createPatchDiscriminator(tf, { inputNc: 3, ndf: 4 }, { init }),
    netDp: createPatchDiscriminator(tf, { inputNc: 6, ndf: 4 }, { init: { ...init, seed: seed + 100 } }),
    netF: createPatchSampleF(tf, { nc: 8, seed: seed + 1 }),
    netFs: createPatchSampleF(tf, { nc: 8, seed: seed + 2 }),
  };
}

function images(seed: number, b: number): Tensor4D {
  const rng = SeededRng.fromSeed(seed);
  const data = new Float32Array(b * 3 * SIZE * SIZE).map(() => rng.uniform() * 2 - 1);
  return tf.tensor4d(data, [b, 3, SIZE, SIZE]);
}

function batchOf(seed: number, b: number): SemiCutBatch {
  return { x: images(seed, b), y: images(seed + 1, b), xP: images(seed + 2, b), yP: images(seed + 3, b) };
}

/** Image `i` of a batch as a batch of one. */
function imageOf(batch: SemiCutBatch, i: number): SemiCutBatch {
  const one = (t: Tensor4D): Tensor4D => tf.slice(t, [i, 0, 0, 0], [1, -1, -1, -1]);
  return { x: one(batch.x), y: one(batch.y), xP: one(batch.xP), yP: one(batch.yP) };
}

function disposeBatch(batch: SemiCutBatch): void {
  tf.dispose([batch.x, batch.y, batch.xP, batch.yP]);
}

/** Tap sides of the tiny generator at layers 0, 4, 8, 12, 16 for a 32² input (L0 is reflect-padded by 3). */
const TAP_POSITIONS = [38 * 38, 32 * 32, 16 * 16, 8 * 8, 8 * 8];

/** Random distinct ids per layer for one image. */
function randomIds(seed: number): Int32Array[] {
  const rng = SeededRng.fromSeed(seed);
  return TAP_POSITIONS.map((hw) => Int32Array.from(rng.permutation(hw).slice(0, NUM_PATCHES)));
}

function concatIds(a: readonly Int32Array[], b: readonly Int32Array[]): Int32Array[] {
  return a.map((ids, l) => {
    const out = new Int32Array(ids.length + (b[l] as Int32Array).length);
    out.set(ids);
    out.set(b[l] as Int32Array, ids.length);
    return out;
  });
}

/** A test stand-in for the VGG term: the MSE of 4×4-average-pooled mapped images, differentiable in `fakeB`. */
function pooledMse(mapped: VggInput[]): PerceptualLoss {
  return (fakeB, realA, input) => {
    mapped.push(input);
    const map = (t: Tensor4D, side: 'fake' | 'real'): Tensor4D =>
      input === 'reference' && side === 'fake' ? tf.add(t, 0.5) : tf.mul(tf.add(t, 1), 0.5);
    const pool = (t: Tensor4D): Tensor4D => tf.avgPool(tf.transpose(t, [0, 2, 3, 1]), 4, 4, 'valid');
    return tf.mean(tf.squaredDifference(pool(map(fakeB, 'fake')), pool(map(realA, 'real')))) as Scalar;
  };
}

function expectLossesClose(got: SemiCutLosses, want: Record<string, number>, tol = LOSS_TOL): void {
  const bad: string[] = [];
  for (const [name, w] of Object.entries(want)) {
    const g = got[name as keyof SemiCutLosses];
    if (!(Math.abs(g - w) <= tol.atol + tol.rtol * Math.abs(w))) bad.push(`${name}: got ${g}, want ${w}`);
  }
  expect(bad).toEqual([]);
}

function meanOf(a: SemiCutLosses, b: SemiCutLosses): Record<string, number> {
  return Object.fromEntries(Object.keys(a).map((k) => [k, (a[k as keyof SemiCutLosses] + b[k as keyof SemiCutLosses]) / 2]));
}

const scalar = (t: Scalar): number => {
  const v = t.dataSync()[0] as number;
  t.dispose();
  return v;
};

const small: Partial<SemiCutOptions> = { numPatches: NUM_PATCHES };

describe('queuedPatchIds', () => {
  it('hands out the queued draws in order and refuses a draw past the end', () => {
    const draws = [[Int32Array.of(1)], [Int32Array.of(2)]];
    const source = queuedPatchIds(draws);
    expect(source({ head: 'F', index: 0, batchSize: 1 })).toBe(draws[0]);
    expect(source({ head: 'F_s', index: 1, batchSize: 1 })).toBe(draws[1]);
    expect(() => source({ head: 'F', index: 2, batchSize: 1 })).toThrow(UsageError);
  });
});

describe('SemiCutModel', () => {
  it('refuses lambdaVgg > 0 without a perceptualLoss, and bad options', () => {
    const nets = networks(1);
    expect(() => createSemiCutModel(tf, nets, { options: { lambdaVgg: 0.1 } })).toThrow(/perceptualLoss/);
    expect(() => createSemiCutModel(tf, nets, { options: { pairedLoss: 'l2' as never } })).toThrow(UsageError);
    const model = createSemiCutModel(tf, nets, { options: small });
    expect(() => model.setLearningRate(-1)).toThrow(UsageError);
    const batch = batchOf(10, 1);
    const before = tf.memory().numTensors;
    expect(() => model.losses(batch, { patchIds: { F: randomIds(1), F_s: undefined } })).toThrow(/patchIds.F_s is required/);
    expect(tf.memory().numTensors).toBe(before);
    disposeBatch(batch);
    model.dispose();
  });

  describe('a batch of 2 gives the mean of its two single-image batches (same per-image ids)', () => {
    const cases: Array<[string, Partial<SemiCutOptions>]> = [
      ['reference terms, L1_source and VGG', { lambdaL1Source: 0.5, lambdaVgg: 0.3 }],
      ["pairedLoss 'l1', no dceIdt", { pairedLoss: 'l1', dceIdt: false, lambdaL1Paired: 2 }],
    ];
    it.each(cases)('%s', (_, options) => {
      const model = createSemiCutModel(tf, networks(2), { options: { ...small, ...options }, perceptualLoss: pooledMse([]) });
      const batch = batchOf(20, 2);
      const a = imageOf(batch, 0);
      const b = imageOf(batch, 1);
      const idsA: GeneratorPatchIds = { F: randomIds(1), F_s: randomIds(2) };
      const idsB: GeneratorPatchIds = { F: randomIds(3), F_s: randomIds(4) };
      const both: GeneratorPatchIds = { F: concatIds(idsA.F, idsB.F), F_s: concatIds(idsA.F_s ?? [], idsB.F_s ?? []) };
      try {
        const lossesA = model.losses(a, { patchIds: idsA });
        const lossesB = model.losses(b, { patchIds: idsB });
        const lossesAB = model.losses(batch, { patchIds: both });
        // The two images must differ for the mean to test anything.
        expect(Math.abs(lossesA.G - lossesB.G)).toBeGreaterThan(1e-3);
        expectLossesClose(lossesAB, meanOf(lossesA, lossesB));
        // At B > 1 a shared id set (N per layer) is refused rather than read as B sets of N/B.
        expect(() => model.losses(batch, { patchIds: idsA })).toThrow(InputError);
      } finally {
        model.dispose();
        [batch, a, b].forEach(disposeBatch);
      }
    });
  });

  describe('each optional term changes L_G by exactly its value', () => {
    const ids: GeneratorPatchIds = { F: randomIds(5), F_s: randomIds(6) };
    let batch: SemiCutBatch;
    let base: SemiCutLosses;
    let fakeB: Tensor4D;
    let fakeBP: Tensor4D;
    beforeAll(() => {
      batch = batchOf(30, 1);
      const model = createSemiCutModel(tf, networks(3), { options: small });
      base = model.losses(batch, { patchIds: ids });
      // The terms computed on their own, from the same generator.
      fakeB = model.networks.netG.forward(batch.x);
      fakeBP = model.networks.netG.forward(batch.xP);
      model.dispose();
    });
    afterAll(() => {
      disposeBatch(batch);
      tf.dispose([fakeB, fakeBP]);
    });

    /** `got` equals `base` on every term but the changed ones. */
    const expectOthersUnchanged = (got: SemiCutLosses, changed: Array<keyof SemiCutLosses>): void => {
      for (const name of Object.keys(base) as Array<keyof SemiCutLosses>)
        if (!changed.includes(name)) expect([name, got[name]]).toEqual([name, base[name]]);
    };

    it('the defaults log the optional terms as 0', () => {
      expect([base.VGG, base.L1_source, base.L1_paired]).toEqual([0, 0, 0]);
      expect(base.NCE_s).toBeGreaterThan(0);
    });

    it('lambdaL1Source adds λ·mean|G(x) − x|', () => {
      const model = createSemiCutModel(tf, networks(3), { options: { ...small, lambdaL1Source: 0.7 } });
      const got = model.losses(batch, { patchIds: ids });
      model.dispose();
      const term = 0.7 * scalar(tf.mean(tf.abs(tf.sub(fakeB, batch.x))));
      expect(term).toBeGreaterThan(0.01);
      expect(got.L1_source).toBeCloseTo(term, 6);
      expect(got.G).toBeCloseTo(base.G + term, 6);
      expectOthersUnchanged(got, ['L1_source', 'G']);
    });

    it.each<[VggInput]>([['reference'], ['imagenet']])(
      'lambdaVgg adds λ·perceptualLoss(G(x), x, vggInput) with vggInput %s',
      (vggInput) => {
        const mapped: VggInput[] = [];
        const model = createSemiCutModel(tf, networks(3), {
          options: { ...small, lambdaVgg: 0.3, vggInput },
          perceptualLoss: pooledMse(mapped),
        });
        const got = model.losses(batch, { patchIds: ids });
        model.dispose();
        expect(mapped).toEqual([vggInput]);
        const term = 0.3 * scalar(pooledMse([])(fakeB, batch.x, vggInput));
        expect(term).toBeGreaterThan(1e-4);
        expect(got.VGG).toBeCloseTo(term, 7);
        expect(got.G).toBeCloseTo(base.G + term, 6);
        expectOthersUnchanged(got, ['VGG', 'G']);
      },
    );

    it("pairedLoss 'l1' puts λ·mean|G(x_p) − y_p| in place of NCE_s and draws no netF_s ids", () => {
      const draws: PatchIdDraw[] = [];
      const source: PatchIdSource = (draw) => {
        draws.push(draw);
        return ids.F;
      };
      const model = createSemiCutModel(tf, networks(3), { options: { ...small, pairedLoss: 'l1', lambdaL1Paired: 3 }, patchIds: source });
      const got = model.losses(batch);
      model.dispose();
      expect(draws).toEqual([{ head: 'F', index: 0, batchSize: 1 }]);
      const term = 3 * scalar(tf.mean(tf.abs(tf.sub(fakeBP, batch.yP))));
      expect(got.NCE_s).toBe(0);
      expect(got.L1_paired).toBeCloseTo(term, 6);
      // λ_pair is 1 at epoch 1 with the reference schedule.
      expect(got.G).toBeCloseTo(base.G - base.NCE_s + term, 6);
      expectOthersUnchanged(got, ['NCE_s', 'L1_paired', 'G']);
    });
  });

  describe('steps (tfjs-node)', () => {
    stepIt("pairedLoss 'l1': netF_s is built at init without drawing ids, then gets no gradient and no step", async () => {
      const draws: PatchIdDraw[] = [];
      const model = createSemiCutModel(tf, networks(4), {
        options: { ...small, pairedLoss: 'l1' },
        patchIds: (draw) => {
          draws.push(draw);
          return undefined;
        },
      });
      const batch = batchOf(40, 1);
      try {
        model.dataDependentInit(batch);
        expect(model.networks.netFs.variables.size).toBe(20);
        const before = await model.networks.netFs.stateDict();
        const tensors = tf.memory().numTensors;
        model.optimizeParameters(batch);
        expect(tf.memory().numTensors).toBe(tensors);
        expect(draws.map((d) => d.head)).toEqual(['F', 'F']);
        const after = await model.networks.netFs.stateDict();
        for (const [key, value] of before) expect([key, after.get(key)?.data]).toEqual([key, value.data]);
        const o = model.optimizers;
        expect([o.G.step, o.D.step, o.Dp.step, o.F?.step, o.Fs?.step]).toEqual([1, 1, 1, 1, 0]);
      } finally {
        model.dispose();
        disposeBatch(batch);
      }
    });

    stepIt('batch 2 steps without leaking, drawing per-image ids', () => {
      const draws: PatchIdDraw[] = [];
      const model = createSemiCutModel(tf, networks(5), {
        options: small,
        patchIds: (draw) => {
          draws.push(draw);
          return undefined;
        },
      });
      const batch = batchOf(50, 2);
      try {
        model.dataDependentInit(batch);
        const tensors = tf.memory().numTensors;
        const losses = model.optimizeParameters(batch);
        expect(tf.memory().numTensors).toBe(tensors);
        expect(Object.values(losses).every(Number.isFinite)).toBe(true);
        expect(draws.every((d) => d.batchSize === 2)).toBe(true);
        const { grads, patchIds } = model.generatorGradients(batch);
        tf.dispose([...grads.values()]);
        expect(patchIds.F.map((ids) => ids.length)).toEqual(TAP_POSITIONS.map((hw) => 2 * Math.min(NUM_PATCHES, hw)));
        // Image 1's ids are its own draw, not image 0's repeated.
        expect(patchIds.F.some((ids) => ids.slice(0, NUM_PATCHES).join() !== ids.slice(NUM_PATCHES).join())).toBe(true);
      } finally {
        model.dispose();
        disposeBatch(batch);
      }
    });

    stepIt('generatorGradients: the G step’s gradient and L_G, with no step and no leak', async () => {
      const model = createSemiCutModel(tf, networks(6), { options: small });
      const batch = batchOf(60, 1);
      const ids: GeneratorPatchIds = { F: randomIds(7), F_s: randomIds(8) };
      try {
        const value = model.losses(batch, { patchIds: ids }).G; // also builds the heads
        const before = await model.networks.netG.stateDict();
        const tensors = tf.memory().numTensors;
        const { loss, grads, patchIds } = model.generatorGradients(batch, { patchIds: ids });
        expect(patchIds.F).toEqual(ids.F);
        expect([...grads.keys()].sort()).toEqual([...model.networks.netG.variables.keys()].sort());
        expect(Math.max(...[...grads.values()].map((g) => scalar(tf.tidy(() => tf.max(tf.abs(g))))))).toBeGreaterThan(0);
        tf.dispose([...grads.values()]);
        expect(tf.memory().numTensors).toBe(tensors);
        expect(loss).toBe(value);
        const after = await model.networks.netG.stateDict();
        for (const [key, value] of before) expect([key, after.get(key)?.data]).toEqual([key, value.data]);
        expect(model.optimizers.G.step).toBe(0);
      } finally {
        model.dispose();
        disposeBatch(batch);
      }
    });

    stepIt('setLearningRate reaches every optimiser; loadOptimizerStates continues a run', async () => {
      const model = createSemiCutModel(tf, networks(7), { options: small });
      const batch = batchOf(70, 1);
      const resumedNets = networks(7);
      const resumed = createSemiCutModel(tf, resumedNets, { options: small });
      try {
        model.setLearningRate(1e-4);
        model.dataDependentInit(batch);
        const o = model.optimizers;
        expect([o.G.lr, o.D.lr, o.Dp.lr, o.F?.lr, o.Fs?.lr]).toEqual([1e-4, 1e-4, 1e-4, 1e-4, 1e-4]);
        model.optimizeParameters(batch);
        const states = {
          G: await o.G.state(),
          D: await o.D.state(),
          Dp: await o.Dp.state(),
          F: await (o.F as NonNullable<typeof o.F>).state(),
          Fs: await (o.Fs as NonNullable<typeof o.Fs>).state(),
        };
        // The heads are not built yet: their states have nowhere to go.
        expect(() => resumed.loadOptimizerStates(states)).toThrow(/heads of netF are not built/);
        resumedNets.netF.loadState(await model.networks.netF.stateDict());
        resumedNets.netFs.loadState(await model.networks.netFs.stateDict());
        resumed.loadOptimizerStates(states);
        const r = resumed.optimizers;
        expect([r.G.step, r.D.step, r.Dp.step, r.F?.step, r.Fs?.step]).toEqual([1, 1, 1, 1, 1]);
        const F = await (r.F as NonNullable<typeof r.F>).state();
        for (const [key, value] of states.F.tensors) expect([key, F.tensors.get(key)?.data]).toEqual([key, value.data]);
        expect(() => resumed.dataDependentInit(batch)).toThrow(/already initialised/);
      } finally {
        model.dispose();
        resumed.dispose();
        disposeBatch(batch);
      }
    });
  });
});
