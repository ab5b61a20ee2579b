import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import type { Browser, CDPSession, Page } from 'playwright-core';
import { DashboardController, type DashboardDeps } from '../../src/extension/dashboard/dashboardController';
import { createNonce, dashboardHtml } from '../../src/extension/dashboard/dashboardHtml';
import type { HostMessage } from '../../src/shared/dashboardProtocol';

export const ROOT = path.resolve(__dirname, '..', '..');
const ASSETS = path.join(ROOT, 'dist', 'webview');
export const CHROMIUM = process.env['SPARKQ_CHROMIUM'] ?? '/usr/bin/chromium';

export async function launchBrowser(): Promise<Browser> {
  if (!fs.existsSync(path.join(ASSETS, 'dashboard.js'))) throw new Error('dist/webview/dashboard.js is missing: run `npm run build` first');
  const { chromium } = await import('playwright-core');
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

/**
 * The built dashboard bundle in a page of its own, as VS Code would show it: the same HTML and CSP (with this
 * server's origin as `cspSource`), `acquireVsCodeApi` wired to a DashboardController in this process, and the
 * host's messages delivered as `message` events. A fake host, but the real protocol handling on both sides.
 */
export interface DashboardPage {
  page: Page;
  /** The page's DevTools session, which carries the webview's messages both ways. */
  cdp: CDPSession;
  controller: DashboardController;
  /** Every message the webview sent, as received (before validation). */
  received: unknown[];
  /** Loads the dashboard (done already unless `navigate: false`). */
  goto(): Promise<void>;
  close(): Promise<void>;
}

export async function openDashboard(browser: Browser, deps: Omit<DashboardDeps, 'post'>, opts: { state?: unknown; theme?: 'light' | 'dark'; navigate?: boolean } = {}): Promise<DashboardPage> {
  const nonce = createNonce();
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname === '/') {
      const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      let html = dashboardHtml({ cspSource: origin, scriptUri: `${origin}/assets/dashboard.js`, nonce });
      // What VS Code adds to every webview: acquireVsCodeApi and the theme's variables (a few, for the harness).
      const vars = opts.theme === 'light' ? LIGHT : DARK;
      const preamble = `<style nonce="${nonce}">:root{${vars}}</style><script nonce="${nonce}">
        (() => { let state = ${JSON.stringify(opts.state ?? null)}; let taken = false;
          window.acquireVsCodeApi = () => { if (taken) throw new Error('acquireVsCodeApi twice'); taken = true;
            return { postMessage: (m) => window.__toHost(JSON.stringify(m)), getState: () => state, setState: (s) => { state = s; window.__state = s; } }; };
        })();</script>`;
      html = html.replace('<title>', `${preamble}<title>`);
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(html);
      return;
    }
    const file = path.join(ASSETS, path.basename(url.pathname));
    if (url.pathname.startsWith('/assets/') && fs.existsSync(file)) {
      res.writeHead(200, { 'content-type': file.endsWith('.js') ? 'text/javascript' : 'text/css' });
      res.end(fs.readFileSync(file));
      return;
    }
    res.writeHead(404);
    res.end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const received: unknown[] = [];
  let closed = false;
  // The two directions of the webview's message channel, over the page's DevTools session directly: a binding for
  // what the webview posts (a JSON string, as the structured clone would give a copy), and `window.postMessage` for
  // what the host posts. (Playwright's exposeFunction and page.evaluate add their own round trips and an injected
  // script per document: tens of milliseconds on a busy machine, which are not the dashboard's.)
  const cdp = await page.context().newCDPSession(page);
  const controller = new DashboardController({
    ...deps,
    post: (m: HostMessage) => {
      if (closed) return;
      void cdp.send('Runtime.evaluate', { expression: `window.postMessage(${JSON.stringify(m)}, '*')` }).catch(() => undefined);
    },
  });
  cdp.on('Runtime.bindingCalled', (e) => {
    if (e.name !== '__toHost' || closed) return;
    const m: unknown = JSON.parse(e.payload);
    received.push(m);
    void controller.handleMessage(m);
  });
  await cdp.send('Runtime.enable');
  await cdp.send('Runtime.addBinding', { name: '__toHost' });
  const goto = async () => {
    await page.goto(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`, { waitUntil: 'commit' });
  };
  if (opts.navigate !== false) await goto();
  return {
    page,
    cdp,
    controller,
    received,
    goto,
    async close() {
      closed = true;
      controller.dispose();
      await cdp.detach().catch(() => undefined);
      await page.close().catch(() => undefined);
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}

const DARK = [
  '--vscode-foreground:#cccccc',
  '--vscode-editor-background:#1f1f1f',
  '--vscode-descriptionForeground:#9d9d9d',
  '--vscode-errorForeground:#f85149',
  '--vscode-font-family:system-ui, sans-serif',
  '--vscode-font-size:13px',
  '--vscode-editor-font-family:monospace',
  '--vscode-widget-border:#313131',
  '--vscode-charts-green:#89d185',
  '--vscode-charts-red:#f14c4c',
  '--vscode-charts-blue:#3794ff',
  '--vscode-list-hoverBackground:#2a2d2e',
  '--vscode-textCodeBlock-background:#2b2b2b',
].join(';');
const LIGHT = [
  '--vscode-foreground:#3b3b3b',
  '--vscode-editor-background:#ffffff',
  '--vscode-descriptionForeground:#717171',
  '--vscode-errorForeground:#e51400',
  '--vscode-font-family:system-ui, sans-serif',
  '--vscode-font-size:13px',
  '--vscode-editor-font-family:monospace',
  '--vscode-widget-border:#e5e5e5',
  '--vscode-charts-green:#388a34',
  '--vscode-charts-red:#e51400',
  '--vscode-charts-blue:#1a85ff',
  '--vscode-list-hoverBackground:#f2f2f2',
  '--vscode-textCodeBlock-background:#f0f0f0',
].join(';');

/** Sets a vscode-elements control's value the way a person's choice does (value, then its event). */
export async function setControl(page: Page, selector: string, value: string, event: 'change' | 'input' = 'change'): Promise<void> {
  await page.evaluate(
    ({ selector, value, event }) => {
      const el = document.querySelector(selector) as HTMLElement & { value: string };
      if (!el) throw new Error(`${selector} not found`);
      el.value = value;
      el.dispatchEvent(new Event(event, { bubbles: true }));
    },
    { selector, value, event },
  );
}

export async function click(page: Page, selector: string): Promise<void> {
  await page.evaluate((s) => {
    const el = document.querySelector<HTMLElement>(s);
    if (!el) throw new Error(`${s} not found`);
    el.click();
  }, selector);
}

export async function rowIds(page: Page): Promise<string[]> {
  return page.$$eval('#task-rows tr[data-task-id]', (trs) => trs.map((tr) => (tr as HTMLElement).dataset['taskId'] ?? ''));
}
