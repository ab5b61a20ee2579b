import { randomBytes } from 'node:crypto';

/** The folder (below the extension root) that holds the built webview assets: the panel's only local resource root. */
export const WEBVIEW_ASSET_DIR = ['dist', 'webview'] as const;

export function createNonce(): string {
  return randomBytes(18).toString('base64');
}

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
</head>
<body>
<div id="app" data-state="loading">Loading the SparkQ dashboard…</div>
<script type="module" nonce="${attr(opts.nonce)}" src="${attr(opts.scriptUri)}"></script>
</body>
</html>`;
}
