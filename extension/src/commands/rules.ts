/**
 * Commands that compose the explanation: Set LRP Rule… / Reset LRP Rule on tree rows (saved in the model's
 * composite file), Open Composite File, Choose Attributor…, Set Output Relevance….
 */
import * as path from 'path';
import * as vscode from 'vscode';
import { type RuleSpec, setNameMapRule } from '../../../protocol/composite-file';
import type { LayerTreeItem } from '../../../protocol/engine';
import {
  ATTRIBUTOR_NAMES,
  type AttributorName,
  RULE_LAYERS,
  RULE_NAMES,
  type RuleName,
  ruleSuits,
} from '../../../protocol/names';
import { type Ctx, layersOf, type OutputChoice } from '../context';
import { register } from './register';
import { pickOne } from './pick';

/** What each rule is, in the quick pick. */
const RULE_DESCRIPTIONS: Record<RuleName, string> = {
  epsilon: 'Epsilon: z + ε·sign(z) in the denominator (dense layers)',
  zplus: 'ZPlus: positive contributions only',
  alpha_beta: 'AlphaBeta: α·positive − β·negative contributions',
  gamma: 'Gamma: positive weights favoured by γ (convolutions)',
  zbox: 'ZBox: bounded input (the first layer)',
  flat: 'Flat: spread uniformly over the receptive field',
  wsquare: 'WSquare: by squared weights',
  norm: 'Norm: in proportion to each input (sums, average pooling)',
  pass: 'Pass: the relevance passes through unchanged (activations)',
  relu_deconvnet: 'ReLU DeconvNet: ReLU of the incoming gradient',
  relu_guided_backprop: 'ReLU Guided Backprop',
  relu_beta_smooth: 'ReLU Beta-Smooth: the gradient of softplus(β)',
  gradient: 'Gradient: no rule, the plain gradient',
};

/** The numeric parameters asked for, with Zennit's defaults; the rest (stabilizer, zero_params) by hand in the file. */
const ASKED: Partial<Record<RuleName, [keyof RuleSpec, number, string][]>> = {
  epsilon: [['epsilon', 1e-6, 'ε, the stabilizer (≥ 0)']],
  gamma: [['gamma', 0.25, 'γ, the weight of the positive parts (≥ 0)']],
  alpha_beta: [['alpha', 2, 'α, the weight of the positive contributions (≥ 1); β = α − 1']],
  zbox: [
    ['low', -3, 'the lowest input value'],
    ['high', 3, 'the highest input value'],
  ],
  relu_beta_smooth: [['beta_smooth', 10, 'β of softplus (> 0)']],
};

/** The rows a tree command acts on: the clicked row with the selection, the focused selection, or none. */
function rowsOf(ctx: Ctx, clicked?: LayerTreeItem, selected?: LayerTreeItem[]): LayerTreeItem[] {
  if (clicked) return selected?.length ? selected : [clicked];
  return [...ctx.layerSelection()];
}

/** The layers a rule goes on: each row itself, or for a container the layers below it that the rule is made for. */
function layersFor(rows: LayerTreeItem[], rule: RuleName): string[] {
  const ids: string[] = [];
  for (const row of rows) {
    if (row.children.length) {
      const suited = layersOf(row.children).filter((l) => !l.children.length && ruleSuits(rule, l.type));
      if (!suited.length)
        throw new Error(`no layer under ${row.id} takes ${rule} (it is for ${RULE_LAYERS[rule].join(', ')} layers)`);
      ids.push(...suited.map((l) => l.id));
    } else if (!ruleSuits(rule, row.type)) {
      throw new Error(
        `${rule} is a rule for ${RULE_LAYERS[rule].join(', ')} layers; ${row.id} is ${row.type ? `a ${row.type} layer` : `a ${row.op}`}`,
      );
    } else ids.push(row.id);
  }
  return [...new Set(ids)];
}

