/**
 * The runtime import graph of a TypeScript entry, for tests that keep a browser entry free of Node-only modules.
 * Each reachable source file is parsed with the TypeScript compiler (imports, re-exports, `require`, dynamic
 * `import()`, `import x = require()`); relative imports are followed, and so are workspace packages (by default
 * `@scenimefy/*`, through the `@scenimefy/source` condition of their `exports`), so that one package's browser
 * entry is checked through the packages it uses. Type-only imports are skipped: they are erased at compile time.
 */
import { readFileSync, statSync } from 'node:fs';
import { builtinModules } from 'node:module';
import * as path from 'node:path';

import { UsageError } from '@scenimefy/io';
import ts from 'typescript';

export interface ImportGraphOptions {
  /** Bare specifiers whose package is followed into its sources (default: `@scenimefy/…`). */
  follow?: (specifier: string) => boolean;
  /** The `exports` condition that names a followed package's TypeScript source (default `@scenimefy/source`). */
  sourceCondition?: string;
  /**
   * Also follow type-only imports and re-exports (`import type`, `export type … from`, `typeof import('x')`): what
   * an entry's declaration files reach, which must stay as browser-safe as its code (default false: runtime only).
   */
  includeTypeOnly?: boolean;
}

/** One import of a module that is not followed: a package, a builtin, or a dynamic `require(expr)`. */
export interface ExternalImport {
  /** As written (`node:fs`, `sharp`, `zod/mini`), or `require(<expression>)` for a computed one. */
  specifier: string;
  /** The file that imports it. */
  file: string;
  /** The files from the entry to `file`, each importing the next (entry first, `file` last). */
  chain: string[];
}

export interface ImportGraph {
  entry: string;
  /** Every source file reached, entry first. */
  files: string[];
  /** Imports of packages and builtins (not followed), in the order they were met. */
  external: ExternalImport[];
  /** `require(expr)` / `import(expr)` whose target is not a string literal: nothing can tell what they load. */
  computed: ExternalImport[];
  /** Relative (or followed-package) imports that resolve to no file. */
  unresolved: ExternalImport[];
}

/** A module a browser bundle cannot load, found in a graph, with the chain of files that reached it. */
export interface ImportViolation extends ExternalImport {
  reason: string;
}

const SOURCE_EXTENSIONS = ['.ts', '.tsx', '.mts', '.cts', '.js', '.mjs', '.cjs', '.json'];
const BUILTINS = new Set(builtinModules);

/** Walk the runtime imports reachable from `entry` (a source file path). */
export function walkImportGraph(entry: string, options: ImportGraphOptions = {}): ImportGraph {
  const follow = options.follow ?? ((s: string) => s.startsWith('@scenimefy/'));
  const condition = options.sourceCondition ?? '@scenimefy/source';
  const start = path.resolve(entry);
  if (!isFile(start)) throw new UsageError(`walkImportGraph: ${start} is not a file`);

  const parent = new Map<string, string | undefined>([[start, undefined]]);
  const queue = [start];
  const graph: ImportGraph = { entry: start, files: [], external: [], computed: [], unresolved: [] };
  const chainTo = (file: string): string[] => {
    const chain: string[] = [];
    for (let f: string | undefined = file; f !== undefined; f = parent.get(f)) chain.unshift(f);
    return chain;
  };

  for (let next = queue.shift(); next !== undefined; next = queue.shift()) {
    const file = next;
    graph.files.push(file);
    if (file.endsWith('.json')) continue;
    for (const found of runtimeImports(file, options.includeTypeOnly === true)) {
      const record = (list: ExternalImport[]): void => {
        list.push({ specifier: found.specifier, file, chain: chainTo(file) });
      };
      if (found.computed) {
        record(graph.computed);
        continue;
      }
      const spec = found.specifier;
      let target: string | undefined;
      if (spec.startsWith('.') || path.isAbsolute(spec)) target = resolveSourceFile(path.resolve(path.dirname(file), spec));
      else if (follow(spec)) target = resolveWorkspacePackage(spec, file, condition);
      else {
        record(graph.external);
        continue;
      }
      if (target === undefined) {
        record(graph.unresolved);
        continue;
      }
      if (!parent.has(target)) {
        parent.set(target, file);
        queue.push(target);
      }
    }
  }
  return graph;
}

/**
 * What in `graph` a browser cannot load: Node builtins (`node:fs`, or a bare `fs`), sharp, tfjs-node(-gpu),
 * onnxruntime-node, computed requires and imports that resolve to nothing.
 */
export function browserImportViolations(graph: ImportGraph): ImportViolation[] {
  const violations: ImportViolation[] = [];
  for (const imp of graph.external) {
    const reason = nodeOnlyReason(imp.specifier);
    if (reason !== undefined) violations.push({ ...imp, reason });
  }
  for (const imp of graph.computed) {
    const reason = imp.specifier.startsWith('require.resolve(')
      ? 'Node.js module resolution'
      : 'a computed require/import (its target cannot be checked)';
    violations.push({ ...imp, reason });
  }
  for (const imp of graph.unresolved) violations.push({ ...imp, reason: 'resolves to no file' });
  return violations;
}

/** Why `specifier` is Node-only, or undefined when a browser bundle can load it. */
export function nodeOnlyReason(specifier: string): string | undefined {
  if (specifier.startsWith('node:')) return 'a Node.js builtin';
  const name = packageName(specifier);
  if (BUILTINS.has(specifier) || BUILTINS.has(name)) return 'a Node.js builtin';
  if (name === 'sharp') return 'sharp (native libvips)';
  if (name.startsWith('@tensorflow/tfjs-node')) return 'tfjs-node (native TensorFlow)';
  if (name === 'onnxruntime-node') return 'onnxruntime-node (native onnxruntime)';
  return undefined;
}

