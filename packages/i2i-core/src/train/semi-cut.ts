/**
 * One optimisation step of Scenimefy's semi-supervised `semi_cut` model (`models/semi_cut_model.py`,
 * SPEC §5), in the reference's order and arithmetic:
 *
 *   forward: G(cat[x, y]) → fake_B, idt_B; G(x_p) → fake_B_p
 *   D step:   L_D  = ½[MSE(D(fake_B), 0) + MSE(D(y), 1)]                     → Adam(D)
 *   D_p step: L_Dp = ½[MSE(D_p([x_p, fake_B_p]), 0) + MSE(D_p([x_p, y_p]), 1)] → Adam(D_p)
 *   G step, with the updated D and D_p frozen (gradient flows through them, their weights stay):
 *     L_G = λ_GAN·G_GAN + ½(HDCE + HDCE_Y) + SRC + λ_pair·(λ_GAN_p·G_GAN_p + NCE_s)    → Adam(G), Adam(F), Adam(F_s)
 *   plus, off by default: λ_VGG·VGG and λ_L1_source·mean|G(x) − x| in L_G, and `pairedLoss: 'l1'`, which puts
 *   λ_L1_paired·mean|G(x_p) − y_p| in place of NCE_s (options.ts).
 *
 * TF.js records gradients per `variableGrads` call, so the generator forward that the D steps consume (as
 * constants, the reference's `.detach()`) is run again inside the G step's tape; both runs give the same values.
 *
 * Patch ids: every time the reference would draw fresh ids (netF on the fake_B taps, netF_s on the y_p taps)
 * the model asks its `PatchIdSource`; `undefined` lets the head draw its own random ids. Replaying the
 * reference's `torch.randperm` draws (the fixtures' `ids_draw*`) goes through `queuedPatchIds`.
 *
 * Batches (SPEC §11 #4): at B = 1 this is the reference, operation for operation. The reference crashes at
 * B > 1 (its relation matrices mix the images); here each image gets its own patch ids, and SRC, the hDCE
 * weights, hDCE and StylePatchNCE are computed per image on that image's N rows (N×N relations, negatives
 * from the same image), then averaged over the images. Every logged term of a batch is therefore the mean of
 * the terms the images would give one at a time with the same ids (the reference's per-layer values at B = 1
 * being a row mean for NCE/hDCE and a sum over the N×N entries for SRC).
 *
 * The generator's gradient: we compute the true gradient of what the reference's autograd differentiates (L_G
 * with its keys, P_k and hDCE weights detached, hDCE carrying the gradient of mean_i v_i). The reference
 * fixture's G update is not reproduced, because it is wrong: torch 2.13 CPU (which made the fixture)
 * mis-computes InstanceNorm2d's input gradient for the channels-last-strided gradients PatchSampleF's permute
 * sends into the encoder taps (tools/reference-checks/instance_norm_strided_grad.py). semi-cut.parity.test.ts
 * checks everything the fixture gets right (init and step-1 losses; D, D_p, F and F_s after step 1) and checks
 * our G gradient (`generatorGradients`) at the fixture's step-1 state against central finite differences of
 * that objective (`generatorObjective`, keys from a frozen copy of G) along single weights where the fixture's
 * recorded gradient is too far off to pass; the step-2 losses, which inherit the fixture's G update, are
 * compared within a looser, documented bound.
 *
 * The LR schedule is the caller's (`setLearningRate` between epochs).
 */
import type { NamedTensorMap, Scalar, Tensor, Tensor2D, Tensor4D, TensorContainer, Variable } from '@tensorflow/tfjs-core';
import { InputError, UsageError } from '@scenimefy/io';
import type { Tf } from '../layers/tf';
import { lsganDiscriminatorLoss, lsganGeneratorLoss } from '../losses/gan';
import { patchHdceLoss } from '../losses/hdce';
import { patchNceLoss } from '../losses/patch-nce';
import { hdceGamma, hdceWeights, srcLoss } from '../losses/src';
import type { PatchDiscriminator } from '../networks/discriminator';
import type { ResnetGenerator } from '../networks/generator';
import type { PatchSampleF } from '../networks/patch-sample';
import { Adam } from './adam';
import type { AdamState } from './adam';
import { pairWeight, resolvedSemiCutOptions } from './options';
import { SEMI_CUT_PARTS } from './semi-cut-parts';
import type { SemiCutOptions, VggInput } from './options';

/** One training batch, NCHW float32 in [−1, 1], all four of one shape [B, C, H, W]. */
export interface SemiCutBatch {
  /** real_A: unpaired photos. */
  readonly x: Tensor4D;
  /** real_B: unpaired anime frames. */
  readonly y: Tensor4D;
  /** real_A_p: photos of the pseudo pairs. */
  readonly xP: Tensor4D;
  /** real_B_p: their pseudo-anime targets. */
  readonly yP: Tensor4D;
}

