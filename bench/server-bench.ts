/**
 * The engine as the extension runs it: the bundled server (dist/engine.js, built first) spawned as a child
 * process and spoken to over stdio. Times spawn → `initialize` answered (the wasm backend's start and the native
 * addon's load included), and `model/open` → the layer tree answered for each model, which is what a user waits
 * for in the editor before the tree appears (the weights load after it, before the first run).
 */
import { spawn, spawnSync } from 'child_process';
import * as path from 'path';
import { createMessageConnection, StreamMessageReader, StreamMessageWriter } from 'vscode-jsonrpc/node';
import * as P from '../protocol/engine';

const ROOT = path.resolve(__dirname, '..');
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

interface ServerTimes {
  startS: number;
  openS: Map<string, number>;
}

async function session(backend: string, models: { name: string; file: string }[]): Promise<ServerTimes> {
  const t0 = performance.now();
  const proc = spawn(process.execPath, [path.join(ROOT, 'dist/engine.js'), 'serve', '--stdio'], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const conn = createMessageConnection(new StreamMessageReader(proc.stdout), new StreamMessageWriter(proc.stdin));
  conn.listen();
  try {
    await conn.sendRequest(P.Initialize, { backend });
    const startS = (performance.now() - t0) / 1000;
    const openS = new Map<string, number>();
    for (const m of models) {
      const t = performance.now();
      const info = await conn.sendRequest(P.OpenModel, { path: m.file });
      openS.set(m.name, (performance.now() - t) / 1000);
      await conn.sendRequest(P.CloseModel, { modelId: info.modelId });
    }
    return { startS, openS };
  } finally {
    conn.dispose();
    proc.kill();
  }
}

/** A table of the server's start and open times (medians of `repeat` fresh processes). */
export async function serverBench(
  backend: string,
  models: { name: string; file: string }[],
  repeat = 5,
): Promise<string> {
  const build = spawnSync(process.execPath, [path.join(ROOT, 'scripts/build.mjs'), '--minify'], {
    cwd: ROOT,
    stdio: 'inherit',
  });
  if (build.status !== 0) throw new Error('the build of dist/engine.js failed');
  const sessions: ServerTimes[] = [];
  for (let i = 0; i < repeat; i++) sessions.push(await session(backend, models));
  const s = (v: number) => `${v.toFixed(3)} s`;
  const lines = [
    `The bundled engine server on ${backend} (median of ${repeat} fresh processes):`,
    '',
    '| step | time |',
    '|---|---|',
    `| spawn → initialize answered | ${s(median(sessions.map((x) => x.startS)))} |`,
    ...models.map(
      (m) => `| open ${m.name} → layer tree answered | ${s(median(sessions.map((x) => x.openS.get(m.name)!)))} |`,
    ),
  ];
  return lines.join('\n');
}
