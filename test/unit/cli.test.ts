/** The CLI as a user runs it: the seed's example end to end, the files it writes, and one-line errors. */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawn, spawnSync } from 'child_process';
import { createMessageConnection, StreamMessageReader, StreamMessageWriter } from 'vscode-jsonrpc/node';
import * as P from '../../protocol/engine';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { layerFileNames } from '../../engine/src/io/files';
import { encodeOnnx } from '../../engine/src/io/onnx-writer';
import { parseNpy, readNpy, writeNpy } from '../../engine/src/io/npy';
import { compare, GOLDEN_DIR, goldenNpy, manifest } from '../golden';
import { wideConvModel } from '../models';

const ROOT = path.resolve(__dirname, '../..');
const cli = (...args: string[]) =>
  spawnSync(process.execPath, [path.join(ROOT, 'bin/relevance-lens.js'), ...args], { encoding: 'utf8', cwd: ROOT });

test("the seed's example through the CLI equals Zennit (EpsilonPlusFlat, target 1, every layer stored)", async () => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'rl-cli-'));
  const seed = path.join(GOLDEN_DIR, 'seed_example');
  const r = cli(
    'attribute',
    path.join(seed, 'model.onnx'),
    '--input',
    path.join(seed, 'input.npy'),
    '--composite',
    'epsilon-plus-flat',
    '--target',
    '1',
    '--store',
    'all',
    '--backend',
    'wasm',
    '--out',
    out,
  );
  assert.equal(r.status, 0, r.stderr);
  assert.match(
    r.stdout,
    /backend: wasm; kernels: (native \(oneDNN [^)]+\)|wasm \(native kernels not used: [^)]+\)+); composite: epsilon_plus_flat/,
  );
  const m = manifest('seed_example').methods.epsilon_plus_flat;
  const errors = [
    compare(await readNpy(path.join(out, 'relevance.npy')), goldenNpy('seed_example', m.relevance), 'relevance'),
    compare(await readNpy(path.join(out, 'output.npy')), goldenNpy('seed_example', m.output!), 'output'),
    ...Object.entries(m.layers!).map(([id, l]) =>
      compare(
        parseNpy(fs.readFileSync(path.join(out, 'layers', `${id}.npy`))),
        goldenNpy('seed_example', 'epsilon_plus_flat', l.file),
        id,
      ),
    ),
  ].filter(Boolean);
  assert.deepEqual(errors, []);
  const summary = JSON.parse(fs.readFileSync(path.join(out, 'summary.json'), 'utf8'));
  assert.equal(summary.backend, 'wasm');
  assert.match(summary.kernels, /^(native|wasm)/);
  assert.equal(summary.attributor, 'gradient');
  assert.deepEqual(
    summary.layers.map((l: { id: string }) => l.id),
    ['0', '1', '2', '3'],
  );
  assert.deepEqual(
    summary.layers.map((l: { node: string }) => l.node),
    ['/0/Conv', '/1/Relu', '/2/Flatten', '/3/Gemm'],
  );
  for (const l of summary.layers) assert.ok(Math.abs(l.sum - m.layers![l.id].sum) < 1e-4, `${l.id} sum ${l.sum}`);
});

test('an image input gives heatmap PNGs; the example model predicts the triangle', async () => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'rl-cli-'));
  const r = cli(
    'attribute',
    'examples/shapes/model.onnx',
    '--input',
    'examples/shapes/triangle.png',
    '--store',
    'features.0,classifier',
    '--cmap',
    'coldnhot',
    '--out',
    out,
  );
  assert.equal(r.status, 0, r.stderr);
  const summary = JSON.parse(fs.readFileSync(path.join(out, 'summary.json'), 'utf8'));
  assert.deepEqual(summary.target, [2]);
  assert.ok(fs.statSync(path.join(out, 'heatmap.png')).size > 100);
  assert.ok(fs.existsSync(path.join(out, 'layers', 'features.0.png')));
  assert.deepEqual((await readNpy(path.join(out, 'layers', 'classifier.npy'))).shape, [1, 4]);
});