/**
 * Every loss term, as numbers: the reference's logged terms (HDCE and HDCE_Y are the displayed InfoNCE values)
 * and the optional ones. Each term is the weighted contribution as it enters L_G (λ_pair aside), and a term
 * that is switched off is 0.
 */
export interface SemiCutLosses {
  readonly D_fake: number;
  readonly D_real: number;
  readonly D: number;
  readonly D_p_fake: number;
  readonly D_p_real: number;
  readonly D_p: number;
  readonly G_GAN: number;
  readonly G_GAN_p: number;
  /** StylePatchNCE; 0 with `pairedLoss: 'l1'`. */
  readonly NCE_s: number;
  readonly SRC: number;
  readonly HDCE: number;
  /** 0 without `dceIdt`. */
  readonly HDCE_Y: number;
  /** ½(HDCE + HDCE_Y) with `dceIdt`, else HDCE: what enters L_G. */
  readonly HDCE_both: number;
  /** λ_VGG · perceptual term; 0 when `lambdaVgg` is 0. */
  readonly VGG: number;
  /** λ_L1_source · mean|G(x) − x|; 0 when `lambdaL1Source` is 0. */
  readonly L1_source: number;
  /** λ_L1_paired · mean|G(x_p) − y_p| with `pairedLoss: 'l1'`, else 0. */
  readonly L1_paired: number;
  readonly G: number;
}

/** The networks of the model; the model takes ownership and disposes them. */
export interface SemiCutNetworks {
  readonly netG: ResnetGenerator;
  /** Unpaired discriminator, inputNc 3. */
  readonly netD: PatchDiscriminator;
  /** Paired (conditional) discriminator, inputNc 6. */
  readonly netDp: PatchDiscriminator;
  /** Head for SRC / hDCE. */
  readonly netF: PatchSampleF;
  /** Head for StylePatchNCE. */
  readonly netFs: PatchSampleF;
}

/** A fresh-id draw: which head asks, its running index over the model's life (0, 1, 2, …), and the batch size. */
export interface PatchIdDraw {
  readonly head: 'F' | 'F_s';
  readonly index: number;
  /**
   * Images B in the batch. At B > 1 ids are per image: each layer's array must hold B·n ids with
   * n = min(numPatches, H·W) of that tap, image b's at [b·n, (b+1)·n). At B = 1 any count is taken, as the
   * reference takes any given ids.
   */
  readonly batchSize: number;
}

/** Ids per tapped layer for a draw, or `undefined` to let the head draw random ones. */
export type PatchIdSource = (draw: PatchIdDraw) => readonly Int32Array[] | undefined;

/** A source that hands out `draws` in order (draw k gets `draws[k]`) and fails once they run out. */
export function queuedPatchIds(draws: readonly (readonly Int32Array[])[]): PatchIdSource {
  return (draw) => {
    const ids = draws[draw.index];
    if (ids === undefined) throw new UsageError(`queuedPatchIds: draw ${draw.index} (${draw.head}) asked for, only ${draws.length} queued`);
    return ids;
  };
}

/** The patch ids of one L_G evaluation, per tapped layer (layout as in `PatchIdDraw`). */
export interface GeneratorPatchIds {
  /** netF's, drawn on fake_B's taps and reused for x, idt_B and y. */
  readonly F: readonly Int32Array[];
  /** netF_s's, drawn on y_p's taps and reused for fake_B_p; undefined with `pairedLoss: 'l1'`. */
  readonly F_s: readonly Int32Array[] | undefined;
}

export interface SemiCutEvaluationOptions {
  /**
   * Ids to use instead of fresh draws: the id source is not asked and its draw index does not move. F_s is
   * required with `pairedLoss: 'stylepatchnce'`.
   */
  readonly patchIds?: GeneratorPatchIds;
}

export interface GeneratorObjectiveOptions extends SemiCutEvaluationOptions {
  /**
   * Encodes the key images (x, y, y_p) in place of netG: a copy of netG at fixed weights holds the keys, SRC's
   * P_k and the hDCE weights constant while netG moves, as the tape does (the reference detaches them).
   * Default netG. Must have netG's architecture.
   */
  readonly keyGenerator?: ResnetGenerator;
}

/** L_G and the gradient the G step applies to netG at the current weights, from `generatorGradients`. */
export interface GeneratorGradients {
  /** L_G as logged. */
  readonly loss: number;
  /**
   * The G step's dL_G/dw (keys, P_k and hDCE weights detached; hDCE differentiated as mean_i v_i), keyed like
   * `netG.variables` and in their layout (HWIO conv weights); the caller disposes them.
   */
  readonly grads: Map<string, Tensor>;
  /** The ids used, to evaluate L_G again on the same patches. */
  readonly patchIds: GeneratorPatchIds;
}

