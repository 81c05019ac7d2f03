/**
 * Checks of the webview rendering code, run inside Chromium (bundled by render.test.ts): colour maps, scaling,
 * canvas drawing, hover read-out, top-k, the conservation chart and message validation.
 */
import { colorize, palette, rankChannels, scaled } from '../../engine/src/shared/colormap';
import type { MapData } from '../../protocol/engine';
import { decodeFloats } from '../../protocol/floats';
import { HostMessage, type RunView, WebviewMessage } from '../../protocol/webview';
import { fmt } from '../../webview/src/format';
import {
  attachHover,
  colorBar,
  conservationChart,
  drawHeatmap,
  drawOverlay,
  featureBars,
  isVector,
  mapPixels,
  overlays,
  predictionList,
  valueAt,
  ZoomGroup,
} from '../../webview/src/render';

const isHostMessage = (m: unknown) => HostMessage.safeParse(m).success;
const isWebviewMessage = (m: unknown) => WebviewMessage.safeParse(m).success;

type Check = { name: string; fn: () => void | Promise<void> };
const checks: Check[] = [];
const check = (name: string, fn: Check['fn']) => checks.push({ name, fn });

function assert(cond: unknown, msg: string): asserts cond {
  if (!cond) throw new Error(msg);
}
const eq = (a: unknown, b: unknown, msg: string) =>
  assert(JSON.stringify(a) === JSON.stringify(b), `${msg}: ${JSON.stringify(a)} ≠ ${JSON.stringify(b)}`);

function b64(values: number[]): string {
  const bytes = new Uint8Array(Float32Array.from(values).buffer);
  return btoa(String.fromCharCode(...bytes));
}
function map(values: number[], height: number, width: number): MapData {
  return {
    height,
    width,
    min: Math.min(...values),
    max: Math.max(...values),
    sum: values.reduce((a, b) => a + b, 0),
    data: b64(values),
  };
}
const rgb = (px: Uint8ClampedArray, i: number) => [px[i * 4], px[i * 4 + 1], px[i * 4 + 2]];

check('base64 float32 round trip', () => {
  const v = [0, -1.5, 3.25, 1e-8, -7e5];
  eq([...decodeFloats(b64(v))], [...Float32Array.from(v)], 'decoded');
});

check("bwr palette matches Zennit's: blue, white at 0x80, red", () => {
  const p = palette('bwr');
  eq([p[0], p[1], p[2]], [0, 0, 255], 'index 0');
  eq([p[128 * 3], p[128 * 3 + 1], p[128 * 3 + 2]], [255, 255, 255], 'index 128');
  eq([p[255 * 3], p[255 * 3 + 1], p[255 * 3 + 2]], [255, 0, 0], 'index 255');
});

check('symmetric scaling puts zero mid-map and keeps the sign', () => {
  const px = mapPixels(map([-2, 0, 1], 1, 3), { colorMap: 'bwr', scaling: 'symmetric' });
  eq(rgb(px, 0), [0, 0, 255], '-max is blue');
  // as Zennit: index floor(0.5·255) = 127, one step below the white at 0x80
  eq(rgb(px, 1), [253, 253, 255], 'zero is (almost) white');
  assert(rgb(px, 2)[0] === 255 && rgb(px, 2)[2] < 255, `+half is light red: ${rgb(px, 2)}`);
});

check('absolute scaling maps |x| from 0 to max|x|', () => {
  const s = scaled([-4, 0, 2], 'absolute');
  eq([...(s.values as Float32Array)], [4, 0, 2], 'values');
  eq(s.bounds, { min: 0, max: 4 }, 'bounds');
  const px = mapPixels(map([-4, 0, 2], 1, 3), { colorMap: 'gray', scaling: 'absolute' });
  eq(rgb(px, 0), [255, 255, 255], '|-4| is the top of the map');
  eq(rgb(px, 1), [0, 0, 0], '0 is the bottom');
});

check('constant maps do not divide by zero', () => {
  const px = colorize([0, 0, 0, 0], 'gray', { min: 0, max: 0 });
  assert(
    px.every((v, i) => i % 4 === 3 || v === px[0]),
    'uniform',
  );
});

check('drawHeatmap paints one canvas pixel per value, with an aria label', () => {
  const m = map([-1, 0.5, 0, 1, -0.25, 0.75], 2, 3);
  const canvas = document.createElement('canvas');
  document.body.appendChild(canvas);
  drawHeatmap(canvas, m, { colorMap: 'coldnhot', scaling: 'symmetric' }, 'features.3 relevance');
  eq([canvas.width, canvas.height], [3, 2], 'canvas size');
  const drawn = canvas.getContext('2d')!.getImageData(0, 0, 3, 2).data;
  eq([...drawn], [...mapPixels(m, { colorMap: 'coldnhot', scaling: 'symmetric' })], 'pixels');
  assert(
    /features\.3 relevance: 2×3 heatmap, sum 1\.00/.test(canvas.getAttribute('aria-label')!),
    canvas.getAttribute('aria-label')!,
  );
  canvas.remove();
});

