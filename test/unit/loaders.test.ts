/**
 * Model loaders: every error path gives an EngineError with the right code and a message naming the file and the
 * problem; well-formed ONNX (PyTorch-style names) and TF.js LayersModel files load with the right ids, layer tree
 * and forward output.
 */
import { after, before, describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import { modelOutput } from '../../engine/src/lrp/relevance-pass';
import { initBackend } from '../../engine/src/graph/backend';
import { EngineError, type EngineErrorCode } from '../../engine/src/errors';
import { loadModel, type Model } from '../../engine/src/graph/model';
import { readImage } from '../../engine/src/io/image';
import { readNpy } from '../../engine/src/io/npy';
import { wideConvModel } from '../models';
import { encodeOnnx, type OnnxModelSpec, type OnnxNodeSpec, type OnnxTensor } from '../../engine/src/io/onnx-writer';
import { onnx } from '../../engine/src/io/onnx-proto';

let dir: string;
let counter = 0;

before(async () => {
  await initBackend(process.env.RELEVANCE_LENS_BACKEND ?? 'cpu');
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rl-loaders-'));
});

after(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Asserts that `fn` throws an EngineError with `code` whose message names `file` and matches every pattern. */
async function assertEngineError(
  fn: () => unknown,
  code: EngineErrorCode,
  file: string,
  ...patterns: (string | RegExp)[]
): Promise<void> {
  await assert.rejects(
    async () => fn(),
    (e: unknown) => {
      assert.ok(
        e instanceof EngineError,
        `expected an EngineError, got ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`,
      );
      assert.equal(e.code, code, `code of "${e.message}"`);
      assert.ok(e.message.includes(file), `message "${e.message}" does not name ${file}`);
      for (const p of patterns) {
        if (typeof p === 'string') assert.ok(e.message.includes(p), `message "${e.message}" lacks "${p}"`);
        else assert.match(e.message, p);
      }
      return true;
    },
  );
}

function closeTo(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    assert.ok(
      Math.abs(actual[i] - expected[i]) <= 1e-5 + 1e-5 * Math.abs(expected[i]),
      `${what}[${i}] = ${actual[i]}, expected ${expected[i]}`,
    );
  }
}

function writeOnnx(spec: OnnxModelSpec, name = `m${counter++}.onnx`): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, encodeOnnx(spec));
  return file;
}

const floats = (n: number, f: (i: number) => number) => Array.from({ length: n }, (_, i) => f(i));

/** A one-node ONNX model on a [1, 3] input around `node`. */
function oneNode(
  node: OnnxNodeSpec,
  initializers: OnnxTensor[] = [],
  input: OnnxModelSpec['input'] = { name: 'input', dims: [1, 3] },
  outDims = [1, 2],
): OnnxModelSpec {
  return { input, output: { name: node.outputs[0], dims: outDims }, nodes: [node], initializers };
}

describe('loadModel: files that are not models', () => {
  test('a missing file → FILE_NOT_FOUND', async () => {
    const file = path.join(dir, 'nope', 'missing.onnx');
    await assertEngineError(async () => await loadModel(file), 'FILE_NOT_FOUND', file, 'not found');
  });

  test('random bytes named .onnx → NOT_A_MODEL', async () => {
    const file = path.join(dir, 'random.onnx');
    let s = 12345;
    const bytes = Buffer.from(floats(512, () => ((s = (s * 1103515245 + 12345) >>> 0) >>> 16) & 0xff));
    fs.writeFileSync(file, bytes);
    await assertEngineError(async () => await loadModel(file), 'NOT_A_MODEL', file, 'not an ONNX model');
  });

  test('a text file named .onnx → NOT_A_MODEL', async () => {
    const file = path.join(dir, 'notes.onnx');
    fs.writeFileSync(file, 'This is not a model, just some notes.\nSecond line.\n');
    await assertEngineError(async () => await loadModel(file), 'NOT_A_MODEL', file, 'not an ONNX model');
  });

  test('an empty file → NOT_A_MODEL (no graph nodes)', async () => {
    const file = path.join(dir, 'empty.onnx');
    fs.writeFileSync(file, '');
    await assertEngineError(async () => await loadModel(file), 'NOT_A_MODEL', file, 'no graph nodes');
  });

  test('a folder without model.json → NOT_A_MODEL', async () => {
    const folder = fs.mkdtempSync(path.join(dir, 'folder-'));
    fs.writeFileSync(path.join(folder, 'weights.bin'), Buffer.alloc(8));
    await assertEngineError(async () => await loadModel(folder), 'NOT_A_MODEL', folder, 'without model.json');
  });
});

