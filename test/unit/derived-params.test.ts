/**
 * Rule-modified parameters kept across runs: made once per key, never freed while a run may use them, bounded;
 * and a model that runs one composite after another gives each the relevance a fresh model gives.
 */
import { before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import { relevancePass } from '../../engine/src/lrp/relevance-pass';
import { classRelevance } from '../../engine/src/lrp/conditions';
import { initBackend } from '../../engine/src/graph/backend';
import { buildComposite } from '../../engine/src/lrp/composites';
import { DerivedParams } from '../../engine/src/lrp/derived-params';
import { loadModel } from '../../engine/src/graph/model';
import { GOLDEN_DIR, goldenNpy } from '../golden';

before(async () => {
  await initBackend(process.env.RELEVANCE_LENS_BACKEND ?? 'wasm');
});

test('each key is made once and kept beyond the scope that asked for it', () => {
  const cache = new DerivedParams(1024);
  const p = tf.tensor1d([1, -2, 3]);
  let made = 0;
  const make = (t: tf.Tensor) => (made++, tf.relu(t));
  const first = tf.tidy(() => cache.get(p, 'clamp(min=0)', make));
  const again = tf.tidy(() => cache.get(p, 'clamp(min=0)', make));
  assert.equal(first, again);
  assert.equal(made, 1);
  assert.deepEqual(Array.from(first.dataSync()), [1, 0, 3]);
  assert.notEqual(
    tf.tidy(() => cache.get(p, 'square', (t) => tf.square(t))),
    first,
  );
  cache.clear();
  assert.ok(first.isDisposed);
  p.dispose();
});

test('past the budget nothing in use is freed; the next run starts the cache over', () => {
  const p = tf.tensor1d([1, -2, 3, -4]); // 16 bytes
  const cache = new DerivedParams(32);
  const a = cache.get(p, 'a', (t) => tf.relu(t));
  const b = cache.get(p, 'b', (t) => tf.neg(t));
  const c = tf.tidy(() => {
    const over = cache.get(p, 'c', (t) => tf.abs(t)); // over the budget: made for this run only
    assert.ok(!a.isDisposed && !b.isDisposed, 'kept tensors stay while a run may use them');
    return tf.keep(over);
  });
  assert.deepEqual(Array.from(c.dataSync()), [1, 2, 3, 4]);
  assert.notEqual(
    cache.get(p, 'c', (t) => tf.abs(t)),
    c,
    'not kept past the budget',
  );
  cache.beforeRun();
  assert.ok(a.isDisposed && b.isDisposed);
  const kept = cache.get(p, 'c', (t) => tf.abs(t));
  assert.equal(
    cache.get(p, 'c', (t) => tf.abs(t)),
    kept,
  );
  cache.clear();
  tf.dispose([p, c]);
});

test('one model through several composites in turn gives what a fresh model gives each time', async () => {
  const file = path.join(GOLDEN_DIR, 'vgg_bn/model.onnx');
  const input = goldenNpy('vgg_bn', 'input.npy');
  const target = (o: tf.Tensor) =>
    classRelevance(
      Array.from({ length: o.shape[0] }, () => [1]),
      'one_hot',
    )(o);
  const names = [
    'epsilon_plus_flat',
    'epsilon_gamma_box',
    'epsilon_alpha2_beta1',
    'epsilon_gamma_box',
    'epsilon_plus_flat',
  ];
  const shared = await loadModel(file);
  for (const name of names) {
    const composite = buildComposite(name, { low: -3, high: 3 });
    const fresh = await loadModel(file);
    const expected = await relevancePass(fresh, input, target, { composite });
    fresh.dispose();
    const actual = await relevancePass(shared, input, target, { composite });
    assert.deepEqual(Array.from(actual.relevance.data), Array.from(expected.relevance.data), name);
  }
  shared.dispose();
});
