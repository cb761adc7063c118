/**
 * Evidence that semi_cut training learns (issue 4): a small model trained from the reference init on a synthetic
 * photo → anime task (tools/test-utils synthetic-domains: textured soft-edged scenes → the same scenes in flat
 * palette colours with ink outlines) moves its translations of held-out photos towards the anime targets.
 *
 * Statistic: the sliced Wasserstein-1 distance (32 fixed directions in RGB, [-1, 1] units) between the pooled
 * pixel colours of G(photo) over 16 held-out scenes and those of their anime targets: 0 when the output uses the
 * targets' colours in the targets' proportions. Measured at 32 px, ngf 16, ndf 64, netF nc 256, every loss
 * option at the reference default (SEMI_CUT_DEFAULTS, lr 2e-4), tfjs-node, 2 cores (tools/learning-check):
 *
 *   untrained G, 5 init seeds                    0.5126 … 0.5161  (spread 0.0035: a near-constant grey output)
 *   the held-out photos themselves                0.2119
 *   30 iterations, anime targets, seeds 2, 3, 4   0.414, 0.432, 0.431  (drops 0.099, 0.081, 0.081)
 *   30 iterations, photo targets (control)        0.446, 0.423, 0.414
 *   the same before 5da56db (other IN gradient)   anime 0.392, 0.382, 0.362; control 0.416, 0.432, 0.424
 *
 * The test asserts a drop of at least 0.05 below the best of 4 untrained seeds: 14× their spread, so no untrained
 * generator (nor one whose steps change nothing: a run at lr → 0 stays at its seed's untrained value) reaches it,
 * and below each of the six drops measured (3 seeds × 2 code versions: 0.081 … 0.152), so it does not hang on one
 * lucky seed. A run is deterministic for a given code version, but GAN training amplifies float rounding, so any
 * numerical change in the training code moves these values (5da56db's closed-form InstanceNorm gradient moved
 * seed 2 from 0.392 to 0.414): if the test fails after such a change, re-measure several seeds before touching the
 * threshold. What it shows is limited: the photo-target control drops about as much, i.e. the output has left the
 * untrained grey for the scenes' colours, which is learning, but not yet anything anime-specific. The reference
 * init (xavier gain 0.02) and lr 2e-4 are sized for ~1.8M iterations: over a few hundred the output contrast is
 * still growing and the batch-1 GAN terms make every statistic oscillate.
 * tools/learning-check runs the long version (hundreds of iterations, anime vs photo-target control, four
 * statistics, sample sheets) and its README records the measured curves.
 *
 * Long mode: with SCENIMEFY_LEARNING_CHECK_OUT=<dir> set, the suite test is skipped and the long run writes
 * curve.ndjson, curve.md and sample sheets to <dir> (see tools/learning-check/README.md).
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';

import { availableBackends, imageToTensor, loadTf, tensorToImage, writeImage } from '@scenimefy/io';
import type { RgbImage } from '@scenimefy/io';
import { SYNTHETIC_INK, SYNTHETIC_PALETTE, seededUnitRows, syntheticPair, syntheticSceneSeed } from '@scenimefy/test-utils';
import type { SyntheticPair } from '@scenimefy/test-utils';
import type { Tensor4D } from '@tensorflow/tfjs-core';

import type { Tf } from '../layers/tf';
import { createPatchDiscriminator } from '../networks/discriminator';
import { createResnetGenerator } from '../networks/generator';
import type { ResnetGenerator } from '../networks/generator';
import { createPatchSampleF } from '../networks/patch-sample';
import { createSemiCutModel } from './semi-cut';
import type { SemiCutBatch, SemiCutLosses } from './semi-cut';

/** Dataset seed of the held-out scenes; training scenes come from the run's own seed. */
const EVAL_DATASET_SEED = 9999;
const EVAL_SCENES = 16;

interface RunConfig {
  readonly size: number;
  readonly ngf: number;
  readonly ndf: number;
  readonly netFNc: number;
  readonly iterations: number;
  /** Training seed: network init and the training scenes. */
  readonly seed: number;
  /** 'photo' is the control: the anime folders are replaced by photos of the same scenes. */
  readonly targets: 'anime' | 'photo';
  /** Evaluate every this many iterations (and at 0 and the end). */
  readonly evalEvery: number;
}

