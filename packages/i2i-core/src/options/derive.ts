/**
 * What every options schema gives without further code: its defaults, validation of given options with one-line
 * `what: field: message, got value` errors, the names of the non-default options, and options.txt in the layout
 * of CUT's `print_options`.
 */
import { UsageError } from '@scenimefy/io/core';
import type { z } from 'zod';

import { optionFields, type OptionsSchema } from './option-schema';

/** The output type of an options schema. */
export type OptionsOf<S extends OptionsSchema> = Readonly<z.output<S>>;

/** Every option at its default, frozen (key order: the schema's). */
export function optionDefaults<S extends OptionsSchema>(schema: S): OptionsOf<S> {
  return Object.freeze(schema.parse({})) as OptionsOf<S>;
}

/** How a rejected value is quoted in a message: numbers as they are, strings and the rest as JSON. */
function shownValue(value: unknown): string {
  if (typeof value === 'number' || typeof value === 'bigint' || value === undefined) return String(value);
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

function valueAt(input: unknown, path: ReadonlyArray<PropertyKey>): unknown {
  let value = input;
  for (const key of path) {
    if (value === null || typeof value !== 'object') return undefined;
    value = (value as Record<PropertyKey, unknown>)[key];
  }
  return value;
}

export interface ResolveOptionsSettings {
  /** Prefix of every message, e.g. `training options`. */
  readonly what: string;
  /** How a field is named in messages (default: its key path `a.b`); the CLI can pass flag names. */
  readonly nameOf?: (path: ReadonlyArray<PropertyKey>) => string;
}

/** One line per problem: `lr: must be a number > 0, got -1`, `unknown option "lrate"`. */
export function optionIssues(schema: OptionsSchema, input: unknown, nameOf?: ResolveOptionsSettings['nameOf']): string[] {
  const parsed = schema.safeParse(input);
  if (parsed.success) return [];
  const name = nameOf ?? ((path) => path.map(String).join('.'));
  return parsed.error.issues.flatMap((issue) => {
    if (issue.code === 'unrecognized_keys') return issue.keys.map((key) => `unknown option "${key}"`);
    return [`${name(issue.path)}: ${issue.message}, got ${shownValue(valueAt(input, issue.path))}`];
  });
}

/**
 * The defaults overridden by `options`, validated: unknown names, values of the wrong kind and broken
 * cross-field rules are a UsageError naming the option. An `undefined` value is the same as not giving it.
 */
export function resolveOptions<S extends OptionsSchema>(schema: S, options: unknown, settings: ResolveOptionsSettings): OptionsOf<S> {
  const given = Object.fromEntries(Object.entries((options ?? {}) as Record<string, unknown>).filter(([, v]) => v !== undefined));
  const parsed = schema.safeParse(given);
  if (!parsed.success) {
    const [first, ...rest] = optionIssues(schema, given, settings.nameOf);
    const more = rest.length > 0 ? ` (and ${rest.length} more)` : '';
    throw new UsageError(`${settings.what}: ${first ?? 'invalid'}${more}`);
  }
  return parsed.data as OptionsOf<S>;
}

function sameValue(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** Names of the options whose value differs from the default, in schema order. */
export function nonDefaultOptionNames(schema: OptionsSchema, options: Readonly<Record<string, unknown>>): string[] {
  return optionFields(schema)
    .filter(({ key, meta }) => !sameValue(options[key], meta.default))
    .map(({ key }) => key);
}

/** CUT's `print_options` layout: one `name: value [default: d]` line per option, the default shown only where it differs. */
export function formatOptionsText(schema: OptionsSchema, options: Readonly<Record<string, unknown>>): string {
  const fields = optionFields(schema);
  const width = Math.max(...fields.map(({ key }) => key.length));
  const lines = ['----------------- Options ---------------'];
  for (const { key, meta } of fields) {
    const value = options[key];
    const mark = sameValue(value, meta.default) ? '' : `\t[default: ${JSON.stringify(meta.default)}]`;
    lines.push(`${key.padStart(width)}: ${JSON.stringify(value)}${mark}`);
  }
  lines.push('----------------- End -------------------');
  return `${lines.join('\n')}\n`;
}

/** The keys of `schema` (in schema order) picked from `options`. */
export function pickOptions<T>(schema: OptionsSchema, options: Readonly<Record<string, unknown>>): T {
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(schema.shape)) out[key] = options[key];
  return out as T;
}