async function askNumber(title: string, prompt: string, value: number, check: (v: number) => string | undefined) {
  const text = await vscode.window.showInputBox({
    title,
    prompt,
    value: String(value),
    ignoreFocusOut: true,
    validateInput: (t) => {
      const v = Number(t);
      return t.trim() === '' || !Number.isFinite(v) ? 'a number' : check(v);
    },
  });
  return text === undefined ? undefined : Number(text);
}

/** The rule and its parameters, from quick picks and input boxes (undefined: cancelled). */
async function pickRule(title: string, now?: string): Promise<RuleSpec | undefined> {
  const picked = await vscode.window.showQuickPick(
    RULE_NAMES.map((r) => ({ label: r, description: RULE_DESCRIPTIONS[r] })),
    { title: now ? `${title} (now ${now})` : title, ignoreFocusOut: true },
  );
  if (!picked) return undefined;
  const rule = picked.label as RuleName;
  const spec: RuleSpec = { rule };
  for (const [key, fallback, prompt] of ASKED[rule] ?? []) {
    const check = (v: number) =>
      key === 'alpha' && v < 1
        ? 'α ≥ 1 (β = α − 1 ≥ 0)'
        : key === 'high' && spec.low !== undefined && v <= spec.low
          ? `above low (${spec.low})`
          : (key === 'beta_smooth' && v <= 0) || (['epsilon', 'gamma'].includes(key) && v < 0)
            ? 'out of range'
            : undefined;
    const v = await askNumber(`${title}: ${rule}`, prompt, fallback, check);
    if (v === undefined) return undefined;
    Object.assign(spec, { [key]: v });
  }
  if (rule === 'alpha_beta') spec.beta = spec.alpha! - 1;
  return spec;
}

async function setRule(ctx: Ctx, clicked?: LayerTreeItem, selected?: LayerTreeItem[]): Promise<void> {
  await ctx.modelReady();
  let rows = rowsOf(ctx, clicked, selected);
  if (!rows.length) {
    const picked = await vscode.window.showQuickPick(
      ctx.layers().map((l) => ({ label: l.id, description: `${l.op} [${l.shape.join(', ')}]`, layer: l })),
      { canPickMany: true, title: 'Set an LRP rule on' },
    );
    rows = (picked ?? []).map((p) => p.layer);
    if (!rows.length) return;
  }
  const what = rows.length === 1 ? rows[0].id : `${rows.length} layers`;
  const spec = await pickRule(
    `LRP rule for ${what}`,
    rows.length === 1 ? ctx.rules?.layers[rows[0].id]?.rule : undefined,
  );
  if (!spec) return;
  const ids = layersFor(rows, spec.rule);
  await ctx.compositeFile.update(
    (file) => setNameMapRule(file, ids, spec),
    () => ctx.freshCompositeFile(),
  );
  const file = path.basename(ctx.compositeFile.uri!.fsPath);
  vscode.window.setStatusBarMessage(
    `Relevance Lens: ${spec.rule} on ${ids.length === 1 ? ids[0] : `${ids.length} layers`}, saved in ${file}`,
    5000,
  );
}

async function resetRule(ctx: Ctx, clicked?: LayerTreeItem, selected?: LayerTreeItem[]): Promise<void> {
  await ctx.modelReady();
  const rows = rowsOf(ctx, clicked, selected);
  const set = (id: string) => ctx.rules?.layers[id]?.set === true;
  const ids = rows.length
    ? layersOf(rows).map((l) => l.id)
    : ctx
        .layers()
        .map((l) => l.id)
        .filter(set);
  if (ctx.compositeFile.state.kind === 'none') return;
  await ctx.compositeFile.update(
    (file) => setNameMapRule(file, ids, undefined),
    () => ctx.freshCompositeFile(),
  );
  // a glob entry, or the file's layer map, may still set it: say so
  await ctx.refreshRules();
  const still = ids.filter(set);
  if (still.length)
    void vscode.window
      .showInformationMessage(
        `Relevance Lens: ${still.slice(0, 3).join(', ')}${still.length > 3 ? ', …' : ''} still get a rule from the composite file (a pattern or its layer map).`,
        'Open Composite File',
      )
      .then((c) => c && vscode.commands.executeCommand('relevanceLens.openCompositeFile'));
}

