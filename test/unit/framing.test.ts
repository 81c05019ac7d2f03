/** The server's frame guard: whole messages pass, garbage and oversized messages are dropped, the stream goes on. */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { FrameGuard } from '../../engine/src/server/framing';

const frame = (body: string) => `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;

/** Feeds the chunks through a guard; returns the frames it passed on (joined) and what it dropped. */
async function guard(chunks: (string | Buffer)[], maxFrame?: number) {
  const drops: string[] = [];
  const g = new FrameGuard((n, why) => drops.push(`${n}: ${why}`), maxFrame);
  const out: Buffer[] = [];
  g.on('data', (d: Buffer) => out.push(d));
  for (const c of chunks) g.write(typeof c === 'string' ? Buffer.from(c) : c);
  g.end();
  await new Promise((resolve) => g.on('end', resolve));
  return { passed: Buffer.concat(out).toString(), drops };
}

test('frames split anywhere across chunks pass on whole; garbage between them is dropped', async () => {
  const a = frame('{"jsonrpc":"2.0","id":1,"method":"a"}');
  const b = frame('{"jsonrpc":"2.0","id":2,"method":"b"}');
  const text = `noise${a}more noise\r\n\r\n${b}`;
  for (const size of [1, 3, 7, 64, text.length]) {
    const chunks = Array.from({ length: Math.ceil(text.length / size) }, (_, i) =>
      text.slice(i * size, (i + 1) * size),
    );
    const { passed, drops } = await guard(chunks);
    assert.equal(passed, a + b, `chunks of ${size}`);
    assert.ok(drops.length > 0, 'the garbage was reported');
  }
});

test('a message announced larger than the limit is dropped, and the next one still passes', async () => {
  const big = 'Content-Length: 2147483648\r\n\r\n{"jsonrpc":"2.0","id":1,"method":"x"}';
  const next = frame('{"jsonrpc":"2.0","id":2,"method":"stats"}');
  const { passed, drops } = await guard([big, next], 1024);
  assert.equal(passed, next);
  assert.match(drops[0], /a message of 2147483648 bytes \(at most 1024\)/);
});

test('a large message in many small chunks arrives intact', async () => {
  const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'm', params: { data: 'x'.repeat(20 * 2 ** 20) } });
  const bytes = Buffer.from(frame(body));
  const chunks = Array.from({ length: Math.ceil(bytes.length / 65536) }, (_, i) =>
    bytes.subarray(i * 65536, (i + 1) * 65536),
  );
  const { passed, drops } = await guard(chunks);
  assert.equal(passed.length, bytes.length);
  assert.equal(passed, bytes.toString());
  assert.deepEqual(drops, []);
});

test('an empty body is a frame too', async () => {
  assert.equal((await guard(['Content-Length: 0\r\n\r\n'])).passed, 'Content-Length: 0\r\n\r\n');
});
