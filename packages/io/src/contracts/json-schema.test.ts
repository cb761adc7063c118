import { readFileSync, readdirSync } from 'node:fs';
import * as path from 'node:path';

import { z } from 'zod';

import { KNOWN_FORMATS, type ArtifactHeader, type Contract } from './common';
import { contractJsonSchemaFiles } from './json-schema';
import { contractIssues, parseContract } from './parse-contract';
import { CONTRACTS } from './registry';

const schemasDir = path.join(__dirname, '..', '..', 'schemas');
const committedNames = readdirSync(schemasDir)
  .filter((n) => n.endsWith('.schema.json'))
  .sort();
const generated = contractJsonSchemaFiles();
const committed = (fileName: string): unknown => JSON.parse(readFileSync(path.join(schemasDir, fileName), 'utf8'));
const exampleText = (format: string, version: number): string =>
  readFileSync(path.join(__dirname, 'examples', `${format}-v${version}.json`), 'utf8');
const example = (format: string, version: number): Record<string, unknown> => JSON.parse(exampleText(format, version));
/** Every version with a committed schema: each contract's current one and the older ones it still reads. */
const VERSIONS: Array<[(typeof KNOWN_FORMATS)[number], number]> = KNOWN_FORMATS.flatMap((format) =>
  [CONTRACTS[format].formatVersion, ...(CONTRACTS[format].olderVersions ?? []).map((v) => v.formatVersion)].map(
    (version) => [format, version] as [(typeof KNOWN_FORMATS)[number], number],
  ),
);

const RUN_SCHEMAS = 'run `npm run schemas` and commit packages/io/schemas/';

describe('committed JSON Schema', () => {
  it('has one file per contract and no other', () => {
    const expected = generated.map((f) => f.fileName).sort();
    const stale = committedNames.filter((n) => !expected.includes(n));
    const missing = expected.filter((n) => !committedNames.includes(n));
    if (stale.length + missing.length > 0) {
      throw new Error(
        `packages/io/schemas/ is out of date (missing: ${missing.join(', ') || 'none'}; stale: ${stale.join(', ') || 'none'}): ${RUN_SCHEMAS}`,
      );
    }
  });

  it.each(generated.map((f) => [f.fileName, f.text]))('%s matches the zod schema', (fileName, text) => {
    const onDisk = readFileSync(path.join(schemasDir, fileName), 'utf8');
    if (onDisk !== text) {
      throw new Error(`packages/io/schemas/${fileName} differs from the zod schema in packages/io/src/contracts/: ${RUN_SCHEMAS}`);
    }
  });

  it('names each schema by URN and title', () => {
    expect(Object.keys(CONTRACTS)).toEqual([...KNOWN_FORMATS]);
    for (const [format, version] of VERSIONS) {
      const contract = CONTRACTS[format];
      const schema = committed(`${format}-v${version}.schema.json`) as Record<string, unknown>;
      expect(Object.keys(schema).slice(0, 4)).toEqual(['$schema', '$id', 'title', 'description']);
      expect(schema.$schema).toBe('https://json-schema.org/draft/2020-12/schema');
      expect(schema.$id).toBe(`urn:scenimefy:schema:${format}:v${version}`);
      expect(schema.title).toBe(contract.title);
      expect(schema.additionalProperties).toBe(false);
    }
  });
});

// No JSON Schema validator (ajv) is installed; zod's own JSON Schema reader validates against the committed
// files, so what other tools see is checked, not the in-memory zod schema.
describe.each(VERSIONS)('example %s v%i against its committed JSON Schema', (format, version) => {
  const fromFile = z.fromJSONSchema(committed(`${format}-v${version}.schema.json`) as Parameters<typeof z.fromJSONSchema>[0]);

  it('accepts the example, which the contract accepts too (an older version once upgraded)', () => {
    const value = example(format, version);
    const contract: Contract<ArtifactHeader> = CONTRACTS[format];
    if (version === contract.formatVersion) expect(contractIssues(value, contract)).toEqual([]);
    else expect(() => parseContract(exampleText(format, version), `${format}-v${version}.json`, contract)).not.toThrow();
    expect(fromFile.safeParse(value).success).toBe(true);
  });

  it('rejects an unknown field, another version, a bad date and a missing header field', () => {
    const value = example(format, version);
    const failing = (patch: Record<string, unknown>): string[] => {
      const result = fromFile.safeParse({ ...value, ...patch });
      return result.success ? [] : result.error.issues.map((i) => i.path.join('.') || i.code);
    };
    expect(failing({ surplus: 1 })).toEqual(['unrecognized_keys']);
    expect(failing({ formatVersion: version + 1 })).toEqual(['formatVersion']);
    expect(failing({ createdAt: 'yesterday' })).toContain('createdAt');
    expect(failing({ generatedBy: { name: '@scenimefy/io' } })).toEqual(['generatedBy.version']);
  });
});
