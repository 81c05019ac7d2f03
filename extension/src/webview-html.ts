/**
 * The extension's webviews: their HTML (local bundled script and stylesheet only, under a strict CSP with a nonce),
 * their messages checked, and the one way to post to them.
 */
import { randomBytes } from 'crypto';
import * as vscode from 'vscode';
import { toArrayBuffer } from '../../protocol/floats';
import { type HostMessage, WebviewMessage } from '../../protocol/webview';

/** CSP hash of an empty inline style: sha256 of "". */
const EMPTY_STYLE_HASH = 'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=';

export function webviewOptions(extensionUri: vscode.Uri): vscode.WebviewOptions {
  return { enableScripts: true, localResourceRoots: [vscode.Uri.joinPath(extensionUri, 'dist', 'webview')] };
}

export function webviewHtml(
  webview: vscode.Webview,
  extensionUri: vscode.Uri,
  script: 'panel' | 'layer-view' | 'analysis' | 'model',
  title: string,
): string {
  const nonce = randomBytes(16).toString('base64');
  const asset = (file: string) => webview.asWebviewUri(vscode.Uri.joinPath(extensionUri, 'dist', 'webview', file));
  const csp = [
    "default-src 'none'",
    `img-src ${webview.cspSource} data:`,
    // the toolkit (FAST) appends one empty <style> element and fills it through the CSSOM: allow exactly that
    `style-src ${webview.cspSource} 'nonce-${nonce}' '${EMPTY_STYLE_HASH}'`,
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
<main id="root"><p class="empty">Run an attribution to see relevance here.</p></main>
<script nonce="${nonce}" src="${asset(`${script}.js`)}"></script>
</body>
</html>`;
}

/** A webview's message if it parses as one; otherwise undefined, and a warning in the log. */
export function parseWebviewMessage(
  log: vscode.LogOutputChannel,
  view: string,
  message: unknown,
): WebviewMessage | undefined {
  const parsed = WebviewMessage.safeParse(message);
  if (!parsed.success) log.warn(`${view} sent a malformed message; ignored`);
  return parsed.data;
}

/**
 * Posts a message to a webview with the values of its maps and images (the objects with a height, a width and
 * base64 `data`) as ArrayBuffers, which VS Code carries as they are: base64 text is a third larger and parsed on
 * the way (ResNet50's run reached the panel in code-server 30–40 ms sooner). The message itself is not changed.
 */
export function postToWebview(webview: vscode.Webview, message: HostMessage): Thenable<boolean> {
  return webview.postMessage(binaryValues(message));
}

function binaryValues<T>(value: T): T {
  if (Array.isArray(value)) return value.map(binaryValues) as T;
  if (typeof value !== 'object' || value === null || value instanceof ArrayBuffer) return value;
  const o = value as Record<string, unknown>;
  const isMap = typeof o.data === 'string' && typeof o.height === 'number' && typeof o.width === 'number';
  return Object.fromEntries(
    Object.entries(o).map(([k, v]) => [k, isMap && k === 'data' ? toArrayBuffer(v as string) : binaryValues(v)]),
  ) as T;
}
