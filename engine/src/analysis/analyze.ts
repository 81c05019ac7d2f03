/**
 * A data set's analysis, as zennit-crp's FeatureVisualization.run computes it: each sample attributed to its own
 * label (the output relevance is the label's logit, zennit-crp's default), in batches, with the composite; at every
 * analysed layer the relevance and the activation are ranked per channel (RelMax, ActMax) and per class and
 * channel (RelStats, ActStats). The state after each batch is what `analysis.json` holds, so a stopped run resumes
 * where it stopped.
 */
import * as path from 'path';
import { fail } from '../errors';
import type { Model } from '../graph/model';
import { classRelevance } from '../lrp/conditions';
import { normalizeResidual, runComposite } from '../lrp/composites';
import { relevancePass } from '../lrp/relevance-pass';
import type { AnalysisConfig, AnalysisFile, LayerAnalysis, Ranking } from '../../../protocol/analysis';
import type { Dataset } from './dataset';
import { channelScores, ChannelTop, ClassTop, type Ranked } from './maximization';

export type { AnalysisConfig, LayerAnalysis };
export type RankingJson = Ranking;
export type AnalysisJson = AnalysisFile;

/** The rankings of one layer while the analysis runs. */
interface LayerState {
  rel: ChannelTop;
  act: ChannelTop;
  relStats: ClassTop;
  actStats: ClassTop;
}

const toJson = (top: ChannelTop): RankingJson => ({
  samples: top.top.map((es) => es.map((e) => e.index)),
  values: top.top.map((es) => es.map((e) => e.value)),
  rf: top.top.map((es) => es.map((e) => e.rf)),
});

const fromJson = (r: RankingJson, k: number): ChannelTop =>
  new ChannelTop(
    r.samples.length,
    k,
    r.samples.map((s, c): Ranked[] => s.map((index, i) => ({ index, value: r.values[c][i], rf: r.rf[c][i] }))),
  );

function classTopFromJson(stats: Record<string, RankingJson>, channels: number, k: number): ClassTop {
  const t = new ClassTop(channels, k);
  for (const [label, r] of Object.entries(stats)) t.classes.set(Number(label), fromJson(r, k));
  return t;
}

function layerJson(s: LayerState): LayerAnalysis {
  const stats = (t: ClassTop) => Object.fromEntries([...t.classes].map(([label, top]) => [String(label), toJson(top)]));
  return {
    channels: s.rel.channels,
    relmax: toJson(s.rel),
    actmax: toJson(s.act),
    relstats: stats(s.relStats),
    actstats: stats(s.actStats),
    relclasses: s.relStats.rankedClasses(),
    actclasses: s.actStats.rankedClasses(),
  };
}

/**
 * The settings of an analysis in one form, whoever gives them (the CLI, the server): paths absolute, defaults
 * filled in, no empty composite parameters — so that an analysis begun by one resumes under the other.
 */
export function analysisConfig(c: {
  model: string;
  data: string;
  layers: readonly string[];
  composite?: AnalysisConfig['composite']['composite'];
  compositeParams?: AnalysisConfig['composite']['compositeParams'];
  customComposite?: AnalysisConfig['composite']['customComposite'];
  residual?: AnalysisConfig['composite']['residual'];
  top?: number;
  batch?: number;
}): AnalysisConfig {
  const params = Object.entries(c.compositeParams ?? {}).filter(([, v]) => v !== undefined);
  return {
    model: path.resolve(c.model),
    data: path.resolve(c.data),
    layers: [...c.layers],
    composite: {
      ...(c.customComposite ? { customComposite: c.customComposite } : { composite: c.composite ?? 'gradient' }),
      ...(params.length > 0 && { compositeParams: Object.fromEntries(params) }),
      residual: normalizeResidual(c.residual),
    },
    top: c.top ?? 40,
    batch: c.batch ?? 16,
  };
}

/** Whether a saved analysis was made with this configuration (then it can be resumed). */
export function sameConfig(a: AnalysisConfig, b: AnalysisConfig): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

export async function analyzeDataset(
  model: Model,
  data: Dataset,
  config: AnalysisConfig,
  hooks: {
    /** after each batch, with the state so far (write it: a stopped run resumes from it) */
    onBatch?: (state: AnalysisJson) => void | Promise<void>;
    isCancelled?: () => boolean;
  } = {},
  resume?: AnalysisJson,
): Promise<AnalysisJson> {
  if (!config.layers.length) fail('BAD_ARGUMENT', 'name at least one layer to analyse');
  if (!Number.isInteger(config.top) || config.top < 1)
    fail('BAD_ARGUMENT', `top must be a positive integer, not ${config.top}`);
  if (!Number.isInteger(config.batch) || config.batch < 1)
    fail('BAD_ARGUMENT', `the batch size must be a positive integer, not ${config.batch}`);
  const composite = runComposite(config.composite);
  const residual = normalizeResidual(config.composite.residual);
  const layers = new Map<string, LayerState>();
  if (resume) {
    for (const [id, l] of Object.entries(resume.layers))
      layers.set(id, {
        rel: fromJson(l.relmax, config.top),
        act: fromJson(l.actmax, config.top),
        relStats: classTopFromJson(l.relstats, l.channels, config.top),
        actStats: classTopFromJson(l.actstats, l.channels, config.top),
      });
  }
  const started = performance.now() - (resume?.seconds ?? 0) * 1000;
  const state = (done: number): AnalysisJson => ({
    version: 1,
    config,
    samples: data.length,
    done,
    classNames: data.classNames,
    seconds: (performance.now() - started) / 1000,
    layers: Object.fromEntries([...layers].map(([id, s]) => [id, layerJson(s)])),
  });
  for (let from = resume?.done ?? 0; from < data.length; from += config.batch) {
    if (hooks.isCancelled?.()) fail('CANCELLED', 'analysis cancelled');
    const indices = Array.from({ length: Math.min(config.batch, data.length - from) }, (_, k) => from + k);
    const labels = indices.map((i) => data.label(i));
    const input = await data.batch(indices);
    const pass = await relevancePass(
      model,
      input,
      classRelevance(
        labels.map((l) => [l]),
        'logit',
      ),
      { composite, residual, store: config.layers, storeActivations: true },
    );
    for (const stored of pass.stored) {
      const rel = channelScores(stored.relevance, model.graph.layout);
      const act = channelScores(stored.activation!, model.graph.layout);
      if (!layers.has(stored.id))
        layers.set(stored.id, {
          rel: new ChannelTop(rel.channels, config.top),
          act: new ChannelTop(act.channels, config.top),
          relStats: new ClassTop(rel.channels, config.top),
          actStats: new ClassTop(act.channels, config.top),
        });
      const s = layers.get(stored.id)!;
      s.rel.add(rel, indices);
      s.act.add(act, indices);
      s.relStats.add(rel, indices, labels);
      s.actStats.add(act, indices, labels);
    }
    await hooks.onBatch?.(state(indices[indices.length - 1] + 1));
  }
  return state(data.length);
}
