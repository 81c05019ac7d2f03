#!/usr/bin/env node
import * as fs from 'fs';
import * as path from 'path';
import { initBackend } from '../graph/backend';
import { ATTRIBUTORS, normalizeAttributor } from '../lrp/attributors';
import {
  buildComposite,
  compositeFromFile,
  COMPOSITES,
  normalizeCompositeName,
  normalizeResidual,
} from '../lrp/composites';
import { layerRules } from '../lrp/layer-rules';
import { openDataset } from '../analysis/dataset';
import { AnalysisProgress, runAnalysis } from '../analysis/run';
import { analysisConfig } from '../analysis/analyze';
import { readCompositeFile } from '../io/composite-file';
import { classNamesFromMetadata } from '../io/class-metadata';
import type { CompositeFile } from '../../../protocol/composite-file';
import { EngineError, fail, parseArgument } from '../errors';
import type { LayerTreeItem } from '../graph/graph';
import { heatmapPng, type Preprocess } from '../io/image';
import { loadModel, type Model, openModel } from '../graph/model';
import { writeNpy } from '../io/npy';
import { FILE_LIMITS, readRegularFile } from '../io/files';
import type { Layout, NdArray } from '../ndarray';
import { type AttributionRun, readInput, runAttribution } from '../lrp/attribution';
import { AttributionOptions } from '../../../protocol/engine';
import { COLOR_MAPS } from '../shared/colormap';
import { serveStdio } from '../server/server';
import { num, numList, parseArgs } from './args';
import { OutputFolder } from './files';
import { layerFileNames } from '../io/files';
import { ONNX_OPS } from '../io/onnx-ops';
import { KERAS_LAYERS } from '../io/tfjs';

const USAGE = `relevance-lens — Layer-wise Relevance Propagation with Zennit's rules

usage:
  relevance-lens attribute MODEL --input FILE --out DIR [options]
  relevance-lens layers MODEL [--composite NAME] [--residual norm|gradient]
  relevance-lens analyze MODEL --data PATH --layer ID[,ID...] --out DIR [options]
  relevance-lens operators                 the ONNX operators and Keras layers the engine reads
  relevance-lens serve --stdio [--backend B]

MODEL is an ONNX file or a TF.js LayersModel model.json.

attribute options:
  --input FILE          .npy in the model's layout, or a PNG/JPEG (resized and normalized)
  --composite NAME|FILE.json  gradient (none), ${Object.keys(COMPOSITES).join(', ')}; default
                        epsilon_plus_flat; or a composite file (rules per layer type, per layer and for the first
                        layer over a built-in composite; schemas/composite.schema.json)
  --attributor NAME     ${ATTRIBUTORS.join(', ')}; default gradient
  --target I[,J...]     class per batch row (one value for all rows); default: the predicted class
  --residual norm|gradient  residual adds as Zennit's Sum modules (Norm rule; default) or plain additions
  --epsilon E --gamma G --stabilizer S --low L --high H   rule parameters (low/high: input bounds for ZBox)
  --output-relevance M  one_hot (default, as Zennit's tensor attr_output), logit (one-hot times output) or abs
                        (its absolute value); --init-rel is zennit-crp's name for it
  --class-weights C:W[,C:W...]  the output relevance as weighted classes instead of the target's one-hot
  --contrast A,B        "why A rather than B": one-hot(A) − one-hot(B) (class weights A:1,B:-1)
  --conditions FILE|JSON  concept-conditional relevance (zennit-crp): a list of condition sets such as
                        [{"y": [3], "features.10": [2]}, {"y": [3], "features.10": []}]; one result row each
  --exclude-parallel true|false  zennit-crp's exclude_parallel (default true): below a conditioned layer only
                        the relevance that passed through it
  --start-layer ID      start the relevance at this layer's output instead of the model's (a hidden unit as the
                        target, with --conditions on that layer); --output-relevance then means ones, the value
                        (logit) or its absolute value
  --n-iter N --noise-level F --window W --stride S --fill V   attributor parameters (--fill: Occlusion's
                        value for the occluded part, default 0)
  --baseline zeros|mean|blurred|FILE   IntegratedGradients' baseline (default zeros); FILE: an image or .npy, read
                        as the input is
  --store all|ID[,ID...]  layers whose relevance to save (store hooks); see 'layers'
  --backend B           tensorflow, wasm or cpu; default: the first that loads
  --size H,W --mean M1,M2,M3 --std S1,S2,S3   image preprocessing; default: the model's size, mean 0, std 1
  --cmap NAME           heatmap colour map: ${Object.keys(COLOR_MAPS).join(', ')}; default bwr
  --out DIR             writes output.npy, relevance.npy, layers/*.npy, summary.json (and heatmap PNGs for images)

analyze options (zennit-crp's FeatureVisualization: each sample attributed to its own label):
  --data PATH           a folder of class folders of PNG/JPEG images (ImageFolder) or an .npz with x and y
  --layer ID[,ID...]    the layers whose channels to rank (see 'layers')
  --composite NAME|FILE.json  as for attribute; default epsilon_plus_flat
  --top K               samples kept per channel, overall and per class (default 40, zennit-crp's)
  --batch N             samples per relevance pass (default 16)
  --references N        reference images per channel (default 8, 0 for none): its top RelMax samples cropped to
                        where its most relevant neuron looks, with that neuron's heatmap (zennit-crp's rf=True)
  --size --mean --std --residual --backend   as for attribute
  --out DIR             writes DIR/analysis.json after every batch: a stopped run resumes from it
`;

