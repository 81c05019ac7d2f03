import * as tf from '@tensorflow/tfjs-core';
import { modelOutput, type PassOptions, type PassResult, relevancePass, toNdArray } from './relevance-pass';
import { classRelevance, valueRelevance } from './conditions';
import { fail } from '../errors';
import type { Model } from '../graph/model';
import { imageGeometry, type Layout, type NdArray, size } from '../ndarray';
import { seededRandom } from './random';
import { blurPlane, clampEdge, gaussianKernel } from '../blur';
import type { AttributionOptions, AttributorParams } from '../../../protocol/engine';
import { ATTRIBUTOR_NAMES, type AttributorName, OUTPUT_RELEVANCES } from '../../../protocol/names';

export type { AttributorName, AttributorParams };
export const ATTRIBUTORS: readonly AttributorName[] = ATTRIBUTOR_NAMES;

export function normalizeAttributor(name: string | undefined): AttributorName {
  const n = (name ?? 'gradient').trim().toLowerCase().replace(/-/g, '_');
  if (!ATTRIBUTORS.includes(n as AttributorName))
    fail('BAD_ARGUMENT', `unknown attributor "${name}" (choose one of ${ATTRIBUTORS.join(', ')})`);
  return n as AttributorName;
}

/**
 * The output relevance: the target class's one-hot per batch row (one class for every row when one is given; each
 * row's largest output when 'predicted'), or weighted classes for every row; the logit and abs modes multiply by
 * the output.
 */
function targetFn(
  given: readonly number[] | 'predicted',
  mode: AttributorParams['outputRelevance'] = 'one_hot',
  weights?: AttributionOptions['classWeights'],
) {
  if (!OUTPUT_RELEVANCES.includes(mode))
    fail('BAD_ARGUMENT', `unknown output relevance "${mode}" (${OUTPUT_RELEVANCES.join(', ')})`);
  return (output: tf.Tensor): tf.Tensor => {
    const batch = output.shape[0];
    if (weights)
      return classRelevance(
        Array.from({ length: batch }, () => weights.map((w) => w.class)),
        mode,
        weights.map((w) => w.weight),
      )(output);
    const targets = given === 'predicted' ? argmaxPerRow(toNdArray(output)) : given;
    if (targets.length !== 1 && targets.length !== batch)
      fail('BAD_ARGUMENT', `--target gives ${targets.length} classes for a batch of ${batch}`);
    const classes = Array.from({ length: batch }, (_, r) => [targets.length === 1 ? targets[0] : targets[r]]);
    return classRelevance(classes, mode)(output);
  };
}

/** Each batch row's class of the largest output (the predicted class). */
export function argmaxPerRow(output: NdArray): number[] {
  const [b, c] = output.shape;
  return Array.from({ length: b }, (_, r) => {
    let best = 0;
    for (let k = 1; k < c; k++) if (output.data[r * c + k] > output.data[r * c + best]) best = k;
    return best;
  });
}

function axpy(acc: Float32Array, a: number, x: Float32Array): void {
  for (let i = 0; i < acc.length; i++) acc[i] += a * x[i];
}

/**
 * Runs an attributor. Gradient is one (modified) backward pass; SmoothGrad and IntegratedGradients average such
 * passes (so composites and store hooks apply to every pass, stored layers are averaged too); Occlusion runs the
 * forward only. Progress is reported over all passes.
 */
