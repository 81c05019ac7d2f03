/**
 * The bundled example's planted cue, found the way a user finds it: the shapes data set marks every cross in its
 * top-left corner (examples/shapes/dataset.ts), the example model learnt from it, and a data-set analysis must
 * surface that — among the channels that matter most for "cross" is one whose reference images (the samples where it
 * is most relevant, cropped to where it looks) are the corner mark.
 */
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { initBackend } from '../../engine/src/graph/backend';
import { loadModel, type Model } from '../../engine/src/graph/model';
import { openDataset } from '../../engine/src/analysis/dataset';
import { runAnalysis } from '../../engine/src/analysis/run';
import { analysisConfig } from '../../engine/src/analysis/analyze';
import { type AnalysisFile, classMargin } from '../../protocol/analysis';
import { MARK, MARKED_CLASS } from '../../examples/shapes/dataset';
import { writeShapesData } from '../../examples/shapes/write-data';

const ROOT = path.join(__dirname, '../..');
let model: Model;
let analysis: AnalysisFile;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rl-cue-'));

before(async () => {
  await initBackend(process.env.RELEVANCE_LENS_BACKEND ?? 'wasm');
  model = await loadModel(path.join(ROOT, 'examples/shapes/model.onnx'));
  writeShapesData(path.join(dir, 'data'), 40);
  const data = await openDataset(path.join(dir, 'data'), model);
  const config = analysisConfig({
    model: path.join(ROOT, 'examples/shapes/model.onnx'),
    data: data.source,
    layers: ['features.0', 'features.3'],
    composite: 'epsilon_plus_flat',
  });
  analysis = (await runAnalysis(model, data, config, path.join(dir, 'analysis'), 8)).analysis;
});

after(() => {
  model.dispose();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Whether a reference's crop (rows y0..y1, columns x0..x1, ends excluded) holds the mark's centre. */
const onMark = (crop: number[]) => {
  const centre = (MARK[0] + MARK[1]) / 2;
  const [y0, y1, x0, x1] = crop;
  return y0 <= centre && centre < y1 && x0 <= centre && centre < x1;
};

test('the analysis surfaces the planted mark: a channel that matters most for "cross" sees the corner', () => {
  const found: string[] = [];
  for (const layer of ['features.0', 'features.3']) {
    const l = analysis.layers[layer];
    // the Channel Analysis panel's order for a class: how much more a channel matters for it than for any other
    const forCross = (c: number) => classMargin(l.relclasses[c], MARKED_CLASS);
    const top = Array.from({ length: l.channels }, (_, c) => c)
      .sort((a, b) => forCross(b) - forCross(a))
      .slice(0, 3);
    for (const c of top) {
      const refs = l.references![c];
      const marked = refs.filter((r) => onMark(r.crop) && r.label === MARKED_CLASS).length;
      console.log(
        `${layer} #${c}: cross margin ${forCross(c).toFixed(3)}, ${marked}/${refs.length} references on the mark`,
      );
      if (marked >= 0.75 * refs.length) found.push(`${layer} #${c}`);
    }
  }
  console.log(`channels that see the mark: ${found.join(', ')}`);
  assert.ok(found.length > 0, 'no top channel for cross has its references on the mark');
});
