import { promises as fsp } from 'node:fs';
import * as path from 'node:path';

import {
  ContractError,
  IntegrityError,
  ModelFormatError,
  UsageError,
  checkpointContract,
  contractIssues,
  loadTf,
  readCheckpointManifest,
  readSafetensors,
  readWeights,
  sha256File,
  writeCheckpointManifest,
  writeSafetensors,
  type CheckpointManifest,
} from '@scenimefy/io';
import { makeTempDir, seededUniform, type TempDir } from '@scenimefy/test-utils';
import type { Tensor, Tensor4D } from '@tensorflow/tfjs-core';

import type { Tf } from '../layers/tf';
import { createPatchDiscriminator } from '../networks/discriminator';
import { createResnetGenerator, loadGeneratorWeights } from '../networks/generator';
import type { Float32TensorData } from '../networks/generator';
import { createPatchSampleF } from '../networks/patch-sample';
import type { AdamState } from './adam';
import {
  checkpointFolderFor,
  checkpointFolderName,
  latestCheckpoint,
  loadTrainingCheckpoint,
  pruneCheckpoints,
  saveTrainingCheckpoint,
  type LoadedTrainingCheckpoint,
  type TrainingCheckpointState,
} from './semi-cut-checkpoint';
import { createSemiCutModel, type SemiCutBatch, type SemiCutModel, type SemiCutNetworks } from './semi-cut';

const META = { generatedBy: { name: '@scenimefy/i2i-core', version: '0.1.0' } };
const SIDE = 32;

function expectSameStateDict(a: Map<string, Float32TensorData>, b: Map<string, Float32TensorData>): void {
  expect([...b.keys()]).toEqual([...a.keys()]);
  for (const [key, t] of a) {
    const u = b.get(key) as Float32TensorData;
    expect(u.shape).toEqual(t.shape);
    expect(
      Buffer.from(u.data.buffer, u.data.byteOffset, u.data.byteLength).equals(
        Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength),
      ),
    ).toBe(true);
  }
}

function expectSameAdamState(a: AdamState, b: AdamState): void {
  expect(b.step).toBe(a.step);
  expectSameStateDict(new Map(a.tensors), new Map(b.tensors));
}

async function stateDicts(n: SemiCutNetworks): Promise<Map<string, Float32TensorData>[]> {
  return Promise.all([n.netG.stateDict(), n.netD.stateDict(), n.netDp.stateDict(), n.netF.stateDict(), n.netFs.stateDict()]);
}

function disposeNetworks(n: SemiCutNetworks): void {
  for (const net of [n.netG, n.netD, n.netDp, n.netF, n.netFs]) net.dispose();
}

