import * as tf from '@tensorflow/tfjs-core';
import { fail } from './errors';
import type { GraphNode } from './graph';
import { forward, vjp } from './ops';

/**
 * Rules as data, the way Zennit's BasicHook declares them: for each term k, an input modifier and a parameter
 * modifier give a modified forward z_k; the gradient mapper turns the incoming relevance into one gradient per
 * term; each term's input gradient is the VJP of its modified forward; the reducer combines inputs and gradients.
 */
export type InputModifier = (x: tf.Tensor) => tf.Tensor;
/** (param, name) → modified param; `zero` lists parameters set to zero for this term (Zennit's zero_params). */
export interface ParamModifier {
  modify: (param: tf.Tensor, name: string) => tf.Tensor;
  zero?: string[];
}
export type GradientMapper = (grad: tf.Tensor, outputs: tf.Tensor[]) => tf.Tensor[];
export type Reducer = (inputs: tf.Tensor[], gradients: tf.Tensor[]) => tf.Tensor;

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

export type Rule = BasicRule | ElementwiseRule;

/** Zennit's stabilizer: z + ε·sign(z), with sign(0) = +1 so that zero denominators become ε. */
export function stabilize(z: tf.Tensor, epsilon = 1e-6): tf.Tensor {
  return tf.add(z, tf.mul(tf.where(tf.greaterEqual(z, 0), tf.onesLike(z), tf.fill(z.shape, -1)), epsilon));
}

const sum = (ts: tf.Tensor[]) => ts.reduce((a, b) => tf.add(a, b));
const identity: InputModifier = (x) => x;
const positive: InputModifier = (x) => tf.relu(x);
const negative: InputModifier = (x) => tf.neg(tf.relu(tf.neg(x)));
const keep = (zero?: string[]): ParamModifier => ({ modify: (p) => p, zero });
const clampMin = (zero?: string[]): ParamModifier => ({ modify: (p) => tf.relu(p), zero });
const clampMax = (zero?: string[]): ParamModifier => ({ modify: (p) => tf.neg(tf.relu(tf.neg(p))), zero });
const withBiasZero = (zero: string[] = []) => (zero.includes('bias') ? zero : [...zero, 'bias']);

export interface RuleOptions {
  /** parameter names set to zero in every term (Zennit's zero_params) */
  zeroParams?: string[];
  stabilizer?: number;
}

export function epsilonRule(epsilon = 1e-6, o: RuleOptions = {}): BasicRule {
  return {
    kind: 'basic',
    name: 'Epsilon',
    inputModifiers: [identity],
    paramModifiers: [keep(o.zeroParams)],
    gradientMapper: (g, [z]) => [tf.div(g, stabilize(z, epsilon))],
    reducer: ([x], [grad]) => tf.mul(x, grad),
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
      const h = tf.div(g, stabilize(sum(zs), eps));
      return [h, h];
    },
    reducer: ([xp, xn], [gp, gn]) => tf.add(tf.mul(xp, gp), tf.mul(xn, gn)),
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
    paramModifiers: [clampMin(o.zeroParams), clampMax(withBiasZero(o.zeroParams)), clampMax(o.zeroParams), clampMin(withBiasZero(o.zeroParams))],
    gradientMapper: (g, z) => {
      const hp = tf.div(g, stabilize(tf.add(z[0], z[1]), eps));
      const hn = tf.div(g, stabilize(tf.add(z[2], z[3]), eps));
      return [hp, hp, hn, hn];
    },
    reducer: (x, gr) =>
      tf.sub(
        tf.mul(alpha, tf.add(tf.mul(x[0], gr[0]), tf.mul(x[1], gr[1]))),
        tf.mul(beta, tf.add(tf.mul(x[2], gr[2]), tf.mul(x[3], gr[3]))),
      ),
  };
}

