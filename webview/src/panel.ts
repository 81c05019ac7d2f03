/**
 * The Relevance panel: the input beside its relevance heatmap, the top-k predictions, the conservation chart and
 * one card per hooked layer (channel-summed heatmap and the top channels). Every message is validated first.
 */
import {
  provideVSCodeDesignSystem,
  vsCodeButton,
  vsCodeDivider,
  vsCodeDropdown,
  vsCodeOption,
  vsCodeRadio,
  vsCodeRadioGroup,
} from '@vscode/webview-ui-toolkit';
import type { ChannelPage, InputImage, LayerView, MapData } from '../../protocol/engine';
import {
  type ChannelOrder,
  COLOR_MAP_NAMES,
  type ColorMapName,
  type ExportFormat,
  SCALINGS,
} from '../../protocol/names';
import type { ChannelExplanation, HostMessage, RunSummary, RunView, ViewSettings } from '../../protocol/webview';
import { fmt, targetText } from './format';
import { connectHost } from './host';
import {
  attachHover,
  colorBar,
  conservationChart,
  drawHeatmap,
  drawInput,
  drawOverlay,
  el,
  featureBars,
  isVector,
  overlays,
  predictionList,
  ZoomGroup,
} from './render';

provideVSCodeDesignSystem().register(
  vsCodeButton(),
  vsCodeDropdown(),
  vsCodeOption(),
  vsCodeRadioGroup(),
  vsCodeRadio(),
  vsCodeDivider(),
);

const vscode = connectHost('relevance panel', onHostMessage);

let run: RunView | undefined;
/** the input image of the last run message (the host sends a run's image only when it differs from this) */
let heldInput: InputImage | undefined;
let settings: ViewSettings = { colorMap: 'bwr', scaling: 'symmetric' };
/** canvases to repaint when the colour map or scaling changes */
let heatmaps: { canvas: HTMLCanvasElement; map: MapData; label: string }[] = [];
/** the heatmap's share of each pixel over the input (the overlay's slider); kept across runs */
let opacity = 0.5;
/** how the run on show differs from what the next run uses (empty: current) */
let stale: string[] = [];
/** redraws the overlay (new colour map or scaling) */
let overlayRedraw: (() => void) | undefined;
/** the run's explained channels: layer id → channel (and whether as the target) → its heatmap at the input */
let explained = new Map<string, Map<string, ChannelExplanation>>();
/** the model's runs, the latest last, and the earlier one the run on show is compared with (the host's choice) */
let history: RunSummary[] = [];
let compared: RunView | undefined;
/** the page of each layer's channels on show, when not the run's first (the top ones by |relevance|) */
let pages = new Map<string, ChannelPage>();
const explanationKey = (ch: ChannelExplanation) => `${ch.channel}${ch.asTarget ? ' as target' : ''}`;

const root = document.getElementById('root')!;

function controls(): HTMLElement {
  const cmap = el('vscode-dropdown' as 'div', { id: 'color-map', 'aria-label': 'Colour map' });
  for (const name of COLOR_MAP_NAMES) {
    const opt = el('vscode-option' as 'option', { value: name }, name);
    if (name === settings.colorMap) opt.setAttribute('selected', '');
    cmap.appendChild(opt);
  }
  cmap.addEventListener('change', () =>
    update({ ...settings, colorMap: (cmap as unknown as { value: ColorMapName }).value }),
  );
  const scaling = el(
    'vscode-radio-group' as 'div',
    { id: 'scaling', 'aria-label': 'Scaling' },
    el('label', { slot: 'label' }, 'Scaling'),
  );
  for (const s of SCALINGS) {
    const radio = el('vscode-radio' as 'input', { value: s }, s);
    if (s === settings.scaling) radio.setAttribute('checked', '');
    scaling.appendChild(radio);
  }
  scaling.addEventListener('change', () => {
    const value = (scaling as unknown as { value: string }).value;
    if (SCALINGS.includes(value as ViewSettings['scaling']))
      update({ ...settings, scaling: value as ViewSettings['scaling'] });
  });
  return el('div', { class: 'controls' }, el('label', { for: 'color-map' }, 'Colour map'), cmap, scaling);
}

