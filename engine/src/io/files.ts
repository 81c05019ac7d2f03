/**
 * Every file the engine reads goes through here: it must be a regular file (not a device, a FIFO or a folder —
 * `/dev/zero` or a FIFO would read forever or block), and no larger than its format allows, checked before reading.
 * Reads are asynchronous, so that the server keeps answering (stats, cancel) while a large model file comes in.
 * Files written into folders that may hold earlier results (an analysis resumes there) never follow a link.
 */
import * as fs from 'fs';
import { EngineError, fail } from '../errors';

const MiB = 2 ** 20;
/** Upper bounds per kind of file: what a real file of that kind can need, not what fits in memory. */
export const FILE_LIMITS = {
  /** protobuf's own limit on a message */
  onnx: 2048 * MiB,
  /** an ONNX model's weights beside it (external data): what the cpu backend could hold on a large machine */
  onnxExternalData: 256 * 1024 * MiB,
  tfjsManifest: 64 * MiB,
  tfjsWeights: 2048 * MiB,
  npy: 2048 * MiB,
  image: 256 * MiB,
  /** a list of condition sets (--conditions) */
  conditions: 16 * MiB,
  /** a composite file (--composite FILE.json) */
  composite: 4 * MiB,
  /** class names beside a data set (classes.json) */
  classNames: 16 * MiB,
} as const;

/** The file's bytes; `what` names it in errors ("weight file "x.bin"", or the path itself). */
export async function readRegularFile(file: string, maxBytes: number, what = file): Promise<Buffer> {
  checkRegular(await statOf(file, what), maxBytes, what);
  try {
    return await fs.promises.readFile(file);
  } catch (e) {
    throw new EngineError('FILE_NOT_FOUND', `${what}: cannot read (${(e as NodeJS.ErrnoException).code ?? e})`);
  }
}

async function statOf(file: string, what: string): Promise<fs.Stats> {
  try {
    return await fs.promises.stat(file);
  } catch (e) {
    throw unreadable(e, what);
  }
}

function statSyncOf(file: string, what: string): fs.Stats {
  try {
    return fs.statSync(file);
  } catch (e) {
    throw unreadable(e, what);
  }
}

function unreadable(e: unknown, what: string): EngineError {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return new EngineError('FILE_NOT_FOUND', `${what}: file not found`);
  return new EngineError('FILE_NOT_FOUND', `${what}: cannot read (${code ?? e})`);
}

function checkRegular(stat: fs.Stats, maxBytes: number, what: string): void {
  if (!stat.isFile()) fail('BAD_INPUT', `${what}: not a regular file`);
  if (stat.size > maxBytes)
    fail(
      'BAD_INPUT',
      `${what}: ${stat.size} bytes, more than the ${Math.round(maxBytes / MiB)} MiB such a file may have`,
    );
}

/**
 * A regular file held open to read parts of it later (a model's weights, when their tensors are made). A read
 * after the file changed on disk (a model exported again to the same path) is refused rather than mixed in.
 */
export class OpenFile {
  private constructor(
    readonly fd: number,
    readonly size: number,
    private readonly mtimeMs: number,
    readonly what: string,
  ) {}

  static open(file: string, maxBytes: number, what = file): OpenFile {
    checkRegular(statSyncOf(file, what), maxBytes, what);
    let fd: number;
    try {
      fd = fs.openSync(file, 'r');
    } catch (e) {
      throw new EngineError('FILE_NOT_FOUND', `${what}: cannot read (${(e as NodeJS.ErrnoException).code ?? e})`);
    }
    const stat = fs.fstatSync(fd);
    // what was checked is what is open (not a file swapped in meanwhile)
    try {
      checkRegular(stat, maxBytes, what);
    } catch (e) {
      fs.closeSync(fd);
      throw e;
    }
    return new OpenFile(fd, stat.size, stat.mtimeMs, what);
  }

  /** bytes [offset, offset + length) in fresh memory of their own (aligned for any typed array) */
  read(offset: number, length: number): Uint8Array {
    const out = new Uint8Array(new ArrayBuffer(length));
    this.readInto(offset, out);
    return out;
  }

  /** fills `into` with the bytes from `offset` on */
  readInto(offset: number, into: Uint8Array): void {
    const stat = fs.fstatSync(this.fd);
    if (stat.size !== this.size || stat.mtimeMs !== this.mtimeMs)
      fail('NOT_A_MODEL', `${this.what} changed on disk since it was opened: open it again`);
    for (let done = 0; done < into.length;) {
      const n = fs.readSync(this.fd, into, done, into.length - done, offset + done);
      if (n === 0) fail('NOT_A_MODEL', `${this.what} ends early: it changed on disk since it was opened`);
      done += n;
    }
  }

  close(): void {
    try {
      fs.closeSync(this.fd);
    } catch {
      // closed already
    }
  }
}

/**
 * File names for layer ids: characters a file name cannot safely hold become `_`, and ids that would then collide
 * (`d:1` and `d_1`) get `-2`, `-3`, … in the order given, so no layer's file overwrites another's.
 */
export function layerFileNames(ids: readonly string[]): Map<string, string> {
  const names = new Map<string, string>();
  const taken = new Set<string>();
  for (const id of ids) {
    const base = id.replace(/[^A-Za-z0-9._-]/g, '_') || '_';
    let name = base;
    for (let k = 2; taken.has(name.toLowerCase()); k++) name = `${base}-${k}`;
    // case-insensitive file systems: `A` and `a` are one file
    taken.add(name.toLowerCase());
    names.set(id, name);
  }
  return names;
}

/**
 * Writes a file without following a link at its place (O_NOFOLLOW): an analysis writes into an existing folder
 * (it resumes there), where a planted link must not redirect it.
 */
export function writeNoFollow(file: string, data: string | Uint8Array): void {
  const { O_WRONLY, O_CREAT, O_TRUNC, O_NOFOLLOW } = fs.constants;
  let fd: number;
  try {
    fd = fs.openSync(file, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, 0o644);
  } catch (e) {
    return fail('BAD_ARGUMENT', `cannot write ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  try {
    fs.writeFileSync(fd, data);
  } finally {
    fs.closeSync(fd);
  }
}

/** A folder to write into: made when missing, refused when it is a link or not a folder. */
export function realFolder(dir: string): string {
  try {
    fs.mkdirSync(dir, { recursive: true });
  } catch (e) {
    return fail(
      'BAD_ARGUMENT',
      `cannot make the folder ${dir}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
    );
  }
  const st = fs.lstatSync(dir);
  if (st.isSymbolicLink() || !st.isDirectory()) fail('BAD_ARGUMENT', `${dir} is not a folder (a link or a file)`);
  return dir;
}
