/**
 * Heatmap rendering shared by the Relevance panel and the Layer Relevance view: decoding the maps the extension
 * sends, colouring them with Zennit's colour maps (engine/src/shared/colormap.ts), hover read-outs, the
 * conservation chart and the top-k list. DOM only; no VS Code API here.
 */
import { colorize, heatmapRgba, scaled } from '../../engine/src/shared/colormap';
import type { InputImage, LayerView, MapData } from '../../protocol/engine';
import { decodeBytes, decodeFloats } from '../../protocol/floats';
import type { ReferenceView, RunView, ViewSettings } from '../../protocol/webview';
import { fmt, viewedTarget } from './format';

/** Decoded values of a map, cached on the map object so re-renders (new colour map) do not decode again. */
const decoded = new WeakMap<MapData, Float32Array>();
export function mapValues(map: MapData): Float32Array {
  let v = decoded.get(map);
  if (!v) decoded.set(map, (v = decodeFloats(map.data)));
  return v;
}

/**
 * RGBA pixels of a map under the view settings, kept with the map for the last settings: a run's heatmap and its
 * overlay colour the same map. Not to be changed (copy them).
 */
const coloured = new WeakMap<MapData, { key: string; rgba: Uint8ClampedArray }>();
export function mapPixels(map: MapData, settings: ViewSettings): Uint8ClampedArray {
  const key = `${settings.colorMap}/${settings.scaling}`;
  let c = coloured.get(map);
  if (c?.key !== key)
    coloured.set(map, (c = { key, rgba: heatmapRgba(mapValues(map), settings.colorMap, settings.scaling) }));
  return c.rgba;
}

function paint(canvas: HTMLCanvasElement, width: number, height: number, rgba: Uint8ClampedArray) {
  canvas.width = width;
  canvas.height = height;
  const ctx = canvas.getContext('2d')!;
  const img = ctx.createImageData(width, height);
  img.data.set(rgba);
  ctx.putImageData(img, 0, 0);
}

/** Draws a heatmap into a canvas (one canvas pixel per value; CSS scales it up, pixelated). */
export function drawHeatmap(canvas: HTMLCanvasElement, map: MapData, settings: ViewSettings, label: string): void {
  paint(canvas, map.width, map.height, mapPixels(map, settings));
  // dense layers are one row of values: draw them as a strip, not a stretched square
  canvas.classList.toggle('strip', map.height === 1);
  canvas.setAttribute('role', 'img');
  canvas.setAttribute(
    'aria-label',
    `${label}: ${map.height}×${map.width} heatmap, sum ${fmt(map.sum)}, min ${fmt(map.min)}, max ${fmt(map.max)}`,
  );
}

/**
 * RGBA pixels of the input image (8-bit values), kept with the image: the panel holds one image across the runs of
 * an input. Not to be changed (copy them).
 */
const inputRgba = new WeakMap<InputImage, Uint8ClampedArray>();
function inputPixels(input: InputImage): Uint8ClampedArray {
  let rgba = inputRgba.get(input);
  if (!rgba) inputRgba.set(input, (rgba = decodeInput(input)));
  return rgba;
}

function decodeInput(input: InputImage): Uint8ClampedArray {
  const v = decodeBytes(input.data);
  const n = input.height * input.width;
  const rgba = new Uint8ClampedArray(n * 4);
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < 3; c++) rgba[i * 4 + c] = v[input.channels === 3 ? i * 3 + c : i];
    rgba[i * 4 + 3] = 255;
  }
  return rgba;
}

/** Draws the input image. */
export function drawInput(canvas: HTMLCanvasElement, input: InputImage): void {
  paint(canvas, input.width, input.height, inputPixels(input));
  canvas.setAttribute('role', 'img');
  canvas.setAttribute('aria-label', `input image, ${input.height}×${input.width}`);
}

/** The heatmap can lie over the input when both have the same size (maps larger than the view are shrunk). */
export const overlays = (input: InputImage, map: MapData) => input.width === map.width && input.height === map.height;

/** Draws the heatmap over the input, `opacity` (0–1) of the heatmap's colour in each pixel. */
export function drawOverlay(
  canvas: HTMLCanvasElement,
  input: InputImage,
  map: MapData,
  settings: ViewSettings,
  opacity: number,
): void {
  const base = inputPixels(input).slice();
  const heat = mapPixels(map, settings);
  for (let i = 0; i < base.length; i += 4)
    for (let c = 0; c < 3; c++) base[i + c] = Math.round((1 - opacity) * base[i + c] + opacity * heat[i + c]);
  paint(canvas, input.width, input.height, base);
  canvas.setAttribute('role', 'img');
  canvas.setAttribute('aria-label', `relevance over the input, heatmap opacity ${Math.round(100 * opacity)} %`);
}

