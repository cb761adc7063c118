#!/usr/bin/env node
/**
 * @module @scenimefy/bench
 * `npm run bench [-- --full] [-- --only io|translate|cli|train]` (README.md beside this package): runs each case in a fresh child process and prints one JSON
 * document on stdout (progress on stderr). Targets from the issues are recorded next to the measurements;
 * nothing here fails a build — timings belong in benchmarks, never in unit tests.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { tmpDir, writeSyntheticPng } from './cases';
import { runWatched } from './watched-child';
import type { WatchLimits } from './watched-child';

const repoRoot = path.resolve(__dirname, '..', '..', '..');
const fixtures = process.env.SCENIMEFY_REFERENCE_FIXTURES ?? path.resolve(repoRoot, '..', 'shared', 'fixtures', 'reference');
const model = path.join(fixtures, 'i2i', 'netG-ngf64.pth');
const caseScript = path.join(__dirname, 'case.js');
const cliBin = path.join(repoRoot, 'packages', 'cli', 'bin.js');

interface Measured {
  name: string;
  ok: boolean;
  wallMs: number;
  result?: Record<string, unknown>;
  error?: string;
  target?: string;
}

function child(name: string, caseName: string, args: object, target?: string): Measured {
  process.stderr.write(`bench: ${name} …\n`);
  const t0 = performance.now();
  const r = spawnSync(process.execPath, [caseScript, caseName, JSON.stringify(args)], { encoding: 'utf8', maxBuffer: 1 << 24 });
  const wallMs = Math.round(performance.now() - t0);
  if (r.status !== 0) return { name, ok: false, wallMs, error: (r.stderr || '').trim().split('\n').at(-1) ?? 'failed', target };
  return { name, ok: true, wallMs, result: JSON.parse(r.stdout.trim().split('\n').at(-1) ?? '{}') as Record<string, unknown>, target };
}

async function comparePngs(name: string, a: string, b: string, speedup: number): Promise<Measured> {
  const { decodeImage } = await import('@scenimefy/io');
  const [x, y] = await Promise.all([decodeImage(a), decodeImage(b)]);
  if (x.width !== y.width || x.height !== y.height) {
    return { name, ok: false, wallMs: 0, error: `sizes differ: ${x.width}×${x.height} vs ${y.width}×${y.height}` };
  }
  let max = 0;
  let differing = 0;
  for (let i = 0; i < x.data.length; i++) {
    const d = Math.abs(x.data[i]! - y.data[i]!);
    if (d > 0) differing++;
    if (d > max) max = d;
  }
  return {
    name,
    ok: true,
    wallMs: 0,
    result: {
      maxLevelDiff: max,
      identicalFraction: Number((1 - differing / x.data.length).toFixed(6)),
      speedupVsPython: Number(speedup.toFixed(2)),
    },
  };
}

function command(name: string, argv: string[], target?: string, repeat = 3, exe: string = process.execPath): Measured {
  process.stderr.write(`bench: ${name} …\n`);
  const times: number[] = [];
  let last: ReturnType<typeof spawnSync> | undefined;
  for (let i = 0; i < repeat; i++) {
    const t0 = performance.now();
    last = spawnSync(exe, argv, { encoding: 'utf8', env: { ...process.env, SCENIMEFY_OFFLINE: '1' } });
    times.push(performance.now() - t0);
    if (last.status !== 0) break;
  }
  if (last?.status !== 0) {
    return {
      name,
      ok: false,
      wallMs: Math.round(times.at(-1) ?? 0),
      error: String(last?.stderr ?? '')
        .trim()
        .split('\n')
        .at(-1),
      target,
    };
  }
  times.sort((a, b) => a - b);
  return {
    name,
    ok: true,
    wallMs: Math.round(times[Math.floor(times.length / 2)]!),
    result: { runs: times.length, medianMs: Math.round(times[Math.floor(times.length / 2)]!) },
    target,
  };
}

/** `runWatched` as a measurement: progress on stderr, the child's JSON as `result`. */
async function watchedChild(name: string, exe: string, argv: string[], limits: WatchLimits, target?: string): Promise<Measured> {
  process.stderr.write(`bench: ${name} …\n`);
  const run = await runWatched(exe, argv, limits);
  if (run.ok) return { name, ok: true, wallMs: run.wallMs, result: run.json, target };
  return {
    name,
    ok: false,
    wallMs: run.wallMs,
    error: run.error,
    result: run.observedRssMb > 0 ? { observedRssMb: run.observedRssMb } : undefined,
    target,
  };
}

