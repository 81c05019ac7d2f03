import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import { EngineError, fail } from '../errors';
import type { Graph, GraphNode } from '../graph/graph';
import { assignModules } from '../lrp/modules';
import { denseSizes, forward, outputShape, setRunBatch } from '../graph/ops';
import { type ConstTensor, constTensor, ONNX_OPS, type NodeSpec, type OnnxNode } from './onnx-ops';
import { onnx } from './onnx-proto';
import { type FileRange, scanOnnx } from './onnx-scan';
import { FILE_LIMITS, OpenFile } from './files';
import { size } from '../ndarray';

/** The ONNX opsets the op table follows: the README's promise. */
const MIN_OPSET = 11;
const MAX_OPSET = 17;

const FLOAT = 1;
/** ONNX's TensorProto.DataType names, for messages */
const ONNX_TYPE_NAMES: Record<number, string> = {
  2: 'uint8',
  3: 'int8',
  5: 'int16',
  6: 'int32',
  7: 'int64',
  8: 'string',
  9: 'bool',
  10: 'float16',
};
const UINT8 = 2;
const INT8 = 3;
const INT32 = 6;
const INT64 = 7;
const BOOL = 9;
const DOUBLE = 11;

/** Bytes per element of the data types the engine reads, and the dtype their values become. */
const DATA_TYPES: Record<number, { bytes: number; dtype: ConstTensor['dtype'] }> = {
  [FLOAT]: { bytes: 4, dtype: 'float32' },
  [DOUBLE]: { bytes: 8, dtype: 'float32' },
  [INT64]: { bytes: 8, dtype: 'int32' },
  [INT32]: { bytes: 4, dtype: 'int32' },
  [INT8]: { bytes: 1, dtype: 'int32' },
  [UINT8]: { bytes: 1, dtype: 'int32' },
  [BOOL]: { bytes: 1, dtype: 'bool' },
};

/** TensorProto.DataLocation: the values are in another file */
const EXTERNAL = 1;

/**
 * The files beside an ONNX model that hold its initializers' values (external data: how PyTorch writes a model over
 * protobuf's 2 GB, and what its dynamo exporter's `external_data=True`, the default, asks for), each opened once. A
 * location must name a file inside the model's folder.
 */
class ExternalData {
  private readonly files = new Map<string, OpenFile>();
  private readonly root: string;

  constructor(private readonly source: string) {
    this.root = path.resolve(path.dirname(source));
  }

  /** The initializer's file and byte range (ONNX's external_data: location, offset, length), checked. */
  locate(t: onnx.TensorProto.$Properties, where: string): { file: OpenFile; range: FileRange } {
    const entries = new Map((t.externalData ?? []).map((e) => [e.key ?? '', e.value ?? '']));
    const what = `${where}: tensor "${t.name}"`;
    const location = entries.get('location') ?? fail('NOT_A_MODEL', `${what} has external data without a location`);
    const file = path.resolve(this.root, location);
    if (path.isAbsolute(location) || !file.startsWith(this.root + path.sep))
      fail('NOT_A_MODEL', `${what}: its external data "${location}" is outside the model's folder`);
    const number = (key: string, dflt: number) => {
      const v = entries.get(key);
      if (v === undefined) return dflt;
      return /^\d+$/.test(v) && Number.isSafeInteger(Number(v))
        ? Number(v)
        : fail('NOT_A_MODEL', `${what}: its external data's ${key} is "${v}", not a byte count`);
    };
    const bytes = size((t.dims ?? []).map(Number)) * (DATA_TYPES[t.dataType ?? 0]?.bytes ?? 0);
    const range = { offset: number('offset', 0), length: number('length', bytes) };
    let open = this.files.get(file);
    if (!open) {
      open = OpenFile.open(file, FILE_LIMITS.onnxExternalData, `${this.source}'s external data "${location}"`);
      this.files.set(file, open);
    }
    if (range.offset + range.length > open.size)
      fail(
        'NOT_A_MODEL',
        `${what}: its bytes ${range.offset}–${range.offset + range.length} run past the end of "${location}" ` +
          `(${open.size} bytes)`,
      );
    return { file: open, range };
  }

  /** the files opened, for whoever reads the weights later (and closes them) */
  opened(): OpenFile[] {
    return [...this.files.values()];
  }
}

/**
 * A tensor's values, checked against its dimensions. Raw data the scan left in the file (`inFile`) is read each
 * time the values are asked for, into memory of its own: a weight's values are wanted once, when its parameter's
 * tensor is made.
 */
