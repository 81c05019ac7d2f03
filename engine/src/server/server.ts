import * as tf from '@tensorflow/tfjs-core';
import {
  CancellationToken,
  createMessageConnection,
  type MessageConnection,
  ResponseError,
  StreamMessageReader,
  StreamMessageWriter,
} from 'vscode-jsonrpc/node';
import { initBackend } from '../backend';
import { kernelsReport } from '../native';
import { ATTRIBUTORS } from '../attributors';
import { COMPOSITES, RULES } from '../composites';
import { EngineError, fail } from '../errors';
import { loadModel, type Model } from '../model';
import { type NdArray, size } from '../npy';
import { readInput, runAttribution } from '../run';
import { bounds, channelSum, COLOR_MAPS, topChannels } from '../shared/colormap';
import { FrameGuard } from './framing';
import * as P from './protocol';

const ENGINE_VERSION = '0.1.0';

interface OpenModel {
  model: Model;
  hooks: Set<string>;
  /** tensor ids of the latest run, dropped when the next run starts */
  tensors: string[];
}

/** Maps engine errors (and anything else) to JSON-RPC errors with codes a client can act on. */
function toResponseError(e: unknown): ResponseError<{ kind: string }> {
  if (e instanceof ResponseError) return e;
  if (e instanceof EngineError) return new ResponseError(P.ErrorCodes[e.code], e.message, { kind: e.code });
  const msg = (e as Error)?.message ?? String(e);
  if (/out of memory|allocation failed|Cannot enlarge memory/i.test(msg)) {
    return new ResponseError(P.ErrorCodes.OUT_OF_MEMORY, `out of memory: ${msg}`, { kind: 'OUT_OF_MEMORY' });
  }
  return new ResponseError(-32603, `internal error: ${msg}`, { kind: 'INTERNAL' });
}

function handle<Params, Result>(fn: (params: Params, token: CancellationToken) => Result | Promise<Result>) {
  return async (params: Params, token: CancellationToken) => {
    try {
      return await fn(params, token);
    } catch (e) {
      throw toResponseError(e);
    }
  };
}

export class EngineServer {
  private models = new Map<string, OpenModel>();
  private tensors = new Map<string, NdArray>();
  private nextId = 1;
  private backend?: string;

  constructor(private readonly connection: MessageConnection) {
    const c = connection;
    c.onRequest(P.Initialize, handle((p) => this.initialize(p)));
    c.onRequest(P.OpenModel, handle((p) => this.openModel(p)));
    c.onRequest(P.CloseModel, handle((p) => this.closeModel(p)));
    c.onRequest(P.AttachHooks, handle((p) => this.setHooks(p, true)));
    c.onRequest(P.DetachHooks, handle((p) => this.setHooks(p, false)));
    c.onRequest(P.ListHooks, handle((p) => ({ hooks: [...this.get(p.modelId).hooks] })));
    c.onRequest(P.RunAttribution, handle((p, token) => this.run(p, token)));
    c.onRequest(P.GetTensor, handle((p) => this.getTensor(p)));
    c.onRequest(P.Stats, () => this.stats());
    c.onRequest(P.Shutdown, () => this.shutdown());
    c.onNotification(P.Exit, () => process.exit(0));
  }

  private log(level: 'info' | 'warn' | 'error', message: string) {
    void this.connection.sendNotification(P.Log, { level, message });
  }

  private async initialize(p: P.InitializeParams): Promise<P.InitializeResult> {
    this.backend = await initBackend(p?.backend);
    const kernels = kernelsReport();
    this.log('info', `engine ${ENGINE_VERSION} on backend ${this.backend}, kernels: ${kernels}`);
    return {
      backend: this.backend,
      kernels,
      versions: { engine: ENGINE_VERSION, tfjs: tf.version_core, node: process.version },
      capabilities: {
        composites: Object.entries(COMPOSITES).map(([name, c]) => ({ name, description: c.description, params: c.params })),
        rules: Object.entries(RULES).map(([name, r]) => ({ name, params: r.params })),
        attributors: [...ATTRIBUTORS],
        colorMaps: Object.keys(COLOR_MAPS),
      },
    };
  }

  private requireInit() {
    if (!this.backend) fail('BAD_ARGUMENT', 'call initialize first');
  }

