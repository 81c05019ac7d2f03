/**
 * Commands: Open Model…, Open Example Model, Restart Engine, and the help around them (Show Log, Supported
 * Operators, Report Issue, the next run's settings from the status bar).
 */
import * as fs from 'fs';
import * as path from 'path';
import * as vscode from 'vscode';
import type { Ctx } from '../context';
import { openReport, showSupportedOperators } from '../errors';
import { changeRunSettings } from '../status';
import { register } from './register';

/** The bundled example's files, copied where they can be written beside (its composite file, its analysis). */
const EXAMPLE_FILES = ['model.onnx', 'classes.json', 'circle.png', 'square.png', 'triangle.png', 'cross.png'];

export function registerModelCommands(ctx: Ctx): void {
  const open = async (uri?: vscode.Uri) => {
    const file = uri?.fsPath ?? (await pickModelFile());
    if (!file) return;
    const m = await vscode.window.withProgress(
      {
        location: vscode.ProgressLocation.Notification,
        title: `Relevance Lens: opening ${vscode.workspace.asRelativePath(file)}`,
      },
      () => ctx.openModel(file),
    );
    await vscode.commands.executeCommand('relevanceLens.layers.focus');
    const count = ctx.layers().length;
    const what = `${m.info.format.toUpperCase()} model with ${count} layers, input [${m.info.inputShape.join(', ')}]`;
    vscode.window.setStatusBarMessage(`Relevance Lens: ${what}`, 5000);
  };
  register(ctx, 'relevanceLens.openModel', open);
  // the explorer's context-menu entry: same action, titled for that menu
  register(ctx, 'relevanceLens.openInRelevanceLens', open);

  register(ctx, 'relevanceLens.openExample', async () => {
    const folder = exampleFolder(ctx);
    await open(vscode.Uri.file(path.join(folder, 'model.onnx')));
    ctx.setInput(path.join(folder, 'triangle.png'));
  });

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
