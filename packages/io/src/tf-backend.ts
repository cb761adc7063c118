/**
 * Picks and initialises the TensorFlow.js backend for the whole process: native TensorFlow through
 * `@tensorflow/tfjs-node-gpu` or `@tensorflow/tfjs-node` when one is installed and its addon loads, else the
 * wasm backend, else the pure-JS cpu backend. Backends are process-global state in tfjs-core, so this module
 * keeps one record of what it initialised and hands every caller the same tfjs-core instance.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { BackendError, UsageError, capText, quoteValue } from './errors';

type Tf = typeof import('@tensorflow/tfjs-core');
type KernelBackend = import('@tensorflow/tfjs-core').KernelBackend;

export type BackendCandidate = 'tfjs-node-gpu' | 'tfjs-node' | 'wasm' | 'cpu';
export type BackendPreference = 'auto' | BackendCandidate;
/** The tfjs-core backend name: both tfjs-node packages register theirs as 'tensorflow'. */
export type TfBackendName = 'tensorflow' | 'wasm' | 'cpu';

/** Candidates in the order `prefer: 'auto'` tries them: fastest first. */
export const BACKEND_CANDIDATES: readonly BackendCandidate[] = Object.freeze(['tfjs-node-gpu', 'tfjs-node', 'wasm', 'cpu']);

/** The environment variable that chooses the backend when `loadTf` is given no `prefer`. */
export const BACKEND_ENV_VAR = 'SCENIMEFY_TF_BACKEND';

const PACKAGE_OF: Readonly<Record<BackendCandidate, string>> = {
  'tfjs-node-gpu': '@tensorflow/tfjs-node-gpu',
  'tfjs-node': '@tensorflow/tfjs-node',
  wasm: '@tensorflow/tfjs-backend-wasm',
  cpu: '@tensorflow/tfjs-backend-cpu',
};

const SUPPORTED_TFJS_VERSION = '4.22.0';

const INSTALL_HINT: Readonly<Record<BackendCandidate, string>> = {
  'tfjs-node':
    'run `npx scenimefy setup tfjs-node` (or `npm run setup:tfjs-node` in the Scenimefy.js checkout; builds it offline from the tensorflow-cpu wheel), or `npm install @tensorflow/tfjs-node@4.22.0` where its download host is reachable',
  'tfjs-node-gpu':
    'run `npm install @tensorflow/tfjs-node-gpu@4.22.0` on a machine with CUDA and network access to its libtensorflow download; without those, `npx scenimefy setup tfjs-node` gives the CPU build',
  wasm: 'run `npm install @tensorflow/tfjs-backend-wasm@4.22.0`',
  cpu: 'run `npm install @tensorflow/tfjs-backend-cpu@4.22.0`',
};

export interface LoadTfOptions {
  /** Which backend to use; default: env SCENIMEFY_TF_BACKEND, else 'auto' (tfjs-node-gpu → tfjs-node → wasm → cpu). */
  prefer?: BackendPreference;
  /** Throw a BackendError when the preferred backend is unavailable instead of falling back. */
  require?: boolean;
  /** Thread-pool size for the wasm backend where it has one (browsers with cross-origin isolation, not Node). */
  wasmThreads?: number;
  /** Receives one line per decision (each skipped candidate, then the chosen backend). */
  log?: (line: string) => void;
}

export interface SkippedBackend {
  candidate: BackendCandidate;
  reason: string;
}

export interface TfLoadResult {
  /** The single tfjs-core instance every Scenimefy.js package uses; its active backend is `backend`. */
  tf: Tf;
  backend: TfBackendName;
  candidate: BackendCandidate;
  /** The npm package that provides the backend, e.g. '@tensorflow/tfjs-node'. */
  package: string;
  /** That package's installed version. */
  version: string;
  /** Threads the backend computes on (TensorFlow's intra-op pool, the wasm pool, or 1). */
  threads: number;
  /** Short facts for logs: the TensorFlow library version, SIMD on or off. */
  details: string[];
  /** Why this backend, and what limits it. */
  reason: string;
  /** The candidates tried before this one, with why each was not used. */
  skipped: SkippedBackend[];
}