function tensorValues(
  t: onnx.TensorProto.$Properties,
  where: string,
  inFile?: { file: OpenFile; range: FileRange },
): ConstTensor {
  const dims: number[] = (t.dims ?? []).map(Number);
  const n = size(dims);
  // what a tensor of these dims would need: refused before any allocation
  if (dims.some((d) => !Number.isSafeInteger(d) || d < 0) || n > 2 ** 31 - 1)
    fail('NOT_A_MODEL', `${where}: tensor "${t.name}" has impossible dimensions [${dims}]`);
  // an initializer's external data is located by the loader (ExternalData): elsewhere it is not read
  if (t.dataLocation === EXTERNAL && !inFile)
    fail('NOT_A_MODEL', `${where}: tensor "${t.name}" keeps its values in another file, which only initializers may`);
  const dataType = t.dataType ?? 0;
  const type =
    DATA_TYPES[dataType] ?? fail('NOT_A_MODEL', `${where}: tensor "${t.name}" has unsupported data type ${dataType}`);
  const rawLength = inFile ? inFile.range.length : (t.rawData?.length ?? 0);
  if (rawLength > 0 && rawLength !== n * type.bytes)
    fail('NOT_A_MODEL', `${where}: tensor "${t.name}" has ${rawLength} bytes, expected ${n * type.bytes}`);
  const stored = [t.floatData, t.doubleData, t.int64Data, t.int32Data].find((d) => d?.length) ?? [];
  if (rawLength === 0 && stored.length !== n)
    fail('NOT_A_MODEL', `${where}: tensor "${t.name}" has ${stored.length} values for dimensions [${dims}]`);
  if (inFile) {
    const { file, range } = inFile;
    return {
      dims,
      dtype: type.dtype,
      ...(dataType === FLOAT
        ? {
            fill: (out: Float32Array) =>
              file.readInto(range.offset, new Uint8Array(out.buffer, out.byteOffset, range.length)),
          }
        : {}),
      get values() {
        const bytes = file.read(range.offset, range.length);
        // fresh memory, aligned: float32 values are a view of it
        return dataType === FLOAT
          ? new Float32Array(bytes.buffer, 0, n)
          : decodeRaw(dataType, Buffer.from(bytes.buffer, 0, bytes.length), n);
      },
    };
  }
  const raw = t.rawData?.length ? Buffer.from(t.rawData.buffer, t.rawData.byteOffset, t.rawData.length) : undefined;
  return { dims, dtype: type.dtype, values: raw ? decodeRaw(dataType, raw, n) : decodeStored(dataType, t) };
}

/** Little-endian raw data as the engine's values (int64 clamped to int32, double to float32). */
function decodeRaw(dataType: number, raw: Buffer, n: number): ConstTensor['values'] {
  switch (dataType) {
    case FLOAT:
      // a copy: protobuf's bytes need not be aligned for a Float32Array
      return new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.length));
    case DOUBLE:
      return Float32Array.from({ length: n }, (_, i) => raw.readDoubleLE(i * 8));
    case INT64:
      return Int32Array.from({ length: n }, (_, i) => clampInt(Number(raw.readBigInt64LE(i * 8))));
    case INT32:
      return Int32Array.from({ length: n }, (_, i) => raw.readInt32LE(i * 4));
    case INT8:
      return Int32Array.from({ length: n }, (_, i) => raw.readInt8(i));
    case UINT8:
      return Int32Array.from(raw);
    default:
      return Uint8Array.from(raw);
  }
}

/** Values stored in the typed fields (float_data, int64_data, …) instead of raw data. */
function decodeStored(dataType: number, t: onnx.TensorProto.$Properties): ConstTensor['values'] {
  switch (dataType) {
    case FLOAT:
      return Float32Array.from(t.floatData ?? []);
    case DOUBLE:
      return Float32Array.from(t.doubleData ?? []);
    case INT64:
      return Int32Array.from((t.int64Data ?? []).map((v) => clampInt(Number(v))));
    case BOOL:
      return Uint8Array.from(t.int32Data ?? []);
    default:
      return Int32Array.from(t.int32Data ?? []);
  }
}

/** int64 "infinities" (Slice ends of INT64_MAX) as the largest int32. */
const clampInt = (v: number) => Math.max(-2147483648, Math.min(2147483647, v));

/** Ops whose result, element by element, moves input elements around (so batch marks move with them). */
const STRUCTURAL = new Set(['gather', 'reshape', 'concat', 'slice', 'cast', 'identity', 'expand', 'transpose']);
/** Ops that scale a batch-marked element by a constant (`batch · heads`). */
const SCALING = new Set(['mul', 'div']);

