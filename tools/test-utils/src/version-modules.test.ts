import * as fs from 'node:fs';
import * as path from 'node:path';

// The generator is plain JavaScript run by each package's build; the test reads its exports.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { versionModule, workspacePackages } = require('../../write-version-modules.js') as {
  versionModule: (manifest: { name: string; version: string }) => string;
  workspacePackages: () => string[];
};

describe('src/version.ts of each published package', () => {
  const packages = workspacePackages();

  it('finds the published packages', () => {
    expect(packages.map((p) => path.basename(p))).toEqual(expect.arrayContaining(['io', 'i2i-core', 'cli']));
  });

  it.each(packages.map((p) => [path.basename(p), p]))('%s: version.ts is what package.json says (run its build to refresh)', (_, dir) => {
    const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name: string; version: string };
    expect(fs.readFileSync(path.join(dir, 'src', 'version.ts'), 'utf8')).toBe(versionModule(manifest));
  });
});
