/**
 * Drives the real engine server process through whole sessions over JSON-RPC (vscode-jsonrpc), as the extension
 * does: results must equal the golden tensors; errors must be JSON-RPC errors and leave the server serving.
 */
import { after, before, describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { CancellationTokenSource, ResponseError } from 'vscode-jsonrpc/node';
import { encodeOnnx } from '../../engine/src/io/onnx-writer';
import { encodeNpy, parseNpy } from '../../engine/src/io/npy';
import * as P from '../../protocol/engine';
import { decodeBytes, decodeFloats, encodeFloats } from '../../protocol/floats';
import { RunView } from '../../protocol/webview';
import { compare, GOLDEN_DIR, goldenNpy, manifest } from '../golden';
import { startServer, type Session } from './client';
import { denseChainModel, wideConvModel } from '../models';

const backend = process.env.RELEVANCE_LENS_BACKEND ?? 'wasm';
const SEED = path.join(GOLDEN_DIR, 'seed_example');

/** A run's tensor, whole, as the .npy a user exports. */
async function fetchTensor(s: Session, runId: string, layer: string) {
  const file = await s.conn.sendRequest(P.ExportTensor, { runId, layer, format: 'npy' });
  return parseNpy(Buffer.from(decodeBytes(file.data)));
}

async function rejects(p: Promise<unknown>, code: number, pattern: RegExp) {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof ResponseError, `a JSON-RPC error, got ${e}`);
    assert.equal(e.code, code, e.message);
    assert.match(e.message, pattern);
    return true;
  });
}