/**
 * The perceptual term before λ_VGG: `fakeB` (G(x)) and `realA` (x) are [−1, 1] NCHW images of one shape; the
 * function maps them to the VGG input as `input` says (see `VggInput`) and returns
 * mean((VGG(fake') − VGG(real'))²). It must be differentiable with respect to `fakeB`; it runs inside the
 * G step's tape and tidy. Wire it to the VGG loss, e.g.
 * `(fake, real, input) => vggPerceptualLoss(tf, vgg, fake, real, { input })`.
 */
export type PerceptualLoss = (fakeB: Tensor4D, realA: Tensor4D, input: VggInput) => Scalar;

export interface SemiCutModelOptions {
  /** Overrides of the reference options. */
  readonly options?: Partial<SemiCutOptions>;
  /** Where fresh patch ids come from; default: each head's own random draws. */
  readonly patchIds?: PatchIdSource;
  /** 1-based epoch (sets γ and λ_pair). Default 1. */
  readonly epoch?: number;
  /** The VGG perceptual term; required when `options.lambdaVgg` > 0, unused otherwise. */
  readonly perceptualLoss?: PerceptualLoss;
}

export interface SemiCutOptimizers {
  readonly G: Adam;
  readonly D: Adam;
  readonly Dp: Adam;
  /** Exist after `dataDependentInit` (or `loadOptimizerStates` over built heads). */
  readonly F: Adam | undefined;
  /** Exists like F; takes no step with `pairedLoss: 'l1'`. */
  readonly Fs: Adam | undefined;
}

/** Saved optimiser states, as a checkpoint holds them; F and Fs only once the heads exist. */
export interface SemiCutOptimizerStates {
  readonly G: AdamState;
  readonly D: AdamState;
  readonly Dp: AdamState;
  readonly F?: AdamState;
  readonly Fs?: AdamState;
}

/** How `generatorLoss` evaluates: the logged L_G, or the objective whose gradient the G step follows. */
interface ObjectiveMode {
  /** Encodes x, y and y_p. */
  readonly keyGenerator: ResnetGenerator;
}

/** Encoder taps of the key images (real_A, real_B, real_B_p), computed off the gradient tape. */
interface KeyTaps {
  x: Tensor4D[];
  y?: Tensor4D[];
  yP?: Tensor4D[];
}

interface Forward {
  fakeB: Tensor4D;
  idtB: Tensor4D | undefined;
  fakeBP: Tensor4D;
}

type TermName = keyof SemiCutLosses;

const LOSS_NAMES: readonly TermName[] = [
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
  'VGG',
  'L1_source',
  'L1_paired',
  'G',
];

function keyedGrads(variables: ReadonlyMap<string, Variable>, grads: Record<string, Tensor>): Map<string, Tensor> {
  const out = new Map<string, Tensor>();
  for (const [key, variable] of variables) {
    const g = grads[variable.name];
    if (g !== undefined) out.set(key, g);
  }
  return out;
}

/**
 * At B > 1 the ids must be per image (B·n per layer, n = min(numPatches, H·W)): a shared set of n ids would
 * otherwise be read as B sets of n/B and silently sample other patches.
 */
function checkPerImageIds(ids: readonly Int32Array[], taps: readonly Tensor4D[], numPatches: number, head: string): void {
  taps.forEach((tap, l) => {
    const [b, , h, w] = tap.shape;
    const want = b * Math.min(numPatches, h * w);
    const got = ids[l]?.length;
    if (got !== want) {
      throw new InputError(
        `SemiCutModel: ${head} ids for layer ${l} hold ${String(got)} entries; a batch of ${b} needs ${want} (${want / b} per image, image b's at [b·${want / b}, (b+1)·${want / b}))`,
      );
    }
  });
}

export class SemiCutModel {
  readonly options: SemiCutOptions;
  readonly networks: SemiCutNetworks;
  private optimizerF: Adam | undefined;
  private optimizerFs: Adam | undefined;
  private readonly optimizerG: Adam;
  private readonly optimizerD: Adam;
  private readonly optimizerDp: Adam;
  private readonly patchIdSource: PatchIdSource | undefined;
  private readonly perceptualLoss: PerceptualLoss | undefined;
  private drawIndex = 0;
  private epochValue = 1;
  private gamma = 0;
  private lambdaPair = 1;
  private learningRate: number;
  private disposed = false;

