/**
 * float32 values on the wire: base64 of their little-endian bytes in JSON (the engine's answers), or an ArrayBuffer
 * of them where the channel carries one as it is (the extension host's messages to its webviews). One codec for the
 * engine (Node), the extension host and the webviews (browsers): Buffer where there is one, atob/btoa otherwise.
 */
// Node's Buffer and the browsers' atob/btoa, as much of them as this uses: the protocol compiles for every runtime
interface BufferLike extends Uint8Array {
  toString(encoding?: 'base64'): string;
}
const NodeBuffer = (
  globalThis as {
    Buffer?: {
      from(data: ArrayBufferLike | string, offsetOrEncoding?: number | 'base64', length?: number): BufferLike;
    };
  }
).Buffer;
declare function atob(data: string): string;
declare function btoa(data: string): string;

export function encodeBytes(bytes: Uint8Array): string {
  if (NodeBuffer) return NodeBuffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
  let bin = '';
  // in chunks: String.fromCharCode takes its arguments on the stack
  for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(bin);
}

/** Bytes on the wire: base64, or an ArrayBuffer of them. */
export type WireBytes = string | ArrayBuffer;

export function decodeBytes(data: WireBytes): Uint8Array {
  if (typeof data !== 'string') return new Uint8Array(data);
  const b64 = data;
  if (NodeBuffer) return NodeBuffer.from(b64, 'base64');
  const bin = atob(b64);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return bytes;
}

export function encodeFloats(values: Float32Array): string {
  return encodeBytes(new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
}

export function decodeFloats(data: WireBytes): Float32Array {
  if (typeof data !== 'string') return new Float32Array(data);
  const bytes = decodeBytes(data);
  // copied into a buffer of its own: Node's may be a pooled slab at any offset
  const out = new Float32Array(bytes.byteLength >> 2);
  new Uint8Array(out.buffer).set(bytes.subarray(0, out.byteLength));
  return out;
}

/** Bytes that `data` holds: base64's from its length alone. */
export function wireBytes(data: WireBytes): number {
  if (typeof data !== 'string') return data.byteLength;
  return Math.floor((data.length * 3) / 4) - (data.endsWith('==') ? 2 : data.endsWith('=') ? 1 : 0);
}

/** base64's bytes as an ArrayBuffer of their own. */
export function toArrayBuffer(b64: string): ArrayBuffer {
  const bytes = decodeBytes(b64);
  return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
}
