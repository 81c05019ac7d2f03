/**
 * The engine protocol: JSON-RPC 2.0 over stdio (vscode-jsonrpc) between the extension and the engine process.
 * Every message is a schema here; its TypeScript type is inferred from the schema, and the engine validates each
 * request's parameters with it. Imports nothing from the engine, so an engine refactor cannot change the wire.
 */
import { NotificationType, ProgressType, RequestType, RequestType0 } from 'vscode-jsonrpc';
import { z } from 'zod';
import { wireBytes } from './floats';
import { CompositeFile } from './composite-file';
import {
  ATTRIBUTOR_NAMES,
  CHANNEL_ORDERS,
  COLOR_MAP_NAMES,
  OUTPUT_RELEVANCES,
  COMPOSITE_NAMES,
  EXPORT_FORMATS,
  LAYER_TYPES,
  type LayerTypeName,
  RESIDUAL_MODES,
  RUN_COMPOSITES,
  SCALINGS,
} from './names';

/** Error codes (JSON-RPC server-error range) the client maps to messages a user can act on. */
export const ErrorCodes = {
  FILE_NOT_FOUND: -32001,
  NOT_A_MODEL: -32002,
  UNSUPPORTED_OP: -32003,
  SHAPE_MISMATCH: -32004,
  BAD_INPUT: -32005,
  UNKNOWN_LAYER: -32006,
  OUT_OF_MEMORY: -32007,
  UNKNOWN_MODEL: -32008,
  UNKNOWN_TENSOR: -32009,
  BAD_ARGUMENT: -32602,
  CANCELLED: -32800,
} as const;

const count = z.int().nonnegative();
const positive = z.int().positive();
const shape = z.array(count);
/** base64 (of little-endian float32 values, or of bytes where a schema says so); in a message from the extension
 *  host to a webview, an ArrayBuffer of them instead (protocol/floats.ts) */
const base64 = z.union([z.string().regex(/^[A-Za-z0-9+/]*={0,2}$/, 'not base64'), z.instanceof(ArrayBuffer)]);

// ---- initialize ----------------------------------------------------------------------------------------------

export const InitializeParams = z.object({
  /** tensorflow, wasm or cpu; default: the first that loads */
  backend: z.string().optional(),
});
export type InitializeParams = z.infer<typeof InitializeParams>;

export const InitializeResult = z.object({
  backend: z.string(),
  /** what runs the heavy kernels: the native addon (oneDNN) or the backend itself, and why */
  kernels: z.string(),
  versions: z.object({ engine: z.string(), tfjs: z.string(), node: z.string() }),
  composites: z.array(
    z.object({ name: z.enum(COMPOSITE_NAMES), description: z.string(), params: z.array(z.string()) }),
  ),
  /** what the loaders read: ONNX op types and Keras layer classes (from their op tables) */
  operators: z.object({ onnx: z.array(z.string()), tfjs: z.array(z.string()) }),
});
export type InitializeResult = z.infer<typeof InitializeResult>;

// ---- models --------------------------------------------------------------------------------------------------

/** What a layer is made of, as a model viewer shows it (Netron's node properties). */
export interface LayerDetails {
  /** the layers (tree ids, or `input`) whose outputs it reads */
  inputs: string[];
  /** convolutions and pooling: [height, width] */
  kernel?: number[];
  stride?: number[];
  /** [top, left, bottom, right], as ONNX writes pads */
  padding?: number[];
  dilation?: number[];
  groups?: number;
}
export const LayerDetails = z.object({
  inputs: z.array(z.string()),
  kernel: z.array(count).optional(),
  stride: z.array(count).optional(),
  padding: z.array(count).optional(),
  dilation: z.array(count).optional(),
  groups: count.optional(),
});

/** A row of the model's module tree; ids are PyTorch's module names where the file has them. */
export interface LayerTreeItem {
  id: string;
  label: string;
  /** the node whose output this item's relevance is; for containers, their last child */
  node: string;
  op: string;
  shape: number[];
  params: number;
  /** the layer's type as Zennit's composites see it (none for containers and plain functions) */
  type?: LayerTypeName;
  /** a layer's (not a container's) make-up */
  details?: LayerDetails;
  children: LayerTreeItem[];
}
export const LayerTreeItem: z.ZodType<LayerTreeItem> = z.lazy(() =>
  z.object({
    id: z.string(),
    label: z.string(),
    node: z.string(),
    op: z.string(),
    shape,
    params: count,
    type: z.enum(LAYER_TYPES).optional(),
    details: LayerDetails.optional(),
    children: z.array(LayerTreeItem),
  }),
);

