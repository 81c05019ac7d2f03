/**
 * The native kernels travel with the addon: oneDNN, OpenCL's loader and OpenMP are copied beside it (and into
 * dist/, and so the .vsix), and the addon looks there first (an RPATH of $ORIGIN, which oneDNN's own dependencies
 * follow too). Checked with ldd, and by loading the addon with the system's copies hidden (a private mount
 * namespace with /dev/null over them), as on a machine without Debian's libdnnl2.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { BUNDLED_LIBS as BUNDLED, canHide, systemCopies, withSystemCopiesHidden } from '../system-libs';

const ROOT = path.resolve(__dirname, '..', '..');
const RELEASE = path.join(ROOT, 'engine/native/build/Release');
const ADDON = path.join(RELEASE, 'relevance_native.node');
const skip = !fs.existsSync(ADDON) ? 'the native addon is not built' : process.platform !== 'linux' && 'Linux only';

/** library → the file the dynamic loader resolves it to, for `file` */
function resolved(file: string): Map<string, string> {
  const out = spawnSync('ldd', [file], { encoding: 'utf8' }).stdout;
  return new Map([...out.matchAll(/^\s*(\S+) => (\S+)/gm)].map((m) => [m[1], m[2]]));
}

test('the addon resolves oneDNN, OpenCL and OpenMP to the copies beside it', { skip }, () => {
  const libs = resolved(ADDON);
  for (const lib of BUNDLED) {
    assert.ok(fs.existsSync(path.join(RELEASE, lib)), `${lib} is beside the addon`);
    assert.equal(libs.get(lib), path.join(RELEASE, lib), `${lib} resolves beside the addon`);
  }
  // and dist/ (what the .vsix packs) has them when it was built from this addon
  const dist = path.join(ROOT, 'dist/relevance_native.node');
  if (fs.existsSync(dist))
    for (const lib of BUNDLED)
      assert.equal(resolved(dist).get(lib), path.join(ROOT, 'dist', lib), `dist/${lib} is packed beside dist's addon`);
});

test('the addon loads with the system’s oneDNN, OpenCL and OpenMP hidden', { skip }, (t) => {
  const hidden = canHide();
  if (!hidden.ok) {
    t.skip(`no private mount namespace here: ${hidden.why}`);
    return;
  }
  const run = withSystemCopiesHidden(process.execPath, [
    '-e',
    `console.log(JSON.stringify(require(${JSON.stringify(ADDON)}).info()))`,
  ]);
  const r = spawnSync(run.file, run.args, { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.match(JSON.parse(r.stdout.trim()).library, /^oneDNN \d/);
  t.diagnostic(`hidden: ${systemCopies().join(', ') || 'none installed'}`);
});