  constructor(
    private readonly tf: Tf,
    networks: SemiCutNetworks,
    extra: SemiCutModelOptions = {},
  ) {
    this.options = resolvedSemiCutOptions(extra.options);
    this.networks = networks;
    this.patchIdSource = extra.patchIds;
    this.perceptualLoss = extra.perceptualLoss;
    if (this.options.lambdaVgg > 0 && this.perceptualLoss === undefined) {
      throw new UsageError(`SemiCutModel: lambdaVgg is ${this.options.lambdaVgg} but no perceptualLoss function was given`);
    }
    if (networks.netD.config.inputNc !== networks.netG.config.outputNc) {
      throw new UsageError(`SemiCutModel: netD takes ${networks.netD.config.inputNc} channels, G makes ${networks.netG.config.outputNc}`);
    }
    const pairedNc = networks.netG.config.inputNc + networks.netG.config.outputNc;
    if (networks.netDp.config.inputNc !== pairedNc) {
      throw new UsageError(`SemiCutModel: netDp takes ${networks.netDp.config.inputNc} channels, [x_p, G(x_p)] has ${pairedNc}`);
    }
    this.learningRate = this.options.lr;
    this.optimizerG = this.adamFor(networks.netG.variables);
    this.optimizerD = this.adamFor(networks.netD.variables);
    this.optimizerDp = this.adamFor(networks.netDp.variables);
    this.setEpoch(extra.epoch ?? 1);
  }

  private adamFor(variables: ReadonlyMap<string, Variable>): Adam {
    return new Adam(this.tf, variables, { lr: this.learningRate, betas: [this.options.beta1, this.options.beta2] });
  }

  get optimizers(): SemiCutOptimizers {
    return { G: this.optimizerG, D: this.optimizerD, Dp: this.optimizerDp, F: this.optimizerF, Fs: this.optimizerFs };
  }

  get epoch(): number {
    return this.epochValue;
  }

  /** The hDCE weight temperature γ in use (48 at epoch 1 with the curriculum). */
  get hdceGamma(): number {
    return this.gamma;
  }

  /** λ_pair in use. */
  get pairWeight(): number {
    return this.lambdaPair;
  }

  /** `model.set_epoch(epoch)`: γ of the hDCE weights and λ_pair follow the 1-based epoch. */
  setEpoch(epoch: number): void {
    const o = this.options;
    this.gamma = o.useCurriculum
      ? hdceGamma(epoch, { gamma: o.hdceGammaStart, gammaMin: o.hdceGammaMin, nEpochs: o.nEpochs, nEpochsDecay: o.nEpochsDecay })
      : o.hdceGammaStart;
    this.lambdaPair = pairWeight(epoch, o);
    this.epochValue = epoch;
  }

  /**
   * The learning rate of all five optimisers (the reference's schedulers set every `param_group['lr']` at
   * each epoch end); F's and F_s's, made later by `dataDependentInit`, start with it too.
   */
  setLearningRate(lr: number): void {
    if (!(Number.isFinite(lr) && lr >= 0))
      throw new UsageError(`SemiCutModel.setLearningRate: lr must be a finite number ≥ 0, got ${String(lr)}`);
    this.learningRate = lr;
    const optimizers = this.optimizers;
    for (const { optimizerKey } of SEMI_CUT_PARTS) {
      const o = optimizers[optimizerKey];
      if (o !== undefined) o.lr = lr;
    }
  }

  /**
   * Continues the optimisers of a saved run. The heads' optimisers are made here when the heads exist (loaded
   * from the checkpoint), as `dataDependentInit` would have made them; a state for a head that is not built is
   * refused.
   */
  loadOptimizerStates(states: SemiCutOptimizerStates): void {
    this.checkUsable();
    const { netF, netFs } = this.networks;
    for (const [name, state, head] of [
      ['F', states.F, netF],
      ['Fs', states.Fs, netFs],
    ] as const) {
      if (state !== undefined && head.variables.size === 0) {
        throw new UsageError(
          `SemiCutModel.loadOptimizerStates: a state for optimizer ${name} but the heads of net${name} are not built (load their weights first)`,
        );
      }
    }
    this.optimizerG.loadState(states.G);
    this.optimizerD.loadState(states.D);
    this.optimizerDp.loadState(states.Dp);
    if (netF.variables.size > 0) {
      this.optimizerF ??= this.adamFor(netF.variables);
      if (states.F !== undefined) this.optimizerF.loadState(states.F);
    }
    if (netFs.variables.size > 0) {
      this.optimizerFs ??= this.adamFor(netFs.variables);
      if (states.Fs !== undefined) this.optimizerFs.loadState(states.Fs);
    }
  }

  private checkUsable(): void {
    if (this.disposed) throw new UsageError('SemiCutModel: used after dispose()');
  }

  /** Checked before any tensor work, so that a bad call fails outside every tape and tidy. */
  private checkEvaluation(batch: SemiCutBatch, options: SemiCutEvaluationOptions): void {
    this.checkUsable();
    this.checkBatch(batch);
    if (options.patchIds !== undefined && this.stylePatchNce && options.patchIds.F_s === undefined) {
      throw new UsageError("SemiCutModel: patchIds.F_s is required with pairedLoss 'stylepatchnce'");
    }
  }

  private checkBatch(batch: SemiCutBatch): void {
    const shape = batch.x.shape;
    for (const [name, t] of Object.entries(batch) as Array<[string, Tensor4D]>) {
      if (t.rank !== 4 || t.shape.some((d, i) => d !== shape[i])) {
        throw new InputError(
          `SemiCutModel: batch.${name} has shape [${t.shape.join(',')}], batch.x has [${shape.join(',')}]; all four must match`,
        );
      }
    }
  }

