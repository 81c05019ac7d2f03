/**
 * The libraries the native addon carries beside it (oneDNN, OpenCL's loader, OpenMP), and how to run a process as
 * on a machine without the system's copies: in a private mount namespace with /dev/null bound over each of them.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';

export const BUNDLED_LIBS = ['libdnnl.so.2', 'libOpenCL.so.1', 'libgomp.so.1'];

/** The system's copies of the bundled libraries that are installed here. */
export const systemCopies = () =>
  BUNDLED_LIBS.map((lib) => `/usr/lib/x86_64-linux-gnu/${lib}`).filter((f) => fs.existsSync(f));

/** Whether this machine lets us make a private mount namespace (root, or user namespaces allowed). */
export function canHide(): { ok: boolean; why: string } {
  const r = spawnSync('unshare', ['--mount', '--propagation', 'private', 'true'], { encoding: 'utf8' });
  return r.status === 0 ? { ok: true, why: '' } : { ok: false, why: (r.error?.message ?? r.stderr).trim() };
}

/**
 * `command args` run with the system's copies hidden (each bound over by /dev/null and checked empty first), as the
 * program and arguments to spawn; the command replaces the shell, so its pid is the spawned one.
 */
export function withSystemCopiesHidden(command: string, args: string[]): { file: string; args: string[] } {
  const hide = systemCopies().map((f) => `mount --bind /dev/null ${f} && test ! -s ${f} && `);
  return {
    file: 'unshare',
    args: ['--mount', '--propagation', 'private', 'sh', '-c', `${hide.join('')}exec "$0" "$@"`, command, ...args],
  };
}
