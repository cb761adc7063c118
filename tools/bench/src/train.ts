/**
 * The `train` benchmark group: one `SemiCutModel.optimizeParameters` step (packages/i2i-core/src/train/semi-cut.ts)
 * with fresh reference-size networks (ngf 64, ndf 64, netF nc 256, 256 patches, every option at the reference
 * default) on one square size per child process, so each size's peak RSS is its own. The batch is four
 * synthetic images already on the backend: data loading and decoding are not part of the timed step.
 *
 * `profile: true` adds where the time goes (forward and backward of each step phase, per network, the
 * optimisers, and tf.profile's kernel totals for one extra step); see README.md.
 */
import {
  createPatchDiscriminator,
  createPatchSampleF,
  createResnetGenerator,
  createSemiCutModel,
  registerWasmTrainingKernels,
} from '@scenimefy/i2i-core';
import type {
  PatchDiscriminator,
  PatchSampleF,
  ResnetGenerator,
  SemiCutBatch,
  SemiCutModel,
  SemiCutNetworks,
  Tf,
} from '@scenimefy/i2i-core';
import { describeBackend, loadTf } from '@scenimefy/io';
import type { BackendPreference } from '@scenimefy/io';
import type { Scalar, Tensor4D, Variable } from '@tensorflow/tfjs-core';

import { syntheticImage } from './cases';
import type { CaseResult } from './cases';

export interface TrainCaseArgs {
  size: number;
  backend: BackendPreference;
  /** Timed steps after the warm-up. */
  steps: number;
  /** Untimed steps after the data-dependent init (the first step pays for kernel set-up and allocator growth). */
  warmup: number;
  profile?: boolean;
  /** Turn on the generator's gradient checkpointing where the generator has it. */
  checkpointing?: boolean;
}

/** NCHW [1, 3, size, size] in [−1, 1]; `variant` shifts the pattern so the four batch images differ. */
function imageTensor(tf: Tf, size: number, variant: number): Tensor4D {
  const img = syntheticImage(size + variant * 7, size);
  const plane = size * size;
  const out = new Float32Array(3 * plane);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const src = (y * img.width + x + variant * 7) * 3;
      for (let c = 0; c < 3; c++) out[c * plane + y * size + x] = (img.data[src + c] as number) / 127.5 - 1;
    }
  }
  return tf.tensor4d(out, [1, 3, size, size]);
}

function stats(ms: number[]): { median: number; mean: number; min: number; max: number } {
  const s = [...ms].sort((a, b) => a - b);
  const mid = s.length >> 1;
  const median = s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
  return { median, mean: s.reduce((a, b) => a + b, 0) / s.length, min: s[0] as number, max: s[s.length - 1] as number };
}

function round(v: number): number {
  return Math.round(v * 10) / 10;
}

function peakRssMb(): number {
  return round(process.resourceUsage().maxRSS / 1024);
}

