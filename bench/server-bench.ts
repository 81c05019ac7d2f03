/**
 * The engine as the extension runs it: the bundled server (dist/engine.js, built first) spawned as a child
 * process and spoken to over stdio. Times spawn → `initialize` answered (the wasm backend's start and the native
 * addon's load included), and `model/open` → the layer tree answered for each model, which is what a user waits
 * for in the editor before the tree appears (the weights load after it, before the first run). A start is timed
 * both ways: the first (no code cache yet: V8 compiles the bundle) and the later ones (through the cache that a
 * first start writes, as the extension's engine does in its global storage).
 */
import { spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { createMessageConnection, StreamMessageReader, StreamMessageWriter } from 'vscode-jsonrpc/node';
import * as P from '../protocol/engine';

const ROOT = path.resolve(__dirname, '..');
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

interface ServerTimes {
  startS: number;
  openS: Map<string, number>;
}

/** One engine process with its code cache in `cache`; with `keep`, it lives until it has written the cache. */
async function session(
  backend: string,
  models: { name: string; file: string }[],
  cache: string,
  keep = false,
): Promise<ServerTimes> {
  const t0 = performance.now();
  const proc = spawn(process.execPath, [path.join(ROOT, 'dist/engine.js'), 'serve', '--stdio'], {
    stdio: ['pipe', 'pipe', 'inherit'],
    env: { ...process.env, RELEVANCE_LENS_CACHE: cache },
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
    // the cache is written two seconds after the start
    for (let waited = 0; keep && !fs.readdirSync(cache).some((f) => f.endsWith('.cache')); waited += 100) {
      if (waited > 10_000) throw new Error(`the engine wrote no code cache into ${cache}`);
      await new Promise((r) => setTimeout(r, 100));
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
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'relevance-lens-bench-'));
  try {
    // first starts: each with an empty cache folder of its own, the first of them keeping what it compiled
    const first: ServerTimes[] = [];
    for (let i = 0; i < repeat; i++) {
      const cache = path.join(dir, i === 0 ? 'kept' : `cold-${i}`);
      fs.mkdirSync(cache);
      first.push(await session(backend, models, cache, i === 0));
    }
    const later: ServerTimes[] = [];
    for (let i = 0; i < repeat; i++) later.push(await session(backend, models, path.join(dir, 'kept')));
    return table(backend, models, repeat, first, later);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function table(
  backend: string,
  models: { name: string; file: string }[],
  repeat: number,
  first: ServerTimes[],
  sessions: ServerTimes[],
): string {
  const s = (v: number) => `${v.toFixed(3)} s`;
  const lines = [
    `The bundled engine server on ${backend} (median of ${repeat} fresh processes):`,
    '',
    '| step | time |',
    '|---|---|',
    `| spawn → initialize answered, a first start (no code cache) | ${s(median(first.map((x) => x.startS)))} |`,
    `| spawn → initialize answered, through the code cache | ${s(median(sessions.map((x) => x.startS)))} |`,
    ...models.map(
      (m) => `| open ${m.name} → layer tree answered | ${s(median(sessions.map((x) => x.openS.get(m.name)!)))} |`,
    ),
  ];
  return lines.join('\n');
}
