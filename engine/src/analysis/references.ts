/**
 * Reference images of a channel, as zennit-crp's FeatureVisualization.get_max_reference(rf=True) with
 * vis_img_heatmap makes them: for each of the channel's top samples (RelMax), the relevance at the input of the
 * channel's most relevant neuron alone (the pass starts at the layer from its activation, masked to that neuron:
 * mask_rf), and the sample and that heatmap cropped to where the heatmap, blurred (Gaussian, 19 taps, σ 3.2) and
 * divided by its maximum, exceeds 0.1 — the part of the input the neuron sees.
 */
import type { Model } from '../graph/model';
import { encodePng } from '../io/image';
import { blurPlane, gaussianKernel, reflectEdge } from '../blur';
import { relevancePass } from '../lrp/relevance-pass';
import { valueRelevance } from '../lrp/conditions';
import { normalizeResidual, runComposite } from '../lrp/composites';
import type { Layout, NdArray } from '../ndarray';
import { rowImage } from '../views';
import { channelSum, heatmapRgba } from '../shared/colormap';
import type { AnalysisConfig, RankingJson } from './analyze';
import type { Dataset } from './dataset';

/** One reference of a channel: the sample, its crop (rows y0..y1, columns x0..x1, ends excluded) and its pictures. */
export interface Reference {
  sample: number;
  crop: [number, number, number, number];
  /** PNG bytes */
  image: Buffer;
  heatmap: Buffer;
}

/** Pictures this many pixels on the longer side at least (whole-pixel scaling). */
const MIN_SIDE = 64;

/** torchvision's gaussian_blur kernel of 19 taps: σ = 0.3·((19 − 1)/2 − 1) + 0.8, reflect padding. */
const CROP_KERNEL = gaussianKernel(19, 0.3 * ((19 - 1) * 0.5 - 1) + 0.8);

/**
 * zennit-crp's crop: the bounding rows and columns where the blurred heatmap over its maximum exceeds 0.1, the
 * last row and column excluded as its slicing does; the whole picture where that leaves nothing.
 */
export function cropBox(heat: ArrayLike<number>, h: number, w: number): [number, number, number, number] {
  const blurred = blurPlane(heat, h, w, CROP_KERNEL, reflectEdge);
  const max = Math.max(...blurred);
  let [y0, y1, x0, x1] = [h, -1, w, -1];
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++)
      if (blurred[y * w + x] / (max + 1e-10) > 0.1)
        [y0, y1, x0, x1] = [Math.min(y0, y), Math.max(y1, y), Math.min(x0, x), Math.max(x1, x)];
  if (y1 - y0 < 1 || x1 - x0 < 1) return [0, h, 0, w];
  return [y0, y1, x0, x1];
}

/** One sample of a batch as RGBA pixels (the input view's image: min–max scaled, gray for other than 3 channels). */
function imageRgba(t: NdArray, row: number, layout: Layout): { h: number; w: number; rgba: Uint8ClampedArray } {
  const { height, width, channels, values } = rowImage(t, layout, row);
  const rgba = new Uint8ClampedArray(height * width * 4);
  for (let p = 0; p < height * width; p++)
    for (let c = 0; c < 4; c++) rgba[p * 4 + c] = c === 3 ? 255 : values[p * channels + (channels === 3 ? c : 0)] * 255;
  return { h: height, w: width, rgba };
}

function cropRgba(
  rgba: Uint8ClampedArray,
  w: number,
  [y0, y1, x0, x1]: [number, number, number, number],
): Uint8ClampedArray {
  const cw = x1 - x0;
  const out = new Uint8ClampedArray((y1 - y0) * cw * 4);
  for (let y = y0; y < y1; y++) out.set(rgba.subarray((y * w + x0) * 4, (y * w + x1) * 4), (y - y0) * cw * 4);
  return out;
}

/**
 * The references of `channels` of one layer: each channel's first `count` RelMax samples, in passes of at most
 * `config.batch` rows.
 */
export async function channelReferences(
  model: Model,
  data: Dataset,
  config: AnalysisConfig,
  layer: string,
  relmax: RankingJson,
  count: number,
  hooks: { isCancelled?: () => boolean; onBatch?: (images: number) => void } = {},
): Promise<Reference[][]> {
  const composite = runComposite(config.composite);
  const residual = normalizeResidual(config.composite.residual);
  const layout = model.graph.layout;
  const jobs = relmax.samples.flatMap((samples, channel) =>
    samples.slice(0, count).map((sample, rank) => ({ channel, sample, position: relmax.rf[channel][rank] })),
  );
  const out: Reference[][] = relmax.samples.map(() => []);
  for (let from = 0; from < jobs.length; from += config.batch) {
    const chunk = jobs.slice(from, from + config.batch);
    const input = await data.batch(chunk.map((j) => j.sample));
    const pass = await relevancePass(model, input, valueRelevance('logit'), {
      composite,
      residual,
      startLayer: layer,
      isCancelled: hooks.isCancelled,
      conditions: {
        layers: chunk.map((j) => [[layer, [j.channel], j.position]]),
        excludeParallel: false,
      },
    });
    chunk.forEach((j, r) => {
      const heat = channelSum(pass.relevance.shape, pass.relevance.data, r, layout);
      const img = imageRgba(input, r, layout);
      const crop = heat.height > 1 ? cropBox(heat.values, heat.height, heat.width) : ([0, 1, 0, heat.width] as const);
      const [y0, y1, x0, x1] = crop;
      const scale = Math.max(1, Math.floor(MIN_SIDE / Math.max(y1 - y0, x1 - x0)));
      const values = Float32Array.from({ length: (y1 - y0) * (x1 - x0) }, (_, i) => {
        const [y, x] = [y0 + Math.floor(i / (x1 - x0)), x0 + (i % (x1 - x0))];
        return heat.values[y * heat.width + x];
      });
      out[j.channel].push({
        sample: j.sample,
        crop: [...crop],
        image: encodePng(x1 - x0, y1 - y0, cropRgba(img.rgba, img.w, [...crop]), scale),
        heatmap: encodePng(x1 - x0, y1 - y0, heatmapRgba(values, 'bwr', 'symmetric'), scale),
      });
    });
    hooks.onBatch?.(chunk.length);
  }
  return out;
}
