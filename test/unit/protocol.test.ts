/**
 * The protocol's name lists are the one source of the names the three processes share: package.json's setting
 * enums, the engine's tables and the webviews' pickers must all equal them. And the wire codec round-trips.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { ATTRIBUTORS } from '../../engine/src/lrp/attributors';
import { COMPOSITES } from '../../engine/src/lrp/composites';
import { COLOR_MAPS } from '../../engine/src/shared/colormap';
import { decodeBytes, decodeFloats, encodeBytes, encodeFloats } from '../../protocol/floats';
import {
  ATTRIBUTOR_NAMES,
  COLOR_MAP_NAMES,
  COMPOSITE_NAMES,
  RESIDUAL_MODES,
  RUN_COMPOSITES,
  SCALINGS,
} from '../../protocol/names';
import { HostMessage, WebviewMessage } from '../../protocol/webview';

const settings: Record<string, { enum?: string[] }> = JSON.parse(
  fs.readFileSync(path.resolve(__dirname, '../../package.json'), 'utf8'),
).contributes.configuration.properties;
const sorted = (names: readonly string[]) => [...names].sort();

test("package.json's setting enums are the protocol's names", () => {
  assert.deepEqual(sorted(settings['relevanceLens.composite'].enum!), sorted(RUN_COMPOSITES));
  assert.deepEqual(sorted(settings['relevanceLens.colorMap'].enum!), sorted(COLOR_MAP_NAMES));
  assert.deepEqual(sorted(settings['relevanceLens.scaling'].enum!), sorted(SCALINGS));
  assert.deepEqual(sorted(settings['relevanceLens.residual'].enum!), sorted(RESIDUAL_MODES));
});

test("the engine's tables have exactly the protocol's names", () => {
  assert.deepEqual(sorted(Object.keys(COMPOSITES)), sorted(COMPOSITE_NAMES));
  assert.deepEqual(sorted(Object.keys(COLOR_MAPS)), sorted(COLOR_MAP_NAMES));
  assert.deepEqual(sorted(ATTRIBUTORS), sorted(ATTRIBUTOR_NAMES));
});

test('float32 values and bytes round-trip through base64, with Buffer and with atob/btoa', () => {
  const values = Float32Array.from([0, -1.5, 3.25, 1e-8, -7e5, Number.MAX_VALUE, NaN]);
  const b64 = encodeFloats(values);
  assert.deepEqual([...decodeFloats(b64)], [...values]);
  // the same base64 as btoa's (the webviews' path without Buffer runs in Chromium: test/webview)
  const bytes = new Uint8Array(100_000).map((_, i) => (i * 7) % 256);
  const browser = btoa(String.fromCharCode(...bytes.subarray(0, 50_000)));
  assert.equal(encodeBytes(bytes.subarray(0, 50_000)), browser);
  assert.deepEqual([...decodeBytes(encodeBytes(bytes))], [...bytes]);
  // a view at an odd offset of a larger buffer
  const offset = new Float32Array(new Float32Array([9, 1, 2, 3]).buffer, 4, 3);
  assert.deepEqual([...decodeFloats(encodeFloats(offset))], [1, 2, 3]);
});

test('webview messages: names outside the lists, and prototype keys, are rejected', () => {
  const settings = { colorMap: 'bwr', scaling: 'symmetric' };
  assert.ok(WebviewMessage.safeParse({ type: 'settings', settings }).success);
  for (const colorMap of ['toString', '__proto__', 'constructor', 'nope']) {
    assert.ok(!WebviewMessage.safeParse({ type: 'settings', settings: { ...settings, colorMap } }).success, colorMap);
    assert.ok(!HostMessage.safeParse({ type: 'settings', settings: { ...settings, colorMap } }).success, colorMap);
  }
  assert.ok(
    !HostMessage.safeParse({
      type: 'layer',
      layer: { id: 'a', op: 'Conv', shape: [1], hooked: true },
      data: {},
      settings,
    }).success,
    'data without a key',
  );
});

test('package.json: every command is registered by the extension, and the palette offers it only where it works', () => {
  const pkg = JSON.parse(fs.readFileSync(path.resolve(__dirname, '../../package.json'), 'utf8'));
  const commands: string[] = pkg.contributes.commands.map((c: { command: string }) => c.command);
  const sources = (dir: string): string[] =>
    fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
      const f = path.join(dir, e.name);
      return e.isDirectory() ? sources(f) : f.endsWith('.ts') ? [fs.readFileSync(f, 'utf8')] : [];
    });
  const code = sources(path.resolve(__dirname, '../../extension/src')).join('\n');
  for (const id of commands) assert.ok(code.includes(`'${id}'`), `${id} is registered in extension/src`);
  const palette = new Map<string, string>(
    pkg.contributes.menus.commandPalette.map((m: { command: string; when: string }) => [m.command, m.when]),
  );
  for (const id of palette.keys()) assert.ok(commands.includes(id), `${id} in the palette is a contributed command`);
  // the commands that work without a model: everything else has a when clause
  const always = new Set([
    'relevanceLens.openModel',
    'relevanceLens.openExample',
    'relevanceLens.chooseComposite',
    'relevanceLens.chooseAttributor',
    'relevanceLens.restartEngine',
    'relevanceLens.showLog',
    'relevanceLens.showSupportedOperators',
    'relevanceLens.reportIssue',
  ]);
  for (const id of commands)
    if (!always.has(id)) assert.ok(palette.get(id), `${id} has a when clause in the command palette`);
  for (const id of always) assert.ok(!palette.has(id), `${id} is always offered`);
});
