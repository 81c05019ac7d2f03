/**
 * The Model Layers tree: the model's module hierarchy with op and output shape; hooked layers carry an eye icon,
 * and after a run their relevance sum. `contextValue` drives which of Attach/Detach the context menu offers.
 */
import * as vscode from 'vscode';
import type { LayerTreeItem } from '../../engine/src/graph';
import type { Ctx } from './context';
import { fmt } from '../../webview/src/render';
import { heatmapDataUri } from './heatmap-image';

export class LayerTreeProvider implements vscode.TreeDataProvider<LayerTreeItem>, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<LayerTreeItem | undefined>();
  readonly onDidChangeTreeData = this.changed.event;
  private readonly subs: vscode.Disposable[];

  constructor(private readonly ctx: Ctx) {
    const refresh = () => this.changed.fire(undefined);
    this.subs = [ctx.onDidChangeModel(refresh), ctx.onDidChangeHooks(refresh), ctx.onDidRun(refresh), ctx.onDidChangeViewSettings(refresh), this.changed];
  }

  getChildren(element?: LayerTreeItem): LayerTreeItem[] {
    return element ? element.children : (this.ctx.model?.info.tree ?? []);
  }

  getTreeItem(layer: LayerTreeItem): vscode.TreeItem {
    const hooked = this.ctx.model?.hooks.has(layer.id) ?? false;
    const item = new vscode.TreeItem(layer.label, layer.children.length ? vscode.TreeItemCollapsibleState.Expanded : vscode.TreeItemCollapsibleState.None);
    item.id = layer.id;
    const sum = hooked ? this.ctx.lastRun?.sums.get(layer.id) : undefined;
    const shape = `[${layer.shape.join(', ')}]`;
    item.description = `${layer.op} ${shape}${sum !== undefined ? ` · Σ ${fmt(sum)}` : ''}`;
    item.contextValue = hooked ? 'layer.hooked' : 'layer.unhooked';
    item.iconPath = hooked ? new vscode.ThemeIcon('eye', new vscode.ThemeColor('charts.blue')) : new vscode.ThemeIcon(layer.children.length ? 'symbol-namespace' : 'symbol-method');
    // hooked layers with a run get their heatmap tooltip in resolveTreeItem, on hover
    if (sum === undefined) item.tooltip = this.tooltip(layer, hooked);
    item.accessibilityInformation = { label: `${layer.id}, ${layer.op}, output ${shape}${hooked ? ', store hook attached' : ''}${sum !== undefined ? `, relevance sum ${fmt(sum)}` : ''}` };
    return item;
  }

  resolveTreeItem(item: vscode.TreeItem, layer: LayerTreeItem): vscode.TreeItem {
    item.tooltip ??= this.tooltip(layer, this.ctx.model?.hooks.has(layer.id) ?? false);
    return item;
  }

  /** Markdown tooltip: what the layer is; after a run, its heatmap and numbers. */
  private tooltip(layer: LayerTreeItem, hooked: boolean): vscode.MarkdownString {
    const tip = new vscode.MarkdownString(undefined, true);
    tip.appendMarkdown(`**${layer.id}** — ${layer.op}\n\noutput [${layer.shape.join(', ')}]${layer.params ? ` · ${layer.params.toLocaleString('en-US')} parameters` : ''}`);
    const run = this.ctx.lastRun;
    const view = hooked ? run?.view.layers.find((l) => l.id === layer.id) : undefined;
    if (!hooked) tip.appendMarkdown('\n\nno store hook');
    else if (!view) tip.appendMarkdown('\n\n$(eye) store hook attached; run an attribution to see its relevance');
    else {
      tip.appendMarkdown(`\n\n![relevance heatmap of ${layer.id}](${heatmapDataUri(view.summed, this.ctx.viewSettings)})`);
      tip.appendMarkdown(`\n\nrelevance sum **${fmt(view.sum)}** · min ${fmt(view.min)} · max ${fmt(view.max)}`);
      tip.appendMarkdown(`\n\n${run!.view.composite}, target ${run!.view.target}${run!.view.classNames?.[run!.view.target] ? ` (${run!.view.classNames[run!.view.target]})` : ''}`);
    }
    return tip;
  }

  dispose(): void {
    this.subs.forEach((d) => d.dispose());
  }
}
