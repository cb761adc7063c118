/**
 * The TF.js losses against the PyTorch reference (fixtures/reference/i2i, README §5 and §6): values and
 * gradients of PatchNCE, SRC, the hDCE weights and hDCE on `losses.*`, then the per-layer contrastive losses
 * and the LSGAN terms of the training fixture's data-dependent init, recomputed from its stored pools and
 * score maps. Names, shapes, options and the observed float32-vs-float64 spreads come from the sidecars.
 *
 * Tolerance for losses.json (both against `*_f32` and `*_f64`): atol = 2·Δ + 4·ulp32(max|x|), Δ being the
 * sidecar's PyTorch float32-vs-float64 difference for that quantity. A float32 computation rounds in another
 * order than PyTorch's but no worse, so it lies within about Δ of the exact value and within about 2Δ of
 * PyTorch's float32 result; the ulps cover the last operations and the float32 storage of the float64 values.
 * This is 6–35× tighter than the README's suggested rtol 1e-5 (values) and atol 1e-6 (gradients).
 *
 * Everything runs on the pure-JS cpu backend (which accumulates sums in double precision) and on wasm (which
 * sums in float32, like PyTorch); the inputs are 64×32, so both take well under a second.
 */
import { loadTf } from '@scenimefy/io';
import type { BackendCandidate } from '@scenimefy/io';
import { describeIfFixture, loadReferenceFixture } from '@scenimefy/test-utils';
import type { ReferenceFixture } from '@scenimefy/test-utils';
import type { Scalar, Tensor, Tensor2D, Tensor3D } from '@tensorflow/tfjs-core';
import type { Tf } from '../layers/tf';
import { lsganDiscriminatorLoss, lsganGeneratorLoss } from './gan';
import { patchHdceLoss } from './hdce';
import { patchNceLoss } from './patch-nce';
import { hdceGamma, hdceWeights, srcLoss } from './src';
import type { HdceGammaOptions } from './src';

const BACKENDS: readonly BackendCandidate[] = ['cpu', 'wasm'];

/** Spacing of float32 numbers at |x|: 2^(⌊log2|x|⌋ − 23). */
function ulp32(x: number): number {
  const a = Math.abs(x);
  return a === 0 ? 2 ** -149 : 2 ** (Math.floor(Math.log2(a)) - 23);
}

const roundingAtol = (delta: number, maxAbs: number): number => 2 * delta + 4 * ulp32(maxAbs);

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/** The options of losses.json in the shape the losses take. */
function optionsOf(fixture: ReferenceFixture) {
  const opt = (key: string) => fixture.sidecarNumber(['opt', key]);
  const gammaOptions: HdceGammaOptions = {
    gamma: opt('HDCE_gamma'),
    gammaMin: opt('HDCE_gamma_min'),
    nEpochs: opt('n_epochs'),
    nEpochsDecay: opt('n_epochs_decay'),
  };
  return { tau: opt('nce_T'), batchSize: opt('batch_size'), gammaOptions };
}

