/**
 * Reads an ONNX file's structure without its weights: every message is decoded (by protobufjs) except the large
 * `raw_data` of the initializers, which stays in the file as a byte range until its tensor is made. Opening VGG16's
 * 553 MB export this way reads a few hundred kilobytes.
 */
import * as fs from 'fs';
import { EngineError } from '../errors';
import { onnx } from './onnx-proto';

/** Where a tensor's raw bytes are in the file. */
export interface FileRange {
  offset: number;
  length: number;
}

/** Raw data at least this long stays in the file; shorter raw data (shape constants, small biases) is read now. */
const IN_FILE_BYTES = 64 * 1024;

// field numbers in onnx.proto
const MODEL_GRAPH = 7;
const GRAPH_INITIALIZER = 5;
const TENSOR_RAW_DATA = 9;
const LENGTH_DELIMITED = 2;

/** Reads small pieces of a file through one window, so that walking a message's fields costs few system calls. */
class WindowReader {
  private window = Buffer.alloc(64 * 1024);
  private start = 0;
  private end = 0;

  constructor(
    private readonly fd: number,
    readonly size: number,
  ) {}

  /** bytes [pos, pos + length), copied */
  bytes(pos: number, length: number): Buffer {
    if (pos < this.start || pos + length > this.end) {
      if (length > this.window.length) {
        const out = Buffer.alloc(length);
        readFully(this.fd, out, pos);
        return out;
      }
      this.start = pos;
      this.end = Math.min(this.size, pos + this.window.length);
      readFully(this.fd, this.window.subarray(0, this.end - this.start), pos);
      if (pos + length > this.end) throw new Error('a field runs past the end of the file');
    }
    return Buffer.from(this.window.subarray(pos - this.start, pos - this.start + length));
  }

  /** the varint at `pos` and where it ends */
  varint(pos: number): [value: number, end: number] {
    const b = this.bytes(pos, Math.min(10, this.size - pos));
    let value = 0;
    for (let i = 0; i < b.length; i++) {
      value += (b[i] & 0x7f) * 2 ** (7 * i);
      if (b[i] < 0x80) return [value, pos + i + 1];
    }
    throw new Error('a malformed varint');
  }
}

function readFully(fd: number, into: Uint8Array, pos: number): void {
  for (let done = 0; done < into.length;) {
    const n = fs.readSync(fd, into, done, into.length - done, pos + done);
    if (n === 0) throw new Error('the file ends early');
    done += n;
  }
}

interface Field {
  field: number;
  wire: number;
  /** where the field's tag starts */
  at: number;
  /** where its value (after a length-delimited field's length) starts */
  value: number;
  end: number;
}

/** The fields of the message in [start, end), without reading their values. */
function* fields(r: WindowReader, start: number, end: number): Generator<Field> {
  for (let pos = start; pos < end;) {
    const [tag, afterTag] = r.varint(pos);
    const field = Math.floor(tag / 8);
    const wire = tag % 8;
    let value = afterTag;
    let fieldEnd: number;
    if (wire === 0) fieldEnd = r.varint(afterTag)[1];
    else if (wire === 1) fieldEnd = afterTag + 8;
    else if (wire === 5) fieldEnd = afterTag + 4;
    else if (wire === LENGTH_DELIMITED) {
      const [length, afterLength] = r.varint(afterTag);
      value = afterLength;
      fieldEnd = afterLength + length;
    } else throw new Error(`wire type ${wire} at byte ${pos}`);
    if (field === 0 || fieldEnd > end) throw new Error(`a field at byte ${pos} runs past its message`);
    yield { field, wire, at: pos, value, end: fieldEnd };
    pos = fieldEnd;
  }
}

/**
 * The model without its initializers' large raw data, and where that data is in the file. Fields are decoded
 * from the concatenation of the kept fields: protobuf reads concatenated fields as one message.
 */
export function scanOnnx(
  fd: number,
  size: number,
  source: string,
): { model: onnx.ModelProto.$Properties; inFile: Map<onnx.TensorProto.$Properties, FileRange> } {
  const r = new WindowReader(fd, size);
  const inFile = new Map<onnx.TensorProto.$Properties, FileRange>();
  try {
    const modelParts: Buffer[] = [];
    let graph: onnx.GraphProto.$Properties | undefined;
    for (const f of fields(r, 0, size)) {
      if (f.field !== MODEL_GRAPH || f.wire !== LENGTH_DELIMITED) {
        modelParts.push(r.bytes(f.at, f.end - f.at));
        continue;
      }
      // protobuf would merge a second graph field into the first; no exporter writes one
      if (graph) throw new Error('the model has two graph fields');
      const graphParts: Buffer[] = [];
      const initializers: onnx.TensorProto.$Properties[] = [];
      for (const g of fields(r, f.value, f.end)) {
        if (g.field !== GRAPH_INITIALIZER || g.wire !== LENGTH_DELIMITED) {
          graphParts.push(r.bytes(g.at, g.end - g.at));
          continue;
        }
        const tensorParts: Buffer[] = [];
        let raw: FileRange | undefined;
        for (const t of fields(r, g.value, g.end)) {
          if (t.field === TENSOR_RAW_DATA && t.wire === LENGTH_DELIMITED && t.end - t.value >= IN_FILE_BYTES)
            raw = { offset: t.value, length: t.end - t.value };
          else tensorParts.push(r.bytes(t.at, t.end - t.at));
        }
        const tensor = onnx.TensorProto.decode(Buffer.concat(tensorParts));
        if (raw) inFile.set(tensor, raw);
        initializers.push(tensor);
      }
      graph = onnx.GraphProto.decode(Buffer.concat(graphParts));
      graph.initializer = initializers;
    }
    const model: onnx.ModelProto.$Properties = onnx.ModelProto.decode(Buffer.concat(modelParts));
    if (graph) model.graph = graph;
    return { model, inFile };
  } catch (e) {
    throw new EngineError('NOT_A_MODEL', `${source}: not an ONNX model (${(e as Error).message})`);
  }
}
