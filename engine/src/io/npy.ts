import * as fs from 'fs';
import { FILE_LIMITS, readRegularFile } from './files';
import { fail } from '../errors';
import { type NdArray, size } from '../ndarray';

/** A dense float32 array with its shape: what .npy files hold and what the engine hands out. */
const MAGIC = '\x93NUMPY';

/** Parses a .npy buffer (v1–v3, C order, float32/float64/int little-endian) into float32. */
export function parseNpy(buf: Buffer, name = 'buffer'): NdArray {
  if (buf.length < 10 || buf.toString('latin1', 0, 6) !== MAGIC) fail('BAD_INPUT', `${name}: not a .npy file`);
  const major = buf[6];
  const headerLen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const start = major === 1 ? 10 : 12;
  const header = buf.toString('latin1', start, start + headerLen);
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order':\s*True/.test(header);
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
  if (!descr || shapeText === undefined) fail('BAD_INPUT', `${name}: malformed .npy header`);
  if (fortran) fail('BAD_INPUT', `${name}: Fortran-ordered .npy is not supported`);
  const shape = shapeText
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map(Number);
  const n = size(shape);
  const body = buf.subarray(start + headerLen);
  const readers: Record<string, [number, (o: number) => number]> = {
    '<f4': [4, (o) => body.readFloatLE(o)],
    '<f8': [8, (o) => body.readDoubleLE(o)],
    '<i4': [4, (o) => body.readInt32LE(o)],
    '<i8': [8, (o) => Number(body.readBigInt64LE(o))],
    '|u1': [1, (o) => body.readUInt8(o)],
  };
  const reader = readers[descr];
  if (!reader) fail('BAD_INPUT', `${name}: unsupported .npy dtype ${descr}`);
  const [width, read] = reader;
  if (body.length < n * width)
    fail('BAD_INPUT', `${name}: .npy data is truncated (${body.length} of ${n * width} bytes)`);
  const data = new Float32Array(n);
  if (descr === '<f4') {
    data.set(new Float32Array(body.buffer.slice(body.byteOffset, body.byteOffset + n * 4)));
  } else {
    for (let i = 0; i < n; i++) data[i] = read(i * width);
  }
  return { shape, data };
}

export async function readNpy(path: string): Promise<NdArray> {
  return parseNpy(await readRegularFile(path, FILE_LIMITS.npy), path);
}

/** Serialises float32 data as a version-1 .npy buffer. */
export function encodeNpy(array: NdArray): Buffer {
  const shape = array.shape.length === 1 ? `(${array.shape[0]},)` : `(${array.shape.join(', ')})`;
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': ${shape}, }`;
  const unpadded = 10 + header.length + 1;
  header += ' '.repeat((64 - (unpadded % 64)) % 64) + '\n';
  const head = Buffer.alloc(10);
  head.write(MAGIC, 0, 'latin1');
  head[6] = 1;
  head[7] = 0;
  head.writeUInt16LE(header.length, 8);
  const data = Buffer.from(array.data.buffer, array.data.byteOffset, array.data.byteLength);
  return Buffer.concat([head, Buffer.from(header, 'latin1'), data]);
}

export function writeNpy(path: string, array: NdArray): void {
  fs.writeFileSync(path, encodeNpy(array));
}
