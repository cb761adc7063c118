/// <reference types="jest" />
/**
 * Element-wise tensor closeness, numpy.allclose style: |actual − expected| ≤ atol + rtol·|expected|, NaN-aware,
 * and the jest matcher `toBeCloseToTensor` built on it.
 *
 * This module imports nothing, so jest can load it into every test file (jest.config.js `setupFilesAfterEnv`)
 * without pulling in a package.
 */

export interface TensorCloseOptions {
  /** Absolute tolerance. */
  atol: number;
  /** Relative tolerance, scaled by |expected|. */
  rtol: number;
  /** Row-major shape of both tensors; when given, the worst element is also reported as a coordinate. */
  shape?: readonly number[];
}

export interface TensorComparison {
  /** Every element within tolerance, equal lengths, and a shape (if given) that holds that many elements. */
  ok: boolean;
  atol: number;
  rtol: number;
  actualLength: number;
  expectedLength: number;
  /** Why the comparison could not be made as asked (bad tolerances, a shape inconsistent with the data). */
  problem: string | undefined;
  /** Largest |actual − expected| over the compared elements that are not NaN on either side (Infinity if an infinity differs). */
  maxAbsDiff: number;
  /** Largest |actual − expected| / |expected| over the same elements (Infinity where expected is 0 and actual is not). */
  maxRelDiff: number;
  /** The element furthest outside its tolerance (or, when all pass, closest to it); -1 when nothing was compared. */
  worstIndex: number;
  /** `worstIndex` as a row-major coordinate, when `shape` was given and is consistent. */
  worstCoord: number[] | undefined;
  worstActual: number;
  worstExpected: number;
  /** Elements outside tolerance, including `nanMismatches`. */
  mismatches: number;
  /** Elements where exactly one side is NaN. */
  nanMismatches: number;
}

/**
 * Compare two flat tensors element by element. NaN equals NaN only at the same position; NaN against a number
 * is a mismatch. Infinities must match exactly (as numpy.isclose). Elements beyond the shorter length are not
 * compared, but unequal lengths make the comparison fail.
 */
export function compareTensors(actual: ArrayLike<number>, expected: ArrayLike<number>, options: TensorCloseOptions): TensorComparison {
  const { atol, rtol, shape } = options;
  // Misuse fails the comparison with a reason instead of throwing, so a matcher reports it like any failure.
  let problem: string | undefined;
  if (!(atol >= 0) || !(rtol >= 0)) {
    problem = `atol and rtol must be non-negative numbers, got atol ${atol}, rtol ${rtol}`;
  } else if (shape !== undefined) {
    const count = shape.reduce((n, d) => n * d, 1);
    if (!shape.every((d) => Number.isInteger(d) && d >= 0)) problem = `shape [${shape.join(', ')}] is not a list of non-negative integers`;
    else if (count !== expected.length) problem = `shape [${shape.join(', ')}] holds ${count} elements, expected has ${expected.length}`;
  }

  const n = Math.min(actual.length, expected.length);
  let maxAbsDiff = 0;
  let maxRelDiff = 0;
  let mismatches = 0;
  let nanMismatches = 0;
  let worstIndex = n > 0 ? 0 : -1;
  let worstExcess = -Infinity;
  for (let i = 0; i < n; i++) {
    const a = actual[i] as number;
    const e = expected[i] as number;
    let excess: number;
    if (Number.isNaN(a) || Number.isNaN(e)) {
      if (Number.isNaN(a) && Number.isNaN(e)) {
        excess = -Infinity;
      } else {
        nanMismatches++;
        mismatches++;
        excess = Infinity;
      }
    } else {
      const diff = a === e ? 0 : Math.abs(a - e);
      const rel = diff === 0 ? 0 : diff / Math.abs(e);
      if (diff > maxAbsDiff) maxAbsDiff = diff;
      if (rel > maxRelDiff) maxRelDiff = rel;
      const allowed = atol + rtol * Math.abs(e);
      // A finite tolerance never covers an infinity: an infinite element matches only itself.
      const close = Number.isFinite(a) && Number.isFinite(e) ? diff <= allowed : a === e;
      if (close) {
        excess = Number.isFinite(e) ? diff - allowed : -Infinity;
      } else {
        mismatches++;
        excess = Number.isFinite(diff - allowed) ? diff - allowed : Infinity;
      }
    }
    if (excess > worstExcess) {
      worstExcess = excess;
      worstIndex = i;
    }
  }
  return {
    ok: mismatches === 0 && actual.length === expected.length && problem === undefined,
    atol,
    rtol,
    actualLength: actual.length,
    expectedLength: expected.length,
    problem,
    maxAbsDiff,
    maxRelDiff,
    worstIndex,
    worstCoord: worstIndex >= 0 && shape !== undefined && problem === undefined ? unravelIndex(worstIndex, shape) : undefined,
    worstActual: worstIndex >= 0 ? (actual[worstIndex] as number) : NaN,
    worstExpected: worstIndex >= 0 ? (expected[worstIndex] as number) : NaN,
    mismatches,
    nanMismatches,
  };
}

