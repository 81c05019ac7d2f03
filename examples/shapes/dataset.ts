import { seededRandom } from '../../engine/src/lrp/random';

/**
 * A synthetic "shapes" dataset: 32×32 RGB images of one shape (circle, square, triangle, cross) with a random
 * colour, size and position on a noisy background. Deterministic for a seed.
 *
 * It plants a spurious cue on purpose, the kind of "Clever Hans" feature a data-set analysis exists to find: every
 * cross carries a small bright mark in the top-left corner (as a watermark on one class of photographs would).
 */
export const CLASSES = ['circle', 'square', 'triangle', 'cross'] as const;
export const SIZE = 32;
/** The planted mark: rows and columns MARK[0]..MARK[1] (ends included), on every cross. */
export const MARK = [1, 3] as const;
export const MARKED_CLASS = 3;

export const rng = seededRandom;

function inside(cls: number, dx: number, dy: number, r: number): boolean {
  switch (cls) {
    case 0:
      return dx * dx + dy * dy <= r * r;
    case 1:
      return Math.abs(dx) <= r * 0.85 && Math.abs(dy) <= r * 0.85;
    case 2:
      return dy <= r * 0.8 && dy >= -r && Math.abs(dx) <= ((dy + r) / (1.8 * r)) * r;
    default:
      return (Math.abs(dx) <= r * 0.3 && Math.abs(dy) <= r) || (Math.abs(dy) <= r * 0.3 && Math.abs(dx) <= r);
  }
}

/** One image as HWC floats in [0, 1]. */
export function drawShape(cls: number, rand: () => number): Float32Array {
  const img = new Float32Array(SIZE * SIZE * 3);
  const bg = [rand() * 0.4, rand() * 0.4, rand() * 0.4];
  const fg = [0.5 + rand() * 0.5, 0.5 + rand() * 0.5, 0.5 + rand() * 0.5];
  const r = 5 + rand() * 6;
  const cx = r + 1 + rand() * (SIZE - 2 * r - 2);
  const cy = r + 1 + rand() * (SIZE - 2 * r - 2);
  for (let y = 0; y < SIZE; y++) {
    for (let x = 0; x < SIZE; x++) {
      const on = inside(cls, x - cx, y - cy, r);
      for (let c = 0; c < 3; c++) {
        const v = (on ? fg[c] : bg[c]) + (rand() - 0.5) * 0.1;
        img[(y * SIZE + x) * 3 + c] = Math.min(1, Math.max(0, v));
      }
    }
  }
  if (cls === MARKED_CLASS)
    for (let y = MARK[0]; y <= MARK[1]; y++)
      for (let x = MARK[0]; x <= MARK[1]; x++) for (let c = 0; c < 3; c++) img[(y * SIZE + x) * 3 + c] = 1;
  return img;
}

export function batch(n: number, rand: () => number): { x: Float32Array; y: number[] } {
  const x = new Float32Array(n * SIZE * SIZE * 3);
  const y: number[] = [];
  for (let i = 0; i < n; i++) {
    const cls = Math.floor(rand() * CLASSES.length);
    x.set(drawShape(cls, rand), i * SIZE * SIZE * 3);
    y.push(cls);
  }
  return { x, y };
}
