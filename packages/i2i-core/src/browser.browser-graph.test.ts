import { realpathSync } from 'node:fs';
import * as path from 'node:path';

import { browserImportViolations, describeImportViolation, repoRoot, walkImportGraph } from '@scenimefy/test-utils';

describe('@scenimefy/i2i-core/browser', () => {
  const graph = walkImportGraph(path.join(__dirname, 'browser.ts'));
  // Workspace packages are reached through node_modules links: name files by where they really are.
  const relative = (file: string): string => path.relative(repoRoot(), realpathSync(file));

  it('reaches no Node builtin, sharp, onnxruntime-node or tfjs-node through its imports', () => {
    // The walk really covers the entry: the engine, the tiling, the translator, models from bytes, the networks.
    const reached = graph.files.map(relative);
    expect(reached).toEqual(
      expect.arrayContaining([
        'packages/i2i-core/src/infer/image-translator.ts',
        'packages/i2i-core/src/infer/tiling/chain-graph.ts',
        'packages/i2i-core/src/models/model-bytes.ts',
        'packages/i2i-core/src/networks/generator.ts',
        'packages/i2i-core/src/onnx/graph-builder.ts',
        'packages/io/src/core.ts',
      ]),
    );
    expect(browserImportViolations(graph).map((v) => describeImportViolation(v, repoRoot()))).toEqual([]);
    // What a bundler has to provide besides the sources, all of it browser-safe.
    expect([...new Set(graph.external.map((e) => e.specifier))].sort()).toEqual(['fflate', 'jsonc-parser', 'onnx-proto', 'zod']);
  });

  it('uses @scenimefy/io only through its browser-safe core', () => {
    const core = new Set(walkImportGraph(path.join(repoRoot(), 'packages/io/src/core.ts')).files.map(relative));
    const ioFiles = graph.files.map(relative).filter((f) => f.startsWith('packages/io/'));
    expect(ioFiles.length).toBeGreaterThan(0);
    expect(ioFiles.filter((f) => !core.has(f))).toEqual([]);
  });

  it('declares no type from a Node-only module either (type-only imports followed, as its .d.ts files do)', () => {
    // A type-only import of '@scenimefy/io' once put io's Node declarations (node:fs) into the browser .d.mts.
    const types = walkImportGraph(path.join(__dirname, 'browser.ts'), { includeTypeOnly: true });
    expect(browserImportViolations(types).map((v) => describeImportViolation(v, repoRoot()))).toEqual([]);
    const core = new Set(walkImportGraph(path.join(repoRoot(), 'packages/io/src/core.ts'), { includeTypeOnly: true }).files.map(relative));
    expect(types.files.map(relative).filter((f) => f.startsWith('packages/io/') && !core.has(f))).toEqual([]);
  });

  it('reaches no Node-only module of i2i-core', () => {
    const nodeOnly = /\/(node-runtime|node-engine|translator|model-source|model-cache|model-registry-env|onnx-file)\.ts$|\/train\//;
    expect(graph.files.map(relative).filter((f) => nodeOnly.test(f))).toEqual([]);
  });
});
