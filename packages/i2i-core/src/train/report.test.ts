import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import type { TrainEvent } from './events';
import { DEFAULT_MAX_POINTS_PER_SERIES, escapeHtml, renderTrainingReport, writeTrainingReport } from './report';
import type { TrainingReportInput } from './report';
import { SEMI_CUT_DESCRIPTION } from './semi-cut-trainable';

const T0 = Date.parse('2025-01-31T12:00:00.000Z');
const at = (seconds: number): string => new Date(T0 + seconds * 1000).toISOString();

const LOSS_KEYS = ['D', 'D_real', 'D_fake', 'D_p', 'D_p_real', 'D_p_fake', 'G', 'G_GAN', 'G_GAN_p', 'NCE_s', 'SRC', 'HDCE', 'HDCE_Y'];

/** A run of `iterations` iterations over `epochs` equal epochs, one iteration per second, a checkpoint per epoch. */
function runEvents(
  iterations: number,
  epochs: number,
  lossValue: (key: string, it: number) => number = (k, it) => 1 + Math.sin(it / 50 + k.length),
): TrainEvent[] {
  const perEpoch = Math.ceil(iterations / epochs);
  const events: TrainEvent[] = [{ type: 'start', time: at(0), iteration: 0, epoch: 1, backend: 'tensorflow', options: {} }];
  for (let it = 1; it <= iterations; it++) {
    const epoch = Math.ceil(it / perEpoch);
    const losses: Record<string, number> = {};
    for (const key of LOSS_KEYS) losses[key] = lossValue(key, it);
    events.push({ type: 'iteration', time: at(it), iteration: it, epoch, epochIter: (it - 1) % perEpoch, lr: 0.0002, losses, seconds: 1 });
    if (it % perEpoch === 0 || it === iterations) {
      events.push({ type: 'epoch', time: at(it), epoch, iteration: it, lr: 0.0002, seconds: perEpoch });
      events.push({ type: 'checkpoint', time: at(it), iteration: it, epoch, folder: `checkpoints/iter-${it}` });
    }
  }
  return events;
}

function input(events: TrainEvent[], overrides: Partial<TrainingReportInput> = {}): TrainingReportInput {
  return {
    title: 'shinkai',
    status: 'running',
    options: { lr: 0.0002, nEpochs: 10, dataroot: 'data/s2a' },
    nonDefaults: ['nEpochs'],
    events,
    chartGroups: SEMI_CUT_DESCRIPTION.chartGroups,
    ...overrides,
  };
}

const VOID = new Set(['meta', 'img', 'br', 'hr', 'link', 'input']);
/** Every tag closed in order (SVG children self-close); throws on the first mismatch. Enough to catch broken markup. */
function assertBalanced(html: string): void {
  const stack: string[] = [];
  const body = html.replace(/^<!doctype html>\n/, '');
  for (const m of body.matchAll(/<(\/?)([a-zA-Z][a-zA-Z0-9-]*)([^<>]*?)(\/?)>/g)) {
    const [, closing, name, , selfClosing] = m;
    if (selfClosing === '/' || VOID.has(name!)) continue;
    if (closing === '/') {
      const open = stack.pop();
      if (open !== name) throw new Error(`</${name}> closes <${open}> at ${m.index}`);
    } else {
      stack.push(name!);
    }
  }
  expect(stack).toEqual([]);
  // No stray angle bracket outside a tag: text and attributes are escaped.
  expect(body.replace(/<(\/?)([a-zA-Z][a-zA-Z0-9-]*)([^<>]*?)(\/?)>/g, '')).not.toMatch(/[<>]/);
}

