/**
 * A separable Gaussian blur of one image plane (rows × columns), for IntegratedGradients' blurred baseline and for
 * the crop of reference images.
 */

/** `taps` Gaussian weights of standard deviation `sigma`, centred, summing to one. */
export function gaussianKernel(taps: number, sigma: number): number[] {
  const half = (taps - 1) / 2;
  const pdf = Array.from({ length: taps }, (_, i) => Math.exp(-0.5 * ((i - half) / sigma) ** 2));
  const total = pdf.reduce((a, b) => a + b, 0);
  return pdf.map((v) => v / total);
}

/** Edge handling: an index outside [0, n) mapped inside. */
export type Edge = (i: number, n: number) => number;
/** the nearest edge pixel repeated */
export const clampEdge: Edge = (i, n) => Math.min(n - 1, Math.max(0, i));
/** mirrored at the edge pixel (torch's reflect padding), repeated for kernels wider than the plane */
export const reflectEdge: Edge = (i, n) => {
  if (n === 1) return 0;
  while (i < 0 || i >= n) i = i < 0 ? -i : 2 * (n - 1) - i;
  return i;
};

/** The plane blurred along its columns, then its rows, by `kernel` (odd length). */
export function blurPlane(values: ArrayLike<number>, h: number, w: number, kernel: number[], edge: Edge): Float64Array {
  const half = (kernel.length - 1) / 2;
  const pass = (src: ArrayLike<number>, alongX: boolean) => {
    const out = new Float64Array(h * w);
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++) {
        let acc = 0;
        for (let t = 0; t < kernel.length; t++) {
          const d = t - half;
          acc += kernel[t] * src[alongX ? y * w + edge(x + d, w) : edge(y + d, h) * w + x];
        }
        out[y * w + x] = acc;
      }
    return out;
  };
  return pass(pass(values, true), false);
}