describe('engine server', () => {
  let s: Session;
  let modelId: string;
  before(async () => {
    s = startServer();
    const init = await s.conn.sendRequest(P.Initialize, { backend });
    assert.equal(init.backend, backend);
    assert.match(init.kernels, new RegExp(`^(native|${backend})`));
    assert.ok(init.composites.some((c) => c.name === 'epsilon_plus_flat'));
  });
  after(async () => {
    await s.close();
  });

  test('seed example: one run storing every layer, EpsilonPlusFlat with target 1 equals Zennit', async () => {
    const info = await s.conn.sendRequest(P.OpenModel, { path: path.join(SEED, 'model.onnx') });
    modelId = info.modelId;
    assert.deepEqual(
      info.tree.map((t) => t.id),
      ['0', '1', '2', '3'],
    );
    const progress: P.ProgressValue[] = [];
    const token = 'run-1';
    const disposable = s.conn.onProgress(P.Progress, token, (v) => progress.push(v));
    const run = await s.conn.sendRequest(P.RunAttribution, {
      modelId,
      input: { path: path.join(SEED, 'input.npy') },
      composite: 'epsilon_plus_flat',
      target: [1],
      store: ['0', '1', '2', '3'],
      view: { topChannels: 3 },
      workDoneToken: token,
    });
    disposable.dispose();
    assert.equal(run.backend, backend);
    // the response is what the views draw, valid as the webviews check it
    assert.ok(RunView.safeParse({ ...run, model: 'model.onnx' }).success, 'a valid run view');
    const m = manifest('seed_example').methods.epsilon_plus_flat;
    const errors = [
      compare(await fetchTensor(s, run.runId, ''), goldenNpy('seed_example', m.relevance), 'relevance'),
      ...(await Promise.all(
        run.layers.map(async (l) =>
          compare(
            await fetchTensor(s, run.runId, l.id),
            goldenNpy('seed_example', 'epsilon_plus_flat', m.layers![l.id].file),
            l.id,
          ),
        ),
      )),
    ].filter(Boolean);
    assert.deepEqual(errors, []);
    // the predictions are the model's logits
    const output = goldenNpy('seed_example', m.output!);
    for (const p of run.topK[0])
      assert.ok(Math.abs(p.logit! - output.data[p.class]) < 1e-4, `logit of class ${p.class}`);
    assert.equal(run.topK[0][0].class, 4);
    assert.deepEqual(
      run.layers.map((l) => l.id),
      ['0', '1', '2', '3'],
      'stored layers in execution order',
    );
    assert.deepEqual(
      run.sums.map((x) => x.id),
      ['', '0', '1', '2', '3'],
      'sums: the input first',
    );
    assert.ok(Math.abs(run.sums[4].sum! - 1) < 1e-6, 'output relevance sums to 1');
    // a layer's view: the channel sum plus the top channels, and the layer's own statistics
    assert.equal(run.layers[0].channels.length, 3);
    assert.ok(Math.abs(run.layers[0].summed.sum! - m.layers!['0'].sum) < 1e-4);
    assert.ok(Math.abs(run.layers[0].sum! - m.layers!['0'].sum) < 1e-4);
    assert.ok(run.input.height > 0 && new Set(decodeBytes(run.input.data)).size > 2, 'the input image in 8-bit values');
    // a heatmap as PNG bytes
    const png = await s.conn.sendRequest(P.ExportTensor, {
      runId: run.runId,
      layer: '0',
      format: 'png',
      colorMap: 'coldnhot',
      minSide: 64,
    });
    assert.equal(png.mimeType, 'image/png');
    assert.deepEqual([...decodeBytes(png.data).subarray(1, 4)], [...Buffer.from('PNG')]);
  });

  test('parameters are checked against the protocol: errors name the field', async () => {
    const input = { path: path.join(SEED, 'input.npy') };
    await rejects(
      s.conn.sendRequest(P.RunAttribution, { modelId, input, store: ['nope'] }),
      P.ErrorCodes.UNKNOWN_LAYER,
      /no layer "nope"/,
    );
    await rejects(
      s.conn.sendRequest(P.RunAttribution, { modelId, input, compositeParams: { epsilon: -1 } }),
      P.ErrorCodes.BAD_ARGUMENT,
      /compositeParams\.epsilon/,
    );
    const huge = { path: path.join(SEED, 'input.npy'), preprocess: { size: [12000, 12000] as [number, number] } };
    await rejects(s.conn.sendRequest(P.RunAttribution, { modelId, input: huge }), P.ErrorCodes.BAD_ARGUMENT, /size/);
    await rejects(
      s.conn.sendRequest(P.RunAttribution, { modelId, input, view: { topChannels: -1 } }),
      P.ErrorCodes.BAD_ARGUMENT,
      /attribution\/run: .*view\.topChannels/,
    );
    await rejects(
      s.conn.sendRequest(P.RunAttribution, { modelId, input, target: [0.5] } as never),
      P.ErrorCodes.BAD_ARGUMENT,
      /target/,
    );
    await rejects(
      s.conn.sendRequest(P.ExportTensor, { runId: 'old', layer: '', format: 'png', colorMap: 'toString' } as never),
      P.ErrorCodes.BAD_ARGUMENT,
      /colorMap/,
    );
    await rejects(
      s.conn.sendRequest(P.ExportTensor, { runId: 'old', layer: '', format: 'npy' }),
      P.ErrorCodes.UNKNOWN_TENSOR,
      /no longer held/,
    );
  });

  test('a 1×512×14×14 layer round-trips in well under 100 ms, as binary', async () => {
    // A model whose hooked layer is 1×512×14×14: Relu → GlobalAveragePool → Flatten → Gemm.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rl-'));
    const file = path.join(dir, 'wide.onnx');
    fs.writeFileSync(
      file,
      encodeOnnx({
        input: { name: 'input', dims: [1, 512, 14, 14] },
        output: { name: 'output', dims: [1, 2] },
        initializers: [
          { name: 'fc.weight', dims: [2, 512], values: new Float32Array(1024).map((_, i) => Math.cos(i)) },
          { name: 'fc.bias', dims: [2], values: [0, 0] },
        ],
        nodes: [
          { name: '/relu/Relu', opType: 'Relu', inputs: ['input'], outputs: ['r'] },
          { name: '/pool/GlobalAveragePool', opType: 'GlobalAveragePool', inputs: ['r'], outputs: ['p'] },
          { name: '/flatten/Flatten', opType: 'Flatten', inputs: ['p'], outputs: ['f'], attributes: { axis: 1 } },
          {
            name: '/fc/Gemm',
            opType: 'Gemm',
            inputs: ['f', 'fc.weight', 'fc.bias'],
            outputs: ['output'],
            attributes: { transB: 1 },
          },
        ],
      }),
    );
    const wide = await s.conn.sendRequest(P.OpenModel, { path: file });
    const data = new Float32Array(512 * 14 * 14).map((_, i) => Math.sin(i));
    const run = await s.conn.sendRequest(P.RunAttribution, {
      modelId: wide.modelId,
      input: { shape: [1, 512, 14, 14], data: encodeFloats(data) },
      target: [0],
      store: ['relu'],
    });
    assert.deepEqual(run.layers[0].shape, [1, 512, 14, 14]);
    const times: number[] = [];
    let fetched: { shape: number[]; data: Float32Array } | undefined;
    for (let i = 0; i < 5; i++) {
      const t0 = performance.now();
      fetched = await fetchTensor(s, run.runId, 'relu');
      times.push(performance.now() - t0);
    }
    // the gradient of the mean-pooled logit: w[0][c] / 196 at every position of channel c
    assert.ok(Math.abs(fetched!.data[0] - Math.cos(0) / 196) < 1e-7);
    assert.ok(Math.abs(fetched!.data[196 * 3 + 5] - Math.cos(3) / 196) < 1e-7);
    const best = Math.min(...times);
    assert.ok(best < 100, `fetching 1×512×14×14 took ${best.toFixed(1)} ms`);
    await s.conn.sendRequest(P.CloseModel, { modelId: wide.modelId });
    fs.rmSync(dir, { recursive: true });
  });

  test('cancel a long run mid-way, then run again', async () => {
    const info = await s.conn.sendRequest(P.OpenModel, { path: path.join(GOLDEN_DIR, 'vgg_bn/model.onnx') });
    const source = new CancellationTokenSource();
    const token = 'long';
    let reports = 0;
    const d = s.conn.onProgress(P.Progress, token, () => {
      reports++;
      if (reports === 2) source.cancel();
    });
    const long = s.conn.sendRequest(
      P.RunAttribution,
      {
        modelId: info.modelId,
        input: { path: path.join(GOLDEN_DIR, 'vgg_bn/input.npy') },
        composite: 'epsilon_plus',
        attributor: 'integrated_gradients',
        attributorParams: { nIter: 200 },
        target: [0],
        workDoneToken: token,
      },
      source.token,
    );
    await rejects(long, P.ErrorCodes.CANCELLED, /cancel/);
    d.dispose();
    const again = await s.conn.sendRequest(P.RunAttribution, {
      modelId: info.modelId,
      input: { path: path.join(GOLDEN_DIR, 'vgg_bn/input.npy') },
      composite: 'epsilon_plus',
      target: [0],
    });
    assert.equal(again.composite, 'epsilon_plus');
    await s.conn.sendRequest(P.CloseModel, { modelId: info.modelId });
  });

  test('errors are JSON-RPC errors and the server stays up', async () => {
    await rejects(
      s.conn.sendRequest(P.OpenModel, { path: '/no/such/model.onnx' }),
      P.ErrorCodes.FILE_NOT_FOUND,
      /not found/,
    );
    const corrupt = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'rl-')), 'corrupt.onnx');
    fs.writeFileSync(corrupt, Buffer.from('this is not a protobuf at all \x00\xff\xfe'));
    await rejects(
      s.conn.sendRequest(P.OpenModel, { path: corrupt }),
      P.ErrorCodes.NOT_A_MODEL,
      /corrupt\.onnx: not an ONNX model/,
    );
    await rejects(s.conn.sendRequest('no/such/method', {}), -32601, /no\/such\/method/);
    await rejects(
      s.conn.sendRequest(P.OpenModel, { nope: 1 } as never),
      P.ErrorCodes.BAD_ARGUMENT,
      /model\/open: .*path/,
    );
    await rejects(
      s.conn.sendRequest(P.RunAttribution, { modelId: 'm999', input: { path: 'x' } }),
      P.ErrorCodes.UNKNOWN_MODEL,
      /m999/,
    );
    await rejects(
      s.conn.sendRequest(P.RunAttribution, {
        modelId,
        input: { path: path.join(GOLDEN_DIR, 'mlp/input.npy') },
        composite: 'epsilon_plus_flat',
      }),
      P.ErrorCodes.SHAPE_MISMATCH,
      /input has shape \[4,20\]/,
    );
    await rejects(
      s.conn.sendRequest(P.RunAttribution, {
        modelId,
        input: { path: path.join(SEED, 'input.npy') },
        composite: 'nonsense',
      } as never),
      P.ErrorCodes.BAD_ARGUMENT,
      /composite/,
    );
    // garbage bytes on the wire
    s.proc.stdin!.write('Content-Length: 5\r\n\r\n{{{{{');
    s.proc.stdin!.write('garbage without headers\r\n\r\n');
    const still = await s.conn.sendRequest(P.Stats);
    assert.equal(still.models, 1);
    assert.equal(s.proc.exitCode, null);
  });

  test(
    'a run the wasm backend cannot hold is refused before it starts, and wasm stays usable',
    {
      skip: backend !== 'wasm' && "the limit is wasm's",
    },
    async () => {
      // 2.4 GB kept for the backward pass
      const channels = 600;
      const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'rl-')), 'wide.onnx');
      fs.writeFileSync(file, encodeOnnx(wideConvModel(channels)));
      const wide = await s.conn.sendRequest(P.OpenModel, { path: file });
      await rejects(
        s.conn.sendRequest(P.RunAttribution, {
          modelId: wide.modelId,
          input: { shape: [1, 1, 1024, 1024], data: encodeFloats(new Float32Array(2 ** 20).fill(1)) },
        }),
        P.ErrorCodes.OUT_OF_MEMORY,
        /needs about 16\.4 GiB, more than the wasm backend holds \(3\.5 GiB of its 4\) \(use the cpu backend/,
      );
      await s.conn.sendRequest(P.CloseModel, { modelId: wide.modelId });
      const run = await s.conn.sendRequest(P.RunAttribution, {
        modelId,
        input: { path: path.join(SEED, 'input.npy') },
      });
      assert.equal(run.topK[0][0].class, 4);
    },
  );

  test('model/weights answers once the weights are loaded; closing the model first cancels them', async () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'rl-')), 'chain.onnx');
    fs.writeFileSync(file, encodeOnnx(denseChainModel(8, 2048)));
    const first = await s.conn.sendRequest(P.OpenModel, { path: file });
    assert.deepEqual(await s.conn.sendRequest(P.ModelWeights, { modelId: first.modelId }), {
      bytes: 8 * 2048 * 2048 * 4,
    });
    await s.conn.sendRequest(P.CloseModel, { modelId: first.modelId });
    // the weights' load queued behind a run, so that the close is there before it starts: a run ahead of the open
    // (A) keeps the queue busy until the run after it (B) has come in, so the open puts its load behind B, and B lasts
    // while the answer to the open comes back and the close goes out. Batches of 256 from a file: small requests.
    const one = parseNpy(fs.readFileSync(path.join(SEED, 'input.npy')));
    const batch = new Float32Array(256 * one.data.length);
    for (let k = 0; k < 256; k++) batch.set(one.data, k * one.data.length);
    const batchFile = path.join(path.dirname(file), 'batch.npy');
    fs.writeFileSync(batchFile, encodeNpy({ shape: [256, ...one.shape.slice(1)], data: batch }));
    const run = () => s.conn.sendRequest(P.RunAttribution, { modelId, input: { path: batchFile } });
    const ahead = run();
    const opened = s.conn.sendRequest(P.OpenModel, { path: file });
    const queued = run();
    const second = await opened;
    const weights = s.conn.sendRequest(P.ModelWeights, { modelId: second.modelId });
    const closed = s.conn.sendRequest(P.CloseModel, { modelId: second.modelId });
    await rejects(weights, P.ErrorCodes.CANCELLED, /opening chain\.onnx was cancelled/);
    await Promise.all([ahead, queued, closed]);
    await rejects(s.conn.sendRequest(P.ModelWeights, { modelId: second.modelId }), P.ErrorCodes.UNKNOWN_MODEL, /./);
    fs.rmSync(path.dirname(file), { recursive: true });
  });

  test('model/open names the classes the file carries in its metadata (Ultralytics’ `names`)', async () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'rl-')), 'named.onnx');
    fs.writeFileSync(
      file,
      encodeOnnx({ ...wideConvModel(2), metadata: { stride: '32', names: "{0: 'cat', 1: 'dog'}" } }),
    );
    const named = await s.conn.sendRequest(P.OpenModel, { path: file });
    assert.deepEqual(named.classNames, { names: ['cat', 'dog'], key: 'names' });
    await s.conn.sendRequest(P.CloseModel, { modelId: named.modelId });
    fs.writeFileSync(file, encodeOnnx(wideConvModel(2)));
    const plain = await s.conn.sendRequest(P.OpenModel, { path: file });
    assert.equal(plain.classNames, undefined);
    await s.conn.sendRequest(P.CloseModel, { modelId: plain.modelId });
  });

  test('conditional relevance: a row per condition set, each viewable; all channels give the plain run', async () => {
    const input = { path: path.join(SEED, 'input.npy') };
    const all = Array.from({ length: 10 }, (_, c) => c);
    const run = await s.conn.sendRequest(P.RunAttribution, {
      modelId,
      input,
      target: [1],
      store: ['1'],
      conditions: { sets: [{ '1': [3] }, { '1': all }, { y: [1], '1': [] }] },
      view: { row: 1, topChannels: 2 },
    });
    assert.equal(run.row, 1);
    const rows = await fetchTensor(s, run.runId, '');
    assert.deepEqual(rows.shape, [3, 3, 32, 32]);
    const plain = await s.conn.sendRequest(P.RunAttribution, { modelId, input, target: [1] });
    const expected = await fetchTensor(s, plain.runId, '');
    const row = (k: number) => rows.data.subarray(k * 3072, (k + 1) * 3072);
    assert.ok(
      row(1).every((v, i) => Math.abs(v - expected.data[i]) <= 1e-6),
      'every channel passing on is the plain run',
    );
    assert.ok(
      row(2).every((v) => v === 0),
      'no channel passing on leaves no relevance',
    );
    assert.ok(
      row(0).some((v, i) => Math.abs(v - expected.data[i]) > 1e-4),
      'one channel is not all of them',
    );
    // the view of row 1 is the plain run's view
    assert.ok(Math.abs(run.relevance.sum! - plain.relevance.sum!) < 1e-5);
    await rejects(
      s.conn.sendRequest(P.RunAttribution, { modelId, input, conditions: { sets: [{ '1': [10] }] } }),
      P.ErrorCodes.BAD_ARGUMENT,
      /layer "1": channel 10 is out of range \(it has 10\)/,
    );
    await rejects(
      s.conn.sendRequest(P.RunAttribution, { modelId, input, conditions: { sets: [{}] }, view: { row: 1 } }),
      P.ErrorCodes.BAD_ARGUMENT,
      /view row 1 is out of range for 1 rows/,
    );
  });

  test('a batch: each sample’s sum at the input adds up to the total; attribution/view draws another sample', async () => {
    const one = parseNpy(fs.readFileSync(path.join(SEED, 'input.npy')));
    const n = one.data.length;
    const data = new Float32Array(4 * n);
    for (let k = 0; k < 4; k++) for (let i = 0; i < n; i++) data[k * n + i] = one.data[i] * (1 + k / 4) - k / 8;
    const run = await s.conn.sendRequest(P.RunAttribution, {
      modelId,
      input: { shape: [4, ...one.shape.slice(1)], data: encodeFloats(data) },
      composite: 'epsilon_plus_flat',
      target: [1],
      store: ['1'],
    });
    assert.equal(run.rowSums.length, 4);
    const all = await fetchTensor(s, run.runId, '');
    const total = all.data.reduce((a, b) => a + b, 0);
    const sum = run.rowSums.reduce((a, b) => a! + b!, 0)!;
    assert.ok(Math.abs(sum - total) <= 1e-4 * Math.abs(total), `${sum} vs ${total}`);
    assert.ok(Math.abs(run.relevance.sum! - run.rowSums[0]!) < 1e-6, 'the view is sample 0');
    const second = await s.conn.sendRequest(P.ViewRun, { runId: run.runId, row: 2 });
    assert.equal(second.row, 2);
    assert.equal(second.runId, run.runId);
    assert.ok(Math.abs(second.relevance.sum! - run.rowSums[2]!) < 1e-6, 'the view is sample 2');
    assert.equal(second.sums[0].sum, second.relevance.sum, 'its sums are sample 2’s');
    assert.notEqual(second.layers[0].summed.data, run.layers[0].summed.data, 'its stored layer is sample 2’s');
    assert.deepEqual(second.topK, run.topK, 'the predictions of every sample, as before');
    // a PNG of the viewed sample; rows beyond the batch are refused
    const png = await s.conn.sendRequest(P.ExportTensor, { runId: run.runId, layer: '', format: 'png', row: 2 });
    assert.equal(png.mimeType, 'image/png');
    await rejects(
      s.conn.sendRequest(P.ViewRun, { runId: run.runId, row: 4 }),
      P.ErrorCodes.BAD_ARGUMENT,
      /row 4 is out of range for the run's 4 rows/,
    );
    await rejects(
      s.conn.sendRequest(P.ViewRun, { runId: 'gone', row: 0 }),
      P.ErrorCodes.UNKNOWN_TENSOR,
      /run "gone" is no longer held/,
    );

    // attribution/channels: sample 2's channels of the stored layer, page by page in each order, each channel once,
    // its map the tensor's own (the layer's maps are not downsampled at this size)
    const stored = await fetchTensor(s, run.runId, '1');
    const [, channels, h, w] = stored.shape;
    assert.equal(run.layers[0].channelCount, channels);
    const sumOf = (c: number) => {
      let sum = 0;
      for (let i = 0; i < h * w; i++) sum += stored.data[(2 * channels + c) * h * w + i];
      return sum;
    };
    for (const order of ['abs', 'positive', 'negative', 'index'] as const) {
      const seen: number[] = [];
      for (let offset = 0; offset < channels; offset += 3) {
        const page = await s.conn.sendRequest(P.PageChannels, {
          runId: run.runId,
          layer: '1',
          row: 2,
          order,
          offset,
          count: 3,
        });
        assert.deepEqual([page.total, page.offset, page.order], [channels, offset, order]);
        for (const ch of page.channels) {
          assert.deepEqual([ch.height, ch.width], [h, w]);
          const values = decodeFloats(ch.data);
          const own = stored.data.subarray(
            (2 * channels + ch.channel) * h * w,
            (2 * channels + ch.channel + 1) * h * w,
          );
          assert.ok(
            values.every((v, i) => v === own[i]),
            `channel ${ch.channel}'s map`,
          );
        }
        seen.push(...page.channels.map((c) => c.channel));
      }
      assert.deepEqual(
        [...seen].sort((a, b) => a - b),
        Array.from({ length: channels }, (_, c) => c),
        order,
      );
      const sums = seen.map(sumOf);
      const sorted = (inOrder: (a: number, b: number) => boolean) =>
        sums.every((v, i) => i === 0 || inOrder(sums[i - 1], v));
      if (order === 'positive')
        assert.ok(
          sorted((a, b) => a >= b - 1e-6),
          `${order}: ${sums}`,
        );
      if (order === 'negative')
        assert.ok(
          sorted((a, b) => a <= b + 1e-6),
          `${order}: ${sums}`,
        );
      if (order === 'index')
        assert.deepEqual(
          seen,
          Array.from({ length: channels }, (_, c) => c),
        );
      // the view's top channels are the first page by |relevance|
      if (order === 'abs')
        assert.deepEqual(
          seen.slice(0, 8),
          second.layers[0].channels.map((c) => c.channel),
        );
    }
    await rejects(
      s.conn.sendRequest(P.PageChannels, { runId: run.runId, layer: 'fc', row: 0, order: 'abs', offset: 0, count: 8 }),
      P.ErrorCodes.UNKNOWN_TENSOR,
      /the run stored no relevance for layer "fc"/,
    );
    await rejects(
      s.conn.sendRequest(P.PageChannels, { runId: run.runId, layer: '1', row: 4, order: 'abs', offset: 0, count: 8 }),
      P.ErrorCodes.BAD_ARGUMENT,
      /row 4 is out of range for the run's 4 rows/,
    );
  });

  test('model/rules: each layer’s rule under a composite file, what the file set, and patterns that match nothing', async () => {
    const info = await s.conn.sendRequest(P.OpenModel, { path: path.join(GOLDEN_DIR, 'resnet_mini/model.onnx') });
    const customComposite = {
      base: 'epsilon_plus_flat' as const,
      nameMap: [
        { layers: ['layer1.conv2'], rule: 'gamma' as const, gamma: 0.5 },
        { layers: ['layer1.conv1', 'layer7.*'], rule: 'epsilon' as const, epsilon: 0.25 },
      ],
    };
    const r = await s.conn.sendRequest(P.ModelRules, { modelId: info.modelId, customComposite });
    assert.equal(r.composite, 'custom(epsilon_plus_flat)');
    assert.deepEqual(r.layers['layer1.conv2'], { rule: 'Gamma (gamma=0.5)', set: true });
    assert.deepEqual(r.layers['layer1.conv1'], { rule: 'Epsilon (epsilon=0.25)', set: true });
    assert.deepEqual(r.layers['stem.0'], { rule: 'Flat', set: false });
    assert.deepEqual(r.unmatched, [{ pattern: 'layer7.*', path: ['nameMap', 1, 'layers', 1] }]);
    // the tree says each layer's type as Zennit's composites see it
    const conv = info.tree.flatMap((t) => [t, ...t.children]).find((t) => t.id === 'layer1.conv2');
    assert.equal(conv?.type, 'Convolution');
    // a run refuses the pattern that matches nothing; without it, the file's rules change the relevance
    const input = { path: path.join(GOLDEN_DIR, 'resnet_mini/input.npy') };
    await rejects(
      s.conn.sendRequest(P.RunAttribution, { modelId: info.modelId, input, customComposite }),
      P.ErrorCodes.UNKNOWN_LAYER,
      /"layer7\.\*" matches no layer/,
    );
    customComposite.nameMap[1].layers = ['layer1.conv1'];
    const custom = await s.conn.sendRequest(P.RunAttribution, {
      modelId: info.modelId,
      input,
      customComposite,
      target: [0],
    });
    const plain = await s.conn.sendRequest(P.RunAttribution, {
      modelId: info.modelId,
      input,
      composite: 'epsilon_plus_flat',
      target: [0],
    });
    assert.equal(custom.composite, 'custom(epsilon_plus_flat)');
    assert.notEqual(custom.relevance.sum, plain.relevance.sum);
    await rejects(
      s.conn.sendRequest(P.RunAttribution, {
        modelId: info.modelId,
        input,
        customComposite,
        composite: 'epsilon_plus',
      }),
      P.ErrorCodes.BAD_ARGUMENT,
      /by name .* or a composite file, not both/,
    );
    await s.conn.sendRequest(P.CloseModel, { modelId: info.modelId });
  });

  test('analysis/run: a data set analysed into a folder with progress; cancelled, it resumes where it stopped', async () => {
    const dir = path.join(__dirname, '../../.zoo-cache/analysis/analysis_shapes');
    const info = await s.conn.sendRequest(P.OpenModel, { path: path.join(dir, 'model.onnx') });
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'rl-analysis-'));
    const params = {
      modelId: info.modelId,
      data: path.join(dir, 'data.npz'),
      layers: ['features.3', 'classifier.1'],
      composite: 'epsilon_plus_flat' as const,
      references: 2,
      batch: 8,
      out,
    };
    // cancelled after the first progress report: analysis.json holds the batches done
    const cancel = new CancellationTokenSource();
    const reports: P.ProgressValue[] = [];
    const first = s.conn.onProgress(P.Progress, 'analysis-1', (v) => {
      reports.push(v);
      cancel.cancel();
    });
    await rejects(
      s.conn.sendRequest(P.RunAnalysis, { ...params, workDoneToken: 'analysis-1' }, cancel.token),
      P.ErrorCodes.CANCELLED,
      /analysis cancelled/,
    );
    first.dispose();
    const partial = JSON.parse(fs.readFileSync(path.join(out, 'analysis.json'), 'utf8'));
    assert.ok(partial.done > 0 && partial.done < 160, `stopped part way (${partial.done} of 160)`);
    assert.match(reports[0].message, /^\d+\/160 samples · /);
    // resumed: the reference images report their own count, over both layers, up to all of them
    const later: P.ProgressValue[] = [];
    const second = s.conn.onProgress(P.Progress, 'analysis-2', (v) => later.push(v));
    const done = await s.conn.sendRequest(P.RunAnalysis, { ...params, workDoneToken: 'analysis-2' });
    second.dispose();
    const images = later
      .map((v) => /^(\d+)\/(\d+) reference images · /.exec(v.message ?? ''))
      .filter((m) => m !== null)
      .map((m) => [Number(m[1]), Number(m[2])]);
    assert.ok(images.length > 2, `reports while the reference images are made: ${JSON.stringify(later)}`);
    assert.deepEqual(images.at(-1), [images[0][1], images[0][1]], 'the last report counts every image');
    assert.ok(
      later.every((v, k) => k === 0 || v.percentage >= later[k - 1].percentage),
      'the percentage never goes back',
    );
    assert.equal(done.file, path.join(out, 'analysis.json'));
    assert.equal(done.samples, 160);
    const analysis = JSON.parse(fs.readFileSync(done.file, 'utf8'));
    assert.equal(analysis.done, 160);
    assert.equal(analysis.layers['classifier.1'].references.length, 32);
    await rejects(
      s.conn.sendRequest(P.RunAnalysis, { ...params, layers: ['features.9'] }),
      P.ErrorCodes.UNKNOWN_LAYER,
      /no layer "features\.9"/,
    );
    await s.conn.sendRequest(P.CloseModel, { modelId: info.modelId });
  });

  test('a NaN in the input gives a run the views accept, with warnings saying where', async () => {
    const input = goldenNpy('seed_example', 'input.npy');
    const data = Float32Array.from(input.data);
    data[0] = NaN;
    const run = await s.conn.sendRequest(P.RunAttribution, {
      modelId,
      input: { shape: input.shape, data: encodeFloats(data) },
      composite: 'epsilon_plus_flat',
      store: ['1'],
    });
    assert.match(run.warnings.join('; '), /the input has 1 NaN or infinite values/);
    assert.ok(RunView.safeParse({ ...run, model: 'm' }).success, 'the panel does not drop it');
  });

  test('an input file read once serves the next runs, until it changes on disk', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rl-input-'));
    const file = path.join(dir, 'input.npy');
    const seed = goldenNpy('seed_example', 'input.npy');
    const write = (scale: number) =>
      fs.writeFileSync(file, encodeNpy({ shape: seed.shape, data: seed.data.map((v) => v * scale) }));
    const inputOf = async () => {
      const run = await s.conn.sendRequest(P.RunAttribution, { modelId, input: { path: file }, target: [1] });
      return run.input.data;
    };
    write(1);
    const first = await inputOf();
    assert.equal(await inputOf(), first, 'the same file, the same input');
    write(-1);
    // a new modification time, or at least a rewrite the cache must not miss
    fs.utimesSync(file, new Date(), new Date(Date.now() + 5000));
    assert.notEqual(await inputOf(), first, 'the changed file is read again');
    fs.rmSync(dir, { recursive: true });
  });

  test('concurrent runs are served one after another, each with its own result', async () => {
    const input = { path: path.join(SEED, 'input.npy') };
    const targets = [0, 1, 2, 3, 4, 1, 2];
    const runs = await Promise.all(
      targets.map((t) => s.conn.sendRequest(P.RunAttribution, { modelId, input, target: [t], store: ['1'] })),
    );
    assert.deepEqual(
      runs.map((r) => r.target[0]),
      targets,
    );
    for (const r of runs) assert.ok(RunView.safeParse({ ...r, model: 'm' }).success);
    // the latest run's tensors are kept, the others' were replaced
    await s.conn.sendRequest(P.ExportTensor, { runId: runs.at(-1)!.runId, layer: '1', format: 'npy' });
    await rejects(
      s.conn.sendRequest(P.ExportTensor, { runId: runs[0].runId, layer: '1', format: 'npy' }),
      P.ErrorCodes.UNKNOWN_TENSOR,
      /no longer held/,
    );
  });

  test('a model opened while another one runs is whole after that run ends', async () => {
    const vgg = await s.conn.sendRequest(P.OpenModel, { path: path.join(GOLDEN_DIR, 'vgg_bn/model.onnx') });
    const token = 'long-while-open';
    let opened: Promise<P.ModelInfo> | undefined;
    const d = s.conn.onProgress(P.Progress, token, () => {
      opened ??= s.conn.sendRequest(P.OpenModel, { path: path.join(SEED, 'model.onnx') });
    });
    const long = await s.conn.sendRequest(P.RunAttribution, {
      modelId: vgg.modelId,
      input: { path: path.join(GOLDEN_DIR, 'vgg_bn/input.npy') },
      attributor: 'integrated_gradients',
      attributorParams: { nIter: 20 },
      workDoneToken: token,
    });
    d.dispose();
    assert.ok(opened, 'the open was sent during the run');
    const seed = await opened;
    const run = await s.conn.sendRequest(P.RunAttribution, {
      modelId: seed.modelId,
      input: { path: path.join(SEED, 'input.npy') },
    });
    assert.equal(run.topK[0][0].class, 4);
    assert.equal(long.attributor, 'integrated_gradients');
    await s.conn.sendRequest(P.CloseModel, { modelId: seed.modelId });
    await s.conn.sendRequest(P.CloseModel, { modelId: vgg.modelId });
  });

  test('closing a model during its run cancels the run, then closes', async () => {
    const info = await s.conn.sendRequest(P.OpenModel, { path: path.join(GOLDEN_DIR, 'vgg_bn/model.onnx') });
    const token = 'closing';
    let closed: Promise<void> | undefined;
    const d = s.conn.onProgress(P.Progress, token, () => {
      closed ??= s.conn.sendRequest(P.CloseModel, { modelId: info.modelId });
    });
    const long = s.conn.sendRequest(P.RunAttribution, {
      modelId: info.modelId,
      input: { path: path.join(GOLDEN_DIR, 'vgg_bn/input.npy') },
      attributor: 'integrated_gradients',
      attributorParams: { nIter: 200 },
      target: [0],
      workDoneToken: token,
    });
    await rejects(long, P.ErrorCodes.CANCELLED, /cancel/);
    d.dispose();
    await closed;
    await rejects(
      s.conn.sendRequest(P.CloseModel, { modelId: info.modelId }),
      P.ErrorCodes.UNKNOWN_MODEL,
      /no open model/,
    );
  });

  test('100 consecutive runs keep tensors and memory flat', async () => {
    const run = () =>
      s.conn.sendRequest(P.RunAttribution, {
        modelId,
        input: { path: path.join(SEED, 'input.npy') },
        composite: 'epsilon_gamma_box',
        compositeParams: { low: -3, high: 3 },
        target: [1],
      });
    for (let i = 0; i < 5; i++) await run();
    const before = await s.conn.sendRequest(P.Stats);
    for (let i = 0; i < 100; i++) await run();
    const afterStats = await s.conn.sendRequest(P.Stats);
    assert.equal(afterStats.numTensors, before.numTensors, 'tf tensor count');
    assert.equal(afterStats.numBytes, before.numBytes, 'tf bytes');
    assert.equal(afterStats.keptRuns, before.keptRuns, 'the tensors kept for export are those of the latest run');
    assert.ok(
      afterStats.rssBytes < before.rssBytes * 1.25 + 32 * 2 ** 20,
      `rss ${before.rssBytes} → ${afterStats.rssBytes}`,
    );
  });
});

test('after shutdown the server serves nothing but exit', async () => {
  const s = startServer();
  try {
    await s.conn.sendRequest(P.Initialize, { backend });
    await s.conn.sendRequest(P.OpenModel, { path: path.join(SEED, 'model.onnx') });
    await s.conn.sendRequest(P.Shutdown);
    await rejects(s.conn.sendRequest(P.OpenModel, { path: path.join(SEED, 'model.onnx') }), -32600, /shut down/);
    const exited = new Promise((resolve) => s.proc.once('exit', resolve));
    await s.conn.sendNotification(P.Exit);
    assert.equal(await exited, 0);
  } finally {
    await s.close();
  }
});
