/**
 * End to end in a real VS Code (code-server) with the packaged .vsix: what a user does, step by step, with a
 * screenshot of each step in test-artifacts/e2e/. Needs `npm run package` first (npm test does it).
 */
import * as assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { canvasStats, HIDE_SYSTEM_LIBS, ROOT, waitFor, Workbench } from './harness';
import { registerScenarios, scenarioWorkspace } from '../scenarios';
import { encodeOnnx } from '../../engine/src/io/onnx-writer';
import { encodeNpy } from '../../engine/src/io/npy';
import { readImage } from '../../engine/src/io/image';

/** The example's four shapes as one batch [4, 3, 32, 32], preprocessed as the extension does (.npy). */
async function batchOfShapes(): Promise<Buffer> {
  const rows = await Promise.all(
    ['circle', 'square', 'triangle', 'cross'].map((s) =>
      readImage(path.join(ROOT, 'examples/shapes', `${s}.png`), 'NCHW', { size: [32, 32], channels: 3 }),
    ),
  );
  const n = rows[0].data.length;
  const data = new Float32Array(4 * n);
  rows.forEach((r, k) => data.set(r.data, k * n));
  return encodeNpy({ shape: [4, 3, 32, 32], data });
}

/** An ImageNet-sized model: [1, 3, 224, 224] → global average pool → Linear(3, 2), weights W (out × in). */
const IMAGENET_W = [
  [1, -2, 0.5],
  [-1, 0.5, 2],
];
function imageNetSizedModel(): Buffer {
  return Buffer.from(
    encodeOnnx({
      input: { name: 'input', dims: [1, 3, 224, 224] },
      output: { name: 'output', dims: [1, 2] },
      nodes: [
        { name: '/pool/GlobalAveragePool', opType: 'GlobalAveragePool', inputs: ['input'], outputs: ['p'] },
        { name: '/flatten/Flatten', opType: 'Flatten', inputs: ['p'], outputs: ['f'] },
        {
          name: '/fc/Gemm',
          opType: 'Gemm',
          inputs: ['f', 'fc.weight'],
          outputs: ['output'],
          attributes: { transB: 1 },
        },
      ],
      initializers: [{ name: 'fc.weight', dims: [2, 3], values: IMAGENET_W.flat() }],
    }),
  );
}

/** A tabular model: 6 named features → Linear(6, 8) → ReLU → Linear(8, 3), with its features.json and a sample. */
function tabularFiles(): Record<string, Buffer> {
  const w1 = Array.from({ length: 8 * 6 }, (_, i) => Math.sin(i + 1) / 2);
  const w2 = Array.from({ length: 8 * 3 }, (_, i) => Math.cos(i + 1) / 2);
  const model = encodeOnnx({
    input: { name: 'input', dims: [1, 6] },
    output: { name: 'output', dims: [1, 3] },
    nodes: [
      { name: '/fc1/Gemm', opType: 'Gemm', inputs: ['input', 'fc1.weight'], outputs: ['h'], attributes: { transB: 1 } },
      { name: '/relu/Relu', opType: 'Relu', inputs: ['h'], outputs: ['r'] },
      { name: '/fc2/MatMul', opType: 'MatMul', inputs: ['r', 'fc2.weight'], outputs: ['output'] },
    ],
    initializers: [
      { name: 'fc1.weight', dims: [8, 6], values: w1 },
      { name: 'fc2.weight', dims: [8, 3], values: w2 },
    ],
  });
  const features = ['age', 'income', 'debt', 'tenure', 'visits', 'score'];
  return {
    // a folder of its own: the example's classes.json names other classes
    'tabular/tabular.onnx': Buffer.from(model),
    'tabular/features.json': Buffer.from(JSON.stringify(features)),
    'tabular/sample.npy': encodeNpy({ shape: [1, 6], data: Float32Array.from([0.5, -1, 2, 0.25, 1, -0.5]) }),
  };
}

/** A model with an operator the engine does not read (NonMaxSuppression), as an export of a detector has. */
function unsupportedModel(): Buffer {
  return Buffer.from(
    encodeOnnx({
      input: { name: 'boxes', dims: [1, 4, 4] },
      output: { name: 'selected', dims: [1, 3] },
      nodes: [
        {
          name: '/nms/NonMaxSuppression',
          opType: 'NonMaxSuppression',
          inputs: ['boxes', 'scores'],
          outputs: ['selected'],
        },
      ],
      initializers: [{ name: 'scores', dims: [1, 1, 4], values: [0.9, 0.8, 0.7, 0.6] }],
    }),
  );
}

/**
 * A small labelled data set in ImageFolder layout: 6 images of each shape from the analysis fixture's, in class
 * folders whose sorted order is the example model's class order (circle, square, triangle, cross).
 */
function shapesData(): Record<string, string> {
  const images = path.join(ROOT, '.zoo-cache/analysis/analysis_shapes/images');
  const folders = ['0_circle', '1_square', '2_triangle', '3_cross'];
  return Object.fromEntries(
    folders.flatMap((folder) => {
      const shape = folder.slice(2);
      return fs
        .readdirSync(path.join(images, shape))
        .sort()
        .slice(0, 6)
        .map((f) => [`shapes-data/${folder}/${f}`, path.join(images, shape, f)]);
    }),
  );
}

