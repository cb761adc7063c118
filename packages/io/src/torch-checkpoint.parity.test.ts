import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';

import { describeIfFixture, referenceFixturePath } from '@scenimefy/test-utils';

import { readSafetensors } from './safetensors-file';
import type { DType, TensorData, TensorMap } from './tensor';
import { numel } from './tensor';
import { readTorchCheckpoint, readTorchStateDict } from './torch-checkpoint-file';

interface SidecarEntry {
  key: string;
  shape: number[];
  dtype?: string;
}

const DTYPES: Record<string, DType> = { float32: 'F32', float64: 'F64', float16: 'F16', int64: 'I64' };
const readJson = async <T>(...parts: string[]): Promise<T> => JSON.parse(await fsp.readFile(referenceFixturePath(...parts), 'utf8')) as T;
const sha256 = async (file: string): Promise<string> =>
  createHash('sha256')
    .update(await fsp.readFile(file))
    .digest('hex');
const float32s = (t: TensorData): Float32Array => new Float32Array(new Uint8Array(t.bytes).buffer);
const sameBytes = (a: TensorData, b: TensorData): boolean =>
  Buffer.from(a.bytes.buffer, a.bytes.byteOffset, a.bytes.byteLength).equals(b.bytes);

/** Keys in order, shapes and dtypes exactly as the sidecar lists them, and byte lengths to match. */
function expectStateDictMatches(sd: TensorMap, entries: readonly SidecarEntry[]): void {
  expect([...sd.keys()]).toEqual(entries.map((e) => e.key));
  for (const e of entries) {
    const t = sd.get(e.key)!;
    expect({ key: e.key, shape: t.shape, dtype: t.dtype }).toEqual({ key: e.key, shape: e.shape, dtype: DTYPES[e.dtype ?? 'float32'] });
    expect(t.bytes.byteLength).toBe(numel(e.shape) * 4);
  }
}

/** The antialiasing blur buffers of the CUT networks: outer(a, a) / sum · stride², repeated per channel. */
function expectBlurFilters(sd: TensorMap): number {
  let checked = 0;
  for (const [key, t] of sd) {
    if (!key.endsWith('.filt')) continue;
    const k = t.shape[3]!;
    const a = k === 3 ? [1, 2, 1] : [1, 3, 3, 1];
    const scale = k === 3 ? 1 / 16 : (1 / 64) * 4;
    const one: number[] = [];
    for (const x of a) for (const y of a) one.push(Math.fround(x * y * scale));
    expect(t.shape).toEqual([t.shape[0], 1, k, k]);
    expect([...float32s(t)]).toEqual(Array.from({ length: t.shape[0]! }, () => one).flat());
    checked++;
  }
  return checked;
}

async function expectFilesMatchSidecar(files: Record<string, { bytes: number; sha256: string }>): Promise<void> {
  for (const [name, { bytes, sha256: digest }] of Object.entries(files)) {
    const file = referenceFixturePath('i2i', name);
    expect({ name, bytes: (await fsp.stat(file)).size, sha256: await sha256(file) }).toEqual({ name, bytes, sha256: digest });
  }
}

describeIfFixture(['i2i/netG-ngf16.pth', 'i2i/netG-ngf16.legacy.pth', 'i2i/netG-ngf16.json'], 'i2i ngf16 generator: zip and legacy', () => {
  it('both files load with the sidecar keys, order, shapes and dtypes, and byte-identical tensors', async () => {
    const sidecar = await readJson<{ files: Record<string, { bytes: number; sha256: string }>; state_dict: SidecarEntry[] }>(
      'i2i',
      'netG-ngf16.json',
    );
    await expectFilesMatchSidecar(sidecar.files);
    const zip = await readTorchStateDict(referenceFixturePath('i2i', 'netG-ngf16.pth'));
    const legacy = await readTorchStateDict(referenceFixturePath('i2i', 'netG-ngf16.legacy.pth'));
    expectStateDictMatches(zip, sidecar.state_dict);
    expectStateDictMatches(legacy, sidecar.state_dict);
    for (const [key, t] of zip) expect({ key, identical: sameBytes(t, legacy.get(key)!) }).toEqual({ key, identical: true });
    expect(expectBlurFilters(zip)).toBe(4);
    expect(expectBlurFilters(legacy)).toBe(4);
  });
});

