/**
 * The one object that owns the extension's engine client, its state (open model, hooks, input, target, composite,
 * latest run) and its disposables. Commands and views read and change state through it and listen to its events.
 */
import * as fs from 'fs';
import * as path from 'path';
import * as vscode from 'vscode';
import * as P from '../../protocol/engine';
import type { RunView, ViewSettings } from '../../protocol/webview';
import { imageNetClasses, readClassNames, readFeatureNames } from './class-names';
import { readModelConfig, writeModelConfig } from './model-config';
import { configPreprocess, type ModelConfig } from '../../protocol/model-config';
import { CompositeFileWatch } from './composite-file';
import type { CompositeFile } from '../../protocol/composite-file';
import type { OutputRelevance } from '../../protocol/names';
import { EngineClient } from './engine-client';
import { inputBounds, readSettings, type Settings } from './settings';
import type { RunSettings } from './status';

export interface OpenedModel {
  path: string;
  info: P.ModelInfo;
  /** the layers whose relevance runs store (Zennit's store hooks): held here only, sent with every run */
  hooks: Set<string>;
  /** the names runs and pickers show: the config's, else those found (`foundClassNames`) */
  classNames?: string[];
  /** from a classes.json beside the model, else from the model file's metadata */
  foundClassNames?: string[];
  /** a vector input's feature names, from a features.json beside the model */
  featureNames?: string[];
  /** the model's own settings, from its `.lens.json` beside it */
  config?: ModelConfig;
}

/** What is remembered per workspace, so reopening VS Code restores the session (trusted workspaces only). */
interface Remembered {
  model?: string;
  hooks?: string[];
  input?: string;
  target?: number;
  composite?: string;
  output?: OutputChoice;
}

/** What the output relevance is: the target's one-hot, its logit or abs, or weighted classes (a contrast). */
export interface OutputChoice {
  mode: OutputRelevance;
  classWeights?: { class: number; weight: number }[];
}
const MEMENTO_KEY = 'relevanceLens.session';

/** how many of a model's runs the panel can compare (each holds its drawn maps, a few MB at most) */
const HISTORY_SIZE = 8;

/** A run of the open model, and when it was asked for (Date.now()). */
export interface HistoryEntry {
  run: RunView;
  at: number;
}

export class Ctx implements vscode.Disposable {
  readonly engine: EngineClient;
  readonly log: vscode.LogOutputChannel;
  readonly subscriptions: vscode.Disposable[] = [];
  model?: OpenedModel;
  input?: string;
  /** undefined: the predicted class */
  target?: number;
  /** undefined: the default from the settings */
  composite?: string;
  output: OutputChoice = { mode: 'one_hot' };
  /** the open model's composite file (rules set per layer) */
  readonly compositeFile: CompositeFileWatch;
  /** each layer's rule under the composite the next run uses (from the engine) */
  rules?: P.LayerRules;
  /** the model's runs, the latest last (the panel compares the run on show with an earlier one) */
  runHistory: HistoryEntry[] = [];
  /** the composite the latest run used (its channels are explained with the same one) */
  lastRunComposite?: ReturnType<Ctx['runComposite']>;
  /** what the latest run used, to tell when it is out of date */
  lastRunSettings?: RunSettings;
  /** when the latest run was asked for, until the panel has drawn it */
  lastRunStarted?: number;
  /** the Model Layers tree's selection (set by the tree view) */
  layerSelection: () => readonly P.LayerTreeItem[] = () => [];
  /** colour map and scaling of every heatmap (panel, layer view, tooltips, exports); the settings until changed */
  viewSettings: ViewSettings;

