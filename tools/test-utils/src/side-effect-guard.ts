/**
 * Proof that code under test ran nothing: spies on every child_process entry point and checks a marker file a
 * hostile payload would create. Call inside a `describe`; it registers its own beforeEach/afterEach.
 */
import { existsSync } from 'node:fs';

// The module object itself, not an `import * as` namespace: the transpiler gives each importer its own copy of
// a CommonJS namespace, and a spy on a copy sees nothing. Code under test calls through this object.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const childProcess = require('node:child_process') as typeof import('node:child_process');

const SPAWNERS = ['spawn', 'spawnSync', 'exec', 'execSync', 'execFile', 'execFileSync', 'fork'] as const;

/** After each test: no process was spawned and `marker()` (if given) does not exist. */
export function guardAgainstSideEffects(marker?: () => string): void {
  const spies: jest.SpyInstance[] = [];
  beforeEach(() => {
    for (const fn of SPAWNERS) spies.push(jest.spyOn(childProcess, fn));
  });
  afterEach(() => {
    for (const spy of spies.splice(0)) {
      expect(spy).not.toHaveBeenCalled();
      spy.mockRestore();
    }
    if (marker) expect(existsSync(marker())).toBe(false);
  });
}
