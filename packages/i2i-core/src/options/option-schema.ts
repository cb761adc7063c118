/**
 * Options declared once. Each field of an options schema is a zod schema built by one of the constructors here,
 * which records its kind, default, help text and, for the command line, its flag and `--help` heading, and
 * whether a resumed run may change it. Everything else is derived from the schema (options/derive.ts, and the
 * commander flags in @scenimefy/cli): the defaults, validation with `field: message` errors, CUT's options.txt
 * layout, the non-default list, the flags and `--help`.
 *
 * A stage declares its options as one or more groups (`z.strictObject` of these fields, cross-field rules as a
 * `superRefine`) and spreads the groups' shapes into its run's schema; the field order is the order options.txt,
 * run.json and the non-default list use.
 *
 * Browser-safe: zod only.
 */
import { z } from 'zod';

/** What values a field takes; drives its zod checks, its error messages and its command-line parser. */
export type OptionKind =
  | { readonly type: 'integer'; readonly min: number; readonly nullable: boolean }
  | { readonly type: 'number'; readonly min: number; readonly exclusive: boolean }
  | { readonly type: 'boolean' }
  | { readonly type: 'choice'; readonly choices: readonly string[] }
  | { readonly type: 'integer-list'; readonly min: number }
  | { readonly type: 'string'; readonly description: string };

/** Whether a resumed run keeps the value it started with (`'fixed'`) or takes a new one given on resume (`'override'`). */
export type OnResume = 'fixed' | 'override';

export interface OptionMeta {
  readonly kind: OptionKind;
  /** The value when the option is not given. */
  readonly default: unknown;
  /** One line for `--help` and the docs. */
  readonly help: string;
  /**
   * Commander flag: `--lambda-src <w>` for a value; for a boolean the flag that turns it away from its default
   * (`--no-flip` sets noFlip true, `--no-dce-idt` sets dceIdt false). Absent: not on the command line.
   */
  readonly flag?: string;
  /** The `--help` heading the flag is listed under (e.g. `Losses:`); headings appear in the order of `OptionSetMeta.headings`. */
  readonly heading?: string;
  readonly onResume: OnResume;
}

/** The metadata of every option field, keyed by the field's zod schema (not the global registry: it stays out of JSON Schema). */
export const optionMetaRegistry = z.registry<OptionMeta>();

interface CommonSpec {
  readonly help: string;
  readonly flag?: string;
  readonly heading?: string;
  /** Default 'fixed': a resumed run continues as it was configured. */
  readonly onResume?: OnResume;
}

function registered<S extends z.ZodType>(schema: S, kind: OptionKind, defaultValue: unknown, spec: CommonSpec): S {
  optionMetaRegistry.add(schema, {
    kind,
    default: defaultValue,
    help: spec.help,
    ...(spec.flag !== undefined ? { flag: spec.flag } : {}),
    ...(spec.heading !== undefined ? { heading: spec.heading } : {}),
    onResume: spec.onResume ?? 'fixed',
  });
  return schema;
}

/** `an integer ≥ 1`, `a number > 0`, `'a', 'b' or 'c'`: what the field takes, as messages and `--help` say it. */
export function describeOptionKind(kind: OptionKind): string {
  switch (kind.type) {
    case 'integer':
      return `an integer ≥ ${kind.min}${kind.nullable ? ' or null' : ''}`;
    case 'number':
      return `a number ${kind.exclusive ? '>' : '≥'} ${kind.min}`;
    case 'boolean':
      return 'true or false';
    case 'choice': {
      const quoted = kind.choices.map((c) => `'${c}'`);
      return quoted.length === 1 ? (quoted[0] as string) : `${quoted.slice(0, -1).join(', ')} or ${quoted.at(-1)}`;
    }
    case 'integer-list':
      return `a non-empty list of integers ≥ ${kind.min}`;
    case 'string':
      return kind.description;
  }
}

const mustBe = (kind: OptionKind): { error: string } => ({ error: `must be ${describeOptionKind(kind)}` });