interface TranslationStats {
  /** Sliced W1 between the pooled colours of G(photo) and of the anime targets. */
  readonly colourSW: number;
  /** Mean |G(photo) − anime target|. */
  readonly pairedMae: number;
  /** Mean luminance on the targets' non-ink pixels minus on their ink pixels (target 0.96, photo ≈ −0.04). */
  readonly inkContrast: number;
  /** Mean RGB distance of each output pixel to the nearest palette or ink colour (target 0). */
  readonly paletteDistance: number;
}

interface CurvePoint {
  readonly iteration: number;
  readonly stats: TranslationStats;
  readonly losses?: SemiCutLosses;
}

const SW_DIRECTIONS = seededUnitRows(7, 32, 3);

function sortedProjections(images: readonly Float32Array[], plane: number): Float64Array[] {
  const out: Float64Array[] = [];
  for (let d = 0; d < SW_DIRECTIONS.length / 3; d++) {
    const [a, b, c] = [SW_DIRECTIONS[3 * d]!, SW_DIRECTIONS[3 * d + 1]!, SW_DIRECTIONS[3 * d + 2]!];
    const v = new Float64Array(images.length * plane);
    images.forEach((img, k) => {
      for (let i = 0; i < plane; i++) v[k * plane + i] = a * img[i]! + b * img[plane + i]! + c * img[2 * plane + i]!;
    });
    out.push(v.sort());
  }
  return out;
}

const colourOf = (rgb: readonly number[]): Float32Array => imageToTensor({ width: 1, height: 1, data: Uint8Array.from(rgb) }).data;

/** The statistics of `outputs` (one [1,3,S,S] array per eval pair) against the pairs' anime targets. */
function translationStats(outputs: readonly Float32Array[], pairs: readonly SyntheticPair[]): TranslationStats {
  const size = pairs[0]!.scene.size;
  const plane = size * size;
  const targets = pairs.map((p) => imageToTensor(p.anime).data);
  const po = sortedProjections(outputs, plane);
  const pt = sortedProjections(targets, plane);
  let sw = 0;
  po.forEach((v, d) => {
    const w = pt[d]!;
    for (let i = 0; i < v.length; i++) sw += Math.abs(v[i]! - w[i]!);
  });
  const ink = colourOf([...SYNTHETIC_INK]);
  const palette = [...SYNTHETIC_PALETTE, SYNTHETIC_INK].map((c) => colourOf([...c]));
  let mae = 0;
  let inkLum = 0;
  let inkN = 0;
  let restLum = 0;
  let restN = 0;
  let pal = 0;
  outputs.forEach((o, k) => {
    const y = targets[k]!;
    for (let i = 0; i < 3 * plane; i++) mae += Math.abs(o[i]! - y[i]!);
    for (let i = 0; i < plane; i++) {
      const lum = (o[i]! + o[plane + i]! + o[2 * plane + i]!) / 3;
      if (y[i] === ink[0] && y[plane + i] === ink[1] && y[2 * plane + i] === ink[2]) {
        inkLum += lum;
        inkN++;
      } else {
        restLum += lum;
        restN++;
      }
      let best = Infinity;
      for (const c of palette) best = Math.min(best, Math.hypot(o[i]! - c[0]!, o[plane + i]! - c[1]!, o[2 * plane + i]! - c[2]!));
      pal += best;
    }
  });
  const pixels = outputs.length * plane;
  return {
    colourSW: sw / (po.length * pixels),
    pairedMae: mae / (3 * pixels),
    inkContrast: restLum / restN - inkLum / inkN,
    paletteDistance: pal / pixels,
  };
}

function evalPairs(size: number): SyntheticPair[] {
  return Array.from({ length: EVAL_SCENES }, (_, k) => syntheticPair(syntheticSceneSeed(EVAL_DATASET_SEED, 2, k), size));
}

function imageTensor(tf: Tf, img: RgbImage): Tensor4D {
  const t = imageToTensor(img);
  return tf.tensor4d(t.data, t.shape);
}

function translations(tf: Tf, netG: ResnetGenerator, pairs: readonly SyntheticPair[]): Float32Array[] {
  return pairs.map((p) => {
    const y = tf.tidy(() => netG.forward(imageTensor(tf, p.photo)));
    const data = y.dataSync() as Float32Array;
    y.dispose();
    return data;
  });
}