export interface InstalledBackend {
  candidate: BackendCandidate;
  package: string;
  version: string;
  /** The package's folder as Node resolves it from @scenimefy/io. */
  directory: string;
}

interface Prepared {
  candidate: BackendCandidate;
  backend: TfBackendName;
  package: string;
  version: string;
  threads: number;
  details: string[];
  notes: string[];
}

type Preparation = { ok: true; value: Prepared } | { ok: false; reason: string };

/** Each candidate is initialised at most once per process: a native addon cannot be loaded twice. */
const preparations = new Map<BackendCandidate, Promise<Preparation>>();
let current: TfLoadResult | undefined;
/** Serialises loadTf calls so two concurrent callers never initialise the same backend twice. */
let queue: Promise<unknown> = Promise.resolve();

/**
 * Initialises a TensorFlow.js backend and returns it with the shared tfjs-core instance. The first call decides;
 * later calls return the same result object unless they explicitly prefer another candidate, in which case the
 * process switches to it (each backend is still initialised only once).
 */
export function loadTf(options: LoadTfOptions = {}): Promise<TfLoadResult> {
  const run = queue.then(() => loadTfNow(options));
  queue = run.catch(() => undefined);
  return run;
}

async function loadTfNow(options: LoadTfOptions): Promise<TfLoadResult> {
  const { preference, source } = resolvePreference(options.prefer);
  const log = options.log ?? (() => undefined);
  const strict = options.require === true;

  if (strict && preference === 'auto') {
    throw new UsageError('loadTf: `require: true` needs a specific backend in `prefer`, not "auto"');
  }
  if (current !== undefined && (preference === 'auto' || preference === current.candidate)) return current;

  const tf = requireTfCore();
  const order: BackendCandidate[] =
    preference === 'auto'
      ? [...BACKEND_CANDIDATES]
      : strict
        ? [preference]
        : [preference, ...BACKEND_CANDIDATES.filter((c) => c !== preference)];
  const skipped: SkippedBackend[] = [];

  for (const candidate of order) {
    const preparation = await prepare(candidate, tf, options);
    if (!preparation.ok) {
      skipped.push({ candidate, reason: preparation.reason });
      log(`tf backend: ${candidate} skipped: ${preparation.reason}`);
      if (strict) {
        throw new BackendError(
          `backend ${candidate} (${PACKAGE_OF[candidate]}) is unavailable: ${preparation.reason}; to install it, ${INSTALL_HINT[candidate]}`,
        );
      }
      continue;
    }
    const prepared = preparation.value;
    if (!(await tf.setBackend(prepared.backend))) {
      // Only reachable if the engine rejects an instance that initialised fine; never retry it.
      const reason = `backend init failed: tfjs-core could not switch to '${prepared.backend}'`;
      preparations.set(candidate, Promise.resolve({ ok: false, reason }));
      skipped.push({ candidate, reason });
      log(`tf backend: ${candidate} skipped: ${reason}`);
      if (strict) throw new BackendError(`backend ${candidate} (${prepared.package}) is unavailable: ${reason}`);
      continue;
    }
    current = {
      tf,
      backend: prepared.backend,
      candidate,
      package: prepared.package,
      version: prepared.version,
      threads: prepared.threads,
      details: prepared.details,
      reason: [choiceReason(preference, source, candidate, skipped), ...prepared.notes].join('; '),
      skipped,
    };
    log(`tf backend: ${describeBackend(current)}: ${current.reason}`);
    return current;
  }
  // cpu ships with @scenimefy/io, so this means the install itself is broken.
  throw new BackendError(`no TensorFlow.js backend could be initialised: ${skipped.map((s) => `${s.candidate}: ${s.reason}`).join('; ')}`);
}