export const OpenModelParams = z.object({ path: z.string().min(1) });
export type OpenModelParams = z.infer<typeof OpenModelParams>;

export const ModelInfo = z.object({
  modelId: z.string(),
  source: z.string(),
  format: z.enum(['onnx', 'tfjs']),
  layout: z.enum(['NCHW', 'NHWC']),
  inputShape: shape,
  tree: z.array(LayerTreeItem),
  /** class names the file carries (ONNX metadata_props), and the key they were under */
  classNames: z.object({ names: z.array(z.string()), key: z.string() }).optional(),
});
export type ModelInfo = z.infer<typeof ModelInfo>;

export const ModelRef = z.object({ modelId: z.string() });
export type ModelRef = z.infer<typeof ModelRef>;

/** The model's weights are loaded (model/weights answers once they are): how many bytes they take. */
export const WeightsInfo = z.object({ bytes: count });
export type WeightsInfo = z.infer<typeof WeightsInfo>;

// ---- attribution ---------------------------------------------------------------------------------------------

export const Preprocess = z.object({
  /** [height, width], each at most 4096; defaults to the model's input size */
  size: z.tuple([positive.max(4096), positive.max(4096)]).optional(),
  /** per-channel mean and std applied to values in [0, 1] */
  mean: z.array(z.number()).optional(),
  std: z.array(z.number()).optional(),
});
export type Preprocess = z.infer<typeof Preprocess>;

const nonNegative = z.number().nonnegative();

export const CompositeParams = z
  .object({
    /** a stabiliser: a negative one would flip the relevance's sign where it dominates */
    epsilon: nonNegative.optional(),
    gamma: nonNegative.optional(),
    stabilizer: nonNegative.optional(),
    /** ZBox's input bounds, low < high */
    low: z.number().optional(),
    high: z.number().optional(),
    alpha: nonNegative.optional(),
    beta: nonNegative.optional(),
    betaSmooth: z.number().positive().optional(),
    /** parameters a rule leaves out, as Zennit's zero_params (e.g. ['bias']) */
    zeroParams: z.array(z.string()).optional(),
  })
  .refine((p) => p.low === undefined || p.high === undefined || p.low < p.high, {
    message: 'low must be below high',
    path: ['low'],
  });
export type CompositeParams = z.infer<typeof CompositeParams>;

export const AttributorParams = z.object({
  /** SmoothGrad: noise std as a fraction of each sample's value range (Zennit: 0.1) */
  noiseLevel: nonNegative.optional(),
  /**
   * IntegratedGradients' baseline: zeros (Zennit's default), each channel's mean over the image, the input blurred
   * (a Gaussian of σ = 1/16 of the image's larger side), per sample, or an image or .npy read as the input is
   */
  baseline: z
    .union([
      z.enum(['zeros', 'mean', 'blurred']),
      z.object({ path: z.string().min(1), preprocess: Preprocess.optional() }),
    ])
    .optional(),
  /** SmoothGrad (20) and IntegratedGradients (20) iterations */
  nIter: positive.optional(),
  /** SmoothGrad noise seed, for reproducible runs */
  seed: z.int().optional(),
  /** Occlusion window and stride along every axis but the batch (Zennit: 8, 8) */
  window: positive.optional(),
  stride: positive.optional(),
  /** Occlusion: the value the occluded part of the input takes (Zennit's fill_fn; default 0, torch.zeros_like) */
  fill: z.number().optional(),
  /**
   * What the output relevance is: the one-hot target (Zennit with a tensor attr_output, the default), the one-hot
   * times the output, i.e. the target logit (Zennit with `lambda out: out * one_hot`), or that logit's absolute
   * value (zennit-crp's init_rel=abs). For Occlusion the window score is the sum of the output relevance, so
   * one-hot scores every window 1.
   */
  outputRelevance: z.enum(OUTPUT_RELEVANCES).optional(),
});
export type AttributorParams = z.infer<typeof AttributorParams>;

/**
 * One condition set of concept-conditional relevance (zennit-crp's condition dict): `y` lists the classes the
 * relevance starts from (default: the run's target), every other key a layer id and the channels whose relevance
 * passes on through it (`[]` passes none).
 */
