/** Commands: Run Attribution, Choose Composite…, Set Target Class…, Choose Input…. */
import * as path from 'path';
import * as vscode from 'vscode';
import * as P from '../../../protocol/engine';
import { RUN_COMPOSITES, type RunComposite } from '../../../protocol/names';
import type { Ctx } from '../context';
import type { RelevancePanel } from '../relevance-panel';
import { register } from './register';
import { requestWithProgress } from './progress';
import { pickOne } from './pick';
import { runSettings } from '../status';

/** Maps of at most this many pixels a side: enough for the panel's cards and the tooltips. */
export const MAX_MAP_SIZE = 256;

async function chooseInput(ctx: Ctx): Promise<string | undefined> {
  const picked = await vscode.window.showOpenDialog({
    canSelectMany: false,
    openLabel: 'Use as Input',
    defaultUri: ctx.model ? vscode.Uri.file(path.dirname(ctx.model.path)) : undefined,
    filters: { 'Images and arrays': ['png', 'jpg', 'jpeg', 'npy'] },
  });
  const file = picked?.[0]?.fsPath;
  if (file) ctx.setInput(file);
  return file;
}

export function registerAttributionCommands(ctx: Ctx, panel: RelevancePanel): void {
  const useInput = (uri?: vscode.Uri) => useAsInput(ctx, uri);
  register(ctx, 'relevanceLens.chooseInput', useInput);
  // the explorer's context-menu entry on images and .npy files
  register(ctx, 'relevanceLens.useAsInput', useInput);
  register(ctx, 'relevanceLens.chooseComposite', (name?: string) => chooseComposite(ctx, name));
  register(ctx, 'relevanceLens.setTarget', (target?: number | null) => setTarget(ctx, target));
  // one run at a time: the engine keeps one run's tensors per model
  let running = false;
  register(ctx, 'relevanceLens.runAttribution', async () => {
    if (running) {
      void vscode.window.showInformationMessage(
        'Relevance Lens: an attribution is already running (cancel it from its notification).',
      );
      return;
    }
    running = true;
    try {
      await runAttribution(ctx, panel);
    } finally {
      running = false;
    }
  });
}

async function useAsInput(ctx: Ctx, uri?: vscode.Uri): Promise<void> {
  if (uri) ctx.setInput(uri.fsPath);
  else await chooseInput(ctx);
  if (ctx.input) vscode.window.setStatusBarMessage(`Relevance Lens: input ${path.basename(ctx.input)}`, 5000);
}

async function chooseComposite(ctx: Ctx, name?: string): Promise<void> {
  const info = await ctx.engine.start();
  const items = [
    { label: 'gradient', description: 'no composite: the plain gradient' },
    ...info.composites.map((c) => ({ label: c.name, description: c.description })),
  ];
  const chosen =
    name ??
    (await pickOne(items, { title: `Composite (now ${ctx.compositeLabel})`, current: (i) => i.label === baseOf(ctx) }))
      ?.label;
  if (!chosen) return;
  if (!(RUN_COMPOSITES as readonly string[]).includes(chosen))
    throw new Error(`unknown composite "${chosen}" (choose one of ${RUN_COMPOSITES.join(', ')})`);
  // with a composite file the choice is its base (its parameters kept while the base stays the same)
  const file = ctx.compositeFile.state;
  if (file.kind === 'ok') {
    const base = file.file.base;
    const same = typeof base === 'object' && base.name === chosen;
    await ctx.compositeFile.update(
      (f) => ({ ...f, base: same ? base : (chosen as RunComposite) }),
      () => ctx.freshCompositeFile(),
    );
  }
  ctx.setComposite(chosen);
}

/** The built-in composite in use: the composite file's base, or the chosen one. */
function baseOf(ctx: Ctx): string {
  const f = ctx.compositeFile.state;
  if (f.kind !== 'ok') return ctx.activeComposite;
  return typeof f.file.base === 'string' ? f.file.base : (f.file.base?.name ?? 'gradient');
}

