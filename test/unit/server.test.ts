/**
 * What makes the engine process end itself: a trap inside WebAssembly leaves the wasm backend broken for every later
 * request (the server then exits so that the client restarts it); other errors leave it serving.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { EngineError } from '../../engine/src/errors';
import { isFatal } from '../../engine/src/server/server';

/** A real trap: a wasm module whose one function executes `unreachable`. */
function wasmTrap(): unknown {
  // (module (func (export "f") unreachable))
  const bytes = Uint8Array.from([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x04, 0x01, 0x60, 0x00, 0x00, 0x03, 0x02, 0x01, 0x00, 0x07,
    0x05, 0x01, 0x01, 0x66, 0x00, 0x00, 0x0a, 0x05, 0x01, 0x03, 0x00, 0x00, 0x0b,
  ]);
  const { f } = new WebAssembly.Instance(new WebAssembly.Module(bytes)).exports as { f: () => void };
  try {
    f();
  } catch (e) {
    return e;
  }
  return assert.fail('the module did not trap');
}

test('a WebAssembly trap is fatal; engine errors, JS errors and out-of-memory RangeErrors are not', () => {
  const trap = wasmTrap();
  assert.ok(trap instanceof WebAssembly.RuntimeError);
  assert.equal(isFatal(trap), true);
  assert.equal(isFatal(new EngineError('BAD_INPUT', 'x')), false);
  assert.equal(isFatal(new TypeError("Cannot read properties of undefined (reading 'x')")), false);
  assert.equal(isFatal(new RangeError('Invalid typed array length: 629145600')), false);
  assert.equal(isFatal('RuntimeError'), false);
});
