/** Flags derived from an options schema: parsers from the field kinds, booleans away from their default, help from the schema. */
import {
  booleanOption,
  choiceOption,
  integerListOption,
  integerOption,
  nullableIntegerOption,
  numberOption,
  optionSetRegistry,
  resolveOptions,
  stringOption,
} from '@scenimefy/i2i-core';
import { Command } from 'commander';
import { z } from 'zod';

import { attributeOf, commanderOptions, flagsFromSchema, optionsFromFlags } from './option-flags';

const schema = z.strictObject({
  rate: numberOption({ default: 0.5, min: 0, exclusive: true, help: 'the rate', flag: '--rate <r>', heading: 'Schedule:' }),
  width: integerOption({ default: 8, min: 1, help: 'the width', flag: '--width <n>', heading: 'Networks:' }),
  hidden: integerOption({ default: 1, min: 0, help: 'not on the command line' }),
  shuffle: booleanOption({ default: true, help: 'keep the order', flag: '--no-shuffle', heading: 'Data:' }),
  mirror: booleanOption({ default: false, help: 'mirror the images', flag: '--mirror', heading: 'Data:' }),
  noCrop: booleanOption({ default: false, help: 'no crop', flag: '--no-crop', heading: 'Data:' }),
  mode: choiceOption({ choices: ['fast', 'exact'], default: 'exact', help: 'the mode', flag: '--mode <m>', heading: 'Schedule:' }),
  taps: integerListOption({ default: [0, 4], min: 0, help: 'the taps', flag: '--taps <list>', heading: 'Networks:' }),
  cap: nullableIntegerOption({ default: null, min: 1, help: 'the cap', flag: '--cap <n>', heading: 'Schedule:' }),
  name: stringOption({ default: 'a', pattern: /^[a-z]+$/, description: 'letters', help: 'the name', flag: '--name <s>', heading: 'Data:' }),
});
optionSetRegistry.add(schema, { headings: ['Networks:', 'Data:', 'Schedule:'] });

function parse(argv: string[]): Record<string, unknown> {
  const cmd = new Command('t').exitOverride().configureOutput({ writeErr: () => undefined });
  for (const o of commanderOptions(flagsFromSchema(schema))) cmd.addOption(o);
  cmd.parse(argv, { from: 'user' });
  return optionsFromFlags(cmd.opts(), flagsFromSchema(schema));
}

describe('flagsFromSchema', () => {
  it('gives one flag per declared flag, grouped by heading in the declared order, schema order inside a heading', () => {
    const flags = flagsFromSchema(schema);
    expect(flags.map((f) => [f.group, f.key])).toEqual([
      ['Networks:', 'width'],
      ['Networks:', 'taps'],
      ['Data:', 'shuffle'],
      ['Data:', 'mirror'],
      ['Data:', 'noCrop'],
      ['Data:', 'name'],
      ['Schedule:', 'rate'],
      ['Schedule:', 'mode'],
      ['Schedule:', 'cap'],
    ]);
    expect(flags.map(attributeOf)).toEqual(['width', 'taps', 'shuffle', 'mirror', 'crop', 'name', 'rate', 'mode', 'cap']);
    const help = commanderOptions(flags).map((o) => o.description);
    expect(help).toEqual([
      'the width (default: 8)',
      'the taps (default: 0,4)',
      'keep the order (default: on)',
      'mirror the images (default: off)',
      'no crop (default: off)',
      'the name (default: a)',
      'the rate (default: 0.5)',
      'the mode (default: exact)',
      'the cap (default: none)',
    ]);
  });

  it('maps the given flags back to option names, booleans set away from their default', () => {
    expect(parse([])).toEqual({});
    expect(parse(['--no-shuffle', '--mirror', '--no-crop', '--taps', '1, 2', '--cap', 'none', '--width', '3', '--mode', 'fast'])).toEqual({
      shuffle: false,
      mirror: true,
      noCrop: true,
      taps: [1, 2],
      cap: null,
      width: 3,
      mode: 'fast',
    });
    expect(resolveOptions(schema, parse(['--cap', '12']), { what: 't' }).cap).toBe(12);
  });

  it.each([
    [['--width', '0'], '--width takes an integer ≥ 1, got "0"'],
    [['--width', '2.5'], '--width takes an integer ≥ 1, got "2.5"'],
    [['--rate', '0'], '--rate takes a number > 0, got "0"'],
    [['--rate', ''], '--rate takes a number > 0, got ""'],
    [['--cap', '0'], '--cap takes an integer ≥ 1 or none, got "0"'],
    [['--taps', '1,x'], '--taps takes comma-separated integers ≥ 0 such as 0,4, got "1,x"'],
  ])('refuse %j: %s', (argv, message) => {
    expect(() => parse(argv)).toThrow(message);
  });
});
