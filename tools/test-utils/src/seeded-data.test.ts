import { seededUniform, seededUnitRows } from './seeded-data';

describe('seeded test data', () => {
  it('is the Park–Miller sequence, in range and repeatable', () => {
    const a = seededUniform(1, 3, 0, 1);
    expect(Array.from(a)).toEqual([48271 / 2147483647, 182605794 / 2147483647, 1291394886 / 2147483647].map(Math.fround));
    const b = seededUniform(42, 1000, -2, 2);
    expect(Math.min(...b)).toBeGreaterThanOrEqual(-2);
    expect(Math.max(...b)).toBeLessThan(2);
    expect(seededUniform(42, 1000, -2, 2)).toEqual(b);
  });

  it('makes unit rows', () => {
    const m = seededUnitRows(7, 4, 5);
    for (let r = 0; r < 4; r++) {
      let n = 0;
      for (let j = 0; j < 5; j++) n += m[r * 5 + j]! ** 2;
      expect(Math.sqrt(n)).toBeCloseTo(1, 6);
    }
  });
});
