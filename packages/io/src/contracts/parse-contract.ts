/**
 * Checking contract artifacts, from their text, with no file system (browser-safe). A read goes: text → JSON →
 * header (`format`, `formatVersion`) → schema → cross-field rules, and for a declared older version an upgrade
 * to the current one; the first failure becomes one ContractError naming the file and the field. Reading and
 * writing files is contract-files.ts.
 */
import * as jsonc from 'jsonc-parser';
import type { z } from 'zod';

import { ContractError, quoteValue } from '../errors';
import { KNOWN_FORMATS, formatIssuePath } from './common';
import type { ArtifactHeader, Contract, ContractIssue } from './common';

/** How many issues one error message lists before it says "and N more". */
const ISSUES_SHOWN = 3;

/** Schema and cross-field issues of `value` against `contract`, in document order; empty when valid. */
export function contractIssues<T extends ArtifactHeader>(value: unknown, contract: Contract<T>): ContractIssue[] {
  const parsed = contract.schema.safeParse(value);
  if (!parsed.success) return parsed.error.issues.flatMap(issuesFromZod);
  return contract.crossFieldIssues(parsed.data);
}

/**
 * Parse the text of an artifact (`file` names it in errors) and check it against `contract`. An artifact in one
 * of the contract's `olderVersions` is checked against that version's schema and rules, then upgraded: the value
 * returned is always in the current version.
 * Throws ContractError for invalid JSON, another or an unknown `format`, an unsupported `formatVersion`, or any
 * schema or cross-field violation.
 */
export function parseContract<T extends ArtifactHeader>(text: string, file: string, contract: Contract<T>): T {
  const json = parseJsonText(text, file);
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new ContractError(`expected a JSON object, got ${describeJsonKind(json)}`, { file });
  }
  const version = checkHeader(json as Record<string, unknown>, file, contract);
  if (version === contract.formatVersion) return validated(json, contract, file);

  // checkHeader accepted `version`, so it is one of olderVersions.
  const older = (contract.olderVersions ?? []).find((v) => v.formatVersion === version)!;
  const parsed = older.schema.safeParse(json);
  if (!parsed.success) throw issuesError(parsed.error.issues.flatMap(issuesFromZod), file);
  const crossField = older.crossFieldIssues?.(parsed.data) ?? [];
  if (crossField.length > 0) throw issuesError(crossField, file);
  // The upgrade is our code, but what it makes of this file must still satisfy the current contract.
  return validated(older.upgrade(parsed.data), contract, file, ` (after upgrading from formatVersion ${version})`);
}

/**
 * `value` checked against `contract` for writing: the parsed value, whose keys come in schema order (so files
 * from different writers look alike). Throws ContractError `… (not written)` when the value breaks the contract.
 */
export function contractValueToWrite<T extends ArtifactHeader>(value: T, file: string, contract: Contract<T>): T {
  return validated(value, contract, file, ' (not written)');
}

function validated<T extends ArtifactHeader>(value: unknown, contract: Contract<T>, file: string, suffix = ''): T {
  const parsed = contract.schema.safeParse(value);
  if (!parsed.success) throw issuesError(parsed.error.issues.flatMap(issuesFromZod), file, suffix);
  const crossField = contract.crossFieldIssues(parsed.data);
  if (crossField.length > 0) throw issuesError(crossField, file, suffix);
  return parsed.data;
}

function parseJsonText(text: string, file: string): unknown {
  // A byte-order mark is what some Windows editors add; it is not part of the JSON.
  const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  try {
    return JSON.parse(body);
  } catch (error) {
    throw new ContractError(`invalid JSON: ${describeJsonSyntaxError(body, error)}`, { file, cause: error });
  }
}

/**
 * Where and why JSON.parse failed. Node 20's messages often carry no position ("Unexpected token '}', ...
 * is not valid JSON"), so the position comes from jsonc-parser run in strict-JSON mode over the same text.
 */