describe('training checkpoints', () => {
  let tf: Tf;
  let tmp: TempDir;
  let model: SemiCutModel;
  let batch: SemiCutBatch;
  let run: string;
  let saved: string;
  let manifest: CheckpointManifest;
  const state: TrainingCheckpointState = {
    epoch: 2,
    iteration: 7,
    epochIter: 3,
    options: { lr: 0.0002, nceLayers: [0, 4, 8, 12, 16], dceIdt: true, maxDatasetSize: null, name: 'tiny' },
    rng: { unpaired: { algorithm: 'xoshiro128**', state: [1, 2, 3, 4] }, lossWindow: { count: 2, sums: { G: 1.5 } } },
  };

  /** One seeded pseudo-gradient step per call, so moments and weights are far from their initial values. */
  const randomStep = (which: 'G' | 'D' | 'Dp' | 'F' | 'Fs', seed: number): void => {
    const adam = model.optimizers[which];
    if (adam === undefined) throw new Error(`no optimiser ${which}`);
    const grads = new Map<string, Tensor>();
    let k = 0;
    for (const [key, v] of adam.params) grads.set(key, tf.tensor(seededUniform(seed + 7919 * k++, v.size), v.shape, 'float32'));
    adam.applyGradients(grads);
    tf.dispose([...grads.values()]);
  };

  beforeAll(async () => {
    // Forward passes only: wasm is the fastest backend every install has (any backend gives the same round trip).
    ({ tf } = await loadTf({ prefer: 'wasm' }));
    tmp = await makeTempDir('checkpoint');
    run = path.join(tmp.dir, 'run');
    const networks: SemiCutNetworks = {
      netG: createResnetGenerator(tf, { ngf: 8 }, { init: { seed: 1 } }),
      netD: createPatchDiscriminator(tf, { inputNc: 3, ndf: 8 }, { init: { seed: 2 } }),
      netDp: createPatchDiscriminator(tf, { inputNc: 6, ndf: 8 }, { init: { seed: 3 } }),
      netF: createPatchSampleF(tf, { nc: 16, seed: 4 }),
      netFs: createPatchSampleF(tf, { nc: 16, seed: 5 }),
    };
    model = createSemiCutModel(tf, networks, { options: { numPatches: 32 }, epoch: 2 });
    const image = (seed: number): Tensor4D => tf.tensor4d(seededUniform(seed, 3 * SIDE * SIDE), [1, 3, SIDE, SIDE]);
    batch = { x: image(11), y: image(12), xP: image(13), yP: image(14) };
    model.dataDependentInit(batch);
    // Different step counts per optimiser, so a mixed-up step or moment would show.
    randomStep('G', 101);
    randomStep('G', 102);
    randomStep('D', 103);
    randomStep('Dp', 104);
    randomStep('Dp', 105);
    randomStep('Dp', 106);
    randomStep('F', 107);
    randomStep('Fs', 108);
    randomStep('Fs', 109);
    saved = checkpointFolderFor(run, state.iteration);
    manifest = await saveTrainingCheckpoint(saved, model, state, META);
  });

  afterAll(async () => {
    model.dispose();
    tf.dispose(Object.values(batch));
    await tmp.cleanup();
  });

  const loadAndDispose = async (folder: string): Promise<LoadedTrainingCheckpoint> => {
    const loaded = await loadTrainingCheckpoint(tf, folder);
    disposeNetworks(loaded.networks);
    return loaded;
  };

  /** A copy of the saved checkpoint at `iteration` in another run folder. */
  const copyRun = async (name: string, iterations: number[]): Promise<string> => {
    const other = path.join(tmp.dir, name);
    for (const it of iterations) await fsp.cp(saved, checkpointFolderFor(other, it), { recursive: true });
    return other;
  };

  it('writes the layout: iter-<9 digits>/ with a valid checkpoint.json, prefixed weights and PyTorch-layout Adam moments', async () => {
    expect(path.basename(saved)).toBe('iter-000000007');
    expect(checkpointFolderName(1234567890)).toBe('iter-1234567890');
    expect((await fsp.readdir(saved)).sort()).toEqual(['checkpoint.json', 'optimizer.safetensors', 'rng.json', 'weights.safetensors']);
    expect(contractIssues(JSON.parse(await fsp.readFile(path.join(saved, 'checkpoint.json'), 'utf8')), checkpointContract)).toEqual([]);
    expect(await readCheckpointManifest(path.join(saved, 'checkpoint.json'))).toEqual(manifest);
    expect(manifest.networks).toEqual({
      netG: { architecture: 'resnet_9blocks', ngf: 8, inputNc: 3, outputNc: 3, antialias: true, antialiasUp: true, norm: 'instance' },
      netD: { architecture: 'basic', ndf: 8, nLayers: 3, inputNc: 3, norm: 'instance', antialias: true },
      netD_p: { architecture: 'basic', ndf: 8, nLayers: 3, inputNc: 6, norm: 'instance', antialias: true },
      netF: { architecture: 'mlp_sample', nc: 16, layers: [0, 4, 8, 12, 16], inputChannels: [3, 16, 32, 32, 32] },
      netF_s: { architecture: 'mlp_sample', nc: 16, layers: [0, 4, 8, 12, 16], inputChannels: [3, 16, 32, 32, 32] },
    });
    const weightsFile = path.join(saved, 'weights.safetensors');
    expect(manifest.weights).toEqual({
      file: 'weights.safetensors',
      sha256: await sha256File(weightsFile),
      size: (await fsp.stat(weightsFile)).size,
    });
    expect(manifest.training).toEqual({
      epoch: 2,
      iteration: 7,
      epochIter: 3,
      optimizerFile: 'optimizer.safetensors',
      rngFile: 'rng.json',
      options: state.options,
    });

    const weights = (await readSafetensors(weightsFile)).tensors;
    const prefixes = new Set([...weights.keys()].map((k) => k.slice(0, k.indexOf('.'))));
    expect(prefixes).toEqual(new Set(['netG', 'netD', 'netD_p', 'netF', 'netF_s']));
    expect(weights.get('netG.model.1.weight')?.shape).toEqual([8, 3, 7, 7]);
    expect(weights.get('netD_p.model.0.weight')?.shape).toEqual([8, 6, 4, 4]);
    expect(weights.get('netF_s.mlp_1.0.weight')?.shape).toEqual([16, 16]);
    // The generator loaders take the file as it is.
    const g = loadGeneratorWeights((await readWeights(saved)).tensors, { prefix: 'netG.' });
    expectSameStateDict(new Map(g.tensors), new Map([...(await model.networks.netG.stateDict())].filter(([k]) => !k.endsWith('.filt'))));

    const optimizer = await readSafetensors(path.join(saved, 'optimizer.safetensors'));
    expect(optimizer.metadata).toMatchObject({
      'G.step': '2',
      'D.step': '1',
      'D_p.step': '3',
      'F.step': '1',
      'F_s.step': '2',
      'G.lr': '0.0002',
      'G.betas': '0.5,0.999',
    });
    expect(optimizer.tensors.get('G.model.1.weight.exp_avg')?.shape).toEqual([8, 3, 7, 7]);
    expect(optimizer.tensors.get('D_p.model.0.weight.exp_avg_sq')?.shape).toEqual([8, 6, 4, 4]);
    expect(optimizer.tensors.get('F_s.mlp_0.0.weight.exp_avg')?.shape).toEqual([16, 3]);
    expect(JSON.parse(await fsp.readFile(path.join(saved, 'rng.json'), 'utf8'))).toEqual({
      rng: state.rng,
      patchIds: { netF: { seed: 4, state: model.networks.netF.rngState() }, netF_s: { seed: 5, state: model.networks.netFs.rngState() } },
    });
  });

  it('loads back identical networks, Adam states and training state', async () => {
    const before = tf.memory().numTensors;
    const loaded = await loadTrainingCheckpoint(tf, saved);
    try {
      expect(loaded.manifest).toEqual(manifest);
      expect(loaded.state).toEqual(state);
      const want = await stateDicts(model.networks);
      const got = await stateDicts(loaded.networks);
      want.forEach((w, i) => expectSameStateDict(w, got[i] as Map<string, Float32TensorData>));
      for (const key of ['G', 'D', 'Dp', 'F', 'Fs'] as const) {
        const adam = model.optimizers[key];
        const loadedState = loaded.optimizerStates[key];
        if (adam === undefined || loadedState === undefined) throw new Error(`optimiser ${key} missing`);
        expectSameAdamState(await adam.state(), loadedState);
      }
      for (const name of ['netF', 'netFs'] as const) {
        expect(loaded.networks[name].seed).toBe(model.networks[name].seed);
        expect(loaded.networks[name].rngState()).toEqual(model.networks[name].rngState());
      }
      // The loaded generator computes what the saved one does (same weights, same layout).
      const a = model.networks.netG.forward(batch.x);
      const b = loaded.networks.netG.forward(batch.x);
      expect(Array.from(b.dataSync())).toEqual(Array.from(a.dataSync()));
      tf.dispose([a, b]);
    } finally {
      disposeNetworks(loaded.networks);
    }
    expect(tf.memory().numTensors).toBe(before);
  });

  it('load → save gives byte-identical weights and optimizer files', async () => {
    const loaded = await loadTrainingCheckpoint(tf, saved);
    const again = createSemiCutModel(tf, loaded.networks, { options: { numPatches: 32 }, epoch: loaded.state.epoch });
    try {
      again.optimizers.G.loadState(loaded.optimizerStates.G);
      again.optimizers.D.loadState(loaded.optimizerStates.D);
      again.optimizers.Dp.loadState(loaded.optimizerStates.Dp);
      again.dataDependentInit(batch); // creates the F / F_s optimisers over the loaded heads
      again.optimizers.F?.loadState(loaded.optimizerStates.F as AdamState);
      again.optimizers.Fs?.loadState(loaded.optimizerStates.Fs as AdamState);
      const folder = checkpointFolderFor(path.join(tmp.dir, 'resaved'), loaded.state.iteration);
      const m = await saveTrainingCheckpoint(folder, again, loaded.state, META);
      for (const file of ['weights.safetensors', 'optimizer.safetensors']) {
        expect((await fsp.readFile(path.join(folder, file))).equals(await fsp.readFile(path.join(saved, file)))).toBe(true);
      }
      expect(m.weights).toEqual(manifest.weights);
    } finally {
      again.dispose();
    }
  });

  it('refuses a truncated or altered weights file, naming it, and latestCheckpoint passes over it', async () => {
    const other = await copyRun('truncated', [6, 7]);
    const folder = checkpointFolderFor(other, 7);
    const weights = path.join(folder, 'weights.safetensors');
    const bytes = await fsp.readFile(weights);
    await fsp.writeFile(weights, bytes.subarray(0, bytes.length - 100));
    await expect(loadTrainingCheckpoint(tf, folder)).rejects.toThrow(IntegrityError);
    await expect(loadTrainingCheckpoint(tf, folder)).rejects.toThrow(
      `${weights}: has ${bytes.length - 100} bytes, checkpoint.json records ${bytes.length} (truncated or replaced)`,
    );
    expect(await latestCheckpoint(other)).toBe(checkpointFolderFor(other, 6));

    const flipped = Buffer.from(bytes);
    flipped[flipped.length - 1] = (flipped[flipped.length - 1] as number) ^ 0x01;
    await fsp.writeFile(weights, flipped);
    await expect(loadTrainingCheckpoint(tf, folder)).rejects.toThrow(
      `${weights}: sha256 is ${await sha256File(weights)}, checkpoint.json records ${manifest.weights.sha256}`,
    );
  });

  it('refuses weights that do not fit the manifest and a missing or broken optimizer / rng file, naming the file', async () => {
    const other = await copyRun('broken', [7]);
    const folder = checkpointFolderFor(other, 7);
    const weights = path.join(folder, 'weights.safetensors');
    // A consistent manifest over weights that lack a generator tensor: the architecture check names it.
    const tensors = (await readSafetensors(weights)).tensors;
    tensors.delete('netG.model.4.bias');
    await writeSafetensors(weights, tensors);
    await writeCheckpointManifest(path.join(folder, 'checkpoint.json'), {
      ...manifest,
      weights: { file: 'weights.safetensors', sha256: await sha256File(weights), size: (await fsp.stat(weights)).size },
    });
    const error = await loadTrainingCheckpoint(tf, folder).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ModelFormatError);
    expect((error as Error).message).toMatch(
      new RegExp(`^${weights.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: .*missing keys netG\\.model\\.4\\.bias`),
    );

    await fsp.cp(path.join(saved, 'weights.safetensors'), weights);
    await fsp.cp(path.join(saved, 'checkpoint.json'), path.join(folder, 'checkpoint.json'));
    const optimizer = path.join(folder, 'optimizer.safetensors');
    const optimizerBytes = await fsp.readFile(optimizer);
    await fsp.writeFile(optimizer, optimizerBytes.subarray(0, optimizerBytes.length - 4));
    await expect(loadTrainingCheckpoint(tf, folder)).rejects.toThrow(
      new RegExp(`^${optimizer.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: invalid safetensors file`),
    );
    await fsp.writeFile(optimizer, optimizerBytes);

    const rng = path.join(folder, 'rng.json');
    await fsp.writeFile(rng, '{"rng": [1, 2]}');
    await expect(loadTrainingCheckpoint(tf, folder)).rejects.toThrow(
      new ContractError('expected an object', { file: rng, field: 'rng' }).message,
    );
    await fsp.rm(rng);
    await expect(loadTrainingCheckpoint(tf, folder)).rejects.toThrow(ContractError);
    expect(await latestCheckpoint(other)).toBeUndefined();
  });

  it('ignores a crashed save (a stale temp folder, a half-removed folder) and cleans up after it', async () => {
    const other = await copyRun('crashed', [7]);
    const dir = path.join(other, 'checkpoints');
    // A save of iteration 9 killed mid-write: everything but the tail of the weights, under the temp name.
    const stale = path.join(dir, '.iter-000000009.tmp-99999-0123456789ab');
    await fsp.cp(saved, stale, { recursive: true });
    const bytes = await fsp.readFile(path.join(stale, 'weights.safetensors'));
    await fsp.writeFile(path.join(stale, 'weights.safetensors'), bytes.subarray(0, bytes.length >> 1));
    // A final-named folder some other tool half removed: checkpoint.json left, weights gone.
    await fsp.cp(saved, path.join(dir, 'iter-000000008'), { recursive: true });
    await fsp.rm(path.join(dir, 'iter-000000008', 'weights.safetensors'));

    expect(await latestCheckpoint(other)).toBe(checkpointFolderFor(other, 7));
    expect((await loadAndDispose(checkpointFolderFor(other, 7))).state).toEqual(state);
    expect(await fsp.readdir(dir)).toContain('.iter-000000009.tmp-99999-0123456789ab'); // latestCheckpoint only reads

    expect(await pruneCheckpoints(other, 5)).toEqual([]);
    // The temp folder is gone; the incomplete final-named folder is not a checkpoint, so it is left for a person to look at.
    expect((await fsp.readdir(dir)).sort()).toEqual(['iter-000000007', 'iter-000000008']);
  });

  it('re-saving an iteration replaces it; a crash between the two renames still leaves it findable and it is put back', async () => {
    const other = await copyRun('resave', [7]);
    const folder = checkpointFolderFor(other, 7);
    const changed = { ...state, epochIter: 4, rng: { other: true } };
    await saveTrainingCheckpoint(folder, model, changed, META);
    expect((await loadAndDispose(folder)).state).toEqual(changed);
    expect(await fsp.readdir(path.join(other, 'checkpoints'))).toEqual(['iter-000000007']);

    // The moment after the old folder was moved aside and before the new one took its name.
    const aside = path.join(other, 'checkpoints', '.iter-000000007.old-99999-0123456789ab');
    await fsp.rename(folder, aside);
    expect(await latestCheckpoint(other)).toBe(aside);
    expect((await loadAndDispose(aside)).state).toEqual(changed);
    await saveTrainingCheckpoint(checkpointFolderFor(other, 8), model, { ...state, iteration: 8 }, META);
    expect((await fsp.readdir(path.join(other, 'checkpoints'))).sort()).toEqual(['iter-000000007', 'iter-000000008']);
    expect((await loadAndDispose(folder)).state).toEqual(changed);
  });

  it('pruneCheckpoints keeps the newest k complete checkpoints and the protected ones, oldest deleted first', async () => {
    const other = await copyRun('prune', [1, 2, 3, 4, 5]);
    const dir = path.join(other, 'checkpoints');
    // Not a complete checkpoint (e.g. a newer format): never deleted.
    await fsp.mkdir(path.join(dir, 'iter-000000000'));
    await fsp.writeFile(path.join(dir, 'iter-000000000', 'checkpoint.json'), '{"format": "scenimefy-checkpoint", "formatVersion": 2}');

    expect(await pruneCheckpoints(other, 2, ['checkpoints/iter-000000001', checkpointFolderFor(other, 3)])).toEqual([
      checkpointFolderFor(other, 2),
    ]);
    expect((await fsp.readdir(dir)).sort()).toEqual([
      'iter-000000000',
      'iter-000000001',
      'iter-000000003',
      'iter-000000004',
      'iter-000000005',
    ]);
    expect(await pruneCheckpoints(other, 1, ['iter-000000004'])).toEqual([checkpointFolderFor(other, 1), checkpointFolderFor(other, 3)]);
    expect((await fsp.readdir(dir)).sort()).toEqual(['iter-000000000', 'iter-000000004', 'iter-000000005']);
    expect(await latestCheckpoint(other)).toBe(checkpointFolderFor(other, 5));
    await expect(pruneCheckpoints(other, -1)).rejects.toThrow(UsageError);
    expect(await pruneCheckpoints(path.join(tmp.dir, 'no-such-run'), 1)).toEqual([]);
    expect(await latestCheckpoint(path.join(tmp.dir, 'no-such-run'))).toBeUndefined();
  });

  it('refuses to write into a run folder or over a folder that is not a checkpoint, and non-JSON state', async () => {
    const other = path.join(tmp.dir, 'refuse');
    await fsp.mkdir(other, { recursive: true });
    await fsp.writeFile(path.join(other, 'run.json'), '{}');
    await expect(saveTrainingCheckpoint(other, model, state, META)).rejects.toThrow(UsageError);
    const plain = path.join(tmp.dir, 'plain');
    await fsp.mkdir(plain);
    await fsp.writeFile(path.join(plain, 'notes.txt'), 'mine');
    await expect(saveTrainingCheckpoint(plain, model, state, META)).rejects.toThrow(`${plain} exists and holds no checkpoint.json`);
    const folder = checkpointFolderFor(other, 1);
    await expect(saveTrainingCheckpoint(folder, model, { ...state, rng: { ids: new Int32Array(2) } }, META)).rejects.toThrow(
      'rng.ids (a Int32Array object) is not JSON-safe',
    );
    await expect(saveTrainingCheckpoint(folder, model, { ...state, options: { lr: Number.NaN } }, META)).rejects.toThrow(
      'options.lr (NaN) is not JSON-safe',
    );
    // Nothing left behind by the refused saves.
    expect(await fsp.readdir(other)).toEqual(['run.json']);
  });
});
