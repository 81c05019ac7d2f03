/**
 * Messages between the extension host and its webviews (the Relevance panel and the Layer Relevance view). Each
 * side parses every message it receives with these schemas before acting on it.
 */
import { z } from 'zod';
import { ChannelPage, InputImage, LayerView, RunResult } from './engine';
import { CHANNEL_ORDERS, COLOR_MAP_NAMES, EXPORT_FORMATS, SCALINGS } from './names';

export const ViewSettings = z.object({ colorMap: z.enum(COLOR_MAP_NAMES), scaling: z.enum(SCALINGS) });
export type ViewSettings = z.infer<typeof ViewSettings>;

/** A run as the views show it: the engine's result, and what the extension knows of the model. */
export const RunView = RunResult.extend({
  /** the model file's name */
  model: z.string(),
  /** the input file the run explained */
  inputFile: z.string().optional(),
  /** from a classes.json beside the model */
  classNames: z.array(z.string()).optional(),
  /** a vector input's feature names, from a features.json beside the model */
  featureNames: z.array(z.string()).optional(),
});
export type RunView = z.infer<typeof RunView>;

/** An earlier run of the model as the panel lists it to compare with: what it explained, how, and when. */
export const RunSummary = RunView.pick({
  runId: true,
  composite: true,
  attributor: true,
  target: true,
  classWeights: true,
  classNames: true,
  inputFile: true,
  row: true,
}).extend({ at: z.number() });
export type RunSummary = z.infer<typeof RunSummary>;

/** The tree's selected layer as the Layer Relevance view shows it. */
export const SelectedLayer = z.object({
  id: z.string(),
  op: z.string(),
  shape: z.array(z.int().nonnegative()),
  hooked: z.boolean(),
  /**
   * `${runId}/${id}` when the latest run has this layer's relevance. The data comes with the first message for a
   * key only; the view keeps what it was sent, so re-selecting a layer sends no tensor again.
   */
  key: z.string().optional(),
});
export type SelectedLayer = z.infer<typeof SelectedLayer>;

/** One channel's conditional relevance at the input (CRP), beside what the run said of the channel itself. */
export const ChannelExplanation = z.object({
  channel: z.int().nonnegative(),
  /** the relevance at the input when only this channel's relevance passes on through the layer */
  input: LayerView,
  /** the channel's relevance sum in the layer (the run's), when known */
  layerSum: z.number().nullable(),
  /** the relevance started from the channel's own activation (the channel as the target), not the model's target */
  asTarget: z.boolean(),
});
export type ChannelExplanation = z.infer<typeof ChannelExplanation>;

/** A reference image of a channel: the sample, its label, and the crop and its heatmap (webview URIs). */
export const ReferenceView = z.object({
  sample: z.int().nonnegative(),
  label: z.string(),
  image: z.string(),
  heatmap: z.string(),
});
export type ReferenceView = z.infer<typeof ReferenceView>;

/** One analysed channel: the classes it matters most for and its reference images. */
export const AnalysisChannel = z.object({
  channel: z.int().nonnegative(),
  /** the classes it matters most for (zennit-crp's compute_stats), with their mean relevance shares */
  classes: z.array(z.object({ class: z.string(), value: z.number() })),
  /** its largest relevance share in one sample (RelMax's first) */
  top: z.number().nullable(),
  references: z.array(ReferenceView),
});
export type AnalysisChannel = z.infer<typeof AnalysisChannel>;

/** A data-set analysis as the Channel Analysis view shows it (from the engine's analysis.json). */
export const AnalysisView = z.object({
  model: z.string(),
  data: z.string(),
  samples: z.int().nonnegative(),
  done: z.int().nonnegative(),
  layers: z.array(
    z.object({
      id: z.string(),
      channels: z.array(AnalysisChannel),
    }),
  ),
});
export type AnalysisView = z.infer<typeof AnalysisView>;

/** A row of the model editor's layer table (a layer, or a container of layers). */
export const ModelRow = z.object({
  id: z.string(),
  depth: z.int().nonnegative(),
  op: z.string(),
  shape: z.array(z.int().nonnegative()),
  params: z.int().nonnegative(),
  container: z.boolean(),
  /** kernel, stride, padding, … (empty for layers without a window) */
  geometry: z.string(),
  inputs: z.array(z.string()),
  /** the rule under the current composite, and whether the composite file sets it */
  rule: z.string().optional(),
  ruleSet: z.boolean().optional(),
});
export type ModelRow = z.infer<typeof ModelRow>;

