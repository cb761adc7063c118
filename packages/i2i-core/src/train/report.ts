/**
 * `report.html` of a training run: one self-contained page (inline CSS and SVG, no script, font or network
 * access) with the run's status, then what a user opens it for — loss curves (one chart per group the model
 * names) and sample grids — then the checkpoints still on disk and the resolved options (the non-defaults first,
 * the rest folded away). Rewritten from events.ndjson whenever the trainer wants it current.
 *
 * Loss curves stay small however long the run: each series is bucketed over the iteration axis into at most
 * `maxPointsPerSeries / 2` buckets and every bucket contributes its minimum and its maximum point, in iteration
 * order (min/max-preserving downsampling: a spike or a collapse stays visible, unlike with bucket means). Under
 * the raw line a centred moving average over about 2 % of the points is drawn from the buckets' sums and counts.
 * Non-finite losses (a diverged run logs NaN) break the line and are marked in red under the axis.
 */
import { isSafeRelativePath, writeFileAtomic } from '@scenimefy/io';

import type { TrainEvent } from './events';

export type TrainingReportStatus = 'running' | 'completed' | 'failed' | 'stopped';

export interface TrainingReportInput {
  title: string;
  status: TrainingReportStatus;
  /** Every resolved option, by name. */
  options: Record<string, unknown>;
  /** Names of the options that differ from their default. */
  nonDefaults: string[];
  events: TrainEvent[];
  /** Why the run failed or stopped (else the last end event's message is shown). */
  message?: string;
  /** The loss charts, in page order (default: one chart of every loss); the learning rate is charted after them. */
  chartGroups?: readonly ReportChartGroup[];
  /**
   * The checkpoint folders (run-relative, as run.json lists them) that still exist; the checkpoints of the events
   * that are not among them (pruned) are left out. Default: every checkpoint event is listed.
   */
  checkpoints?: readonly string[];
}

/** One loss chart of report.html. */
export interface ReportChartGroup {
  readonly id: string;
  readonly title: string;
  /** Losses charted here, in legend order. */
  readonly losses: readonly string[];
  /** Also chart here any other loss this accepts (e.g. every `D_…` key), in name order after `losses`. */
  readonly matches?: (loss: string) => boolean;
  /** The chart of the losses that no group lists or matches (default: a last "Other losses" chart). */
  readonly rest?: boolean;
}

export interface TrainingReportOptions {
  /** Upper bound of the points drawn per series (raw line and moving average each); default 2000, at least 4. */
  maxPointsPerSeries?: number;
  /** Newest sample grids shown; default 200. */
  maxSamples?: number;
  /** Time printed in the footer (default: now). */
  generatedAt?: Date;
}

export const DEFAULT_MAX_POINTS_PER_SERIES = 2000;
export const DEFAULT_MAX_REPORT_SAMPLES = 200;

/** Every character that could end a text node or an attribute value, as a numeric entity. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** A run-relative POSIX path as a URL path (each segment percent-encoded), or undefined if it could leave the folder. */
function relativeUrl(file: string): string | undefined {
  if (!isSafeRelativePath(file)) return undefined;
  return file.split('/').map(encodeURIComponent).join('/');
}

// ---------------------------------------------------------------------------------------------------- series

/** Without groups from the model: one chart of every loss. */
const ALL_LOSSES: readonly ReportChartGroup[] = [{ id: 'losses', title: 'Losses', losses: [], rest: true }];

/** The chart of each loss key: the group listing it, else the first that matches it, else the rest group. */
function chartOf(key: string, groups: readonly ReportChartGroup[]): number {
  const listed = groups.findIndex((g) => g.losses.includes(key));
  if (listed !== -1) return listed;
  const matched = groups.findIndex((g) => g.matches?.(key) === true);
  if (matched !== -1) return matched;
  return groups.findIndex((g) => g.rest === true);
}

