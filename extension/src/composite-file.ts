/**
 * The composite file beside the open model (`resnet50.composite.json`): the rules set from the tree, read and
 * written here only. Its problems (not JSON, not the schema, name-map patterns the engine finds no layer for) are
 * diagnostics in the Problems panel, live while the file is edited; a run refuses a malformed file with the same
 * message. The JSON Schema (package.json's jsonValidation) gives completion and hovers while editing by hand.
 */
import * as path from 'path';
import * as vscode from 'vscode';
import {
  type CompositeFile,
  compositeFileName,
  type FileProblem,
  formatProblem,
  locate,
  parseCompositeFile,
  position,
} from '../../protocol/composite-file';
import type { LayerRules } from '../../protocol/engine';

export type CompositeFileState =
  { kind: 'none' } | { kind: 'ok'; file: CompositeFile } | { kind: 'bad'; problems: FileProblem[] };

export class CompositeFileWatch implements vscode.Disposable {
  private readonly diagnostics = vscode.languages.createDiagnosticCollection('relevance-lens-composite');
  private readonly changed = new vscode.EventEmitter<void>();
  /** the file changed on disk (or appeared, or went): the rules may differ */
  readonly onDidChange = this.changed.event;
  uri?: vscode.Uri;
  state: CompositeFileState = { kind: 'none' };
  /** the engine's name-map patterns that match no layer, shown as diagnostics with the file's own problems */
  private unmatched: LayerRules['unmatched'] = [];
  private watcher?: vscode.Disposable;
  private readonly subs: vscode.Disposable[];

  constructor(private readonly log: vscode.LogOutputChannel) {
    const isOurs = (doc: vscode.TextDocument) => this.uri !== undefined && doc.uri.toString() === this.uri.toString();
    this.subs = [
      this.diagnostics,
      this.changed,
      // live diagnostics while the file is edited; the state follows what is saved
      vscode.workspace.onDidChangeTextDocument((e) => isOurs(e.document) && this.publish(e.document.getText())),
      vscode.workspace.onDidSaveTextDocument((doc) => isOurs(doc) && void this.load()),
    ];
  }

  /** Follows the composite file of the model at `modelPath` (none: no model). */
  async attach(modelPath: string | undefined): Promise<void> {
    this.watcher?.dispose();
    this.watcher = undefined;
    this.diagnostics.clear();
    this.unmatched = [];
    this.uri = modelPath
      ? vscode.Uri.file(path.join(path.dirname(modelPath), compositeFileName(path.basename(modelPath))))
      : undefined;
    if (this.uri) {
      const w = vscode.workspace.createFileSystemWatcher(
        new vscode.RelativePattern(vscode.Uri.file(path.dirname(this.uri.fsPath)), path.basename(this.uri.fsPath)),
      );
      const reload = () => void this.load();
      w.onDidCreate(reload);
      w.onDidChange(reload);
      w.onDidDelete(reload);
      this.watcher = w;
    }
    await this.load();
  }

  /** Reads the file from disk (absent: no composite file) and says what changed. */
  async load(): Promise<void> {
    const text = this.uri ? await this.read(this.uri) : undefined;
    if (text === undefined) this.state = { kind: 'none' };
    else {
      const parsed = parseCompositeFile(text);
      this.state = parsed.ok ? { kind: 'ok', file: parsed.file } : { kind: 'bad', problems: parsed.problems };
    }
    this.publish(text);
    this.changed.fire();
  }

  /** The engine's patterns that match no layer of the model. */
  setUnmatched(unmatched: LayerRules['unmatched']): void {
    this.unmatched = unmatched;
    const doc = vscode.workspace.textDocuments.find((d) => d.uri.toString() === this.uri?.toString());
    void (doc ? Promise.resolve(doc.getText()) : this.uri ? this.read(this.uri) : Promise.resolve(undefined)).then(
      (text) => this.publish(text),
    );
  }

  /** Why a run cannot use the file: its first problem as FILE:LINE:COLUMN: message (undefined when it can). */
  problem(): string | undefined {
    if (this.state.kind !== 'bad' || !this.uri) return undefined;
    const [first, ...more] = this.state.problems;
    const others = more.length ? ` (and ${more.length} more in the Problems panel)` : '';
    return `${formatProblem(vscode.workspace.asRelativePath(this.uri), first)}${others}`;
  }

  /** Rewrites the file as `edit` says (through the editor when it is open there, so nothing typed is lost). */
  async update(edit: (file: CompositeFile) => CompositeFile, fresh: () => CompositeFile): Promise<void> {
    const uri = this.uri ?? fail('no model is open');
    if (this.state.kind === 'bad') fail(`fix the composite file first: ${this.problem()}`);
    const current = this.state.kind === 'ok' ? this.state.file : fresh();
    const text = JSON.stringify(edit(current), null, 2) + '\n';
    const doc = vscode.workspace.textDocuments.find((d) => d.uri.toString() === uri.toString());
    if (doc) {
      const whole = new vscode.WorkspaceEdit();
      whole.replace(uri, new vscode.Range(0, 0, doc.lineCount, 0), text);
      await vscode.workspace.applyEdit(whole);
      await doc.save();
    } else {
      await vscode.workspace.fs.writeFile(uri, Buffer.from(text, 'utf8'));
    }
    await this.load();
  }

  private async read(uri: vscode.Uri): Promise<string | undefined> {
    try {
      return Buffer.from(await vscode.workspace.fs.readFile(uri)).toString('utf8');
    } catch (e) {
      if (!(e instanceof vscode.FileSystemError && e.code === 'FileNotFound'))
        this.log.warn(`composite file ${uri.fsPath}: ${(e as Error).message}`);
      return undefined;
    }
  }

  /** Diagnostics for `text`: its own problems, else the engine's unmatched patterns. */
  private publish(text: string | undefined): void {
    if (!this.uri) return;
    if (text === undefined) return void this.diagnostics.delete(this.uri);
    const parsed = parseCompositeFile(text);
    const problems = parsed.ok
      ? this.unmatched.map((u) => locate(text, u.path, `"${u.pattern}" matches no layer of the model`))
      : parsed.problems;
    const at = (offset: number) => {
      const { line, column } = position(text, offset);
      return new vscode.Position(line - 1, column - 1);
    };
    this.diagnostics.set(
      this.uri,
      problems.map((p) => {
        const d = new vscode.Diagnostic(
          new vscode.Range(at(p.offset), at(p.offset + Math.max(p.length, 1))),
          p.message,
          vscode.DiagnosticSeverity.Error,
        );
        d.source = 'Relevance Lens';
        return d;
      }),
    );
  }

  dispose(): void {
    this.watcher?.dispose();
    this.subs.forEach((d) => d.dispose());
  }
}

function fail(message: string): never {
  throw new Error(message);
}
