import type { Graph, GraphNode, ModuleType } from '../graph/graph';
import { fail } from '../errors';
import type { CompositeParams } from '../../../protocol/engine';
import type { BaseSpec, CompositeFile, RuleSpec } from '../../../protocol/composite-file';
import {
  COMPOSITE_NAMES,
  type CompositeName,
  type LayerTypeName,
  type ResidualMode,
  type RuleName,
  RUN_COMPOSITES,
} from '../../../protocol/names';
import {
  alphaBetaRule,
  epsilonRule,
  flatRule,
  gammaRule,
  normRule,
  passRule,
  reluBetaSmoothRule,
  reluDeconvNetRule,
  reluGuidedBackpropRule,
  type ActiveRule,
  type Rule,
  type RuleOptions,
  type Stabilizer,
  wSquareRule,
  zBoxRule,
  zPlusRule,
} from './rules';

/** Layer types a composite maps to rules, as Zennit's `zennit.types` (plus the concrete ReLU and dense). */
export type LayerType =
  'conv' | 'dense' | 'linear' | 'activation' | 'relu' | 'sum' | 'avgPool' | 'maxPool' | 'batchNorm';

/** The module types each layer type covers (Zennit's abstract types are unions of module classes). */
const TYPE_MODULES: Record<LayerType, readonly ModuleType[]> = {
  conv: ['conv'],
  dense: ['dense'],
  linear: ['conv', 'dense'],
  activation: ['relu', 'activation'],
  relu: ['relu'],
  sum: ['sum'],
  avgPool: ['avgPool'],
  maxPool: ['maxPool'],
  batchNorm: ['batchNorm'],
};

export function isLayerType(node: GraphNode, type: LayerType): boolean {
  return node.moduleType !== undefined && TYPE_MODULES[type].includes(node.moduleType);
}

export type LayerMap = [LayerType, Rule][];

/**
 * A composite assigns rules to nodes as Zennit's MixedComposite([NameMapComposite, SpecialFirstLayerMapComposite])
 * does: by node id first (name map; `*` in a pattern matches any characters), then the first-layer map for the
 * first node in execution order that it matches, then the layer map (first match wins). Unmapped nodes get the
 * gradient.
 */
export interface Composite {
  name: string;
  layerMap: LayerMap;
  firstMap?: LayerMap;
  nameMap?: [string[], Rule][];
}

/**
 * How residual adds are treated: `norm` as Zennit's Sum modules (what its canonizers make of them), `gradient` as
 * plain additions (Zennit without such a canonizer).
 */
export type { CompositeParams, ResidualMode };

export function normalizeResidual(mode: string | undefined): ResidualMode {
  if (mode === undefined || mode === 'norm' || mode === 'gradient') return mode ?? 'norm';
  return fail('BAD_ARGUMENT', `unknown residual mode "${mode}" (norm or gradient)`);
}

/** `features.*` → /^features\..*$/: only `*` is special. */
function namePattern(pattern: string): RegExp {
  return new RegExp(
    `^${pattern
      .split('*')
      .map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
      .join('.*')}$`,
  );
}

