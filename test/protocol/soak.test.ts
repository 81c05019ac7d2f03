/**
 * Soak (bounded, seeded): 1,000 mixed requests against one engine server — opens, runs, concurrent runs, cancelled
 * runs, exports, closes — and at the end the same tensor count and about the same memory as after warming up.
 */
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as path from 'path';
import { CancellationTokenSource, ResponseError } from 'vscode-jsonrpc/node';
import { seededRandom } from '../../engine/src/lrp/random';
import * as P from '../../protocol/engine';
import { GOLDEN_DIR } from '../golden';
import { startServer, type Session } from './client';

const REQUESTS = 1000;
const CASES = ['seed_example', 'mlp', 'resnet_mini'];

let s: Session;
before(async () => {
  s = startServer();
  await s.conn.sendRequest(P.Initialize, { backend: process.env.RELEVANCE_LENS_BACKEND ?? 'wasm' });
});
after(() => s.close());

/** A request that may be refused (a cancelled or superseded run): only an internal error fails the soak. */
async function tolerated<T>(request: Promise<T>): Promise<T | undefined> {
  try {
    return await request;
  } catch (e) {
    assert.ok(e instanceof ResponseError && e.code !== -32603, `${e}`);
    return undefined;
  }
}

test(`${REQUESTS} mixed requests leave tensors and memory flat`, async () => {
  const rand = seededRandom(42);
  const open = new Map<string, { modelId: string; runId?: string }>();
  const run = (c: string, token?: CancellationTokenSource, composite?: P.RunParams['composite']) =>
    s.conn.sendRequest(
      P.RunAttribution,
      {
        modelId: open.get(c)!.modelId,
        input: { path: path.join(GOLDEN_DIR, c, 'input.npy') },
        composite: composite ?? (rand() < 0.5 ? 'epsilon_plus_flat' : 'gradient'),
        store: rand() < 0.5 ? [] : undefined,
      },
      token?.token,
    );
  const step = async () => {
    const c = CASES[Math.floor(rand() * CASES.length)];
    const roll = rand();
    if (!open.has(c) || roll < 0.05) {
      if (open.has(c)) await s.conn.sendRequest(P.CloseModel, { modelId: open.get(c)!.modelId });
      const info = await s.conn.sendRequest(P.OpenModel, { path: path.join(GOLDEN_DIR, c, 'model.onnx') });
      open.set(c, { modelId: info.modelId });
      return 1 + (roll < 0.05 ? 1 : 0);
    }
    if (roll < 0.15) {
      // two at once
      const [a, b] = await Promise.all([run(c), run(c)]);
      open.get(c)!.runId = b.runId;
      assert.ok(a.runId !== b.runId);
      return 2;
    }
    if (roll < 0.25) {
      const source = new CancellationTokenSource();
      const cancelled = tolerated(run(c, source));
      source.cancel();
      await cancelled;
      return 1;
    }
    if (roll < 0.35 && open.get(c)!.runId) {
      await tolerated(s.conn.sendRequest(P.ExportTensor, { runId: open.get(c)!.runId!, layer: '', format: 'npy' }));
      return 1;
    }
    open.get(c)!.runId = (await run(c)).runId;
    return 1;
  };
  // warm up: every model opened and run once, so caches are full before the baseline
  for (const c of CASES) {
    const info = await s.conn.sendRequest(P.OpenModel, { path: path.join(GOLDEN_DIR, c, 'model.onnx') });
    open.set(c, { modelId: info.modelId });
    // the same composite as at the end: a model keeps its rule-modified weights, which is no leak
    await run(c, undefined, 'epsilon_plus_flat');
  }
  const before = await s.conn.sendRequest(P.Stats);
  let requests = 0;
  while (requests < REQUESTS) requests += await step();
  // the same models open as at the baseline: close and reopen each once, then one run each
  for (const c of CASES) {
    await s.conn.sendRequest(P.CloseModel, { modelId: open.get(c)!.modelId });
    open.set(c, {
      modelId: (await s.conn.sendRequest(P.OpenModel, { path: path.join(GOLDEN_DIR, c, 'model.onnx') })).modelId,
    });
    await run(c, undefined, 'epsilon_plus_flat');
  }
  const end = await s.conn.sendRequest(P.Stats);
  console.log(
    `soak: ${requests} requests; tensors ${before.numTensors} → ${end.numTensors}, ` +
      `RSS ${(before.rssBytes / 2 ** 20).toFixed(0)} → ${(end.rssBytes / 2 ** 20).toFixed(0)} MiB`,
  );
  assert.equal(end.numTensors, before.numTensors, 'tensor count');
  assert.equal(end.models, before.models, 'open models');
  assert.ok(end.rssBytes < before.rssBytes * 1.25 + 64 * 2 ** 20, `RSS ${before.rssBytes} → ${end.rssBytes}`);
});
