import * as tf from '@tensorflow/tfjs-core';
import * as fs from 'fs';
import { FILE_LIMITS, OpenFile } from '../io/files';
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
import type { Param } from './param';

const params = (graph: Graph) => graph.nodes.flatMap((n) => Object.values(n.params));
const loadedTensors = (ps: Param[]) => ps.filter((p) => p.loaded).map((p) => p.tensor);
/** how much parameter data is made between two turns of the event loop while weights load */
const TURN_BYTES = 32 * 2 ** 20;

/**
 * An open model: its graph, the batch-norm-merged graph LRP uses, and the layer tree. Opening reads the structure;
 * the parameters' tensors are made by `loadWeights` (or on first use).
 */
export class Model {
  readonly tree: LayerTreeItem[];
  /** tree id (node or container) → node id */
  readonly index: Map<string, string>;
  /** rule-modified parameters, kept across runs; at most twice the model's own parameters */
  readonly derived: DerivedParams;
  /** bytes of the model's own parameters (float32) */
  readonly paramBytes: number;
  private merged?: Graph;
  private nonFinite?: string[];
  private weights?: Promise<void>;
  private weightsMade = false;

  /** `files`: where parameters not yet made are read from (an ONNX file, and its external data); closed once they
   *  are all made, or with the model */
  constructor(
    readonly graph: Graph,
    private readonly files: OpenFile[] = [],
  ) {
    this.tree = buildLayerTree(graph);
    this.index = layerIndex(graph);
    this.paramBytes = 4 * graph.nodes.reduce((n, node) => n + paramCount(node), 0);
    this.derived = new DerivedParams(2 * this.paramBytes);
  }

  /**
   * Makes every parameter's tensor (an ONNX model's are read from its file now), yielding to the event loop every
   * few tensors so that a server keeps answering; once, whoever asks. `isCancelled` stops it between tensors.
   */
  loadWeights(opts: { isCancelled?: () => boolean } = {}): Promise<void> {
    this.weights ??= this.makeWeights(opts.isCancelled);
    return this.weights;
  }

  private async makeWeights(isCancelled?: () => boolean): Promise<void> {
    const all = params(this.graph);
    let sinceTurn = 0;
    // a turn first: what the caller sends before (a server's answer with the layer tree) goes out now
    await new Promise((resolve) => setImmediate(resolve));
    for (const p of all) {
      if (isCancelled?.()) fail('CANCELLED', `opening ${path.basename(this.graph.source)} was cancelled`);
      void p.tensor;
      sinceTurn += 4 * p.size;
      if (sinceTurn >= TURN_BYTES) {
        sinceTurn = 0;
        await new Promise((resolve) => setImmediate(resolve));
      }
    }
    retainPrepared(all.map((p) => p.tensor));
    for (const f of this.files) f.close();
    this.weightsMade = true;
    if (this.merged) this.makeMerged();
  }

  /** the merged graph's own parameters, made from the model's (and kept in the addon's layout, as those) */
  private makeMerged(): void {
    retainPrepared(params(this.merged!).map((p) => p.tensor));
  }

  /**
   * The graph with batch-norm merged into the preceding linear layers (Zennit's canonizer); its parameters are
   * made with the weights.
   */
  canonical(): Graph {
    if (!this.merged) {
      this.merged = mergeBatchNorm(this.graph);
      if (this.weightsMade) this.makeMerged();
    }
    return this.merged;
  }

  /** Layers whose parameters hold NaN or ±Infinity (looked at once, on first ask). */
  nonFiniteLayers(): string[] {
    this.nonFinite ??= this.graph.nodes
      .filter((n) => Object.values(n.params).some((p) => !tf.tidy(() => tf.all(tf.isFinite(p.tensor)).dataSync()[0])))
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
    releasePrepared(loadedTensors(params(this.graph)));
    if (this.merged) releasePrepared(loadedTensors(params(this.merged)));
    if (this.merged && this.merged !== this.graph) for (const p of ownedParams(this.merged, this.graph)) p.dispose();
    disposeGraph(this.graph);
    for (const f of this.files) f.close();
  }
}

/** Opens a model and makes its weights: ready to run. */
export async function loadModel(file: string): Promise<Model> {
  const model = await openModel(file);
  try {
    await model.loadWeights();
  } catch (e) {
    model.dispose();
    throw e;
  }
  return model;
}

/**
 * Opens an ONNX file or a TF.js model.json: its graph with every shape known and checked, and its layer tree. An
 * ONNX model's weights stay in the file until `loadWeights`.
 */
export async function openModel(file: string): Promise<Model> {
  if (!fs.existsSync(file)) fail('FILE_NOT_FOUND', `${file}: file not found`);
  if (fs.statSync(file).isDirectory()) {
    const json = path.join(file, 'model.json');
    if (!fs.existsSync(json)) fail('NOT_A_MODEL', `${file}: a folder without model.json`);
    file = json;
  }
  let graph: Graph;
  const files: OpenFile[] = [];
  if (file.toLowerCase().endsWith('.json')) {
    graph = await loadTfjsLayers(file);
  } else {
    const onnxFile = OpenFile.open(file, FILE_LIMITS.onnx);
    try {
      const loaded = loadOnnx(onnxFile, file);
      graph = loaded.graph;
      files.push(onnxFile, ...loaded.external);
    } catch (e) {
      onnxFile.close();
      throw e;
    }
  }
  try {
    checkInputValues(graph.input.shape, `${file}'s input [${graph.input.shape}]`);
    if (graph.nodes.some((n) => !n.shape)) inferShapes(graph);
  } catch (e) {
    disposeGraph(graph);
    for (const f of files) f.close();
    throw e;
  }
  return new Model(graph, files);
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
