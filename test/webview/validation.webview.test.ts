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
      assert.equal(cells[3], '1', 'median rounds');
      assert.equal(cells[5], '120', 'median tokens');
      assert.equal(cells[7], '$0.5000');
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

  it('enqueues a task with a validator chosen under the tool: a bad field marked, then its validation on the task', async () => {
    const checks = await q.createQueue({ name: 'checks', session: 's' });
    const { page } = await open({ ...TASKS_TAB, tab: 'enqueue' });
    await page.waitForFunction(() => (document.querySelector('#enq-tool') as HTMLElement & { value: string }).value === 'llm-codex');
    // Collapsed until a tool is chosen: no check by default.
    assert.equal(await page.$eval('#enq-check', (e) => (e as HTMLElement & { value: string }).value), '');
    assert.equal(await page.$eval('#enq-check-fields', (e) => (e as HTMLElement).hidden), true);
    assert.match((await page.textContent('#enq-check-hint')) ?? '', /Choose a tool to check the result/);
    await setControl(page, '#enq-check', 'llm-codex');
    await page.waitForFunction(() => !(document.querySelector('#enq-check-fields') as HTMLElement).hidden);
    assert.equal(await page.getAttribute('#enq-max-rounds', 'placeholder'), 'default 2 (1 to 10)');
    await setControl(page, '#enq-prompt', 'add the endpoint', 'input');
    await setControl(page, '#enq-check-prompt', 'Does it have tests?', 'input');
    await setControl(page, '#enq-max-rounds', '12', 'input');
    await click(page, '#enq-submit');
    await page.waitForFunction(() => (document.querySelector('.field-error[data-for="maxRounds"]')?.textContent ?? '') !== '');
    assert.equal(await page.textContent('.field-error[data-for="maxRounds"]'), 'Max rounds must be between 1 and 10.');
    assert.equal(await page.$eval('#enq-max-rounds', (e) => e.hasAttribute('invalid')), true);
    assert.match((await page.textContent('#enq-message')) ?? '', /Fix the marked fields/);
    assert.equal(q.listTasks({}).tasks.length, 0, 'nothing is enqueued');

    await setControl(page, '#enq-max-rounds', '3', 'input');
    await setControl(page, '#enq-check-queue', checks.id);
    await click(page, '#enq-submit');
    await page.waitForFunction(() => /Enqueued tsk_\w+ on q, checked by llm-codex \(up to 3 rounds\)\./.test(document.querySelector('#enq-message')?.textContent ?? ''));
    assert.equal(await page.$$eval('.field-error', (els) => els.map((e) => e.textContent).join('')), '');
    const [task] = q.listTasks({}).tasks;
    assert.equal(task?.prompt, 'add the endpoint');
    assert.deepEqual(task?.validation, { status: 'pending', round: 1, maxRounds: 3, by: [], feedback: null, spec: { tool: 'llm-codex', prompt: 'Does it have tests?', queue: checks.id, maxRounds: 3 } });

    // A script validator needs its script: the field says so; back to "No check", a task goes unchecked.
    await setControl(page, '#enq-check', 'run-bash');
    await page.waitForFunction(() => /Validator script/.test(document.querySelector('#enq-check-fields')?.textContent ?? ''));
    await setControl(page, '#enq-check-prompt', '', 'input');
    await setControl(page, '#enq-prompt', 'second', 'input');
    await click(page, '#enq-submit');
    await page.waitForFunction(() => (document.querySelector('.field-error[data-for="validatePrompt"]')?.textContent ?? '') !== '');
    assert.match((await page.textContent('.field-error[data-for="validatePrompt"]')) ?? '', /run-bash runs a script: give the script to run/);
    await setControl(page, '#enq-check', '');
    await page.waitForFunction(() => (document.querySelector('#enq-check-fields') as HTMLElement).hidden);
    await click(page, '#enq-submit');
    await page.waitForFunction(() => /Enqueued tsk_\w+ on q\.$/.test(document.querySelector('#enq-message')?.textContent ?? ''));
    assert.equal(q.listTasks({}).tasks.find((t) => t.prompt === 'second')?.validation, null);
    assert.deepEqual(pageErrors, []);
  });

  it("offers a pattern's validator as the check, and replaces it with the tool chosen under Check with", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sparkq-patterns-'));
    try {
      fs.writeFileSync(path.join(dir, 'api-endpoint.md'), ENDPOINT.replace('variables:', 'validate: { tool: llm-codex, prompt: check the endpoint, maxRounds: 3 }\nvariables:'));
      const { page } = await open({ ...TASKS_TAB, tab: 'enqueue' }, { patterns: () => patternLoader(dir) });
      await page.waitForSelector('#enq-pattern');
      await setControl(page, '#enq-pattern', 'api-endpoint');
      await page.waitForSelector('#enq-vars [data-var="resource"]');
      await page.waitForFunction(() => /As pattern api-endpoint says: llm-codex/.test(document.querySelector('#enq-check vscode-option[value=""]')?.textContent ?? ''));
      assert.match((await page.textContent('#enq-check-hint')) ?? '', /The pattern's validator checks the result/);
      await setControl(page, '#enq-vars [data-var="resource"]', 'users', 'input');
      await click(page, '#enq-submit');
      await page.waitForFunction(() => /checked by llm-codex \(up to 3 rounds\)/.test(document.querySelector('#enq-message')?.textContent ?? ''));
      assert.deepEqual(q.listTasks({}).tasks[0]?.validation?.spec, { tool: 'llm-codex', prompt: 'check the endpoint', maxRounds: 3 });

      await setControl(page, '#enq-check', 'run-bash');
      await page.waitForFunction(() => /Replaces pattern api-endpoint's validator \(llm-codex\)/.test(document.querySelector('#enq-check-hint')?.textContent ?? ''));
      await setControl(page, '#enq-check-prompt', 'check.sh users', 'input');
      await click(page, '#enq-submit');
      await page.waitForFunction(() => /checked by run-bash \(up to 2 rounds\)/.test(document.querySelector('#enq-message')?.textContent ?? ''));
      const replaced = q.listTasks({}).tasks.find((t) => t.validation?.spec.tool === 'run-bash');
      assert.deepEqual(replaced?.validation?.spec, { tool: 'run-bash', prompt: 'check.sh users', maxRounds: 2 });
      assert.deepEqual(replaced?.pattern?.name, 'api-endpoint');
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
