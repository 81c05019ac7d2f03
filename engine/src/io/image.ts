import { FILE_LIMITS, readRegularFile } from './files';
import { checkInputValues, MAX_IMAGE_PIXELS } from '../limits';
import * as jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import { EngineError, fail } from '../errors';
import { imageGeometry, imageShape, type Layout, type NdArray } from '../ndarray';
import type { Preprocess } from '../../../protocol/engine';
import { channelSum, heatmapRgba, type Scaling } from '../shared/colormap';

export type { Preprocess };

interface Rgba {
  width: number;
  height: number;
  data: Uint8Array;
}

async function decode(path: string): Promise<Rgba> {
  const buf = await readRegularFile(path, FILE_LIMITS.image);
  try {
    if (buf.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))) {
      // the IHDR chunk's width and height, before a 1 MB file decodes to gigabytes
      const pixels = buf.length >= 24 ? buf.readUInt32BE(16) * buf.readUInt32BE(20) : 0;
      if (pixels > MAX_IMAGE_PIXELS)
        fail(
          'BAD_INPUT',
          `${path}: a PNG of ${pixels.toLocaleString('en-US')} pixels, more than ${MAX_IMAGE_PIXELS / 1e6} megapixels`,
        );
      const png = PNG.sync.read(buf);
      return { width: png.width, height: png.height, data: png.data };
    }
    if (buf[0] === 0xff && buf[1] === 0xd8) {
      const img = jpeg.decode(buf, { useTArray: true, formatAsRGBA: true, maxResolutionInMP: MAX_IMAGE_PIXELS / 1e6 });
      return { width: img.width, height: img.height, data: img.data };
    }
  } catch (e) {
    if (e instanceof EngineError) throw e;
    throw new EngineError('BAD_INPUT', `${path}: corrupt image (${(e as Error).message})`);
  }
  return fail('BAD_INPUT', `${path}: not a PNG or JPEG image`);
}

/** Bilinear sample of channel c at a continuous position (half-pixel centres, edges clamped). */
function sample(img: Rgba, y: number, x: number, c: number): number {
  const fy = Math.min(Math.max(y, 0), img.height - 1);
  const fx = Math.min(Math.max(x, 0), img.width - 1);
  const y0 = Math.floor(fy);
  const x0 = Math.floor(fx);
  const y1 = Math.min(y0 + 1, img.height - 1);
  const x1 = Math.min(x0 + 1, img.width - 1);
  const ty = fy - y0;
  const tx = fx - x0;
  const at = (yy: number, xx: number) => img.data[(yy * img.width + xx) * 4 + c];
  return (at(y0, x0) * (1 - tx) + at(y0, x1) * tx) * (1 - ty) + (at(y1, x0) * (1 - tx) + at(y1, x1) * tx) * ty;
}

/**
 * Reads a PNG/JPEG as a one-image batch in the model's layout: resized bilinearly to `size`, scaled to [0, 1],
 * then (x − mean) / std per channel. ImageNet statistics are the usual choice for torchvision models.
 */
export async function readImage(
  path: string,
  layout: Layout,
  p: Preprocess & { size: [number, number]; channels: number },
): Promise<NdArray> {
  checkInputValues([1, p.channels, p.size[0], p.size[1]], `${path} resized to ${p.size[0]}×${p.size[1]}`);
  const img = await decode(path);
  const [h, w] = p.size;
  const ch = p.channels;
  if (ch !== 1 && ch !== 3) fail('BAD_INPUT', `${path}: the model expects ${ch} channels; images give 1 or 3`);
  const mean = p.mean ?? new Array(ch).fill(0);
  const std = p.std ?? new Array(ch).fill(1);
  if (mean.length !== ch || std.length !== ch) fail('BAD_ARGUMENT', `mean and std need ${ch} values each`);
  const shape = imageShape(layout, ch, h, w);
  const { offset } = imageGeometry(shape, layout);
  const data = new Float32Array(ch * h * w);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const sy = ((y + 0.5) * img.height) / h - 0.5;
      const sx = ((x + 0.5) * img.width) / w - 0.5;
      const rgb = [0, 1, 2].map((c) => sample(img, sy, sx, c) / 255);
      for (let c = 0; c < ch; c++) {
        const v = ch === 1 ? (rgb[0] + rgb[1] + rgb[2]) / 3 : rgb[c];
        data[offset(c, y, x)] = (v - mean[c]) / std[c];
      }
    }
  }
  return { shape, data };
}

/** Encodes RGBA pixels as PNG. */
export function encodePng(width: number, height: number, rgba: Uint8ClampedArray | Uint8Array, scale = 1): Buffer {
  const png = new PNG({ width: width * scale, height: height * scale });
  for (let y = 0; y < height * scale; y++) {
    for (let x = 0; x < width * scale; x++) {
      const src = (Math.floor(y / scale) * width + Math.floor(x / scale)) * 4;
      const dst = (y * width * scale + x) * 4;
      for (let c = 0; c < 4; c++) png.data[dst + c] = rgba[src + c];
    }
  }
  return PNG.sync.write(png);
}

/** Zennit-style heatmap of one batch row: channels summed, symmetric bounds (by default), a colour map. */
export function heatmapPng(
  t: NdArray,
  row: number,
  layout: Layout,
  cmap: string,
  scale = 1,
  scaling: Scaling = 'symmetric',
): Buffer {
  const { height, width, values } = channelSum(t.shape, t.data, row, layout);
  const rgba = heatmapRgba(values, cmap, scaling);
  if (height > 1) return encodePng(width, height, rgba, scale);
  // a dense layer's one row: drawn as a strip an eighth as tall as it is wide, not a line one pixel high
  const rows = Math.max(1, Math.round(width / 8));
  const strip = new Uint8ClampedArray(rgba.length * rows);
  for (let r = 0; r < rows; r++) strip.set(rgba, r * rgba.length);
  return encodePng(width, rows, strip, scale);
}
