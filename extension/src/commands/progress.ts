/** An engine request with a cancellable progress notification: the engine's `$/progress` shown, Cancel cancelling it. */
import * as vscode from 'vscode';
import type { RequestType } from 'vscode-jsonrpc';
import type { Ctx } from '../context';

export async function requestWithProgress<Params extends { workDoneToken?: string | number }, Result>(
  ctx: Ctx,
  title: string,
  type: RequestType<Params, Result, void>,
  params: Omit<Params, 'workDoneToken'>,
): Promise<Result> {
  await ctx.engine.start();
  const progressOptions = { location: vscode.ProgressLocation.Notification, title, cancellable: true };
  return vscode.window.withProgress(progressOptions, async (progress, token) => {
    let done = 0;
    const work = ctx.engine.progress((v) => {
      progress.report({ increment: v.percentage - done, message: v.message });
      done = v.percentage;
    });
    try {
      return await ctx.engine.request(type, { ...params, workDoneToken: work.token } as Params, token);
    } finally {
      work.dispose();
    }
  });
}