/**
 * A run message's input image, or `{ asSent: true }`: the image of the last run message, which the webview holds. The
 * host leaves out an image the webview has: it is 150 kB of a 224² run's 350, and carrying bytes to a webview costs
 * time (in code-server about 0.2 ms a kB); a user re-runs one input under other rules and targets.
 */
export const PostedInput = z.union([InputImage, z.object({ asSent: z.literal(true) })]);

/** extension → webview */
export const HostMessage = z.discriminatedUnion('type', [
  z.object({ type: z.literal('run'), run: RunView.extend({ input: PostedInput }), settings: ViewSettings }),
  z.object({ type: z.literal('settings'), settings: ViewSettings }),
  z.object({ type: z.literal('clear'), reason: z.string() }),
  z
    .object({
      type: z.literal('layer'),
      layer: SelectedLayer,
      data: LayerView.optional(),
      settings: ViewSettings,
      /** what some of its channels respond to in a data-set analysis of the model, when it was analysed */
      analysis: z.object({ data: z.string(), channels: z.array(AnalysisChannel) }).optional(),
    })
    .refine((m) => m.data === undefined || m.layer.key !== undefined, 'layer data without a key'),
  /** conditional heatmaps of some of a layer's channels, for the run `runId` */
  z.object({
    type: z.literal('explanation'),
    runId: z.string(),
    layer: z.string(),
    channels: z.array(ChannelExplanation),
  }),
  z.object({ type: z.literal('analysis'), analysis: AnalysisView }),
  /** the model editor's table: a row per tree item, depth first */
  z.object({ type: z.literal('modelTable'), model: z.string(), composite: z.string(), rows: z.array(ModelRow) }),
  /** the model's runs (the latest last), and the one the run on show is compared with, if any */
  z.object({ type: z.literal('history'), runs: z.array(RunSummary), compared: RunView.optional() }),
  /** a page of a layer's channels of the run `runId` (its shown row) */
  z.object({ type: z.literal('channels'), runId: z.string(), page: ChannelPage }),
  /** how the run on show differs from what the next run uses (empty: it is current) */
  z.object({ type: z.literal('stale'), reasons: z.array(z.string()) }),
]);
export type HostMessage = z.infer<typeof HostMessage>;

/** webview → extension. `layer` is a layer id, or '' for the relevance at the input. */
export const WebviewMessage = z.discriminatedUnion('type', [
  z.object({ type: z.literal('ready') }),
  z.object({ type: z.literal('settings'), settings: ViewSettings }),
  z.object({ type: z.literal('export'), layer: z.string(), format: z.enum(EXPORT_FORMATS), settings: ViewSettings }),
  z.object({ type: z.literal('attachAndRun'), layer: z.string() }),
  z.object({ type: z.literal('run') }),
  /** the model editor: show this layer in the Model Layers tree */
  z.object({ type: z.literal('revealLayer'), id: z.string() }),
  /** the panel has drawn this run (the latency from Run Attribution to the picture is logged) */
  z.object({
    type: z.literal('painted'),
    runId: z.string(),
    /** when the run's message arrived, the panel was rebuilt, and the frame showing it was out (Date.now(): the
     *  host's clock too, on one machine; a remote host's may differ, and the host then times the answer's return) */
    received: z.number(),
    drawn: z.number(),
    painted: z.number(),
  }),
  /** show another row of the run (a batch's sample) */
  z.object({ type: z.literal('viewRow'), row: z.int().nonnegative() }),
  /** explain this class: it becomes the target, and the attribution runs again */
  z.object({ type: z.literal('explainClass'), class: z.int().nonnegative() }),
  /** what the layer's channels are relevant for at the input (a conditional run) */
  z.object({
    type: z.literal('explainChannels'),
    layer: z.string(),
    channels: z.array(z.int().nonnegative()).min(1).max(16),
  }),
  /** name the model's classes (Set Class Names…) */
  z.object({ type: z.literal('setClassNames') }),
  /** the next run's composite or target, chosen as the palette's commands do (Choose Composite…, Set Target Class…) */
  z.object({ type: z.literal('choose'), what: z.enum(['composite', 'target']) }),
  /** compare the run on show with this earlier one (null: stop comparing) */
  z.object({ type: z.literal('compare'), runId: z.string().nullable() }),
  /** another page of a layer's channels of the run on show, or another order */
  z.object({
    type: z.literal('channelPage'),
    layer: z.string(),
    offset: z.int().nonnegative(),
    order: z.enum(CHANNEL_ORDERS),
  }),
]);
export type WebviewMessage = z.infer<typeof WebviewMessage>;