  private get stylePatchNce(): boolean {
    return this.options.pairedLoss === 'stylepatchnce';
  }

  /**
   * The reference `forward()`: fake_B and idt_B from one G call on cat[x, y] (rows 0..B−1 are G(x), rows
   * B..2B−1 are G(y); instance norm is per image, so the split is exact at any B), then fake_B_p = G(x_p).
   */
  private forward(batch: SemiCutBatch): Forward {
    const tf = this.tf;
    const g = this.networks.netG;
    const b = batch.x.shape[0];
    if (!this.options.dceIdt) return { fakeB: g.forward(batch.x), idtB: undefined, fakeBP: g.forward(batch.xP) };
    const both = g.forward(tf.concat([batch.x, batch.y], 0));
    const [fakeB, idtB] = tf.split(both, [b, b], 0) as [Tensor4D, Tensor4D];
    return { fakeB, idtB, fakeBP: g.forward(batch.xP) };
  }

  private discriminatorLoss(fakeB: Tensor4D, y: Tensor4D): { loss: Scalar; fake: Scalar; real: Scalar } {
    const d = this.networks.netD;
    return lsganDiscriminatorLoss(this.tf, d.forward(fakeB), d.forward(y));
  }

  private pairedDiscriminatorLoss(batch: SemiCutBatch, fakeBP: Tensor4D): { loss: Scalar; fake: Scalar; real: Scalar } {
    const tf = this.tf;
    const d = this.networks.netDp;
    return lsganDiscriminatorLoss(tf, d.forward(tf.concat([batch.xP, fakeBP], 1)), d.forward(tf.concat([batch.xP, batch.yP], 1)));
  }

  /** Given ids, else the source's for a fresh draw (or undefined: the head draws), checked per image at B > 1. */
  private idsFor(
    head: 'F' | 'F_s',
    given: readonly Int32Array[] | undefined,
    taps: readonly Tensor4D[],
  ): readonly Int32Array[] | undefined {
    const b = (taps[0] as Tensor4D).shape[0];
    let ids = given;
    if (ids === undefined) {
      const draw = { head, index: this.drawIndex, batchSize: b };
      this.drawIndex += 1;
      ids = this.patchIdSource?.(draw);
    }
    if (ids !== undefined && b > 1) checkPerImageIds(ids, taps, this.options.numPatches, head);
    return ids;
  }

