/**
 * Webview rendering tests in a real browser (Debian's Chromium via playwright-core): the checks in
 * browser-suite.ts, and the bundled Relevance panel script driven by messages as VS Code would send them.
 */
import * as assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import * as esbuild from 'esbuild';
import * as fs from 'fs';
import * as path from 'path';
import type { Browser, Page } from 'playwright-core';
import { launchChromium, ROOT } from '../e2e/harness';

let browser: Browser;
let suite: string;

before(async () => {
  browser = await launchChromium();
  const out = await esbuild.build({
    entryPoints: [path.join(__dirname, 'browser-suite.ts')],
    bundle: true,
    write: false,
    format: 'iife',
    platform: 'browser',
  });
  suite = out.outputFiles[0].text;
});
after(() => browser?.close());

async function page(): Promise<Page> {
  const p = await browser.newPage();
  p.on('pageerror', (e) => assert.fail(`page error: ${e.message}`));
  await p.setContent('<!DOCTYPE html><html><body><main id="root"></main></body></html>');
  return p;
}

test('rendering checks in Chromium', async (t) => {
  const p = await page();
  await p.addScriptTag({ content: suite });
  const results = await p.evaluate(() =>
    (window as unknown as { runSuite: () => Promise<{ name: string; error?: string }[]> }).runSuite(),
  );
  assert.ok(results.length >= 10, `${results.length} checks ran`);
  for (const r of results) await t.test(r.name, () => assert.equal(r.error, undefined, r.error));
  await p.close();
});

/** The panel says it has drawn run-1 (what the extension logs the run's latency by). */
async function waitForPainted(p: Page): Promise<void> {
  await p.waitForFunction(() =>
    (window as unknown as { posted: { type: string; runId?: string }[] }).posted.some(
      (m) => m.type === 'painted' && m.runId === 'run-1',
    ),
  );
}

describe('the Relevance panel script', () => {
  const panelJs = path.join(ROOT, 'dist/webview/panel.js');

  test('draws a run it is sent, ignores malformed messages, posts exports', async () => {
    assert.ok(fs.existsSync(panelJs), 'dist/webview/panel.js missing: run npm run build');
    const p = await page();
    // VS Code's webview host API, recorded: the real host is exercised by the end-to-end tests
    // (a string: tsx would wrap named functions in a helper the page does not have)
    await p.evaluate(
      'window.posted = []; window.acquireVsCodeApi = () => ({ postMessage: (m) => window.posted.push(m) });',
    );
    await p.addScriptTag({ content: suite });
    await p.addScriptTag({ content: fs.readFileSync(panelJs, 'utf8') });
    const posted = () => p.evaluate(() => (window as unknown as { posted: { type: string }[] }).posted);
    assert.deepEqual(await posted(), [{ type: 'ready' }]);

    await p.evaluate(
      "window.postMessage({ type: 'run', run: window.sampleRun(), settings: { colorMap: 'bwr', scaling: 'symmetric' } }, '*')",
    );
    await p.waitForSelector('#root[data-run-id="run-1"]');
    assert.equal(
      await p.$eval('.meta', (e) => e.textContent),
      'composite epsilon_plus_flat · attributor gradient · target 2 (triangle) · wasm backend · native kernels · 12 ms',
    );
    const px = await p.$eval('figure.relevance canvas', (c) => [
      ...(c as HTMLCanvasElement).getContext('2d')!.getImageData(0, 0, 2, 1).data,
    ]);
    assert.deepEqual(px, [253, 253, 255, 255, 255, 0, 0, 255], '0 → mid-map, 1 → red');

    await p.evaluate(() =>
      window.postMessage(
        { type: 'run', run: { runId: 'x' }, settings: { colorMap: 'bwr', scaling: 'symmetric' } },
        '*',
      ),
    );
    await p.waitForTimeout(100);
    assert.equal(
      await p.$eval('#root', (r) => (r as HTMLElement).dataset.runId),
      'run-1',
      'a malformed run is ignored',
    );

    await waitForPainted(p);
    await p.click('figure.relevance [data-export="|npy"]');
    const last = (await posted()).at(-1);
    assert.deepEqual(last, {
      type: 'export',
      layer: '',
      format: 'npy',
      settings: { colorMap: 'bwr', scaling: 'symmetric' },
    });
    await p.close();
  });
});
