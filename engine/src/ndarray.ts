/** A float32 tensor's values outside TF.js: shape and row-major data (what files, the protocol and tests hold). */
export interface NdArray {
  shape: number[];
  data: Float32Array;
}

export function size(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Where an image-like tensor keeps its channels: before the spatial axes (PyTorch's NCHW) or after (TF.js's NHWC). */
export type Layout = 'NCHW' | 'NHWC';

/**
 * One batch row of an image-like tensor: its size, and where channel c at (y, x) lies within the row:
 * c·channelStride + (y·width + x)·pixelStride (`offset`; the loops over many values use the strides).
 */
export interface ImageGeometry {
  height: number;
  width: number;
  channels: number;
  channelStride: number;
  pixelStride: number;
  offset(c: number, y: number, x: number): number;
}

function geometry(height: number, width: number, channels: number, channelStride: number, pixelStride: number) {
  const offset = (c: number, y: number, x: number) => c * channelStride + (y * width + x) * pixelStride;
  return { height, width, channels, channelStride, pixelStride, offset };
}

/**
 * The geometry of a [N, C, H, W] or [N, H, W, C] tensor in `layout` (the one place that reads the two layouts).
 * Others have one channel: [N, A, B] (tokens × features) is an A × B map, any other shape one row of its values.
 */
export function imageGeometry(shape: readonly number[], layout: Layout): ImageGeometry {
  if (shape.length === 3) return geometry(shape[1], shape[2], 1, 0, 1);
  if (shape.length !== 4) return geometry(1, size(shape.slice(1)), 1, 0, 1);
  const [, a, b, c] = shape;
  return layout === 'NCHW' ? geometry(b, c, a, b * c, 1) : geometry(a, b, c, 1, c);
}

/** The shape of one image of `channels` × `height` × `width` in `layout`. */
export function imageShape(layout: Layout, channels: number, height: number, width: number): number[] {
  return layout === 'NCHW' ? [1, channels, height, width] : [1, height, width, channels];
}

/** The given rows of `a`, in that order (a row may repeat). */
export function pickRows(a: NdArray, rows: readonly number[]): NdArray {
  const per = size(a.shape.slice(1));
  const data = new Float32Array(rows.length * per);
  rows.forEach((r, k) => data.set(a.data.subarray(r * per, (r + 1) * per), k * per));
  return { shape: [rows.length, ...a.shape.slice(1)], data };
}

/** Arrays of the same row shape joined along the batch axis. */
export function joinRows(arrays: readonly NdArray[]): NdArray {
  const data = new Float32Array(arrays.reduce((n, a) => n + a.data.length, 0));
  let at = 0;
  for (const a of arrays) {
    data.set(a.data, at);
    at += a.data.length;
  }
  return { shape: [arrays.reduce((n, a) => n + a.shape[0], 0), ...arrays[0].shape.slice(1)], data };
}
