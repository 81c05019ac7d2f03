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
import { imageNetClasses, readClassNames, readFeatureNames, readNamesFile } from '../../extension/src/class-names';
import { classNamesFromMetadata } from '../../engine/src/io/class-metadata';

const ROOT = path.resolve(__dirname, '../..');

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

test('a names file the user picks: JSON as classes.json, any other file a name per line', async () => {
  const txt = path.join(root, 'names.txt');
  fs.writeFileSync(txt, 'tench\r\ngoldfish\n great white shark \n\n');
  assert.deepEqual(await readNamesFile(txt, 'classes'), { names: ['tench', 'goldfish', 'great white shark'] });
  fs.writeFileSync(txt, '\n\n');
  assert.match((await readNamesFile(txt, 'classes')).ignored!, /has no names in it/);
});

test("ImageNet's class names are torchvision's 1000", () => {
  const names = imageNetClasses({ asAbsolutePath: (p) => path.join(ROOT, p) });
  assert.equal(names.length, 1000);
  assert.deepEqual([names[0], names[281], names[384], names[999]], ['tench', 'tabby', 'indri', 'toilet tissue']);
});

test('class names in a model file’s metadata: a JSON list, an index → name object, or Ultralytics’ Python dict', () => {
  assert.deepEqual(classNamesFromMetadata({ classes: '["cat", "dog"]' }), { names: ['cat', 'dog'], key: 'classes' });
  assert.deepEqual(classNamesFromMetadata({ labels: '{"1": "dog", "0": "cat"}' }), {
    names: ['cat', 'dog'],
    key: 'labels',
  });
  assert.deepEqual(classNamesFromMetadata({ stride: '32', names: "{0: 'person', 1: \"it's\", 2: 'a \\'b\\''}" }), {
    names: ['person', "it's", "a 'b'"],
    key: 'names',
  });
  // the first key that holds names; keys that hold something else are passed over
  assert.deepEqual(classNamesFromMetadata({ names: '["x"]', classes: '3' }), { names: ['x'], key: 'names' });
  for (const bad of [
    '[1, 2]',
    '{"0": "a", "2": "c"}',
    "{0: 'a', 0: 'b'}",
    "{0: 'a' 1: 'b'}",
    '{"a": "x"}',
    '[]',
    'cat',
  ])
    assert.equal(classNamesFromMetadata({ classes: bad }), undefined, bad);
  assert.equal(classNamesFromMetadata({ author: 'me' }), undefined);
});
