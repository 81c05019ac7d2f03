/**
 * Commands: Open Model…, Open Example Model, Restart Engine, and the help around them (Show Log, Supported
 * Operators, Report Issue, the next run's settings from the status bar).
 */
import * as fs from 'fs';
import * as path from 'path';
import * as vscode from 'vscode';
import type { Ctx } from '../context';
import { readNamesFile } from '../class-names';
import { openReport, showSupportedOperators } from '../errors';
import { pickOne } from './pick';
import { changeRunSettings, fileSize } from '../status';
import { modelConfigFileName } from '../../../protocol/model-config';
import { register } from './register';

/** The bundled example's files, copied where they can be written beside (its composite file, its analysis). */
const EXAMPLE_FILES = ['model.onnx', 'classes.json', 'circle.png', 'square.png', 'triangle.png', 'cross.png'];

export function registerModelCommands(ctx: Ctx): void {
  const open = async (uri?: vscode.Uri) => {
    const file = uri?.fsPath ?? (await pickModelFile());
    if (!file) return;
    // the tree first, then the weights; Cancel at either step stops the open
    await vscode.window.withProgress(
      {
        location: vscode.ProgressLocation.Notification,
        title: `Relevance Lens: opening ${vscode.workspace.asRelativePath(file)}`,
        cancellable: true,
      },
      async (progress, token) => {
        const m = await ctx.openModel(file, [], false, token);
        await vscode.commands.executeCommand('relevanceLens.layers.focus');
        const count = ctx.layers().length;
        const what = `${m.info.format.toUpperCase()} model with ${count} layers, input [${m.info.inputShape.join(', ')}]`;
        vscode.window.setStatusBarMessage(`Relevance Lens: ${what}`, 5000);
        progress.report({ message: `loading its weights${fileSize(file)}…` });
        await ctx.loadWeights(m, token);
      },
    );
    void offerImageNet(ctx);
  };
  register(ctx, 'relevanceLens.openModel', open);
  // the explorer's context-menu entry: same action, titled for that menu
  register(ctx, 'relevanceLens.openInRelevanceLens', open);

  register(ctx, 'relevanceLens.openExample', async () => {
    const folder = exampleFolder(ctx);
    await open(vscode.Uri.file(path.join(folder, 'model.onnx')));
    ctx.setInput(path.join(folder, 'triangle.png'));
  });

  register(ctx, 'relevanceLens.setClassNames', () => setClassNames(ctx));
  register(ctx, 'relevanceLens.showLog', () => ctx.log.show());
  register(ctx, 'relevanceLens.showSupportedOperators', () => showSupportedOperators(ctx));
  register(ctx, 'relevanceLens.reportIssue', () => openReport(ctx));
  register(ctx, 'relevanceLens.changeRunSettings', () => changeRunSettings(ctx));

  register(ctx, 'relevanceLens.restartEngine', async () => {
    const info = await ctx.engine.restart();
    void vscode.window.showInformationMessage(`Relevance Lens: engine restarted on the ${info.backend} backend.`);
  });
}

async function pickModelFile(): Promise<string | undefined> {
  const picked = await vscode.window.showOpenDialog({
    canSelectMany: false,
    openLabel: 'Open in Relevance Lens',
    filters: { 'Models (ONNX, TF.js model.json)': ['onnx', 'json'] },
  });
  return picked?.[0]?.fsPath;
}

/** ImageNet's input size, in either layout */
const imageNetSized = (s: readonly number[]) =>
  s.length === 4 && ((s[1] === 3 && s[2] === 224 && s[3] === 224) || (s[1] === 224 && s[2] === 224 && s[3] === 3));

/** How many classes the model's output has (its last layer's last axis). */
const outputClasses = (ctx: Ctx) => ctx.layers().at(-1)?.shape.at(-1);

/**
 * A model opened for the first time that takes ImageNet-sized images, without a config of its own: asks once
 * whether it is an ImageNet model, and saves the answer as its preprocessing (`model.lens.json`), with ImageNet's
 * class names when it has 1000 outputs and no names of its own.
 */
