import * as path from 'path';
import { activeBackend } from '../graph/backend';
import { kernelsReport } from '../graph/native';
import { modelOutput, type PassOptions, type PassResult, relevancePass } from './relevance-pass';
import { classRelevance, expandRows, valueRelevance } from './conditions';
import { argmaxPerRow, attribute, type AttributorName } from './attributors';
import { normalizeResidual, runComposite } from './composites';
import { fail } from '../errors';
import { readImage, type Preprocess } from '../io/image';
import type { Model } from '../graph/model';
import { imageGeometry, joinRows, type NdArray, pickRows } from '../ndarray';
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

export async function runAttribution(
  model: Model,
  input: NdArray,
  spec: AttributionOptions,
  hooks: { onProgress?: (done: number, total: number, layer: string) => void; isCancelled?: () => boolean } = {},
): Promise<AttributionRun> {
  const started = performance.now();
  const composite = runComposite(spec);
  const attributor = spec.attributor ?? 'gradient';
  // with class weights the target shown is the class of the largest weight (A of "A rather than B")
  const weighted = spec.classWeights?.reduce((a, b) => (b.weight > a.weight ? b : a)).class;
  const given = weighted !== undefined ? [weighted] : spec.target?.length ? spec.target : undefined;
  // the gradient's one pass predicts the class from its own forward (the other attributors' passes see changed
  // inputs, a condition or start layer needs the class first): no forward of its own
  const fromPass = !given && attributor === 'gradient' && !spec.conditions && spec.startLayer === undefined;
  const targets = given ?? (fromPass ? undefined : argmaxPerRow(modelOutput(model, input)));
  const opts = {
    composite,
    residual: normalizeResidual(spec.residual),
    store: spec.store,
    startLayer: spec.startLayer,
    classWeights: spec.classWeights,
    ...hooks,
  };
  if (spec.classWeights && (spec.conditions || spec.startLayer !== undefined))
    fail(
      'BAD_ARGUMENT',
      'class weights make the output relevance; they do not combine with conditions or a start layer',
    );
  if (spec.startLayer !== undefined && attributor !== 'gradient')
    fail('BAD_ARGUMENT', `a start layer applies to the gradient attributor (one relevance pass), not ${attributor}`);
  // an image (or .npy) as IntegratedGradients' baseline, read as an input is
  const b = spec.attributorParams?.baseline;
  const baselineInput = typeof b === 'object' ? await readInput(model, b.path, b.preprocess) : undefined;
  const result = spec.conditions
    ? await conditionalPass(model, input, targets!, spec, opts)
    : await attribute(model, input, targets ?? 'predicted', attributor, spec.attributorParams ?? {}, {
        ...opts,
        baselineInput,
      });
  const target = targets ?? argmaxPerRow(result.output);
  return {
    ...result,
    warnings: [
      ...nonFiniteWarnings(model, input, result, given === undefined),
      ...flatOcclusionWarning(attributor, spec.attributorParams?.outputRelevance),
    ],
    backend: activeBackend(),
    kernels: kernelsReport(),
    composite: composite?.name ?? 'gradient',
    attributor,
    target,
    timingMs: Math.round(performance.now() - started),
  };
}

/**
 * Concept-conditional relevance: each input row once per condition set (row n·K + k is row n under set k), in
 * passes of at most `batchSize` rows, each one relevance pass masked as its rows' sets say.
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
  const { sets, excludeParallel = true, batchSize = DEFAULT_CONDITION_BATCH } = spec.conditions!;
  const { classes, layers } = expandRows(input.shape[0], sets, target);
  const mode = spec.attributorParams?.outputRelevance ?? 'one_hot';
  const chunks = Math.ceil(classes.length / batchSize);
  const results: PassResult[] = [];
  for (let c = 0; c < chunks; c++) {
    const [from, to] = [c * batchSize, Math.min((c + 1) * batchSize, classes.length)];
    const rows = Array.from({ length: to - from }, (_, k) => Math.floor((from + k) / sets.length));
    const relevanceOf =
      spec.startLayer === undefined ? classRelevance(classes.slice(from, to), mode) : valueRelevance(mode);
    results.push(
      await relevancePass(model, pickRows(input, rows), relevanceOf, {
        ...opts,
        conditions: { layers: layers.slice(from, to), excludeParallel },
        onProgress: (done, total, layer) => opts.onProgress?.(c * total + done, chunks * total, layer),
      }),
    );
  }
  return concatRows(results);
}

/** Condition rows per relevance pass unless the request says otherwise: zennit-crp's generate() uses 10 to 16. */
const DEFAULT_CONDITION_BATCH = 16;

/** Passes over consecutive rows as one: their tensors joined along the batch axis, their sums added. */
function concatRows(results: PassResult[]): PassResult {
  if (results.length === 1) return results[0];
  const join = joinRows;
  const [first] = results;
  return {
    output: join(results.map((r) => r.output)),
    relevance: join(results.map((r) => r.relevance)),
    stored: first.stored.map((l, i) => ({ ...l, relevance: join(results.map((r) => r.stored[i].relevance)) })),
    sums: first.sums.map((s, i) => ({
      ...s,
      shape: [results.reduce((n, r) => n + r.sums[i].shape[0], 0), ...s.shape.slice(1)],
      sum: results.reduce((t, r) => t + r.sums[i].sum, 0),
      rows: results.flatMap((r) => r.sums[i].rows),
    })),
  };
}

function countNonFinite(values: ArrayLike<number>): number {
  let n = 0;
  for (let i = 0; i < values.length; i++) if (!Number.isFinite(values[i])) n++;
  return n;
}

/**
 * Occlusion scores each window by the sum of the output relevance; the one-hot's (or weighted classes') does not
 * depend on the output, so every window scores alike and the map is flat. Zennit's Occlusion does the same with a
 * one-hot `attr_output`; the target's logit is what a user looks for.
 */
function flatOcclusionWarning(attributor: string, outputRelevance = 'one_hot'): string[] {
  if (attributor !== 'occlusion' || outputRelevance !== 'one_hot') return [];
  return [
    "occlusion with the one-hot output relevance scores every window alike, so its map is flat (as Zennit's): " +
      "the output relevance 'logit' scores the target's logit",
  ];
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
