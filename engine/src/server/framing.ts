import { Transform, type TransformCallback } from 'stream';

const HEADER = Buffer.from('Content-Length:');
const SEPARATOR = Buffer.from('\r\n\r\n');
/** Headers longer than this are no headers (the scan gives up on them and resynchronises). */
const MAX_HEADER = 1024;
/** The largest message the server takes: a batch of inline inputs fits many times over. */
export const MAX_FRAME_BYTES = 512 * 2 ** 20;

/**
 * Sits in front of vscode-jsonrpc's reader and passes on only well-framed messages (`Content-Length` header,
 * blank line, body) of at most `maxFrame` bytes. Bytes that cannot start a frame are dropped up to the next
 * `Content-Length:`, so garbage on stdin costs one report, not the connection: the stock reader stalls after a
 * malformed header, and waits forever for a body that was announced as 2 GB. A body is collected chunk by chunk
 * and joined once, so a large message costs time in proportion to its size.
 */
export class FrameGuard extends Transform {
  /** bytes not yet part of a frame: a header being read, or garbage */
  private head = Buffer.alloc(0);
  /** the frame being collected: its chunks so far and the bytes it still needs */
  private body?: { chunks: Buffer[]; missing: number };

  constructor(
    private readonly onDrop: (bytes: number, why: string) => void,
    private readonly maxFrame = MAX_FRAME_BYTES,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    let rest: Buffer | undefined = chunk;
    while (rest?.length) rest = this.body ? this.collect(rest) : this.scan(rest);
    done();
  }

  /** Adds to the frame being collected; returns what follows it, if the chunk completes it. */
  private collect(chunk: Buffer): Buffer | undefined {
    const body = this.body!;
    const used = Math.min(chunk.length, body.missing);
    body.chunks.push(chunk.subarray(0, used));
    body.missing -= used;
    if (body.missing > 0) return undefined;
    this.push(Buffer.concat(body.chunks));
    this.body = undefined;
    return chunk.subarray(used);
  }

  /** Looks for the next header; once one is whole, starts collecting its frame. Returns the bytes after it. */
  private scan(chunk: Buffer): Buffer | undefined {
    this.head = this.head.length ? Buffer.concat([this.head, chunk]) : chunk;
    for (;;) {
      const start = this.head.indexOf(HEADER);
      if (start < 0) {
        // keep a tail that may be the beginning of a header split across chunks
        const keep = Math.min(this.head.length, HEADER.length - 1);
        if (this.head.length > keep) this.onDrop(this.head.length - keep, 'not a JSON-RPC frame');
        this.head = this.head.subarray(this.head.length - keep);
        return undefined;
      }
      if (start > 0) {
        this.onDrop(start, 'not a JSON-RPC frame');
        this.head = this.head.subarray(start);
      }
      const end = this.head.indexOf(SEPARATOR);
      if (end < 0) {
        if (this.head.length <= MAX_HEADER) return undefined;
        this.skip(1, 'a header without its blank line');
        continue;
      }
      const headers = this.head.subarray(0, end).toString('ascii').split('\r\n');
      const length = Number(/^Content-Length:\s*(\d+)\s*$/i.exec(headers[0])?.[1]);
      if (!Number.isSafeInteger(length) || !headers.slice(1).every((h) => /^[A-Za-z-]+:/.test(h))) {
        this.skip(1, 'a malformed header');
        continue;
      }
      if (length > this.maxFrame) {
        // its body is dropped as garbage up to the next header
        this.skip(end + SEPARATOR.length, `a message of ${length} bytes (at most ${this.maxFrame})`);
        continue;
      }
      const frame = this.head.subarray(0, end + SEPARATOR.length);
      const after = this.head.subarray(end + SEPARATOR.length);
      this.head = Buffer.alloc(0);
      this.body = { chunks: [frame], missing: length };
      return after.length ? after : length === 0 ? this.collect(after) : undefined;
    }
  }

  private skip(bytes: number, why: string) {
    this.onDrop(bytes, why);
    this.head = this.head.subarray(bytes);
  }
}