describeIfFixture(['i2i/losses.json', 'i2i/losses.safetensors'], 'losses.json: contrastive losses vs PyTorch', () => {
  describe.each(BACKENDS)('on %s', (backend) => {
    let tf: Tf;
    let fixture: ReferenceFixture;
    let q: Tensor2D;
    let k: Tensor2D;
    const reached: string[] = [];

    beforeAll(async () => {
      ({ tf } = await loadTf({ prefer: backend, require: true }));
      fixture = await loadReferenceFixture('i2i', 'losses');
      q = tf.tensor2d(fixture.float32('q'), fixture.shape('q') as [number, number]);
      k = tf.tensor2d(fixture.float32('k'), fixture.shape('k') as [number, number]);
    });

    afterAll(() => {
      q?.dispose();
      k?.dispose();
      if (reached.length > 0) process.stdout.write(`losses.json on ${backend} (max|Δ| / atol):\n  ${reached.join('\n  ')}\n`);
    });

    /** Compares a computed tensor with `<stem>_f32` and `<stem>_f64` (shape included). */
    function expectTensorParity(
      stem: string,
      values: Float32Array | Float64Array | Int32Array | Uint8Array,
      shape: readonly number[],
      comparable = stem,
    ): void {
      const spread = fixture.sidecarNumber(['float32_vs_float64', comparable, 'max_abs_f32_vs_f64']);
      const maxAbs = fixture.sidecarNumber(['float32_vs_float64', comparable, 'max_abs_value']);
      const atol = roundingAtol(spread, maxAbs);
      const parts: string[] = [];
      for (const precision of ['f32', 'f64'] as const) {
        const name = `${stem}_${precision}`;
        expect(shape).toEqual(fixture.shape(name));
        const expected = fixture.float32(name);
        expect(values).toBeCloseToTensor(expected, { atol, rtol: 0, shape: [...shape] });
        parts.push(`${precision} ${maxAbsDiff(values, expected).toExponential(2)}`);
      }
      reached.push(`${stem}: ${parts.join(', ')} / ${atol.toExponential(2)}`);
    }

    /** Compares a computed scalar with `scalars.<key>.float32` and `.float64`. */
    function expectScalarParity(key: string, value: number): void {
      const f32 = fixture.sidecarNumber(['scalars', key, 'float32']);
      const f64 = fixture.sidecarNumber(['scalars', key, 'float64']);
      const atol = roundingAtol(fixture.sidecarNumber(['scalars', key, 'abs_diff']), f64);
      expect(Math.abs(value - f32)).toBeLessThanOrEqual(atol);
      expect(Math.abs(value - f64)).toBeLessThanOrEqual(atol);
      reached.push(
        `${key}: f32 ${Math.abs(value - f32).toExponential(2)}, f64 ${Math.abs(value - f64).toExponential(2)} / ${atol.toExponential(2)}`,
      );
    }

    function scalarOf(t: Scalar): number {
      const v = t.dataSync()[0]!;
      t.dispose();
      return v;
    }

    function gradOf(loss: (x: Tensor2D) => Scalar): Float32Array {
      const g = tf.grad((x: Tensor) => loss(x as Tensor2D))(q);
      const values = g.dataSync() as Float32Array;
      g.dispose();
      return values;
    }

    /** The hDCE weight variants of the sidecar with the γ and epoch its `meaning` states, e.g. g48 ↔ epoch 1. */
    function weightVariants(): Array<{ stem: string; gamma: number; epoch: number }> {
      return fixture
        .sidecarTensors()
        .filter((t) => /^hdce_weight_g\d+_f32$/.test(t.name))
        .map((t) => {
          const meaning = String(t.entry['meaning']);
          const gamma = /gamma=(\d+(?:\.\d+)?)/.exec(meaning);
          const epoch = /epoch (\d+)/.exec(meaning);
          if (!gamma || !epoch) throw new Error(`${fixture.sidecarPath}: ${t.name} meaning names no gamma/epoch: ${meaning}`);
          return { stem: t.name.replace(/_f32$/, ''), gamma: Number(gamma[1]), epoch: Number(epoch[1]) };
        });
    }

    it('runs the reference configuration: batch 1, negatives from the same image', () => {
      expect(fixture.sidecarValue(['opt', 'nce_includes_all_negatives_from_minibatch'])).toBe(false);
      expect(optionsOf(fixture).batchSize).toBe(1);
    });

    it('PatchNCE: per-row CE, mean and d mean/dq', () => {
      const { tau, batchSize } = optionsOf(fixture);
      const out = patchNceLoss(tf, q, k, { tau, batchSize });
      expectTensorParity('nce_vec', out.perRow.dataSync() as Float32Array, out.perRow.shape);
      out.perRow.dispose();
      expectScalarParity('nce_mean', scalarOf(out.loss));
      expectTensorParity(
        'nce_grad_q',
        gradOf((x) => patchNceLoss(tf, x, k, { tau, batchSize }).loss),
        q.shape,
      );
    });

    it('SRC: the JSD (a sum over all entries) and dJSD/dq, for every γ variant', () => {
      const { batchSize } = optionsOf(fixture);
      const variants = weightVariants().map((w) => w.stem.replace('hdce_weight_', ''));
      expect(variants.length).toBeGreaterThan(0);
      for (const g of variants) {
        const out = srcLoss(tf, q, k, { batchSize });
        out.perImage.dispose();
        expectScalarParity(`src_jsd_${g}`, scalarOf(out.loss));
        expectTensorParity(
          `src_grad_q_${g}`,
          gradOf((x) => srcLoss(tf, x, k, { batchSize }).loss),
          q.shape,
        );
      }
    });

    it('hDCE weights: γ from the curriculum at the sidecar epoch, then the [1, N, N] matrix', () => {
      const { batchSize, gammaOptions } = optionsOf(fixture);
      for (const { stem, gamma, epoch } of weightVariants()) {
        expect(hdceGamma(epoch, gammaOptions)).toBe(gamma);
        const w = hdceWeights(tf, k, { gamma, batchSize });
        expectTensorParity(stem, w.dataSync() as Float32Array, w.shape);
        w.dispose();
      }
    });

    it.each(['w48', 'w10', 'noW'])('hDCE %s: CE vector and mean (displayed), v and mean v, gradient of mean v', (variant) => {
      const { tau, batchSize, gammaOptions } = optionsOf(fixture);
      const weightStem = `hdce_weight_g${variant.slice(1)}`;
      expect(fixture.tensors.has(`hdce_ret_vec_${variant}_f32`)).toBe(true);
      const variantInfo = weightVariants().find((w) => w.stem === weightStem);
      if (variant !== 'noW') expect(variantInfo).toBeDefined();
      const weight: Tensor3D | undefined =
        variantInfo === undefined ? undefined : hdceWeights(tf, k, { gamma: hdceGamma(variantInfo.epoch, gammaOptions), batchSize });
      const out = patchHdceLoss(tf, q, k, { weight, tau, batchSize });
      expectTensorParity(`hdce_ret_vec_${variant}`, out.crossEntropy.dataSync() as Float32Array, out.crossEntropy.shape);
      expectTensorParity(`hdce_v_${variant}`, out.v.dataSync() as Float32Array, out.v.shape);
      const displayed = scalarOf(out.displayed);
      // The reference module's single output: its value is the displayed CE, bit for bit.
      expect(scalarOf(out.reference)).toBe(displayed);
      expectScalarParity(`hdce_ret_mean_${variant}`, displayed);
      expectScalarParity(`hdce_mean_v_${variant}`, scalarOf(out.loss));
      out.v.dispose();
      out.crossEntropy.dispose();
      expectTensorParity(
        `hdce_grad_q_${variant}`,
        gradOf((x) => patchHdceLoss(tf, x, k, { weight, tau, batchSize }).loss),
        q.shape,
      );
      // The official backward is that of the returned value; `reference` reproduces it.
      const viaReference = gradOf((x) => patchHdceLoss(tf, x, k, { weight, tau, batchSize }).reference);
      expect(viaReference).toBeCloseToTensor(fixture.float32(`hdce_grad_q_${variant}_f32`), {
        atol: roundingAtol(
          fixture.sidecarNumber(['float32_vs_float64', `hdce_grad_q_${variant}`, 'max_abs_f32_vs_f64']),
          fixture.sidecarNumber(['float32_vs_float64', `hdce_grad_q_${variant}`, 'max_abs_value']),
        ),
        rtol: 0,
      });
      weight?.dispose();
    });

    it('leaves no tensor behind but q and k', () => {
      expect(tf.memory().numTensors).toBe(2);
    });
  });
});

