/** Commands: Open Model…, Restart Engine. */
import * as vscode from 'vscode';
import type { Ctx } from '../context';
import { register } from './register';

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
