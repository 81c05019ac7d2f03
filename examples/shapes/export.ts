import * as tf from '@tensorflow/tfjs-core';
import { PNG } from 'pngjs';
import { encodeOnnx, type OnnxTensor } from '../../engine/src/io/onnx-writer';
import { CLASSES, SIZE } from './dataset';

type Params = Record<'c1w' | 'c1b' | 'c2w' | 'c2b' | 'd1w' | 'd1b' | 'd2w' | 'd2b', tf.Tensor>;

const tensor = (name: string, t: tf.Tensor): OnnxTensor => ({ name, dims: t.shape, values: t.dataSync() });

/** The trained CNN as ONNX, laid out as PyTorch exports `features` / `classifier` Sequentials. */
export function exportOnnx(p: Params): Uint8Array {
  const conv = (t: tf.Tensor) => tf.transpose(t, [3, 2, 0, 1]); // HWIO → OIHW
  const dense = (t: tf.Tensor) => tf.transpose(t); // [in, out] → [out, in] with transB=1
  const convAttrs = { dilations: [1, 1], group: 1, kernel_shape: [3, 3], pads: [1, 1, 1, 1], strides: [1, 1] };
  const poolAttrs = { ceil_mode: 0, kernel_shape: [2, 2], pads: [0, 0, 0, 0], strides: [2, 2] };
  const gemm = { alpha: 1.0, beta: 1.0, transB: 1 };
  return encodeOnnx({
    input: { name: 'input', dims: [1, 3, SIZE, SIZE] },
    output: { name: 'output', dims: [1, CLASSES.length] },
    initializers: [
      tensor('features.0.weight', conv(p.c1w)),
      tensor('features.0.bias', p.c1b),
      tensor('features.3.weight', conv(p.c2w)),
      tensor('features.3.bias', p.c2b),
      tensor('classifier.1.weight', dense(p.d1w)),
      tensor('classifier.1.bias', p.d1b),
      tensor('classifier.3.weight', dense(p.d2w)),
      tensor('classifier.3.bias', p.d2b),
    ],
    nodes: [
      {
        name: '/features/features.0/Conv',
        opType: 'Conv',
        inputs: ['input', 'features.0.weight', 'features.0.bias'],
        outputs: ['/features/features.0/Conv_output_0'],
        attributes: convAttrs,
      },
      {
        name: '/features/features.1/Relu',
        opType: 'Relu',
        inputs: ['/features/features.0/Conv_output_0'],
        outputs: ['/features/features.1/Relu_output_0'],
      },
      {
        name: '/features/features.2/MaxPool',
        opType: 'MaxPool',
        inputs: ['/features/features.1/Relu_output_0'],
        outputs: ['/features/features.2/MaxPool_output_0'],
        attributes: poolAttrs,
      },
      {
        name: '/features/features.3/Conv',
        opType: 'Conv',
        inputs: ['/features/features.2/MaxPool_output_0', 'features.3.weight', 'features.3.bias'],
        outputs: ['/features/features.3/Conv_output_0'],
        attributes: convAttrs,
      },
      {
        name: '/features/features.4/Relu',
        opType: 'Relu',
        inputs: ['/features/features.3/Conv_output_0'],
        outputs: ['/features/features.4/Relu_output_0'],
      },
      {
        name: '/features/features.5/MaxPool',
        opType: 'MaxPool',
        inputs: ['/features/features.4/Relu_output_0'],
        outputs: ['/features/features.5/MaxPool_output_0'],
        attributes: poolAttrs,
      },
      {
        name: '/classifier/classifier.0/Flatten',
        opType: 'Flatten',
        inputs: ['/features/features.5/MaxPool_output_0'],
        outputs: ['/classifier/classifier.0/Flatten_output_0'],
        attributes: { axis: 1 },
      },
      {
        name: '/classifier/classifier.1/Gemm',
        opType: 'Gemm',
        inputs: ['/classifier/classifier.0/Flatten_output_0', 'classifier.1.weight', 'classifier.1.bias'],
        outputs: ['/classifier/classifier.1/Gemm_output_0'],
        attributes: gemm,
      },
      {
        name: '/classifier/classifier.2/Relu',
        opType: 'Relu',
        inputs: ['/classifier/classifier.1/Gemm_output_0'],
        outputs: ['/classifier/classifier.2/Relu_output_0'],
      },
      {
        name: '/classifier/classifier.3/Gemm',
        opType: 'Gemm',
        inputs: ['/classifier/classifier.2/Relu_output_0', 'classifier.3.weight', 'classifier.3.bias'],
        outputs: ['output'],
        attributes: gemm,
      },
    ],
  });
}

/** HWC floats in [0, 1] as an RGB PNG. */
export function encodeImagePng(hwc: Float32Array): Buffer {
  const png = new PNG({ width: SIZE, height: SIZE });
  for (let i = 0; i < SIZE * SIZE; i++) {
    for (let c = 0; c < 3; c++) png.data[i * 4 + c] = Math.round(hwc[i * 3 + c] * 255);
    png.data[i * 4 + 3] = 255;
  }
  return PNG.sync.write(png);
}