/**
 * The colour bar of a heatmap: its colour map from the lowest to the highest value the scaling shows, with the
 * values at both ends (and 0 in the middle when the scaling keeps the sign).
 */
export function colorBar(map: MapData, settings: ViewSettings): HTMLElement {
  const { bounds } = scaled(mapValues(map), settings.scaling);
  const steps = 256;
  const ramp = Float32Array.from(
    { length: steps },
    (_, i) => bounds.min + ((bounds.max - bounds.min) * i) / (steps - 1),
  );
  const canvas = el('canvas', { class: 'colorbar-ramp' });
  paint(canvas, steps, 1, colorize(ramp, settings.colorMap, bounds));
  const labels = el(
    'div',
    { class: 'colorbar-labels' },
    el('span', {}, fmt(bounds.min)),
    ...(settings.scaling === 'symmetric' ? [el('span', {}, '0')] : []),
    el('span', {}, fmt(bounds.max)),
  );
  return el(
    'div',
    {
      class: 'colorbar',
      role: 'img',
      'aria-label': `colour bar: ${settings.colorMap}, from ${fmt(bounds.min)} to ${fmt(bounds.max)} (${settings.scaling})`,
    },
    canvas,
    labels,
  );
}

/** Value under a mouse position over a canvas drawn from `map` (whatever its CSS size). */
export function valueAt(
  canvas: HTMLCanvasElement,
  map: MapData,
  clientX: number,
  clientY: number,
): { x: number; y: number; value: number } | undefined {
  const r = canvas.getBoundingClientRect();
  if (r.width === 0 || r.height === 0) return undefined;
  const x = Math.floor(((clientX - r.left) / r.width) * map.width);
  const y = Math.floor(((clientY - r.top) / r.height) * map.height);
  if (x < 0 || y < 0 || x >= map.width || y >= map.height) return undefined;
  return { x, y, value: mapValues(map)[y * map.width + x] };
}

/** Shows "value at (y, x)" in `readout` while the pointer is over the canvas. */
export function attachHover(canvas: HTMLCanvasElement, map: () => MapData | undefined, readout: HTMLElement): void {
  const say = (at: { x: number; y: number; value: number } | undefined) =>
    (readout.textContent = at ? `${fmt(at.value)} at (y ${at.y}, x ${at.x})` : '');
  canvas.addEventListener('mousemove', (e) => {
    const m = map();
    say(m && valueAt(canvas, m, e.clientX, e.clientY));
  });
  canvas.addEventListener('mouseleave', () => say(undefined));
  // the keyboard's way: arrow keys move a cursor over the focused heatmap (Shift: 8 at a time), the read-out is a
  // live region, so a screen reader says each value
  let cursor: { x: number; y: number } | undefined;
  canvas.addEventListener('keydown', (e) => {
    const m = map();
    const step = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] }[e.key];
    if (!m || !step) return;
    e.preventDefault();
    const k = e.shiftKey ? 8 : 1;
    const clamp = (v: number, n: number) => Math.min(n - 1, Math.max(0, v));
    cursor = cursor
      ? { x: clamp(cursor.x + step[0] * k, m.width), y: clamp(cursor.y + step[1] * k, m.height) }
      : { x: 0, y: 0 };
    say({ ...cursor, value: mapValues(m)[cursor.y * m.width + cursor.x] });
  });
  canvas.addEventListener('blur', () => say(undefined));
}

/** An SVG element with its attributes (and text), appended to `parent` when given. */
function svgEl<K extends keyof SVGElementTagNameMap>(
  tag: K,
  attrs: Record<string, string | number>,
  parent?: Element,
  text?: string,
): SVGElementTagNameMap[K] {
  const e = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  parent?.appendChild(e);
  return e;
}

/** A chart's row: its label (right-aligned before `x`) and its value text at `valueX`, baseline-aligned in the row. */
function rowTexts(
  parent: Element,
  y: number,
  rowH: number,
  label: [x: number, s: string],
  value: [x: number, s: string],
) {
  const baseline = y + rowH * 0.7;
  svgEl('text', { x: label[0], y: baseline, 'text-anchor': 'end' }, parent, label[1]);
  svgEl('text', { x: value[0], y: baseline, 'text-anchor': 'start' }, parent, value[1]);
}

