import { UsageError } from '@scenimefy/io';
import { DEFAULT_NCE_LAYERS } from '../networks/generator';
import { SEMI_CUT_DEFAULTS, pairWeight, resolvedSemiCutOptions } from './options';
import type { SemiCutOptions } from './options';

describe('SEMI_CUT_DEFAULTS', () => {
  it('is the reference run of train.sh (SPEC §6) with every extension off', () => {
    expect(SEMI_CUT_DEFAULTS).toEqual({
      numPatches: 256,
      nceLayers: DEFAULT_NCE_LAYERS,
      nceT: 0.07,
      lambdaGan: 1,
      lambdaGanP: 1,
      lambdaHdce: 0.1,
      lambdaSrc: 0.05,
      lambdaNceS: 0.05 * 0.05,
      dceIdt: true,
      useCurriculum: true,
      hdceGammaStart: 50,
      hdceGammaMin: 10,
      nEpochs: 10,
      nEpochsDecay: 10,
      pairWeightSchedule: 'reference',
      pairedLoss: 'stylepatchnce',
      lambdaL1Paired: 10,
      lambdaL1Source: 0,
      lambdaVgg: 0,
      vggInput: 'reference',
      lr: 2e-4,
      beta1: 0.5,
      beta2: 0.999,
    });
    expect(Object.isFrozen(SEMI_CUT_DEFAULTS)).toBe(true);
  });
});

describe('resolvedSemiCutOptions', () => {
  it('overrides the defaults', () => {
    const o = resolvedSemiCutOptions({ pairedLoss: 'l1', lambdaL1Paired: 1, lambdaL1Source: 0.5, lambdaVgg: 0.2, vggInput: 'imagenet' });
    expect([o.pairedLoss, o.lambdaL1Paired, o.lambdaL1Source, o.lambdaVgg, o.vggInput, o.lambdaHdce]).toEqual([
      'l1',
      1,
      0.5,
      0.2,
      'imagenet',
      0.1,
    ]);
  });

  const bad: Array<[string, Partial<SemiCutOptions>, RegExp]> = [
    ['a negative lambdaVgg (the reference spells off as −1; here it is 0)', { lambdaVgg: -1 }, /lambdaVgg: must be a number ≥ 0, got -1/],
    ['a negative lambdaL1Source', { lambdaL1Source: -0.1 }, /lambdaL1Source/],
    ['a NaN lambdaL1Paired', { lambdaL1Paired: Number.NaN }, /lambdaL1Paired/],
    ['an unknown pairedLoss', { pairedLoss: 'l2' as never }, /pairedLoss: must be 'stylepatchnce' or 'l1', got "l2"/],
    ['an unknown vggInput', { vggInput: 'caffe' as never }, /vggInput: must be 'reference', 'unit' or 'imagenet', got "caffe"/],
    ['an unknown pairWeightSchedule', { pairWeightSchedule: 'linear' as never }, /pairWeightSchedule/],
    ['a zero temperature', { nceT: 0 }, /nceT: must be a number > 0/],
    ['a fractional numPatches', { numPatches: 2.5 }, /numPatches/],
    ['no layers', { nceLayers: [] }, /nceLayers: must be a non-empty list of integers ≥ 0, got \[\]/],
  ];
  it.each(bad)('refuses %s', (_, options, message) => {
    expect(() => resolvedSemiCutOptions(options)).toThrow(UsageError);
    expect(() => resolvedSemiCutOptions(options)).toThrow(message);
  });
});

describe('pairWeight', () => {
  it("is 1 at every epoch of the reference's 20 (SPEC §5.6) and ±1 with 10 epochs", () => {
    for (let e = 1; e <= 20; e++) expect(pairWeight(e, SEMI_CUT_DEFAULTS)).toBeCloseTo(1, 12);
    const ten = { ...SEMI_CUT_DEFAULTS, nEpochs: 5, nEpochsDecay: 5 };
    expect([1, 2, 3].map((e) => Math.round(pairWeight(e, ten)))).toEqual([1, -1, 1]);
  });

  it("decays from 1 with the 'cosine' schedule", () => {
    const cosine = { ...SEMI_CUT_DEFAULTS, pairWeightSchedule: 'cosine' as const };
    expect(pairWeight(1, cosine)).toBe(1);
    expect(pairWeight(20, cosine)).toBeCloseTo(Math.cos((Math.PI / 2) * (19 / 20)), 12);
    expect(pairWeight(20, cosine)).toBeLessThan(pairWeight(10, cosine));
  });

  it('refuses a 0-based epoch', () => {
    expect(() => pairWeight(0, SEMI_CUT_DEFAULTS)).toThrow(UsageError);
  });
});