/** Generalised Gamma: positive and negative outputs are explained by their own contributions. */
export function gammaRule(gamma = 0.25, o: RuleOptions = {}): BasicRule {
  const eps = o.stabilizer ?? 1e-6;
  const gammaMod = (kind: 'min' | 'max', zero?: string[]): ParamModifier => ({
    modify: (p) => tf.add(p, tf.mul(gamma, kind === 'min' ? tf.relu(p) : tf.neg(tf.relu(tf.neg(p))))),
    zero,
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
      const pos = tf.cast(tf.greater(z[4], 0), 'float32');
      const neg = tf.cast(tf.less(z[4], 0), 'float32');
      const hp = tf.div(tf.mul(pos, g), stabilize(tf.add(z[0], z[1]), eps));
      const hn = tf.div(tf.mul(neg, g), stabilize(tf.add(z[2], z[3]), eps));
      return [hp, hp, hn, hn, tf.zerosLike(g)];
    },
    reducer: (x, gr) => sum([0, 1, 2, 3].map((k) => tf.mul(x[k], gr[k]))),
  };
}

/** ZBox (DTD z^B): bounded inputs in [low, high]; low/high are scalars or tensors broadcast to the input. */
export function zBoxRule(low: number | tf.Tensor, high: number | tf.Tensor, o: RuleOptions = {}): BasicRule {
  const eps = o.stabilizer ?? 1e-6;
  const fillLike = (v: number | tf.Tensor) => (x: tf.Tensor) => (typeof v === 'number' ? tf.fill(x.shape, v) : tf.add(tf.zerosLike(x), v));
  return {
    kind: 'basic',
    name: 'ZBox',
    inputModifiers: [identity, fillLike(low), fillLike(high)],
    paramModifiers: [keep(o.zeroParams), clampMin(o.zeroParams), clampMax(o.zeroParams)],
    gradientMapper: (g, [z, zl, zh]) => {
      const h = tf.div(g, stabilize(tf.sub(tf.sub(z, zl), zh), eps));
      return [h, h, h];
    },
    reducer: ([x, l, hi], [g0, g1, g2]) => tf.sub(tf.sub(tf.mul(x, g0), tf.mul(l, g1)), tf.mul(hi, g2)),
  };
}

const ones: InputModifier = (x) => tf.onesLike(x);

export function wSquareRule(o: RuleOptions = {}): BasicRule {
  const eps = o.stabilizer ?? 1e-6;
  return {
    kind: 'basic',
    name: 'WSquare',
    inputModifiers: [ones],
    paramModifiers: [{ modify: (p) => tf.square(p), zero: o.zeroParams }],
    gradientMapper: (g, [z]) => [tf.div(g, stabilize(z, eps))],
    reducer: (_x, [grad]) => grad,
  };
}

export function flatRule(o: RuleOptions = {}): BasicRule {
  const eps = o.stabilizer ?? 1e-6;
  return {
    kind: 'basic',
    name: 'Flat',
    inputModifiers: [ones],
    paramModifiers: [{ modify: (p) => tf.onesLike(p), zero: withBiasZero(o.zeroParams) }],
    gradientMapper: (g, [z]) => [tf.div(g, stabilize(z, eps))],
    reducer: (_x, [grad]) => grad,
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
    gradientMapper: (g, [z]) => [tf.div(g, stabilize(z, eps))],
    reducer: ([x], [grad]) => tf.mul(x, grad),
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
  return { kind: 'elementwise', name: 'ReLUBetaSmooth', backward: (x, _y, g) => tf.mul(g, tf.sigmoid(tf.mul(x, beta))) };
}

/** Applies a rule to a node: the relevance (gradient) at each of its inputs. */
export function applyRule(rule: Rule, node: GraphNode, inputs: tf.Tensor[], output: tf.Tensor, grad: tf.Tensor): tf.Tensor[] {
  if (rule.kind === 'elementwise') {
    return [rule.backward(inputs[0], output, grad, () => vjp(node, inputs, node.params, grad)[0])];
  }
  const terms = rule.inputModifiers.map((modIn, k) => {
    const pm = rule.paramModifiers[k];
    const params: Record<string, tf.Tensor> = {};
    for (const [name, p] of Object.entries(node.params)) {
      params[name] = pm.zero?.includes(name) ? tf.zerosLike(p) : pm.modify(p, name);
    }
    const xs = inputs.map(modIn);
    return { xs, params, z: forward(node, xs, params) };
  });
  const grads = rule.gradientMapper(grad, terms.map((t) => t.z));
  const perTerm = terms.map((t, k) => vjp(node, t.xs, t.params, grads[k]));
  return inputs.map((_, i) => rule.reducer(terms.map((t) => t.xs[i]), perTerm.map((g) => g[i])));
}