describe('ONNX loader errors', () => {
  test('an unsupported op (GridSample) → UNSUPPORTED_OP naming the node, the op and the opset', async () => {
    const file = writeOnnx(
      oneNode({ name: '/warp/GridSample', opType: 'GridSample', inputs: ['input', 'grid'], outputs: ['g'] }, [
        { name: 'grid', dims: [1, 1, 1, 2], values: [0, 0] },
      ]),
    );
    await assertEngineError(
      async () => await loadModel(file),
      'UNSUPPORTED_OP',
      file,
      '/warp/GridSample',
      'unsupported operator GridSample',
      'opset 13',
    );
  });

  test('malformed graphs are NOT_A_MODEL naming the problem, not internal errors', async () => {
    const gemm = (dims: number[], values: number[]): OnnxModelSpec => ({
      input: { name: 'input', dims: [1, 3] },
      output: { name: 'y', dims: [1, 2] },
      initializers: [{ name: 'W', dims, values }],
      nodes: [{ name: '/fc/Gemm', opType: 'Gemm', inputs: ['input', 'W'], outputs: ['y'], attributes: { transB: 1 } }],
    });
    const cases: [OnnxModelSpec, string][] = [
      [gemm([2 ** 40, 3], []), 'tensor "W" has impossible dimensions [1099511627776,3]'],
      [gemm([-2, 3], []), 'tensor "W" has impossible dimensions [-2,3]'],
      [gemm([2, 3], [1, 2, 3]), 'tensor "W" has 12 bytes, expected 24'],
      [
        {
          input: { name: 'input', dims: [1, 3] },
          output: { name: 'y', dims: [1, 3] },
          initializers: [],
          nodes: [
            { name: 'a', opType: 'Relu', inputs: ['input'], outputs: ['y'] },
            { name: 'b', opType: 'Relu', inputs: ['input'], outputs: ['y'] },
          ],
        },
        'output "y" is already produced by an earlier node',
      ],
      [
        oneNode(
          { name: 'bn', opType: 'BatchNormalization', inputs: ['input'], outputs: ['y'] },
          [],
          { name: 'input', dims: [1, 3, 2, 2] },
          [1, 3, 2, 2],
        ),
        'a batch-norm parameter (input 2 of the node) is missing',
      ],
    ];
    for (const [spec, message] of cases) {
      const file = writeOnnx(spec);
      await assertEngineError(async () => await loadModel(file), 'NOT_A_MODEL', file, message);
    }
  });

  test('an int64 or bool input (token ids, masks) is refused: the engine attributes to float inputs', async () => {
    const relu: OnnxNodeSpec = { name: '/r/Relu', opType: 'Relu', inputs: ['input'], outputs: ['y'] };
    for (const [elemType, name] of [
      [7, 'int64'],
      [9, 'bool'],
    ] as const) {
      const file = writeOnnx(oneNode(relu, [], { name: 'input', dims: [1, 3], elemType }, [1, 3]));
      await assertEngineError(
        async () => await loadModel(file),
        'UNSUPPORTED_OP',
        file,
        `input "input" holds ${name} values`,
      );
    }
  });

  test('an op type that is a prototype key (constructor, toString) is an unsupported op, not a crash', async () => {
    for (const opType of ['constructor', 'toString', '__proto__']) {
      const file = writeOnnx(oneNode({ name: `/x/${opType}`, opType, inputs: ['input'], outputs: ['y'] }, []));
      await assertEngineError(
        async () => await loadModel(file),
        'UNSUPPORTED_OP',
        file,
        `unsupported operator ${opType}`,
      );
    }
  });

  test('an unsupported op (LSTM) after a supported one → UNSUPPORTED_OP', async () => {
    const file = writeOnnx({
      input: { name: 'input', dims: [1, 3] },
      output: { name: 'h', dims: [1, 2] },
      nodes: [
        { name: '/act/Relu', opType: 'Relu', inputs: ['input'], outputs: ['r'] },
        { name: '/rnn/LSTM', opType: 'LSTM', inputs: ['r', 'W', 'R'], outputs: ['h'], attributes: { hidden_size: 2 } },
      ],
      initializers: [
        { name: 'W', dims: [1, 8, 3], values: floats(24, (i) => i / 24) },
        { name: 'R', dims: [1, 8, 2], values: floats(16, (i) => i / 16) },
      ],
    });
    await assertEngineError(async () => await loadModel(file), 'UNSUPPORTED_OP', file, '"/rnn/LSTM"', 'LSTM');
  });

  test('an input produced by no node → NOT_A_MODEL', async () => {
    const file = writeOnnx(
      oneNode({ name: '/act/Relu', opType: 'Relu', inputs: ['ghost'], outputs: ['y'] }, [], undefined, [1, 3]),
    );
    await assertEngineError(
      async () => await loadModel(file),
      'NOT_A_MODEL',
      file,
      '/act/Relu',
      '"ghost"',
      'not produced by any earlier node',
    );
  });

  test('a graph output produced by no node → NOT_A_MODEL', async () => {
    const spec = oneNode(
      { name: '/act/Relu', opType: 'Relu', inputs: ['input'], outputs: ['y'] },
      [],
      undefined,
      [1, 3],
    );
    spec.output = { name: 'elsewhere', dims: [1, 3] };
    const file = writeOnnx(spec);
    await assertEngineError(
      async () => await loadModel(file),
      'NOT_A_MODEL',
      file,
      '"elsewhere"',
      'not produced by any node',
    );
  });

  test('a Gemm whose weight does not fit the input → SHAPE_MISMATCH naming the node', async () => {
    // input [1, 3] but B is [4, 2] (transB = 0 → K = 4)
    const file = writeOnnx(
      oneNode({ name: '/fc/Gemm', opType: 'Gemm', inputs: ['input', 'fc.weight', 'fc.bias'], outputs: ['y'] }, [
        { name: 'fc.weight', dims: [4, 2], values: floats(8, (i) => i) },
        { name: 'fc.bias', dims: [2], values: [0, 0] },
      ]),
    );
    await assertEngineError(
      async () => await loadModel(file),
      'SHAPE_MISMATCH',
      file,
      'node "/fc/Gemm" (Gemm',
      '[1,3]',
    );
  });

  test('Pad mode reflect → UNSUPPORTED_OP', async () => {
    const file = writeOnnx(
      oneNode(
        { name: '/pad/Pad', opType: 'Pad', inputs: ['input', 'pads'], outputs: ['y'], attributes: { mode: 'reflect' } },
        [{ name: 'pads', dims: [8], values: [0, 0, 1, 1, 0, 0, 1, 1], int64: true }],
        { name: 'input', dims: [1, 1, 3, 3] },
        [1, 1, 5, 5],
      ),
    );
    await assertEngineError(
      async () => await loadModel(file),
      'UNSUPPORTED_OP',
      file,
      '/pad/Pad',
      'Pad mode "reflect"',
    );
  });

  test('other unsupported configurations → UNSUPPORTED_OP with the reason', async () => {
    const image = { name: 'input', dims: [1, 1, 4, 4] };
    const conv = (attributes: OnnxNodeSpec['attributes'], weight = 'w'): OnnxNodeSpec => ({
      name: '/c/Conv',
      opType: 'Conv',
      inputs: ['input', weight],
      outputs: ['y'],
      attributes,
    });
    const w = { name: 'w', dims: [1, 1, 3, 3], values: floats(9, (i) => i) };
    const cases: [string, OnnxModelSpec, string][] = [
      ['Conv on a 2-D input', oneNode(conv({}), [w]), 'a 4-D NCHW input'],
      [
        'Conv with a non-constant weight',
        { ...oneNode(conv({}, 'input'), [], image, [1, 1, 2, 2]) },
        'must be a constant',
      ],
      ['Conv with auto_pad', oneNode(conv({ auto_pad: 'SAME_UPPER' }), [w], image, [1, 1, 4, 4]), 'auto_pad'],
      [
        'Gemm with transA',
        oneNode(
          { name: '/fc/Gemm', opType: 'Gemm', inputs: ['input', 'B'], outputs: ['y'], attributes: { transA: 1 } },
          [{ name: 'B', dims: [3, 2], values: floats(6, (i) => i) }],
        ),
        'transA=1',
      ],
      [
        'MaxPool with dilations',
        oneNode(
          {
            name: '/p/MaxPool',
            opType: 'MaxPool',
            inputs: ['input'],
            outputs: ['y'],
            attributes: { kernel_shape: [2, 2], dilations: [2, 2] },
          },
          [],
          image,
          [1, 1, 2, 2],
        ),
        'dilated pooling',
      ],
      [
        'Gather with computed indices',
        oneNode(
          { name: '/g/Gather', opType: 'Gather', inputs: ['c', 'input'], outputs: ['y'] },
          [{ name: 'c', dims: [3], values: [1, 2, 3] }],
          undefined,
          [1, 3],
        ),
        'the indices (input "input") must be a constant',
      ],
    ];
    for (const [what, spec, reason] of cases) {
      // the file is named after the case, so a failure message says which one
      const file = writeOnnx(spec, `${what.replace(/[^A-Za-z0-9]+/g, '-')}.onnx`);
      await assertEngineError(async () => await loadModel(file), 'UNSUPPORTED_OP', file, reason);
    }
  });

  test('malformed graphs → NOT_A_MODEL with the reason', async () => {
    const relu: OnnxNodeSpec = { name: '/r/Relu', opType: 'Relu', inputs: ['input'], outputs: ['y'] };
    const cases: [OnnxModelSpec, string][] = [
      [{ ...oneNode(relu, [], undefined, [1, 3]), opset: 5 }, 'opset 5 is not supported (11–17 are'],
      [{ ...oneNode(relu, [], undefined, [1, 3]), opset: 7 }, 'opset 7 is not supported'],
      [{ ...oneNode(relu, [], undefined, [1, 3]), opset: 21 }, 'opset 21 is not supported'],
      [oneNode(relu, [], { name: 'input', dims: [1, 0] }, [1, 3]), 'symbolic dimensions'],
      [{ ...oneNode(relu, [], undefined, [1, 3]), nodes: [] }, 'no graph nodes'],
      [
        // 3 values declared as a [2, 2] tensor: the raw data has 12 bytes instead of 16
        oneNode({ name: '/fc/MatMul', opType: 'MatMul', inputs: ['input', 'B'], outputs: ['y'] }, [
          { name: 'B', dims: [2, 2], values: [1, 2, 3] },
        ]),
        'has 12 bytes, expected 16',
      ],
    ];
    for (const [spec, reason] of cases) {
      const file = writeOnnx(spec);
      await assertEngineError(async () => await loadModel(file), 'NOT_A_MODEL', file, reason);
    }
  });
});