/** The points of every `<path>` of a series (class raw or ma). */
function paths(html: string, cls: 'raw' | 'ma'): Array<{ series: string; points: Array<[number, number]>; moves: number }> {
  const out: Array<{ series: string; points: Array<[number, number]>; moves: number }> = [];
  for (const m of html.matchAll(/<path class="([^"]*)" data-series="([^"]*)" stroke="[^"]*" d="([^"]*)"\/>/g)) {
    if (m[1]!.split(' ')[0] !== cls) continue;
    const d = m[3]!;
    const points = [...d.matchAll(/[ML](-?[\d.]+),(-?[\d.]+)/g)].map((p) => [Number(p[1]), Number(p[2])] as [number, number]);
    expect(points.length).toBe((d.match(/[ML]/g) ?? []).length);
    out.push({ series: m[2]!, points, moves: (d.match(/M/g) ?? []).length });
  }
  return out;
}

describe('renderTrainingReport', () => {
  it('is one balanced, self-contained HTML page with header, options, charts, samples and checkpoints', () => {
    const events = runEvents(300, 3);
    events.push({ type: 'sample', time: at(150), iteration: 150, epoch: 2, file: 'samples/iter-000150.png' });
    const html = renderTrainingReport(input(events));
    expect(html.startsWith('<!doctype html>\n<html lang="en">')).toBe(true);
    assertBalanced(html);
    expect(html).not.toMatch(/<script|<link|@import|url\(|https?:\/\//i);
    for (const id of ['options', 'losses', 'samples', 'checkpoints']) expect(html).toContain(`<section id="${id}"`);
    expect(html).toContain('<dt>Iteration</dt><dd>300</dd>');
    expect(html).toContain('<dt>Epoch</dt><dd>3 <span class="note">(3 epochs completed)</span></dd>');
    expect(html).toContain('<dt>Elapsed</dt><dd>5 min 00 s</dd>');
    expect(html).toContain('<dt>Backend</dt><dd>tensorflow</dd>');
    // One chart per group, each series in its group.
    const chartOf = (key: string): string => {
      const idx = html.indexOf(`data-series="${key}"`);
      return html.slice(html.lastIndexOf('<figure class="chart" id="chart-', idx)).match(/id="chart-([^"]+)"/)![1]!;
    };
    for (const k of ['D', 'D_real', 'D_fake']) expect(chartOf(k)).toBe('D');
    for (const k of ['D_p', 'D_p_real', 'D_p_fake']) expect(chartOf(k)).toBe('D_p');
    for (const k of ['G', 'G_GAN', 'G_GAN_p', 'NCE_s', 'SRC', 'HDCE', 'HDCE_Y']) expect(chartOf(k)).toBe('G');
    expect(chartOf('lr')).toBe('lr');
    // Axes with tick labels, and the three epoch ends marked.
    expect(html.match(/<text class="tick"/g)!.length).toBeGreaterThan(20);
    expect(html.match(/<line class="epoch"/g)!.length).toBe(4 * 3);
    expect(html).toContain('<text class="epoch-label"');
    // Checkpoints newest first.
    const folders = [...html.matchAll(/<td><code>(checkpoints\/[^<]+)<\/code>/g)].map((m) => m[1]);
    expect(folders).toEqual(['checkpoints/iter-300', 'checkpoints/iter-200', 'checkpoints/iter-100']);
  });

  it('draws every point of a short run and a moving average only once there are many', () => {
    const short = renderTrainingReport(input(runEvents(40, 1)));
    const raw = paths(short, 'raw');
    expect(raw).toHaveLength(LOSS_KEYS.length + 1);
    for (const p of raw) expect(p.points).toHaveLength(40);
    expect(paths(short, 'ma')).toHaveLength(0);
    // Points go left to right and stay inside the plot.
    const xs = raw[0]!.points.map(([x]) => x);
    expect(xs).toEqual([...xs].sort((a, b) => a - b));

    const long = renderTrainingReport(input(runEvents(1000, 2)));
    const ma = paths(long, 'ma');
    expect(ma).toHaveLength(LOSS_KEYS.length);
    for (const p of ma) expect(p.points.length).toBeGreaterThan(100);
  });

  it('bounds the points per series for a long run and keeps its spikes (min/max buckets)', () => {
    const iterations = 20_000;
    const spikeAt = 13_579;
    const events = runEvents(iterations, 20, (k, it) =>
      k === 'G' && it === spikeAt ? 1000 : 1 + 0.5 * Math.sin(it / 300) + (it % 7) / 100,
    );
    const started = performance.now();
    const html = renderTrainingReport(input(events));
    const ms = performance.now() - started;
    for (const p of paths(html, 'raw')) expect(p.points.length).toBeLessThanOrEqual(DEFAULT_MAX_POINTS_PER_SERIES);
    for (const p of paths(html, 'ma')) expect(p.points.length).toBeLessThanOrEqual(DEFAULT_MAX_POINTS_PER_SERIES);
    // The spike survives downsampling: G's highest point is the chart's top value.
    const g = paths(html, 'raw').find((p) => p.series === 'G')!;
    const top = Math.min(...g.points.map(([, y]) => y));
    expect(top).toBeCloseTo(16, 0); // the plot's top edge (margin 16) is the y of the largest value
    expect(html.length).toBeLessThan(1_500_000);
    expect(ms).toBeLessThan(20_000);

    const tight = renderTrainingReport(input(events), { maxPointsPerSeries: 100 });
    for (const p of [...paths(tight, 'raw'), ...paths(tight, 'ma')]) expect(p.points.length).toBeLessThanOrEqual(100);
    // 20 epochs: all marked.
    expect(tight.match(/<line class="epoch"/g)!.length).toBe(4 * 20);
  });

  it('thins epoch marks of a run with very many epochs', () => {
    const html = renderTrainingReport(input(runEvents(2000, 500)));
    const perChart = html.match(/<line class="epoch"/g)!.length / 4;
    expect(perChart).toBeGreaterThan(20);
    expect(perChart).toBeLessThanOrEqual(40);
    expect(html).not.toContain('<text class="epoch-label"');
  });

  it('handles NaN and ±Infinity losses of a failed run: lines break, values are marked, nothing non-finite is drawn', () => {
    const events = runEvents(200, 1, (k, it) => {
      if (k === 'G' && it >= 150) return Number.NaN;
      if (k === 'D' && it === 120) return Number.POSITIVE_INFINITY;
      if (k === 'SRC' && it === 60) return Number.NEGATIVE_INFINITY;
      return 0.5 + (it % 10) / 20;
    });
    events.push({
      type: 'end',
      time: at(201),
      iteration: 200,
      epoch: 1,
      status: 'failed',
      message: 'loss G is NaN at iteration 150',
      code: 'E_NUMERIC',
    });
    const html = renderTrainingReport(input(events, { status: 'failed' }));
    assertBalanced(html);
    for (const m of html.matchAll(/ (?:d|x|y|x1|x2|y1|y2)="([^"]*)"/g)) expect(m[1]).not.toMatch(/NaN|Infinity/);
    expect(html).toContain('G <span class="bad">(51 non-finite, first at iteration 150)</span>');
    expect(html).toContain('(1 non-finite, first at iteration 120)');
    expect(html).toContain('(1 non-finite, first at iteration 60)');
    expect(html.match(/<rect class="nonfinite" data-series="G"/g)).toHaveLength(51);
    const raw = paths(html, 'raw');
    expect(raw.find((p) => p.series === 'G')!.points).toHaveLength(149);
    expect(raw.find((p) => p.series === 'D')!.moves).toBe(2);
    expect(raw.find((p) => p.series === 'D')!.points).toHaveLength(199);
    // The failure is shown with its code, and the status says failed.
    expect(html).toContain('<pre class="message">E_NUMERIC: loss G is NaN at iteration 150</pre>');
    expect(html).toContain('<span class="status status-failed">failed</span>');
  });

  it('charts a series that is non-finite throughout without drawing it', () => {
    const html = renderTrainingReport(input(runEvents(30, 1, (k) => (k === 'G' ? Number.NaN : 1))));
    expect(paths(html, 'raw').find((p) => p.series === 'G')!.points).toHaveLength(0);
    expect(html).toContain('(30 non-finite, first at iteration 1)');
    assertBalanced(html);
  });

  it('escapes every string it puts into the page', () => {
    const evil = `<script>alert("x")</script>&'`;
    const events: TrainEvent[] = [
      { type: 'start', time: at(0), iteration: 0, epoch: 1, backend: evil, options: {} },
      { type: 'iteration', time: at(1), iteration: 1, epoch: 1, epochIter: 0, lr: 1e-4, losses: { [evil]: 1, G: 2 }, seconds: 1 },
      { type: 'sample', time: at(1), iteration: 1, epoch: 1, file: `samples/a "b" <c>&d.png` },
      { type: 'checkpoint', time: at(1), iteration: 1, epoch: 1, folder: `checkpoints/<i>` },
    ];
    const html = renderTrainingReport(
      input(events, { title: evil, status: 'stopped', options: { [evil]: evil, nested: { a: evil } }, nonDefaults: [evil], message: evil }),
    );
    assertBalanced(html);
    expect(html).not.toContain('<script');
    expect(html).not.toContain('<i>');
    expect(html).toContain(`<h1>${escapeHtml(evil)}</h1>`);
    expect(html).toContain(`<dd>${escapeHtml(evil)}</dd>`);
    expect(html).toContain(`<pre class="message">${escapeHtml(evil)}</pre>`);
    expect(html).toContain(`<tr class="non-default"><td>${escapeHtml(evil)}<span class="changed">changed</span></td>`);
    expect(html).toContain(escapeHtml(JSON.stringify({ a: evil })));
    // The image URL is percent-encoded per segment, then escaped for the attribute.
    expect(html).toContain('<img src="samples/a%20%22b%22%20%3Cc%3E%26d.png"');
    expect(escapeHtml(`<>&"'`)).toBe('&#60;&#62;&#38;&#34;&#39;');
  });

  it('lists sample grids newest first with relative paths and captions, once per file, bounded', () => {
    const events = runEvents(100, 2);
    for (const it of [20, 40, 60, 80, 100])
      events.push({ type: 'sample', time: at(it), iteration: it, epoch: it <= 50 ? 1 : 2, file: `samples/iter-${it}.png` });
    // A resumed run wrote iteration 40's grid again.
    events.push({ type: 'sample', time: at(140), iteration: 40, epoch: 1, file: 'samples/iter-40.png' });
    events.push({ type: 'sample', time: at(150), iteration: 50, epoch: 1, file: '../outside.png' });
    const html = renderTrainingReport(input(events), { maxSamples: 4 });
    const srcs = [...html.matchAll(/<img src="([^"]+)"/g)].map((m) => m[1]);
    // Newest first; the fourth newest is outside the run folder and gets no <img>.
    expect(srcs).toEqual(['samples/iter-100.png', 'samples/iter-80.png', 'samples/iter-60.png']);
    expect(html).toContain('<figcaption>iteration 100, epoch 2 — <code>samples/iter-100.png</code></figcaption>');
    expect(html).toContain('(not a path inside the run folder; not shown)');
    expect(html).toContain('2 older sample grid(s) not shown.');
    for (const src of srcs) expect(src).not.toMatch(/^\/|^[a-z]+:/i);
  });

  it('says so when nothing is logged yet, and highlights exactly the non-defaults', () => {
    const html = renderTrainingReport(input([]));
    assertBalanced(html);
    expect(html).toContain('No iteration logged yet.');
    expect(html).toContain('No sample written yet.');
    expect(html).toContain('No checkpoint written yet.');
    expect(html.match(/<tr class="non-default">/g)).toHaveLength(1);
    expect(html).toContain('<tr class="non-default"><td>nEpochs<span class="changed">changed</span></td><td class="value">10</td></tr>');
    expect(html).toContain('<tr><td>dataroot</td><td class="value">data/s2a</td></tr>');
  });

  it('sums the wall time of each session of a resumed run and marks the resume', () => {
    const first = runEvents(100, 1).filter((e) => e.iteration <= 50);
    const second: TrainEvent[] = [
      { type: 'start', time: at(10_000), iteration: 50, epoch: 1, backend: 'wasm', resumedFrom: 'checkpoints/iter-50', options: {} },
      ...runEvents(100, 1)
        .filter((e) => e.iteration > 50)
        .map((e) => ({ ...e, time: at(Date.parse(e.time) / 1000 - T0 / 1000 + 10_000 - 50) })),
    ];
    const html = renderTrainingReport(input([...first, ...second]));
    expect(html).toContain('<dt>Elapsed</dt><dd>1 min 40 s</dd>');
    expect(html).toContain('<dt>Backend</dt><dd>wasm</dd>');
    expect(html).toContain('<dt>Sessions</dt><dd>2 <span class="note">(resumed 1×)</span></dd>');
    expect(html.match(/<line class="resume"/g)).toHaveLength(4);
  });
});

describe('report layout (issue 12 #15)', () => {
  const options = Object.fromEntries(Array.from({ length: 41 }, (_, i) => [`option${i}`, i]));

  it('puts the losses and samples first, then the checkpoints, and the options last with the defaults folded away', () => {
    const events = runEvents(30, 1);
    events.push({ type: 'sample', time: at(30), iteration: 30, epoch: 1, file: 'samples/iter-30.png' });
    const html = renderTrainingReport(input(events, { options, nonDefaults: ['option3', 'option7'] }));
    assertBalanced(html);
    const at_ = (id: string): number => html.indexOf(`<section id="${id}"`);
    expect(at_('losses')).toBeGreaterThan(-1);
    expect(at_('losses')).toBeLessThan(at_('samples'));
    expect(at_('samples')).toBeLessThan(at_('checkpoints'));
    expect(at_('checkpoints')).toBeLessThan(at_('options'));
    const section = html.slice(at_('options'));
    expect(section).toContain('2 of 41 differ from the default (highlighted).');
    // The two non-defaults in view, the 39 others inside <details>.
    const [shown, folded] = section.split('<details>');
    expect(shown!.match(/<tr class="non-default">/g)).toHaveLength(2);
    expect(shown).not.toContain('<td>option0</td>');
    expect(folded).toContain('<summary>The other 39 options, at their defaults</summary>');
    expect(folded!.match(/<tr><td>option\d+<\/td>/g)).toHaveLength(39);
    const none = renderTrainingReport(input(events, { options, nonDefaults: [] }));
    expect(none).toContain('<summary>All 41 options, at their defaults</summary>');
  });

  it('lists only the checkpoints that still exist', () => {
    const events = runEvents(300, 3); // checkpoints at 100, 200, 300
    const html = renderTrainingReport(input(events, { checkpoints: ['checkpoints/iter-200', 'checkpoints/iter-300'] }));
    const folders = [...html.matchAll(/<td><code>(checkpoints\/[^<]+)<\/code>/g)].map((m) => m[1]);
    expect(folders).toEqual(['checkpoints/iter-300', 'checkpoints/iter-200']);
    const gone = renderTrainingReport(input(events, { checkpoints: [] }));
    expect(gone).toContain('No checkpoint left in the run folder.');
  });

  it('charts a model without groups as one chart of every loss, and puts losses no group names into the rest group', () => {
    const events = runEvents(20, 1);
    const plain = renderTrainingReport(input(events, { chartGroups: undefined }));
    expect([...plain.matchAll(/<figure class="chart" id="chart-([^"]+)"/g)].map((m) => m[1])).toEqual(['losses', 'lr']);
    const toy = renderTrainingReport(
      input(events, { chartGroups: [{ id: 'd', title: 'D', losses: ['D'], matches: (k) => k.startsWith('D_') }] }),
    );
    expect([...toy.matchAll(/<figure class="chart" id="chart-([^"]+)"/g)].map((m) => m[1])).toEqual(['d', 'other', 'lr']);
    const legend = toy.slice(toy.indexOf('id="chart-d"'), toy.indexOf('id="chart-other"'));
    expect([...legend.matchAll(/data-series="([^"]+)" stroke/g)].map((m) => m[1]).filter((k, i, a) => a.indexOf(k) === i)).toEqual([
      'D',
      'D_fake',
      'D_p',
      'D_p_fake',
      'D_p_real',
      'D_real',
    ]);
  });
});

describe('writeTrainingReport', () => {
  it('writes the rendered page atomically', async () => {
    const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'scenimefy-report-'));
    try {
      const file = path.join(dir, 'report.html');
      const generatedAt = new Date('2025-02-01T00:00:00.000Z');
      await fsp.writeFile(file, 'old');
      await writeTrainingReport(file, input(runEvents(20, 1)), { generatedAt });
      expect(await fsp.readFile(file, 'utf8')).toBe(renderTrainingReport(input(runEvents(20, 1)), { generatedAt }));
      expect(await fsp.readdir(dir)).toEqual(['report.html']);
      await expect(writeTrainingReport(path.join(dir, 'missing', 'report.html'), input([]))).rejects.toThrow(/missing/);
    } finally {
      await fsp.rm(dir, { recursive: true, force: true });
    }
  });
});