  /** the model file being opened, while it is */
  openingFile?: string;
  /** the open model's file while its weights load (after its tree is shown) */
  loadingWeights?: string;
  private opening?: Promise<unknown>;
  /** set while the engine restarts: the model must be opened again before commands can use it */
  private reopening?: Promise<void>;
  private reopened?: () => void;
  private readonly viewSettingsChanged = new vscode.EventEmitter<ViewSettings>();
  readonly onDidChangeViewSettings = this.viewSettingsChanged.event;
  private readonly modelChanged = new vscode.EventEmitter<void>();
  private readonly openingChanged = new vscode.EventEmitter<void>();
  /** a model began or ended opening (`openingFile`) */
  readonly onDidChangeOpening = this.openingChanged.event;
  private readonly hooksChanged = new vscode.EventEmitter<void>();
  private readonly ran = new vscode.EventEmitter<RunView>();
  private readonly choicesChanged = new vscode.EventEmitter<void>();
  private readonly rulesChanged = new vscode.EventEmitter<void>();
  private readonly analysisChanged = new vscode.EventEmitter<void>();
  /** a data-set analysis of the open model was written (the views that show it reload it) */
  readonly onDidChangeAnalysis = this.analysisChanged.event;
  /** the layers' rules changed (another composite, the composite file, its parameters) */
  readonly onDidChangeRules = this.rulesChanged.event;
  private rulesRequest = 0;
  /** the input, the target or the composite the next run uses changed */
  readonly onDidChangeChoices = this.choicesChanged.event;
  readonly onDidChangeModel = this.modelChanged.event;
  readonly onDidChangeHooks = this.hooksChanged.event;
  readonly onDidRun = this.ran.event;

  constructor(readonly extension: vscode.ExtensionContext) {
    this.log = vscode.window.createOutputChannel('Relevance Lens', { log: true });
    this.engine = new EngineClient(
      extension.asAbsolutePath('dist/engine.js'),
      this.log,
      () => readSettings().backend,
      path.join(extension.globalStorageUri.fsPath, 'code-cache'),
    );
    const s = readSettings();
    this.viewSettings = { colorMap: s.colorMap, scaling: s.scaling };
    this.compositeFile = new CompositeFileWatch(this.log);
    this.subscriptions.push(
      this.log,
      this.engine,
      this.compositeFile,
      this.rulesChanged,
      this.analysisChanged,
      this.compositeFile.onDidChange(() => {
        this.choicesChanged.fire();
        void this.refreshRules();
      }),
      this.modelChanged,
      this.openingChanged,
      this.hooksChanged,
      this.ran,
      this.viewSettingsChanged,
      this.choicesChanged,
    );
    this.subscriptions.push(
      vscode.workspace.onDidChangeConfiguration((e) => {
        if (
          e.affectsConfiguration('relevanceLens.composite') ||
          e.affectsConfiguration('relevanceLens.compositeParams') ||
          e.affectsConfiguration('relevanceLens.preprocess') ||
          e.affectsConfiguration('relevanceLens.residual') ||
          e.affectsConfiguration('relevanceLens.attributor')
        ) {
          this.choicesChanged.fire();
          void this.refreshRules();
        }
        if (e.affectsConfiguration('relevanceLens.colorMap') || e.affectsConfiguration('relevanceLens.scaling')) {
          const c = readSettings();
          this.setViewSettings({ colorMap: c.colorMap, scaling: c.scaling });
        }
        if (e.affectsConfiguration('relevanceLens.backend') && this.engine.info) {
          void vscode.window
            .showInformationMessage(
              'Relevance Lens: the backend setting applies when the engine restarts.',
              'Restart Engine',
            )
            .then((c) => c && vscode.commands.executeCommand('relevanceLens.restartEngine'));
        }
      }),
    );
    this.subscriptions.push(
      this.engine.onDidStop(() => {
        this.reopening ??= new Promise((resolve) => (this.reopened = resolve));
      }),
      this.engine.onDidRestart(() => void this.reopenAfterRestart()),
      // the engine did not come back: commands go on and report that themselves
      this.engine.onDidFailRestart(() => this.settleReopen()),
    );
  }

  get settings(): Settings {
    return readSettings();
  }

  /** How images become the model's input: the model's own config, else the settings. */
  get preprocess(): P.Preprocess {
    return (this.model?.config && configPreprocess(this.model.config)) ?? this.settings.preprocess;
  }

  /** The run on show: the model's latest. */
  get lastRun(): RunView | undefined {
    return this.runHistory.at(-1)?.run;
  }

  /** Records the model's own config (written beside it) and applies it from the next run. */
  async setModelConfig(config: ModelConfig): Promise<string> {
    const m = this.requireModel();
    const file = await writeModelConfig(m.path, config);
    if (this.model === m) m.config = config;
    const names = this.classNamesOf(config, m.foundClassNames);
    if (names !== m.classNames) {
      m.classNames = names;
      // the runs name their classes anew, the one on show at once
      this.runHistory = this.runHistory.map((h) => ({ ...h, run: { ...h.run, classNames: names } }));
      if (this.lastRun) this.ran.fire(this.lastRun);
    }
    this.choicesChanged.fire();
    return file;
  }

