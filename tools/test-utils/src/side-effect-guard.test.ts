import * as path from 'node:path';

import { guardAgainstSideEffects } from './side-effect-guard';
import { makeTempDir, type TempDir } from './temp-dir';

// The guard spies on the module object that code under test calls through (a spy on a namespace copy sees nothing).
describe('guardAgainstSideEffects', () => {
  let tmp: TempDir;
  beforeAll(async () => {
    tmp = await makeTempDir('guard');
  });
  afterAll(async () => {
    await tmp.cleanup();
  });

  it('sees a process spawned through node:child_process as the code under test would call it', () => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const cp = require('node:child_process') as typeof import('node:child_process');
    const spy = jest.spyOn(cp, 'execFileSync');
    try {
      // A module that did `import { execFileSync } from 'node:child_process'` calls through the module object:
      const calledByCodeUnderTest = (): void => {
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        (require('node:child_process') as typeof import('node:child_process')).execFileSync('true');
      };
      calledByCodeUnderTest();
      expect(spy).toHaveBeenCalledTimes(1);
    } finally {
      spy.mockRestore();
    }
  });

  describe('in use', () => {
    const marker = (): string => path.join(tmp.dir, 'marker');
    guardAgainstSideEffects(marker);
    it('passes when nothing happened', () => {
      expect(1).toBe(1);
    });
  });
});
