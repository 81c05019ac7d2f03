/** Composites a user configures (layer map, name map, first-layer map) resolve to the same rules as Zennit's. */
import { before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as path from 'path';
import type * as tf from '@tensorflow/tfjs-core';
import { relevancePass } from '../../engine/src/lrp/relevance-pass';
import { classRelevance } from '../../engine/src/lrp/conditions';
import { initBackend } from '../../engine/src/graph/backend';
import { assignRules, buildComposite, customComposite } from '../../engine/src/lrp/composites';
import { EngineError } from '../../engine/src/errors';
import { loadModel } from '../../engine/src/graph/model';
import { GOLDEN_DIR, goldenNpy } from '../golden';

before(async () => {
  await initBackend(process.env.RELEVANCE_LENS_BACKEND ?? 'cpu');
});

const target = (o: tf.Tensor) =>
  classRelevance(
    Array.from({ length: o.shape[0] }, () => [1]),
    'one_hot',
  )(o);

test('a custom composite spelled like epsilon_plus_flat gives the same relevance', async () => {
  const model = await loadModel(path.join(GOLDEN_DIR, 'seed_example/model.onnx'));
  const input = goldenNpy('seed_example', 'input.npy');
  const custom = customComposite({
    layerMap: [
      { type: 'activation', rule: 'pass' },
      { type: 'conv', rule: 'zplus' },
      { type: 'dense', rule: 'epsilon', params: { epsilon: 1e-6 } },
    ],
    firstMap: [{ type: 'linear', rule: 'flat' }],
  });
  const a = await relevancePass(model, input, target, { composite: custom });
  const b = await relevancePass(model, input, target, { composite: buildComposite('epsilon_plus_flat') });
  assert.deepEqual(Array.from(a.relevance.data), Array.from(b.relevance.data));
  model.dispose();
});

test('rule assignment: name map first, then the first linear layer, then the layer map; unmapped nodes get none', async () => {
  const model = await loadModel(path.join(GOLDEN_DIR, 'resnet_mini/model.onnx'));
  const rules = assignRules(
    customComposite({
      nameMap: [{ ids: ['layer1.conv2'], rule: 'gamma', params: { gamma: 0.5 } }],
      firstMap: [{ type: 'conv', rule: 'zbox', params: { low: -1, high: 1 } }],
      layerMap: [
        { type: 'sum', rule: 'norm' },
        { type: 'conv', rule: 'alpha_beta', params: { alpha: 2, beta: 1 } },
        { type: 'dense', rule: 'epsilon' },
      ],
    }),
    model.canonical(),
  );
  const name = (id: string) => rules.get(id)?.name;
  assert.equal(name('stem.0'), 'ZBox');
  assert.equal(name('layer1.conv1'), 'AlphaBeta');
  assert.equal(name('layer1.conv2'), 'Gamma');
  assert.equal(name('layer1.Add'), 'Norm');
  assert.equal(name('fc'), 'Epsilon');
  assert.equal(name('stem.1'), undefined);
  assert.equal(name('pool'), undefined);
  model.dispose();
});

test('unknown rules, layer types and bad AlphaBeta parameters are refused', () => {
  assert.throws(
    () => customComposite({ layerMap: [{ type: 'conv', rule: 'lrp-magic' }] }),
    (e: unknown) => e instanceof EngineError && /unknown rule "lrp-magic"/.test(e.message),
  );
  assert.throws(
    () => customComposite({ layerMap: [{ type: 'lstm' as never, rule: 'epsilon' }] }),
    (e: unknown) => e instanceof EngineError && /unknown layer type "lstm"/.test(e.message),
  );
  assert.throws(
    () => customComposite({ layerMap: [{ type: 'conv', rule: 'alpha_beta', params: { alpha: 3, beta: 1 } }] }),
    /alpha − beta must equal 1/,
  );
  assert.throws(
    () => buildComposite('epsilon_gamma_box'),
    (e: unknown) => e instanceof EngineError && /needs low and high/.test(e.message),
  );
});
