/**
 * The Channel Analysis panel: a data-set analysis of the open model (analysis.json, beside the model in
 * `<model>.analysis/`) as a table of channels per layer — the classes each matters for and its reference images.
 * The host reads the file (checked against its schema) and hands the webview what it draws; the images are the
 * engine's PNGs, shown from the analysis folder.
 */
import * as path from 'path';
import * as vscode from 'vscode';
import type { AnalysisView } from '../../protocol/webview';
import type { Ctx } from './context';
import { analysisFolder, readAnalysisView } from './analysis-file';
import { parseWebviewMessage, postToWebview, webviewHtml, webviewOptions } from './webview-html';

export const ANALYSIS_VIEW_TYPE = 'relevanceLens.analysisPanel';

export class AnalysisPanel implements vscode.Disposable {
  private panel?: vscode.WebviewPanel;
  private folder?: string;
  private readonly subs: vscode.Disposable[] = [];

  constructor(private readonly ctx: Ctx) {
    this.subs.push(ctx.onDidChangeModel(() => this.panel && this.folder !== this.current() && this.panel.dispose()));
  }

  private current(): string | undefined {
    return this.ctx.model && analysisFolder(this.ctx.model.path);
  }

  /** Shows the open model's analysis (an error when it has none yet). */
  async show(): Promise<void> {
    const folder = this.current();
    if (!folder) throw new Error('no model is open');
    await this.read(folder); // an error now, before a panel opens, when there is no analysis
    if (this.panel && this.folder !== folder) this.panel.dispose();
    if (!this.panel) {
      const uri = this.ctx.extension.extensionUri;
      const options = webviewOptions(uri);
      const panel = vscode.window.createWebviewPanel(
        ANALYSIS_VIEW_TYPE,
        `Channels · ${path.basename(this.ctx.model!.path)}`,
        { viewColumn: vscode.ViewColumn.Beside },
        { ...options, localResourceRoots: [...(options.localResourceRoots ?? []), vscode.Uri.file(folder)] },
      );
      panel.iconPath = vscode.Uri.joinPath(uri, 'media', 'lens.svg');
      panel.webview.html = webviewHtml(panel.webview, uri, 'analysis', 'Channel Analysis');
      panel.webview.onDidReceiveMessage(
        (m) => {
          if (parseWebviewMessage(this.ctx.log, 'channel analysis', m)?.type === 'ready') void this.post();
        },
        undefined,
        this.subs,
      );
      panel.onDidDispose(() => (this.panel = undefined), undefined, this.subs);
      this.panel = panel;
      this.folder = folder;
    }
    this.panel.reveal();
    await this.post();
  }

  private async post(): Promise<void> {
    if (!this.panel || !this.folder) return;
    const analysis = await this.read(this.folder);
    void postToWebview(this.panel.webview, { type: 'analysis', analysis });
  }

  private async read(folder: string): Promise<AnalysisView> {
    const toUri = (f: string) => this.panel?.webview.asWebviewUri(vscode.Uri.file(f)).toString() ?? '';
    const view = await readAnalysisView(folder, toUri, this.ctx.model?.classNames);
    if (!view)
      throw new Error(`${path.basename(this.ctx.model!.path)} has no data-set analysis yet: run "Analyze Data Set…"`);
    return view;
  }

  dispose(): void {
    this.panel?.dispose();
    this.subs.forEach((d) => d.dispose());
  }
}
