import { randomBytes } from 'node:crypto';

/** The folder (below the extension root) that holds the built webview assets: the panel's only local resource root. */
export const WEBVIEW_ASSET_DIR = ['dist', 'webview'] as const;

export function createNonce(): string {
  return randomBytes(18).toString('base64');
}

/**
 * The first page of tasks is asked for here, by a few lines in the HTML itself, rather than by the bundle: the host then
 * answers while the bundle is fetched and parsed (tens of milliseconds), and the answer is waiting when the bundle
 * starts. The script takes the webview API (which can be taken once per page) and leaves it, with the request it sent
 * and any answer already come, in `window.sparkqEarly` (webview/bridge.ts). The bundle uses that answer only when the
 * request is the one it would send itself (the same parameters from the same saved state); otherwise it asks again.
 * The request's id is 0, which the bundle's own requests (1, 2, …) never use. Keep in step with webview/boot.ts.
 */
export const EARLY_REQUEST_SCRIPT = `(() => {
  let api;
  try { api = acquireVsCodeApi(); } catch { return; }
  const held = [];
  const hold = (e) => { const m = e.data; if (m && m.type === 'response' && m.id === 0) held.push(m); };
  addEventListener('message', hold);
  const early = { api, held, params: null, stop: () => removeEventListener('message', hold) };
  window.sparkqEarly = early;
  try {
    const s = api.getState();
    const state = s && typeof s === 'object' ? s : {};
    const params = Object.assign({ limit: 50 }, state.query);
    delete params.before;
    const cursors = Array.isArray(state.cursors) ? state.cursors : [];
    const before = cursors.length > 0 ? cursors[cursors.length - 1] : undefined;
    if (before) params.before = before;
    api.postMessage({ type: 'request', id: 0, method: 'listTasks', params });
    early.params = params;
  } catch {}
})();`;

/**
 * The dashboard's HTML shell. Strict CSP: nothing by default, scripts only with this page's nonce, styles and fonts
 * only from the webview's own origin (`cspSource`). The page holds no data: everything arrives as messages and is
 * rendered as text. The bundle carries its own stylesheet and, like vscode-elements for its components, adopts it as
 * a constructed stylesheet, which CSP does not gate; so there is no <link> for the page to wait on before the
 * script runs. (`styleUri` is accepted for older callers and not used.)
 */
export function dashboardHtml(opts: { cspSource: string; scriptUri: string; styleUri?: string; nonce: string }): string {
  const csp = [
    `default-src 'none'`,
    `script-src 'nonce-${opts.nonce}'`,
    `style-src ${opts.cspSource} 'nonce-${opts.nonce}'`,
    `font-src ${opts.cspSource}`,
    `img-src ${opts.cspSource}`,
  ].join('; ');
  const attr = (s: string) => s.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;');
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${attr(csp)}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<title>SparkQ Dashboard</title>
<script nonce="${attr(opts.nonce)}">${EARLY_REQUEST_SCRIPT}</script>
</head>
<body>
<div id="app" data-state="loading">Loading the SparkQ dashboard…</div>
<script type="module" nonce="${attr(opts.nonce)}" src="${attr(opts.scriptUri)}"></script>
</body>
</html>`;
}
