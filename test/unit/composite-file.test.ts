/**
 * The composite file format (protocol/composite-file.ts): problems named with their line and column, the JSON Schema
 * the editor validates with agrees with the engine's reading (checked with ajv, a JSON Schema validator of its own),
 * and the committed schema is current.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import Ajv from 'ajv';
import {
  type CompositeFile,
  compositeJsonSchema,
  formatProblem,
  locate,
  parseCompositeFile,
  setNameMapRule,
} from '../../protocol/composite-file';
import { ruleSuits } from '../../protocol/names';
import { readCompositeFile } from '../../engine/src/io/composite-file';
import { EngineError } from '../../engine/src/errors';

const ROOT = path.join(__dirname, '../..');
const SCHEMA_FILE = path.join(ROOT, 'schemas/composite.schema.json');

const GOOD = [
  // the example
  `{
  "base": "epsilon_plus_flat",
  "layerMap": [{"type": "Convolution", "rule": "alpha_beta", "alpha": 2, "beta": 1}],
  "nameMap": [{"layers": ["features.4"], "rule": "gamma", "gamma": 0.25},
              {"layers": ["classifier.1", "classifier.4"], "rule": "epsilon", "epsilon": 0.25}],
  "firstLayer": {"rule": "zbox", "low": -3, "high": 3}
}`,
  `{"base": {"name": "epsilon_gamma_box", "low": -3, "high": 3, "stabilizer": {"epsilon": 0.1, "clip": true}}}`,
  `{"nameMap": [{"layers": ["layer*.conv2"], "rule": "gradient"}, {"layers": ["x"], "rule": "relu_beta_smooth", "beta_smooth": 5}]}`,
  `{}`,
];

/** [text, line, column, message pattern] */
const BAD: [string, number, number, RegExp][] = [
  [
    '{"base": "epsilon_plus_flat",\n "nameMap": [{"layers": ["a"], "rule": "gamma", "epsilon": 0.25}]}',
    2,
    49,
    /nameMap\[0\]: unknown key "epsilon" \(gamma takes gamma, stabilizer, zero_params\)/,
  ],
  [
    '{\n  "layerMap": [\n    {"type": "Conv", "rule": "flat"}\n  ]\n}',
    3,
    14,
    /layerMap\[0\]\.type: unknown layer type "Conv" \(choose one of Convolution, /,
  ],
  ['{"nameMap": [{"layers": ["a"], "rule": "gama"}]}', 1, 40, /unknown rule "gama"/],
  ['{"layerMap": [{"type": "Convolution", "rule": "zbox", "low": 1}]}', 1, 15, /layerMap\[0\]: missing "high"/],
  ['{"layerMap": [{"type": "Convolution", "rule": "zbox", "low": 1, "high": 0}]}', 1, 62, /low must be below high/],
  ['{"firstLayer": {"rule": "alpha_beta", "alpha": 3}}', 1, 48, /alpha − beta must equal 1/],
  ['{"nameMap": [{"layers": [], "rule": "flat"}]}', 1, 25, /nameMap\[0\]\.layers: .*>=1/],
  ['{"base": "epsilon"}', 1, 10, /unknown composite "epsilon"/],
  [
    '{"base": "epsilon_plus",\n  "layerMap": [],\n}',
    3,
    1,
    /not JSON: a property name is expected \(a trailing comma\?\)/,
  ],
  ['{"layerMap": [{"type": "Dense", "rule": "epsilon", "epsilon": -1}]}', 1, 63, /layerMap\[0\]\.epsilon/],
  ['// comment\n{}', 1, 1, /not JSON: comments are not JSON/],
];

test('good composite files are read, and the JSON Schema accepts them too', () => {
  const validate = new Ajv({ strict: false }).compile(JSON.parse(fs.readFileSync(SCHEMA_FILE, 'utf8')));
  for (const text of GOOD) {
    const parsed = parseCompositeFile(text);
    assert.ok(parsed.ok, `${text}: ${JSON.stringify(parsed)}`);
    assert.ok(validate(JSON.parse(text)), `${text}: ${JSON.stringify(validate.errors)}`);
  }
});

test('a malformed file: each problem at its line and column, and the JSON Schema refuses it as well', () => {
  const validate = new Ajv({ strict: false }).compile(JSON.parse(fs.readFileSync(SCHEMA_FILE, 'utf8')));
  for (const [text, line, column, message] of BAD) {
    const parsed = parseCompositeFile(text);
    assert.ok(!parsed.ok, text);
    const [first] = parsed.problems;
    assert.match(first.message, message, text);
    assert.deepEqual([first.line, first.column], [line, column], `${text}: ${first.message}`);
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      continue;
    }
    // the schema cannot say alpha − beta = 1 or low < high: those two only the reader refuses
    if (!/alpha − beta|low must be below/.test(first.message)) assert.ok(!validate(json), `schema accepts ${text}`);
  }
});

