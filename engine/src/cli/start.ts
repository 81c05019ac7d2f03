/**
 * The engine process's entry (dist/engine.js): it runs the engine's bundle (dist/engine-main.js) through V8's code
 * cache, kept in RELEVANCE_LENS_CACHE (the extension's global storage) or the temp folder. Compiling the 2.3 MB
 * bundle is a good part of the engine's start: with the cache it starts about 0.1 s sooner. Any problem with the
 * cache (none yet, stale, unwritable) only costs that time: the bundle then compiles as usual.
 */
import * as fs from 'fs';
import Module from 'module';
import * as os from 'os';
import * as path from 'path';
import * as v8 from 'v8';
import * as vm from 'vm';

// V8 drops the bytecode of functions idle for a while (their cache entry with it): the cache is written after the
// start, by when the engine may have opened a model; without this, one written then took no time off a start
v8.setFlagsFromString('--no-flush-bytecode');

const bundle = path.join(__dirname, 'engine-main.js');
const source = fs.readFileSync(bundle, 'utf8');
const stat = fs.statSync(bundle);
const dir = process.env.RELEVANCE_LENS_CACHE ?? path.join(os.tmpdir(), `relevance-lens-${os.userInfo().uid}`);
// one cache per build of the bundle and per Node version (V8 refuses another's)
const cacheFile = path.join(dir, `engine-${stat.size}-${Math.round(stat.mtimeMs)}-${process.version}.cache`);
const read = (f: string) => {
  try {
    return fs.readFileSync(f);
  } catch {
    return undefined;
  }
};
const cached = read(cacheFile);
const script = new vm.Script(Module.wrap(source), { filename: bundle, cachedData: cached });
const run = script.runInThisContext() as (...args: unknown[]) => void;
const main = new Module(bundle);
main.filename = bundle;
main.paths = (Module as unknown as { _nodeModulePaths(d: string): string[] })._nodeModulePaths(__dirname);
run.call(main.exports, main.exports, Module.createRequire(bundle), main, bundle, __dirname);
if (!cached || script.cachedDataRejected) {
  // after the start, when V8 has compiled what a start runs; written whole or not at all
  setTimeout(() => {
    try {
      fs.mkdirSync(dir, { recursive: true });
      const partial = `${cacheFile}.${process.pid}`;
      fs.writeFileSync(partial, script.createCachedData());
      fs.renameSync(partial, cacheFile);
    } catch {
      // no cache: the next start compiles again
    }
  }, 2000).unref();
}
