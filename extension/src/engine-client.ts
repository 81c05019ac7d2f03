/**
 * The engine as a child process, like a language server: spawned with the extension host's own runtime, spoken to
 * in JSON-RPC over stdio (vscode-jsonrpc), restarted when it dies. Requests made while it restarts wait for it.
 */
import { type ChildProcess, spawn } from 'child_process';
import * as vscode from 'vscode';
import {
  CancellationTokenSource,
  createMessageConnection,
  type MessageConnection,
  type RequestType,
  ResponseError,
  StreamMessageReader,
  StreamMessageWriter,
} from 'vscode-jsonrpc/node';
import * as P from '../../protocol/engine';

/** Restarts allowed within CRASH_WINDOW_MS before the client gives up and asks the user. */
const MAX_CRASHES = 3;
const CRASH_WINDOW_MS = 60_000;

export class EngineStoppedError extends Error {}

export class EngineClient implements vscode.Disposable {
  private proc?: ChildProcess;
  private conn?: MessageConnection;
  private ready?: Promise<P.InitializeResult>;
  private crashes: number[] = [];
  private disposed = false;
  private nextToken = 1;
  private readonly restarted = new vscode.EventEmitter<P.InitializeResult>();
  private readonly stopped = new vscode.EventEmitter<void>();
  private readonly gaveUp = new vscode.EventEmitter<void>();
  /** Fires when the engine went away (crash or restart): state it held is gone until onDidRestart. */
  readonly onDidStop = this.stopped.event;
  /** Fires when the engine did not come back after onDidStop (too many crashes, or a failed start). */
  readonly onDidFailRestart = this.gaveUp.event;
  /** Fires after the engine came back from a crash or a restart; state held by the engine must be re-sent. */
  readonly onDidRestart = this.restarted.event;
  info?: P.InitializeResult;

  constructor(
    private readonly serverScript: string,
    private readonly log: vscode.LogOutputChannel,
    private readonly backend: () => string | undefined,
    /** where the engine keeps V8's code cache of its bundle (it starts sooner from it) */
    private readonly codeCache: string,
  ) {}

  get pid(): number | undefined {
    return this.proc?.pid;
  }

  /** Starts the engine if it is not running; resolves when it is initialised. */
  start(): Promise<P.InitializeResult> {
    this.ready ??= this.launch();
    return this.ready;
  }