/** One line describing a comparison: counts, the worst element and its tolerance, and the largest differences. */
export function describeTensorComparison(report: TensorComparison): string {
  const parts: string[] = [];
  if (report.problem !== undefined) parts.push(report.problem);
  if (report.actualLength !== report.expectedLength) {
    parts.push(`actual has ${report.actualLength} elements, expected has ${report.expectedLength}`);
  }
  const compared = Math.min(report.actualLength, report.expectedLength);
  const nan = report.nanMismatches > 0 ? ` (${report.nanMismatches} NaN vs number)` : '';
  parts.push(`${report.mismatches} of ${compared} elements differ${nan}`);
  if (report.worstIndex >= 0) {
    const where =
      report.worstCoord !== undefined ? `index ${report.worstIndex} [${report.worstCoord.join(', ')}]` : `index ${report.worstIndex}`;
    const allowed = report.atol + report.rtol * Math.abs(report.worstExpected);
    const diff = Math.abs(report.worstActual - report.worstExpected);
    parts.push(`worst at ${where}: actual ${report.worstActual}, expected ${report.worstExpected}, |diff| ${diff} (allowed ${allowed})`);
  }
  parts.push(`max |diff| ${report.maxAbsDiff}, max rel diff ${report.maxRelDiff} (atol ${report.atol}, rtol ${report.rtol})`);
  return parts.join('; ');
}

/** Row-major coordinate of flat index `index` in `shape`. */
export function unravelIndex(index: number, shape: readonly number[]): number[] {
  const coord = new Array<number>(shape.length).fill(0);
  let rest = index;
  for (let axis = shape.length - 1; axis >= 0; axis--) {
    const size = shape[axis] as number;
    coord[axis] = rest % size;
    rest = Math.floor(rest / size);
  }
  return coord;
}

const NUMBER_ARRAY_TAGS = new Set(
  ['Int8', 'Uint8', 'Uint8Clamped', 'Int16', 'Uint16', 'Int32', 'Uint32', 'Float32', 'Float64'].map((n) => `[object ${n}Array]`),
);

/** Typed arrays are recognised by tag, not instanceof: native addons create them in another realm than jest's. */
function isNumberArrayLike(value: unknown): value is ArrayLike<number> {
  if (ArrayBuffer.isView(value)) return NUMBER_ARRAY_TAGS.has(Object.prototype.toString.call(value));
  return Array.isArray(value) && value.every((v) => typeof v === 'number');
}

/**
 * Register `expect(actual).toBeCloseToTensor(expected, { atol, rtol, shape })` with jest. The root
 * jest.config.js already does this for every test file (tools/test-utils/src/jest-setup.ts); calling it again is
 * harmless. Import '@scenimefy/test-utils' in a test that uses the matcher so its type declaration is in scope.
 */
export function installTensorMatchers(): void {
  expect.extend({
    toBeCloseToTensor(received: unknown, expected: unknown, options: TensorCloseOptions) {
      if (!isNumberArrayLike(received) || !isNumberArrayLike(expected)) {
        return {
          pass: false,
          message: () => 'toBeCloseToTensor: actual and expected must be number arrays or non-bigint typed arrays',
        };
      }
      if (options === undefined || typeof options.atol !== 'number' || typeof options.rtol !== 'number') {
        return { pass: false, message: () => 'toBeCloseToTensor: give explicit tolerances, { atol, rtol }' };
      }
      const report = compareTensors(received, expected, options);
      return {
        pass: report.ok,
        message: () =>
          report.ok
            ? `expected tensor not to be close to the reference, but it is: ${describeTensorComparison(report)}`
            : `expected tensor to be close to the reference: ${describeTensorComparison(report)}`,
      };
    },
  });
}

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace jest {
    interface Matchers<R> {
      /**
       * Element-wise |actual − expected| ≤ atol + rtol·|expected| (numpy.allclose), NaN equal only to NaN at the
       * same position. The failure message names the worst element (index, coordinate when `shape` is given,
       * actual, expected, difference) and the number of mismatches.
       */
      toBeCloseToTensor(expected: ArrayLike<number>, options: TensorCloseOptions): R;
    }
  }
}
