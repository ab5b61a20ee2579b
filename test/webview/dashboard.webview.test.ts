import * as assert from 'node:assert/strict';
import type { Browser } from 'playwright-core';
import type { FakeClock } from '../../src/core/clock';
import type { QueueService } from '../../src/core/queue/service';
import type { QueueApi } from '../../src/api/contract';
import { testQueue } from '../support/queue';
import { runPlanScenario } from '../unit/core/reports.scenario';
import { type DashboardPage, click, launchBrowser, openDashboard, rowIds, setControl } from './harness';
import { depsFor, script, serviceApi } from './queueApi';

/**
 * The built webview bundle (dist/webview/dashboard.js) in headless Chromium, under the real HTML and CSP, talking
 * to a DashboardController over an in-memory queue: what a person sees and does, without VS Code.
 */
describe('dashboard webview in Chromium', function () {
  this.timeout(60_000);
  let browser: Browser;
  let q: QueueService;
  let clock: FakeClock;
  let cleanup: () => void;
  let dash: DashboardPage;
  /** The queue API behind the open dashboard, so a test can make the owner refuse a call. */
  let hostApi: QueueApi;
  const pageErrors: string[] = [];

  before(async () => {
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
  });

  async function open(state?: unknown) {
    const api = serviceApi(q, [script('build.sh', 'builds the app'), script('deploy.sh', 'ships it')]);
    hostApi = api;
    const deps = depsFor(api, () => undefined);
    dash = await openDashboard(browser, deps, { state });
    const off = q.onChange((events) => dash.controller.queueChanged(events));
    const close = dash.close.bind(dash);
    dash.close = async () => {
      off();
      await close();
    };
    dash.page.on('pageerror', (e) => pageErrors.push(e.message));
    dash.page.on('dialog', (d) => {
      pageErrors.push(`dialog: ${d.message()}`);
      void d.dismiss();
    });
    await dash.page.waitForSelector('#app[data-state="ready"]', { timeout: 20_000 });
  }

  beforeEach(async () => {
    pageErrors.length = 0;
    const t = await testQueue();
    q = t.q;
    clock = t.clock;
    cleanup = t.cleanup;
  });
  afterEach(async () => {
    await dash?.close();
    await q.close();
    cleanup();
  });

  it('shows the first page, pages forward and back with the owner cursor, and filters', async () => {
    const tasks = await q.enqueueMany(Array.from({ length: 60 }, (_, i) => ({ queue: 'q', tool: i % 3 === 0 ? 'run-bash' : 'llm-codex', prompt: `task number ${i}` })));
    const failing = await q.claim({ queue: 'q', worker: 'w' });
    await q.fail({ task: failing!.task.id, error: 'broken', lease: failing!.lease });
    await open({ tab: 'tasks', query: { limit: 25 }, cursors: [], sort: { key: 'created', dir: -1 }, selected: null });
    const { page } = dash;
    assert.equal((await rowIds(page)).length, 25);
    assert.match((await page.textContent('#page-label')) ?? '', /Page 1 · 25/);
    const first = await rowIds(page);
    await click(page, '#next-page');
    await page.waitForFunction(() => document.querySelector('#page-label')?.textContent?.startsWith('Page 2'));
    const second = await rowIds(page);
    assert.equal(second.length, 25);
    assert.equal(second.filter((id) => first.includes(id)).length, 0, 'page 2 shares no task with page 1');
    await click(page, '#next-page');
    await page.waitForFunction(() => document.querySelector('#page-label')?.textContent?.startsWith('Page 3'));
    assert.equal((await rowIds(page)).length, 10);
    assert.equal(await page.$eval('#next-page', (b) => (b as HTMLElement & { disabled: boolean }).disabled), true);
    await click(page, '#prev-page');
    await page.waitForFunction(() => document.querySelector('#page-label')?.textContent?.startsWith('Page 2'));
    assert.deepEqual(await rowIds(page), second);
    // The UI state (not the data) is kept with setState.
    const state = (await page.evaluate(() => (window as unknown as { __state: unknown }).__state)) as { cursors: unknown[]; query: { limit: number } };
    assert.equal(state.cursors.length, 1);
    assert.equal(state.query.limit, 25);

    await setControl(page, '#filter-status', 'failed');
    await page.waitForFunction(() => document.querySelectorAll('#task-rows tr[data-task-id]').length === 1);
    assert.deepEqual(await rowIds(page), [failing!.task.id]);
    await setControl(page, '#filter-status', '');
    await setControl(page, '#filter-tool', 'run-bash', 'input');
    await page.waitForFunction(() => document.querySelector('#page-label')?.textContent?.includes('20 task'));
    await setControl(page, '#filter-tool', '', 'input');
    await setControl(page, '#filter-text', 'number 42', 'input');
    await page.waitForFunction(() => document.querySelectorAll('#task-rows tr[data-task-id]').length === 1);
    assert.deepEqual(await rowIds(page), [tasks[42]!.id]);
    // Sorting by a column reorders the page.
    await setControl(page, '#filter-text', '', 'input');
    await page.waitForFunction(() => document.querySelectorAll('#task-rows tr[data-task-id]').length === 25);
    await page.click('th[data-sort="tool"]');
    const tools = await page.$$eval('#task-rows tr[data-task-id] td:nth-child(4)', (tds) => tds.map((td) => td.textContent));
    assert.deepEqual(tools, [...tools].sort());
    // The tabs: the overview shows the counts; the chosen tab is UI state.
    await page.click('vscode-tab-header[data-tab="overview"]');
    await page.waitForFunction(() => (window as unknown as { __state?: { tab: string } }).__state?.tab === 'overview');
    await page.waitForSelector('#counts [data-count="failed"]');
    assert.equal((await page.textContent('#counts [data-count="failed"] .num'))?.trim(), '1');
    assert.equal((await page.textContent('#counts [data-count="queued"] .num'))?.trim(), '59');
    assert.equal(await page.$$eval('#throughput svg rect', (r) => r.length > 0), true);
    assert.equal(await page.textContent('#throughput-basis'), 'Throughput from 1 finished task.');
    assert.deepEqual(pageErrors, []);
  });

  it('says plainly that nothing has finished yet, and calls a queue that is not paused active, not running', async () => {
    await q.enqueueMany([1, 2, 3].map((i) => ({ queue: 'q', tool: 'llm-codex', prompt: `p${i}` })));
    await open({ tab: 'overview', query: { limit: 50 }, cursors: [], sort: { key: 'created', dir: -1 }, selected: null });
    const { page } = dash;
    await page.waitForSelector('#throughput-basis');
    assert.equal(await page.textContent('#throughput-basis'), 'No finished tasks yet.');
    const qRow = '#queue-counts tr[data-queue="q"]';
    assert.equal((await page.textContent(`${qRow} .queue-state`))?.trim(), 'active', 'nothing runs on it');
    // Finished tasks are counted in words, updated live.
    for (let i = 0; i < 2; i++) {
      const c = await q.claim({ queue: 'q', worker: 'w' });
      await q.complete({ task: c!.task.id, summary: 'ok', lease: c!.lease });
    }
    await page.waitForFunction(() => document.querySelector('#throughput-basis')?.textContent === 'Throughput from all 2 finished tasks.', undefined, { timeout: 5_000 }).catch(async (e: unknown) => {
      throw new Error(`${String(e)}; the line says: ${await page.textContent('#throughput-basis')}`);
    });
    assert.deepEqual(pageErrors, []);
  });

  it('shows a task in detail, with ANSI escapes stripped, and live updates without reloading', async () => {
    await q.enqueue({ queue: 'q', tool: 'llm-codex', prompt: 'make it green', payload: { n: 1 } });
    const c = await q.claim({ queue: 'q', worker: 'w1' });
    await q.complete({
      task: c!.task.id,
      lease: c!.lease,
      summary: 'all green',
      data: { files: 2 },
      stdout: '\u001b[32mPASS\u001b[0m tests',
      usage: { inputTokens: 1200, outputTokens: 80, costUsd: 0.0123, model: 'gpt-5.5' },
    });
    await open({ tab: 'tasks', query: { limit: 50 }, cursors: [], sort: { key: 'created', dir: -1 }, selected: null });
    const { page } = dash;
    await page.click(`#task-rows tr[data-task-id="${c!.task.id}"]`);
    await page.waitForSelector('#detail-summary');
    assert.equal(await page.textContent('#detail-summary'), 'all green');
    assert.equal(await page.textContent('#detail-stdout'), 'PASS tests');
    assert.equal(await page.textContent('#detail-prompt'), 'make it green');
    assert.deepEqual(JSON.parse((await page.textContent('#detail-payload')) ?? ''), { n: 1 });
    assert.match((await page.textContent('#detail')) ?? '', /Queue instructionsBe brief\./);
    assert.match((await page.textContent('#detail')) ?? '', /gpt-5\.5 · 1,200 in · 80 out/);
    assert.match((await page.textContent('#detail')) ?? '', /\$0\.0123/);
    // A running task ticks its elapsed time client-side and gets the stale badge once past its timeout.
    clock.set(Date.now()); // elapsed time is measured against the webview's clock
    await q.enqueue({ queue: 'q', tool: 'llm-codex', prompt: 'slow one', timeoutSeconds: 60 });
    const slow = await q.claim({ queue: 'q', worker: 'w2' });
    const row = `#task-rows tr[data-task-id="${slow!.task.id}"]`;
    await page.waitForSelector(`${row} td.elapsed`);
    const tick1 = await page.textContent(`${row} td.elapsed`);
    await page.waitForFunction(([sel, before]) => document.querySelector(sel)?.textContent !== before, [`${row} td.elapsed`, tick1] as const, { timeout: 3_000 });
    assert.equal(await page.$$eval(`${row} .stale-badge`, (b) => b.length), 0);
    clock.advance(61_000);
    await q.sweep();
    await page.waitForSelector(`${row} .stale-badge`, { timeout: 2_000 });
    const started = Date.now();
    const fresh = await q.enqueue({ queue: 'q', tool: 'llm-codex', prompt: 'arrives live' });
    await page.waitForSelector(`#task-rows tr[data-task-id="${fresh.id}"]`, { timeout: 2_000 });
    assert.ok(Date.now() - started < 1_500, 'the new task showed up quickly');
    assert.deepEqual(pageErrors, []);
  });

  it('renders hostile task text as plain text and runs none of it', async () => {
    const hostile = `<img src=x onerror="window.__xss=1">`;
    const closing = `</script><script>window.__xss=2</script>`;
    await q.enqueue({ queue: 'q', tool: 'llm-codex', prompt: `${closing} <b>bold</b>` });
    const c = await q.claim({ queue: 'q', worker: '<svg onload="window.__xss=3">' });
    await q.complete({ task: c!.task.id, lease: c!.lease, summary: hostile, data: { html: closing }, stdout: hostile });
    await open({ tab: 'tasks', query: { limit: 50 }, cursors: [], sort: { key: 'created', dir: -1 }, selected: c!.task.id });
    const { page } = dash;
    await page.waitForSelector('#detail-summary');
    assert.equal(await page.textContent('#detail-summary'), hostile);
    assert.match((await page.textContent('#detail-prompt')) ?? '', /^<\/script><script>window.__xss=2<\/script> <b>bold<\/b>$/);
    assert.match((await page.textContent(`#task-rows tr[data-task-id="${c!.task.id}"]`)) ?? '', /<\/script><script>/);
    await page.waitForTimeout(300);
    const found = await page.evaluate(() => ({
      xss: (window as unknown as { __xss?: number }).__xss ?? null,
      imgs: document.querySelectorAll('img').length,
      bolds: document.querySelectorAll('#app b').length,
      svgs: document.querySelectorAll('svg[onload]').length,
      scripts: document.querySelectorAll('script').length,
    }));
    // Scripts: the harness's stand-in for what VS Code injects, the HTML's early request, and the bundle.
    assert.deepEqual(found, { xss: null, imgs: 0, bolds: 0, svgs: 0, scripts: 3 });
    assert.deepEqual(pageErrors, []);
  });

  it('validates the enqueue form inline, shows failures, and enqueues with script autocomplete', async () => {
    await open({ tab: 'enqueue', query: { limit: 50 }, cursors: [], sort: { key: 'created', dir: -1 }, selected: null });
    const { page } = dash;
    await page.waitForFunction(() => (document.querySelector('#enq-tool') as HTMLElement & { value: string }).value === 'llm-codex');
    await setControl(page, '#enq-timeout', 'ten', 'input');
    await setControl(page, '#enq-priority', '5000000', 'input');
    await click(page, '#enq-submit');
    await page.waitForFunction(() => document.querySelector('.field-error[data-for="prompt"]')?.textContent !== '');
    const errors = await page.$$eval('.field-error', (els): Record<string, string> => Object.fromEntries(els.map((e) => [(e as HTMLElement).dataset['for'] ?? '', e.textContent ?? ''])));
    assert.match(errors['prompt'] ?? '', /Say what/);
    assert.match(errors['timeoutSeconds'] ?? '', /whole number/);
    assert.match(errors['priority'] ?? '', /between/);
    assert.equal(errors['queue'], '');
    assert.match((await page.textContent('#enq-message')) ?? '', /Fix the marked fields/);
    assert.equal(q.counts().queued, 0);

    await setControl(page, '#enq-timeout', '90', 'input');
    await setControl(page, '#enq-priority', '3', 'input');
    await setControl(page, '#enq-prompt', 'write the docs', 'input');
    await click(page, '#enq-submit');
    await page.waitForFunction(() => /Enqueued tsk_/.test(document.querySelector('#enq-message')?.textContent ?? ''));
    const [task] = q.listTasks({}).tasks;
    assert.equal(task?.prompt, 'write the docs');
    assert.equal(task?.timeoutSeconds, 90);
    assert.equal(task?.priority, 3);
    assert.equal(await page.$$eval('.field-error', (els) => els.map((e) => e.textContent).join('')), '');

    // A script tool: the prompt gives way to the script picker, which completes from the script index.
    await setControl(page, '#enq-tool', 'run-bash');
    assert.equal(await page.$eval('#script-fields', (e) => (e as HTMLElement).hidden), false);
    await setControl(page, '#enq-script', 'dep', 'input');
    await page.waitForSelector('#enq-suggestions li[data-script="deploy.sh"]', { state: 'attached' });
    assert.deepEqual(await page.$$eval('#enq-suggestions li', (lis) => lis.map((li) => (li as HTMLElement).dataset['script'])), ['deploy.sh']);
    await page.dispatchEvent('#enq-suggestions li[data-script="deploy.sh"]', 'mousedown');
    assert.equal(await page.$eval('#enq-script', (e) => (e as HTMLElement & { value: string }).value), 'deploy.sh');
    await setControl(page, '#enq-args', `--env 'prod eu'`, 'input');
    await click(page, '#enq-submit');
    const deadline = Date.now() + 5000;
    while (q.counts().queued < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    const scripted = q.listTasks({ tool: 'run-bash' }).tasks[0];
    assert.deepEqual(scripted?.payload, { script: 'deploy.sh', args: ['--env', 'prod eu'] });

    // A failure from the owner shows as a visible message. The owner's refusal is the real one for an ended queue;
    // ending the queue itself would also re-send the queue picker while the test fills it in (a race with the form).
    const closed = await q.createQueue({ name: 'closed', session: 's' });
    await q.endQueue(closed.id);
    hostApi.enqueue = (input) => q.enqueue({ ...input, queue: closed.id });
    await setControl(page, '#enq-tool', 'llm-codex');
    await setControl(page, '#enq-prompt', 'too late', 'input');
    await click(page, '#enq-submit');
    await page.waitForFunction(() => /Enqueue failed: .*has ended/.test(document.querySelector('#enq-message')?.textContent ?? ''));
    assert.deepEqual(pageErrors, []);
  });

  it('shows the error of a request the host refuses, instead of waiting for its answer for ever', async () => {
    await q.enqueue({ queue: 'q', tool: 'llm-codex', prompt: 'seeded' });
    // A page size no version of the page offers, as a saved state from elsewhere could hold: the host refuses it.
    await open({ tab: 'tasks', query: { limit: 100_000 }, cursors: [], sort: { key: 'created', dir: -1 }, selected: null });
    const { page } = dash;
    await page.waitForFunction(() => !(document.querySelector('#banner') as HTMLElement).hidden);
    assert.match((await page.textContent('#banner')) ?? '', /^The tasks cannot be listed: The dashboard sent a bad listTasks request \(limit: Too big/);
    assert.deepEqual(await rowIds(page), []);
    assert.deepEqual(pageErrors, []);
  });

  it('is read-only in Restricted Mode', async () => {
    await q.enqueue({ queue: 'q', tool: 'llm-codex', prompt: 'seeded' });
    const api = serviceApi(q);
    const deps = depsFor(api, () => undefined, { readOnly: true, tools: [] });
    dash = await openDashboard(browser, deps, { state: { tab: 'enqueue', query: { limit: 50 }, cursors: [], sort: { key: 'created', dir: -1 }, selected: null } });
    const { page } = dash;
    await page.waitForSelector('#app[data-state="ready"]');
    await page.waitForFunction(() => !(document.querySelector('#read-only') as HTMLElement).hidden);
    assert.equal(await page.$eval('#enq-submit', (b) => (b as HTMLElement & { disabled: boolean }).disabled), true);
    assert.match((await page.textContent('#enq-message')) ?? '', /read-only/);
    assert.equal((await rowIds(page)).length, 1);
    // The queue actions are not offered either.
    await page.waitForSelector('#queue-counts tr[data-queue="q"]', { state: 'attached' });
    assert.equal(await page.$$eval('#queue-counts vscode-button', (b) => b.length), 0);
  });

  it('shows waiting and blocked tasks, retry delays and their dependencies, and links to them', async () => {
    const retrying = await q.createQueue({ name: 'retrying', session: 's', maxAttempts: 3 });
    const done = await q.enqueue({ queue: 'q', tool: 'llm-codex', prompt: 'done first' });
    const c1 = await q.claim({ queue: 'q', worker: 'w' });
    await q.complete({ task: c1!.task.id, lease: c1!.lease, summary: 'ok' });
    const broken = await q.enqueue({ queue: 'q', tool: 'llm-codex', prompt: 'will fail' });
    const c2 = await q.claim({ queue: 'q', worker: 'w' });
    await q.fail({ task: c2!.task.id, lease: c2!.lease, error: 'broke' });
    const pending = await q.enqueue({ queue: 'q', tool: 'llm-codex', prompt: 'still queued' });
    const blocked = await q.enqueue({ queue: 'q', tool: 'llm-codex', prompt: 'blocked one', after: [done.id, broken.id] });
    const waiting = await q.enqueue({ queue: 'q', tool: 'llm-codex', prompt: 'waiting one', after: [done.id, pending.id] });
    await q.enqueue({ queue: retrying.id, tool: 'llm-codex', prompt: 'flaky' });
    const c3 = await q.claim({ queue: retrying.id, worker: 'w' });
    const retried = await q.fail({ task: c3!.task.id, lease: c3!.lease, error: 'flaked' });
    await open({ tab: 'tasks', query: { limit: 50 }, cursors: [], sort: { key: 'created', dir: -1 }, selected: null });
    const { page } = dash;
    const row = (id: string) => `#task-rows tr[data-task-id="${id}"]`;
    await page.waitForSelector(`${row(blocked.id)} .blocked-badge`, { state: 'attached' });
    assert.equal((await page.textContent(`${row(blocked.id)} .blocked-badge`))?.trim(), 'blocked');
    assert.equal((await page.textContent(`${row(blocked.id)} .blocked-ids`))?.trim(), broken.id);
    assert.equal(await page.$$eval(`${row(blocked.id)} .waiting-badge`, (b) => b.length), 0, 'the succeeded dependency is not waited on');
    assert.equal((await page.textContent(`${row(waiting.id)} .waiting-badge`))?.trim(), 'waiting 1');
    assert.equal(await page.$$eval(`${row(waiting.id)} .blocked-badge`, (b) => b.length), 0);
    assert.equal(await page.$$eval(`${row(pending.id)} vscode-badge`, (b) => b.length), 0);
    assert.equal(retried.status, 'queued');
    assert.ok(retried.notBefore);
    assert.match((await page.textContent(`${row(retried.id)} .retry-at`)) ?? '', /retry at /);
    // The blocked badge takes the error colour.
    const colours = await page.$eval(`${row(blocked.id)} .blocked-badge`, (b) => getComputedStyle(b).getPropertyValue('--vscode-badge-background').trim());
    assert.equal(colours, '#f85149');

    // The detail: what it waits on (done or not), what blocks it, each id a link to that task.
    await page.click(row(blocked.id));
    await page.waitForSelector('#detail-after');
    const deps = await page.$$eval('#detail-after li', (lis) => lis.map((li) => [(li.querySelector('a') as HTMLElement).dataset['taskLink'], (li as HTMLElement).dataset['state']]));
    assert.deepEqual(
      deps.sort(),
      [
        [done.id, 'done'],
        [broken.id, 'failed'],
      ].sort(),
    );
    assert.equal((await page.textContent('#detail-blocked'))?.trim(), broken.id);
    await page.click(`#detail-blocked a[data-task-link="${broken.id}"]`);
    await page.waitForFunction((id) => document.querySelector('#detail h2')?.textContent === `Task ${id}`, broken.id);
    assert.match((await page.textContent('#detail-error')) ?? '', /broke/);
    await page.click(row(retried.id));
    await page.waitForSelector('#detail-retry');

    // A task from a plan names it, and waits on its plan's earlier tasks.
    const applied = await q.applyPlan({
      plan: {
        id: 'release',
        description: null,
        tasks: [
          { key: 'build', queue: 'q', tool: 'llm-codex', prompt: 'build it', after: [] },
          { key: 'ship', queue: 'q', tool: 'llm-codex', prompt: 'ship it', after: ['build'] },
        ],
      },
    });
    const ship = applied.created.find((c) => c.key === 'ship')!.task;
    await page.waitForSelector(`${row(ship.id)} .waiting-badge`);
    await page.click(row(ship.id));
    await page.waitForFunction(() => document.querySelector('#detail-plan')?.textContent === 'release / ship');

    // A requeue of the failed task releases the blocked one: it now waits on the copy.
    await q.requeue(broken.id);
    await page.waitForFunction((sel) => document.querySelector(`${sel} .blocked-badge`) === null && document.querySelector(`${sel} .waiting-badge`)?.textContent === 'waiting 1', row(blocked.id), { timeout: 3_000 });
    assert.deepEqual(pageErrors, []);
  });

  it('checks the After field inline and enqueues a task that waits on others', async () => {
    const first = await q.enqueue({ queue: 'q', tool: 'llm-codex', prompt: 'first' });
    await open({ tab: 'enqueue', query: { limit: 50 }, cursors: [], sort: { key: 'created', dir: -1 }, selected: null });
    const { page } = dash;
    await page.waitForFunction(() => (document.querySelector('#enq-tool') as HTMLElement & { value: string }).value === 'llm-codex');
    await setControl(page, '#enq-prompt', 'second', 'input');
    await setControl(page, '#enq-after', `${first.id}, setup`, 'input');
    await page.waitForFunction(() => /Not a task id: "setup"/.test(document.querySelector('.field-error[data-for="after"]')?.textContent ?? ''));
    assert.equal(await page.$eval('#enq-after', (e) => (e as HTMLElement & { invalid: boolean }).invalid), true);
    await click(page, '#enq-submit');
    assert.match((await page.textContent('#enq-message')) ?? '', /Fix the marked fields/);
    assert.equal(dash.received.filter((m) => (m as { method?: string }).method === 'enqueue').length, 0, 'nothing was sent');

    // A well-formed id the owner does not know: its refusal is the form's message.
    await setControl(page, '#enq-after', 'tsk_000000000000', 'input');
    await page.waitForFunction(() => document.querySelector('.field-error[data-for="after"]')?.textContent === '');
    await click(page, '#enq-submit');
    await page.waitForFunction(() => /Enqueue failed: .*tsk_000000000000/.test(document.querySelector('#enq-message')?.textContent ?? ''));
    assert.equal(q.counts().queued, 1);

    await setControl(page, '#enq-after', ` ${first.id} `, 'input');
    await click(page, '#enq-submit');
    await page.waitForFunction(() => /Enqueued tsk_\w+ on q, after tsk_/.test(document.querySelector('#enq-message')?.textContent ?? ''));
    const second = q.listTasks({ text: 'second' }).tasks[0];
    assert.deepEqual(second?.after, [first.id]);
    assert.deepEqual(second?.waitingOn, [first.id]);
    assert.equal(await page.$eval('#enq-after', (e) => (e as HTMLElement & { value: string }).value), '');
    assert.deepEqual(pageErrors, []);
  });

  it('pauses and resumes a queue and requeues its failed tasks from the overview', async () => {
    await q.enqueue({ queue: 'q', tool: 'llm-codex', prompt: 'a' });
    const c = await q.claim({ queue: 'q', worker: 'w' });
    await q.fail({ task: c!.task.id, lease: c!.lease, error: 'no' });
    const other = await q.createQueue({ name: 'later', session: 's' });
    await q.pauseQueue({ queue: other.id, forSeconds: 3600, reason: 'rate limit' });
    await open();
    const { page } = dash;
    const qRow = '#queue-counts tr[data-queue="q"]';
    await page.waitForSelector(`${qRow} vscode-button[data-action="pause"]`);
    assert.equal((await page.textContent(`${qRow} .queue-state`))?.trim(), 'active');
    assert.match((await page.textContent('#queue-counts tr[data-queue="later"] .queue-state')) ?? '', /^paused until .+ \(rate limit\)$/);
    assert.equal(await page.$$eval('#queue-counts tr[data-queue="later"] vscode-button[data-action="resume"]', (b) => b.length), 1);

    await click(page, `${qRow} vscode-button[data-action="pause"]`);
    await page.waitForSelector(`${qRow}[data-paused="true"] vscode-button[data-action="resume"]`);
    assert.equal((await page.textContent(`${qRow} .queue-state`))?.trim(), 'paused');
    assert.equal(q.getQueue('q').paused, true);
    await click(page, `${qRow} vscode-button[data-action="resume"]`);
    await page.waitForSelector(`${qRow}[data-paused="false"] vscode-button[data-action="pause"]`);
    assert.equal(q.getQueue('q').paused, false);

    await click(page, `${qRow} vscode-button[data-action="requeue-failed"]`);
    await page.waitForFunction(() => /Requeue failed: 1 task requeued\./.test(document.querySelector('#queue-message')?.textContent ?? ''), undefined, { timeout: 3_000 }).catch(async (e: unknown) => {
      throw new Error(`${String(e)}; message: ${await page.textContent('#queue-message')}`);
    });
    assert.equal(q.counts().queued, 1);
    // The failed task stays failed (its copy is queued): a second requeue finds nothing left to requeue.
    await page.waitForFunction(() => (document.querySelector('#queue-message')?.textContent ?? '').endsWith('requeued.'));
    await page.waitForSelector(`${qRow} vscode-button[data-action="requeue-failed"]:not([disabled])`);
    await click(page, `${qRow} vscode-button[data-action="requeue-failed"]`);
    await page.waitForFunction(() => /Requeue failed: 0 tasks requeued\./.test(document.querySelector('#queue-message')?.textContent ?? ''), undefined, { timeout: 3_000 });
    assert.equal(q.counts().queued, 1);
    assert.deepEqual(pageErrors, []);
  });

  it('shows token usage and cost by tool and model, and a chart of cost by day, updated live', async () => {
    const finish = async (tool: string, usage: { inputTokens: number; outputTokens: number; costUsd: number; model: string }) => {
      await q.enqueue({ queue: 'q', tool, prompt: 'x' });
      const c = await q.claim({ queue: 'q', worker: 'w' });
      await q.complete({ task: c!.task.id, lease: c!.lease, summary: 'ok', usage });
    };
    await finish('llm-codex', { inputTokens: 1000, outputTokens: 100, costUsd: 0.5, model: 'gpt-5.5' });
    clock.advance(86_400_000 * 2);
    await finish('llm-codex', { inputTokens: 2000, outputTokens: 200, costUsd: 1, model: 'gpt-5.5' });
    await finish('llm-claude', { inputTokens: 300, outputTokens: 30, costUsd: 0.25, model: 'opus' });
    await open();
    const { page } = dash;
    await page.waitForSelector('#usage-by-tool tr[data-key="llm-codex"]');
    const cells = (sel: string) => page.$$eval(`${sel} td`, (tds) => tds.map((td) => td.textContent));
    assert.deepEqual(await cells('#usage-by-tool tr[data-key="llm-codex"]'), ['llm-codex', '2', '3,000', '0', '300', '0', '$1.5000']);
    assert.deepEqual(await cells('#usage-by-model tr[data-key="opus"]'), ['opus', '1', '300', '0', '30', '0', '$0.2500']);
    assert.match((await page.textContent('#usage-total')) ?? '', /3,300 input .* 330 output tokens · \$1\.7500/);
    // One bar per day from the first to the last, the day between them empty.
    const bars = await page.$$eval('#usage-chart rect.bar-cost', (rs) => rs.map((r) => [r.getAttribute('data-day'), r.querySelector('title')?.textContent]));
    assert.deepEqual(bars, [
      ['2026-01-01', '2026-01-01: $0.5000'],
      ['2026-01-02', '2026-01-02: $0.0000'],
      ['2026-01-03', '2026-01-03: $1.2500'],
    ]);
    assert.equal(await page.$eval('#usage-chart svg', (e) => e.getAttribute('aria-label')), 'Cost per day');
    await finish('llm-claude', { inputTokens: 1, outputTokens: 1, costUsd: 1, model: 'opus' });
    // The report is asked for at most every 2 s while changes come in.
    await page.waitForFunction(() => document.querySelector('#usage-by-model tr[data-key="opus"] td:last-child')?.textContent === '$1.2500', undefined, { timeout: 5_000 });
    assert.deepEqual(pageErrors, []);
  });

  it('shows what a plan bought on the Plans tab: exact figures, the critical path, tokens by tool and model, Codex repriced', async () => {
    const ids = await runPlanScenario(q, clock);
    await open({ tab: 'plans', query: { limit: 50 }, cursors: [], sort: { key: 'created', dir: -1 }, selected: null, plan: null });
    const { page } = dash;
    await page.waitForSelector('#plan-figures');
    assert.equal(await page.textContent('#plan-title'), 'Plan batch');
    assert.equal(await page.$eval('#plan-picker', (e) => e.getAttribute('data-chosen')), 'batch');
    const figures = await page.$$eval('#plan-figures [data-figure]', (cards) => cards.map((c) => [(c as HTMLElement).dataset['figure'], c.querySelector('.num')?.textContent]));
    assert.deepEqual(figures, [
      ['wall-clock', '50 s'],
      ['serial', '1m 40s'],
      ['speedup', '2×'],
      ['parallel', '85%'],
      ['tasks', '7'],
    ]);
    assert.match((await page.textContent('#plan-span')) ?? '', /^From the first claim at 2026-01-01 \d\d:00:00 to the last finish at 2026-01-01 \d\d:00:50\.$/);
    assert.equal(await page.textContent('#plan-path-title'), 'Critical path as it ran: 50 s');
    const path = await page.$$eval('#plan-critical-path tbody tr', (trs) => trs.map((tr) => [...tr.querySelectorAll('td')].slice(0, 4).map((td) => td.textContent)));
    assert.deepEqual(path, [
      ['1', 'c', ids.get('c'), '30 s'],
      ['2', 'e', ids.get('e'), '7.0 s'],
      ['3', 'f', ids.get('f'), '13 s'],
    ]);
    const cells = (sel: string) => page.$$eval(`${sel} td`, (tds) => tds.map((td) => td.textContent));
    // The plan's tasks only: the stray task on another queue (9,999,999 tokens, $99) is not counted.
    assert.deepEqual(await cells('#plan-by-tool tr[data-key="llm-codex"]'), ['llm-codex', '4', '2,000,000', '1,000,000', '200,000', '0', '$0.0000']);
    assert.deepEqual(await cells('#plan-by-tool tr[data-key="run-bash"]'), ['run-bash', '2', '0', '0', '0', '0', '$0.0000']);
    assert.deepEqual(await cells('#plan-by-model tr[data-key="claude-sonnet-4-5"]'), ['claude-sonnet-4-5', '1', '300,000', '0', '10,000', '0', '$1.0500']);
    assert.match((await page.textContent('#plan-usage-total')) ?? '', /^2,300,000 input \(1,000,000 cached\) · 210,000 output tokens · \$1\.0500$/);
    assert.match((await page.textContent('#plan-codex')) ?? '', /^4 Codex tasks: 2,000,000 input \(1,000,000 cached\) · 200,000 output tokens, recorded cost \$0\.0000\.$/);
    const repriced = await page.$$eval('#plan-repriced tbody tr', (trs) => trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent)));
    assert.deepEqual(repriced, [
      ['gpt-5', '$3.3750'],
      ['gpt-5-codex', '$3.3750'],
      ['gpt-5-mini', '$0.6750'],
      ['claude-opus-4-5', '$10.5000'],
      ['claude-sonnet-4-5', '$6.3000'],
      ['claude-haiku-4-5', '$2.1000'],
    ]);

    // A newer plan shows up live and, as nothing was chosen, is the one reported; choosing the first brings it back.
    await q.applyPlan({ plan: { id: 'later', description: null, tasks: [{ key: 'x', queue: 'q', tool: 'llm-codex', prompt: 'x', after: [] }] } });
    await page.waitForSelector('#plan-not-run', { timeout: 5_000 });
    assert.equal(await page.textContent('#plan-title'), 'Plan later');
    assert.equal(await page.textContent('#plan-not-run'), 'Its one task has not finished a run yet: its figures come when one has.');
    const options = await page.$$eval('#plan-picker vscode-option', (os) => os.map((o) => o.getAttribute('value')));
    assert.deepEqual(options, ['later', 'batch']);
    await setControl(page, '#plan-picker', 'batch');
    await page.waitForFunction(() => document.querySelector('#plan-title')?.textContent === 'Plan batch');
    assert.equal(await page.$eval('#plan-figures [data-figure="speedup"] .num', (e) => e.textContent), '2×');
    // The choice is UI state the page keeps, and a newer plan no longer takes its place.
    assert.equal(await page.evaluate(() => (window as unknown as { __state?: { plan?: string } }).__state?.plan), 'batch');
    await q.applyPlan({ plan: { id: 'newest', description: null, tasks: [{ key: 'y', queue: 'q', tool: 'llm-codex', prompt: 'y', after: [] }] } });
    await page.waitForFunction(() => document.querySelectorAll('#plan-picker vscode-option').length === 3, undefined, { timeout: 5_000 });
    assert.equal(await page.textContent('#plan-title'), 'Plan batch');
    assert.deepEqual(pageErrors, []);
  });

  it('says where there is no plan yet, and that a plan that is gone cannot be reported', async () => {
    await open({ tab: 'plans', query: { limit: 50 }, cursors: [], sort: { key: 'created', dir: -1 }, selected: null, plan: null });
    const { page } = dash;
    await page.waitForSelector('#plans-empty');
    assert.match((await page.textContent('#plans-empty')) ?? '', /No plan has been applied yet\./);
    await dash.close();
    await open({ tab: 'plans', query: { limit: 50 }, cursors: [], sort: { key: 'created', dir: -1 }, selected: null, plan: 'gone' });
    await dash.page.waitForSelector('#plan-problem');
    assert.match((await dash.page.textContent('#plan-problem')) ?? '', /^Plan gone cannot be reported: no plan "gone"/);
    assert.deepEqual(pageErrors, []);
  });
});
