/**
 * Data-set analysis throughput, side by side in one run: the engine's `analyze` (no reference images) and
 * zennit-crp's FeatureVisualization.run (bench/crp_bench.py, Zennit 0.5.1 on Debian's PyTorch, every core) on the
 * same model and data — the example model on its data set (320 images, 32×32), and ResNet50 on random 224×224
 * images (--samples, default 256). Samples per second, and the ratio.
 *
 *   npx tsx bench/analysis-bench.ts [--cases example,resnet50] [--samples N] [--backend B]
 * (npm run bench runs it after the models' table: --analysis CASES|none, --samples N)
 */
import { execFileSync } from 'child_process';
import * as os from 'os';
import * as path from 'path';
import { parseArgs } from '../engine/src/cli/args';
import { initBackend } from '../engine/src/graph/backend';
import { kernelsReport } from '../engine/src/graph/native';
import { loadModel } from '../engine/src/graph/model';
import { openDataset } from '../engine/src/analysis/dataset';
import { analysisConfig, analyzeDataset } from '../engine/src/analysis/analyze';
import { writeShapesData } from '../examples/shapes/write-data';

const ROOT = path.join(__dirname, '..');
const CACHE = path.join(ROOT, '.zoo-cache', 'bench');

interface Case {
  name: string;
  onnx: string;
  data: string;
  layers: string[];
}

/**
 * zennit-crp's samples per second, on one thread (PyTorch's default here, where it counts one physical core) and on
 * every core: small models run faster on one, large ones on all; the ratio takes zennit-crp's faster.
 */
function crp(c: Case, samples: number): { runs: { samples_per_s: number; threads: number }[] } | undefined {
  const threads = [...new Set([1, os.cpus().length])];
  const runs = [];
  for (const t of threads) {
    const r = crpRun(c, samples, t);
    if (!r) return undefined;
    runs.push(r);
  }
  return { runs };
}

function crpRun(c: Case, samples: number, threads: number): { samples_per_s: number; threads: number } | undefined {
  try {
    const out = execFileSync(
      process.env.PYTHON ?? '/usr/bin/python3',
      [
        path.join(ROOT, 'bench/crp_bench.py'),
        c.name,
        c.data,
        '--onnx',
        c.onnx,
        '--samples',
        String(samples),
        '--threads',
        String(threads),
      ],
      {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'inherit'],
        env: {
          ...process.env,
          PYTHONPATH: ['zennit-0.5.1/src', 'zennit-crp']
            .map((p) => path.resolve(ROOT, '../shared/reference', p))
            .join(':'),
        },
      },
    );
    return JSON.parse(out.trim().split('\n').at(-1)!);
  } catch (e) {
    console.error(`analysis bench: zennit-crp not run for ${c.name} (${(e as Error).message.split('\n')[0]})`);
    return undefined;
  }
}

/** The engine's samples per second (and the data set's size). */
async function engine(c: Case): Promise<{ perSecond: number; samples: number }> {
  const model = await loadModel(c.onnx);
  const data = await openDataset(c.data, model);
  const config = analysisConfig({ model: c.onnx, data: c.data, layers: c.layers, composite: 'epsilon_plus_flat' });
  const result = await analyzeDataset(model, data, config);
  model.dispose();
  return { perSecond: data.length / result.seconds, samples: data.length };
}

/** The table of both sides' samples per second for `names` (example, resnet50), on the backend already set up. */
export async function analysisBench(names: string[], samples: number): Promise<string> {
  const cases: Case[] = [];
  if (names.includes('example')) {
    const data = path.join(CACHE, 'shapes-data');
    writeShapesData(data);
    cases.push({
      name: 'example',
      onnx: path.join(ROOT, 'examples/shapes/model.onnx'),
      data,
      layers: ['features.0', 'features.3'],
    });
  }
  if (names.includes('resnet50'))
    cases.push({
      name: 'resnet50',
      onnx: path.join(CACHE, 'resnet50', 'model.onnx'),
      data: path.join(CACHE, `resnet50-random-${samples}.npz`),
      layers: ['layer3', 'layer4'],
    });
  const rows = [
    '| data set | layers | engine kernels | engine samples/s | zennit-crp samples/s | time ratio |',
    '|---|---|---|---|---|---|',
  ];
  for (const c of cases) {
    const reference = crp(c, samples);
    const ours = await engine(c);
    const best = reference && Math.max(...reference.runs.map((r) => r.samples_per_s));
    const [name, layers, kernels] = [
      `${c.name} (${ours.samples} samples)`,
      c.layers.join(', '),
      kernelsReport().split(' (')[0],
    ];
    const theirs = reference
      ? reference.runs
          .map((r) => `${r.samples_per_s.toFixed(1)} (${r.threads} thread${r.threads > 1 ? 's' : ''})`)
          .join(', ')
      : 'not run';
    const ratio = best ? (best / ours.perSecond).toFixed(2) : '–';
    rows.push(`| ${name} | ${layers} | ${kernels} | ${ours.perSecond.toFixed(1)} | ${theirs} | ${ratio} |`);
  }
  return rows.join('\n');
}

if (require.main === module) {
  const { opts } = parseArgs(process.argv.slice(2), [], ['cases', 'samples', 'backend']);
  void (async () => {
    await initBackend(opts.get('backend'));
    console.log(
      await analysisBench((opts.get('cases') ?? 'example,resnet50').split(','), Number(opts.get('samples') ?? 256)),
    );
  })().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
