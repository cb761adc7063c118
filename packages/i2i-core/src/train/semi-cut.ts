/**
 * One optimisation step of Scenimefy's semi-supervised `semi_cut` model (`models/semi_cut_model.py`,
 * SPEC §5), in the reference's order and arithmetic:
 *
 *   forward: G(cat[x, y]) → fake_B, idt_B; G(x_p) → fake_B_p
 *   D step:   L_D  = ½[MSE(D(fake_B), 0) + MSE(D(y), 1)]                     → Adam(D)
 *   D_p step: L_Dp = ½[MSE(D_p([x_p, fake_B_p]), 0) + MSE(D_p([x_p, y_p]), 1)] → Adam(D_p)
 *   G step, with the updated D and D_p frozen (gradient flows through them, their weights stay):
 *     L_G = λ_GAN·G_GAN + ½(HDCE + HDCE_Y) + SRC + λ_pair·(λ_GAN_p·G_GAN_p + NCE_s)    → Adam(G), Adam(F), Adam(F_s)
 *
 * TF.js records gradients per `variableGrads` call, so the generator forward that the D steps consume (as
 * constants, the reference's `.detach()`) is run again inside the G step's tape; both runs give the same values.
 *
 * Patch ids: every time the reference would draw fresh ids (netF on the fake_B taps, netF_s on the y_p taps)
 * the model asks its `PatchIdSource`; `undefined` lets the head draw its own random ids. Replaying the
 * reference's `torch.randperm` draws (the fixtures' `ids_draw*`) goes through `queuedPatchIds`.
 *
 * Status (work in progress, not exported from the package yet): the init losses, the D and D_p steps, the step-1
 * losses and the F / F_s updates match the reference fixture. The generator's update differs from the fixture's
 * because the fixture's is wrong: torch 2.13 CPU (which made it) mis-computes InstanceNorm2d's input gradient for
 * the channels-last-strided gradients PatchSampleF's permute sends into the encoder taps
 * (tools/reference-checks/instance_norm_strided_grad.py). Our gradient agrees with central finite differences,
 * and with a PyTorch replica once the tap gradients are made contiguous (≤ 2e-3 relative per term). The parity
 * test checks what the fixture gets right; the G step waits for a decision (SPEC §11) and a corrected fixture.
 *
 * Not modelled here: the optional VGG content loss (λ_VGG, off in `train.sh`) and the LR schedule (set
 * `optimizers.*.lr` between epochs).
 */
import type { Scalar, Tensor, Tensor2D, Tensor4D, Variable } from '@tensorflow/tfjs-core';
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
import { pairWeight, resolvedSemiCutOptions } from './options';
import type { SemiCutOptions } from './options';

/** One training batch, NCHW float32 in [−1, 1], all of one size. */
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

