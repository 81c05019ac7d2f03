import type { NdArray } from '../../engine/src/ndarray';

/** max|a − e| / max|e| (the parity measure); Infinity for a shape mismatch or a non-finite value. */
export function relativeErrorOf(actual: NdArray, expected: NdArray): number {
  if (actual.shape.join() !== expected.shape.join()) return Infinity;
  let err = 0;
  let ref = 0;
  for (let i = 0; i < expected.data.length; i++) {
    const d = Math.abs(actual.data[i] - expected.data[i]);
    if (!Number.isFinite(d)) return Infinity;
    err = Math.max(err, d);
    ref = Math.max(ref, Math.abs(expected.data[i]));
  }
  return ref === 0 ? err : err / ref;
}