test('--conditions (inline or a file): a row per condition set, a heatmap each, the sets in summary.json', async () => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'rl-cli-'));
  const sets = [{ 'features.3': [4] }, { 'features.3': [4, 0] }, { y: [1], 'features.3': [] }];
  const file = path.join(out, 'conditions.json');
  fs.writeFileSync(file, JSON.stringify(sets));
  const run = (conditions: string, ...more: string[]) => {
    const dir = path.join(out, `run${more.length}`);
    const args = ['--input', 'examples/shapes/triangle.png', '--store', 'features.3', '--out', dir, ...more];
    const r = cli('attribute', 'examples/shapes/model.onnx', '--conditions', conditions, ...args);
    assert.equal(r.status, 0, r.stderr);
    return dir;
  };
  const inline = run(JSON.stringify(sets));
  const fromFile = run(file, '--exclude-parallel', 'false');
  const summary = JSON.parse(fs.readFileSync(path.join(inline, 'summary.json'), 'utf8'));
  assert.deepEqual(summary.conditions, sets);
  assert.equal(summary.exclude_parallel, true);
  assert.deepEqual(
    summary.rows.map((r: { input_row: number; condition: number }) => [r.input_row, r.condition]),
    [
      [0, 0],
      [0, 1],
      [0, 2],
    ],
  );
  assert.equal(summary.rows[2].relevance_sum, 0, 'no channel passes no relevance');
  assert.deepEqual((await readNpy(path.join(inline, 'relevance.npy'))).shape, [3, 3, 32, 32]);
  assert.deepEqual((await readNpy(path.join(inline, 'layers', 'features.3.npy'))).shape, [3, 16, 16, 16]);
  for (const r of [0, 1, 2]) assert.ok(fs.existsSync(path.join(inline, 'conditions', `${r}.png`)));
  // a sequential model has no parallel branch: both exclude_parallel values agree
  const a = await readNpy(path.join(inline, 'relevance.npy'));
  const b = await readNpy(path.join(fromFile, 'relevance.npy'));
  assert.ok(a.data.every((v, i) => Math.abs(v - b.data[i]) < 1e-6));
  const refused = cli(
    'attribute',
    'examples/shapes/model.onnx',
    '--input',
    'examples/shapes/triangle.png',
    '--conditions',
    '[{"features.3": [4]',
    '--out',
    path.join(out, 'bad'),
  );
  assert.equal(refused.status, 1);
  assert.match(refused.stderr, /^relevance-lens: --conditions is not JSON/);
});

test('--help, alone or after a command, prints the usage and exits 0', () => {
  for (const args of [['--help'], ['attribute', '--help'], ['layers', 'model.onnx', '-h']]) {
    const r = cli(...args);
    assert.equal(r.status, 0, args.join(' '));
    assert.match(r.stdout, /attribute options:[\s\S]*--conditions/);
  }
});

