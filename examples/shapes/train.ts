/**
 * Trains the bundled example model (a small CNN on the synthetic shapes dataset) with TF.js and exports it as
 * ONNX with PyTorch-style node names, plus one sample PNG per class. Run: npm run train-example
 * (on the cpu backend: wasm has no kernel for the weight gradient of a convolution)
 */
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../engine/src/graph/backend';
import { encodeImagePng, exportOnnx } from './export';
import { batch, CLASSES, drawShape, rng, SIZE } from './dataset';

const OUT = __dirname;

function init(shape: number[], fanIn: number, seed: number): tf.Variable {
  return tf.variable(tf.randomNormal(shape, 0, Math.sqrt(2 / fanIn), 'float32', seed));
}

async function main() {
  console.log('backend:', await initBackend(process.env.RELEVANCE_LENS_BACKEND ?? 'cpu'));
  const p = {
    c1w: init([3, 3, 3, 8], 27, 1),
    c1b: tf.variable(tf.zeros([8])),
    c2w: init([3, 3, 8, 16], 72, 2),
    c2b: tf.variable(tf.zeros([16])),
    d1w: init([16 * 8 * 8, 32], 1024, 3),
    d1b: tf.variable(tf.zeros([32])),
    d2w: init([32, CLASSES.length], 32, 4),
    d2b: tf.variable(tf.zeros([CLASSES.length])),
  };
  const model = (x: tf.Tensor4D) => {
    let h = tf.relu(tf.add(tf.conv2d(x, p.c1w as tf.Tensor4D, 1, 'same'), p.c1b)) as tf.Tensor4D;
    h = tf.maxPool(h, 2, 2, 'valid');
    h = tf.relu(tf.add(tf.conv2d(h, p.c2w as tf.Tensor4D, 1, 'same'), p.c2b)) as tf.Tensor4D;
    h = tf.maxPool(h, 2, 2, 'valid');
    // Flatten in NCHW order, as the ONNX Flatten of the exported model does.
    const flat = tf.reshape(tf.transpose(h, [0, 3, 1, 2]), [x.shape[0], -1]);
    const d = tf.relu(tf.add(tf.matMul(flat, p.d1w as tf.Tensor2D), p.d1b));
    return tf.add(tf.matMul(d as tf.Tensor2D, p.d2w as tf.Tensor2D), p.d2b) as tf.Tensor2D;
  };
  const rand = rng(7);
  const opt = tf.train.adam(3e-3);
  const steps = Number(process.env.STEPS ?? 400);
  for (let step = 1; step <= steps; step++) {
    const { x, y } = batch(32, rand);
    const loss = opt.minimize(() => {
      const logits = model(tf.tensor4d(x, [32, SIZE, SIZE, 3]));
      return tf.losses.softmaxCrossEntropy(tf.oneHot(y, CLASSES.length), logits);
    }, true);
    if (step % 50 === 0) console.log(`step ${step}: loss ${loss!.dataSync()[0].toFixed(4)}`);
    loss?.dispose();
  }
  const test = batch(400, rng(99));
  const pred = tf.tidy(() => tf.argMax(model(tf.tensor4d(test.x, [400, SIZE, SIZE, 3])), 1).dataSync());
  const acc = test.y.filter((c, i) => pred[i] === c).length / test.y.length;
  console.log(`test accuracy: ${(acc * 100).toFixed(1)}%`);

  fs.writeFileSync(path.join(OUT, 'model.onnx'), exportOnnx(p));
  const sample = rng(2024);
  CLASSES.forEach((name, cls) =>
    fs.writeFileSync(path.join(OUT, `${name}.png`), encodeImagePng(drawShape(cls, sample))),
  );
  fs.writeFileSync(
    path.join(OUT, 'classes.json'),
    JSON.stringify({ classes: CLASSES, input: '1x3x32x32 RGB in [0, 1]', test_accuracy: acc }, null, 2) + '\n',
  );
  console.log(`wrote model.onnx and ${CLASSES.length} sample images to ${OUT}`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
