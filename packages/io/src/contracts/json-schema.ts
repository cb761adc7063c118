/**
 * JSON Schema (draft 2020-12) of each contract, generated from its zod schema. The files are committed under
 * packages/io/schemas/ for other tools and languages; `npm run schemas` rewrites them and
 * json-schema.test.ts fails when they drift from the zod schemas.
 */
import { z } from 'zod';

import type { ArtifactHeader, Contract } from './common';
import { CONTRACTS } from './registry';

/** `urn:scenimefy:schema:scenimefy-checkpoint:v1`: a URN, as there is no web host to put the schemas on. */
export function contractSchemaId(contract: Pick<Contract<ArtifactHeader>, 'format' | 'formatVersion'>): string {
  return `urn:scenimefy:schema:${contract.format}:v${contract.formatVersion}`;
}

/** The JSON Schema of one contract, with `$schema`, `$id`, `title` and `description` first. */
export function contractJsonSchema(contract: Contract<ArtifactHeader>): Record<string, unknown> {
  const generated = z.toJSONSchema(contract.schema, { target: 'draft-2020-12', unrepresentable: 'throw' }) as Record<string, unknown>;
  const { $schema, description, ...rest } = generated;
  return { $schema, $id: contractSchemaId(contract), title: contract.title, description, ...rest };
}

export interface JsonSchemaFile {
  /** File name under packages/io/schemas/, e.g. `scenimefy-checkpoint-v1.schema.json`. */
  fileName: string;
  /** The file's exact content: 2-space JSON and a trailing newline. */
  text: string;
}

/**
 * The committed schema files: per format, the current version and each older version it still reads (so a tool
 * can validate an old file by its own `formatVersion`). Deterministic: zod emits keys in schema declaration order.
 */
export function contractJsonSchemaFiles(): JsonSchemaFile[] {
  return Object.values(CONTRACTS).flatMap((contract: Contract<ArtifactHeader>) =>
    [
      contract,
      ...(contract.olderVersions ?? []).map((older) => ({ ...contract, formatVersion: older.formatVersion, schema: older.schema })),
    ]
      .sort((a, b) => a.formatVersion - b.formatVersion)
      .map((version) => ({
        fileName: `${version.format}-v${version.formatVersion}.schema.json`,
        text: `${JSON.stringify(contractJsonSchema(version as Contract<ArtifactHeader>), null, 2)}\n`,
      })),
  );
}