describe('ONNX loader: PyTorch-style models', () => {
  // Conv(1→2, 3×3, pad 1) → ReLU → MaxPool 2×2 → Flatten → Linear(8 → 3), input [1, 1, 4, 4] NCHW
  const convW = floats(18, (i) => ((i * 7) % 11) / 5 - 1); // OIHW [2, 1, 3, 3]
  const convB = [0.1, -0.3];
  const fcW = floats(24, (i) => ((i * 5) % 13) / 6 - 1); // PyTorch [out = 3, in = 8], transB = 1
  const fcB = [0.5, -0.25, 0];
  const spec: OnnxModelSpec = {
    input: { name: 'input', dims: [1, 1, 4, 4] },
    output: { name: 'output', dims: [1, 3] },
    nodes: [
      {
        name: '/features/features.0/Conv',
        opType: 'Conv',
        inputs: ['input', 'features.0.weight', 'features.0.bias'],
        outputs: ['/features/features.0/Conv_output_0'],
        attributes: { kernel_shape: [3, 3], pads: [1, 1, 1, 1], strides: [1, 1], dilations: [1, 1], group: 1 },
      },
      {
        name: '/features/features.1/Relu',
        opType: 'Relu',
        inputs: ['/features/features.0/Conv_output_0'],
        outputs: ['/features/features.1/Relu_output_0'],
      },
      {
        name: '/features/features.2/MaxPool',
        opType: 'MaxPool',
        inputs: ['/features/features.1/Relu_output_0'],
        outputs: ['/features/features.2/MaxPool_output_0'],
        attributes: { kernel_shape: [2, 2], strides: [2, 2], pads: [0, 0, 0, 0] },
      },
      {
        name: '/Flatten',
        opType: 'Flatten',
        inputs: ['/features/features.2/MaxPool_output_0'],
        outputs: ['/Flatten_output_0'],
        attributes: { axis: 1 },
      },
      {
        name: '/classifier/Gemm',
        opType: 'Gemm',
        inputs: ['/Flatten_output_0', 'classifier.weight', 'classifier.bias'],
        outputs: ['output'],
        attributes: { transB: 1 },
      },
    ],
    initializers: [
      { name: 'features.0.weight', dims: [2, 1, 3, 3], values: convW },
      { name: 'features.0.bias', dims: [2], values: convB },
      { name: 'classifier.weight', dims: [3, 8], values: fcW },
      { name: 'classifier.bias', dims: [3], values: fcB },
    ],
  };

  /** The same network in plain JS, NCHW throughout (PyTorch semantics). */
  function reference(x: number[]): number[] {
    const conv = new Array(2 * 16).fill(0);
    for (let o = 0; o < 2; o++) {
      for (let r = 0; r < 4; r++) {
        for (let c = 0; c < 4; c++) {
          let z = convB[o];
          for (let i = 0; i < 3; i++) {
            for (let j = 0; j < 3; j++) {
              const rr = r + i - 1;
              const cc = c + j - 1;
              if (rr >= 0 && rr < 4 && cc >= 0 && cc < 4) z += x[rr * 4 + cc] * convW[o * 9 + i * 3 + j];
            }
          }
          conv[o * 16 + r * 4 + c] = Math.max(z, 0);
        }
      }
    }
    const pooled: number[] = []; // [2, 2, 2] flattened in C, H, W order
    for (let o = 0; o < 2; o++) {
      for (let r = 0; r < 2; r++) {
        for (let c = 0; c < 2; c++) {
          pooled.push(Math.max(...[0, 1, 4, 5].map((d) => conv[o * 16 + 2 * r * 4 + 2 * c + d])));
        }
      }
    }
    return fcB.map((b, k) => pooled.reduce((s, v, i) => s + v * fcW[k * 8 + i], b));
  }

  let model: Model;
  before(async () => {
    model = await loadModel(writeOnnx(spec, 'pytorch-cnn.onnx'));
  });
  after(() => model.dispose());

  test('node ids are module paths', async () => {
    assert.deepEqual(
      model.graph.nodes.map((n) => [n.id, n.op]),
      [
        ['features.0', 'conv2d'],
        ['features.1', 'relu'],
        ['features.2', 'maxPool'],
        ['Flatten', 'reshape'],
        ['classifier', 'dense'],
      ],
    );
    assert.equal(model.graph.layout, 'NCHW');
    assert.deepEqual(model.graph.input, { name: 'input', shape: [1, 1, 4, 4] });
  });

  test('the layer tree has a features container ending at features.2', async () => {
    const roots = model.tree;
    assert.deepEqual(
      roots.map((r) => r.id),
      ['features', 'Flatten', 'classifier'],
    );
    const features = roots[0];
    assert.equal(features.op, 'container');
    assert.equal(features.node, 'features.2');
    assert.deepEqual(features.shape, [1, 2, 2, 2]);
    assert.equal(features.params, 2 * 9 + 2);
    assert.deepEqual(
      features.children.map((c) => [c.id, c.label, c.node, c.op, c.shape.join('x'), c.params]),
      [
        ['features.0', '0', 'features.0', 'Conv', '1x2x4x4', 20],
        ['features.1', '1', 'features.1', 'Relu', '1x2x4x4', 0],
        ['features.2', '2', 'features.2', 'MaxPool', '1x2x2x2', 0],
      ],
    );
    const classifier = roots[2];
    assert.deepEqual(
      [classifier.op, classifier.shape, classifier.params, classifier.children.length],
      ['Gemm', [1, 3], 27, 0],
    );
    assert.equal(model.index.get('features'), 'features.2');
    assert.deepEqual([...model.resolveLayers(['features', 'classifier']).values()], ['features.2', 'classifier']);
  });

  test('forward output equals the plain-JS network (OIHW weights, NCHW flatten order)', async () => {
    const x = floats(16, (i) => Math.sin(i * 1.7) * 2);
    const out = modelOutput(model, { shape: [1, 1, 4, 4], data: Float32Array.from(x) });
    assert.deepEqual(out.shape, [1, 3]);
    closeTo(out.data, reference(x), 'output');
  });

  /**
   * The spec written with its initializers' values in other files (ONNX external data, as PyTorch writes models
   * over 2 GB and its dynamo exporter by default): `place` names each tensor's location and offset, or undefined to
   * keep it inline. Returns the model file.
   */
  function writeExternal(name: string, place: (t: string) => { location: string; offset?: number } | undefined) {
    const folder = fs.mkdtempSync(path.join(dir, 'external-'));
    const m = onnx.ModelProto.decode(encodeOnnx(spec));
    const files = new Map<string, Buffer[]>();
    for (const t of m.graph!.initializer ?? []) {
      const where = place(t.name ?? '');
      if (!where) continue;
      const raw = Buffer.from(t.rawData ?? []);
      const parts = files.get(where.location) ?? [];
      const end = parts.reduce((n, b) => n + b.length, 0);
      const at = where.offset ?? end;
      parts.push(Buffer.alloc(at - end), raw);
      files.set(where.location, parts);
      // no offset key at 0: ONNX's default
      t.externalData = [
        { key: 'location', value: where.location },
        ...(at ? [{ key: 'offset', value: String(at) }] : []),
        { key: 'length', value: String(raw.length) },
      ];
      t.dataLocation = 1;
      t.rawData = new Uint8Array(0);
    }
    for (const [location, parts] of files) {
      fs.mkdirSync(path.dirname(path.join(folder, location)), { recursive: true });
      fs.writeFileSync(path.join(folder, location), Buffer.concat(parts));
    }
    const file = path.join(folder, name);
    fs.writeFileSync(file, onnx.ModelProto.encode(m).finish());
    return file;
  }

  test('external data: weights in one file at offsets, or a file each, compute as inline ones', async () => {
    const x = floats(16, (i) => Math.cos(i * 0.9));
    const input = { shape: [1, 1, 4, 4], data: Float32Array.from(x) };
    const layouts: [string, (t: string) => { location: string; offset?: number } | undefined][] = [
      // PyTorch's: one file beside the model, each tensor at its offset (here 4 bytes apart, not packed)
      [
        'one file',
        (t) => ({ location: 'model.onnx.data', offset: 4 * spec.initializers.findIndex((i) => i.name === t) * 32 }),
      ],
      // onnx's all_tensors_to_one_file=False: a file per tensor, in a subfolder, no offset
      ['a file each', (t) => ({ location: `weights/${t}` })],
      // only the weights outside, the biases inline
      ['some', (t) => (t.endsWith('.weight') ? { location: 'w.bin' } : undefined)],
    ];
    for (const [what, place] of layouts) {
      const loaded = await loadModel(writeExternal('model.onnx', place));
      const out = modelOutput(loaded, input);
      closeTo(out.data, reference(x), what);
      loaded.dispose();
    }
  });

  test("external data outside the model's folder, missing, or shorter than its tensor is refused, naming it", async () => {
    const outside = writeExternal('model.onnx', (t) =>
      t === 'classifier.bias' ? { location: '../w.bin' } : undefined,
    );
    await assertEngineError(() => loadModel(outside), 'NOT_A_MODEL', outside, 'external data "../w.bin" is outside');
    const absolute = writeExternal('model.onnx', (t) =>
      t === 'classifier.bias' ? { location: '/etc/passwd' } : undefined,
    );
    await assertEngineError(() => loadModel(absolute), 'NOT_A_MODEL', absolute, '"/etc/passwd" is outside');
    const missing = writeExternal('model.onnx', (t) => (t === 'features.0.bias' ? { location: 'b.bin' } : undefined));
    fs.rmSync(path.join(path.dirname(missing), 'b.bin'));
    await assertEngineError(
      () => loadModel(missing),
      'FILE_NOT_FOUND',
      missing,
      'external data "b.bin": file not found',
    );
    const short = writeExternal('model.onnx', (t) => (t === 'classifier.weight' ? { location: 'w.bin' } : undefined));
    fs.truncateSync(path.join(path.dirname(short), 'w.bin'), 50);
    await assertEngineError(() => loadModel(short), 'NOT_A_MODEL', short, 'run past the end of "w.bin" (50 bytes)');
  });

  test('MatMul + Add (PyTorch Linear) is fused into one dense node', async () => {
    const W = [1, -2, 0.5, 3, -1, 2]; // [in = 3, out = 2] as the exporter writes it
    const b = [0.25, -0.75];
    const file = writeOnnx({
      input: { name: 'input', dims: [1, 3] },
      output: { name: 'output', dims: [1, 2] },
      nodes: [
        { name: '/fc/MatMul', opType: 'MatMul', inputs: ['input', 'onnx::MatMul_7'], outputs: ['/fc/MatMul_output_0'] },
        { name: '/fc/Add', opType: 'Add', inputs: ['fc.bias', '/fc/MatMul_output_0'], outputs: ['output'] },
      ],
      initializers: [
        { name: 'onnx::MatMul_7', dims: [3, 2], values: W },
        { name: 'fc.bias', dims: [2], values: b },
      ],
    });
    const m = await loadModel(file);
    try {
      assert.equal(m.graph.nodes.length, 1);
      const [node] = m.graph.nodes;
      assert.deepEqual([node.id, node.op, node.output], ['fc', 'dense', 'output']);
      closeTo(node.params.bias.tensor.dataSync(), b, 'bias');
      // x = [1, 2, 3]: y = [1 − 2·... ] = [1·1 + 2·0.5 + 3·(−1) + 0.25, 1·(−2) + 2·3 + 3·2 − 0.75] = [−0.75, 9.25]
      const out = modelOutput(m, { shape: [1, 3], data: Float32Array.from([1, 2, 3]) });
      closeTo(out.data, [-0.75, 9.25], 'output');
    } finally {
      m.dispose();
    }
  });
});