/**
 * Horizontal bars of the relevance sum per layer, output at the top and input at the bottom (conservation). The
 * layers' names and their sums are a text block each, a line per row, beside an SVG of the bars: as an SVG text per
 * name and sum, ResNet50's 165 rows took about 5 ms to build and 13 ms to lay out whenever a run was drawn.
 */
export function conservationChart(sums: RunView['sums']): HTMLElement {
  const rows = [...sums].reverse();
  const rowH = 18;
  const barW = 220;
  // a sum that is not finite (null) gets no bar, and says so
  const size = (sum: number | null) => (sum === null ? 0 : Math.abs(sum));
  const max = Math.max(1e-12, ...rows.map((r) => size(r.sum)));
  const bars = svgEl('svg', { width: barW, height: rows.length * rowH, class: 'bars' });
  rows.forEach((r, i) =>
    svgEl(
      'rect',
      {
        x: 0,
        y: i * rowH + 3,
        width: Math.max(1, (size(r.sum) / max) * barW),
        height: rowH - 6,
        class: r.sum !== null && r.sum < 0 ? 'bar negative' : 'bar',
      },
      bars,
    ),
  );
  return el(
    'div',
    {
      class: 'conservation',
      role: 'img',
      'aria-label': `relevance sum per layer, from output to input: ${rows.map((r) => `${r.id || 'input'} ${fmt(r.sum)}`).join(', ')}`,
    },
    el('div', { class: 'names' }, rows.map((r) => r.id || 'input').join('\n')),
    bars,
    el('div', { class: 'sums' }, rows.map((r) => fmt(r.sum)).join('\n')),
  );
}

/** A layer's relevance is a vector per sample ([N, F]: a tabular input, a dense layer): bars, not a strip. */
export const isVector = (layer: Pick<LayerView, 'shape'>) => layer.shape.length === 2;

/**
 * A vector's values as bars from a zero axis, a row per feature with its index and name (from features.json). With
 * more than `max` features, the `max` largest |values|, in index order.
 */
export function featureBars(map: MapData, label: string, names?: readonly string[], max = 40): HTMLElement {
  const all = Array.from(mapValues(map), (value, index) => ({ index, value }));
  const shown =
    all.length <= max
      ? all
      : [...all]
          .sort((a, b) => Math.abs(b.value) - Math.abs(a.value))
          .slice(0, max)
          .sort((a, b) => a.index - b.index);
  const rowH = 16;
  const labelW = 150;
  const half = 110;
  const top = Math.max(1e-12, ...shown.map((r) => Math.abs(r.value)));
  const axis = labelW + half;
  const height = shown.length * rowH + 4;
  const named = (i: number) => `${i}${names?.[i] ? ` ${names[i]}` : ''}`;
  const svg = svgEl('svg', {
    width: axis + half + 70,
    height,
    role: 'img',
    'aria-label': `${label}: ${shown.map((r) => `${named(r.index)} ${fmt(r.value)}`).join(', ')}`,
    class: 'feature-bars',
  });
  shown.forEach((r, k) => {
    const y = k * rowH + 2;
    const g = svgEl('g', { 'data-feature': r.index }, svg);
    const w = (Math.abs(r.value) / top) * half;
    rowTexts(g, y, rowH, [labelW - 6, named(r.index)], [axis + half + 6, fmt(r.value)]);
    svgEl(
      'rect',
      {
        x: r.value < 0 ? axis - w : axis,
        y: y + 2,
        width: Math.max(1, w),
        height: rowH - 4,
        class: r.value < 0 ? 'bar negative' : 'bar',
      },
      g,
    );
  });
  svgEl('line', { x1: axis, x2: axis, y1: 0, y2: height, class: 'axis' }, svg);
  const note =
    all.length > shown.length ? [el('div', { class: 'note' }, `the ${shown.length} largest of ${all.length}`)] : [];
  return el('div', { class: 'feature-bars-figure' }, svg, ...note);
}

/**
 * The top-k predictions as a list ("triangle (class 2) 97.1 %"), the attributed target marked in words too. With
 * `explain`, each is a button that explains that class.
 */