const ATTRIBUTE_OPTIONS = [
  'input',
  'composite',
  'residual',
  'attributor',
  'target',
  'epsilon',
  'gamma',
  'stabilizer',
  'low',
  'high',
  'store',
  'backend',
  'out',
  'size',
  'mean',
  'std',
  'cmap',
  'output-relevance',
  'init-rel',
  'class-weights',
  'contrast',
  'conditions',
  'exclude-parallel',
  'start-layer',
  'n-iter',
  'baseline',
  'noise-level',
  'window',
  'stride',
  'fill',
  'seed',
];

/** The attribution the options ask for, in the protocol's terms (the server is asked the same way). */
function attributionOptions(
  opts: Map<string, string>,
  model: Model,
  given: { conditions?: unknown; composite?: CompositeFile; preprocess: Preprocess },
): AttributionOptions {
  const store = opts.get('store');
  const { conditions, composite: file, preprocess } = given;
  if (opts.has('output-relevance') && opts.has('init-rel'))
    fail('BAD_ARGUMENT', '--output-relevance and --init-rel are one option: give one of them');
  // checked by the protocol's schema, as the server checks a request
  return parseArgument('options', AttributionOptions, {
    composite: file ? undefined : (normalizeCompositeName(opts.get('composite') ?? 'epsilon_plus_flat') ?? 'gradient'),
    compositeParams: file ? undefined : compositeParams(opts),
    customComposite: file,
    classWeights: classWeights(opts),
    residual: normalizeResidual(opts.get('residual')),
    attributor: normalizeAttributor(opts.get('attributor')),
    attributorParams: {
      nIter: num(opts, 'n-iter'),
      noiseLevel: num(opts, 'noise-level'),
      window: num(opts, 'window'),
      stride: num(opts, 'stride'),
      fill: num(opts, 'fill'),
      seed: num(opts, 'seed'),
      baseline: baselineOption(opts.get('baseline'), preprocess),
      outputRelevance: opts.get('output-relevance') ?? opts.get('init-rel'),
    },
    target: numList(opts, 'target'),
    conditions: conditions && { sets: conditions, excludeParallel: bool(opts, 'exclude-parallel') },
    startLayer: opts.get('start-layer'),
    store:
      store === undefined ? undefined : store === 'all' ? model.allLayerIds() : store.split(',').map((s) => s.trim()),
  });
}

/** --baseline: a kind, or a file read with the input's preprocessing. */
function baselineOption(given: string | undefined, preprocess: Preprocess) {
  if (given === undefined || ['zeros', 'mean', 'blurred'].includes(given)) return given;
  return { path: given, preprocess };
}