export async function trainCase(args: TrainCaseArgs): Promise<CaseResult> {
  const loaded = await loadTf({ prefer: args.backend, require: args.backend !== 'auto' });
  // As the trainer does: wasm gets the project's filter-gradient and segment-sum kernels.
  if (loaded.candidate === 'wasm') registerWasmTrainingKernels(loaded.tf);
  const tf = loaded.tf;
  const rssStart = process.memoryUsage().rss;

  // Fresh networks at the reference sizes (xavier 0.02); distinct seeds as the reference's global RNG gives
  // every network different draws.
  const networks: SemiCutNetworks = {
    netG: createResnetGenerator(tf, { ngf: 64 }, { init: { seed: 1 } }),
    netD: createPatchDiscriminator(tf, { inputNc: 3, ndf: 64 }, { init: { seed: 101 } }),
    netDp: createPatchDiscriminator(tf, { inputNc: 6, ndf: 64 }, { init: { seed: 201 } }),
    netF: createPatchSampleF(tf, { nc: 256, seed: 301 }),
    netFs: createPatchSampleF(tf, { nc: 256, seed: 401 }),
  };
  const checkpointing = args.checkpointing === true;
  networks.netG.gradientCheckpointing = checkpointing;
  const timer = args.profile ? instrument(tf, networks) : undefined;
  const model = createSemiCutModel(timer?.tf ?? tf, networks);
  const s = args.size;
  const batch: SemiCutBatch = { x: imageTensor(tf, s, 0), y: imageTensor(tf, s, 1), xP: imageTensor(tf, s, 2), yP: imageTensor(tf, s, 3) };
  try {
    const t0 = performance.now();
    model.dataDependentInit(batch);
    const initMs = performance.now() - t0;
    const warm: number[] = [];
    for (let i = 0; i < args.warmup; i++) {
      const t = performance.now();
      model.optimizeParameters(batch);
      warm.push(performance.now() - t);
    }
    if (timer) timer.watchOptimizers(model);
    const tensorsBefore = tf.memory().numTensors;
    const times: number[] = [];
    const cpu: number[] = [];
    let losses: { G?: number; D?: number } = {};
    for (let i = 0; i < args.steps; i++) {
      timer?.beginStep();
      const c = process.cpuUsage();
      const t = performance.now();
      losses = model.optimizeParameters(batch);
      times.push(performance.now() - t);
      const used = process.cpuUsage(c);
      cpu.push((used.user + used.system) / 1000);
      timer?.endStep();
    }
    const tensorsAfter = tf.memory().numTensors;
    const st = stats(times);
    const result: CaseResult = {
      size: s,
      backend: loaded.backend,
      backendDetail: describeBackend(loaded),
      gradientCheckpointing: checkpointing,
      steps: times.length,
      warmupSteps: warm.length,
      firstStepMs: warm.length > 0 ? round(warm[0] as number) : null,
      stepMedianMs: round(st.median),
      stepMeanMs: round(st.mean),
      stepMinMs: round(st.min),
      stepMaxMs: round(st.max),
      // CPU time of the whole process (all threads) per step: steadier than wall time on a shared machine.
      stepCpuMedianMs: round(stats(cpu).median),
      dataDependentInitMs: round(initMs),
      numTensorsBefore: tensorsBefore,
      numTensorsAfter: tensorsAfter,
      leakFree: tensorsBefore === tensorsAfter,
      lossG: Number((losses.G ?? Number.NaN).toPrecision(6)),
      lossD: Number((losses.D ?? Number.NaN).toPrecision(6)),
      rssStartMb: round(rssStart / 2 ** 20),
      rssEndMb: round(process.memoryUsage().rss / 2 ** 20),
      peakRssMb: peakRssMb(),
    };
    if (timer) Object.assign(result, timer.report(times.length), await kernelProfile(tf, () => model.optimizeParameters(batch)));
    return result;
  } finally {
    model.dispose();
    tf.dispose([batch.x, batch.y, batch.xP, batch.yP]);
  }
}

/**
 * Timing wrappers for the profile: tfjs-node runs every kernel synchronously, so wall time around a call is
 * that call's compute. The model gets a namespace whose `variableGrads` times the recorded function (the
 * forward, losses included) apart from the whole call (forward + backward); the networks' methods and the
 * optimisers' `applyGradients` are wrapped on the instances. Phases follow optimizeParameters' order: the
 * untaped forward, then three `variableGrads` calls (D, D_p, G).
 */
