import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Browser } from 'playwright-core';
import { patternLoader } from '../../src/core/patterns';
import type { QueueService } from '../../src/core/queue/service';
import type { DashboardDeps } from '../../src/extension/dashboard/dashboardController';
import { testQueue } from '../support/queue';
import { type DashboardPage, click, launchBrowser, openDashboard, setControl } from './harness';
import { depsFor, serviceApi } from './queueApi';

const TASKS_TAB = { tab: 'tasks', query: { limit: 50 }, cursors: [], sort: { key: 'created', dir: -1 }, selected: null };
const HASH = 'ab12cd34ef56'.padEnd(64, '0');
const ENDPOINT = `---
name: api-endpoint
description: Add a REST endpoint with its tests
tool: llm-codex
variables:
  resource: { description: "the resource, plural (users)" }
  verb: { description: the HTTP method, default: GET }
---
Add \`{{verb}} /{{resource}}\` with its tests.
`;

/** Validators and prompt patterns in the dashboard: the built bundle in Chromium over an in-memory queue. */
describe('dashboard webview: validation and patterns', function () {
  this.timeout(60_000);
  let browser: Browser;
  let q: QueueService;
  let cleanup: () => void;
  let dash: DashboardPage | undefined;
  const pageErrors: string[] = [];

  before(async () => {
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
  });
  beforeEach(async () => {
    pageErrors.length = 0;
    const t = await testQueue();
    q = t.q;
    cleanup = t.cleanup;
  });
  afterEach(async () => {
    await dash?.close();
    dash = undefined;
    await q.close();
    cleanup();
  });

  async function open(state: unknown, extra: Partial<DashboardDeps> = {}): Promise<DashboardPage> {
    const deps = { ...depsFor(serviceApi(q), () => undefined), ...extra };
    const d = await openDashboard(browser, deps, { state });
    const off = q.onChange((events) => d.controller.queueChanged(events));
    const close = d.close.bind(d);
    d.close = async () => {
      off();
      await close();
    };
    d.page.on('pageerror', (e) => pageErrors.push(e.message));
    await d.page.waitForSelector('#app[data-state="ready"]', { timeout: 20_000 });
    dash = d;
    return d;
  }

  it('shows a validated task\'s badge in the table and a Validation section that links to its validation task', async () => {
    const task = await q.enqueue({ queue: 'q', tool: 'llm-codex', prompt: 'add the endpoint', validate: { tool: 'llm-codex', prompt: 'check the endpoint', maxRounds: 2 }, pattern: { name: 'api-endpoint', hash: HASH } });
    const c = await q.claim({ queue: 'q', worker: 'w' });
    await q.complete({ task: c!.task.id, lease: c!.lease, summary: 'endpoint added' });
    const validated = q.getTask(task.id);
    const checker = validated.validation!.by[0]!;
    assert.ok(checker, 'the validation task was enqueued');

    const { page } = await open({ ...TASKS_TAB, selected: task.id });
    const marker = `#task-rows tr[data-task-id="${task.id}"] .validation-badge`;
    await page.waitForSelector(marker);
    assert.equal(await page.textContent(marker), 'validating · round 1 of 2');
    assert.equal(await page.getAttribute(marker, 'data-validation'), 'pending');
    assert.equal(await page.$$eval(`#task-rows tr[data-task-id="${checker}"] .validation-badge`, (b) => b.length), 0);

    await page.waitForSelector('#detail-validation');
    assert.equal(await page.textContent('#detail-validation-badge'), 'validating · round 1 of 2');
    assert.equal(await page.textContent('#detail-validation-round'), '1 of 2');
    assert.equal(await page.textContent('#detail-validator'), 'llm-codex');
    assert.match((await page.textContent('#detail-pattern')) ?? '', /api-endpoint\s+@ ab12cd34ef56$/);

    await click(page, `#detail-validated-by [data-task-link="${checker}"]`);
    await page.waitForSelector('#detail-validates');
    assert.match((await page.textContent('#detail h2')) ?? '', new RegExp(checker));
    assert.match((await page.textContent('#detail-validates')) ?? '', new RegExp(`${task.id} \\(this is its validation task\\)`));
    assert.equal(await page.$$eval('#detail-validation', (x) => x.length), 0, 'a validation task is not validated itself');

    // The verdict arrives live: the row and the detail of the checked task say passed.
    const vc = await q.claim({ queue: 'q', worker: 'v' });
    assert.equal(vc!.task.id, checker);
    await q.complete({ task: checker, lease: vc!.lease, summary: 'pass: looks right', data: { verdict: 'pass', feedback: 'looks right' } });
    await page.waitForFunction((sel) => document.querySelector(sel)?.textContent === 'passed', marker, { timeout: 3_000 });
    await click(page, `#detail-validates [data-task-link="${task.id}"]`);
    await page.waitForFunction(() => document.querySelector('#detail-validation-badge')?.textContent === 'passed', undefined, { timeout: 3_000 });
    assert.deepEqual(pageErrors, []);
  });

  it('shows the patterns table from history with the CLI\'s cells, and the patterns of the folder', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sparkq-patterns-'));
    try {
      fs.writeFileSync(path.join(dir, 'api-endpoint.md'), ENDPOINT);
      const first = await q.enqueue({ queue: 'q', tool: 'llm-codex', prompt: 'one', pattern: { name: 'api-endpoint', hash: HASH } });
      await q.enqueue({ queue: 'q', tool: 'llm-codex', prompt: 'two', pattern: { name: 'api-endpoint', hash: HASH } });
      const c = await q.claim({ queue: 'q', worker: 'w' });
      assert.equal(c!.task.id, first.id);
      await q.complete({ task: first.id, lease: c!.lease, summary: 'done', usage: { inputTokens: 100, outputTokens: 20, costUsd: 0.5 } });
      const { page } = await open({ ...TASKS_TAB, tab: 'patterns' }, { patterns: () => patternLoader(dir) });
      await page.waitForSelector('#patterns-stats tr[data-pattern="api-endpoint"]');
      const cells = await page.$$eval('#patterns-stats tr[data-pattern="api-endpoint"] td', (tds) => tds.map((td) => td.textContent?.trim()));
      assert.deepEqual(cells.slice(0, 3), ['api-endpoint', '2 (1 running)', '100% (1/1)']);
      assert.equal(cells[4], '120');
      assert.equal(cells[6], '$0.5000');
      assert.match((await page.textContent('#patterns-basis')) ?? '', /From all 2 tasks/);
      assert.match((await page.textContent('#patterns-list tr[data-pattern="api-endpoint"]')) ?? '', /llm-codex\s+resource, verb=GET/);
      // A new use arrives live.
      await q.enqueue({ queue: 'q', tool: 'llm-codex', prompt: 'three', pattern: { name: 'api-endpoint', hash: HASH } });
      await page.waitForFunction(() => document.querySelector('#patterns-stats tr[data-pattern="api-endpoint"] td:nth-child(2)')?.textContent?.trim() === '3 (2 running)', undefined, { timeout: 5_000 });
      assert.deepEqual(pageErrors, []);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('enqueues from a pattern: its variables as fields with defaults, a missing one marked, the pattern recorded', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sparkq-patterns-'));
    try {
      fs.writeFileSync(path.join(dir, 'api-endpoint.md'), ENDPOINT);
      const { page } = await open({ ...TASKS_TAB, tab: 'enqueue' }, { patterns: () => patternLoader(dir) });
      await page.waitForSelector('#enq-pattern');
      await setControl(page, '#enq-pattern', 'api-endpoint');
      await page.waitForSelector('#enq-vars [data-var="resource"]');
      assert.equal(await page.$eval('#enq-vars [data-var="verb"]', (e) => (e as HTMLElement & { value: string }).value), 'GET');
      assert.equal(await page.getAttribute('#enq-vars [data-var="resource"]', 'placeholder'), 'the resource, plural (users)');
      await click(page, '#enq-submit');
      await page.waitForFunction(() => (document.querySelector('.field-error[data-for="var:resource"]')?.textContent ?? '') !== '');
      assert.match((await page.textContent('.field-error[data-for="var:resource"]')) ?? '', /Give resource a value/);
      assert.equal(q.listTasks({}).tasks.length, 0);
      await setControl(page, '#enq-vars [data-var="resource"]', 'users', 'input');
      await setControl(page, '#enq-vars [data-var="verb"]', 'POST', 'input');
      await click(page, '#enq-submit');
      await page.waitForFunction(() => /Enqueued tsk_/.test(document.querySelector('#enq-message')?.textContent ?? ''));
      const [task] = q.listTasks({}).tasks;
      assert.equal(task?.prompt, 'Add `POST /users` with its tests.');
      assert.deepEqual(task?.pattern, { name: 'api-endpoint', hash: patternLoader(dir).load('api-endpoint')!.hash });
      assert.equal(task?.tool, 'llm-codex');
      assert.deepEqual(pageErrors, []);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