/** --epsilon, --gamma, …: a built-in composite's parameters (a composite file carries its own). */
function compositeParams(opts: Map<string, string>) {
  return {
    epsilon: num(opts, 'epsilon'),
    gamma: num(opts, 'gamma'),
    stabilizer: num(opts, 'stabilizer'),
    low: num(opts, 'low'),
    high: num(opts, 'high'),
  };
}

/** --composite FILE.json: a composite file; otherwise a composite's name (undefined here). */
async function readComposite(opts: Map<string, string>): Promise<CompositeFile | undefined> {
  const given = opts.get('composite');
  if (given === undefined || !given.toLowerCase().endsWith('.json')) return undefined;
  const own = ['epsilon', 'gamma', 'stabilizer', 'low', 'high'].filter((o) => opts.has(o));
  if (own.length)
    fail(
      'BAD_ARGUMENT',
      `--${own[0]} is a built-in composite's parameter; a composite file gives its rules' parameters`,
    );
  return readCompositeFile(given);
}

/** --class-weights 3:1,5:-0.5 or --contrast 3,5 (one-hot(3) − one-hot(5)). */
function classWeights(opts: Map<string, string>): AttributionOptions['classWeights'] {
  const weights = opts.get('class-weights');
  const contrast = numList(opts, 'contrast');
  if (weights !== undefined && contrast)
    fail('BAD_ARGUMENT', '--class-weights and --contrast are two ways to say one thing: give one');
  if (contrast) {
    if (contrast.length !== 2) fail('BAD_ARGUMENT', '--contrast takes two classes: A,B ("why A rather than B")');
    return [
      { class: contrast[0], weight: 1 },
      { class: contrast[1], weight: -1 },
    ];
  }
  if (weights === undefined) return undefined;
  return weights.split(',').map((pair) => {
    const m = /^\s*(\d+)\s*:\s*([+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?)\s*$/.exec(pair);
    if (!m) fail('BAD_ARGUMENT', `--class-weights takes CLASS:WEIGHT pairs such as 3:1,5:-1, not "${pair}"`);
    return { class: Number(m![1]), weight: Number(m![2]) };
  });
}

async function attributeCommand(argv: string[]): Promise<void> {
  const { positional, opts } = parseArgs(argv, [], ATTRIBUTE_OPTIONS);
  if (positional.length !== 1) fail('BAD_ARGUMENT', 'attribute needs exactly one MODEL');
  const inputFile = opts.get('input') ?? fail('BAD_ARGUMENT', '--input FILE is required');
  const out = opts.get('out') ?? fail('BAD_ARGUMENT', '--out DIR is required');
  const cmap = opts.get('cmap') ?? 'bwr';
  if (!Object.hasOwn(COLOR_MAPS, cmap))
    fail('BAD_ARGUMENT', `unknown colour map "${cmap}" (choose one of ${Object.keys(COLOR_MAPS).join(', ')})`);
  const backend = await initBackend(opts.get('backend'));
  const model = await loadModel(positional[0]);
  const size = numList(opts, 'size');
  if (size && size.length !== 2) fail('BAD_ARGUMENT', '--size takes H,W');
  const preprocess = {
    size: size as [number, number] | undefined,
    mean: numList(opts, 'mean'),
    std: numList(opts, 'std'),
  };
  const input = await readInput(model, inputFile, preprocess);
  const options = attributionOptions(opts, model, {
    preprocess,
    conditions: await readConditions(opts),
    composite: await readComposite(opts),
  });
  const folder = new OutputFolder(out);
  try {
    const done = await attributeInto(folder.dir, {
      model,
      modelFile: positional[0],
      inputFile,
      input,
      options,
      backend,
      cmap,
    });
    folder.commit();
    console.log(`${done}; written to ${out}`);
  } catch (e) {
    folder.discard();
    throw e;
  }
}

/** `--conditions`: a JSON list of condition sets, given inline or as a file. */
async function readConditions(opts: Map<string, string>): Promise<unknown> {
  const given = opts.get('conditions');
  if (given === undefined) {
    if (opts.has('exclude-parallel')) fail('BAD_ARGUMENT', '--exclude-parallel applies to --conditions');
    return undefined;
  }
  const inline = given.trimStart().startsWith('[');
  const text = inline
    ? given
    : (await readRegularFile(given, FILE_LIMITS.conditions, `--conditions ${given}`)).toString();
  try {
    return JSON.parse(text);
  } catch (e) {
    return fail('BAD_ARGUMENT', `--conditions ${inline ? '' : given + ' '}is not JSON (${(e as Error).message})`);
  }
}

function bool(opts: Map<string, string>, name: string): boolean | undefined {
  const v = opts.get(name);
  if (v === undefined) return undefined;
  if (v !== 'true' && v !== 'false') fail('BAD_ARGUMENT', `--${name} takes true or false, not "${v}"`);
  return v === 'true';
}

/** Runs the attribution and writes its files into `out`. */
async function attributeInto(
  out: string,
  a: {
    model: Model;
    modelFile: string;
    inputFile: string;
    input: NdArray;
    options: AttributionOptions;
    backend: string;
    cmap: string;
  },
): Promise<string> {
  const { model, inputFile, backend, cmap } = a;
  const run = await runAttribution(model, a.input, a.options);
  const isImage = !inputFile.toLowerCase().endsWith('.npy');
  const files = writeRun(
    out,
    run,
    isImage ? { layout: model.graph.layout, cmap, conditions: a.options.conditions !== undefined } : undefined,
  );
  const relevanceSum = run.relevance.data.reduce((a, b) => a + b, 0);
  const summary = {
    backend,
    kernels: run.kernels,
    model: a.modelFile,
    input: inputFile,
    composite: run.composite,
    attributor: run.attributor,
    target: run.target,
    ...(a.options.classWeights && { class_weights: a.options.classWeights }),
    timing_ms: run.timingMs,
    output: Array.from(run.output.data),
    relevance_sum: relevanceSum,
    warnings: run.warnings,
    ...(a.options.conditions && conditionSummary(a.input.shape[0], a.options.conditions, run)),
    layers: summaryLayers(run, files),
  };
  fs.writeFileSync(path.join(out, 'summary.json'), JSON.stringify(summary, null, 2) + '\n');
  // the class names the model file carries (its metadata), when it does
  const names = model.graph.metadata && classNamesFromMetadata(model.graph.metadata)?.names;
  const target = run.target.map((c) => (names?.[c] ? `${c} (${names[c]})` : `${c}`)).join(',');
  const what = `composite: ${run.composite}; attributor: ${run.attributor}; target: ${target}`;
  console.log(`backend: ${backend}; kernels: ${run.kernels}; ${what}; ${run.timingMs} ms`);
  for (const warning of run.warnings) process.stderr.write(`relevance-lens: warning: ${warning}\n`);
  const sums = a.options.conditions
    ? `relevance sums at the input per condition set: ${rowSums(run.relevance)
        .map((v) => v.toPrecision(4))
        .join(', ')}`
    : `relevance sum at the input: ${relevanceSum.toPrecision(6)}`;
  return `${sums}; ${run.stored.length} stored layers`;
}

/** The sum of each batch row. */
function rowSums(t: NdArray): number[] {
  const per = t.data.length / t.shape[0];
  return Array.from({ length: t.shape[0] }, (_, r) =>
    t.data.subarray(r * per, (r + 1) * per).reduce((a, b) => a + b, 0),
  );
}

/** summary.json's account of a conditional run: the sets, and which input row and set each result row is. */
function conditionSummary(
  batch: number,
  conditions: NonNullable<AttributionOptions['conditions']>,
  run: AttributionRun,
) {
  const sums = rowSums(run.relevance);
  return {
    conditions: conditions.sets,
    exclude_parallel: conditions.excludeParallel ?? true,
    rows: Array.from({ length: batch * conditions.sets.length }, (_, r) => ({
      input_row: Math.floor(r / conditions.sets.length),
      condition: r % conditions.sets.length,
      relevance_sum: sums[r],
    })),
  };
}

/** The run's arrays as .npy (and, for an image input, heatmap PNGs); returns each stored layer's file. */
function writeRun(
  out: string,
  run: AttributionRun,
  heatmaps?: { layout: Layout; cmap: string; conditions: boolean },
): Map<string, string> {
  fs.mkdirSync(path.join(out, 'layers'), { recursive: true });
  writeNpy(path.join(out, 'output.npy'), run.output);
  writeNpy(path.join(out, 'relevance.npy'), run.relevance);
  const files = new Map<string, string>();
  const names = layerFileNames(run.stored.map((l) => l.id));
  for (const layer of run.stored) {
    const file = `layers/${names.get(layer.id)}.npy`;
    writeNpy(path.join(out, file), layer.relevance);
    files.set(layer.id, file);
    if (heatmaps && layer.relevance.shape.length === 4) {
      const png = heatmapPng(layer.relevance, 0, heatmaps.layout, heatmaps.cmap, 4);
      fs.writeFileSync(path.join(out, `layers/${names.get(layer.id)}.png`), png);
    }
  }
  if (heatmaps && !heatmaps.conditions) {
    fs.writeFileSync(path.join(out, 'heatmap.png'), heatmapPng(run.relevance, 0, heatmaps.layout, heatmaps.cmap, 8));
  } else if (heatmaps) {
    // a conditional run: one heatmap per row (per condition set)
    fs.mkdirSync(path.join(out, 'conditions'));
    for (let r = 0; r < run.relevance.shape[0]; r++) {
      const png = heatmapPng(run.relevance, r, heatmaps.layout, heatmaps.cmap, 8);
      fs.writeFileSync(path.join(out, `conditions/${r}.png`), png);
    }
  }
  return files;
}

/** summary.json's layers: every node's sum, then any stored container (which has no node of its own). */
function summaryLayers(run: AttributionRun, files: Map<string, string>) {
  const nodes = run.sums.map((s) => ({
    id: s.id,
    node: s.node,
    op: s.op,
    shape: s.shape,
    file: files.get(s.id) ?? null,
    sum: s.sum,
  }));
  const containers = run.stored
    .filter((l) => !run.sums.some((s) => s.id === l.id))
    .map((l) => ({
      id: l.id,
      node: l.node,
      op: 'container',
      shape: l.relevance.shape,
      file: files.get(l.id) ?? null,
      sum: l.relevance.data.reduce((a, b) => a + b, 0),
    }));
  return [...nodes, ...containers];
}

async function layersCommand(argv: string[]): Promise<void> {
  const { positional, opts } = parseArgs(argv, [], ['backend', 'composite', 'residual', 'low', 'high']);
  if (positional.length !== 1) fail('BAD_ARGUMENT', 'layers needs exactly one MODEL');
  await initBackend(opts.get('backend'));
  // the structure alone: the weights stay in the file
  const model = await openModel(positional[0]);
  const file = await readComposite(opts);
  // each node's rule under the composite (on the canonized graph, where batch-norms joined their layers)
  const compositeName = file
    ? opts.get('composite')
    : normalizeCompositeName(opts.get('composite') ?? 'epsilon_plus_flat');
  const composite = file
    ? compositeFromFile(file)
    : compositeName
      ? buildComposite(compositeName, { low: num(opts, 'low') ?? -1, high: num(opts, 'high') ?? 1 })
      : undefined;
  const rules = layerRules(model, composite, normalizeResidual(opts.get('residual')));
  const ruleOf = (id: string) => {
    const r = rules.get(id);
    return r ? `  ${r.rule}${r.set ? '  (set in the file)' : ''}` : '';
  };
  const print = (items: LayerTreeItem[], depth: number) => {
    for (const item of items) {
      const params = item.params ? `  ${item.params} params` : '';
      const rule = item.children.length ? '' : ruleOf(item.id);
      console.log(`${'  '.repeat(depth)}${item.id}  ${item.op}  [${item.shape.join(', ')}]${params}${rule}`);
      print(item.children, depth + 1);
    }
  };
  const { source, input, layout } = model.graph;
  console.log(`${source}: input [${input.shape.join(', ')}] (${layout}); rules of ${compositeName ?? 'gradient'}`);
  print(model.tree, 1);
}

async function analyzeCommand(argv: string[]): Promise<void> {
  const { positional, opts } = parseArgs(
    argv,
    [],
    ['data', 'layer', 'composite', 'residual', 'top', 'batch', 'references', 'size', 'mean', 'std', 'backend', 'out'],
  );
  if (positional.length !== 1) fail('BAD_ARGUMENT', 'analyze needs exactly one MODEL');
  const dataPath = opts.get('data') ?? fail('BAD_ARGUMENT', '--data PATH is required');
  const out = opts.get('out') ?? fail('BAD_ARGUMENT', '--out DIR is required');
  const layers = (opts.get('layer') ?? fail('BAD_ARGUMENT', '--layer ID[,ID...] is required'))
    .split(',')
    .map((l) => l.trim());
  await initBackend(opts.get('backend'));
  const model = await loadModel(positional[0]);
  model.resolveLayers(layers);
  const size = numList(opts, 'size');
  if (size && size.length !== 2) fail('BAD_ARGUMENT', '--size takes H,W');
  const data = await openDataset(dataPath, model, {
    size: size as [number, number] | undefined,
    mean: numList(opts, 'mean'),
    std: numList(opts, 'std'),
  });
  const file = await readComposite(opts);
  const config = analysisConfig({
    model: positional[0],
    data: dataPath,
    layers,
    ...(file
      ? { customComposite: file }
      : { composite: normalizeCompositeName(opts.get('composite') ?? 'epsilon_plus_flat') ?? 'gradient' }),
    residual: normalizeResidual(opts.get('residual')),
    top: num(opts, 'top'),
    batch: num(opts, 'batch'),
  });
  const progress = new ProgressLine();
  const { file: written } = await runAnalysis(model, data, config, out, num(opts, 'references') ?? 8, {
    onProgress: (phase, done, total) => progress.update(phase, done, total),
    log: (line) => {
      progress.end();
      console.log(line);
    },
  });
  progress.end();
  console.log(`written to ${written}`);
}

/** The analysis's progress on stderr, one line rewritten in place on a terminal (a line each otherwise). */
class ProgressLine {
  private readonly progress = new AnalysisProgress();
  private open = false;

  update(phase: 'samples' | 'references', done: number, total: number): void {
    const line = `analyze: ${this.progress.text(phase, done, total)}`;
    this.open = process.stderr.isTTY;
    process.stderr.write(process.stderr.isTTY ? `\r${line}\x1b[K` : `${line}\n`);
  }

  end(): void {
    if (this.open) process.stderr.write('\n');
    this.open = false;
  }
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  // `relevance-lens attribute --help` is a question too, not an unknown option
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(USAGE);
    return 0;
  }
  try {
    switch (command) {
      case 'attribute':
        await attributeCommand(rest);
        return 0;
      case 'layers':
        await layersCommand(rest);
        return 0;
      case 'analyze':
        await analyzeCommand(rest);
        return 0;
      case 'operators':
        process.stdout.write(
          `ONNX (opsets 11–17): ${Object.keys(ONNX_OPS).sort().join(', ')}\n` +
            `TF.js LayersModel: ${Object.keys(KERAS_LAYERS).sort().join(', ')}\n`,
        );
        return 0;
      case 'serve': {
        const { opts } = parseArgs(rest, ['stdio'], ['backend']);
        if (!opts.has('stdio')) fail('BAD_ARGUMENT', 'serve supports --stdio only');
        await serveStdio(opts.get('backend'));
        return -1;
      }
      case undefined:
      case '--help':
      case '-h':
      case 'help':
        process.stdout.write(USAGE);
        return command === undefined ? 2 : 0;
      default:
        fail('BAD_ARGUMENT', `unknown command "${command}" (attribute, layers, analyze, operators, serve)`);
    }
  } catch (e) {
    const msg = e instanceof EngineError ? e.message : `internal error: ${(e as Error).stack ?? e}`;
    process.stderr.write(`relevance-lens: ${msg.split('\n')[0]}\n`);
    if (e instanceof EngineError && e.code === 'UNSUPPORTED_OP')
      process.stderr.write('relevance-lens: `relevance-lens operators` lists the operators the engine reads\n');
    return e instanceof EngineError ? 1 : 70;
  }
}
