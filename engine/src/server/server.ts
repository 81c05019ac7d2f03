import { randomUUID } from 'crypto';
import * as fs from 'fs';
import * as tf from '@tensorflow/tfjs-core';
import {
  CancellationToken,
  createMessageConnection,
  type MessageConnection,
  type RequestType,
  type RequestType0,
  ResponseError,
  StreamMessageReader,
  StreamMessageWriter,
} from 'vscode-jsonrpc/node';
import { z } from 'zod';
import * as P from '../../../protocol/engine';
import { decodeFloats, encodeBytes } from '../../../protocol/floats';
import { initBackend } from '../graph/backend';
import { kernelsReport } from '../graph/native';
import { COMPOSITES, normalizeResidual, runComposite } from '../lrp/composites';
import { layerRules } from '../lrp/layer-rules';
import { EngineError, fail, parseArgument } from '../errors';
import { type Model, openModel } from '../graph/model';
import { type NdArray, size } from '../ndarray';
import { readInput, runAttribution } from '../lrp/attribution';
import { classNamesFromMetadata } from '../io/class-metadata';
import { channelPage, exportTensor, inputImage, layerView, sumOf, topPredictions } from '../views';
import { FrameGuard } from './framing';
import { ONNX_OPS } from '../io/onnx-ops';
import { KERAS_LAYERS } from '../io/tfjs';
import { openDataset } from '../analysis/dataset';
import { AnalysisProgress, runAnalysis } from '../analysis/run';
import { analysisConfig } from '../analysis/analyze';

const ENGINE_VERSION = '0.1.0';
/** the exit code after a fatal backend failure (EX_SOFTWARE) */
const FATAL_EXIT_CODE = 70;

/** The tensors of a model's latest run, kept for tensor/export: the input relevance ('') and the stored layers. */
interface KeptRun {
  modelId: string;
  row: number;
  tensors: Map<string, NdArray>;
  /** the side its maps were drawn at most */
  maxSize?: number;
  /** the run's result as seen at another row */
  view: (row: number) => P.RunResult;
}

/** A row of a kept run's tensor, or the error a client can act on. */
function requireRow(row: number, t: NdArray): void {
  if (row >= t.shape[0]) fail('BAD_ARGUMENT', `row ${row} is out of range for the run's ${t.shape[0]} rows`);
}

/** Maps engine errors (and anything else) to JSON-RPC errors with codes a client can act on. */
function toResponseError(e: unknown): ResponseError<{ kind: string }> {
  if (e instanceof ResponseError) return e;
  if (e instanceof EngineError) return new ResponseError(P.ErrorCodes[e.code], e.message, { kind: e.code });
  const msg = (e as Error)?.message ?? String(e);
  if (/out of memory|allocation failed|Cannot enlarge memory|Invalid typed array length/i.test(msg)) {
    return new ResponseError(P.ErrorCodes.OUT_OF_MEMORY, `out of memory: ${msg}`, { kind: 'OUT_OF_MEMORY' });
  }
  return new ResponseError(-32603, `internal error: ${msg}`, { kind: 'INTERNAL' });
}

/**
 * A trap or abort inside WebAssembly (wasm running out of its 4 GiB, most often) leaves the module's memory broken:
 * every later call fails. Only a new process recovers, so the server answers and then exits, and the client restarts it.
 */
export function isFatal(e: unknown): boolean {
  // WebAssembly.RuntimeError (Node's types here do not declare the WebAssembly namespace)
  return e instanceof Error && e.name === 'RuntimeError';
}

function fatalError(method: string, backend: string | undefined, e: unknown): ResponseError<{ kind: string }> {
  return new ResponseError(
    P.ErrorCodes.OUT_OF_MEMORY,
    `${method}: the ${backend ?? 'wasm'} backend failed (${(e as Error).message}), most likely out of memory; ` +
      'the engine process exits and restarts (the cpu backend can hold larger tensors)',
    { kind: 'OUT_OF_MEMORY' },
  );
}

/** The request's parameters, checked against the protocol's schema: a BAD_ARGUMENT error names what is wrong. */
function parse<S extends z.ZodType>(method: string, schema: S, params: unknown): z.infer<S> {
  return parseArgument(method, schema, params ?? {});
}