// ---------------------------------------------------------------------------------------------------------------
// TF.js LayersModel

interface WeightSpec {
  name: string;
  shape: number[];
  values: number[];
}

/** Writes model.json (+ one shard) into a fresh folder and returns the model.json path. */
function writeTfjs(
  topology: unknown,
  weights: WeightSpec[],
  opts: { shard?: Buffer; manifest?: unknown; extra?: Record<string, unknown> } = {},
): string {
  const folder = fs.mkdtempSync(path.join(dir, 'tfjs-'));
  const data = Buffer.from(Float32Array.from(weights.flatMap((w) => w.values)).buffer);
  fs.writeFileSync(path.join(folder, 'group1-shard1of1.bin'), opts.shard ?? data);
  const manifest = opts.manifest ?? [
    {
      paths: ['group1-shard1of1.bin'],
      weights: weights.map((w) => ({ name: w.name, shape: w.shape, dtype: 'float32' })),
    },
  ];
  const json = path.join(folder, 'model.json');
  fs.writeFileSync(
    json,
    JSON.stringify({ format: 'layers-model', modelTopology: topology, weightsManifest: manifest, ...opts.extra }),
  );
  return json;
}

/** A functional Keras topology: an input [null, ...inputShape] and layers given as [className, config, inbound names]. */
function functional(
  inputShape: number[],
  layers: [string, Record<string, unknown>, string[]][],
  output = layers[layers.length - 1][1].name as string,
) {
  return {
    class_name: 'Functional',
    config: {
      name: 'model',
      layers: [
        {
          class_name: 'InputLayer',
          name: 'inp',
          config: { name: 'inp', batch_input_shape: [null, ...inputShape], dtype: 'float32' },
          inbound_nodes: [],
        },
        ...layers.map(([cls, config, inbound]) => ({
          class_name: cls,
          name: config.name,
          config,
          inbound_nodes: [inbound.map((i) => [i, 0, 0, {}])],
        })),
      ],
      input_layers: [['inp', 0, 0]],
      output_layers: [[output, 0, 0]],
    },
    keras_version: '2.15.0',
    backend: 'tensorflow',
  };
}

