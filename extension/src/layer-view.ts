/**
 * Host side of the Layer Relevance view (a WebviewView under the Model Layers tree). It follows the tree
 * selection and re-runs; each layer's tensor view is sent once per run (the webview caches it).
 */
import * as vscode from 'vscode';
import type { LayerTreeItem } from '../../protocol/engine';
import type { AnalysisChannel, AnalysisView, HostMessage } from '../../protocol/webview';
import { analysisFolder, readAnalysisView } from './analysis-file';
import type { Ctx } from './context';
import { parseWebviewMessage, postToWebview, webviewHtml, webviewOptions } from './webview-html';

export const LAYER_VIEW_ID = 'relevanceLens.layerRelevance';

export class LayerRelevanceView implements vscode.WebviewViewProvider, vscode.Disposable {
  private view?: vscode.WebviewView;
  private selectedId?: string;
  /** keys (`runId/layerId`) whose data the webview already holds */
  private sent = new Set<string>();
  /** the open model's data-set analysis, if it has one (its folder is among the view's resources) */
  private analysis?: { folder: string; view: AnalysisView };
  private readonly subs: vscode.Disposable[] = [];

  constructor(private readonly ctx: Ctx) {
    const post = () => this.post();
    this.subs.push(
      ctx.onDidRun(post),
      ctx.onDidChangeHooks(post),
      ctx.onDidChangeModel(() => void this.loadAnalysis()),
      ctx.onDidChangeAnalysis(() => void this.loadAnalysis()),
      ctx.onDidChangeViewSettings(post),
    );
  }

  /** Reads the open model's analysis (none: nothing shown of it), then shows the selected layer again. */
  private async loadAnalysis(): Promise<void> {
    const m = this.ctx.model;
    this.analysis = undefined;
    try {
      if (m && this.view) {
        const folder = analysisFolder(m.path);
        const uri = this.ctx.extension.extensionUri;
        const options = webviewOptions(uri);
        this.view.webview.options = {
          ...options,
          localResourceRoots: [...(options.localResourceRoots ?? []), vscode.Uri.file(folder)],
        };
        const webview = this.view.webview;
        const view = await readAnalysisView(
          folder,
          (f) => webview.asWebviewUri(vscode.Uri.file(f)).toString(),
          m.classNames,
        );
        if (view && this.ctx.model === m) this.analysis = { folder, view };
      }
    } catch (e) {
      this.ctx.log.warn(`the data-set analysis: ${(e as Error).message}`);
    }
    this.post();
  }

  /**
   * The analysed channels of `layerId` the view shows: the run's top channels first (what this input used), else
   * those with the largest relevance shares; four, with four references each.
   */
  private analysedChannels(layerId: string, runChannels: number[]): AnalysisChannel[] | undefined {
    const layer = this.analysis?.view.layers.find((l) => l.id === layerId);
    if (!layer) return undefined;
    const byShare = [...layer.channels].sort((a, b) => (b.top ?? -Infinity) - (a.top ?? -Infinity));
    const first = runChannels.flatMap((c) => layer.channels.filter((k) => k.channel === c));
    const ordered = [...first, ...byShare.filter((c) => !first.includes(c))];
    return ordered.slice(0, 4).map((c) => ({ ...c, references: c.references.slice(0, 4) }));
  }

  resolveWebviewView(view: vscode.WebviewView): void {
    const uri = this.ctx.extension.extensionUri;
    view.webview.options = webviewOptions(uri);
    view.webview.html = webviewHtml(view.webview, uri, 'layer-view', 'Layer Relevance');
    view.webview.onDidReceiveMessage((m) => this.receive(m), undefined, this.subs);
    view.onDidDispose(() => (this.view = undefined), undefined, this.subs);
    this.view = view;
    void this.loadAnalysis();
  }

  /** The tree's selection changed. */
  select(layer: LayerTreeItem | undefined): void {
    this.selectedId = layer?.id;
    this.post();
  }

  private receive(message: unknown) {
    const m = parseWebviewMessage(this.ctx.log, 'layer relevance view', message);
    if (!m) return;
    if (m.type === 'ready') {
      // a fresh document holds nothing
      this.sent.clear();
      this.post();
    } else if (m.type === 'attachAndRun') {
      const layer = this.ctx.layers().find((l) => l.id === m.layer);
      if (layer)
        void vscode.commands
          .executeCommand('relevanceLens.attachHook', layer)
          .then(() => vscode.commands.executeCommand('relevanceLens.runAttribution'));
    } else if (m.type === 'run') {
      void vscode.commands.executeCommand('relevanceLens.runAttribution');
    }
  }

  private post() {
    if (!this.view) return;
    const m = this.ctx.model;
    const layer = m && this.ctx.layers().find((l) => l.id === this.selectedId);
    if (!m || !layer) {
      void postToWebview(this.view.webview, {
        type: 'clear',
        reason: m ? 'Select a layer in Model Layers.' : 'Open a model to begin.',
      });
      return;
    }
    const hooked = m.hooks.has(layer.id);
    const run = this.ctx.lastRun;
    const data = hooked ? run?.layers.find((l) => l.id === layer.id) : undefined;
    const key = data ? `${run!.runId}/${layer.id}` : undefined;
    const channels = this.analysedChannels(layer.id, data?.channels.map((c) => c.channel) ?? []);
    const msg: HostMessage = {
      type: 'layer',
      layer: { id: layer.id, op: layer.op, shape: layer.shape, hooked, key },
      data: key && !this.sent.has(key) ? data : undefined,
      settings: this.ctx.viewSettings,
      ...(channels && { analysis: { data: this.analysis!.view.data, channels } }),
    };
    if (key) this.sent.add(key);
    void postToWebview(this.view.webview, msg);
  }

  dispose(): void {
    this.subs.forEach((d) => d.dispose());
  }
}