function exportButtons(layer: string, label: string): HTMLElement {
  const button = (format: ExportFormat, text: string) => {
    const b = el(
      'vscode-button' as 'button',
      { appearance: 'secondary', 'aria-label': `Export ${label} as ${text}`, 'data-export': `${layer}|${format}` },
      text,
    );
    b.addEventListener('click', () => vscode.postMessage({ type: 'export', layer, format, settings }));
    return b;
  };
  return el('div', { class: 'exports' }, button('png', 'PNG'), button('npy', '.npy'));
}

function heatmapCanvas(
  map: MapData,
  label: string,
  cls = 'heatmap',
): { canvas: HTMLCanvasElement; readout: HTMLElement } {
  const canvas = el('canvas', { class: cls, tabindex: '0', 'data-label': label });
  const readout = el('div', { class: 'readout', 'aria-live': 'polite' });
  heatmaps.push({ canvas, map, label });
  drawHeatmap(canvas, map, settings, label);
  attachHover(canvas, () => map, readout);
  return { canvas, readout };
}

function layerCard(layer: LayerView, title: string): HTMLElement {
  const summed = heatmapCanvas(layer.summed, `${title} relevance`);
  const stats = el(
    'div',
    { class: 'stats' },
    `shape [${layer.shape.join(', ')}] · sum ${fmt(layer.sum)} · min ${fmt(layer.min)} · max ${fmt(layer.max)}`,
  );
  const page = pages.get(layer.id);
  const shown = page?.channels ?? layer.channels;
  const grid = el('div', {
    class: 'channels',
    role: 'list',
    'aria-label': `channels of ${title}, ${ORDER_TEXT[page?.order ?? 'abs']}`,
  });
  for (const ch of shown) {
    const c = heatmapCanvas(ch, `${title} channel ${ch.channel}`, 'channel');
    const tile = el(
      'figure',
      {
        role: 'listitem',
        class: 'channel-tile',
        'data-channel': String(ch.channel),
        title: `What is channel ${ch.channel} relevant for? Click to see its heatmap at the input`,
      },
      c.canvas,
      el('figcaption', {}, `#${ch.channel} Σ ${fmt(ch.sum)}`),
    );
    const explain = () => vscode.postMessage({ type: 'explainChannels', layer: layer.id, channels: [ch.channel] });
    tile.addEventListener('click', explain);
    c.canvas.addEventListener('keydown', (e) => e.key === 'Enter' && explain());
    grid.appendChild(tile);
  }
  return el(
    'section',
    { class: 'card', 'data-layer': layer.id, 'aria-label': `${title}` },
    el('h3', {}, title, el('span', { class: 'op' }, ` ${layer.op}`)),
    stats,
    el('div', { class: 'summed' }, summed.canvas),
    ...(isVector(layer) ? [featureBars(layer.summed, `${title} relevance per unit`, undefined, 16)] : []),
    summed.readout,
    ...(layer.channels.length ? [channelPager(layer, title), grid] : []),
    ...(layer.channelCount ? [] : [el('div', { class: 'note' }, 'no channel axis (dense layer)')]),
    explainedStrip(layer),
    exportButtons(layer.id, title),
  );
}

const ORDER_TEXT: Record<ChannelOrder, string> = {
  abs: 'largest |relevance| first',
  positive: 'most positive relevance first',
  negative: 'most negative relevance first',
  index: 'by channel index',
};

