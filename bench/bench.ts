/**
 * Benchmark, side by side in one run: torchvision's VGG16 (epsilon_gamma_box) and ResNet50 (epsilon_plus_flat) as
 * torch.onnx.export writes them, timed in the engine and in Zennit 0.5.1 (bench/zennit_bench.py, on Debian's
 * PyTorch, every core) on the same files and input: opening the model, the forward pass and the attribution at
 * batch 1 and at batch 16, their ratios, and each side's attribution/forward ratio. No reference figure is a
 * constant. Without Python's torch it says so, builds the same architectures with the project's ONNX writer and
 * prints the engine's figures alone.
 *   npm run bench [-- --models vgg16,resnet50] [--backends wasm,cpu] [--kernels native,backend] [--repeat N]
 *                 [--batch N]
 *   npm run bench -- --onnx FILE [--composite NAME] [--low L --high H]     any ONNX model, the engine alone
 */
import { execFileSync } from 'child_process';
import * as tf from '@tensorflow/tfjs-core';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { modelOutput } from '../engine/src/lrp/relevance-pass';
import { initBackend } from '../engine/src/graph/backend';
import { analysisBench } from './analysis-bench';
import { parseArgs, num } from '../engine/src/cli/args';
import { encodeOnnx, type OnnxModelSpec } from '../engine/src/io/onnx-writer';
import { parseNpy } from '../engine/src/io/npy';
import { type Model, openModel } from '../engine/src/graph/model';
import { serverBench } from './server-bench';
import { nativeKernels, nativeStatus, useNativeKernels } from '../engine/src/graph/native';
import { type NdArray, pickRows, size } from '../engine/src/ndarray';
import { seededRandom } from '../engine/src/lrp/random';
import { normalizeCompositeName } from '../engine/src/lrp/composites';
import { runAttribution } from '../engine/src/lrp/attribution';
import { EngineError } from '../engine/src/errors';
import type { RunComposite } from '../protocol/names';
import { resnet50, vgg16 } from './models';

const ROOT = path.resolve(__dirname, '..');
const COMPOSITES: Record<string, RunComposite> = { vgg16: 'epsilon_gamma_box', resnet50: 'epsilon_plus_flat' };
const BUILDERS: Record<string, () => OnnxModelSpec> = { vgg16, resnet50 };

/** Zennit's medians for one model, per batch size, measured by bench/zennit_bench.py in this run. */
interface ZennitTimes {
  onnx: string;
  input: string;
  composite: RunComposite;
  times: Record<string, { forward_s: number; attribution_s: number }>;
}

interface Job {
  name: string;
  file: string;
  input?: string;
  composite: RunComposite;
  zennit?: ZennitTimes;
}

interface Row {
  job: Job;
  backend: string;
  kernels: string;
  /** opening to the layer tree (the structure), then making the weights */
  openS: number;
  weightsS: number;
  /** peak RSS growth over opening and making the weights, against the file's size */
  peakRssMiB: number;
  fileMiB: number;
  /** batch size → medians, or why the engine refused the run (a wasm heap too small for it) */
  times: Map<number, { forwardS: number; attributionS: number } | { refused: string }>;
}

/** Linux: resets the process's peak RSS (VmHWM) to its current RSS, so that a step's own peak can be read */
function resetPeakRss(): void {
  try {
    fs.writeFileSync('/proc/self/clear_refs', '5');
  } catch {
    // not Linux: the peak is then the process's so far
  }
}