async function openCompositeFile(ctx: Ctx): Promise<void> {
  await ctx.modelReady();
  if (ctx.compositeFile.state.kind === 'none')
    await ctx.compositeFile.update(
      (file) => file,
      () => ctx.freshCompositeFile(),
    );
  await vscode.window.showTextDocument(ctx.compositeFile.uri!);
}

async function chooseAttributor(ctx: Ctx, name?: AttributorName): Promise<void> {
  const c = vscode.workspace.getConfiguration('relevanceLens');
  const now = ctx.settings.attributor;
  const descriptions: Record<AttributorName, string> = {
    gradient: 'one relevance pass with the composite (default)',
    smoothgrad: 'averaged over noisy copies of the input',
    integrated_gradients: 'averaged along the path from a baseline',
    occlusion: 'the output’s change as a window of the input is zeroed',
  };
  const chosen =
    name ??
    ((
      await pickOne(
        ATTRIBUTOR_NAMES.map((a) => ({ label: a, description: descriptions[a] })),
        { title: `Attributor (now ${now})`, current: (i) => i.label === now },
      )
    )?.label as AttributorName | undefined);
  if (!chosen) return;
  if (!(ATTRIBUTOR_NAMES as readonly string[]).includes(chosen))
    throw new Error(`unknown attributor "${chosen}" (choose one of ${ATTRIBUTOR_NAMES.join(', ')})`);
  const target = vscode.workspace.workspaceFolders
    ? vscode.ConfigurationTarget.Workspace
    : vscode.ConfigurationTarget.Global;
  const p = ctx.settings.attributorParams;
  if (!name && (chosen === 'smoothgrad' || chosen === 'integrated_gradients')) {
    const n = await askNumber(chosen, 'the number of passes', p.nIter ?? 20, (v) =>
      Number.isInteger(v) && v >= 1 && v <= 1000 ? undefined : 'a whole number from 1 to 1000',
    );
    if (n === undefined) return;
    await c.update('attributorParams.nIter', n, target);
  }
  if (!name && chosen === 'smoothgrad') {
    const level = await askNumber(
      'smoothgrad',
      'noise level: the noise’s std as a fraction of the value range',
      p.noiseLevel ?? 0.1,
      (v) => (v >= 0 ? undefined : '≥ 0'),
    );
    if (level === undefined) return;
    await c.update('attributorParams.noiseLevel', level, target);
  }
  if (!name && chosen === 'integrated_gradients') {
    const baseline = await vscode.window.showQuickPick(['zeros', 'mean', 'blurred', 'image'], {
      title: 'integrated_gradients: the baseline',
      ignoreFocusOut: true,
    });
    if (!baseline) return;
    if (baseline === 'image') {
      const picked = await vscode.window.showOpenDialog({
        canSelectMany: false,
        openLabel: 'Use as Baseline',
        filters: { 'Images and arrays': ['png', 'jpg', 'jpeg', 'npy'] },
      });
      if (!picked?.[0]) return;
      await c.update('attributorParams.baselineImage', picked[0].fsPath, target);
    }
    await c.update('attributorParams.baseline', baseline, target);
  }
  if (!name && chosen === 'occlusion') {
    const window = await askNumber('occlusion', 'the window’s size', p.window ?? 8, (v) =>
      Number.isInteger(v) && v >= 1 ? undefined : 'a whole number ≥ 1',
    );
    if (window === undefined) return;
    const stride = await askNumber('occlusion', 'the window’s stride', p.stride ?? 8, (v) =>
      Number.isInteger(v) && v >= 1 ? undefined : 'a whole number ≥ 1',
    );
    if (stride === undefined) return;
    const fill = await askNumber('occlusion', 'the value the occluded part takes', p.fill ?? 0, () => undefined);
    if (fill === undefined) return;
    await c.update('attributorParams.window', window, target);
    await c.update('attributorParams.stride', stride, target);
    await c.update('attributorParams.fill', fill, target);
  }
  await c.update('attributor', chosen, target);
}

