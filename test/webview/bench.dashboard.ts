// `npm run bench:dashboard`: how long the dashboard takes to show the first page of a 100,000-task queue in headless
// Chromium — from navigation to the first rows on screen, through the real HTML/CSP, bundle, protocol and queue.
import * as os from 'node:os';
import type { CDPSession } from 'playwright-core';
import { defaultConfig } from '../../src/core/config';
import type { EnqueueInput } from '../../src/core/model';
import { QueueService } from '../../src/core/queue/service';
import { tempDir } from '../support/tmp';
import { launchBrowser, openDashboard } from './harness';
import { depsFor, serviceApi } from './queueApi';

const TASKS = Number(process.env['SPARKQ_BENCH_TASKS'] ?? 100_000);
const RUNS = 5;
const TARGET_MS = 300;

async function main(): Promise<void> {
  const t = tempDir('sparkq-bench-dash-');
  const built = Date.now();
  const q = await QueueService.open({ dir: t.dir, config: defaultConfig('bench'), autoMaintain: false, durability: 'none' });
  await q.createSession({ name: 'bench' });
  await q.createQueue({ name: 'big', session: 'bench' });
  const tools = ['llm-codex', 'llm-claude', 'run-bash'];
  for (let i = 0; i < TASKS; i += 10_000) {
    const batch: EnqueueInput[] = [];
    for (let j = i; j < Math.min(TASKS, i + 10_000); j++) batch.push({ queue: 'big', tool: tools[j % 3]!, prompt: `task ${j}: refactor module ${j % 97}` });
    await q.enqueueMany(batch);
  }
  console.log(`queue of ${q.counts().queued.toLocaleString('en-US')} tasks built in ${Date.now() - built} ms`);
  const browser = await launchBrowser();
  const times: number[] = [];
  const wall: number[] = [];
  try {
    for (let run = 0; run < RUNS; run++) {
      const deps = depsFor(serviceApi(q), () => undefined);
      const dash = await openDashboard(browser, deps, { navigate: false, state: { tab: 'tasks', query: { limit: 50 }, cursors: [], sort: { key: 'created', dir: -1 }, selected: null } });
      // Measured in the page: from the navigation that loads the webview's HTML (what VS Code does when the panel
      // opens) to the DOM mutation that puts the first page's rows in the table.
      await dash.page.addInitScript(() => {
        const w = window as unknown as { __firstRows?: number };
        new MutationObserver(() => {
          if (w.__firstRows === undefined && document.querySelectorAll('#task-rows tr[data-task-id]').length > 0) w.__firstRows = performance.now();
        }).observe(document, { subtree: true, childList: true });
      });
      const started = performance.now();
      await dash.goto();
      await waitForRows(dash.cdp, 50);
      wall.push(performance.now() - started);
      times.push(await dash.page.evaluate(() => (window as unknown as { __firstRows: number }).__firstRows));
      await dash.close();
    }
  } finally {
    await browser.close();
    await q.close();
    t.cleanup();
  }
  const sorted = [...times].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)]!;
  console.log(`first page (50 rows) of a ${TASKS.toLocaleString('en-US')}-task queue in Chromium: median ${median.toFixed(0)} ms, runs ${times.map((x) => x.toFixed(0)).join(' / ')} ms (target < ${TARGET_MS} ms); as the test driver saw it (with its own round trips): ${wall.map((x) => x.toFixed(0)).join(' / ')} ms`);
  const load = os.loadavg()[0]!.toFixed(1);
  console.log(`${median <= TARGET_MS ? 'within' : 'SLOWER than'} the ${TARGET_MS} ms target (best ${sorted[0]!.toFixed(0)} ms; load average ${load} on ${os.cpus().length} cores)`);
}

/**
 * Resolves when the table shows `n` rows. One call on the page's DevTools session, answered by a MutationObserver in
 * the page: Playwright's waitForFunction would inject its utility script into the page right as the bundle starts,
 * which costs the page's main thread tens of milliseconds that are not the dashboard's.
 */
async function waitForRows(cdp: CDPSession, n: number): Promise<void> {
  const expression = `new Promise((resolve) => {
    const done = () => document.querySelectorAll('#task-rows tr[data-task-id]').length === ${n};
    if (done()) return resolve(true);
    new MutationObserver((_, o) => { if (done()) { o.disconnect(); resolve(true); } }).observe(document, { subtree: true, childList: true });
  })`;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no ${n} rows within 30 s`)), 30_000)));
  try {
    await Promise.race([cdp.send('Runtime.evaluate', { expression, awaitPromise: true }), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

main().then(
  () => process.exit(process.exitCode ?? 0),
  (e: unknown) => {
    console.error(e);
    process.exit(1);
  },
);