/** the process's peak RSS in bytes (Linux), else its current RSS */
function peakRss(): number {
  const kib = /VmHWM:\s+(\d+) kB/.exec(
    fs.existsSync('/proc/self/status') ? fs.readFileSync('/proc/self/status', 'utf8') : '',
  );
  return kib ? Number(kib[1]) * 1024 : process.memoryUsage().rss;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function timed(fn: () => unknown): Promise<number> {
  const t0 = performance.now();
  await fn();
  return (performance.now() - t0) / 1000;
}

/** Runs Zennit's side; undefined (and why, on stderr) where Python's torch or the Zennit sources are missing. */
function runZennit(models: string[], repeat: number, batch: number): Record<string, ZennitTimes> | undefined {
  const out = path.join(ROOT, '.zoo-cache', 'bench');
  try {
    const json = execFileSync(
      process.env.PYTHON ?? '/usr/bin/python3',
      [
        path.join(ROOT, 'bench/zennit_bench.py'),
        out,
        '--models',
        models.join(','),
        '--repeat',
        String(repeat),
        '--batch',
        String(batch),
      ],
      {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'inherit'],
        env: { ...process.env, PYTHONPATH: path.resolve(ROOT, '../shared/reference/zennit-0.5.1/src') },
      },
    );
    const times: Record<string, ZennitTimes> = JSON.parse(json.trim().split('\n').at(-1)!);
    for (const [name, z] of Object.entries(times))
      for (const [batch, t] of Object.entries(z.times))
        console.error(
          `Zennit ${name} ${z.composite}, batch ${batch}: forward ${t.forward_s.toFixed(3)} s, attribution ${t.attribution_s.toFixed(3)} s`,
        );
    return times;
  } catch (e) {
    console.error(
      `bench: Zennit not run (${(e as Error).message.split('\n')[0]}); needs Debian's python3-torch and ` +
        "python3-torchvision and ../shared/reference: the engine's figures alone, on models from its own ONNX writer",
    );
    return undefined;
  }
}

function randomInput(shape: number[]): NdArray {
  const rand = seededRandom(7);
  const data = new Float32Array(size(shape));
  for (let i = 0; i < data.length; i++) data[i] = rand() * 2 - 1;
  return { shape, data };
}

/** `batch` copies of a one-row input. */
function batchOf(x: NdArray, batch: number): NdArray {
  return pickRows(x, new Array<number>(batch).fill(0));
}

/**
 * The peak RSS over the RSS before the open, against the file's size. After another model in the same process the
 * weights may fit in memory it freed (the peak then stays below where it started): no growth, not a negative one.
 */
function peakText(peakMiB: number, fileMiB: number): string {
  if (peakMiB < 0) return 'no RSS growth (memory an earlier model freed)';
  return `+${peakMiB.toFixed(0)} MiB (${(peakMiB / fileMiB).toFixed(2)}× the file)`;
}

async function measure(job: Job, backend: string, batches: number[], repeat: number): Promise<Row> {
  const rss = process.memoryUsage().rss;
  resetPeakRss();
  const t0 = performance.now();
  const model: Model = await openModel(job.file);
  const openS = (performance.now() - t0) / 1000;
  await model.loadWeights();
  const weightsS = (performance.now() - t0) / 1000 - openS;
  const peakRssMiB = (peakRss() - rss) / 2 ** 20;
  const fileMiB = fs.statSync(job.file).size / 2 ** 20;
  const one = job.input ? parseNpy(fs.readFileSync(job.input)) : randomInput(model.graph.input.shape);
  const times: Row['times'] = new Map();
  try {
    for (const batch of batches) {
      const input = batchOf(one, batch);
      const attribute = () =>
        runAttribution(model, input, { composite: job.composite, compositeParams: { low: -3, high: 3 }, target: [0] });
      // warm-up: kernels compiled, rule-modified weights and their layouts made (and kept)
      try {
        await attribute();
      } catch (e) {
        if (!(e instanceof EngineError && e.code === 'OUT_OF_MEMORY')) throw e;
        times.set(batch, { refused: e.message });
        continue;
      }
      modelOutput(model, input);
      const forward: number[] = [];
      const attribution: number[] = [];
      for (let i = 0; i < repeat; i++) {
        forward.push(await timed(() => modelOutput(model, input)));
        attribution.push(await timed(attribute));
      }
      times.set(batch, { forwardS: median(forward), attributionS: median(attribution) });
    }
  } finally {
    model.dispose();
  }
  const kernels = nativeKernels() ? `native (${nativeStatus().library})` : `${backend}'s own`;
  return { job, backend, kernels, openS, weightsS, peakRssMiB, fileMiB, times };
}

