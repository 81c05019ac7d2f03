/** Commands: Attach/Detach Store Hook, Attach Hooks to All Layers of Type…, Clear All Hooks. */
import * as vscode from 'vscode';
import type { LayerTreeItem } from '../../../protocol/engine';
import type { Ctx } from '../context';
import { register } from './register';

/** The layers a tree command acts on: the clicked one (plus the multi-selection), or a pick from the palette. */
async function targetLayers(
  ctx: Ctx,
  hooked: boolean,
  clicked?: LayerTreeItem,
  selected?: LayerTreeItem[],
): Promise<string[]> {
  if (clicked) return (selected?.length ? selected : [clicked]).map((l) => l.id);
  const m = await ctx.modelReady();
  const items = ctx
    .layers()
    .filter((l) => m.hooks.has(l.id) === hooked)
    .map((l) => ({ label: l.id, description: `${l.op} [${l.shape.join(', ')}]` }));
  if (!items.length) {
    void vscode.window.showInformationMessage(
      hooked ? 'Relevance Lens: no layer has a store hook.' : 'Relevance Lens: every layer already has a store hook.',
    );
    return [];
  }
  const picked = await vscode.window.showQuickPick(items, {
    canPickMany: true,
    title: hooked ? 'Detach store hooks from' : 'Attach store hooks to',
  });
  return (picked ?? []).map((p) => p.label);
}

export function registerHookCommands(ctx: Ctx): void {
  // the layer's context menu: its relevance, now
  register(ctx, 'relevanceLens.runWithHook', async (layer?: LayerTreeItem, selected?: LayerTreeItem[]) => {
    const ids = await targetLayers(ctx, false, layer, selected);
    if (!ids.length) return;
    await ctx.setHooks(ids, true);
    await vscode.commands.executeCommand('relevanceLens.runAttribution');
  });

  register(ctx, 'relevanceLens.attachHook', async (layer?: LayerTreeItem, selected?: LayerTreeItem[]) => {
    const ids = await targetLayers(ctx, false, layer, selected);
    if (ids.length) await ctx.setHooks(ids, true);
  });

  register(ctx, 'relevanceLens.detachHook', async (layer?: LayerTreeItem, selected?: LayerTreeItem[]) => {
    const ids = await targetLayers(ctx, true, layer, selected);
    if (ids.length) await ctx.setHooks(ids, false);
  });

  register(ctx, 'relevanceLens.attachHooksOfType', async (op?: string) => {
    await ctx.modelReady();
    const leaves = ctx.layers().filter((l) => l.op !== 'container');
    const ops = [...new Set(leaves.map((l) => l.op))];
    const chosen =
      op ??
      (
        await vscode.window.showQuickPick(
          ops.map((o) => ({ label: o, description: `${leaves.filter((l) => l.op === o).length} layers` })),
          { title: 'Attach store hooks to every layer of type' },
        )
      )?.label;
    if (!chosen) return;
    const ids = leaves.filter((l) => l.op === chosen).map((l) => l.id);
    if (!ids.length) throw new Error(`the model has no layer of type "${chosen}" (it has ${ops.join(', ')})`);
    await ctx.setHooks(ids, true);
  });

  // keyboard: toggles the hook of the focused tree row, or of the selected rows when it is one of them. The key
  // binding's arguments ask VS Code for the focused row (as its view toolbar does): arrow keys move the focus only
  register(ctx, 'relevanceLens.toggleHook', async (focused?: LayerTreeItem) => {
    const m = await ctx.modelReady();
    const selection = ctx.layerSelection();
    const selected = focused?.id && !selection.some((l) => l.id === focused.id) ? [focused] : selection;
    if (!selected.length) throw new Error('select a layer in Model Layers first');
    const attach = selected.filter((l) => !m.hooks.has(l.id)).map((l) => l.id);
    const detach = selected.filter((l) => m.hooks.has(l.id)).map((l) => l.id);
    if (attach.length) await ctx.setHooks(attach, true);
    if (detach.length) await ctx.setHooks(detach, false);
  });

  register(ctx, 'relevanceLens.clearHooks', async () => {
    const m = await ctx.modelReady();
    if (m.hooks.size) await ctx.setHooks([...m.hooks], false);
  });
}
