/** One choice from a list, with the current value preselected (showQuickPick cannot preselect a single pick). */
import * as vscode from 'vscode';

export function pickOne<T extends vscode.QuickPickItem>(
  items: readonly T[],
  opts: { title: string; current?: (item: T) => boolean },
): Promise<T | undefined> {
  const qp = vscode.window.createQuickPick<T>();
  qp.title = opts.title;
  qp.items = items;
  qp.ignoreFocusOut = true;
  const current = opts.current && items.find(opts.current);
  if (current) qp.activeItems = [current];
  return new Promise((resolve) => {
    let chosen: T | undefined;
    qp.onDidAccept(() => {
      chosen = qp.selectedItems[0] ?? qp.activeItems[0];
      qp.hide();
    });
    qp.onDidHide(() => {
      qp.dispose();
      resolve(chosen);
    });
    qp.show();
  });
}
