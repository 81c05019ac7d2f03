import * as path from 'path';
import { activeBackend } from '../graph/backend';
import { kernelsReport } from '../graph/native';
import { modelOutput, type PassResult } from './relevance-pass';
import { attribute, type AttributorName } from './attributors';
import { buildComposite, normalizeCompositeName, normalizeResidual } from './composites';
import { fail } from '../errors';
import { readImage, type Preprocess } from '../io/image';
import type { Model } from '../graph/model';
import { type NdArray } from '../ndarray';
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
}

/** Reads an input file: .npy in the model's layout, or a PNG/JPEG preprocessed to the model's input. */
export function readInput(model: Model, file: string, pre: Preprocess = {}): NdArray {
  const ext = path.extname(file).toLowerCase();
  if (ext === '.npy') return readNpy(file);
  const shape = model.graph.input.shape;
  if (shape.length !== 4)
    fail('BAD_INPUT', `${file}: an image input needs a model with a 4-D input, this one takes [${shape}]`);
  const layout = model.graph.layout;
  const [h, w, ch] = layout === 'NCHW' ? [shape[2], shape[3], shape[1]] : [shape[1], shape[2], shape[3]];
  return readImage(file, layout, { ...pre, size: pre.size ?? [h, w], channels: ch });
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
  const target = spec.target && spec.target.length > 0 ? spec.target : argmaxPerRow(modelOutput(model, input));
  const result = await attribute(model, input, target, attributor, spec.attributorParams ?? {}, {
    composite,
    residual: normalizeResidual(spec.residual),
    store: spec.store,
    ...hooks,
  });
  return {
    ...result,
    backend: activeBackend(),
    kernels: kernelsReport(),
    composite: compositeName ?? 'gradient',
    attributor,
    target,
    timingMs: Math.round(performance.now() - started),
  };
}