/** Every loss term the reference logs, as numbers (HDCE and HDCE_Y are the displayed InfoNCE values). */
export interface SemiCutLosses {
  readonly D_fake: number;
  readonly D_real: number;
  readonly D: number;
  readonly D_p_fake: number;
  readonly D_p_real: number;
  readonly D_p: number;
  readonly G_GAN: number;
  readonly G_GAN_p: number;
  readonly NCE_s: number;
  readonly SRC: number;
  readonly HDCE: number;
  /** 0 without `dceIdt`. */
  readonly HDCE_Y: number;
  /** ½(HDCE + HDCE_Y) with `dceIdt`, else HDCE: what enters L_G. */
  readonly HDCE_both: number;
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

/** A fresh-id draw: which head asks, and its running index over the model's life (0, 1, 2, …). */
export interface PatchIdDraw {
  readonly head: 'F' | 'F_s';
  readonly index: number;
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

export interface SemiCutModelOptions {
  /** Overrides of the reference options. */
  readonly options?: Partial<SemiCutOptions>;
  /** Where fresh patch ids come from; default: each head's own random draws. */
  readonly patchIds?: PatchIdSource;
  /** 1-based epoch (sets γ and λ_pair). Default 1. */
  readonly epoch?: number;
}

export interface SemiCutOptimizers {
  readonly G: Adam;
  readonly D: Adam;
  readonly Dp: Adam;
  /** Exist after `dataDependentInit`, once the heads are built. */
  readonly F: Adam | undefined;
  readonly Fs: Adam | undefined;
}

interface Forward {
  fakeB: Tensor4D;
  idtB: Tensor4D | undefined;
  fakeBP: Tensor4D;
}

type TermName = keyof SemiCutLosses;

function keyedGrads(variables: ReadonlyMap<string, Variable>, grads: Record<string, Tensor>): Map<string, Tensor> {
  const out = new Map<string, Tensor>();
  for (const [key, variable] of variables) {
    const g = grads[variable.name];
    if (g !== undefined) out.set(key, g);
  }
  return out;
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
  private drawIndex = 0;
  private epochValue = 1;
  private gamma = 0;
  private lambdaPair = 1;
  private disposed = false;

  constructor(
    private readonly tf: Tf,
    networks: SemiCutNetworks,
    extra: SemiCutModelOptions = {},
  ) {
    this.options = resolvedSemiCutOptions(extra.options);
    this.networks = networks;
    this.patchIdSource = extra.patchIds;
    if (networks.netD.config.inputNc !== networks.netG.config.outputNc) {
      throw new UsageError(`SemiCutModel: netD takes ${networks.netD.config.inputNc} channels, G makes ${networks.netG.config.outputNc}`);
    }
    const pairedNc = networks.netG.config.inputNc + networks.netG.config.outputNc;
    if (networks.netDp.config.inputNc !== pairedNc) {
      throw new UsageError(`SemiCutModel: netDp takes ${networks.netDp.config.inputNc} channels, [x_p, G(x_p)] has ${pairedNc}`);
    }
    const adam = { lr: this.options.lr, betas: [this.options.beta1, this.options.beta2] as const };
    this.optimizerG = new Adam(tf, networks.netG.variables, adam);
    this.optimizerD = new Adam(tf, networks.netD.variables, adam);
    this.optimizerDp = new Adam(tf, networks.netDp.variables, adam);
    this.setEpoch(extra.epoch ?? 1);
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

  private checkUsable(): void {
    if (this.disposed) throw new UsageError('SemiCutModel: used after dispose()');
  }

  private checkBatch(batch: SemiCutBatch): void {
    const shape = batch.x.shape;
    for (const [name, t] of Object.entries(batch) as Array<[string, Tensor4D]>) {
      if (t.rank !== 4 || t.shape.some((d, i) => d !== shape[i])) {
        throw new InputError(`SemiCutModel: batch.${name} has shape [${t.shape.join(',')}], batch.x has [${shape.join(',')}]; all four must match`);
      }
    }
    // SPEC §11 #4: SRC/hDCE relation matrices are per image here, but the reference (shared ids) runs only at batch 1.
  }

  /** The reference `forward()`: fake_B and idt_B from one G call on cat[x, y], then fake_B_p = G(x_p). */
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

  private freshIds(head: 'F' | 'F_s'): readonly Int32Array[] | undefined {
    const draw = { head, index: this.drawIndex };
    this.drawIndex += 1;
    return this.patchIdSource?.(draw);
  }

  /**
   * `compute_G_loss()` on a forward made inside the caller's tape. Returns L_G and its logged terms (scalars
   * the caller owns).
   */
  private generatorLoss(batch: SemiCutBatch, fwd: Forward): { total: Scalar; terms: Map<TermName, Scalar> } {
    const tf = this.tf;
    const o = this.options;
    const { netG, netD, netDp, netF, netFs } = this.networks;
    const layers = o.nceLayers;
    const nLayers = layers.length;
    const terms = new Map<TermName, Scalar>();

    const gGan = tf.mul(lsganGeneratorLoss(tf, netD.forward(fwd.fakeB)), o.lambdaGan) as Scalar;
    const gGanP = tf.mul(lsganGeneratorLoss(tf, netDp.forward(tf.concat([batch.xP, fwd.fakeBP], 1))), o.lambdaGanP) as Scalar;

    // Draw order as the reference: netF on the fake_B taps, then netF_s on the y_p taps.
    const q = netF.sample(netG.encode(fwd.fakeB, layers), o.numPatches, this.freshIds('F'));
    const k = netF.sample(netG.encode(batch.x, layers), o.numPatches, q.patchIds);
    let qIdt: Tensor2D[] = [];
    let kIdt: Tensor2D[] = [];
    if (fwd.idtB !== undefined) {
      qIdt = netF.sample(netG.encode(fwd.idtB, layers), o.numPatches, q.patchIds).features;
      kIdt = netF.sample(netG.encode(batch.y, layers), o.numPatches, q.patchIds).features;
    }
    const tgtS = netG.encode(fwd.fakeBP, layers);
    const kS = netFs.sample(netG.encode(batch.yP, layers), o.numPatches, this.freshIds('F_s'));
    const qS = netFs.sample(tgtS, o.numPatches, kS.patchIds);

    // Per-layer sums are accumulated like the reference's `total += …` loops and divided by L at the end.
    let nce: Scalar = tf.scalar(0);
    let src: Scalar = tf.scalar(0);
    let hdce: Scalar = tf.scalar(0);
    let hdceY: Scalar = tf.scalar(0);
    for (let l = 0; l < nLayers; l++) {
      const qL = q.features[l] as Tensor2D;
      const kL = k.features[l] as Tensor2D;
      nce = tf.add(nce, tf.mul(patchNceLoss(tf, qS.features[l] as Tensor2D, kS.features[l] as Tensor2D, { tau: o.nceT }).loss, o.lambdaNceS));
      src = tf.add(src, tf.mul(srcLoss(tf, qL, kL).loss, o.lambdaSrc));
      const w = hdceWeights(tf, kL, { gamma: this.gamma });
      hdce = tf.add(hdce, tf.mul(patchHdceLoss(tf, qL, kL, { weight: w, tau: o.nceT }).reference, o.lambdaHdce));
      if (fwd.idtB !== undefined) {
        const kY = kIdt[l] as Tensor2D;
        const wY = hdceWeights(tf, kY, { gamma: this.gamma });
        hdceY = tf.add(hdceY, tf.mul(patchHdceLoss(tf, qIdt[l] as Tensor2D, kY, { weight: wY, tau: o.nceT }).reference, o.lambdaHdce));
      }
    }
    nce = tf.div(nce, nLayers);
    src = tf.div(src, nLayers);
    hdce = tf.div(hdce, nLayers);
    hdceY = tf.div(hdceY, nLayers);
    const hdceBoth = fwd.idtB !== undefined ? (tf.mul(tf.add(hdce, hdceY), 0.5) as Scalar) : hdce;
    const total = tf.add(tf.add(tf.add(gGan, hdceBoth), src), tf.mul(this.lambdaPair, tf.add(gGanP, nce))) as Scalar;

    terms.set('G_GAN', gGan);
    terms.set('G_GAN_p', gGanP);
    terms.set('NCE_s', nce);
    terms.set('SRC', src);
    terms.set('HDCE', hdce);
    terms.set('HDCE_Y', hdceY);
    terms.set('HDCE_both', hdceBoth);
    terms.set('G', total);
    return { total, terms };
  }

  /** Reads kept scalars into numbers and frees them. */
  private static numbersOf(terms: Map<TermName, Scalar>): Map<TermName, number> {
    const out = new Map<TermName, number>();
    for (const [name, t] of terms) {
      out.set(name, t.dataSync()[0] as number);
      t.dispose();
    }
    return out;
  }

  private static lossesOf(values: Map<TermName, number>): SemiCutLosses {
    const get = (name: TermName): number => {
      const v = values.get(name);
      if (v === undefined) throw new Error(`SemiCutModel: loss term ${name} was not computed`);
      return v;
    };
    const names: TermName[] = ['D_fake', 'D_real', 'D', 'D_p_fake', 'D_p_real', 'D_p', 'G_GAN', 'G_GAN_p', 'NCE_s', 'SRC', 'HDCE', 'HDCE_Y', 'HDCE_both', 'G'];
    return Object.fromEntries(names.map((n) => [n, get(n)])) as unknown as SemiCutLosses;
  }

  /**
   * `data_dependent_initialize`: the losses of one forward with the current weights and no step (the
   * reference's backward there changes nothing), which builds the heads of netF / netF_s if they are not yet
   * built (loaded ones are kept); then the heads' optimisers are created. Returns the losses (`losses.init`).
   */
  dataDependentInit(batch: SemiCutBatch): SemiCutLosses {
    this.checkUsable();
    this.checkBatch(batch);
    if (this.optimizerF !== undefined) throw new UsageError('SemiCutModel.dataDependentInit: already initialised');
    const tf = this.tf;
    const terms = new Map<TermName, Scalar>();
    tf.tidy(() => {
      const fwd = this.forward(batch);
      const d = this.discriminatorLoss(fwd.fakeB, batch.y);
      const dp = this.pairedDiscriminatorLoss(batch, fwd.fakeBP);
      const g = this.generatorLoss(batch, fwd);
      for (const [name, t] of g.terms) terms.set(name, t);
      terms.set('D_fake', d.fake).set('D_real', d.real).set('D', d.loss);
      terms.set('D_p_fake', dp.fake).set('D_p_real', dp.real).set('D_p', dp.loss);
      for (const t of terms.values()) tf.keep(t);
    });
    const values = SemiCutModel.numbersOf(terms);
    const adam = { lr: this.options.lr, betas: [this.options.beta1, this.options.beta2] as const };
    this.optimizerF = new Adam(tf, this.networks.netF.variables, adam);
    this.optimizerFs = new Adam(tf, this.networks.netFs.variables, adam);
    return SemiCutModel.lossesOf(values);
  }

  /** `optimize_parameters()`: D step, D_p step, then the G step updating G, F and F_s (in that order). */
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

    const stepG = tf.variableGrads(() => {
      const g = this.generatorLoss(batch, this.forward(batch));
      for (const [name, t] of g.terms) if (name !== 'G') keep(name, t);
      return g.total;
    }, [...netG.variables.values(), ...netF.variables.values(), ...netFs.variables.values()]);
    kept.set('G', stepG.value);
    this.optimizerG.applyGradients(keyedGrads(netG.variables, stepG.grads));
    optimizerF.applyGradients(keyedGrads(netF.variables, stepG.grads));
    optimizerFs.applyGradients(keyedGrads(netFs.variables, stepG.grads));
    tf.dispose(stepG.grads);

    return SemiCutModel.lossesOf(SemiCutModel.numbersOf(kept));
  }

  /** Frees the optimisers' state and every network. */
  dispose(): void {
    if (this.disposed) return;
    for (const o of [this.optimizerG, this.optimizerD, this.optimizerDp, this.optimizerF, this.optimizerFs]) o?.dispose();
    const n = this.networks;
    for (const net of [n.netG, n.netD, n.netDp, n.netF, n.netFs]) net.dispose();
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
