/** Relevance Lens: activation wires the context, the Model Layers tree, the Relevance panel and the commands. */
import * as path from 'path';
import * as vscode from 'vscode';
import { registerAttributionCommands } from './commands/attribution';
import { registerExplainCommands } from './commands/explain';
import { registerHookCommands } from './commands/hooks';
import { registerModelCommands } from './commands/model';
import { registerPanelCommands } from './commands/panel';
import { registerRuleCommands } from './commands/rules';
import { registerAnalysisCommands } from './commands/analysis';
import { AnalysisPanel } from './analysis-panel';
import { Ctx } from './context';
import { LayerTreeProvider } from './layer-tree';
import { LAYER_VIEW_ID, LayerRelevanceView } from './layer-view';
import { RelevancePanel } from './relevance-panel';
import { classWeightsText } from '../../webview/src/format';

let ctx: Ctx | undefined;

/** What tests (and other extensions) can reach: the context, for inspection. */
export interface RelevanceLensApi {
  ctx: Ctx;
}

export function activate(context: vscode.ExtensionContext): RelevanceLensApi {
  ctx = new Ctx(context);
  const tree = new LayerTreeProvider(ctx);
  const view = vscode.window.createTreeView('relevanceLens.layers', {
    treeDataProvider: tree,
    canSelectMany: true,
    showCollapseAll: true,
  });
  const panel = new RelevancePanel(ctx);
  const analysisPanel = new AnalysisPanel(ctx);
  const layerView = new LayerRelevanceView(ctx);
  ctx.subscriptions.push(
    tree,
    view,
    panel,
    analysisPanel,
    layerView,
    vscode.window.registerWebviewViewProvider(LAYER_VIEW_ID, layerView),
  );
  ctx.subscriptions.push(view.onDidChangeSelection((e) => layerView.select(e.selection[0])));
  ctx.layerSelection = () => view.selection;
  const setModelContext = () =>
    void vscode.commands.executeCommand('setContext', 'relevanceLens.modelOpen', !!ctx?.model);
  ctx.subscriptions.push(ctx.onDidChangeModel(setModelContext));
  setModelContext();
  // the model, and what the next run uses: hooks, composite, target and input
  const updateMessage = () => {
    const m = ctx?.model;
    if (!m) return void (view.message = undefined);
    const target = ctx!.target === undefined ? 'predicted class' : `target ${ctx!.target}`;
    const name = ctx!.target !== undefined && m.classNames?.[ctx!.target];
    const input = ctx!.input ? ` · ${path.basename(ctx!.input)}` : '';
    const attributor = ctx!.settings.attributor === 'gradient' ? '' : ` · ${ctx!.settings.attributor}`;
    view.message =
      `${m.info.format.toUpperCase()} · input [${m.info.inputShape.join(', ')}] · ${m.hooks.size} hooked · ` +
      `${ctx!.compositeLabel}${attributor} · ${outputText(ctx!, target, name)}${input}`;
  };
  ctx.subscriptions.push(
    ctx.onDidChangeModel(updateMessage),
    ctx.onDidChangeHooks(updateMessage),
    ctx.onDidRun(updateMessage),
    ctx.onDidChangeChoices(updateMessage),
  );
  // the tree's descriptions show each layer's rule: redraw when the rules change
  ctx.subscriptions.push(ctx.onDidChangeRules(() => tree.refresh()));

  registerModelCommands(ctx);
  registerHookCommands(ctx);
  registerAttributionCommands(ctx, panel);
  registerExplainCommands(ctx, panel);
  registerPanelCommands(ctx, panel);
  registerRuleCommands(ctx);
  registerAnalysisCommands(ctx, analysisPanel);

  context.subscriptions.push(ctx);
  void ctx.restore();
  return { ctx };
}

/** The output relevance the next run explains: the target, or the weighted classes (a contrast). */
function outputText(ctx: Ctx, target: string, name: string | false | undefined): string {
  const w = ctx.output.classWeights;
  if (w) return classWeightsText(w, ctx.model?.classNames);
  const mode = ctx.output.mode === 'one_hot' ? '' : ` (${ctx.output.mode})`;
  return `${target}${name ? ` (${name})` : ''}${mode}`;
}

export function deactivate(): void {
  ctx?.dispose();
  ctx = undefined;
}
