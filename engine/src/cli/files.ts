import * as fs from 'fs';
import * as path from 'path';
import { fail } from '../errors';

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
 * An output folder written as a whole: files go into a fresh folder beside it, which then replaces it, so no file
 * is written through a link planted in the old folder, and a run stopped midway leaves the old results intact.
 * Made before the run, so an unusable `--out` fails at once.
 */
export class OutputFolder {
  /** where the files are written until `commit` */
  readonly dir: string;
  private readonly target: string;

  constructor(out: string) {
    this.target = path.resolve(out);
    let existing: fs.Stats | undefined;
    try {
      existing = fs.lstatSync(this.target);
    } catch {
      // a new folder
    }
    if (existing?.isSymbolicLink()) fail('BAD_ARGUMENT', `--out ${out}: a symbolic link; give the folder itself`);
    if (existing && !existing.isDirectory()) fail('BAD_ARGUMENT', `--out ${out}: exists and is not a folder`);
    let dir: string;
    try {
      // the folders above it are made as needed, as `mkdir -p` would
      fs.mkdirSync(path.dirname(this.target), { recursive: true });
      dir = fs.mkdtempSync(path.join(path.dirname(this.target), `.${path.basename(this.target)}.partial-`));
    } catch (e) {
      fail('BAD_ARGUMENT', `--out ${out}: cannot write there (${(e as NodeJS.ErrnoException).code ?? e})`);
    }
    // mkdtemp makes it private (0700): the results get the permissions any new folder gets
    fs.chmodSync(dir, 0o777 & ~process.umask());
    this.dir = dir;
  }

  /** Puts the written folder in place of the old one. */
  commit(): void {
    const old = fs.existsSync(this.target) ? `${this.dir}.old` : undefined;
    if (old) fs.renameSync(this.target, old);
    fs.renameSync(this.dir, this.target);
    if (old) fs.rmSync(old, { recursive: true, force: true });
  }

  /** Drops what was written (the run failed). */
  discard(): void {
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
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
  fs.mkdirSync(dir, { recursive: true });
  const st = fs.lstatSync(dir);
  if (st.isSymbolicLink() || !st.isDirectory()) fail('BAD_ARGUMENT', `${dir} is not a folder (a link or a file)`);
  return dir;
}
