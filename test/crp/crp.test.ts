/**
 * Concept-conditional relevance against zennit-crp (commit 5117f31 on Zennit 0.5.1, float64): a small ResNet-style
 * CNN exported by torch.onnx.export (test/crp/make_fixtures.py, made by scripts/reference-fixtures.sh), EpsilonPlusFlat
 * with ResNetCanonizer, conditions on one and on two layers, empty channel lists, both exclude_parallel values,
 * one-hot, logit and abs initial relevance, and a hidden unit as the target (start_layer). Each row (one per condition set) of the input relevance and of every
 * stored module's relevance must be within 1e-4·max of the reference.
 */
import { after, before, describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { initBackend } from '../../engine/src/graph/backend';
import { loadModel, type Model } from '../../engine/src/graph/model';
import { kernelsReport } from '../../engine/src/graph/native';
import { parseNpy } from '../../engine/src/io/npy';
import { runAttribution } from '../../engine/src/lrp/attribution';
import type { NdArray } from '../../engine/src/ndarray';
import type { ConditionSet } from '../../protocol/engine';
import type { OutputRelevance } from '../../protocol/names';

const CASE_DIR = path.resolve(
  process.env.RELEVANCE_LENS_CRP ?? path.join(__dirname, '../../.zoo-cache/crp'),
  'resnet_crp',
);

interface CrpManifest {
  target: number;
  record: string[];
  cases: Record<
    string,
    {
      conditions: ConditionSet[];
      exclude_parallel: boolean;
      init_rel: OutputRelevance;
      start_layer: string | null;
      /** the modules stored in this case */
      record: string[];
    }
  >;
}

const npy = (...parts: string[]) => parseNpy(fs.readFileSync(path.join(CASE_DIR, ...parts)));

/** max|actual − expected| / max|expected| over each row; 0 where both are zero, Infinity where only one is. */
function rowErrors(actual: NdArray, expected: NdArray): number[] {
  assert.deepEqual(actual.shape, expected.shape);
  const rows = expected.shape[0];
  const per = expected.data.length / rows;
  return Array.from({ length: rows }, (_, r) => {
    let diff = 0;
    let max = 0;
    for (let i = r * per; i < (r + 1) * per; i++) {
      diff = Math.max(diff, Math.abs(actual.data[i] - expected.data[i]));
      max = Math.max(max, Math.abs(expected.data[i]));
    }
    return max > 0 ? diff / max : diff > 0 ? Infinity : 0;
  });
}

for (const backend of ['wasm', 'cpu']) {
  describe(`conditional relevance equals zennit-crp (${backend})`, () => {
    const manifest: CrpManifest = JSON.parse(fs.readFileSync(path.join(CASE_DIR, 'manifest.json'), 'utf8'));
    let model: Model;
    const worst: string[] = [];
    before(async () => {
      await initBackend(backend);
      model = await loadModel(path.join(CASE_DIR, 'model.onnx'));
    });
    after(() => {
      model.dispose();
      console.log(`crp[${backend}, kernels: ${kernelsReport()}]: worst relative error per case\n${worst.join('\n')}`);
    });

    for (const [name, c] of Object.entries(manifest.cases)) {
      test(`${name}: ${c.conditions.length} condition sets, exclude_parallel ${c.exclude_parallel}, ${c.init_rel}`, async () => {
        const run = await runAttribution(model, npy('input.npy'), {
          composite: 'epsilon_plus_flat',
          target: [manifest.target],
          store: c.record,
          startLayer: c.start_layer ?? undefined,
          conditions: { sets: c.conditions, excludeParallel: c.exclude_parallel },
          attributorParams: { outputRelevance: c.init_rel },
        });
        const errors: [string, number][] = [
          ['input', Math.max(...rowErrors(run.relevance, npy(name, 'relevance.npy')))],
          ...run.stored.map((l): [string, number] => [
            l.id,
            Math.max(...rowErrors(l.relevance, npy(name, 'layers', `${l.id}.npy`))),
          ]),
        ];
        assert.deepEqual(run.stored.map((l) => l.id).sort(), [...c.record].sort());
        const [where, error] = errors.reduce((a, b) => (b[1] > a[1] ? b : a));
        worst.push(`  ${name.padEnd(22)} ${error.toExponential(1)} at ${where}`);
        assert.deepEqual(
          errors.filter(([, e]) => !(e <= 1e-4)),
          [],
          'every tensor within 1e-4·max of zennit-crp',
        );
      });
    }
  });
}
