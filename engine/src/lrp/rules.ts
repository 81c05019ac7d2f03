import * as tf from '@tensorflow/tfjs-core';
import { fail } from '../errors';
import type { GraphNode } from '../graph/graph';
import type { DerivedParams } from './derived-params';
import { nativeCombine, nativeDivideStabilized, nativeElementwise, nativeMultiply } from '../graph/native';
import { forward, vjp } from '../graph/ops';
import { tensorsOf } from '../graph/param';

/**
 * Rules as data, the way Zennit's BasicHook declares them: for each term k, an input modifier and a parameter
 * modifier give a modified forward z_k; the gradient mapper turns the incoming relevance into one gradient per
 * term; each term's input gradient is the VJP of its modified forward; the reducer combines inputs and gradients.
 */
export type InputModifier = (x: tf.Tensor) => tf.Tensor;
/**
 * param → modified param; `zero` lists parameters set to zero for this term (Zennit's zero_params). `key` names
 * what `modify` computes (with its settings), so a model can keep the result for later runs.
 */
export interface ParamModifier {
  modify: (param: tf.Tensor) => tf.Tensor;
  key: string;
  zero?: string[];
  /**
   * The same parameters as Σ coefficient · base(param), e.g. Gamma's W + γ·W⁺ = 1·W + γ·clamp(W, min=0). A
   * linear layer's output is linear in its parameters, so this term's output may be combined from the bases'
   * outputs:
   * when one of them is the forward pass's own, a convolution is saved.
   */
  combination?: [number, ParamModifier][];
}
export type GradientMapper = (grad: tf.Tensor, outputs: tf.Tensor[]) => tf.Tensor[];
/**
 * Reducer as data: Σ_k weight_k · x_k · g_k over the terms' modified inputs x_k and input gradients g_k, or just
 * the gradient for rules whose modified input is a constant (Flat, WSquare). Declaring it lets the engine skip
 * work that provably adds nothing: a term with weight 0, or a term whose modified input is exactly zero.
 */
export type Reducer = { kind: 'inputTimesGradient'; weights: number[] } | { kind: 'gradient' };

export interface BasicRule {
  kind: 'basic';
  name: string;
  inputModifiers: InputModifier[];
  paramModifiers: ParamModifier[];
  gradientMapper: GradientMapper;
  reducer: Reducer;
}

/** A rule that rewrites the gradient of an elementwise layer directly (Pass, the ReLU rules). */
export interface ElementwiseRule {
  kind: 'elementwise';
  name: string;
  /** (input, output, incoming gradient, ordinary gradient) → gradient at the input */
  backward: (x: tf.Tensor, y: tf.Tensor, grad: tf.Tensor, ordinary: () => tf.Tensor) => tf.Tensor;
}

/** No rule: the plain gradient, said explicitly (a composite file's `gradient`); it wins over later maps. */
export interface GradientRule {
  kind: 'gradient';
  name: 'Gradient';
}

/** What a rule is, for people: its parameters (`gamma=0.5`), and whether a composite file set it. */
export interface RuleLabel {
  detail?: string;
  fromFile?: boolean;
}

export type Rule = (BasicRule | ElementwiseRule | GradientRule) & RuleLabel;
/** A rule that changes the backward pass (not the plain gradient). */
export type ActiveRule = Exclude<Rule, GradientRule>;

/** Zennit's Stabilizer: a number ε, or ε with `clip` (|z| clipped at ε) and `norm_scale` (ε · rms(z) per sample). */
export type Stabilizer = number | { epsilon: number; clip?: boolean; norm_scale?: boolean };

/**
 * Zennit's stabilize: z + ε·sign(z), with sign(0) = +1 so that zero denominators become ε; with `clip`,
 * sign(z)·max(|z|, ε); with `norm_scale`, ε times the root mean square of z over each sample.
 */
export function stabilize(z: tf.Tensor, stabilizer: Stabilizer = 1e-6): tf.Tensor {
  const sign = tf.where(tf.greaterEqual(z, 0), tf.onesLike(z), tf.fill(z.shape, -1));
  if (typeof stabilizer === 'number') return tf.add(z, tf.mul(sign, stabilizer));
  const { epsilon, clip = false, norm_scale = false } = stabilizer;
  const axes = z.shape.map((_, i) => i).slice(1);
  const eps = norm_scale && axes.length ? tf.mul(tf.sqrt(tf.mean(tf.square(z), axes, true)), epsilon) : epsilon;
  return clip ? tf.mul(sign, tf.maximum(tf.abs(z), eps)) : tf.add(z, tf.mul(sign, eps));
}