check('strips for dense layers', () => {
  const canvas = document.createElement('canvas');
  drawHeatmap(canvas, map([1, 2, 3, 4], 1, 4), { colorMap: 'bwr', scaling: 'symmetric' }, 'fc');
  assert(canvas.classList.contains('strip'), 'a 1-row map is a strip');
});

check('hover read-out finds the value under the pointer at any CSS size', () => {
  const m = map([1, 2, 3, 4, 5, 6], 2, 3);
  const canvas = document.createElement('canvas');
  canvas.style.cssText = 'position:absolute;left:10px;top:20px;width:300px;height:200px';
  document.body.appendChild(canvas);
  drawHeatmap(canvas, m, { colorMap: 'bwr', scaling: 'symmetric' }, 'm');
  eq(valueAt(canvas, m, 10 + 250, 20 + 150), { x: 2, y: 1, value: 6 }, 'bottom right');
  eq(valueAt(canvas, m, 10 + 5, 20 + 5), { x: 0, y: 0, value: 1 }, 'top left');
  eq(valueAt(canvas, m, 5, 5), undefined, 'outside');
  canvas.remove();
});

check('keyboard read-out: arrow keys move a cursor over the focused heatmap and say its value', () => {
  const m = map([1, 2, 3, 4, 5, 6], 2, 3);
  const canvas = document.createElement('canvas');
  const readout = document.createElement('div');
  attachHover(canvas, () => m, readout);
  const key = (k: string, shiftKey = false) => canvas.dispatchEvent(new KeyboardEvent('keydown', { key: k, shiftKey }));
  key('ArrowRight');
  eq(readout.textContent, '1.00 at (y 0, x 0)', 'the first key starts at the top left');
  key('ArrowRight');
  key('ArrowDown');
  eq(readout.textContent, '5.00 at (y 1, x 1)', 'moved right and down');
  key('ArrowRight', true);
  eq(readout.textContent, '6.00 at (y 1, x 2)', 'Shift moves 8, held at the edge');
  key('a');
  eq(readout.textContent, '6.00 at (y 1, x 2)', 'other keys leave it');
});

check('top-k channels by summed |relevance|, NCHW and NHWC alike', () => {
  // 1×3×1×2: channel sums of |x|: c0 = 1, c1 = 7, c2 = 3
  const nchw = [1, 0, -3, 4, 0, 3];
  eq(
    rankChannels([1, 3, 1, 2], nchw, 0, 'NCHW')
      .slice(0, 2)
      .map((c) => c.channel),
    [1, 2],
    'NCHW',
  );
  const nhwc = [1, -3, 0, 0, 4, 3];
  eq(
    rankChannels([1, 1, 2, 3], nhwc, 0, 'NHWC')
      .slice(0, 2)
      .map((c) => c.channel),
    [1, 2],
    'NHWC',
  );
});

const run = (): RunView => ({
  runId: 'run-1',
  model: 'model.onnx',
  backend: 'wasm',
  kernels: 'native (oneDNN 2.6.3, 2 threads)',
  composite: 'epsilon_plus_flat',
  attributor: 'gradient',
  target: [2],
  timingMs: 12,
  row: 0,
  classNames: ['circle', 'square', 'triangle', 'cross'],
  topK: [
    [
      { class: 2, logit: 8.4, probability: 0.998 },
      { class: 0, logit: 1.9, probability: 0.002 },
    ],
  ],
  input: { height: 1, width: 2, channels: 1, data: btoa(String.fromCharCode(0, 255)) },
  relevance: {
    id: '',
    op: 'input',
    shape: [1, 1, 1, 2],
    sum: 1,
    min: 0,
    max: 1,
    summed: map([0, 1], 1, 2),
    channels: [],
    channelCount: 1,
  },
  layers: [],
  warnings: [],
  rowSums: [1],
  sums: [
    { id: '', op: 'input', sum: 1 },
    { id: 'fc', op: 'Gemm', sum: -0.5 },
    { id: 'out', op: 'Gemm', sum: 2 },
  ],
});

