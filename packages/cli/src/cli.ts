/**
 * @module @scenimefy/cli
 * The `scenimefy` command. Each command lives in its own module under commands/ and is imported lazily, so
 * `scenimefy --help` starts fast. Errors are mapped to exit statuses in exactly one place: `main`.
 */
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';

import { EXIT_CODES, exitCodeFor, isScenimefyError } from '@scenimefy/io';

import { EXIT_STDOUT_CLOSED, Output, escapeControl, stdoutClosed, writeGuarded, type CliStreams } from './output';
import { PACKAGE_VERSION } from './version';

export interface GlobalOptions {
  json?: boolean;
}

function jsonOption(): Option {
  return new Option('--json', 'print NDJSON events on stdout instead of human output');
}

/**
 * A parser for an integer flag in [min, max] whose message says what is valid: "an integer ≥ 4", or "an integer
 * from 1 to 100" when there is a meaningful upper end (never the 9007199254740991 of "any safe integer").
 */
function integerFlag(
  flag: string,
  min: number,
  max?: number,
  valid = max === undefined ? `an integer ≥ ${min}` : `an integer from ${min} to ${max}`,
) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < min || (max !== undefined && n > max)) {
      throw new InvalidArgumentError(`${flag} takes ${valid}, got "${value}"`);
    }
    return n;
  };
}

/** The fewest pixels --max-side may leave on the long side: the generator works on multiples of 4 (SPEC §8). */
const MIN_MAX_SIDE = 4;
/** More onnxruntime threads than this only makes the thread pool itself the cost. */
const MAX_THREADS = 1024;

function parseTile(value: string): 'auto' | 'off' | number {
  if (value === 'auto' || value === 'off') return value;
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 16 || n % 4 !== 0) {
    throw new InvalidArgumentError(`--tile takes auto, off, or a multiple of 4 of at least 16, got "${value}"`);
  }
  return n;
}

/** Options of a command that are loaded only when that command is run or its help is asked for. */
const lazyOptionLoaders = new WeakMap<Command, () => Promise<Option[]>>();

/**
 * Declare options of `command` that need a heavy import (an options schema living in a stage's package): they are
 * added by `loadCommandOptions` only when `command` is the one being run or asked about, so `scenimefy --help`
 * and every other command start without loading that package.
 */
export function lazyOptions(command: Command, load: () => Promise<Option[]>): void {
  lazyOptionLoaders.set(command, load);
}

/**
 * Add the lazily declared options of the command `argv` names (`train …`, `help train`, `pairs select …`):
 * the leading words of argv that name subcommands, before the first flag or argument that is not one.
 */
export async function loadCommandOptions(program: Command, argv: readonly string[]): Promise<void> {
  const words = argv[0] === 'help' ? argv.slice(1) : argv;
  let command = program;
  for (const word of words) {
    const next = command.commands.find((c) => c.name() === word || c.aliases().includes(word));
    if (next === undefined) break;
    command = next;
    const load = lazyOptionLoaders.get(command);
    if (load === undefined) continue;
    lazyOptionLoaders.delete(command);
    for (const option of await load()) command.addOption(option);
  }
}