function describeJsonSyntaxError(text: string, error: unknown): string {
  const errors: jsonc.ParseError[] = [];
  jsonc.parse(text, errors, { disallowComments: true, allowTrailingComma: false, allowEmptyContent: false });
  const first = errors[0];
  if (first === undefined) return (error as Error).message;
  const before = text.slice(0, first.offset);
  const line = before.split('\n').length;
  const column = first.offset - before.lastIndexOf('\n');
  const what = jsonc
    .printParseErrorCode(first.error)
    .replace(/([a-z])([A-Z])/g, '$1 $2')
    .toLowerCase();
  return `${what} at line ${line} column ${column} (position ${first.offset})`;
}

/** The artifact's formatVersion once its header names this contract and a version this code reads. */
function checkHeader<T extends ArtifactHeader>(json: Record<string, unknown>, file: string, contract: Contract<T>): number {
  const { format, formatVersion } = json;
  const known = `known formats: ${KNOWN_FORMATS.join(', ')}`;
  const older = (contract.olderVersions ?? []).map((v) => v.formatVersion);
  const reads = older.length === 0 ? `${contract.formatVersion}` : `${contract.formatVersion} (and older ${older.join(', ')})`;
  if (format === undefined) {
    throw new ContractError(`missing; expected "${contract.format}" (${known})`, { file, field: 'format' });
  }
  if (typeof format !== 'string' || !(KNOWN_FORMATS as readonly string[]).includes(format)) {
    throw new ContractError(`unknown format ${quoteValue(format)}; expected "${contract.format}" (${known})`, {
      file,
      field: 'format',
    });
  }
  if (format !== contract.format) {
    throw new ContractError(`this is a ${quoteValue(format)} file, expected "${contract.format}"`, { file, field: 'format' });
  }
  if (formatVersion === undefined) {
    throw new ContractError(`missing; this version reads ${reads}`, { file, field: 'formatVersion' });
  }
  if (typeof formatVersion !== 'number' || !Number.isInteger(formatVersion) || formatVersion < 1) {
    throw new ContractError(`expected a positive integer, got ${quoteValue(formatVersion)}`, { file, field: 'formatVersion' });
  }
  if (formatVersion > contract.formatVersion) {
    throw new ContractError(`written by a newer Scenimefy.js (formatVersion ${formatVersion}); this version reads ${reads}`, {
      file,
      field: 'formatVersion',
    });
  }
  if (formatVersion !== contract.formatVersion && !older.includes(formatVersion)) {
    throw new ContractError(`${contract.format} formatVersion ${formatVersion} is not supported; this version reads ${reads}`, {
      file,
      field: 'formatVersion',
    });
  }
  return formatVersion;
}

/** Zod reports unknown keys once at their object; report each at its own path, which is what a user looks for. */
function issuesFromZod(issue: z.core.$ZodIssue): ContractIssue[] {
  if (issue.code === 'unrecognized_keys') {
    return issue.keys.map((key) => ({ path: [...issue.path, key], message: 'unknown field' }));
  }
  return [{ path: issue.path, message: issue.message }];
}

function issuesError(issues: readonly ContractIssue[], file: string, suffix = ''): ContractError {
  const [first, ...rest] = issues;
  if (first === undefined) return new ContractError(`invalid${suffix}`, { file });
  const shown = rest.slice(0, ISSUES_SHOWN - 1).map((i) => `${formatIssuePath(i.path) || '(root)'}: ${i.message}`);
  const more = rest.length > ISSUES_SHOWN - 1 ? ` (and ${rest.length - (ISSUES_SHOWN - 1)} more)` : '';
  const field = formatIssuePath(first.path);
  const message = [first.message, ...shown].join('; ') + more + suffix;
  return field === '' ? new ContractError(message, { file }) : new ContractError(message, { file, field });
}

function describeJsonKind(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return `a ${typeof value}`;
}
