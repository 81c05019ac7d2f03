/** HTML of the extension's webviews: local bundled script and stylesheet only, under a strict CSP with a nonce. */
import { randomBytes } from 'crypto';
import * as vscode from 'vscode';

export function webviewOptions(extensionUri: vscode.Uri): vscode.WebviewOptions {
  return { enableScripts: true, localResourceRoots: [vscode.Uri.joinPath(extensionUri, 'dist', 'webview')] };
}

export function webviewHtml(webview: vscode.Webview, extensionUri: vscode.Uri, script: 'panel' | 'layer-view', title: string): string {
  const nonce = randomBytes(16).toString('base64');
  const asset = (file: string) => webview.asWebviewUri(vscode.Uri.joinPath(extensionUri, 'dist', 'webview', file));
  const csp = [
    "default-src 'none'",
    `img-src ${webview.cspSource} data:`,
    `style-src ${webview.cspSource} 'nonce-${nonce}'`,
    `font-src ${webview.cspSource}`,
    `script-src 'nonce-${nonce}'`,
  ].join('; ');
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link rel="stylesheet" href="${asset('webview.css')}" nonce="${nonce}">
<title>${title}</title>
</head>
<body class="${script}">
<main id="root" aria-live="polite"><p class="empty">Run an attribution to see relevance here.</p></main>
<script nonce="${nonce}" src="${asset(`${script}.js`)}"></script>
</body>
</html>`;
}