const denseTopology = () =>
  functional([3], [['Dense', { name: 'd', units: 2, activation: 'linear', use_bias: true }, ['inp']]]);
const denseWeights: WeightSpec[] = [
  { name: 'd/kernel', shape: [3, 2], values: [1, 2, 3, 4, 5, 6] },
  { name: 'd/bias', shape: [2], values: [0.5, -0.5] },
];

describe('TF.js loader errors', () => {
  test('model.json with invalid JSON → NOT_A_MODEL', async () => {
    const folder = fs.mkdtempSync(path.join(dir, 'badjson-'));
    const json = path.join(folder, 'model.json');
    fs.writeFileSync(json, '{"modelTopology": {"class_name": "Sequential",');
    await assertEngineError(async () => await loadModel(json), 'NOT_A_MODEL', json, 'not a TF.js model');
  });

  test('model.json without modelTopology → NOT_A_MODEL', async () => {
    const folder = fs.mkdtempSync(path.join(dir, 'notopo-'));
    const json = path.join(folder, 'model.json');
    fs.writeFileSync(json, JSON.stringify({ format: 'layers-model', weightsManifest: [] }));
    await assertEngineError(async () => await loadModel(json), 'NOT_A_MODEL', json, 'no modelTopology');
  });

  test('a graph-model → NOT_A_MODEL', async () => {
    const json = writeTfjs(denseTopology(), denseWeights, { extra: { format: 'graph-model' } });
    await assertEngineError(async () => await loadModel(json), 'NOT_A_MODEL', json, '"graph-model" is not supported');
  });

  test('a missing weight shard → FILE_NOT_FOUND naming the shard', async () => {
    const json = writeTfjs(denseTopology(), denseWeights, {
      manifest: [
        {
          paths: ['group1-shard1of2.bin'],
          weights: denseWeights.map((w) => ({ name: w.name, shape: w.shape, dtype: 'float32' })),
        },
      ],
    });
    await assertEngineError(
      async () => await loadModel(json),
      'FILE_NOT_FOUND',
      json,
      'weight file "group1-shard1of2.bin": file not found',
    );
  });

  test('a shard shorter than the manifest → NOT_A_MODEL', async () => {
    // the manifest wants 6 + 2 floats (32 bytes), the shard has 7 floats
    const json = writeTfjs(denseTopology(), denseWeights, { shard: Buffer.from(new Float32Array(7).buffer) });
    await assertEngineError(
      async () => await loadModel(json),
      'NOT_A_MODEL',
      json,
      'do not hold what the manifest says',
    );
  });

  test('quantised weights are dequantised (uint8 kernel, float32 bias) and compute as their float32 values', async () => {
    const x = { shape: [1, 3], data: Float32Array.from([1, 2, 3]) };
    const plain = await loadModel(writeTfjs(denseTopology(), denseWeights));
    // kernel 1…6 as uint8 codes 0…5 with min 1 and scale 1
    const json = writeTfjs(denseTopology(), denseWeights, {
      shard: Buffer.concat([Buffer.from([0, 1, 2, 3, 4, 5]), Buffer.from(new Float32Array([0.5, -0.5]).buffer)]),
      manifest: [
        {
          paths: ['group1-shard1of1.bin'],
          weights: [
            { name: 'd/kernel', shape: [3, 2], dtype: 'float32', quantization: { dtype: 'uint8', min: 1, scale: 1 } },
            { name: 'd/bias', shape: [2], dtype: 'float32' },
          ],
        },
      ],
    });
    const quantised = await loadModel(json);
    assert.deepEqual([...modelOutput(quantised, x).data], [...modelOutput(plain, x).data]);
    plain.dispose();
    quantised.dispose();
  });

  test("weight paths outside the model's folder, or not regular files, are refused", async () => {
    const outside = writeTfjs(denseTopology(), denseWeights, {
      manifest: [
        {
          paths: ['../secret.bin'],
          weights: denseWeights.map((w) => ({ name: w.name, shape: w.shape, dtype: 'float32' })),
        },
      ],
    });
    fs.writeFileSync(path.join(path.dirname(outside), '..', 'secret.bin'), Buffer.from(new Float32Array(8).buffer));
    await assertEngineError(
      async () => await loadModel(outside),
      'NOT_A_MODEL',
      outside,
      'weight file "../secret.bin" is outside the model\'s folder',
    );
    const folder = writeTfjs(denseTopology(), denseWeights, {
      manifest: [
        { paths: ['shards'], weights: denseWeights.map((w) => ({ name: w.name, shape: w.shape, dtype: 'float32' })) },
      ],
    });
    fs.mkdirSync(path.join(path.dirname(folder), 'shards'));
    await assertEngineError(
      async () => await loadModel(folder),
      'BAD_INPUT',
      folder,
      'weight file "shards": not a regular file',
    );
  });

  test('an unknown Keras layer class → UNSUPPORTED_OP naming the layer', async () => {
    const topology = functional([4, 3], [['LSTM', { name: 'rnn', units: 2 }, ['inp']]]);
    const json = writeTfjs(topology, []);
    await assertEngineError(
      async () => await loadModel(json),
      'UNSUPPORTED_OP',
      json,
      'layer "rnn" (LSTM)',
      'unsupported layer class LSTM',
    );
  });

  test('layer-level problems', async () => {
    const cases: [unknown, WeightSpec[], EngineErrorCode, string][] = [
      // unsupported activation
      [
        functional([3], [['Dense', { name: 'd', units: 2, activation: 'gelu' }, ['inp']]]),
        denseWeights,
        'UNSUPPORTED_OP',
        'unsupported activation "gelu"',
      ],
      // missing weight
      [
        functional([3], [['Dense', { name: 'd', units: 2, activation: 'linear' }, ['inp']]]),
        [denseWeights[0]],
        'NOT_A_MODEL',
        'weight "d/bias" is missing',
      ],
      // channels_first
      [
        functional(
          [3, 3, 1],
          [
            [
              'Conv2D',
              { name: 'c', filters: 1, kernel_size: [1, 1], data_format: 'channels_first', activation: 'linear' },
              ['inp'],
            ],
          ],
        ),
        [],
        'UNSUPPORTED_OP',
        'data_format channels_first',
      ],
      // Dense on an image
      [
        functional([2, 2, 3], [['Dense', { name: 'd', units: 2, activation: 'linear' }, ['inp']]]),
        denseWeights,
        'UNSUPPORTED_OP',
        'Dense on a 4-D input',
      ],
      // summands of different shapes
      [
        functional(
          [3],
          [
            ['Dense', { name: 'd', units: 2, activation: 'linear' }, ['inp']],
            ['Add', { name: 'sum' }, ['d', 'inp']],
          ],
        ),
        denseWeights,
        'SHAPE_MISMATCH',
        'summands have shapes [1,2] and [1,3]',
      ],
      // an input from a layer that does not exist
      [functional([3], [['ReLU', { name: 'r' }, ['nowhere']]]), [], 'NOT_A_MODEL', 'input "nowhere" is not produced'],
    ];
    for (const [topology, weights, code, reason] of cases) {
      const json = writeTfjs(topology, weights);
      await assertEngineError(async () => await loadModel(json), code, json, reason);
    }
  });

  test('a shared layer → UNSUPPORTED_OP', async () => {
    const topology = functional([3], [['ReLU', { name: 'r' }, ['inp']]]);
    (topology.config.layers[1] as { inbound_nodes: unknown[] }).inbound_nodes.push([['inp', 0, 0, {}]]);
    const json = writeTfjs(topology, []);
    await assertEngineError(async () => await loadModel(json), 'UNSUPPORTED_OP', json, 'layer "r" is used 2 times');
  });

  test('unsupported model class and an empty model → NOT_A_MODEL', async () => {
    const json = writeTfjs({ class_name: 'Subclassed', config: { layers: [] } }, []);
    await assertEngineError(
      async () => await loadModel(json),
      'NOT_A_MODEL',
      json,
      'unsupported model class "Subclassed"',
    );
    const empty = writeTfjs({ class_name: 'Sequential', config: { name: 's', layers: [] } }, []);
    await assertEngineError(async () => await loadModel(empty), 'NOT_A_MODEL', empty, 'has no layers');
  });
});

