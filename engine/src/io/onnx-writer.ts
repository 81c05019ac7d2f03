import { onnx } from './onnx-proto';

/**
 * Writes small ONNX models (the example model's export, test fixtures), named the way PyTorch's exporter names
 * them.
 */
export interface OnnxTensor {
  name: string;
  dims: number[];
  /** float32 values, or int64 values when `int64` is set */
  values: ArrayLike<number>;
  int64?: boolean;
}

export interface OnnxNodeSpec {
  name: string;
  opType: string;
  inputs: string[];
  outputs: string[];
  attributes?: Record<string, number | number[] | string>;
}

export interface OnnxModelSpec {
  /** elemType: ONNX's TensorProto.DataType (1, float32, when not given) */
  input: { name: string; dims: number[]; elemType?: number };
  output: { name: string; dims: number[] };
  nodes: OnnxNodeSpec[];
  initializers: OnnxTensor[];
  opset?: number;
  /** metadata_props */
  metadata?: Record<string, string>;
}

const ATTR_FLOAT = 1;
const ATTR_INT = 2;
const ATTR_STRING = 3;
const ATTR_INTS = 7;

function attribute(name: string, v: number | number[] | string) {
  if (typeof v === 'string') return { name, type: ATTR_STRING, s: Buffer.from(v) };
  if (Array.isArray(v)) return { name, type: ATTR_INTS, ints: v };
  return Number.isInteger(v) ? { name, type: ATTR_INT, i: v } : { name, type: ATTR_FLOAT, f: v };
}

function tensor(t: OnnxTensor) {
  if (t.int64) {
    const raw = Buffer.alloc(t.values.length * 8);
    for (let i = 0; i < t.values.length; i++) raw.writeBigInt64LE(BigInt(t.values[i]), i * 8);
    return { name: t.name, dims: t.dims, dataType: 7, rawData: raw };
  }
  const f = Float32Array.from(t.values);
  return { name: t.name, dims: t.dims, dataType: 1, rawData: Buffer.from(f.buffer) };
}

const valueInfo = (v: { name: string; dims: number[]; elemType?: number }) => ({
  name: v.name,
  type: { tensorType: { elemType: v.elemType ?? 1, shape: { dim: v.dims.map((d) => ({ dimValue: d })) } } },
});

export function encodeOnnx(spec: OnnxModelSpec): Uint8Array {
  const message = onnx.ModelProto.fromObject({
    irVersion: 8,
    producerName: 'relevance-lens',
    opsetImport: [{ domain: '', version: spec.opset ?? 13 }],
    metadataProps: Object.entries(spec.metadata ?? {}).map(([key, value]) => ({ key, value })),
    graph: {
      name: 'main_graph',
      node: spec.nodes.map((n) => ({
        name: n.name,
        opType: n.opType,
        input: n.inputs,
        output: n.outputs,
        attribute: Object.entries(n.attributes ?? {}).map(([k, v]) => attribute(k, v)),
      })),
      initializer: spec.initializers.map(tensor),
      input: [valueInfo(spec.input)],
      output: [valueInfo(spec.output)],
    },
  });
  return onnx.ModelProto.encode(message).finish();
}
