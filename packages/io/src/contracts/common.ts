/**
 * Building blocks shared by the versioned on-disk contracts (checkpoint, dataset, run manifests): the header
 * every artifact carries, the field types they reuse, and the `Contract` description that readers, writers
 * and the JSON Schema generator work from.
 *
 * Unknown fields are REJECTED everywhere (strict objects), not passed through. `formatVersion` is the one
 * compatibility signal of an artifact: any field a newer writer adds bumps it, and an older reader then says
 * plainly that the file is from a newer Scenimefy.js instead of silently dropping something it does not
 * understand (e.g. a future `ema` weights entry would otherwise be ignored and the wrong weights used). It
 * also catches typos in hand-edited files. Open-ended data (training options, selection thresholds) is held
 * in records, whose keys are data, not schema.
 */
import { z } from 'zod';

import { capText, quoteValue } from '../errors';

/** Every format this version of Scenimefy.js knows, in the order error messages list them. */
export const KNOWN_FORMATS = Object.freeze(['scenimefy-checkpoint', 'scenimefy-dataset', 'scenimefy-run'] as const);
export type ContractFormat = (typeof KNOWN_FORMATS)[number];

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/** Any JSON value (finite numbers only, as JSON has no others). */
export const jsonValueSchema: z.ZodType<JsonValue> = z
  .lazy(() => z.union([z.string(), z.number(), z.boolean(), z.null(), z.array(jsonValueSchema), z.record(z.string(), jsonValueSchema)]))
  .meta({ id: 'jsonValue', description: 'Any JSON value.' });

/** An ISO 8601 date-time with `Z` or an offset, e.g. `2025-01-31T12:00:00.000Z` (what `Date#toISOString` writes). */
export const isoDateTimeSchema = z.iso.datetime({ offset: true });

/** Lower-case hex sha256 of a file's bytes. */
export const sha256Schema = z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lower-case hex digits (sha256)');

/** A size in bytes. */
export const byteSizeSchema = z.int().nonnegative();

/**
 * A relative POSIX path inside the artifact's folder: `/`-separated, not absolute, no drive letter, no
 * backslash, no empty, `.` or `..` segment. Such a path cannot leave the folder it is resolved against.
 */
const RELATIVE_PATH = /^(?![A-Za-z]:)(?!\/)(?!.*\/\/)(?!.*\/$)(?!(?:.*\/)?\.\.?(?:\/|$))[^\\\u0000]+$/;

export const relativePathSchema = z
  .string()
  .regex(RELATIVE_PATH, 'must be a relative POSIX path inside the folder (no leading "/", no "\\", no "." or ".." segment)');

/** A bare file or folder name in the artifact's folder (no separator). */
export const fileNameSchema = z
  .string()
  .regex(/^(?!\.\.?$)[^/\\\u0000]+$/, 'must be a bare file name in the same folder (no "/" or "\\", not "." or "..")');

export function isSafeRelativePath(p: string): boolean {
  return RELATIVE_PATH.test(p);
}

/** Which package, at which version, wrote an artifact: `{ name: '@scenimefy/i2i-core', version: '0.1.0' }`. */
export const generatedBySchema = z.strictObject({
  name: z.string().min(1),
  version: z.string().min(1),
});
export type GeneratedBy = z.infer<typeof generatedBySchema>;

/** The four fields every artifact starts with. */
export function headerShape<F extends ContractFormat, V extends number>(format: F, formatVersion: V) {
  return {
    format: z.literal(format).meta({ description: 'What this file is; readers refuse any other value.' }),
    formatVersion: z
      .literal(formatVersion)
      .meta({ description: 'Version of the contract; bumped for any change, so a reader knows whether it can read the file.' }),
    generatedBy: generatedBySchema.meta({ description: 'The package (npm name and version) that wrote the file.' }),
    createdAt: isoDateTimeSchema.meta({ description: 'When the artifact was created (ISO 8601).' }),
  };
}

