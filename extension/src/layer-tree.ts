/**
 * The Model Layers tree: the model's module hierarchy with op and output shape; hooked layers carry an eye icon,
 * and after a run their relevance sum. `contextValue` drives which of Attach/Detach the context menu offers.
 */
import * as vscode from 'vscode';
import * as P from '../../protocol/engine';
import type { LayerTreeItem } from '../../protocol/engine';
import { type Ctx, layersOf } from './context';
import { escapeMarkdown, fmt, geometryText, targetText } from '../../webview/src/format';

/** Tooltip heatmaps: about this many pixels on the longer side. */
const TOOLTIP_SIDE = 128;

export class LayerTreeProvider implements vscode.TreeDataProvider<LayerTreeItem>, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<LayerTreeItem | LayerTreeItem[] | undefined>();
  readonly onDidChangeTreeData = this.changed.event;
  private readonly subs: vscode.Disposable[];

  constructor(private readonly ctx: Ctx) {
    const refresh = () => this.changed.fire(undefined);
    this.subs = [
      ctx.onDidChangeModel(refresh),
      ctx.onDidChangeHooks(refresh),
      ctx.onDidRun(() => this.refreshHooked()),
      ctx.onDidChangeViewSettings(refresh),
      this.changed,
    ];
  }

  refresh(): void {
    this.changed.fire(undefined);
  }

  /** After a run only the hooked rows change (their Σ and heatmap tooltip): the rest of the tree is not redrawn. */
  private refreshHooked(): void {
    const m = this.ctx.model;
    const hooked = layersOf(m?.info.tree ?? []).filter((l) => m?.hooks.has(l.id));
    if (hooked.length) this.changed.fire(hooked);
  }

  /** The item's container (what reveal walks up): its id up to the last dot, where that is a row. */
  getParent(element: LayerTreeItem): LayerTreeItem | undefined {
    const rows = new Map(layersOf(this.ctx.model?.info.tree ?? []).map((l) => [l.id, l]));
    for (let id = element.id; id.includes('.');) {
      id = id.slice(0, id.lastIndexOf('.'));
      const parent = rows.get(id);
      if (parent?.children.includes(element)) return parent;
    }
    return undefined;
  }

  getChildren(element?: LayerTreeItem): LayerTreeItem[] {
    return element ? element.children : (this.ctx.model?.info.tree ?? []);
  }

  getTreeItem(layer: LayerTreeItem): vscode.TreeItem {
    const hooked = this.ctx.model?.hooks.has(layer.id) ?? false;
    const item = new vscode.TreeItem(
      layer.label,
      layer.children.length ? vscode.TreeItemCollapsibleState.Expanded : vscode.TreeItemCollapsibleState.None,
    );
    item.id = layer.id;
    const sum = hooked ? this.ctx.lastRun?.layers.find((l) => l.id === layer.id)?.sum : undefined;
    const shape = `[${layer.shape.join(', ')}]`;
    // the rule this layer gets under the composite; ✎ where the composite file sets it
    const rule = layer.children.length ? undefined : this.ctx.rules?.layers[layer.id];
    const ruleText = rule ? ` · ${rule.set ? '✎ ' : ''}${rule.rule}` : '';
    item.description = `${layer.op} ${shape}${ruleText}${sum !== undefined ? ` · Σ ${fmt(sum)}` : ''}`;
    item.contextValue = `${hooked ? 'layer.hooked' : 'layer.unhooked'}${rule?.set ? '.ruleSet' : ''}`;
    item.iconPath = hooked
      ? new vscode.ThemeIcon('eye', new vscode.ThemeColor('charts.blue'))
      : new vscode.ThemeIcon(layer.children.length ? 'symbol-namespace' : 'symbol-method');
    // hooked layers with a run get their heatmap tooltip in resolveTreeItem, on hover
    if (sum === undefined) item.tooltip = this.tooltip(layer, hooked);
    const sumText = sum !== undefined ? `, relevance sum ${fmt(sum)}` : '';
    const ruleLabel = rule ? `, rule ${rule.rule}${rule.set ? ' set in the composite file' : ''}` : '';
    item.accessibilityInformation = {
      label: `${layer.id}, ${layer.op}, output ${shape}${ruleLabel}${hooked ? ', store hook attached' : ''}${sumText}`,
    };
    return item;
  }

  async resolveTreeItem(item: vscode.TreeItem, layer: LayerTreeItem): Promise<vscode.TreeItem> {
    if (item.tooltip) return item;
    const hooked = this.ctx.model?.hooks.has(layer.id) ?? false;
    const run = this.ctx.lastRun;
    let heatmap: string | undefined;
    if (hooked && run?.layers.some((l) => l.id === layer.id)) {
      // drawn by the engine, which holds the run's tensors; none if it no longer does (restarted)
      const png = await this.ctx.engine
        .request(P.ExportTensor, {
          runId: run.runId,
          layer: layer.id,
          format: 'png',
          minSide: TOOLTIP_SIDE,
          ...this.ctx.viewSettings,
        })
        .catch(() => undefined);
      heatmap = png && `data:${png.mimeType};base64,${png.data}`;
    }
    item.tooltip = this.tooltip(layer, hooked, heatmap);
    return item;
  }

  /** Markdown tooltip: what the layer is; after a run, its heatmap and numbers. */
  private tooltip(layer: LayerTreeItem, hooked: boolean, heatmap?: string): vscode.MarkdownString {
    const tip = new vscode.MarkdownString(undefined, true);
    const params = layer.params ? ` · ${layer.params.toLocaleString('en-US')} parameters` : '';
    // ids, ops and class names come from the model's files: escaped, never Markdown
    tip.appendMarkdown(`**${escapeMarkdown(layer.id)}** — ${escapeMarkdown(layer.op)}`);
    tip.appendMarkdown(`\n\noutput [${layer.shape.join(', ')}]${params}`);
    const d = layer.details;
    if (d) {
      const geometry = geometryText(d);
      if (geometry) tip.appendMarkdown(`\n\n${escapeMarkdown(geometry)}`);
      tip.appendMarkdown(`\n\ninputs: ${escapeMarkdown(d.inputs.join(', '))}`);
    }
    const rule = this.ctx.rules?.layers[layer.id];
    if (rule && !layer.children.length)
      tip.appendMarkdown(
        `\n\nrule **${escapeMarkdown(rule.rule)}**${rule.set ? ' — set in the composite file' : ` — from ${escapeMarkdown(this.ctx.rules!.composite)}`}`,
      );
    const run = this.ctx.lastRun;
    const view = hooked ? run?.layers.find((l) => l.id === layer.id) : undefined;
    if (!hooked) tip.appendMarkdown('\n\nno store hook');
    else if (!view) tip.appendMarkdown('\n\n$(eye) store hook attached; run an attribution to see its relevance');
    else {
      if (heatmap) tip.appendMarkdown(`\n\n![relevance heatmap](${heatmap})`);
      tip.appendMarkdown(`\n\nrelevance sum **${fmt(view.sum)}** · min ${fmt(view.min)} · max ${fmt(view.max)}`);
      tip.appendMarkdown(`\n\n${run!.composite}, target ${escapeMarkdown(targetText(run!))}`);
    }
    return tip;
  }

  dispose(): void {
    this.subs.forEach((d) => d.dispose());
  }
}