function instrument(tf: Tf, networks: SemiCutNetworks) {
  const acc = new Map<string, number>();
  const add = (key: string, ms: number): void => {
    acc.set(key, (acc.get(key) ?? 0) + ms);
  };
  const phases = ['D', 'Dp', 'G'] as const;
  let phase = 'forwardForD';
  let tapeIndex = 0;
  let measuring = false;
  let depth = 0;
  const timed =
    <A extends unknown[], R>(key: () => string, f: (...a: A) => R) =>
    (...a: A): R => {
      if (!measuring || depth > 0) return f(...a);
      depth++;
      const t = performance.now();
      try {
        return f(...a);
      } finally {
        depth--;
        add(key(), performance.now() - t);
      }
    };
  const variableGrads = (f: () => Scalar, varList?: Variable[]) => {
    if (!measuring) return tf.variableGrads(f, varList);
    phase = phases[tapeIndex] ?? `tape${tapeIndex}`;
    tapeIndex++;
    let forwardMs = 0;
    const t = performance.now();
    const out = tf.variableGrads(() => {
      const t1 = performance.now();
      const loss = f();
      forwardMs = performance.now() - t1;
      return loss;
    }, varList);
    const totalMs = performance.now() - t;
    add(`${phase}.forwardMs`, forwardMs);
    add(`${phase}.backwardMs`, totalMs - forwardMs);
    phase = `${phase}.optimizer`;
    return out;
  };
  const wrapped = { ...tf, variableGrads } as unknown as Tf;
  const g = networks.netG as { forward: ResnetGenerator['forward']; encode: ResnetGenerator['encode'] };
  g.forward = timed(() => `${phase}.netG.forwardMs`, networks.netG.forward.bind(networks.netG));
  g.encode = timed(() => `${phase}.netG.encodeMs`, networks.netG.encode.bind(networks.netG));
  for (const [name, d] of [
    ['netD', networks.netD],
    ['netDp', networks.netDp],
  ] as const) {
    (d as { forward: PatchDiscriminator['forward'] }).forward = timed(() => `${phase}.${name}.forwardMs`, d.forward.bind(d));
  }
  for (const [name, f] of [
    ['netF', networks.netF],
    ['netFs', networks.netFs],
  ] as const) {
    (f as { sample: PatchSampleF['sample'] }).sample = timed(() => `${phase}.${name}.sampleMs`, f.sample.bind(f));
  }
  let stepMs = 0;
  let stepStart = 0;
  return {
    tf: wrapped,
    watchOptimizers(model: SemiCutModel): void {
      for (const [name, o] of Object.entries(model.optimizers)) {
        if (o !== undefined) o.applyGradients = timed(() => `adam.${name}Ms`, o.applyGradients.bind(o));
      }
    },
    beginStep(): void {
      measuring = true;
      phase = 'forwardForD';
      tapeIndex = 0;
      stepStart = performance.now();
    },
    endStep(): void {
      stepMs += performance.now() - stepStart;
      measuring = false;
    },
    report(steps: number): CaseResult {
      const out: CaseResult = {};
      let accounted = 0;
      for (const [key, ms] of [...acc.entries()].sort(([a], [b]) => a.localeCompare(b))) {
        out[`profile.${key}`] = round(ms / steps);
        // Totals: the untaped forward's networks, each tape's forward and backward, the optimisers.
        if (key.startsWith('forwardForD.') || /^(D|Dp|G)\.(forward|backward)Ms$/.test(key) || key.startsWith('adam.')) accounted += ms;
      }
      out['profile.stepMs'] = round(stepMs / steps);
      out['profile.otherMs'] = round((stepMs - accounted) / steps);
      return out;
    },
  };
}

/**
 * tf.profile of one more step: kernel time by kernel name (top twelve) and in all, and the step's peak bytes.
 * Ops that tfjs-core builds with customGrad (fused conv2d, and every customGrad in i2i-core, listed as
 * "unnamed scope") appear both as a scope and as the kernels inside it; only the kernels are counted.
 */
async function kernelProfile(tf: Tf, step: () => unknown): Promise<CaseResult> {
  const info = await tf.profile(() => {
    step();
  });
  const byName = new Map<string, { ms: number; calls: number }>();
  let total = 0;
  let kernels = 0;
  for (const k of info.kernels) {
    if (k.name.endsWith('__op') || k.name === 'unnamed scope') continue;
    const ms = typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0;
    const e = byName.get(k.name) ?? { ms: 0, calls: 0 };
    e.ms += ms;
    e.calls += 1;
    byName.set(k.name, e);
    total += ms;
    kernels += 1;
  }
  const out: CaseResult = {
    'kernels.count': kernels,
    'kernels.totalMs': round(total),
    'kernels.peakMb': round(info.peakBytes / 2 ** 20),
  };
  for (const [name, e] of [...byName.entries()].sort((a, b) => b[1].ms - a[1].ms).slice(0, 12)) {
    out[`kernels.${name}`] = `${round(e.ms)} ms / ${e.calls} calls`;
  }
  return out;
}