describe('Relevance Lens in code-server', { timeout: 600_000 }, () => {
  let wb: Workbench;

  before(async () => {
    wb = await Workbench.open({
      name: 'flows',
      files: {
        ...scenarioWorkspace(ROOT),
        ...shapesData(),
        ...tabularFiles(),
        'batch4.npy': await batchOfShapes(),
        'imagenet/classifier.onnx': imageNetSizedModel(),
        'imagenet/names.txt': Buffer.from('left\nright\n'),
        'unsupported.onnx': unsupportedModel(),
      },
    });
  });

  after(async () => {
    await wb?.close();
  });

  /** The Relevance panel's document, once it shows the run after `previousRun`. */
  async function panelAfter(previousRun?: string) {
    const frame = await wb.webviewFrame('#root[data-run-id]', 60_000);
    await waitFor(
      async () => {
        const id = await frame.$eval('#root', (r) => (r as HTMLElement).dataset.runId).catch(() => undefined);
        return id !== undefined && id !== previousRun;
      },
      60_000,
      'the panel to show a new run',
    );
    return frame;
  }

  const runId = async () =>
    (await wb.webviewFrame('#root[data-run-id]')).$eval('#root', (r) => (r as HTMLElement).dataset.runId!);

  test('with no model open, the palette lists only the commands that work', async () => {
    const entries = await wb.paletteEntries('Relevance Lens: ');
    const has = (title: string) => entries.includes(`Relevance Lens: ${title}`);
    for (const title of [
      'Open Model…',
      'Open Example Model',
      'Choose Composite…',
      'Choose Attributor…',
      'Restart Engine',
      'Show Log',
      'Supported Operators',
      'Report Issue…',
    ])
      assert.ok(has(title), `${title} is offered: ${entries.join(' | ')}`);
    for (const title of [
      'Run Attribution',
      'Attach Store Hook',
      'Detach Store Hook',
      'Clear All Hooks',
      'Set Target Class…',
      'Attach Hooks to All Layers of Type…',
      'Toggle Store Hook on Selected Layers',
      'Run with Hook Here',
      'Export Relevance…',
      'Show Channel Analysis',
    ])
      assert.ok(!has(title), `${title} is not offered without a model`);
    await wb.screenshot('00-palette-without-model');
  });

  registerScenarios(test, {
    steps: {
      // the UI: opens the model from the explorer context menu and shows the layer tree
      openModel: async () => {
        await wb.contextMenu(wb.explorerRow('model.onnx'), 'Open in Relevance Lens');
        await wb.layerRow('features.0').waitFor({ timeout: 60_000 });
        for (const id of ['features', 'features.3', 'classifier', 'classifier.3'])
          assert.equal(await wb.layerRow(id).count(), 1, `tree row ${id}`);
        assert.match(
          (await wb.layerRow('features.0').getAttribute('aria-label'))!,
          /features\.0, Conv, output \[1, 8, 32, 32\]/,
        );
        await wb.screenshot('01-layer-tree');
      },
      // the UI: right-click → Attach Store Hook shows the hook icon
      attachHooks: async () => {
        await wb.contextMenu(wb.layerRow('features.3'), 'Attach Store Hook');
        await wb.hookIcon('features.3').waitFor({ timeout: 10_000 });
        await wb.contextMenu(wb.layerRow('classifier.1'), 'Attach Store Hook');
        await wb.hookIcon('classifier.1').waitFor({ timeout: 10_000 });
        assert.equal(await wb.hookIcon('features.0').count(), 0, 'unhooked layers have no hook icon');
        // the context menu offers Detach (not Attach) on a hooked layer
        await wb.layerRow('features.3').click({ button: 'right' });
        const labels = await wb.page.locator('.monaco-menu .action-label').allInnerTexts();
        await wb.page.keyboard.press('Escape');
        assert.ok(labels.includes('Detach Store Hook') && !labels.includes('Attach Store Hook'), labels.join(' | '));
        // a run from a row is a run with that row's hook
        assert.ok(labels.includes('Run with Hook Here') && !labels.includes('Run Attribution'), labels.join(' | '));
        await wb.screenshot('02-hooks-attached');
      },
      // the UI: runs an attribution from the command palette; the panel draws the input and each hooked layer
      run: async () => {
        await wb.showExplorer();
        await wb.contextMenu(wb.explorerRow('triangle.png'), 'Use as Relevance Lens Input');
        await wb.command('Relevance Lens: Run Attribution');
        const frame = await panelAfter();
        const meta = await frame.$eval('.meta', (e) => e.textContent!);
        // where CI requires the native kernels, the engine inside VS Code must have run them, from the libraries the
        // .vsix carries: code-server runs with the system's oneDNN, OpenCL and OpenMP hidden (the harness)
        const native = process.env.RELEVANCE_LENS_REQUIRE_NATIVE === '1' ? ' · native kernels' : '( · native kernels)?';
        assert.match(
          meta,
          new RegExp(
            `composite epsilon_plus_flat · attributor gradient · target 2 \\(triangle\\) · (wasm|cpu|tensorflow) backend${native} · \\d+ ms`,
          ),
          HIDE_SYSTEM_LIBS.ok
            ? 'with the system libraries hidden'
            : `system libraries not hidden: ${HIDE_SYSTEM_LIBS.why}`,
        );
        const input = await canvasStats(frame, 'canvas.input');
        assert.deepEqual([input.width, input.height], [32, 32]);
        assert.ok(input.colours > 2, `input image drawn (${input.colours} colours)`);
        const rel = await canvasStats(frame, 'figure.relevance canvas');
        assert.ok(rel.colours > 20, `relevance heatmap has ${rel.colours} colours`);
        // bwr: positive relevance on the triangle is red, so red outweighs blue
        assert.ok(rel.mean[0] > rel.mean[2], `mean colour ${rel.mean.map(Math.round)}`);
        const cards = await frame.$$eval('section.card', (cs) => cs.map((c) => (c as HTMLElement).dataset.layer));
        assert.deepEqual(cards, ['features.3', 'classifier.1']);
        const conv = await canvasStats(frame, 'section.card[data-layer="features.3"] canvas.heatmap');
        assert.deepEqual([conv.width, conv.height], [16, 16]);
        assert.ok(conv.colours > 10);
        assert.equal(
          await frame.$$eval('section.card[data-layer="features.3"] canvas.channel', (c) => c.length),
          8,
          'top-8 channel grid',
        );
        assert.equal(
          await frame.$$eval('.conservation rect', (r) => r.length),
          11,
          'a conservation bar per layer and the input',
        );
        // the whole panel came from one request: the engine logs each request it serves
        const requests = () =>
          (wb.extensionLog().match(/\[engine\] [a-z]+\/[a-z]+ (\d+ ms|failed)/g) ?? []).map((l) => l.split(' ')[1]);
        await waitFor(async () => requests().includes('attribution/run'), 10_000, 'the run in the engine log');
        assert.deepEqual(
          requests().filter((r) => !['model/open', 'model/weights', 'model/rules'].includes(r)),
          ['attribution/run'],
          'one round trip for the run',
        );
        // the tree shows each hooked layer's relevance sum
        await wb.openLayersView();
        await waitFor(
          async () => /relevance sum/.test((await wb.layerRow('features.3').getAttribute('aria-label')) ?? ''),
          10_000,
          'the sum in the tree',
        );
        await wb.screenshot('03-relevance-panel');
      },
      // the UI: click a channel tile in the panel; its conditional heatmap appears under the card
      explainChannels: async () => {
        const frame = await wb.webviewFrame('#root[data-run-id]');
        const card = 'section.card[data-layer="features.3"]';
        const tile = frame.locator(`${card} figure.channel-tile`).first();
        const channel = (await tile.getAttribute('data-channel'))!;
        await tile.click();
        const figure = `${card} figure.explained-channel[data-channel="${channel}"]`;
        await frame.locator(figure).waitFor({ timeout: 60_000 });
        const conditional = await canvasStats(frame, `${figure} canvas`);
        const plain = await canvasStats(frame, 'figure.relevance canvas');
        assert.ok(conditional.colours > 5, `conditional heatmap drawn (${conditional.colours} colours)`);
        assert.notDeepEqual(conditional.mean, plain.mean, "the channel's heatmap is not the whole heatmap");
        // EpsilonPlusFlat conserves the channel's relevance down to the input
        const caption = await frame.locator(`${figure} figcaption`).innerText();
        const [, atInput, inLayer] = caption.match(/Σ at the input (\S+) · Σ in the layer (\S+)/)!;
        assert.equal(atInput, inLayer, caption);
        await wb.screenshot('03b-explained-channel');
        // the same channel as the target, from the tree: its own heatmap, beside the other
        await wb.openLayersView();
        await wb.contextMenu(wb.layerRow('features.3'), 'Explain Channel as Target…');
        await wb.pick(`channel ${channel}`);
        const asTarget = `${card} figure.explained-channel[data-channel="${channel}"][data-as-target="true"]`;
        await frame.locator(asTarget).waitFor({ timeout: 60_000 });
        assert.match(await frame.locator(`${asTarget} figcaption`).innerText(), /as the target \(its activation\)/);
        const own = await canvasStats(frame, `${asTarget} canvas`);
        assert.ok(own.colours > 5, `heatmap drawn (${own.colours} colours)`);
        assert.equal(await frame.locator(`${card} figure.explained-channel`).count(), 2, 'side by side');
        await wb.screenshot('03c-channel-as-target');
      },
      // the UI: detach a hook and re-run with another target; the panel and the Layer Relevance view follow
      rerun: async () => {
        const previous = await runId();
        const view = await wb.webviewFrame('section#layer[data-layer="features.0"]');
        const before = {
          key: await view.$eval('section#layer', (s) => (s as HTMLElement).dataset.key),
          map: await canvasStats(view, '#summed'),
        };
        await wb.openLayersView();
        await wb.contextMenu(wb.layerRow('features.3'), 'Detach Store Hook');
        await waitFor(async () => (await wb.hookIcon('features.3').count()) === 0, 10_000, 'the hook icon to go');
        await wb.command('Relevance Lens: Set Target Class…');
        await wb.pick('cross');
        // the line under the view's title says what the next run uses
        await wb.openLayersView();
        const sidebar = wb.page.locator('[id="workbench.view.extension.relevanceLens"]');
        await waitFor(
          async () => /epsilon_plus_flat · target 3 \(cross\) · triangle\.png/.test(await sidebar.innerText()),
          10_000,
          'the new target under the view title',
        );
        await wb.command('Relevance Lens: Run Attribution');
        const frame = await panelAfter(previous);
        const cards = await frame.$$eval('section.card', (cs) => cs.map((c) => (c as HTMLElement).dataset.layer));
        assert.deepEqual(cards, ['features.0', 'classifier.1']);
        assert.match(await frame.$eval('.meta', (e) => e.textContent!), /target 3 \(cross\)/);
        // the inline view updates in place: same document, the new run's data
        await wb.openLayersView();
        await wb.layerRow('features.0').click();
        await waitFor(
          async () =>
            (
              await view.$eval('section#layer', (s) => [
                (s as HTMLElement).dataset.layer,
                (s as HTMLElement).dataset.key,
              ])
            ).join() !== ['features.0', before.key].join() &&
            (await view.$eval('section#layer', (s) => (s as HTMLElement).dataset.layer)) === 'features.0',
          10_000,
          'the view to show features.0 of the new run',
        );
        const after = await canvasStats(view, '#summed');
        assert.notDeepEqual(after.mean, before.map.mean, 'the heatmap changed with the target');
        await wb.screenshot('08-detached-rerun');
      },
      // the UI: the panel's export buttons save a heatmap PNG and a tensor .npy
      export: async () => {
        const frame = await wb.webviewFrame('#root[data-run-id]');
        for (const [format, magic] of [
          ['png', '\x89PNG'],
          ['npy', '\x93NUMPY'],
        ] as const) {
          await frame.locator(`section.card[data-layer="features.0"] [data-export="features.0|${format}"]`).click();
          // VS Code's save dialog, proposing features.0-relevance.<format> beside the model: accept it
          const input = wb.page.locator('.quick-input-widget input[role="combobox"]');
          await input.waitFor({ state: 'visible' });
          const proposed = new RegExp(`/workspace/features\\.0-relevance\\.${format}$`);
          await waitFor(async () => proposed.test(await input.inputValue()), 10_000, 'the proposed file name');
          await input.press('Enter');
          const file = path.join(wb.workspace, `features.0-relevance.${format}`);
          await waitFor(async () => fs.existsSync(file) && fs.statSync(file).size > 0, 15_000, `${file} to be written`);
          assert.equal(fs.readFileSync(file).subarray(0, magic.length).toString('latin1'), magic);
        }
        await wb.screenshot('09-exported');
        await wb.page.locator('.quick-input-widget').waitFor({ state: 'hidden' });
      },
      // the UI: a corrupt model gives an error naming it, and the extension keeps working
      corruptModel: async () => {
        await wb.clearNotifications();
        await wb.showExplorer();
        await wb.contextMenu(wb.explorerRow('broken.onnx'), 'Open in Relevance Lens');
        const msg = await wb.waitForNotification(/broken\.onnx/);
        assert.match(msg, /Relevance Lens: .*broken\.onnx/);
        await wb.screenshot('10-corrupt-model-error');
        const previous = await runId();
        await wb.command('Relevance Lens: Run Attribution');
        await panelAfter(previous);
      },
      // the UI: a killed engine is restarted and the user is told
      engineRestart: async () => {
        await wb.clearNotifications();
        const [pid] = wb.enginePids();
        assert.ok(pid, 'engine process found');
        process.kill(pid, 'SIGKILL');
        await waitFor(
          async () =>
            /Relevance Lens: engine restarted after it stopped \(signal SIGKILL\)/.test(
              await wb.page.locator('.statusbar').innerText(),
            ),
          10_000,
          'the restart in the status bar',
        );
        const msg = await wb.waitForNotification(/engine stopped/);
        assert.match(msg, /restarted/);
        await waitFor(async () => wb.enginePids().some((p) => p !== pid), 30_000, 'a new engine process');
        await wb.screenshot('11-engine-restarted');
        // the model and hooks were reopened in the new engine: a run works and still has the hooked layer
        const previous = await runId();
        await wb.command('Relevance Lens: Run Attribution');
        const frame = await panelAfter(previous);
        assert.deepEqual(await frame.$$eval('section.card', (cs) => cs.map((c) => (c as HTMLElement).dataset.layer)), [
          'features.0',
          'classifier.1',
        ]);
        // the same input as the runs before: the host left its image out of the message, the panel held it
        const input = await canvasStats(frame, 'canvas.input');
        assert.deepEqual([input.width, input.height], [32, 32]);
        assert.ok(input.colours > 2, `input image drawn (${input.colours} colours)`);
        await wb.screenshot('12-run-after-restart');
      },
    },
    after: {
      run: [
        [
          'the heatmap lies over the input with an opacity slider, under a colour bar with the value range',
          async () => {
            const frame = await wb.webviewFrame('#root[data-run-id]');
            const overlay = await canvasStats(frame, 'canvas.overlay');
            assert.deepEqual([overlay.width, overlay.height], [32, 32]);
            assert.ok(overlay.colours > 20, `the overlay has ${overlay.colours} colours`);
            const ramp = await canvasStats(frame, 'canvas.colorbar-ramp');
            assert.deepEqual([ramp.width, ramp.height], [256, 1]);
            assert.ok(ramp.colours > 50, `the colour bar has ${ramp.colours} colours`);
            // symmetric scaling: from −m through 0 to m
            const labels = await frame.locator('.colorbar-labels span').allInnerTexts();
            assert.equal(labels.length, 3, labels.join(' '));
            assert.equal(labels[1], '0');
            assert.equal(Number(labels[0]), -Number(labels[2]), labels.join(' '));
            // all heatmap: the overlay becomes the heatmap itself
            await frame.locator('input.opacity').evaluate((s) => {
              (s as HTMLInputElement).value = '100';
              s.dispatchEvent(new Event('input'));
            });
            const full = await canvasStats(frame, 'canvas.overlay');
            const heat = await canvasStats(frame, 'figure.relevance canvas');
            assert.deepEqual(full.mean, heat.mean, 'at opacity 100 % the overlay is the heatmap');
            await frame.locator('input.opacity').evaluate((s) => {
              (s as HTMLInputElement).value = '50';
              s.dispatchEvent(new Event('input'));
            });
            await wb.screenshot('03a-overlay-colour-bar');
          },
        ],
        [
          'the status bar and the view header follow a composite change; the run on show is marked out of date and Re-run runs again',
          async () => {
            const item = wb.page.locator('.statusbar-item', { hasText: 'model.onnx · ' }).first();
            await waitFor(async () => /epsilon_plus_flat/.test(await item.innerText()), 10_000, 'the status bar item');
            assert.match(await item.innerText(), /model\.onnx · epsilon_plus_flat · predicted class · triangle\.png/);
            const frame = await wb.webviewFrame('#root[data-run-id]');
            assert.equal(await frame.locator('.stale').isVisible(), false, 'a current run is not marked');
            // the panel's own control: the same quick pick as the palette's Choose Composite…
            await frame.locator('#choose-composite').click();
            await wb.pick('epsilon_gamma_box');
            await waitFor(async () => /epsilon_gamma_box/.test(await item.innerText()), 10_000, 'the status bar');
            const sidebar = wb.page.locator('[id="workbench.view.extension.relevanceLens"]');
            assert.match(await sidebar.innerText(), /epsilon_gamma_box · predicted class/);
            await frame.locator('.stale', { hasText: 'the composite is now epsilon_gamma_box' }).waitFor();
            await wb.screenshot('03d-stale-run');
            const previous = await runId();
            await frame.locator('#rerun').click();
            const after = await panelAfter(previous);
            assert.match(await after.$eval('.meta', (e) => e.textContent!), /composite epsilon_gamma_box/);
            assert.equal(await after.locator('.stale').isVisible(), false, 'the new run is current');
            // the run before, beside this one: each column its own composite and heatmaps
            await after.locator('#compare-with').selectOption(previous);
            const column = (id: string) => `.compare-column[data-run-id="${id}"]`;
            await after.locator(column(previous)).waitFor({ timeout: 10_000 });
            const current = await runId();
            assert.match(await after.locator(`${column(current)} .compare-meta`).innerText(), /^epsilon_gamma_box · /);
            assert.match(await after.locator(`${column(previous)} .compare-meta`).innerText(), /^epsilon_plus_flat · /);
            const maps = [];
            for (const id of [current, previous]) {
              assert.deepEqual(
                await after.$$eval(`${column(id)} figure`, (fs) => fs.map((f) => (f as HTMLElement).dataset.layer)),
                ['', 'features.3', 'classifier.1'],
                'the input and both hooked layers',
              );
              maps.push(await canvasStats(after, `${column(id)} figure[data-layer=""] canvas`));
            }
            assert.ok(
              maps.every((m) => m.colours > 10),
              `both heatmaps drawn (${maps.map((m) => m.colours)} colours)`,
            );
            assert.notDeepEqual(maps[0].mean, maps[1].mean, 'two composites, two heatmaps');
            await wb.screenshot('03g-compare-runs');
            await after.locator('#close-compare').click();
            await after.locator('section.compare[hidden]').waitFor({ state: 'attached', timeout: 10_000 });
            // the status bar's picker: back to the default composite, preselected in the quick pick
            await item.click();
            await wb.pick('Composite');
            const active = wb.page.locator('.quick-input-list .monaco-list-row.focused');
            await waitFor(async () => /epsilon_gamma_box/.test(await active.innerText()), 5_000, 'the current one');
            await wb.pick('epsilon_plus_flat');
            await after.locator('.stale', { hasText: 'the composite is now epsilon_plus_flat' }).waitFor();
            const again = await runId();
            await after.locator('#rerun').click();
            await panelAfter(again);
          },
        ],
        [
          'a hooked layer’s channels page by page, and in another order',
          async () => {
            const frame = await wb.webviewFrame('#root[data-run-id]');
            const card = frame.locator('section.card[data-layer="features.3"]');
            const tiles = () =>
              card.locator('.channel-tile').evaluateAll((ts) => ts.map((t) => (t as HTMLElement).dataset.channel));
            const range = card.locator('.pager .range');
            assert.equal(await range.innerText(), 'channels 1–8 of 16');
            const first = await tiles();
            await card.getByRole('button', { name: 'Next channels of features.3' }).click();
            await waitFor(async () => (await range.innerText()) === 'channels 9–16 of 16', 10_000, 'the second page');
            const second = await tiles();
            assert.deepEqual(
              [...first, ...second].map(Number).sort((a, b) => a - b),
              Array.from({ length: 16 }, (_, c) => c),
              'two pages, every channel once',
            );
            const drawn = await canvasStats(frame, 'section.card[data-layer="features.3"] canvas.channel');
            assert.ok(drawn.colours > 2, `the page's channels are drawn (${drawn.colours} colours)`);
            await card.locator('select.channel-order').selectOption('index');
            await waitFor(
              async () => (await tiles()).join() === '0,1,2,3,4,5,6,7',
              10_000,
              'the first page by channel index',
            );
            await wb.screenshot('03h-channel-pages');
          },
        ],
        [
          'double-clicking an .onnx opens its layer table (op, shape, kernel, inputs, rule), whose rows reveal the tree’s',
          async () => {
            await wb.showExplorer();
            await wb.explorerRow('model.onnx').dblclick();
            const table = await wb.webviewFrame('table.model-table tr[data-layer="features.0"]', 30_000);
            const cells = await table.locator('tr[data-layer="features.0"] td').allInnerTexts();
            assert.deepEqual(
              cells.map((c) => c.trim()),
              [
                'features.0',
                'Conv',
                '[1, 8, 32, 32]',
                '224',
                'kernel 3×3 · stride 1×1 · padding 1, 1, 1, 1',
                'input',
                'Flat',
              ],
            );
            assert.match(
              (await table.locator('tr[data-layer="features.3"] td').allInnerTexts()).join(' | '),
              /Conv \| \[1, 16, 16, 16\] \| .* \| features\.2 \| ZPlus/,
            );
            await wb.screenshot('03f-model-editor');
            await table.locator('tr[data-layer="features.3"] button.layer-link').click();
            await waitFor(
              async () => /selected/.test((await wb.layerRow('features.3').getAttribute('class')) ?? ''),
              10_000,
              'features.3 selected in the tree',
            );
            await wb.page.locator('.tab', { hasText: 'model.onnx' }).locator('.codicon-close').click();
          },
        ],
        [
          'clicking a prediction explains that class',
          async () => {
            const frame = await wb.webviewFrame('#root[data-run-id]');
            const previous = await runId();
            await frame.locator('button.prediction', { hasText: 'square' }).click();
            const after = await panelAfter(previous);
            assert.match(await after.$eval('.meta', (e) => e.textContent!), /target 1 \(square\)/);
            assert.match(await after.locator('.predictions .target').innerText(), /square .* · explained/);
            await wb.screenshot('03e-prediction-explained');
            // back to the predicted class for the scenarios that follow, from the panel
            await after.locator('#choose-target').click();
            await wb.pick('Predicted class');
            const again = await runId();
            await wb.command('Relevance Lens: Run Attribution');
            await panelAfter(again);
          },
        ],
        [
          'the colour map picker repaints the heatmaps',
          async () => {
            const frame = await wb.webviewFrame('#root[data-run-id]');
            const before = await canvasStats(frame, 'figure.relevance canvas');
            await frame.locator('#color-map').click();
            await frame.locator('#color-map vscode-option[value="gray"]').click();
            await waitFor(
              async () => {
                const now = await canvasStats(frame, 'figure.relevance canvas');
                return Math.abs(now.mean[0] - now.mean[2]) < 1 && now.mean[0] !== before.mean[0];
              },
              10_000,
              'a gray heatmap',
            );
            await wb.screenshot('04-gray-colour-map');
          },
        ],
        [
          'the Layer Relevance view follows the tree selection (issue 7)',
          async () => {
            await wb.openLayersView();
            await wb.layerRow('features.3').click();
            const frame = await wb.webviewFrame('section#layer[data-layer="features.3"]');
            const key = await frame.$eval('section#layer', (s) => (s as HTMLElement).dataset.key);
            assert.ok(key, 'the view has the layer of the latest run');
            const map = await canvasStats(frame, '#summed');
            assert.deepEqual([map.width, map.height], [16, 16]);
            assert.ok(map.colours > 10, `heatmap drawn (${map.colours} colours)`);
            assert.match(await frame.$eval('#stats', (e) => e.textContent!), /^sum 1\.00 · min /);
            assert.match(
              (await frame.$eval('#summed', (e) => e.getAttribute('aria-label')))!,
              /features\.3 relevance, shape \[1, 16, 16, 16\]: 16×16 heatmap, sum/,
            );
            assert.equal(await frame.$$eval('#channels canvas', (c) => c.length), 8);
            await wb.screenshot('05-layer-view');
          },
        ],
        [
          'the hook key acts on the row the arrow keys moved to, not on the selection left behind',
          async () => {
            await wb.openLayersView();
            await wb.layerRow('features.0').click();
            await wb.page.keyboard.press('ArrowDown');
            const focused = wb.page.locator('[id="workbench.view.extension.relevanceLens"] .monaco-list-row.focused');
            await waitFor(
              async () => /^features\.1,/.test((await focused.getAttribute('aria-label')) ?? ''),
              5_000,
              'focus on features.1',
            );
            assert.match((await wb.layerRow('features.0').getAttribute('class'))!, /selected/, 'the selection stays');
            await wb.page.keyboard.press('Control+Alt+h');
            await wb.hookIcon('features.1').waitFor({ timeout: 10_000 });
            assert.equal(await wb.hookIcon('features.0').count(), 0, 'the selected row is not hooked');
            await wb.screenshot('05b-hook-key-on-focused-row');
            await wb.page.keyboard.press('Control+Alt+h');
            await wb.hookIcon('features.1').waitFor({ state: 'detached', timeout: 10_000 });
          },
        ],
        [
          'hovering a hooked layer shows a tooltip with its heatmap (issue 7)',
          async () => {
            await wb.layerRow('classifier.1').hover();
            const hover = wb.page.locator('.monaco-hover img[src^="data:image/png;base64,"]');
            await hover.waitFor({ state: 'visible', timeout: 15_000 });
            assert.ok(await hover.evaluate((img) => (img as HTMLImageElement).naturalWidth > 0), 'the image decoded');
            // the target's relevance of 1 comes through the dense layer nearly whole (Epsilon: its bias keeps a little)
            const hoverText = await wb.page.locator('.monaco-hover').first().innerText();
            const sum = Number(/relevance sum (\S+)/.exec(hoverText)?.[1]);
            assert.ok(Math.abs(sum - 1) < 0.01, hoverText);
            await wb.screenshot('06-tooltip-heatmap');
            await wb.page.mouse.move(900, 700);
          },
        ],
        [
          'an unhooked layer offers Attach Store Hook and Run (issue 7)',
          async () => {
            await wb.layerRow('features.0').click();
            const frame = await wb.webviewFrame('section#layer[data-layer="features.0"]');
            const button = frame.locator('#action');
            assert.equal((await button.innerText()).trim(), 'Attach Store Hook and Run');
            await button.click();
            await wb.hookIcon('features.0').waitFor({ timeout: 15_000 });
            await waitFor(
              async () => ((await frame.$eval('section#layer', (s) => (s as HTMLElement).dataset.key)) ?? '') !== '',
              60_000,
              'the run to reach the view',
            );
            const map = await canvasStats(frame, '#summed');
            assert.deepEqual([map.width, map.height], [32, 32]);
            await wb.screenshot('07-attached-from-view');
          },
        ],
      ],
      export: [
        [
          'Set LRP Rule… on a layer: the tree shows it, the heatmap changes, the composite file reproduces the run in the CLI',
          async () => {
            const frame = await wb.webviewFrame('#root[data-run-id]');
            const previous = await runId();
            const before = await canvasStats(frame, 'figure.relevance canvas');
            await wb.openLayersView();
            assert.match((await wb.layerRow('features.3').getAttribute('aria-label'))!, /rule ZPlus(,|$)/);
            await wb.contextMenu(wb.layerRow('features.3'), 'Set LRP Rule…');
            await wb.pick('gamma');
            await wb.enterText('0.5', /γ, the weight of the positive parts/);
            await waitFor(
              async () =>
                /rule Gamma \(gamma=0\.5\) set in the composite file/.test(
                  (await wb.layerRow('features.3').getAttribute('aria-label')) ?? '',
                ),
              10_000,
              'the rule in the tree',
            );
            assert.match(await wb.layerRow('features.3').innerText(), /✎ Gamma \(gamma=0\.5\)/);
            const file = path.join(wb.workspace, 'model.composite.json');
            assert.deepEqual(JSON.parse(fs.readFileSync(file, 'utf8')), {
              base: 'epsilon_plus_flat',
              nameMap: [{ layers: ['features.3'], rule: 'gamma', gamma: 0.5 }],
            });
            const sidebar = wb.page.locator('[id="workbench.view.extension.relevanceLens"]');
            assert.match(await sidebar.innerText(), /epsilon_plus_flat \+ model\.composite\.json/);
            await wb.screenshot('13-rule-set');
            await wb.command('Relevance Lens: Run Attribution');
            const after = await panelAfter(previous);
            assert.match(
              await after.$eval('.meta', (e) => e.textContent!),
              /custom\(epsilon_plus_flat\) · attributor gradient/,
            );
            const now = await canvasStats(after, 'figure.relevance canvas');
            assert.notDeepEqual(now.mean, before.mean, 'the heatmap changed with the rule');
            await wb.screenshot('14-run-with-rule');
            // the stored layer's tensor, saved from the panel, equals the CLI's with the same composite file
            await after.locator('section.card[data-layer="features.0"] [data-export="features.0|npy"]').click();
            const input = wb.page.locator('.quick-input-widget input[role="combobox"]');
            await input.waitFor({ state: 'visible' });
            // the dialog proposes features.0-relevance.npy (saved by the export step): name it anew
            await waitFor(
              async () => /features\.0-relevance\.npy$/.test(await input.inputValue()),
              10_000,
              'the proposal',
            );
            const saved = path.join(wb.workspace, 'gamma-features.0.npy');
            await input.fill((await input.inputValue()).replace(/features\.0-relevance\.npy$/, 'gamma-features.0.npy'));
            await input.press('Enter');
            await waitFor(async () => fs.existsSync(saved) && fs.statSync(saved).size > 0, 15_000, `${saved}`);
            const out = fs.mkdtempSync(path.join(os.tmpdir(), 'rl-e2e-cli-'));
            const cli = spawnSync(
              process.execPath,
              [
                path.join(ROOT, 'bin/relevance-lens.js'),
                'attribute',
                path.join(wb.workspace, 'model.onnx'),
                '--input',
                path.join(wb.workspace, 'triangle.png'),
                '--composite',
                file,
                '--target',
                '3',
                '--store',
                'features.0',
                '--out',
                out,
              ],
              { encoding: 'utf8' },
            );
            assert.equal(cli.status, 0, cli.stderr);
            assert.ok(
              fs.readFileSync(saved).equals(fs.readFileSync(path.join(out, 'layers/features.0.npy'))),
              'the same bytes',
            );
          },
        ],
        [
          'a malformed composite file: a diagnostic at its line in the Problems panel, and runs refuse it alike',
          async () => {
            const file = path.join(wb.workspace, 'model.composite.json');
            const good = fs.readFileSync(file, 'utf8');
            fs.writeFileSync(
              file,
              '{\n  "base": "epsilon_plus_flat",\n  "nameMap": [{"layers": ["features.3"], "rule": "gamma", "gama": 0.5}]\n}\n',
            );
            await wb.openLayersView();
            // the rule goes from the tree: the file cannot be read
            await waitFor(
              async () => !/Gamma/.test((await wb.layerRow('features.3').getAttribute('aria-label')) ?? ''),
              15_000,
              'the tree to drop the file’s rule',
            );
            await wb.command('Problems: Focus on Problems View');
            const problems = wb.page.locator('.markers-panel');
            await waitFor(
              async () => /unknown key "gama".*\[Ln 3, Col 59\]/s.test(await problems.innerText().catch(() => '')),
              15_000,
              'the diagnostic in the Problems panel',
            );
            await wb.screenshot('15-composite-file-problem');
            await wb.clearNotifications();
            await wb.command('Relevance Lens: Run Attribution');
            const msg = await wb.waitForNotification(/model\.composite\.json:3:59: nameMap\[0\]: unknown key "gama"/);
            assert.match(msg, /gamma takes gamma, stabilizer, zero_params/);
            // mended, the rule is back
            fs.writeFileSync(file, good);
            await waitFor(
              async () => /rule Gamma/.test((await wb.layerRow('features.3').getAttribute('aria-label')) ?? ''),
              15_000,
              'the rule back in the tree',
            );
            fs.rmSync(file);
            await waitFor(
              async () => /rule ZPlus(,|$)/.test((await wb.layerRow('features.3').getAttribute('aria-label')) ?? ''),
              15_000,
              'the base composite’s rule once the file is gone',
            );
          },
        ],
        [
          'Set Output Relevance… (why A rather than B) and Choose Attributor… (IntegratedGradients) apply to the next run',
          async () => {
            await wb.command('Relevance Lens: Set Output Relevance…');
            await wb.pick('contrast');
            await wb.pick('cross');
            await wb.pick('circle');
            await wb.command('Relevance Lens: Choose Attributor…');
            await wb.pick('integrated_gradients');
            await wb.enterText('4', /the number of passes/);
            await wb.pick('zeros');
            await wb.openLayersView();
            const sidebar = wb.page.locator('[id="workbench.view.extension.relevanceLens"]');
            await waitFor(
              async () => /integrated_gradients · 3 \(cross\) rather than 0 \(circle\)/.test(await sidebar.innerText()),
              10_000,
              'the choices under the view title',
            );
            const previous = await runId();
            await wb.command('Relevance Lens: Run Attribution');
            const frame = await panelAfter(previous);
            assert.match(
              await frame.$eval('.meta', (e) => e.textContent!),
              /epsilon_plus_flat · attributor integrated_gradients · target 3 \(cross\) rather than 0 \(circle\)/,
            );
            await wb.screenshot('16-contrast-integrated-gradients');
            // back to the defaults for the scenarios that follow
            await wb.command('Relevance Lens: Set Output Relevance…');
            await wb.pick('one_hot');
            await wb.command('Relevance Lens: Choose Attributor…');
            await wb.pick('gradient');
          },
        ],
      ],
      corruptModel: [
        [
          'an unsupported operator’s error offers Supported Operators, Report Issue and Show Log',
          async () => {
            await wb.clearNotifications();
            await wb.showExplorer();
            await wb.contextMenu(wb.explorerRow('unsupported.onnx'), 'Open in Relevance Lens');
            const toast = wb.page.locator('.notification-toast', { hasText: 'NonMaxSuppression' });
            await toast.waitFor({ timeout: 30_000 });
            const buttons = await toast.locator('a.monaco-button, .monaco-button').allInnerTexts();
            for (const b of ['Supported Operators', 'Report Issue', 'Show Log'])
              assert.ok(buttons.includes(b), `the error offers ${b}: ${buttons.join(' | ')}`);
            assert.match(await toast.innerText(), /Export the model with operators the engine reads/);
            await wb.screenshot('10b-unsupported-op-actions');
            await toast.locator('.monaco-button', { hasText: 'Supported Operators' }).click();
            const doc = await wb.webviewFrame('h1[id^="operators"]', 30_000);
            const text = await doc.locator('body').innerText();
            for (const op of ['Conv', 'Gemm', 'BatchNormalization', 'Conv2D', 'Dense'])
              assert.match(text, new RegExp(`\\b${op}\\b`), `${op} is listed`);
            await wb.screenshot('10c-supported-operators');
            await wb.page.locator('.tab', { hasText: 'Preview Supported Operators' }).locator('.codicon-close').click();
          },
        ],
        [
          'Analyze Data Set… from the explorer: each channel’s reference samples appear, cropped, with heatmaps',
          async () => {
            await wb.showExplorer();
            await wb.contextMenu(wb.explorerRow('shapes-data'), 'Analyze Data Set…');
            // the hooked layers are preselected: accept them
            const widget = wb.page.locator('.quick-input-widget');
            await waitFor(
              async () => /the layers whose channels to rank/.test(await widget.innerText()),
              10_000,
              'the layer pick',
            );
            await wb.page.keyboard.press('Enter');
            const frame = await wb.webviewFrame('table.channels-table', 120_000);
            assert.equal(await frame.locator('tbody tr').count(), 8, 'a row per channel of features.0');
            const img = frame.locator('tbody tr').first().locator('figure.reference img').first();
            await waitFor(
              async () => img.evaluate((i) => (i as HTMLImageElement).naturalWidth > 0),
              10_000,
              'the image',
            );
            // the reference image has pixels: a shape on a background, not one colour
            const colours = await img.evaluate((i) => {
              const im = i as HTMLImageElement;
              const c = document.createElement('canvas');
              [c.width, c.height] = [im.naturalWidth, im.naturalHeight];
              const g = c.getContext('2d')!;
              g.drawImage(im, 0, 0);
              const d = g.getImageData(0, 0, c.width, c.height).data;
              const set = new Set<number>();
              for (let k = 0; k < d.length; k += 4) set.add((d[k] << 16) | (d[k + 1] << 8) | d[k + 2]);
              return set.size;
            });
            assert.ok(colours > 3, `the reference image has ${colours} colours`);
            assert.equal(await frame.locator('tbody tr').first().locator('figure.reference').count(), 8);
            assert.ok(fs.existsSync(path.join(wb.workspace, 'model.analysis/analysis.json')), 'saved beside the model');
            // sorting by a class puts the channels that matter for it first
            await frame.locator('#sort-select').selectOption({ index: 2 });
            await wb.screenshot('17-channel-analysis');
            // the Layer Relevance view shows, under the layer, what its channels see in the data set
            await wb.openLayersView();
            await wb.layerRow('features.0').click();
            const view = await wb.webviewFrame(
              'section#layer[data-layer="features.0"] #analysis figure.reference',
              30_000,
            );
            const seen = view.locator('#analysis figure.reference img').first();
            await waitFor(
              async () => seen.evaluate((i) => (i as HTMLImageElement).naturalWidth > 0),
              10_000,
              'its image',
            );
            assert.match(await view.locator('#analysis h4').innerText(), /What its channels see in shapes-data/);
            await wb.screenshot('18-layer-view-analysis');
          },
        ],
      ],
      engineRestart: [
        [
          'a batch of 4: a sample picker with each sample’s sum, the sums adding up to the batch’s total',
          async () => {
            await wb.showExplorer();
            await wb.contextMenu(wb.explorerRow('batch4.npy'), 'Use as Relevance Lens Input');
            const previous = await runId();
            await wb.command('Relevance Lens: Run Attribution');
            const frame = await panelAfter(previous);
            const options = await frame.locator('select#row option').allInnerTexts();
            assert.equal(options.length, 4, options.join(' | '));
            const sums = options.map((o) => Number(/Σ (\S+)/.exec(o)![1]));
            const total = Number(/: (\S+)$/.exec(await frame.locator('.batch-total').innerText())![1]);
            // each shown to 3 significant digits
            assert.ok(
              Math.abs(sums.reduce((a, b) => a + b, 0) - total) <= 0.01 * Math.abs(total),
              `${sums} vs ${total}`,
            );
            const caption = async () =>
              Number(/sum (\S+)/.exec(await frame.locator('figure.relevance figcaption').innerText())![1]);
            assert.equal(await caption(), sums[0], 'sample 0 on show, with its own sum');
            await frame.locator('select#row').selectOption('2');
            await waitFor(async () => (await caption()) === sums[2], 30_000, 'sample 2 on show');
            await wb.screenshot('20-batch-sample-picker');
          },
        ],
        [
          'a tabular model’s input relevance is a bar per feature, named from features.json',
          async () => {
            await wb.showExplorer();
            await wb.explorerRow('tabular').click();
            await wb.contextMenu(wb.explorerRow('tabular.onnx'), 'Open in Relevance Lens');
            await wb.layerRow('fc1').waitFor({ timeout: 60_000 });
            await wb.contextMenu(wb.layerRow('fc1'), 'Attach Store Hook');
            await wb.hookIcon('fc1').waitFor({ timeout: 10_000 });
            await wb.showExplorer();
            await wb.contextMenu(wb.explorerRow('sample.npy'), 'Use as Relevance Lens Input');
            const previous = await runId();
            await wb.command('Relevance Lens: Run Attribution');
            const frame = await panelAfter(previous);
            const bars = frame.locator('figure.relevance svg.feature-bars g');
            assert.equal(await bars.count(), 6, 'a bar per feature');
            const labels = await frame
              .locator('figure.relevance svg.feature-bars g text:first-child')
              .allTextContents();
            assert.deepEqual(labels, ['0 age', '1 income', '2 debt', '3 tenure', '4 visits', '5 score']);
            assert.equal(await frame.locator('canvas.input').count(), 0, 'no input picture for a vector');
            assert.equal(await frame.locator('canvas.overlay').count(), 0, 'no overlay for a vector');
            // the dense layer's card: a bar per unit too
            assert.equal(await frame.locator('section.card[data-layer="fc1"] svg.feature-bars g').count(), 8);
            await wb.screenshot('19-tabular-bars');
          },
        ],
        [
          'an ImageNet-sized model opened for the first time: asked once, the answer saved beside it and used',
          async () => {
            await wb.clearNotifications();
            await wb.showExplorer();
            await wb.explorerRow('imagenet').click();
            await wb.contextMenu(wb.explorerRow('classifier.onnx'), 'Open in Relevance Lens');
            const toast = wb.page.locator('.notification-toast', { hasText: 'Is it an ImageNet model?' });
            await toast.waitFor({ timeout: 30_000 });
            await wb.screenshot('21-imagenet-offer');
            await toast.locator('.monaco-button', { hasText: 'ImageNet Preprocessing' }).click();
            const file = path.join(wb.workspace, 'imagenet/classifier.lens.json');
            await waitFor(async () => fs.existsSync(file), 10_000, 'the model config written');
            assert.deepEqual(JSON.parse(fs.readFileSync(file, 'utf8')), { preprocess: { preset: 'imagenet' } });
            // the run normalizes the input with ImageNet's mean and std: the logits say so
            await wb.showExplorer();
            await wb.contextMenu(wb.explorerRow('triangle.png'), 'Use as Relevance Lens Input');
            const previous = await runId();
            await wb.command('Relevance Lens: Run Attribution');
            const frame = await panelAfter(previous);
            const x = await readImage(path.join(ROOT, 'examples/shapes/triangle.png'), 'NCHW', {
              size: [224, 224],
              channels: 3,
              mean: [0.485, 0.456, 0.406],
              std: [0.229, 0.224, 0.225],
            });
            const n = 224 * 224;
            const pooled = [0, 1, 2].map((c) => x.data.subarray(c * n, (c + 1) * n).reduce((a, b) => a + b, 0) / n);
            const logits = IMAGENET_W.map((w) => w.reduce((a, v, i) => a + v * pooled[i], 0));
            const shown = (await frame.locator('.predictions li').allInnerTexts()).map((t) => {
              const [, c, logit] = /class (\d+)\)? — .* \(logit (\S+)\)/.exec(t)!;
              return [Number(c), Number(logit)] as const;
            });
            for (const [c, logit] of shown)
              assert.ok(
                Math.abs(logit - logits[c]) <= 0.01 * Math.abs(logits[c]) + 1e-3,
                `class ${c}: ${logit} vs ${logits[c]}`,
              );
            // its classes are numbers: the panel offers to name them, from a file of a name per line
            await frame.locator('#name-classes').click();
            await wb.pick('From a File…');
            const input = wb.page.locator('.quick-input-widget input[role="combobox"]');
            await waitFor(async () => /\/imagenet\/?$/.test(await input.inputValue()), 10_000, 'the model’s folder');
            await input.fill(path.join(wb.workspace, 'imagenet/names.txt'));
            await input.press('Enter');
            await waitFor(
              async () => JSON.parse(fs.readFileSync(file, 'utf8')).classes?.length === 2,
              10_000,
              'the names saved in the config',
            );
            assert.deepEqual(JSON.parse(fs.readFileSync(file, 'utf8')), {
              preprocess: { preset: 'imagenet' },
              classes: ['left', 'right'],
            });
            // the run on show names them at once, and offers naming no more
            await waitFor(
              async () => /^(left|right) \(class \d\)/.test(await frame.locator('.predictions li').first().innerText()),
              10_000,
              'named predictions',
            );
            assert.equal(await frame.locator('#name-classes').count(), 0);
            await wb.screenshot('21b-class-names');
            // reopened, it is not asked again
            await wb.clearNotifications();
            await wb.contextMenu(wb.explorerRow('model.onnx'), 'Open in Relevance Lens');
            await wb.layerRow('features.0').waitFor({ timeout: 30_000 });
            // opening shows the Model Layers view: back to the explorer
            await wb.showExplorer();
            await wb.contextMenu(wb.explorerRow('classifier.onnx'), 'Open in Relevance Lens');
            await wb.layerRow('fc').waitFor({ timeout: 30_000 });
            await wb.page.waitForTimeout(2_000);
            assert.equal(await toast.count(), 0, 'asked once');
          },
        ],
        [
          'the webviews ran without a Content-Security-Policy violation',
          async () => {
            const violations = wb.console.filter((m) => /Content Security Policy/i.test(m) && /relevance-lens/.test(m));
            assert.deepEqual(violations, []);
          },
        ],
      ],
    },
  });
});
