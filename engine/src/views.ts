/**
 * What the editor's views draw, computed where the tensors are: the input as an image, per layer the channel-summed
 * map and its top channels (downsampled), the top-k predictions, and the files a user exports. The extension only
 * passes these on.
 */
import { encodeBytes, encodeFloats } from '../../protocol/floats';
import type {
  ChannelPage,
  ChannelPageParams,
  ExportParams,
  InputImage,
  LayerView,
  Prediction,
  ViewOptions,
} from '../../protocol/engine';
import { heatmapPng } from './io/image';
import { imageGeometry, type Layout, type NdArray } from './ndarray';
import { encodeNpy } from './io/npy';
import { bounds, channelSum, type ChannelStat, rankChannels } from './shared/colormap';

export type { Layout };

const DEFAULT_MAX_SIZE = 256;
const DEFAULT_TOP_CHANNELS = 8;

export function sumOf(values: ArrayLike<number>): number {
  let sum = 0;
  for (let i = 0; i < values.length; i++) sum += values[i];
  return sum;
}

/** Block-averages a map so neither side exceeds maxSize. */
function downsample(
  values: Float32Array,
  height: number,
  width: number,
  maxSize: number,
): { height: number; width: number; values: Float32Array } {
  const f = Math.max(1, Math.ceil(Math.max(height, width) / maxSize));
  if (f === 1) return { height, width, values };
  const h = Math.ceil(height / f);
  const w = Math.ceil(width / f);
  const out = new Float32Array(h * w);
  const n = new Float32Array(h * w);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const k = Math.floor(y / f) * w + Math.floor(x / f);
      out[k] += values[y * width + x];
      n[k]++;
    }
  }
  for (let k = 0; k < out.length; k++) out[k] /= n[k];
  return { height: h, width: w, values: out };
}

function mapOf(values: Float32Array, height: number, width: number, maxSize: number) {
  const small = downsample(values, height, width, maxSize);
  const b = bounds(small.values, false);
  // the sum is the full map's, not the downsampled one's
  return {
    height: small.height,
    width: small.width,
    min: b.min,
    max: b.max,
    sum: sumOf(values),
    data: encodeFloats(small.values),
  };
}

/** One row of a layer's relevance: the channel sum and the top channels by |relevance|. */
export function layerView(id: string, op: string, t: NdArray, layout: Layout, view: ViewOptions = {}): LayerView {
  // the row is checked against the batch before the run (server)
  const row = view.row ?? 0;
  const maxSize = view.maxSize ?? DEFAULT_MAX_SIZE;
  const summed = channelSum(t.shape, t.data, row, layout);
  const ranked = rankChannels(t.shape, t.data, row, layout, 'abs');
  const channels = channelMaps(t, layout, row, ranked.slice(0, view.topChannels ?? DEFAULT_TOP_CHANNELS), maxSize);
  const per = t.data.length / t.shape[0];
  const own = t.data.subarray(row * per, (row + 1) * per);
  const all = bounds(own, false);
  return {
    id,
    op,
    shape: [...t.shape],
    sum: sumOf(own),
    min: all.min,
    max: all.max,
    summed: mapOf(summed.values, summed.height, summed.width, maxSize),
    channels,
    channelCount: ranked.length,
  };
}

/** The maps of some channels of one row of a 4-D tensor. */
function channelMaps(t: NdArray, layout: Layout, row: number, which: ChannelStat[], maxSize: number) {
  const g = imageGeometry(t.shape, layout);
  const { height: h, width: w, channelStride: cs, pixelStride: ps } = g;
  const base = row * g.channels * h * w;
  return which.map(({ channel }) => {
    const values = new Float32Array(h * w);
    const o = base + channel * cs;
    for (let p = 0; p < h * w; p++) values[p] = t.data[o + p * ps];
    return { channel, ...mapOf(values, h, w, maxSize) };
  });
}

/** A page of one row's channels in an order (the row is checked by the caller). */
export function channelPage(
  t: NdArray,
  layout: Layout,
  p: Omit<ChannelPageParams, 'runId'>,
  maxSize?: number,
): ChannelPage {
  const ranked = rankChannels(t.shape, t.data, p.row, layout, p.order);
  const page = ranked.slice(p.offset, p.offset + p.count);
  return {
    layer: p.layer,
    row: p.row,
    order: p.order,
    offset: p.offset,
    total: ranked.length,
    channels: channelMaps(t, layout, p.row, page, maxSize ?? DEFAULT_MAX_SIZE),
  };
}

/**
 * One row of the input as an image in [0, 1] (min–max over the row, since it may be normalised), HWC; more than 3
 * channels (or 2): the first, as gray.
 */
export function rowImage(
  t: NdArray,
  layout: Layout,
  row = 0,
): { height: number; width: number; channels: 1 | 3; values: Float32Array } {
  const g = imageGeometry(t.shape.length === 1 ? [1, t.data.length] : t.shape, layout);
  const { height: h, width: w, channels: ch } = g;
  const channels = ch === 3 ? 3 : 1;
  const base = row * h * w * ch;
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = base; i < base + h * w * ch; i++) {
    const v = t.data[i];
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  const span = hi > lo ? hi - lo : 1;
  const values = new Float32Array(h * w * channels);
  for (let c = 0; c < channels; c++) {
    const o = base + c * g.channelStride;
    for (let p = 0; p < h * w; p++) values[p * channels + c] = (t.data[o + p * g.pixelStride] - lo) / span;
  }
  return { height: h, width: w, channels, values };
}

export function inputImage(t: NdArray, layout: Layout, row = 0): InputImage {
  const { height, width, channels, values } = rowImage(t, layout, row);
  const bytes = new Uint8Array(values.length);
  for (let i = 0; i < values.length; i++) bytes[i] = Math.round(255 * values[i]);
  return { height, width, channels, data: encodeBytes(bytes) };
}

/** The k largest logits of each batch row, with their softmax probabilities. */
export function topPredictions(output: NdArray, k: number): Prediction[][] {
  const classes = output.shape[1] ?? 1;
  return Array.from({ length: output.shape[0] }, (_, r) => {
    const logits = Array.from(output.data.subarray(r * classes, (r + 1) * classes));
    const max = Math.max(...logits);
    const exp = logits.map((v) => Math.exp(v - max));
    const z = exp.reduce((a, b) => a + b, 0);
    return logits
      .map((logit, c) => ({ class: c, logit, probability: exp[c] / z }))
      .sort((a, b) => b.logit - a.logit)
      .slice(0, k);
  });
}

/** PNG heatmaps are scaled up by a whole factor until the longer side reaches this many pixels. */
const PNG_MIN_SIDE = 256;

/** A tensor as the bytes of a file: the whole tensor as .npy, or one row's heatmap as PNG. */
export function exportTensor(
  t: NdArray,
  layout: Layout,
  row: number,
  p: ExportParams,
): { mimeType: string; bytes: Buffer } {
  if (p.format === 'npy') return { mimeType: 'application/octet-stream', bytes: encodeNpy(t) };
  const g = imageGeometry(t.shape, layout);
  const scale = Math.max(1, Math.ceil((p.minSide ?? PNG_MIN_SIDE) / Math.max(g.height, g.width)));
  return {
    mimeType: 'image/png',
    bytes: heatmapPng(t, row, layout, p.colorMap ?? 'bwr', scale, p.scaling ?? 'symmetric'),
  };
}
