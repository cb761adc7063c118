/**
 * Typed errors shared by every Scenimefy.js package. Each carries a stable `code`; the CLI maps codes to exit
 * statuses in one place (`exitCodeFor`). Messages are one line and name the file and the problem; every value
 * from a file is quoted through `quoteValue`/`capText`, so a hostile file cannot make a message of megabytes.
 */

export type ScenimefyErrorCode =
  | 'E_INPUT'
  | 'E_MODEL_FORMAT'
  | 'E_CONTRACT'
  | 'E_BACKEND'
  | 'E_USAGE'
  | 'E_NETWORK'
  | 'E_INTEGRITY'
  | 'E_NUMERIC';

export interface ScenimefyErrorOptions {
  /** The file the error is about, when there is one. */
  file?: string;
  cause?: unknown;
}

/** The longest value quoted in full in an error message; a longer one is cut there and its length given. */
export const QUOTED_VALUE_MAX_CHARS = 200;

/**
 * The longest message a ScenimefyError keeps. Quoted values are capped where they are quoted; this is the safety
 * net for anything that was not, so that no file can make a message of megabytes.
 */
export const ERROR_MESSAGE_MAX_CHARS = 2000;

/**
 * `text` as it goes into a message: at most `max` characters, then `… (N characters)` saying how long it was.
 * Example: capText('a'.repeat(1e6)) === `${'a'.repeat(200)}… (1000000 characters)`
 */
export function capText(text: string, max = QUOTED_VALUE_MAX_CHARS): string {
  return text.length <= max ? text : `${text.slice(0, max)}… (${text.length} characters)`;
}

/**
 * A value from a file as it is quoted in an error message, never longer than about `max` characters: a string
 * JSON-quoted (`"conv.weight"`; a long one cut, with its length), a number or bigint as written (a bigint too long
 * to print by its size in bits, as turning it into decimals could take seconds), anything else as bounded JSON.
 */
export function quoteValue(value: unknown, max = QUOTED_VALUE_MAX_CHARS): string {
  if (typeof value === 'string') {
    return value.length <= max ? JSON.stringify(value) : `${JSON.stringify(value.slice(0, max))}… (${value.length} characters)`;
  }
  if (typeof value === 'bigint') {
    // 4 bits per hex digit: toString(16) is linear, unlike decimal conversion.
    const bits = (value < 0n ? -value : value).toString(16).length * 4;
    return bits <= 3 * max ? capText(String(value), max) : `${value < 0n ? 'a negative' : 'an'} integer of about ${bits} bits`;
  }
  if (value === undefined || typeof value === 'number' || typeof value === 'boolean' || typeof value === 'symbol') return String(value);
  if (typeof value === 'function') return 'a function';
  return boundedJson(value, max);
}

/** `items` joined with `separator`, stopping once `max` characters are written: `1, 2, 3, … (1000000 items)`. */
export function joinCapped(items: readonly unknown[], separator = ', ', max = QUOTED_VALUE_MAX_CHARS): string {
  let out = '';
  for (let i = 0; i < items.length; i++) {
    const item = typeof items[i] === 'string' ? (items[i] as string) : quoteValue(items[i], max);
    const next = i === 0 ? item : `${out}${separator}${item}`;
    if (next.length > max) return `${out}${i === 0 ? '' : separator}… (${items.length} items)`;
    out = next;
  }
  return out;
}

/** JSON of `value`, written only up to about `max` characters (a huge array costs nothing to preview). */
function boundedJson(value: unknown, max: number): string {
  let out = '';
  let cut = false;
  const write = (text: string): void => {
    if (out.length + text.length > max) {
      out += text.slice(0, Math.max(0, max - out.length));
      cut = true;
    } else out += text;
  };
  const visit = (v: unknown, depth: number): void => {
    if (cut) return;
    if (v === null || typeof v !== 'object') {
      write(typeof v === 'string' || typeof v === 'bigint' ? quoteValue(v, max) : (JSON.stringify(v) ?? 'null'));
    } else if (depth > 8) {
      write('…');
    } else if (Array.isArray(v)) {
      write('[');
      for (let i = 0; i < v.length && !cut; i++) {
        if (i > 0) write(',');
        visit(v[i], depth + 1);
      }
      write(']');
    } else if (ArrayBuffer.isView(v)) {
      write(`${v.constructor.name}[${v.byteLength} bytes]`);
    } else visitObject(v as Record<string, unknown>, depth);
  };
  const visitObject = (v: Record<string, unknown>, depth: number): void => {
    write('{');
    let first = true;
    for (const key in v) {
      if (cut) break;
      if (!Object.hasOwn(v, key)) continue;
      write(`${first ? '' : ','}${quoteValue(key, max)}:`);
      first = false;
      visit(v[key], depth + 1);
    }
    write('}');
  };
  visit(value, 0);
  return cut ? `${out}… (truncated)` : out;
}

