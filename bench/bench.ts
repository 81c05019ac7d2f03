/**
 * Benchmark: forward pass and LRP attribution on torchvision's VGG16 (epsilon_gamma_box) and ResNet50
 * (epsilon_plus_flat) at 1×3×224×224, per backend, with peak memory, beside Zennit's times on this machine.
 * The native kernels (oneDNN, when the addon is built) and the backend's own are timed side by side in one run.
 *   npm run bench [-- --models vgg16,resnet50] [--backends wasm,cpu] [--kernels native,backend] [--repeat N]
 *   npm run bench -- --onnx FILE [--composite NAME] [--low L --high H]     any ONNX model, for other tools
 */
import * as tf from '@tensorflow/tfjs-core';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { modelOutput } from '../engine/src/lrp/relevance-pass';
import { initBackend } from '../engine/src/graph/backend';
import { parseArgs, num } from '../engine/src/cli/args';
import { encodeOnnx, type OnnxModelSpec } from '../engine/src/io/onnx-writer';
import { loadModel, type Model } from '../engine/src/graph/model';
import { nativeKernels, nativeStatus, useNativeKernels } from '../engine/src/graph/native';
import type { NdArray } from '../engine/src/ndarray';
import { seededRandom } from '../engine/src/lrp/random';
import { normalizeCompositeName } from '../engine/src/lrp/composites';
import { runAttribution } from '../engine/src/lrp/attribution';
import type { RunComposite } from '../protocol/names';
import { resnet50, vgg16 } from './models';

/** Zennit 0.5.1 on PyTorch 1.13 CPU, this machine (2 cores), with each model's canonizer. */
const ZENNIT: Record<string, { composite: RunComposite; attributionS: number; forwardS: number }> = {
  vgg16: { composite: 'epsilon_gamma_box', attributionS: 1.41, forwardS: 0.145 },
  resnet50: { composite: 'epsilon_plus_flat', attributionS: 0.3, forwardS: 0.033 },
};
const BUILDERS: Record<string, () => OnnxModelSpec> = { vgg16, resnet50 };

interface Row {
  model: string;
  backend: string;
  kernels: string;
  composite: string;
  forwardS: number;
  /** the first attribution: rule-modified weights and their kernel layouts are made then, and kept */
  firstS: number;
  attributionS: number;
  peakTensorMiB: number;
  peakRssMiB: number;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** The model file: built once per seed and cached in the temp folder. */
function modelFile(name: string): string {
  const dir = path.join(os.tmpdir(), 'relevance-lens-bench');
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${name}.onnx`);
  if (!fs.existsSync(file)) fs.writeFileSync(file, encodeOnnx(BUILDERS[name]()));
  return file;
}

function randomInput(shape: number[]): NdArray {
  const rand = seededRandom(7);
  const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < data.length; i++) data[i] = rand() * 2 - 1;
  return { shape, data };
}

async function timed<T>(fn: () => Promise<T> | T): Promise<number> {
  const t0 = performance.now();
  await fn();
  return (performance.now() - t0) / 1000;
}

async function measure(
  name: string,
  model: Model,
  backend: string,
  composite: RunComposite,
  repeat: number,
  params: { low?: number; high?: number },
): Promise<Row> {
  const input = randomInput(model.graph.input.shape);
  const attribute = () => runAttribution(model, input, { composite, compositeParams: params });
  // warm-up: kernels compiled, weights uploaded to the backend; the first attribution is timed on its own
  modelOutput(model, input);
  const firstS = await timed(attribute);
  const forward: number[] = [];
  const attribution: number[] = [];
  for (let i = 0; i < repeat; i++) {
    forward.push(await timed(() => modelOutput(model, input)));
    attribution.push(await timed(attribute));
  }
  let peakRss = process.memoryUsage().rss;
  const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 5);
  const profile = await tf.profile(async () => {
    await attribute();
  });
  clearInterval(sampler);
  return {
    model: name,
    backend,
    kernels: nativeKernels() ? `native: ${nativeStatus().library}` : `${backend}'s own`,
    composite,
    forwardS: median(forward),
    firstS,
    attributionS: median(attribution),
    peakTensorMiB: profile.peakBytes / 2 ** 20,
    peakRssMiB: peakRss / 2 ** 20,
  };
}

