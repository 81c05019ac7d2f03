/**
 * The names the engine, the extension's settings (package.json) and the webviews share. The engine's tables are
 * typed by these lists, and test/unit/protocol.test.ts ties package.json's enums to them.
 */
export const COMPOSITE_NAMES = [
  'epsilon_plus_flat',
  'epsilon_plus',
  'epsilon_alpha2_beta1',
  'epsilon_alpha2_beta1_flat',
  'epsilon_gamma_box',
  'guided_backprop',
  'deconvnet',
  'excitation_backprop',
  'beta_smooth',
] as const;
export type CompositeName = (typeof COMPOSITE_NAMES)[number];

/** What a run may name: a composite, or `gradient` for none (the plain gradient). */
export const RUN_COMPOSITES = ['gradient', ...COMPOSITE_NAMES] as const;
export type RunComposite = (typeof RUN_COMPOSITES)[number];

/**
 * What the output relevance is: the one-hot target (Zennit with a tensor attr_output), the target's logit, or its
 * absolute value (zennit-crp's init_rel=abs).
 */
export const OUTPUT_RELEVANCES = ['one_hot', 'logit', 'abs'] as const;
export type OutputRelevance = (typeof OUTPUT_RELEVANCES)[number];

export const ATTRIBUTOR_NAMES = ['gradient', 'smoothgrad', 'integrated_gradients', 'occlusion'] as const;
export type AttributorName = (typeof ATTRIBUTOR_NAMES)[number];

/** Zennit's colour maps (zennit/image.py), by name. */
export const COLOR_MAP_NAMES = [
  'gray',
  'wred',
  'wblue',
  'hot',
  'cold',
  'coldnhot',
  'bwr',
  'france',
  'seismic',
  'coolio',
  'coleus',
] as const;
export type ColorMapName = (typeof COLOR_MAP_NAMES)[number];

/** symmetric: 0 at the colour map's centre, ±max|v| at its ends; absolute: |v| from 0 to max|v| */
export const SCALINGS = ['symmetric', 'absolute'] as const;
export type Scaling = (typeof SCALINGS)[number];

/** residual adds as Zennit's Sum modules (`norm`) or plain additions (`gradient`, Zennit without canonizers) */
export const RESIDUAL_MODES = ['norm', 'gradient'] as const;
export type ResidualMode = (typeof RESIDUAL_MODES)[number];

export const EXPORT_FORMATS = ['png', 'npy'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];
