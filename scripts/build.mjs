// Bundles the extension host code, the engine (CLI and server the extension spawns) and the webviews with esbuild.
//   node scripts/build.mjs [--watch] [--minify]
import * as esbuild from 'esbuild';
import * as fs from 'fs';
import * as path from 'path';
import { fileURLToPath } from 'url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dist = path.join(root, 'dist');
const watch = process.argv.includes('--watch');
const minify = process.argv.includes('--minify');

const common = {
  bundle: true,
  sourcemap: minify ? false : 'linked',
  minify,
  logLevel: 'warning',
  absWorkingDir: root,
  // jsonc-parser's main build is UMD with run-time requires esbuild cannot follow; its ES module build bundles
  alias: { 'jsonc-parser': './node_modules/jsonc-parser/lib/esm/main.js' },
};
const builds = [
  // extension host: Node (Electron) CommonJS; `vscode` is provided by the host
  {
    ...common,
    entryPoints: ['extension/src/extension.ts'],
    outfile: 'dist/extension.js',
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    external: ['vscode'],
  },
  // the engine process: a small entry that runs the bundle through V8's code cache
  {
    ...common,
    entryPoints: ['engine/src/cli/start.ts'],
    outfile: 'dist/engine.js',
    platform: 'node',
    format: 'cjs',
    target: 'node20',
  },
  // the engine itself; tfjs-node is optional and loaded at run time when installed
  {
    ...common,
    entryPoints: ['engine/src/cli/entry.ts'],
    outfile: 'dist/engine-main.js',
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    external: ['@tensorflow/tfjs-node'],
    // tfjs registers backends and kernels by side effect from files its package.json calls side-effect free
    ignoreAnnotations: true,
  },
  // webviews: browser scripts
  {
    ...common,
    entryPoints: {
      panel: 'webview/src/panel.ts',
      'layer-view': 'webview/src/layer-view.ts',
      analysis: 'webview/src/analysis.ts',
      model: 'webview/src/model.ts',
    },
    outdir: 'dist/webview',
    platform: 'browser',
    format: 'iife',
    target: 'chrome120',
  },
].map((b) => ({ ...b, entryPoints: filterExisting(b.entryPoints) }));

function filterExisting(entries) {
  if (Array.isArray(entries)) return entries;
  return Object.fromEntries(Object.entries(entries).filter(([, f]) => fs.existsSync(path.join(root, f))));
}

/**
 * Files the bundles load at run time: the wasm backend's binaries and the native kernels' addon when it was built
 * (scripts/build-native.sh), both found next to dist/engine.js, and the CSS.
 */
function copyAssets() {
  const wasmDir = path.join(root, 'node_modules/@tensorflow/tfjs-backend-wasm/dist');
  for (const f of fs.readdirSync(wasmDir).filter((f) => f.endsWith('.wasm')))
    fs.copyFileSync(path.join(wasmDir, f), path.join(dist, f));
  // the addon and the shared libraries build-native.sh put beside it (oneDNN, OpenCL's loader, OpenMP)
  const release = path.join(root, 'engine/native/build/Release');
  const addon = path.join(release, 'relevance_native.node');
  if (fs.existsSync(addon)) {
    fs.copyFileSync(addon, path.join(dist, 'relevance_native.node'));
    for (const lib of fs.readdirSync(release).filter((f) => /^lib.*\.so(\.\d+)*$/.test(f)))
      fs.copyFileSync(path.join(release, lib), path.join(dist, lib));
  }
  fs.mkdirSync(path.join(dist, 'webview'), { recursive: true });
  fs.copyFileSync(path.join(root, 'webview/src/webview.css'), path.join(dist, 'webview/webview.css'));
}

fs.rmSync(dist, { recursive: true, force: true });
fs.mkdirSync(dist, { recursive: true });
if (watch) {
  const contexts = await Promise.all(builds.map((b) => esbuild.context(b)));
  copyAssets();
  await Promise.all(contexts.map((c) => c.watch()));
  console.log('watching…');
} else {
  await Promise.all(builds.map((b) => esbuild.build(b)));
  copyAssets();
  const size = (f) => `${(fs.statSync(path.join(dist, f)).size / 1024).toFixed(0)} KiB`;
  console.log(
    `built dist/extension.js (${size('extension.js')}), dist/engine-main.js (${size('engine-main.js')}), dist/webview/panel.js (${size('webview/panel.js')})`,
  );
}
