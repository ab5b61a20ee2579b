// `npm run screenshot`: the real workbench (code-server) in headless Chromium with SparkQ installed on a demo
// workspace; saves PNGs of the SparkQ views to out/screenshots/ and fails when the expected rows are not on screen.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DEMO_ROWS, STALE_AFTER_SECONDS, seedDemoWorkspace } from './lib/demoWorkspace.mjs';
import { ROOT, build, launchChromium, startCodeServer, workbenchUrl } from './lib/vscodeHost.mjs';

const OUT = path.join(ROOT, 'out', 'screenshots');

const PLAN = `id: users-api
defaults: { queue: Batch, tool: llm-codex }
tasks:
  - { name: schema, prompt: "Add the users table" }
  - { name: endpoint, prompt: "Add GET/POST /users" }
  - { name: docs, tool: llm-haiku, prompt: "Document /users" }
  - { name: tests, prompt: "Test /users", after: [schema, endpoint] }
`;

/**
 * A plan run by three workers for the Plans tab, with the real CLI in real time (a few seconds): schema, endpoint and
 * docs at once, then tests after the first two.
 */
async function seedDemoPlan(dir) {
  const sparkq = (...args) => execFileSync(process.execPath, [path.join(ROOT, 'dist', 'cli.js'), ...args], { cwd: dir, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
  const pause = (ms) => new Promise((r) => setTimeout(r, ms));
  sparkq('queue', 'create', 'Batch', '--session', 'api-v2');
  fs.writeFileSync(path.join(dir, 'users-api.plan.yml'), PLAN);
  sparkq('plan', 'apply', 'users-api.plan.yml');
  const claims = new Map();
  const claim = (worker) => {
    const c = JSON.parse(sparkq('claim', '--queue', 'Batch', '--worker', worker, '--json'));
    claims.set(c.task.planKey, c);
  };
  const complete = (key, usage) => {
    const c = claims.get(key);
    sparkq('complete', c.task.id, '--summary', `${key} done`, '--lease', c.lease, '--usage', JSON.stringify(usage));
  };
  claim('codex-1');
  claim('codex-2');
  claim('haiku-1');
  await pause(1_500);
  complete('docs', { inputTokens: 9200, cachedInputTokens: 4000, outputTokens: 1400, costUsd: 0.0148, model: 'claude-haiku-4-5' });
  await pause(1_000);
  complete('schema', { inputTokens: 61000, cachedInputTokens: 40000, outputTokens: 3100, model: 'gpt-5-codex' });
  await pause(1_200);
  complete('endpoint', { inputTokens: 88000, cachedInputTokens: 52000, outputTokens: 5200, model: 'gpt-5-codex' });
  claim('codex-1');
  await pause(1_800);
  complete('tests', { inputTokens: 43000, cachedInputTokens: 30000, outputTokens: 2600, model: 'gpt-5-codex' });
}

async function main() {
  build();
  fs.mkdirSync(OUT, { recursive: true });
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'sparkq-shot-'));
  const ws = seedDemoWorkspace(path.join(root, 'demo'));
  const seededAt = Date.now();
  await seedDemoPlan(ws);
  const server = await startCodeServer({ dataDir: path.join(root, 'cs'), smokeTestDriver: false, installExtension: true });
  const chromium = await launchChromium();
  const saved = [];
  try {
    const page = await chromium.browser.newPage({ viewport: { width: 1400, height: 860 } });
    await page.goto(workbenchUrl(server.url, ws));
    await page.waitForSelector('.monaco-workbench', { timeout: 90_000 });
    const icon = page.locator('.activitybar [aria-label^="SparkQ"]').first();
    await icon.waitFor({ timeout: 60_000 });
    await icon.click();
    const sidebar = page.locator('.part.sidebar');
    const row = (text) => sidebar.locator('.monaco-list-row', { hasText: text }).first();
    const expectRow = async (text, what, iconClass) => {
      const r = row(text);
      await r.waitFor({ timeout: 60_000 }).catch(() => {
        throw new Error(`expected ${what} "${text}" on screen, but it is not there`);
      });
      if (iconClass && (await r.locator(`.codicon-${iconClass}`).count()) === 0) throw new Error(`the row "${text}" (${what}) has no ${iconClass} icon`);
    };
    for (const s of DEMO_ROWS.sessions) await expectRow(s, 'session');
    for (const q of DEMO_ROWS.queues) await expectRow(q, 'queue');
    const t = DEMO_ROWS.tasks;
    await expectRow(t.succeeded, 'succeeded task', 'pass');
    await expectRow(t.failed, 'failed task', 'error');
    await expectRow(t.running, 'running task', 'sync');
    await expectRow(t.queued, 'queued task', 'circle-large-outline');
    // The stale task turns stale STALE_AFTER_SECONDS after seeding (the owner's sweep marks it within 5 s).
    const staleBy = seededAt + (STALE_AFTER_SECONDS + 8) * 1000;
    await page.waitForTimeout(Math.max(0, staleBy - Date.now()));
    await expectRow(t.stale, 'stale task', 'warning');
    await page.mouse.move(5, 5);
    const shoot = async (name) => {
      const file = path.join(OUT, name);
      await page.screenshot({ path: file });
      saved.push(file);
    };
    await shoot('sparkq-views.png');
    // Selecting a session narrows the queues, selecting a queue narrows the tasks.
    await row('api-v2').click();
    await row('Back End').click();
    await expectRow(t.failed, 'failed task in Back End', 'error');
    await row(t.running)
      .waitFor({ state: 'detached', timeout: 15_000 })
      .catch(() => {
        throw new Error('the tasks view was not filtered by the selected queue');
      });
    await shoot('sparkq-queue-selected.png');
    // The task document.
    await row(t.succeeded).click();
    await page.locator('.editor-instance', { hasText: 'GET/POST /users added with tests' }).first().waitFor({ timeout: 30_000 });
    await shoot('sparkq-task-document.png');
    // The tooltip of the failed task, hovered.
    await row(t.failed).hover();
    await page.waitForTimeout(1_500);
    await shoot('sparkq-failed-tooltip.png');
    // The dashboard, from the Command Palette, in the dark theme and then the light one.
    await page.keyboard.press('Escape');
    await page.keyboard.press('F1');
    await page.keyboard.type('SparkQ: Open Dashboard');
    await page.locator('.quick-input-list .monaco-list-row', { hasText: 'Open Dashboard' }).first().waitFor({ timeout: 30_000 });
    await page.keyboard.press('Enter');
    const dash = page.frameLocator('iframe.webview').frameLocator('iframe#active-frame');
    await dash.locator('#counts [data-count="succeeded"]').waitFor({ timeout: 60_000 });
    await dash.locator('#queue-counts tr[data-queue="Back End"]').waitFor({ timeout: 30_000 });
    await page.mouse.move(5, 5);
    await shoot('sparkq-dashboard-overview-dark.png');
    await dash.locator('vscode-tab-header[data-tab="tasks"]').click();
    const taskRow = dash.locator('#task-rows tr[data-task-id]', { hasText: t.succeeded }).first();
    await taskRow.waitFor({ timeout: 30_000 });
    await taskRow.click();
    await dash.locator('#detail-summary').waitFor({ timeout: 30_000 });
    await shoot('sparkq-dashboard-tasks-dark.png');
    const settingsFile = path.join(server.userDataDir, 'User', 'settings.json');
    const settings = JSON.parse(fs.readFileSync(settingsFile, 'utf8'));
    fs.writeFileSync(settingsFile, JSON.stringify({ ...settings, 'workbench.colorTheme': 'Default Light Modern' }, null, 2));
    await page.locator('.monaco-workbench.vs:not(.vs-dark)').waitFor({ timeout: 30_000 }).catch(() => {
      throw new Error('the workbench did not switch to the light theme');
    });
    await page.waitForTimeout(1_000);
    await shoot('sparkq-dashboard-tasks-light.png');
    await dash.locator('vscode-tab-header[data-tab="overview"]').click();
    await dash.locator('#counts').waitFor({ timeout: 30_000 });
    await page.waitForTimeout(500);
    await shoot('sparkq-dashboard-overview-light.png');
    // The Plans tab: what the demo plan bought.
    await dash.locator('vscode-tab-header[data-tab="plans"]').click();
    await dash.locator('#plan-figures [data-figure="speedup"]').waitFor({ timeout: 30_000 }).catch(() => {
      throw new Error('the Plans tab did not show the figures of the demo plan');
    });
    await dash.locator('#plan-critical-path tr[data-key="tests"]').waitFor({ timeout: 30_000 });
    await page.waitForTimeout(500);
    await shoot('sparkq-dashboard-plans-light.png');
    console.log(`saved:\n${saved.map((f) => `  ${path.relative(ROOT, f)}`).join('\n')}`);
  } finally {
    await chromium.close();
    await server.stop();
    fs.rmSync(root, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0), // playwright-core can keep handles open after the browser closed
  (e) => {
    console.error(`screenshot failed: ${e instanceof Error ? e.message : String(e)}`);
    process.exit(1);
  },
);
