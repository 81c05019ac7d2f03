import * as tf from '@tensorflow/tfjs-core';
import * as fs from 'fs';
import { FILE_LIMITS, readRegularFile } from '../io/files';
import { checkInputValues } from '../limits';
import * as path from 'path';
import { mergeBatchNorm, ownedParams } from '../lrp/canonizers';
import { DerivedParams } from '../lrp/derived-params';
import { EngineError, fail } from '../errors';
import { buildLayerTree, disposeGraph, type Graph, type LayerTreeItem, layerIndex, paramCount } from './graph';
import { loadOnnx } from '../io/onnx';
import { loadTfjsLayers } from '../io/tfjs';
import { releasePrepared, retainPrepared } from './native';
import { outputShape } from './ops';

const params = (graph: Graph) => graph.nodes.flatMap((n) => Object.values(n.params));

/** A loaded model: its graph, the batch-norm-merged graph LRP uses, and the layer tree. */
export class Model {
  readonly tree: LayerTreeItem[];
  /** tree id (node or container) → node id */
  readonly index: Map<string, string>;
  /** rule-modified parameters, kept across runs; at most twice the model's own parameters */
  readonly derived: DerivedParams;
  private merged?: Graph;
  private nonFinite?: string[];

  constructor(readonly graph: Graph) {
    this.tree = buildLayerTree(graph);
    this.index = layerIndex(graph);
    const paramBytes = 4 * graph.nodes.reduce((n, node) => n + paramCount(node), 0);
    this.derived = new DerivedParams(2 * paramBytes);
    retainPrepared(params(graph));
  }

  /** The graph with batch-norm merged into the preceding linear layers (Zennit's canonizer). */
  canonical(): Graph {
    if (!this.merged) {
      this.merged = mergeBatchNorm(this.graph);
      retainPrepared(params(this.merged));
    }
    return this.merged;
  }

  /** Layers whose parameters hold NaN or ±Infinity (looked at once, on first ask). */
  nonFiniteLayers(): string[] {
    this.nonFinite ??= this.graph.nodes
      .filter((n) => Object.values(n.params).some((p) => !tf.tidy(() => tf.all(tf.isFinite(p)).dataSync()[0])))
      .map((n) => n.id);
    return this.nonFinite;
  }

  /** The ids of every node's own layer (`--store all`). */
  allLayerIds(): string[] {
    return [...this.index].filter(([id, node]) => id === node).map(([id]) => id);
  }

  /** Resolves tree ids to node ids, with a clear error for unknown ones. */
  resolveLayers(ids: readonly string[]): Map<string, string> {
    const out = new Map<string, string>();
    for (const id of ids) {
      const node = this.index.get(id);
      if (!node)
        fail(
          'UNKNOWN_LAYER',
          `no layer "${id}" in ${path.basename(this.graph.source)} (layers: ${listed([...this.index.keys()], 12)})`,
        );
      out.set(id, node);
    }
    return out;
  }

  dispose(): void {
    this.derived.clear();
    releasePrepared(params(this.graph));
    if (this.merged) releasePrepared(params(this.merged));
    if (this.merged && this.merged !== this.graph) for (const t of ownedParams(this.merged, this.graph)) t.dispose();
    disposeGraph(this.graph);
  }
}

/** Loads an ONNX file or a TF.js model.json, checks it end to end with a forward pass, and fills in shapes. */
export async function loadModel(file: string): Promise<Model> {
  if (!fs.existsSync(file)) fail('FILE_NOT_FOUND', `${file}: file not found`);
  if (fs.statSync(file).isDirectory()) {
    const json = path.join(file, 'model.json');
    if (!fs.existsSync(json)) fail('NOT_A_MODEL', `${file}: a folder without model.json`);
    file = json;
  }
  let graph: Graph;
  if (file.toLowerCase().endsWith('.json')) {
    graph = await loadTfjsLayers(file);
  } else {
    graph = loadOnnx(await readRegularFile(file, FILE_LIMITS.onnx), file);
  }
  try {
    checkInputValues(graph.input.shape, `${file}'s input [${graph.input.shape}]`);
    if (graph.nodes.some((n) => !n.shape)) inferShapes(graph);
  } catch (e) {
    disposeGraph(graph);
    throw e;
  }
  return new Model(graph);
}

/** Every node's output shape (the TF.js loader's; the ONNX loader knows them as it adds nodes), and a first check. */
function inferShapes(graph: Graph): void {
  const shapes = new Map<string, number[]>([[graph.input.name, graph.input.shape]]);
  for (const node of graph.nodes) {
    const inputs = node.inputs.map((i) => shapes.get(i)!);
    try {
      node.shape = outputShape(node, inputs);
    } catch (e) {
      if (e instanceof EngineError) throw e;
      throw new EngineError(
        'SHAPE_MISMATCH',
        `${graph.source}: node "${node.name}" (${node.sourceOp}) cannot run on input shape ${shapesText(inputs)}: ` +
          (e as Error).message,
      );
    }
    shapes.set(node.output, node.shape);
  }
}

/** The first `n` names, and an ellipsis if there are more. */
function listed(names: string[], n: number): string {
  return names.slice(0, n).join(', ') + (names.length > n ? ', …' : '');
}

function shapesText(shapes: readonly (readonly number[])[]): string {
  return shapes.map((s) => `[${s}]`).join(', ');
}
