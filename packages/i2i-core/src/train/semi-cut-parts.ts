/**
 * The one table of semi_cut's five networks and their optimisers: the model's field, the checkpoint name (the
 * reference's `netG`, `netD`, `netD_p`, `netF`, `netF_s`) and the optimiser of each (`G`, `D`, `D_p`, `F`, `F_s`
 * in optimizer.safetensors, `G`, `D`, `Dp`, `F`, `Fs` on the model). Everything that lists them reads it here.
 */
export const SEMI_CUT_PARTS = Object.freeze([
  { field: 'netG', network: 'netG', optimizerKey: 'G', optimizer: 'G' },
  { field: 'netD', network: 'netD', optimizerKey: 'D', optimizer: 'D' },
  { field: 'netDp', network: 'netD_p', optimizerKey: 'Dp', optimizer: 'D_p' },
  { field: 'netF', network: 'netF', optimizerKey: 'F', optimizer: 'F' },
  { field: 'netFs', network: 'netF_s', optimizerKey: 'Fs', optimizer: 'F_s' },
] as const);

export type SemiCutPart = (typeof SEMI_CUT_PARTS)[number];
/** A model field: `netG` … `netFs`. */
export type SemiCutNetworkField = SemiCutPart['field'];
/** An optimiser on the model: `G`, `D`, `Dp`, `F`, `Fs`. */
export type SemiCutOptimizerKey = SemiCutPart['optimizerKey'];
/** The optimisers every semi_cut model has from the start; F and F_s come with the heads (after the data-dependent init). */
export const SEMI_CUT_ALWAYS_OPTIMIZED: readonly SemiCutOptimizerKey[] = Object.freeze(['G', 'D', 'Dp']);
