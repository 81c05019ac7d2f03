import * as tf from '@tensorflow/tfjs-core';
import { size } from '../ndarray';

/**
 * A node's parameter (a weight, a bias, a constant operand). Its shape is known when the model opens; its backend
 * tensor is made on first use and kept. An ONNX model's parameters are made from the file's bytes then, so opening
 * a model (its layer tree, shapes and rules) reads no weights.
 */
export class Param {
  private made?: tf.Tensor;
  private disposed = false;

  private constructor(
    readonly shape: readonly number[],
    private make?: () => tf.Tensor,
  ) {}

  /** a parameter whose tensor `make` returns (once; intermediate tensors are disposed) */
  static lazy(shape: readonly number[], make: () => tf.Tensor): Param {
    return new Param([...shape], make);
  }

  /** a parameter of a tensor already made (it then belongs to the parameter) */
  static of(t: tf.Tensor): Param {
    const p = new Param([...t.shape]);
    p.made = tf.keep(t);
    return p;
  }

  get size(): number {
    return size(this.shape);
  }

  get rank(): number {
    return this.shape.length;
  }

  /** the tensor has been made */
  get loaded(): boolean {
    return this.made !== undefined;
  }

  /** The backend tensor, made now if not yet: kept outside every scope, disposed with the parameter. */
  get tensor(): tf.Tensor {
    if (this.made) return this.made;
    if (this.disposed || !this.make) throw new Error('a parameter was used after its model was closed');
    const t = tf.tidy(this.make);
    if (t.shape.length !== this.shape.length || t.shape.some((d, i) => d !== this.shape[i])) {
      t.dispose();
      throw new Error(`a parameter's values have shape [${t.shape}], not the [${this.shape}] the model declares`);
    }
    this.made = tf.keep(t);
    this.make = undefined;
    return this.made;
  }

  dispose(): void {
    this.made?.dispose();
    this.made = undefined;
    this.make = undefined;
    this.disposed = true;
  }
}

/** The tensors of a node's parameters, made where not yet. */
export function tensorsOf(params: Readonly<Record<string, Param>>): Record<string, tf.Tensor> {
  return Object.fromEntries(Object.entries(params).map(([k, p]) => [k, p.tensor]));
}

/** Parameters of tensors already made. */
export function paramsOf(tensors: Readonly<Record<string, tf.Tensor>>): Record<string, Param> {
  return Object.fromEntries(Object.entries(tensors).map(([k, t]) => [k, Param.of(t)]));
}