test('a run refuses a malformed file with the same FILE:LINE:COLUMN message', async () => {
  const file = path.join(fs.mkdtempSync('/tmp/composite-'), 'model.composite.json');
  const [text] = BAD[1];
  fs.writeFileSync(file, text);
  const parsed = parseCompositeFile(text);
  assert.ok(!parsed.ok);
  await assert.rejects(
    readCompositeFile(file),
    (e: unknown) => e instanceof EngineError && e.message === formatProblem(file, parsed.problems[0]),
  );
});

test('schemas/composite.schema.json is generated from the reader’s schema (npm run schema)', () => {
  assert.deepEqual(JSON.parse(fs.readFileSync(SCHEMA_FILE, 'utf8')), compositeJsonSchema());
});

test('setting a rule on layers: they leave the entries that listed them, globs stay, the new entry comes last', () => {
  const file: CompositeFile = {
    base: 'epsilon_plus_flat',
    nameMap: [
      { layers: ['a', 'b'], rule: 'flat' },
      { layers: ['c'], rule: 'epsilon', epsilon: 0.1 },
      { layers: ['features.*'], rule: 'zplus' },
    ],
  };
  assert.deepEqual(setNameMapRule(file, ['b', 'c'], { rule: 'gamma', gamma: 0.5 }), {
    base: 'epsilon_plus_flat',
    nameMap: [
      { layers: ['a'], rule: 'flat' },
      { layers: ['features.*'], rule: 'zplus' },
      { layers: ['b', 'c'], rule: 'gamma', gamma: 0.5 },
    ],
  });
  // reset: the entries go, and an empty name map with them
  assert.deepEqual(
    setNameMapRule({ base: 'epsilon_plus', nameMap: [{ layers: ['a'], rule: 'flat' }] }, ['a'], undefined),
    {
      base: 'epsilon_plus',
    },
  );
});

test('a rule on a container goes to the layers below it that the rule is made for', () => {
  assert.ok(ruleSuits('gamma', 'Convolution') && ruleSuits('gamma', 'Dense'));
  assert.ok(!ruleSuits('gamma', 'ReLU') && !ruleSuits('gamma', undefined));
  assert.ok(ruleSuits('pass', 'ReLU') && ruleSuits('pass', 'Activation'));
  assert.ok(ruleSuits('relu_guided_backprop', 'ReLU') && !ruleSuits('relu_guided_backprop', 'Activation'));
  assert.ok(ruleSuits('norm', 'AvgPool') && ruleSuits('norm', 'Sum') && !ruleSuits('norm', 'MaxPool'));
  assert.ok(ruleSuits('gradient', 'MaxPool') && ruleSuits('gradient', 'BatchNorm'));
});

test('a problem the engine finds (a pattern that matches no layer) is located in the text', () => {
  const text = '{\n  "nameMap": [\n    {"layers": ["a", "layer9.*"], "rule": "flat"}\n  ]\n}';
  const p = locate(text, ['nameMap', 0, 'layers', 1], 'matches no layer');
  assert.deepEqual([p.line, p.column, text.slice(p.offset, p.offset + p.length)], [3, 22, '"layer9.*"']);
});
