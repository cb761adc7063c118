import { promises as fsp } from 'node:fs';
import * as path from 'node:path';

import { browserImportViolations, describeImportViolation, nodeOnlyReason, walkImportGraph } from './import-graph';
import { withTempDir } from './temp-dir';

/** Write `files` (path → text) under `dir`. */
async function writeTree(dir: string, files: Record<string, string>): Promise<void> {
  for (const [name, text] of Object.entries(files)) {
    await fsp.mkdir(path.dirname(path.join(dir, name)), { recursive: true });
    await fsp.writeFile(path.join(dir, name), text);
  }
}

describe('walkImportGraph / browserImportViolations', () => {
  it('finds a node: builtin two files away and names the chain that reached it', () =>
    withTempDir(async (dir) => {
      await writeTree(dir, {
        'src/entry.ts': "export { a } from './a';\nexport * from './util/index.js';\n",
        'src/a.ts': "import { b } from './b.js';\nexport const a = b + 1;\n",
        'src/b.ts': "import { readFileSync } from 'node:fs';\nexport const b = readFileSync.length;\n",
        'src/util/index.ts': "import { z } from 'zod';\nexport const u = z;\n",
      });
      const graph = walkImportGraph(path.join(dir, 'src/entry.ts'));
      expect(graph.files.map((f) => path.relative(dir, f))).toEqual(['src/entry.ts', 'src/a.ts', 'src/util/index.ts', 'src/b.ts']);
      expect(graph.external.map((e) => e.specifier)).toEqual(['zod', 'node:fs']);
      const violations = browserImportViolations(graph);
      expect(violations.map((v) => describeImportViolation(v, dir))).toEqual([
        'node:fs (a Node.js builtin) via src/entry.ts → src/a.ts → src/b.ts',
      ]);
    }));

  it('sees require, dynamic import, import-equals and bare builtins; skips type-only imports', () =>
    withTempDir(async (dir) => {
      await writeTree(dir, {
        'entry.ts': [
          "import type { Sharp } from 'sharp';",
          "export type { Stats } from 'node:fs';",
          "type Tf = typeof import('@tensorflow/tfjs-node');",
          "import ort = require('onnxruntime-node');",
          "const os = require('os');",
          "const lazy = () => import('@tensorflow/tfjs-node-gpu');",
          'const name = "x";',
          'const any = require(name);',
          'export const all = [ort, os, lazy, any] as unknown as Sharp | Tf;',
        ].join('\n'),
      });
      const violations = browserImportViolations(walkImportGraph(path.join(dir, 'entry.ts')));
      expect(violations.map((v) => `${v.specifier}: ${v.reason}`)).toEqual([
        'onnxruntime-node: onnxruntime-node (native onnxruntime)',
        'os: a Node.js builtin',
        '@tensorflow/tfjs-node-gpu: tfjs-node (native TensorFlow)',
        'require(name): a computed require/import (its target cannot be checked)',
      ]);
    }));

  it('with includeTypeOnly also follows type-only imports, re-exports and import() types (what declarations reach)', () =>
    withTempDir(async (dir) => {
      await writeTree(dir, {
        'entry.ts': [
          "import type { Sharp } from 'sharp';",
          "export type { Stats } from 'node:fs';",
          "export type { Shape } from './shape';",
          "type Tf = typeof import('@tensorflow/tfjs-node');",
          'export const none = null as unknown as Sharp | Tf;',
        ].join('\n'),
        'shape.ts': "import type { Worker } from 'node:worker_threads';\nexport type Shape = Worker;\n",
      });
      const runtime = walkImportGraph(path.join(dir, 'entry.ts'));
      expect(runtime.files.map((f) => path.relative(dir, f))).toEqual(['entry.ts']);
      expect(browserImportViolations(runtime)).toEqual([]);
      const types = walkImportGraph(path.join(dir, 'entry.ts'), { includeTypeOnly: true });
      expect(types.files.map((f) => path.relative(dir, f))).toEqual(['entry.ts', 'shape.ts']);
      expect(browserImportViolations(types).map((v) => describeImportViolation(v, dir))).toEqual([
        'sharp (sharp (native libvips)) via entry.ts',
        'node:fs (a Node.js builtin) via entry.ts',
        '@tensorflow/tfjs-node (tfjs-node (native TensorFlow)) via entry.ts',
        'node:worker_threads (a Node.js builtin) via entry.ts → shape.ts',
      ]);
    }));

  it('follows a workspace package through its source condition, and reports what resolves to nothing', () =>
    withTempDir(async (dir) => {
      await writeTree(dir, {
        'node_modules/@scenimefy/lib/package.json': JSON.stringify({
          exports: { './core': { '@scenimefy/source': './src/core.ts', default: './dist/core.js' } },
        }),
        'node_modules/@scenimefy/lib/src/core.ts': "import sharp from 'sharp/lib/index';\nexport default sharp;\n",
        'app/entry.ts': "import core from '@scenimefy/lib/core';\nimport './missing';\nexport default core;\n",
      });
      const violations = browserImportViolations(walkImportGraph(path.join(dir, 'app/entry.ts')));
      expect(violations.map((v) => describeImportViolation(v, dir))).toEqual([
        'sharp/lib/index (sharp (native libvips)) via app/entry.ts → node_modules/@scenimefy/lib/src/core.ts',
        './missing (resolves to no file) via app/entry.ts',
      ]);
    }));

  it('passes a tree that needs no Node', () =>
    withTempDir(async (dir) => {
      await writeTree(dir, { 'e.ts': "import { inflateSync } from 'fflate';\nexport const f = inflateSync;\n" });
      expect(browserImportViolations(walkImportGraph(path.join(dir, 'e.ts')))).toEqual([]);
    }));

  it('nodeOnlyReason knows builtins with and without node:, and subpaths', () => {
    expect(nodeOnlyReason('fs/promises')).toBe('a Node.js builtin');
    expect(nodeOnlyReason('node:test')).toBe('a Node.js builtin');
    expect(nodeOnlyReason('zod/v4')).toBeUndefined();
    expect(nodeOnlyReason('onnxruntime-web')).toBeUndefined();
  });
});
