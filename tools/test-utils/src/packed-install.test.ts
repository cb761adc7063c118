/**
 * The published packages as a user gets them (issue 8, "Done when"): `npm pack` of io, i2i-core and cli, installed
 * into an empty folder outside the workspace, then the installed `scenimefy translate`, the Node API by require and
 * by import, and the browser entries bundled for a browser from that folder and run without Node's globals.
 *
 * The install uses npm's cache first (`--prefer-offline`) and skips onnxruntime-node's CUDA download
 * (ONNXRUNTIME_NODE_INSTALL=skip, which its install script reads). When the install cannot complete, every test
 * here fails: it is never skipped.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vm from 'node:vm';

import { referenceFixturePath } from './reference-fixtures';
import { makeTempDir, type TempDir } from './temp-dir';

type Manifest = Record<string, unknown> & { name: string; exports?: Record<string, unknown> };
// Plain JavaScript shared with tools/check-packages.mjs.
const { contentProblems, packPackages, TEXT } = require('../../package-contents.js') as {
  contentProblems: (manifest: Manifest, files: Record<string, string>) => string[];
  packPackages: (dirs: string[], dest: string) => Array<{ name: string; filename: string }>;
  TEXT: RegExp;
};
const { publishedPackages, root } = require('../../package-exports.js') as { publishedPackages: () => string[]; root: string };

const PACKAGES = ['@scenimefy/io', '@scenimefy/i2i-core', '@scenimefy/cli'];
const photo = path.join(root, 'examples', 'photos', 'rocket.jpg');
const model = referenceFixturePath('i2i', 'netG-ngf16.pth');

/**
 * The environment of a user's shell: npm passes the repository's configuration to `npm test`'s children as
 * npm_config_* variables, which must not reach the user's install (only where the cache and registry are stays).
 */
function userEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const keep = new Set(['npm_config_cache', 'npm_config_registry', 'npm_config_userconfig', 'npm_config_globalconfig']);
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    const key = k.toLowerCase();
    if ((key.startsWith('npm_') && !keep.has(key)) || k === 'NODE_PATH' || k === 'NODE_OPTIONS') continue;
    env[k] = v;
  }
  return { ...env, ...extra };
}

function run(cmd: string, args: string[], cwd: string, extra: Record<string, string> = {}) {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', env: userEnv(extra), maxBuffer: 64 * 1024 * 1024 });
  if (r.error) throw r.error;
  return r;
}

function must(r: ReturnType<typeof run>, what: string): string {
  if (r.status !== 0) throw new Error(`${what} exited ${r.status ?? r.signal}:\n${r.stderr}\n${r.stdout}`.trim());
  return r.stdout;
}

/** Every file of an installed package folder, as contentProblems reads a tarball. */
function installedFiles(dir: string): Record<string, string> {
  const files: Record<string, string> = {};
  const walk = (rel: string) => {
    for (const entry of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
      const name = rel === '' ? entry.name : `${rel}/${entry.name}`;
      if (entry.isDirectory()) walk(name);
      else files[name] = TEXT.test(name) ? fs.readFileSync(path.join(dir, name), 'utf8') : '';
    }
  };
  walk('');
  return files;
}

