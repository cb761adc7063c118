/**
 * `scenimefy setup tfjs-node`: native TensorFlow for TF.js (training), built offline against the TensorFlow C
 * library inside the `tensorflow-cpu` Python wheel. The work is done by the script shipped with this package
 * (`scripts/setup-tfjs-node.sh`, also what the repository's `npm run setup:tfjs-node` runs), in the project
 * where @scenimefy/cli is installed, so that @scenimefy/io finds @tensorflow/tfjs-node beside it. The script
 * leaves package.json and the lockfile untouched and is safe to rerun; `--check` only looks for prerequisites.
 */
import { spawn } from 'node:child_process';
import { existsSync, realpathSync } from 'node:fs';
import * as path from 'node:path';

import { BackendError, UsageError } from '@scenimefy/io';

import { type Output, writeGuarded } from '../output';

/** This package's folder (src/commands/ or dist/commands/ → the package root). */
const PACKAGE_DIR = path.resolve(__dirname, '..', '..');
export const SETUP_TFJS_NODE_SCRIPT = path.join(PACKAGE_DIR, 'scripts', 'setup-tfjs-node.sh');

/**
 * The project @scenimefy/cli at `packageDir` is installed in: the nearest folder above it with a package.json
 * whose node_modules/@scenimefy/cli is this package (a plain install, or a workspace whose link points here).
 * Undefined for a global install (its node_modules has no package.json beside it).
 */
export function projectOfPackage(packageDir: string = PACKAGE_DIR): string | undefined {
  const real = (p: string): string | undefined => {
    try {
      return realpathSync(p);
    } catch {
      return undefined;
    }
  };
  const self = real(packageDir);
  for (let dir = path.dirname(packageDir); ; dir = path.dirname(dir)) {
    const installed = path.join(dir, 'node_modules', '@scenimefy', 'cli');
    if (self !== undefined && real(installed) === self && existsSync(path.join(dir, 'package.json'))) return dir;
    if (path.dirname(dir) === dir) return undefined;
  }
}

export interface SetupFlags {
  check: boolean;
  force: boolean;
  project?: string;
}

/** The script's statuses are the CLI's (0 ok, 2 usage, 4 prerequisite or step failed, 5 download failed). */
const SCRIPT_STATUSES = new Set([0, 2, 4, 5]);

export async function setupTfjsNodeCommand(flags: SetupFlags, out: Output): Promise<number> {
  const project = flags.project !== undefined ? path.resolve(flags.project) : projectOfPackage();
  if (project === undefined) {
    throw new UsageError(
      `cannot tell which project to set up: @scenimefy/cli at ${PACKAGE_DIR} is not installed inside a folder with a package.json (a global install?); pass --project <dir>, the project whose node_modules should get @tensorflow/tfjs-node`,
    );
  }
  if (!existsSync(path.join(project, 'package.json'))) {
    throw new UsageError(`${project} has no package.json: --project names the project whose node_modules gets @tensorflow/tfjs-node`);
  }
  out.info(`${flags.check ? 'checking the prerequisites for' : 'setting up'} @tensorflow/tfjs-node in ${project}`);
  const env: NodeJS.ProcessEnv = { ...process.env, SCENIMEFY_PROJECT_DIR: project };
  if (flags.force) env.SCENIMEFY_TF_FORCE = '1';
  const status = await new Promise<number>((resolve, reject) => {
    const child = spawn('bash', [SETUP_TFJS_NODE_SCRIPT, ...(flags.check ? ['--check'] : [])], {
      cwd: project,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    // The script's lines (and pip's, npm's, the compiler's) are progress: to stderr as they come, also with
    // --json (they are the only account of a failed compile); the tools' own text, passed on unchanged.
    for (const stream of [child.stdout, child.stderr]) {
      stream.setEncoding('utf8');
      stream.on('data', (text: string) => writeGuarded(out.streams.stderr, text));
    }
    child.on('error', (error: NodeJS.ErrnoException) =>
      reject(
        error.code === 'ENOENT'
          ? new BackendError('bash not found: the tfjs-node setup is a bash script (it builds on Linux x86-64)', { cause: error })
          : error,
      ),
    );
    child.on('close', (code, signal) => resolve(code ?? (signal === 'SIGINT' ? 130 : 4)));
  });
  const exitStatus = SCRIPT_STATUSES.has(status) || status === 130 ? status : 4;
  out.event({ event: 'setup', package: '@tensorflow/tfjs-node', project, check: flags.check, status: exitStatus });
  return exitStatus;
}
