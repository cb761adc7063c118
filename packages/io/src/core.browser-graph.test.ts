import * as path from 'node:path';

import { browserImportViolations, describeImportViolation, repoRoot, walkImportGraph } from '@scenimefy/test-utils';

import * as core from './core';
import * as node from './index';

describe('@scenimefy/io/core', () => {
  it('reaches no Node builtin, sharp, native TensorFlow or onnxruntime-node through its imports', () => {
    const graph = walkImportGraph(path.join(__dirname, 'core.ts'));
    // The walk really covers the core: its readers, the contracts and the pickle machine.
    const reached = graph.files.map((f) => path.basename(f));
    expect(reached).toEqual(expect.arrayContaining(['zip-archive.ts', 'torch-pickle.ts', 'parse-contract.ts', 'image.ts']));
    expect(browserImportViolations(graph).map((v) => describeImportViolation(v, repoRoot()))).toEqual([]);
    // What a bundler has to provide, all of it browser-safe.
    expect([...new Set(graph.external.map((e) => e.specifier))].sort()).toEqual(['fflate', 'jsonc-parser', 'zod']);
  });

  it('declares no type from a Node-only module either (type-only imports followed, as its .d.ts files do)', () => {
    const graph = walkImportGraph(path.join(__dirname, 'core.ts'), { includeTypeOnly: true });
    expect(browserImportViolations(graph).map((v) => describeImportViolation(v, repoRoot()))).toEqual([]);
    const nodeOnlyIo = graph.files
      .map((f) => path.basename(f))
      .filter((f) => /-file\.ts$|^(atomic-file|image-decode|image-encode|tf-backend|regular-file|index)\.ts$/.test(f));
    expect(nodeOnlyIo).toEqual([]);
  });

  it('is re-exported in full, the same values, by the Node entry', () => {
    const missing = Object.keys(core).filter((name) => (node as Record<string, unknown>)[name] !== (core as Record<string, unknown>)[name]);
    expect(missing).toEqual([]);
  });
});