/** Listed keys in the group's order first, then the others by name. */
function keyOrder(group: ReportChartGroup): (a: string, b: string) => number {
  return (a, b) => {
    const ia = group.losses.indexOf(a);
    const ib = group.losses.indexOf(b);
    if (ia !== -1 || ib !== -1) return (ia === -1 ? Infinity : ia) - (ib === -1 ? Infinity : ib);
    return a < b ? -1 : a > b ? 1 : 0;
  };
}

const PALETTE = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];

interface Bucketing {
  first: number;
  last: number;
  /** Number of buckets. */
  count: number;
  /** Bucket of an iteration. */
  of: (iteration: number) => number;
}

/**
 * Buckets over [first, last]: one per iteration when that many fit the budget (each bucket then emits at most two
 * points, only when an iteration was logged twice), else `floor(maxPoints / 2)` equal spans.
 */
function bucketing(first: number, last: number, maxPoints: number): Bucketing {
  const span = last - first + 1;
  const budget = Math.floor(maxPoints / 2);
  if (span <= budget) return { first, last, count: span, of: (it) => it - first };
  return { first, last, count: budget, of: (it) => Math.min(budget - 1, Math.floor(((it - first) * budget) / span)) };
}

/** One series' per-bucket statistics; memory is O(buckets), not O(events). */
class SeriesBuckets {
  points = 0;
  finitePoints = 0;
  nonFinitePoints = 0;
  firstNonFinite: number | undefined;
  readonly fin: Float64Array;
  readonly bad: Float64Array;
  readonly sum: Float64Array;
  readonly sumX: Float64Array;
  readonly minY: Float64Array;
  readonly minX: Float64Array;
  readonly maxY: Float64Array;
  readonly maxX: Float64Array;

  constructor(
    readonly key: string,
    readonly buckets: Bucketing,
  ) {
    const n = buckets.count;
    this.fin = new Float64Array(n);
    this.bad = new Float64Array(n);
    this.sum = new Float64Array(n);
    this.sumX = new Float64Array(n);
    this.minY = new Float64Array(n).fill(Infinity);
    this.minX = new Float64Array(n);
    this.maxY = new Float64Array(n).fill(-Infinity);
    this.maxX = new Float64Array(n);
  }

  add(x: number, y: number): void {
    const k = this.buckets.of(x);
    this.points++;
    if (!Number.isFinite(y)) {
      this.nonFinitePoints++;
      this.bad[k]!++;
      if (this.firstNonFinite === undefined || x < this.firstNonFinite) this.firstNonFinite = x;
      return;
    }
    this.finitePoints++;
    this.fin[k]!++;
    this.sum[k]! += y;
    this.sumX[k]! += x;
    if (y < this.minY[k]!) {
      this.minY[k] = y;
      this.minX[k] = x;
    }
    if (y > this.maxY[k]!) {
      this.maxY[k] = y;
      this.maxX[k] = x;
    }
  }

  /** Polyline segments of the min/max envelope; a bucket holding only non-finite values ends a segment. */
  rawSegments(): Array<Array<[number, number]>> {
    const segments: Array<Array<[number, number]>> = [];
    let current: Array<[number, number]> = [];
    for (let k = 0; k < this.buckets.count; k++) {
      if (this.fin[k]! === 0) {
        if (this.bad[k]! > 0 && current.length > 0) {
          segments.push(current);
          current = [];
        }
        continue;
      }
      const lo: [number, number] = [this.minX[k]!, this.minY[k]!];
      const hi: [number, number] = [this.maxX[k]!, this.maxY[k]!];
      if (lo[0] === hi[0] && lo[1] === hi[1]) current.push(lo);
      else if (lo[0] <= hi[0]) current.push(lo, hi);
      else current.push(hi, lo);
    }
    if (current.length > 0) segments.push(current);
    return segments;
  }