describeIfFixture(['i2i/netD-ndf16.pth', 'i2i/netDp-ndf16.pth', 'i2i/patchF-nc32.pth'], 'i2i discriminators and patch sampler', () => {
  it.each([
    ['netD-ndf16.pth', 'netD-ndf16.json'],
    ['netDp-ndf16.pth', 'netDp-ndf16.json'],
    ['patchF-nc32.pth', 'patchF-io.json'],
  ])('%s matches %s', async (pth, json) => {
    const sidecar = await readJson<{ files: Record<string, { bytes: number; sha256: string }>; state_dict: SidecarEntry[] }>('i2i', json);
    await expectFilesMatchSidecar(sidecar.files);
    const sd = await readTorchStateDict(referenceFixturePath('i2i', pth));
    expectStateDictMatches(sd, sidecar.state_dict);
    expect(expectBlurFilters(sd)).toBe(pth.startsWith('netD') ? 3 : 0);
  });
});

describeIfFixture(['i2i/train-netF-init.pth', 'i2i/train-netFs-init.pth', 'i2i/train.json'], 'i2i training heads', () => {
  interface Summary {
    first8: number[];
  }
  interface TensorRecord {
    shape: number[];
    after_step1: Summary;
    delta_step1: Summary;
  }

  it.each([
    ['train-netF-init.pth', 'F'],
    ['train-netFs-init.pth', 'F_s'],
  ])('%s holds the %s keys and shapes, and values that the step-1 update turns into after_step1', async (pth, net) => {
    const train = await readJson<{ weights_after_step: Record<string, { tensors: Record<string, TensorRecord> }> }>('i2i', 'train.json');
    const records = train.weights_after_step[net]!.tensors;
    const sd = await readTorchStateDict(referenceFixturePath('i2i', pth));
    expectStateDictMatches(
      sd,
      Object.entries(records).map(([key, r]) => ({ key, shape: r.shape })),
    );
    for (const [key, r] of Object.entries(records)) {
      const init = float32s(sd.get(key)!).subarray(0, 8);
      // init + delta = after in float32, so init = after − delta within one float32 rounding of `after` (≤ 1e-9 here).
      r.after_step1.first8.slice(0, init.length).forEach((after, i) => {
        expect(Math.abs(init[i]! - (after - r.delta_step1.first8[i]!))).toBeLessThanOrEqual(1e-8);
      });
    }
  });
});

