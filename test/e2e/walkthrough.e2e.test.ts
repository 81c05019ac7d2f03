/**
 * A first hour from an empty workspace: the walkthrough's five steps done as a new user does them (its buttons,
 * the tree's context menu), each step checked off by VS Code, with the status-bar item and the panel on the way.
 * Screenshots in test-artifacts/e2e/.
 */
import * as assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { canvasStats, waitFor, Workbench } from './harness';

describe('the walkthrough in code-server, from an empty workspace', { timeout: 600_000 }, () => {
  let wb: Workbench;

  before(async () => {
    wb = await Workbench.open({ name: 'walkthrough', files: {} });
  });

  after(async () => {
    await wb?.close();
  });

  /** A step of the walkthrough page (its header button). */
  const step = (id: string) => wb.page.locator(`button.getting-started-step[data-step-id$="#${id}"]`);
  const done = async (id: string) => (await step(id).getAttribute('aria-checked')) === 'true';
  const waitDone = (id: string) => waitFor(() => done(id), 30_000, `the walkthrough step ${id} checked off`);
  /** Opens a step and clicks the button its description offers. */
  async function stepButton(id: string, label: string) {
    await step(id).click();
    await wb.page.locator('.getting-started-step.expanded .monaco-button', { hasText: label }).first().click();
  }

  test('its steps complete: example model, input, store hook, run and panel', async () => {
    await wb.command('Welcome: Open Walkthrough...');
    await wb.pick('Explain a network with Relevance Lens');
    await step('openExample').waitFor({ timeout: 30_000 });
    await wb.screenshot('walkthrough-01-start');
    for (const id of ['openExample', 'chooseInput', 'attachHook', 'run', 'read'])
      assert.equal(await done(id), false, `${id} is not done yet`);

    await stepButton('openExample', 'Open Example Model');
    await wb.layerRow('features.0').waitFor({ timeout: 60_000 });
    await waitDone('openExample');
    // the example comes with its triangle as the input
    await waitDone('chooseInput');
    const status = wb.page.locator('.statusbar-item', { hasText: 'model.onnx · ' }).first();
    assert.match(await status.innerText(), /model\.onnx · epsilon_plus_flat · predicted class · triangle\.png/);

    await wb.contextMenu(wb.layerRow('features.3'), 'Attach Store Hook');
    await wb.hookIcon('features.3').waitFor({ timeout: 10_000 });
    await waitDone('attachHook');
    await wb.screenshot('walkthrough-02-hooked');

    await stepButton('run', 'Run Attribution');
    const frame = await wb.webviewFrame('#root[data-run-id]', 60_000);
    const rel = await canvasStats(frame, 'figure.relevance canvas');
    assert.ok(rel.colours > 20, `the heatmap has ${rel.colours} colours`);
    assert.match(await frame.$eval('.meta', (e) => e.textContent!), /target 2 \(triangle\)/);
    await waitDone('run');

    // back to the walkthrough's tab (the panel opened beside it)
    await wb.page.locator('.tab', { hasText: 'Walkthrough' }).first().click();
    await stepButton('read', 'Show Relevance Panel');
    await wb.page.locator('.tab', { hasText: 'Walkthrough' }).first().click();
    await waitDone('read');
    for (const id of ['openExample', 'chooseInput', 'attachHook', 'run', 'read'])
      assert.ok(await done(id), `${id} is checked off`);
    await wb.screenshot('walkthrough-03-complete');
  });

  test('the extension’s details page begins with what it does and shows its screenshot', async () => {
    await wb.command('View: Show Extensions');
    await wb.page.locator('.extension-list-item', { hasText: 'Relevance Lens' }).first().click();
    // the README, rendered by VS Code in a webview: its first picture is the extension in use, loaded
    const details = await wb.webviewFrame('img[alt="Relevance Lens in VS Code, dark theme"]', 30_000);
    await waitFor(
      () => details.$eval('img[alt="Relevance Lens in VS Code, dark theme"]', (i) => (i as HTMLImageElement).complete),
      10_000,
      'the screenshot loaded',
    );
    const size = await details.$eval('img[alt="Relevance Lens in VS Code, dark theme"]', (i) => [
      (i as HTMLImageElement).naturalWidth,
      (i as HTMLImageElement).naturalHeight,
    ]);
    const src = await details.$eval('img[alt="Relevance Lens in VS Code, dark theme"]', (i) =>
      (i as HTMLImageElement).src.slice(0, 40),
    );
    await wb.screenshot('walkthrough-04-details-page');
    assert.ok(size[0] > 400 && size[1] > 200, `the screenshot is drawn (${size.join('×')}) from ${src}`);
    const first = await details.$eval('h1 ~ p, h2 ~ p', (p) => p.textContent ?? '');
    assert.doesNotMatch(first, /npm ci|apt-get/, 'it begins with what the extension does, not the set-up');
    await wb.screenshot('walkthrough-04-details-page');
  });
});
