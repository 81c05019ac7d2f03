/**
 * Turns an engine run into what the webviews draw: the input as an image, and per layer the channel-summed map
 * with the top channels, fetched from the engine's `tensor/get` channel view (downsampled, never the full tensor).
 */
import type { ChannelView, RunResult, TensorData, TensorRef } from '../../engine/src/server/protocol';
import * as P from '../../engine/src/server/protocol';
import type { LayerTreeItem } from '../../engine/src/graph';
import type { LayerView, RunView } from '../../webview/src/messages';
import type { Ctx, LastRun, OpenedModel } from './context';

const MAX_MAP_SIZE = 256;

async function layerView(ctx: Ctx, id: string, op: string, ref: TensorRef, topK: number): Promise<LayerView> {
  const view = (await ctx.engine.request(P.GetTensor, { tensorId: ref.tensorId, view: 'channels', topK, maxSize: MAX_MAP_SIZE })) as ChannelView;
  const [summed, ...channels] = view.maps;
  return { id, op, shape: ref.shape, sum: ref.sum, min: ref.min, max: ref.max, summed, channels };
}

/** The input as an image in [0, 1] (min–max over the image, since it may be normalised), HWC order. */
function inputImage(t: TensorData, layout: 'NCHW' | 'NHWC'): RunView['input'] {
  const v = P.decodeFloats(t.data);
  let [h, w, ch] = [1, t.shape[1] ?? v.length, 1];
  if (t.shape.length === 4) [h, w, ch] = layout === 'NCHW' ? [t.shape[2], t.shape[3], t.shape[1]] : [t.shape[1], t.shape[2], t.shape[3]];
  const channels = ch === 3 ? 3 : 1;
  const out = new Float32Array(h * w * channels);
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < h * w * ch; i++) [lo, hi] = [Math.min(lo, v[i]), Math.max(hi, v[i])];
  const span = hi > lo ? hi - lo : 1;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      for (let c = 0; c < channels; c++) {
        // more than 3 channels: show the first (gray)
        const src = t.shape.length === 4 ? (layout === 'NCHW' ? (c * h + y) * w + x : (y * w + x) * ch + c) : x;
        out[(y * w + x) * channels + c] = (v[src] - lo) / span;
      }
    }
  }
  return { height: h, width: w, channels, data: P.encodeFloats(out) };
}

let runs = 0;

export async function buildRunView(ctx: Ctx, model: OpenedModel, result: RunResult): Promise<LastRun> {
  const topK = ctx.settings.topChannels;
  const ops = new Map<string, LayerTreeItem>(ctx.layers().map((l) => [l.id, l]));
  const input = (await ctx.engine.request(P.GetTensor, { tensorId: result.input.tensorId, view: 'full' })) as TensorData;
  const layers: LayerView[] = [];
  for (const l of result.layers) {
    try {
      layers.push(await layerView(ctx, l.id, ops.get(l.id)?.op ?? '', l.relevance, topK));
    } catch (e) {
      ctx.log.warn(`cannot draw the relevance of ${l.id}: ${(e as Error).message}`);
    }
  }
  const view: RunView = {
    // the engine's run ids restart with the engine; the views need one that does not repeat
    runId: `run-${++runs}`,
    model: model.path.split(/[\\/]/).pop()!,
    backend: result.backend,
    kernels: result.kernels,
    composite: result.composite,
    attributor: result.attributor,
    target: result.target[0],
    timingMs: result.timingMs,
    classNames: model.classNames,
    topK: result.topK[0] ?? [],
    input: inputImage(input, model.info.layout),
    relevance: await layerView(ctx, '', 'input', result.relevance, topK),
    layers,
    sums: [{ id: '', op: 'input', sum: result.relevance.sum }, ...result.sums.map((s) => ({ id: s.id, op: s.op, sum: s.sum }))],
  };
  return { result, view, sums: new Map(result.layers.map((l) => [l.id, l.relevance.sum])) };
}