/** Runs f, disposing every tensor it made (f returns plain data). */
function scoped<T>(f: () => T): T {
  tf.engine().startScope();
  try {
    return f();
  } finally {
    tf.engine().endScope();
  }
}

function readConst(t: tf.Tensor): ConstTensor {
  const dtype = t.dtype === 'bool' ? 'bool' : t.dtype === 'int32' ? 'int32' : 'float32';
  const data = t.dataSync();
  const values =
    dtype === 'bool' ? Uint8Array.from(data) : dtype === 'int32' ? Int32Array.from(data) : Float32Array.from(data);
  return { dims: [...t.shape], values, dtype };
}

/** The model's graph, its opset, and its one graph input (batch 1 where the batch is dynamic). */
function readHeader(model: onnx.ModelProto.$Properties, source: string) {
  const g = model.graph;
  if (!g || !g.node || g.node.length === 0) fail('NOT_A_MODEL', `${source}: not an ONNX model (no graph nodes)`);
  const opset = Number((model.opsetImport ?? []).find((o) => !o.domain || o.domain === 'ai.onnx')?.version ?? 0);
  // the opsets the op table follows (what PyTorch 1.13–2.x exports by default); others are refused, not guessed at
  if (!opset) fail('NOT_A_MODEL', `${source}: the model declares no ONNX opset (its opset_import is empty)`);
  if (opset < MIN_OPSET || opset > MAX_OPSET)
    fail(
      'NOT_A_MODEL',
      `${source}: ONNX opset ${opset} is not supported (${MIN_OPSET}–${MAX_OPSET} are: export with opset_version=17)`,
    );
  const initializers = new Set((g.initializer ?? []).map((i) => i.name));
  const graphInputs = (g.input ?? []).filter((i) => !initializers.has(i.name));
  if (graphInputs.length !== 1) fail('NOT_A_MODEL', `${source}: expected one graph input, found ${graphInputs.length}`);
  const input = graphInputs[0];
  // relevance flows into real-valued inputs: token ids or masks (int64, bool) have no relevance of their own
  // 0 (UNDEFINED) when the file does not say
  const elemType = input.type?.tensorType?.elemType ?? 0;
  if (elemType !== 0 && elemType !== FLOAT && elemType !== DOUBLE)
    fail(
      'UNSUPPORTED_OP',
      `${source}: input "${input.name}" holds ${ONNX_TYPE_NAMES[elemType] ?? `type ${elemType}`} values; ` +
        'the engine attributes to float inputs',
    );
  const dims = input.type?.tensorType?.shape?.dim ?? [];
  // int64 fields decode as Long objects; 0 (or none) means a symbolic dimension
  const values = dims.map((d) => Number(d.dimValue ?? 0));
  const dynamicBatch = values.length > 0 && !values[0];
  const shape = values.map((v, i) => (v ? v : i === 0 ? 1 : NaN));
  if (shape.some((d) => !Number.isFinite(d)))
    fail('NOT_A_MODEL', `${source}: input "${input.name}" has symbolic dimensions besides the batch`);
  if ((g.output ?? []).length !== 1)
    fail('NOT_A_MODEL', `${source}: expected one graph output, found ${(g.output ?? []).length}`);
  return { g, opset, input: { name: input.name ?? '', shape, dynamicBatch } };
}

/**
 * Turns ONNX nodes into engine nodes through the op table, folding constants as they come and knowing every
 * output's shape as it is added.
 */
class NodeConverter {
  /** constant values: initializers and everything computed from constants alone */
  readonly consts = new Map<string, ConstTensor>();
  /** data values: their shapes (batch 1 where the batch is dynamic) */
  readonly shapes = new Map<string, number[]>();
  /** Identity/Dropout on data: the value they pass on */
  private readonly aliases = new Map<string, string>();
  readonly nodes: GraphNode[] = [];

  constructor(
    private readonly source: string,
    private readonly opset: number,
  ) {}

  resolve(name: string): string {
    return this.aliases.get(name) ?? name;
  }

  dispose(): void {
    for (const n of this.nodes) for (const t of Object.values(n.params)) t.dispose();
  }

