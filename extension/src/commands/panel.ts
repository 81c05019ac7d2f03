/** Commands: Show Relevance Panel, Export Relevance…. */
import * as path from 'path';
import * as vscode from 'vscode';
import { ResponseError } from 'vscode-jsonrpc/node';
import { heatmapPng } from '../../../engine/src/image';
import { encodeNpy } from '../../../engine/src/npy';
import * as P from '../../../engine/src/server/protocol';
import type { ExportFormat, ViewSettings } from '../../../webview/src/messages';
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

/** Heatmap PNGs are scaled up by a whole factor until the longer side reaches this many pixels. */
const PNG_MIN_SIDE = 256;

export function registerPanelCommands(ctx: Ctx, panel: RelevancePanel): void {
  register(ctx, 'relevanceLens.showPanel', () => panel.show());

  register(ctx, 'relevanceLens.exportRelevance', async (args: ExportArgs = {}) => {
    const run = ctx.lastRun;
    const m = ctx.model;
    if (!run || !m) throw new Error('nothing to export yet: run an attribution first');
    const tensors = [{ id: '', label: 'relevance at the input', ref: run.result.relevance }, ...run.result.layers.map((l) => ({ id: l.id, label: l.id, ref: l.relevance }))];
    const layer = args.layer ?? (await vscode.window.showQuickPick(tensors.map((t) => ({ label: t.label, id: t.id })), { title: 'Export the relevance of' }))?.id;
    if (layer === undefined) return;
    const tensor = tensors.find((t) => t.id === layer);
    if (!tensor) throw new Error(`the last run has no relevance for "${layer}" (attach a store hook and run again)`);
    const format =
      args.format ??
      ((await vscode.window.showQuickPick([{ label: 'png', description: 'heatmap image' }, { label: 'npy', description: 'the tensor, for NumPy' }], { title: 'Format' }))?.label as ExportFormat | undefined);
    if (!format) return;
    const name = `${(layer || 'input').replace(/[^A-Za-z0-9._-]/g, '_')}-relevance.${format}`;
    const to =
      args.to ??
      (await vscode.window.showSaveDialog({ defaultUri: vscode.Uri.file(path.join(path.dirname(m.path), name)), filters: format === 'png' ? { 'PNG image': ['png'] } : { 'NumPy array': ['npy'] } }));
    if (!to) return;
    const t = (await ctx.engine.request(P.GetTensor, { tensorId: tensor.ref.tensorId, view: 'full' }).catch((e) => {
      if (e instanceof ResponseError && e.code === P.ErrorCodes.UNKNOWN_TENSOR) throw new Error('the engine no longer holds this run (it restarted, or the model was reopened): run the attribution again to export');
      throw e;
    })) as P.TensorData;
    const array = { shape: t.shape, data: P.decodeFloats(t.data) };
    let bytes: Buffer;
    if (format === 'npy') bytes = encodeNpy(array);
    else {
      const s = args.settings ?? ctx.viewSettings;
      const channelsFirst = m.info.layout === 'NCHW';
      const shape = array.shape;
      const hw = shape.length === 4 ? (channelsFirst ? shape.slice(2) : shape.slice(1, 3)) : [1, shape[1]];
      bytes = heatmapPng(array, 0, channelsFirst, s.colorMap, Math.max(1, Math.ceil(PNG_MIN_SIDE / Math.max(...hw))), s.scaling);
    }
    await vscode.workspace.fs.writeFile(to, bytes);
    ctx.log.info(`exported ${tensor.label} as ${format} to ${to.fsPath}`);
    void vscode.window.showInformationMessage(`Relevance Lens: saved ${path.basename(to.fsPath)}`);
  });
}