/** Each node's rule and where it came from; `gradient` rules are kept (they say "no rule" explicitly). */
export function ruleAssignment(
  composite: Composite,
  graph: Graph,
  residual: ResidualMode = 'norm',
  /** told of name-map patterns that match no node (entry k, pattern j); without it such a pattern is an error */
  onUnmatched?: (pattern: string, entry: number, index: number) => void,
): Map<string, { rule: Rule; from: 'name' | 'first' | 'layer' }> {
  const names = (composite.nameMap ?? []).map(([patterns, rule]) => ({
    patterns: patterns.map((p) => ({ p, re: namePattern(p), used: false })),
    rule,
  }));
  const assigned = new Map<string, { rule: Rule; from: 'name' | 'first' | 'layer' }>();
  let firstDone = !composite.firstMap?.length;
  for (const node of graph.nodes) {
    for (const pat of names.flatMap((n) => n.patterns)) if (pat.re.test(node.id)) pat.used = true;
    const byName = names.find(({ patterns }) => patterns.some((pat) => pat.re.test(node.id)));
    // Zennit asks every composite of a MixedComposite: the first layer is taken even where the name map wins
    const first = firstDone ? undefined : composite.firstMap!.find(([type]) => isLayerType(node, type));
    if (first) firstDone = true;
    if (byName) assigned.set(node.id, { rule: byName.rule, from: 'name' });
    else if (residual === 'gradient' && node.moduleType === 'sum') continue;
    else if (first) assigned.set(node.id, { rule: first[1], from: 'first' });
    else {
      const mapped = composite.layerMap.find(([type]) => isLayerType(node, type));
      if (mapped) assigned.set(node.id, { rule: mapped[1], from: 'layer' });
    }
  }
  if (onUnmatched) {
    names.forEach(({ patterns }, k) => patterns.forEach((p, j) => p.used || onUnmatched(p.p, k, j)));
    return assigned;
  }
  const unused = names.flatMap(({ patterns }) => patterns.filter((p) => !p.used).map((p) => `"${p.p}"`));
  if (unused.length)
    fail(
      'UNKNOWN_LAYER',
      `the name map's ${unused.join(', ')} match${unused.length > 1 ? '' : 'es'} no layer of this model`,
    );
  return assigned;
}

/** The rules the relevance pass applies: the assignment without the plain-gradient ones. */
export function assignRules(
  composite: Composite,
  graph: Graph,
  residual: ResidualMode = 'norm',
): Map<string, ActiveRule> {
  const rules = new Map<string, ActiveRule>();
  for (const [id, { rule }] of ruleAssignment(composite, graph, residual))
    if (rule.kind !== 'gradient') rules.set(id, rule);
  return rules;
}

/** A composite's or rule's parameters: the protocol's, with Zennit's Stabilizer objects where a file gives them. */
type Params = Omit<CompositeParams, 'epsilon' | 'stabilizer'> & { epsilon?: Stabilizer; stabilizer?: Stabilizer };

function layerMapBase(p: Params): LayerMap {
  return [
    ['activation', passRule()],
    ['sum', normRule({ stabilizer: p.stabilizer })],
    ['avgPool', normRule({ stabilizer: p.stabilizer })],
    ['batchNorm', passRule()],
  ];
}

interface CompositeInfo {
  description: string;
  params: (keyof CompositeParams)[];
  build: (p: Params) => Composite;
}

const ruleOpts = (p: Params): RuleOptions => ({ zeroParams: p.zeroParams, stabilizer: p.stabilizer });