export async function attribute(
  model: Model,
  input: NdArray,
  targets: readonly number[] | 'predicted',
  attributor: AttributorName,
  params: AttributorParams,
  opts: PassOptions & { classWeights?: AttributionOptions['classWeights']; baselineInput?: NdArray },
): Promise<PassResult> {
  const relevanceOf =
    opts.startLayer === undefined
      ? targetFn(targets, params.outputRelevance, opts.classWeights)
      : valueRelevance(params.outputRelevance ?? 'one_hot');
  switch (attributor) {
    case 'gradient':
      return relevancePass(model, input, relevanceOf, opts);
    case 'smoothgrad': {
      const n = params.nIter ?? 20;
      const level = params.noiseLevel ?? 0.1;
      const rng = seededRandom(params.seed ?? 0);
      const per = size(input.shape.slice(1));
      return averagePasses(
        n,
        opts,
        (k) => {
          const noisy = new Float32Array(input.data);
          // The last pass is unperturbed, so that n = 1 is the gradient (as in Zennit).
          if (k < n - 1) {
            for (let b = 0; b < input.shape[0]; b++) {
              const row = input.data.subarray(b * per, (b + 1) * per);
              let lo = Infinity;
              let hi = -Infinity;
              for (const v of row) {
                lo = Math.min(lo, v);
                hi = Math.max(hi, v);
              }
              const std = level * (hi - lo);
              for (let i = 0; i < per; i++) noisy[b * per + i] += std * gaussian(rng);
            }
          }
          return { input: { shape: input.shape, data: noisy }, weight: 1 / n };
        },
        (o) => relevancePass(model, o.input, relevanceOf, o.opts),
      );
    }
    case 'integrated_gradients': {
      const n = params.nIter ?? 20;
      const base = opts.baselineInput
        ? baselineRows(input, opts.baselineInput)
        : baseline(input, typeof params.baseline === 'string' ? params.baseline : 'zeros', model.graph.layout);
      // Zennit's path: baseline + α·(input − baseline) for α = k/n, k = 1..n; mean gradient times (input − baseline)
      const result = await averagePasses(
        n,
        opts,
        (k) => {
          const alpha = (k + 1) / n;
          const data = input.data.map((v, i) => base[i] + alpha * (v - base[i]));
          return { input: { shape: input.shape, data }, weight: 1 / n };
        },
        (o) => relevancePass(model, o.input, relevanceOf, o.opts),
      );
      result.relevance.data = result.relevance.data.map((v, i) => v * (input.data[i] - base[i]));
      return result;
    }
    case 'occlusion':
      return occlusion(model, input, relevanceOf, params, opts);
  }
}

async function averagePasses(
  n: number,
  opts: PassOptions,
  point: (k: number) => { input: NdArray; weight: number },
  run: (o: { input: NdArray; opts: PassOptions }) => Promise<PassResult>,
): Promise<PassResult> {
  if (!Number.isInteger(n) || n < 1)
    fail('BAD_ARGUMENT', `the number of iterations must be a positive integer, not ${n}`);
  let acc: PassResult | undefined;
  for (let k = 0; k < n; k++) {
    const { input, weight } = point(k);
    const passOpts: PassOptions = {
      ...opts,
      onProgress: (done, total, layer) => opts.onProgress?.(k * total + done, n * total, layer),
    };
    const r = await run({ input, opts: passOpts });
    if (!acc) {
      acc = r;
      acc.relevance.data = acc.relevance.data.map((v) => v * weight);
      for (const l of acc.stored) l.relevance.data = l.relevance.data.map((v) => v * weight);
      for (const s of acc.sums) {
        s.sum *= weight;
        s.rows = s.rows.map((v) => v * weight);
      }
    } else {
      axpy(acc.relevance.data, weight, r.relevance.data);
      acc.stored.forEach((l, i) => axpy(l.relevance.data, weight, r.stored[i].relevance.data));
      acc.sums.forEach((s, i) => {
        s.sum += weight * r.sums[i].sum;
        s.rows = s.rows.map((v, b) => v + weight * r.sums[i].rows[b]);
      });
      acc.output = r.output;
    }
  }
  return acc!;
}

/**
 * Zennit's Occlusion: for each window position the input is zeroed outside the window, the model runs, and the
 * target score is added to every element of the window. Windows are clipped to each axis' size.
 */