  private async launch(): Promise<P.InitializeResult> {
    this.log.info(`starting engine: ${this.serverScript}`);
    const proc = spawn(process.execPath, [this.serverScript, 'serve', '--stdio'], {
      // the extension host may be Electron; run its binary as plain Node
      env: { ...process.env, ELECTRON_RUN_AS_NODE: '1', RELEVANCE_LENS_CACHE: this.codeCache },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.proc = proc;
    proc.stderr!.setEncoding('utf8');
    proc.stderr!.on('data', (d: string) => {
      for (const line of d.split('\n')) if (line.trim()) this.log.warn(`[engine] ${line}`);
    });
    const conn = createMessageConnection(new StreamMessageReader(proc.stdout!), new StreamMessageWriter(proc.stdin!));
    this.conn = conn;
    conn.onNotification(P.Log, (m) => this.log[m.level](`[engine] ${m.message}`));
    conn.listen();
    proc.on('error', (e) => this.log.error(`engine process error: ${e.message}`));
    proc.on('exit', (code, signal) => this.onExit(proc, code, signal));
    const info = await conn.sendRequest(P.Initialize, { backend: this.backend() });
    this.info = info;
    const { engine, tfjs, node } = info.versions;
    const on = `the ${info.backend} backend (kernels: ${info.kernels})`;
    this.log.info(`engine ${engine} running (pid ${proc.pid}) on ${on}, tfjs ${tfjs}, node ${node}`);
    return info;
  }

  private onExit(proc: ChildProcess, code: number | null, signal: NodeJS.Signals | null) {
    if (proc !== this.proc) return; // an old process we replaced on purpose
    this.conn?.dispose();
    this.conn = this.proc = this.ready = undefined;
    if (this.disposed) return;
    const how = signal ? `signal ${signal}` : `exit code ${code}`;
    this.log.error(`engine stopped unexpectedly (${how})`);
    this.stopped.fire();
    const now = Date.now();
    this.crashes = [...this.crashes.filter((t) => now - t < CRASH_WINDOW_MS), now];
    if (this.crashes.length > MAX_CRASHES) {
      this.gaveUp.fire();
      void vscode.window
        .showErrorMessage(
          `Relevance Lens: the engine stopped ${this.crashes.length} times in a minute (${how}); it was not restarted.`,
          'Restart Engine',
          'Show Log',
        )
        .then((choice) => {
          if (choice === 'Restart Engine') void this.restart();
          else if (choice === 'Show Log') this.log.show();
        });
      return;
    }
    void vscode.window
      .showWarningMessage(`Relevance Lens: the engine stopped (${how}) and was restarted.`, 'Show Log')
      .then((c) => c && this.log.show());
    // also in the status bar: VS Code may file the notification in the centre without a toast
    vscode.window.setStatusBarMessage(
      `$(debug-restart) Relevance Lens: engine restarted after it stopped (${how})`,
      15_000,
    );
    void this.start().then(
      (info) => this.restarted.fire(info),
      (e) => {
        this.log.error(`engine restart failed: ${(e as Error).message}`);
        this.gaveUp.fire();
      },
    );
  }

  /** Stops the running engine (if any) and starts a new one. */
  async restart(): Promise<P.InitializeResult> {
    this.stopped.fire();
    await this.stop();
    this.crashes = [];
    try {
      const info = await this.start();
      this.restarted.fire(info);
      return info;
    } catch (e) {
      this.gaveUp.fire();
      throw e;
    }
  }

  private async stop(): Promise<void> {
    const { proc, conn } = this;
    this.conn = this.proc = this.ready = undefined;
    if (!proc) return;
    const exited = new Promise((r) =>
      proc.exitCode !== null || proc.signalCode !== null ? r(null) : proc.once('exit', r),
    );
    try {
      await Promise.race([conn?.sendRequest(P.Shutdown), new Promise((r) => setTimeout(r, 1000))]);
      void conn?.sendNotification(P.Exit);
    } catch {
      // already gone
    }
    const timer = setTimeout(() => proc.kill('SIGKILL'), 2000);
    await exited;
    clearTimeout(timer);
    conn?.dispose();
  }

  /** Sends a request once the engine is up; a VS Code cancellation token becomes `$/cancelRequest`. */
  async request<Params, Result>(
    type: RequestType<Params, Result, void>,
    params: Params,
    token?: vscode.CancellationToken,
  ): Promise<Result> {
    await this.start();
    const conn = this.conn;
    if (!conn) throw new EngineStoppedError('the engine is not running');
    const source = new CancellationTokenSource();
    const sub = token?.onCancellationRequested(() => source.cancel());
    try {
      return await conn.sendRequest(type, params, source.token);
    } catch (e) {
      if (e instanceof ResponseError) throw e;
      // a request pending when the process died is rejected by a disposed connection
      throw new EngineStoppedError(`the engine stopped during ${type.method}`);
    } finally {
      sub?.dispose();
      source.dispose();
    }
  }

  /** A fresh work-done token and a subscription to its `$/progress` reports. */
  progress(onReport: (v: P.ProgressValue) => void): { token: string; dispose(): void } {
    const token = `p${this.nextToken++}`;
    const sub = this.conn?.onProgress(P.Progress, token, onReport);
    return { token, dispose: () => sub?.dispose() };
  }

  dispose(): void {
    this.disposed = true;
    void this.stop();
    this.restarted.dispose();
    this.stopped.dispose();
    this.gaveUp.dispose();
  }
}
