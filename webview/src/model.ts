/**
 * The model editor's table: a row per layer and container, indented by depth, with op, output shape, parameters,
 * window geometry, inputs and the rule under the current composite. A row's id links into the Model Layers tree.
 * Every message is validated first.
 */
import type { HostMessage, ModelRow } from '../../protocol/webview';
import { connectHost } from './host';
import { el } from './render';

const vscode = connectHost('model editor', onHostMessage);
const root = document.getElementById('root')!;

function row(r: ModelRow): HTMLTableRowElement {
  const link = el('button', { class: 'layer-link', title: `Show ${r.id} in the Model Layers tree` }, r.id);
  link.style.marginLeft = `${r.depth * 14}px`;
  link.addEventListener('click', () => vscode.postMessage({ type: 'revealLayer', id: r.id }));
  const rule = r.rule ? `${r.ruleSet ? '✎ ' : ''}${r.rule}` : '';
  return el(
    'tr',
    { 'data-layer': r.id, class: r.container ? 'container' : 'layer' },
    el('td', {}, link),
    el('td', {}, r.container ? '' : r.op),
    el('td', {}, `[${r.shape.join(', ')}]`),
    el('td', { class: 'num' }, r.params ? r.params.toLocaleString('en-US') : ''),
    el('td', {}, r.geometry),
    el('td', {}, r.container ? '' : r.inputs.join(', ')),
    el('td', {}, rule),
  );
}

function onHostMessage(m: HostMessage): void {
  if (m.type === 'modelTable') {
    const layers = m.rows.filter((r) => !r.container).length;
    const params = m.rows.filter((r) => r.depth === 0).reduce((n, r) => n + r.params, 0);
    const head = el(
      'tr',
      {},
      ...['layer', 'op', 'output', 'parameters', 'kernel · stride · padding', 'inputs', 'rule'].map((h) =>
        el('th', { scope: 'col' }, h),
      ),
    );
    root.replaceChildren(
      el(
        'header',
        {},
        el('h2', {}, m.model),
        el(
          'div',
          { class: 'meta' },
          `${layers} layers · ${params.toLocaleString('en-US')} parameters · rules of ${m.composite}`,
        ),
      ),
      el(
        'table',
        { class: 'model-table', 'aria-label': `layers of ${m.model}` },
        el('thead', {}, head),
        el('tbody', {}, ...m.rows.map(row)),
      ),
    );
  } else if (m.type === 'clear') {
    root.replaceChildren(el('p', { class: 'empty' }, m.reason));
  }
}

root.replaceChildren(el('p', { class: 'empty' }, 'Opening the model…'));
vscode.postMessage({ type: 'ready' });
