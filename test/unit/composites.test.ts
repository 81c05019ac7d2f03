/** Composites a user configures (layer map, name map, first-layer map) resolve to the same rules as Zennit's. */
import { before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as path from 'path';
import type * as tf from '@tensorflow/tfjs-core';
import { relevancePass } from '../../engine/src/lrp/relevance-pass';
import { classRelevance } from '../../engine/src/lrp/conditions';
import { initBackend } from '../../engine/src/graph/backend';
import { assignRules, buildComposite, compositeFromFile, ruleAssignment } from '../../engine/src/lrp/composites';
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

test('a composite file spelled like epsilon_plus_flat gives the same relevance', async () => {
  const model = await loadModel(path.join(GOLDEN_DIR, 'seed_example/model.onnx'));
  const input = goldenNpy('seed_example', 'input.npy');
  const custom = compositeFromFile({
    layerMap: [
      { type: 'Activation', rule: 'pass' },
      { type: 'Convolution', rule: 'zplus' },
      { type: 'Dense', rule: 'epsilon', epsilon: 1e-6 },
    ],
    firstLayer: { type: 'Linear', rule: 'flat' },
  });
  const a = await relevancePass(model, input, target, { composite: custom });
  const b = await relevancePass(model, input, target, { composite: buildComposite('epsilon_plus_flat') });
  assert.deepEqual(Array.from(a.relevance.data), Array.from(b.relevance.data));
  model.dispose();
});

test('rule assignment: name map first (globs too), then the first linear layer, then the layer map', async () => {
  const model = await loadModel(path.join(GOLDEN_DIR, 'resnet_mini/model.onnx'));
  const assignment = ruleAssignment(
    compositeFromFile({
      nameMap: [
        { layers: ['layer1.conv2'], rule: 'gamma', gamma: 0.5 },
        { layers: ['stem.*'], rule: 'gradient' },
      ],
      firstLayer: { type: 'Convolution', rule: 'zbox', low: -1, high: 1 },
      layerMap: [
        { type: 'Sum', rule: 'norm' },
        { type: 'Convolution', rule: 'alpha_beta', alpha: 2, beta: 1 },
        { type: 'Dense', rule: 'epsilon' },
      ],
    }),
    model.canonical(),
  );
  const name = (id: string) => assignment.get(id)?.rule.name;
  // the name map takes the first convolution (stem.0), and with it the first-layer rule, as Zennit's MixedComposite
  assert.equal(name('stem.0'), 'Gradient');
  assert.equal(name('layer1.conv1'), 'AlphaBeta');
  assert.equal(name('layer1.conv2'), 'Gamma');
  assert.equal(assignment.get('layer1.conv2')?.rule.detail, 'gamma=0.5');
  assert.equal(name('layer1.Add'), 'Norm');
  assert.equal(name('fc'), 'Epsilon');
  assert.equal(name('pool'), undefined);
  assert.equal(
    assignRules(compositeFromFile({ nameMap: [{ layers: ['stem.*'], rule: 'gradient' }] }), model.canonical()).size,
    0,
  );
  model.dispose();
});

test('a name-map pattern that matches no layer is refused, naming it', async () => {
  const model = await loadModel(path.join(GOLDEN_DIR, 'resnet_mini/model.onnx'));
  assert.throws(
    () =>
      ruleAssignment(
        compositeFromFile({ nameMap: [{ layers: ['layer1.conv2', 'layer9.*'], rule: 'flat' }] }),
        model.canonical(),
      ),
    (e: unknown) => e instanceof EngineError && /"layer9\.\*" matches no layer/.test(e.message),
  );
  model.dispose();
});

test('bad AlphaBeta parameters and a composite without its bounds are refused', () => {
  assert.throws(
    () => compositeFromFile({ layerMap: [{ type: 'Convolution', rule: 'alpha_beta', alpha: 3, beta: 1 }] }),
    /alpha − beta must equal 1/,
  );
  assert.throws(
    () => buildComposite('epsilon_gamma_box'),
    (e: unknown) => e instanceof EngineError && /needs low and high/.test(e.message),
  );
});