function flagValue(argv: string[], flag: string): string | undefined {
  const i = argv.indexOf(flag);
  return i >= 0 ? argv[i + 1] : undefined;
}

/** The train group: one semi_cut optimisation step per size on TF.js, and on PyTorch when a Python is given. */
async function trainGroup(argv: string[]): Promise<Measured[]> {
  const backend = flagValue(argv, '--backend') ?? 'auto';
  const sizes = (flagValue(argv, '--train-sizes') ?? '64,128,256').split(',').map(Number);
  const stepsFlag = flagValue(argv, '--steps');
  const timeoutS = Number(flagValue(argv, '--train-timeout-s') ?? 900);
  // Default cap: most of what is free now, so a size that cannot fit fails alone.
  const maxRssMb = Number(flagValue(argv, '--max-rss-mb') ?? Math.floor((os.freemem() / 2 ** 20) * 0.85));
  // On by default, as in `scenimefy train`; --no-grad-checkpointing measures the plain tape.
  const checkpointing = !argv.includes('--no-grad-checkpointing');
  const python = process.env.SCENIMEFY_BENCH_PYTHON;
  const pyScript = path.join(repoRoot, 'tools', 'bench', 'python', 'train_reference.py');
  const results: Measured[] = [];
  for (const size of sizes) {
    if (!Number.isInteger(size) || size < 8 || size % 4 !== 0) throw new Error(`--train-sizes: ${size} is not a multiple of 4 ≥ 8`);
    const steps = stepsFlag !== undefined ? Number(stepsFlag) : size <= 64 ? 5 : 3;
    const args = { size, backend, steps, warmup: 1, checkpointing };
    const target = 'issue 4: with tfjs-node, a step no slower than PyTorch CPU (ratio ≤ 1)';
    const js = await watchedChild(
      `train ${size}² semi_cut step, TF.js (${backend})`,
      process.execPath,
      [caseScript, 'train', JSON.stringify(args)],
      { timeoutS, maxRssMb },
      target,
    );
    results.push(js);
    if (python) {
      const py = await watchedChild(
        `train ${size}² semi_cut step, PyTorch timing replica`,
        python,
        [
          pyScript,
          '--size',
          String(size),
          '--steps',
          String(steps),
          '--warmup',
          '1',
          '--threads',
          flagValue(argv, '--torch-threads') ?? '0',
        ],
        { timeoutS, maxRssMb },
      );
      results.push(py);
      if (js.ok && py.ok) {
        const jsMs = Number(js.result?.stepMedianMs);
        const pyMs = Number(py.result?.stepMedianMs);
        const jsRss = Number(js.result?.peakRssMb);
        const pyRss = Number(py.result?.peakRssMb);
        results.push({
          name: `train ${size}²: TF.js / PyTorch`,
          ok: true,
          wallMs: 0,
          result: {
            tfjsStepMedianMs: jsMs,
            pytorchStepMedianMs: pyMs,
            stepRatio: Number((jsMs / pyMs).toFixed(2)),
            cpuTimeRatio: Number((Number(js.result?.stepCpuMedianMs) / Number(py.result?.stepCpuMedianMs)).toFixed(2)),
            tfjsPeakRssMb: jsRss,
            pytorchPeakRssMb: pyRss,
            peakRssRatio: Number((jsRss / pyRss).toFixed(2)),
          },
          target: 'stepRatio ≤ 1',
        });
      }
    }
  }
  if (argv.includes('--profile')) {
    const size = Number(flagValue(argv, '--profile-size') ?? sizes.at(-1));
    const args = { size, backend, steps: 1, warmup: 1, profile: true, checkpointing };
    results.push(
      await watchedChild(
        `train ${size}² semi_cut step, TF.js (${backend}), profiled`,
        process.execPath,
        [caseScript, 'train', JSON.stringify(args)],
        { timeoutS, maxRssMb },
      ),
    );
  }
  return results;
}

