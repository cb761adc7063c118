/**
 * @module @scenimefy/cli
 * The `scenimefy` command. Each command lives in its own module under commands/ and is imported lazily, so
 * `scenimefy --help` starts fast. Errors are mapped to exit statuses in exactly one place: `main`.
 */
import { Command, CommanderError, Option } from 'commander';

import { EXIT_CODES, exitCodeFor, isScenimefyError } from '@scenimefy/io';

import { Output, type CliStreams } from './output';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { version } = require('../package.json') as { version: string };

export interface GlobalOptions {
  json?: boolean;
}

function jsonOption(): Option {
  return new Option('--json', 'print NDJSON events on stdout instead of human output');
}

/** Build the command tree. `run` receives each command's action so main() can await it and map its errors. */
export function buildProgram(streams: CliStreams, run: (action: () => Promise<number>) => void): Command {
  const program = new Command('scenimefy')
    .description('Scenimefy.js: turn real-world scene photos into anime scenes (Jiang et al., ICCV 2023), without Python.')
    .version(version, '-V, --version', 'print the version')
    .showHelpAfterError('(run with --help for usage)')
    .configureOutput({
      writeOut: (s) => streams.stdout.write(s),
      writeErr: (s) => streams.stderr.write(s),
    })
    .exitOverride();

  program
    .command('inspect')
    .description('list the tensors of a weights file: .safetensors, PyTorch .pth/.pt (zip or legacy), or a scenimefy checkpoint folder')
    .argument('<file>', 'weights file or checkpoint folder')
    .option('--key <name>', 'for a nested PyTorch checkpoint dict (e.g. a StyleGAN2 .pt): the entry holding the state dict, e.g. g_ema')
    .addOption(jsonOption())
    .action((file: string, opts: { key?: string; json?: boolean }) =>
      run(async () => (await import('./commands/inspect.js')).inspectCommand(file, opts, new Output(streams, !!opts.json))),
    );

  program
    .command('convert')
    .description('convert PyTorch weights (.pth/.pt) to safetensors with the same tensor names (no Python needed)')
    .argument('<input>', 'a .pth/.pt file (zip or legacy format) or a .safetensors file')
    .requiredOption('-o, --output <file>', 'the .safetensors file to write (written atomically)')
    .option('--key <name>', 'for a nested checkpoint dict: the entry holding the state dict, e.g. g_ema')
    .option('--prefix <prefix>', 'prefix every tensor name, e.g. "netG."', '')
    .option('-f, --force', 'overwrite the output if it exists', false)
    .addOption(jsonOption())
    .action((input: string, opts: { output: string; key?: string; prefix: string; force: boolean; json?: boolean }) =>
      run(async () => (await import('./commands/convert.js')).convertCommand(input, opts, new Output(streams, !!opts.json))),
    );

  program
    .command('doctor')
    .description('report the compute backends, image codecs and versions this installation can use')
    .addOption(jsonOption())
    .action((opts: { json?: boolean }) =>
      run(async () => (await import('./commands/doctor.js')).doctorCommand(new Output(streams, !!opts.json))),
    );

  return program;
}

/**
 * Run the CLI with `argv` (without node and script). Resolves to the exit status; never calls process.exit,
 * so it can be tested in-process.
 */
export async function main(argv: readonly string[], streams: CliStreams = defaultStreams()): Promise<number> {
  let pending: Promise<number> | undefined;
  const program = buildProgram(streams, (action) => {
    pending = action();
  });
  try {
    await program.parseAsync([...argv], { from: 'user' });
    if (pending === undefined) {
      // No subcommand: print help.
      program.outputHelp();
      return argv.length === 0 ? EXIT_CODES.usage : EXIT_CODES.ok;
    }
    return await pending;
  } catch (error) {
    if (error instanceof CommanderError) {
      if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version') return EXIT_CODES.ok;
      // Help shown because no command was given counts as a usage error.
      if (error.code === 'commander.help') return error.exitCode === 0 ? EXIT_CODES.ok : EXIT_CODES.usage;
      return EXIT_CODES.usage; // commander already printed the one-line reason
    }
    const json = argv.includes('--json');
    const out = new Output(streams, json);
    if (isScenimefyError(error)) {
      out.error(error.message, { code: error.code });
    } else {
      const message = error instanceof Error ? error.message : String(error);
      out.error(`internal error: ${message}`, { code: 'E_INTERNAL' });
      if (process.env.SCENIMEFY_DEBUG && error instanceof Error && error.stack) streams.stderr.write(`${error.stack}\n`);
    }
    return exitCodeFor(error);
  }
}

function defaultStreams(): CliStreams {
  return { stdout: process.stdout, stderr: process.stderr, isTTY: process.stderr.isTTY === true };
}
