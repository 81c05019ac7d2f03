/**
 * Composite files against Zennit 0.5.1 (float64): each case's composite.json (base, layerMap, nameMap with globs,
 * firstLayer, stabilizers, zero_params) is what test/composite/make_fixtures.py translated into Zennit's
 * MixedComposite([NameMapComposite, SpecialFirstLayerMapComposite]); the engine reads the same file. Gradient,
 * SmoothGrad (averaged over the very noisy inputs Zennit drew) and IntegratedGradients over such composites, and
 * weighted and contrastive output relevance. The input relevance must be within 1e-4·max of Zennit's.
 */
import { after, before, describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { initBackend } from '../../engine/src/graph/backend';
import { loadModel, type Model } from '../../engine/src/graph/model';
import { kernelsReport } from '../../engine/src/graph/native';
import { parseNpy } from '../../engine/src/io/npy';
import { readCompositeFile } from '../../engine/src/io/composite-file';
import { runAttribution } from '../../engine/src/lrp/attribution';
import type { NdArray } from '../../engine/src/ndarray';
import type { AttributorName, OutputRelevance } from '../../protocol/names';

const DIR = path.resolve(
  process.env.RELEVANCE_LENS_COMPOSITE ?? path.join(__dirname, '../../.zoo-cache/composite'),
  'composite_cases',
);

interface Attribution {
  attributor: AttributorName;
  n_iter: number | null;
  noise_level: number | null;
  target: number[];
  output_relevance: OutputRelevance;
  class_weights: Record<string, number> | null;
}

const npy = (...parts: string[]) => parseNpy(fs.readFileSync(path.join(DIR, ...parts)));

/** max|actual − expected| / max|expected| over the whole tensor. */
function relativeError(actual: NdArray, expected: NdArray): number {
  assert.deepEqual(actual.shape, expected.shape);
  let diff = 0;
  let max = 0;
  for (let i = 0; i < expected.data.length; i++) {
    diff = Math.max(diff, Math.abs(actual.data[i] - expected.data[i]));
    max = Math.max(max, Math.abs(expected.data[i]));
  }
  return max > 0 ? diff / max : diff;
}

const cases = fs.existsSync(DIR)
  ? fs.readdirSync(DIR).filter((d) => fs.existsSync(path.join(DIR, d, 'composite.json')))
  : [];

for (const backend of ['wasm', 'cpu']) {
  describe(`composite files equal Zennit's composites (${backend})`, () => {
    let model: Model;
    const worst: string[] = [];
    before(async () => {
      await initBackend(backend);
      model = await loadModel(path.join(DIR, 'model.onnx'));
    });
    after(() => {
      model.dispose();
      console.log(
        `composite files [${backend}, kernels: ${kernelsReport()}]: relative error per case\n${worst.join('\n')}`,
      );
    });

    test('every case of the fixture set is here', () => assert.equal(cases.length, 12));

    for (const name of cases) {
      test(name, async () => {
        const a: Attribution = JSON.parse(fs.readFileSync(path.join(DIR, name, 'attribution.json'), 'utf8'));
        const options = {
          customComposite: await readCompositeFile(path.join(DIR, name, 'composite.json')),
          target: a.target,
          classWeights: a.class_weights
            ? Object.entries(a.class_weights).map(([c, weight]) => ({ class: Number(c), weight }))
            : undefined,
          attributorParams: { outputRelevance: a.output_relevance, nIter: a.n_iter ?? undefined },
        };
        let relevance: NdArray;
        if (a.attributor === 'smoothgrad') {
          // Zennit's noise is torch's: average the composite's relevance over the inputs it drew, as SmoothGrad does
          const noisy = npy(name, 'noisy_inputs.npy');
          const per = noisy.data.length / noisy.shape[0];
          relevance = { shape: noisy.shape.slice(1), data: new Float32Array(per) };
          for (let k = 0; k < noisy.shape[0]; k++) {
            const input = {
              shape: noisy.shape.slice(1),
              data: Float32Array.from(noisy.data.subarray(k * per, (k + 1) * per)),
            };
            const run = await runAttribution(model, input, options);
            run.relevance.data.forEach((v, i) => (relevance.data[i] += v / noisy.shape[0]));
          }
        } else {
          relevance = (await runAttribution(model, npy('input.npy'), { ...options, attributor: a.attributor }))
            .relevance;
        }
        const error = relativeError(relevance, npy(name, 'relevance.npy'));
        worst.push(`  ${name.padEnd(22)} ${error.toExponential(1)}`);
        assert.ok(error <= 1e-4, `${name}: ${error.toExponential(2)} of max|expected| (tolerance 1e-4)`);
      });
    }
  });
}