function resolvePreference(prefer: BackendPreference | undefined): { preference: BackendPreference; source: string } {
  if (prefer !== undefined) {
    if (!isPreference(prefer)) {
      throw new UsageError(`loadTf: unknown backend ${quoteValue(String(prefer))}; expected one of auto, ${BACKEND_CANDIDATES.join(', ')}`);
    }
    return { preference: prefer, source: `prefer: '${prefer}'` };
  }
  const fromEnv = process.env[BACKEND_ENV_VAR];
  if (fromEnv !== undefined && fromEnv !== '') {
    if (!isPreference(fromEnv)) {
      throw new UsageError(
        `${BACKEND_ENV_VAR}=${capText(fromEnv)} is not a backend; expected one of auto, ${BACKEND_CANDIDATES.join(', ')}`,
      );
    }
    return { preference: fromEnv, source: `${BACKEND_ENV_VAR}=${fromEnv}` };
  }
  return { preference: 'auto', source: 'auto' };
}

function isPreference(value: string): value is BackendPreference {
  return value === 'auto' || (BACKEND_CANDIDATES as readonly string[]).includes(value);
}

function choiceReason(preference: BackendPreference, source: string, chosen: BackendCandidate, skipped: SkippedBackend[]): string {
  if (preference === chosen) return `requested by ${source}`;
  const order = BACKEND_CANDIDATES.join(' → ');
  if (preference === 'auto') {
    return skipped.length === 0 ? `fastest of ${order}` : `first working of ${order}`;
  }
  const own = skipped.find((s) => s.candidate === preference);
  return `${preference} (${source}) unavailable: ${own?.reason ?? 'unknown'}; fell back to the first working of ${order}`;
}

function prepare(candidate: BackendCandidate, tf: Tf, options: LoadTfOptions): Promise<Preparation> {
  let preparation = preparations.get(candidate);
  if (preparation === undefined) {
    preparation = prepareOnce(candidate, tf, options).catch(
      (error: unknown): Preparation => ({ ok: false, reason: `backend init failed: ${firstLine(error)}` }),
    );
    preparations.set(candidate, preparation);
  }
  return preparation;
}

async function prepareOnce(candidate: BackendCandidate, tf: Tf, options: LoadTfOptions): Promise<Preparation> {
  const installed = installedPackage(candidate);
  if (installed === undefined) return { ok: false, reason: 'not installed' };
  if (installed.version !== SUPPORTED_TFJS_VERSION) {
    return {
      ok: false,
      reason: `version ${installed.version} installed, Scenimefy.js needs exactly ${SUPPORTED_TFJS_VERSION}`,
    };
  }
  switch (candidate) {
    case 'tfjs-node-gpu':
    case 'tfjs-node':
      return prepareNative(candidate, tf, installed);
    case 'wasm':
      return prepareWasm(tf, installed, options.wasmThreads);
    case 'cpu':
      return prepareCpu(tf, installed);
  }
}

