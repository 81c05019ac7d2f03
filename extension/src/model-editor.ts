/**
 * Opening an `.onnx` file shows the model, not its bytes: a read-only custom editor with the layer table (op,
 * output shape, parameters, kernel/stride/padding, inputs, the rule under the current composite). The model it
 * shows is the open model (opening the file makes it so); a row links into the Model Layers tree. Opening reads
 * the structure only, so a 553 MB file opens as fast as a small one.
 */
import * as path from 'path';
import * as vscode from 'vscode';
import type { HostMessage, ModelRow } from '../../protocol/webview';
import { geometryText } from '../../webview/src/format';
import type { Ctx } from './context';
import { showError } from './errors';
import { parseWebviewMessage, postToWebview, webviewHtml, webviewOptions } from './webview-html';
import type * as P from '../../protocol/engine';

export const MODEL_EDITOR_VIEW_TYPE = 'relevanceLens.model';

export class ModelEditorProvider implements vscode.CustomReadonlyEditorProvider {
  constructor(private readonly ctx: Ctx) {}

  openCustomDocument(uri: vscode.Uri): vscode.CustomDocument {
    return { uri, dispose: () => undefined };
  }

  resolveCustomEditor(document: vscode.CustomDocument, panel: vscode.WebviewPanel): void {
    const { ctx } = this;
    const file = document.uri.fsPath;
    const uri = ctx.extension.extensionUri;
    panel.webview.options = webviewOptions(uri);
    panel.webview.html = webviewHtml(panel.webview, uri, 'model', path.basename(file));
    const post = (m: HostMessage) => void postToWebview(panel.webview, m);
    const show = () => {
      const m = ctx.model;
      if (m?.path !== file) return;
      post({
        type: 'modelTable',
        model: path.basename(file),
        composite: ctx.compositeLabel,
        rows: rows(ctx, m.info.tree),
      });
    };
    const subs = [ctx.onDidChangeModel(show), ctx.onDidChangeRules(show), ctx.onDidChangeHooks(show)];
    panel.onDidDispose(() => subs.forEach((d) => d.dispose()));
    panel.webview.onDidReceiveMessage(async (message) => {
      const m = parseWebviewMessage(ctx.log, 'model editor', message);
      if (m?.type === 'ready') {
        if (ctx.model?.path === file) return show();
        try {
          await ctx.openModel(file);
        } catch (e) {
          post({ type: 'clear', reason: `${path.basename(file)} did not open: ${(e as Error).message}` });
          void showError(ctx, e, 'Open Model');
        }
      } else if (m?.type === 'revealLayer') {
        await vscode.commands.executeCommand('relevanceLens.revealLayer', m.id);
      }
    });
  }
}

/** The tree as table rows, depth first, each with its rule under the current composite. */
function rows(ctx: Ctx, tree: readonly P.LayerTreeItem[], depth = 0): ModelRow[] {
  return tree.flatMap((l) => {
    const rule = l.children.length ? undefined : ctx.rules?.layers[l.id];
    const row: ModelRow = {
      id: l.id,
      depth,
      op: l.op,
      shape: l.shape,
      params: l.params,
      container: l.children.length > 0,
      geometry: l.details ? geometryText(l.details) : '',
      inputs: l.details?.inputs ?? [],
      ...(rule ? { rule: rule.rule, ruleSet: rule.set } : {}),
    };
    return [row, ...rows(ctx, l.children, depth + 1)];
  });
}