/** The checked-out commit, with "-dirty" when the tree has changes: which code a report measured. */
function gitCommit(): string | null {
  const head = spawnSync('git', ['-C', repoRoot, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' });
  if (head.status !== 0) return null;
  const dirty = spawnSync('git', ['-C', repoRoot, 'status', '--porcelain', '--untracked-files=no'], { encoding: 'utf8' });
  return `${head.stdout.trim()}${dirty.stdout.trim() === '' ? '' : '-dirty'}`;
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const full = argv.includes('--full');
  const only = argv.includes('--only') ? argv[argv.indexOf('--only') + 1] : undefined;
  if (only !== 'train' && !existsSync(model)) {
    process.stderr.write(`bench: ${model} not found (set SCENIMEFY_REFERENCE_FIXTURES)\n`);
    process.exitCode = 1;
    return;
  }
  const results: Measured[] = [];
  const want = (group: string) => only === undefined || only === group;
  if (want('io')) results.push(child('load netG-ngf64.pth (45.6 MB)', 'load-checkpoint', { file: model }));
  if (want('translate')) {
    const sizes: Array<[number, number, 'auto' | 'off' | number, string | undefined]> = [
      [256, 256, 'off', 'reference PyTorch CPU forward 0.83 s (DEVELOPERS.md yardstick)'],
      [512, 512, 'off', 'reference PyTorch CPU forward 3.7 s'],
      [1024, 1024, 'off', undefined],
      [1024, 1024, 'auto', undefined],
      [1080, 1920, 'auto', 'peak RSS < 1.6 GB (PyTorch: ~4 GB, 69 s)'],
    ];
    if (full) sizes.push([4096, 4096, 'auto', 'tiled; bounded memory']);
    for (const [h, w, tile, target] of sizes) {
      results.push(
        child(
          `translate ${w}×${h} tile=${tile}`,
          'translate',
          { model, width: w, height: h, tile, warm: w * h <= 512 * 512 ? 3 : 1 },
          target,
        ),
      );
    }
  }
  if (want('cli') && existsSync(cliBin)) {
    const dir = tmpDir();
    mkdirSync(dir, { recursive: true });
    const photo = path.join(dir, 'photo512.png');
    await writeSyntheticPng(photo, 512, 512);
    results.push(command('cli start-up (scenimefy --version)', [cliBin, '--version'], undefined, 5));
    results.push(
      command(
        'cli translate one 512² photo, start-up included',
        [cliBin, 'translate', photo, '-o', path.join(dir, 'out'), '-m', model, '--if-exists', 'overwrite'],
        '≤ half of a Python script doing the same (import torch + load + 3.7 s forward ≈ 5.5 s) → ≤ 2.75 s',
      ),
    );
    const python = process.env.SCENIMEFY_BENCH_PYTHON;
    if (python) {
      // The same job in Python (the reference test.py pipeline, tools/bench/python/translate_reference.py), and
      // how many output bytes differ from ours.
      const script = path.join(repoRoot, 'tools', 'bench', 'python', 'translate_reference.py');
      for (const [label, input] of [
        ['512² synthetic photo', photo],
        ['rocket.jpg 640×427', path.join(repoRoot, 'examples', 'photos', 'rocket.jpg')],
      ] as const) {
        const pyOut = path.join(dir, `py-${path.basename(input, path.extname(input))}.png`);
        const py = command(`python reference pipeline, ${label}, start-up included`, [script, model, input, pyOut], undefined, 3, python);
        const jsDir = path.join(dir, 'js');
        const js = command(
          `cli translate ${label}, start-up included`,
          [cliBin, 'translate', input, '-o', jsDir, '-m', model, '--if-exists', 'overwrite', '--no-exif'],
          'at most half the Python time',
        );
        const jsOut = path.join(jsDir, `${path.basename(input, path.extname(input))}.png`);
        results.push(py, js);
        if (py.ok && js.ok) results.push(await comparePngs(`pixels: ours vs Python, ${label}`, jsOut, pyOut, py.wallMs / js.wallMs));
      }
    }
    rmSync(dir, { recursive: true, force: true });
  }
  if (want('train')) results.push(...(await trainGroup(argv)));
  const report = {
    benchmark: 'scenimefy-js',
    createdAt: new Date().toISOString(),
    gitCommit: gitCommit(),
    machine: {
      cpus: os.cpus().length,
      cpuModel: os.cpus()[0]?.model ?? 'unknown',
      memoryGb: Math.round(os.totalmem() / 1e9),
      node: process.version,
    },
    model: path.relative(repoRoot, model),
    results,
  };
  process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`bench: ${error instanceof Error ? error.stack : String(error)}\n`);
  process.exitCode = 1;
});