  /**
   * Centred moving average over about 2 % of the finite points (at least 5), one point per bucket, computed from
   * bucket sums so that it costs O(buckets). Undefined when there are too few points for it to say anything.
   */
  movingAverageSegments(): Array<Array<[number, number]>> | undefined {
    if (this.finitePoints < 100) return undefined;
    const n = this.buckets.count;
    let occupied = 0;
    for (let k = 0; k < n; k++) if (this.fin[k]! > 0) occupied++;
    const windowPoints = Math.max(5, Math.round(this.finitePoints / 50));
    const perBucket = this.finitePoints / occupied;
    const half = Math.floor(Math.max(1, Math.round(windowPoints / perBucket)) / 2);
    const prefixSum = new Float64Array(n + 1);
    const prefixCount = new Float64Array(n + 1);
    for (let k = 0; k < n; k++) {
      prefixSum[k + 1] = prefixSum[k]! + this.sum[k]!;
      prefixCount[k + 1] = prefixCount[k]! + this.fin[k]!;
    }
    const segments: Array<Array<[number, number]>> = [];
    let current: Array<[number, number]> = [];
    for (let k = 0; k < n; k++) {
      if (this.fin[k]! === 0) {
        if (this.bad[k]! > 0 && current.length > 0) {
          segments.push(current);
          current = [];
        }
        continue;
      }
      const a = Math.max(0, k - half);
      const b = Math.min(n, k + half + 1);
      current.push([this.sumX[k]! / this.fin[k]!, (prefixSum[b]! - prefixSum[a]!) / (prefixCount[b]! - prefixCount[a]!)]);
    }
    if (current.length > 0) segments.push(current);
    return segments;
  }

  /** Lowest and highest finite value, or undefined when there is none. */
  range(): [number, number] | undefined {
    let lo = Infinity;
    let hi = -Infinity;
    for (let k = 0; k < this.buckets.count; k++) {
      if (this.fin[k]! === 0) continue;
      lo = Math.min(lo, this.minY[k]!);
      hi = Math.max(hi, this.maxY[k]!);
    }
    return lo <= hi ? [lo, hi] : undefined;
  }

  /** Indices of the buckets that hold non-finite values (one mark each). */
  nonFiniteBuckets(): number[] {
    const marks: number[] = [];
    for (let k = 0; k < this.buckets.count; k++) if (this.bad[k]! > 0) marks.push(k);
    return marks;
  }
}

interface Chart {
  id: string;
  title: string;
  series: SeriesBuckets[];
}

/** The loss charts (and the learning rate) of the iteration events. */
function buildCharts(
  events: readonly TrainEvent[],
  maxPoints: number,
  chartGroups: readonly ReportChartGroup[],
): { charts: Chart[]; buckets: Bucketing | undefined } {
  let first = Infinity;
  let last = -Infinity;
  const keys = new Set<string>();
  for (const e of events) {
    if (e.type !== 'iteration') continue;
    first = Math.min(first, e.iteration);
    last = Math.max(last, e.iteration);
    for (const key of Object.keys(e.losses)) keys.add(key);
  }
  if (first > last) return { charts: [], buckets: undefined };
  const buckets = bucketing(first, last, maxPoints);
  const groups = chartGroups.some((g) => g.rest === true)
    ? chartGroups
    : [...chartGroups, { id: 'other', title: 'Other losses', losses: [], rest: true }];
  const byGroup = groups.map(() => [] as string[]);
  for (const key of keys) byGroup[chartOf(key, groups)]!.push(key);
  const series = new Map<string, SeriesBuckets>();
  const charts: Chart[] = groups.map((g, i) => {
    const members = byGroup[i]!.sort(keyOrder(g)).map((k) => new SeriesBuckets(k, buckets));
    for (const m of members) series.set(m.key, m);
    return { id: g.id, title: g.title, series: members };
  });
  const lr = new SeriesBuckets('lr', buckets);
  for (const e of events) {
    if (e.type !== 'iteration') continue;
    // for…in, not Object.entries: no array per event, which matters at a million iterations.
    for (const key in e.losses) series.get(key)!.add(e.iteration, e.losses[key]!);
    lr.add(e.iteration, e.lr);
  }
  charts.push({ id: 'lr', title: 'Learning rate', series: [lr] });
  return { charts: charts.filter((c) => c.series.length > 0), buckets };
}

// ---------------------------------------------------------------------------------------------------- drawing

