/**
 * The Channel Analysis panel: a data-set analysis of the open model (analysis.json, beside the model in
 * `<model>.analysis/`) as a table of channels per layer — the classes each matters for and its reference images.
 * The host reads the file (checked against its schema) and hands the webview what it draws; the images are the
 * engine's PNGs, shown from the analysis folder.
 */
import * as fs from 'fs';
import * as path from 'path';
import * as vscode from 'vscode';
import { AnalysisFile } from '../../protocol/analysis';
import type { AnalysisView, HostMessage } from '../../protocol/webview';
import type { Ctx } from './context';
import { parseWebviewMessage, webviewHtml, webviewOptions } from './webview-html';

export const ANALYSIS_VIEW_TYPE = 'relevanceLens.analysisPanel';

/** Where the open model's analysis lives: `resnet50.onnx` → `resnet50.analysis/`. */
export function analysisFolder(modelPath: string): string {
  return path.join(path.dirname(modelPath), path.basename(modelPath).replace(/\.(onnx|json)$/i, '') + '.analysis');
}

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
    const view = await this.read(folder);
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
    await this.post(view);
  }

  private async post(view?: AnalysisView): Promise<void> {
    if (!this.panel || !this.folder) return;
    const analysis = view ?? (await this.read(this.folder));
    void this.panel.webview.postMessage({ type: 'analysis', analysis } satisfies HostMessage);
  }

  /** analysis.json as the view draws it: the classes by name, the images as webview URIs. */
  private async read(folder: string): Promise<AnalysisView> {
    const file = path.join(folder, 'analysis.json');
    let text: string;
    try {
      text = await fs.promises.readFile(file, 'utf8');
    } catch {
      throw new Error(`${path.basename(this.ctx.model!.path)} has no data-set analysis yet: run "Analyze Data Set…"`);
    }
    const parsed = AnalysisFile.safeParse(JSON.parse(text));
    if (!parsed.success) throw new Error(`${file} is not an analysis: ${parsed.error.issues[0]?.message}`);
    const a = parsed.data;
    // labels index the model's classes: its own names first (an ImageFolder's are folder names such as 3-cross)
    const names = this.ctx.model?.classNames ?? a.classNames;
    const name = (c: number) => (names?.[c] ? `${c} ${names[c]}` : `${c}`);
    const uri = (f: string) => this.panel?.webview.asWebviewUri(vscode.Uri.file(path.join(folder, f))).toString() ?? '';
    return {
      model: path.basename(a.config.model),
      data: path.basename(a.config.data),
      samples: a.samples,
      done: a.done,
      layers: Object.entries(a.layers).map(([id, l]) => ({
        id,
        channels: Array.from({ length: l.channels }, (_, c) => ({
          channel: c,
          classes: l.relclasses[c].map((e) => ({ class: name(e.class), value: e.value })),
          top: l.relmax.values[c][0] ?? null,
          references: (l.references?.[c] ?? []).map((r) => ({
            sample: r.sample,
            label: name(r.label),
            image: uri(r.image),
            heatmap: uri(r.heatmap),
          })),
        })),
      })),
    };
  }

  dispose(): void {
    this.panel?.dispose();
    this.subs.forEach((d) => d.dispose());
  }
}