async function offerImageNet(ctx: Ctx): Promise<void> {
  const m = ctx.model;
  if (!m || m.config || !imageNetSized(m.info.inputShape)) return;
  if (fs.existsSync(modelConfigFileName(m.path))) return; // there, with problems: said when it was read
  const asked = ctx.extension.workspaceState.get<string[]>(CONFIG_ASKED, []);
  if (asked.includes(m.path)) return;
  await ctx.extension.workspaceState.update(CONFIG_ASKED, [...asked, m.path]);
  const name = path.basename(m.path);
  const names = !m.foundClassNames && outputClasses(ctx) === 1000;
  const choice = await vscode.window.showInformationMessage(
    `Relevance Lens: ${name} takes [${m.info.inputShape.join(', ')}] images. Is it an ImageNet model? Its inputs ` +
      "would then be normalized with ImageNet's mean and std (torchvision's), as it was trained" +
      (names ? ", and its 1000 outputs named by ImageNet's classes." : '.'),
    IMAGENET,
    NOT_IMAGENET,
  );
  if (!choice || ctx.model !== m) return;
  const imageNet = choice === IMAGENET;
  const file = await ctx.setModelConfig({
    preprocess: { preset: imageNet ? 'imagenet' : 'none' },
    ...(imageNet && names ? { classes: 'imagenet' as const } : {}),
  });
  vscode.window.setStatusBarMessage(`Relevance Lens: ${name}'s preprocessing saved in ${path.basename(file)}`, 5000);
}

/**
 * Set Class Names…: ImageNet's (for 1000 outputs), a file of names (a JSON list, or a name per line), or the ones
 * found beside or in the model again; saved in the model's config.
 */
async function setClassNames(ctx: Ctx): Promise<void> {
  const m = await ctx.modelReady();
  const outputs = outputClasses(ctx);
  type Item = vscode.QuickPickItem & { choice: 'imagenet' | 'file' | 'found' };
  const items: Item[] = [
    ...(outputs === 1000
      ? [{ label: "ImageNet's 1000 Classes", description: "torchvision's names", choice: 'imagenet' as const }]
      : []),
    { label: 'From a File…', description: 'a JSON list of names, or a text file with a name per line', choice: 'file' },
    ...(m.config?.classes
      ? [
          {
            label: m.foundClassNames ? 'The Names Found with the Model' : 'Class Numbers Only',
            description: m.foundClassNames ? 'classes.json beside it, or its own metadata' : 'no names',
            choice: 'found' as const,
          },
        ]
      : []),
  ];
  const picked = await pickOne(items, {
    title: `Class names of ${path.basename(m.path)}${outputs ? ` (${outputs} outputs)` : ''}`,
    current: (i) => i.choice === 'imagenet' && m.config?.classes === 'imagenet',
  });
  if (!picked) return;
  let classes: string[] | 'imagenet' | undefined;
  if (picked.choice === 'imagenet') classes = 'imagenet';
  else if (picked.choice === 'file') {
    const uri = (
      await vscode.window.showOpenDialog({
        canSelectMany: false,
        openLabel: 'Use These Class Names',
        defaultUri: vscode.Uri.file(path.dirname(m.path)),
        filters: { 'Class names (JSON, text)': ['json', 'txt'], 'All files': ['*'] },
      })
    )?.[0];
    if (!uri) return;
    const read = await readNamesFile(uri.fsPath, 'classes');
    if (!read.names) throw new Error(`no class names used: ${read.ignored ?? `${uri.fsPath} could not be read`}`);
    classes = read.names;
    if (outputs && classes.length !== outputs)
      void vscode.window.showWarningMessage(
        `Relevance Lens: ${path.basename(uri.fsPath)} has ${classes.length} names for ${outputs} outputs.`,
      );
  }
  const config = { ...m.config, classes };
  if (!classes) delete config.classes;
  const file = await ctx.setModelConfig(config);
  vscode.window.setStatusBarMessage(`Relevance Lens: class names saved in ${path.basename(file)}`, 5000);
}
const CONFIG_ASKED = 'relevanceLens.configAsked';
const IMAGENET = 'ImageNet Preprocessing';
const NOT_IMAGENET = 'Not ImageNet';

/**
 * The example model with its class names and images, in the extension's storage: the extension's own folder may be
 * read-only, and rules set in the tree are written beside the model. Files the extension updated are copied again.
 */
function exampleFolder(ctx: Ctx): string {
  const src = ctx.extension.asAbsolutePath(path.join('examples', 'shapes'));
  const dest = path.join(ctx.extension.globalStorageUri.fsPath, 'example');
  fs.mkdirSync(dest, { recursive: true });
  for (const f of EXAMPLE_FILES) {
    const from = path.join(src, f);
    const to = path.join(dest, f);
    const a = fs.statSync(from);
    const b = fs.existsSync(to) ? fs.statSync(to) : undefined;
    if (!b || b.size !== a.size || b.mtimeMs < a.mtimeMs) fs.copyFileSync(from, to);
  }
  return dest;
}