/**
 * g / stabilize(z), the division at the heart of every rule's gradient mapper; with a mask, only where
 * sign·by > 0 (Gamma's split by the output's sign), as Zennit writes it: (g · [sign·by > 0]) / stabilize(z).
 * One native pass when the addon is there (for a plain ε).
 */
export function divideStabilized(
  g: tf.Tensor,
  z: tf.Tensor,
  stabilizer: Stabilizer = 1e-6,
  mask?: { by: tf.Tensor; sign: 1 | -1 },
): tf.Tensor {
  if (typeof stabilizer === 'number' && nativeElementwise(g, z, ...(mask ? [mask.by] : [])))
    return nativeDivideStabilized(g, z, stabilizer, mask);
  const masked = mask ? tf.mul(tf.cast(mask.sign > 0 ? tf.greater(mask.by, 0) : tf.less(mask.by, 0), 'float32'), g) : g;
  return tf.div(masked, stabilize(z, stabilizer));
}

/** Σ cᵢ · tᵢ over two terms: one native pass when available, else the same float32 products and sum. */
function linearCombination([[ca, a], [cb, b]]: [number, tf.Tensor][]): tf.Tensor {
  return nativeElementwise(a, b) ? nativeCombine(a, ca, b, cb) : tf.add(tf.mul(a, ca), tf.mul(b, cb));
}

/** x · g, the reducer's product of a term's input and its gradient (one native pass on both cores when available). */
function inputTimesGradient(x: tf.Tensor, g: tf.Tensor): tf.Tensor {
  return nativeElementwise(x, g) ? nativeMultiply(x, g) : tf.mul(x, g);
}

/**
 * Outputs known to be exactly zero (a term whose input is zero and whose bias is zeroed): a scalar 0 that
 * broadcasts where it is used, and that sums leave out.
 */
const knownZero = new WeakSet<tf.Tensor>();
function knownZeroOutput(): tf.Tensor {
  const z = tf.scalar(0);
  knownZero.add(z);
  return z;
}

/** Σ ts; adding an exact zero changes no value, so known zeros are left out. */
function sum(ts: tf.Tensor[]): tf.Tensor {
  const nonZero = ts.filter((t) => !knownZero.has(t));
  return nonZero.length ? nonZero.reduce((a, b) => tf.add(a, b)) : ts[0];
}

const identity: InputModifier = (x) => x;
const positive: InputModifier = (x) => tf.relu(x);
/** exactly zero for non-negative inputs (after a ReLU): such terms are skipped */
const negative: InputModifier = (x) => tf.neg(tf.relu(tf.neg(x)));
const UNCHANGED = (p: tf.Tensor) => p;
const keep = (zero?: string[]): ParamModifier => ({ modify: UNCHANGED, key: 'unchanged', zero });
const weighted = (...weights: number[]): Reducer => ({ kind: 'inputTimesGradient', weights });
const clampMin = (zero?: string[]): ParamModifier => ({ modify: (p) => tf.relu(p), key: 'clamp(min=0)', zero });
const clampMax = (zero?: string[]): ParamModifier => ({
  modify: (p) => tf.neg(tf.relu(tf.neg(p))),
  key: 'clamp(max=0)',
  zero,
});
const withBiasZero = (zero: string[] = []) => (zero.includes('bias') ? zero : [...zero, 'bias']);

export interface RuleOptions {
  /** parameter names set to zero in every term (Zennit's zero_params) */
  zeroParams?: string[];
  stabilizer?: Stabilizer;
}

export function epsilonRule(epsilon: Stabilizer = 1e-6, o: RuleOptions = {}): BasicRule {
  return {
    kind: 'basic',
    name: 'Epsilon',
    inputModifiers: [identity],
    paramModifiers: [keep(o.zeroParams)],
    gradientMapper: (g, [z]) => [divideStabilized(g, z, epsilon)],
    reducer: weighted(1),
  };
}