  convert(proto: onnx.NodeProto.$Properties, index: number): void {
    const opType = proto.opType ?? '';
    const name = proto.name || `${opType}_${index}`;
    const where = `${this.source}: node "${name}" (${opType}, opset ${this.opset || 'unknown'})`;
    if (proto.domain && proto.domain !== 'ai.onnx')
      fail('UNSUPPORTED_OP', `${where}: operator domain "${proto.domain}" is not supported`);
    const attrs = new Map((proto.attribute ?? []).map((a) => [a.name ?? '', a]));
    const inputs = (proto.input ?? []).map((s) => (s ? this.resolve(s) : ''));
    const outputs = proto.output ?? [];
    for (const i of inputs)
      if (i && !this.consts.has(i) && !this.shapes.has(i))
        fail('NOT_A_MODEL', `${where}: input "${i}" is not produced by any earlier node`);
    for (const o of outputs)
      if (this.consts.has(o) || this.shapes.has(o) || this.aliases.has(o))
        fail('NOT_A_MODEL', `${where}: output "${o}" is already produced by an earlier node or an initializer`);
    const node: OnnxNode = {
      name,
      opType,
      inputs,
      outputs,
      attrs,
      opset: this.opset,
      where,
      consts: this.consts,
      shapes: this.shapes,
      tensorValues: (t) => tensorValues(t, where),
    };
    // own keys only: an op type like `constructor` is unsupported, not Object's function
    const convert = Object.hasOwn(ONNX_OPS, opType)
      ? ONNX_OPS[opType]
      : fail('UNSUPPORTED_OP', `${where}: unsupported operator ${opType}`);
    const specs = convert(node);
    if (specs === 'alias') {
      this.aliases.set(outputs[0], inputs[0]);
      return;
    }
    for (const spec of Array.isArray(specs) ? specs : [specs]) this.add(spec, node);
  }

  /** Adds a node, or folds it into a constant when all its inputs are constants. */
  private add(spec: NodeSpec, n: OnnxNode): void {
    if ('constant' in spec) {
      this.consts.set(spec.output, spec.constant);
      return;
    }
    const node: GraphNode = { id: '', name: n.name, sourceOp: n.opType, attrs: {}, params: {}, ...spec };
    if (node.inputs.every((i) => this.consts.has(i))) {
      this.consts.set(node.output, this.fold(node, n.where));
      for (const t of Object.values(node.params)) t.dispose();
      return;
    }
    const constInput = node.inputs.find((i) => this.consts.has(i));
    if (constInput)
      fail('UNSUPPORTED_OP', `${n.where}: input "${constInput}" is a constant where the engine needs a computed value`);
    this.nodes.push(node);
    node.shape = this.inferShape(node, n.where);
    this.shapes.set(node.output, node.shape);
  }

  private fold(node: GraphNode, where: string): ConstTensor {
    const inputs = node.inputs.map((i) => this.consts.get(i)!);
    const run = (ts: tf.Tensor[]) => scoped(() => readConst(forward(node, ts)));
    let out: ConstTensor;
    try {
      out = run(inputs.map(constTensor));
    } catch (e) {
      throw new EngineError(
        'SHAPE_MISMATCH',
        `${where}: cannot compute it on its constant inputs: ${(e as Error).message}`,
      );
    }
    // batch marks follow the elements they mark
    if (inputs.some((c) => c.batch?.some(Boolean)) && (STRUCTURAL.has(node.op) || SCALING.has(node.op))) {
      const marks = inputs.map((c) =>
        tf.tensor(
          Int32Array.from((c.batch ?? new Array<boolean>(c.values.length).fill(false)).map(Number)),
          c.dims,
          'int32',
        ),
      );
      const marked = SCALING.has(node.op)
        ? scoped(() => readConst(tf.greater(tf.add(marks[0], marks[1] ?? tf.scalar(0, 'int32')), 0)))
        : scoped(() => readConst(forward({ ...node, op: node.op === 'cast' ? 'identity' : node.op }, marks)));
      tf.dispose(marks);
      out.batch = Array.from(marked.values, (v) => v !== 0);
    }
    return out;
  }

  private inferShape(node: GraphNode, where: string): number[] {
    const inputs = node.inputs.map((i) => this.shapes.get(i)!);
    try {
      return outputShape(node, inputs);
    } catch (e) {
      if (e instanceof EngineError) throw e;
      throw new EngineError(
        'SHAPE_MISMATCH',
        `${where}: cannot run on input shape ${inputs.map((s) => `[${s}]`).join(', ')}: ${(e as Error).message}`,
      );
    }
  }
}

/**
 * Loads an ONNX model as PyTorch exports it (opset 11–17) into the engine's graph, in the model's own NCHW layout.
 * Nodes go through the op table (`ONNX_OPS`); constants are folded as they come (initializers behind Identity,
 * Constant/ConstantOfShape, shape arithmetic on static shapes), every node's output shape is known as it is
 * added, and fusions (MatMul + Add → dense, Pad + AveragePool) are passes of their own afterwards.
 */