/** `node:fs (a Node.js builtin) via core.ts → a.ts → b.ts`, paths relative to `root`. */
export function describeImportViolation(v: ImportViolation, root = process.cwd()): string {
  return `${v.specifier} (${v.reason}) via ${v.chain.map((f) => path.relative(root, f)).join(' → ')}`;
}

interface FoundImport {
  specifier: string;
  computed: boolean;
}

/** The runtime module references of one file (with `typeOnly`, the type-only ones too), in source order. */
function runtimeImports(file: string, typeOnly = false): FoundImport[] {
  const text = readFileSync(file, 'utf8');
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, false, scriptKindOf(file));
  const found: FoundImport[] = [];
  const literal = (node: ts.Node | undefined): string | undefined =>
    node !== undefined && (ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node)) ? node.text : undefined;

  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node)) {
      const clause = node.importClause;
      if (clause?.isTypeOnly && !typeOnly) return;
      const spec = literal(node.moduleSpecifier);
      if (spec !== undefined) found.push({ specifier: spec, computed: false });
      return;
    }
    if (ts.isExportDeclaration(node)) {
      if ((node.isTypeOnly && !typeOnly) || node.moduleSpecifier === undefined) return;
      const spec = literal(node.moduleSpecifier);
      if (spec !== undefined) found.push({ specifier: spec, computed: false });
      return;
    }
    if (ts.isImportEqualsDeclaration(node)) {
      if ((!node.isTypeOnly || typeOnly) && ts.isExternalModuleReference(node.moduleReference)) {
        const spec = literal(node.moduleReference.expression);
        found.push(spec !== undefined ? { specifier: spec, computed: false } : { specifier: 'require(<expression>)', computed: true });
      }
      return;
    }
    if (typeOnly && ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) {
      const spec = literal(node.argument.literal);
      if (spec !== undefined) found.push({ specifier: spec, computed: false });
    }
    // Type positions (`typeof import('x')`, annotations) never reach the runtime.
    if (!typeOnly && (ts.isTypeNode(node) || ts.isInterfaceDeclaration(node) || ts.isTypeAliasDeclaration(node))) return;
    if (ts.isCallExpression(node)) {
      const isRequire = ts.isIdentifier(node.expression) && node.expression.text === 'require';
      const isRequireResolve =
        ts.isPropertyAccessExpression(node.expression) &&
        ts.isIdentifier(node.expression.expression) &&
        node.expression.expression.text === 'require';
      const isDynamicImport = node.expression.kind === ts.SyntaxKind.ImportKeyword;
      if ((isRequire || isDynamicImport) && node.arguments.length >= 1) {
        const spec = literal(node.arguments[0]);
        const what = isRequire ? 'require' : 'import';
        found.push(
          spec !== undefined
            ? { specifier: spec, computed: false }
            : { specifier: `${what}(${node.arguments[0]!.getText(source)})`, computed: true },
        );
      } else if (isRequireResolve) {
        // require.resolve(x) names a module without loading it; no bundle needs it, but it marks Node-only code.
        found.push({ specifier: `require.resolve(${node.arguments[0]?.getText(source) ?? ''})`, computed: true });
      }
    }
    ts.forEachChild(node, visit);
  };
  ts.forEachChild(source, visit);
  return found;
}

function scriptKindOf(file: string): ts.ScriptKind {
  if (file.endsWith('.tsx')) return ts.ScriptKind.TSX;
  if (/\.[mc]?js$/.test(file)) return ts.ScriptKind.JS;
  return ts.ScriptKind.TS;
}

/** `base` as a source file: itself, with a source extension, `.js` written for a `.ts` source, or a folder index. */
function resolveSourceFile(base: string): string | undefined {
  const candidates = [base, ...SOURCE_EXTENSIONS.map((e) => base + e)];
  const js = /\.(m|c)?js$/.exec(base);
  if (js !== null) {
    const stem = base.slice(0, -js[0].length);
    candidates.push(`${stem}.${js[1] ?? ''}ts`, `${stem}.tsx`);
  }
  candidates.push(...SOURCE_EXTENSIONS.map((e) => path.join(base, `index${e}`)));
  return candidates.find(isFile);
}

/** A workspace package import, through its package.json `exports[subpath][condition]`. */
function resolveWorkspacePackage(specifier: string, from: string, condition: string): string | undefined {
  const name = packageName(specifier);
  const subpath = `.${specifier.slice(name.length)}`;
  for (let dir = path.dirname(from); ; dir = path.dirname(dir)) {
    const pkgDir = path.join(dir, 'node_modules', ...name.split('/'));
    const manifest = path.join(pkgDir, 'package.json');
    if (isFile(manifest)) {
      const pkg = JSON.parse(readFileSync(manifest, 'utf8')) as { exports?: Record<string, unknown> };
      const entry = pkg.exports?.[subpath];
      const target = typeof entry === 'object' && entry !== null ? (entry as Record<string, unknown>)[condition] : undefined;
      return typeof target === 'string' ? resolveSourceFile(path.resolve(pkgDir, target)) : undefined;
    }
    if (path.dirname(dir) === dir) return undefined;
  }
}

/** `@scope/name` or `name`, without a subpath. */
function packageName(specifier: string): string {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!;
}

function isFile(file: string): boolean {
  try {
    return statSync(file).isFile();
  } catch {
    return false;
  }
}
