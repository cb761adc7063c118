import { UsageError } from '@scenimefy/io';
import { z } from 'zod';

import { formatOptionsText, nonDefaultOptionNames, optionDefaults, optionIssues, pickOptions, resolveOptions } from './derive';
import {
  booleanOption,
  choiceOption,
  describeOptionKind,
  integerListOption,
  integerOption,
  nullableIntegerOption,
  numberOption,
  optionFields,
  stringOption,
} from './option-schema';

/** A stage's options, declared once. */
const toySchema = z
  .strictObject({
    width: integerOption({ default: 8, min: 1, help: 'width', flag: '--width <n>' }),
    rate: numberOption({ default: 0.5, min: 0, exclusive: true, help: 'rate', flag: '--rate <r>' }),
    decay: numberOption({ default: 0, min: 0, help: 'decay' }),
    shuffle: booleanOption({ default: true, help: 'shuffle', flag: '--no-shuffle' }),
    mode: choiceOption({ choices: ['fast', 'exact', 'both'], default: 'exact', help: 'mode' }),
    taps: integerListOption({ default: [0, 2], min: 0, help: 'taps' }),
    cap: nullableIntegerOption({ default: null, min: 1, help: 'cap', onResume: 'override' }),
    name: stringOption({ default: 'run', pattern: /^[a-z]+$/, description: 'lower-case letters', help: 'name' }),
  })
  .superRefine((o, ctx) => {
    if (o.cap !== null && o.cap < o.width) ctx.addIssue({ code: 'custom', path: ['cap'], message: `must be at least width (${o.width})` });
  });

describe('options declared once', () => {
  it('derive their defaults, frozen and in declaration order', () => {
    const defaults = optionDefaults(toySchema);
    expect(defaults).toEqual({ width: 8, rate: 0.5, decay: 0, shuffle: true, mode: 'exact', taps: [0, 2], cap: null, name: 'run' });
    expect(Object.keys(defaults)).toEqual(Object.keys(toySchema.shape));
    expect(Object.isFrozen(defaults)).toBe(true);
    expect(optionFields(toySchema).map((f) => [f.key, f.meta.onResume])).toEqual([
      ['width', 'fixed'],
      ['rate', 'fixed'],
      ['decay', 'fixed'],
      ['shuffle', 'fixed'],
      ['mode', 'fixed'],
      ['taps', 'fixed'],
      ['cap', 'override'],
      ['name', 'fixed'],
    ]);
  });

  it('resolve given options over the defaults, an undefined value counting as not given', () => {
    const o = resolveOptions(toySchema, { width: 4, mode: 'fast', cap: undefined }, { what: 'toy options' });
    expect(o).toMatchObject({ width: 4, mode: 'fast', cap: null, rate: 0.5 });
  });

  it.each([
    [{ width: 0 }, 'toy options: width: must be an integer ≥ 1, got 0'],
    [{ width: 2.5 }, 'toy options: width: must be an integer ≥ 1, got 2.5'],
    [{ rate: 0 }, 'toy options: rate: must be a number > 0, got 0'],
    [{ decay: Number.NaN }, 'toy options: decay: must be a number ≥ 0, got NaN'],
    [{ decay: Number.POSITIVE_INFINITY }, 'toy options: decay: must be a number ≥ 0, got Infinity'],
    [{ shuffle: 'yes' }, 'toy options: shuffle: must be true or false, got "yes"'],
    [{ mode: 'slow' }, `toy options: mode: must be 'fast', 'exact' or 'both', got "slow"`],
    [{ taps: [] }, 'toy options: taps: must be a non-empty list of integers ≥ 0, got []'],
    [{ taps: [1, -1] }, 'toy options: taps.1: must be a non-empty list of integers ≥ 0, got -1'],
    [{ cap: 0 }, 'toy options: cap: must be an integer ≥ 1 or null, got 0'],
    [{ cap: 4 }, 'toy options: cap: must be at least width (8), got 4'],
    [{ name: 'A/B' }, 'toy options: name: must be lower-case letters, got "A/B"'],
    [{ widht: 3 }, 'toy options: unknown option "widht"'],
    [{ width: 0, rate: 0 }, 'toy options: width: must be an integer ≥ 1, got 0 (and 1 more)'],
  ])('refuse %j in one line naming the option: %s', (given, message) => {
    expect(() => resolveOptions(toySchema, given, { what: 'toy options' })).toThrow(UsageError);
    expect(() => resolveOptions(toySchema, given, { what: 'toy options' })).toThrow(message);
  });

  it('name options in messages as the caller asks (e.g. by flag)', () => {
    expect(optionIssues(toySchema, { width: 0 }, (p) => `--${String(p[0])}`)).toEqual(['--width: must be an integer ≥ 1, got 0']);
    expect(optionIssues(toySchema, { width: 3 })).toEqual([]);
  });

  it('list the non-defaults and print options.txt as CUT does, the default shown where it differs', () => {
    const o = resolveOptions(toySchema, { width: 16, taps: [0, 2], mode: 'both' }, { what: 'toy' });
    expect(nonDefaultOptionNames(toySchema, o)).toEqual(['width', 'mode']);
    expect(formatOptionsText(toySchema, o)).toBe(
      [
        '----------------- Options ---------------',
        '  width: 16\t[default: 8]',
        '   rate: 0.5',
        '  decay: 0',
        'shuffle: true',
        '   mode: "both"\t[default: "exact"]',
        '   taps: [0,2]',
        '    cap: null',
        '   name: "run"',
        '----------------- End -------------------',
        '',
      ].join('\n'),
    );
    expect(pickOptions(z.strictObject({ mode: toySchema.shape.mode, width: toySchema.shape.width }), o)).toEqual({
      mode: 'both',
      width: 16,
    });
  });

  it('describe what each kind takes', () => {
    expect(optionFields(toySchema).map((f) => describeOptionKind(f.meta.kind))).toEqual([
      'an integer ≥ 1',
      'a number > 0',
      'a number ≥ 0',
      'true or false',
      "'fast', 'exact' or 'both'",
      'a non-empty list of integers ≥ 0',
      'an integer ≥ 1 or null',
      'lower-case letters',
    ]);
  });
});
