/**
 * Typed errors shared by every Scenimefy.js package. Each carries a stable `code`; the CLI maps codes to exit
 * statuses in one place (`exitCodeFor`). Messages are one line and name the file and the problem.
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

export class ScenimefyError extends Error {
  readonly code: ScenimefyErrorCode;
  readonly file: string | undefined;

  constructor(code: ScenimefyErrorCode, message: string, options: ScenimefyErrorOptions = {}) {
    super(options.file !== undefined && !message.includes(options.file) ? `${options.file}: ${message}` : message, {
      cause: options.cause,
    });
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