  /**
   * `compute_G_loss()` on a forward made inside the caller's tape. Returns L_G, its logged terms (scalars
   * the caller owns) and the ids used. With `objective`, hDCE enters as mean_i v_i (the value its gradient
   * belongs to) instead of the displayed CE, and the key images are encoded by `objective.keyGenerator`.
   */
  private generatorLoss(
    batch: SemiCutBatch,
    fwd: Forward,
    given: GeneratorPatchIds | undefined,
    objective?: ObjectiveMode,
    keyTaps?: KeyTaps,
  ): { total: Scalar; terms: Map<TermName, Scalar>; patchIds: GeneratorPatchIds } {
    const tf = this.tf;
    const o = this.options;
    const { netG, netD, netDp, netF, netFs } = this.networks;
    const keyG = objective?.keyGenerator ?? netG;
    const layers = o.nceLayers;
    const nLayers = layers.length;
    const b = batch.x.shape[0];
    // Per-image ids from B = 2 on; at B = 1 the shared-id gather is the reference's, index for index.
    const perImage = { perSampleIds: b > 1 };
    const lossBatch = { batchSize: b };
    const terms = new Map<TermName, Scalar>();

    const gGan = tf.mul(lsganGeneratorLoss(tf, netD.forward(fwd.fakeB)), o.lambdaGan) as Scalar;
    const gGanP = tf.mul(lsganGeneratorLoss(tf, netDp.forward(tf.concat([batch.xP, fwd.fakeBP], 1))), o.lambdaGanP) as Scalar;

    // Draw order as the reference: netF on the fake_B taps, then netF_s on the y_p taps.
    const tapsFakeB = netG.encode(fwd.fakeB, layers);
    const q = netF.sample(tapsFakeB, o.numPatches, this.idsFor('F', given?.F, tapsFakeB), perImage);
    const k = netF.sample(keyTaps?.x ?? keyG.encode(batch.x, layers), o.numPatches, q.patchIds, perImage);
    let qIdt: Tensor2D[] = [];
    let kIdt: Tensor2D[] = [];
    if (fwd.idtB !== undefined) {
      qIdt = netF.sample(netG.encode(fwd.idtB, layers), o.numPatches, q.patchIds, perImage).features;
      kIdt = netF.sample(keyTaps?.y ?? keyG.encode(batch.y, layers), o.numPatches, q.patchIds, perImage).features;
    }
    let qS: Tensor2D[] = [];
    let kS: Tensor2D[] = [];
    let idsS: readonly Int32Array[] | undefined;
    if (this.stylePatchNce) {
      const tgtS = netG.encode(fwd.fakeBP, layers);
      const tapsYP = keyTaps?.yP ?? keyG.encode(batch.yP, layers);
      const keys = netFs.sample(tapsYP, o.numPatches, this.idsFor('F_s', given?.F_s, tapsYP), perImage);
      kS = keys.features;
      idsS = keys.patchIds;
      qS = netFs.sample(tgtS, o.numPatches, keys.patchIds, perImage).features;
    }

    // Per-layer sums are accumulated like the reference's `total += …` loops and divided by L at the end. Each
    // per-layer loss is already the mean over images of the per-image value (see the module comment).
    let nce: Scalar = tf.scalar(0);
    let src: Scalar = tf.scalar(0);
    let hdce: Scalar = tf.scalar(0);
    let hdceY: Scalar = tf.scalar(0);
    for (let l = 0; l < nLayers; l++) {
      const qL = q.features[l] as Tensor2D;
      const kL = k.features[l] as Tensor2D;
      if (this.stylePatchNce) {
        nce = tf.add(nce, tf.mul(patchNceLoss(tf, qS[l] as Tensor2D, kS[l] as Tensor2D, { tau: o.nceT, ...lossBatch }).loss, o.lambdaNceS));
      }
      src = tf.add(src, tf.mul(srcLoss(tf, qL, kL, lossBatch).loss, o.lambdaSrc));
      const w = hdceWeights(tf, kL, { gamma: this.gamma, ...lossBatch });
      const h = patchHdceLoss(tf, qL, kL, { weight: w, tau: o.nceT, ...lossBatch });
      hdce = tf.add(hdce, tf.mul(objective === undefined ? h.reference : h.loss, o.lambdaHdce));
      if (fwd.idtB !== undefined) {
        const kY = kIdt[l] as Tensor2D;
        const wY = hdceWeights(tf, kY, { gamma: this.gamma, ...lossBatch });
        const hY = patchHdceLoss(tf, qIdt[l] as Tensor2D, kY, { weight: wY, tau: o.nceT, ...lossBatch });
        hdceY = tf.add(hdceY, tf.mul(objective === undefined ? hY.reference : hY.loss, o.lambdaHdce));
      }
    }
    nce = tf.div(nce, nLayers);
    src = tf.div(src, nLayers);
    hdce = tf.div(hdce, nLayers);
    hdceY = tf.div(hdceY, nLayers);
    const hdceBoth = fwd.idtB !== undefined ? (tf.mul(tf.add(hdce, hdceY), 0.5) as Scalar) : hdce;

    const l1Paired: Scalar = this.stylePatchNce
      ? tf.scalar(0)
      : (tf.mul(tf.mean(tf.abs(tf.sub(fwd.fakeBP, batch.yP))), o.lambdaL1Paired) as Scalar);
    const l1Source: Scalar =
      o.lambdaL1Source > 0 ? (tf.mul(tf.mean(tf.abs(tf.sub(fwd.fakeB, batch.x))), o.lambdaL1Source) as Scalar) : tf.scalar(0);
    const perceptual = this.perceptualLoss;
    const vgg: Scalar =
      o.lambdaVgg > 0 && perceptual !== undefined
        ? (tf.mul(perceptual(fwd.fakeB, batch.x, o.vggInput), o.lambdaVgg) as Scalar)
        : tf.scalar(0);

    // The reference's sum, in its order; the optional terms join only when on, so the default sum is unchanged.
    const paired = tf.add(gGanP, this.stylePatchNce ? nce : l1Paired);
    let total = tf.add(tf.add(tf.add(gGan, hdceBoth), src), tf.mul(this.lambdaPair, paired)) as Scalar;
    if (o.lambdaVgg > 0) total = tf.add(total, vgg);
    if (o.lambdaL1Source > 0) total = tf.add(total, l1Source);

    terms.set('G_GAN', gGan);
    terms.set('G_GAN_p', gGanP);
    terms.set('NCE_s', nce);
    terms.set('SRC', src);
    terms.set('HDCE', hdce);
    terms.set('HDCE_Y', hdceY);
    terms.set('HDCE_both', hdceBoth);
    terms.set('VGG', vgg);
    terms.set('L1_source', l1Source);
    terms.set('L1_paired', l1Paired);
    terms.set('G', total);
    return { total, terms, patchIds: { F: q.patchIds, F_s: idsS } };
  }

  /** Reads kept scalars into numbers and frees them (one tensor may stand for two terms: HDCE_both without dceIdt). */
  private static numbersOf(terms: Map<TermName, Scalar>): Map<TermName, number> {
    const out = new Map<TermName, number>();
    for (const [name, t] of terms) out.set(name, t.dataSync()[0] as number);
    for (const t of new Set(terms.values())) t.dispose();
    return out;
  }

