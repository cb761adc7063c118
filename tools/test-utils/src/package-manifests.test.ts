/**
 * The published packages' manifests have the shape tools/package-exports.js derives from their `exports`, and each
 * package folder carries the repository's LICENSE (npm packs a LICENSE from the package folder only).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

type Manifest = Record<string, unknown>;
// The manifest rules are plain JavaScript shared with the build and tools/check-packages.mjs.
const { manifestProblems, publishedPackages, readJson, root } = require('../../package-exports.js') as {
  manifestProblems: (manifest: Manifest, rootManifest: Manifest) => string[];
  publishedPackages: () => string[];
  readJson: (file: string) => Manifest;
  root: string;
};

const rootManifest = readJson(path.join(root, 'package.json'));
const packages = publishedPackages().map((dir) => [path.relative(root, dir), dir] as const);

describe('published package manifests', () => {
  it('finds the published packages', () => {
    expect(packages.map(([rel]) => rel)).toEqual(['packages/io', 'packages/i2i-core', 'packages/cli']);
  });

  it.each(packages)('%s: exports, main, types, typesVersions and engines follow from its entries', (_, dir) => {
    expect(manifestProblems(readJson(path.join(dir, 'package.json')), rootManifest)).toEqual([]);
  });

  it.each(packages)('%s: LICENSE is the repository LICENSE, byte for byte', (_, dir) => {
    expect(fs.readFileSync(path.join(dir, 'LICENSE'), 'utf8')).toBe(fs.readFileSync(path.join(root, 'LICENSE'), 'utf8'));
  });

  it('the repository LICENSE is the MIT license the manifests name', () => {
    expect(rootManifest['license']).toBe('MIT');
    expect(fs.readFileSync(path.join(root, 'LICENSE'), 'utf8')).toMatch(
      /^MIT License\n\nCopyright \(c\) \d{4} .+\n\nPermission is hereby granted/,
    );
  });
});

describe('manifestProblems', () => {
  const entry = (name: string, browser: boolean) => ({
    '@scenimefy/source': `./src/${name}.ts`,
    ...(browser ? { browser: { types: `./dist/browser/${name}.d.mts`, default: `./dist/browser/${name}.mjs` } } : {}),
    types: `./dist/${name}.d.ts`,
    default: `./dist/${name}.js`,
  });
  const good: Manifest = {
    name: '@scenimefy/x',
    license: 'MIT',
    type: 'commonjs',
    main: 'dist/index.js',
    types: 'dist/index.d.ts',
    exports: { '.': entry('index', false), './core': entry('core', true), './package.json': './package.json' },
    typesVersions: { '*': { core: ['./dist/core.d.ts'] } },
    files: ['dist'],
    engines: rootManifest['engines'],
  };

  it('accepts the derived shape', () => {
    expect(manifestProblems(good, rootManifest)).toEqual([]);
  });

  it('names a plain entry added without its derived fields (what a new subpath looks like before --write)', () => {
    const { typesVersions: _, engines: __, ...rest } = good;
    const exports = { ...(good['exports'] as Record<string, unknown>) };
    exports['./core'] = { '@scenimefy/source': './src/core.ts', types: './dist/core.d.ts', default: './dist/core.js', browser: {} };
    expect(manifestProblems({ ...rest, exports }, rootManifest)).toEqual([
      `"exports" must be ${JSON.stringify(good['exports'])}, not ${JSON.stringify(exports)}`,
      `"typesVersions" must be {"*":{"core":["./dist/core.d.ts"]}}, not missing`,
      `"engines" must be ${JSON.stringify(rootManifest['engines'])}, not missing`,
    ]);
  });

  it('refuses a source outside src/ and a package type other than commonjs', () => {
    const exports = { ...(good['exports'] as Record<string, unknown>), './x': { '@scenimefy/source': './lib/x.js' } };
    expect(manifestProblems({ ...good, type: 'module', exports }, rootManifest)).toEqual([
      'exports["./x"]["@scenimefy/source"] must be "./src/<name>.ts", not "./lib/x.js"',
      `"exports" must be ${JSON.stringify(good['exports'])}, not ${JSON.stringify(exports)}`,
      '"type" must be "commonjs" (the dist build is CommonJS; browser bundles are .mjs)',
    ]);
  });
});