function table(rows: Row[]): string {
  const fmt = (s: number) => `${s.toFixed(3)} s`;
  const lines = [
    '| model | backend | kernels | composite | forward | first attribution | attribution | Zennit attribution | ratio (ours / Zennit) | peak tensors | peak RSS |',
    '|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const r of rows) {
    const z = ZENNIT[r.model];
    const ratio = z && z.composite === r.composite ? `${(r.attributionS / z.attributionS).toFixed(2)}×` : '–';
    lines.push(
      `| ${r.model} | ${r.backend} | ${r.kernels} | ${r.composite} | ${fmt(r.forwardS)} | ${fmt(r.firstS)} | ${fmt(r.attributionS)} | ${z ? fmt(z.attributionS) : '–'} | ${ratio} | ${r.peakTensorMiB.toFixed(0)} MiB | ${r.peakRssMiB.toFixed(0)} MiB |`,
    );
  }
  return lines.join('\n');
}

async function main() {
  const { opts } = parseArgs(
    process.argv.slice(2),
    [],
    ['models', 'backends', 'kernels', 'repeat', 'onnx', 'composite', 'low', 'high'],
  );
  const backends = (opts.get('backends') ?? 'wasm').split(',');
  const kernelChoices = (opts.get('kernels') ?? (nativeStatus().library ? 'native,backend' : 'backend')).split(',');
  for (const k of kernelChoices)
    if (k !== 'native' && k !== 'backend') throw new Error(`unknown kernels "${k}" (native, backend)`);
  if (kernelChoices.includes('native') && !nativeStatus().library)
    throw new Error(`native kernels asked for, but ${nativeStatus().reason}`);
  const repeat = num(opts, 'repeat') ?? 3;
  const rows: Row[] = [];
  const onnx = opts.get('onnx');
  const jobs: { name: string; file: string; composite: RunComposite; params: { low?: number; high?: number } }[] = onnx
    ? [
        {
          name: path.basename(onnx),
          file: onnx,
          composite: normalizeCompositeName(opts.get('composite') ?? 'epsilon_plus_flat') ?? 'gradient',
          params: { low: num(opts, 'low') ?? -3, high: num(opts, 'high') ?? 3 },
        },
      ]
    : (opts.get('models') ?? 'vgg16,resnet50').split(',').map((name) => {
        if (!BUILDERS[name]) throw new Error(`unknown model "${name}" (vgg16, resnet50)`);
        return { name, file: modelFile(name), composite: ZENNIT[name].composite, params: { low: -3, high: 3 } };
      });
  console.log(
    `machine: ${os.cpus().length} × ${os.cpus()[0]?.model.trim()}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB; node ${process.version}; tfjs ${tf.version_core}`,
  );
  for (const job of jobs) {
    for (const backend of backends) {
      for (const kernels of kernelChoices) {
        await initBackend(backend);
        useNativeKernels(kernels === 'native');
        const model = await loadModel(job.file);
        const row = await measure(job.name, model, backend, job.composite, repeat, job.params);
        console.log(
          `${row.model} on ${row.backend}, kernels ${row.kernels}: forward ${row.forwardS.toFixed(3)} s, ${row.composite} first ${row.firstS.toFixed(3)} s, then ${row.attributionS.toFixed(3)} s`,
        );
        rows.push(row);
        model.dispose();
      }
    }
  }
  console.log(`\n${table(rows)}`);
}

main().catch((e) => {
  console.error(`bench: ${(e as Error).message}`);
  process.exit(1);
});