/** Which of the layer's channels are on show (k–m of n), their order, and the previous and next pages. */
function channelPager(layer: LayerView, title: string): HTMLElement {
  const page = pages.get(layer.id);
  const order = page?.order ?? 'abs';
  const offset = page?.offset ?? 0;
  const size = layer.channels.length;
  const shown = page?.channels.length ?? size;
  const go = (next: number, nextOrder: ChannelOrder) =>
    vscode.postMessage({ type: 'channelPage', layer: layer.id, offset: next, order: nextOrder });
  const select = el('select', { class: 'channel-order', 'aria-label': `Order the channels of ${title}` });
  for (const [value, text] of Object.entries(ORDER_TEXT)) {
    const opt = el('option', { value }, text);
    if (value === order) opt.setAttribute('selected', '');
    select.appendChild(opt);
  }
  select.addEventListener('change', () => go(0, select.value as ChannelOrder));
  const button = (text: string, label: string, to: number, enabled: boolean) => {
    const b = el('vscode-button' as 'button', { appearance: 'secondary', 'aria-label': label }, text);
    if (enabled) b.addEventListener('click', () => go(to, order));
    else b.setAttribute('disabled', '');
    return b;
  };
  return el(
    'div',
    { class: 'pager' },
    el(
      'span',
      { class: 'range', 'aria-live': 'polite' },
      `channels ${offset + 1}–${offset + shown} of ${layer.channelCount}`,
    ),
    select,
    button('‹', `Previous channels of ${title}`, Math.max(0, offset - size), offset > 0),
    button('›', `Next channels of ${title}`, offset + size, offset + size < layer.channelCount),
  );
}

/** The layer's explained channels side by side: each one's heatmap at the input, and its share of the layer. */
function explainedStrip(layer: LayerView): HTMLElement {
  const strip = el('div', {
    class: 'explained',
    role: 'list',
    'aria-label': `what channels of ${layer.id} are relevant for at the input`,
  });
  const channels = [...(explained.get(layer.id)?.values() ?? [])];
  if (!channels.length) return strip;
  strip.appendChild(el('h4', {}, 'What these channels see (relevance at the input through the channel alone)'));
  for (const ch of channels) {
    const label = `${layer.id} channel ${ch.channel}${ch.asTarget ? ' as the target' : ''} at the input`;
    const c = heatmapCanvas(ch.input.summed, label, 'conditional');
    const share = ch.layerSum !== null && layer.sum ? ` · ${fmt((100 * ch.layerSum) / layer.sum)}% of the layer` : '';
    const caption = ch.asTarget
      ? `#${ch.channel} as the target (its activation) · Σ at the input ${fmt(ch.input.sum)}`
      : `#${ch.channel} · Σ at the input ${fmt(ch.input.sum)} · Σ in the layer ${fmt(ch.layerSum)}${share}`;
    const close = el(
      'vscode-button' as 'button',
      { appearance: 'icon', 'aria-label': `Remove channel ${ch.channel}` },
      '×',
    );
    close.addEventListener('click', () => {
      explained.get(layer.id)?.delete(explanationKey(ch));
      const card = `section.card[data-layer="${CSS.escape(layer.id)}"]`;
      render(`${card} .explained vscode-button`, `${card} canvas.heatmap`);
    });
    strip.appendChild(
      el(
        'figure',
        {
          role: 'listitem',
          class: 'explained-channel',
          'data-channel': String(ch.channel),
          'data-as-target': String(ch.asTarget),
        },
        c.canvas,
        el('figcaption', {}, caption),
        c.readout,
        close,
      ),
    );
  }
  return strip;
}

/**
 * What identifies a focused control across a redraw (the new one is another element): its tag and the first of
 * id, data-label, aria-label or title it has.
 */
function focusKey(e: Element): string | undefined {
  for (const a of ['id', 'data-label', 'aria-label', 'title']) {
    const v = e.getAttribute(a);
    if (v) return `${e.tagName.toLowerCase()}[${a}="${CSS.escape(v)}"]`;
  }
  return undefined;
}

