/**
 * Command-line flags derived from an options schema (i2i-core's options/option-schema.ts): one flag per field
 * that declares one, with the field's help, its default in `--help`, a parser from the field's kind and its
 * `--help` heading. Commander gets no defaults, so only the flags the user gave reach the options; the schema
 * fills in the rest when the options are resolved.
 */
import { describeOptionKind, optionFields, optionSetRegistry, type OptionKind, type OptionsSchema } from '@scenimefy/i2i-core';
import { InvalidArgumentError, Option } from 'commander';

export interface SchemaFlag {
  /** Commander flag spec, e.g. `--lambda-src <w>`. */
  readonly flags: string;
  /** The option it sets. */
  readonly key: string;
  readonly help: string;
  /** The option's default (what `--help` shows). */
  readonly shownDefault: unknown;
  readonly parse?: (value: string) => unknown;
  readonly choices?: readonly string[];
  /** Boolean options: the flag sets the value away from its default (`--no-flip` sets noFlip true, `--no-dce-idt` sets dceIdt false). */
  readonly boolean?: 'sets-true' | 'sets-false';
  /** The `--help` heading. */
  readonly group: string;
  /** Whether a resumed run takes a new value of it (`override`) or keeps the one it started with (`fixed`). */
  readonly onResume: 'fixed' | 'override';
}

/** What a nullable option's parser returns for `none`: commander turns a parsed null into '' (its "no value"). */
const NONE = Symbol('none');

function longFlag(flags: string): string {
  return (flags.split(/[ ,]+/).find((p) => p.startsWith('--')) as string).slice(2);
}

/** A parser from the field's kind: `--ngf takes an integer ≥ 1, got "x"`. Choices and strings are left to commander and the schema. */
function parserFor(flag: string, kind: OptionKind, shownDefault: unknown): ((value: string) => unknown) | undefined {
  const refuse = (value: string, what = describeOptionKind(kind)): never => {
    throw new InvalidArgumentError(`${flag} takes ${what}, got "${value}"`);
  };
  switch (kind.type) {
    case 'integer':
      return (value) => {
        if (kind.nullable && value === 'none') return NONE;
        const n = Number(value);
        if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < kind.min) {
          return refuse(value, `an integer ≥ ${kind.min}${kind.nullable ? ' or none' : ''}`);
        }
        return n;
      };
    case 'number':
      return (value) => {
        const n = Number(value);
        if (value.trim() === '' || !Number.isFinite(n) || (kind.exclusive ? n <= kind.min : n < kind.min)) return refuse(value);
        return n;
      };
    case 'integer-list':
      return (value) => {
        const parts = value.split(',').map((p) => p.trim());
        if (parts.some((p) => !/^\d+$/.test(p) || Number(p) < kind.min)) {
          return refuse(value, `comma-separated integers ≥ ${kind.min} such as ${shown(shownDefault)}`);
        }
        return parts.map(Number);
      };
    default:
      return undefined;
  }
}

/** The flags of every field of `schema` that has one, grouped by heading in the order the schema's headings give. */
export function flagsFromSchema(schema: OptionsSchema): SchemaFlag[] {
  const headings = optionSetRegistry.get(schema)?.headings ?? [];
  const flags: SchemaFlag[] = [];
  for (const { key, meta } of optionFields(schema)) {
    if (meta.flag === undefined) continue;
    const group = meta.heading ?? 'Options:';
    const base = { flags: meta.flag, key, help: meta.help, shownDefault: meta.default, group, onResume: meta.onResume };
    if (meta.kind.type === 'boolean') {
      flags.push({ ...base, boolean: meta.default === true ? 'sets-false' : 'sets-true' });
      continue;
    }
    const parse = parserFor(`--${longFlag(meta.flag)}`, meta.kind, meta.default);
    flags.push({
      ...base,
      ...(parse !== undefined ? { parse } : {}),
      ...(meta.kind.type === 'choice' ? { choices: meta.kind.choices } : {}),
    });
  }
  const rank = (group: string): number => {
    const i = headings.indexOf(group);
    return i === -1 ? headings.length : i;
  };
  // Stable: within a heading the schema's order.
  return flags
    .map((f, i) => ({ f, i }))
    .sort((a, b) => rank(a.f.group) - rank(b.f.group) || a.i - b.i)
    .map(({ f }) => f);
}

/** A default as `--help` shows it. */
export function shown(value: unknown): string {
  if (value === null) return 'none';
  if (Array.isArray(value)) return value.join(',');
  // 0.05 * 0.05 is 0.0025000000000000005 in binary; help shows the decimal a user would type.
  if (typeof value === 'number') return String(Number(value.toPrecision(12)));
  return String(value);
}

/** Commander options for the flags; no commander defaults, so only flags the user gave reach the options. */
export function commanderOptions(flags: readonly SchemaFlag[]): Option[] {
  return flags.map((f) => {
    const help = f.boolean
      ? `${f.help} (default: ${f.shownDefault === true ? 'on' : 'off'})`
      : `${f.help} (default: ${shown(f.shownDefault)})`;
    const option = new Option(f.flags, help).helpGroup(f.group);
    if (f.choices) option.choices([...f.choices]);
    if (f.parse) option.argParser(f.parse as (value: string, previous: unknown) => unknown);
    return option;
  });
}

/** The long flag a user types: `--lambda-nce-s`, `--no-flip`. */
export function flagName(flag: SchemaFlag): string {
  return `--${longFlag(flag.flags)}`;
}

/** Commander's attribute name of a flag (`--lambda-nce-s` → lambdaNceS, `--no-flip` → flip). */
export function attributeOf(flag: SchemaFlag): string {
  return longFlag(flag.flags)
    .replace(/^no-/, '')
    .replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

/** The options the user set on the command line, from commander's parsed values. */
export function optionsFromFlags(values: Record<string, unknown>, flags: readonly SchemaFlag[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const f of flags) {
    const value = values[attributeOf(f)];
    if (f.boolean) {
      // A negating flag's attribute is false when given (commander's true by default is ignored); a plain one is true.
      const given = f.flags.startsWith('--no-') ? value === false : value === true;
      if (given) out[f.key] = f.boolean === 'sets-true';
      continue;
    }
    if (value !== undefined) out[f.key] = value === NONE ? null : value;
  }
  return out;
}
