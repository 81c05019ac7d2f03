/**
 * Drives a real VS Code (code-server 4.96.4, installed by scripts/install-code-server.sh) in Debian's Chromium
 * through playwright-core, with the packaged .vsix installed — the way a user meets the extension.
 */
import { type ChildProcess, execFileSync, spawn } from 'child_process';
import { canHide, withSystemCopiesHidden } from '../system-libs';
import * as fs from 'fs';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import { type Browser, chromium, type Frame, type Locator, type Page } from 'playwright-core';

export const ROOT = path.resolve(__dirname, '../..');
export const VSIX = path.join(ROOT, 'relevance-lens.vsix');
/** Screenshots of every step land here (CI keeps them as artifacts). */
export const ARTIFACTS = path.join(ROOT, 'test-artifacts', 'e2e');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
/** Chromium as root on this machine: no sandbox, no GPU, nothing that reaches for the network. */
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-quic',
  '--no-first-run',
];

/** whether code-server runs with the system's oneDNN, OpenCL and OpenMP hidden (needs a private mount namespace) */
export const HIDE_SYSTEM_LIBS = canHide();

/** code-server's entry script (installing it first if needed; the install is cached). */
export function codeServerEntry(): string {
  const out = execFileSync(path.join(ROOT, 'scripts/install-code-server.sh'), {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return out.trim().split('\n').pop()!;
}

export function launchChromium(): Promise<Browser> {
  if (!fs.existsSync(CHROMIUM))
    throw new Error(`Chromium not found at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH)`);
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

export interface WorkbenchOptions {
  /** prefix of the logs saved in ARTIFACTS */
  name: string;
  /** files copied into a fresh workspace folder: name → source path or contents */
  files: Record<string, string | Buffer>;
  theme?: 'Default Dark Modern' | 'Default Light Modern';
  settings?: Record<string, unknown>;
}

export class Workbench {
  private constructor(
    readonly page: Page,
    readonly workspace: string,
    private readonly browser: Browser,
    private readonly server: ChildProcess,
    private readonly dir: string,
    private readonly log: () => string,
    private readonly name: string,
    /** console messages of the workbench and its webviews */
    readonly console: string[],
  ) {}

  /** Installs the .vsix into a fresh code-server, opens the workspace in Chromium and waits for the workbench. */
  static async open(opts: WorkbenchOptions): Promise<Workbench> {
    if (!fs.existsSync(VSIX)) throw new Error(`${VSIX} is missing: run npm run package first`);
    const entry = codeServerEntry();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'relevance-lens-e2e-'));
    const [userData, extensions, workspace] = ['user-data', 'extensions', 'workspace'].map((d) => path.join(dir, d));
    fs.mkdirSync(path.join(userData, 'User'), { recursive: true });
    fs.mkdirSync(workspace);
    for (const [name, src] of Object.entries(opts.files)) {
      const to = path.join(workspace, name);
      fs.mkdirSync(path.dirname(to), { recursive: true });
      if (Buffer.isBuffer(src)) fs.writeFileSync(to, src);
      else fs.copyFileSync(src, to);
    }
    fs.writeFileSync(
      path.join(userData, 'User', 'settings.json'),
      JSON.stringify({
        'security.workspace.trust.enabled': false,
        'workbench.startupEditor': 'none',
        'workbench.colorTheme': opts.theme ?? 'Default Dark Modern',
        'workbench.tips.enabled': false,
        'extensions.autoCheckUpdates': false,
        'extensions.autoUpdate': false,
        'telemetry.telemetryLevel': 'off',
        ...opts.settings,
      }),
    );
    const common = [
      '--config',
      path.join(dir, 'config.yaml'),
      '--user-data-dir',
      userData,
      '--extensions-dir',
      extensions,
    ];
    execFileSync(process.execPath, [entry, ...common, '--install-extension', VSIX], { stdio: 'pipe' });
    const port = await freePort();
    let log = '';
    const args = [
      entry,
      ...common,
      '--auth',
      'none',
      '--bind-addr',
      `127.0.0.1:${port}`,
      '--disable-telemetry',
      '--disable-update-check',
      workspace,
    ];
    // as on a machine without Debian's libdnnl2: the .vsix's native kernels must load from what it carries
    const run = HIDE_SYSTEM_LIBS.ok ? withSystemCopiesHidden(process.execPath, args) : { file: process.execPath, args };
    const server = spawn(run.file, run.args, { stdio: ['ignore', 'pipe', 'pipe'] });
    server.stdout!.on('data', (d) => (log += d));
    server.stderr!.on('data', (d) => (log += d));
    await waitFor(
      async () => {
        if (server.exitCode !== null) throw new Error(`code-server exited (${server.exitCode}):\n${log}`);
        return log.includes('HTTP server listening');
      },
      30_000,
      'code-server to listen',
    );
    const browser = await launchChromium();
    const page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
    const console: string[] = [];
    page.on('console', (m) => console.push(`${m.type()}: ${m.text()} @ ${m.location().url}`));
    await page.goto(`http://127.0.0.1:${port}/?folder=${encodeURIComponent(workspace)}`);
    await page.waitForSelector('.monaco-workbench', { timeout: 60_000 });
    // the extension host starts after the workbench shows
    await page.waitForSelector('.activitybar a.action-label[aria-label="Relevance Lens"]', { timeout: 60_000 });
    await page.waitForTimeout(1500);
    return new Workbench(page, workspace, browser, server, dir, () => log, opts.name, console);
  }

  async screenshot(name: string): Promise<string> {
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    const file = path.join(ARTIFACTS, `${name}.png`);
    await this.page.screenshot({ path: file });
    return file;
  }

  /** Runs a command from the palette (F1), by its title. */
  async command(title: string): Promise<void> {
    const input = this.page.locator('.quick-input-widget input[role="combobox"]');
    for (let attempt = 1; ; attempt++) {
      // keys typed while a webview has focus go to its iframe: give the focus back to the workbench first (a
      // webview just revealed can take it back: then again)
      await this.page.evaluate('document.activeElement && document.activeElement.blur()');
      await this.page.keyboard.press('F1');
      try {
        await input.waitFor({ state: 'visible', timeout: 5_000 });
        await input.fill(`>${title}`, { timeout: 5_000 });
        break;
      } catch (e) {
        if (attempt === 3) throw e;
        await this.page.keyboard.press('Escape');
      }
    }
    // Enter runs the focused row: wait until the filter has made it this command, not a recently used one
    const item = this.page.locator('.quick-input-list .monaco-list-row.focused', { hasText: title }).first();
    await item.waitFor({ state: 'visible' });
    await input.press('Enter');
  }

  /** The palette's commands whose titles match `filter` (the palette is closed again). */
  async paletteEntries(filter: string): Promise<string[]> {
    await this.page.evaluate('document.activeElement && document.activeElement.blur()');
    await this.page.keyboard.press('F1');
    const input = this.page.locator('.quick-input-widget input[role="combobox"]');
    await input.waitFor({ state: 'visible' });
    await input.fill(`>${filter}`);
    const rows = this.page.locator('.quick-input-list .monaco-list-row .label-name');
    await rows.first().waitFor({ state: 'visible' });
    // the list is virtual: scroll it through, collecting the rows
    const seen = new Set<string>();
    for (let i = 0; i < 40; i++) {
      const before = seen.size;
      for (const t of await rows.allInnerTexts()) seen.add(t.replace(/\s+/g, ' ').trim());
      await input.press('PageDown');
      if (seen.size === before && i > 0) break;
    }
    await input.press('Escape');
    return [...seen];
  }

  /** Picks an entry of the open quick pick by its text. */
  async pick(text: string): Promise<void> {
    const input = this.page.locator('.quick-input-widget input[role="combobox"]');
    await input.waitFor({ state: 'visible' }).catch(async (e) => {
      await this.screenshot(`failed-pick-${text.replace(/\W+/g, '_')}`);
      throw e;
    });
    await input.fill(text);
    await this.page
      .locator('.quick-input-list .monaco-list-row.focused', { hasText: text })
      .first()
      .waitFor({ state: 'visible' });
    await input.press('Enter');
  }

  explorerRow(name: string): Locator {
    return this.page.locator(`.explorer-folders-view .monaco-list-row:has(.monaco-icon-label[aria-label$="/${name}"])`);
  }

  /** The hook icon of a Model Layers row (not the inline Attach/Detach buttons). */
  hookIcon(id: string): Locator {
    return this.layerRow(id).locator('.custom-view-tree-node-item-icon.codicon-eye');
  }

  /** A row of the Model Layers tree; its aria-label starts with the layer id. */
  layerRow(id: string): Locator {
    return this.page.locator(`[id="workbench.view.extension.relevanceLens"] .monaco-list-row[aria-label^="${id},"]`);
  }

  /** Answers the open input box (after a quick pick, the same widget asks for a value). */
  async enterText(value: string, prompt: RegExp): Promise<void> {
    const widget = this.page.locator('.quick-input-widget');
    await waitFor(
      async () => prompt.test(await widget.innerText().catch(() => '')),
      10_000,
      `an input box asking ${prompt}`,
    );
    const input = widget.locator('.quick-input-box input');
    await input.fill(value);
    await input.press('Enter');
  }

  /**
   * Right-clicks a row and chooses a context-menu entry. A list can re-render under the pointer (the explorer
   * after files appear), so a menu without the entry is closed and the right-click tried again.
   */
  async contextMenu(row: Locator, entry: string): Promise<void> {
    const item = this.page.locator('.monaco-menu .action-label', { hasText: entry }).first();
    for (let attempt = 1; ; attempt++) {
      // a hover card left over a list (a file's path) would take the click: move the pointer away first
      await this.page.mouse.move(720, 5);
      await row.click({ button: 'right' });
      try {
        await item.waitFor({ state: 'visible', timeout: 3_000 });
        // the menu belongs to the row that took the focus: make sure that is ours
        if (!(await row.evaluate((el) => el.classList.contains('focused'))))
          throw new Error(`the context menu opened on another row than ${row}`);
        break;
      } catch (e) {
        if (attempt === 3) throw e;
        await this.page.keyboard.press('Escape');
        await this.page.waitForTimeout(500);
      }
    }
    // the menu ignores a click that arrives with no pointer movement over it; hover first, then press Enter on it
    await item.hover();
    await this.page.waitForTimeout(150);
    await this.page.keyboard.press('Enter');
    await item.waitFor({ state: 'hidden', timeout: 10_000 });
  }

  async showExplorer(): Promise<void> {
    await this.command('View: Show Explorer');
    await this.page.locator('.explorer-folders-view').waitFor({ state: 'visible' });
  }

  async openLayersView(): Promise<void> {
    const title = this.page.locator('.sidebar .composite.title h2');
    if (/Relevance Lens/i.test((await title.textContent().catch(() => '')) ?? '')) return;
    await this.page.locator('.activitybar a.action-label[aria-label="Relevance Lens"]').click();
    await this.page.locator('[id="workbench.view.extension.relevanceLens"]').waitFor({ state: 'visible' });
  }

  /** The innermost frame of a webview whose document has `selector` (webviews nest two iframes deep). */
  async webviewFrame(selector: string, timeoutMs = 30_000): Promise<Frame> {
    let found: Frame | undefined;
    await waitFor(
      async () => {
        for (const f of this.page.frames()) {
          if ((await f.$(selector).catch(() => null)) !== null) {
            found = f;
            return true;
          }
        }
        return false;
      },
      timeoutMs,
      `a webview with ${selector}`,
    );
    return found!;
  }

  /** Text of the notification toasts now showing. */
  async notifications(): Promise<string[]> {
    return this.page.locator('.notification-toast').allInnerTexts();
  }

  /**
   * A notification matching `pattern`: as a toast, or else in the notification centre (where VS Code puts
   * notifications it did not pop up as toasts).
   */
  async waitForNotification(pattern: RegExp, timeoutMs = 30_000): Promise<string> {
    let text = '';
    try {
      await waitFor(
        async () => {
          text = (await this.notifications()).find((t) => pattern.test(t)) ?? '';
          return text !== '';
        },
        timeoutMs,
        `a notification matching ${pattern}`,
      );
      return text;
    } catch (e) {
      await this.command('Notifications: Show Notifications');
      const all = await this.page.locator('.notifications-center .notification-list-item').allInnerTexts();
      await this.screenshot(`failed-notification-${pattern.source.replace(/\W+/g, '_')}`);
      await this.page.keyboard.press('Escape');
      const found = all.find((t) => pattern.test(t));
      if (found) return found;
      throw new Error(`${(e as Error).message}; notifications: ${JSON.stringify(all)}`, { cause: e });
    }
  }

  async clearNotifications(): Promise<void> {
    await this.command('Notifications: Clear All Notifications');
  }

  /** Pids of engine processes spawned by this code-server's copy of the extension. */
  enginePids(): number[] {
    const pids: number[] = [];
    for (const d of fs.readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
      try {
        const cmd = fs.readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0');
        if (cmd.some((a) => a.startsWith(this.dir) && a.endsWith('dist/engine.js')) && cmd.includes('serve'))
          pids.push(Number(d));
      } catch {
        // gone meanwhile
      }
    }
    return pids;
  }

  /** The extension's output channel ("Relevance Lens"), as code-server logs it. */
  extensionLog(): string {
    const found: string[] = [];
    const walk = (d: string) => {
      for (const e of fs.readdirSync(d, { withFileTypes: true })) {
        const p = path.join(d, e.name);
        if (e.isDirectory()) walk(p);
        else if (e.name.endsWith('Relevance Lens.log')) found.push(p);
      }
    };
    walk(path.join(this.dir, 'user-data', 'logs'));
    return found.map((f) => fs.readFileSync(f, 'utf8')).join('\n');
  }

  async close(): Promise<void> {
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    fs.writeFileSync(path.join(ARTIFACTS, `${this.name}-extension.log`), this.extensionLog());
    fs.writeFileSync(path.join(ARTIFACTS, `${this.name}-code-server.log`), this.log());
    await this.browser.close().catch(() => undefined);
    this.server.kill();
    await new Promise((r) => (this.server.exitCode !== null ? r(null) : this.server.once('exit', r)));
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

export async function waitFor(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

/** Pixel statistics of a canvas inside a webview frame: how many distinct colours, and its mean RGB. */
export function canvasStats(
  frame: Frame,
  selector: string,
): Promise<{ width: number; height: number; colours: number; mean: number[] }> {
  return frame.$eval(selector, (c) => {
    const canvas = c as HTMLCanvasElement;
    const { data } = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height);
    const colours = new Set<number>();
    const mean = [0, 0, 0];
    for (let i = 0; i < data.length; i += 4) {
      colours.add((data[i] << 16) | (data[i + 1] << 8) | data[i + 2]);
      for (let k = 0; k < 3; k++) mean[k] += data[i + k] / (data.length / 4);
    }
    return { width: canvas.width, height: canvas.height, colours: colours.size, mean };
  });
}