/** Zennit's built-in composites, with Zennit's defaults. */
export const COMPOSITES: Record<CompositeName, CompositeInfo> = {
  epsilon_plus_flat: {
    description: 'Flat for the first linear layer, ZPlus for convolutions, Epsilon for dense layers',
    params: ['epsilon', 'stabilizer', 'zeroParams'],
    build: (p) => ({
      name: 'epsilon_plus_flat',
      layerMap: [...layerMapBase(p), ['conv', zPlusRule(ruleOpts(p))], ['dense', epsilonRule(p.epsilon, ruleOpts(p))]],
      firstMap: [['linear', flatRule(ruleOpts(p))]],
    }),
  },
  epsilon_plus: {
    description: 'ZPlus for convolutions, Epsilon for dense layers',
    params: ['epsilon', 'stabilizer', 'zeroParams'],
    build: (p) => ({
      name: 'epsilon_plus',
      layerMap: [...layerMapBase(p), ['conv', zPlusRule(ruleOpts(p))], ['dense', epsilonRule(p.epsilon, ruleOpts(p))]],
    }),
  },
  epsilon_alpha2_beta1: {
    description: 'AlphaBeta(2, 1) for convolutions, Epsilon for dense layers',
    params: ['epsilon', 'stabilizer', 'zeroParams'],
    build: (p) => ({
      name: 'epsilon_alpha2_beta1',
      layerMap: [
        ...layerMapBase(p),
        ['conv', alphaBetaRule(2, 1, ruleOpts(p))],
        ['dense', epsilonRule(p.epsilon, ruleOpts(p))],
      ],
    }),
  },
  epsilon_alpha2_beta1_flat: {
    description: 'Flat for the first linear layer, AlphaBeta(2, 1) for convolutions, Epsilon for dense layers',
    params: ['epsilon', 'stabilizer', 'zeroParams'],
    build: (p) => ({
      name: 'epsilon_alpha2_beta1_flat',
      layerMap: [
        ...layerMapBase(p),
        ['conv', alphaBetaRule(2, 1, ruleOpts(p))],
        ['dense', epsilonRule(p.epsilon, ruleOpts(p))],
      ],
      firstMap: [['linear', flatRule(ruleOpts(p))]],
    }),
  },
  epsilon_gamma_box: {
    description: 'ZBox for the first convolution, Gamma for other convolutions, Epsilon for dense layers',
    params: ['low', 'high', 'epsilon', 'gamma', 'stabilizer', 'zeroParams'],
    build: (p) => {
      if (p.low === undefined || p.high === undefined)
        fail('BAD_ARGUMENT', 'epsilon_gamma_box needs low and high (the input bounds)');
      return {
        name: 'epsilon_gamma_box',
        layerMap: [
          ...layerMapBase(p),
          ['conv', gammaRule(p.gamma, ruleOpts(p))],
          ['dense', epsilonRule(p.epsilon, ruleOpts(p))],
        ],
        firstMap: [['conv', zBoxRule(p.low, p.high, ruleOpts(p))]],
      };
    },
  },
  guided_backprop: {
    description: 'Gradient with the GuidedBackprop ReLU rule',
    params: [],
    build: () => ({ name: 'guided_backprop', layerMap: [['relu', reluGuidedBackpropRule()]] }),
  },
  deconvnet: {
    description: 'Gradient with the DeconvNet ReLU rule',
    params: [],
    build: () => ({ name: 'deconvnet', layerMap: [['relu', reluDeconvNetRule()]] }),
  },
  excitation_backprop: {
    description: 'ZPlus for every linear layer, Norm for sums and average pooling',
    params: ['stabilizer', 'zeroParams'],
    build: (p) => ({
      name: 'excitation_backprop',
      layerMap: [
        ['sum', normRule(ruleOpts(p))],
        ['avgPool', normRule(ruleOpts(p))],
        ['linear', zPlusRule(ruleOpts(p))],
      ],
    }),
  },
  beta_smooth: {
    description: 'Gradient with ReLUs smoothed as softplus(β)',
    params: ['betaSmooth'],
    build: (p) => ({ name: 'beta_smooth', layerMap: [['relu', reluBetaSmoothRule(p.betaSmooth)]] }),
  },
};

/** Zennit's rules by their snake-case names, built from a file entry's parameters (Zennit's defaults otherwise). */
const RULES: Record<RuleName, (p: Params) => Rule> = {
  epsilon: (p) => epsilonRule(p.epsilon, ruleOpts(p)),
  zplus: (p) => zPlusRule(ruleOpts(p)),
  alpha_beta: (p) => alphaBetaRule(p.alpha ?? 2, p.beta ?? 1, ruleOpts(p)),
  gamma: (p) => gammaRule(p.gamma, ruleOpts(p)),
  zbox: (p) =>
    zBoxRule(
      p.low ?? fail('BAD_ARGUMENT', 'zbox needs low'),
      p.high ?? fail('BAD_ARGUMENT', 'zbox needs high'),
      ruleOpts(p),
    ),
  flat: (p) => flatRule(ruleOpts(p)),
  wsquare: (p) => wSquareRule(ruleOpts(p)),
  norm: (p) => normRule(ruleOpts(p)),
  pass: () => passRule(),
  relu_deconvnet: () => reluDeconvNetRule(),
  relu_guided_backprop: () => reluGuidedBackpropRule(),
  relu_beta_smooth: (p) => reluBetaSmoothRule(p.betaSmooth),
  gradient: () => ({ kind: 'gradient', name: 'Gradient' }),
};

/** The file's layer types (Zennit's names) as the engine's. */
const LAYER_TYPE: Record<LayerTypeName, LayerType> = {
  Convolution: 'conv',
  Linear: 'linear',
  Dense: 'dense',
  BatchNorm: 'batchNorm',
  Activation: 'activation',
  ReLU: 'relu',
  AvgPool: 'avgPool',
  MaxPool: 'maxPool',
  Sum: 'sum',
};

