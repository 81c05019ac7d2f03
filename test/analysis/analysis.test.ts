/**
 * Data-set analysis against zennit-crp's FeatureVisualization (Zennit 0.5.1, float64): a small CNN trained on a
 * synthetic shapes data set (test/analysis/make_fixtures.py, made by scripts/reference-fixtures.sh), EpsilonPlusFlat,
 * each sample attributed to its own label, RelMax and ActMax at three layers, per-class statistics (RelStats,
 * ActStats) and each channel's classes (compute_stats). Every ranking must hold the same samples in the same order,
 * with values within 1e-4·max of zennit-crp's; samples may trade places only where zennit-crp's own values are that
 * close (torch.argsort leaves equal values in no defined order, and float32 cannot order values closer than that).
 */
import { after, before, describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { initBackend } from '../../engine/src/graph/backend';
import { loadModel, type Model } from '../../engine/src/graph/model';
import { openDataset } from '../../engine/src/analysis/dataset';
import { channelReferences } from '../../engine/src/analysis/references';
import { relevancePass } from '../../engine/src/lrp/relevance-pass';
import { valueRelevance } from '../../engine/src/lrp/conditions';
import { buildComposite } from '../../engine/src/lrp/composites';
import { channelSum } from '../../engine/src/shared/colormap';
import {
  type AnalysisConfig,
  analysisConfig,
  type AnalysisJson,
  analyzeDataset,
  type RankingJson,
} from '../../engine/src/analysis/analyze';

const DIR = path.resolve(
  process.env.RELEVANCE_LENS_ANALYSIS ?? path.join(__dirname, '../../.zoo-cache/analysis'),
  'analysis_shapes',
);

interface Expected {
  layers: string[];
  top: number;
  batch_size: number;
  samples: number;
  results: Record<
    string,
    {
      channels: number;
      relmax: RankingJson;
      actmax: RankingJson;
      relstats: Record<string, RankingJson>;
      actstats: Record<string, RankingJson>;
      relclasses: { class: number; value: number }[][];
      actclasses: { class: number; value: number }[][];
    }
  >;
}

const TOLERANCE = 1e-4;

/**
 * Differences between a ranking and zennit-crp's, channel by channel: values off by more than the tolerance, and
 * samples out of place (a sample may stand where zennit-crp has another only if their values there are within the
 * tolerance). Returns the problems and how many places hold exactly zennit-crp's sample.
 */
function compareRanking(
  actual: RankingJson,
  expected: RankingJson,
): { problems: string[]; same: number; places: number } {
  const problems: string[] = [];
  let same = 0;
  let places = 0;
  const max = Math.max(...expected.values.flat().map(Math.abs));
  const tol = TOLERANCE * max;
  expected.samples.forEach((samples, c) => {
    const values = expected.values[c];
    if (actual.samples[c].length !== samples.length)
      problems.push(`channel ${c}: ${actual.samples[c].length} samples, zennit-crp ${samples.length}`);
    samples.forEach((expectedSample, i) => {
      places++;
      const sample = actual.samples[c][i];
      const value = actual.values[c][i];
      if (Math.abs(value - values[i]) > tol)
        problems.push(`channel ${c} #${i}: value ${value} where zennit-crp has ${values[i]}`);
      if (sample === expectedSample) return void same++;
      // zennit-crp's value for the sample the engine put here (not kept by zennit-crp: the engine's value)
      const at = samples.indexOf(sample);
      const theirs = at >= 0 ? values[at] : value;
      if (Math.abs(theirs - values[i]) > tol)
        problems.push(
          `channel ${c} #${i}: sample ${sample} (${theirs}) where zennit-crp has ${expectedSample} (${values[i]})`,
        );
    });
  });
  return { problems, same, places };
}

const cases = fs.existsSync(path.join(DIR, 'expected.json'));

for (const backend of ['wasm', 'cpu']) {
  describe(`data-set analysis equals zennit-crp's FeatureVisualization (${backend})`, { skip: !cases }, () => {
    const expected: Expected = cases
      ? JSON.parse(fs.readFileSync(path.join(DIR, 'expected.json'), 'utf8'))
      : undefined!;
    let model: Model;
    let result: AnalysisJson;
    const report: string[] = [];
    const config = (data: string): AnalysisConfig =>
      analysisConfig({
        model: path.join(DIR, 'model.onnx'),
        data,
        layers: expected.layers,
        composite: 'epsilon_plus_flat',
        top: expected.top,
        batch: expected.batch_size,
      });

    before(async () => {
      await initBackend(backend);
      model = await loadModel(path.join(DIR, 'model.onnx'));
      const data = await openDataset(path.join(DIR, 'data.npz'), model);
      result = await analyzeDataset(model, data, config(data.source));
    });
    after(() => {
      model.dispose();
      console.log(`analysis [${backend}]: places holding zennit-crp's very sample\n${report.join('\n')}`);
    });

    for (const mode of ['relmax', 'actmax'] as const) {
      test(`${mode}: the same samples in the same order per channel, values within 1e-4·max`, () => {
        for (const layer of expected.layers) {
          const r = compareRanking(result.layers[layer][mode], expected.results[layer][mode]);
          report.push(
            `  ${layer.padEnd(14)} ${mode}   ${r.same}/${r.places}` +
              (r.same < r.places ? ` (the others trade places with samples of values within 1e-4·max)` : ''),
          );
          assert.deepEqual(r.problems, [], `${layer} ${mode}`);
        }
      });
    }

    for (const mode of ['relstats', 'actstats'] as const) {
      test(`${mode}: per class, the same samples in the same order, and each channel's classes`, () => {
        for (const layer of expected.layers) {
          const want = expected.results[layer][mode];
          const got = result.layers[layer][mode];
          assert.deepEqual(Object.keys(got).sort(), Object.keys(want).sort(), `${layer}: the classes`);
          for (const label of Object.keys(want)) {
            const r = compareRanking(got[label], want[label]);
            assert.deepEqual(r.problems, [], `${layer} ${mode} class ${label}`);
          }
          // compute_stats: the classes a channel matters most for, ranked as the means of their top 10 say
          const classes = mode === 'relstats' ? 'relclasses' : 'actclasses';
          const asRanking = (cs: { class: number; value: number }[][]): RankingJson => ({
            samples: cs.map((c) => c.map((e) => e.class)),
            values: cs.map((c) => c.map((e) => e.value)),
            rf: cs.map((c) => c.map(() => 0)),
          });
          const r = compareRanking(
            asRanking(result.layers[layer][classes]),
            asRanking(expected.results[layer][classes]),
          );
          assert.deepEqual(r.problems, [], `${layer} ${classes}`);
        }
      });
    }

    test('reference images: one neuron’s heatmap lies in its receptive field, and the crop holds it', async () => {
      const data = await openDataset(path.join(DIR, 'data.npz'), model);
      // features.0 is a 3×3 convolution (padding 1) of the input: its neuron at (y, x) sees rows y−1..y+1, x−1..x+1
      const relmax = result.layers['features.0'].relmax;
      const refs = await channelReferences(model, data, config(data.source), 'features.0', relmax, 4);
      assert.deepEqual(
        refs.map((r) => r.map((e) => e.sample)),
        relmax.samples.map((s) => s.slice(0, 4)),
      );
      for (const [c, channel] of relmax.samples.entries()) {
        const rank = 0;
        const position = relmax.rf[c][rank];
        const [py, px] = [Math.floor(position / 16), position % 16];
        const pass = await relevancePass(model, await data.batch([channel[rank]]), valueRelevance('logit'), {
          composite: buildComposite('epsilon_plus_flat'),
          startLayer: 'features.0',
          conditions: { layers: [[['features.0', [c], position]]], excludeParallel: false },
        });
        const heat = channelSum(pass.relevance.shape, pass.relevance.data, 0, 'NCHW');
        let inside = 0;
        heat.values.forEach((v, i) => {
          const [y, x] = [Math.floor(i / 16), i % 16];
          const near = Math.abs(y - py) <= 1 && Math.abs(x - px) <= 1;
          if (!near)
            assert.equal(v, 0, `channel ${c}: relevance at (${y}, ${x}), outside the 3×3 around (${py}, ${px})`);
          else inside += Math.abs(v);
        });
        assert.ok(inside > 0, `channel ${c}: the neuron's heatmap is not empty`);
        const [y0, y1, x0, x1] = refs[c][rank].crop;
        assert.ok(
          y0 <= py && py <= y1 && x0 <= px && px <= x1,
          `channel ${c}: crop ${refs[c][rank].crop} holds (${py}, ${px})`,
        );
      }
    });

    test('an ImageFolder of the same images gives the very same analysis', async () => {
      const folder = await openDataset(path.join(DIR, 'images'), model);
      assert.deepEqual(folder.classNames, ['circle', 'cross', 'square', 'triangle']);
      const again = await analyzeDataset(model, folder, config(folder.source));
      assert.deepEqual(again.layers, result.layers);
    });

    test('stopped after some batches and resumed, the analysis is the same', async () => {
      const data = await openDataset(path.join(DIR, 'data.npz'), model);
      let saved: AnalysisJson | undefined;
      await assert.rejects(
        analyzeDataset(model, data, config(data.source), {
          onBatch: (s) => void (saved = JSON.parse(JSON.stringify(s)) as AnalysisJson),
          isCancelled: () => (saved?.done ?? 0) >= 48,
        }),
        /analysis cancelled/,
      );
      assert.equal(saved!.done, 48);
      const resumed = await analyzeDataset(model, data, config(data.source), {}, saved);
      assert.equal(resumed.done, expected.samples);
      assert.deepEqual(resumed.layers, result.layers);
    });
  });
}
