/**
 * Failures as a user meets them: a message that says what went wrong and what to do, with the actions that help
 * (the log, the operators the engine reads, a prepared report). The engine's internal messages are never shown
 * raw: they go to the log and into the report.
 */
import * as os from 'os';
import * as vscode from 'vscode';
import { ResponseError } from 'vscode-jsonrpc/node';
import * as P from '../../protocol/engine';
import type { Ctx } from './context';

const SHOW_LOG = 'Show Log';
const SUPPORTED_OPERATORS = 'Supported Operators';
const REPORT_ISSUE = 'Report Issue';

export interface UserError {
  message: string;
  actions: string[];
  /** the message as the engine gave it (for the log and the report) */
  detail: string;
}

const kindOf = (e: unknown) =>
  e instanceof ResponseError ? (e.data as { kind?: string } | undefined)?.kind : undefined;

/** The error as it is shown for the command titled `what`; undefined for a cancellation. */
export function userError(e: unknown, what: string): UserError | undefined {
  if (e instanceof ResponseError && e.code === P.ErrorCodes.CANCELLED) return undefined;
  if (e instanceof vscode.CancellationError) return undefined;
  const detail = (e as Error)?.message ?? String(e);
  if (kindOf(e) === 'INTERNAL')
    return {
      message: `${what} failed inside the engine. The log has the details; a report for the developers is one click away.`,
      actions: [SHOW_LOG, REPORT_ISSUE],
      detail,
    };
  if (e instanceof ResponseError && e.code === P.ErrorCodes.UNSUPPORTED_OP)
    return {
      message: `${detail}. Export the model with operators the engine reads (opset 11–17), or report the operator.`,
      actions: [SUPPORTED_OPERATORS, REPORT_ISSUE, SHOW_LOG],
      detail,
    };
  return { message: detail, actions: [SHOW_LOG], detail };
}

/** Shows `e` for the command titled `what`, with its actions; logs it. */
export async function showError(ctx: Ctx, e: unknown, what: string): Promise<void> {
  const err = userError(e, what);
  if (!err) return;
  ctx.log.error(`${what}: ${err.detail}`);
  const picked = await vscode.window.showErrorMessage(`Relevance Lens: ${shortenPaths(err.message)}`, ...err.actions);
  if (picked === SHOW_LOG) ctx.log.show();
  else if (picked === SUPPORTED_OPERATORS) await vscode.commands.executeCommand('relevanceLens.showSupportedOperators');
  else if (picked === REPORT_ISSUE) await openReport(ctx, { what, detail: err.detail });
}

/** Paths inside the workspace read better relative to it (the engine names files by absolute path). */
export function shortenPaths(msg: string): string {
  for (const f of vscode.workspace.workspaceFolders ?? []) msg = msg.split(f.uri.fsPath + '/').join('');
  return msg;
}

/** A pre-filled issue report, in an editor of its own for the user to read, complete and file. */
export async function openReport(ctx: Ctx, failure?: { what: string; detail: string }): Promise<void> {
  const info = ctx.engine.info;
  const m = ctx.model;
  const body = [
    `# Relevance Lens: ${failure ? `${failure.what} failed` : '<!-- a title -->'}`,
    '',
    '## What happened',
    '',
    ...(failure ? ['```', failure.detail, '```'] : ['<!-- what went wrong, and the message you saw -->']),
    '',
    '## What I did',
    '',
    '<!-- the steps, and the model if you can share it -->',
    '',
    '## Environment',
    '',
    `- Relevance Lens ${ctx.extension.extension.packageJSON.version} (engine ${info?.versions.engine ?? 'not running'})`,
    `- backend ${info?.backend ?? '–'}, kernels: ${info?.kernels ?? '–'}`,
    `- VS Code ${vscode.version}, Node ${info?.versions.node ?? process.version}, TF.js ${info?.versions.tfjs ?? '–'}`,
    `- ${os.platform()} ${os.release()} ${os.arch()}`,
    ...(m ? [`- model: ${m.info.format} with input [${m.info.inputShape.join(', ')}]`] : []),
    '',
    '<!-- The log (Relevance Lens: Show Log) helps: paste its last lines here. -->',
  ].join('\n');
  const doc = await vscode.workspace.openTextDocument({ language: 'markdown', content: body });
  await vscode.window.showTextDocument(doc);
}

/** Read-only documents the extension writes (the supported operators), shown as Markdown previews. */
export const DOC_SCHEME = 'relevance-lens';
const docs = new Map<string, string>();
export const docProvider: vscode.TextDocumentContentProvider = {
  provideTextDocumentContent: (uri) => docs.get(uri.path),
};

/** The operators the engine reads, from its own op tables, as a Markdown preview. */
export async function showSupportedOperators(ctx: Ctx): Promise<void> {
  const info = await ctx.engine.start();
  const list = (ops: string[]) => ops.map((o) => `\`${o}\``).join(', ');
  const content = [
    '# Operators Relevance Lens reads',
    '',
    `## ONNX (opsets 11–17, the default domain) — ${info.operators.onnx.length}`,
    '',
    list(info.operators.onnx),
    '',
    `## TF.js LayersModel (Keras layer classes) — ${info.operators.tfjs.length}`,
    '',
    list(info.operators.tfjs),
    '',
    '## When a model uses another operator',
    '',
    '- Export from PyTorch with `torch.onnx.export(model, x, "model.onnx", opset_version=17)`: the exporter then',
    '  writes the operators above for torchvision-style networks.',
    '- Custom autograd functions and ops from other domains (`com.microsoft`, …) are not read: replace them with',
    '  standard modules before exporting.',
    '- Or report the operator (Relevance Lens: Report Issue) with the model, if you can share it.',
  ].join('\n');
  const uri = vscode.Uri.from({ scheme: DOC_SCHEME, path: '/Supported Operators.md' });
  docs.set(uri.path, content);
  await vscode.commands.executeCommand('markdown.showPreview', uri);
}
