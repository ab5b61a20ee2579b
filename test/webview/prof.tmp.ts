import { defaultConfig } from '../../src/core/config';
import type { EnqueueInput } from '../../src/core/model';
import { QueueService } from '../../src/core/queue/service';
import { tempDir } from '../support/tmp';
import { launchBrowser, openDashboard } from './harness';
import { depsFor, serviceApi } from './queueApi';

const TASKS = Number(process.env['SPARKQ_BENCH_TASKS'] ?? 100_000);
const RUNS = Number(process.env['RUNS'] ?? 7);
async function main(): Promise<void> {
  const t = tempDir('sparkq-prof-');
  const q = await QueueService.open({ dir: t.dir, config: defaultConfig('bench'), autoMaintain: false, durability: 'none' });
  await q.createSession({ name: 'bench' });
  await q.createQueue({ name: 'big', session: 'bench' });
  const tools = ['llm-codex', 'llm-claude', 'run-bash'];
  for (let i = 0; i < TASKS; i += 10_000) {
    const batch: EnqueueInput[] = [];
    for (let j = i; j < Math.min(TASKS, i + 10_000); j++) batch.push({ queue: 'big', tool: tools[j % 3]!, prompt: `task ${j}: refactor module ${j % 97}` });
    await q.enqueueMany(batch);
  }
  const browser = await launchBrowser();
  for (let run = 0; run < RUNS; run++) {
    const deps = depsFor(serviceApi(q), () => undefined);
    const dash = await openDashboard(browser, deps, { navigate: false, state: { tab: 'tasks', query: { limit: 50 }, cursors: [], sort: { key: 'created', dir: -1 }, selected: null } });
    await dash.page.addInitScript({ content: `(() => {
      const w = window;
      w.__marks = {};
      const mark = (k) => { if (w.__marks[k] === undefined) w.__marks[k] = performance.now(); };
      let api;
      Object.defineProperty(window, 'acquireVsCodeApi', { configurable: true, get() { return () => { mark('acquire'); const a = api(); const pm = a.postMessage; a.postMessage = (m) => { mark('post:' + (m.method ?? m.type)); pm(m); }; return a; }; }, set(v) { api = v; } });
      window.addEventListener('message', (e) => { mark('msg:' + (e.data?.type) + (e.data?.id ?? '')); }, true);
      document.addEventListener('DOMContentLoaded', () => mark('dcl'));
      new MutationObserver(() => {
        if (w.__marks.rows === undefined && document.querySelectorAll('#task-rows tr[data-task-id]').length > 0) { mark('rows'); requestAnimationFrame(() => mark('raf-after-rows')); }
        if (document.getElementById('tabs')) mark('tabs');
      }).observe(document, { subtree: true, childList: true });
      try { new PerformanceObserver((l) => { for (const e of l.getEntries()) (w.__lt ??= []).push([Math.round(e.startTime), Math.round(e.duration)]); }).observe({ type: 'longtask', buffered: true }); } catch {}
      try { new PerformanceObserver((l) => { for (const e of l.getEntries()) mark(e.name); }).observe({ type: 'paint', buffered: true }); } catch {}
    })()` });
    await dash.goto();
    await dash.page.waitForFunction(() => document.querySelectorAll('#task-rows tr[data-task-id]').length === 50, undefined, { timeout: 30_000 });
    await dash.page.waitForTimeout(100);
    const r = await dash.page.evaluate(() => {
      const w = window as any;
      const res = performance.getEntriesByType('resource').map((e: any) => `${e.name.split('/').pop()} ${Math.round(e.startTime)}-${Math.round(e.responseEnd)}`);
      const nav = performance.getEntriesByType('navigation')[0] as any;
      return { nav: `resp ${Math.round(nav.responseStart)}-${Math.round(nav.responseEnd)} domInteractive ${Math.round(nav.domInteractive)}`, res, marks: Object.fromEntries(Object.entries(w.__marks).map(([k, v]) => [k, Math.round(v as number)])), lt: w.__lt };
    });
    console.log(JSON.stringify(r));
    await dash.close();
  }
  await browser.close(); await q.close(); t.cleanup();
}
main().then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
