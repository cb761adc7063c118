/**
 * Benchmark cases. Each runs in its own child process (`node dist/case.js <name> <json-args>`) so that its peak
 * RSS is its own; the child prints one JSON line with its measurements.
 */
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { Translator } from '@scenimefy/i2i-core';
import { readTorchStateDict, type RgbImage } from '@scenimefy/io';

export interface CaseResult {
  [metric: string]: number | string | boolean | null;
}

/** A deterministic photo-like test image (smooth gradients plus texture), so every run sees the same pixels. */
export function syntheticImage(width: number, height: number): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      const t = ((x * 7 + y * 13) % 31) - 15;
      data[i] = Math.max(0, Math.min(255, Math.round((255 * x) / width + t)));
      data[i + 1] = Math.max(0, Math.min(255, Math.round((255 * y) / height - t)));
      data[i + 2] = Math.max(0, Math.min(255, 128 + Math.round(60 * Math.sin(x / 17) * Math.cos(y / 23))));
    }
  }
  return { width, height, data };
}

export async function translateCase(args: {
  model: string;
  width: number;
  height: number;
  tile: 'auto' | 'off' | number;
  warm: number;
  threads?: number;
}): Promise<CaseResult> {
  const t0 = performance.now();
  const translator = await Translator.load(args.model, { tile: args.tile, threads: args.threads, offline: true });
  const loadMs = performance.now() - t0;
  const img = syntheticImage(args.width, args.height);
  const t1 = performance.now();
  const first = await translator.translateImage(img);
  const firstMs = performance.now() - t1;
  const warm: number[] = [];
  for (let i = 0; i < args.warm; i++) {
    const t = performance.now();
    await translator.translateImage(img);
    warm.push(performance.now() - t);
  }
  await translator.dispose();
  warm.sort((a, b) => a - b);
  const warmMs = warm.length > 0 ? warm[Math.floor(warm.length / 2)]! : null;
  const pixels = args.width * args.height;
  // ≈ 0.98 MMAC per pixel for the ngf-64 generator (SPEC §1): achieved GMAC/s of the generator alone.
  const gmac = 0.977e-3 * pixels;
  const steadyMs = warmMs ?? first.generatorMs;
  return {
    width: args.width,
    height: args.height,
    tiled: first.tiled,
    loadMs: round(loadMs),
    firstCallMs: round(firstMs),
    firstGeneratorMs: round(first.generatorMs),
    warmMs: warmMs === null ? null : round(warmMs),
    gmacPerSecond: round((gmac / steadyMs) * 1000),
    peakRssMb: round(process.resourceUsage().maxRSS / 1024),
  };
}

export async function loadCheckpointCase(args: { file: string }): Promise<CaseResult> {
  const before = process.memoryUsage().rss;
  const t0 = performance.now();
  const sd = await readTorchStateDict(args.file);
  const ms = performance.now() - t0;
  const { size } = await fsp.stat(args.file);
  return {
    file: path.basename(args.file),
    bytes: size,
    tensors: sd.size,
    loadMs: round(ms),
    extraRssMb: round((process.memoryUsage().rss - before) / 1e6),
    peakRssMb: round(process.resourceUsage().maxRSS / 1024),
  };
}

export async function writeSyntheticPng(file: string, width: number, height: number): Promise<void> {
  const { writeImage } = await import('@scenimefy/io');
  await writeImage(file, syntheticImage(width, height));
}

export function tmpDir(): string {
  return path.join(os.tmpdir(), `scenimefy-bench-${process.pid}`);
}

function round(v: number): number {
  return Math.round(v * 10) / 10;
}