export interface ArtifactHeader<F extends ContractFormat = ContractFormat, V extends number = number> {
  format: F;
  formatVersion: V;
  generatedBy: GeneratedBy;
  createdAt: string;
}

/** A problem with an artifact: where (`['pairs', 3, 'b']`) and what. */
export interface ContractIssue {
  path: ReadonlyArray<PropertyKey>;
  message: string;
}

/** A versioned on-disk contract: what the readers, writers and the JSON Schema generator need to know. */
export interface Contract<T extends ArtifactHeader> {
  readonly format: T['format'];
  /** The version this code writes (and reads). */
  readonly formatVersion: T['formatVersion'];
  /** The conventional file name of the artifact in its folder. */
  readonly fileName: string;
  /** Human title, also the JSON Schema `title`. */
  readonly title: string;
  readonly schema: z.ZodType<T>;
  /** Rules across fields that a JSON Schema cannot state (unique paths, references between lists). */
  crossFieldIssues(value: T): ContractIssue[];
  /**
   * Older formatVersions this code still reads: each is checked against its own schema, then upgraded to the
   * current version. Nothing is ever written in an older version.
   */
  readonly olderVersions?: ReadonlyArray<OlderContractVersion<T>>;
}

/**
 * An older version of a contract that readers still accept, e.g. `scenimefy-checkpoint` v1 under v2. `Old` is
 * that version's own type; the contract holds it type-erased (see `olderContractVersion`).
 */
export interface OlderContractVersion<T extends ArtifactHeader, Old = unknown> {
  readonly formatVersion: number;
  readonly schema: z.ZodType<Old>;
  /** That version's cross-field rules, checked before upgrading. */
  crossFieldIssues?(value: Old): ContractIssue[];
  /** The same artifact in the current version; its result is checked against the current contract too. */
  upgrade(old: Old): T;
}

/** Types an older version's schema, rules and upgrade together, and erases `Old` for `Contract.olderVersions`. */
export function olderContractVersion<T extends ArtifactHeader, Old>(version: OlderContractVersion<T, Old>): OlderContractVersion<T> {
  return Object.freeze({ ...version }) as OlderContractVersion<T>;
}

/** The header for a new artifact of `contract`, stamped now unless `createdAt` is given. */
export function artifactHeader<T extends ArtifactHeader>(
  contract: Contract<T>,
  generatedBy: GeneratedBy,
  createdAt: Date | string = new Date(),
): ArtifactHeader<T['format'], T['formatVersion']> {
  return {
    format: contract.format,
    formatVersion: contract.formatVersion,
    generatedBy: { name: generatedBy.name, version: generatedBy.version },
    createdAt: typeof createdAt === 'string' ? createdAt : createdAt.toISOString(),
  };
}

/** `['pairs', 3, 'b']` → `pairs[3].b`; keys that are not identifiers are quoted: `options["a.b"]`. */
export function formatIssuePath(issuePath: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const key of issuePath) {
    if (typeof key === 'number') out += `[${key}]`;
    else if (typeof key === 'string' && /^[A-Za-z_$][\w$]*$/.test(key)) out += out === '' ? capText(key) : `.${capText(key)}`;
    else out += `[${quoteValue(String(key))}]`;
  }
  return out;
}

/** Issues found by `crossFieldIssues` helpers: each value seen twice in `values` is reported at its second place. */
export function duplicateIssues(
  values: readonly string[],
  pathOf: (index: number) => ContractIssue['path'],
  describeFirst: (index: number) => string,
): ContractIssue[] {
  const firstIndex = new Map<string, number>();
  const issues: ContractIssue[] = [];
  values.forEach((value, i) => {
    const first = firstIndex.get(value);
    if (first === undefined) firstIndex.set(value, i);
    else issues.push({ path: pathOf(i), message: `${quoteValue(value)} is listed twice (first at ${describeFirst(first)})` });
  });
  return issues;
}
