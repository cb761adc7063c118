// What a published package's tarball must and must not hold, checked by tools/check-packages.mjs on each tarball
// it packs (and tested by tools/test-utils/src/package-contents.test.ts).
const { execFileSync } = require('node:child_process');
const path = require('node:path');

const { NODE_ONLY } = require('./build-browser.js');
const { root, SOURCE } = require('./package-exports.js');

/** Files whose text the rules read; for every other file only the name matters. */
const TEXT = /\.(c|m)?js$|\.d\.mts$/;

/** Every path a manifest points at in its package (exports targets except the source condition, main, types, bin). */
function manifestTargets(manifest) {
  const targets = new Set();
  const walk = (value, key) => {
    if (key === SOURCE) return;
    if (typeof value === 'string') targets.add(value);
    else if (value && typeof value === 'object') for (const [k, v] of Object.entries(value)) walk(v, k);
  };
  walk(manifest.exports);
  for (const key of ['main', 'types']) if (typeof manifest[key] === 'string') targets.add(manifest[key]);
  const bin = typeof manifest.bin === 'string' ? { [manifest.name]: manifest.bin } : (manifest.bin ?? {});
  for (const file of Object.values(bin)) targets.add(file);
  for (const list of Object.values(manifest.typesVersions?.['*'] ?? {})) for (const file of list) targets.add(file);
  return [...targets].map((t) => path.posix.normalize(t));
}

/**
 * What is wrong with a tarball's file list and contents, one line each. `files` maps each package-relative path to
 * its text for the names TEXT matches and to '' for the others.
 */
function contentProblems(manifest, files) {
  const problems = [];
  const names = Object.keys(files);
  if (!names.includes('LICENSE')) problems.push('no LICENSE file (npm packs only a LICENSE in the package folder)');
  for (const target of manifestTargets(manifest)) {
    if (!names.includes(target)) problems.push(`the manifest points at ${target}, which is not in the tarball`);
  }
  for (const name of names) {
    if (name.endsWith('.map')) problems.push(`${name}: a source map (its sources are not published)`);
    else if (/\.(c|m)?js$/.test(name) && /^\/\/# sourceMappingURL=/m.test(files[name])) {
      problems.push(`${name}: a sourceMappingURL comment (its map and sources are not published)`);
    }
    if (/(^|\/)[^/]*\.test\.[cm]?[jt]s$|(^|\/)[^/]*\.test\.d\.[cm]?ts$/.test(name)) problems.push(`${name}: a test file`);
    if (/(^|\/)cli-harness\./.test(name)) problems.push(`${name}: a test helper`);
    if (name.endsWith('.mjs')) {
      for (const [, spec] of files[name].matchAll(/(?:\bfrom|\bimport)\s*\(?\s*["']([^"']+)["']/g)) {
        const pkg = spec
          .split('/')
          .slice(0, spec.startsWith('@') ? 2 : 1)
          .join('/');
        if (spec.startsWith('node:') || NODE_ONLY.has(pkg)) problems.push(`${name}: a browser bundle that imports "${spec}"`);
      }
      // esbuild's shim for a require() it left external, or a plain require of a module name.
      if (/\b__require\(|\brequire\(\s*["']/.test(files[name])) problems.push(`${name}: a browser bundle that calls require()`);
    }
    if (name.endsWith('.d.mts')) {
      for (const [, spec] of files[name].matchAll(/\bfrom\s*["'](\.{1,2}\/[^"']+)\.js["']/g)) {
        const target = path.posix.join(path.posix.dirname(name), `${spec}.d.ts`);
        if (!names.includes(target)) problems.push(`${name}: re-exports ${spec}.js, whose declarations ${target} are not in the tarball`);
      }
    }
  }
  return problems;
}

/**
 * One `npm pack` of the given package folders into `dest` (one npm process for all of them); returns npm's JSON
 * report, one entry per package in the order given.
 */
function packPackages(dirs, dest) {
  const args = ['pack', '--json', '--pack-destination', dest, ...dirs.map((d) => `--workspace=${path.relative(root, d)}`)];
  const out = execFileSync('npm', args, { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  const report = JSON.parse(out);
  if (report.length !== dirs.length) throw new Error(`npm pack reported ${report.length} packages for ${dirs.length} folders`);
  return report;
}

module.exports = { contentProblems, manifestTargets, packPackages, TEXT };