/** Iteration `k`'s batch: fresh scenes every iteration, never the held-out ones. */
function trainingBatch(tf: Tf, config: RunConfig, k: number): { batch: SemiCutBatch; scenes: number[] } {
  const photoA = syntheticSceneSeed(config.seed, 0, k);
  const animeB = syntheticSceneSeed(config.seed, 1, k);
  const pairSeed = syntheticSceneSeed(config.seed, 2, k);
  const b = syntheticPair(animeB, config.size);
  const p = syntheticPair(pairSeed, config.size);
  const target = (pair: SyntheticPair): RgbImage => (config.targets === 'anime' ? pair.anime : pair.photo);
  return {
    batch: {
      x: imageTensor(tf, syntheticPair(photoA, config.size).photo),
      y: imageTensor(tf, target(b)),
      xP: imageTensor(tf, p.photo),
      yP: imageTensor(tf, target(p)),
    },
    scenes: [photoA, animeB, pairSeed],
  };
}

function createNetworks(tf: Tf, config: Pick<RunConfig, 'ngf' | 'ndf' | 'netFNc' | 'seed'>) {
  const base = config.seed * 10;
  return {
    netG: createResnetGenerator(tf, { ngf: config.ngf }, { init: { seed: base + 1 } }),
    netD: createPatchDiscriminator(tf, { inputNc: 3, ndf: config.ndf }, { init: { seed: base + 2 } }),
    netDp: createPatchDiscriminator(tf, { inputNc: 6, ndf: config.ndf }, { init: { seed: base + 3 } }),
    netF: createPatchSampleF(tf, { nc: config.netFNc, seed: base + 4 }),
    netFs: createPatchSampleF(tf, { nc: config.netFNc, seed: base + 5 }),
  };
}

interface RunResult {
  readonly curve: CurvePoint[];
  readonly secondsPerIteration: number;
  /** numTensors after iteration 1 and after the last one (the optimisers' state exists from step 1 on). */
  readonly tensorsAfterFirst: number;
  readonly tensorsAfterLast: number;
  readonly trainingScenes: Set<number>;
  readonly finalOutputs: Float32Array[];
}

/** Trains `config` from the reference init with the reference loss options and records the statistics. */
async function trainAndMeasure(
  tf: Tf,
  config: RunConfig,
  pairs: readonly SyntheticPair[],
  onPoint?: (point: CurvePoint, outputs: Float32Array[]) => Promise<void>,
): Promise<RunResult> {
  const model = createSemiCutModel(tf, createNetworks(tf, config));
  const trainingScenes = new Set<number>();
  const curve: CurvePoint[] = [];
  try {
    const record = async (iteration: number, losses?: SemiCutLosses): Promise<Float32Array[]> => {
      const outputs = translations(tf, model.networks.netG, pairs);
      const point = { iteration, stats: translationStats(outputs, pairs), ...(losses ? { losses } : {}) };
      curve.push(point);
      await onPoint?.(point, outputs);
      return outputs;
    };
    let outputs = await record(0);
    // The data-dependent init gets a draw of its own (an index the loop never reaches).
    const init = trainingBatch(tf, config, config.iterations);
    init.scenes.forEach((s) => trainingScenes.add(s));
    model.dataDependentInit(init.batch);
    tf.dispose(Object.values(init.batch));
    let tensorsAfterFirst = 0;
    let trainingMs = 0;
    for (let k = 0; k < config.iterations; k++) {
      const started = Date.now();
      const { batch, scenes } = trainingBatch(tf, config, k);
      scenes.forEach((s) => trainingScenes.add(s));
      const losses = model.optimizeParameters(batch);
      tf.dispose(Object.values(batch));
      trainingMs += Date.now() - started;
      if (k === 0) tensorsAfterFirst = tf.memory().numTensors;
      const done = k + 1;
      if (done % config.evalEvery === 0 || done === config.iterations) outputs = await record(done, losses);
    }
    const secondsPerIteration = trainingMs / 1000 / config.iterations;
    return {
      curve,
      secondsPerIteration,
      tensorsAfterFirst,
      tensorsAfterLast: tf.memory().numTensors,
      trainingScenes,
      finalOutputs: outputs,
    };
  } finally {
    model.dispose();
  }
}

/** The reference init's untrained statistic for `seeds` (forward only). */
function untrainedStats(
  tf: Tf,
  seeds: readonly number[],
  config: Pick<RunConfig, 'ngf'>,
  pairs: readonly SyntheticPair[],
): TranslationStats[] {
  return seeds.map((seed) => {
    const netG = createResnetGenerator(tf, { ngf: config.ngf }, { init: { seed: seed * 10 + 1 } });
    try {
      return translationStats(translations(tf, netG, pairs), pairs);
    } finally {
      netG.dispose();
    }
  });
}

