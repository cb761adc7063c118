/**
 * The `scenimefy train` flag table against i2i-core's TRAIN_DEFAULTS: every option has exactly one flag, the
 * default --help shows is the real one, and parsed flags map back to option names.
 */
import { TRAIN_DEFAULTS, resolvedTrainOptions } from '@scenimefy/i2i-core';
import { Command } from 'commander';

import { runCli } from '../cli-harness';
import { TRAIN_FLAGS, attributeOf, optionsFromFlags, trainOptions } from './train-flags';

describe('train flags', () => {
  it('cover every training option once, with its real default', () => {
    const keys = TRAIN_FLAGS.map((f) => f.key);
    expect([...keys].sort()).toEqual(Object.keys(TRAIN_DEFAULTS).sort());
    expect(new Set(keys).size).toBe(keys.length);
    for (const f of TRAIN_FLAGS)
      expect({ key: f.key, value: f.shownDefault }).toEqual({
        key: f.key,
        value: (TRAIN_DEFAULTS as unknown as Record<string, unknown>)[f.key],
      });
  });

  it('give only the options the user set, under their option names', () => {
    const cmd = new Command('t').exitOverride();
    for (const o of trainOptions()) cmd.addOption(o);
    cmd.parse(
      [
        '--lambda-nce-s',
        '0.01',
        '--no-flip',
        '--no-dce-idt',
        '--nce-layers',
        '0,4',
        '--pair-weight-schedule',
        'cosine',
        '--max-iterations',
        '7',
      ],
      { from: 'user' },
    );
    const options = optionsFromFlags(cmd.opts());
    expect(options).toEqual({
      lambdaNceS: 0.01,
      noFlip: true,
      dceIdt: false,
      nceLayers: [0, 4],
      pairWeightSchedule: 'cosine',
      maxIterations: 7,
    });
    expect(resolvedTrainOptions(options as never).lambdaNceS).toBe(0.01);
    const none = new Command('t').exitOverride();
    for (const o of trainOptions()) none.addOption(o);
    none.parse([], { from: 'user' });
    expect(optionsFromFlags(none.opts())).toEqual({});
  });

  it('name distinct commander attributes', () => {
    const attrs = TRAIN_FLAGS.map(attributeOf);
    expect(new Set(attrs).size).toBe(attrs.length);
  });

  it('are all documented by `scenimefy train --help`, each with its default', async () => {
    const r = await runCli(['train', '--help']);
    expect(r.code).toBe(0);
    const help = r.stdout.replace(/\s+/g, ' ');
    for (const f of TRAIN_FLAGS) {
      const flag = f.flags.split(' ')[0] as string;
      expect(help).toContain(flag);
    }
    expect(help).toContain('--lambda-nce-s <w>');
    expect(help).toMatch(/EFFECTIVE weight of StylePatchNCE.*\(default: 0\.0025\)/);
    expect(help).toMatch(/--max-iterations <n>.*\(default: none\)/);
    for (const required of ['--unpaired <dir>', '--paired <dir|manifest>', '--out <run>', '--resume', '--backend <name>'])
      expect(help).toContain(required);
  });

  it('refuse bad values with a one-line reason', async () => {
    const r = await runCli(['train', '--unpaired', 'a', '--paired', 'b', '--out', 'c', '--lr', '-1']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--lr takes a number > 0, got "-1"');
  });
});
