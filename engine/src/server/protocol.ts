/**
 * The Relevance Lens engine protocol: JSON-RPC 2.0 over stdio (vscode-jsonrpc), shared by the engine server and
 * the extension's client so both sides use the same names and types.
 */
import { NotificationType, ProgressType, RequestType, RequestType0 } from 'vscode-jsonrpc';
import type { AttributorName, AttributorParams } from '../attributors';
import type { CompositeParams } from '../composites';
import type { LayerTreeItem } from '../graph';
import type { Preprocess } from '../image';

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

export interface InitializeParams {
  /** tensorflow, wasm or cpu; default: the first that loads */
  backend?: string;
}
export interface InitializeResult {
  backend: string;
  /** what runs the heavy kernels: the native addon (oneDNN) or the backend itself, and why */
  kernels: string;
  versions: { engine: string; tfjs: string; node: string };
  capabilities: {
    composites: { name: string; description: string; params: string[] }[];
    rules: { name: string; params: string[] }[];
    attributors: string[];
    colorMaps: string[];
  };
}

export interface OpenModelParams {
  path: string;
}
export interface ModelInfo {
  modelId: string;
  source: string;
  format: 'onnx' | 'tfjs';
  layout: 'NCHW' | 'NHWC';
  inputShape: number[];
  tree: LayerTreeItem[];
}

export interface ModelRef {
  modelId: string;
}
export interface HookParams extends ModelRef {
  ids: string[];
}
export interface HookList {
  hooks: string[];
}

/** A tensor kept by the server after a run; fetch its values with `tensor/get`. */
export interface TensorRef {
  tensorId: string;
  shape: number[];
  min: number;
  max: number;
  sum: number;
}

export type InputSpec = { path: string; preprocess?: Preprocess } | { shape: number[]; data: string /* base64 float32 LE */ };

export interface RunParams extends ModelRef {
  input: InputSpec;
  composite?: string;
  compositeParams?: CompositeParams;
  /** residual adds as Zennit's Sum modules (`norm`, default) or plain additions (`gradient`) */
  residual?: 'norm' | 'gradient';
  attributor?: AttributorName;
  attributorParams?: AttributorParams;
  target?: number[];
  topK?: number;
  storeActivations?: boolean;
}
export interface Prediction {
  class: number;
  logit: number;
  probability: number;
}
export interface RunResult {
  runId: string;
  backend: string;
  kernels: string;
  composite: string;
  attributor: string;
  target: number[];
  timingMs: number;
  input: TensorRef;
  output: TensorRef;
  /** per batch row */
  topK: Prediction[][];
  relevance: TensorRef;
  layers: { id: string; node: string; relevance: TensorRef; activation?: TensorRef }[];
  sums: { id: string; node: string; op: string; shape: number[]; sum: number }[];
}

export interface TensorParams {
  tensorId: string;
  /** full values, or per-channel maps of one batch row (channel-summed first), downsampled to maxSize */
  view?: 'full' | 'channels';
  row?: number;
  /** channels view: how many top channels by |relevance| besides the sum */
  topK?: number;
  maxSize?: number;
}
export interface TensorData {
  shape: number[];
  /** base64 of float32 little-endian values */
  data: string;
}
export interface ChannelMap {
  /** -1 for the channel sum */
  channel: number;
  height: number;
  width: number;
  min: number;
  max: number;
  sum: number;
  data: string;
}
export interface ChannelView {
  shape: number[];
  maps: ChannelMap[];
}

export interface StatsResult {
  numTensors: number;
  numBytes: number;
  rssBytes: number;
  models: number;
  keptTensors: number;
}

export interface ProgressValue {
  percentage: number;
  message: string;
}

export const Initialize = new RequestType<InitializeParams, InitializeResult, void>('initialize');
export const OpenModel = new RequestType<OpenModelParams, ModelInfo, void>('model/open');
export const CloseModel = new RequestType<ModelRef, void, void>('model/close');
export const AttachHooks = new RequestType<HookParams, HookList, void>('hooks/attach');
export const DetachHooks = new RequestType<HookParams, HookList, void>('hooks/detach');
export const ListHooks = new RequestType<ModelRef, HookList, void>('hooks/list');
export const RunAttribution = new RequestType<RunParams & { workDoneToken?: string }, RunResult, void>('attribution/run');
export const GetTensor = new RequestType<TensorParams, TensorData | ChannelView, void>('tensor/get');
export const Stats = new RequestType0<StatsResult, void>('engine/stats');
export const Shutdown = new RequestType0<void, void>('shutdown');
export const Exit = new NotificationType<void>('exit');
/** `$/progress` with the run's workDoneToken, as LSP's work-done progress. */
export const Progress = new ProgressType<ProgressValue>();
/** Log lines for the client's output channel. */
export const Log = new NotificationType<{ level: 'info' | 'warn' | 'error'; message: string }>('engine/log');

export function encodeFloats(data: Float32Array): string {
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('base64');
}
export function decodeFloats(b64: string): Float32Array {
  const buf = Buffer.from(b64, 'base64');
  const out = new Float32Array(buf.length / 4);
  Buffer.from(out.buffer).set(buf);
  return out;
}