  private get(modelId: string): OpenModel {
    const m = this.models.get(modelId);
    if (!m) throw new ResponseError(P.ErrorCodes.UNKNOWN_MODEL, `no open model "${modelId}"`, { kind: 'UNKNOWN_MODEL' });
    return m;
  }

  private openModel(p: P.OpenModelParams): P.ModelInfo {
    this.requireInit();
    if (typeof p?.path !== 'string') fail('BAD_ARGUMENT', 'model/open needs a path');
    const model = loadModel(p.path);
    const modelId = `m${this.nextId++}`;
    this.models.set(modelId, { model, hooks: new Set(), tensors: [] });
    this.log('info', `opened ${p.path} as ${modelId}: ${model.graph.nodes.length} nodes`);
    const g = model.graph;
    return { modelId, source: g.source, format: g.format, layout: g.layout, inputShape: g.input.shape, tree: model.tree };
  }

  private closeModel(p: P.ModelRef): void {
    const m = this.get(p?.modelId);
    this.dropTensors(m);
    m.model.dispose();
    this.models.delete(p.modelId);
  }

  private setHooks(p: P.HookParams, attach: boolean): P.HookList {
    const m = this.get(p?.modelId);
    if (!Array.isArray(p.ids)) fail('BAD_ARGUMENT', 'hooks need ids: string[]');
    m.model.resolveLayers(p.ids);
    for (const id of p.ids) (attach ? m.hooks.add(id) : m.hooks.delete(id));
    return { hooks: [...m.hooks] };
  }

  private keep(m: OpenModel, t: NdArray): P.TensorRef {
    const tensorId = `t${this.nextId++}`;
    this.tensors.set(tensorId, t);
    m.tensors.push(tensorId);
    const b = bounds(t.data, false);
    let sum = 0;
    for (const v of t.data) sum += v;
    return { tensorId, shape: t.shape, min: b.min, max: b.max, sum };
  }

  private dropTensors(m: OpenModel) {
    for (const id of m.tensors) this.tensors.delete(id);
    m.tensors = [];
  }

  private readInputSpec(m: OpenModel, input: P.InputSpec): NdArray {
    if (!input || typeof input !== 'object') fail('BAD_ARGUMENT', 'attribution/run needs an input');
    if ('path' in input) return readInput(m.model, input.path, input.preprocess);
    if (!Array.isArray(input.shape) || typeof input.data !== 'string') fail('BAD_ARGUMENT', 'an inline input needs shape and base64 data');
    const data = P.decodeFloats(input.data);
    if (data.length !== size(input.shape)) fail('BAD_INPUT', `inline input has ${data.length} values for shape [${input.shape}]`);
    return { shape: input.shape, data };
  }

  private async run(p: P.RunParams & { workDoneToken?: string }, token: CancellationToken): Promise<P.RunResult> {
    this.requireInit();
    const m = this.get(p?.modelId);
    const input = this.readInputSpec(m, p.input);
    let lastReport = 0;
    const run = await runAttribution(
      m.model,
      input,
      {
        composite: p.composite,
        compositeParams: p.compositeParams,
        residual: p.residual,
        attributor: p.attributor,
        attributorParams: p.attributorParams,
        target: p.target,
        store: [...m.hooks],
        storeActivations: p.storeActivations,
      },
      {
        isCancelled: () => token.isCancellationRequested,
        onProgress: (done, total, layer) => {
          const now = Date.now();
          if (p.workDoneToken === undefined || now - lastReport < 50) return;
          lastReport = now;
          void this.connection.sendProgress(P.Progress, p.workDoneToken, { percentage: Math.round((100 * done) / total), message: layer });
        },
      },
    );
    this.dropTensors(m);
    const classes = run.output.shape[1] ?? 1;
    const topK = Array.from({ length: run.output.shape[0] }, (_, r) => {
      const logits = Array.from(run.output.data.subarray(r * classes, (r + 1) * classes));
      const mx = Math.max(...logits);
      const exp = logits.map((v) => Math.exp(v - mx));
      const z = exp.reduce((a, b) => a + b, 0);
      return logits
        .map((logit, c) => ({ class: c, logit, probability: exp[c] / z }))
        .sort((a, b) => b.logit - a.logit)
        .slice(0, p.topK ?? 5);
    });
    return {
      runId: `r${this.nextId++}`,
      backend: run.backend,
      kernels: run.kernels,
      composite: run.composite,
      attributor: run.attributor,
      target: run.target,
      timingMs: run.timingMs,
      input: this.keep(m, input),
      output: this.keep(m, run.output),
      topK,
      relevance: this.keep(m, run.relevance),
      layers: run.stored.map((l) => ({
        id: l.id,
        node: l.node,
        relevance: this.keep(m, l.relevance),
        ...(l.activation ? { activation: this.keep(m, l.activation) } : {}),
      })),
      sums: run.sums,
    };
  }