async function occlusion(
  model: Model,
  input: NdArray,
  relevanceOf: (output: tf.Tensor) => tf.Tensor,
  params: AttributorParams,
  opts: PassOptions,
): Promise<PassResult> {
  const shape = input.shape;
  const dims = shape.slice(1);
  const win = dims.map((d) => Math.min(params.window ?? 8, d));
  const stride = dims.map((d) => Math.min(params.stride ?? 8, d));
  // Window offsets run over range(0, size, stride); a window past the end wraps around (Zennit rolls the mask).
  const starts = dims.map((d, i) => Array.from({ length: Math.ceil(d / stride[i]) }, (_, k) => k * stride[i]));
  const positions = starts.reduce<number[][]>((acc, s) => acc.flatMap((p) => s.map((v) => [...p, v])), [[]]);
  const per = size(dims);
  const strides = dims.map((_, i) => size(dims.slice(i + 1)));
  const inWindow = (flat: number, pos: number[]) =>
    dims.every((d, i) => {
      const c = Math.floor(flat / strides[i]) % d;
      return (((c - pos[i]) % d) + d) % d < win[i];
    });
  const relevance = new Float32Array(input.data.length);
  const output = modelOutput(model, input);
  const scoreOf = (out: NdArray): Float32Array =>
    tf.tidy(
      () =>
        tf
          .sum(tf.reshape(relevanceOf(tf.tensor(out.data, out.shape)), [out.shape[0], -1]), 1)
          .dataSync() as Float32Array,
    );
  for (let k = 0; k < positions.length; k++) {
    if (opts.isCancelled?.()) fail('CANCELLED', 'attribution cancelled');
    opts.onProgress?.(k, positions.length, `window ${k + 1}/${positions.length}`);
    const mask = new Uint8Array(per);
    for (let i = 0; i < per; i++) mask[i] = inWindow(i, positions[k]) ? 1 : 0;
    const fill = params.fill ?? 0;
    const occluded = input.data.map((v, i) => (mask[i % per] ? v : fill));
    const score = scoreOf(modelOutput(model, { shape, data: occluded }));
    for (let b = 0; b < shape[0]; b++) {
      for (let i = 0; i < per; i++) if (mask[i]) relevance[b * per + i] += score[b];
    }
    await new Promise<void>((r) => setImmediate(r));
  }
  return { output, relevance: { shape: [...shape], data: relevance }, stored: [], sums: [] };
}

function gaussian(rng: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - rng())) * Math.cos(2 * Math.PI * rng());
}

/** A baseline read from a file for each input row: one row for all, or a row each. */
function baselineRows(input: NdArray, base: NdArray): Float32Array {
  const per = size(input.shape.slice(1));
  const same = base.shape.slice(1).join() === input.shape.slice(1).join();
  if (!same || (base.shape[0] !== 1 && base.shape[0] !== input.shape[0]))
    fail('SHAPE_MISMATCH', `the baseline has shape [${base.shape}], the input [${input.shape}]`);
  const out = new Float32Array(input.data.length);
  for (let b = 0; b < input.shape[0]; b++)
    out.set(base.data.subarray(base.shape[0] === 1 ? 0 : b * per, (base.shape[0] === 1 ? 1 : b + 1) * per), b * per);
  return out;
}

/** IntegratedGradients' baseline for each sample: zeros, each channel's mean, or the image blurred. */
function baseline(input: NdArray, kind: 'zeros' | 'mean' | 'blurred', layout: Layout): Float32Array {
  const out = new Float32Array(input.data.length);
  if (kind === 'zeros') return out;
  const per = size(input.shape.slice(1));
  const g = imageGeometry(input.shape, layout);
  const sigma = Math.max(g.height, g.width) / 16;
  const kernel = gaussianKernel(2 * Math.ceil(3 * sigma) + 1, sigma);
  for (let b = 0; b < input.shape[0]; b++) {
    const sample = input.data.subarray(b * per, (b + 1) * per);
    const target = out.subarray(b * per, (b + 1) * per);
    for (let c = 0; c < g.channels; c++) {
      const plane = new Float32Array(g.height * g.width);
      for (let y = 0; y < g.height; y++)
        for (let x = 0; x < g.width; x++) plane[y * g.width + x] = sample[g.offset(c, y, x)];
      const result =
        kind === 'mean'
          ? plane.fill(plane.reduce((a, v) => a + v, 0) / plane.length)
          : blurPlane(plane, g.height, g.width, kernel, clampEdge);
      for (let y = 0; y < g.height; y++)
        for (let x = 0; x < g.width; x++) target[g.offset(c, y, x)] = result[y * g.width + x];
    }
  }
  return out;
}
