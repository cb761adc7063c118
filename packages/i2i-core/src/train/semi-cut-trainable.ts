/**
 * semi_cut as a TrainableModel: the SemiCutModel's step, its five networks and optimisers, its loss names, report
 * charts and progress line, and its sample grid (real_A | fake_B | real_B | idt_B, then the pseudo pair). The
 * arithmetic stays in semi-cut.ts; this only presents it to the run loop.
 */
import type { Tensor4D } from '@tensorflow/tfjs-core';

import type { Tf } from '../layers/tf';
import type { ReportChartGroup } from './report';
import type { SampleGridImage, SampleGridRow } from './sample-grid';
import type { SemiCutBatch, SemiCutLosses, SemiCutModel } from './semi-cut';
import { SEMI_CUT_MODEL_NAME, semiCutSaveState, semiCutTrainableNetworks, semiCutTrainableOptimizers } from './semi-cut-checkpoint';
import type { ModelDescription, TrainableModel } from './trainable-model';

/** The unpaired discriminator's terms: D itself and any `D_…` that is not D_p's. */
const isPairKey = (key: string): boolean => key === 'D_p' || key.startsWith('D_p_');

/** semi_cut's losses (in the order the reference prints them), charts and progress line. */
export const SEMI_CUT_DESCRIPTION: ModelDescription = Object.freeze({
  name: SEMI_CUT_MODEL_NAME,
  lossNames: Object.freeze([
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
  ]),
  progressLosses: Object.freeze(['G', 'D', 'D_p', 'NCE_s', 'SRC', 'HDCE']),
  chartGroups: Object.freeze<ReportChartGroup[]>([
    {
      id: 'D',
      title: 'Discriminator D (unpaired)',
      losses: ['D', 'D_real', 'D_fake'],
      matches: (k) => k.startsWith('D_') && !isPairKey(k),
    },
    { id: 'D_p', title: 'Discriminator D_p (pseudo pairs)', losses: ['D_p', 'D_p_real', 'D_p_fake'], matches: isPairKey },
    {
      id: 'G',
      title: 'Generator G and its terms',
      losses: ['G', 'G_GAN', 'G_GAN_p', 'NCE_s', 'SRC', 'HDCE', 'HDCE_Y', 'HDCE_both'],
      rest: true,
    },
  ]),
});

function lossRecord(losses: SemiCutLosses): Record<string, number> {
  return Object.fromEntries(Object.entries(losses).filter(([, v]) => typeof v === 'number')) as Record<string, number>;
}

/** One grid row per sample set of the batch's first image: real_A | fake_B | real_B | idt_B, then real_A_p | fake_B_p | real_B_p. */
async function sampleRows(tf: Tf, model: SemiCutModel, batch: SemiCutBatch): Promise<SampleGridRow[]> {
  const first = (t: Tensor4D): Tensor4D => tf.slice(t, [0, 0, 0, 0], [1, -1, -1, -1]) as Tensor4D;
  const images = tf.tidy(() => {
    const g = model.networks.netG;
    const x = first(batch.x);
    const y = first(batch.y);
    const xP = first(batch.xP);
    const yP = first(batch.yP);
    return { x, fakeB: g.forward(x), y, idtB: g.forward(y), xP, fakeBP: g.forward(xP), yP };
  });
  try {
    const image = async (caption: string, t: Tensor4D): Promise<SampleGridImage> => ({
      caption,
      data: (await t.data()) as Float32Array,
      shape: t.shape as [1, 3, number, number],
    });
    return [
      {
        label: 'unpaired',
        images: [
          await image('real_A', images.x),
          await image('fake_B', images.fakeB),
          await image('real_B', images.y),
          await image('idt_B', images.idtB),
        ],
      },
      {
        label: 'paired',
        images: [await image('real_A_p', images.xP), await image('fake_B_p', images.fakeBP), await image('real_B_p', images.yP)],
      },
    ];
  } finally {
    tf.dispose(Object.values(images));
  }
}

/** The run loop's view of a SemiCutModel (which it owns: disposing this disposes the model). */
export function semiCutTrainable(tf: Tf, model: SemiCutModel): TrainableModel<SemiCutBatch> {
  return {
    ...SEMI_CUT_DESCRIPTION,
    networks: () => semiCutTrainableNetworks(model),
    optimizers: () => semiCutTrainableOptimizers(model),
    beginEpoch: (epoch, lr) => {
      model.setEpoch(epoch);
      model.setLearningRate(lr);
    },
    step: (batch) => lossRecord(model.optimizeParameters(batch)),
    visuals: (batch) => sampleRows(tf, model, batch),
    saveState: () => semiCutSaveState(model),
    dispose: () => model.dispose(),
  };
}
