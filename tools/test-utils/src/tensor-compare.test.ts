import { compareTensors, describeTensorComparison, installTensorMatchers, unravelIndex } from './tensor-compare';

function failureMessageOf(fn: () => void): string {
  try {
    fn();
  } catch (error) {
    return (error as Error).message;
  }
  throw new Error('expected the assertion to fail');
}

describe('compareTensors', () => {
  it('applies |a - e| <= atol + rtol * |e| element-wise, like numpy.allclose', () => {
    // Binary-exact values, so the boundary cases test the rule and not decimal rounding.
    const expected = [1, 100, -2];
    expect(compareTensors([1.125, 100, -2], expected, { atol: 0.125, rtol: 0 }).ok).toBe(true);
    expect(compareTensors([1.1251, 100, -2], expected, { atol: 0.125, rtol: 0 }).ok).toBe(false);
    // rtol scales with |expected|: 0.75 off at 100 passes with rtol 2^-7 (0.78125), 0.75 off at 1 does not.
    expect(compareTensors([1, 100.75, -2], expected, { atol: 0, rtol: 2 ** -7 }).ok).toBe(true);
    expect(compareTensors([1.75, 100, -2], expected, { atol: 0, rtol: 2 ** -7 }).ok).toBe(false);
    expect(compareTensors([1, 101.28125, -2.5], expected, { atol: 0.5, rtol: 2 ** -7 }).ok).toBe(true);
    expect(compareTensors([1, 101.3, -2], expected, { atol: 0.5, rtol: 2 ** -7 }).ok).toBe(false);
  });

  it('reports the worst element, the largest differences and the mismatch count', () => {
    const report = compareTensors(new Float32Array([0, 1.5, 2, 3.25, 4]), [0, 1, 2, 3, 4], { atol: 0.1, rtol: 0, shape: [5] });
    expect(report).toMatchObject({
      ok: false,
      mismatches: 2,
      nanMismatches: 0,
      worstIndex: 1,
      worstCoord: [1],
      worstActual: 1.5,
      worstExpected: 1,
      maxAbsDiff: 0.5,
      maxRelDiff: 0.5,
      actualLength: 5,
      expectedLength: 5,
      problem: undefined,
    });
  });

  it('ranks the worst element by how far it exceeds its own tolerance', () => {
    // 0.5 off at 100 is inside rtol; 0.2 off at 0 is not, so index 1 is the worst despite the smaller diff.
    const report = compareTensors([100.5, 0.2], [100, 0], { atol: 0.01, rtol: 0.01 });
    expect(report).toMatchObject({ mismatches: 1, worstIndex: 1, maxAbsDiff: 0.5 });
  });

  it('gives the multi-dimensional coordinate of the worst element', () => {
    const expected = new Float32Array(24);
    const actual = new Float32Array(24);
    actual[17] = 3;
    const report = compareTensors(actual, expected, { atol: 1e-6, rtol: 0, shape: [2, 3, 4] });
    expect(report.worstIndex).toBe(17);
    expect(report.worstCoord).toEqual([1, 1, 1]);
    expect(unravelIndex(23, [2, 3, 4])).toEqual([1, 2, 3]);
    expect(unravelIndex(0, [])).toEqual([]);
  });

  it('treats NaN as equal only to NaN at the same position', () => {
    expect(compareTensors([NaN, 1], [NaN, 1], { atol: 0, rtol: 0 })).toMatchObject({ ok: true, mismatches: 0, nanMismatches: 0 });
    const oneSided = compareTensors([NaN, 1, 2], [0, NaN, 2], { atol: 1, rtol: 1 });
    expect(oneSided).toMatchObject({ ok: false, mismatches: 2, nanMismatches: 2, worstIndex: 0, maxAbsDiff: 0 });
    expect(Number.isNaN(oneSided.worstActual)).toBe(true);
  });

  it('matches infinities only exactly, whatever the tolerance', () => {
    expect(compareTensors([Infinity, -Infinity], [Infinity, -Infinity], { atol: 0, rtol: 0 }).ok).toBe(true);
    const report = compareTensors([1, 1e30, Infinity], [1, Infinity, -Infinity], { atol: 1, rtol: 1 });
    expect(report).toMatchObject({ ok: false, mismatches: 2, worstIndex: 1, maxAbsDiff: Infinity });
  });

  it('fails on unequal lengths, a shape that does not fit, or negative tolerances', () => {
    expect(compareTensors([1, 2], [1, 2, 3], { atol: 1, rtol: 0 })).toMatchObject({
      ok: false,
      mismatches: 0,
      actualLength: 2,
      expectedLength: 3,
    });
    const badShape = compareTensors([1, 2], [1, 2], { atol: 1, rtol: 0, shape: [3] });
    expect(badShape).toMatchObject({ ok: false, problem: 'shape [3] holds 3 elements, expected has 2', worstCoord: undefined });
    expect(compareTensors([1], [1], { atol: -1, rtol: 0 }).problem).toBe('atol and rtol must be non-negative numbers, got atol -1, rtol 0');
  });

  it('describes a comparison on one line', () => {
    const text = describeTensorComparison(compareTensors([0, 1.5, NaN], [0, 1, 2], { atol: 0.1, rtol: 0, shape: [1, 3] }));
    expect(text).toBe(
      '2 of 3 elements differ (1 NaN vs number); worst at index 2 [0, 2]: actual NaN, expected 2, |diff| NaN (allowed 0.1); ' +
        'max |diff| 0.5, max rel diff 0.5 (atol 0.1, rtol 0)',
    );
  });
});