async function prepareNative(candidate: BackendCandidate, tf: Tf, installed: InstalledBackend): Promise<Preparation> {
  const foreignCore = foreignTfCore(installed.directory);
  if (foreignCore !== undefined) {
    return {
      ok: false,
      reason: `it resolves a second copy of @tensorflow/tfjs-core (${foreignCore}); make npm dedupe it to one copy (npm dedupe)`,
    };
  }
  try {
    // TensorFlow's C++ start-up banners (CPU features, …) would land on the user's terminal; keep errors only,
    // unless the user asked for a log level. Set before the require: the library reads it as it loads. Two lines
    // come from static initialisers before any setting reaches absl's logger (its "before absl::InitializeLog()"
    // warning and the oneDNN notice); only TF_ENABLE_ONEDNN_OPTS=0 stops them, which also turns oneDNN's kernels
    // off and changes results, so that stays the user's choice (tf-backend.stderr.test.ts).
    process.env.TF_CPP_MIN_LOG_LEVEL ??= '2';
    // Importing it loads the addon, registers 'tensorflow' and makes it active.
    require(installed.package);
  } catch (error) {
    return { ok: false, reason: `native addon failed to load: ${firstLine(error)}` };
  }
  let instance = tf.engine().registry.tensorflow;
  if (instance === undefined) {
    const initialised = await initialise(tf, 'tensorflow');
    if (typeof initialised === 'string') return { ok: false, reason: initialised };
    instance = initialised;
  }
  const tfVersion = (instance as { binding?: { TF_Version?: unknown } }).binding?.TF_Version;
  return {
    ok: true,
    value: {
      candidate,
      backend: 'tensorflow',
      package: installed.package,
      version: installed.version,
      // TensorFlow sizes its intra-op pool to the CPUs this process may run on, as availableParallelism counts them.
      threads: os.availableParallelism(),
      details: typeof tfVersion === 'string' ? [`TensorFlow ${tfVersion}`] : [],
      notes: [],
    },
  };
}