export class EngineServer {
  private models = new Map<string, Model>();
  /** runId → tensors; one run per model, replaced by its next run */
  private runs = new Map<string, KeptRun>();
  /** each open model's weight load in the queue (settles, never rejects: its error is the model's) */
  private weightsLoad = new Map<string, Promise<unknown>>();
  private nextId = 1;
  private backend?: string;
  /** runs go one at a time, in the order they came */
  private queue: Promise<unknown> = Promise.resolve();
  /** models whose run in progress must stop (closed meanwhile, or the server shut down) */
  private stopping = new Set<string>();
  /** the last input file read, for the model it was read for (never changed: runs only read their input) */
  private lastInput?: { model: Model; key: string; input: NdArray };
  /** after shutdown only exit is served (LSP's rule) */
  private shutDown = false;

  /** `onFatal` must end the process soon after the failing request is answered (see isFatal) */
  constructor(
    private readonly connection: MessageConnection,
    private readonly onFatal: () => void,
  ) {
    this.serve(P.Initialize, P.InitializeParams, (p) => this.initialize(p));
    this.serve(P.OpenModel, P.OpenModelParams, (p) => this.openModel(p));
    this.serve(P.CloseModel, P.ModelRef, (p) => this.closeModel(p));
    this.serve(P.ModelWeights, P.ModelRef, (p) => this.weights(p));
    this.serve(P.ModelRules, P.RulesParams, (p) => this.rules(p));
    this.serve(P.RunAttribution, P.RunParams, (p, token) => this.run(p, token));
    this.serve(P.RunAnalysis, P.AnalysisParams, (p, token) => this.enqueue(() => this.analyze(p, token)));
    this.serve(P.ExportTensor, P.ExportParams, (p) => this.exportTensor(p));
    this.serve(P.ViewRun, P.ViewParams, (p) => this.viewRun(p));
    this.serve(P.PageChannels, P.ChannelPageParams, (p) => this.pageChannels(p));
    this.serve(P.Stats, z.unknown(), () => this.stats());
    this.serve(P.Shutdown, z.unknown(), () => this.shutdown());
    connection.onNotification(P.Exit, () => process.exit(0));
  }

  /** Registers a request handler: parameters validated, errors mapped, each request logged with its duration. */
  private serve<S extends z.ZodType, R>(
    type: RequestType<z.infer<S>, R, void> | RequestType0<R, void>,
    schema: S,
    fn: (params: z.infer<S>, token: CancellationToken) => R | Promise<R>,
  ) {
    // by method name: one handler shape for requests with and without parameters
    this.connection.onRequest(type.method, async (params: unknown, token: CancellationToken) => {
      const started = performance.now();
      if (this.shutDown) {
        throw new ResponseError(-32600, `${type.method}: the server is shut down; only exit is accepted`, {
          kind: 'SHUT_DOWN',
        });
      }
      try {
        const result = await fn(parse(type.method, schema, params), token);
        this.log('info', `${type.method} ${Math.round(performance.now() - started)} ms`);
        return result;
      } catch (e) {
        const fatal = isFatal(e);
        const error = fatal ? fatalError(type.method, this.backend, e) : toResponseError(e);
        this.log(
          fatal ? 'error' : 'info',
          `${type.method} failed after ${Math.round(performance.now() - started)} ms: ${error.message}`,
        );
        if (fatal) {
          this.shutDown = true;
          this.onFatal();
        }
        throw error;
      }
    });
  }

  private log(level: P.LogMessage['level'], message: string) {
    void this.connection.sendNotification(P.Log, { level, message });
  }

  private async initialize(p: P.InitializeParams): Promise<P.InitializeResult> {
    this.backend = await initBackend(p.backend);
    const kernels = kernelsReport();
    this.log('info', `engine ${ENGINE_VERSION} on backend ${this.backend}, kernels: ${kernels}`);
    return {
      backend: this.backend,
      kernels,
      versions: { engine: ENGINE_VERSION, tfjs: tf.version_core, node: process.version },
      composites: Object.entries(COMPOSITES).map(([name, c]) => ({
        name: name as keyof typeof COMPOSITES,
        description: c.description,
        params: c.params,
      })),
      operators: { onnx: Object.keys(ONNX_OPS).sort(), tfjs: Object.keys(KERAS_LAYERS).sort() },
    };
  }

  private requireInit() {
    if (!this.backend) fail('BAD_ARGUMENT', 'call initialize first');
  }

