import { readFileSync } from 'node:fs';
import * as path from 'node:path';

import { contractRejection, makeTempDir, type TempDir } from '@scenimefy/test-utils';

import { checkpointContractV1, checkpointManifestV1Schema, type CheckpointManifestV1 } from './checkpoint-manifest';
import { artifactHeader } from './common';
import { readContract, writeContract } from './contract-files';

// v1 on its own contract: the files Scenimefy.js 0.1 wrote are checked by these rules before their upgrade to v2
// (checkpoint-manifest-v2.test.ts).
const exampleText = readFileSync(path.join(__dirname, 'examples', 'scenimefy-checkpoint-v1.json'), 'utf8');
const example = (): CheckpointManifestV1 => checkpointManifestV1Schema.parse(JSON.parse(exampleText));
const checkpointContract = checkpointContractV1;
const readCheckpointManifest = (file: string): Promise<CheckpointManifestV1> => readContract(file, checkpointContractV1);
const writeCheckpointManifest = (file: string, m: CheckpointManifestV1): Promise<void> => writeContract(file, checkpointContractV1, m);
type CheckpointManifest = CheckpointManifestV1;

/** An imported generator-only checkpoint, as `scenimefy import Shinkai_net_G.pth` would write it. */
const imported = (): CheckpointManifest => ({
  ...artifactHeader(checkpointContract, { name: '@scenimefy/cli', version: '0.1.0' }, '2025-02-01T08:30:00Z'),
  networks: {
    netG: { architecture: 'resnet_9blocks', ngf: 64, inputNc: 3, outputNc: 3, antialias: true, antialiasUp: true, norm: 'instance' },
  },
  tensorNaming: 'network-prefixed-state-dict',
  weights: { file: 'weights.safetensors', sha256: 'a'.repeat(64), size: 45_563_000 },
  source: { kind: 'pytorch', file: 'Shinkai_net_G.pth' },
});

const rejection = (value: unknown): string => contractRejection(value, 'checkpoint.json', checkpointContract);

let tmp: TempDir;
let dir: string;
beforeEach(async () => {
  tmp = await makeTempDir('checkpoint');
  dir = tmp.dir;
});
afterEach(async () => {
  await tmp.cleanup();
});

describe('scenimefy-checkpoint v1', () => {
  it('round-trips a training checkpoint and an imported generator', async () => {
    for (const manifest of [example(), imported()]) {
      const file = path.join(dir, 'checkpoint.json');
      await writeCheckpointManifest(file, manifest);
      expect(await readCheckpointManifest(file)).toEqual(manifest);
    }
  });

  it('rejects an architecture it cannot build', () => {
    const m = imported() as unknown as { networks: { netG: Record<string, unknown> } };
    m.networks.netG.architecture = 'unet_256';
    expect(rejection(m)).toBe('checkpoint.json: networks.netG.architecture: Invalid input: expected "resnet_9blocks"');
  });

  it('rejects file names that leave the checkpoint folder', () => {
    const m = imported();
    m.weights.file = 'sub/weights.safetensors';
    expect(rejection(m)).toBe(
      'checkpoint.json: weights.file: must be a bare file name in the same folder (no "/" or "\\", not "." or "..")',
    );
    m.weights.file = '..';
    expect(rejection(m)).toBe(
      'checkpoint.json: weights.file: must be a bare file name in the same folder (no "/" or "\\", not "." or "..")',
    );
  });

  it('checks patch heads: one inputChannels entry per layer, no layer twice', () => {
    const m = example();
    m.networks.netF = { architecture: 'mlp_sample', nc: 256, layers: [0, 4, 4], inputChannels: [3, 128] };
    expect(rejection(m)).toBe(
      'checkpoint.json: networks.netF.layers[2]: layer 4 is listed twice; networks.netF.inputChannels: has 2 entries but layers has 3; one per tapped layer',
    );
  });

  it('checks discriminator inputs against the generator', () => {
    const m = example();
    m.networks.netD = { ...m.networks.netD!, inputNc: 6 };
    expect(rejection(m)).toBe("checkpoint.json: networks.netD.inputNc: is 6 but netD judges netG's output, which has 3 channels");
  });

  it('checks the weights, optimizer and RNG files are distinct', () => {
    const m = example();
    m.training = { ...m.training!, optimizerFile: 'weights.safetensors', rngFile: 'weights.safetensors' };
    expect(rejection(m)).toBe(
      'checkpoint.json: training.optimizerFile: "weights.safetensors" is already used by weights.file; ' +
        'training.rngFile: "weights.safetensors" is already used by weights.file',
    );
  });

  it('requires the generator and the tensor naming rule', () => {
    const m = structuredClone(imported()) as unknown as { networks: Record<string, unknown>; tensorNaming?: string };
    delete m.networks.netG;
    delete m.tensorNaming;
    expect(rejection(m)).toBe(
      'checkpoint.json: networks.netG: Invalid input: expected object, received undefined; ' +
        'tensorNaming: Invalid input: expected "network-prefixed-state-dict"',
    );
  });
});