async function setTarget(ctx: Ctx, target?: number | null): Promise<void> {
  const m = await ctx.modelReady();
  if (target !== undefined) {
    // the engine checks it against the model's output when it runs
    if (target !== null && !(Number.isInteger(target) && target >= 0))
      throw new Error(`target ${target} is not a class index`);
    ctx.setTarget(target ?? undefined);
    return;
  }
  const items = [
    {
      label: 'Predicted class',
      description: 'attribute whatever the model predicts (default)',
      value: undefined as number | undefined,
    },
    ...Array.from({ length: outputSize(ctx) }, (_, c) => ({
      label: `${c}${m.classNames?.[c] ? ` ${m.classNames[c]}` : ''}`,
      description: '',
      value: c as number | undefined,
    })),
  ];
  // stays open while the tree and the views update around it (the list can be a thousand classes long)
  const picked = await pickOne(items, { title: 'Target class to explain', current: (i) => i.value === ctx.target });
  if (picked) ctx.setTarget(picked.value);
}

/** One attribution/run request with a cancellable progress notification titled `title`. */
export function requestRun(ctx: Ctx, title: string, params: Omit<P.RunParams, 'workDoneToken'>): Promise<P.RunResult> {
  return requestWithProgress(ctx, title, P.RunAttribution, params);
}

/** Runs an attribution with the current settings and hooks; the result goes to the views. */
async function runAttribution(ctx: Ctx, panel: RelevancePanel): Promise<void> {
  const m = await ctx.modelReady();
  const input = ctx.input ?? (await chooseInput(ctx));
  if (!input) return;
  const s = ctx.settings;
  const composite = ctx.runComposite();
  // what this run uses, taken now: changes made while it runs make it out of date
  const settings = runSettings(ctx)!;
  const started = Date.now();
  const b = s.attributorParams.baseline;
  if (s.attributor === 'integrated_gradients' && typeof b === 'object' && !b.path)
    throw new Error('the baseline is "image": set relevanceLens.attributorParams.baselineImage to an image or .npy');
  // one request: the engine returns what the views draw
  const result = await requestRun(ctx, `Relevance Lens: ${ctx.compositeLabel} on ${path.basename(input)}`, {
    modelId: m.info.modelId,
    input: { path: input, preprocess: ctx.preprocess },
    ...composite,
    residual: s.residual,
    attributor: s.attributor,
    attributorParams: {
      ...s.attributorParams,
      // a baseline image is read as the input is
      baseline:
        typeof s.attributorParams.baseline === 'object'
          ? { ...s.attributorParams.baseline, preprocess: ctx.preprocess }
          : s.attributorParams.baseline,
      outputRelevance: ctx.output.mode,
    },
    classWeights: ctx.output.classWeights,
    target: ctx.target === undefined ? undefined : [ctx.target],
    store: [...m.hooks],
    view: { topChannels: s.topChannels, maxSize: MAX_MAP_SIZE },
    topK: 5,
  });
  if (ctx.model !== m) return; // the model changed while this ran
  const run = {
    ...result,
    model: path.basename(m.path),
    classNames: m.classNames,
    featureNames: m.featureNames,
    inputFile: input,
  };
  ctx.recordRun(run, composite, settings, started);
  panel.show(true);
  const native = run.kernels.startsWith('native') ? ' with native kernels' : '';
  const message = `Relevance Lens: ${run.composite} in ${Math.round(run.timingMs)} ms on ${run.backend}${native}`;
  vscode.window.setStatusBarMessage(message, 5000);
  if (run.warnings.length) void vscode.window.showWarningMessage(`Relevance Lens: ${run.warnings.join('; ')}.`);
}

/** Number of classes: the size of the model's last layer (its output). */
function outputSize(ctx: Ctx): number {
  const leaves = ctx.layers().filter((l) => !l.children.length);
  return leaves.at(-1)?.shape.at(-1) ?? 0;
}