/** Build the command tree. `run` receives each command's action so main() can await it and map its errors. */
export function buildProgram(streams: CliStreams, run: (action: () => Promise<number>) => void): Command {
  const program = new Command('scenimefy')
    .description('Scenimefy.js: turn real-world scene photos into anime scenes (Jiang et al., ICCV 2023), without Python.')
    .version(PACKAGE_VERSION, '-V, --version', 'print the version')
    .showHelpAfterError('(run with --help for usage)')
    .configureOutput({
      writeOut: (s) => writeGuarded(streams.stdout, s),
      // Commander's one-line reasons quote the user's values: escaped like every other human line.
      writeErr: (s) => writeGuarded(streams.stderr, s.split('\n').map(escapeControl).join('\n')),
    })
    .exitOverride();

  program
    .command('translate')
    .description('turn photos into anime scenes with the Scenimefy generator (same pixels as the reference PyTorch code)')
    .argument('<inputs...>', 'image files, folders (searched recursively) or quoted globs such as "photos/**/*.jpg"')
    .requiredOption('-o, --output <dir>', 'output folder (created if missing); names are <stem>.<format>, folders keep their tree')
    .addOption(new Option('-f, --format <format>', 'output image format').choices(['png', 'jpg', 'webp']).default('png'))
    .option('--quality <n>', 'JPEG/WebP quality 1-100 (default 90)', integerFlag('--quality', 1, 100))
    .addOption(
      new Option('--if-exists <policy>', 'when an output file exists: fail (report it and go on), skip, or overwrite')
        .choices(['fail', 'skip', 'overwrite'])
        .default('fail'),
    )
    .option(
      '-m, --model <model>',
      'official .pth, .safetensors, checkpoint folder, training run folder (its newest checkpoint), .onnx, or a model name (default: shinkai, downloaded once into the cache)',
    )
    .option(
      '--max-side <px>',
      'downscale (bicubic, aspect kept) so the long side is at most <px> before inference',
      integerFlag('--max-side', MIN_MAX_SIDE),
    )
    .option('--resize-back', 'resize the result back to the input size when preprocessing changed it', false)
    .option('--round-output', 'round to the nearest uint8 level instead of truncating as the reference does', false)
    .option('--no-exif', 'ignore EXIF orientation, as the reference does (default: photos are turned upright)')
    .option(
      '--max-pixels <n>',
      'refuse images with more pixels than this, before decoding (default 268402689)',
      integerFlag('--max-pixels', 1),
    )
    .option(
      '--max-memory <GiB>',
      'refuse, before decoding, an image whose translation is estimated to need more memory than this (default 16; README: Limits)',
      integerFlag('--max-memory', 1),
    )
    .option(
      '--tile <mode>',
      "exact tiled inference, same result in bounded memory: 'auto' (tiles of 128 px above 512×768 = 393,216 pixels), 'off', or a tile size in pixels (multiple of 4)",
      parseTile,
      'auto',
    )
    .option('--threads <n>', 'CPU threads for the generator (default: all cores)', integerFlag('--threads', 1, MAX_THREADS))
    .addOption(
      new Option('--device <device>', 'cpu, or cuda when the installed onnxruntime has the CUDA provider')
        .choices(['cpu', 'cuda'])
        .default('cpu'),
    )
    .option('--offline', 'never download; fail with instructions if the model is not cached', false)
    .addOption(jsonOption())
    .action((inputs: string[], opts: Record<string, unknown>) =>
      run(async () =>
        (await import('./commands/translate.js')).translateCommand(
          inputs,
          opts as unknown as import('./commands/translate.js').TranslateFlags,
          new Output(streams, !!opts.json),
        ),
      ),
    );

  const models = program.command('models').description('list, download or import the pretrained models');
  models
    .command('list')
    .description('the models scenimefy knows, and whether each is in the cache')
    .addOption(jsonOption())
    .action((opts: { json?: boolean }) =>
      run(async () => (await import('./commands/models.js')).modelsListCommand(new Output(streams, !!opts.json))),
    );
  models
    .command('fetch')
    .description('download a model into the cache (checked against its sha256) and convert it to ONNX')
    .argument('[name]', 'model name', 'shinkai')
    .addOption(jsonOption())
    .action((name: string, opts: { json?: boolean }) =>
      run(async () => (await import('./commands/models.js')).modelsFetchCommand(name, new Output(streams, !!opts.json))),
    );
  models
    .command('import')
    .description('put a model file you downloaded yourself into the cache (its sha256 must match a known model)')
    .argument('<file>', 'e.g. Shinkai_net_G.pth')
    .addOption(jsonOption())
    .action((file: string, opts: { json?: boolean }) =>
      run(async () => (await import('./commands/models.js')).modelsImportCommand(file, new Output(streams, !!opts.json))),
    );

  program
    .command('export')
    .description('export a generator to ONNX (opset >= 17, dynamic height and width)')
    .argument('<model>', 'official .pth, .safetensors, checkpoint folder, or a model name')
    .requiredOption('--onnx <file>', 'the .onnx file to write (atomically)')
    // Only the syntax here: the exporter checks the range, naming the opsets it writes.
    .option('--opset <n>', 'ONNX opset, 17 to 23', integerFlag('--opset', 0, undefined, 'an integer from 17 to 23'), 17)
    .addOption(
      new Option(
        '--upsample <mode>',
        "how the x2 upsamplers are written: the reference's transposed blur conv, or Resize (bilinear, equal to it)",
      )
        .choices(['conv-transpose', 'resize'])
        .default('conv-transpose'),
    )
    .option('-f, --force', 'overwrite the output if it exists', false)
    .addOption(jsonOption())
    .action((model: string, opts: { onnx: string; opset: number; upsample: 'conv-transpose' | 'resize'; force: boolean; json?: boolean }) =>
      run(async () => (await import('./commands/export.js')).exportCommand(model, opts, new Output(streams, !!opts.json))),
    );

  program
    .command('inspect')
    .description(
      'list the tensors of a weights file: .safetensors, PyTorch .pth/.pt (zip or legacy), a scenimefy checkpoint folder, or a training run folder (its newest checkpoint)',
    )
    .argument('<file>', 'weights file, checkpoint folder or training run folder')
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

  const train = program
    .command('train')
    .description(
      'train a Scenimefy translation model (semi_cut: LSGAN + SRC + hDCE + StylePatchNCE) from unpaired photos/anime and pseudo pairs; ' +
        'writes run.json, options.txt, events.ndjson, samples/, report.html and checkpoints/ into --out',
    )
    .option(
      '--unpaired <dir>',
      'unaligned dataset: <dir>/trainA (photos) and <dir>/trainB (anime frames); needed for a new run (--resume uses the recorded one)',
    )
    .option(
      '--paired <dir|manifest>',
      'pseudo pairs: <dir>/trainA and <dir>/trainB with the same file names, or a scenimefy-dataset manifest .json; needed for a new run',
    )
    .requiredOption('--out <run>', 'the run folder (a new one, or the run to continue with --resume)')
    .option(
      '--vgg-weights <file>',
      'VGG-19 weights for --lambda-vgg (torchvision vgg19-dcbb9e9d.pth or a safetensors copy; default: the cached vgg19 model)',
    )
    .option('--offline', 'never download (the VGG-19 weights must then be cached or given)', false)
    .addOption(
      new Option(
        '--backend <name>',
        'TF.js backend (default: the fastest installed; training needs tfjs-node for reference speed)',
      ).choices(['auto', 'tfjs-node-gpu', 'tfjs-node', 'wasm', 'cpu']),
    )
    .addOption(jsonOption());
  // The training options (and --resume, whose help names the options a resume may change) come from i2i-core's
  // schema, which is loaded only when `train` is the command being run or asked about (see loadCommandOptions).
  lazyOptions(train, async () => {
    const { resumeOverrideFlags, trainOptions } = await import('./commands/train-flags.js');
    const resume = new Option(
      '--resume',
      'continue the run in --out from its newest checkpoint as it was configured (its datasets, options and --max-iterations); ' +
        `given again, ${resumeOverrideFlags().join(', ')} change it from here on`,
    ).default(false);
    return [resume, ...trainOptions()];
  });
  train.action((opts: Record<string, unknown>) =>
    run(async () =>
      (await import('./commands/train.js')).trainCommand(
        {
          unpaired: opts.unpaired as string | undefined,
          paired: opts.paired as string | undefined,
          out: opts.out as string,
          resume: opts.resume as boolean,
          vggWeights: opts.vggWeights as string | undefined,
          offline: opts.offline as boolean,
          backend: opts.backend as import('@scenimefy/io').BackendPreference | undefined,
          options: (await import('./commands/train-flags.js')).optionsFromFlags(opts),
        },
        new Output(streams, !!opts.json),
      ),
    ),
  );

  const setup = program.command('setup').description('install optional native parts (built offline, package files untouched)');
  setup
    .command('tfjs-node')
    .description(
      'native TensorFlow for TF.js (training ~25× faster than wasm): installs @tensorflow/tfjs-node 4.22.0 into the project where scenimefy is installed, ' +
        'compiled against the TensorFlow C library of the tensorflow-cpu Python wheel (pip); package.json and the lockfile stay unchanged; safe to rerun',
    )
    .option(
      '--check',
      'only look for the prerequisites (Linux x86-64, python3 with pip, make, g++, Node headers) and say what a run would do',
      false,
    )
    .option('-f, --force', 'rebuild even when tfjs-node already loads (SCENIMEFY_TF_FORCE=1)', false)
    .option('--project <dir>', 'the project whose node_modules gets tfjs-node (default: the one @scenimefy/cli is installed in)')
    .addOption(jsonOption())
    .addHelpText(
      'after',
      [
        '',
        'Environment: SCENIMEFY_TF_WHEEL=<wheel> (no pip download), SCENIMEFY_TF_VERSION (default 2.21.0),',
        '  SCENIMEFY_TF_CACHE (default $XDG_CACHE_HOME/scenimefy or ~/.cache/scenimefy; node_modules links into it),',
        '  PYTHON, CXX, MAKE, npm_config_nodedir (Node headers), and pip settings such as PIP_INDEX_URL.',
        'Exit statuses: 0 done or nothing to do, 2 usage, 4 a prerequisite is missing or a step failed, 5 download failed.',
      ].join('\n'),
    )
    .action((opts: { check: boolean; force: boolean; project?: string; json?: boolean }) =>
      run(async () => (await import('./commands/setup.js')).setupTfjsNodeCommand(opts, new Output(streams, !!opts.json))),
    );

  program
    .command('doctor')
    .description(
      'report what this installation can use: the TF.js backends, onnxruntime and its execution providers, image codecs, the model cache and its models',
    )
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
  const code = await runCommand(argv, streams);
  // A reader that went away (`| head -1`) ends the command early but quietly, with a SIGPIPE-like status.
  return (await stdoutClosed(streams)) ? EXIT_STDOUT_CLOSED : code;
}

async function runCommand(argv: readonly string[], streams: CliStreams): Promise<number> {
  let pending: Promise<number> | undefined;
  const program = buildProgram(streams, (action) => {
    pending = action();
  });
  try {
    await loadCommandOptions(program, argv);
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
      if (process.env.SCENIMEFY_DEBUG && error instanceof Error && error.stack) writeGuarded(streams.stderr, `${error.stack}\n`);
    }
    return exitCodeFor(error);
  }
}

function defaultStreams(): CliStreams {
  return { stdout: process.stdout, stderr: process.stderr, isTTY: process.stderr.isTTY === true };
}
