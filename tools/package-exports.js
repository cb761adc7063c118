#!/usr/bin/env node
// The one shape of a published package's entry points, derived from its `exports` map, which is the only place an
// entry is declared: a subpath names its TypeScript source under the `@scenimefy/source` condition, and a browser
// entry additionally has a `browser` condition. Everything else (the CJS and declaration paths, the ESM browser
// bundle and its declarations, `main`/`types`, `typesVersions` for TypeScript's node10 resolution, `engines`) follows
// from that and is checked here; `node tools/package-exports.js --write` rewrites the derived fields of every
// published package in place. tools/build-browser.js bundles the browser entries; tools/check-packages.mjs and
// tools/test-utils/src/package-manifests.test.ts check the result.
//
// The condition order matters: `@scenimefy/source` first (jest, tsc and esbuild in the workspace read the sources),
// then `browser` with its own `types` (a bundler targeting browsers gets the ESM bundle, and TypeScript with
// `customConditions: ["browser"]` gets declarations of the same format), then `types` and `default` for everyone
// else (Node, by require or import, and bundlers targeting Node get the CommonJS build).
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const SOURCE = '@scenimefy/source';

/** The published workspace packages (packages/*, not private), as absolute folders. */
function publishedPackages() {
  const { workspaces } = readJson(path.join(root, 'package.json'));
  return workspaces
    .map((w) => path.join(root, w))
    .filter((dir) => {
      const manifest = readJson(path.join(dir, 'package.json'));
      return manifest.private !== true;
    });
}

function readJson(file) {
  return JSON.parse(fs.readFileSync(file, 'utf8'));
}

/**
 * The entries a manifest declares: one per `exports` subpath that names a `@scenimefy/source` file
 * (`./package.json` and other plain file exports are not entries).
 * @returns {{ subpath: string, source: string, name: string, browser: boolean }[]}
 */
function declaredEntries(manifest) {
  const problems = [];
  const entries = [];
  for (const [subpath, value] of Object.entries(manifest.exports ?? {})) {
    if (typeof value !== 'object' || value === null || !(SOURCE in value)) continue;
    const source = value[SOURCE];
    const match = typeof source === 'string' ? /^\.\/src\/([A-Za-z0-9_./-]+)\.ts$/.exec(source) : null;
    if (match === null) {
      problems.push(`exports["${subpath}"]["${SOURCE}"] must be "./src/<name>.ts", not ${JSON.stringify(source)}`);
      continue;
    }
    entries.push({ subpath, source, name: match[1], browser: 'browser' in value });
  }
  return { entries, problems };
}

/** The exports object of one entry, in condition order. */
function entryExports({ source, name, browser }) {
  const out = { [SOURCE]: source };
  if (browser) out.browser = { types: `./dist/browser/${name}.d.mts`, default: `./dist/browser/${name}.mjs` };
  out.types = `./dist/${name}.d.ts`;
  out.default = `./dist/${name}.js`;
  return out;
}

/**
 * The fields of a manifest that follow from its declared entries, as they must read.
 * `typesVersions` lets TypeScript's node10 resolution (which ignores `exports`) find the declarations of a subpath.
 */
function derivedFields(manifest, rootManifest) {
  const { entries, problems } = declaredEntries(manifest);
  const main = entries.find((e) => e.subpath === '.');
  if (main === undefined) problems.push(`exports has no "." entry with a "${SOURCE}" condition`);
  const exportsMap = {};
  for (const e of entries) exportsMap[e.subpath] = entryExports(e);
  exportsMap['./package.json'] = './package.json';
  const fields = { exports: exportsMap };
  if (main !== undefined) {
    fields.main = `dist/${main.name}.js`;
    fields.types = `dist/${main.name}.d.ts`;
  }
  const subpaths = entries.filter((e) => e.subpath !== '.');
  if (subpaths.length > 0) {
    const map = {};
    for (const e of subpaths) map[e.subpath.slice(2)] = [`./dist/${e.name}.d.ts`];
    fields.typesVersions = { '*': map };
  }
  fields.engines = rootManifest.engines;
  return { fields, entries, problems };
}

/** What is wrong with a published manifest, one line each (empty when it has the derived shape). */
function manifestProblems(manifest, rootManifest) {
  const { fields, problems } = derivedFields(manifest, rootManifest);
  for (const [key, want] of Object.entries(fields)) {
    const got = manifest[key];
    // Key order is part of the shape: conditions are matched in order.
    if (JSON.stringify(got) !== JSON.stringify(want)) {
      problems.push(`"${key}" must be ${JSON.stringify(want)}, not ${got === undefined ? 'missing' : JSON.stringify(got)}`);
    }
  }
  if (manifest.type !== 'commonjs') problems.push('"type" must be "commonjs" (the dist build is CommonJS; browser bundles are .mjs)');
  if (!Array.isArray(manifest.files) || !manifest.files.includes('dist')) problems.push('"files" must include "dist"');
  if (manifest.license !== rootManifest.license) problems.push(`"license" must be "${rootManifest.license}" as the repository's`);
  if ('typesVersions' in manifest && !('typesVersions' in fields))
    problems.push('"typesVersions" is set but the package has no subpath entry');
  return problems;
}

/** Rewrites the derived fields of a package folder's manifest (keeps every other field and the key order). */
function writeDerivedFields(dir, rootManifest) {
  const file = path.join(dir, 'package.json');
  const manifest = readJson(file);
  const { fields, problems } = derivedFields(manifest, rootManifest);
  if (problems.length > 0) throw new Error(`${file}: ${problems.join('; ')}`);
  const next = { ...manifest };
  for (const [key, value] of Object.entries(fields)) next[key] = value;
  const text = `${JSON.stringify(next, null, 2)}\n`;
  if (text === fs.readFileSync(file, 'utf8')) return false;
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, text);
  fs.renameSync(tmp, file);
  return true;
}

module.exports = { declaredEntries, derivedFields, entryExports, manifestProblems, publishedPackages, readJson, root, SOURCE };

if (require.main === module) {
  const rootManifest = readJson(path.join(root, 'package.json'));
  const write = process.argv.includes('--write');
  let failed = false;
  for (const dir of publishedPackages()) {
    const rel = path.relative(root, dir);
    if (write) {
      if (writeDerivedFields(dir, rootManifest)) console.log(`${rel}/package.json: rewritten`);
      continue;
    }
    const problems = manifestProblems(readJson(path.join(dir, 'package.json')), rootManifest);
    for (const p of problems) console.error(`${rel}/package.json: ${p}`);
    failed ||= problems.length > 0;
  }
  if (failed) {
    console.error('package-exports: run `node tools/package-exports.js --write` to derive these fields from exports');
    process.exit(1);
  }
}
