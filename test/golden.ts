import * as fs from 'fs';
import * as path from 'path';
import { type NdArray } from '../engine/src/ndarray';
import { parseNpy } from '../engine/src/io/npy';

/** Where ../shared/golden lives: beside the repository (as CI lays it out), or RELEVANCE_LENS_GOLDEN. */
export const GOLDEN_DIR = process.env.RELEVANCE_LENS_GOLDEN ?? path.resolve(__dirname, '../../shared/golden');

export interface GoldenLayer {
  file: string;
  shape: number[];
  sum: number;
}
export interface GoldenMethod {
  attributor: string;
  composite: string | null;
  relevance: string;
  output?: string;
  layers?: Record<string, GoldenLayer>;
  n_iter?: number;
  window?: number;
  stride?: number;
}
export interface GoldenManifest {
  case: string;
  onnx?: string;
  input: string;
  input_shape: number[];
  layout: string;
  target: number[][];
  methods: Record<string, GoldenMethod>;
  box?: { low: number; high: number };
  tfjs?: { model: string; input: string; layout: string; layer_for_module: Record<string, string> };
  onnx_node_for_module: Record<string, { node: string; op: string; output: string }>;
}

export function goldenCases(): string[] {
  return fs
    .readdirSync(GOLDEN_DIR)
    .filter((d) => fs.existsSync(path.join(GOLDEN_DIR, d, 'manifest.json')))
    .sort();
}

export function manifest(caseName: string): GoldenManifest {
  return JSON.parse(fs.readFileSync(path.join(GOLDEN_DIR, caseName, 'manifest.json'), 'utf8'));
}

export function goldenNpy(caseName: string, ...parts: string[]): NdArray {
  const file = path.join(GOLDEN_DIR, caseName, ...parts);
  return parseNpy(fs.readFileSync(file), file);
}

/** Class index per row from the manifest's one-hot targets. */
export function targetIndices(m: GoldenManifest): number[] {
  return m.target.map((row) => row.indexOf(1));
}

/** The parity criterion: same shape and max|a − e| ≤ 1e-4 · max|e|. Returns a message on failure. */
export function compare(actual: NdArray, expected: NdArray, what: string): string | undefined {
  if (actual.shape.join() !== expected.shape.join())
    return `${what}: shape [${actual.shape}] ≠ expected [${expected.shape}]`;
  let maxErr = 0;
  let maxRef = 0;
  for (let i = 0; i < expected.data.length; i++) {
    maxErr = Math.max(maxErr, Math.abs(actual.data[i] - expected.data[i]));
    maxRef = Math.max(maxRef, Math.abs(expected.data[i]));
  }
  if (!(maxErr <= 1e-4 * maxRef))
    return `${what}: max|Δ| = ${maxErr.toExponential(3)} > 1e-4 · ${maxRef.toExponential(3)}`;
  return undefined;
}
