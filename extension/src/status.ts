/**
 * What the next run uses, in words, where a user looks for it: the line under the Model Layers title and a
 * status-bar item (model · composite · target · input) that opens a picker of what to change. Both follow every
 * change; the latest run is compared with it to mark the panel out of date.
 */
import * as fs from 'fs';
import * as path from 'path';
import * as vscode from 'vscode';
import { classWeightsText } from '../../webview/src/format';
import type { Ctx } from './context';
import { modelConfigFileName } from '../../protocol/model-config';

/** The settings the next run uses, each as a short text (undefined: no model is open). */
export interface NextRun {
  model: string;
  composite: string;
  /** a non-default attributor */
  attributor?: string;
  output: string;
  input?: string;
}

export function nextRun(ctx: Ctx): NextRun | undefined {
  const m = ctx.model;
  if (!m) return undefined;
  const attributor = ctx.settings.attributor;
  return {
    model: path.basename(m.path),
    composite: ctx.compositeLabel,
    ...(attributor === 'gradient' ? {} : { attributor }),
    output: outputText(ctx),
    ...(ctx.input ? { input: path.basename(ctx.input) } : {}),
  };
}

/** The output relevance the next run explains: the target (with its class name), or the weighted classes. */
function outputText(ctx: Ctx): string {
  const w = ctx.output.classWeights;
  if (w) return classWeightsText(w, ctx.model?.classNames);
  const name = ctx.target !== undefined && ctx.model?.classNames?.[ctx.target];
  const target = ctx.target === undefined ? 'predicted class' : `target ${ctx.target}${name ? ` (${name})` : ''}`;
  return `${target}${ctx.output.mode === 'one_hot' ? '' : ` (${ctx.output.mode})`}`;
}

/** The line under the Model Layers title. */
export function treeMessage(ctx: Ctx): string | undefined {
  const n = nextRun(ctx);
  const m = ctx.model;
  if (!n || !m) return undefined;
  const attributor = n.attributor ? ` · ${n.attributor}` : '';
  return (
    `${m.info.format.toUpperCase()} · input [${m.info.inputShape.join(', ')}] · ${m.hooks.size} hooked · ` +
    `${n.composite}${attributor} · ${n.output}${n.input ? ` · ${n.input}` : ''}`
  );
}

/** The status-bar item: shown while a model is open; a click opens the picker of what to change. */
export class RunStatusItem implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem(
    'relevanceLens.nextRun',
    vscode.StatusBarAlignment.Left,
    50,
  );

  constructor(private readonly ctx: Ctx) {
    this.item.name = 'Relevance Lens';
    this.item.command = 'relevanceLens.changeRunSettings';
    this.update();
  }

  update(): void {
    const n = nextRun(this.ctx);
    if (!n) return void this.item.hide();
    const parts = [n.model, n.composite, ...(n.attributor ? [n.attributor] : []), n.output, n.input ?? 'no input'];
    this.item.text = `$(eye) ${parts.join(' · ')}`;
    this.item.accessibilityInformation = { label: `Relevance Lens, next run: ${parts.join(', ')}. Click to change.` };
    this.item.tooltip = new vscode.MarkdownString(
      [
        '**Relevance Lens: the next run**',
        '',
        `- model: ${n.model}`,
        `- composite: ${n.composite}`,
        `- attributor: ${n.attributor ?? 'gradient'}`,
        `- output relevance: ${n.output}`,
        `- input: ${n.input ?? 'none chosen yet'}`,
        `- preprocessing: ${preprocessText(this.ctx)}`,
        '',
        'Click to change one of them.',
      ].join('\n'),
    );
    this.item.show();
  }

  dispose(): void {
    this.item.dispose();
  }
}

/** How images are preprocessed, and where that is set. */
function preprocessText(ctx: Ctx): string {
  const own = ctx.model?.config?.preprocess;
  if (own) return `${own.preset ?? 'custom'} (${path.basename(modelConfigFileName(ctx.model!.path))})`;
  const p = ctx.settings.preprocess;
  return p.mean || p.std ? 'mean and std from the settings' : 'none (values in [0, 1])';
}

/** The picker behind the status-bar item: each setting with its value, and the command that changes it. */
export async function changeRunSettings(ctx: Ctx): Promise<void> {
  const n = nextRun(ctx);
  const items: (vscode.QuickPickItem & { command: string })[] = [
    { label: '$(play) Run Attribution', command: 'relevanceLens.runAttribution' },
    { label: 'Composite', description: n?.composite, command: 'relevanceLens.chooseComposite' },
    { label: 'Attributor', description: n?.attributor ?? 'gradient', command: 'relevanceLens.chooseAttributor' },
    { label: 'Target class', description: n?.output, command: 'relevanceLens.setTarget' },
    { label: 'Output relevance', description: n?.output, command: 'relevanceLens.setOutputRelevance' },
    { label: 'Input', description: n?.input ?? 'none chosen yet', command: 'relevanceLens.chooseInput' },
    { label: 'Model', description: n?.model, command: 'relevanceLens.openModel' },
  ];
  const picked = await vscode.window.showQuickPick(items, { title: 'Relevance Lens: the next run' });
  if (picked) await vscode.commands.executeCommand(picked.command);
}

/** What a run used: the next run's settings as they were, with the hooks and the composite's full form. */
export interface RunSettings extends NextRun {
  hooks: string;
  compositeSpec: string;
}

export function runSettings(ctx: Ctx): RunSettings | undefined {
  const n = nextRun(ctx);
  if (!n || !ctx.model) return undefined;
  let compositeSpec: string;
  try {
    compositeSpec = JSON.stringify(ctx.runComposite());
  } catch {
    compositeSpec = 'a composite file with problems';
  }
  return { ...n, hooks: [...ctx.model.hooks].sort().join('\n'), compositeSpec };
}

/** How the latest run differs from what the next run uses (empty: it is current). */
export function staleReasons(ctx: Ctx): string[] {
  const run = ctx.lastRunSettings;
  const now = runSettings(ctx);
  if (!run || !now || !ctx.lastRun) return [];
  const out: string[] = [];
  if (run.model !== now.model) out.push(`the model is now ${now.model}`);
  if (run.composite !== now.composite) out.push(`the composite is now ${now.composite}`);
  else if (run.compositeSpec !== now.compositeSpec) out.push('the composite’s rules or parameters changed');
  if ((run.attributor ?? 'gradient') !== (now.attributor ?? 'gradient'))
    out.push(`the attributor is now ${now.attributor ?? 'gradient'}`);
  if (run.output !== now.output) out.push(`the output relevance is now ${now.output}`);
  if (run.input !== now.input) out.push(`the input is now ${now.input ?? 'none'}`);
  if (run.hooks !== now.hooks) out.push('other layers are hooked now');
  return out;
}

/** " (553 MB)": a file's size for messages (in MB of 10⁶ bytes); nothing when it cannot be read. */
export function fileSize(file: string): string {
  try {
    return ` (${(fs.statSync(file).size / 1e6).toFixed(0)} MB)`;
  } catch {
    return '';
  }
}

/** The tree's loading state: the file and its size, being read, or its weights loading; none when neither. */
export function openingText(ctx: Ctx): string | undefined {
  if (ctx.openingFile) return `Opening ${path.basename(ctx.openingFile)}${fileSize(ctx.openingFile)}…`;
  if (ctx.loadingWeights)
    return `Loading the weights of ${path.basename(ctx.loadingWeights)}${fileSize(ctx.loadingWeights)}…`;
  return undefined;
}
