import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import { fail } from '../errors';

export type BackendName = 'tensorflow' | 'wasm' | 'cpu';
export const BACKENDS: readonly BackendName[] = ['tensorflow', 'wasm', 'cpu'];

/** tfjs-node is optional: it needs libtensorflow, which its install downloads. Loading it registers 'tensorflow'. */
function tryLoadTfjsNode(): boolean {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    require('@tensorflow/tfjs-node');
    return true;
  } catch {
    return false;
  }
}

let chosen: BackendName | undefined;

// tfjs's own console warnings (the cpu backend's "install tfjs-node" banner) would corrupt the CLI's output and
// read as engine warnings in the extension's log; the engine reports its backend itself.
tf.env().set('PROD', true);

/**
 * Picks the backend: the one asked for, or the first that works of tensorflow → wasm → cpu.
 * Returns the name of the backend that is now active.
 */
export async function initBackend(requested?: string): Promise<BackendName> {
  if (requested !== undefined && !BACKENDS.includes(requested as BackendName)) {
    fail('BAD_ARGUMENT', `unknown backend "${requested}" (choose one of ${BACKENDS.join(', ')})`);
  }
  if (chosen && (!requested || requested === chosen)) return chosen;
  const order = requested ? [requested as BackendName] : BACKENDS;
  const reasons: string[] = [];
  for (const name of order) {
    if (name === 'tensorflow' && !tryLoadTfjsNode()) {
      reasons.push('tensorflow: @tensorflow/tfjs-node is not installed');
      continue;
    }
    try {
      if (await tf.setBackend(name)) {
        await tf.ready();
        chosen = name;
        return name;
      }
      reasons.push(`${name}: failed to initialise`);
    } catch (e) {
      reasons.push(`${name}: ${(e as Error).message}`);
    }
  }
  return fail('BAD_ARGUMENT', `no usable backend (${reasons.join('; ')})`);
}

export function activeBackend(): BackendName {
  if (!chosen) fail('BAD_ARGUMENT', 'backend not initialised; call initBackend() first');
  return chosen;
}