  private model(modelId: string): Model {
    const m = this.models.get(modelId);
    if (!m)
      throw new ResponseError(P.ErrorCodes.UNKNOWN_MODEL, `no open model "${modelId}"`, { kind: 'UNKNOWN_MODEL' });
    return m;
  }

  /**
   * Opens a model, queued like runs: a run's tensor scope spans its pauses between layers, and weights made
   * inside it would be freed when it ends.
   */
  private openModel(p: P.OpenModelParams): Promise<P.ModelInfo> {
    return this.enqueue(() => this.openModelNow(p));
  }

  private async openModelNow(p: P.OpenModelParams): Promise<P.ModelInfo> {
    this.requireInit();
    const model = await openModel(p.path);
    const modelId = `m${this.nextId++}`;
    this.models.set(modelId, model);
    this.log('info', `opened ${p.path} as ${modelId}: ${model.graph.nodes.length} nodes`);
    // the tree is answered now; the weights load next in the queue, so runs wait for them
    this.weightsLoad.set(
      modelId,
      this.enqueue(() => this.loadWeights(modelId, model)),
    );
    const g = model.graph;
    const classNames = g.metadata && classNamesFromMetadata(g.metadata);
    return {
      modelId,
      source: g.source,
      format: g.format,
      layout: g.layout,
      inputShape: g.input.shape,
      tree: model.tree,
      ...(classNames && { classNames }),
    };
  }

  private async loadWeights(modelId: string, model: Model): Promise<void> {
    const t0 = performance.now();
    try {
      await model.loadWeights({ isCancelled: () => this.stopping.has(modelId) });
      const mib = (model.paramBytes / 2 ** 20).toFixed(0);
      this.log('info', `${modelId}: weights (${mib} MiB) ready in ${((performance.now() - t0) / 1000).toFixed(2)} s`);
    } catch (e) {
      // a run of the model reports it again (the same promise); closing the model cancels it
      this.log('warn', `${modelId}: weights not loaded: ${(e as Error).message}`);
    }
  }

  /** Waits for the model's weights, loading in the queue since it opened (not queued itself: runs wait anyway). */
  private async weights(p: P.ModelRef): Promise<P.WeightsInfo> {
    const model = this.model(p.modelId);
    // the queued load (which closing the model stops) has settled: its outcome is the model's
    await this.weightsLoad.get(p.modelId);
    await model.loadWeights();
    return { bytes: model.paramBytes };
  }

  /** Closes a model; a run of it in progress is cancelled first. */
  private async closeModel(p: P.ModelRef): Promise<void> {
    this.model(p.modelId);
    this.stopping.add(p.modelId);
    await this.queue;
    this.stopping.delete(p.modelId);
    const model = this.models.get(p.modelId);
    if (!model) return; // closed meanwhile by another request

    this.dropRuns(p.modelId);
    if (this.lastInput?.model === model) this.lastInput = undefined;
    model.dispose();
    this.models.delete(p.modelId);
    this.weightsLoad.delete(p.modelId);
  }

  private dropRuns(modelId: string) {
    for (const [id, run] of this.runs) if (run.modelId === modelId) this.runs.delete(id);
  }

  private async readInputSpec(model: Model, input: P.InputSpec): Promise<NdArray> {
    if ('path' in input) {
      // runs on one image with other settings read and resize it once (the file's time and size say if it changed)
      const stat = await fs.promises.stat(input.path).catch(() => undefined);
      const key = stat && JSON.stringify([input.path, stat.mtimeMs, stat.size, input.preprocess ?? {}]);
      if (key && this.lastInput?.model === model && this.lastInput.key === key) return this.lastInput.input;
      const read = await readInput(model, input.path, input.preprocess);
      if (key) this.lastInput = { model, key, input: read };
      return read;
    }
    const data = decodeFloats(input.data);
    if (data.length !== size(input.shape))
      fail('BAD_INPUT', `inline input has ${data.length} values for shape [${input.shape}]`);
    return { shape: input.shape, data };
  }

  /** Queues a job behind those already asked for: the engine computes one at a time. */
  private enqueue<T>(work: () => Promise<T>): Promise<T> {
    const job = this.queue.then(work);
    this.queue = job.catch(() => undefined);
    return job;
  }