check('predictions list names classes and marks the target, in words too; the others explain their class', () => {
  const explained: number[] = [];
  const ol = predictionList(run(), (c) => explained.push(c));
  const items = [...ol.querySelectorAll('li')];
  eq(
    items.map((li) => li.textContent),
    ['triangle (class 2) — 99.8 % (logit 8.40) · explained', 'circle (class 0) — 0.2 % (logit 1.90)'],
    'items',
  );
  assert(items[0].classList.contains('target') && !items[1].classList.contains('target'), 'target marked');
  assert(!items[0].querySelector('button'), 'the explained class is no button');
  items[1].querySelector('button')!.click();
  eq(explained, [0], 'a click explains its class');
  assert(!predictionList(run()).querySelector('button'), 'no buttons without an action');
});

check('colour bar: the colour map from the lowest to the highest value shown, with the values at the ends', () => {
  const m = map([-0.5, 0.25, 2], 1, 3);
  const sym = colorBar(m, { colorMap: 'bwr', scaling: 'symmetric' });
  eq(
    [...sym.querySelectorAll('.colorbar-labels span')].map((s) => s.textContent),
    ['-2.00', '0', '2.00'],
    'symmetric',
  );
  const ramp = sym.querySelector('canvas')!;
  eq([ramp.width, ramp.height], [256, 1], 'ramp size');
  const px = ramp.getContext('2d')!.getImageData(0, 0, 256, 1).data;
  eq(
    [rgb(px as unknown as Uint8ClampedArray, 0), rgb(px as unknown as Uint8ClampedArray, 255)],
    [
      [0, 0, 255],
      [255, 0, 0],
    ],
    'blue to red',
  );
  const abs = colorBar(m, { colorMap: 'bwr', scaling: 'absolute' });
  eq(
    [...abs.querySelectorAll('.colorbar-labels span')].map((s) => s.textContent),
    ['0', '2.00'],
    'absolute',
  );
  assert(/from 0 to 2\.00 \(absolute\)/.test(abs.getAttribute('aria-label')!), abs.getAttribute('aria-label')!);
});

check('feature bars: a bar per feature with its index and name, the sign in its side; the largest of many', () => {
  const fig = featureBars(map([0.5, -1, 0.25], 1, 3), 'relevance per input feature', ['age', 'income']);
  const rows = [...fig.querySelectorAll('g')];
  eq(
    rows.map((g) => g.querySelector('text')!.textContent),
    ['0 age', '1 income', '2'],
    'labels',
  );
  eq(
    rows.map((g) => g.querySelector('rect')!.getAttribute('class')),
    ['bar', 'bar negative', 'bar'],
    'sign',
  );
  const widths = rows.map((g) => Number(g.querySelector('rect')!.getAttribute('width')));
  assert(widths[1] === 2 * widths[0] && widths[0] === 2 * widths[2], `widths ${widths}`);
  const many = featureBars(
    map(
      Array.from({ length: 50 }, (_, i) => (i === 7 ? -9 : i / 100)),
      1,
      50,
    ),
    'x',
    undefined,
    5,
  );
  const shown = [...many.querySelectorAll('g')].map((g) => Number(g.getAttribute('data-feature')));
  eq(shown, [7, 46, 47, 48, 49], 'the 5 largest |values|, in index order');
  eq(many.querySelector('.note')!.textContent, 'the 5 largest of 50', 'note');
  assert(isVector({ shape: [1, 6] }) && !isVector({ shape: [1, 1, 1, 6] }), 'a vector is [N, F]');
});

check('zoom: the group’s canvases scale and pan together, never off their frame; reset and keys', () => {
  const zoom = new ZoomGroup();
  const [a, b] = [document.createElement('canvas'), document.createElement('canvas')];
  for (const c of [a, b]) {
    c.style.width = c.style.height = '100px';
    document.body.appendChild(zoom.frame(c));
  }
  zoom.zoomAt(2, 100, 100);
  eq(
    [a.style.transform, b.style.transform],
    Array(2).fill('translate(-100px, -100px) scale(2)'),
    'zoomed at the corner',
  );
  zoom.zoomAt(0.5, 0, 0);
  eq(a.style.transform, 'translate(0px, 0px) scale(1)', 'never smaller than the frame');
  a.dispatchEvent(new KeyboardEvent('keydown', { key: '+' }));
  assert(/scale\(1\.25\)/.test(b.style.transform), `+ zooms: ${b.style.transform}`);
  a.dispatchEvent(new KeyboardEvent('keydown', { key: '0' }));
  eq(b.style.transform, 'translate(0px, 0px) scale(1)', '0 resets');
  for (const c of [a, b]) c.parentElement!.remove();
});

