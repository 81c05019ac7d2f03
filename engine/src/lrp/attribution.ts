import * as path from 'path';
import { activeBackend } from '../graph/backend';
import { kernelsReport } from '../graph/native';
import { modelOutput, type PassOptions, type PassResult, relevancePass } from './relevance-pass';
import { classRelevance, expandRows, valueRelevance } from './conditions';
import { checkInputValues } from '../limits';
import { attribute, type AttributorName } from './attributors';
import { buildComposite, normalizeCompositeName, normalizeResidual } from './composites';
import { fail } from '../errors';
import { readImage, type Preprocess } from '../io/image';
import type { Model } from '../graph/model';
import { imageGeometry, type NdArray, size } from '../ndarray';
import { readNpy } from '../io/npy';
import type { AttributionOptions } from '../../../protocol/engine';

export interface AttributionRun extends PassResult {
  backend: string;
  /** what ran the heavy kernels: the native addon (oneDNN) or the backend itself */
  kernels: string;
  composite: string;
  attributor: AttributorName;
  target: number[];
  timingMs: number;
  /** non-finite values and where they first appear; empty when all is finite */
  warnings: string[];
}

/** Reads an input file: .npy in the model's layout, or a PNG/JPEG preprocessed to the model's input. */
export function readInput(model: Model, file: string, pre: Preprocess = {}): Promise<NdArray> {
  const ext = path.extname(file).toLowerCase();
  if (ext === '.npy') return readNpy(file);
  const shape = model.graph.input.shape;
  if (shape.length !== 4)
    fail('BAD_INPUT', `${file}: an image input needs a model with a 4-D input, this one takes [${shape}]`);
  const layout = model.graph.layout;
  const { height, width, channels } = imageGeometry(shape, layout);
  return readImage(file, layout, { ...pre, size: pre.size ?? [height, width], channels });
}

export function argmaxPerRow(output: NdArray): number[] {
  const [b, c] = output.shape;
  return Array.from({ length: b }, (_, r) => {
    let best = 0;
    for (let k = 1; k < c; k++) if (output.data[r * c + k] > output.data[r * c + best]) best = k;
    return best;
  });
}

export async function runAttribution(
  model: Model,
  input: NdArray,
  spec: AttributionOptions,
  hooks: { onProgress?: (done: number, total: number, layer: string) => void; isCancelled?: () => boolean } = {},
): Promise<AttributionRun> {
  const started = performance.now();
  const compositeName = normalizeCompositeName(spec.composite);
  const composite = compositeName ? buildComposite(compositeName, spec.compositeParams) : undefined;
  const attributor = spec.attributor ?? 'gradient';
  const predicted = spec.target && spec.target.length > 0 ? undefined : modelOutput(model, input);
  const target = predicted ? argmaxPerRow(predicted) : spec.target!;
  const opts = {
    composite,
    residual: normalizeResidual(spec.residual),
    store: spec.store,
    startLayer: spec.startLayer,
    ...hooks,
  };
  if (spec.startLayer !== undefined && attributor !== 'gradient')
    fail('BAD_ARGUMENT', `a start layer applies to the gradient attributor (one relevance pass), not ${attributor}`);
  const result = spec.conditions
    ? await conditionalPass(model, input, target, spec, opts)
    : await attribute(model, input, target, attributor, spec.attributorParams ?? {}, opts);
  return {
    ...result,
    warnings: nonFiniteWarnings(model, input, result, predicted !== undefined),
    backend: activeBackend(),
    kernels: kernelsReport(),
    composite: compositeName ?? 'gradient',
    attributor,
    target,
    timingMs: Math.round(performance.now() - started),
  };
}

/**
 * Concept-conditional relevance: each input row once per condition set (row n·K + k is row n under set k), one
 * relevance pass masked as the sets say.
 */
async function conditionalPass(
  model: Model,
  input: NdArray,
  target: readonly number[],
  spec: AttributionOptions,
  opts: PassOptions,
): Promise<PassResult> {
  if ((spec.attributor ?? 'gradient') !== 'gradient')
    fail('BAD_ARGUMENT', `conditions apply to the gradient attributor (one relevance pass), not ${spec.attributor}`);
  const { sets, excludeParallel = true } = spec.conditions!;
  const [batch, ...row] = input.shape;
  const expanded: NdArray = { shape: [batch * sets.length, ...row], data: repeatRows(input, sets.length) };
  checkInputValues(expanded.shape, `the input repeated for ${sets.length} condition sets [${expanded.shape}]`);
  const { classes, layers } = expandRows(batch, sets, target);
  const mode = spec.attributorParams?.outputRelevance ?? 'one_hot';
  const relevanceOf = spec.startLayer === undefined ? classRelevance(classes, mode) : valueRelevance(mode);
  return relevancePass(model, expanded, relevanceOf, { ...opts, conditions: { layers, excludeParallel } });
}

/** Each row of `input` `times` times in a row. */
function repeatRows(input: NdArray, times: number): Float32Array {
  const per = size(input.shape.slice(1));
  const out = new Float32Array(input.data.length * times);
  for (let n = 0; n < input.shape[0]; n++)
    for (let k = 0; k < times; k++) out.set(input.data.subarray(n * per, (n + 1) * per), (n * times + k) * per);
  return out;
}

function countNonFinite(values: ArrayLike<number>): number {
  let n = 0;
  for (let i = 0; i < values.length; i++) if (!Number.isFinite(values[i])) n++;
  return n;
}

/**
 * Where values stop being numbers, said plainly: in the input, in the weights, in the output, and the layer nearest
 * the output whose relevance is not finite (the relevance pass runs from the output to the input).
 */
function nonFiniteWarnings(model: Model, input: NdArray, result: PassResult, predicted: boolean): string[] {
  const warnings: string[] = [];
  const inInput = countNonFinite(input.data);
  if (inInput) warnings.push(`the input has ${inInput} NaN or infinite values`);
  const layers = model.nonFiniteLayers();
  if (layers.length)
    warnings.push(`the weights of ${layers.slice(0, 5).join(', ')}${layers.length > 5 ? ', …' : ''} are not finite`);
  const inOutput = countNonFinite(result.output.data);
  if (inOutput) {
    const why = inInput || layers.length ? '' : ' (an overflow inside the model)';
    warnings.push(`the model's output has ${inOutput} NaN or infinite values${why}`);
    if (predicted) warnings.push('the predicted class is not defined: class 0 was attributed');
  }
  const first = [...result.sums].reverse().find((s) => !Number.isFinite(s.sum));
  if (first) warnings.push(`the relevance is not finite from layer ${first.id} on, toward the input`);
  else if (countNonFinite(result.relevance.data)) warnings.push('the relevance at the input is not finite');
  return warnings;
}