  /** Each layer's rule under a composite, as a run would assign them (no tensors: answered at once). */
  private rules(p: P.RulesParams): P.LayerRules {
    const model = this.model(p.modelId);
    const composite = runComposite(p);
    const unmatched: P.LayerRules['unmatched'] = [];
    const rules = layerRules(model, composite, normalizeResidual(p.residual), (pattern, k, j) =>
      unmatched.push({ pattern, path: ['nameMap', k, 'layers', j] }),
    );
    return { composite: composite?.name ?? 'gradient', layers: Object.fromEntries(rules), unmatched };
  }

  /** A data-set analysis into `p.out`, with progress (samples, rate, time left) and cancellation. */
  private async analyze(p: P.AnalysisParams, token: CancellationToken): Promise<P.AnalysisResult> {
    this.requireInit();
    const model = this.model(p.modelId);
    model.resolveLayers(p.layers);
    // loaded already (queued right after the open): a failure to load is this request's error
    await model.loadWeights();
    const data = await openDataset(p.data, model, p.preprocess);
    const config = analysisConfig({ ...p, model: model.graph.source });
    const progress = new AnalysisProgress();
    const { file, analysis } = await runAnalysis(model, data, config, p.out, p.references ?? 8, {
      isCancelled: () => token.isCancellationRequested || this.stopping.has(p.modelId),
      log: (line) => this.log('info', line),
      onProgress: (phase, done, total) => {
        if (p.workDoneToken === undefined) return;
        void this.connection.sendProgress(P.Progress, p.workDoneToken, {
          percentage: Math.round(100 * AnalysisProgress.fraction(phase, done, total)),
          message: progress.text(phase, done, total),
        });
      },
    });
    return { file, samples: analysis.samples, seconds: analysis.seconds };
  }

  private run(p: P.RunParams, token: CancellationToken): Promise<P.RunResult> {
    return this.enqueue(() => this.runNow(p, token));
  }

  private async runNow(p: P.RunParams, token: CancellationToken): Promise<P.RunResult> {
    this.requireInit();
    const model = this.model(p.modelId);
    await model.loadWeights();
    const input = await this.readInputSpec(model, p.input);
    // a conditional run has a row per input row and condition set (row n·K + k)
    const sets = p.conditions?.sets.length ?? 1;
    const row = p.view?.row ?? 0;
    if (row >= input.shape[0] * sets)
      fail('BAD_ARGUMENT', `view row ${row} is out of range for ${input.shape[0] * sets} rows`);
    let lastReport = 0;
    const { workDoneToken } = p;
    const run = await runAttribution(model, input, p, {
      isCancelled: () => token.isCancellationRequested || this.stopping.has(p.modelId),
      onProgress: (done, total, layer) => {
        const now = Date.now();
        if (workDoneToken === undefined || now - lastReport < 50) return;
        lastReport = now;
        void this.connection.sendProgress(P.Progress, workDoneToken, {
          percentage: Math.round((100 * done) / total),
          message: layer,
        });
      },
    });
    const runId = randomUUID();
    const layout = model.graph.layout;
    const ops = new Map(run.sums.map((s) => [s.id, s.op]));
    const rows = run.relevance.shape[0];
    const per = run.relevance.data.length / rows;
    const rowSums = Array.from({ length: rows }, (_, r) => sumOf(run.relevance.data.subarray(r * per, (r + 1) * per)));
    const view = (row: number): P.RunResult => {
      // no view draws the input's channels one by one: the channel sum only (it is most of what goes over the wire)
      const relevance = layerView('', 'input', run.relevance, layout, { ...p.view, row, topChannels: 0 });
      return {
        runId,
        backend: run.backend,
        kernels: run.kernels,
        composite: run.composite,
        attributor: run.attributor,
        target: run.target,
        ...(p.classWeights && { classWeights: p.classWeights }),
        timingMs: run.timingMs,
        row,
        topK: topPredictions(run.output, p.topK ?? 5),
        input: inputImage(input, layout, Math.floor(row / sets)),
        relevance,
        layers: run.stored.map((l) => layerView(l.id, ops.get(l.id) ?? '', l.relevance, layout, { ...p.view, row })),
        warnings: run.warnings,
        ...(p.conditions && {
          conditionRows: Array.from({ length: rows }, (_, r) =>
            layerView('', 'input', run.relevance, layout, { ...p.view, row: r, topChannels: 0 }),
          ),
        }),
        // the viewed row's, as the views are
        sums: [
          { id: '', op: 'input', sum: relevance.sum },
          ...run.sums.map((s) => ({ id: s.id, op: s.op, sum: s.rows[row] })),
        ],
        rowSums,
      };
    };
    if (p.keep ?? true) {
      this.dropRuns(p.modelId);
      const tensors = new Map<string, NdArray>([
        ['', run.relevance],
        ...run.stored.map((l): [string, NdArray] => [l.id, l.relevance]),
      ]);
      this.runs.set(runId, { modelId: p.modelId, row, tensors, maxSize: p.view?.maxSize, view });
    }
    return view(row);
  }