export function loadOnnx(file: OpenFile, source: string): { graph: Graph; external: OpenFile[] } {
  const { model, inFile } = scanOnnx(file.fd, file.size, source);
  const { g, opset, input } = readHeader(model, source);
  const converter = new NodeConverter(source, opset);
  const external = new ExternalData(source);
  try {
    for (const init of g.initializer ?? []) {
      const where = `${source}: initializer`;
      const range = inFile.get(init);
      const located = init.dataLocation === EXTERNAL ? external.locate(init, where) : range && { file, range };
      converter.consts.set(init.name ?? '', tensorValues(init, where, located));
    }
    converter.shapes.set(input.name, input.shape);
    setRunBatch(1);
    g.node!.forEach((n, index) => converter.convert(n, index));
    const outputName = g.output![0].name ?? '';
    const output = converter.resolve(outputName);
    if (!converter.shapes.has(output)) {
      const constant = converter.consts.has(output) ? ' (it is a constant)' : '';
      fail('NOT_A_MODEL', `${source}: graph output "${outputName}" is not produced by any node${constant}`);
    }
    const nodes = fuseDenseBias(fusePadPool(converter.nodes));
    assignModules(nodes, output);
    const { dynamicBatch } = input;
    const metadata = Object.fromEntries((model.metadataProps ?? []).map((p) => [p.key ?? '', p.value ?? '']));
    const graph: Graph = {
      source,
      format: 'onnx',
      layout: 'NCHW',
      input: { name: input.name, shape: input.shape, ...(dynamicBatch ? { dynamicBatch } : {}) },
      output,
      nodes,
      ...(Object.keys(metadata).length ? { metadata } : {}),
    };
    return { graph, external: external.opened() };
  } catch (e) {
    converter.dispose();
    for (const f of external.opened()) f.close();
    throw e;
  }
}

/**
 * Fuses each node with the node producing its first input, when it is that value's only consumer: `merge` folds
 * one into the other and returns the node that is then redundant, or undefined to leave the pair as it is.
 */
function fusePairs(
  nodes: GraphNode[],
  merge: (producer: GraphNode, consumer: GraphNode) => GraphNode | undefined,
): GraphNode[] {
  const consumers = new Map<string, number>();
  for (const n of nodes) for (const i of n.inputs) consumers.set(i, (consumers.get(i) ?? 0) + 1);
  const byOutput = new Map(nodes.map((n) => [n.output, n]));
  const removed = new Set<GraphNode>();
  for (const consumer of nodes) {
    const producer = byOutput.get(consumer.inputs[0]);
    if (!producer || removed.has(producer) || consumers.get(producer.output) !== 1) continue;
    const redundant = merge(producer, consumer);
    if (redundant) removed.add(redundant);
  }
  return nodes.filter((n) => !removed.has(n));
}

/** PyTorch's Linear on N-D inputs as MatMul + Add: the bias joins the dense node. */
function fuseDenseBias(nodes: GraphNode[]): GraphNode[] {
  return fusePairs(nodes, (dense, add) => {
    const bias = add.params.input1 ?? add.params.input0;
    if (
      add.op !== 'add' ||
      add.inputs.length !== 1 ||
      !bias ||
      bias.rank !== 1 ||
      dense.op !== 'dense' ||
      dense.params.bias
    )
      return undefined;
    if (bias.shape[0] !== denseSizes(dense, dense.params.weight.shape)[1]) return undefined;
    dense.params.bias = bias;
    dense.output = add.output;
    dense.shape = add.shape;
    return add;
  });
}

/** A zero Pad of the spatial axes in front of an average pool (PyTorch's padded AvgPool2d) joins the pool. */
function fusePadPool(nodes: GraphNode[]): GraphNode[] {
  return fusePairs(nodes, (pad, pool) => {
    if (pool.op !== 'avgPool' || pad.op !== 'pad' || (pad.attrs.value ?? 0) !== 0) return undefined;
    const pp = pad.attrs.paddings!;
    const p = pool.attrs.pool!;
    const ownPads = p.pads.flat().some((v) => v > 0);
    if (
      pp.length !== 4 ||
      !pp[0].every((v) => v === 0) ||
      !pp[1].every((v) => v === 0) ||
      pp.flat().some((v) => v < 0) ||
      p.ceilMode ||
      (ownPads && !p.countIncludePad)
    )
      return undefined;
    pool.attrs = {
      ...pool.attrs,
      pool: {
        ...p,
        pads: [
          [p.pads[0][0] + pp[2][0], p.pads[0][1] + pp[2][1]],
          [p.pads[1][0] + pp[3][0], p.pads[1][1] + pp[3][1]],
        ],
        countIncludePad: true,
      },
    };
    pool.inputs = pad.inputs;
    return pad;
  });
}
