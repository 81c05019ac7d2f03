import type { Graph, GraphNode, ModuleType } from '../graph/graph';
import { fail } from '../errors';
import type { CompositeParams } from '../../../protocol/engine';
import { COMPOSITE_NAMES, type CompositeName, type ResidualMode, RUN_COMPOSITES } from '../../../protocol/names';
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
  type Rule,
  type RuleOptions,
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
 * A composite assigns rules to nodes: by node id first (name map), then the special first-layer map for the first
 * matching node in execution order, then the layer map (first match wins). Unmapped nodes use the gradient.
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

export function assignRules(composite: Composite, graph: Graph, residual: ResidualMode = 'norm'): Map<string, Rule> {
  const rules = new Map<string, Rule>();
  let firstDone = !composite.firstMap?.length;
  for (const node of graph.nodes) {
    const byName = composite.nameMap?.find(([ids]) => ids.includes(node.id));
    if (byName) {
      rules.set(node.id, byName[1]);
      continue;
    }
    if (residual === 'gradient' && node.moduleType === 'sum') continue;
    if (!firstDone) {
      const first = composite.firstMap!.find(([type]) => isLayerType(node, type));
      if (first) {
        firstDone = true;
        rules.set(node.id, first[1]);
        continue;
      }
    }
    const mapped = composite.layerMap.find(([type]) => isLayerType(node, type));
    if (mapped) rules.set(node.id, mapped[1]);
  }
  return rules;
}

function layerMapBase(p: CompositeParams): LayerMap {
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
  build: (p: CompositeParams) => Composite;
}

const ruleOpts = (p: CompositeParams): RuleOptions => ({ zeroParams: p.zeroParams, stabilizer: p.stabilizer });

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

/** Rules a user can name in a layer-map or name-map composite, with their parameters. */
export const RULES: Record<string, { params: (keyof CompositeParams)[]; build: (p: CompositeParams) => Rule }> = {
  epsilon: { params: ['epsilon', 'zeroParams'], build: (p) => epsilonRule(p.epsilon, ruleOpts(p)) },
  zplus: { params: ['stabilizer', 'zeroParams'], build: (p) => zPlusRule(ruleOpts(p)) },
  alpha_beta: {
    params: ['alpha', 'beta', 'stabilizer', 'zeroParams'],
    build: (p) => alphaBetaRule(p.alpha ?? 2, p.beta ?? 1, ruleOpts(p)),
  },
  gamma: { params: ['gamma', 'stabilizer', 'zeroParams'], build: (p) => gammaRule(p.gamma, ruleOpts(p)) },
  zbox: {
    params: ['low', 'high', 'stabilizer', 'zeroParams'],
    build: (p) =>
      zBoxRule(
        p.low ?? fail('BAD_ARGUMENT', 'zbox needs low'),
        p.high ?? fail('BAD_ARGUMENT', 'zbox needs high'),
        ruleOpts(p),
      ),
  },
  flat: { params: ['stabilizer', 'zeroParams'], build: (p) => flatRule(ruleOpts(p)) },
  wsquare: { params: ['stabilizer', 'zeroParams'], build: (p) => wSquareRule(ruleOpts(p)) },
  norm: { params: ['stabilizer'], build: (p) => normRule(ruleOpts(p)) },
  pass: { params: [], build: () => passRule() },
  relu_deconvnet: { params: [], build: () => reluDeconvNetRule() },
  relu_guided_backprop: { params: [], build: () => reluGuidedBackpropRule() },
  relu_beta_smooth: { params: ['betaSmooth'], build: (p) => reluBetaSmoothRule(p.betaSmooth) },
};

/** A user-configured composite: rules by layer type, by node id, and for the first layer. */
export interface CustomCompositeSpec {
  layerMap?: { type: LayerType; rule: string; params?: CompositeParams }[];
  nameMap?: { ids: string[]; rule: string; params?: CompositeParams }[];
  firstMap?: { type: LayerType; rule: string; params?: CompositeParams }[];
}

function buildRule(name: string, p: CompositeParams = {}): Rule {
  const r =
    RULES[name] ?? fail('BAD_ARGUMENT', `unknown rule "${name}" (choose one of ${Object.keys(RULES).join(', ')})`);
  return r.build(p);
}

function checkType(type: string): LayerType {
  if (!(type in TYPE_MODULES))
    fail('BAD_ARGUMENT', `unknown layer type "${type}" (choose one of ${Object.keys(TYPE_MODULES).join(', ')})`);
  return type as LayerType;
}

export function customComposite(spec: CustomCompositeSpec): Composite {
  return {
    name: 'custom',
    layerMap: (spec.layerMap ?? []).map((e) => [checkType(e.type), buildRule(e.rule, e.params)]),
    firstMap: (spec.firstMap ?? []).map((e) => [checkType(e.type), buildRule(e.rule, e.params)]),
    nameMap: (spec.nameMap ?? []).map((e) => [e.ids, buildRule(e.rule, e.params)]),
  };
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
