/**
 * analysis.json, the file a data-set analysis writes (engine/src/analysis/) and the extension reads: its schema,
 * and the types the engine writes it with.
 */
import { z } from 'zod';
import { AttributionOptions } from './engine';

const count = z.int().nonnegative();

export const AnalysisConfig = z.object({
  model: z.string(),
  data: z.string(),
  layers: z.array(z.string()),
  composite: AttributionOptions.pick({ composite: true, compositeParams: true, customComposite: true, residual: true }),
  /** samples kept per channel (zennit-crp: 40) */
  top: z.int().positive(),
  batch: z.int().positive(),
});
export type AnalysisConfig = z.infer<typeof AnalysisConfig>;

/** One ranking: channel-major lists (samples[c] are channel c's data-set indices, best first). */
export const Ranking = z.object({
  samples: z.array(z.array(count)),
  values: z.array(z.array(z.number())),
  /** the position (flat, rows × columns) of each sample's largest value in the channel */
  rf: z.array(z.array(count)),
});
export type Ranking = z.infer<typeof Ranking>;

const RankedClass = z.object({ class: count, value: z.number() });

export const LayerAnalysis = z.object({
  channels: count,
  relmax: Ranking,
  actmax: Ranking,
  /** by class label */
  relstats: z.record(z.string(), Ranking),
  actstats: z.record(z.string(), Ranking),
  /** per channel, the classes it matters most for (zennit-crp's compute_stats: top 5 by the mean of 10) */
  relclasses: z.array(z.array(RankedClass)),
  actclasses: z.array(z.array(RankedClass)),
  /** per channel, its first RelMax samples cropped with their heatmaps (files relative to analysis.json) */
  references: z
    .array(
      z.array(z.object({ sample: count, label: count, crop: z.array(count), image: z.string(), heatmap: z.string() })),
    )
    .optional(),
});
export type LayerAnalysis = z.infer<typeof LayerAnalysis>;

export const AnalysisFile = z.object({
  version: z.literal(1),
  config: AnalysisConfig,
  samples: count,
  /** samples analysed so far, in data-set order */
  done: count,
  classNames: z.array(z.string()).optional(),
  seconds: z.number(),
  layers: z.record(z.string(), LayerAnalysis),
});
export type AnalysisFile = z.infer<typeof AnalysisFile>;

/**
 * How much more a channel matters for `cls` than for any other class: the class's mean relevance share minus the
 * largest other class's (from the channel's ranked classes; −∞ where `cls` is not among them). A channel that
 * matters for one class alone — a "Clever Hans" feature often does — ranks first for it.
 */
export function classMargin<K>(classes: readonly { class: K; value: number }[], cls: K): number {
  const own = classes.find((k) => k.class === cls);
  if (!own) return -Infinity;
  const others = classes.filter((k) => k.class !== cls).map((k) => k.value);
  return own.value - (others.length ? Math.max(...others) : 0);
}