function table(rows: Row[]): string {
  const s = (v: number) => `${v.toFixed(3)} s`;
  const lines = [
    '| model | backend, kernels | batch | open: tree, weights, peak RSS | forward | attribution | Zennit attribution | ratio | attribution/forward (Zennit) | images/s (Zennit) |',
    '|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const r of rows) {
    for (const [batch, t] of r.times) {
      const z = r.job.zennit?.times[String(batch)];
      const open =
        batch === [...r.times.keys()][0] ? `${s(r.openS)}, ${s(r.weightsS)}, ${peakText(r.peakRssMiB, r.fileMiB)}` : '';
      if ('refused' in t) {
        lines.push(
          `| ${r.job.name} ${r.job.composite} | ${r.backend}, ${r.kernels} | ${batch} | ${open} | refused: ${t.refused} |||||`,
        );
        continue;
      }
      const ratio = z ? `**${(t.attributionS / z.attribution_s).toFixed(2)}**` : '–';
      const perForward = `${(t.attributionS / t.forwardS).toFixed(1)}× (${z ? (z.attribution_s / z.forward_s).toFixed(1) + '×' : '–'})`;
      const rate = `${(batch / t.attributionS).toFixed(1)} (${z ? (batch / z.attribution_s).toFixed(1) : '–'})`;
      lines.push(
        `| ${r.job.name} ${r.job.composite} | ${r.backend}, ${r.kernels} | ${batch} | ${open} | ${s(t.forwardS)} | ${s(t.attributionS)} | ${z ? s(z.attribution_s) : '–'} | ${ratio} | ${perForward} | ${rate} |`,
      );
    }
  }
  return lines.join('\n');
}

function jobs(opts: Map<string, string>, repeat: number, batch: number): Job[] {
  const onnx = opts.get('onnx');
  if (onnx) {
    const composite = normalizeCompositeName(opts.get('composite') ?? 'epsilon_plus_flat') ?? 'gradient';
    return [{ name: path.basename(onnx), file: onnx, composite }];
  }
  const names = (opts.get('models') ?? 'vgg16,resnet50').split(',');
  for (const n of names) if (!COMPOSITES[n]) throw new Error(`unknown model "${n}" (vgg16, resnet50)`);
  const zennit = runZennit(names, repeat, batch);
  return names.map((name) => {
    const z = zennit?.[name];
    if (z) return { name, file: z.onnx, input: z.input, composite: z.composite, zennit: z };
    const file = path.join(os.tmpdir(), 'relevance-lens-bench', `${name}.onnx`);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    if (!fs.existsSync(file)) fs.writeFileSync(file, encodeOnnx(BUILDERS[name]()));
    return { name, file, composite: COMPOSITES[name] };
  });
}

async function main() {
  const { opts } = parseArgs(
    process.argv.slice(2),
    [],
    ['models', 'backends', 'kernels', 'repeat', 'batch', 'onnx', 'composite', 'analysis', 'samples'],
  );
  const backends = (opts.get('backends') ?? 'wasm').split(',');
  const kernelChoices = (opts.get('kernels') ?? (nativeStatus().library ? 'native,backend' : 'backend')).split(',');
  for (const k of kernelChoices)
    if (k !== 'native' && k !== 'backend') throw new Error(`unknown kernels "${k}" (native, backend)`);
  if (kernelChoices.includes('native') && !nativeStatus().library)
    throw new Error(`native kernels asked for, but ${nativeStatus().reason}`);
  const repeat = num(opts, 'repeat') ?? 3;
  const batch = num(opts, 'batch') ?? 16;
  const todo = jobs(opts, repeat, batch);
  console.log(
    `machine: ${os.cpus().length} × ${os.cpus()[0]?.model.trim()}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB; node ${process.version}; tfjs ${tf.version_core}`,
  );
  const rows: Row[] = [];
  for (const job of todo) {
    for (const backend of backends) {
      for (const kernels of kernelChoices) {
        await initBackend(backend);
        useNativeKernels(kernels === 'native');
        const row = await measure(job, backend, [1, batch], repeat);
        console.log(
          `${job.name} on ${backend}, kernels ${row.kernels}: tree in ${row.openS.toFixed(2)} s, weights in ${row.weightsS.toFixed(2)} s`,
        );
        rows.push(row);
      }
    }
  }
  console.log(`\n${table(rows)}`);
  console.log(
    `\n${await serverBench(
      backends[0],
      todo.map((j) => ({ name: j.name, file: j.file })),
    )}`,
  );
  // data-set analysis throughput beside zennit-crp's (--analysis none skips it)
  const analysis = opts.get('analysis') ?? 'example,resnet50';
  if (analysis !== 'none') {
    await initBackend(backends[0]);
    useNativeKernels(kernelChoices[0] === 'native');
    console.log(`\n${await analysisBench(analysis.split(','), num(opts, 'samples') ?? 256)}`);
  }
}

main().catch((e) => {
  console.error(`bench: ${(e as Error).message}`);
  process.exit(1);
});
