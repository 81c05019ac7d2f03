/**
 * Zennit's colour maps and heatmap normalisation, dependency-free so the CLI and the webviews share one module.
 * A map is written in Zennit's colour-map source: comma-separated hex colours (`rgb` or `rrggbb`), each optionally
 * prefixed by its palette index in hex (`80:fff`); unplaced colours are spread evenly between placed ones.
 */
import { type ChannelOrder, type ColorMapName, SCALINGS, type Scaling } from '../../../protocol/names';
import { imageGeometry, type Layout } from '../ndarray';

export const COLOR_MAPS: Record<ColorMapName, string> = {
  gray: '000,fff',
  wred: 'fff,f00',
  wblue: 'fff,00f',
  hot: '000,f00,ff0,fff',
  cold: '000,00f,0ff',
  coldnhot: '0ff,00f,80:000,f00,ff0,fff',
  bwr: '00f,80:fff,f00',
  france: '0055a4,80:fff,ef4135',
  seismic: '0000d0,80:d0d0d0,d00000',
  coolio: '00d0d0,80:d0d0d0,d000d0',
  coleus: '00d000,80:d0d0d0,d000d0',
};

export type Rgb = [number, number, number];

function parseColor(hex: string): Rgb {
  const h = hex.length === 3 ? [...hex].map((c) => c + c).join('') : hex;
  if (!/^[0-9a-fA-F]{6}$/.test(h)) throw new Error(`bad colour "${hex}" in colour map`);
  return [0, 2, 4].map((i) => parseInt(h.slice(i, i + 2), 16)) as Rgb;
}

/** 256-entry palette (flat RGB bytes) from a colour-map name or source. */
export function palette(nameOrSource: string): Uint8Array {
  // own keys only: a name like `toString` is a (bad) source, not Object.prototype's function
  const source = Object.hasOwn(COLOR_MAPS, nameOrSource) ? COLOR_MAPS[nameOrSource as ColorMapName] : nameOrSource;
  const nodes = source.split(',').map((tok) => {
    const [pos, col] = tok.includes(':') ? tok.split(':') : [undefined, tok];
    return { pos: pos === undefined ? undefined : parseInt(pos, 16), color: parseColor(col.trim()) };
  });
  if (nodes.length < 2) throw new Error(`colour map "${nameOrSource}" needs at least two colours`);
  nodes[0].pos ??= 0;
  nodes[nodes.length - 1].pos ??= 255;
  for (let i = 1; i < nodes.length - 1; i++) {
    if (nodes[i].pos !== undefined) continue;
    let j = i;
    while (nodes[j].pos === undefined) j++;
    const a = nodes[i - 1].pos!;
    const steps = j - i + 1;
    // Zennit places them at whole indices (truncating)
    for (let k = i; k < j; k++) nodes[k].pos = Math.trunc(a + ((nodes[j].pos! - a) * (k - i + 1)) / steps);
  }
  const out = new Uint8Array(256 * 3);
  for (let v = 0; v < 256; v++) {
    let k = 0;
    while (k < nodes.length - 2 && v > nodes[k + 1].pos!) k++;
    const [a, b] = [nodes[k], nodes[k + 1]];
    const t = b.pos! === a.pos! ? 0 : Math.min(1, Math.max(0, (v - a.pos!) / (b.pos! - a.pos!)));
    // Zennit truncates the interpolated channel values (after rounding away float noise)
    for (let c = 0; c < 3; c++)
      out[v * 3 + c] = Math.trunc(Math.round((a.color[c] + t * (b.color[c] - a.color[c])) * 1e9) / 1e9);
  }
  return out;
}

export interface Bounds {
  min: number;
  max: number;
}

/** Zennit's interval bounds: symmetric maps ±max|x| (0 lands mid-map), otherwise [min, max]. */
export function bounds(values: ArrayLike<number>, symmetric: boolean): Bounds {
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < values.length; i++) {
    lo = Math.min(lo, values[i]);
    hi = Math.max(hi, values[i]);
  }
  if (!Number.isFinite(lo)) return { min: 0, max: 0 };
  if (symmetric) {
    const m = Math.max(Math.abs(lo), Math.abs(hi));
    return { min: -m, max: m };
  }
  return { min: lo, max: hi };
}

