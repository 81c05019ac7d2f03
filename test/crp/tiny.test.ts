/**
 * zennit-crp's own expectations (its tests/test_attribution.py, commit 5117f31), reproduced by the engine: two
 * linear layers side by side, joined by a concatenation into a third, EpsilonPlus, relevance starting from the
 * logit. Small enough to check by hand: the input [−1, 1] gives layer1 [1, 1] and layer2 [1, 0], the output
 * 1·1 + 4·1 + 5·1 + 0·0 = 10, and Epsilon splits it as the products: [1, 4] at layer1, [5, 0] at layer2.
 */
import { before, describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { initBackend } from '../../engine/src/graph/backend';
import { loadModel, type Model } from '../../engine/src/graph/model';
import { runAttribution } from '../../engine/src/lrp/attribution';
import { EngineError } from '../../engine/src/errors';
import { encodeOnnx } from '../../engine/src/io/onnx-writer';
import type { ConditionSet } from '../../protocol/engine';

const linear = (name: string, input: string, output: string) => ({
  name: `/${name}/Gemm`,
  opType: 'Gemm',
  inputs: [input, `${name}.weight`],
  outputs: [output],
  attributes: { transB: 1 },
});

/** zennit-crp's SimpleModel, exported as PyTorch would (Gemm nodes named after their modules). */
async function simpleModel(): Promise<Model> {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'rl-crp-')), 'simple.onnx');
  fs.writeFileSync(
    file,
    encodeOnnx({
      input: { name: 'input', dims: [1, 2] },
      output: { name: 'output', dims: [1, 1] },
      initializers: [
        { name: 'layer1.weight', dims: [2, 2], values: [1, 2, 0, 1] },
        { name: 'layer2.weight', dims: [2, 2], values: [2, 3, 0, 0] },
        { name: 'layer3.weight', dims: [1, 4], values: [1, 4, 5, 0] },
      ],
      nodes: [
        linear('layer1', 'input', 'y1'),
        linear('layer2', 'input', 'y2'),
        { name: '/Concat', opType: 'Concat', inputs: ['y1', 'y2'], outputs: ['y3'], attributes: { axis: 1 } },
        linear('layer3', 'y3', 'output'),
      ],
    }),
  );
  return loadModel(file);
}

const LAYERS = ['layer1', 'layer2'];

describe("zennit-crp's tiny-model expectations", () => {
  let model: Model;
  before(async () => {
    await initBackend(process.env.RELEVANCE_LENS_BACKEND ?? 'wasm');
    model = await simpleModel();
  });

  /** The input relevance and the stored relevance of layer1 and layer2 under `sets`. */
  async function attribute(sets: ConditionSet[], excludeParallel?: boolean, batchSize?: number) {
    const run = await runAttribution(
      model,
      { shape: [1, 2], data: Float32Array.of(-1, 1) },
      {
        composite: 'epsilon_plus',
        store: LAYERS,
        conditions: { sets, excludeParallel, batchSize },
        attributorParams: { outputRelevance: 'logit' },
      },
    );
    const round = (a: Float32Array) => Array.from(a, (v) => Math.round(v * 1e4) / 1e4 + 0);
    const stored = (id: string) => round(run.stored.find((l) => l.id === id)!.relevance.data);
    return { heatmap: round(run.relevance.data), layer1: stored('layer1'), layer2: stored('layer2') };
  }

  test('test_simple_attribution: no layer conditions', async () => {
    assert.deepEqual(await attribute([{ y: [0] }]), { heatmap: [-11, 21], layer1: [1, 4], layer2: [5, 0] });
  });

  test('test_parallel_attribution: layer1 channel 0 (and layer2 none), both exclude_parallel values', async () => {
    assert.deepEqual(await attribute([{ y: [0], layer1: [0], layer2: [] }], false), {
      heatmap: [-1, 2],
      layer1: [1, 4],
      layer2: [5, 0],
    });
    // layer2 lies off the path through layer1: it holds no relevance
    assert.deepEqual(await attribute([{ y: [0], layer1: [0] }], true), {
      heatmap: [-1, 2],
      layer1: [1, 4],
      layer2: [0, 0],
    });
  });

  test('test_parallel_cond_attribution: both branches conditioned, exclude_parallel false', async () => {
    assert.deepEqual(await attribute([{ y: [0], layer2: [0], layer1: [0] }], false), {
      heatmap: [-11, 17],
      layer1: [1, 4],
      layer2: [5, 0],
    });
  });

  test('test_seq_cond_attribution: the output layer, then layer1, in sequence', async () => {
    assert.deepEqual(await attribute([{ y: [0], layer3: [0], layer1: [0] }], true), {
      heatmap: [-1, 2],
      layer1: [1, 4],
      layer2: [0, 0],
    });
  });

  test('several condition sets give a row each, in their order, in one pass or in several', async () => {
    const sets: ConditionSet[] = [{ y: [0], layer1: [0] }, { y: [0] }, { y: [0], layer1: [] }];
    const rows = await attribute(sets, true);
    assert.deepEqual(rows.heatmap, [-1, 2, -11, 21, 0, 0]);
    assert.deepEqual(rows.layer2, [0, 0, 5, 0, 0, 0]);
    assert.deepEqual(await attribute(sets, true, 2), rows);
    assert.deepEqual(await attribute(sets, true, 1), rows);
  });

  test('parallel layers in one set with exclude_parallel, channels out of range, unknown layers: clear errors', async () => {
    const refused = async (sets: ConditionSet[], code: string, pattern: RegExp, excludeParallel = true) =>
      assert.rejects(attribute(sets, excludeParallel), (e: unknown) => {
        assert.ok(e instanceof EngineError, String(e));
        assert.equal(e.code, code);
        assert.match(e.message, pattern);
        return true;
      });
    await refused([{ y: [0], layer1: [0], layer2: [0] }], 'BAD_ARGUMENT', /"layer2" and "layer1" .* parallel branches/);
    await refused([{ y: [0], layer1: [2] }], 'BAD_ARGUMENT', /layer "layer1": channel 2 is out of range \(it has 2\)/);
    await refused([{ y: [0], nowhere: [0] }], 'UNKNOWN_LAYER', /no layer "nowhere"/);
    await refused([{ y: [1] }], 'BAD_ARGUMENT', /target class 1 is out of range/);
  });
});
