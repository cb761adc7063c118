/**
 * `scenimefy setup tfjs-node` without network: --help, the --check mode (prerequisites found with stand-in
 * tools, each missing one named), the refusals, and where it installs. Nothing is downloaded or built here.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';

import { makeTempDir, type TempDir } from '@scenimefy/test-utils';

import { runCli } from '../cli-harness';
import { SETUP_TFJS_NODE_SCRIPT, projectOfPackage } from './setup';

const linuxX64 = process.platform === 'linux' && process.arch === 'x64';
const withBash = process.platform === 'win32' ? describe.skip : describe;

describe('scenimefy setup tfjs-node (issue 12 #17)', () => {
  let tmp: TempDir;
  let project: string;
  const saved = { ...process.env };
  beforeEach(async () => {
    tmp = await makeTempDir('setup');
    project = path.join(tmp.dir, 'project');
    await fsp.mkdir(project);
    await fsp.writeFile(path.join(project, 'package.json'), '{"name": "user-project", "private": true}\n');
  });
  afterEach(async () => {
    process.env = { ...saved };
    await tmp.cleanup();
  });

  /** Executable stand-ins: a Python whose `-m pip --version` works (or not), a compiler and make that exist. */
  async function standIns(pip: boolean): Promise<void> {
    const bin = path.join(tmp.dir, 'bin');
    await fsp.mkdir(bin);
    const script = async (name: string, body: string) => {
      await fsp.writeFile(path.join(bin, name), `#!/bin/sh\n${body}\n`, { mode: 0o755 });
      return path.join(bin, name);
    };
    process.env.PYTHON = await script('python3', pip ? 'exit 0' : '[ "$1 $2" = "-m pip" ] && exit 1; exit 0');
    process.env.CXX = await script('g++', 'exit 0');
    process.env.MAKE = await script('make', 'exit 0');
    const headers = path.join(tmp.dir, 'node-headers');
    await fsp.mkdir(path.join(headers, 'include', 'node'), { recursive: true });
    await fsp.writeFile(path.join(headers, 'include', 'node', 'node_api.h'), '');
    process.env.npm_config_nodedir = headers;
    process.env.SCENIMEFY_TF_CACHE = path.join(tmp.dir, 'cache');
    delete process.env.SCENIMEFY_TF_WHEEL;
    delete process.env.SCENIMEFY_TF_FORCE;
  }

  it('is a published command: its help names the check, the project and the environment knobs', async () => {
    const r = await runCli(['setup', 'tfjs-node', '--help']);
    expect(r.code).toBe(0);
    for (const s of [
      '--check',
      '--force',
      '--project',
      'SCENIMEFY_TF_WHEEL',
      'SCENIMEFY_TF_CACHE',
      'PYTHON',
      'npm_config_nodedir',
      'lockfile',
    ]) {
      expect(r.stdout).toContain(s);
    }
    // The script ships with the package (package.json "files"), not only in the repository.
    const pkg = JSON.parse(await fsp.readFile(path.resolve(__dirname, '..', '..', 'package.json'), 'utf8')) as { files: string[] };
    expect(pkg.files).toContain('scripts');
    expect(path.relative(path.resolve(__dirname, '..', '..'), SETUP_TFJS_NODE_SCRIPT)).toBe(path.join('scripts', 'setup-tfjs-node.sh'));
    await expect(fsp.stat(SETUP_TFJS_NODE_SCRIPT)).resolves.toBeTruthy();
  });

  withBash('with bash', () => {
    (linuxX64 ? it : it.skip)('--check finds every prerequisite, says what a run would do, and changes nothing', async () => {
      await standIns(true);
      const r = await runCli(['setup', 'tfjs-node', '--check', '--project', project]);
      expect(r.code).toBe(0);
      expect(r.stderr).toContain(
        `all prerequisites found; a run would install @tensorflow/tfjs-node@4.22.0 into ${path.join(project, 'node_modules', '@tensorflow', 'tfjs-node')}`,
      );
      expect(r.stderr).toContain(`pip download tensorflow-cpu==2.21.0 into ${path.join(tmp.dir, 'cache', 'tf-wheel')}`);
      expect(r.stderr).toContain('--check: nothing was downloaded or changed.');
      expect(await fsp.readdir(project)).toEqual(['package.json']);
      await expect(fsp.stat(path.join(tmp.dir, 'cache'))).rejects.toThrow();
    });

    it('names every missing prerequisite at once, before any download, with exit 4', async () => {
      await standIns(true);
      process.env.PYTHON = path.join(tmp.dir, 'no', 'python3');
      process.env.CXX = path.join(tmp.dir, 'no', 'g++');
      process.env.MAKE = path.join(tmp.dir, 'no', 'make');
      process.env.npm_config_nodedir = path.join(tmp.dir, 'no-headers');
      const r = await runCli(['setup', 'tfjs-node', '--project', project, '--json']); // not even --check: nothing starts
      expect(r.code).toBe(4);
      expect(r.stderr).toContain(`missing: ${path.join(tmp.dir, 'no', 'python3')} not found: it is needed to unpack the wheel`);
      expect(r.stderr).toContain(`missing: ${path.join(tmp.dir, 'no', 'make')} not found: compiling the tfjs-node addon needs make`);
      expect(r.stderr).toContain(
        `missing: ${path.join(tmp.dir, 'no', 'g++')} not found: compiling the tfjs-node addon needs a C++ compiler`,
      );
      expect(r.stderr).toContain(`missing: npm_config_nodedir=${path.join(tmp.dir, 'no-headers')} holds no include/node/node_api.h`);
      expect(r.stderr).toContain('nothing was downloaded or changed');
      expect(r.events().at(-1)).toEqual({ event: 'setup', package: '@tensorflow/tfjs-node', project, check: false, status: 4 });
      expect(await fsp.readdir(project)).toEqual(['package.json']);
    });

    (linuxX64 ? it : it.skip)('asks for pip only when it has to download the wheel', async () => {
      await standIns(false);
      const noPip = await runCli(['setup', 'tfjs-node', '--check', '--project', project]);
      expect(noPip.code).toBe(4);
      expect(noPip.stderr).toContain(`missing: pip is not available (${process.env.PYTHON} -m pip)`);
      const wheel = path.join(tmp.dir, 'tensorflow_cpu-2.21.0-cp312-cp312-manylinux_2_27_x86_64.whl');
      await fsp.writeFile(wheel, 'a stand-in: --check never opens it');
      process.env.SCENIMEFY_TF_WHEEL = wheel;
      const given = await runCli(['setup', 'tfjs-node', '--check', '--project', project]);
      expect(given.code).toBe(0);
      expect(given.stderr).toContain(`the wheel given in SCENIMEFY_TF_WHEEL: ${wheel}`);
      process.env.SCENIMEFY_TF_WHEEL = path.join(tmp.dir, 'nope.whl');
      const absent = await runCli(['setup', 'tfjs-node', '--check', '--project', project]);
      expect(absent.code).toBe(4);
      expect(absent.stderr).toContain(`missing: SCENIMEFY_TF_WHEEL=${path.join(tmp.dir, 'nope.whl')} does not exist.`);
    });
  });

  it('refuses a project without package.json, as a usage error', async () => {
    const bare = path.join(tmp.dir, 'bare');
    await fsp.mkdir(bare);
    const r = await runCli(['setup', 'tfjs-node', '--check', '--project', bare]);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      `scenimefy: ${bare} has no package.json: --project names the project whose node_modules gets @tensorflow/tfjs-node\n`,
    );
  });

  it('installs where @scenimefy/cli is installed: the project above node_modules, or the workspace linking to it', async () => {
    // An npm install: <project>/node_modules/@scenimefy/cli.
    const installed = path.join(project, 'node_modules', '@scenimefy', 'cli');
    await fsp.mkdir(installed, { recursive: true });
    expect(projectOfPackage(installed)).toBe(project);
    // A workspace: the package lives in packages/cli and node_modules links to it.
    const repo = path.join(tmp.dir, 'repo');
    const member = path.join(repo, 'packages', 'cli');
    await fsp.mkdir(member, { recursive: true });
    await fsp.writeFile(path.join(repo, 'package.json'), '{}');
    await fsp.mkdir(path.join(repo, 'node_modules', '@scenimefy'), { recursive: true });
    await fsp.symlink(member, path.join(repo, 'node_modules', '@scenimefy', 'cli'));
    expect(projectOfPackage(member)).toBe(repo);
    // A global install: node_modules without a package.json beside it.
    const global = path.join(tmp.dir, 'lib', 'node_modules', '@scenimefy', 'cli');
    await fsp.mkdir(global, { recursive: true });
    expect(projectOfPackage(global)).toBeUndefined();
    // And this checkout: the workspace root, whose node_modules links to packages/cli.
    expect(projectOfPackage()).toBe(path.resolve(__dirname, '..', '..', '..', '..'));
  });
});