describeIfFixture(
  ['stylegan2/000100.pt', 'stylegan2/checkpoint.json', 'stylegan2/g_ema.safetensors', 'stylegan2/d.safetensors'],
  'stylegan2 training checkpoint',
  () => {
    interface CheckpointJson {
      sha256: string;
      top_level_keys: string[];
      g_ema_keys: SidecarEntry[];
      d_keys: SidecarEntry[];
      g_keys_equal_g_ema_keys: boolean;
      g_optim_param_index_to_name: string[];
      d_optim_param_index_to_name: string[];
      g_optim_state_indices: number[];
      d_optim_state_count: number;
      optim_state_entry_keys: string[];
      g_optim_param_group: Record<string, unknown>;
      d_optim_param_group: Record<string, unknown>;
      args: Record<string, unknown>;
      ada_aug_p: number;
    }
    let meta: CheckpointJson;
    let ck: Map<string, unknown>;
    const file = referenceFixturePath('stylegan2', '000100.pt');
    beforeAll(async () => {
      meta = await readJson<CheckpointJson>('stylegan2', 'checkpoint.json');
      ck = (await readTorchCheckpoint(file)) as Map<string, unknown>;
    });

    it('is the recorded file, with the recorded top-level keys, args and ada_aug_p', async () => {
      expect(await sha256(file)).toBe(meta.sha256);
      expect([...ck.keys()]).toEqual(meta.top_level_keys);
      expect(ck.get('args')).toEqual(meta.args);
      expect(Object.getPrototypeOf(ck.get('args'))).toBe(Object.prototype);
      expect(ck.get('ada_aug_p')).toBe(meta.ada_aug_p);
    });

    it.each([
      ['g_ema', 'g_ema.safetensors'],
      ['d', 'd.safetensors'],
    ])('%s matches the sidecar and is byte-identical to %s', async (key, st) => {
      const sd = await readTorchStateDict(file, { key });
      expectStateDictMatches(sd, key === 'd' ? meta.d_keys : meta.g_ema_keys);
      const { tensors } = await readSafetensors(referenceFixturePath('stylegan2', st));
      expect([...tensors.keys()].sort()).toEqual([...sd.keys()].sort());
      for (const [name, t] of sd) {
        const ref = tensors.get(name)!;
        expect({ name, shape: t.shape, dtype: t.dtype, identical: sameBytes(t, ref) }).toEqual({
          name,
          shape: ref.shape,
          dtype: ref.dtype,
          identical: true,
        });
      }
    });

    it('g has the g_ema keys and shapes', async () => {
      expect(meta.g_keys_equal_g_ema_keys).toBe(true);
      expectStateDictMatches(await readTorchStateDict(file, { key: 'g' }), meta.g_ema_keys);
    });

    it.each([
      ['g_optim', 'g'],
      ['d_optim', 'd'],
    ])('%s is an Adam state dict indexed by parameter position, with float32 scalar steps', (optimKey, netKey) => {
      const optim = ck.get(optimKey) as Map<string, unknown>;
      expect([...optim.keys()]).toEqual(['state', 'param_groups']);
      const names = optimKey === 'g_optim' ? meta.g_optim_param_index_to_name : meta.d_optim_param_index_to_name;
      const net = ck.get(netKey) as Map<string, TensorData>;
      const state = optim.get('state') as Map<number, Map<string, TensorData>>;
      const indices = [...state.keys()];
      if (optimKey === 'g_optim') expect(indices).toEqual(meta.g_optim_state_indices);
      else expect(indices).toHaveLength(meta.d_optim_state_count);
      for (const [index, entry] of state) {
        expect([...entry.keys()].sort()).toEqual(meta.optim_state_entry_keys);
        const param = net.get(names[index]!)!;
        expect({ index, avg: entry.get('exp_avg')!.shape, sq: entry.get('exp_avg_sq')!.shape }).toEqual({
          index,
          avg: param.shape,
          sq: param.shape,
        });
        const step = entry.get('step')!;
        expect({ dtype: step.dtype, shape: step.shape, value: float32s(step)[0] }).toEqual({ dtype: 'F32', shape: [], value: 1 });
      }
      const groups = optim.get('param_groups') as Map<string, unknown>[];
      expect(groups).toHaveLength(1);
      const recorded = optimKey === 'g_optim' ? meta.g_optim_param_group : meta.d_optim_param_group;
      const group = Object.fromEntries(groups[0]!);
      expect(group.params).toEqual(names.map((_, i) => i));
      expect({ ...group, params: recorded.params }).toEqual(recorded);
    });
  },
);

describeIfFixture(['i2i/netG-ngf64.pth', 'i2i/netG-ngf64.json'], 'i2i full-size generator (45 MB)', () => {
  it('loads with the sidecar keys and shapes, holding the file once in memory', async () => {
    const sidecar = await readJson<{ files: Record<string, { bytes: number; sha256: string }>; state_dict: SidecarEntry[] }>(
      'i2i',
      'netG-ngf64.json',
    );
    const file = referenceFixturePath('i2i', 'netG-ngf64.pth');
    const size = (await fsp.stat(file)).size;
    expect(size).toBe(sidecar.files['netG-ngf64.pth']!.bytes);

    const gc = (globalThis as { gc?: () => void }).gc;
    gc?.();
    const before = process.memoryUsage();
    const started = performance.now();
    const sd = await readTorchStateDict(file);
    const ms = performance.now() - started;
    gc?.();
    const after = process.memoryUsage();
    expectStateDictMatches(sd, sidecar.state_dict);
    expect(expectBlurFilters(sd)).toBe(4);

    // Every tensor is a view of one buffer that is exactly the file: nothing was copied.
    const buffers = new Set([...sd.values()].map((t) => t.bytes.buffer));
    expect(buffers.size).toBe(1);
    expect([...buffers][0]!.byteLength).toBe(size);
    const extra = after.arrayBuffers - before.arrayBuffers;
    expect(extra).toBeLessThan(1.25 * size);
    console.log(
      `netG-ngf64.pth (${(size / 1e6).toFixed(1)} MB) read in ${ms.toFixed(0)} ms; extra ArrayBuffer memory ` +
        `${(extra / 1e6).toFixed(1)} MB (${(extra / size).toFixed(2)}× the file), rss +${((after.rss - before.rss) / 1e6).toFixed(1)} MB` +
        (gc === undefined ? ' (no --expose-gc)' : ''),
    );
  });
});
