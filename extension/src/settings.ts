/** The extension's settings (`relevanceLens.*`), read in one place. */
import * as path from 'path';
import * as vscode from 'vscode';
import type { AttributorParams, CompositeParams, Preprocess } from '../../protocol/engine';
import type { AttributorName, ColorMapName, ResidualMode, Scaling } from '../../protocol/names';

export interface Settings {
  composite: string;
  /** the composite parameters set */
  compositeParams: CompositeParams;
  residual: ResidualMode;
  attributor: AttributorName;
  /** the attributor's parameters (the output relevance is the context's choice, not a setting) */
  attributorParams: Omit<AttributorParams, 'outputRelevance' | 'seed'>;
  backend: string | undefined;
  colorMap: ColorMapName;
  scaling: Scaling;
  topChannels: number;
  preprocess: Preprocess;
}

/** IntegratedGradients' baseline: a kind, or the image setting's file (relative paths from the workspace folder). */
function baselineSetting(c: vscode.WorkspaceConfiguration): AttributorParams['baseline'] {
  const kind = c.get<string>('attributorParams.baseline', 'zeros');
  if (kind !== 'image') return kind === 'mean' || kind === 'blurred' ? kind : 'zeros';
  const file = c.get<string | null>('attributorParams.baselineImage', null);
  if (!file)
    throw new Error('the baseline is "image": set relevanceLens.attributorParams.baselineImage to an image or .npy');
  const folder = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
  return { path: path.isAbsolute(file) || !folder ? file : path.join(folder, file) };
}

/** The lowest and highest value an image scaled to [0, 1] takes after (x − mean) / std, over its channels. */
export function inputBounds(mean: readonly number[], std: readonly number[]): { low: number; high: number } {
  const channels = Math.max(mean.length, std.length, 1);
  const at = (v: number, c: number) => (v - (mean[c] ?? 0)) / (std[c] ?? 1);
  const values = Array.from({ length: channels }, (_, c) => [at(0, c), at(1, c)]).flat();
  return { low: Math.min(...values), high: Math.max(...values) };
}

export function readSettings(): Settings {
  const c = vscode.workspace.getConfiguration('relevanceLens');
  const size = c.get<number[] | null>('preprocess.size', null);
  const mean = c.get<number[] | null>('preprocess.mean', null);
  const std = c.get<number[] | null>('preprocess.std', null);
  const compositeParams: CompositeParams = {};
  for (const key of ['epsilon', 'gamma', 'stabilizer', 'low', 'high'] as const) {
    const v = c.get<number | null>(`compositeParams.${key}`, null);
    if (typeof v === 'number') compositeParams[key] = v;
  }
  const backend = c.get<string>('backend', 'auto');
  return {
    composite: c.get<string>('composite', 'epsilon_plus_flat'),
    compositeParams,
    residual: c.get<ResidualMode>('residual', 'norm'),
    attributor: c.get<AttributorName>('attributor', 'gradient'),
    attributorParams: {
      nIter: c.get<number>('attributorParams.nIter', 20),
      noiseLevel: c.get<number>('attributorParams.noiseLevel', 0.1),
      baseline: baselineSetting(c),
      window: c.get<number>('attributorParams.window', 8),
      stride: c.get<number>('attributorParams.stride', 8),
      fill: c.get<number>('attributorParams.fill', 0),
    },
    backend: backend === 'auto' ? undefined : backend,
    colorMap: c.get<ColorMapName>('colorMap', 'bwr'),
    scaling: c.get<Scaling>('scaling', 'symmetric'),
    topChannels: c.get<number>('topChannels', 8),
    preprocess: {
      ...(size && size.length === 2 ? { size: [size[0], size[1]] as [number, number] } : {}),
      ...(mean?.length ? { mean } : {}),
      ...(std?.length ? { std } : {}),
    },
  };
}
