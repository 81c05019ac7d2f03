import { type ChildProcess, spawn } from 'child_process';
import * as path from 'path';
import {
  createMessageConnection,
  type MessageConnection,
  StreamMessageReader,
  StreamMessageWriter,
} from 'vscode-jsonrpc/node';

export const ROOT = path.resolve(__dirname, '../..');

export interface Session {
  proc: ChildProcess;
  conn: MessageConnection;
  stderr: () => string;
  close: () => Promise<void>;
}

/** Spawns the real engine server (`relevance-lens serve --stdio`) and connects to it. */
export function startServer(): Session {
  const proc = spawn(
    process.execPath,
    ['--import', 'tsx', path.join(ROOT, 'engine/src/cli/entry.ts'), 'serve', '--stdio'],
    {
      cwd: ROOT,
      stdio: ['pipe', 'pipe', 'pipe'],
    },
  );
  let err = '';
  proc.stderr!.on('data', (d) => (err += d));
  const conn = createMessageConnection(new StreamMessageReader(proc.stdout!), new StreamMessageWriter(proc.stdin!));
  conn.listen();
  return {
    proc,
    conn,
    stderr: () => err,
    close: async () => {
      conn.dispose();
      proc.kill();
      await new Promise((r) => (proc.exitCode !== null ? r(null) : proc.once('exit', r)));
    },
  };
}