/**
 * Replaces part of the panel (`redraw`) without dropping the keyboard focus to the document: the control that had it
 * gets it back, or else the first of `fallbacks` there is. The focus is only moved when it was in the panel.
 */
function keepingFocus(redraw: () => void, ...fallbacks: string[]): void {
  const active = document.activeElement;
  const had = !!active && root.contains(active);
  const key = had ? focusKey(active) : undefined;
  redraw();
  if (!had || root.contains(document.activeElement)) return;
  const usable = (e: HTMLElement) => !e.hasAttribute('disabled') && !e.closest('[hidden]');
  for (const selector of [key, ...fallbacks]) {
    const next = selector && [...root.querySelectorAll<HTMLElement>(selector)].find(usable);
    if (next) return next.focus();
  }
}

function render(...focusFallbacks: string[]): void {
  keepingFocus(draw, ...focusFallbacks);
  // the toolkit's dropdown keeps its open list in its shadow DOM, unnamed
  requestAnimationFrame(() =>
    root
      .querySelector('#color-map')
      ?.shadowRoot?.querySelector('[role="listbox"]')
      ?.setAttribute('aria-label', 'Colour maps'),
  );
}

function draw(): void {
  heatmaps = [];
  overlayRedraw = undefined;
  root.replaceChildren();
  if (!run) return;
  root.dataset.runId = run.runId;
  const native = run.kernels.startsWith('native') ? ' · native kernels' : '';
  const ran = `${run.backend} backend${native} · ${Math.round(run.timingMs)} ms`;
  const meta = `composite ${run.composite} · attributor ${run.attributor} · target ${targetText(run)} · ${ran}`;
  // a vector input (tabular features) is a bar per feature, not an image
  const vector = isVector(run.relevance);
  // the input, its heatmap and the overlay zoom and pan together
  const zoom = new ZoomGroup();
  const inputCanvas = el('canvas', { class: 'heatmap input', tabindex: '0' });
  drawInput(inputCanvas, run.input);
  const rel = heatmapCanvas(run.relevance.summed, 'relevance at the input');
  const colors = el('div', { class: 'colorbar-slot' }, colorBar(run.relevance.summed, settings));
  root.append(
    el(
      'header',
      {},
      el('h2', {}, run.model),
      el('div', { class: 'meta', title: `kernels: ${run.kernels}` }, meta),
      runChoices(run),
    ),
    staleBanner(),
    historyPicker(),
    compareSection(),
    // non-finite values: said where they first appear, before any picture of them
    ...(run.warnings.length
      ? [el('div', { class: 'warnings', role: 'alert' }, ...run.warnings.map((w) => el('p', {}, `⚠ ${w}`)))]
      : []),
    controls(),
    ...(run.rowSums.length > 1 ? [samplePicker(run)] : []),
    el(
      'section',
      { class: 'overview' },
      ...(vector ? [] : [el('figure', {}, zoom.frame(inputCanvas), el('figcaption', {}, 'input'))]),
      el(
        'figure',
        { class: 'relevance', 'data-layer': '' },
        ...(vector ? [featureBars(run.relevance.summed, 'relevance per input feature', run.featureNames)] : []),
        vector ? rel.canvas : zoom.frame(rel.canvas),
        el('figcaption', {}, `relevance · sum ${fmt(run.relevance.sum)}`),
        colors,
        rel.readout,
        exportButtons('', 'relevance at the input'),
      ),
      ...(!vector && overlays(run.input, run.relevance.summed) ? [overlayFigure(run, zoom)] : []),
      el(
        'div',
        { class: 'side' },
        el('h3', {}, 'Predictions'),
        predictionList(run, (c) => vscode.postMessage({ type: 'explainClass', class: c })),
        ...(run.classNames ? [] : [nameClassesButton()]),
        el('h3', {}, 'Conservation'),
        conservationChart(run.sums),
      ),
    ),
    el('vscode-divider' as 'hr'),
    el('h3', {}, run.layers.length ? 'Hooked layers' : 'No hooked layers: attach store hooks in the Model Layers view'),
    el('div', { class: 'cards' }, ...run.layers.map((l) => layerCard(l, l.id))),
  );
}

