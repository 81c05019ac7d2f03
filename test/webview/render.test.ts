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

  /** A page running the bundled panel script, and what it has posted to its host. */
  async function panelPage() {
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
    return { p, posted };
  }

  test('draws a run it is sent, ignores malformed messages, posts exports', async () => {
    const { p, posted } = await panelPage();
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

  test('draws a run whose maps and image come as ArrayBuffers (as the extension posts them) as it draws base64', async () => {
    const pixels = async (binary: boolean) => {
      const { p } = await panelPage();
      await p.evaluate(`{
        // what postToWebview does: each map's and image's values as an ArrayBuffer
        const binary = (v) => Array.isArray(v) ? v.map(binary)
          : v && typeof v === 'object' ? Object.fromEntries(Object.entries(v).map(([k, x]) =>
              [k, k === 'data' && typeof x === 'string' && typeof v.height === 'number'
                ? Uint8Array.from(atob(x), (c) => c.charCodeAt(0)).buffer : binary(x)]))
          : v;
        const run = window.sampleRun();
        window.postMessage({ type: 'run', run: ${binary} ? binary(run) : run, settings: { colorMap: 'bwr', scaling: 'symmetric' } }, '*');
      }`);
      await p.waitForSelector('#root[data-run-id="run-1"]');
      const drawn = await p.$$eval('canvas', (cs) =>
        cs.map((c) => {
          const canvas = c as HTMLCanvasElement;
          return [...canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height).data].join(',');
        }),
      );
      await p.close();
      return drawn;
    };
    const base64 = await pixels(false);
    assert.ok(base64.length >= 2, `${base64.length} canvases`);
    assert.deepEqual(await pixels(true), base64);
  });

  test('draws the image it holds for a run sent without one ({ asSent: true }), and asks again when it holds none', async () => {
    const inputPixels = (p: Page) =>
      p.$eval('canvas.input', (c) => {
        const canvas = c as HTMLCanvasElement;
        return [...canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height).data].join(',');
      });
    const { p } = await panelPage();
    await p.evaluate(`{
      window.postMessage({ type: 'run', run: window.sampleRun(), settings: { colorMap: 'bwr', scaling: 'symmetric' } }, '*');
      window.postMessage({ type: 'clear', reason: 'the model closed' }, '*');
      window.postMessage({ type: 'run', run: { ...window.sampleRun(), runId: 'run-2', input: { asSent: true } },
        settings: { colorMap: 'bwr', scaling: 'symmetric' } }, '*');
    }`);
    await p.waitForSelector('#root[data-run-id="run-2"]');
    const held = await inputPixels(p);
    await p.close();

    const fresh = await panelPage();
    await fresh.p.evaluate(`window.postMessage({ type: 'run', run: window.sampleRun(),
      settings: { colorMap: 'bwr', scaling: 'symmetric' } }, '*')`);
    await fresh.p.waitForSelector('#root[data-run-id="run-1"]');
    assert.equal(held, await inputPixels(fresh.p), "run-2 shows run-1's image");
    await fresh.p.close();

    const empty = await panelPage();
    await empty.p.evaluate(`window.postMessage({ type: 'run', run: { ...window.sampleRun(), input: { asSent: true } },
      settings: { colorMap: 'bwr', scaling: 'symmetric' } }, '*')`);
    await empty.p.waitForFunction(() => (window as unknown as { posted: unknown[] }).posted.length === 2);
    assert.deepEqual(await empty.posted(), [{ type: 'ready' }, { type: 'ready' }], 'it asks for everything again');
    assert.equal(await empty.p.$('#root[data-run-id]'), null, 'and draws nothing it cannot show');
    await empty.p.close();
  });

  test('lists earlier runs to compare with, and shows the compared run beside this one', async () => {
    const { p, posted } = await panelPage();
    await p.evaluate(`{
      const run = window.sampleRun();
      window.postMessage({ type: 'run', run, settings: { colorMap: 'bwr', scaling: 'symmetric' } }, '*');
      const summary = (r, at) => ({ runId: r.runId, composite: r.composite, attributor: r.attributor, target: r.target,
        classNames: r.classNames, inputFile: r.inputFile, row: r.row, at });
      const earlier = { ...window.sampleRun(), runId: 'run-0', composite: 'epsilon_gamma_box', target: [0] };
      window.history2 = [summary(earlier, Date.UTC(2026, 10, 28, 9, 5, 7)), summary(run, Date.UTC(2026, 10, 28, 9, 6, 0))];
      window.earlier = earlier;
      window.postMessage({ type: 'history', runs: window.history2 }, '*');
    }`);
    await p.waitForSelector('#compare-with');
    const options = await p.$$eval('#compare-with option', (os) => os.map((o) => o.textContent));
    assert.equal(options.length, 2, 'no other run, and the earlier one (not this one)');
    assert.match(options[1]!, /^\d\d:\d\d:07 · epsilon_gamma_box · target 0 \(circle\)/);
    assert.equal(await p.$eval('section.compare', (s) => (s as HTMLElement).hidden), true, 'nothing compared yet');
    await p.selectOption('#compare-with', 'run-0');
    assert.deepEqual((await posted()).at(-1), { type: 'compare', runId: 'run-0' });
    // the host answers with the compared run's views
    await p.evaluate("window.postMessage({ type: 'history', runs: window.history2, compared: window.earlier }, '*')");
    await p.waitForSelector('section.compare:not([hidden]) .compare-column[data-run-id="run-0"]');
    const columns = await p.$$eval('.compare-column', (cs) =>
      cs.map((c) => ({
        meta: c.querySelector('.compare-meta')!.textContent,
        pixels: [...c.querySelectorAll('canvas')].map(
          (cv) => (cv as HTMLCanvasElement).width * (cv as HTMLCanvasElement).height,
        ),
      })),
    );
    assert.deepEqual(columns, [
      { meta: 'epsilon_plus_flat · gradient · target 2 (triangle)', pixels: [2] },
      { meta: 'epsilon_gamma_box · gradient · target 0 (circle)', pixels: [2] },
    ]);
    assert.equal(await p.$eval('#compare-with', (s) => (s as HTMLSelectElement).value), 'run-0');
    await p.click('#close-compare');
    assert.deepEqual((await posted()).at(-1), { type: 'compare', runId: null });
    await p.evaluate("window.postMessage({ type: 'history', runs: window.history2 }, '*')");
    await p.waitForSelector('section.compare[hidden]', { state: 'attached' });
    await p.close();
  });

  test("pages through a hooked layer's channels and orders them: the engine's pages replace the card's tiles", async () => {
    const { p, posted } = await panelPage();
    // a hooked layer of 5 channels, its top 2 in the run
    await p.evaluate(`{
      const run = window.sampleRun();
      const m = run.relevance.summed;
      run.layers = [{ id: 'conv', op: 'Conv', shape: [1, 5, 1, 2], sum: 1, min: 0, max: 1, summed: m,
        channels: [{ channel: 4, ...m }, { channel: 1, ...m }], channelCount: 5 }];
      window.postMessage({ type: 'run', run, settings: { colorMap: 'bwr', scaling: 'symmetric' } }, '*');
      window.channelMap = m;
    }`);
    const card = 'section.card[data-layer="conv"]';
    await p.waitForSelector(card);
    const state = () =>
      p.$eval(card, (c) => ({
        range: c.querySelector('.pager .range')!.textContent,
        tiles: [...c.querySelectorAll('.channel-tile figcaption')].map((f) => f.textContent!.split(' ')[0]),
        previous: c.querySelector('[aria-label="Previous channels of conv"]')!.hasAttribute('disabled'),
        next: c.querySelector('[aria-label="Next channels of conv"]')!.hasAttribute('disabled'),
      }));
    assert.deepEqual(await state(), { range: 'channels 1–2 of 5', tiles: ['#4', '#1'], previous: true, next: false });
    await p.click(`${card} [aria-label="Next channels of conv"]`);
    assert.deepEqual((await posted()).at(-1), { type: 'channelPage', layer: 'conv', offset: 2, order: 'abs' });
    // the last page, one channel long
    const send = (offset: number, order: string, channels: number[]) =>
      p.evaluate(
        ([offset, order, channels]) => {
          const m = (window as unknown as { channelMap: object }).channelMap;
          window.postMessage(
            {
              type: 'channels',
              runId: 'run-1',
              page: {
                layer: 'conv',
                row: 0,
                order,
                offset,
                total: 5,
                channels: (channels as number[]).map((channel) => ({ channel, ...m })),
              },
            },
            '*',
          );
        },
        [offset, order, channels] as const,
      );
    await send(4, 'abs', [3]);
    await p.waitForFunction(() => document.querySelector('.pager .range')?.textContent === 'channels 5–5 of 5');
    assert.deepEqual(await state(), { range: 'channels 5–5 of 5', tiles: ['#3'], previous: false, next: true });
    await p.click(`${card} [aria-label="Previous channels of conv"]`);
    assert.deepEqual((await posted()).at(-1), { type: 'channelPage', layer: 'conv', offset: 2, order: 'abs' });
    await p.selectOption(`${card} select.channel-order`, 'index');
    assert.deepEqual((await posted()).at(-1), { type: 'channelPage', layer: 'conv', offset: 0, order: 'index' });
    await send(0, 'index', [0, 1]);
    await p.waitForFunction(() => document.querySelector('.pager .range')?.textContent === 'channels 1–2 of 5');
    assert.deepEqual((await state()).tiles, ['#0', '#1']);
    assert.equal(await p.$eval(`${card} select.channel-order`, (s) => (s as HTMLSelectElement).value), 'index');
    // another run's page is not this run's
    await p.evaluate(
      "window.postMessage({ type: 'channels', runId: 'other', page: { layer: 'conv', row: 0, order: 'abs', offset: 2, total: 5, channels: [] } }, '*')",
    );
    await p.waitForTimeout(100);
    assert.deepEqual((await state()).tiles, ['#0', '#1']);
    await p.close();
  });
});