test('operators lists what the engine reads; an unsupported operator says where that list is', () => {
  const r = cli('operators');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^ONNX \(opsets 11–17\): Add, .*\bConv\b.*\bGemm\b/m);
  assert.match(r.stdout, /^TF\.js LayersModel: .*\bConv2D\b.*\bDense\b/m);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rl-cli-ops-'));
  const file = path.join(dir, 'nms.onnx');
  fs.writeFileSync(
    file,
    encodeOnnx({
      input: { name: 'boxes', dims: [1, 4, 4] },
      output: { name: 'selected', dims: [1, 3] },
      nodes: [{ name: '/nms', opType: 'NonMaxSuppression', inputs: ['boxes', 'scores'], outputs: ['selected'] }],
      initializers: [{ name: 'scores', dims: [1, 1, 4], values: [0.9, 0.8, 0.7, 0.6] }],
    }),
  );
  const bad = cli('layers', file);
  assert.equal(bad.status, 1);
  assert.deepEqual(bad.stderr.trim().split('\n'), [
    `relevance-lens: ${file}: node "/nms" (NonMaxSuppression, opset 13): unsupported operator NonMaxSuppression`,
    'relevance-lens: `relevance-lens operators` lists the operators the engine reads',
  ]);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('bad input exits non-zero with one line naming the problem', () => {
  const seed = path.join(GOLDEN_DIR, 'seed_example');
  const files = fs.mkdtempSync(path.join(os.tmpdir(), 'rl-cli-composite-'));
  const badComposite = path.join(files, 'bad.composite.json');
  fs.writeFileSync(
    badComposite,
    '{\n  "layerMap": [\n    {"type": "Convolution", "rule": "flat",\n     "gamma": 1}\n  ]\n}\n',
  );
  const unknownLayer = path.join(files, 'unknown.composite.json');
  fs.writeFileSync(unknownLayer, '{"nameMap": [{"layers": ["features.99"], "rule": "flat"}]}');
  const run = ['attribute', path.join(seed, 'model.onnx'), '--input', path.join(seed, 'input.npy'), '--out', '/tmp/x'];
  const cases: [string[], RegExp][] = [
    [['attribute', '/no/model.onnx', '--input', 'x.npy', '--out', '/tmp/x'], /\/no\/model\.onnx: file not found/],
    [
      [
        'attribute',
        path.join(seed, 'model.onnx'),
        '--input',
        path.join(GOLDEN_DIR, 'mlp/input.npy'),
        '--out',
        '/tmp/x',
      ],
      /input has shape \[4,20\]/,
    ],
    [[...run, '--composite', 'nope'], /unknown composite "nope"/],
    [[...run, '--target', '12'], /target class 12 is out of range/],
    [[...run, '--store', 'features.9'], /no layer "features.9"/],
    [
      ['attribute', path.join(seed, 'model.onnx'), '--input', path.join(seed, 'input.npy'), '--bogus', '1'],
      /unknown option --bogus/,
    ],
    [[...run, '--target='], /--target must be comma-separated numbers, not ""/],
    [[...run, '--target', '0x3'], /--target must be comma-separated numbers, not "0x3"/],
    [[...run, '--epsilon='], /--epsilon must be a number, not ""/],
    [['attribute', path.join(seed, 'model.onnx'), '--input'], /--input needs a value/],
    [[...run, '--epsilon=-1'], /compositeParams\.epsilon/],
    // negative values after a space are values, not options
    [[...run, '--composite', 'epsilon_gamma_box', '--low', '-3', '--high', '-4'], /low must be below high/],
    [[...run, '--composite', 'epsilon_gamma_box', '--low', '3', '--high=-3'], /low must be below high/],
    [[...run, '--input', '-x.npy'], /--input needs a value \(one that starts with a dash as --input=VALUE\)/],
    [[...run, '--attributor', 'occlusion', '--stride', '0.001'], /attributorParams\.stride/],
    [[...run, '--attributor', 'occlusion', '--window', '0'], /attributorParams\.window/],
    [[...run, '--target', '1.5'], /target/],
    [
      ['attribute', path.join(seed, 'input.npy'), '--input', path.join(seed, 'input.npy'), '--out', '/tmp/x'],
      /not an ONNX model/,
    ],
    [[...run, '--backend', 'gpu'], /unknown backend "gpu"/],
    [[...run, '--contrast', '1'], /--contrast takes two classes/],
    [[...run, '--class-weights', '1=2'], /CLASS:WEIGHT pairs such as 3:1,5:-1, not "1=2"/],
    [[...run, '--contrast', '1,2', '--class-weights', '1:1'], /two ways to say one thing/],
    [[...run, '--attributor', 'integrated_gradients', '--baseline', 'noise.png'], /noise\.png: file not found/],
    [[...run, '--composite', '/no/such.composite.json'], /\/no\/such\.composite\.json: file not found/],
    [[...run, '--composite', badComposite], new RegExp(`${badComposite}:4:6: layerMap\\[0\\]: unknown key "gamma"`)],
    [[...run, '--composite', unknownLayer], /the name map's "features\.99" matches no layer of this model/],
    [[...run, '--composite', unknownLayer, '--epsilon', '1'], /--epsilon is a built-in composite's parameter/],
  ];
  for (const [args, pattern] of cases) {
    const r = cli(...args);
    assert.equal(r.status, 1, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, pattern);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  }
});

test('`relevance-lens serve --stdio`, exactly as the README documents it, serves the protocol', async () => {
  const proc = spawn(process.execPath, [path.join(ROOT, 'bin/relevance-lens.js'), 'serve', '--stdio'], { cwd: ROOT });
  let stderr = '';
  proc.stderr.on('data', (d) => (stderr += d));
  const conn = createMessageConnection(new StreamMessageReader(proc.stdout), new StreamMessageWriter(proc.stdin));
  conn.listen();
  // a server that dies must fail the test, not leave it waiting
  const died = new Promise<never>((_, reject) => proc.on('exit', (code) => reject(new Error(`exited ${code}`))));
  const answer = <T>(request: Promise<T>) => Promise.race([request, died]);
  try {
    assert.equal((await answer(conn.sendRequest(P.Stats))).models, 0, 'answers before initialize');
    const init = await answer(conn.sendRequest(P.Initialize, { backend: 'cpu' }));
    assert.equal(init.backend, 'cpu');
    const info = await answer(
      conn.sendRequest(P.OpenModel, { path: path.join(GOLDEN_DIR, 'seed_example/model.onnx') }),
    );
    assert.deepEqual(
      info.tree.map((t) => t.id),
      ['0', '1', '2', '3'],
    );
  } catch (e) {
    assert.fail(`${(e as Error).message}; stderr: ${stderr}`);
  } finally {
    conn.dispose();
    proc.kill();
  }
});

test('layer ids that map to one file name get files of their own', () => {
  const names = layerFileNames(['d:1', 'd_1', 'd/1', 'features.0', 'A', 'a', '']);
  assert.deepEqual([...names.values()], ['d_1', 'd_1-2', 'd_1-3', 'features.0', 'A', 'a-2', '_']);
});

test('the target is named by the class names the model file carries (its metadata)', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rl-named-'));
  const file = path.join(dir, 'named.onnx');
  fs.writeFileSync(file, encodeOnnx({ ...wideConvModel(3), metadata: { names: "{0: 'cat', 1: 'dog', 2: 'bird'}" } }));
  const input = path.join(dir, 'x.npy');
  writeNpy(input, { shape: [1, 1, 1024, 1024], data: new Float32Array(2 ** 20).fill(1) });
  const r = cli('attribute', file, '--input', input, '--target', '1', '--out', path.join(dir, 'out'));
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /; target: 1 \(dog\);/);
});

test('NaN in the input: the run completes and says where the non-finite values came from', async () => {
  const seed = path.join(GOLDEN_DIR, 'seed_example');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rl-nan-'));
  const input = await readNpy(path.join(seed, 'input.npy'));
  input.data[5] = NaN;
  const file = path.join(dir, 'nan.npy');
  writeNpy(file, input);
  const out = path.join(dir, 'out');
  const r = cli('attribute', path.join(seed, 'model.onnx'), '--input', file, '--out', out);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /warning: the input has 1 NaN or infinite values/);
  assert.match(r.stderr, /warning: the relevance is not finite from layer /);
  const summary = JSON.parse(fs.readFileSync(path.join(out, 'summary.json'), 'utf8'));
  assert.ok(summary.warnings.length >= 2, JSON.stringify(summary.warnings));
});

