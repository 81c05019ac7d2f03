/** .npy reading and writing, and Zennit's colour maps / heatmap normalisation. */
import { after, before, describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { EngineError, type EngineErrorCode } from '../../engine/src/errors';
import { heatmapPng } from '../../engine/src/io/image';
import { encodeNpy, parseNpy, readNpy, writeNpy } from '../../engine/src/io/npy';
import { bounds, channelSum, colorize, palette, paletteIndex, rankChannels } from '../../engine/src/shared/colormap';
import type { ChannelOrder } from '../../protocol/names';

async function assertEngineError(fn: () => unknown, code: EngineErrorCode, ...patterns: string[]): Promise<void> {
  await assert.rejects(
    async () => fn(),
    (e: unknown) => {
      assert.ok(e instanceof EngineError, `expected an EngineError, got ${String(e)}`);
      assert.equal(e.code, code, e.message);
      for (const p of patterns) assert.ok(e.message.includes(p), `message "${e.message}" lacks "${p}"`);
      return true;
    },
  );
}

/** A version-1 (or 2) .npy buffer with any dtype, laid out as numpy.save does (header padded to 64 bytes). */
function npyBuffer(descr: string, shape: string, body: Buffer, major = 1, fortran = false): Buffer {
  const pre = major === 1 ? 10 : 12;
  let header = `{'descr': '${descr}', 'fortran_order': ${fortran ? 'True' : 'False'}, 'shape': ${shape}, }`;
  header += ' '.repeat((64 - ((pre + header.length + 1) % 64)) % 64) + '\n';
  const head = Buffer.alloc(pre);
  head.write('\x93NUMPY', 0, 'latin1');
  head[6] = major;
  if (major === 1) head.writeUInt16LE(header.length, 8);
  else head.writeUInt32LE(header.length, 8);
  return Buffer.concat([head, Buffer.from(header, 'latin1'), body]);
}

describe('npy', () => {
  let dir: string;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rl-npy-'));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  // numpy.save(np.array([[0, 1.5, -2], [3.25, 1e-3, -7e5]], dtype='<f4')), byte for byte
  const NUMPY_2x3 = Buffer.from(
    '934e554d5059010076007b276465736372273a20273c6634272c2027666f727472616e5f6f72646572273a2046616c73652c202773686170' +
      '65273a2028322c2033292c207d20202020202020202020202020202020202020202020202020202020202020202020202020202020202020' +
      '2020202020202020202020202020200a000000000000c03f000000c0000050406f12833a00e62ac9',
    'hex',
  );

  test('encodeNpy writes what numpy.save writes', async () => {
    const data = Float32Array.from([0, 1.5, -2, 3.25, 1e-3, -7e5]);
    const buf = encodeNpy({ shape: [2, 3], data });
    assert.equal(buf.toString('hex'), NUMPY_2x3.toString('hex'));
    // header + preamble is a multiple of 64 bytes
    assert.equal((10 + buf.readUInt16LE(8)) % 64, 0);
  });

  test('parseNpy reads a numpy file', async () => {
    const a = parseNpy(NUMPY_2x3);
    assert.deepEqual(a.shape, [2, 3]);
    assert.deepEqual(Array.from(a.data), Array.from(Float32Array.from([0, 1.5, -2, 3.25, 1e-3, -7e5])));
  });

  test('round trip of 1-D, 4-D and 0-D arrays', async () => {
    const oneD = { shape: [5], data: Float32Array.from([1, -2.5, 3e-8, Infinity, -0]) };
    const back1 = parseNpy(encodeNpy(oneD));
    assert.deepEqual(back1.shape, [5]);
    assert.deepEqual(Array.from(back1.data), Array.from(oneD.data));
    assert.ok(Object.is(back1.data[4], -0), 'the sign of −0 survives');
    assert.match(encodeNpy(oneD).toString('latin1', 10, 80), /'shape': \(5,\)/);

    const n = 2 * 3 * 4 * 5;
    const fourD = {
      shape: [2, 3, 4, 5],
      data: Float32Array.from({ length: n }, (_, i) => Math.fround(Math.sin(i) * 100)),
    };
    const back4 = parseNpy(encodeNpy(fourD));
    assert.deepEqual(back4.shape, [2, 3, 4, 5]);
    assert.deepEqual(Array.from(back4.data), Array.from(fourD.data));

    const scalar = parseNpy(encodeNpy({ shape: [], data: Float32Array.from([42]) }));
    assert.deepEqual(scalar.shape, []);
    assert.deepEqual(Array.from(scalar.data), [42]);
  });

  test('a Float32Array view with an offset is written from its own bytes', async () => {
    const backing = Float32Array.from([9, 9, 1, 2, 3, 9]);
    const back = parseNpy(encodeNpy({ shape: [3], data: backing.subarray(2, 5) }));
    assert.deepEqual(Array.from(back.data), [1, 2, 3]);
  });

  test('float64 input is converted to float32', async () => {
    const f64 = Float64Array.from([0.1, -2.5, 1e10, 3]);
    const a = parseNpy(npyBuffer('<f8', '(4,)', Buffer.from(f64.buffer)));
    assert.deepEqual(a.shape, [4]);
    assert.ok(a.data instanceof Float32Array);
    assert.deepEqual(Array.from(a.data), [Math.fround(0.1), -2.5, Math.fround(1e10), 3]);
  });

  test('int64 input (and the version-2 header) is converted to float32', async () => {
    const i64 = BigInt64Array.from([-3n, 0n, 7n, 2n ** 40n]);
    for (const major of [1, 2]) {
      const a = parseNpy(npyBuffer('<i8', '(2, 2)', Buffer.from(i64.buffer), major));
      assert.deepEqual(a.shape, [2, 2]);
      assert.deepEqual(Array.from(a.data), [-3, 0, 7, 2 ** 40]);
    }
    const i32 = parseNpy(npyBuffer('<i4', '(3,)', Buffer.from(Int32Array.from([-1, 5, 2 ** 30]).buffer)));
    assert.deepEqual(Array.from(i32.data), [-1, 5, 2 ** 30]);
    const u8 = parseNpy(npyBuffer('|u1', '(2,)', Buffer.from([0, 255])));
    assert.deepEqual(Array.from(u8.data), [0, 255]);
  });

  test('truncated data → BAD_INPUT', async () => {
    const full = encodeNpy({ shape: [2, 3], data: new Float32Array(6) });
    await assertEngineError(
      () => parseNpy(full.subarray(0, full.length - 1), 'cut.npy'),
      'BAD_INPUT',
      'cut.npy',
      'truncated',
      '23 of 24 bytes',
    );
    const f64 = npyBuffer('<f8', '(4,)', Buffer.alloc(24));
    await assertEngineError(() => parseNpy(f64, 'short64.npy'), 'BAD_INPUT', 'truncated', '24 of 32 bytes');
  });

  test('bad magic, bad header, unsupported dtype or order → BAD_INPUT', async () => {
    const good = encodeNpy({ shape: [1], data: Float32Array.from([1]) });
    const bad = Buffer.from(good);
    bad[1] = 'X'.charCodeAt(0); // \x93XUMPY
    await assertEngineError(() => parseNpy(bad, 'bad.npy'), 'BAD_INPUT', 'bad.npy', 'not a .npy file');
    await assertEngineError(() => parseNpy(Buffer.from('PK\x03\x04'), 'zip.npy'), 'BAD_INPUT', 'not a .npy file');
    await assertEngineError(
      () => parseNpy(npyBuffer('<f2', '(1,)', Buffer.alloc(2)), 'half.npy'),
      'BAD_INPUT',
      'unsupported .npy dtype <f2',
    );
    await assertEngineError(
      () => parseNpy(npyBuffer('<f4', '(1,)', Buffer.alloc(4), 1, true), 'f.npy'),
      'BAD_INPUT',
      'Fortran',
    );
    const noShape = Buffer.from(good.toString('latin1').replace("'shape'", "'shope'"), 'latin1');
    await assertEngineError(() => parseNpy(noShape, 'hdr.npy'), 'BAD_INPUT', 'malformed .npy header');
  });

  test('writeNpy / readNpy through a file; a missing file → FILE_NOT_FOUND', async () => {
    const file = path.join(dir, 'a.npy');
    writeNpy(file, { shape: [3, 1], data: Float32Array.from([7, 8, 9]) });
    const a = await readNpy(file);
    assert.deepEqual(a.shape, [3, 1]);
    assert.deepEqual(Array.from(a.data), [7, 8, 9]);
    const missing = path.join(dir, 'missing.npy');
    await assertEngineError(async () => await readNpy(missing), 'FILE_NOT_FOUND', missing, 'file not found');
  });
});

describe('colour maps', () => {
  const rgb = (pal: Uint8Array, i: number) => Array.from(pal.subarray(3 * i, 3 * i + 3));

  test('bwr: blue at 0, white at 0x80, red at 255', async () => {
    const p = palette('bwr');
    assert.equal(p.length, 256 * 3);
    assert.deepEqual(rgb(p, 0), [0, 0, 255]);
    assert.deepEqual(rgb(p, 0x80), [255, 255, 255]);
    assert.deepEqual(rgb(p, 255), [255, 0, 0]);
    // monotone in between: blue → white raises red and green, white → red lowers green and blue
    for (let i = 1; i <= 0x80; i++) assert.ok(p[3 * i] >= p[3 * (i - 1)] && p[3 * i + 2] === 255, `entry ${i}`);
    for (let i = 0x81; i < 256; i++) assert.ok(p[3 * i + 1] <= p[3 * (i - 1) + 1] && p[3 * i] === 255, `entry ${i}`);
  });

  test('coldnhot: cyan at 0, blue at 0x40, black at 0x80, white at 255', async () => {
    const p = palette('coldnhot');
    assert.deepEqual(rgb(p, 0), [0, 255, 255]);
    assert.deepEqual(rgb(p, 0x40), [0, 0, 255]);
    assert.deepEqual(rgb(p, 0x80), [0, 0, 0]);
    assert.deepEqual(rgb(p, 255), [255, 255, 255]);
  });

  test('a colour-map source string works like a name', async () => {
    assert.deepEqual(Array.from(palette('000,fff')), Array.from(palette('gray')));
    const gray = palette('gray');
    for (const i of [0, 1, 77, 128, 254, 255]) assert.deepEqual(rgb(gray, i), [i, i, i]);
    assert.throws(() => palette('f00'), /at least two colours/);
    assert.throws(() => palette('f00,zzz'), /bad colour "zzz"/);
  });

  test("palettes equal Zennit's ColorMap.palette(), which truncates", async () => {
    // Zennit (cmap.py): unindexed colours sit at int(...) positions, values are (x·255).round(12).astype(uint8),
    // i.e. truncated. Reference entries computed with Zennit's algorithm in numpy:
    //   bwr[1] = (1, 1, 255)        bwr[64] = (127, 127, 255)     bwr[129] = (255, 252, 252)
    //   coldnhot[170] = (255, 0, 0) (the red node sits at int(128·2/3 + 255/3) = 170)
    //   coldnhot[212] = (255, 255, 0) (yellow at int(128/3 + 255·2/3) = 212)
    //   cold[127] = (0, 0, 255)     (blue at int(255/2) = 127)
    const bwr = palette('bwr');
    const coldnhot = palette('coldnhot');
    const cold = palette('cold');
    assert.deepEqual(
      {
        'bwr[1]': rgb(bwr, 1),
        'bwr[64]': rgb(bwr, 64),
        'bwr[129]': rgb(bwr, 129),
        'coldnhot[170]': rgb(coldnhot, 170),
        'coldnhot[212]': rgb(coldnhot, 212),
        'cold[127]': rgb(cold, 127),
      },
      {
        'bwr[1]': [1, 1, 255],
        'bwr[64]': [127, 127, 255],
        'bwr[129]': [255, 252, 252],
        'coldnhot[170]': [255, 0, 0],
        'coldnhot[212]': [255, 255, 0],
        'cold[127]': [0, 0, 255],
      },
    );
  });
});

describe('heatmap normalisation', () => {
  test('bounds: symmetric is ±max|x|, otherwise [min, max]', async () => {
    const v = Float32Array.from([-1, 0.5, 3, -2]);
    assert.deepEqual(bounds(v, true), { min: -3, max: 3 });
    assert.deepEqual(bounds(v, false), { min: -2, max: 3 });
    assert.deepEqual(bounds([-5, 1], true), { min: -5, max: 5 });
    assert.deepEqual(bounds([], true), { min: 0, max: 0 });
  });

  test('paletteIndex: (x − min)/(max − min)·255, clipped and truncated', async () => {
    const sym = { min: -3, max: 3 };
    assert.equal(paletteIndex(0, sym), 127); // 0.5·255 = 127.5 → 127
    assert.equal(paletteIndex(-3, sym), 0);
    assert.equal(paletteIndex(3, sym), 255);
    assert.equal(paletteIndex(1, sym), 170); // (4/6)·255 = 170
    assert.equal(paletteIndex(1.01, sym), 170); // 170.425 → 170
    assert.equal(paletteIndex(99, sym), 255);
    assert.equal(paletteIndex(-99, sym), 0);
    const asym = { min: -2, max: 3 };
    assert.equal(paletteIndex(0, asym), 102); // (2/5)·255 = 102
    assert.equal(paletteIndex(0.5, { min: 0.5, max: 0.5 }), 127); // degenerate range: the middle
  });

  test('colorize maps values through the palette into RGBA', async () => {
    const px = colorize([-3, 0, 3], 'bwr', { min: -3, max: 3 });
    const p = palette('bwr');
    assert.deepEqual(Array.from(px), [0, 0, 255, 255, ...rgb3(p, 127), 255, 255, 0, 0, 255]);
    function rgb3(pal: Uint8Array, i: number) {
      return Array.from(pal.subarray(3 * i, 3 * i + 3));
    }
  });

  // Batch of 2, 3 channels, 2×2 spatial. value(b, c, y, x) = 100·b + 10·c + (2y + x) · (c === 1 ? −1 : 1)
  const value = (b: number, c: number, y: number, x: number) => 100 * b + 10 * c + (2 * y + x) * (c === 1 ? -1 : 1);
  const nchw: number[] = [];
  const nhwc: number[] = [];
  for (let b = 0; b < 2; b++)
    for (let c = 0; c < 3; c++) for (let y = 0; y < 2; y++) for (let x = 0; x < 2; x++) nchw.push(value(b, c, y, x));
  for (let b = 0; b < 2; b++)
    for (let y = 0; y < 2; y++) for (let x = 0; x < 2; x++) for (let c = 0; c < 3; c++) nhwc.push(value(b, c, y, x));

  test('channelSum gives the same map for NCHW and NHWC', async () => {
    for (const row of [0, 1]) {
      // Σ_c value = 300·b + 30 + p·(1 − 1 + 1) = 300·b + 30 + p for p = 2y + x
      const expected = [0, 1, 2, 3].map((p) => 300 * row + 30 + p);
      const a = channelSum([2, 3, 2, 2], nchw, row, 'NCHW');
      const b = channelSum([2, 2, 2, 3], nhwc, row, 'NHWC');
      assert.deepEqual([a.height, a.width], [2, 2]);
      assert.deepEqual([b.height, b.width], [2, 2]);
      assert.deepEqual(Array.from(a.values), expected);
      assert.deepEqual(Array.from(b.values), expected);
    }
    // 2-D tensors become a 1 × F strip of the row
    const strip = channelSum([2, 3], [1, 2, 3, 4, 5, 6], 1, 'NCHW');
    assert.deepEqual([strip.height, strip.width, Array.from(strip.values)], [1, 3, [4, 5, 6]]);
    // 3-D tensors (tokens × features) are one map; other ranks one row
    const tokens = channelSum([1, 2, 3], [1, 2, 3, 4, 5, 6], 0, 'NCHW');
    assert.deepEqual([tokens.height, tokens.width, Array.from(tokens.values)], [2, 3, [1, 2, 3, 4, 5, 6]]);
    const deep = channelSum([2, 1, 1, 1, 2], [1, 2, 3, 4], 1, 'NCHW');
    assert.deepEqual([deep.height, deep.width, Array.from(deep.values)], [1, 2, [3, 4]]);
  });

  test('topChannels orders by summed |relevance|, ties by channel index', async () => {
    // channel c of the 1×3×2×2 tensor: c0 = [1, −1, 1, −1] (sum 0, abs 4), c1 = [−5, 0, 0, 0] (−5, 5),
    // c2 = [2, 2, 0, 0] (4, 4)
    const ch = [
      [1, -1, 1, -1],
      [-5, 0, 0, 0],
      [2, 2, 0, 0],
    ];
    const first = ch.flat();
    const last: number[] = [];
    for (let p = 0; p < 4; p++) for (let c = 0; c < 3; c++) last.push(ch[c][p]);
    const expected = [
      { channel: 1, sum: -5, abs: 5 },
      { channel: 0, sum: 0, abs: 4 },
      { channel: 2, sum: 4, abs: 4 },
    ];
    assert.deepEqual(rankChannels([1, 3, 2, 2], first, 0, 'NCHW').slice(0, 3), expected);
    assert.deepEqual(rankChannels([1, 2, 2, 3], last, 0, 'NHWC').slice(0, 3), expected);
    assert.deepEqual(rankChannels([1, 3, 2, 2], first, 0, 'NCHW').slice(0, 1), expected.slice(0, 1));
    // second batch row is read from its own offset
    assert.deepEqual(
      rankChannels([2, 3, 2, 2], [...first.map(() => 0), ...first], 1, 'NCHW').slice(0, 1),
      expected.slice(0, 1),
    );
    assert.deepEqual(rankChannels([2, 3], [1, 2, 3, 4, 5, 6], 0, 'NCHW').slice(0, 2), []);
    // the pager's other orders: by the signed sum either way, and by index
    const order = (o: ChannelOrder) => rankChannels([1, 2, 2, 3], last, 0, 'NHWC', o).map((c) => c.channel);
    assert.deepEqual(order('abs'), [1, 0, 2]);
    assert.deepEqual(order('positive'), [2, 0, 1]);
    assert.deepEqual(order('negative'), [1, 0, 2]);
    assert.deepEqual(order('index'), [0, 1, 2]);
  });
});

describe('heatmap PNGs', () => {
  test('a dense layer (one row) is drawn as a strip an eighth as tall as it is wide; a map keeps its shape', async () => {
    const size = (png: Buffer) => [png.readUInt32BE(16), png.readUInt32BE(20)];
    const dense = { shape: [1, 32], data: Float32Array.from({ length: 32 }, (_, i) => i - 16) };
    assert.deepEqual(size(heatmapPng(dense, 0, 'NCHW', 'bwr', 4)), [128, 16]);
    const map = { shape: [1, 2, 3, 5], data: new Float32Array(30).fill(1) };
    assert.deepEqual(size(heatmapPng(map, 0, 'NCHW', 'bwr', 2)), [10, 6]);
  });
});