/**
 * A batch (or a conditional run's rows): which sample the pictures show, with each sample's relevance sum at the
 * input and the batch's total (the samples' sums add up to it).
 */
function samplePicker(r: RunView): HTMLElement {
  const select = el('select', { id: 'row', 'aria-label': 'Sample shown' });
  r.rowSums.forEach((sum, k) => {
    const opt = el('option', { value: String(k) }, `sample ${k} · Σ ${fmt(sum)}`);
    if (k === r.row) opt.setAttribute('selected', '');
    select.appendChild(opt);
  });
  select.addEventListener('change', () => vscode.postMessage({ type: 'viewRow', row: Number(select.value) }));
  const total = r.rowSums.every((s) => s !== null) ? r.rowSums.reduce((a, b) => a! + b!, 0) : null;
  return el(
    'div',
    { class: 'samples' },
    el('label', { for: 'row' }, `${r.conditionRows ? 'Row' : 'Sample'} (${r.rowSums.length})`),
    select,
    el('span', { class: 'batch-total' }, `Σ over all ${r.rowSums.length}: ${fmt(total)}`),
  );
}

/** "12:03:05 · epsilon_gamma_box · target 3 (cross) · cat.png": which run, told apart from the others. */
function runLabel(r: RunSummary): string {
  const time = new Date(r.at).toLocaleTimeString('en-GB');
  const attributor = r.attributor === 'gradient' ? '' : ` · ${r.attributor}`;
  const input = r.inputFile ? ` · ${r.inputFile.split(/[\\/]/).pop()}` : '';
  const row = r.row ? ` · sample ${r.row}` : '';
  return `${time} · ${r.composite}${attributor} · target ${targetText(r)}${input}${row}`;
}

/** Which earlier run of the model to show beside this one (none while this is the only one). */
function historyPicker(): HTMLElement {
  const earlier = history.filter((h) => h.runId !== run?.runId).reverse();
  const box = el('div', { class: 'history' });
  if (!earlier.length) {
    box.hidden = true;
    return box;
  }
  const select = el('select', { id: 'compare-with', 'aria-label': 'Compare with an earlier run' });
  select.appendChild(el('option', { value: '' }, 'no other run'));
  for (const h of earlier) {
    const opt = el('option', { value: h.runId }, runLabel(h));
    if (h.runId === compared?.runId) opt.setAttribute('selected', '');
    select.appendChild(opt);
  }
  select.addEventListener('change', () => vscode.postMessage({ type: 'compare', runId: select.value || null }));
  box.append(el('label', { for: 'compare-with' }, `Compare with (${earlier.length} earlier)`), select);
  return box;
}

/**
 * The run on show beside the compared one: the relevance at the input, then every layer both runs hooked, each
 * heatmap scaled on its own (the runs' relevance may differ in size; the sums say by how much).
 */
