/** Commands: Show Relevance Panel, Export Relevance…. */
import * as path from 'path';
import * as vscode from 'vscode';
import { ResponseError } from 'vscode-jsonrpc/node';
import * as P from '../../../protocol/engine';
import { decodeBytes } from '../../../protocol/floats';
import type { ExportFormat } from '../../../protocol/names';
import type { ViewSettings } from '../../../protocol/webview';
import type { Ctx } from '../context';
import type { RelevancePanel } from '../relevance-panel';
import { register } from './register';

/** What to export: `layer` is a hooked layer id or '' for the input relevance; `to` skips the save dialog. */
export interface ExportArgs {
  layer?: string;
  format?: ExportFormat;
  settings?: ViewSettings;
  to?: vscode.Uri;
}

export function registerPanelCommands(ctx: Ctx, panel: RelevancePanel): void {
  register(ctx, 'relevanceLens.showPanel', () => panel.show());

  register(ctx, 'relevanceLens.exportRelevance', async (args: ExportArgs = {}) => {
    const run = ctx.lastRun;
    const m = ctx.model;
    if (!run || !m) throw new Error('nothing to export yet: run an attribution first');
    const tensors = [
      { id: '', label: 'relevance at the input' },
      ...run.layers.map((l) => ({ id: l.id, label: l.id })),
    ];
    const layer =
      args.layer ??
      (
        await vscode.window.showQuickPick(
          tensors.map((t) => ({ label: t.label, id: t.id })),
          { title: 'Export the relevance of' },
        )
      )?.id;
    if (layer === undefined) return;
    const tensor = tensors.find((t) => t.id === layer);
    if (!tensor) throw new Error(`the last run has no relevance for "${layer}" (attach a store hook and run again)`);
    const format =
      args.format ??
      ((
        await vscode.window.showQuickPick(
          [
            { label: 'png', description: 'heatmap image' },
            { label: 'npy', description: 'the tensor, for NumPy' },
          ],
          { title: 'Format' },
        )
      )?.label as ExportFormat | undefined);
    if (!format) return;
    const name = `${(layer || 'input').replace(/[^A-Za-z0-9._-]/g, '_')}-relevance.${format}`;
    const to =
      args.to ??
      (await vscode.window.showSaveDialog({
        defaultUri: vscode.Uri.file(path.join(path.dirname(m.path), name)),
        filters: format === 'png' ? { 'PNG image': ['png'] } : { 'NumPy array': ['npy'] },
      }));
    if (!to) return;
    const settings = args.settings ?? ctx.viewSettings;
    const file = await ctx.engine
      .request(P.ExportTensor, { runId: run.runId, layer, format, row: run.row, ...settings })
      .catch((e) => {
        if (e instanceof ResponseError && e.code === P.ErrorCodes.UNKNOWN_TENSOR)
          throw new Error(
            'the engine no longer holds this run (it restarted, or the model was reopened): ' +
              'run the attribution again to export',
          );
        throw e;
      });
    await vscode.workspace.fs.writeFile(to, decodeBytes(file.data));
    ctx.log.info(`exported ${tensor.label} as ${format} to ${to.fsPath}`);
    void vscode.window.showInformationMessage(`Relevance Lens: saved ${path.basename(to.fsPath)}`);
  });
}