describe('the packed packages installed into an empty folder outside the workspace', () => {
  let tmp: TempDir;
  let app: string;
  const modules = () => path.join(app, 'node_modules');
  const manifestOf = (name: string) => JSON.parse(fs.readFileSync(path.join(modules(), name, 'package.json'), 'utf8')) as Manifest;
  const SAFE_ENV = () => ({ SCENIMEFY_OFFLINE: '1', SCENIMEFY_CACHE_DIR: path.join(tmp.dir, 'cache') });

  beforeAll(async () => {
    tmp = await makeTempDir('packed-install');
    if (path.relative(root, tmp.dir).split(path.sep)[0] !== '..') throw new Error(`${tmp.dir} is inside the workspace`);
    // The tarballs are made from dist/: build first (a no-op when `npm test` has just built, as nx caches it).
    const nx = [require.resolve('nx/bin/nx'), 'run-many', '-t', 'build', `--projects=${PACKAGES.join(',')}`];
    must(run(process.execPath, nx, root, { NX_DAEMON: 'false', NX_NO_CLOUD: 'true' }), 'nx build');
    const packs = path.join(tmp.dir, 'packs');
    fs.mkdirSync(packs);
    const dirs = publishedPackages();
    const report = packPackages(dirs, packs);
    expect(report.map((r) => r.name)).toEqual(PACKAGES);
    app = path.join(tmp.dir, 'app');
    fs.mkdirSync(app);
    fs.writeFileSync(path.join(app, 'package.json'), `${JSON.stringify({ name: 'packed-install-check', private: true })}\n`);
    const tarballs = report.map((r) => path.join(packs, r.filename));
    must(
      run('npm', ['install', ...tarballs, '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error'], app, {
        ONNXRUNTIME_NODE_INSTALL: 'skip',
      }),
      'npm install of the tarballs',
    );
  }, 240_000);

  afterAll(async () => {
    await tmp?.cleanup();
  });

  it('installs each package from its tarball, without the CUDA provider download', () => {
    const lock = JSON.parse(fs.readFileSync(path.join(app, 'package-lock.json'), 'utf8')) as {
      packages: Record<string, { resolved?: string }>;
    };
    for (const name of PACKAGES) expect(lock.packages[`node_modules/${name}`]?.resolved).toMatch(/^file:.*\.tgz$/);
    const ortBin = path.join(modules(), 'onnxruntime-node', 'bin');
    const cuda = fs.readdirSync(ortBin, { recursive: true, encoding: 'utf8' }).filter((f) => /providers_(cuda|tensorrt)/.test(f));
    expect(cuda).toEqual([]);
  });

  it.each(PACKAGES)('%s: holds a LICENSE and every file its manifest names, and no source maps, tests or test helpers', (name) => {
    expect(contentProblems(manifestOf(name), installedFiles(path.join(modules(), name)))).toEqual([]);
  });

  describe('with the reference generator (official layout, random weights)', () => {
    let cliOutput: string;

    it('the installed `scenimefy translate` turns a photo into an image of the model size', () => {
      const out = path.join(tmp.dir, 'cli-out');
      const bin = path.join(modules(), '.bin', 'scenimefy');
      const stdout = must(run(bin, ['translate', photo, '-o', out, '--model', model, '--json'], app, SAFE_ENV()), 'scenimefy translate');
      const events = stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      // 640×427 rounds to 640×428 (SPEC §8).
      expect(events.find((e) => e['event'] === 'translated')).toMatchObject({
        width: 640,
        height: 428,
        output: path.join(out, 'rocket.png'),
      });
      expect(events.at(-1)).toMatchObject({ event: 'summary', translated: 1, failed: 0 });
      cliOutput = path.join(out, 'rocket.png');
      expect(fs.statSync(cliOutput).size).toBeGreaterThan(0);
    });

    it('Translator from the installed @scenimefy/i2i-core (require) gives the same pixels as the command', () => {
      if (cliOutput === undefined) throw new Error('the translate test did not produce an output');
      const script = path.join(app, 'translate-api.cjs');
      fs.writeFileSync(
        script,
        [
          "const fs = require('node:fs');",
          "const sharp = require('sharp');",
          "const { Translator } = require('@scenimefy/i2i-core');",
          'const [model, photo, cliOutput] = process.argv.slice(2);',
          '(async () => {',
          '  const translator = await Translator.load(model);',
          "  const png = await translator.translateToBuffer(fs.readFileSync(photo), 'png');",
          '  await translator.dispose();',
          '  const ours = await sharp(png).raw().toBuffer({ resolveWithObject: true });',
          '  const cli = await sharp(cliOutput).raw().toBuffer({ resolveWithObject: true });',
          '  const same = ours.data.equals(cli.data);',
          '  console.log(JSON.stringify({ width: ours.info.width, height: ours.info.height, channels: ours.info.channels, same }));',
          '})().catch((e) => { console.error(e); process.exit(1); });',
          '',
        ].join('\n'),
      );
      const stdout = must(run(process.execPath, [script, model, photo, cliOutput], app, SAFE_ENV()), 'the Translator script');
      expect(JSON.parse(stdout)).toEqual({ width: 640, height: 428, channels: 3, same: true });
    });
  });

  it('an ES module gets the Node entries’ named exports (the CommonJS build through import)', () => {
    const script = path.join(app, 'esm-import.mjs');
    fs.writeFileSync(
      script,
      [
        "import { Translator } from '@scenimefy/i2i-core';",
        "import { parseWeights, ModelFormatError } from '@scenimefy/io';",
        "import { main } from '@scenimefy/cli';",
        'console.log(JSON.stringify([typeof Translator.load, typeof parseWeights, typeof ModelFormatError, typeof main]));',
        '',
      ].join('\n'),
    );
    expect(JSON.parse(must(run(process.execPath, [script], app, SAFE_ENV()), 'the ESM script'))).toEqual([
      'function',
      'function',
      'function',
      'function',
    ]);
  });

  describe('browser entries', () => {
    /** `@scenimefy/x/sub` for every installed exports subpath with a browser condition. */
    const browserEntries = () =>
      PACKAGES.flatMap((name) =>
        Object.entries(manifestOf(name).exports ?? {})
          .filter(([, v]) => typeof v === 'object' && v !== null && 'browser' in v)
          .map(([sub]) => (sub === '.' ? name : `${name}/${sub.slice(2)}`)),
      );

    it('are the ones the packages declare', () => {
      // i2i-core's `./browser` subpath must be a browser entry wherever it exists (it lands from another branch).
      const i2i = manifestOf('@scenimefy/i2i-core').exports ?? {};
      expect(browserEntries()).toEqual(['@scenimefy/io/core', ...('./browser' in i2i ? ['@scenimefy/i2i-core/browser'] : [])]);
    });

    it('bundle for a browser from the install (each to its ESM build, nothing from node:) and run without Node globals', async () => {
      const esbuild = require('esbuild') as typeof import('esbuild');
      const entries = browserEntries();
      const page = path.join(app, 'page.ts');
      fs.writeFileSync(
        page,
        [
          ...entries.map((e, i) => `import * as entry${i} from '${e}';`),
          "import { parseWeights } from '@scenimefy/io/core';",
          'const g = globalThis as unknown as { weights: Uint8Array; result: unknown };',
          "const w = parseWeights(g.weights, 'netG-ngf16.pth');",
          `g.result = { exports: [${entries.map((_, i) => `Object.keys(entry${i}).length`).join(', ')}], kind: w.kind, tensors: [...w.tensors.keys()] };`,
          '',
        ].join('\n'),
      );
      // esbuild's browser platform resolves the `browser` condition and refuses Node built-ins.
      const built = await esbuild.build({
        absWorkingDir: app,
        entryPoints: [page],
        bundle: true,
        platform: 'browser',
        format: 'iife',
        target: 'es2022',
        write: false,
        metafile: true,
        logLevel: 'silent',
      });
      const ours = Object.keys(built.metafile.inputs).filter((f) => f.includes('node_modules/@scenimefy/'));
      const esmBuilds = entries.map((e) => {
        const [scope, name, sub] = e.split('/');
        return `node_modules/${scope}/${name}/dist/browser/${sub}.mjs`;
      });
      expect(ours.sort()).toEqual(esmBuilds.sort());
      // A realm with the web platform's globals this code uses and none of Node's (process, require, Buffer).
      const context = vm.createContext({ TextDecoder, TextEncoder, console, size: fs.statSync(model).size });
      // The bytes as a Uint8Array of that realm, as a page's File.arrayBuffer() gives.
      vm.runInContext('globalThis.weights = new Uint8Array(size)', context);
      (context['weights'] as Uint8Array).set(fs.readFileSync(model));
      vm.runInContext(built.outputFiles[0]!.text, context);
      const result = context['result'] as { exports: number[]; kind: string; tensors: string[] };
      for (const n of result.exports) expect(n).toBeGreaterThan(0);
      // The browser bundle reads the weights as the installed Node entry does.
      const node = JSON.parse(
        must(
          run(
            process.execPath,
            [
              '-e',
              "const w = require('@scenimefy/io').parseWeights(require('fs').readFileSync(process.argv[1]), 'netG-ngf16.pth'); console.log(JSON.stringify({ kind: w.kind, tensors: [...w.tensors.keys()] }))",
              model,
            ],
            app,
          ),
          'the Node parseWeights script',
        ),
      ) as { kind: string; tensors: string[] };
      expect({ kind: result.kind, tensors: result.tensors }).toEqual(node);
      expect(node.tensors.length).toBeGreaterThan(10);
    });

    it('TypeScript with the browser condition types them from their .d.mts, without Node’s types', () => {
      const entries = browserEntries();
      fs.writeFileSync(
        path.join(app, 'typed.ts'),
        [
          ...entries.map((e, i) => `import * as entry${i} from '${e}';`),
          `export const all: object[] = [${entries.map((_, i) => `entry${i}`).join(', ')}];`,
          '',
        ].join('\n'),
      );
      fs.writeFileSync(
        path.join(app, 'tsconfig.json'),
        JSON.stringify({
          compilerOptions: {
            target: 'ES2022',
            module: 'ESNext',
            moduleResolution: 'bundler',
            customConditions: ['browser'],
            lib: ['ES2022', 'DOM'],
            // Every installed type package except Node's: @types/node and @types/node-fetch (tfjs-core's fetch
            // polyfill for Node, which references it). tfjs-core's declarations need the others (@types/long, ...).
            types: fs.readdirSync(path.join(modules(), '@types')).filter((t) => t !== 'node' && t !== 'node-fetch'),
            strict: true,
            noEmit: true,
            skipLibCheck: false,
          },
          files: ['typed.ts'],
        }),
      );
      const r = run(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', app, '--listFiles'], app);
      if (r.status !== 0)
        throw new Error(
          `tsc found errors:\n${r.stdout
            .split('\n')
            .filter((l) => !l.startsWith('/'))
            .join('\n')}`,
        );
      const listed = r.stdout.split('\n');
      expect(listed.filter((l) => l.includes('@scenimefy/') && l.includes('/dist/browser/')).sort()).toEqual(
        entries
          .map((e) => {
            const [scope, name, sub] = e.split('/');
            return path.join(modules(), scope!, name!, 'dist', 'browser', `${sub}.d.mts`);
          })
          .sort(),
      );
      expect(listed.filter((l) => l.includes('/@types/node/'))).toEqual([]);
    });
  });
});
