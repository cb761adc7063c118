#!/usr/bin/env node
// Runs jest over the whole repo (`npm test`'s last step), then reads jest's JSON results and
//   - fails when a test in a parity file (*.parity.test.ts) did not run: skipped, todo, or inside a skipped
//     describe (a whole suite skipped because a fixture or backend is missing), naming each one. A parity test that
//     does not run proves nothing, and a skip is easy to miss among hundreds of passes.
//     SCENIMEFY_ALLOW_PARITY_SKIPS=1 lists them without failing (a checkout without ../shared); .ci/run unsets it.
//   - prints the closing line `tests: N passed, N failed, N skipped`, unless SCENIMEFY_JEST_SUMMARY names a file:
//     then jest's JSON results are left there and the caller prints it (.ci/run does, as its last line).
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const root = path.join(__dirname, '..');
const RAN = new Set(['passed', 'failed']);

/** The tests of parity files that did not run, as `file: ancestor › … › title (status)`, from jest's JSON results. */
function paritySkips(results) {
  const skipped = [];
  for (const file of results.testResults ?? []) {
    if (!file.name.endsWith('.parity.test.ts')) continue;
    const rel = path.relative(root, file.name);
    for (const test of file.assertionResults ?? []) {
      if (RAN.has(test.status)) continue;
      skipped.push(`${rel}: ${[...(test.ancestorTitles ?? []), test.title].join(' › ')} (${test.status})`);
    }
  }
  return skipped;
}

/** Whether the jest arguments select tests by name, which leaves every other test "pending" in the results. */
function filtersByName(args) {
  return args.some((a) => a === '-t' || a.startsWith('--testNamePattern') || a.startsWith('-t='));
}

function closingLine(results) {
  return `tests: ${results.numPassedTests} passed, ${results.numFailedTests} failed, ${results.numPendingTests + results.numTodoTests} skipped`;
}

function main(argv) {
  const summary =
    process.env.SCENIMEFY_JEST_SUMMARY || path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'scenimefy-jest-')), 'results.json');
  const args = [require.resolve('jest/bin/jest'), ...argv, '--json', `--outputFile=${summary}`];
  const r = spawnSync(process.execPath, args, { stdio: 'inherit' });
  let status = r.status ?? 1;
  let results;
  try {
    results = JSON.parse(fs.readFileSync(summary, 'utf8'));
  } catch {
    // jest stopped before writing results (a configuration error): its own output says why.
    return status === 0 ? 1 : status;
  } finally {
    if (!process.env.SCENIMEFY_JEST_SUMMARY) fs.rmSync(path.dirname(summary), { recursive: true, force: true });
  }
  const skips = filtersByName(argv) ? [] : paritySkips(results);
  if (skips.length > 0) {
    const allowed = process.env.SCENIMEFY_ALLOW_PARITY_SKIPS === '1';
    console.error(
      `run-jest: ${skips.length} parity test${skips.length === 1 ? '' : 's'} did not run${allowed ? ' (allowed by SCENIMEFY_ALLOW_PARITY_SKIPS=1)' : ''}:\n` +
        skips.map((s) => `  ${s}`).join('\n'),
    );
    if (!allowed && status === 0) status = 1;
  }
  if (!process.env.SCENIMEFY_JEST_SUMMARY) console.log(closingLine(results));
  return status;
}

module.exports = { closingLine, filtersByName, paritySkips };
if (require.main === module) process.exit(main(process.argv.slice(2)));