export function zPlusRule(o: RuleOptions = {}): BasicRule {
  const eps = o.stabilizer ?? 1e-6;
  return {
    kind: 'basic',
    name: 'ZPlus',
    inputModifiers: [positive, negative],
    paramModifiers: [clampMin(o.zeroParams), clampMax(withBiasZero(o.zeroParams))],
    gradientMapper: (g, zs) => {
      const h = divideStabilized(g, sum(zs), eps);
      return [h, h];
    },
    reducer: weighted(1, 1),
  };
}

export function alphaBetaRule(alpha = 2, beta = 1, o: RuleOptions = {}): BasicRule {
  if (alpha < 0 || beta < 0) fail('BAD_ARGUMENT', 'AlphaBeta: alpha and beta must be non-negative');
  if (alpha - beta !== 1) fail('BAD_ARGUMENT', 'AlphaBeta: alpha − beta must equal 1');
  const eps = o.stabilizer ?? 1e-6;
  return {
    kind: 'basic',
    name: 'AlphaBeta',
    inputModifiers: [positive, negative, positive, negative],
    paramModifiers: [
      clampMin(o.zeroParams),
      clampMax(withBiasZero(o.zeroParams)),
      clampMax(o.zeroParams),
      clampMin(withBiasZero(o.zeroParams)),
    ],
    gradientMapper: (g, z) => {
      const hp = divideStabilized(g, sum([z[0], z[1]]), eps);
      const hn = divideStabilized(g, sum([z[2], z[3]]), eps);
      return [hp, hp, hn, hn];
    },
    reducer: weighted(alpha, alpha, -beta, -beta),
  };
}

/** Generalised Gamma: positive and negative outputs are explained by their own contributions. */
export function gammaRule(gamma = 0.25, o: RuleOptions = {}): BasicRule {
  const eps = o.stabilizer ?? 1e-6;
  const gammaMod = (kind: 'min' | 'max', zero?: string[]): ParamModifier => ({
    modify: (p) => tf.add(p, tf.mul(gamma, kind === 'min' ? tf.relu(p) : tf.neg(tf.relu(tf.neg(p))))),
    key: `p + ${gamma}·clamp(${kind}=0)`,
    zero,
    // p + γ·p⁺, and p + γ·p⁻ = (1 + γ)·p − γ·p⁺. In floats as accurate as the direct product where each
    // output is used: z₀ = y + γ·z⁺ where y > 0 (two non-negative parts), z₂ = y + γ·(y − z⁺) where y < 0
    // (then |y − z⁺| > z⁺, no cancellation). Not so for AlphaBeta's unmasked p⁻ = p − p⁺, which keeps its own
    // product.
    combination:
      kind === 'min'
        ? [
            [1, keep(zero)],
            [gamma, clampMin(zero)],
          ]
        : [
            [1 + gamma, keep(zero)],
            [-gamma, clampMin(zero)],
          ],
  });
  return {
    kind: 'basic',
    name: 'Gamma',
    inputModifiers: [positive, negative, positive, negative, identity],
    paramModifiers: [
      gammaMod('min', o.zeroParams),
      gammaMod('max', withBiasZero(o.zeroParams)),
      gammaMod('max', o.zeroParams),
      gammaMod('min', withBiasZero(o.zeroParams)),
      keep(),
    ],
    gradientMapper: (g, z) => {
      const hp = divideStabilized(g, sum([z[0], z[1]]), eps, { by: z[4], sign: 1 });
      const hn = divideStabilized(g, sum([z[2], z[3]]), eps, { by: z[4], sign: -1 });
      // the fifth term's gradient is never used (its reducer weight is 0)
      return [hp, hp, hn, hn, tf.scalar(0)];
    },
    // the fifth term only decides which outputs are positive
    reducer: weighted(1, 1, 1, 1, 0),
  };
}

/** ZBox (DTD z^B): bounded inputs in [low, high]; low/high are scalars or tensors broadcast to the input. */
export function zBoxRule(low: number | tf.Tensor, high: number | tf.Tensor, o: RuleOptions = {}): BasicRule {
  const eps = o.stabilizer ?? 1e-6;
  const fillLike = (v: number | tf.Tensor) => (x: tf.Tensor) =>
    typeof v === 'number' ? tf.fill(x.shape, v) : tf.add(tf.zerosLike(x), v);
  return {
    kind: 'basic',
    name: 'ZBox',
    inputModifiers: [identity, fillLike(low), fillLike(high)],
    paramModifiers: [keep(o.zeroParams), clampMin(o.zeroParams), clampMax(o.zeroParams)],
    gradientMapper: (g, [z, zl, zh]) => {
      const h = divideStabilized(g, tf.sub(tf.sub(z, zl), zh), eps);
      return [h, h, h];
    },
    reducer: weighted(1, -1, -1),
  };
}

