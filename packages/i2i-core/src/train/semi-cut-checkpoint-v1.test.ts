/**
 * A semi_cut checkpoint folder written by Scenimefy.js 0.1 (scenimefy-checkpoint v1: no model, no optimiser
 * records) still loads: same networks, Adam states and training state as the v2 folder it is made from.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';

import { checkpointContractV1, loadTf, readCheckpointManifest, writeContract, type CheckpointManifestV1 } from '@scenimefy/io';
import { makeTempDir, seededUniform, type TempDir } from '@scenimefy/test-utils';
import type { Tensor4D } from '@tensorflow/tfjs-core';

import type { Tf } from '../layers/tf';
import { createPatchDiscriminator } from '../networks/discriminator';
import { createResnetGenerator } from '../networks/generator';
import { createPatchSampleF } from '../networks/patch-sample';
import { createSemiCutModel, type SemiCutModel } from './semi-cut';
import { checkpointFolderFor, latestCheckpoint, loadTrainingCheckpoint, saveTrainingCheckpoint } from './semi-cut-checkpoint';

describe('a v1 semi_cut checkpoint', () => {
  let tf: Tf;
  let tmp: TempDir;
  let model: SemiCutModel;

  beforeAll(async () => {
    ({ tf } = await loadTf({ prefer: 'wasm' }));
    tmp = await makeTempDir('checkpoint-v1');
    model = createSemiCutModel(tf, {
      netG: createResnetGenerator(tf, { ngf: 4 }, { init: { seed: 1 } }),
      netD: createPatchDiscriminator(tf, { inputNc: 3, ndf: 4 }, { init: { seed: 2 } }),
      netDp: createPatchDiscriminator(tf, { inputNc: 6, ndf: 4 }, { init: { seed: 3 } }),
      netF: createPatchSampleF(tf, { nc: 8, seed: 4 }),
      netFs: createPatchSampleF(tf, { nc: 8, seed: 5 }),
    });
    const image = (seed: number): Tensor4D => tf.tensor4d(seededUniform(seed, 3 * 32 * 32), [1, 3, 32, 32]);
    const batch = { x: image(1), y: image(2), xP: image(3), yP: image(4) };
    model.dataDependentInit(batch);
    tf.dispose(Object.values(batch));
  });
  afterAll(async () => {
    model.dispose();
    await tmp.cleanup();
  });

  it('loads as the v2 folder it was made from does', async () => {
    const run = path.join(tmp.dir, 'run');
    const folder = checkpointFolderFor(run, 3);
    const state = { epoch: 1, iteration: 3, epochIter: 3, options: { lr: 0.0002 }, rng: { data: [1, 2] } };
    const v2 = await saveTrainingCheckpoint(folder, model, state, { generatedBy: { name: '@scenimefy/i2i-core', version: '0.1.0' } });
    expect(v2).toMatchObject({ formatVersion: 2, model: 'semi_cut' });
    expect(Object.keys(v2.optimizers ?? {})).toEqual(['G', 'D', 'D_p', 'F', 'F_s']);
    const fromV2 = await loadTrainingCheckpoint(tf, folder);

    // What 0.1 wrote: the same files, checkpoint.json in v1.
    const { model: _model, optimizers: _optimizers, ...rest } = v2;
    const v1: CheckpointManifestV1 = { ...rest, formatVersion: 1, networks: v2.networks as CheckpointManifestV1['networks'] };
    await writeContract(path.join(folder, 'checkpoint.json'), checkpointContractV1, v1);
    expect(JSON.parse(await fsp.readFile(path.join(folder, 'checkpoint.json'), 'utf8')).formatVersion).toBe(1);
    expect(await latestCheckpoint(run)).toBe(folder);
    expect(await readCheckpointManifest(path.join(folder, 'checkpoint.json'))).toEqual({ ...rest, formatVersion: 2, model: 'semi_cut' });

    const fromV1 = await loadTrainingCheckpoint(tf, folder);
    try {
      expect(fromV1.state).toEqual(fromV2.state);
      for (const key of ['G', 'D', 'Dp', 'F', 'Fs'] as const) {
        expect(fromV1.optimizerStates[key]?.step).toBe(fromV2.optimizerStates[key]?.step);
      }
      const a = await fromV2.networks.netG.stateDict();
      const b = await fromV1.networks.netG.stateDict();
      for (const [k, t] of a) expect(Array.from(b.get(k)?.data ?? [])).toEqual(Array.from(t.data));
      expect(fromV1.networks.netFs.rngState()).toEqual(fromV2.networks.netFs.rngState());
    } finally {
      for (const loaded of [fromV1, fromV2]) for (const net of Object.values(loaded.networks)) net.dispose();
    }
  });
});
