import { readFileSync } from 'node:fs';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';

import { contractRejection, makeTempDir, type TempDir } from '@scenimefy/test-utils';

import { checkpointContract, checkpointManifestSchema, type CheckpointManifest, type NetworkConfig } from './checkpoint-manifest';
import { artifactHeader } from './common';
import { readCheckpointManifest, writeCheckpointManifest } from './contract-files';
import { contractIssues, parseContract } from './parse-contract';

const examples = path.join(__dirname, 'examples');
const v1Text = readFileSync(path.join(examples, 'scenimefy-checkpoint-v1.json'), 'utf8');
const example = (): CheckpointManifest =>
  checkpointManifestSchema.parse(JSON.parse(readFileSync(path.join(examples, 'scenimefy-checkpoint-v2.json'), 'utf8')));
const rejection = (value: unknown): string => contractRejection(value, 'checkpoint.json', checkpointContract);

const header = () => artifactHeader(checkpointContract, { name: '@scenimefy/stylegan-finetune', version: '0.1.0' }, '2025-02-01T08:30:00Z');
const weights = { file: 'weights.safetensors', sha256: 'a'.repeat(64), size: 4_400_000 };
const training = { epoch: 1, iteration: 100, optimizerFile: 'optimizer.safetensors', rngFile: 'rng.json' };

/** The StyleGAN2 fixture's networks (../shared/fixtures/reference/stylegan2: size 32, reduced channel table). */
const generator: NetworkConfig = {
  architecture: 'stylegan2_generator',
  size: 32,
  styleDim: 64,
  nMlp: 2,
  channelMultiplier: 1,
  channels: { '4': 64, '8': 48, '16': 40, '32': 32 },
  lrMlp: 0.01,
  blurKernel: [1, 3, 3, 1],
};
const discriminator: NetworkConfig = {
  architecture: 'stylegan2_discriminator',
  size: 32,
  channelMultiplier: 1,
  channels: { '4': 64, '8': 48, '16': 40, '32': 32 },
  blurKernel: [1, 3, 3, 1],
  stddevGroup: 4,
  stddevFeat: 1,
};
const stylegan = (): CheckpointManifest => ({
  ...header(),
  model: 'stylegan2_finetune',
  networks: { g: generator, d: discriminator, g_ema: generator },
  optimizers: {
    g_optim: { algorithm: 'adam', networks: ['g'], lr: 0.0016, betas: [0, 0.99 ** 0.8], eps: 1e-8 },
    d_optim: { algorithm: 'adam', networks: ['d'], lr: 0.002 * (16 / 17), betas: [0, 0.99 ** (16 / 17)], eps: 1e-8 },
  },
  tensorNaming: 'network-prefixed-state-dict',
  weights,
  training,
});

let tmp: TempDir;
beforeEach(async () => {
  tmp = await makeTempDir('checkpoint-v2');
});
afterEach(async () => {
  await tmp.cleanup();
});

