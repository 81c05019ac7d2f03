/**
 * What Zennit would do with each node: module paths from the exporter's scope names, module types (an activation
 * spelt as several nodes is one Pass from its input), and residual adds as Sum (Norm) or plain additions.
 */
import { before, describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as path from 'path';
import { initBackend } from '../../engine/src/graph/backend';
import { assignRules, buildComposite } from '../../engine/src/lrp/composites';
import type { GraphNode } from '../../engine/src/graph/graph';
import { loadModel } from '../../engine/src/graph/model';
import { assignModules, modulePath } from '../../engine/src/lrp/modules';
import { GOLDEN_DIR } from '../golden';

before(async () => {
  await initBackend(process.env.RELEVANCE_LENS_BACKEND ?? 'cpu');
});

describe('module paths from the exporter', () => {
  test('unqualified scope names become PyTorch module names', () => {
    assert.deepEqual(modulePath('/features/features.0/Conv'), ['features', '0']);
    // the doubled segment of nested Sequentials is gone
    assert.deepEqual(modulePath('/layer2/layer2.0/downsample/downsample.0/Conv'), ['layer2', '0', 'downsample', '0']);
    assert.deepEqual(modulePath('/features/features.1/features.1.0/block/block.0/block.0.0/Conv'), [
      'features',
      '1',
      '0',
      'block',
      '0',
      '0',
    ]);
    assert.deepEqual(modulePath('/layer1/layer1.0/relu_1/Relu'), ['layer1', '0', 'relu_1']);
    assert.deepEqual(modulePath('/Flatten'), []);
  });

  test('an activation spelt as several nodes is one module that Pass spans; a functional gate is not', () => {
    const node = (name: string, op: GraphNode['op'], inputs: string[], output: string, params = {}): GraphNode => ({
      id: '',
      name,
      op,
      sourceOp: op,
      inputs,
      output,
      attrs: {},
      params,
    });
    const nodes = [
      node('/block/block.0/Conv', 'conv2d', ['x'], 'c'),
      node('/block/block.1/Sigmoid', 'sigmoid', ['c'], 's'),
      node('/block/block.1/Mul', 'mul', ['c', 's'], 'silu'),
      node('/block/Mul', 'mul', ['silu', 'x'], 'gate'),
      node('/block/Add', 'add', ['gate', 'x'], 'y'),
    ];
    assignModules(nodes, 'y');
    assert.deepEqual(
      nodes.map((n) => n.id),
      ['block.0', 'block.1.Sigmoid', 'block.1.Mul', 'block.Mul', 'block.Add'],
    );
    assert.deepEqual(
      nodes.map((n) => n.moduleType),
      ['conv', undefined, 'activation', undefined, 'sum'],
    );
    assert.equal(nodes[2].passFrom, 'c');
  });
});

describe('residual adds', () => {
  test("norm: Zennit's Sum modules get Norm; gradient: plain additions get no rule", async () => {
    const model = await loadModel(path.join(GOLDEN_DIR, 'resnet_mini', 'model.onnx'));
    try {
      const composite = buildComposite('epsilon_plus_flat');
      const graph = model.canonical();
      const adds = graph.nodes.filter((n) => n.sourceOp === 'Add').map((n) => n.id);
      assert.deepEqual(adds, ['layer1.Add', 'layer2.Add']);
      const norm = assignRules(composite, graph, 'norm');
      assert.deepEqual(
        adds.map((id) => norm.get(id)?.name),
        ['Norm', 'Norm'],
      );
      const gradient = assignRules(composite, graph, 'gradient');
      assert.deepEqual(
        adds.map((id) => gradient.get(id)),
        [undefined, undefined],
      );
      assert.equal(gradient.get('layer1.conv1')?.name, 'ZPlus');
    } finally {
      model.dispose();
    }
  });
});

describe('values known to be non-negative', () => {
  test('an add of a constant operand (a bias that may be negative) does not keep a ReLU output non-negative', async () => {
    const tf = await import('@tensorflow/tfjs-core');
    const { nonNegativeValues } = await import('../../engine/src/graph/graph');
    const node = (op: GraphNode['op'], inputs: string[], output: string, params = {}): GraphNode => ({
      id: output,
      name: output,
      op,
      sourceOp: op,
      inputs,
      output,
      attrs: {},
      params,
    });
    const bias = tf.tensor1d([-1, -2]);
    const graph = {
      source: 'test',
      format: 'onnx' as const,
      layout: 'NCHW' as const,
      input: { name: 'x', shape: [1, 2] },
      output: 'biased',
      nodes: [node('relu', ['x'], 'r'), node('reshape', ['r'], 'kept'), node('add', ['r'], 'biased', { input1: bias })],
    };
    const known = nonNegativeValues(graph);
    bias.dispose();
    assert.deepEqual([...known].sort(), ['kept', 'r']);
  });
});