function compareSection(): HTMLElement {
  const section = el('section', { class: 'compare', 'aria-label': 'two runs side by side' });
  if (!run || !compared) {
    section.hidden = true;
    return section;
  }
  const other = compared;
  const both = run.layers.filter((l) => other.layers.some((o) => o.id === l.id)).map((l) => l.id);
  const column = (r: RunView, title: string) => {
    const cells = [r.relevance, ...both.map((id) => r.layers.find((l) => l.id === id)!)].map((l) => {
      const what = l.id || 'relevance at the input';
      const c = heatmapCanvas(l.summed, `${title}: ${what}`, 'heatmap compared');
      return el(
        'figure',
        { 'data-layer': l.id },
        c.canvas,
        el('figcaption', {}, `${what} · Σ ${fmt(l.sum)}`),
        c.readout,
      );
    });
    return el(
      'div',
      { class: 'compare-column', 'data-run-id': r.runId },
      el('h4', {}, title),
      el('div', { class: 'compare-meta' }, `${r.composite} · ${r.attributor} · target ${targetText(r)}`),
      ...cells,
    );
  };
  const at = history.find((h) => h.runId === other.runId);
  const close = el(
    'vscode-button' as 'button',
    { appearance: 'secondary', id: 'close-compare', 'aria-label': 'Close the comparison' },
    'Close',
  );
  close.addEventListener('click', () => vscode.postMessage({ type: 'compare', runId: null }));
  const sameInput = run.inputFile === other.inputFile && run.row === other.row;
  return el(
    'section',
    { class: 'compare', 'aria-label': 'two runs side by side' },
    el('div', { class: 'compare-title' }, el('h3', {}, 'Compared runs'), close),
    el(
      'p',
      { class: 'note' },
      sameInput ? 'the same input' : 'different inputs: each run explains its own',
      ' · each heatmap is scaled to its own largest |value|',
    ),
    el(
      'div',
      { class: 'compare-columns' },
      column(run, 'this run'),
      column(other, at ? `run of ${new Date(at.at).toLocaleTimeString('en-GB')}` : 'earlier run'),
    ),
  );
}

/** The heatmap over the input, with a slider for its opacity. */
function overlayFigure(r: RunView, zoom: ZoomGroup): HTMLElement {
  const canvas = el('canvas', { class: 'heatmap overlay', tabindex: '0', 'data-label': 'relevance over the input' });
  const draw = () => drawOverlay(canvas, r.input, r.relevance.summed, settings, opacity);
  draw();
  const readout = el('div', { class: 'readout', 'aria-live': 'polite' });
  attachHover(canvas, () => r.relevance.summed, readout);
  const slider = el('input', {
    type: 'range',
    min: '0',
    max: '100',
    value: String(Math.round(100 * opacity)),
    class: 'opacity',
    'aria-label': 'Heatmap opacity over the input',
  });
  slider.addEventListener('input', () => {
    opacity = Number(slider.value) / 100;
    draw();
  });
  overlayRedraw = draw;
  return el(
    'figure',
    { class: 'overlay-figure' },
    zoom.frame(canvas),
    el('figcaption', {}, el('label', {}, 'overlay · opacity ', slider)),
    readout,
  );
}

/** The next run's composite and target, chosen from the panel (the quick picks start at the current ones). */
function runChoices(r: RunView): HTMLElement {
  const button = (what: 'composite' | 'target', text: string, label: string) => {
    const b = el(
      'vscode-button' as 'button',
      { appearance: 'secondary', id: `choose-${what}`, 'aria-label': label },
      text,
    );
    b.addEventListener('click', () => vscode.postMessage({ type: 'choose', what }));
    return b;
  };
  return el(
    'div',
    { class: 'run-choices' },
    button('composite', 'Composite…', `Choose the composite (this run's: ${r.composite})`),
    button('target', 'Target class…', `Set the target class (this run's: ${targetText(r)})`),
  );
}

/** Offered while the classes are numbers only: Set Class Names… */
function nameClassesButton(): HTMLElement {
  const b = el('vscode-button' as 'button', { appearance: 'secondary', id: 'name-classes' }, 'Name the classes…');
  b.addEventListener('click', () => vscode.postMessage({ type: 'setClassNames' }));
  return b;
}

/** "Out of date" with why, and a Re-run button, when the settings changed since the run on show. */
function staleBanner(): HTMLElement {
  const banner = el('div', { class: 'stale', role: 'status', 'aria-live': 'polite' });
  if (!stale.length) {
    banner.hidden = true;
    return banner;
  }
  const rerun = el('vscode-button' as 'button', { appearance: 'primary', id: 'rerun' }, 'Re-run');
  rerun.addEventListener('click', () => vscode.postMessage({ type: 'run' }));
  banner.append(el('span', {}, `Out of date: ${stale.join('; ')}.`), rerun);
  return banner;
}

