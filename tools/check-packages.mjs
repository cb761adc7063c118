#!/usr/bin/env node
// Checks each published package as npm would publish it (run by `npm test` after the build): one `npm pack` of all
// of them, then on each tarball
//   - the manifest shape tools/package-exports.js derives from `exports`;
//   - publint (every level: errors, warnings and suggestions; see ACCEPTED below for the one we answer otherwise);
//   - @arethetypeswrong/core, the checks behind the `attw` command (every resolution: node10, node16 from CJS and
//     from ESM, bundler);
//   - what the tarball holds: a LICENSE, every file the manifest points at, no source maps or sourceMappingURL
//     comments (their sources are not published), no tests or test helpers.
// Prints one line per package and exits 1 when anything is wrong. `--keep DIR` leaves the tarballs in DIR.
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';

const require = createRequire(import.meta.url);
const { manifestProblems, publishedPackages, readJson, root } = require('./package-exports.js');
const { contentProblems, packPackages, TEXT } = require('./package-contents.js');

/**
 * publint messages answered deliberately rather than by changing the package, with the reason.
 * USE_SIDE_EFFECTS (suggested once a package has a browser build): `"sideEffects": false` is a promise that no
 * module does anything when imported; nobody audits that for every module (the Node entries load the TF.js backend
 * and sharp), and a wrong promise breaks a consumer's bundle silently while a missing one only costs bundle size.
 */
const ACCEPTED = new Set(['USE_SIDE_EFFECTS']);

async function loadCheckers() {
  const { publint } = await import('publint');
  const { formatMessage } = await import('publint/utils');
  // @arethetypeswrong/core is the library the attw CLI (our devDependency) is built on: resolve it from there.
  const fromCli = createRequire(require.resolve('@arethetypeswrong/cli/package.json'));
  const attw = await import(pathToFileURL(fromCli.resolve('@arethetypeswrong/core')).href);
  const { problemKindInfo } = await import(pathToFileURL(fromCli.resolve('@arethetypeswrong/core/problems')).href);
  return { publint, formatMessage, attw, problemKindInfo };
}

function describeAttwProblem(problem, problemKindInfo) {
  const where = [problem.entrypoint, problem.resolutionKind, problem.fileName ?? problem.typesFileName].filter(Boolean).join(', ');
  return `attw ${problem.kind} (${where}): ${problemKindInfo[problem.kind]?.description ?? ''} ${problemKindInfo[problem.kind]?.docsUrl ?? ''}`.trim();
}

/** Packs every published package into `dir` and checks each tarball; returns { ok, lines }. */
async function checkPackagesIn(dir) {
  const rootManifest = readJson(path.join(root, 'package.json'));
  const dirs = publishedPackages();
  const { publint, formatMessage, attw, problemKindInfo } = await loadCheckers();
  const report = packPackages(dirs, dir);
  const lines = [];
  let ok = true;
  for (const [i, pkgDir] of dirs.entries()) {
    const entry = report[i];
    const manifest = readJson(path.join(pkgDir, 'package.json'));
    if (entry?.name !== manifest.name) throw new Error(`npm pack reported ${entry?.name} where ${manifest.name} was expected`);
    const bytes = fs.readFileSync(path.join(dir, entry.filename));
    const problems = manifestProblems(manifest, rootManifest).map((p) => `package.json: ${p}`);

    const lint = await publint({
      pack: { tarball: bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length) },
      level: 'suggestion',
    });
    for (const message of lint.messages) {
      if (ACCEPTED.has(message.code)) continue;
      problems.push(`publint ${message.type} ${message.code}: ${formatMessage(message, lint.pkg)}`);
    }

    const pkg = attw.createPackageFromTarballData(new Uint8Array(bytes));
    const analysis = await attw.checkPackage(pkg);
    if (analysis.types === false) problems.push('attw: the package has no types');
    else for (const problem of analysis.problems ?? []) problems.push(describeAttwProblem(problem, problemKindInfo));

    const prefix = `/node_modules/${manifest.name}/`;
    const files = {};
    for (const file of pkg.listFiles()) files[file.slice(prefix.length)] = TEXT.test(file) ? pkg.readFile(file) : '';
    problems.push(...contentProblems(manifest, files));

    const summary = `${manifest.name}@${manifest.version} (${entry.filename}: ${entry.entryCount} files, ${(entry.size / 1024).toFixed(0)} kB)`;
    if (problems.length === 0) lines.push(`check-packages: ${summary}: publint, attw and contents ok`);
    else {
      ok = false;
      lines.push(`check-packages: ${summary}:`, ...problems.map((p) => `  ${p}`));
    }
  }
  return { ok, lines };
}

/** Packs and checks every published package, into `dest` when given (the tarballs stay), else a temp folder. */
export async function checkPackages({ dest } = {}) {
  if (dest !== undefined) return checkPackagesIn(dest);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'scenimefy-check-packages-'));
  try {
    return await checkPackagesIn(dir);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const keep = process.argv.indexOf('--keep');
  const dest = keep >= 0 ? path.resolve(process.argv[keep + 1]) : undefined;
  if (dest !== undefined) fs.mkdirSync(dest, { recursive: true });
  const started = Date.now();
  const { ok, lines } = await checkPackages({ dest });
  for (const line of lines) (ok ? console.log : console.error)(line);
  console.log(`check-packages: ${ok ? 'ok' : 'FAILED'} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  if (!ok) process.exit(1);
}
