/**
 * zennit-crp's reference sampling (crp/concepts.py ChannelConcept.reference_sampling, crp/maximization.py,
 * crp/statistics.py): per channel of a layer, the samples where the channel matters most — by relevance (RelMax) or
 * by activation (ActMax) — overall and per class (RelStats, ActStats). A channel's score in a sample is its values
 * summed over the positions (max_target="sum") and divided by Σ over the channels of those sums' absolute values
 * (abs_norm), so samples compare by the share of the layer the channel takes.
 */
import type { Layout, NdArray } from '../ndarray';

/** One ranked entry: a data-set index, its score, and the position (flat, rows × columns) of its largest value. */
export interface Ranked {
  index: number;
  value: number;
  rf: number;
}

/** Each sample's channel scores and most relevant positions: [rows][channels]. */
export interface BatchScores {
  channels: number;
  scores: Float64Array;
  rf: Int32Array;
}

/** zennit-crp's ChannelConcept.reference_sampling for one batch of a layer's relevance or activation. */
export function channelScores(t: NdArray, layout: Layout): BatchScores {
  const [rows] = t.shape;
  const channelsLast = t.shape.length === 4 && layout === 'NHWC';
  const channels = channelsLast ? t.shape[3] : (t.shape[1] ?? 1);
  const positions = t.data.length / rows / channels;
  const scores = new Float64Array(rows * channels);
  const rf = new Int32Array(rows * channels);
  for (let r = 0; r < rows; r++) {
    const base = r * channels * positions;
    let norm = 0;
    for (let c = 0; c < channels; c++) {
      let sum = 0;
      let best = 0;
      let bestValue = -Infinity;
      for (let p = 0; p < positions; p++) {
        const v = t.data[channelsLast ? base + p * channels + c : base + c * positions + p];
        sum += v;
        // torch.argmax: the first of equal maxima
        if (v > bestValue) {
          bestValue = v;
          best = p;
        }
      }
      scores[r * channels + c] = sum;
      rf[r * channels + c] = best;
      norm += Math.abs(sum);
    }
    for (let c = 0; c < channels; c++) scores[r * channels + c] /= norm + 1e-10;
  }
  return { channels, scores, rf };
}

/** Descending by score; equal scores by data-set index (zennit-crp leaves their order to torch.argsort). */
const byScore = (a: Ranked, b: Ranked) => b.value - a.value || a.index - b.index;

/** The top `k` samples of every channel, merged batch by batch (crp/maximization.py). */
export class ChannelTop {
  readonly top: Ranked[][];

  constructor(
    readonly channels: number,
    readonly k: number,
    top?: Ranked[][],
  ) {
    this.top = top ?? Array.from({ length: channels }, () => []);
  }

  /** Adds a batch's rows (`rows` selects some of them; default all) with their data-set indices. */
  add(b: BatchScores, indices: readonly number[], rows: readonly number[] = indices.map((_, r) => r)): void {
    for (let c = 0; c < this.channels; c++) {
      const merged = this.top[c].concat(
        rows.map((r) => ({ index: indices[r], value: b.scores[r * b.channels + c], rf: b.rf[r * b.channels + c] })),
      );
      this.top[c] = merged.sort(byScore).slice(0, this.k);
    }
  }
}

/** The top samples of every channel per class (crp/statistics.py). */
export class ClassTop {
  readonly classes = new Map<number, ChannelTop>();

  constructor(
    readonly channels: number,
    readonly k: number,
  ) {}

  add(b: BatchScores, indices: readonly number[], labels: readonly number[]): void {
    for (const label of new Set(labels)) {
      if (!this.classes.has(label)) this.classes.set(label, new ChannelTop(this.channels, this.k));
      const rows = labels.flatMap((l, r) => (l === label ? [r] : []));
      this.classes.get(label)!.add(b, indices, rows);
    }
  }

  /**
   * zennit-crp's FeatureVisualization.compute_stats: per channel, the classes ranked by the mean of their `meanN`
   * top scores, the first `topN`.
   */
  rankedClasses(topN = 5, meanN = 10): { class: number; value: number }[][] {
    const labels = [...this.classes.keys()].sort((a, b) => a - b);
    return Array.from({ length: this.channels }, (_, c) =>
      labels
        .map((label) => {
          const top = this.classes.get(label)!.top[c].slice(0, meanN);
          return { class: label, value: top.reduce((s, e) => s + e.value, 0) / top.length };
        })
        .sort((a, b) => b.value - a.value || a.class - b.class)
        .slice(0, topN),
    );
  }
}