  private getTensor(p: P.TensorParams): P.TensorData | P.ChannelView {
    const t = this.tensors.get(p?.tensorId);
    if (!t) throw new ResponseError(P.ErrorCodes.UNKNOWN_TENSOR, `no tensor "${p?.tensorId}" (tensors live until the model's next run)`, { kind: 'UNKNOWN_TENSOR' });
    if ((p.view ?? 'full') === 'full') return { shape: t.shape, data: P.encodeFloats(t.data) };
    const model = [...this.models.values()].find((m) => m.tensors.includes(p.tensorId))!;
    const channelsFirst = model.model.graph.layout === 'NCHW';
    const row = p.row ?? 0;
    if (row < 0 || row >= t.shape[0]) fail('BAD_ARGUMENT', `row ${row} is out of range for shape [${t.shape}]`);
    const maps: P.ChannelMap[] = [];
    const add = (channel: number, height: number, width: number, values: Float32Array) => {
      const small = downsample(values, height, width, p.maxSize ?? 256);
      const b = bounds(small.values, false);
      let sum = 0;
      for (const v of values) sum += v;
      maps.push({ channel, height: small.height, width: small.width, min: b.min, max: b.max, sum, data: P.encodeFloats(small.values) });
    };
    const summed = channelSum(t.shape, t.data, row, channelsFirst);
    add(-1, summed.height, summed.width, summed.values);
    if (t.shape.length === 4) {
      const [, a, b, c] = t.shape;
      const [ch, h, w] = channelsFirst ? [a, b, c] : [c, a, b];
      for (const { channel } of topChannels(t.shape, t.data, row, channelsFirst, p.topK ?? 0)) {
        const values = new Float32Array(h * w);
        const base = row * a * b * c;
        for (let i = 0; i < h * w; i++) values[i] = t.data[base + (channelsFirst ? channel * h * w + i : i * ch + channel)];
        add(channel, h, w, values);
      }
    }
    return { shape: t.shape, maps };
  }

  private stats(): P.StatsResult {
    const mem = tf.memory();
    return { numTensors: mem.numTensors, numBytes: mem.numBytes, rssBytes: process.memoryUsage().rss, models: this.models.size, keptTensors: this.tensors.size };
  }

  private shutdown(): void {
    for (const id of [...this.models.keys()]) this.closeModel({ modelId: id });
  }
}

/** Block-averages a map so neither side exceeds maxSize. */
function downsample(values: Float32Array, height: number, width: number, maxSize: number): { height: number; width: number; values: Float32Array } {
  const f = Math.max(1, Math.ceil(Math.max(height, width) / maxSize));
  if (f === 1) return { height, width, values };
  const h = Math.ceil(height / f);
  const w = Math.ceil(width / f);
  const out = new Float32Array(h * w);
  const n = new Float32Array(h * w);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const k = Math.floor(y / f) * w + Math.floor(x / f);
      out[k] += values[y * width + x];
      n[k]++;
    }
  }
  for (let k = 0; k < out.length; k++) out[k] /= n[k];
  return { height: h, width: w, values: out };
}

/** Serves the protocol on stdin/stdout until the client sends exit or closes the pipe. */
export async function serveStdio(backend?: string): Promise<void> {
  // Keep console output off stdout, which carries the protocol.
  console.log = console.info = console.warn = (...args: unknown[]) => process.stderr.write(args.join(' ') + '\n');
  const guard = new FrameGuard((n) => process.stderr.write(`relevance-lens serve: dropped ${n} bytes that are not a JSON-RPC frame\n`));
  const reader = new StreamMessageReader(process.stdin.pipe(guard));
  const writer = new StreamMessageWriter(process.stdout);
  const connection = createMessageConnection(reader, writer);
  // Malformed input must not end the server: log it and keep reading.
  reader.onError((e) => process.stderr.write(`relevance-lens serve: bad message: ${e.message}\n`));
  new EngineServer(connection);
  connection.onClose(() => process.exit(0));
  connection.listen();
  if (backend) await initBackend(backend);
}
