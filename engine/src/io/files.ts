/**
 * Every file the engine reads goes through here: it must be a regular file (not a device, a FIFO or a folder —
 * `/dev/zero` or a FIFO would read forever or block), and no larger than its format allows, checked before reading.
 * Reads are asynchronous, so that the server keeps answering (stats, cancel) while a large model file comes in.
 */
import * as fs from 'fs';
import { EngineError, fail } from '../errors';

const MiB = 2 ** 20;
/** Upper bounds per kind of file: what a real file of that kind can need, not what fits in memory. */
export const FILE_LIMITS = {
  /** protobuf's own limit on a message */
  onnx: 2048 * MiB,
  tfjsManifest: 64 * MiB,
  tfjsWeights: 2048 * MiB,
  npy: 2048 * MiB,
  image: 256 * MiB,
  /** a list of condition sets (--conditions) */
  conditions: 16 * MiB,
  /** a composite file (--composite FILE.json) */
  composite: 4 * MiB,
} as const;

/** The file's bytes; `what` names it in errors ("weight file "x.bin"", or the path itself). */
export async function readRegularFile(file: string, maxBytes: number, what = file): Promise<Buffer> {
  let stat: fs.Stats;
  try {
    stat = await fs.promises.stat(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new EngineError('FILE_NOT_FOUND', `${what}: file not found`);
    throw new EngineError('FILE_NOT_FOUND', `${what}: cannot read (${code ?? e})`);
  }
  if (!stat.isFile()) fail('BAD_INPUT', `${what}: not a regular file`);
  if (stat.size > maxBytes)
    fail(
      'BAD_INPUT',
      `${what}: ${stat.size} bytes, more than the ${Math.round(maxBytes / MiB)} MiB such a file may have`,
    );
  try {
    return await fs.promises.readFile(file);
  } catch (e) {
    throw new EngineError('FILE_NOT_FOUND', `${what}: cannot read (${(e as NodeJS.ErrnoException).code ?? e})`);
  }
}