  /** Another row of the model's kept run, drawn as the run was. */
  private viewRun(p: P.ViewParams): P.RunResult {
    const run = this.keptRun(p.runId);
    requireRow(p.row, run.tensors.get('')!);
    return run.view(p.row);
  }

  /** A page of a kept run's layer channels, in the order asked for. */
  private pageChannels(p: P.ChannelPageParams): P.ChannelPage {
    const run = this.keptRun(p.runId);
    const t = this.keptTensor(run, p.layer);
    requireRow(p.row, t);
    if (t.shape.length !== 4) fail('BAD_ARGUMENT', `layer "${p.layer}" has no channel axis (shape [${t.shape}])`);
    return channelPage(t, this.model(run.modelId).graph.layout, p, run.maxSize);
  }

  private keptTensor(run: KeptRun, layer: string): NdArray {
    const t = run.tensors.get(layer);
    if (!t)
      throw new ResponseError(P.ErrorCodes.UNKNOWN_TENSOR, `the run stored no relevance for layer "${layer}"`, {
        kind: 'UNKNOWN_TENSOR',
      });
    return t;
  }

  private keptRun(runId: string): KeptRun {
    const run = this.runs.get(runId);
    if (!run)
      throw new ResponseError(
        P.ErrorCodes.UNKNOWN_TENSOR,
        `run "${runId}" is no longer held (tensors live until the model's next run)`,
        { kind: 'UNKNOWN_TENSOR' },
      );
    return run;
  }

  private exportTensor(p: P.ExportParams): P.ExportResult {
    const run = this.keptRun(p.runId);
    const t = this.keptTensor(run, p.layer);
    const row = p.row ?? run.row;
    requireRow(row, t);
    const { mimeType, bytes } = exportTensor(t, this.model(run.modelId).graph.layout, row, p);
    return { mimeType, data: encodeBytes(bytes) };
  }

  private stats(): P.StatsResult {
    // before initialize there is no backend to ask
    const mem = this.backend ? tf.memory() : { numTensors: 0, numBytes: 0 };
    return {
      numTensors: mem.numTensors,
      numBytes: mem.numBytes,
      rssBytes: process.memoryUsage().rss,
      models: this.models.size,
      keptRuns: this.runs.size,
    };
  }

  private async shutdown(): Promise<void> {
    this.shutDown = true;
    for (const id of [...this.models.keys()]) await this.closeModel({ modelId: id });
  }
}

/** Serves the protocol on stdin/stdout until the client sends exit or closes the pipe. */
export async function serveStdio(backend?: string): Promise<void> {
  // Keep console output off stdout, which carries the protocol.
  console.log = console.info = console.warn = (...args: unknown[]) => process.stderr.write(args.join(' ') + '\n');
  const guard = new FrameGuard((n, why) => process.stderr.write(`relevance-lens serve: dropped ${n} bytes: ${why}\n`));
  const reader = new StreamMessageReader(process.stdin.pipe(guard));
  const writer = new StreamMessageWriter(process.stdout);
  const connection = createMessageConnection(reader, writer);
  // Malformed input must not end the server: log it and keep reading.
  reader.onError((e) => process.stderr.write(`relevance-lens serve: bad message: ${e.message}\n`));
  // exit once what is written so far (the failed request's answer) has reached the client
  const exitFatally = () => setTimeout(() => process.stdout.write('', () => process.exit(FATAL_EXIT_CODE)), 50);
  new EngineServer(connection, exitFatally);
  connection.onClose(() => process.exit(0));
  connection.listen();
  if (backend) await initBackend(backend);
}
