/**
 * The Relevance panel's host side: one webview panel that shows the latest run. It re-sends the run when the
 * webview (re)loads, follows the colour-map setting, and turns the webview's export buttons into Export commands.
 */
import * as vscode from 'vscode';
import * as P from '../../protocol/engine';
import type { ChannelOrder } from '../../protocol/names';
import type { HostMessage } from '../../protocol/webview';
import type { Ctx } from './context';
import { parseWebviewMessage, postToWebview, webviewHtml, webviewOptions } from './webview-html';
import { staleReasons } from './status';
import { showError } from './errors';

export const PANEL_VIEW_TYPE = 'relevanceLens.relevancePanel';

type Explanation = Extract<HostMessage, { type: 'explanation' }>;

export class RelevancePanel implements vscode.Disposable {
  private panel?: vscode.WebviewPanel;
  private readonly subs: vscode.Disposable[] = [];
  /** conditional heatmaps of the run on show, re-sent whenever the webview (re)loads */
  private explanations: Explanation[] = [];
  /** the earlier run the run on show is compared with */
  private comparedId?: string;
  /** the run last sent to the webview, and when (its answer had just come: the latency log) */
  private posted?: { runId: string; at: number };
  /** the input image the webview holds: the last run message's (a fresh document holds none) */
  private sentInput?: P.InputImage;

  constructor(private readonly ctx: Ctx) {
    this.subs.push(
      ctx.onDidRun(() => this.post()),
      ctx.onDidChangeModel(() => this.post()),
      ctx.onDidChangeChoices(() => this.postStale()),
      ctx.onDidChangeHooks(() => this.postStale()),
      ctx.onDidChangeRules(() => this.postStale()),
      ctx.onDidChangeViewSettings(
        (settings) => this.panel && void postToWebview(this.panel.webview, { type: 'settings', settings }),
      ),
    );
  }

  show(preserveFocus = false): void {
    if (this.panel) {
      this.panel.reveal(undefined, preserveFocus);
      return;
    }
    const uri = this.ctx.extension.extensionUri;
    const panel = vscode.window.createWebviewPanel(
      PANEL_VIEW_TYPE,
      'Relevance',
      { viewColumn: vscode.ViewColumn.Beside, preserveFocus },
      webviewOptions(uri),
    );
    panel.iconPath = vscode.Uri.joinPath(uri, 'media', 'lens.svg');
    panel.webview.html = webviewHtml(panel.webview, uri, 'panel', 'Relevance');
    panel.webview.onDidReceiveMessage((m) => this.receive(m), undefined, this.subs);
    panel.onDidDispose(() => (this.panel = undefined), undefined, this.subs);
    this.panel = panel;
  }

  private receive(message: unknown) {
    const m = parseWebviewMessage(this.ctx.log, 'relevance panel', message);
    if (!m) return;
    if (m.type === 'ready') {
      this.sentInput = undefined;
      this.post();
    } else if (m.type === 'settings') this.ctx.setViewSettings(m.settings);
    else if (m.type === 'painted') this.logLatency(m);
    else if (m.type === 'run') void vscode.commands.executeCommand('relevanceLens.runAttribution');
    else if (m.type === 'setClassNames') void vscode.commands.executeCommand('relevanceLens.setClassNames');
    else if (m.type === 'choose')
      void vscode.commands.executeCommand(
        m.what === 'composite' ? 'relevanceLens.chooseComposite' : 'relevanceLens.setTarget',
      );
    else if (m.type === 'compare') {
      this.comparedId = m.runId ?? undefined;
      this.postHistory();
    } else if (m.type === 'channelPage') void this.pageChannels(m.layer, m.offset, m.order);
    else if (m.type === 'viewRow') void this.ctx.viewRow(m.row).catch((e) => showError(this.ctx, e, 'Show Sample'));
    else if (m.type === 'explainClass') {
      this.ctx.setTarget(m.class);
      void vscode.commands.executeCommand('relevanceLens.runAttribution');
    } else if (m.type === 'explainChannels')
      void vscode.commands.executeCommand('relevanceLens.explainChannels', m.layer, m.channels);
    else if (m.type === 'export')
      void vscode.commands.executeCommand('relevanceLens.exportRelevance', {
        layer: m.layer,
        format: m.format,
        settings: m.settings,
      });
  }

