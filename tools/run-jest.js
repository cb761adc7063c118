#!/usr/bin/env node
// Runs jest over the whole repo; when SCENIMEFY_JEST_SUMMARY names a file, jest's JSON results go there too
// (CI prints a one-line "N passed, N failed" from it).

const { spawnSync } = require('node:child_process');
const args = [require.resolve('jest/bin/jest'), ...process.argv.slice(2)];
if (process.env.SCENIMEFY_JEST_SUMMARY) args.push('--json', `--outputFile=${process.env.SCENIMEFY_JEST_SUMMARY}`);
const r = spawnSync(process.execPath, args, { stdio: 'inherit' });
process.exit(r.status ?? 1);
