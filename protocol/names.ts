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

/**
 * How a layer's channels are ordered for paging: by summed |relevance| (the default), by their relevance sum from
 * the most positive or from the most negative, or by index.
 */
export const CHANNEL_ORDERS = ['abs', 'positive', 'negative', 'index'] as const;
export type ChannelOrder = (typeof CHANNEL_ORDERS)[number];

/** symmetric: 0 at the colour map's centre, ±max|v| at its ends; absolute: |v| from 0 to max|v| */
export const SCALINGS = ['symmetric', 'absolute'] as const;
export type Scaling = (typeof SCALINGS)[number];

/** residual adds as Zennit's Sum modules (`norm`) or plain additions (`gradient`, Zennit without canonizers) */
export const RESIDUAL_MODES = ['norm', 'gradient'] as const;
export type ResidualMode = (typeof RESIDUAL_MODES)[number];

export const EXPORT_FORMATS = ['png', 'npy'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

/**
 * Zennit's rules by snake-case name (`alpha_beta` is zennit.rules.AlphaBeta), with the keyword parameters each
 * takes in Zennit; `gradient` is no rule (the plain gradient).
 */
export const RULE_PARAMS = {
  epsilon: ['epsilon', 'zero_params'],
  zplus: ['stabilizer', 'zero_params'],
  alpha_beta: ['alpha', 'beta', 'stabilizer', 'zero_params'],
  gamma: ['gamma', 'stabilizer', 'zero_params'],
  zbox: ['low', 'high', 'stabilizer', 'zero_params'],
  flat: ['stabilizer', 'zero_params'],
  wsquare: ['stabilizer', 'zero_params'],
  norm: ['stabilizer'],
  pass: [],
  relu_deconvnet: [],
  relu_guided_backprop: [],
  relu_beta_smooth: ['beta_smooth'],
  gradient: [],
} as const;
export type RuleName = keyof typeof RULE_PARAMS;
export type RuleParamName = (typeof RULE_PARAMS)[RuleName][number];
export const RULE_NAMES = Object.keys(RULE_PARAMS) as RuleName[];

/**
 * The layer types a layer map names: Zennit's (zennit.types; `Linear` is Zennit's too, convolutions and dense
 * layers alike), `Dense` for torch.nn.Linear alone and `ReLU` for torch.nn.ReLU (what the built-in composites map).
 */
export const LAYER_TYPES = [
  'Convolution',
  'Linear',
  'Dense',
  'BatchNorm',
  'Activation',
  'ReLU',
  'AvgPool',
  'MaxPool',
  'Sum',
] as const;
export type LayerTypeName = (typeof LAYER_TYPES)[number];

/** The layers each rule is made for: a rule set on a container applies to the layers below it of these types. */
export const RULE_LAYERS: Record<RuleName, readonly LayerTypeName[]> = {
  epsilon: ['Linear'],
  zplus: ['Linear'],
  alpha_beta: ['Linear'],
  gamma: ['Linear'],
  zbox: ['Linear'],
  flat: ['Linear'],
  wsquare: ['Linear'],
  norm: ['AvgPool', 'Sum'],
  pass: ['Activation'],
  relu_deconvnet: ['ReLU'],
  relu_guided_backprop: ['ReLU'],
  relu_beta_smooth: ['ReLU'],
  gradient: LAYER_TYPES,
};

/** The concrete types each layer type covers: Zennit's Linear is convolutions and dense layers, Activation ReLUs too. */
export const LAYER_TYPE_COVERS: Record<LayerTypeName, readonly LayerTypeName[]> = {
  Convolution: ['Convolution'],
  Linear: ['Convolution', 'Dense'],
  Dense: ['Dense'],
  BatchNorm: ['BatchNorm'],
  Activation: ['Activation', 'ReLU'],
  ReLU: ['ReLU'],
  AvgPool: ['AvgPool'],
  MaxPool: ['MaxPool'],
  Sum: ['Sum'],
};

/** Whether a rule is made for a layer of this (concrete) type. */
export function ruleSuits(rule: RuleName, type: LayerTypeName | undefined): boolean {
  return type !== undefined && RULE_LAYERS[rule].some((t) => LAYER_TYPE_COVERS[t].includes(type));
}