check('overlay: the input at opacity 0, the heatmap at 1, a blend between', () => {
  const r = run();
  const canvas = document.createElement('canvas');
  const pixels = (opacity: number) => {
    drawOverlay(canvas, r.input, r.relevance.summed, { colorMap: 'bwr', scaling: 'symmetric' }, opacity);
    const d = canvas.getContext('2d')!.getImageData(0, 0, 2, 1).data as unknown as Uint8ClampedArray;
    return [rgb(d, 0), rgb(d, 1)];
  };
  eq(
    pixels(0),
    [
      [0, 0, 0],
      [255, 255, 255],
    ],
    'the input (0 black, 1 white)',
  );
  const heat = mapPixels(r.relevance.summed, { colorMap: 'bwr', scaling: 'symmetric' });
  eq(pixels(1), [rgb(heat, 0), rgb(heat, 1)], 'the heatmap');
  eq(
    pixels(0.5)[1],
    rgb(heat, 1).map((v) => Math.round((255 + v) / 2)),
    'half and half',
  );
  assert(overlays(r.input, r.relevance.summed) && !overlays(r.input, map([1], 1, 1)), 'same size only');
});

check('conservation chart: output at the top, bars proportional, negative sums marked', () => {
  const svg = conservationChart(run().sums);
  eq(svg.querySelector('.names')!.textContent!.split('\n'), ['out', 'fc', 'input'], 'order');
  eq(svg.querySelector('.sums')!.textContent!.split('\n'), ['2.00', '-0.500', '1.00'], 'a sum per line');
  const bars = [...svg.querySelectorAll('rect')];
  eq(
    bars.map((b) => Number(b.getAttribute('width'))),
    [220, 55, 110],
    'widths',
  );
  assert(bars[1].classList.contains('negative'), 'negative bar');
  assert(/fc -0\.500/.test(svg.getAttribute('aria-label')!), 'aria label');
});

check('sums that are not finite (null on the wire) pass validation, get no bar and read "not finite"', () => {
  const settings = { colorMap: 'bwr', scaling: 'symmetric' };
  const nan = {
    ...run(),
    sums: [
      { id: '', op: 'input', sum: null },
      { id: 'fc', op: 'Gemm', sum: 2 },
    ],
    warnings: ['x'],
  };
  assert(isHostMessage({ type: 'run', run: nan, settings }), 'a run with a non-finite sum is valid');
  const svg = conservationChart(nan.sums);
  assert(/input not finite/.test(svg.getAttribute('aria-label')!), svg.getAttribute('aria-label')!);
  eq(Number(svg.querySelectorAll('rect')[1].getAttribute('width')), 1, 'the non-finite sum has no bar');
});

check('fmt', () =>
  eq([fmt(0), fmt(1.23456), fmt(-0.0001234), fmt(123456)], ['0', '1.23', '-1.23e-4', '1.23e+5'], 'formats'),
);

check('messages: valid ones pass, malformed ones are rejected', () => {
  const settings = { colorMap: 'bwr', scaling: 'symmetric' };
  assert(isHostMessage({ type: 'run', run: run(), settings }), 'valid run');
  assert(!isHostMessage({ type: 'run', run: { ...run(), target: [-1] }, settings }), 'negative target');
  assert(
    !isHostMessage({ type: 'run', run: run(), settings: { colorMap: 'toString', scaling: 'symmetric' } }),
    'a prototype key is no colour map',
  );
  assert(
    !isHostMessage({ type: 'run', run: run(), settings: { colorMap: 'nope', scaling: 'symmetric' } }),
    'unknown colour map',
  );
  const bad = run();
  bad.relevance.summed = { ...bad.relevance.summed, data: b64([1, 2, 3]) };
  assert(!isHostMessage({ type: 'run', run: bad, settings }), 'data length ≠ height·width');
  assert(
    !isHostMessage({ type: 'run', run: { ...run(), input: { ...run().input, data: '<script>' } }, settings }),
    'not base64',
  );
  assert(!isHostMessage({ type: 'eval', code: '1' }), 'unknown type');
  assert(!isHostMessage(null) && !isHostMessage('run'), 'not an object');
  assert(isWebviewMessage({ type: 'export', layer: 'features.3', format: 'png', settings }), 'valid export');
  assert(!isWebviewMessage({ type: 'export', layer: 'features.3', format: 'exe', settings }), 'bad format');
});

(window as unknown as { sampleRun: () => RunView }).sampleRun = run;
(window as unknown as { runSuite: () => Promise<{ name: string; error?: string }[]> }).runSuite = async () => {
  const results: { name: string; error?: string }[] = [];
  for (const c of checks) {
    try {
      await c.fn();
      results.push({ name: c.name });
    } catch (e) {
      results.push({ name: c.name, error: (e as Error).message });
    }
  }
  return results;
};
