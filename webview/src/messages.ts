/**
 * Messages between the extension host and its webviews (the Relevance panel and the Layer Relevance view), with
 * validators: each side checks every message it receives before acting on it. Dependency-free (runs in both).
 */
import type { ChannelMap } from '../../engine/src/server/protocol';
import { COLOR_MAPS, SCALINGS, type Scaling } from '../../engine/src/shared/colormap';

/** A 2-D map of float32 values (base64 little-endian, row-major), as the engine's channel view sends them. */
export type MapData = Omit<ChannelMap, 'channel'>;
export type ChannelCard = ChannelMap;

export interface LayerView {
  id: string;
  op: string;
  shape: number[];
  sum: number;
  min: number;
  max: number;
  /** channel-summed map */
  summed: MapData;
  /** top channels by summed |relevance| (none for dense layers) */
  channels: ChannelCard[];
}

export interface RunView {
  runId: string;
  model: string;
  backend: string;
  /** what ran the heavy kernels: "native (oneDNN …)" or the backend, with the reason */
  kernels: string;
  composite: string;
  attributor: string;
  target: number;
  timingMs: number;
  classNames?: string[];
  topK: { class: number; logit: number; probability: number }[];
  /** the input as an RGB (or gray) image, values normalised to [0, 1] */
  input: { height: number; width: number; channels: number; data: string };
  relevance: LayerView;
  layers: LayerView[];
  /** relevance sum of every layer in execution order (input first) */
  sums: { id: string; op: string; sum: number }[];
}

export interface ViewSettings {
  colorMap: string;
  scaling: Scaling;
}

export type ExportFormat = 'png' | 'npy';

/** The tree's selected layer as the Layer Relevance view shows it. */
export interface SelectedLayer {
  id: string;
  op: string;
  shape: number[];
  hooked: boolean;
  /**
   * `${runId}/${id}` when the latest run has this layer's relevance. The data comes with the first message for a
   * key only; the view keeps what it was sent, so re-selecting a layer sends no tensor again.
   */
  key?: string;
}

/** extension → webview */
export type HostMessage =
  | { type: 'run'; run: RunView; settings: ViewSettings }
  | { type: 'settings'; settings: ViewSettings }
  | { type: 'clear'; reason: string }
  | { type: 'layer'; layer: SelectedLayer; data?: LayerView; settings: ViewSettings };

/** webview → extension. `layer` is a layer id, or '' for the relevance at the input. */
export type WebviewMessage =
  | { type: 'ready' }
  | { type: 'settings'; settings: ViewSettings }
  | { type: 'export'; layer: string; format: ExportFormat; settings: ViewSettings }
  | { type: 'attachAndRun'; layer: string }
  | { type: 'run' };

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const isInt = (v: unknown): v is number => Number.isInteger(v) && (v as number) >= 0;
const isStr = (v: unknown): v is string => typeof v === 'string';
const isB64 = (v: unknown): v is string => isStr(v) && /^[A-Za-z0-9+/]*={0,2}$/.test(v);

export function isViewSettings(v: unknown): v is ViewSettings {
  return isObject(v) && isStr(v.colorMap) && v.colorMap in COLOR_MAPS && SCALINGS.includes(v.scaling as Scaling);
}

function isMap(v: unknown): v is MapData {
  return (
    isObject(v) &&
    isInt(v.height) &&
    isInt(v.width) &&
    isNum(v.min) &&
    isNum(v.max) &&
    isNum(v.sum) &&
    isB64(v.data) &&
    // base64 of height·width float32 values
    Math.floor((v.data.length * 3) / 4) - (v.data.match(/=*$/)![0].length) === v.height * v.width * 4
  );
}

/** what every layer message names: its id, op and shape */
function isLayerIdentity(v: unknown): v is { id: string; op: string; shape: number[] } & Record<string, unknown> {
  return isObject(v) && isStr(v.id) && isStr(v.op) && Array.isArray(v.shape) && v.shape.every(isInt);
}

function isLayer(v: unknown): v is LayerView {
  return (
    isLayerIdentity(v) &&
    isNum(v.sum) &&
    isNum(v.min) &&
    isNum(v.max) &&
    isMap(v.summed) &&
    Array.isArray(v.channels) &&
    v.channels.every((c) => isMap(c) && isInt((c as ChannelCard).channel))
  );
}

export function isRunView(v: unknown): v is RunView {
  if (!isObject(v)) return false;
  const input = v.input as Record<string, unknown>;
  return (
    ['runId', 'model', 'backend', 'kernels', 'composite', 'attributor'].every((k) => isStr(v[k])) &&
    isInt(v.target) &&
    isNum(v.timingMs) &&
    (v.classNames === undefined || (Array.isArray(v.classNames) && v.classNames.every(isStr))) &&
    Array.isArray(v.topK) &&
    v.topK.every((p) => isObject(p) && isInt(p.class) && isNum(p.logit) && isNum(p.probability)) &&
    isObject(input) &&
    isInt(input.height) &&
    isInt(input.width) &&
    (input.channels === 1 || input.channels === 3) &&
    isB64(input.data) &&
    isLayer(v.relevance) &&
    Array.isArray(v.layers) &&
    v.layers.every(isLayer) &&
    Array.isArray(v.sums) &&
    v.sums.every((s) => isObject(s) && isStr(s.id) && isStr(s.op) && isNum(s.sum))
  );
}

export function isHostMessage(m: unknown): m is HostMessage {
  if (!isObject(m)) return false;
  switch (m.type) {
    case 'run':
      return isRunView(m.run) && isViewSettings(m.settings);
    case 'settings':
      return isViewSettings(m.settings);
    case 'clear':
      return isStr(m.reason);
    case 'layer': {
      const l = m.layer as Record<string, unknown>;
      return (
        isLayerIdentity(l) &&
        typeof l.hooked === 'boolean' &&
        (l.key === undefined || isStr(l.key)) &&
        (m.data === undefined || (l.key !== undefined && isLayer(m.data))) &&
        isViewSettings(m.settings)
      );
    }
    default:
      return false;
  }
}

export function isWebviewMessage(m: unknown): m is WebviewMessage {
  if (!isObject(m)) return false;
  switch (m.type) {
    case 'ready':
      return true;
    case 'settings':
      return isViewSettings(m.settings);
    case 'export':
      return isStr(m.layer) && (m.format === 'png' || m.format === 'npy') && isViewSettings(m.settings);
    case 'attachAndRun':
      return isStr(m.layer);
    case 'run':
      return true;
    default:
      return false;
  }
}
