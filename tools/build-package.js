#!/usr/bin/env node
// The build of one published package (its `npm run build`, run by nx from the package folder):
//   1. empties dist/: tsc never deletes the output of a source that was removed, renamed or excluded, and
//      `files: ["dist"]` would publish whatever is left there;
//   2. writes src/version.ts from package.json (tools/write-version-modules.js);
//   3. tsc -p tsconfig.build.json: the CommonJS build and its declarations;
//   4. the ESM bundles of the browser entries (tools/build-browser.js).
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const { buildBrowserEntries } = require('./build-browser.js');

async function buildPackage(dir) {
  fs.rmSync(path.join(dir, 'dist'), { recursive: true, force: true });
  const steps = [
    [path.join(__dirname, 'write-version-modules.js'), dir],
    [require.resolve('typescript/bin/tsc'), '-p', path.join(dir, 'tsconfig.build.json')],
  ];
  for (const args of steps) {
    const r = spawnSync(process.execPath, args, { cwd: dir, stdio: 'inherit' });
    if (r.status !== 0) throw new Error(`${path.basename(args[0])} failed (exit ${r.status ?? r.signal})`);
  }
  return buildBrowserEntries(dir);
}

if (require.main === module) {
  buildPackage(path.resolve(process.argv[2] ?? '.')).then(
    (results) => {
      for (const r of results) console.log(`browser entry ${r.subpath}: ${r.files.join(', ')} (${r.inputs.length} modules)`);
    },
    (err) => {
      console.error(err instanceof Error ? err.message : err);
      process.exit(1);
    },
  );
}

module.exports = { buildPackage };