  private static lossesOf(values: Map<TermName, number>): SemiCutLosses {
    const get = (name: TermName): number => {
      const v = values.get(name);
      if (v === undefined) throw new Error(`SemiCutModel: loss term ${name} was not computed`);
      return v;
    };
    return Object.fromEntries(LOSS_NAMES.map((n) => [n, get(n)])) as unknown as SemiCutLosses;
  }

  /**
   * Every loss term at the current weights, with no step and no gradient: the forward of `optimize_parameters`
   * without its updates (D and D_p score the same fakes G is scored on). Builds the heads on first use. Draws
   * fresh ids unless `options.patchIds` gives them.
   */
  losses(batch: SemiCutBatch, options: SemiCutEvaluationOptions = {}): SemiCutLosses {
    this.checkEvaluation(batch, options);
    const tf = this.tf;
    const terms = new Map<TermName, Scalar>();
    tf.tidy(() => {
      const fwd = this.forward(batch);
      const d = this.discriminatorLoss(fwd.fakeB, batch.y);
      const dp = this.pairedDiscriminatorLoss(batch, fwd.fakeBP);
      const g = this.generatorLoss(batch, fwd, options.patchIds);
      for (const [name, t] of g.terms) terms.set(name, t);
      terms.set('D_fake', d.fake).set('D_real', d.real).set('D', d.loss);
      terms.set('D_p_fake', dp.fake).set('D_p_real', dp.real).set('D_p', dp.loss);
      for (const t of terms.values()) tf.keep(t);
    });
    return SemiCutModel.lossesOf(SemiCutModel.numbersOf(terms));
  }

  /**
   * L_G and its gradient with respect to netG's weights at the current state, as the G step of
   * `optimize_parameters` computes them (same tape, the current D and D_p), without stepping anything. Draws
   * fresh ids unless `options.patchIds` gives them. For checking the gradient, e.g. against finite differences.
   */
  generatorGradients(batch: SemiCutBatch, options: SemiCutEvaluationOptions = {}): GeneratorGradients {
    this.checkEvaluation(batch, options);
    const tf = this.tf;
    const netG = this.networks.netG;
    let patchIds: GeneratorPatchIds | undefined;
    const { value, grads } = tf.variableGrads(() => {
      const g = this.generatorLoss(batch, this.forward(batch), options.patchIds);
      patchIds = g.patchIds;
      return g.total;
    }, [...netG.variables.values()]);
    const loss = value.dataSync()[0] as number;
    value.dispose();
    return { loss, grads: keyedGrads(netG.variables, grads), patchIds: patchIds as GeneratorPatchIds };
  }

  /**
   * The value whose gradient with respect to netG's weights the G step follows, at the current weights: L_G
   * with hDCE (and hDCE_Y) as mean_i v_i rather than the displayed CE (SPEC §11 #5) and the key images encoded
   * by `options.keyGenerator`. With a frozen copy of netG there, (f(w + εd) − f(w − εd)) / 2ε approximates
   * `generatorGradients(...).grads` · d; with netG itself it is not L_G's logged value. Forward only.
   */
  generatorObjective(batch: SemiCutBatch, options: GeneratorObjectiveOptions = {}): number {
    this.checkEvaluation(batch, options);
    const netG = this.networks.netG;
    const keyGenerator = options.keyGenerator ?? netG;
    const a = keyGenerator.config;
    const g = netG.config;
    if (a.ngf !== g.ngf || a.nBlocks !== g.nBlocks || a.inputNc !== g.inputNc || a.outputNc !== g.outputNc) {
      throw new UsageError('SemiCutModel.generatorObjective: keyGenerator must have the architecture of netG');
    }
    const tf = this.tf;
    const value = tf.tidy(() => this.generatorLoss(batch, this.forward(batch), options.patchIds, { keyGenerator }).total);
    const out = value.dataSync()[0] as number;
    value.dispose();
    return out;
  }

  /**
   * `data_dependent_initialize`: the losses of one forward with the current weights and no step (the
   * reference's backward there changes nothing), which builds the heads of netF / netF_s if they are not yet
   * built (loaded ones are kept); then the heads' optimisers are created. Returns the losses (`losses.init`).
   * With `pairedLoss: 'l1'` netF_s's heads are built without drawing ids, so that it can be saved and resumed.
   */
  dataDependentInit(batch: SemiCutBatch): SemiCutLosses {
    this.checkUsable();
    if (this.optimizerF !== undefined) throw new UsageError('SemiCutModel.dataDependentInit: already initialised');
    const losses = this.losses(batch);
    const { netG, netF, netFs } = this.networks;
    if (netFs.variables.size === 0) {
      this.tf.tidy(() => {
        const taps = netG.encode(batch.yP, this.options.nceLayers);
        // Given ids: the heads are built from the taps' channel counts and no id is drawn.
        netFs.sample(
          taps,
          1,
          taps.map(() => Int32Array.of(0)),
        );
      });
    }
    this.optimizerF = this.adamFor(netF.variables);
    this.optimizerFs = this.adamFor(netFs.variables);
    return losses;
  }