/** Palette index of a value as Zennit's imgify computes it: (x − vmin)/(vmax − vmin)·255, clipped, truncated. */
export function paletteIndex(v: number, b: Bounds): number {
  const span = b.max - b.min;
  const t = span > 0 ? (v - b.min) / span : 0.5;
  return Math.min(255, Math.max(0, Math.floor(t * 255)));
}

/** Colours a row-major 2-D map into RGBA pixels. */
export function colorize(values: ArrayLike<number>, map: string, b: Bounds): Uint8ClampedArray {
  const pal = palette(map);
  const out = new Uint8ClampedArray(values.length * 4);
  for (let i = 0; i < values.length; i++) {
    const k = paletteIndex(values[i], b) * 3;
    out[i * 4] = pal[k];
    out[i * 4 + 1] = pal[k + 1];
    out[i * 4 + 2] = pal[k + 2];
    out[i * 4 + 3] = 255;
  }
  return out;
}

/**
 * Sums one batch row of a tensor over its channel axis into a map: [N, C, H, W] or [N, H, W, C] by `layout`;
 * 2-D [N, F] tensors become a 1 × F strip. Returns height, width and the row's values.
 */
export function channelSum(
  shape: readonly number[],
  data: ArrayLike<number>,
  row: number,
  layout: Layout,
): { height: number; width: number; values: Float32Array } {
  const g = imageGeometry(shape, layout);
  const { height: h, width: w } = g;
  const values = new Float32Array(h * w);
  const { channelStride: cs, pixelStride: ps } = g;
  const base = row * g.channels * h * w;
  for (let k = 0; k < g.channels; k++) {
    const o = base + k * cs;
    for (let p = 0; p < h * w; p++) values[p] += data[o + p * ps];
  }
  return { height: h, width: w, values };
}

export interface ChannelStat {
  channel: number;
  sum: number;
  abs: number;
}

/** Every channel of one batch row with its relevance sum and summed |relevance|, in `order` (ties by index). */
export function rankChannels(
  shape: readonly number[],
  data: ArrayLike<number>,
  row: number,
  layout: Layout,
  order: ChannelOrder = 'abs',
): ChannelStat[] {
  if (shape.length !== 4) return [];
  const g = imageGeometry(shape, layout);
  const base = row * g.channels * g.height * g.width;
  const stats = Array.from({ length: g.channels }, (_, channel) => ({ channel, sum: 0, abs: 0 }));
  const { channelStride: cs, pixelStride: ps } = g;
  for (const s of stats) {
    const o = base + s.channel * cs;
    let sum = 0;
    let abs = 0;
    for (let p = 0; p < g.height * g.width; p++) {
      const v = data[o + p * ps];
      sum += v;
      abs += Math.abs(v);
    }
    s.sum = sum;
    s.abs = abs;
  }
  const key: (s: ChannelStat) => number = {
    abs: (s: ChannelStat) => -s.abs,
    positive: (s: ChannelStat) => -s.sum,
    negative: (s: ChannelStat) => s.sum,
    index: () => 0,
  }[order];
  return stats.sort((x, y) => key(x) - key(y) || x.channel - y.channel);
}

/** How a heatmap maps values to colours: symmetric keeps the sign (0 mid-map); absolute shows |x| from 0 to max. */
export { SCALINGS, type Scaling };

/** The values a heatmap shows under a scaling, with their colour bounds. */
export function scaled(values: ArrayLike<number>, scaling: Scaling): { values: ArrayLike<number>; bounds: Bounds } {
  if (scaling === 'symmetric') return { values, bounds: bounds(values, true) };
  const abs = Float32Array.from(values as ArrayLike<number>, Math.abs);
  return { values: abs, bounds: { min: 0, max: bounds(abs, false).max } };
}

/** RGBA pixels of a 2-D map under a colour map and scaling: the one heatmap renderer of CLI, panel and views. */
export function heatmapRgba(values: ArrayLike<number>, map: string, scaling: Scaling): Uint8ClampedArray {
  const s = scaled(values, scaling);
  return colorize(s.values, map, s.bounds);
}