export const ConditionSet = z.record(z.string().min(1), z.array(count));
export type ConditionSet = z.infer<typeof ConditionSet>;

/** Concept-conditional relevance (CRP): one result row per input row and condition set. */
export const Conditions = z.object({
  sets: z.array(ConditionSet).min(1).max(1024),
  /**
   * zennit-crp's exclude_parallel (default true): below a conditioned layer only the relevance that passed through
   * it flows on; relevance of branches parallel to it is dropped (and layers off that path store none)
   */
  excludeParallel: z.boolean().optional(),
  /** rows (input rows × condition sets) per relevance pass (default 16): fewer take less memory at once */
  batchSize: z.int().min(1).max(1024).optional(),
});
export type Conditions = z.infer<typeof Conditions>;

/** Everything one attribution needs besides the model and its input: the CLI and the server describe it alike. */
export const AttributionOptions = z.object({
  composite: z.enum(RUN_COMPOSITES).optional(),
  /** a composite file's content (protocol/composite-file.ts), instead of `composite` and `compositeParams` */
  customComposite: CompositeFile.optional(),
  compositeParams: CompositeParams.optional(),
  residual: z.enum(RESIDUAL_MODES).optional(),
  attributor: z.enum(ATTRIBUTOR_NAMES).optional(),
  attributorParams: AttributorParams.optional(),
  /** class per batch row (one for all rows); default: each row's predicted class */
  target: z.array(count).optional(),
  /**
   * the output relevance as weighted classes, every row alike, instead of the target's one-hot: Σ weight·one-hot
   * (times the output for `logit`, its absolute value for `abs`). The contrast "why A rather than B" is
   * [{class: A, weight: 1}, {class: B, weight: -1}].
   */
  classWeights: z
    .array(z.object({ class: count, weight: z.number() }))
    .min(1)
    .max(4096)
    .optional(),
  /** layer ids whose relevance the run stores (Zennit's store hooks) */
  store: z.array(z.string()).optional(),
  conditions: Conditions.optional(),
  /**
   * a layer id where the relevance starts instead of the output (zennit-crp's start_layer): its output relevance
   * is the layer's own value as `outputRelevance` says (one_hot: ones; logit: the value; abs: its absolute value),
   * masked as the conditions on that layer say — a hidden unit as the target
   */
  startLayer: z.string().min(1).optional(),
});
export type AttributionOptions = z.infer<typeof AttributionOptions>;

export const InputSpec = z.union([
  z.object({ path: z.string().min(1), preprocess: Preprocess.optional() }),
  z.object({ shape, data: base64 }),
]);
export type InputSpec = z.infer<typeof InputSpec>;

/** What the layers' rules are under a composite: a built-in one by name, or a composite file's content. */
export const RulesParams = AttributionOptions.pick({
  composite: true,
  compositeParams: true,
  customComposite: true,
  residual: true,
}).extend({ modelId: z.string() });
export type RulesParams = z.infer<typeof RulesParams>;

export const LayerRules = z.object({
  /** the composite's name as runs report it */
  composite: z.string(),
  /** by layer id: the rule (`Gamma (gamma=0.5)`, `gradient`) and whether the composite file set it */
  layers: z.record(z.string(), z.object({ rule: z.string(), set: z.boolean() })),
  /** name-map patterns of the file that match no layer, with where they are in it */
  unmatched: z.array(z.object({ pattern: z.string(), path: z.array(z.union([z.string(), count])) })),
});
export type LayerRules = z.infer<typeof LayerRules>;

/** How the run's relevance is drawn: per-channel maps of one batch row, downsampled. */
export const ViewOptions = z.object({
  row: count.optional(),
  /** how many top channels by |relevance| besides the channel sum */
  topChannels: z.int().min(0).max(64).optional(),
  /** neither side of a map exceeds this (block averages) */
  maxSize: z.int().min(1).max(4096).optional(),
});
export type ViewOptions = z.infer<typeof ViewOptions>;

export const RunParams = AttributionOptions.extend({
  modelId: z.string(),
  input: InputSpec,
  view: ViewOptions.optional(),
  /** how many predictions per row the result lists */
  topK: z.int().min(1).max(100).optional(),
  /** `$/progress` notifications go to this token */
  workDoneToken: z.union([z.string(), z.int()]).optional(),
  /**
   * keep this run's tensors for tensor/export, in place of the model's previous run (default true); false for a
   * run beside the one on show (conditional heatmaps of its channels)
   */
  keep: z.boolean().optional(),
});
export type RunParams = z.infer<typeof RunParams>;

