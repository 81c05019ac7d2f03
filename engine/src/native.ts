import * as tf from '@tensorflow/tfjs-core';
import * as fs from 'fs';
import * as path from 'path';
import type { ConvAttrs } from './graph';

/**
 * Native convolutions: oneDNN's kernels (what PyTorch runs on CPU) from the optional addon in engine/native/,
 * run on the float32 buffers the wasm or cpu backend already holds. Registered as TF.js kernels of their own, so
 * their outputs are ordinary tensors of the active backend (scopes and disposal as usual). Without the addon,
 * or with RELEVANCE_LENS_NATIVE=off, the backend's own kernels run.
 */
interface Addon {
  conv2d(geometry: Int32Array, x: Float32Array, w: Float32Array, bias: Float32Array | null, y: Float32Array): void;
  conv2dBackwardData(geometry: Int32Array, dy: Float32Array, w: Float32Array, dx: Float32Array): void;
  info(): { library: string; threads: number };
}

export interface NativeStatus {
  /** e.g. "oneDNN 2.6.3, 2 threads"; undefined when the backend's own kernels run */
  convolutions?: string;
  /** why the addon is not used */
  reason?: string;
}

const FORWARD = 'RelevanceLensConv2D';
const BACKWARD_DATA = 'RelevanceLensConv2DBackwardData';
const BACKENDS = ['wasm', 'cpu'] as const;

/** where the addon is: beside the bundled engine (dist/), or built in the source tree */
function candidates(): string[] {
  return [path.join(__dirname, 'relevance_native.node'), path.join(__dirname, '..', 'native', 'build', 'Release', 'relevance_native.node')];
}

let addon: Addon | undefined;
let status: NativeStatus | undefined;

function load(): NativeStatus {
  if (process.env.RELEVANCE_LENS_NATIVE === 'off') return { reason: 'switched off (RELEVANCE_LENS_NATIVE=off)' };
  const file = candidates().find((f) => fs.existsSync(f));
  if (!file) return { reason: 'the native addon is not built (npm run build:native)' };
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- a computed path: Node's loader, not the bundler's
    addon = require(file) as Addon;
    const { library, threads } = addon.info();
    registerKernels();
    return { convolutions: `${library}, ${threads} thread${threads === 1 ? '' : 's'}` };
  } catch (e) {
    addon = undefined;
    return { reason: `${path.basename(file)} did not load: ${(e as Error).message.split('\n')[0]}` };
  }
}

export function nativeStatus(): NativeStatus {
  status ??= load();
  return status;
}

/** true when convolutions on the active backend run natively */
export function nativeConvolutions(): boolean {
  return nativeStatus().convolutions !== undefined && (BACKENDS as readonly string[]).includes(tf.getBackend());
}

/** [n, h, w, ci, kh, kw, co, groups, ho, wo, sh, sw, dh, dw, top, left, bottom, right]: the addon's geometry */
function geometry(x: readonly number[], w: readonly number[], a: ConvAttrs): Int32Array {
  const [n, h, wd, ci] = x;
  const [kh, kw, , co] = w;
  const [sh, sw] = a.strides;
  const [dh, dw] = a.dilations;
  const [[top, bottom], [left, right]] = a.pads;
  const ho = Math.floor((h + top + bottom - (dh * (kh - 1) + 1)) / sh) + 1;
  const wo = Math.floor((wd + left + right - (dw * (kw - 1) + 1)) / sw) + 1;
  return Int32Array.from([n, h, wd, ci, kh, kw, co, a.groups, ho, wo, sh, sw, dh, dw, top, left, bottom, right]);
}

type Views = (infos: tf.TensorInfo[], outShape: number[]) => { inputs: Float32Array[]; output: Float32Array; result: tf.TensorInfo };

/** Float32 views of a kernel's inputs and a new output, without copies, for each backend's storage. */
const VIEWS: Record<(typeof BACKENDS)[number], (backend: tf.KernelBackend) => Views> = {
  wasm: (backend) => (infos, outShape) => {
    const b = backend as unknown as { makeOutput(s: number[], d: string): tf.TensorInfo; typedArrayFromHeap(t: tf.TensorInfo): Float32Array };
    // allocate first: a growing wasm heap would detach views taken before
    const result = b.makeOutput(outShape, 'float32');
    return { inputs: infos.map((t) => b.typedArrayFromHeap(t)), output: b.typedArrayFromHeap(result), result };
  },
  cpu: (backend) => (infos, outShape) => {
    const b = backend as unknown as { data: { get(id: object): { values: Float32Array } }; makeTensorInfo(s: number[], d: string, v: Float32Array): tf.TensorInfo };
    const output = new Float32Array(outShape.reduce((p, d) => p * d, 1));
    return { inputs: infos.map((t) => b.data.get(t.dataId).values), output, result: b.makeTensorInfo(outShape, 'float32', output) };
  },
};

function registerKernels(): void {
  const run = addon!;
  for (const backendName of BACKENDS) {
    const views = VIEWS[backendName];
    tf.registerKernel({
      kernelName: FORWARD,
      backendName,
      kernelFunc: ({ inputs, attrs, backend }) => {
        const g = attrs.geometry as unknown as Int32Array;
        const infos = [inputs.x, inputs.filter, ...(inputs.bias ? [inputs.bias] : [])] as tf.TensorInfo[];
        const { inputs: [x, w, bias], output, result } = views(backend)(infos, [g[0], g[8], g[9], g[6]]);
        run.conv2d(g, x, w, bias ?? null, output);
        return result;
      },
    });
    tf.registerKernel({
      kernelName: BACKWARD_DATA,
      backendName,
      kernelFunc: ({ inputs, attrs, backend }) => {
        const g = attrs.geometry as unknown as Int32Array;
        const { inputs: [dy, w], output, result } = views(backend)([inputs.dy, inputs.filter] as tf.TensorInfo[], [g[0], g[1], g[2], g[3]]);
        run.conv2dBackwardData(g, dy, w, output);
        return result;
      },
    });
  }
}

/** conv(x, w) + bias, channels-last, HWIO kernel with in-channels per group. */
export function nativeConv2d(x: tf.Tensor4D, w: tf.Tensor4D, bias: tf.Tensor | undefined, a: ConvAttrs): tf.Tensor4D {
  const inputs: tf.NamedTensorMap = bias ? { x, filter: w, bias } : { x, filter: w };
  return tf.engine().runKernel(FORWARD, inputs, { geometry: geometry(x.shape, w.shape, a) } as unknown as tf.NamedAttrMap) as tf.Tensor4D;
}

/** The input gradient of conv(·, w) for the output gradient dy. */
export function nativeConv2dInputGrad(xShape: readonly number[], w: tf.Tensor4D, a: ConvAttrs, dy: tf.Tensor4D): tf.Tensor4D {
  return tf.engine().runKernel(BACKWARD_DATA, { dy, filter: w }, { geometry: geometry(xShape, w.shape, a) } as unknown as tf.NamedAttrMap) as tf.Tensor4D;
}