const W = 760;
const H = 280;
const M = { left: 64, right: 16, top: 16, bottom: 44 };

function niceStep(span: number, count: number): number {
  const raw = span / count;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const r = raw / magnitude;
  return (r < 1.5 ? 1 : r < 3 ? 2 : r < 7 ? 5 : 10) * magnitude;
}

function ticks(lo: number, hi: number, step: number): number[] {
  const out: number[] = [];
  const start = Math.ceil(lo / step - 1e-9);
  for (let i = start; i * step <= hi + step * 1e-9; i++) out.push(i * step);
  return out;
}

/** An iteration count for an axis: 950, 12k, 1.8M. */
function formatIteration(v: number): string {
  const a = Math.abs(v);
  if (a >= 1e6) return `${Number((v / 1e6).toPrecision(3))}M`;
  if (a >= 1e4) return `${Number((v / 1e3).toPrecision(3))}k`;
  return String(Math.round(v));
}

/** A loss value for an axis, with as many decimals as the tick step needs. */
function formatValue(v: number, step: number): string {
  if (v === 0) return '0';
  if (step >= 1e5 || step < 1e-4) return v.toExponential(1);
  const decimals = Math.max(0, Math.min(6, -Math.floor(Math.log10(step) + 1e-9)));
  return v.toFixed(decimals);
}

function formatNumber(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  if (v !== 0 && (Math.abs(v) < 1e-3 || Math.abs(v) >= 1e6)) return v.toExponential(3);
  return String(Number(v.toPrecision(4)));
}

const r1 = (v: number): string => String(Math.round(v * 10) / 10);

function pathData(segments: Array<Array<[number, number]>>, sx: (x: number) => number, sy: (y: number) => number): string {
  return segments.map((seg) => seg.map(([x, y], i) => `${i === 0 ? 'M' : 'L'}${r1(sx(x))},${r1(sy(y))}`).join('')).join('');
}

interface Marker {
  iteration: number;
  label: string;
}