  /**
   * `optimize_parameters()`: D step, D_p step, then the G step updating G, F and F_s (in that order). With
   * `pairedLoss: 'l1'` F_s takes no step (no gradient reaches it; PyTorch skips such parameters).
   */
  optimizeParameters(batch: SemiCutBatch): SemiCutLosses {
    this.checkUsable();
    this.checkBatch(batch);
    const optimizerF = this.optimizerF;
    const optimizerFs = this.optimizerFs;
    if (optimizerF === undefined || optimizerFs === undefined) {
      throw new UsageError('SemiCutModel.optimizeParameters: call dataDependentInit(batch) first (it builds netF / netF_s)');
    }
    const tf = this.tf;
    const { netG, netD, netDp, netF, netFs } = this.networks;
    const kept = new Map<TermName, Scalar>();
    const keep = (name: TermName, t: Scalar): void => {
      kept.set(name, tf.keep(t));
    };

    // The D steps take the fakes as constants (the reference's `.detach()`); idt_B is only the G step's.
    const fwd = tf.tidy(() => {
      const f = this.forward(batch);
      return { fakeB: f.fakeB, fakeBP: f.fakeBP };
    });
    try {
      const stepD = tf.variableGrads(() => {
        const d = this.discriminatorLoss(fwd.fakeB, batch.y);
        keep('D_fake', d.fake);
        keep('D_real', d.real);
        return d.loss;
      }, [...netD.variables.values()]);
      keep('D', stepD.value);
      this.optimizerD.applyGradients(keyedGrads(netD.variables, stepD.grads));
      tf.dispose(stepD.grads);

      const stepDp = tf.variableGrads(() => {
        const d = this.pairedDiscriminatorLoss(batch, fwd.fakeBP);
        keep('D_p_fake', d.fake);
        keep('D_p_real', d.real);
        return d.loss;
      }, [...netDp.variables.values()]);
      keep('D_p', stepDp.value);
      this.optimizerDp.applyGradients(keyedGrads(netDp.variables, stepDp.grads));
      tf.dispose(stepDp.grads);
    } finally {
      tf.dispose(fwd);
    }

    const trained = [...netG.variables.values(), ...netF.variables.values()];
    if (this.stylePatchNce) trained.push(...netFs.variables.values());
    // The keys are detached in every contrastive loss, so their encoder passes run before the tape: on it they
    // would only carry zero gradients back through G (a quarter of the step's conv backprops, and their memory).
    const keyTaps = tf.tidy(() => {
      const layers = this.options.nceLayers;
      const taps: KeyTaps = { x: netG.encode(batch.x, layers) };
      if (this.options.dceIdt) taps.y = netG.encode(batch.y, layers);
      if (this.stylePatchNce) taps.yP = netG.encode(batch.yP, layers);
      return taps as unknown as TensorContainer;
    }) as unknown as KeyTaps;
    let stepG: { value: Scalar; grads: NamedTensorMap };
    try {
      stepG = tf.variableGrads(() => {
        const g = this.generatorLoss(batch, this.forward(batch), undefined, undefined, keyTaps);
        for (const [name, t] of g.terms) if (name !== 'G') keep(name, t);
        return g.total;
      }, trained);
    } finally {
      tf.dispose(keyTaps as unknown as TensorContainer);
    }
    kept.set('G', stepG.value);
    this.optimizerG.applyGradients(keyedGrads(netG.variables, stepG.grads));
    optimizerF.applyGradients(keyedGrads(netF.variables, stepG.grads));
    if (this.stylePatchNce) optimizerFs.applyGradients(keyedGrads(netFs.variables, stepG.grads));
    tf.dispose(stepG.grads);

    return SemiCutModel.lossesOf(SemiCutModel.numbersOf(kept));
  }

  /** Frees the optimisers' state and every network. */
  dispose(): void {
    if (this.disposed) return;
    const optimizers = this.optimizers;
    for (const { optimizerKey, field } of SEMI_CUT_PARTS) {
      optimizers[optimizerKey]?.dispose();
      this.networks[field].dispose();
    }
    this.disposed = true;
  }
}

/**
 * Builds the `semi_cut` training model over already-built networks (weights loaded or freshly initialised).
 *
 * Example:
 *   const model = createSemiCutModel(tf, { netG, netD, netDp, netF, netFs });
 *   model.dataDependentInit(batch);
 *   const losses = model.optimizeParameters(batch); // { D, D_p, G, G_GAN, NCE_s, SRC, HDCE, … }
 */
export function createSemiCutModel(tf: Tf, networks: SemiCutNetworks, extra: SemiCutModelOptions = {}): SemiCutModel {
  return new SemiCutModel(tf, networks, extra);
}
