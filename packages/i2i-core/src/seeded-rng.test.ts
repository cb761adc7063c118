import { UsageError } from '@scenimefy/io';
import { SeededRng } from './seeded-rng';

describe('SeededRng', () => {
  it('is reproducible from a seed and differs between seeds', () => {
    const draw = (seed: number): number[] => {
      const rng = SeededRng.fromSeed(seed);
      return Array.from({ length: 8 }, () => rng.nextUint32());
    };
    expect(draw(7)).toEqual(draw(7));
    expect(draw(7)).not.toEqual(draw(8));
  });

  it('resumes the stream exactly from an exported state', () => {
    const rng = SeededRng.fromSeed(3);
    for (let i = 0; i < 5; i++) rng.nextUint32();
    const saved = JSON.parse(JSON.stringify(rng.state())) as number[];
    const expected = Array.from({ length: 10 }, () => rng.below(1000));
    const other = SeededRng.fromSeed(99);
    other.setState(saved);
    expect(Array.from({ length: 10 }, () => other.below(1000))).toEqual(expected);
  });

  it('draws integers in range with roughly uniform counts and valid permutations', () => {
    const rng = SeededRng.fromSeed(1);
    const counts = new Array<number>(6).fill(0);
    const n = 60000;
    for (let i = 0; i < n; i++) counts[rng.below(6)]! += 1;
    // Each count is Binomial(60000, 1/6): sd ≈ 91, so ±600 is > 6 sd.
    for (const c of counts) expect(Math.abs(c - n / 6)).toBeLessThan(600);
    for (let i = 0; i < 1000; i++) {
      const u = rng.uniform();
      expect(u).toBeGreaterThanOrEqual(0);
      expect(u).toBeLessThan(1);
    }
    const perm = Array.from(rng.permutation(50));
    expect([...perm].sort((x, y) => x - y)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(perm).not.toEqual(Array.from({ length: 50 }, (_, i) => i));
  });

  it('refuses invalid states and arguments', () => {
    const rng = SeededRng.fromSeed(0);
    expect(() => rng.setState([0, 0, 0, 0])).toThrow(UsageError);
    expect(() => rng.setState([1, 2, 3])).toThrow(UsageError);
    expect(() => rng.setState([1, 2, 3, 2 ** 32])).toThrow(UsageError);
    expect(() => rng.below(0)).toThrow(UsageError);
    expect(() => SeededRng.fromSeed(1.5)).toThrow(UsageError);
  });
});
