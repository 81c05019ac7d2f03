/** A float32 tensor's values outside TF.js: shape and row-major data (what files, the protocol and tests hold). */
export interface NdArray {
  shape: number[];
  data: Float32Array;
}

export function size(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}
