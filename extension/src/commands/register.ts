/** Registers a command whose failures become one error message with its actions (and a log line). */
import * as vscode from 'vscode';
import type { Ctx } from '../context';
import { showError } from '../errors';

export function register<A extends unknown[]>(ctx: Ctx, id: string, fn: (...args: A) => unknown): void {
  ctx.subscriptions.push(
    // VS Code passes whatever the caller gave: the command's own parameter types are its contract
    vscode.commands.registerCommand(id, async (...args: unknown[]) => {
      try {
        return await fn(...(args as A));
      } catch (e) {
        void showError(ctx, e, commandTitle(ctx, id));
        return undefined;
      }
    }),
  );
}

/** The command's title as the palette shows it ("Run Attribution"). */
function commandTitle(ctx: Ctx, id: string): string {
  const commands = (
    ctx.extension.extension.packageJSON as { contributes?: { commands?: { command: string; title: string }[] } }
  ).contributes?.commands;
  return commands?.find((c) => c.command === id)?.title.replace(/…$/, '') ?? id;
}
