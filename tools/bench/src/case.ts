#!/usr/bin/env node
/** Child-process entry of one benchmark case: prints one JSON line. */
import { loadCheckpointCase, translateCase } from './cases';
import { trainCase } from './train';

async function run(): Promise<void> {
  const [name, json] = process.argv.slice(2);
  const args = JSON.parse(json ?? '{}');
  const result =
    name === 'translate'
      ? await translateCase(args)
      : name === 'load-checkpoint'
        ? await loadCheckpointCase(args)
        : name === 'train'
          ? await trainCase(args)
          : undefined;
  if (!result) throw new Error(`unknown case ${name}`);
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

run().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
});
