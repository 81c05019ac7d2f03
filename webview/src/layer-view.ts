/**
 * The Layer Relevance view under the Model Layers tree: the selected layer's channel-summed heatmap, its numbers
 * and top channels, or a one-click "Attach Store Hook and Run". The DOM is built once and updated in place (no
 * flicker on re-runs); layer data is cached by run and layer, so the host sends each tensor view once.
 */
import { provideVSCodeDesignSystem, vsCodeButton } from '@vscode/webview-ui-toolkit';
import type { LayerView } from '../../protocol/engine';
import { type HostMessage, type SelectedLayer, type ViewSettings } from '../../protocol/webview';
import { fmt } from './format';
import { connectHost } from './host';
import { attachHover, drawHeatmap, el, referenceFigure } from './render';

provideVSCodeDesignSystem().register(vsCodeButton());

const vscode = connectHost('layer relevance view', onHostMessage);

let settings: ViewSettings = { colorMap: 'bwr', scaling: 'symmetric' };
let selected: SelectedLayer | undefined;
const cache = new Map<string, LayerView>();
const current = () => (selected?.key ? cache.get(selected.key) : undefined);

const title = el('h3', { id: 'title' });
const stats = el('div', { class: 'stats', id: 'stats' });
const summed = el('canvas', { class: 'heatmap', id: 'summed', tabindex: '0' });
const readout = el('div', { class: 'readout', 'aria-live': 'polite' });
const channels = el('div', { class: 'channels', id: 'channels', role: 'list' });
const action = el('vscode-button' as 'button', { id: 'action' });
/** what some of the layer's channels respond to in a data-set analysis of the model */
const analysed = el('div', { id: 'analysis' });
let analysis: Extract<HostMessage, { type: 'layer' }>['analysis'];
// the narrow live regions (this note, the read-out) are read out, not the whole view on every redraw
const note = el('p', { class: 'note', id: 'note', 'aria-live': 'polite' });
const section = el('section', { id: 'layer' }, title, stats, summed, readout, channels, note, action, analysed);
attachHover(summed, () => current()?.summed, readout);
action.addEventListener('click', () => {
  if (!selected) return;
  vscode.postMessage(selected.hooked ? { type: 'run' } : { type: 'attachAndRun', layer: selected.id });
});
const root = document.getElementById('root')!;
root.replaceChildren(el('p', { class: 'empty', id: 'empty' }, 'Select a layer in Model Layers.'));

/** Keeps the channel grid at `n` figures, reusing the canvases already there. */
function channelFigures(n: number): HTMLCanvasElement[] {
  while (channels.children.length > n) channels.lastElementChild!.remove();
  while (channels.children.length < n) {
    const c = el('canvas', { class: 'channel', tabindex: '0' });
    channels.appendChild(el('figure', { role: 'listitem' }, c, el('figcaption')));
  }
  return [...channels.querySelectorAll('canvas')];
}

function show(): void {
  const sel = selected;
  if (!sel) return;
  if (section.parentElement !== root) root.replaceChildren(section);
  const view = current();
  const shape = `[${sel.shape.join(', ')}]`;
  title.textContent = `${sel.id} `;
  title.appendChild(el('span', { class: 'op' }, `${sel.op} ${shape}`));
  section.dataset.layer = sel.id;
  section.dataset.key = sel.key ?? '';
  summed.hidden = !view;
  channels.hidden = !view;
  if (view) {
    stats.textContent = `sum ${fmt(view.sum)} · min ${fmt(view.min)} · max ${fmt(view.max)}`;
    drawHeatmap(summed, view.summed, settings, `${sel.id} relevance, shape ${shape}`);
    channelFigures(view.channels.length).forEach((canvas, i) => {
      const ch = view.channels[i];
      drawHeatmap(canvas, ch, settings, `${sel.id} channel ${ch.channel}`);
      canvas.nextElementSibling!.textContent = `#${ch.channel} Σ ${fmt(ch.sum)}`;
    });
  } else {
    stats.textContent = sel.hooked ? 'store hook attached' : 'no store hook';
    readout.textContent = '';
  }
  note.textContent = view
    ? view.channels.length
      ? `top ${view.channels.length} channels by |relevance|`
      : 'dense layer: no channels'
    : sel.hooked
      ? 'No run has captured this layer yet.'
      : '';
  showAnalysis();
  // the button goes once the layer has data: whoever pressed it from the keyboard lands on the heatmap it brought
  // (a hidden element drops the focus to the document)
  const refocus = !!view && !action.hidden && document.activeElement === action;
  action.hidden = !!view;
  if (refocus) summed.focus();
  action.textContent = sel.hooked ? 'Run Attribution' : 'Attach Store Hook and Run';
  action.setAttribute(
    'aria-label',
    sel.hooked ? `Run attribution to see ${sel.id}` : `Attach a store hook to ${sel.id} and run`,
  );
}

/** The analysed channels: each one's classes and reference images (sample crop beside its heatmap). */
function showAnalysis(): void {
  if (!analysis) return void analysed.replaceChildren();
  analysed.replaceChildren(
    el('h4', {}, `What its channels see in ${analysis.data}`),
    ...analysis.channels.map((c) =>
      el(
        'div',
        { class: 'analysed-channel', 'data-channel': String(c.channel) },
        el(
          'div',
          { class: 'note' },
          `#${c.channel} · ${c.classes
            .slice(0, 2)
            .map((k) => k.class)
            .join(', ')}`,
        ),
        el('div', { class: 'references' }, ...c.references.map((r) => referenceFigure(r, c.channel, false))),
      ),
    ),
  );
}

function onHostMessage(m: HostMessage): void {
  if (m.type === 'layer') {
    if (m.data && m.layer.key) {
      // keep the latest run's layers only
      const run = m.layer.key.slice(0, m.layer.key.lastIndexOf('/'));
      for (const k of cache.keys()) if (!k.startsWith(`${run}/`)) cache.delete(k);
      cache.set(m.layer.key, m.data);
    }
    selected = m.layer;
    settings = m.settings;
    analysis = m.analysis;
    show();
  } else if (m.type === 'settings') {
    settings = m.settings;
    show();
  } else if (m.type === 'clear') {
    selected = undefined;
    cache.clear();
    root.replaceChildren(el('p', { class: 'empty' }, m.reason));
  }
}

vscode.postMessage({ type: 'ready' });
