/**
 * The Channel Analysis panel: for a layer of the analysed model, one row per channel — the classes it matters for
 * and its reference images (the samples where it is most relevant, cropped to where it looks, each with its
 * heatmap) — sortable by channel, by its largest relevance share, or by how much more it matters for a class than
 * for any other.
 */
import type { AnalysisView, HostMessage } from '../../protocol/webview';
import { classMargin } from '../../protocol/analysis';
import { fmt } from './format';
import { connectHost } from './host';
import { el, referenceFigure } from './render';

const host = connectHost('channel analysis', onHostMessage);
const root = document.getElementById('root')!;
root.replaceChildren(el('p', { class: 'empty' }, 'Run Analyze Data Set… to see what each channel sees.'));

let analysis: AnalysisView | undefined;
let layerId = '';
let order = 'channel';

type Channel = AnalysisView['layers'][number]['channels'][number];

/** How a channel ranks under the chosen order (larger first; the channel index ascending). */
function score(c: Channel): number {
  if (order === 'channel') return -c.channel;
  if (order === 'top') return c.top ?? -Infinity;
  // a class: how much more the channel matters for it than for any other class
  return classMargin(c.classes, order);
}

function select(label: string, id: string, options: [string, string][], value: string, onChange: (v: string) => void) {
  const s = el('select', { id, 'aria-label': label });
  for (const [v, text] of options) s.appendChild(el('option', { value: v }, text));
  s.value = value;
  s.addEventListener('change', () => onChange(s.value));
  return el('label', { class: 'control' }, `${label} `, s);
}

function render(): void {
  const a = analysis;
  if (!a) return;
  const layer = a.layers.find((l) => l.id === layerId) ?? a.layers[0];
  layerId = layer.id;
  const classes = [...new Set(layer.channels.flatMap((c) => c.classes.map((k) => k.class)))].sort();
  if (order !== 'channel' && order !== 'top' && !classes.includes(order)) order = 'channel';
  const partial = a.done < a.samples ? ` (stopped after ${a.done}: run it again to resume)` : '';
  const header = el(
    'header',
    {},
    el('h2', {}, `Channels of ${layer.id}`),
    el('p', { class: 'meta' }, `${a.model} · ${a.data} · ${a.samples} samples${partial}`),
    select(
      'Layer',
      'layer-select',
      a.layers.map((l) => [l.id, `${l.id} (${l.channels.length} channels)`]),
      layer.id,
      (v) => ((layerId = v), render()),
    ),
    select(
      'Sort by',
      'sort-select',
      [
        ['channel', 'channel'],
        ['top', 'largest relevance share'],
        ...classes.map((c): [string, string] => [c, `mattering most for ${c}`]),
      ],
      order,
      (v) => ((order = v), render()),
    ),
  );
  const rows = [...layer.channels].sort((x, y) => score(y) - score(x) || x.channel - y.channel);
  const table = el(
    'table',
    { class: 'channels-table', 'aria-label': `channels of ${layer.id}` },
    el(
      'thead',
      {},
      el(
        'tr',
        {},
        el('th', { scope: 'col' }, 'channel'),
        el('th', { scope: 'col' }, 'classes'),
        el('th', { scope: 'col' }, 'what it sees'),
      ),
    ),
    el(
      'tbody',
      {},
      ...rows.map((c) =>
        el(
          'tr',
          { 'data-channel': String(c.channel) },
          el(
            'th',
            { scope: 'row' },
            `#${c.channel}`,
            el('div', { class: 'note' }, `top ${c.top === null ? '–' : fmt(c.top)}`),
          ),
          el('td', {}, ...c.classes.map((k) => el('div', {}, `${k.class} · ${fmt(k.value)}`))),
          el('td', { class: 'references' }, ...c.references.map((r) => referenceFigure(r, c.channel, true))),
        ),
      ),
    ),
  );
  root.replaceChildren(header, table);
}

function onHostMessage(m: HostMessage): void {
  if (m.type !== 'analysis') return;
  analysis = m.analysis;
  render();
}

host.postMessage({ type: 'ready' });