  get activeComposite(): string {
    return this.composite ?? this.settings.composite;
  }

  /** The composite as people read it: the built-in one, or the composite file over its base. */
  get compositeLabel(): string {
    const f = this.compositeFile.state;
    if (f.kind === 'none' || !this.compositeFile.uri) return this.activeComposite;
    const file = path.basename(this.compositeFile.uri.fsPath);
    if (f.kind === 'bad') return `${file} (has problems)`;
    const base = typeof f.file.base === 'string' ? f.file.base : (f.file.base?.name ?? 'gradient');
    return `${base} + ${file}`;
  }

  /** The composite part of a run's parameters: the composite file when there is one, else the built-in one. */
  runComposite(): Pick<P.RunParams, 'composite' | 'compositeParams' | 'customComposite'> {
    const f = this.compositeFile.state;
    if (f.kind === 'bad') throw new Error(this.compositeFile.problem());
    if (f.kind === 'ok') return { customComposite: f.file };
    return {
      composite: this.activeComposite as P.RunParams['composite'],
      compositeParams: this.compositeParams(this.activeComposite),
    };
  }

  /** The parameters set for a built-in composite, with the input's bounds where it needs them and none are set. */
  private compositeParams(name: string): P.CompositeParams {
    const s = this.settings;
    const needsBounds = this.engine.info?.composites.find((c) => c.name === name)?.params.includes('low');
    const p = this.preprocess;
    return needsBounds ? { ...inputBounds(p.mean ?? [], p.std ?? []), ...s.compositeParams } : s.compositeParams;
  }

  /** A new composite file's start: the built-in composite now in use, with its parameters from the settings. */
  freshCompositeFile(): CompositeFile {
    const name = this.activeComposite as NonNullable<P.RunParams['composite']>;
    const { epsilon, gamma, stabilizer, low, high } = this.compositeParams(name);
    const params = Object.entries({ epsilon, gamma, stabilizer, low, high }).filter(([, v]) => v !== undefined);
    return { base: params.length ? { name, ...Object.fromEntries(params) } : name };
  }

  /** Asks the engine for each layer's rule under the composite the next run uses. */
  async refreshRules(): Promise<void> {
    const m = this.model;
    const request = ++this.rulesRequest;
    let rules: P.LayerRules | undefined;
    try {
      if (m && this.compositeFile.state.kind !== 'bad')
        rules = await this.engine.request(P.ModelRules, {
          modelId: m.info.modelId,
          residual: this.settings.residual,
          ...this.runComposite(),
        });
    } catch (e) {
      this.log.warn(`the layers' rules: ${(e as Error).message}`);
    }
    if (request !== this.rulesRequest || this.model !== m) return;
    this.rules = rules;
    this.compositeFile.setUnmatched(rules?.unmatched ?? []);
    this.rulesChanged.fire();
  }

  /** The class names a model goes by: its config's (ImageNet's by name), else those found beside or in it. */
  private classNamesOf(config: ModelConfig | undefined, found: string[] | undefined): string[] | undefined {
    if (config?.classes === 'imagenet') return imageNetClasses(this.extension);
    return config?.classes ?? found;
  }

  /**
   * Opens a model in the engine (closing the previous one) and makes it the current model, keeping those of `hooks`
   * that name its layers. `keepRun` keeps the latest run on show (reopening after an engine restart; its tensors
   * are gone, its pictures are not).
   */
  async openModel(
    file: string,
    hooks: Iterable<string> = [],
    keepRun = false,
    token?: vscode.CancellationToken,
  ): Promise<OpenedModel> {
    const opening = this.openModelNow(file, hooks, keepRun, token);
    // commands wait for it (a run asked for meanwhile runs on this model), whether it opens or fails
    this.opening = opening.catch(() => undefined);
    this.openingFile = file;
    this.openingChanged.fire();
    try {
      return await opening;
    } finally {
      if (this.openingFile === file) {
        this.opening = this.openingFile = undefined;
        this.openingChanged.fire();
      }
    }
  }

