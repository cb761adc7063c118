#!/usr/bin/env node
/**
 * Writes packages/io/schemas/<format>-v<version>.schema.json from the zod schemas of the BUILT package (run
 * through `npm run schemas`, which builds first) and removes schema files no contract produces any more.
 * contracts/json-schema.test.ts fails until the committed files match what this writes.
 */
'use strict';

const fs = require('node:fs');
const path = require('node:path');

const { contractJsonSchemaFiles } = require('../dist/contracts/json-schema.js');

const outDir = path.join(__dirname, '..', 'schemas');
fs.mkdirSync(outDir, { recursive: true });

const files = contractJsonSchemaFiles();
const keep = new Set(files.map((f) => f.fileName));
for (const name of fs.readdirSync(outDir)) {
  if (name.endsWith('.schema.json') && !keep.has(name)) {
    fs.rmSync(path.join(outDir, name));
    console.log(`removed ${path.relative(process.cwd(), path.join(outDir, name))}`);
  }
}
for (const { fileName, text } of files) {
  const target = path.join(outDir, fileName);
  const old = fs.existsSync(target) ? fs.readFileSync(target, 'utf8') : undefined;
  if (old === text) continue;
  fs.writeFileSync(target, text);
  console.log(`${old === undefined ? 'wrote' : 'updated'} ${path.relative(process.cwd(), target)}`);
}