const SMALL_MODEL = { size: 32, ngf: 16, ndf: 64, netFNc: 256 } as const;
/** The drop of colourSW that the suite test asks for (see the header: ~20× the untrained spread). */
const REQUIRED_SW_DROP = 0.05;

const longOut = process.env.SCENIMEFY_LEARNING_CHECK_OUT;
const hasTfjsNode = availableBackends().some((b) => b.candidate === 'tfjs-node');
// Training backward passes need Conv2DBackpropFilter (not in wasm) and take minutes per step on the cpu backend.
const describeOnNode = hasTfjsNode ? describe : describe.skip;

describeOnNode('semi_cut learns the synthetic photo → anime translation (tfjs-node)', () => {
  let tf: Tf;
  beforeAll(async () => {
    ({ tf } = await loadTf({ prefer: 'tfjs-node', require: true }));
  });

  (longOut === undefined ? it : it.skip)(
    '30 iterations from the reference init move G(photo) colours towards the anime targets beyond any untrained seed',
    async () => {
      const pairs = evalPairs(SMALL_MODEL.size);
      const untrained = untrainedStats(tf, [11, 12, 13, 14], SMALL_MODEL, pairs).map((s) => s.colourSW);
      const spread = Math.max(...untrained) - Math.min(...untrained);
      // The margin must dwarf what init alone can do; if a change of init made untrained seeds differ this much,
      // the statistic would no longer separate learning from chance and the margin would need a new measurement.
      expect(spread).toBeLessThan(REQUIRED_SW_DROP / 10);

      const run = await trainAndMeasure(tf, { ...SMALL_MODEL, iterations: 30, seed: 2, targets: 'anime', evalEvery: 30 }, pairs);
      const before = run.curve[0]!.stats;
      const after = run.curve[run.curve.length - 1]!.stats;
      process.stdout.write(
        `semi_cut learning: colourSW untrained ${untrained.map((v) => v.toFixed(4)).join(' ')}; run seed 2: ` +
          `${before.colourSW.toFixed(4)} → ${after.colourSW.toFixed(4)} after 30 iterations ` +
          `(${run.secondsPerIteration.toFixed(2)} s/iteration); pairedMae ${before.pairedMae.toFixed(4)} → ${after.pairedMae.toFixed(4)}, ` +
          `inkContrast ${before.inkContrast.toFixed(4)} → ${after.inkContrast.toFixed(4)}, ` +
          `paletteDistance ${before.paletteDistance.toFixed(4)} → ${after.paletteDistance.toFixed(4)}\n`,
      );

      // Held-out means held out: no evaluation scene was a training scene.
      const evalSeeds = Array.from({ length: EVAL_SCENES }, (_, k) => syntheticSceneSeed(EVAL_DATASET_SEED, 2, k));
      expect(evalSeeds.filter((s) => run.trainingScenes.has(s))).toEqual([]);
      expect(run.tensorsAfterLast).toBe(run.tensorsAfterFirst);
      for (const point of run.curve.slice(1)) expect(Object.values(point.losses ?? {}).every(Number.isFinite)).toBe(true);
      // The run's own start is an untrained seed too.
      expect(Math.abs(before.colourSW - Math.min(...untrained))).toBeLessThan(REQUIRED_SW_DROP / 5);
      expect(after.colourSW).toBeLessThan(Math.min(...untrained, before.colourSW) - REQUIRED_SW_DROP);
    },
    600_000,
  );

  (longOut === undefined ? it.skip : it)(
    'long run for tools/learning-check (SCENIMEFY_LEARNING_CHECK_OUT)',
    async () => {
      const out = longOut as string;
      const iterations = Number(process.env.SCENIMEFY_LEARNING_CHECK_ITERATIONS ?? 600);
      const evalEvery = Number(process.env.SCENIMEFY_LEARNING_CHECK_EVAL_EVERY ?? 25);
      const seeds = (process.env.SCENIMEFY_LEARNING_CHECK_SEEDS ?? '1').split(',').map(Number);
      const sheetEvery = Number(process.env.SCENIMEFY_LEARNING_CHECK_SHEET_EVERY ?? 200);
      await fsp.mkdir(out, { recursive: true });
      const pairs = evalPairs(SMALL_MODEL.size);
      const size = SMALL_MODEL.size;
      const plane = size * size;
      const baselines = {
        untrained: untrainedStats(tf, [11, 12, 13, 14, 15], SMALL_MODEL, pairs),
        photo: translationStats(
          pairs.map((p) => imageToTensor(p.photo).data),
          pairs,
        ),
        target: translationStats(
          pairs.map((p) => imageToTensor(p.anime).data),
          pairs,
        ),
        grey: translationStats(
          pairs.map(() => new Float32Array(3 * plane)),
          pairs,
        ),
      };
      const log = path.join(out, 'curve.ndjson');
      await fsp.writeFile(log, `${JSON.stringify({ config: { ...SMALL_MODEL, iterations, evalEvery, seeds }, baselines })}\n`);
      // A sheet: rows photo / G(photo) / anime target for the first 8 held-out scenes.
      const sheet = async (name: string, outputs: Float32Array[]): Promise<void> => {
        const n = 8;
        const width = n * size;
        const data = new Uint8Array(width * 3 * size * 3);
        for (let k = 0; k < n; k++) {
          const rows = [pairs[k]!.photo, tensorToImage(outputs[k]!, [1, 3, size, size]), pairs[k]!.anime];
          rows.forEach((img, r) => {
            for (let yy = 0; yy < size; yy++) {
              data.set(img.data.subarray(yy * size * 3, (yy + 1) * size * 3), ((r * size + yy) * width + k * size) * 3);
            }
          });
        }
        await writeImage(path.join(out, `${name}.png`), { width, height: 3 * size, data });
      };
      const runs: Array<{ seed: number; targets: string; curve: CurvePoint[]; secondsPerIteration: number }> = [];
      for (const seed of seeds) {
        for (const targets of ['anime', 'photo'] as const) {
          const tag = `${targets}-seed${seed}`;
          const result = await trainAndMeasure(
            tf,
            { ...SMALL_MODEL, iterations, seed, targets, evalEvery },
            pairs,
            async (point, outputs) => {
              await fsp.appendFile(log, `${JSON.stringify({ run: tag, ...point })}\n`);
              if (point.iteration % sheetEvery === 0 || point.iteration === iterations) await sheet(`${tag}-it${point.iteration}`, outputs);
            },
          );
          runs.push({ seed, targets, curve: result.curve, secondsPerIteration: result.secondsPerIteration });
          expect(result.tensorsAfterLast).toBe(result.tensorsAfterFirst);
        }
      }
      const fmt = (v: number): string => v.toFixed(4);
      const lines = [
        `# semi_cut learning check: ${size} px, ngf ${SMALL_MODEL.ngf}, ndf ${SMALL_MODEL.ndf}, netF nc ${SMALL_MODEL.netFNc}, reference loss options, ${iterations} iterations`,
        '',
        '| baseline | colourSW | pairedMae | inkContrast | paletteDistance |',
        '|---|---|---|---|---|',
        ...Object.entries({ ...baselines, untrained: undefined }).flatMap(([name, s]) =>
          s === undefined
            ? []
            : [`| ${name} | ${fmt(s.colourSW)} | ${fmt(s.pairedMae)} | ${fmt(s.inkContrast)} | ${fmt(s.paletteDistance)} |`],
        ),
        ...baselines.untrained.map(
          (s, i) =>
            `| untrained seed ${11 + i} | ${fmt(s.colourSW)} | ${fmt(s.pairedMae)} | ${fmt(s.inkContrast)} | ${fmt(s.paletteDistance)} |`,
        ),
        '',
      ];
      for (const run of runs) {
        lines.push(`## ${run.targets} targets, seed ${run.seed} (${run.secondsPerIteration.toFixed(2)} s/iteration)`, '');
        lines.push(
          '| iteration | colourSW | pairedMae | inkContrast | paletteDistance | D | D_p | G_GAN | G_GAN_p | HDCE |',
          '|---|---|---|---|---|---|---|---|---|---|',
        );
        for (const p of run.curve) {
          const l = p.losses;
          const loss = (l ? [l.D, l.D_p, l.G_GAN, l.G_GAN_p, l.HDCE].map((v) => v.toFixed(3)) : ['', '', '', '', '']).join(' | ');
          lines.push(
            `| ${p.iteration} | ${fmt(p.stats.colourSW)} | ${fmt(p.stats.pairedMae)} | ${fmt(p.stats.inkContrast)} | ${fmt(p.stats.paletteDistance)} | ${loss} |`,
          );
        }
        lines.push('');
      }
      await fsp.writeFile(path.join(out, 'curve.md'), `${lines.join('\n')}\n`);
      process.stdout.write(`learning check written to ${out}\n`);
    },
    24 * 3600_000,
  );
});
