/** Heatmaps as PNG data URIs for Markdown tooltips, drawn by the same colour-map code as the webviews. */
import { encodePng } from '../../engine/src/image';
import { decodeFloats } from '../../engine/src/server/protocol';
import { heatmapRgba } from '../../engine/src/shared/colormap';
import type { MapData, ViewSettings } from '../../webview/src/messages';

/** Scales the map up by a whole factor to about `side` pixels on its longer edge. */
export function heatmapDataUri(map: MapData, settings: ViewSettings, side = 128): string {
  const scale = Math.max(1, Math.floor(side / Math.max(map.width, map.height)));
  // a dense layer's 1-row strip gets some height
  const rows = map.height === 1 ? 12 : 1;
  const rgba = heatmapRgba(decodeFloats(map.data), settings.colorMap, settings.scaling);
  const tall = new Uint8ClampedArray(rgba.length * rows);
  for (let r = 0; r < rows; r++) tall.set(rgba, r * rgba.length);
  const png = encodePng(map.width, map.height * rows, tall, scale);
  return `data:image/png;base64,${png.toString('base64')}`;
}
