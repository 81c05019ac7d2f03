/**
 * Explain Channels… and Explain Channel as Target…: what a hooked layer's channels are relevant for at the input
 * (concept-conditional relevance), with the model's target, or with the channel itself as the target.
 */
import * as path from 'path';
import * as vscode from 'vscode';
import type * as P from '../../../protocol/engine';
import type { ChannelExplanation } from '../../../protocol/webview';
import type { Ctx } from '../context';
import type { RelevancePanel } from '../relevance-panel';
import { MAX_MAP_SIZE, requestRun } from './attribution';
import { register } from './register';

export function registerExplainCommands(ctx: Ctx, panel: RelevancePanel): void {
  const id = (layer?: string | P.LayerTreeItem) => (typeof layer === 'string' ? layer : layer?.id);
  register(ctx, 'relevanceLens.explainChannels', (layer?: string | P.LayerTreeItem, channels?: number[]) =>
    explainChannels(ctx, panel, id(layer), channels),
  );
  register(ctx, 'relevanceLens.explainChannelAsTarget', (layer?: string | P.LayerTreeItem, channel?: number) =>
    explainChannels(ctx, panel, id(layer), channel === undefined ? undefined : [channel], true),
  );
}

/**
 * One conditional run beside the latest run (same input, composite and target), a condition set per channel: each
 * channel's heatmap at the input goes to the panel under the layer's card. Without `channels`, a quick pick of the
 * layer's top channels in the latest run. `asTarget`: the relevance starts from the channel's own activation at the
 * layer (zennit-crp's start_layer) instead of from the model's target.
 */
export async function explainChannels(
  ctx: Ctx,
  panel: RelevancePanel,
  layerId = ctx.layerSelection()[0]?.id,
  channels?: number[],
  asTarget = false,
): Promise<ChannelExplanation[] | undefined> {
  const m = await ctx.modelReady();
  const run = ctx.lastRun;
  if (!layerId) throw new Error('select a layer in the Model Layers view first');
  const layer = run?.layers.find((l) => l.id === layerId);
  if (!run || !layer || !run.inputFile)
    throw new Error(`the latest run has no relevance of layer "${layerId}": attach a store hook to it and run first`);
  const picked = channels ?? (await pickChannels(layer, asTarget));
  if (!picked?.length) return undefined;
  const s = ctx.settings;
  const what =
    picked.length === 1 ? `channel ${picked[0]} of ${layerId} sees` : `${picked.length} channels of ${layerId} see`;
  const title = `Relevance Lens: what ${what}${asTarget ? ' as the target' : ''}`;
  const result = await requestRun(ctx, title, {
    modelId: m.info.modelId,
    input: { path: run.inputFile, preprocess: ctx.preprocess },
    ...(ctx.lastRunComposite ?? ctx.runComposite()),
    residual: s.residual,
    target: run.target,
    conditions: { sets: picked.map((c) => ({ [layerId]: [c] })) },
    // as the target: the channel's activation is where the relevance starts
    ...(asTarget && { startLayer: layerId, attributorParams: { outputRelevance: 'logit' as const } }),
    view: { maxSize: MAX_MAP_SIZE },
    // the run on show keeps its tensors (exports, tooltips)
    keep: false,
  });
  if (ctx.lastRun !== run) return undefined; // another run replaced it meanwhile
  const explained: ChannelExplanation[] = picked.map((channel, k) => ({
    channel,
    input: result.conditionRows![k],
    layerSum: layer.channels.find((c) => c.channel === channel)?.sum ?? null,
    asTarget,
  }));
  panel.showExplanation({ type: 'explanation', runId: run.runId, layer: layerId, channels: explained });
  ctx.log.info(`explained channels ${picked.join(', ')} of ${layerId} on ${path.basename(run.inputFile)}`);
  return explained;
}

/** The layer's top channels in the latest run, the most relevant first; several may be picked. */
async function pickChannels(layer: P.LayerView, single: boolean): Promise<number[] | undefined> {
  if (!layer.channels.length) throw new Error(`layer "${layer.id}" has no channel maps to choose from (a dense layer)`);
  const items = layer.channels.map((c) => ({
    label: `channel ${c.channel}`,
    description: `relevance ${c.sum === null ? 'not finite' : c.sum.toPrecision(3)}`,
    channel: c.channel,
  }));
  if (single) {
    const one = await vscode.window.showQuickPick(items, {
      title: `A channel of ${layer.id} as the target: what its activation comes from at the input`,
      ignoreFocusOut: true,
    });
    return one && [one.channel];
  }
  const picked = await vscode.window.showQuickPick(items, {
    title: `Explain channels of ${layer.id}: what each is relevant for at the input`,
    canPickMany: true,
    ignoreFocusOut: true,
  });
  return picked?.map((p) => p.channel);
}