  private async openModelNow(
    file: string,
    hooks: Iterable<string>,
    keepRun: boolean,
    token?: vscode.CancellationToken,
  ): Promise<OpenedModel> {
    const [info, classes, features, own] = await Promise.all([
      this.engine.request(P.OpenModel, { path: file }, token),
      readClassNames(file),
      readFeatureNames(file),
      readModelConfig(file),
    ]);
    // cancelled while the engine read it: the model on show stays
    if (token?.isCancellationRequested) {
      void this.engine.request(P.CloseModel, { modelId: info.modelId }).catch(() => undefined);
      throw new vscode.CancellationError();
    }
    if (classes.ignored) this.log.warn(`class names not used: ${classes.ignored}`);
    if (info.classNames) this.log.info(`${path.basename(file)} names its classes (metadata "${info.classNames.key}")`);
    const found = classes.names ?? info.classNames?.names;
    if (features.ignored) this.log.warn(`feature names not used: ${features.ignored}`);
    if (own.problem) {
      this.log.warn(`the model's config is not used: ${own.problem}`);
      void vscode.window.showWarningMessage(`Relevance Lens: ${own.problem} (the model's config is not used)`);
    }
    const config = own.config;
    const previous = this.model;
    if (previous) void this.engine.request(P.CloseModel, { modelId: previous.info.modelId }).catch(() => undefined);
    const ids = new Set(layersOf(info.tree).map((l) => l.id));
    this.model = {
      path: file,
      info,
      hooks: new Set([...hooks].filter((id) => ids.has(id))),
      classNames: this.classNamesOf(config, found),
      foundClassNames: found,
      featureNames: features.names,
      config,
    };
    // a model's own target and composite start its session
    if (previous?.path !== file) {
      this.target = config?.target;
      if (config?.composite) this.composite = config.composite;
    }
    if (!keepRun) this.runHistory = [];
    this.remember();
    this.modelChanged.fire();
    // its composite file, and with it the layers' rules
    await this.compositeFile.attach(file);
    return this.model;
  }

  /**
   * Waits for the open model's weights, which the engine loads after the tree (runs wait behind them). The tree says
   * so meanwhile. Cancelled, it closes the model: the engine stops loading.
   */
  async loadWeights(m: OpenedModel, token?: vscode.CancellationToken): Promise<void> {
    this.loadingWeights = m.path;
    this.openingChanged.fire();
    let onCancel: vscode.Disposable | undefined;
    const cancelled = new Promise<'cancelled'>((resolve) => {
      onCancel = token?.onCancellationRequested(() => resolve('cancelled'));
    });
    // neither promise rejects: the one that loses the race settles unobserved
    const ready = this.engine.request(P.ModelWeights, { modelId: m.info.modelId }).then(
      () => 'ready' as const,
      (e: unknown) => ({ error: e }),
    );
    const outcome = await Promise.race([ready, cancelled]);
    onCancel?.dispose();
    if (this.loadingWeights === m.path) {
      this.loadingWeights = undefined;
      this.openingChanged.fire();
    }
    if (outcome === 'cancelled') {
      if (this.model === m) await this.closeModel();
      throw new vscode.CancellationError();
    }
    if (outcome !== 'ready') throw outcome.error;
  }

  /** Closes the open model, here and in the engine (which stops whatever it does with it). */
  async closeModel(): Promise<void> {
    const m = this.model;
    if (!m) return;
    this.model = undefined;
    this.runHistory = [];
    this.remember();
    this.modelChanged.fire();
    await this.engine.request(P.CloseModel, { modelId: m.info.modelId }).catch(() => undefined);
  }

  /** Attaches or detaches store hooks: layers of the open model's tree. */
  async setHooks(ids: string[], attach: boolean): Promise<void> {
    const m = await this.modelReady();
    const known = new Set(this.layers().map((l) => l.id));
    const unknown = ids.filter((id) => !known.has(id));
    if (unknown.length)
      throw new Error(`no layer ${unknown.map((id) => `"${id}"`).join(', ')} in ${path.basename(m.path)}`);
    for (const id of ids) {
      if (attach) m.hooks.add(id);
      else m.hooks.delete(id);
    }
    this.remember();
    this.hooksChanged.fire();
  }

  /** `started`: when Run Attribution began (Date.now()), for the latency to the painted panel */
  recordRun(run: RunView, composite: ReturnType<Ctx['runComposite']>, settings: RunSettings, started: number): void {
    this.runHistory = [...this.runHistory, { run, at: started }].slice(-HISTORY_SIZE);
    this.lastRunStarted = started;
    this.lastRunComposite = composite;
    this.lastRunSettings = settings;
    this.ran.fire(run);
  }

