/**
 * The model zoo at full size: every torchvision classification architecture as PyTorch's exporter writes it
 * (224×224, 299 for inception_v3, 1000 classes, seeded weights), made by test/zoo/make_fixtures.py --full in this
 * run, with PyTorch's float64 gradient, Zennit's float64 EpsilonPlusFlat and Zennit's float32 time measured there.
 * Prints a markdown table: loads, gradient error, LRP error, engine time beside Zennit's.
 *   npm run zoo [-- --only resnet18,vit_b_16] [--out DIR] [--repeat N]
 */
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { initBackend } from '../engine/src/graph/backend';
import { num, parseArgs } from '../engine/src/cli/args';
import { loadModel } from '../engine/src/graph/model';
import { kernelsReport } from '../engine/src/graph/native';
import { readNpy } from '../engine/src/io/npy';
import { runAttribution } from '../engine/src/lrp/attribution';
import { relativeErrorOf } from '../test/zoo/compare';

const ROOT = path.resolve(__dirname, '..');

async function main(): Promise<void> {
  const { opts } = parseArgs(process.argv.slice(2), [], ['only', 'out', 'repeat', 'backend']);
  const out = opts.get('out') ?? path.join(ROOT, '.zoo-cache', 'full');
  const repeat = num(opts, 'repeat') ?? 3;
  const args = [
    path.join(ROOT, 'test/zoo/make_fixtures.py'),
    out,
    '--full',
    ...(opts.has('only') ? ['--only', opts.get('only')!] : []),
  ];
  console.error(`making the full-size zoo and Zennit's references in ${out} …`);
  execFileSync(process.env.PYTHON ?? '/usr/bin/python3', args, {
    stdio: ['ignore', 'inherit', 'inherit'],
    // Zennit gets every core, as a user's notebook would; the references do not depend on the thread count
    env: {
      ...process.env,
      PYTHONPATH: path.resolve(ROOT, '../shared/reference/zennit-0.5.1/src'),
      ZOO_THREADS: process.env.ZOO_THREADS ?? String(os.cpus().length),
    },
  });
  const backend = await initBackend(opts.get('backend'));
  const rows: string[] = [];
  for (const name of fs
    .readdirSync(out)
    .filter((c) => fs.existsSync(path.join(out, c, 'manifest.json')))
    .sort()) {
    const dir = path.join(out, name);
    const m = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8'));
    const cell = (v: number | undefined, digits = 2) => (v === undefined ? '—' : v.toExponential(digits));
    let loadS: number;
    let model;
    try {
      const t0 = performance.now();
      model = await loadModel(path.join(dir, 'model.onnx'));
      loadS = (performance.now() - t0) / 1000;
    } catch (e) {
      rows.push(`| ${name} | fails: ${(e as Error).message.split('\n')[0]} | | | | | | | | |`);
      continue;
    }
    const input = await readNpy(path.join(dir, 'input.npy'));
    const gradient = await runAttribution(model, input, { composite: 'gradient', target: m.targets });
    const gradError = relativeErrorOf(gradient.relevance, await readNpy(path.join(dir, 'gradient', 'relevance.npy')));
    const times: number[] = [];
    let lrp;
    for (let k = 0; k <= repeat; k++) {
      lrp = await runAttribution(model, input, { composite: 'epsilon_plus_flat', target: m.targets });
      if (k > 0) times.push(lrp.timingMs / 1000); // the first run makes the rule-modified weights
    }
    const engineS = times.sort((a, b) => a - b)[Math.floor(times.length / 2)];
    // Zennit with an exact batch-norm merge where its canonizer merges inexactly (test/zoo/README.md)
    const referenceDir = m.epsilon_plus_flat_exact_bn ? 'epsilon_plus_flat_exact_bn' : 'epsilon_plus_flat';
    const reference = m.zennit.ok ? path.join(dir, referenceDir, 'relevance.npy') : undefined;
    const lrpError = reference ? relativeErrorOf(lrp!.relevance, await readNpy(reference)) : undefined;
    const zennitS: number | undefined = m.zennit_seconds_f32;
    const lrpCell = reference
      ? `${cell(lrpError)} | ${cell(m.zennit.f32_error, 1)} | ${cell(m.conditioning?.relevance, 1)}`
      : `finite: ${lrp!.relevance.data.every(Number.isFinite)} (Zennit fails: ${m.zennit.error}) | | `;
    const zennitCell = zennitS === undefined ? '—' : `${zennitS.toFixed(3)} s | ${(engineS / zennitS).toFixed(2)}`;
    rows.push(
      `| ${name} | ${loadS.toFixed(2)} s | ${cell(gradError)} | ${cell(m.gradient.f32_error, 1)} | ${lrpCell} | ${engineS.toFixed(3)} s | ${zennitCell} |`,
    );
    model.dispose();
    console.error(rows[rows.length - 1]);
  }
  console.log(`\nbackend ${backend}, kernels ${kernelsReport()}; median of ${repeat} attributions after the first\n`);
  // beside each error, how far float32 itself is from float64 there: PyTorch's / Zennit's own float32 result, and
  // how far Zennit's float64 result moves when every weight changes by float32's unit roundoff
  console.log(
    '| model | open | gradient vs PyTorch f64 | PyTorch f32 | epsilon_plus_flat vs Zennit f64 | Zennit f32 | unit-roundoff weights | engine | Zennit f32 | ratio |',
  );
  console.log('|---|---|---|---|---|---|---|---|---|---|');
  for (const row of rows) console.log(row);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
