/**
 * tools/build-browser.js on small packages written here: what a browser bundle contains, and every kind of import
 * it refuses, with the chain that reaches it.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';

import { withTempDir } from './temp-dir';

interface BrowserBuildResult {
  subpath: string;
  files: string[];
  inputs: string[];
}
// The build script is plain JavaScript run by each package's build; the test calls its exports.
const { buildBrowserEntries } = require('../../build-browser.js') as {
  buildBrowserEntries: (
    dir: string,
    options?: { write?: boolean; resolveManifest?: (name: string) => Record<string, unknown> | undefined },
  ) => Promise<BrowserBuildResult[]>;
};

/** Workspace manifests the fixture's @scenimefy imports resolve to: io's "." is Node-only, "./core" is a browser entry. */
const workspace: Record<string, Record<string, unknown>> = {
  '@scenimefy/io': {
    name: '@scenimefy/io',
    exports: {
      '.': { '@scenimefy/source': './src/index.ts', types: './dist/index.d.ts', default: './dist/index.js' },
      './core': {
        '@scenimefy/source': './src/core.ts',
        browser: { types: './dist/browser/core.d.mts', default: './dist/browser/core.mjs' },
        types: './dist/core.d.ts',
        default: './dist/core.js',
      },
    },
  },
};

async function fixture(dir: string, files: Record<string, string>): Promise<string> {
  const manifest = {
    name: 'fixture-pkg',
    version: '1.0.0',
    type: 'commonjs',
    exports: {
      '.': { '@scenimefy/source': './src/index.ts', types: './dist/index.d.ts', default: './dist/index.js' },
      './web': {
        '@scenimefy/source': './src/web.ts',
        browser: { types: './dist/browser/web.d.mts', default: './dist/browser/web.mjs' },
        types: './dist/web.d.ts',
        default: './dist/web.js',
      },
    },
    dependencies: { zod: '^4', sharp: '^0.35', '@scenimefy/io': '0.1.0' },
  };
  await fsp.writeFile(path.join(dir, 'package.json'), JSON.stringify(manifest));
  await fsp.mkdir(path.join(dir, 'src'));
  for (const [name, text] of Object.entries({ 'index.ts': "export const node = require('node:os').EOL;\n", ...files })) {
    await fsp.writeFile(path.join(dir, 'src', name), text);
  }
  return dir;
}

const build = (dir: string, write = true) => buildBrowserEntries(dir, { write, resolveManifest: (name) => workspace[name] });

/** The error a refused build throws, without the package folder (a temp path). */
async function refusedWith(files: Record<string, string>): Promise<string> {
  return withTempDir(async (dir) => {
    await fixture(dir, files);
    const err = await build(dir).then(
      () => undefined,
      (e: unknown) => e,
    );
    if (!(err instanceof Error)) throw new Error('the build was expected to refuse the fixture');
    // Nothing is written when the graph is refused.
    await expect(fsp.access(path.join(dir, 'dist'))).rejects.toThrow();
    return err.message;
  }, 'browser-build');
}

describe('tools/build-browser.js', () => {
  it('bundles only the browser entries to ESM, keeps dependencies as imports, and writes ESM declarations', async () => {
    await withTempDir(async (dir) => {
      await fixture(dir, {
        'web.ts':
          "import { z } from 'zod';\nimport { CoreError } from '@scenimefy/io/core';\nimport { twice } from './util';\nexport const schema = z.number().transform(twice);\nexport { CoreError };\n",
        'util.ts': 'export function twice(x: number): number {\n  return x * 2;\n}\n',
      });
      const results = await build(dir);
      expect(results).toEqual([
        {
          subpath: './web',
          files: [path.join('dist', 'browser', 'web.mjs'), path.join('dist', 'browser', 'web.d.mts')],
          inputs: ['src/util.ts', 'src/web.ts'],
        },
      ]);
      const bundle = await fsp.readFile(path.join(dir, 'dist', 'browser', 'web.mjs'), 'utf8');
      expect(bundle).toMatch(/^import \{ z \} from "zod";$/m);
      expect(bundle).toMatch(/^import \{ CoreError \} from "@scenimefy\/io\/core";$/m);
      expect(bundle).toContain('return x * 2;');
      expect(bundle).toMatch(/^export \{/m);
      expect(await fsp.readFile(path.join(dir, 'dist', 'browser', 'web.d.mts'), 'utf8')).toBe("export * from '../web.js';\n");
      // The Node entry (it requires node:os) is tsc's business, not bundled.
      expect((await fsp.readdir(path.join(dir, 'dist', 'browser'))).sort()).toEqual(['web.d.mts', 'web.mjs']);
    }, 'browser-build');
  });

  it('analyses without writing when asked', async () => {
    await withTempDir(async (dir) => {
      await fixture(dir, { 'web.ts': 'export const one = 1;\n' });
      expect((await build(dir, false)).map((r) => r.inputs)).toEqual([['src/web.ts']]);
      await expect(fsp.access(path.join(dir, 'dist'))).rejects.toThrow();
    }, 'browser-build');
  });

  it('refuses a node: built-in anywhere in the graph and names the chain', async () => {
    const message = await refusedWith({
      'web.ts': "export { a } from './a';\n",
      'a.ts': "import { b } from './b';\nexport const a = b + 1;\n",
      'b.ts': "import { readFileSync } from 'node:fs';\nexport const b = readFileSync.length;\n",
    });
    expect(message).toBe(
      'fixture-pkg browser entry "./web" (src/web.ts) reaches code a browser cannot run:\n' +
        '  src/web.ts → src/a.ts → src/b.ts imports "node:fs": a Node built-in',
    );
  });

  it('refuses bare built-ins, Node-only packages, undeclared packages, require() and Node-only workspace entries, all in one report', async () => {
    const message = await refusedWith({
      'web.ts': [
        "import * as p from 'path';",
        "import sharp from 'sharp';",
        "import { x } from 'left-pad';",
        "import { NodeOnly } from '@scenimefy/io';",
        "const z = require('zod');",
        'export const all = [p, sharp, x, NodeOnly, z];',
        '',
      ].join('\n'),
    });
    expect(message.split('\n').slice(1)).toEqual([
      '  src/web.ts imports "path": a Node built-in',
      '  src/web.ts imports "sharp": a Node-only package',
      '  src/web.ts imports "left-pad": not a dependency of fixture-pkg',
      '  src/web.ts imports "@scenimefy/io": an entry of @scenimefy/io without a browser build (its exports["."] has no "browser" condition)',
      '  src/web.ts imports "zod": loaded with require(), which an ES module in a browser cannot do',
    ]);
  });

  it('ignores imports used only as types (they are erased)', async () => {
    await withTempDir(async (dir) => {
      await fixture(dir, {
        'web.ts':
          "import type { Stats } from 'node:fs';\nimport { NodeOnly } from '@scenimefy/io';\nexport type S = Stats | NodeOnly;\nexport const one = 1;\n",
      });
      expect((await build(dir)).map((r) => r.inputs)).toEqual([['src/web.ts']]);
    }, 'browser-build');
  });
});