function renderChart(chart: Chart, buckets: Bucketing, epochs: Marker[], resumes: Marker[]): string {
  const plotW = W - M.left - M.right;
  const plotH = H - M.top - M.bottom;
  const xLo = buckets.first;
  const xHi = Math.max(buckets.last, xLo + 1);
  let yLo = Infinity;
  let yHi = -Infinity;
  for (const s of chart.series) {
    const r = s.range();
    if (r === undefined) continue;
    yLo = Math.min(yLo, r[0]);
    yHi = Math.max(yHi, r[1]);
  }
  if (yLo > yHi) {
    yLo = 0;
    yHi = 1;
  } else if (yLo === yHi) {
    const pad = yLo === 0 ? 1 : Math.abs(yLo) * 0.1;
    yLo -= pad;
    yHi += pad;
  }
  const yStep = niceStep(yHi - yLo, 5);
  yLo = Math.floor(yLo / yStep + 1e-9) * yStep;
  yHi = Math.ceil(yHi / yStep - 1e-9) * yStep;
  const xStep = Math.max(1, niceStep(xHi - xLo, 6));
  const sx = (x: number): number => M.left + ((x - xLo) / (xHi - xLo)) * plotW;
  const sy = (y: number): number => M.top + (1 - (y - yLo) / (yHi - yLo)) * plotH;

  const parts: string[] = [];
  parts.push(`<rect class="plot" x="${M.left}" y="${M.top}" width="${plotW}" height="${plotH}"/>`);
  for (const v of ticks(yLo, yHi, yStep)) {
    const y = r1(sy(v));
    parts.push(`<line class="grid" x1="${M.left}" x2="${M.left + plotW}" y1="${y}" y2="${y}"/>`);
    parts.push(
      `<text class="tick" x="${M.left - 6}" y="${y}" text-anchor="end" dominant-baseline="middle">${escapeHtml(formatValue(v, yStep))}</text>`,
    );
  }
  for (const v of ticks(xLo, xHi, xStep)) {
    const x = r1(sx(v));
    parts.push(`<line class="axis-tick" x1="${x}" x2="${x}" y1="${M.top + plotH}" y2="${M.top + plotH + 4}"/>`);
    parts.push(`<text class="tick" x="${x}" y="${M.top + plotH + 16}" text-anchor="middle">${escapeHtml(formatIteration(v))}</text>`);
  }
  parts.push(`<text class="axis-label" x="${M.left + plotW / 2}" y="${H - 6}" text-anchor="middle">iteration</text>`);

  // Epoch ends: at most ~40 lines, labelled only when few enough to be read.
  const shown = epochs.filter((m) => m.iteration >= xLo && m.iteration <= xHi);
  const stride = Math.max(1, Math.ceil(shown.length / 40));
  const drawn = shown.filter((_, i) => (shown.length - 1 - i) % stride === 0);
  for (const m of drawn) {
    const x = r1(sx(m.iteration));
    parts.push(`<line class="epoch" x1="${x}" x2="${x}" y1="${M.top}" y2="${M.top + plotH}"><title>${escapeHtml(m.label)}</title></line>`);
    if (drawn.length <= 20)
      parts.push(`<text class="epoch-label" x="${x}" y="${M.top + 10}" text-anchor="end">${escapeHtml(m.label)}</text>`);
  }
  for (const m of resumes.filter((r) => r.iteration >= xLo && r.iteration <= xHi)) {
    const x = r1(sx(m.iteration));
    parts.push(`<line class="resume" x1="${x}" x2="${x}" y1="${M.top}" y2="${M.top + plotH}"><title>${escapeHtml(m.label)}</title></line>`);
  }

  const legend: string[] = [];
  chart.series.forEach((s, i) => {
    const colour = PALETTE[i % PALETTE.length]!;
    const key = escapeHtml(s.key);
    // The learning rate follows its schedule exactly; averaging it would only blur the steps.
    const average = chart.id === 'lr' ? undefined : s.movingAverageSegments();
    parts.push(
      `<path class="raw${average ? ' faint' : ''}" data-series="${key}" stroke="${colour}" d="${pathData(s.rawSegments(), sx, sy)}"/>`,
    );
    if (average) parts.push(`<path class="ma" data-series="${key}" stroke="${colour}" d="${pathData(average, sx, sy)}"/>`);
    for (const k of s.nonFiniteBuckets()) {
      const bucketStart = buckets.first + (k * (buckets.last - buckets.first + 1)) / buckets.count;
      parts.push(
        `<rect class="nonfinite" data-series="${key}" x="${r1(sx(Math.min(bucketStart, xHi)) - 1)}" y="${M.top + plotH - 6}" width="2" height="6"/>`,
      );
    }
    const note =
      s.nonFinitePoints > 0 ? ` <span class="bad">(${s.nonFinitePoints} non-finite, first at iteration ${s.firstNonFinite})</span>` : '';
    legend.push(`<li><span class="swatch" style="background:${colour}"></span>${key}${note}</li>`);
  });

  const label = `${chart.title}: ${chart.series.map((s) => s.key).join(', ')} by iteration`;
  return (
    `<figure class="chart" id="chart-${escapeHtml(chart.id)}"><figcaption>${escapeHtml(chart.title)}</figcaption>` +
    `<svg viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${escapeHtml(label)}">${parts.join('')}</svg>` +
    `<ul class="legend">${legend.join('')}</ul></figure>`
  );
}

// ---------------------------------------------------------------------------------------------------- page

function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '—';
  const s = Math.round(ms / 1000);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  if (h > 0) return `${h} h ${String(m).padStart(2, '0')} min ${String(sec).padStart(2, '0')} s`;
  if (m > 0) return `${m} min ${String(sec).padStart(2, '0')} s`;
  return `${sec} s`;
}

/**
 * Wall time spent in the run — each session from its start event to its latest event, summed, so the gaps
 * between a crash and its resume do not count — and the latest event time. One pass: Date.parse dominates.
 */