/** An integer field with a lower bound. */
export function integerOption(spec: CommonSpec & { readonly default: number; readonly min: number }) {
  const kind: OptionKind = { type: 'integer', min: spec.min, nullable: false };
  return registered(z.int(mustBe(kind)).min(spec.min, mustBe(kind)).default(spec.default), kind, spec.default, spec);
}

/** An integer field that may be null (shown as `none` on the command line). */
export function nullableIntegerOption(spec: CommonSpec & { readonly default: number | null; readonly min: number }) {
  const kind: OptionKind = { type: 'integer', min: spec.min, nullable: true };
  const schema = z.union([z.int(mustBe(kind)).min(spec.min, mustBe(kind)), z.null()], mustBe(kind)).default(spec.default);
  return registered(schema, kind, spec.default, spec);
}

/** A finite number ≥ `min` (or > `min` with `exclusive`). */
export function numberOption(spec: CommonSpec & { readonly default: number; readonly min: number; readonly exclusive?: boolean }) {
  const exclusive = spec.exclusive ?? false;
  const kind: OptionKind = { type: 'number', min: spec.min, exclusive };
  const base = z.number(mustBe(kind));
  const bounded = exclusive ? base.gt(spec.min, mustBe(kind)) : base.min(spec.min, mustBe(kind));
  return registered(bounded.default(spec.default), kind, spec.default, spec);
}

export function booleanOption(spec: CommonSpec & { readonly default: boolean }) {
  const kind: OptionKind = { type: 'boolean' };
  return registered(z.boolean(mustBe(kind)).default(spec.default), kind, spec.default, spec);
}

/** One of a few names. */
export function choiceOption<const C extends readonly [string, ...string[]]>(
  spec: CommonSpec & { readonly choices: C; readonly default: C[number] },
) {
  const kind: OptionKind = { type: 'choice', choices: spec.choices };
  return registered(z.enum(spec.choices, mustBe(kind)).default(spec.default as never), kind, spec.default, spec);
}

/** A non-empty list of integers ≥ `min` (comma-separated on the command line). */
export function integerListOption(spec: CommonSpec & { readonly default: readonly number[]; readonly min: number }) {
  const kind: OptionKind = { type: 'integer-list', min: spec.min };
  const schema = z
    .array(z.int(mustBe(kind)).min(spec.min, mustBe(kind)), mustBe(kind))
    .min(1, mustBe(kind))
    .readonly()
    .default(spec.default as number[]);
  return registered(schema, kind, spec.default, spec);
}

/** A string matching `pattern`; `description` says what it must be (`a folder-name prefix such as "train"`). */
export function stringOption(spec: CommonSpec & { readonly default: string; readonly pattern: RegExp; readonly description: string }) {
  const kind: OptionKind = { type: 'string', description: spec.description };
  return registered(z.string(mustBe(kind)).regex(spec.pattern, mustBe(kind)).default(spec.default), kind, spec.default, spec);
}

/** A schema of options: a strict object whose every field was made by the constructors above. */
export type OptionsSchema = z.ZodObject<z.ZodRawShape, z.core.$strict>;

/** Presentation of a whole option set on the command line. */
export interface OptionSetMeta {
  /** `--help` headings in display order; a field's heading must be one of them. */
  readonly headings: readonly string[];
}

export const optionSetRegistry = z.registry<OptionSetMeta>();

export interface OptionField {
  readonly key: string;
  readonly schema: z.ZodType;
  readonly meta: OptionMeta;
}

/** The fields of an options schema in declaration order, each with its metadata. */
export function optionFields(schema: OptionsSchema): OptionField[] {
  return Object.entries(schema.shape).map(([key, field]) => {
    const meta = optionMetaRegistry.get(field as z.ZodType);
    if (meta === undefined) throw new TypeError(`option ${key} was not declared with an option constructor (options/option-schema.ts)`);
    return { key, schema: field as z.ZodType, meta };
  });
}
