/**
 * float32 values on the wire: base64 of their little-endian bytes. One codec for the engine (Node), the extension
 * host and the webviews (browsers): Buffer where there is one, atob/btoa otherwise.
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

export function decodeBytes(b64: string): Uint8Array {
  if (NodeBuffer) return NodeBuffer.from(b64, 'base64');
  const bin = atob(b64);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return bytes;
}

export function encodeFloats(values: Float32Array): string {
  return encodeBytes(new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
}

export function decodeFloats(b64: string): Float32Array {
  const bytes = decodeBytes(b64);
  // copied into a buffer of its own: Node's may be a pooled slab at any offset
  const out = new Float32Array(bytes.byteLength >> 2);
  new Uint8Array(out.buffer).set(bytes.subarray(0, out.byteLength));
  return out;
}

/** Bytes that `b64` decodes to, from its length alone. */
export function base64Bytes(b64: string): number {
  return Math.floor((b64.length * 3) / 4) - (b64.endsWith('==') ? 2 : b64.endsWith('=') ? 1 : 0);
}
