/** The webviews' side of the channel to the extension host: what they post, and every valid message they receive. */
import { HostMessage, type WebviewMessage } from '../../protocol/webview';

declare function acquireVsCodeApi(): { postMessage(m: WebviewMessage): void };

/** Calls `handle` with each message from the host that parses; malformed ones are dropped with a warning. */
export function connectHost(view: string, handle: (m: HostMessage) => void): { postMessage(m: WebviewMessage): void } {
  const api = acquireVsCodeApi();
  window.addEventListener('message', (e: MessageEvent) => {
    const parsed = HostMessage.safeParse(e.data);
    if (parsed.success) handle(parsed.data);
    else console.warn(`${view}: ignored a malformed message`);
  });
  return api;
}