function runTimes(events: readonly TrainEvent[]): { elapsedMs: number; latest: string | undefined } {
  let total = 0;
  let start: number | undefined;
  let last = -Infinity;
  let latest: string | undefined;
  let latestT = -Infinity;
  for (const e of events) {
    const t = Date.parse(e.time);
    if (Number.isNaN(t)) continue;
    if (t > latestT) {
      latestT = t;
      latest = e.time;
    }
    if (e.type === 'start') {
      if (start !== undefined) total += last - start;
      start = t;
      last = t;
    } else {
      start ??= t;
      last = Math.max(last, t);
    }
  }
  if (start !== undefined) total += last - start;
  return { elapsedMs: total, latest };
}

function optionValue(value: unknown): string {
  if (typeof value === 'string') return value;
  if (value === undefined) return 'undefined';
  try {
    return JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)) ?? String(value);
  } catch {
    return String(value);
  }
}

const STYLE = `
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:0 auto;max-width:1100px;padding:16px 24px;color:#1b1b1b;background:#fff}
h1{font-size:22px;margin:0 0 8px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
.status{display:inline-block;padding:2px 10px;border-radius:10px;font-weight:600;color:#fff}
.status-running{background:#1f6feb}.status-completed{background:#1a7f37}.status-failed{background:#cf222e}.status-stopped{background:#9a6700}
dl.summary{display:grid;grid-template-columns:max-content 1fr;gap:2px 16px;margin:12px 0}dl.summary dt{color:#555}dl.summary dd{margin:0}
.message{background:#fff1f0;border:1px solid #f5c2c0;padding:8px 12px;white-space:pre-wrap;overflow-wrap:anywhere}
table{border-collapse:collapse}td,th{border-bottom:1px solid #eee;padding:3px 10px;text-align:left;vertical-align:top}
td.value{font-family:ui-monospace,"DejaVu Sans Mono",monospace;overflow-wrap:anywhere}
tr.non-default{background:#fff8c5}tr.non-default td:first-child{font-weight:600}
.changed{font-size:11px;color:#9a6700;margin-left:6px}
figure{margin:12px 0}figcaption{font-weight:600;margin-bottom:4px}
svg{max-width:100%;height:auto}
svg .plot{fill:#fff;stroke:#999}svg .grid{stroke:#eee}svg .axis-tick{stroke:#999}
svg text{font-size:11px;fill:#444}svg .axis-label{fill:#666}
svg path{fill:none;stroke-width:1.2;stroke-linejoin:round}svg path.faint{stroke-opacity:.3;stroke-width:1}svg path.ma{stroke-width:2}
svg .epoch{stroke:#bbb;stroke-dasharray:3 3}svg .epoch-label{fill:#999;font-size:10px}svg .resume{stroke:#9a6700;stroke-dasharray:6 2}
svg .nonfinite{fill:#cf222e}
ul.legend{list-style:none;padding:0;margin:4px 0;display:flex;flex-wrap:wrap;gap:4px 16px}
.swatch{display:inline-block;width:14px;height:3px;vertical-align:middle;margin-right:6px}.bad{color:#cf222e}
.samples figure img{max-width:100%;height:auto;image-rendering:pixelated;border:1px solid #ddd}
details{margin:8px 0}summary{cursor:pointer;color:#555}
.note{color:#666}footer{margin-top:32px;color:#888;font-size:12px}
`;

/**
 * The report page as a string.
 *
 * Example: renderTrainingReport({ title: 'shinkai', status: 'running', options, nonDefaults: ['nEpochs'], events })
 *   → '<!doctype html><html lang="en">…'
 */