export class ScenimefyError extends Error {
  readonly code: ScenimefyErrorCode;
  readonly file: string | undefined;

  constructor(code: ScenimefyErrorCode, message: string, options: ScenimefyErrorOptions = {}) {
    const full = options.file !== undefined && !message.includes(options.file) ? `${options.file}: ${message}` : message;
    super(capText(full, ERROR_MESSAGE_MAX_CHARS), { cause: options.cause });
    this.code = code;
    this.file = options.file;
    this.name = new.target.name;
  }
}

/** A user's input (an image, a folder, a dataset file) is missing, unreadable or invalid. */
export class InputError extends ScenimefyError {
  constructor(message: string, options?: ScenimefyErrorOptions) {
    super('E_INPUT', message, options);
  }
}

/** A weights file (safetensors, .pth/.pt, ONNX) is malformed, truncated, or holds something we refuse to load. */
export class ModelFormatError extends ScenimefyError {
  constructor(message: string, options?: ScenimefyErrorOptions) {
    super('E_MODEL_FORMAT', message, options);
  }
}

/** An on-disk artifact does not satisfy its versioned contract; `field` names the offending path. */
export class ContractError extends ScenimefyError {
  readonly field: string | undefined;

  constructor(message: string, options: ScenimefyErrorOptions & { field?: string } = {}) {
    super('E_CONTRACT', options.field !== undefined ? `${options.field}: ${message}` : message, options);
    this.field = options.field;
  }
}

/** No usable compute backend, or a backend failed in a way the user must act on. */
export class BackendError extends ScenimefyError {
  constructor(message: string, options?: ScenimefyErrorOptions) {
    super('E_BACKEND', message, options);
  }
}

/** Bad command-line usage or contradictory options. */
export class UsageError extends ScenimefyError {
  constructor(message: string, options?: ScenimefyErrorOptions) {
    super('E_USAGE', message, options);
  }
}

/** A download failed or the network is unavailable. */
export class NetworkError extends ScenimefyError {
  constructor(message: string, options?: ScenimefyErrorOptions) {
    super('E_NETWORK', message, options);
  }
}

/** A file's content does not match its expected digest or size. */
export class IntegrityError extends ScenimefyError {
  constructor(message: string, options?: ScenimefyErrorOptions) {
    super('E_INTEGRITY', message, options);
  }
}

/** A computation produced NaN/Inf or otherwise diverged. */
export class NumericError extends ScenimefyError {
  constructor(message: string, options?: ScenimefyErrorOptions) {
    super('E_NUMERIC', message, options);
  }
}

/** Exit statuses of the `scenimefy` command (DESIGN.md): 0 ok, 1 some inputs failed, 2 usage, 3 model/contract. */
export const EXIT_CODES = Object.freeze({
  ok: 0,
  someInputsFailed: 1,
  usage: 2,
  modelOrContract: 3,
  backend: 4,
  network: 5,
  internal: 70,
} as const);

const EXIT_BY_CODE: Readonly<Record<ScenimefyErrorCode, number>> = Object.freeze({
  E_INPUT: EXIT_CODES.someInputsFailed,
  E_USAGE: EXIT_CODES.usage,
  E_MODEL_FORMAT: EXIT_CODES.modelOrContract,
  E_CONTRACT: EXIT_CODES.modelOrContract,
  E_INTEGRITY: EXIT_CODES.modelOrContract,
  E_BACKEND: EXIT_CODES.backend,
  E_NETWORK: EXIT_CODES.network,
  E_NUMERIC: EXIT_CODES.internal,
});

/** The exit status the CLI uses for an error: typed errors by their code, anything else is internal (70). */
export function exitCodeFor(error: unknown): number {
  if (isScenimefyError(error)) return EXIT_BY_CODE[error.code];
  return EXIT_CODES.internal;
}

export function isScenimefyError(error: unknown): error is ScenimefyError {
  return error instanceof ScenimefyError;
}