  /** Shows another row of the latest run (a batch's sample): the engine draws it from the run it kept. */
  async viewRow(row: number): Promise<void> {
    const run = this.lastRun;
    if (!run || run.row === row) return;
    const result = await this.engine.request(P.ViewRun, { runId: run.runId, row });
    if (this.lastRun !== run) return; // another run came meanwhile
    // the history keeps the row last shown
    const shown = { ...run, ...result };
    this.runHistory = this.runHistory.map((h) => (h.run === run ? { ...h, run: shown } : h));
    this.ran.fire(shown);
  }

  setViewSettings(settings: ViewSettings): void {
    if (settings.colorMap === this.viewSettings.colorMap && settings.scaling === this.viewSettings.scaling) return;
    this.viewSettings = settings;
    this.viewSettingsChanged.fire(settings);
  }

  setInput(file: string | undefined): void {
    this.input = file;
    this.remember();
    this.choicesChanged.fire();
  }

  setTarget(target: number | undefined): void {
    this.target = target;
    this.remember();
    this.choicesChanged.fire();
  }

  setComposite(name: string | undefined): void {
    this.composite = name;
    this.remember();
    this.choicesChanged.fire();
    void this.refreshRules();
  }

  analysisWritten(): void {
    this.analysisChanged.fire();
  }

  setOutput(output: OutputChoice): void {
    this.output = output;
    this.remember();
    this.choicesChanged.fire();
  }

  /** The open model, once a model being opened is open and any engine restart has reopened it. */
  async modelReady(): Promise<OpenedModel> {
    await this.opening;
    await this.reopening;
    return this.requireModel();
  }

  requireModel(): OpenedModel {
    if (!this.model) throw new Error('no model is open: run "Relevance Lens: Open Model…" first');
    return this.model;
  }

  /** Every layer of the open model, depth first. */
  layers(): P.LayerTreeItem[] {
    return layersOf(this.model?.info.tree ?? []);
  }

  /** After an engine restart the model lives only here: open it again (the hooks never left). */
  private async reopenAfterRestart() {
    const m = this.model;
    try {
      if (!m) return;
      // its id belonged to the old engine process; there is nothing to close in the new one
      this.model = undefined;
      await this.openModel(m.path, m.hooks, true);
      this.log.info(`reopened ${m.path} with ${m.hooks.size} hooks after the engine restarted`);
    } catch (e) {
      this.log.error(`could not reopen ${m!.path} after the restart: ${(e as Error).message}`);
      this.modelChanged.fire();
    } finally {
      this.settleReopen();
    }
  }

  private settleReopen() {
    this.reopened?.();
    this.reopening = this.reopened = undefined;
  }

  private remember() {
    const r: Remembered = {
      model: this.model?.path,
      hooks: this.model ? [...this.model.hooks] : [],
      input: this.input,
      target: this.target,
      composite: this.composite,
      output: this.output,
    };
    void this.extension.workspaceState.update(MEMENTO_KEY, r);
  }

  /** Restores the previous session's model, hooks and choices; never in an untrusted workspace. */
  async restore(): Promise<void> {
    if (!vscode.workspace.isTrusted) return;
    const r = this.extension.workspaceState.get<Remembered>(MEMENTO_KEY);
    if (!r?.model || !fs.existsSync(r.model)) return;
    this.input = r.input && fs.existsSync(r.input) ? r.input : undefined;
    this.composite = r.composite;
    if (r.output) this.output = r.output;
    try {
      await this.openModel(r.model, r.hooks ?? []);
      this.target = r.target;
    } catch (e) {
      this.log.warn(`could not restore ${r.model}: ${(e as Error).message}`);
    }
  }

  dispose(): void {
    for (const d of this.subscriptions.splice(0).reverse()) d.dispose();
  }
}

/** The items of a tree (or of some rows and what is below them), depth first. */
export function layersOf(tree: readonly P.LayerTreeItem[]): P.LayerTreeItem[] {
  const out: P.LayerTreeItem[] = [];
  const walk = (items: readonly P.LayerTreeItem[]) => items.forEach((i) => (out.push(i), walk(i.children)));
  walk(tree);
  return out;
}