const ones: InputModifier = (x) => tf.onesLike(x);

export function wSquareRule(o: RuleOptions = {}): BasicRule {
  const eps = o.stabilizer ?? 1e-6;
  return {
    kind: 'basic',
    name: 'WSquare',
    inputModifiers: [ones],
    paramModifiers: [{ modify: (p) => tf.square(p), key: 'square', zero: o.zeroParams }],
    gradientMapper: (g, [z]) => [divideStabilized(g, z, eps)],
    reducer: { kind: 'gradient' },
  };
}

export function flatRule(o: RuleOptions = {}): BasicRule {
  const eps = o.stabilizer ?? 1e-6;
  return {
    kind: 'basic',
    name: 'Flat',
    inputModifiers: [ones],
    paramModifiers: [{ modify: (p) => tf.onesLike(p), key: 'ones', zero: withBiasZero(o.zeroParams) }],
    gradientMapper: (g, [z]) => [divideStabilized(g, z, eps)],
    reducer: { kind: 'gradient' },
  };
}

/** Proportional split by input contribution: Epsilon with a fixed stabiliser, for sums and average pooling. */
export function normRule(o: RuleOptions = {}): BasicRule {
  const eps = o.stabilizer ?? 1e-6;
  return {
    kind: 'basic',
    name: 'Norm',
    inputModifiers: [identity],
    paramModifiers: [keep()],
    gradientMapper: (g, [z]) => [divideStabilized(g, z, eps)],
    reducer: weighted(1),
  };
}

export function passRule(): ElementwiseRule {
  return { kind: 'elementwise', name: 'Pass', backward: (_x, _y, g) => g };
}

export function reluDeconvNetRule(): ElementwiseRule {
  return { kind: 'elementwise', name: 'ReLUDeconvNet', backward: (_x, _y, g) => tf.relu(g) };
}

export function reluGuidedBackpropRule(): ElementwiseRule {
  return {
    kind: 'elementwise',
    name: 'ReLUGuidedBackprop',
    backward: (_x, _y, g, ordinary) => tf.mul(ordinary(), tf.cast(tf.greater(g, 0), 'float32')),
  };
}

/** Smooth ReLU gradient: the derivative of softplus with β, σ(β·x), times the incoming gradient. */
export function reluBetaSmoothRule(beta = 10): ElementwiseRule {
  return {
    kind: 'elementwise',
    name: 'ReLUBetaSmooth',
    backward: (x, _y, g) => tf.mul(g, tf.sigmoid(tf.mul(x, beta))),
  };
}

/** What the caller knows beyond the node: where modified parameters are kept, and whether the inputs are ≥ 0. */
export interface RuleContext {
  /** rule-modified parameters kept across runs; without it they are computed each time */
  derived?: DerivedParams;
  /** every input is ≥ 0 by construction (after a ReLU); otherwise the values are checked */
  nonNegativeInputs?: boolean;
}

/**
 * The modified inputs, parameters and forward outputs of one rule application, each made once: rules share
 * modifications across their terms (the forward pass's own output among them).
 */
class Modifications {
  private readonly inputs = new Map<InputModifier, tf.Tensor[]>();
  private readonly params = new Map<ParamModifier, Record<string, tf.Tensor>>();
  private readonly outputs = new Map<InputModifier, Map<string, tf.Tensor>>();

  /** `nonNegative`: every input is ≥ 0, so `positive` is the identity */
  constructor(
    private readonly node: GraphNode,
    inputs: tf.Tensor[],
    private readonly output: tf.Tensor,
    private readonly nonNegative: boolean,
    private readonly derived?: DerivedParams,
  ) {
    this.inputs.set(identity, inputs);
  }

  private effective(m: InputModifier): InputModifier {
    return this.nonNegative && m === positive ? identity : m;
  }

  input(m: InputModifier): tf.Tensor[] {
    const key = this.effective(m);
    if (!this.inputs.has(key)) this.inputs.set(key, this.inputs.get(identity)!.map(key));
    return this.inputs.get(key)!;
  }