describe('toBeCloseToTensor', () => {
  it('is registered for every test file by the jest setup, and installing it again is harmless', () => {
    expect([1, 2]).toBeCloseToTensor([1, 2], { atol: 0, rtol: 0 });
    installTensorMatchers();
    expect(new Float32Array([1, 2.00001])).toBeCloseToTensor(new Float64Array([1, 2]), { atol: 1e-4, rtol: 0 });
  });

  it('fails with the worst element, its coordinate, the diff and the mismatch count', () => {
    const actual = new Float32Array([0, 0, 0, 0, 0.25, 0]);
    const message = failureMessageOf(() => expect(actual).toBeCloseToTensor(new Float32Array(6), { atol: 1e-3, rtol: 0, shape: [2, 3] }));
    expect(message).toBe(
      'expected tensor to be close to the reference: 1 of 6 elements differ; worst at index 4 [1, 1]: actual 0.25, expected 0, ' +
        '|diff| 0.25 (allowed 0.001); max |diff| 0.25, max rel diff Infinity (atol 0.001, rtol 0)',
    );
  });

  it('fails on NaN against a number and passes on NaN against NaN', () => {
    expect([NaN, 3]).toBeCloseToTensor([NaN, 3], { atol: 0, rtol: 0 });
    const message = failureMessageOf(() => expect([NaN, 3]).toBeCloseToTensor([1, NaN], { atol: 10, rtol: 0 }));
    expect(message).toContain('2 of 2 elements differ (2 NaN vs number)');
    expect(message).toContain('worst at index 0: actual NaN, expected 1');
  });

  it('supports .not, with a message saying the tensors were close', () => {
    expect([1, 2]).not.toBeCloseToTensor([1, 3], { atol: 0.5, rtol: 0 });
    const message = failureMessageOf(() => expect([1, 2]).not.toBeCloseToTensor([1, 2.1], { atol: 0.5, rtol: 0 }));
    expect(message).toMatch(/^expected tensor not to be close to the reference, but it is: 0 of 2 elements differ; worst at index 1/);
  });

  it('fails on a length mismatch, missing tolerances or non-numeric input', () => {
    expect(failureMessageOf(() => expect([1]).toBeCloseToTensor([1, 2], { atol: 1, rtol: 1 }))).toContain(
      'actual has 1 elements, expected has 2',
    );
    const noTolerance = { atol: 1 } as unknown as { atol: number; rtol: number };
    expect(failureMessageOf(() => expect([1]).toBeCloseToTensor([1], noTolerance))).toBe(
      'toBeCloseToTensor: give explicit tolerances, { atol, rtol }',
    );
    expect(failureMessageOf(() => expect(new BigInt64Array(1)).toBeCloseToTensor([0], { atol: 0, rtol: 0 }))).toBe(
      'toBeCloseToTensor: actual and expected must be number arrays or non-bigint typed arrays',
    );
  });
});