  /** Sends a page of a hooked layer's channels of the run on show (the engine ranks and draws them). */
  private async pageChannels(layer: string, offset: number, order: ChannelOrder) {
    const run = this.ctx.lastRun;
    // a page as long as the run's first one
    const count = run?.layers.find((l) => l.id === layer)?.channels.length;
    if (!run || !count) return;
    try {
      const page = await this.ctx.engine.request(P.PageChannels, {
        runId: run.runId,
        layer,
        row: run.row,
        order,
        offset,
        count,
      });
      if (this.panel) void postToWebview(this.panel.webview, { type: 'channels', runId: run.runId, page });
    } catch (e) {
      void showError(this.ctx, e, 'Show Channels');
    }
  }

  /** Shows conditional heatmaps of a layer's channels under the layer's card (of the run they explain). */
  showExplanation(explanation: Explanation): void {
    this.explanations = [...this.explanations.filter((e) => e.runId === this.ctx.lastRun?.runId), explanation];
    if (this.panel) void postToWebview(this.panel.webview, explanation);
    this.show(true);
  }

  /** Sends the latest run (or why there is none). */
  private post() {
    if (!this.panel) return;
    const run = this.ctx.lastRun;
    if (run) this.posted = { runId: run.runId, at: Date.now() };
    const asSent = run && this.sentInput && sameImage(this.sentInput, run.input);
    if (run) this.sentInput = run.input;
    const msg: HostMessage = run
      ? { type: 'run', run: asSent ? { ...run, input: { asSent: true } } : run, settings: this.ctx.viewSettings }
      : {
          type: 'clear',
          reason: this.ctx.model
            ? 'Run an attribution (Relevance Lens: Run Attribution) to see relevance here.'
            : 'Open a model to begin.',
        };
    void postToWebview(this.panel.webview, msg);
    for (const e of this.explanations) if (e.runId === run?.runId) void postToWebview(this.panel.webview, e);
    this.postHistory();
    this.postStale();
  }

  /** The model's runs to compare with, and the compared one's views (while it is in the history). */
  private postHistory() {
    if (!this.panel || !this.ctx.lastRun) return;
    const history = this.ctx.runHistory;
    const compared = history.find(
      (h) => h.run.runId === this.comparedId && h.run.runId !== this.ctx.lastRun?.runId,
    )?.run;
    const runs = history.map(({ run, at }) => ({
      runId: run.runId,
      composite: run.composite,
      attributor: run.attributor,
      target: run.target,
      classWeights: run.classWeights,
      classNames: run.classNames,
      inputFile: run.inputFile,
      row: run.row,
      at,
    }));
    void postToWebview(this.panel.webview, { type: 'history', runs, compared });
  }

  /**
   * The time from Run Attribution to the frame that showed the run, beside the engine's own (once per run), with when
   * the answer came, reached the webview and was drawn. The webview's clock is the host's on one machine; where it
   * is not (a remote host), the time the painted message came back stands in.
   */
  private logLatency(m: { runId: string; received: number; drawn: number; painted: number }) {
    const run = this.ctx.lastRun;
    const started = this.ctx.lastRunStarted;
    if (run?.runId !== m.runId || started === undefined) return;
    this.ctx.lastRunStarted = undefined;
    const answered = this.posted?.runId === m.runId ? this.posted.at : started;
    const now = Date.now();
    const sameClock = answered <= m.received && m.received <= m.drawn && m.drawn <= m.painted && m.painted <= now;
    const since = (t: number) => `${t - started} ms`;
    const steps = sameClock
      ? `answered at ${since(answered)}, in the webview at ${since(m.received)}, drawn at ${since(m.drawn)}`
      : `answered at ${since(answered)}`;
    this.ctx.log.info(
      `run ${m.runId}: panel painted ${since(sameClock ? m.painted : now)} after Run Attribution ` +
        `(engine ${Math.round(run.timingMs)} ms; ${steps})`,
    );
  }

  /** Marks the run on show out of date (with why), or current. */
  private postStale() {
    if (!this.panel || !this.ctx.lastRun) return;
    void postToWebview(this.panel.webview, { type: 'stale', reasons: staleReasons(this.ctx) });
  }

  dispose(): void {
    this.panel?.dispose();
    this.subs.forEach((d) => d.dispose());
  }
}

/** The same image: size and bytes (base64 as the engine sends them). */
function sameImage(a: P.InputImage, b: P.InputImage): boolean {
  return a.height === b.height && a.width === b.width && a.channels === b.channels && a.data === b.data;
}