function update(next: ViewSettings): void {
  if (next.colorMap === settings.colorMap && next.scaling === settings.scaling) return;
  settings = next;
  for (const h of heatmaps) drawHeatmap(h.canvas, h.map, settings, h.label);
  overlayRedraw?.();
  if (run) document.querySelector('.colorbar-slot')?.replaceChildren(colorBar(run.relevance.summed, settings));
  vscode.postMessage({ type: 'settings', settings });
}

function onHostMessage(m: HostMessage): void {
  if (m.type === 'run') {
    const input = 'asSent' in m.run.input ? heldInput : m.run.input;
    // the host counts on an image this document never got (cannot happen while messages arrive in order): ask
    // for everything again, as a freshly loaded document does
    if (!input) {
      vscode.postMessage({ type: 'ready' });
      return;
    }
    heldInput = input;
    if (m.run.runId !== run?.runId) stale = [];
    // channel explanations belong to the row they explained
    if (m.run.runId !== run?.runId || m.run.row !== run?.row) {
      explained = new Map();
      pages = new Map();
    }
    const first = m.run.runId !== run?.runId;
    const received = Date.now();
    run = { ...m.run, input };
    settings = m.settings;
    // a prediction clicked by keyboard is explained now: the focus goes to another one
    render('button.prediction');
    const drawn = Date.now();
    // after the frame that shows it
    if (first)
      requestAnimationFrame(() =>
        setTimeout(() =>
          vscode.postMessage({ type: 'painted', runId: m.run.runId, received, drawn, painted: Date.now() }),
        ),
      );
  } else if (m.type === 'settings') {
    // changed elsewhere (settings, another view): redraw with the controls showing it
    if (m.settings.colorMap === settings.colorMap && m.settings.scaling === settings.scaling) return;
    settings = m.settings;
    render();
  } else if (m.type === 'explanation') {
    if (m.runId !== run?.runId) return;
    const layer = explained.get(m.layer) ?? new Map<string, ChannelExplanation>();
    for (const ch of m.channels) layer.set(explanationKey(ch), ch);
    explained.set(m.layer, layer);
    render();
    document.querySelector(`section.card[data-layer="${CSS.escape(m.layer)}"] .explained`)?.scrollIntoView();
  } else if (m.type === 'history') {
    history = m.runs;
    compared = m.compared;
    heatmaps = heatmaps.filter((h) => !h.canvas.classList.contains('compared'));
    keepingFocus(() => {
      document.querySelector('.history')?.replaceWith(historyPicker());
      document.querySelector('.compare')?.replaceWith(compareSection());
    }, '#compare-with');
  } else if (m.type === 'channels') {
    if (m.runId !== run?.runId || m.page.row !== run.row) return;
    pages.set(m.page.layer, m.page);
    const layer = run.layers.find((l) => l.id === m.page.layer);
    const card = document.querySelector(`section.card[data-layer="${CSS.escape(m.page.layer)}"]`);
    if (layer && card) {
      heatmaps = heatmaps.filter((h) => !card.contains(h.canvas));
      // the pager's control that asked keeps the focus (Next is disabled on the last page: then another of its own)
      const pager = `section.card[data-layer="${CSS.escape(layer.id)}"] .pager`;
      keepingFocus(() => card.replaceWith(layerCard(layer, layer.id)), `${pager} vscode-button`, `${pager} select`);
    }
  } else if (m.type === 'stale') {
    stale = m.reasons;
    document.querySelector('.stale')?.replaceWith(staleBanner());
  } else if (m.type === 'clear') {
    run = undefined;
    explained = new Map();
    pages = new Map();
    history = [];
    compared = undefined;
    root.replaceChildren(el('p', { class: 'empty' }, m.reason));
  }
}

vscode.postMessage({ type: 'ready' });
