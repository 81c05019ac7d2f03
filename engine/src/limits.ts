/**
 * How large an input the engine takes. A model file declares its input shape and an image its pixel count; both
 * become memory, so both are bounded before anything is allocated, with an error that says how to allow more.
 */
import { fail } from './errors';
import { size } from './ndarray';

/** 2^26 float32 values (256 MiB): 3×4096×4096, or a batch of 64 at 3×512×512. */
const DEFAULT_MAX_INPUT_VALUES = 2 ** 26;
/** Decoded images: JPEG's own limit in jpeg-js (100 megapixels), for PNG too. */
export const MAX_IMAGE_PIXELS = 100e6;

/** The limit on an input's values; the environment variable RELEVANCE_LENS_MAX_INPUT_VALUES raises (or lowers) it. */
export function maxInputValues(): number {
  const set = Number(process.env.RELEVANCE_LENS_MAX_INPUT_VALUES);
  return Number.isSafeInteger(set) && set > 0 ? set : DEFAULT_MAX_INPUT_VALUES;
}

/** Refuses an input shape over the limit; `what` says whose shape it is. */
export function checkInputValues(shape: readonly number[], what: string): void {
  const values = size(shape);
  const max = maxInputValues();
  if (values > max)
    fail(
      'BAD_INPUT',
      `${what} has ${values.toLocaleString('en-US')} values, more than the ${max.toLocaleString('en-US')} the engine ` +
        'takes (set RELEVANCE_LENS_MAX_INPUT_VALUES to allow more)',
    );
}

/**
 * What a wasm run may need at most: its heap ends at 4 GiB (wasm32's address space), and a heap grown that far is
 * fragmented, so a run measured to fit in 3.9 GiB still broke it (VGG16, a batch of 16).
 */
const WASM_RUN_BYTES = 3.5 * 2 ** 30;

/**
 * Refuses a run the wasm backend cannot hold, before it starts: past the heap's end the wasm module breaks for
 * good (every later call fails). A run holds the parameters and their rule-modified copies (up to twice as many,
 * `parameterValues` counted once), every layer's output for the backward pass (`keptValues`), and about six more
 * of the largest while the rules and gradients run — measured: 200 MB a row for VGG16, 130 MB for ResNet50.
 */
export function checkRunMemory(
  backend: string,
  parameterValues: number,
  keptValues: number,
  largestValues: number,
): void {
  const bytes = 4 * (2 * parameterValues + keptValues + 6 * largestValues);
  if (backend === 'wasm' && bytes > WASM_RUN_BYTES)
    fail(
      'OUT_OF_MEMORY',
      `this run needs about ${(bytes / 2 ** 30).toFixed(1)} GiB, more than the wasm backend holds (3.5 GiB of its 4) ` +
        '(use the cpu backend, or a smaller batch or input)',
    );
}
