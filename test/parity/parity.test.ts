/**
 * Parity with Zennit: every case, method and stored layer in ../shared/golden, for the ONNX models and their
 * TF.js variants, on the backend RELEVANCE_LENS_BACKEND names (wasm by default), with the native kernels when the
 * addon is built unless RELEVANCE_LENS_NATIVE=off. `npm test` runs wasm and cpu, each with and without them.
 */
import { after, before, describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { initBackend } from '../../engine/src/graph/backend';
import { attribute, normalizeAttributor } from '../../engine/src/lrp/attributors';
import { buildComposite, normalizeCompositeName } from '../../engine/src/lrp/composites';
import { loadModel, type Model } from '../../engine/src/graph/model';
import { kernelsReport } from '../../engine/src/graph/native';
import type { NdArray } from '../../engine/src/ndarray';
import { compare, GOLDEN_DIR, goldenCases, type GoldenManifest, goldenNpy, manifest, targetIndices } from '../golden';

const backend = process.env.RELEVANCE_LENS_BACKEND ?? 'wasm';
let compared = 0;
let expectedTotal = 0;
const notRepresentable: string[] = [];

before(async () => {
  await initBackend(backend);
});

after(() => {
  console.log(
    `parity[${backend}, kernels: ${kernelsReport()}]: compared ${compared} of ${expectedTotal} golden tensors; ${notRepresentable.length} not representable: ${notRepresentable.join('; ')}`,
  );
  assert.equal(compared + notRepresentable.length, expectedTotal, 'every golden tensor is compared or explained');
});

interface Variant {
  label: string;
  model: string;
  input: string;
  /** the golden tensors this file is checked against: module → tree id (`node:NAME` for an ONNX node) and file */
  layers: (method: string) => { module: string; id?: string; file: string }[];
}

function variants(m: GoldenManifest): Variant[] {
  const list: Variant[] = [
    {
      label: 'onnx',
      model: m.onnx ?? 'model.onnx',
      input: m.input,
      layers: (method) => {
        const layers = m.methods[method].layers ?? {};
        const modules = Object.keys(layers);
        return modules.map((module) => ({
          module,
          // The exporter names nodes after modules; a container resolves in the engine's layer tree; a module
          // the exporter folded away (batch-norm, dropout) has no node: undefined.
          id: m.onnx_node_for_module[module]
            ? `node:${m.onnx_node_for_module[module].node}`
            : modules.some((x) => x.startsWith(module + '.'))
              ? module
              : undefined,
          file: path.join(method, layers[module].file),
        }));
      },
    },
  ];
  if (m.tfjs) {
    const tfjs = m.tfjs;
    list.push({
      label: 'tfjs',
      model: tfjs.model,
      input: tfjs.input,
      layers: (method) =>
        Object.entries(tfjs.layer_for_module).map(([module, layer]) => ({
          module,
          id: layer,
          file: path.join('tfjs', method, 'layers', `${layer}.npy`),
        })),
    });
  }
  return list;
}

function nodeIdByName(model: Model, name: string): string {
  const node = model.graph.nodes.find((n) => n.name === name);
  assert.ok(node, `node ${name} exists in ${model.graph.source}`);
  return node.id;
}

for (const caseName of goldenCases()) {
  const m = manifest(caseName);
  for (const v of variants(m)) {
    describe(`${caseName} (${v.label})`, () => {
      let model: Model;
      let input: NdArray;
      before(async () => {
        model = await loadModel(path.join(GOLDEN_DIR, caseName, v.model));
        input = goldenNpy(caseName, v.input);
      });
      after(() => model.dispose());
      for (const [method, spec] of Object.entries(m.methods)) {
        const relevanceFile = v.label === 'onnx' ? spec.relevance : path.join('tfjs', spec.relevance);
        // The TF.js variants hold the layer-wise methods (see the golden README).
        if (!fs.existsSync(path.join(GOLDEN_DIR, caseName, relevanceFile))) continue;
        const layers = v.layers(method).filter(() => spec.layers);
        expectedTotal += 1 + (spec.output ? 1 : 0) + layers.length;
        test(method, async () => {
          const resolve = (id: string | undefined) => (id?.startsWith('node:') ? nodeIdByName(model, id.slice(5)) : id);
          const toCompare: { module: string; id: string; file: string }[] = [];
          layers.forEach((layer, i) => {
            const next = layers[i + 1];
            // Without a composite Zennit applies no canonizer: the gradient at a convolution whose batch-norm the
            // ONNX exporter folded in is the pre-batch-norm gradient, which the ONNX graph does not contain.
            if (
              v.label === 'onnx' &&
              !spec.composite &&
              next &&
              next.id === undefined &&
              m.onnx_node_for_module[layer.module]?.op === 'Conv'
            ) {
              notRepresentable.push(
                `${caseName}/${method}/${layer.module} (ONNX folded ${next.module} into it; checked on TF.js)`,
              );
              return;
            }
            // A module folded away by the exporter has the relevance of the module before it.
            const id = resolve(layer.id) ?? resolve(layers[i - 1].id);
            toCompare.push({ module: layer.module, id: id!, file: layer.file });
          });
          const composite = normalizeCompositeName(spec.composite ?? undefined);
          const result = await attribute(
            model,
            input,
            targetIndices(m),
            normalizeAttributor(spec.attributor),
            { nIter: spec.n_iter, window: spec.window, stride: spec.stride },
            {
              composite: composite ? buildComposite(composite, { low: m.box?.low, high: m.box?.high }) : undefined,
              store: [...new Set(toCompare.map((l) => l.id))],
            },
          );
          const errors: string[] = [];
          const check = (actual: NdArray, file: string, what: string) => {
            const err = compare(actual, goldenNpy(caseName, file), what);
            if (err) errors.push(err);
            compared++;
          };
          check(result.relevance, relevanceFile, 'input relevance');
          if (spec.output) check(result.output, spec.output, 'output');
          const byId = new Map(result.stored.map((l) => [l.id, l.relevance]));
          for (const { module, id, file } of toCompare) {
            const actual = byId.get(id);
            assert.ok(actual, `stored relevance for ${module} (${id})`);
            check(actual, file, `layer ${module}`);
          }
          assert.deepEqual(errors, []);
        });
      }
    });
  }
}