/** Zennit's keyword parameters (a file's) as the engine's. */
function paramsOf(spec: Omit<BaseSpec, 'name'> & Omit<RuleSpec, 'rule'>): Params {
  return {
    epsilon: spec.epsilon,
    stabilizer: spec.stabilizer,
    gamma: spec.gamma,
    alpha: spec.alpha,
    beta: spec.beta,
    low: spec.low,
    high: spec.high,
    zeroParams: spec.zero_params,
    betaSmooth: spec.beta_smooth,
  };
}

/** A file entry's rule, labelled with its parameters as the file gives them (`gamma=0.5`). */
function fileRule(spec: RuleSpec): Rule {
  const { rule, ...given } = spec;
  const shown = Object.entries(given).filter(([k]) => k !== 'layers' && k !== 'type');
  const detail = shown.map(([k, v]) => `${k}=${typeof v === 'object' ? JSON.stringify(v) : v}`).join(', ');
  return { ...RULES[rule](paramsOf(spec)), detail: detail || undefined, fromFile: true };
}

/**
 * A composite file (protocol/composite-file.ts) as a composite: its base's maps with the file's layer-map entries
 * before them (they win, as Zennit's `layer_map` argument does), its first-layer rule instead of the base's, and its
 * name map over both.
 */
export function compositeFromFile(file: CompositeFile): Composite {
  const base = typeof file.base === 'string' ? { name: file.base } : (file.base ?? { name: 'gradient' as const });
  const name = normalizeCompositeName(base.name);
  const built: Composite = name ? COMPOSITES[name].build(paramsOf(base)) : { name: 'gradient', layerMap: [] };
  const first = file.firstLayer;
  return {
    name: `custom(${base.name})`,
    layerMap: [
      ...(file.layerMap ?? []).map((e): [LayerType, Rule] => [LAYER_TYPE[e.type], fileRule(e)]),
      ...built.layerMap,
    ],
    firstMap: first ? [[LAYER_TYPE[first.type ?? 'Linear'], fileRule(first)]] : built.firstMap,
    nameMap: (file.nameMap ?? []).map((e) => [e.layers, fileRule(e)]),
  };
}

/** A rule for people: `Gamma (gamma=0.5)`, `gradient`. */
export function ruleLabel(rule: Rule | undefined): string {
  if (!rule || rule.kind === 'gradient') return 'gradient';
  return rule.detail ? `${rule.name} (${rule.detail})` : rule.name;
}

/** Accepts Zennit's names with hyphens or underscores; `gradient` (or none) means no composite. */
export function normalizeCompositeName(name: string | undefined): CompositeName | undefined {
  if (!name) return undefined;
  const n = name.trim().toLowerCase().replace(/-/g, '_');
  if (n === 'gradient' || n === 'none') return undefined;
  if (!(COMPOSITE_NAMES as readonly string[]).includes(n))
    fail('BAD_ARGUMENT', `unknown composite "${name}" (choose one of ${RUN_COMPOSITES.join(', ')})`);
  return n as CompositeName;
}

export function buildComposite(name: string, params: CompositeParams = {}): Composite {
  const n = normalizeCompositeName(name) ?? fail('BAD_ARGUMENT', 'the gradient has no composite');
  return COMPOSITES[n].build(params);
}

/** The composite a run (or a rules request) names: a composite file's content, a built-in by name, or none. */
export function runComposite(spec: {
  composite?: string;
  compositeParams?: CompositeParams;
  customComposite?: CompositeFile;
}): Composite | undefined {
  if (spec.customComposite && (spec.composite !== undefined || spec.compositeParams !== undefined))
    fail('BAD_ARGUMENT', 'give a composite by name (with its parameters) or a composite file, not both');
  if (spec.customComposite) return compositeFromFile(spec.customComposite);
  const name = normalizeCompositeName(spec.composite);
  return name ? buildComposite(name, spec.compositeParams) : undefined;
}