test('--out: results replace the folder as a whole, never through planted links; a file or an unusable place is refused', () => {
  const seed = path.join(GOLDEN_DIR, 'seed_example');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rl-out-'));
  const run = (out: string) =>
    cli(
      'attribute',
      path.join(seed, 'model.onnx'),
      '--input',
      path.join(seed, 'input.npy'),
      '--store',
      'all',
      '--out',
      out,
    );
  // folders above --out are made as needed
  const nested = path.join(dir, 'new', 'deeper', 'out');
  assert.equal(run(nested).status, 0);
  assert.ok(fs.existsSync(path.join(nested, 'summary.json')));
  // a previous result folder with a link planted where a layer's file goes
  const out = path.join(dir, 'out');
  fs.mkdirSync(path.join(out, 'layers'), { recursive: true });
  const victim = path.join(dir, 'victim.txt');
  fs.writeFileSync(victim, 'keep me');
  fs.symlinkSync(victim, path.join(out, 'layers', '0.npy'));
  const r = run(out);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(fs.readFileSync(victim, 'utf8'), 'keep me', 'the link was not written through');
  assert.ok(!fs.lstatSync(path.join(out, 'layers', '0.npy')).isSymbolicLink());
  assert.ok(fs.existsSync(path.join(out, 'summary.json')));
  assert.deepEqual(
    fs.readdirSync(dir).filter((f) => f.includes('partial')),
    [],
    'no partial folder left',
  );
  const file = path.join(dir, 'a-file');
  fs.writeFileSync(file, '');
  for (const [where, pattern] of [
    [file, /exists and is not a folder/],
    ['/proc/self/x', /cannot write there/],
  ] as const) {
    const bad = run(where);
    assert.equal(bad.status, 1, bad.stderr);
    assert.match(bad.stderr, pattern);
  }
});

