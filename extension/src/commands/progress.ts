/**
 * An engine request with a cancellable progress notification: the engine's `$/progress` shown, Cancel cancelling
 * it. The notification appears once the request has run for NOTIFY_AFTER_MS; until then the status bar says what
 * runs. A notification that flashes for half a second is noise, and drawing its progress takes a core from the
 * engine on a two-core machine (ResNet50's attribution in code-server: 450–650 ms beside it, 230–310 ms without).
 */
import * as vscode from 'vscode';
import type { RequestType } from 'vscode-jsonrpc';
import type * as P from '../../../protocol/engine';
import type { Ctx } from '../context';

export const NOTIFY_AFTER_MS = 1000;

export async function requestWithProgress<Params extends { workDoneToken?: string | number }, Result>(
  ctx: Ctx,
  title: string,
  type: RequestType<Params, Result, void>,
  params: Omit<Params, 'workDoneToken'>,
): Promise<Result> {
  await ctx.engine.start();
  const cancel = new vscode.CancellationTokenSource();
  // the latest progress, shown by the notification once it is open
  let latest: P.ProgressValue | undefined;
  let show: ((v: P.ProgressValue) => void) | undefined;
  const work = ctx.engine.progress((v) => {
    latest = v;
    show?.(v);
  });
  const request = ctx.engine.request(type, { ...params, workDoneToken: work.token } as Params, cancel.token);
  const status = vscode.window.setStatusBarMessage(`${title}…`);
  const notify = setTimeout(() => {
    const options = { location: vscode.ProgressLocation.Notification, title, cancellable: true };
    void vscode.window.withProgress(options, (progress, token) => {
      token.onCancellationRequested(() => cancel.cancel());
      let done = 0;
      show = (v) => {
        progress.report({ increment: v.percentage - done, message: v.message });
        done = v.percentage;
      };
      if (latest) show(latest);
      // closes when the request settles (its error is the caller's to show)
      return request.catch(() => undefined);
    });
  }, NOTIFY_AFTER_MS);
  try {
    return await request;
  } finally {
    clearTimeout(notify);
    status.dispose();
    work.dispose();
    cancel.dispose();
  }
}
