/**
 * Regenerates the README's screenshots (docs/screenshot-*.png): the example model in code-server with hooks on
 * two layers after a run, in the dark and light themes, a layer's heatmap tooltip, two explained channels, and the
 * Channel Analysis of the example's data set sorted by "cross" (its planted mark found).
 *   npm run screenshots        (needs npm run package and code-server: scripts/install-code-server.sh)
 */
import * as fs from 'fs';
import * as path from 'path';
import { ROOT, Workbench } from '../test/e2e/harness';
import { writeShapesData } from '../examples/shapes/write-data';

const example = (f: string) => path.join(ROOT, 'examples/shapes', f);

async function shoot(theme: 'Default Dark Modern' | 'Default Light Modern', name: string, tooltip: boolean) {
  const wb = await Workbench.open({
    name: `screenshots-${name}`,
    theme,
    files: {
      'model.onnx': example('model.onnx'),
      'classes.json': example('classes.json'),
      'triangle.png': example('triangle.png'),
    },
  });
  try {
    await wb.contextMenu(wb.explorerRow('model.onnx'), 'Open in Relevance Lens');
    for (const id of ['features.3', 'classifier.1']) {
      await wb.contextMenu(wb.layerRow(id), 'Attach Store Hook');
      await wb.hookIcon(id).waitFor();
    }
    await wb.showExplorer();
    await wb.contextMenu(wb.explorerRow('triangle.png'), 'Use as Relevance Lens Input');
    await wb.command('Relevance Lens: Run Attribution');
    await wb.webviewFrame('#root[data-run-id]', 60_000);
    await wb.openLayersView();
    await wb.layerRow('features.3').click();
    await wb.webviewFrame('section#layer[data-layer="features.3"]');
    await wb.page.mouse.move(1000, 880);
    await wb.page.waitForTimeout(1500); // let notifications fade
    await wb.page.screenshot({ path: path.join(ROOT, 'docs', `screenshot-${name}.png`) });
    if (tooltip) {
      await shootChannels(wb);
      await wb.layerRow('classifier.1').hover();
      const hover = wb.page.locator('.monaco-hover').first();
      await hover.locator('img').waitFor();
      const box = (await hover.boundingBox())!;
      await wb.page.screenshot({
        path: path.join(ROOT, 'docs', 'screenshot-tooltip.png'),
        clip: { x: 0, y: 40, width: Math.min(1440, box.x + box.width + 20), height: box.y + box.height + 20 - 40 },
      });
      await shootAnalysis(wb);
    }
  } finally {
    await wb.close();
  }
}

/** The features.3 card after clicking its two top channel tiles: each one's heatmap at the input, side by side. */
async function shootChannels(wb: Workbench) {
  const frame = await wb.webviewFrame('#root[data-run-id]');
  const card = frame.locator('section.card[data-layer="features.3"]');
  for (const k of [0, 1]) {
    await card.locator('figure.channel-tile').nth(k).click();
    await card.locator('figure.explained-channel').nth(k).waitFor({ timeout: 60_000 });
  }
  await wb.page.waitForTimeout(1500); // let the progress notifications fade
  await card.screenshot({ path: path.join(ROOT, 'docs', 'screenshot-channels.png') });
}

/** Analyze Data Set… on the example's data set (features.0 hooked too), sorted by what matters most for cross. */
async function shootAnalysis(wb: Workbench) {
  writeShapesData(path.join(wb.workspace, 'shapes-data'), 40);
  await wb.page.mouse.move(1000, 880);
  await wb.openLayersView();
  await wb.contextMenu(wb.layerRow('features.0'), 'Attach Store Hook');
  await wb.showExplorer();
  await wb.contextMenu(wb.explorerRow('shapes-data'), 'Analyze Data Set…');
  await wb.page.locator('.quick-input-widget').waitFor({ state: 'visible' });
  await wb.page.keyboard.press('Enter');
  const frame = await wb.webviewFrame('table.channels-table', 120_000);
  await frame.locator('#sort-select').selectOption({ label: 'mattering most for 3 cross' });
  await wb.page.waitForTimeout(2500); // the images load, the notifications fade
  await wb.page.screenshot({ path: path.join(ROOT, 'docs', 'screenshot-analysis.png') });
}

(async () => {
  fs.mkdirSync(path.join(ROOT, 'docs'), { recursive: true });
  await shoot('Default Dark Modern', 'dark', true);
  await shoot('Default Light Modern', 'light', false);
  console.log(
    'wrote docs/screenshot-dark.png, docs/screenshot-light.png, docs/screenshot-tooltip.png, docs/screenshot-channels.png, docs/screenshot-analysis.png',
  );
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
