/** Commands: Analyze Data Set… (palette, and a folder or .npz in the explorer) and Show Channel Analysis. */
import * as path from 'path';
import * as vscode from 'vscode';
import * as P from '../../../protocol/engine';
import type { AnalysisPanel } from '../analysis-panel';
import { analysisFolder } from '../analysis-file';
import type { Ctx } from '../context';
import { register } from './register';
import { requestWithProgress } from './progress';

/** Layers whose channels an analysis ranks by default: the hooked ones, else every convolution and dense layer. */
function defaultLayers(ctx: Ctx): Set<string> {
  const hooked = ctx.model?.hooks ?? new Set<string>();
  return hooked.size
    ? hooked
    : new Set(
        ctx
          .layers()
          .filter((l) => l.type === 'Convolution' || l.type === 'Dense')
          .map((l) => l.id),
      );
}

async function analyzeDataset(ctx: Ctx, panel: AnalysisPanel, uri?: vscode.Uri): Promise<void> {
  const m = await ctx.modelReady();
  const data =
    uri?.fsPath ??
    (
      await vscode.window.showOpenDialog({
        title: 'Data set: a folder of class folders of images (ImageFolder), or an .npz with x and y',
        canSelectFolders: true,
        canSelectFiles: true,
        canSelectMany: false,
        openLabel: 'Analyze',
        filters: { 'NumPy archive': ['npz'] },
        defaultUri: vscode.Uri.file(path.dirname(m.path)),
      })
    )?.[0]?.fsPath;
  if (!data) return;
  const preselected = defaultLayers(ctx);
  const picked = await vscode.window.showQuickPick(
    ctx
      .layers()
      .filter((l) => !l.children.length && l.type !== undefined)
      .map((l) => ({
        label: l.id,
        description: `${l.type} [${l.shape.join(', ')}]`,
        picked: preselected.has(l.id),
      })),
    {
      canPickMany: true,
      title: `Analyze ${path.basename(data)}: the layers whose channels to rank`,
      ignoreFocusOut: true,
    },
  );
  if (!picked?.length) return;
  const s = ctx.settings;
  const params = {
    modelId: m.info.modelId,
    data,
    preprocess: ctx.preprocess,
    layers: picked.map((p) => p.label),
    ...ctx.runComposite(),
    residual: s.residual,
    out: analysisFolder(m.path),
  };
  const result = await requestWithProgress(
    ctx,
    `Relevance Lens: analysing ${path.basename(data)}`,
    P.RunAnalysis,
    params,
  );
  ctx.analysisWritten();
  vscode.window.setStatusBarMessage(
    `Relevance Lens: ${result.samples} samples analysed in ${result.seconds.toFixed(1)} s (${(result.samples / result.seconds).toFixed(1)}/s)`,
    8000,
  );
  await panel.show();
}

export function registerAnalysisCommands(ctx: Ctx, panel: AnalysisPanel): void {
  register(ctx, 'relevanceLens.analyzeDataset', (uri?: vscode.Uri) => analyzeDataset(ctx, panel, uri));
  register(ctx, 'relevanceLens.showAnalysis', async () => {
    await ctx.modelReady();
    await panel.show();
  });
}
