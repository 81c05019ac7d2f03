/**
 * A model's own config beside it (`model.lens.json`): parsed and checked against its schema, with the first
 * problem named; presets resolve to their mean and std; written and read back; a hostile file is refused at once.
 */
import { after, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import Ajv from 'ajv';
import {
  configPreprocess,
  modelConfigFileName,
  modelConfigJsonSchema,
  parseModelConfig,
} from '../../protocol/model-config';
import { readModelConfig, writeModelConfig } from '../../extension/src/model-config';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'rl-config-'));
after(() => fs.rmSync(root, { recursive: true, force: true }));

test('a config: preset, classes, target and composite; problems named with their place', () => {
  const ok = parseModelConfig(`{
    // ImageNet's normalisation, at another size
    "preprocess": { "preset": "imagenet", "size": [256, 256] },
    "classes": ["cat", "dog"],
    "target": 1,
    "composite": "epsilon_gamma_box",
  }`);
  assert.ok('config' in ok, JSON.stringify(ok));
  assert.deepEqual(configPreprocess(ok.config), {
    mean: [0.485, 0.456, 0.406],
    std: [0.229, 0.224, 0.225],
    size: [256, 256],
  });
  assert.deepEqual(configPreprocess({ preprocess: { preset: 'imagenet', std: [1, 1, 1] } })?.std, [1, 1, 1]);
  assert.deepEqual(configPreprocess({ preprocess: { preset: 'none' } }), {});
  assert.equal(configPreprocess({}), undefined);
  const problem = (text: string) =>
    'problem' in parseModelConfig(text) ? (parseModelConfig(text) as { problem: string }).problem : '';
  assert.match(problem('{"preprocess": {"preset": "imagenet21k"}}'), /^preprocess\.preset: /);
  assert.match(problem('{"target": -1}'), /^target: /);
  assert.match(problem('{"classes": "cat"}'), /^classes: /);
  assert.match(problem('{"labels": []}'), /labels/);
  assert.match(problem('{\n"target": 1,\n"composite": }'), /^line 3: /);
  assert.equal(modelConfigFileName('/m/resnet50.onnx'), '/m/resnet50.lens.json');
  assert.equal(modelConfigFileName('/m/model.json'), '/m/model.lens.json');
});

test('written and read back beside the model; a missing file is no problem, a bad or hostile one is', async () => {
  const dir = fs.mkdtempSync(path.join(root, 'model-'));
  const model = path.join(dir, 'resnet.onnx');
  assert.deepEqual(await readModelConfig(model), { file: path.join(dir, 'resnet.lens.json') });
  const file = await writeModelConfig(model, { preprocess: { preset: 'imagenet' } });
  assert.equal(file, path.join(dir, 'resnet.lens.json'));
  assert.deepEqual((await readModelConfig(model)).config, { preprocess: { preset: 'imagenet' } });
  fs.writeFileSync(file, '{"preprocess": {"preset": "imagenet", "mean": "zero"}}');
  assert.match((await readModelConfig(model)).problem!, /resnet\.lens\.json: preprocess\.mean: /);
  fs.rmSync(file);
  fs.symlinkSync('/dev/zero', file);
  assert.match((await readModelConfig(model)).problem!, /is not a regular file/);
});

test('schemas/model-config.schema.json is generated from the reader’s schema, and agrees with it (ajv)', () => {
  const file = path.resolve(__dirname, '../../schemas/model-config.schema.json');
  const schema = JSON.parse(fs.readFileSync(file, 'utf8'));
  assert.deepEqual(schema, modelConfigJsonSchema(), 'npm run schema');
  const validate = new Ajv({ strict: false }).compile(schema);
  const cases: [unknown, boolean][] = [
    [{ preprocess: { preset: 'imagenet', size: [256, 256] }, classes: 'imagenet', target: 3 }, true],
    [{ classes: ['cat', 'dog'], composite: 'epsilon_gamma_box' }, true],
    [{ classes: 'coco' }, false],
    [{ preprocess: { preset: 'cifar' } }, false],
    [{ preprocess: { size: [224] } }, false],
    [{ target: -1 }, false],
    [{ colour: 'red' }, false],
  ];
  for (const [config, ok] of cases) {
    assert.equal(validate(config), ok, `schema: ${JSON.stringify(config)}`);
    assert.equal('config' in parseModelConfig(JSON.stringify(config)), ok, `reader: ${JSON.stringify(config)}`);
  }
});
