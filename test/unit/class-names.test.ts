/**
 * The extension reads `classes.json` beside a model in the extension host, where a blocking or endless read would
 * freeze every extension: a link to /dev/zero, a FIFO or a huge file must be refused at once, with a reason.
 */
import { after, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { readClassNames, readFeatureNames } from '../../extension/src/class-names';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'rl-classes-'));
after(() => fs.rmSync(root, { recursive: true, force: true }));

/** A model file in a folder of its own, with `classes.json` made by `make`. */
function modelBeside(name: string, make: (classesJson: string) => void): string {
  const dir = path.join(root, name);
  fs.mkdirSync(dir);
  make(path.join(dir, 'classes.json'));
  return path.join(dir, 'model.onnx');
}

test('class names come from an array or from "classes"; no file gives neither names nor a reason', async () => {
  const list = modelBeside('list', (f) => fs.writeFileSync(f, '["cat", "dog"]'));
  assert.deepEqual(await readClassNames(list), { names: ['cat', 'dog'] });
  const object = modelBeside('object', (f) => fs.writeFileSync(f, '{"classes": ["a"]}'));
  assert.deepEqual(await readClassNames(object), { names: ['a'] });
  const none = modelBeside('none', () => undefined);
  assert.deepEqual(await readClassNames(none), {});
});

test('feature names come from features.json beside the model, an array or one under "features"', async () => {
  const dir = path.join(root, 'features');
  fs.mkdirSync(dir);
  const model = path.join(dir, 'model.onnx');
  assert.deepEqual(await readFeatureNames(model), {});
  fs.writeFileSync(path.join(dir, 'features.json'), '{"features": ["age", "income"]}');
  assert.deepEqual(await readFeatureNames(model), { names: ['age', 'income'] });
  fs.writeFileSync(path.join(dir, 'features.json'), '{"classes": ["age"]}');
  assert.match((await readFeatureNames(model)).ignored!, /no list of strings \(an array, or one under "features"\)/);
});

test('a link to /dev/zero, a FIFO, a huge file and malformed JSON are refused at once, saying why', async () => {
  const cases: [string, (f: string) => void, RegExp][] = [
    ['zero', (f) => fs.symlinkSync('/dev/zero', f), /is not a regular file/],
    ['fifo', (f) => execFileSync('mkfifo', [f]), /is not a regular file/],
    ['huge', (f) => fs.writeFileSync(f, Buffer.alloc(17 * 2 ** 20, 0x20)), /more than a list of names needs/],
    ['malformed', (f) => fs.writeFileSync(f, '["cat", '), /JSON/],
    ['numbers', (f) => fs.writeFileSync(f, '[1, 2]'), /no list of strings/],
  ];
  for (const [name, make, why] of cases) {
    const result = await readClassNames(modelBeside(name, make));
    assert.equal(result.names, undefined, name);
    assert.match(result.ignored ?? '', why, name);
  }
});