describeIfFixture(
  ['i2i/train.json', 'i2i/train-io.safetensors', 'i2i/losses.json', 'i2i/losses.safetensors'],
  'train.json: init-iteration losses vs PyTorch',
  () => {
    describe.each(BACKENDS)('on %s', (backend) => {
      let tf: Tf;
      let fixture: ReferenceFixture;
      let atol: number;
      let rtol: number;
      const reached: string[] = [];

      beforeAll(async () => {
        ({ tf } = await loadTf({ prefer: backend, require: true }));
        fixture = await loadReferenceFixture('i2i', 'train', { tensorFile: 'train-io.safetensors' });
        const guidance = fixture.sidecarValue('tolerance_guidance') as Record<string, string>;
        const key = Object.keys(guidance).find((g) => g.startsWith('init losses'));
        const text = key === undefined ? '' : guidance[key]!;
        const r = /rtol\s+([0-9.]+e-?\d+)/.exec(text);
        const a = /atol\s+([0-9.]+e-?\d+)/.exec(text);
        if (!r || !a) throw new Error(`${fixture.sidecarPath}: no rtol/atol for the init losses in tolerance_guidance`);
        rtol = Number(r[1]);
        atol = Number(a[1]);
      });

      afterAll(() => {
        if (reached.length > 0)
          process.stdout.write(`train.json init on ${backend} (max|Δ|, atol ${atol} + rtol ${rtol}): ${reached.join('; ')}\n`);
      });

      const pool = (name: string): Tensor2D => tf.tensor2d(fixture.float32(name), fixture.shape(name) as [number, number]);
      const map = (name: string): Tensor => tf.tensor(fixture.float32(name), fixture.shape(name));

      function expectLayerValues(label: string, got: number[], expected: number[]): void {
        expect(got).toHaveLength(expected.length);
        expect(got).toBeCloseToTensor(expected, { atol, rtol });
        reached.push(`${label} ${maxAbsDiff(got, expected).toExponential(2)}`);
      }

      it('per-layer NCE_s, SRC and hDCE / hDCE_Y (value and gradient-carrying) from the stored pools', async () => {
        const settings = (key: string) => fixture.sidecarValue(['effective_settings', key]);
        const layers = settings('nce_layers') as number[];
        const tau = settings('nce_T') as number;
        const batchSize = settings('batch_size') as number;
        const losses = await loadReferenceFixture('i2i', 'losses');
        const { gammaOptions } = optionsOf(losses);
        const gamma = hdceGamma(settings('epoch') as number, gammaOptions);
        expect(gamma).toBe(settings('HDCE_gamma_at_epoch1'));
        const expected = fixture.sidecarValue(['per_layer_losses_unweighted', 'init', 'float32']) as Record<string, number[]>;

        const got: Record<string, number[]> = {};
        const push = (key: string, value: Scalar) => {
          got[key] = [...(got[key] ?? []), value.dataSync()[0]!];
        };
        const before = tf.memory().numTensors;
        for (const layer of layers) {
          tf.tidy(() => {
            const [qX, kX] = [pool(`init_pool_q_fakeB_L${layer}`), pool(`init_pool_k_realA_L${layer}`)];
            const [qY, kY] = [pool(`init_pool_q_idtB_L${layer}`), pool(`init_pool_k_realB_L${layer}`)];
            const [qP, kP] = [pool(`init_pool_q_fakeBp_L${layer}`), pool(`init_pool_k_yp_L${layer}`)];
            push('NCE_s_layer_mean_ce', patchNceLoss(tf, qP, kP, { tau, batchSize }).loss);
            push('SRC_layer_jsd_sum', srcLoss(tf, qX, kX, { batchSize }).loss);
            const x = patchHdceLoss(tf, qX, kX, { tau, batchSize, weight: hdceWeights(tf, kX, { gamma, batchSize }) });
            push('HDCE_layer_mean_ce (value)', x.displayed);
            push('HDCE_layer_mean_v (gradient-carrying)', x.loss);
            const y = patchHdceLoss(tf, qY, kY, { tau, batchSize, weight: hdceWeights(tf, kY, { gamma, batchSize }) });
            push('HDCE_Y_layer_mean_ce (value)', y.displayed);
            push('HDCE_Y_layer_mean_v (gradient-carrying)', y.loss);
          });
        }
        expect(tf.memory().numTensors).toBe(before);
        expect(Object.keys(got).sort()).toEqual(Object.keys(expected).sort());
        for (const key of Object.keys(expected)) expectLayerValues(key, got[key]!, expected[key]!);
      });

      it('LSGAN terms of D, D_p and G from the stored score maps', () => {
        const expected = (key: string) => fixture.sidecarNumber(['losses', 'init', key, 'float32']);
        const values = tf.tidy(() => {
          const d = lsganDiscriminatorLoss(tf, map('init_pred_D_fake'), map('init_pred_D_real'));
          const dp = lsganDiscriminatorLoss(tf, map('init_pred_Dp_fake'), map('init_pred_Dp_real'));
          const terms: Record<string, Scalar> = {
            D_fake: d.fake,
            D_real: d.real,
            D: d.loss,
            D_p_fake: dp.fake,
            D_p_real: dp.real,
            D_p: dp.loss,
            // λ_GAN = λ_GAN_p = 1 (effective_settings); at init D and D_p are not yet stepped.
            G_GAN: tf.mul(fixture.sidecarNumber(['effective_settings', 'lambda_GAN']), lsganGeneratorLoss(tf, map('init_pred_D_fake'))),
            G_GAN_p: tf.mul(
              fixture.sidecarNumber(['effective_settings', 'lambda_GAN_p']),
              lsganGeneratorLoss(tf, map('init_pred_Dp_fake')),
            ),
          };
          return Object.entries(terms).map(([key, t]) => ({ key, value: t.dataSync()[0]! }));
        });
        expectLayerValues(
          values.map((v) => v.key).join('/'),
          values.map((v) => v.value),
          values.map((v) => expected(v.key)),
        );
      });
    });
  },
);