export function predictionList(run: RunView, explain?: (c: number) => void): HTMLOListElement {
  const ol = document.createElement('ol');
  ol.className = 'predictions';
  const target = viewedTarget(run);
  for (const p of run.topK[run.row] ?? []) {
    const li = document.createElement('li');
    const name = run.classNames?.[p.class];
    const label = name ? `${name} (class ${p.class})` : `class ${p.class}`;
    const percent = p.probability === null ? 'not finite' : `${(100 * p.probability).toFixed(1)} %`;
    const text = `${label} — ${percent} (logit ${fmt(p.logit)})${p.class === target ? ' · explained' : ''}`;
    if (explain && p.class !== target) {
      const b = el('button', { class: 'prediction', title: `Explain ${label}: run again with it as the target` }, text);
      b.addEventListener('click', () => explain(p.class));
      li.appendChild(b);
    } else li.textContent = text;
    if (p.class === target) li.classList.add('target');
    ol.appendChild(li);
  }
  return ol;
}

export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string> = {},
  ...children: (Node | string)[]
): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  e.append(...children);
  return e;
}

/** A reference image of a channel: the sample's crop beside its heatmap, captioned with the sample when asked. */
export function referenceFigure(r: ReferenceView, channel: number, caption: boolean): HTMLElement {
  return el(
    'figure',
    { class: 'reference', 'data-sample': String(r.sample) },
    el('img', { src: r.image, alt: `sample ${r.sample} (${r.label}), the part channel ${channel} looks at` }),
    el('img', { src: r.heatmap, alt: `its relevance for channel ${channel}` }),
    ...(caption ? [el('figcaption', {}, `${r.sample} · ${r.label}`)] : []),
  );
}

/**
 * Zoom and pan shared by a set of canvases (the input, its heatmap and the overlay move together): Ctrl or ⌘ with
 * the mouse wheel zooms at the pointer, dragging pans, a double-click resets; +, − and 0 on a focused canvas do the
 * same from the keyboard. Each canvas sits in a frame that clips it; read-outs keep working, as they map the
 * pointer through the canvas's transformed box.
 */
export class ZoomGroup {
  private scale = 1;
  private x = 0;
  private y = 0;
  private readonly canvases: HTMLCanvasElement[] = [];

  /** The canvas in a clipping frame, joined to the group. */
  frame(canvas: HTMLCanvasElement): HTMLElement {
    this.canvases.push(canvas);
    canvas.style.transformOrigin = '0 0';
    const frame = el('div', { class: 'zoom-frame' }, canvas);
    frame.addEventListener(
      'wheel',
      (e) => {
        if (!e.ctrlKey && !e.metaKey) return;
        e.preventDefault();
        const r = frame.getBoundingClientRect();
        this.zoomAt(e.deltaY < 0 ? 1.25 : 0.8, e.clientX - r.left, e.clientY - r.top);
      },
      { passive: false },
    );
    let drag: { x: number; y: number } | undefined;
    // the release may come anywhere; listened for per drag, so that redrawn frames leave no listener behind
    frame.addEventListener('mousedown', (e) => {
      drag = { x: e.clientX, y: e.clientY };
      window.addEventListener('mouseup', () => (drag = undefined), { once: true });
    });
    frame.addEventListener('mousemove', (e) => {
      if (!drag || this.scale === 1) return;
      this.moveBy(e.clientX - drag.x, e.clientY - drag.y);
      drag = { x: e.clientX, y: e.clientY };
    });
    frame.addEventListener('dblclick', () => this.reset());
    canvas.addEventListener('keydown', (e) => {
      const w = frame.clientWidth / 2;
      const h = frame.clientHeight / 2;
      if (e.key === '+' || e.key === '=') this.zoomAt(1.25, w, h);
      else if (e.key === '-') this.zoomAt(0.8, w, h);
      else if (e.key === '0') this.reset();
    });
    return frame;
  }

  /** Zooms by `factor` keeping the point (px, py) of the frame where it is. */
  zoomAt(factor: number, px: number, py: number): void {
    const scale = Math.min(16, Math.max(1, this.scale * factor));
    const k = scale / this.scale;
    this.x = px - (px - this.x) * k;
    this.y = py - (py - this.y) * k;
    this.scale = scale;
    this.moveBy(0, 0);
  }

  private moveBy(dx: number, dy: number): void {
    // the canvas keeps covering its frame
    const w = this.canvases[0]?.clientWidth ?? 0;
    const h = this.canvases[0]?.clientHeight ?? 0;
    this.x = Math.min(0, Math.max(w - w * this.scale, this.x + dx));
    this.y = Math.min(0, Math.max(h - h * this.scale, this.y + dy));
    for (const c of this.canvases) c.style.transform = `translate(${this.x}px, ${this.y}px) scale(${this.scale})`;
  }

  reset(): void {
    this.scale = 1;
    this.x = this.y = 0;
    this.moveBy(0, 0);
  }
}
