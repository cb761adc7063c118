import { linearLrFactor } from './lr-schedule';

describe('linearLrFactor (reference linear policy)', () => {
  const opts = { nEpochs: 10, nEpochsDecay: 10 };

  it('keeps the base rate for n_epochs, then decays by 1/11 per epoch without reaching 0', () => {
    const factors = Array.from({ length: 20 }, (_, i) => linearLrFactor(i + 1, opts));
    expect(factors.slice(0, 10)).toEqual(Array(10).fill(1));
    for (let e = 11; e <= 20; e++) expect(factors[e - 1]).toBeCloseTo((21 - e) / 11, 15);
    expect(factors[10]).toBeCloseTo(10 / 11, 15);
    expect(factors[19]).toBeCloseTo(1 / 11, 15);
    expect(Math.min(...factors)).toBeGreaterThan(0);
  });

  it('follows epoch_count like the reference', () => {
    expect(linearLrFactor(1, { ...opts, epochCount: 11 })).toBeCloseTo(10 / 11, 15);
  });

  it('refuses 0-based epochs and negative lengths', () => {
    expect(() => linearLrFactor(0, opts)).toThrow('linearLrFactor: epoch is 1-based, got 0');
    expect(() => linearLrFactor(1, { nEpochs: -1, nEpochsDecay: 10 })).toThrow('non-negative integers');
  });
});