/** A statistic of values that may not all be finite: JSON has no NaN or Infinity, so such a statistic is null. */
const stat = z.number().nullable();

/** A 2-D map of float32 values (base64, row-major) and its statistics. */
export const MapData = z
  .object({ height: count, width: count, min: stat, max: stat, sum: stat, data: base64 })
  .refine((m) => wireBytes(m.data) === m.height * m.width * 4, 'data does not hold height × width float32 values');
export type MapData = z.infer<typeof MapData>;

export const ChannelMap = z
  .object({
    channel: count,
    height: count,
    width: count,
    min: stat,
    max: stat,
    sum: stat,
    data: base64,
  })
  .refine((m) => wireBytes(m.data) === m.height * m.width * 4, 'data does not hold height × width float32 values');
export type ChannelMap = z.infer<typeof ChannelMap>;

/**
 * The relevance at one layer's output (or at the input, id ''), as the views draw it: one batch row (the view's),
 * `shape` the whole tensor's, the statistics the row's.
 */
export const LayerView = z.object({
  id: z.string(),
  op: z.string(),
  shape,
  sum: stat,
  min: stat,
  max: stat,
  /** channel-summed map */
  summed: MapData,
  /** top channels by summed |relevance| (none for dense layers) */
  channels: z.array(ChannelMap),
  /** how many channels the layer has (0: no channel axis); attribution/channels pages through them */
  channelCount: count,
});
export type LayerView = z.infer<typeof LayerView>;

/**
 * The input as an RGB (or gray) image to look at: 8-bit values (base64), min–max normalised to 0–255, HWC. A
 * quarter of float32's bytes: the panel only draws it.
 */
export const InputImage = z
  .object({ height: count, width: count, channels: z.union([z.literal(1), z.literal(3)]), data: base64 })
  .refine(
    (m) => wireBytes(m.data) === m.height * m.width * m.channels,
    'data does not hold height × width × channels bytes',
  );
export type InputImage = z.infer<typeof InputImage>;

export const Prediction = z.object({ class: count, logit: stat, probability: stat });
export type Prediction = z.infer<typeof Prediction>;

export const RunResult = z.object({
  /** names this run's tensors for tensor/export; unique across engine restarts */
  runId: z.string(),
  backend: z.string(),
  kernels: z.string(),
  composite: z.string(),
  attributor: z.string(),
  target: z.array(count),
  /** the run's class weights, when they made the output relevance (a contrast: [A: 1, B: −1]) */
  classWeights: AttributionOptions.shape.classWeights,
  timingMs: z.number(),
  /** the batch row the views show */
  row: count,
  /** per batch row */
  topK: z.array(z.array(Prediction)),
  input: InputImage,
  relevance: LayerView,
  /** the stored layers, in execution order */
  layers: z.array(LayerView),
  /** relevance sum of the input and of every layer in execution order (input first) */
  sums: z.array(z.object({ id: z.string(), op: z.string(), sum: stat })),
  /** non-finite values and where they first appear (input, weights, output, a layer); empty when all is finite */
  warnings: z.array(z.string()),
  /** a conditional run: the relevance at the input of every row (input row n under condition set k is n·K + k) */
  conditionRows: z.array(LayerView).optional(),
  /** the relevance sum at the input of every result row (a batch: they add up to the batch's total) */
  rowSums: z.array(stat),
});
export type RunResult = z.infer<typeof RunResult>;

/** Another row of a kept run (a batch's sample, a condition set), drawn as the run's own view was. */
export const ViewParams = z.object({ runId: z.string(), row: count });
export type ViewParams = z.infer<typeof ViewParams>;

/** A page of a kept run's layer channels (`layer` '' for the input) in an order, drawn as the run's view was. */
export const ChannelPageParams = z.object({
  runId: z.string(),
  layer: z.string(),
  row: count,
  order: z.enum(CHANNEL_ORDERS),
  offset: count,
  count: z.int().min(1).max(64),
});
export type ChannelPageParams = z.infer<typeof ChannelPageParams>;

export const ChannelPage = ChannelPageParams.omit({ runId: true, count: true }).extend({
  /** the layer's channel count */
  total: count,
  channels: z.array(ChannelMap),
});
export type ChannelPage = z.infer<typeof ChannelPage>;

