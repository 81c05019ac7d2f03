/**
 * The model zoo: every torchvision classification architecture, reduced for CI and exported by PyTorch's own
 * `torch.onnx.export` (scripts/zoo-fixtures.sh makes them with Debian's PyTorch and Zennit 0.5.1). For each: the
 * model loads; the plain gradient equals PyTorch's float64 gradient within 1e-4·max; epsilon_plus_flat equals Zennit's
 * float64 EpsilonPlusFlat (with the canonizer the architecture needs) within 1e-4·max — or within twice Zennit's own
 * float32 error where that is larger — at the input and at every module Zennit stored; where Zennit gives no
 * reference, the relevance is finite. Layer ids are PyTorch's module names (the stored modules are found by name).
 */
import { after, before, describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { initBackend } from '../../engine/src/backend';
import { loadModel } from '../../engine/src/model';
import { kernelsReport } from '../../engine/src/native';
import { readNpy } from '../../engine/src/npy';
import { runAttribution } from '../../engine/src/run';
import { relativeErrorOf as relativeError } from './compare';

const ZOO_DIR = process.env.RELEVANCE_LENS_ZOO ?? path.resolve(__dirname, '../../.zoo-cache/fixtures');
const backend = process.env.RELEVANCE_LENS_BACKEND ?? 'wasm';

interface ZooManifest {
  name: string;
  input_shape: number[];
  targets: number[];
  float32_output_error?: number;
  zennit: { ok: boolean; error?: string; f32_error?: number };
}

const cases = fs.existsSync(ZOO_DIR) ? fs.readdirSync(ZOO_DIR).filter((c) => fs.existsSync(path.join(ZOO_DIR, c, 'manifest.json'))).sort() : [];
const results: string[] = [];

before(async () => {
  await initBackend(backend);
});

after(() => {
  console.log(`zoo[${backend}, kernels: ${kernelsReport()}], ${cases.length} cases (relative error: gradient | epsilon_plus_flat at the input | worst stored module):\n${results.join('\n')}`);
});

test('the zoo fixtures are there (scripts/zoo-fixtures.sh makes them)', () => {
  assert.ok(cases.length >= 25, `expected the zoo in ${ZOO_DIR}, found ${cases.length} cases`);
});

for (const name of cases) {
  const dir = path.join(ZOO_DIR, name);
  const m: ZooManifest = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8'));
  describe(`zoo: ${name}`, () => {
    test('loads, gradient = PyTorch float64, epsilon_plus_flat = Zennit float64', async () => {
      const model = loadModel(path.join(dir, 'model.onnx'));
      try {
        const input = readNpy(path.join(dir, 'input.npy'));
        const gradient = await runAttribution(model, input, { composite: 'gradient', target: m.targets });
        const gradError = relativeError(gradient.relevance, readNpy(path.join(dir, 'gradient', 'relevance.npy')));
        const outError = relativeError(gradient.output, readNpy(path.join(dir, 'gradient', 'output.npy')));
        const line = [`${name.padEnd(24)} ${gradError.toExponential(2)}`];
        try {
          assert.ok(outError <= 1e-4, `${name}: output is ${outError.toExponential(2)}·max off PyTorch's`);
          assert.ok(gradError <= 1e-4, `${name}: the gradient is ${gradError.toExponential(2)}·max off PyTorch's float64 gradient`);
          const store = m.zennit.ok ? fs.readdirSync(path.join(dir, 'epsilon_plus_flat', 'layers')).map((f) => f.replace(/\.npy$/, '')) : [];
          const known = store.filter((id) => model.index.has(id));
          const lrp = await runAttribution(model, input, { composite: 'epsilon_plus_flat', target: m.targets, store: known });
          if (!m.zennit.ok) {
            assert.ok(lrp.relevance.data.every(Number.isFinite), `${name}: epsilon_plus_flat gave non-finite relevance`);
            line.push(`finite (no Zennit reference: ${m.zennit.error})`);
            return;
          }
          // Zennit's float32 result may itself be further than 1e-4 from its float64 one: then twice that
          const tolerance = Math.max(1e-4, 2 * (m.zennit.f32_error ?? 0));
          const lrpError = relativeError(lrp.relevance, readNpy(path.join(dir, 'epsilon_plus_flat', 'relevance.npy')));
          let worst: [string, number] = ['', 0];
          for (const layer of lrp.stored) {
            const e = relativeError(layer.relevance, readNpy(path.join(dir, 'epsilon_plus_flat', 'layers', `${layer.id}.npy`)));
            if (e > worst[1]) worst = [layer.id, e];
          }
          line.push(`${lrpError.toExponential(2)} | ${worst[1].toExponential(2)} ${worst[0]} (${known.length}/${store.length} modules; tolerance ${tolerance.toExponential(1)})`);
          assert.ok(lrpError <= tolerance, `${name}: epsilon_plus_flat is ${lrpError.toExponential(2)}·max off Zennit's (tolerance ${tolerance.toExponential(1)})`);
          assert.ok(worst[1] <= tolerance, `${name}: relevance at module ${worst[0]} is ${worst[1].toExponential(2)}·max off Zennit's`);
        } finally {
          results.push(line.join(' | '));
        }
      } finally {
        model.dispose();
      }
    });
  });
}
