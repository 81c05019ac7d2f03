/** Registers a command whose failures become one error message naming the problem (and a log line). */
import * as vscode from 'vscode';
import type { Ctx } from '../context';
import { errorMessage } from '../engine-client';

export function register<A extends unknown[]>(ctx: Ctx, id: string, fn: (...args: A) => unknown): void {
  ctx.subscriptions.push(
    // VS Code passes whatever the caller gave: the command's own parameter types are its contract
    vscode.commands.registerCommand(id, async (...args: unknown[]) => {
      try {
        return await fn(...(args as A));
      } catch (e) {
        const msg = shortenPaths(errorMessage(e));
        ctx.log.error(`${id}: ${msg}`);
        if (msg !== 'cancelled') void vscode.window.showErrorMessage(`Relevance Lens: ${msg}`);
        return undefined;
      }
    }),
  );
}

/** Paths inside the workspace read better relative to it (the engine names files by absolute path). */
function shortenPaths(msg: string): string {
  for (const f of vscode.workspace.workspaceFolders ?? []) msg = msg.split(f.uri.fsPath + '/').join('');
  return msg;
}