async function prepareWasm(tf: Tf, installed: InstalledBackend, wasmThreads: number | undefined): Promise<Preparation> {
  const wasm = require(installed.package) as typeof import('@tensorflow/tfjs-backend-wasm');
  // The .wasm binaries sit beside the package's main file; an absolute prefix works from any cwd and from dist/.
  const distDir = path.dirname(require.resolve(installed.package));
  const simd = (await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT')) === true;
  const threaded = (await tf.env().getAsync('WASM_HAS_MULTITHREAD_SUPPORT')) === true;
  const binary = path.join(
    distDir,
    simd && threaded ? 'tfjs-backend-wasm-threaded-simd.wasm' : simd ? 'tfjs-backend-wasm-simd.wasm' : 'tfjs-backend-wasm.wasm',
  );
  if (!fs.existsSync(binary)) return { ok: false, reason: `backend init failed: ${binary} is missing` };
  if (tf.engine().registry.wasm === undefined) {
    wasm.setWasmPaths(distDir + path.sep);
    if (threaded && wasmThreads !== undefined) wasm.setThreadsCount(wasmThreads);
    const instance = await initialise(tf, 'wasm');
    if (typeof instance === 'string') return { ok: false, reason: instance };
  }
  const threads = wasm.getThreadsCount();
  const notes: string[] = [];
  if (!threaded) {
    const ignored = wasmThreads !== undefined && wasmThreads !== 1 ? ` (wasmThreads=${wasmThreads} ignored)` : '';
    notes.push(
      tf.env().getBool('IS_NODE')
        ? `single-threaded: tfjs-backend-wasm ${installed.version} turns its thread pool off in Node${ignored}`
        : `single-threaded: this runtime lacks wasm threads or cross-origin isolation${ignored}`,
    );
  }
  if (!simd) notes.push('no wasm SIMD in this runtime');
  return {
    ok: true,
    value: {
      candidate: 'wasm',
      backend: 'wasm',
      package: installed.package,
      version: installed.version,
      threads,
      details: [simd ? 'SIMD' : 'no SIMD'],
      notes,
    },
  };
}

async function prepareCpu(tf: Tf, installed: InstalledBackend): Promise<Preparation> {
  require(installed.package);
  if (tf.engine().registry.cpu === undefined) {
    const instance = await initialise(tf, 'cpu');
    if (typeof instance === 'string') return { ok: false, reason: instance };
    // The cpu backend prints a banner about tfjs-node on first use; our reason line already says it.
    if ('firstUse' in instance) (instance as { firstUse: boolean }).firstUse = false;
  }
  return {
    ok: true,
    value: {
      candidate: 'cpu',
      backend: 'cpu',
      package: installed.package,
      version: installed.version,
      threads: 1,
      details: [],
      notes: ['pure-JavaScript kernels, the slowest backend: `npx scenimefy setup tfjs-node` gives native TensorFlow'],
    },
  };
}

/**
 * Runs a registered backend factory ourselves so its error reaches the skip reason (tfjs-core would only print
 * it), then stores the instance where `tf.setBackend` finds it; setBackend runs the kernels' setup as usual.
 */
async function initialise(tf: Tf, name: TfBackendName): Promise<KernelBackend | string> {
  const factory = tf.findBackendFactory(name);
  if (factory == null) return `backend init failed: loading the package registered no '${name}' backend`;
  try {
    const instance = await factory();
    tf.engine().registry[name] = instance;
    return instance;
  } catch (error) {
    return `backend init failed: ${firstLine(error)}`;
  }
}

/**
 * tfjs-core's Node bundle registers no gradients and no chained ops (`x.flatten()`); only the union package's
 * bundle does (its ESM sources cannot be required from CommonJS). tfjs-node loads the union anyway, so loading it
 * here gives every backend the same API: `tf.grad` works on wasm and cpu exactly as on tfjs-node.
 */
function requireTfCore(): Tf {
  require('@tensorflow/tfjs');
  return require('@tensorflow/tfjs-core') as Tf;
}

/** A tfjs-core path that a native package would use instead of ours, or undefined when it shares ours. */
function foreignTfCore(packageDir: string): string | undefined {
  const ours = realTfCorePath([__dirname]);
  // tfjs-node imports tfjs-core itself and through @tensorflow/tfjs; both must land on our copy.
  const seenFrom = [packageDir];
  const union = resolvePackageDir('@tensorflow/tfjs', [packageDir]);
  if (union !== undefined) seenFrom.push(union);
  for (const from of seenFrom) {
    const theirs = realTfCorePath([from]);
    if (theirs !== undefined && ours !== undefined && theirs !== ours) return theirs;
  }
  return undefined;
}

function realTfCorePath(paths: string[]): string | undefined {
  const dir = resolvePackageDir('@tensorflow/tfjs-core', paths);
  return dir === undefined ? undefined : fs.realpathSync(dir);
}

function resolvePackageDir(pkg: string, paths?: string[]): string | undefined {
  try {
    const manifest = require.resolve(`${pkg}/package.json`, paths === undefined ? undefined : { paths });
    return path.dirname(manifest);
  } catch {
    return undefined;
  }
}

function installedPackage(candidate: BackendCandidate): InstalledBackend | undefined {
  const pkg = PACKAGE_OF[candidate];
  const directory = resolvePackageDir(pkg);
  if (directory === undefined) return undefined;
  const manifest = JSON.parse(fs.readFileSync(path.join(directory, 'package.json'), 'utf8')) as { version?: unknown };
  return {
    candidate,
    package: pkg,
    version: typeof manifest.version === 'string' ? manifest.version : 'unknown',
    directory,
  };
}

/** The backend packages Node can resolve from @scenimefy/io, in preference order; nothing is loaded or initialised. */
export function availableBackends(): InstalledBackend[] {
  return BACKEND_CANDIDATES.map(installedPackage).filter((b): b is InstalledBackend => b !== undefined);
}

/** One line for run logs, e.g. "tensorflow (tfjs-node 4.22.0, TensorFlow 2.21.0, 2 threads)". */
export function describeBackend(result: Pick<TfLoadResult, 'backend' | 'package' | 'version' | 'threads' | 'details'>): string {
  const name = result.package.replace(/^@tensorflow\//, '');
  const threads = `${result.threads} thread${result.threads === 1 ? '' : 's'}`;
  return `${result.backend} (${[`${name} ${result.version}`, ...result.details, threads].join(', ')})`;
}

function firstLine(error: unknown): string {
  const message =
    error instanceof Error
      ? error.message
      : typeof error === 'object' && error !== null && typeof (error as { message?: unknown }).message === 'string'
        ? (error as { message: string }).message
        : String(error);
  return capText(message.trim().split('\n')[0]?.trim() ?? '');
}
