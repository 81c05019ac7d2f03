import { Transform, type TransformCallback } from 'stream';

const HEADER = Buffer.from('Content-Length:');
const SEPARATOR = Buffer.from('\r\n\r\n');

/**
 * Sits in front of vscode-jsonrpc's reader and passes on only well-framed messages (`Content-Length` header,
 * blank line, body). Bytes that cannot start a frame are dropped up to the next `Content-Length:`, so garbage on
 * stdin costs one error report, not the connection: the stock reader stalls after a malformed header.
 */
export class FrameGuard extends Transform {
  private buffer = Buffer.alloc(0);

  constructor(private readonly onGarbage: (bytes: number) => void) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.buffer = Buffer.concat([this.buffer, chunk]);
    for (;;) {
      const start = this.buffer.indexOf(HEADER);
      if (start < 0) {
        // keep a tail that may be the beginning of a header split across chunks
        const keep = Math.min(this.buffer.length, HEADER.length - 1);
        if (this.buffer.length > keep) this.onGarbage(this.buffer.length - keep);
        this.buffer = this.buffer.subarray(this.buffer.length - keep);
        break;
      }
      if (start > 0) {
        this.onGarbage(start);
        this.buffer = this.buffer.subarray(start);
      }
      const end = this.buffer.indexOf(SEPARATOR);
      if (end < 0) break;
      const headers = this.buffer.subarray(0, end).toString('ascii').split('\r\n');
      const length = Number(/^Content-Length:\s*(\d+)\s*$/i.exec(headers[0])?.[1]);
      const valid = Number.isInteger(length) && headers.slice(1).every((h) => /^[A-Za-z-]+:/.test(h));
      if (!valid) {
        this.onGarbage(1);
        this.buffer = this.buffer.subarray(1);
        continue;
      }
      const total = end + SEPARATOR.length + length;
      if (this.buffer.length < total) break;
      this.push(this.buffer.subarray(0, total));
      this.buffer = this.buffer.subarray(total);
    }
    done();
  }
}
