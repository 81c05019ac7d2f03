/** Relevance Lens: activation wires the context, the Model Layers tree, the Relevance panel and the commands. */
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
import { openingText, RunStatusItem, treeMessage } from './status';
import { DOC_SCHEME, docProvider } from './errors';
import { MODEL_EDITOR_VIEW_TYPE, ModelEditorProvider } from './model-editor';

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
    vscode.workspace.registerTextDocumentContentProvider(DOC_SCHEME, docProvider),
  );
  ctx.subscriptions.push(view.onDidChangeSelection((e) => layerView.select(e.selection[0])));
  ctx.layerSelection = () => view.selection;
  // an .onnx opens as its layer table; its rows reveal their layer here
  ctx.subscriptions.push(
    vscode.window.registerCustomEditorProvider(MODEL_EDITOR_VIEW_TYPE, new ModelEditorProvider(ctx)),
    vscode.commands.registerCommand('relevanceLens.revealLayer', async (id: string) => {
      const item = ctx?.layers().find((l) => l.id === id);
      if (item) await view.reveal(item, { select: true, focus: true, expand: true });
    }),
  );
  // what menus and the palette offer follows these (package.json's `when` and `enablement` clauses)
  const setContexts = () => {
    const c = ctx!;
    const keys: Record<string, boolean> = {
      'relevanceLens.modelOpen': !!c.model,
      'relevanceLens.opening': !!c.openingFile || !!c.loadingWeights,
      'relevanceLens.hasInput': !!c.input,
      'relevanceLens.hooked': (c.model?.hooks.size ?? 0) > 0,
      'relevanceLens.hasRun': !!c.lastRun,
    };
    for (const [key, value] of Object.entries(keys)) void vscode.commands.executeCommand('setContext', key, value);
  };
  // the model, and what the next run uses: in the line under the title and in the status bar
  const status = new RunStatusItem(ctx);
  const update = () => {
    setContexts();
    status.update();
    view.message = openingText(ctx!) ?? treeMessage(ctx!);
  };
  ctx.subscriptions.push(
    status,
    ctx.onDidChangeModel(update),
    ctx.onDidChangeOpening(update),
    ctx.onDidChangeHooks(update),
    ctx.onDidRun(update),
    ctx.onDidChangeChoices(update),
  );
  update();
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

export function deactivate(): void {
  ctx?.dispose();
  ctx = undefined;
}
