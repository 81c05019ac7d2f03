import * as fs from 'fs';
import * as path from 'path';
import { fail } from '../errors';

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