test('analyze: a data set ranked per channel into analysis.json with reference images; resumable, never mixed', () => {
  const dir = path.join(ROOT, '.zoo-cache/analysis/analysis_shapes');
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'rl-cli-analyze-'));
  const args = ['analyze', path.join(dir, 'model.onnx'), '--data', path.join(dir, 'images'), '--layer', 'features.3'];
  const r = cli(...args, '--references', '2', '--out', out);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /analysed 160 samples at 1 layer in .* s \(.* samples\/s\)/);
  assert.match(r.stderr, /analyze: 160\/160 samples · .* samples\/s · ETA 0 s/);
  const analysis = JSON.parse(fs.readFileSync(path.join(out, 'analysis.json'), 'utf8'));
  assert.equal(analysis.done, 160);
  assert.deepEqual(analysis.classNames, ['circle', 'cross', 'square', 'triangle']);
  const layer = analysis.layers['features.3'];
  assert.equal(layer.relmax.samples.length, 16);
  assert.equal(layer.relmax.samples[0].length, 40);
  for (const ref of layer.references[0])
    for (const f of [ref.image, ref.heatmap])
      assert.equal(fs.readFileSync(path.join(out, f)).subarray(1, 4).toString(), 'PNG');
  // the same settings again: nothing left to do; other settings: refused, the folder untouched
  const again = cli(...args, '--references', '2', '--out', out);
  assert.equal(again.status, 0, again.stderr);
  assert.doesNotMatch(again.stdout, /analysed/);
  /** the fixture's .npz with a classes.json beside it */
  const npzWith = (classes: string) => {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), 'rl-cli-npz-'));
    fs.copyFileSync(path.join(dir, 'data.npz'), path.join(d, 'data.npz'));
    fs.writeFileSync(path.join(d, 'classes.json'), classes);
    return path.join(d, 'data.npz');
  };
  const other = cli(...args, '--top', '10', '--out', out);
  assert.equal(other.status, 1);
  assert.match(other.stderr, /analysis\.json holds an analysis with other settings/);
  for (const [extra, pattern] of [
    [['--data', '/no/data'], /\/no\/data: data set not found/],
    [['--data', path.join(dir, 'model.onnx')], /a data set is a folder of class folders \(ImageFolder\) or an \.npz/],
    [['--layer', 'features.9'], /no layer "features\.9"/],
    [['--data', npzWith('{bad')], /classes\.json is not JSON/],
    [['--data', npzWith('{"classes": [1, 2]}')], /classes\.json holds no list of class names/],
  ] as [string[], RegExp][]) {
    const bad = cli(
      'analyze',
      path.join(dir, 'model.onnx'),
      '--data',
      path.join(dir, 'data.npz'),
      '--layer',
      'features.0',
      ...extra,
      '--out',
      out + '-x',
    );
    assert.equal(bad.status, 1, bad.stderr);
    assert.match(bad.stderr, pattern);
  }
});