export function renderTrainingReport(input: TrainingReportInput, options: TrainingReportOptions = {}): string {
  const maxPoints = Math.max(4, Math.floor(options.maxPointsPerSeries ?? DEFAULT_MAX_POINTS_PER_SERIES));
  const maxSamples = Math.max(0, Math.floor(options.maxSamples ?? DEFAULT_MAX_REPORT_SAMPLES));
  const generatedAt = options.generatedAt ?? new Date();
  const { events } = input;

  let iteration = 0;
  let epoch = 0;
  let backend: string | undefined;
  let sessions = 0;
  let end: Extract<TrainEvent, { type: 'end' }> | undefined;
  const epochs: Marker[] = [];
  const resumes: Marker[] = [];
  const checkpoints: Array<Extract<TrainEvent, { type: 'checkpoint' }>> = [];
  const samplesByFile = new Map<string, Extract<TrainEvent, { type: 'sample' }>>();
  for (const e of events) {
    iteration = Math.max(iteration, e.iteration);
    epoch = Math.max(epoch, e.epoch);
    switch (e.type) {
      case 'start':
        sessions++;
        backend = e.backend;
        if (e.resumedFrom !== undefined) resumes.push({ iteration: e.iteration, label: `resumed from ${e.resumedFrom}` });
        break;
      case 'epoch':
        epochs.push({ iteration: e.iteration, label: `epoch ${e.epoch}` });
        break;
      case 'checkpoint':
        checkpoints.push(e);
        break;
      case 'sample':
        // A resumed run may rewrite a sample file: its latest event is the one that describes the file now.
        samplesByFile.delete(e.file);
        samplesByFile.set(e.file, e);
        break;
      case 'end':
        end = e;
        break;
      default:
        break;
    }
  }
  const message = input.message ?? (input.status === 'failed' || input.status === 'stopped' ? end?.message : undefined);
  const code = end?.status === input.status ? end.code : undefined;

  const out: string[] = [];
  out.push(
    '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">' +
      '<meta name="viewport" content="width=device-width, initial-scale=1">' +
      `<title>${escapeHtml(input.title)} — ${escapeHtml(input.status)}</title><style>${STYLE}</style></head><body>`,
  );

  const times = runTimes(events);
  const summary: Array<[string, string]> = [
    ['Status', `<span class="status status-${escapeHtml(input.status)}">${escapeHtml(input.status)}</span>`],
    ['Iteration', escapeHtml(String(iteration))],
    ['Epoch', `${escapeHtml(String(epoch))} <span class="note">(${epochs.length} epoch${epochs.length === 1 ? '' : 's'} completed)</span>`],
    ['Elapsed', escapeHtml(formatDuration(times.elapsedMs))],
    ['Backend', escapeHtml(backend ?? '—')],
    ['Sessions', `${sessions}${resumes.length > 0 ? ` <span class="note">(resumed ${resumes.length}×)</span>` : ''}`],
  ];
  if (times.latest !== undefined) summary.push(['Last event', escapeHtml(times.latest)]);
  out.push(
    `<header><h1>${escapeHtml(input.title)}</h1><dl class="summary">` +
      summary.map(([k, v]) => `<dt>${k}</dt><dd>${v}</dd>`).join('') +
      '</dl></header>',
  );
  if (message !== undefined && message !== '') {
    out.push(
      `<section id="message"><h2>${input.status === 'failed' ? 'Failure' : 'End'}</h2>` +
        `<pre class="message">${code !== undefined ? `${escapeHtml(code)}: ` : ''}${escapeHtml(message)}</pre></section>`,
    );
  }

  const { charts, buckets } = buildCharts(events, maxPoints, input.chartGroups ?? ALL_LOSSES);
  out.push('<section id="losses"><h2>Losses</h2>');
  if (buckets === undefined) {
    out.push('<p class="note">No iteration logged yet.</p>');
  } else {
    out.push(
      `<p class="note">At most ${maxPoints} points per series (min/max per iteration bucket); the bold line is a centred moving average. ` +
        'Dashed grey lines end epochs, dashed brown ones mark resumes, red marks under the axis are non-finite values.</p>',
    );
    for (const chart of charts) out.push(renderChart(chart, buckets, epochs, resumes));
  }
  out.push('</section>');

  const samples = [...samplesByFile.values()].sort((a, b) => b.iteration - a.iteration);
  out.push('<section id="samples" class="samples"><h2>Samples</h2>');
  if (samples.length === 0) out.push('<p class="note">No sample written yet.</p>');
  for (const s of samples.slice(0, maxSamples)) {
    const url = relativeUrl(s.file);
    const caption = `iteration ${s.iteration}, epoch ${s.epoch}`;
    out.push(
      url !== undefined
        ? `<figure><img src="${escapeHtml(url)}" alt="${escapeHtml(`samples at ${caption}`)}" loading="lazy"><figcaption>${escapeHtml(caption)} — <code>${escapeHtml(s.file)}</code></figcaption></figure>`
        : `<figure><figcaption>${escapeHtml(caption)} — <code>${escapeHtml(s.file)}</code> (not a path inside the run folder; not shown)</figcaption></figure>`,
    );
  }
  if (samples.length > maxSamples) out.push(`<p class="note">${samples.length - maxSamples} older sample grid(s) not shown.</p>`);
  out.push('</section>');

  // A checkpoint pruned since (keep-last-k) or written again is listed once, if it is still there.
  const existing = input.checkpoints === undefined ? undefined : new Set(input.checkpoints);
  const listed = new Map<string, Extract<TrainEvent, { type: 'checkpoint' }>>();
  for (const c of checkpoints) {
    if (existing !== undefined && !existing.has(c.folder)) continue;
    listed.delete(c.folder);
    listed.set(c.folder, c);
  }
  out.push('<section id="checkpoints"><h2>Checkpoints</h2>');
  if (listed.size === 0) {
    out.push(`<p class="note">${checkpoints.length === 0 ? 'No checkpoint written yet.' : 'No checkpoint left in the run folder.'}</p>`);
  } else {
    out.push(
      '<table><thead><tr><th>folder</th><th>iteration</th><th>epoch</th><th>written</th></tr></thead><tbody>' +
        [...listed.values()]
          .reverse()
          .map(
            (c) =>
              `<tr><td><code>${escapeHtml(c.folder)}</code></td><td>${c.iteration}</td><td>${c.epoch}</td><td>${escapeHtml(c.time)}</td></tr>`,
          )
          .join('') +
        '</tbody></table>',
    );
  }
  out.push('</section>');

  // The options come last: the ones that differ from the default in view, the others folded away.
  const nonDefaults = new Set(input.nonDefaults);
  const entries = Object.entries(input.options);
  const row = ([name, value]: [string, unknown]): string => {
    const changed = nonDefaults.has(name);
    return (
      `<tr${changed ? ' class="non-default"' : ''}><td>${escapeHtml(name)}${changed ? '<span class="changed">changed</span>' : ''}</td>` +
      `<td class="value">${escapeHtml(optionValue(value))}</td></tr>`
    );
  };
  const table = (rows: Array<[string, unknown]>): string =>
    `<table><thead><tr><th>option</th><th>value</th></tr></thead><tbody>${rows.map(row).join('')}</tbody></table>`;
  const changed = entries.filter(([name]) => nonDefaults.has(name));
  const others = entries.filter(([name]) => !nonDefaults.has(name));
  out.push(
    `<section id="options"><h2>Options</h2><p class="note">${changed.length} of ${entries.length} differ from the default${changed.length > 0 ? ' (highlighted)' : ''}.</p>` +
      (changed.length > 0 ? table(changed) : '') +
      (others.length > 0
        ? `<details><summary>${changed.length > 0 ? `The other ${others.length}` : `All ${others.length}`} options, at their defaults</summary>${table(others)}</details>`
        : '') +
      '</section>',
  );

  let lastLr: number | undefined;
  for (let i = events.length - 1; i >= 0 && lastLr === undefined; i--) {
    const e = events[i]!;
    if (e.type === 'iteration' || e.type === 'epoch') lastLr = e.lr;
  }
  out.push(
    `<footer>Report generated ${escapeHtml(generatedAt.toISOString())}` +
      (lastLr !== undefined ? ` · last learning rate ${escapeHtml(formatNumber(lastLr))}` : '') +
      '</footer></body></html>\n',
  );
  return out.join('');
}

/** Render the report and write it to `file` atomically. */
export async function writeTrainingReport(file: string, input: TrainingReportInput, options: TrainingReportOptions = {}): Promise<void> {
  await writeFileAtomic(file, renderTrainingReport(input, options));
}