describe('TF.js loader: functional model with "same" padding and DepthwiseConv2D', () => {
  // inp [1, 3, 3, 2] → DepthwiseConv2D(2×2, same, depth_multiplier 2, bias) → Conv2D(1 filter, 2×2, stride 2, same,
  // relu) → Flatten → Dense(2)
  const x = floats(18, (i) => Math.cos(i * 0.9) * 1.5);
  const dwK = floats(16, (i) => ((i * 3) % 7) / 3 - 1); // [2, 2, 2, 2] = [kh, kw, cin, mult]
  const dwB = [0.1, -0.2, 0.3, 0];
  const cK = floats(16, (i) => ((i * 5) % 9) / 4 - 1); // [2, 2, 4, 1]
  const cB = [0.05];
  const dK = [1, -1, 0.5, 2, -0.5, 1, 2, 0.25]; // [4, 2]
  const dB = [0.1, -0.1];

  /**
   * The same network by hand (NHWC loops). Keras "same" with an even kernel pads 0 before and 1 after: for the
   * depthwise conv (3 → 3, k 2, s 1): total pad 1 → [0, 1]; for the conv (3 → 2, k 2, s 2): total (2−1)·2 + 2 − 3 = 1
   * → [0, 1] too.
   */
  function reference(): number[] {
    const at = (a: number[], H: number, W: number, C: number, r: number, c: number, ch: number) =>
      r < H && c < W ? a[(r * W + c) * C + ch] : 0;
    const dw: number[] = [];
    for (let r = 0; r < 3; r++) {
      for (let c = 0; c < 3; c++) {
        for (let ch = 0; ch < 2; ch++) {
          for (let m = 0; m < 2; m++) {
            let z = dwB[ch * 2 + m];
            for (let i = 0; i < 2; i++)
              for (let j = 0; j < 2; j++) z += at(x, 3, 3, 2, r + i, c + j, ch) * dwK[((i * 2 + j) * 2 + ch) * 2 + m];
            dw.push(z); // output channel ch·mult + m, NHWC order
          }
        }
      }
    }
    const conv: number[] = [];
    for (let r = 0; r < 2; r++) {
      for (let c = 0; c < 2; c++) {
        let z = cB[0];
        for (let i = 0; i < 2; i++)
          for (let j = 0; j < 2; j++)
            for (let ch = 0; ch < 4; ch++) z += at(dw, 3, 3, 4, 2 * r + i, 2 * c + j, ch) * cK[(i * 2 + j) * 4 + ch];
        conv.push(Math.max(0, z));
      }
    }
    return dB.map((b, k) => conv.reduce((s, v, i) => s + v * dK[i * 2 + k], b));
  }

  let model: Model;
  before(async () => {
    const topology = functional(
      [3, 3, 2],
      [
        [
          'DepthwiseConv2D',
          {
            name: 'dw',
            kernel_size: [2, 2],
            strides: [1, 1],
            padding: 'same',
            depth_multiplier: 2,
            use_bias: true,
            activation: 'linear',
            data_format: 'channels_last',
          },
          ['inp'],
        ],
        [
          'Conv2D',
          {
            name: 'conv',
            filters: 1,
            kernel_size: [2, 2],
            strides: [2, 2],
            padding: 'same',
            use_bias: true,
            activation: 'relu',
            dilation_rate: [1, 1],
          },
          ['dw'],
        ],
        ['Flatten', { name: 'flat' }, ['conv']],
        ['Dense', { name: 'out', units: 2, activation: 'linear', use_bias: true }, ['flat']],
      ],
    );
    const json = writeTfjs(topology, [
      { name: 'dw/depthwise_kernel', shape: [2, 2, 2, 2], values: dwK },
      { name: 'dw/bias', shape: [4], values: dwB },
      { name: 'conv/kernel', shape: [2, 2, 4, 1], values: cK },
      { name: 'conv/bias', shape: [1], values: cB },
      { name: 'out/kernel', shape: [4, 2], values: dK },
      { name: 'out/bias', shape: [2], values: dB },
    ]);
    // load through the folder, as the extension does
    model = await loadModel(path.dirname(json));
  });
  after(() => model.dispose());

  test('graph: ids, ops, "same" pads and shapes', async () => {
    const g = model.graph;
    assert.equal(g.layout, 'NHWC');
    assert.deepEqual(g.input.shape, [1, 3, 3, 2]);
    assert.deepEqual(
      g.nodes.map((n) => [n.id, n.op, (n.shape ?? []).join('x')]),
      [
        ['dw', 'conv2d', '1x3x3x4'],
        ['conv.linear', 'conv2d', '1x2x2x1'],
        ['conv', 'relu', '1x2x2x1'],
        ['flat', 'reshape', '1x4'],
        ['out', 'dense', '1x2'],
      ],
    );
    assert.deepEqual(g.nodes[0].attrs.conv, {
      strides: [1, 1],
      pads: [
        [0, 1],
        [0, 1],
      ],
      dilations: [1, 1],
      groups: 2,
    });
    assert.deepEqual(g.nodes[1].attrs.conv?.pads, [
      [0, 1],
      [0, 1],
    ]);
  });

  test('forward output equals the hand computation', async () => {
    const out = modelOutput(model, { shape: [1, 3, 3, 2], data: Float32Array.from(x) });
    assert.deepEqual(out.shape, [1, 2]);
    const expected = reference();
    closeTo(out.data, expected, 'output');
    assert.ok(
      expected.some((v) => Math.abs(v) > 0.1),
      'the reference is not trivial',
    );
  });
});

