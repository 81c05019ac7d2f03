/**
 * The extension's scenarios (test/scenarios.ts) through the VS Code API, inside a real extension host: the same
 * flows test/e2e/ drives through the UI in code-server.
 */
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import * as vscode from 'vscode';
import type { RelevanceLensApi } from '../../../extension/src/extension';
import type { LayerTreeItem } from '../../../protocol/engine';
import type { ChannelExplanation } from '../../../protocol/webview';
import { registerScenarios } from '../../scenarios';

const ws = () => vscode.workspace.workspaceFolders![0].uri;
const file = (name: string) => vscode.Uri.joinPath(ws(), name);

async function api(): Promise<RelevanceLensApi> {
  const ext = vscode.extensions.getExtension<RelevanceLensApi>('relevance-lens.relevance-lens')!;
  return ext.activate();
}

function layer(a: RelevanceLensApi, id: string): LayerTreeItem {
  const l = a.ctx.layers().find((x) => x.id === id);
  assert.ok(l, `layer ${id}`);
  return l;
}

suite('Relevance Lens', () => {
  registerScenarios(test, {
    steps: {
      openModel: async () => {
        const a = await api();
        await vscode.commands.executeCommand('relevanceLens.openModel', file('model.onnx'));
        assert.equal(a.ctx.model?.info.format, 'onnx');
        assert.deepEqual(a.ctx.model?.info.inputShape, [1, 3, 32, 32]);
        assert.deepEqual(
          a.ctx.model?.info.tree.map((t) => t.id),
          ['features', 'classifier'],
        );
      },
      // from the tree and by type; then one detached
      attachHooks: async () => {
        const a = await api();
        await vscode.commands.executeCommand('relevanceLens.attachHook', layer(a, 'features.3'));
        await vscode.commands.executeCommand('relevanceLens.attachHooksOfType', 'Gemm');
        assert.deepEqual([...a.ctx.model!.hooks].sort(), ['classifier.1', 'classifier.3', 'features.3']);
        await vscode.commands.executeCommand('relevanceLens.detachHook', layer(a, 'classifier.3'));
        assert.deepEqual([...a.ctx.model!.hooks].sort(), ['classifier.1', 'features.3']);
      },
      run: async () => {
        const a = await api();
        await vscode.commands.executeCommand('relevanceLens.chooseInput', file('triangle.png'));
        await vscode.commands.executeCommand('relevanceLens.runAttribution');
        const run = a.ctx.lastRun;
        assert.ok(run, 'a run was recorded');
        assert.equal(run.composite, 'epsilon_plus_flat');
        assert.deepEqual(run.target, [2]);
        assert.deepEqual(
          run.layers.map((l) => l.id),
          ['features.3', 'classifier.1'],
        );
        assert.ok(Math.abs(run.relevance.sum! - 1.009) < 0.01, `input relevance sum ${run.relevance.sum}`);
      },
      explainChannels: async () => {
        const a = await api();
        const top = a.ctx.lastRun!.layers.find((l) => l.id === 'features.3')!.channels[0];
        const explained = await vscode.commands.executeCommand<ChannelExplanation[]>(
          'relevanceLens.explainChannels',
          'features.3',
          [top.channel],
        );
        assert.equal(explained.length, 1);
        // EpsilonPlusFlat conserves this channel's relevance down to the input
        assert.ok(Math.abs(explained[0].input.sum! - top.sum!) <= 1e-3 * Math.abs(top.sum!), 'input Σ = channel Σ');
        const asTarget = await vscode.commands.executeCommand<ChannelExplanation[]>(
          'relevanceLens.explainChannelAsTarget',
          'features.3',
          top.channel,
        );
        assert.equal(asTarget[0].asTarget, true);
        assert.notEqual(asTarget[0].input.sum, explained[0].input.sum);
      },
      // the target and the composite; the hooks stay
      rerun: async () => {
        const a = await api();
        await vscode.commands.executeCommand('relevanceLens.setTarget', 3);
        await vscode.commands.executeCommand('relevanceLens.chooseComposite', 'epsilon_alpha2_beta1');
        await vscode.commands.executeCommand('relevanceLens.runAttribution');
        assert.deepEqual(a.ctx.lastRun?.target, [3]);
        assert.equal(a.ctx.lastRun?.composite, 'epsilon_alpha2_beta1');
        await vscode.commands.executeCommand('relevanceLens.setTarget', null);
        await vscode.commands.executeCommand('relevanceLens.chooseComposite', 'epsilon_plus_flat');
      },
      export: async () => {
        const png = file('features3.png');
        const npy = file('input.npy');
        await vscode.commands.executeCommand('relevanceLens.exportRelevance', {
          layer: 'features.3',
          format: 'png',
          to: png,
        });
        await vscode.commands.executeCommand('relevanceLens.exportRelevance', { layer: '', format: 'npy', to: npy });
        assert.deepEqual(
          [...fs.readFileSync(png.fsPath).subarray(1, 4)].map((c) => String.fromCharCode(c)).join(''),
          'PNG',
        );
        assert.equal(fs.readFileSync(npy.fsPath).subarray(1, 6).toString(), 'NUMPY');
      },
      corruptModel: async () => {
        const a = await api();
        await vscode.commands.executeCommand('relevanceLens.openModel', file('broken.onnx'));
        assert.equal(path.basename(a.ctx.model!.path), 'model.onnx');
        await vscode.commands.executeCommand('relevanceLens.runAttribution');
        assert.ok(a.ctx.lastRun);
      },
      engineRestart: async () => {
        const a = await api();
        const pid = a.ctx.engine.pid!;
        const restarted = new Promise<void>((resolve) => a.ctx.onDidChangeModel(() => resolve()));
        process.kill(pid, 'SIGKILL');
        await restarted;
        assert.notEqual(a.ctx.engine.pid, pid);
        assert.deepEqual([...a.ctx.model!.hooks].sort(), ['classifier.1', 'features.3']);
        await vscode.commands.executeCommand('relevanceLens.runAttribution');
        assert.deepEqual(
          a.ctx.lastRun?.layers.map((l) => l.id),
          ['features.3', 'classifier.1'],
        );
      },
    },
    after: {
      openModel: [
        [
          'contributes its commands',
          async () => {
            const all = await vscode.commands.getCommands(true);
            for (const c of [
              'openModel',
              'runAttribution',
              'chooseComposite',
              'setTarget',
              'chooseInput',
              'attachHook',
              'detachHook',
              'attachHooksOfType',
              'clearHooks',
              'showPanel',
              'exportRelevance',
              'restartEngine',
            ])
              assert.ok(all.includes(`relevanceLens.${c}`), c);
          },
        ],
      ],
    },
  });
});
