/**
 * tools/package-contents.js: the rules tools/check-packages.mjs applies to each packed tarball, on file lists written
 * here (the packed-install test applies them to the real tarballs).
 */
type Manifest = Record<string, unknown>;
// Plain JavaScript shared with tools/check-packages.mjs.
const { contentProblems } = require('../../package-contents.js') as {
  contentProblems: (manifest: Manifest, files: Record<string, string>) => string[];
};

const manifest: Manifest = {
  name: '@scenimefy/x',
  main: 'dist/index.js',
  types: 'dist/index.d.ts',
  bin: { x: 'bin.js' },
  exports: {
    '.': { '@scenimefy/source': './src/index.ts', types: './dist/index.d.ts', default: './dist/index.js' },
    './core': {
      '@scenimefy/source': './src/core.ts',
      browser: { types: './dist/browser/core.d.mts', default: './dist/browser/core.mjs' },
      types: './dist/core.d.ts',
      default: './dist/core.js',
    },
    './package.json': './package.json',
  },
  typesVersions: { '*': { core: ['./dist/core.d.ts'] } },
};

const good: Record<string, string> = {
  LICENSE: '',
  'package.json': '',
  'bin.js': "require('./dist/index.js');\n",
  'dist/index.js': "'use strict';\nexports.a = 1;\n",
  'dist/index.d.ts': '',
  'dist/core.js': "'use strict';\nexports.b = 2;\n",
  'dist/core.d.ts': '',
  'dist/browser/core.mjs': 'import { z } from "zod";\nconst b = 2;\nexport { b, z };\n',
  'dist/browser/core.d.mts': "export * from '../core.js';\n",
};

describe('contentProblems', () => {
  it('accepts a tarball with a LICENSE, every file the manifest names and nothing else of concern', () => {
    expect(contentProblems(manifest, good)).toEqual([]);
  });

  it('names a missing LICENSE and missing targets of exports, main, bin and typesVersions', () => {
    const { LICENSE: _, 'dist/core.d.ts': __, 'bin.js': ___, ...files } = good;
    expect(contentProblems(manifest, files)).toEqual([
      'no LICENSE file (npm packs only a LICENSE in the package folder)',
      'the manifest points at dist/core.d.ts, which is not in the tarball',
      'the manifest points at bin.js, which is not in the tarball',
      'dist/browser/core.d.mts: re-exports ../core.js, whose declarations dist/core.d.ts are not in the tarball',
    ]);
  });

  it('names source maps, sourceMappingURL comments, tests and the CLI test helper', () => {
    const files = {
      ...good,
      'dist/index.js': "'use strict';\nexports.a = 1;\n//# sourceMappingURL=index.js.map\n",
      'dist/index.js.map': '',
      'dist/cli-harness.js': '',
      'dist/cli-harness.d.ts': '',
      'dist/a.test.js': '',
      'dist/a.parity.test.d.ts': '',
    };
    expect(contentProblems(manifest, files)).toEqual([
      'dist/index.js: a sourceMappingURL comment (its map and sources are not published)',
      'dist/index.js.map: a source map (its sources are not published)',
      'dist/cli-harness.js: a test helper',
      'dist/cli-harness.d.ts: a test helper',
      'dist/a.test.js: a test file',
      'dist/a.parity.test.d.ts: a test file',
    ]);
  });

  it('names a browser bundle that imports node: modules or Node-only packages, or calls require()', () => {
    const files = {
      ...good,
      'dist/browser/core.mjs':
        'import { readFile } from "node:fs";\nimport sharp from "sharp";\nconst ort = await import("onnxruntime-node");\nconst z = __require("zod");\nexport { readFile, sharp, ort, z };\n',
    };
    expect(contentProblems(manifest, files)).toEqual([
      'dist/browser/core.mjs: a browser bundle that imports "node:fs"',
      'dist/browser/core.mjs: a browser bundle that imports "sharp"',
      'dist/browser/core.mjs: a browser bundle that imports "onnxruntime-node"',
      'dist/browser/core.mjs: a browser bundle that calls require()',
    ]);
  });
});