describe('files that are not regular files are refused before they are read', () => {
  test('/dev/zero, a FIFO and a symlink to /dev/zero: as a model, a weight file, an input; a clear error, no hang', async () => {
    const folder = fs.mkdtempSync(path.join(dir, 'special-'));
    const fifo = path.join(folder, 'pipe.onnx');
    spawnSync('mkfifo', [fifo]);
    const link = path.join(folder, 'zero.npy');
    fs.symlinkSync('/dev/zero', link);
    for (const file of ['/dev/zero', fifo]) {
      await assertEngineError(async () => await loadModel(file), 'BAD_INPUT', file, 'not a regular file');
    }
    await assertEngineError(async () => await readNpy(link), 'BAD_INPUT', link, 'not a regular file');
    const json = writeTfjs(denseTopology(), denseWeights);
    fs.rmSync(path.join(path.dirname(json), 'group1-shard1of1.bin'));
    fs.symlinkSync('/dev/zero', path.join(path.dirname(json), 'group1-shard1of1.bin'));
    await assertEngineError(
      async () => await loadModel(json),
      'BAD_INPUT',
      json,
      'weight file "group1-shard1of1.bin": not a regular file',
    );
  });
});

describe('sizes a file declares are bounded before they become memory', () => {
  const pool = (kernel: number[]): OnnxModelSpec => ({
    input: { name: 'input', dims: [1, 1, 8, 8] },
    output: { name: 'y', dims: [1, 1, 1, 1] },
    initializers: [],
    nodes: [
      {
        name: '/pool/MaxPool',
        opType: 'MaxPool',
        inputs: ['input'],
        outputs: ['y'],
        attributes: { kernel_shape: kernel },
      },
    ],
  });

  test('a kernel larger than its input is a shape error at load, not a run on negative sizes', async () => {
    const file = writeOnnx(pool([100, 100]));
    await assertEngineError(
      async () => await loadModel(file),
      'SHAPE_MISMATCH',
      file,
      'its output would have shape [1,1,-91,-91]',
    );
  });

  test('loading infers every shape without computing: a 2.4 GB intermediate costs nothing until a run', async () => {
    const channels = 600;
    const file = writeOnnx(wideConvModel(channels));
    let model: Model | undefined;
    const profile = await tf.profile(async () => {
      model = await loadModel(file);
      return [];
    });
    // the weights' layout change is all that runs
    assert.deepEqual(
      profile.kernels.map((k) => k.name),
      ['Transpose'],
    );
    assert.ok(profile.peakBytes < 2 ** 20, `peak ${profile.peakBytes} bytes`);
    assert.deepEqual(
      model!.graph.nodes.map((n) => n.shape),
      [
        [1, channels, 1024, 1024],
        [1, channels, 1, 1],
        [1, channels],
      ],
    );
    model!.dispose();
  });

  test('a declared input over the limit is refused at load; the environment variable allows it', async () => {
    const file = writeOnnx(
      oneNode(
        { name: '/relu/Relu', opType: 'Relu', inputs: ['input'], outputs: ['y'] },
        [],
        { name: 'input', dims: [1, 3, 8000, 8000] },
        [1, 3, 8000, 8000],
      ),
    );
    await assertEngineError(
      async () => await loadModel(file),
      'BAD_INPUT',
      file,
      '192,000,000 values',
      'RELEVANCE_LENS_MAX_INPUT_VALUES',
    );
    process.env.RELEVANCE_LENS_MAX_INPUT_VALUES = String(2 ** 28);
    try {
      (await loadModel(file)).dispose();
    } finally {
      delete process.env.RELEVANCE_LENS_MAX_INPUT_VALUES;
    }
  });

  test('a PNG whose header declares 20000×20000 pixels is not decoded', async () => {
    const png = Buffer.alloc(64);
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]).copy(png, 0);
    png.writeUInt32BE(13, 8);
    png.write('IHDR', 12, 'ascii');
    png.writeUInt32BE(20000, 16);
    png.writeUInt32BE(20000, 20);
    const file = path.join(fs.mkdtempSync(path.join(dir, 'png-')), 'huge.png');
    fs.writeFileSync(file, png);
    await assertEngineError(
      async () => await readImage(file, 'NCHW', { size: [32, 32], channels: 3 }),
      'BAD_INPUT',
      file,
      '400,000,000 pixels',
    );
  });
});

test('the committed ONNX decoder is what protobufjs-cli generates from onnx.proto (npm run proto)', () => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'rl-proto-'));
  try {
    execFileSync(path.resolve(__dirname, '../../scripts/gen-onnx-proto.sh'), [out], { stdio: 'pipe' });
    for (const file of ['onnx-proto.js', 'onnx-proto.d.ts'])
      assert.ok(
        fs
          .readFileSync(path.join(out, file))
          .equals(fs.readFileSync(path.resolve(__dirname, '../../engine/src/io', file))),
        `${file} differs from onnx.proto's: run npm run proto`,
      );
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
});
