#!/usr/bin/env node
// Bundles each browser entry of a package (an `exports` subpath with a `browser` condition, see
// tools/package-exports.js) from its TypeScript source to dist/browser/<name>.mjs: ESM, ES2022, for browsers, with
// every dependency left as an import for the consumer's bundler. dist/browser/<name>.d.mts re-exports the entry's
// declarations so TypeScript sees an ES module there too.
//
// The bundle is also the browser import-graph check: the build fails, naming the import chain, when code reachable
// from a browser entry imports a Node built-in (`node:fs`, `path`, ...), a Node-only package (sharp,
// onnxruntime-node, tfjs-node), a package the manifest does not declare, a workspace package's entry that has no
// browser build (e.g. `@scenimefy/io` instead of `@scenimefy/io/core`), or an external module through `require()`
// (an ESM bundle cannot do that in a browser).
const fs = require('node:fs');
const { builtinModules } = require('node:module');
const path = require('node:path');

const { declaredEntries, readJson } = require('./package-exports.js');

/** Packages that only work in Node; a browser entry that reaches one is a bug, even where it is declared. */
const NODE_ONLY = new Set(['sharp', 'onnxruntime-node', '@tensorflow/tfjs-node', '@tensorflow/tfjs-node-gpu']);
const BUILTINS = new Set(builtinModules);

/** `@scope/name/sub/path` → `{ name: '@scope/name', subpath: './sub/path' }`. */
function splitSpecifier(spec) {
  const parts = spec.split('/');
  const n = spec.startsWith('@') ? 2 : 1;
  const rest = parts.slice(n).join('/');
  return { name: parts.slice(0, n).join('/'), subpath: rest === '' ? '.' : `./${rest}` };
}

/** Why an import of `spec` (a bare specifier) may not appear in a browser bundle of `manifest`, or null. */
function refusal(spec, kind, manifest, resolveManifest) {
  if (spec.startsWith('node:') || BUILTINS.has(spec) || BUILTINS.has(spec.split('/')[0])) return 'a Node built-in';
  const { name, subpath } = splitSpecifier(spec);
  if (NODE_ONLY.has(name)) return 'a Node-only package';
  const declared = { ...manifest.peerDependencies, ...manifest.dependencies };
  if (!(name in declared)) return `not a dependency of ${manifest.name}`;
  if (kind === 'require-call') return 'loaded with require(), which an ES module in a browser cannot do';
  if (name.startsWith('@scenimefy/')) {
    const target = resolveManifest(name);
    const entry = target?.exports?.[subpath];
    if (typeof entry !== 'object' || entry === null || !('browser' in entry)) {
      return `an entry of ${name} without a browser build (its exports["${subpath}"] has no "browser" condition)`;
    }
  }
  return null;
}

/** The shortest import chain from the entry to `file` in an esbuild metafile, as paths relative to the package. */
function importChain(metafile, entry, file) {
  const parent = new Map([[entry, null]]);
  const queue = [entry];
  while (queue.length > 0) {
    const at = queue.shift();
    if (at === file) break;
    for (const imp of metafile.inputs[at]?.imports ?? []) {
      if (imp.external || parent.has(imp.path)) continue;
      parent.set(imp.path, at);
      queue.push(imp.path);
    }
  }
  const chain = [];
  for (let at = file; at !== null && at !== undefined; at = parent.get(at)) chain.unshift(at);
  return chain;
}

/**
 * Bundles the browser entries of the package in `dir`. Returns what was written; throws an Error whose message lists
 * every refused import with its chain. `write: false` only analyses (the import-graph tests use it).
 * `resolveManifest(name)` finds a workspace package's manifest (default: through node_modules from `dir`).
 */
async function buildBrowserEntries(dir, { write = true, resolveManifest } = {}) {
  const esbuild = require('esbuild');
  const manifest = readJson(path.join(dir, 'package.json'));
  const findManifest =
    resolveManifest ??
    ((name) => {
      try {
        return readJson(require.resolve(`${name}/package.json`, { paths: [dir] }));
      } catch {
        return undefined;
      }
    });
  const { entries, problems } = declaredEntries(manifest);
  if (problems.length > 0) throw new Error(`${manifest.name}: ${problems.join('; ')}`);
  const results = [];
  for (const entry of entries.filter((e) => e.browser)) {
    const refused = [];
    const guard = {
      name: 'browser-imports',
      setup(build) {
        build.onResolve({ filter: /^[^./]/ }, (args) => {
          if (args.kind === 'entry-point' || path.isAbsolute(args.path)) return undefined;
          const why = refusal(args.path, args.kind, manifest, findManifest);
          if (why !== null) refused.push({ spec: args.path, why, importer: path.relative(dir, args.importer) });
          return { path: args.path, external: true };
        });
      },
    };
    const source = entry.source.slice(2);
    const outfile = path.join('dist', 'browser', `${entry.name}.mjs`);
    const result = await esbuild.build({
      absWorkingDir: dir,
      entryPoints: [source],
      outfile,
      bundle: true,
      platform: 'browser',
      format: 'esm',
      target: 'es2022',
      tsconfig: fs.existsSync(path.join(dir, 'tsconfig.build.json')) ? 'tsconfig.build.json' : undefined,
      // No source map: the bundle is unminified ES2022 that reads like its sources, which are not published.
      sourcemap: false,
      legalComments: 'none',
      metafile: true,
      write: false,
      logLevel: 'silent',
      plugins: [guard],
    });
    if (refused.length > 0) {
      const lines = refused.map((r) => `  ${importChain(result.metafile, source, r.importer).join(' → ')} imports "${r.spec}": ${r.why}`);
      throw new Error(
        `${manifest.name} browser entry "${entry.subpath}" (${source}) reaches code a browser cannot run:\n${lines.join('\n')}`,
      );
    }
    const files = {
      [outfile]: result.outputFiles[0].contents,
      // `export *` from the CommonJS declarations: the two builds export the same names (one source), and a .d.mts
      // is what tells TypeScript the .mjs beside it is an ES module.
      [path.join('dist', 'browser', `${entry.name}.d.mts`)]:
        `export * from '${path.posix.relative(path.posix.dirname(`dist/browser/${entry.name}`), `dist/${entry.name}.js`)}';\n`,
    };
    if (write) {
      for (const [rel, contents] of Object.entries(files)) {
        const file = path.join(dir, rel);
        fs.mkdirSync(path.dirname(file), { recursive: true });
        const tmp = `${file}.${process.pid}.tmp`;
        fs.writeFileSync(tmp, contents);
        fs.renameSync(tmp, file);
      }
    }
    results.push({ subpath: entry.subpath, files: Object.keys(files), inputs: Object.keys(result.metafile.inputs).sort() });
  }
  return results;
}

module.exports = { buildBrowserEntries, importChain, NODE_ONLY, refusal };

if (require.main === module) {
  buildBrowserEntries(path.resolve(process.argv[2] ?? '.')).then(
    (results) => {
      for (const r of results) console.log(`browser entry ${r.subpath}: ${r.files.join(', ')} (${r.inputs.length} modules)`);
    },
    (err) => {
      console.error(err instanceof Error ? err.message : err);
      process.exit(1);
    },
  );
}
