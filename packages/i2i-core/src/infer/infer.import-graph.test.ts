import { realpathSync } from 'node:fs';
import * as path from 'node:path';

import { repoRoot, walkImportGraph } from '@scenimefy/test-utils';

describe('inference', () => {
  it('imports nothing under train/: a Translator loads no discriminator, PatchSampleF or trainer code', () => {
    for (const entry of ['translator.ts', 'model-source.ts', 'node-engine.ts']) {
      const files = walkImportGraph(path.join(__dirname, entry)).files.map((f) => path.relative(repoRoot(), realpathSync(f)));
      // The walk really follows the model resolution into the checkpoint store it shares with training.
      if (entry !== 'node-engine.ts') expect(files).toContain('packages/i2i-core/src/store/checkpoint-store.ts');
      expect(files.filter((f) => f.startsWith('packages/i2i-core/src/train/'))).toEqual([]);
    }
  });
});
