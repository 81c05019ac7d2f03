import * as tf from '@tensorflow/tfjs-core';
import { size } from '../ndarray';

/**
 * The float32 buffers the wasm and cpu backends hold a tensor's values in, to read and write them in place: the
 * native kernels compute on them, and a model's weights are read from its file straight into them.
 */
export const BACKENDS = ['wasm', 'cpu'] as const;
export type StorageBackend = (typeof BACKENDS)[number];

export interface Storage {
  view(t: tf.TensorInfo): Float32Array;
  allocate(shape: number[]): { output: Float32Array; result: tf.TensorInfo };
}

export const STORAGE: Record<StorageBackend, (backend: tf.KernelBackend) => Storage> = {
  wasm: (backend) => {
    const b = backend as unknown as {
      makeOutput(s: number[], d: string): tf.TensorInfo;
      typedArrayFromHeap(t: tf.TensorInfo): Float32Array;
    };
    return {
      view: (t) => b.typedArrayFromHeap(t),
      allocate: (shape) => {
        const result = b.makeOutput(shape, 'float32');
        return { output: b.typedArrayFromHeap(result), result };
      },
    };
  },
  cpu: (backend) => {
    const b = backend as unknown as {
      data: { get(id: object): { values: Float32Array } };
      makeTensorInfo(s: number[], d: string, v: Float32Array): tf.TensorInfo;
    };
    return {
      view: (t) => b.data.get(t.dataId).values,
      allocate: (shape) => {
        const output = new Float32Array(size(shape));
        return { output, result: b.makeTensorInfo(shape, 'float32', output) };
      },
    };
  },
};

/**
 * A float32 tensor whose values `fill` writes in place: on wasm straight into the heap, on cpu into the array the
 * tensor keeps; elsewhere through an array of its own. (`fill` must not make tensors: a growing wasm heap would
 * detach its view.)
 */
export function filledTensor(shape: number[], fill: (values: Float32Array) => void): tf.Tensor {
  const name = tf.getBackend();
  if (!(BACKENDS as readonly string[]).includes(name)) {
    const values = new Float32Array(size(shape));
    fill(values);
    return tf.tensor(values, shape, 'float32');
  }
  const { output, result } = STORAGE[name as StorageBackend](tf.backend()).allocate(shape);
  try {
    fill(output);
  } catch (e) {
    tf.backend().disposeData(result.dataId);
    throw e;
  }
  return tf.engine().makeTensorFromTensorInfo(result);
}