  /** the parameters under `pm` (kept across runs when `derived` is given) */
  paramsOf(pm: ParamModifier): Record<string, tf.Tensor> {
    if (!this.params.has(pm)) {
      const entries = Object.entries(tensorsOf(this.node.params)).map(([name, p]) => {
        const [key, make] = pm.zero?.includes(name) ? ['zero', tf.zerosLike] : [pm.key, pm.modify];
        if (pm.modify === UNCHANGED && key !== 'zero') return [name, p];
        return [name, this.derived ? this.derived.get(p, key, make) : make(p)];
      });
      this.params.set(pm, Object.fromEntries(entries));
    }
    return this.params.get(pm)!;
  }

  private isForwardOutput(m: InputModifier, pm: ParamModifier): boolean {
    return this.effective(m) === identity && pm.modify === UNCHANGED && !pm.zero?.length;
  }

  /** the node's output on modified inputs and parameters; a linear layer's combinations from outputs it has */
  outputOf(m: InputModifier, pm: ParamModifier): tf.Tensor {
    if (this.isForwardOutput(m, pm)) return this.output;
    const key = this.effective(m);
    if (!this.outputs.has(key)) this.outputs.set(key, new Map());
    const outputs = this.outputs.get(key)!;
    const paramKey = `${pm.key}|${pm.zero ?? ''}`;
    if (!outputs.has(paramKey)) {
      const linear = this.node.op === 'conv2d' || this.node.op === 'dense';
      const combined =
        linear && pm.combination?.length === 2 && pm.combination.some(([, base]) => this.isForwardOutput(m, base));
      outputs.set(
        paramKey,
        combined
          ? linearCombination(pm.combination!.map(([c, base]) => [c, this.outputOf(m, base)]))
          : forward(this.node, this.input(m), this.paramsOf(pm)),
      );
    }
    return outputs.get(paramKey)!;
  }
}

/** Applies a rule to a node: the relevance (gradient) at each of its inputs. */
export function applyRule(
  rule: ActiveRule,
  node: GraphNode,
  inputs: tf.Tensor[],
  output: tf.Tensor,
  grad: tf.Tensor,
  context: RuleContext = {},
): tf.Tensor[] {
  if (rule.kind === 'elementwise') {
    return [rule.backward(inputs[0], output, grad, () => vjp(node, inputs, tensorsOf(node.params), grad)[0])];
  }
  const reducer = rule.reducer;
  const weights = reducer.kind === 'inputTimesGradient' ? reducer.weights : undefined;
  // after a ReLU every input is ≥ 0 and the `negative` modifier gives exact zeros; for a linear layer such a term's
  // output is its bias alone (zero when the bias is zeroed)
  const nonNegative =
    (node.op === 'conv2d' || node.op === 'dense') &&
    rule.inputModifiers.includes(negative) &&
    (context.nonNegativeInputs || inputs.every((x) => tf.min(x).dataSync()[0] >= 0));
  const mods = new Modifications(node, inputs, output, nonNegative, context.derived);
  const terms = rule.inputModifiers.map((modIn, k) => {
    const pm = rule.paramModifiers[k];
    const zeroInput = modIn === negative && nonNegative;
    // W·0 + b: the bias alone, or a known zero
    const bias = 'bias' in node.params && !pm.zero?.includes('bias');
    const z = zeroInput
      ? bias
        ? tf.add(tf.zerosLike(output), mods.paramsOf(pm).bias)
        : knownZeroOutput()
      : mods.outputOf(modIn, pm);
    // its contribution weight·x·g vanishes when the weight or the input is zero: no gradient needed
    const needed = !weights || (weights[k] !== 0 && !zeroInput);
    return { xs: () => mods.input(modIn), params: () => mods.paramsOf(pm), z, needed };
  });
  const grads = rule.gradientMapper(
    grad,
    terms.map((t) => t.z),
  );
  const perTerm = terms.map((t, k) => (t.needed ? vjp(node, t.xs(), t.params(), grads[k]) : undefined));
  return inputs.map((_, i) => {
    if (!weights) return sum(perTerm.map((g) => g![i]));
    const parts = terms.flatMap((t, k) => {
      if (!perTerm[k]) return [];
      const xg = inputTimesGradient(t.xs()[i], perTerm[k]![i]);
      return [weights[k] === 1 ? xg : tf.mul(weights[k], xg)];
    });
    return parts.length ? sum(parts) : tf.zerosLike(inputs[i]);
  });
}