/** Parses "3:1, 5:-0.5" (class:weight pairs). */
function parseWeights(text: string): { class: number; weight: number }[] | string {
  const pairs = text.split(',').map((p) => /^\s*(\d+)\s*:\s*([+-]?\d*\.?\d+(?:[eE][+-]?\d+)?)\s*$/.exec(p));
  if (!pairs.length || pairs.some((m) => !m)) return 'class:weight pairs, e.g. 3:1, 5:-0.5';
  return pairs.map((m) => ({ class: Number(m![1]), weight: Number(m![2]) }));
}

async function setOutputRelevance(ctx: Ctx, choice?: OutputChoice): Promise<void> {
  const m = await ctx.modelReady();
  if (choice) return ctx.setOutput(choice);
  const classes =
    ctx
      .layers()
      .filter((l) => !l.children.length)
      .at(-1)
      ?.shape.at(-1) ?? 0;
  const named = (c: number) => `${c}${m.classNames?.[c] ? ` ${m.classNames[c]}` : ''}`;
  const items = [
    { label: 'one_hot', description: 'the target class’s one-hot (Zennit’s default)' },
    { label: 'logit', description: 'the target’s logit (one-hot times the output)' },
    { label: 'abs', description: 'the absolute value of the target’s logit' },
    { label: 'contrast', description: 'why A rather than B: one-hot(A) − one-hot(B)' },
    { label: 'weights', description: 'weighted classes, e.g. 3:1, 5:0.5' },
  ];
  const now = ctx.output.classWeights
    ? ctx.output.classWeights.length === 2
      ? 'contrast'
      : 'weights'
    : ctx.output.mode;
  const picked = await pickOne(items, { title: 'Output relevance', current: (i) => i.label === now });
  if (!picked) return;
  if (picked.label === 'contrast') {
    const pick = (title: string) =>
      vscode.window.showQuickPick(
        Array.from({ length: classes }, (_, c) => ({ label: named(c), value: c })),
        { title, ignoreFocusOut: true },
      );
    const a = await pick('Why this class…');
    if (!a) return;
    const b = await pick(`…rather than this one? (A = ${a.label})`);
    if (!b) return;
    ctx.setOutput({
      mode: 'one_hot',
      classWeights: [
        { class: a.value, weight: 1 },
        { class: b.value, weight: -1 },
      ],
    });
  } else if (picked.label === 'weights') {
    const text = await vscode.window.showInputBox({
      title: 'Output relevance: weighted classes',
      prompt: `class:weight pairs (classes 0–${classes - 1})`,
      ignoreFocusOut: true,
      validateInput: (t) => {
        const w = parseWeights(t);
        return typeof w === 'string'
          ? w
          : w.some((x) => x.class >= classes)
            ? `classes are 0–${classes - 1}`
            : undefined;
      },
    });
    if (text === undefined) return;
    ctx.setOutput({ mode: 'one_hot', classWeights: parseWeights(text) as { class: number; weight: number }[] });
  } else ctx.setOutput({ mode: picked.label as OutputChoice['mode'] });
}

export function registerRuleCommands(ctx: Ctx): void {
  register(ctx, 'relevanceLens.setRule', (l?: LayerTreeItem, s?: LayerTreeItem[]) => setRule(ctx, l, s));
  register(ctx, 'relevanceLens.resetRule', (l?: LayerTreeItem, s?: LayerTreeItem[]) => resetRule(ctx, l, s));
  register(ctx, 'relevanceLens.openCompositeFile', () => openCompositeFile(ctx));
  register(ctx, 'relevanceLens.chooseAttributor', (name?: AttributorName) => chooseAttributor(ctx, name));
  register(ctx, 'relevanceLens.setOutputRelevance', (choice?: OutputChoice) => setOutputRelevance(ctx, choice));
}