// ---- data-set analysis ---------------------------------------------------------------------------------------

/**
 * zennit-crp's FeatureVisualization over a data set (a folder of class folders, or an .npz with x and y): each
 * sample attributed to its own label, each channel of `layers` ranked by relevance and activation, overall and per
 * class, with reference images; written to `out` (analysis.json, references/) as it goes, resumed from there.
 */
export const AnalysisParams = AttributionOptions.pick({
  composite: true,
  compositeParams: true,
  customComposite: true,
  residual: true,
}).extend({
  modelId: z.string(),
  data: z.string().min(1),
  preprocess: Preprocess.optional(),
  layers: z.array(z.string().min(1)).min(1).max(256),
  /** samples kept per channel, overall and per class (default 40, zennit-crp's) */
  top: z.int().min(1).max(1000).optional(),
  /** samples per relevance pass (default 16) */
  batch: z.int().min(1).max(1024).optional(),
  /** reference images per channel (default 8) */
  references: z.int().min(0).max(100).optional(),
  /** the folder analysis.json and references/ go to */
  out: z.string().min(1),
  workDoneToken: z.union([z.string(), z.int()]).optional(),
});
export type AnalysisParams = z.infer<typeof AnalysisParams>;

export const AnalysisResult = z.object({
  /** analysis.json */
  file: z.string(),
  samples: count,
  seconds: z.number(),
});
export type AnalysisResult = z.infer<typeof AnalysisResult>;

/** One tensor of a run as a file's bytes: a heatmap PNG (of the view's row) or the whole tensor as .npy. */
export const ExportParams = z.object({
  runId: z.string(),
  /** a stored layer's id, or '' for the relevance at the input */
  layer: z.string(),
  format: z.enum(EXPORT_FORMATS),
  colorMap: z.enum(COLOR_MAP_NAMES).optional(),
  scaling: z.enum(SCALINGS).optional(),
  /** PNG: scaled up by a whole factor until the longer side reaches this many pixels */
  minSide: z.int().min(1).max(4096).optional(),
  /** PNG: the batch row drawn (default: the run's own view's) */
  row: count.optional(),
});
export type ExportParams = z.infer<typeof ExportParams>;

export const ExportResult = z.object({ mimeType: z.string(), data: z.string() });
export type ExportResult = z.infer<typeof ExportResult>;

// ---- engine --------------------------------------------------------------------------------------------------

export const StatsResult = z.object({
  numTensors: count,
  numBytes: count,
  rssBytes: count,
  models: count,
  /** runs whose tensors are kept for tensor/export (the latest per model) */
  keptRuns: count,
});
export type StatsResult = z.infer<typeof StatsResult>;

export interface ProgressValue {
  percentage: number;
  message: string;
}
export interface LogMessage {
  level: 'info' | 'warn' | 'error';
  message: string;
}

export const Initialize = new RequestType<InitializeParams, InitializeResult, void>('initialize');
export const OpenModel = new RequestType<OpenModelParams, ModelInfo, void>('model/open');
export const CloseModel = new RequestType<ModelRef, void, void>('model/close');
/** answers when the model's weights, which load after model/open, are ready (CANCELLED when it closes first) */
export const ModelWeights = new RequestType<ModelRef, WeightsInfo, void>('model/weights');
export const ModelRules = new RequestType<RulesParams, LayerRules, void>('model/rules');
export const RunAttribution = new RequestType<RunParams, RunResult, void>('attribution/run');
export const RunAnalysis = new RequestType<AnalysisParams, AnalysisResult, void>('analysis/run');
export const ExportTensor = new RequestType<ExportParams, ExportResult, void>('tensor/export');
export const ViewRun = new RequestType<ViewParams, RunResult, void>('attribution/view');
export const PageChannels = new RequestType<ChannelPageParams, ChannelPage, void>('attribution/channels');
export const Stats = new RequestType0<StatsResult, void>('engine/stats');
export const Shutdown = new RequestType0<void, void>('shutdown');
export const Exit = new NotificationType<void>('exit');
/** `$/progress` with the run's workDoneToken, as LSP's work-done progress. */
export const Progress = new ProgressType<ProgressValue>();
/** Log lines for the client's output channel; every request is logged with its duration. */
export const Log = new NotificationType<LogMessage>('engine/log');