describe('scenimefy-checkpoint v2', () => {
  it("round-trips semi_cut's five networks and optimisers, and StyleGAN2's { g, d, g_ema }", async () => {
    const file = path.join(tmp.dir, 'checkpoint.json');
    for (const manifest of [example(), stylegan()]) {
      expect(contractIssues(manifest, checkpointContract)).toEqual([]);
      await writeCheckpointManifest(file, manifest);
      expect(await readCheckpointManifest(file)).toEqual(manifest);
    }
  });

  it("reads a v1 checkpoint.json as v2: the same networks under the same names, a training one as semi_cut's", async () => {
    const upgraded = parseContract(v1Text, 'checkpoint.json', checkpointContract);
    const v1 = JSON.parse(v1Text);
    expect(upgraded).toEqual({ ...v1, formatVersion: 2, model: 'semi_cut' });
    // A generator-only v1 checkpoint (models import) has no model.
    const { training: _t, ...imported } = v1;
    expect(parseContract(JSON.stringify({ ...imported, networks: { netG: v1.networks.netG } }), 'c.json', checkpointContract)).toEqual({
      ...imported,
      formatVersion: 2,
      networks: { netG: v1.networks.netG },
    });
    // v1's own rules still hold for v1 files: its semi_cut wiring is checked before the upgrade.
    const miswired = JSON.parse(v1Text);
    miswired.networks.netD.inputNc = 6;
    expect(() => parseContract(JSON.stringify(miswired), 'checkpoint.json', checkpointContract)).toThrow(
      "checkpoint.json: networks.netD.inputNc: is 6 but netD judges netG's output, which has 3 channels",
    );
    // Read and written back, an old file is v2 on disk.
    const file = path.join(tmp.dir, 'checkpoint.json');
    await fsp.writeFile(file, v1Text);
    await writeCheckpointManifest(file, await readCheckpointManifest(file));
    expect(JSON.parse(await fsp.readFile(file, 'utf8')).formatVersion).toBe(2);
  });

  it('leaves the wiring between networks to the model: names mean nothing to the contract', () => {
    const m = example();
    m.networks.netD = { architecture: 'basic', ndf: 64, nLayers: 3, inputNc: 6, norm: 'instance', antialias: true };
    expect(contractIssues(m, checkpointContract)).toEqual([]);
    const toy: CheckpointManifest = {
      ...header(),
      model: 'toy',
      networks: { linear: { architecture: 'linear', inFeatures: 3, outFeatures: 1, bias: true } },
      tensorNaming: 'network-prefixed-state-dict',
      weights,
    };
    expect(contractIssues(toy, checkpointContract)).toEqual([]);
  });

  it('checks each network on its own: patch heads under any name, StyleGAN2 sizes and channel tables', () => {
    const m = example();
    m.networks.heads = { architecture: 'mlp_sample', nc: 256, layers: [0, 4, 4], inputChannels: [3, 128] };
    expect(rejection(m)).toBe(
      'checkpoint.json: networks.heads.layers[2]: layer 4 is listed twice; networks.heads.inputChannels: has 2 entries but layers has 3; one per tapped layer',
    );
    const s = stylegan();
    s.networks.g = { ...generator, channels: { '4': 64, '8': 48, '32': 32, '64': 16 } } as NetworkConfig;
    s.networks.d = { ...discriminator, size: 48 } as NetworkConfig;
    expect(rejection(s)).toBe(
      'checkpoint.json: networks.g.channels: lacks resolution 16 (needs 4 to 32); networks.g.channels: has resolution 64 outside 4 to 32; ' +
        'networks.d.size: 48 is not a power of two',
    );
    const unknown = { ...stylegan(), networks: { g: { ...generator, architecture: 'stylegan3_generator' } } };
    expect(rejection(unknown)).toMatch(/^checkpoint\.json: networks\.g\.architecture: /);
  });

  it('names networks by identifiers (the tensor prefix), needs one, and ties optimisers to networks it holds', () => {
    expect(rejection({ ...stylegan(), networks: { 'g.ema': generator } })).toMatch(/^checkpoint\.json: networks\["g\.ema"\]: Invalid key/);
    expect(rejection({ ...stylegan(), networks: {}, optimizers: undefined })).toBe('checkpoint.json: networks: holds no network');
    const s = stylegan();
    s.optimizers = { ...s.optimizers, ema_optim: { algorithm: 'adam', networks: ['g', 'ema'], lr: 1e-3, betas: [0.5, 0.999], eps: 1e-8 } };
    expect(rejection(s)).toBe('checkpoint.json: optimizers.ema_optim.networks[1]: "ema" is not one of networks (g, d, g_ema)');
    const { training: _t, ...noTraining } = stylegan();
    expect(rejection(noTraining)).toBe('checkpoint.json: optimizers: needs training.optimizerFile, which holds their state');
  });

  it('reads what this version writes and refuses a newer one', () => {
    expect(() => parseContract(JSON.stringify({ ...example(), formatVersion: 3 }), 'c.json', checkpointContract)).toThrow(
      'c.json: formatVersion: written by a newer Scenimefy.js (formatVersion 3); this version reads 2 (and older 1)',
    );
  });
});
