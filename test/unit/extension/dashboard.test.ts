import * as assert from 'node:assert/strict';
import * as vm from 'node:vm';
import { DEFAULT_MAX_ROUNDS, type Task, ValidateSpecSchema } from '../../../src/core/model';
import type { QueueService } from '../../../src/core/queue/service';
import { CHANGE_BATCH_MS, DashboardController, PLAN_SCAN_LIMIT, throughputOf } from '../../../src/extension/dashboard/dashboardController';
import { dashboardHtml } from '../../../src/extension/dashboard/dashboardHtml';
import type { QueueApi } from '../../../src/api/contract';
import { type DashboardInit, type HostMessage, type Overview, type PlansOverview, type UsageReport, VALIDATE_ROUNDS, parseAfter, stripAnsi } from '../../../src/shared/dashboardProtocol';
import { throughputBasisText } from '../../../src/shared/format';
import { formatCount, formatDateTime } from '../../../webview/format';
import { testQueue } from '../../support/queue';
import { depsFor, script, serviceApi } from '../../webview/queueApi';

type Response = Extract<HostMessage, { type: 'response' }>;

describe('dashboard host (protocol handling without vscode)', () => {
  let q: QueueService;
  let cleanup: () => void;
  let api: QueueApi;
  let posted: HostMessage[];
  let commands: string[] = [];
  let ctl: DashboardController;
  let seq = 0;

  async function setup(opts: { readOnly?: boolean } = {}) {
    const t = await testQueue();
    const clock = t.clock;
    q = t.q;
    cleanup = t.cleanup;
    api = serviceApi(q, [script('build.sh', 'builds'), script('deploy.sh', 'deploys')]);
    posted = [];
    commands = [];
    ctl = new DashboardController({ ...depsFor(api, (m) => posted.push(m), { ...opts, commands }), now: () => clock.now() });
  }
  afterEach(async () => {
    ctl.dispose();
    await q.close();
    cleanup();
  });

  async function req(method: string, params: unknown): Promise<Response> {
    const id = ++seq;
    await ctl.handleMessage({ type: 'request', id, method, params });
    const r = posted.find((m): m is Response => m.type === 'response' && m.id === id);
    assert.ok(r, `no response to ${method}`);
    return r;
  }
  function ok<T>(r: Response): T {
    assert.equal(r.ok, true, r.ok ? '' : r.error);
    return (r).result as T;
  }

  it('says nothing before the ready handshake, then sends init with tools, queues and sessions', async () => {
    await setup();
    ctl.queueChanged([]);
    await new Promise((r) => setTimeout(r, CHANGE_BATCH_MS + 50));
    assert.deepEqual(posted, []);
    await ctl.handleMessage({ type: 'ready' });
    assert.equal(posted.length, 1);
    const init = (posted[0] as unknown as { type: 'init'; init: DashboardInit }).init;
    assert.equal(init.readOnly, false);
    assert.deepEqual(init.queues.map((x) => x.name), ['q']);
    assert.deepEqual(init.sessions.map((x) => x.name), ['s']);
    assert.deepEqual(init.tools.map((t) => t.name), ['llm-codex', 'run-bash']);
  });

  it('lists tasks with filters and pages with the owner cursor', async () => {
    await setup();
    for (let i = 0; i < 7; i++) await q.enqueue({ queue: 'q', tool: i % 2 ? 'run-bash' : 'llm-codex', prompt: `task ${i}${i === 3 ? ' needle' : ''}` });
    const p1 = ok<{ tasks: { prompt: string }[]; next: string | null }>(await req('listTasks', { limit: 3 }));
    assert.equal(p1.tasks.length, 3);
    assert.ok(p1.next);
    const p2 = ok<{ tasks: { prompt: string }[]; next: string | null }>(await req('listTasks', { limit: 3, before: p1.next }));
    assert.equal(p2.tasks.length, 3);
    assert.equal(new Set([...p1.tasks, ...p2.tasks].map((t) => t.prompt)).size, 6);
    const bash = ok<{ tasks: { tool: string }[] }>(await req('listTasks', { limit: 50, tool: 'run-bash' }));
    assert.equal(bash.tasks.length, 3);
    const text = ok<{ tasks: { prompt: string }[] }>(await req('listTasks', { limit: 50, text: 'needle', queue: 'q', session: 's' }));
    assert.deepEqual(text.tasks.map((t) => t.prompt), ['task 3 needle']);
    const running = ok<{ tasks: unknown[] }>(await req('listTasks', { limit: 50, status: 'stale' }));
    assert.equal(running.tasks.length, 0);
  });

  it('returns a task detail, and an error response for an unknown task', async () => {
    await setup();
    const t = await q.enqueue({ queue: 'q', tool: 'llm-codex', prompt: 'hello' });
    const d = ok<{ id: string; instructions: string; attempts: unknown[] }>(await req('getTask', { task: t.id }));
    assert.equal(d.id, t.id);
    assert.equal(d.instructions, 'Be brief.');
    const missing = await req('getTask', { task: 'tsk_nope' });
    assert.equal(missing.ok, false);
  });

  it('validates the enqueue form field by field and enqueues nothing when it is wrong', async () => {
    await setup();
    const bad = await req('enqueue', { queue: '', tool: 'llm-codex', prompt: '  ', timeoutSeconds: 'ten', priority: '99999999' });
    assert.equal(bad.ok, false);
    const fields = (bad as { fields?: Record<string, string> }).fields ?? {};
    assert.deepEqual(Object.keys(fields).sort(), ['priority', 'prompt', 'queue', 'timeoutSeconds']);
    const noScript = await req('enqueue', { queue: 'q', tool: 'run-bash', script: '' });
    assert.deepEqual(Object.keys((noScript as { fields?: object }).fields ?? {}), ['script']);
    const unknownTool = await req('enqueue', { queue: 'q', tool: 'nope', prompt: 'x' });
    assert.deepEqual(Object.keys((unknownTool as { fields?: object }).fields ?? {}), ['tool']);
    assert.equal(q.counts().queued, 0);
    const task = ok<{ id: string; timeoutSeconds: number; priority: number }>(await req('enqueue', { queue: 'q', tool: 'llm-codex', prompt: 'do it', timeoutSeconds: '120', priority: '5' }));
    assert.equal(task.timeoutSeconds, 120);
    assert.equal(task.priority, 5);
    const s = ok<{ payload: unknown }>(await req('enqueue', { queue: 'q', tool: 'run-bash', script: 'build.sh', args: `--target 'a b'` }));
    assert.deepEqual(s.payload, { script: 'build.sh', args: ['--target', 'a b'] });
    const unknownQueue = await req('enqueue', { queue: 'nowhere', tool: 'llm-codex', prompt: 'x' });
    assert.equal(unknownQueue.ok, false);
    assert.match((unknownQueue as { error: string }).error, /nowhere/);
    assert.equal(q.counts().queued, 2);
  });

  it('enqueues with a validator as sparkq enqueue --validate-with does: tool, prompt, queue and rounds on the task', async () => {
    await setup();
    const checked = ok<Task>(await req('enqueue', { queue: 'q', tool: 'llm-codex', prompt: 'add the endpoint', validateWith: 'llm-codex', validatePrompt: 'Does it have tests?', maxRounds: ' 3 ' }));
    assert.deepEqual(q.getTask(checked.id).validation, {
      status: 'pending',
      round: 1,
      maxRounds: 3,
      by: [],
      feedback: null,
      spec: { tool: 'llm-codex', prompt: 'Does it have tests?', maxRounds: 3 },
    });
    // A script validator on another queue, rounds left empty: the CLI's default.
    const checks = await q.createQueue({ name: 'checks', session: 's' });
    const scripted = ok<Task>(await req('enqueue', { queue: 'q', tool: 'llm-codex', prompt: 'x', validateWith: 'run-bash', validatePrompt: 'check.sh --strict', validateQueue: checks.id, maxRounds: '' }));
    assert.deepEqual(q.getTask(scripted.id).validation?.spec, { tool: 'run-bash', prompt: 'check.sh --strict', queue: checks.id, maxRounds: DEFAULT_MAX_ROUNDS });
    assert.equal(q.getTask(scripted.id).validation?.maxRounds, 2);
    // "No check": empty fields send no validator.
    const plain = ok<Task>(await req('enqueue', { queue: 'q', tool: 'llm-codex', prompt: 'y', validateWith: '', validatePrompt: '', validateQueue: '', maxRounds: '' }));
    assert.equal(q.getTask(plain.id).validation, null);
  });

  it('marks a bad validator on its field, saying what to fix, and enqueues nothing', async () => {
    await setup();
    const fieldsOf = async (extra: Record<string, string>) => {
      const r = await req('enqueue', { queue: 'q', tool: 'llm-codex', prompt: 'x', ...extra });
      assert.equal(r.ok, false, `${JSON.stringify(extra)} was enqueued`);
      return (r as { fields?: Record<string, string> }).fields ?? {};
    };
    assert.deepEqual(await fieldsOf({ validateWith: 'llm-codex', maxRounds: '11' }), { maxRounds: 'Max rounds must be between 1 and 10.' });
    assert.deepEqual(await fieldsOf({ validateWith: 'llm-codex', maxRounds: '0' }), { maxRounds: 'Max rounds must be between 1 and 10.' });
    assert.deepEqual(await fieldsOf({ validateWith: 'llm-codex', maxRounds: 'two' }), { maxRounds: 'Max rounds must be a whole number.' });
    assert.deepEqual(await fieldsOf({ validateWith: 'llm-haiku' }), { validateWith: 'sparkq.yml has no tool "llm-haiku": choose one of llm-codex, run-bash.' });
    assert.match((await fieldsOf({ validateWith: 'run-bash', validatePrompt: '  ' }))['validatePrompt'] ?? '', /^run-bash runs a script: give the script to run and its arguments \(e\.g\. "check\.sh --strict"\)/);
    assert.match((await fieldsOf({ validateWith: 'llm-codex', validateQueue: 'nowhere' }))['validateQueue'] ?? '', /^There is no queue named "nowhere"; active queues: q; or choose the task's own queue\.$/);
    const ended = await q.createQueue({ name: 'old', session: 's' });
    await q.endQueue(ended.id);
    assert.deepEqual(await fieldsOf({ validateWith: 'llm-codex', validateQueue: ended.id }), { validateQueue: "Queue s / old has ended: choose an active queue, or the task's own." });
    // What goes with a tool, without one: refused as the CLI refuses --max-rounds without --validate-with.
    assert.deepEqual(Object.keys(await fieldsOf({ validateWith: '', maxRounds: '3' })), ['validateWith']);
    assert.match((await fieldsOf({ validatePrompt: 'check it' }))['validateWith'] ?? '', /^Choose a tool to check with/);
    // Every field at once: each on its own field, beside the form's other errors.
    assert.deepEqual(Object.keys(await fieldsOf({ validateWith: 'nope', maxRounds: '99', validateQueue: 'nowhere', priority: 'high' })).sort(), ['maxRounds', 'priority', 'validateQueue', 'validateWith']);
    assert.equal(q.listTasks({}).tasks.length, 0);
  });

  it("keeps the form's rounds bounds those of the core", () => {
    assert.equal(VALIDATE_ROUNDS.default, DEFAULT_MAX_ROUNDS);
    assert.equal(ValidateSpecSchema.safeParse({ tool: 't', maxRounds: VALIDATE_ROUNDS.max }).success, true);
    assert.equal(ValidateSpecSchema.safeParse({ tool: 't', maxRounds: VALIDATE_ROUNDS.max + 1 }).success, false);
  });

  it('ignores messages that carry no request id: no response, nothing changes', async () => {
    await setup();
    await ctl.handleMessage({ type: 'ready' });
    const before = posted.length;
    const garbage: unknown[] = [
      null,
      'ready',
      42,
      [],
      {},
      { type: 'nope' },
      { type: 'ready', extra: 1 },
      { type: 'request' },
      { type: 'request', id: -1, method: 'overview', params: {} },
      { type: 'request', id: 1.5, method: 'overview', params: {} },
      { type: 'request', id: '7', method: 'enqueue', params: { queue: 'q', tool: 'llm-codex', prompt: 'x' } },
    ];
    for (const g of garbage) await ctl.handleMessage(g);
    assert.deepEqual(posted.slice(before), []);
    assert.equal(q.counts().queued, 0);
  });

  it('answers every bad request with an error that says what is wrong, and changes nothing', async () => {
    await setup();
    await ctl.handleMessage({ type: 'ready' });
    const bad: [method: unknown, params: unknown, why: RegExp][] = [
      ['dropTables', {}, /"dropTables", which the extension does not answer/],
      [42, {}, /malformed request \(method: /],
      ['enqueue', { queue: 'q', tool: 'llm-codex', prompt: 'x', evil: true }, /bad enqueue request \(Unrecognized key: "evil"\)/],
      ['enqueue', { queue: 'q', tool: 'llm-codex', prompt: 42 }, /bad enqueue request \(prompt: /],
      ['enqueue', undefined, /malformed request \(params: /],
      ['taskAction', { task: 'x', action: 'delete' }, /bad taskAction request \(action: /],
      ['listTasks', { limit: 100_000 }, /bad listTasks request \(limit: Too big/],
      ['getTask', { task: '' }, /bad getTask request \(task: /],
      ['pauseQueue', {}, /bad pauseQueue request \(queue: /],
      ['pauseQueue', { queue: '' }, /bad pauseQueue request/],
      ['pauseQueue', { queue: 'q', forSeconds: 10 }, /Unrecognized key: "forSeconds"/],
      ['pauseQueue', { queue: 42 }, /bad pauseQueue request/],
      ['resumeQueue', { queue: ['q'] }, /bad resumeQueue request/],
      ['requeueFailed', { session: 's' }, /bad requeueFailed request/],
      ['requeueFailed', {}, /bad requeueFailed request/],
      ['usage', { by: 'day' }, /bad usage request/],
      ['usage', undefined, /malformed request \(params: /],
      ['enqueue', { queue: 'q', tool: 'llm-codex', prompt: 'x', after: ['tsk_000000000000'] }, /bad enqueue request \(after: /],
      ['enqueue', { queue: 'q', tool: 'llm-codex', prompt: 'x', validateWith: 'llm-codex', maxRounds: 3 }, /bad enqueue request \(maxRounds: /],
    ];
    for (const [method, params, why] of bad) {
      const id = ++seq;
      const message: Record<string, unknown> = { type: 'request', id, method };
      if (params !== undefined) message['params'] = params;
      await ctl.handleMessage(message);
      const answers = posted.filter((m) => m.type === 'response' && m.id === id);
      assert.equal(answers.length, 1, `one answer to ${JSON.stringify(message)}`);
      const answer = answers[0] as Response;
      assert.equal(answer.ok, false, `${JSON.stringify(message)} was refused`);
      assert.match(answer.ok ? '' : answer.error, why);
    }
    assert.equal(q.counts().queued, 0);
    assert.equal(q.getQueue('q').paused, false);
  });

  it('is read-only in Restricted Mode: changes are refused, reading works', async () => {
    await setup({ readOnly: true });
    const t = await q.enqueue({ queue: 'q', tool: 'llm-codex', prompt: 'seeded' });
    const r = await req('enqueue', { queue: 'q', tool: 'llm-codex', prompt: 'x' });
    assert.equal(r.ok, false);
    assert.match((r as { error: string }).error, /read-only/);
    assert.equal((await req('taskAction', { task: t.id, action: 'requeue' })).ok, false);
    assert.equal((await req('startWorker', { queue: 'q' })).ok, false);
    for (const method of ['pauseQueue', 'resumeQueue', 'requeueFailed']) {
      const refused = await req(method, { queue: 'q' });
      assert.equal(refused.ok, false, method);
      assert.match((refused as { error: string }).error, /read-only/);
    }
    assert.equal(q.getQueue('q').paused, false);
    assert.equal(ok<UsageReport>(await req('usage', {})).total.tasks, 1);
    assert.deepEqual(commands, []);
    assert.deepEqual(ok<unknown[]>(await req('scripts', { query: '' })), []);
    assert.equal(ok<{ tasks: unknown[] }>(await req('listTasks', { limit: 10 })).tasks.length, 1);
    assert.equal(q.counts().queued, 1);
  });

  it('pauses and resumes a queue and requeues its failed tasks', async () => {
    await setup();
    const queueId = q.getQueue('q').id;
    assert.deepEqual(ok(await req('pauseQueue', { queue: queueId })), { paused: true });
    assert.equal(q.getQueue('q').paused, true);
    const o = ok<Overview>(await req('overview', {}));
    assert.deepEqual(o.queues.map((x) => [x.name, x.paused, x.pausedUntil]), [['q', true, null]]);
    const twice = await req('pauseQueue', { queue: queueId });
    assert.equal(twice.ok, true, 'pausing a paused queue is harmless');
    assert.deepEqual(ok(await req('resumeQueue', { queue: queueId })), { paused: false });
    assert.equal(q.getQueue('q').paused, false);
    const notPaused = await req('resumeQueue', { queue: queueId });
    assert.equal(notPaused.ok, false);
    assert.match((notPaused as { error: string }).error, /not paused/);
    assert.equal((await req('pauseQueue', { queue: 'que_nowhere' })).ok, false);

    for (let i = 0; i < 2; i++) await q.enqueue({ queue: 'q', tool: 'llm-codex', prompt: `p${i}` });
    for (let i = 0; i < 2; i++) {
      const c = await q.claim({ queue: 'q', worker: 'w' });
      await q.fail({ task: c!.task.id, lease: c!.lease, error: 'no' });
    }
    assert.deepEqual(ok(await req('requeueFailed', { queue: queueId })), { requeued: 2 });
    assert.equal(q.counts().queued, 2);
    assert.deepEqual(ok(await req('requeueFailed', { queue: queueId })), { requeued: 0 });
  });

  it('enqueues after other tasks: ids checked in the form, unknown ones refused by the owner', async () => {
    await setup();
    const first = await q.enqueue({ queue: 'q', tool: 'llm-codex', prompt: 'first' });
    const bad = await req('enqueue', { queue: 'q', tool: 'llm-codex', prompt: 'x', after: `${first.id}, setup` });
    assert.equal(bad.ok, false);
    assert.match((bad as { fields?: Record<string, string> }).fields?.['after'] ?? '', /Not a task id: "setup"/);
    const unknown = await req('enqueue', { queue: 'q', tool: 'llm-codex', prompt: 'x', after: 'tsk_000000000000' });
    assert.equal(unknown.ok, false);
    assert.equal((unknown as { fields?: object }).fields, undefined);
    assert.match((unknown as { error: string }).error, /tsk_000000000000/);
    assert.equal(q.counts().queued, 1);
    const second = ok<{ after: string[]; waitingOn: string[] }>(await req('enqueue', { queue: 'q', tool: 'llm-codex', prompt: 'second', after: ` ${first.id} ,${first.id}` }));
    assert.deepEqual(second.after, [first.id]);
    assert.deepEqual(second.waitingOn, [first.id]);
    assert.deepEqual(parseAfter('tsk_4k2m9x0q7hzt, tsk_x  tsk_4k2m9x0q7hzt'), { ids: ['tsk_4k2m9x0q7hzt'], bad: ['tsk_x'] });
  });

  it('runs the task actions through the commands, and needs a text for complete and fail', async () => {
    await setup();
    await q.enqueue({ queue: 'q', tool: 'llm-codex', prompt: 'x' });
    const claim = await q.claim({ queue: 'q', worker: 'w' });
    const id = claim!.task.id;
    const noText = await req('taskAction', { task: id, action: 'fail', text: ' ' });
    assert.equal(noText.ok, false);
    assert.deepEqual(commands, []);
    ok(await req('taskAction', { task: id, action: 'fail', text: 'broke' }));
    const requeued = ok<{ task: string }>(await req('taskAction', { task: id, action: 'requeue' }));
    assert.notEqual(requeued.task, id);
    ok(await req('startWorker', { queue: claim!.task.queueId }));
    assert.deepEqual(commands.map((c: string) => c.split(' ')[0]), ['fail', 'requeue', 'startWorker']);
    const again = await req('taskAction', { task: id, action: 'complete', text: 'done' });
    assert.equal(again.ok, false, 'completing a failed task fails visibly');
    ok(await req('scripts', { query: 'dep' }));
  });

  it('batches change events into one message within 250 ms', async () => {
    await setup();
    await ctl.handleMessage({ type: 'ready' });
    posted.length = 0;
    const started = Date.now();
    ctl.queueChanged([{ kind: 'task', id: 'tsk_a', queueId: 'que_1', status: 'queued' }]);
    ctl.queueChanged([{ kind: 'task', id: 'tsk_b', queueId: 'que_1', status: 'running' }]);
    ctl.queueChanged([{ kind: 'task', id: 'tsk_a', queueId: 'que_1', status: 'running' }]);
    while (!posted.some((m) => m.type === 'changed') && Date.now() - started < 1000) await new Promise((r) => setTimeout(r, 10));
    assert.ok(Date.now() - started <= 250, `took ${Date.now() - started} ms`);
    await new Promise((r) => setTimeout(r, CHANGE_BATCH_MS + 50));
    const changed = posted.filter((m) => m.type === 'changed');
    assert.deepEqual(changed, [{ type: 'changed', all: false, tasks: ['tsk_a', 'tsk_b'] }]);
    // A queue change re-sends init (the pickers' lists) before `changed`.
    posted.length = 0;
    ctl.queueChanged([{ kind: 'queue', id: 'que_1' }]);
    await new Promise((r) => setTimeout(r, CHANGE_BATCH_MS + 100));
    assert.deepEqual(posted.map((m) => m.type), ['init', 'changed']);
  });

  it('computes the overview: counts, per-queue counts, throughput and usage per tool and model', async () => {
    await setup();
    await q.createQueue({ name: 'other', session: 's' });
    for (let i = 0; i < 3; i++) await q.enqueue({ queue: 'q', tool: 'llm-codex', prompt: `p${i}` });
    await q.enqueue({ queue: 'other', tool: 'llm-claude', prompt: 'c' });
    const a = await q.claim({ queue: 'q', worker: 'w' });
    await q.complete({ task: a!.task.id, summary: 'ok', lease: a!.lease, usage: { inputTokens: 100, outputTokens: 10, costUsd: 0.5, model: 'gpt-5.5' } });
    const b = await q.claim({ queue: 'q', worker: 'w' });
    await q.fail({ task: b!.task.id, error: 'no', lease: b!.lease, usage: { inputTokens: 50, outputTokens: 5, costUsd: 0.25, model: 'gpt-5.5' } });
    const c = await q.claim({ queue: 'other', worker: 'w' });
    await q.complete({ task: c!.task.id, summary: 'ok', lease: c!.lease, usage: { inputTokens: 7, outputTokens: 3, costUsd: 1, model: 'opus' } });
    const o = ok<Overview>(await req('overview', {}));
    assert.deepEqual(o.counts, { queued: 1, running: 0, succeeded: 2, failed: 1, stale: 0 });
    assert.deepEqual(o.queues.map((x) => x.name).sort(), ['other', 'q']);
    const byName = Object.fromEntries(o.queues.map((x) => [x.name, x.counts]));
    assert.equal(byName['q']?.failed, 1);
    assert.equal(byName['other']?.succeeded, 1);
    assert.equal(o.queues.find((x) => x.name === 'q')?.paused, false);
    const u = ok<UsageReport>(await req('usage', {}));
    const pick = (rows: UsageReport['byTool']) => rows.map((r) => ({ key: r.key, tasks: r.tasks, inputTokens: r.inputTokens, outputTokens: r.outputTokens, costUsd: r.costUsd }));
    assert.deepEqual(pick(u.byTool), [
      { key: 'llm-codex', tasks: 3, inputTokens: 150, outputTokens: 15, costUsd: 0.75 },
      { key: 'llm-claude', tasks: 1, inputTokens: 7, outputTokens: 3, costUsd: 1 },
    ]);
    assert.deepEqual(u.byModel.map((r) => [r.key, r.tasks]).sort(), [['(none)', 1], ['gpt-5.5', 2], ['opus', 1]]);
    assert.deepEqual(u.byDay.filter((r) => r.key !== '(unfinished)').map((r) => r.tasks), [3]);
    assert.equal(u.total.costUsd, 1.75);
    assert.equal(o.scanned, 3);
    assert.equal(o.truncated, false);
    const total = o.throughput.succeeded.reduce((x, y) => x + y, 0) + o.throughput.failed.reduce((x, y) => x + y, 0);
    assert.equal(total, 3);
  });

  it('lists the plans of the newest tasks, newest first, and reports the one asked for, else the newest', async () => {
    await setup();
    const one = (id: string, keys: string[]) => ({ plan: { id, description: null, tasks: keys.map((key) => ({ key, queue: 'q', tool: 'llm-codex', prompt: key, after: [] })) } });
    assert.deepEqual(ok<PlansOverview>(await req('plans', {})), { plans: [], scanned: 0, truncated: false, selected: null, report: null, problem: null });
    await q.applyPlan(one('first', ['a', 'b']));
    await q.enqueue({ queue: 'q', tool: 'llm-codex', prompt: 'no plan' });
    await q.applyPlan(one('second', ['c']));
    const newest = ok<PlansOverview>(await req('plans', {}));
    assert.deepEqual(newest.plans.map((p) => [p.id, p.tasks]), [['second', 1], ['first', 2]]);
    assert.equal(newest.scanned, 4);
    assert.equal(newest.selected, 'second');
    assert.equal(newest.report?.plan.id, 'second');
    assert.equal(newest.report?.plan.tasks, 1);
    const chosen = ok<PlansOverview>(await req('plans', { plan: 'first' }));
    assert.equal(chosen.selected, 'first');
    assert.deepEqual(chosen.report?.byTool.map((r) => [r.key, r.tasks]), [['llm-codex', 2]]);
    // A plan that is not there: the list still comes, with why there is no report.
    const gone = ok<PlansOverview>(await req('plans', { plan: 'gone' }));
    assert.equal(gone.report, null);
    assert.match(gone.problem ?? '', /^Plan gone cannot be reported: no plan "gone"; plans: /);
    assert.equal(gone.plans.length, 2);
    assert.equal((await req('plans', { plan: '' })).ok, false, 'an empty plan id is a bad request');
  });

  it('scans at most PLAN_SCAN_LIMIT of the newest tasks for plans, and says so', async () => {
    await setup();
    await q.applyPlan({ plan: { id: 'old', description: null, tasks: [{ key: 'a', queue: 'q', tool: 'llm-codex', prompt: 'a', after: [] }] } });
    await q.enqueueMany(Array.from({ length: PLAN_SCAN_LIMIT }, (_, i) => ({ queue: 'q', tool: 'llm-codex', prompt: `t${i}` })));
    const r = ok<PlansOverview>(await req('plans', {}));
    assert.deepEqual([r.plans, r.scanned, r.truncated, r.selected], [[], PLAN_SCAN_LIMIT, true, null]);
    // Named, it is still reported.
    assert.equal(ok<PlansOverview>(await req('plans', { plan: 'old' })).report?.plan.tasks, 1);
  });

  it('says which finished tasks the throughput counts, in words, and plainly when none has finished', () => {
    assert.equal(throughputBasisText(0, false), 'No finished tasks yet.');
    assert.equal(throughputBasisText(1, false), 'Throughput from 1 finished task.');
    assert.equal(throughputBasisText(3, false), 'Throughput from all 3 finished tasks.');
    assert.equal(throughputBasisText(2000, true), 'Throughput from the 2,000 most recently created finished tasks (older ones not counted).');
  });

  it('buckets throughput and sums usage as pure functions', () => {
    const now = Date.parse('2026-01-01T12:00:00Z');
    const t = (finishedAt: string, status: 'succeeded' | 'failed') => ({ finishedAt, status, tool: 'x', usage: null }) as never;
    const tp = throughputOf([t('2026-01-01T11:59:00Z', 'succeeded'), t('2026-01-01T11:00:30Z', 'failed'), t('2025-12-01T00:00:00Z', 'succeeded')], now);
    assert.equal(tp.succeeded.length, 24);
    assert.equal(tp.succeeded.at(-1), 1);
  });

  it('renders a strict CSP with the nonce, and strips ANSI escapes', () => {
    const html = dashboardHtml({ cspSource: 'https://x', scriptUri: 'https://x/d.js', styleUri: 'https://x/d.css', nonce: 'abc' });
    assert.match(html, /default-src 'none'; script-src 'nonce-abc'/);
    assert.match(html, /<script type="module" nonce="abc" src="https:\/\/x\/d.js">/);
    assert.equal(stripAnsi('\u001b[31mred\u001b[0m \u001b]0;title\u0007ok \u001b[2K'), 'red ok ');
  });

  it('asks for the first page from the HTML itself, before the bundle, with the id the bundle never uses', () => {
    const html = dashboardHtml({ cspSource: 'https://x', scriptUri: 'https://x/d.js', nonce: 'abc' });
    const inline = /<script nonce="abc">([\s\S]*?)<\/script>/.exec(html);
    assert.ok(inline, 'an inline script with the nonce');
    assert.ok(html.indexOf(inline[0]) < html.indexOf('<script type="module"'), 'before the bundle');
    // Run it against a fake webview API: it sends listTasks with id 0 and the parameters boot.ts derives from the state.
    const sent: unknown[] = [];
    const listeners: ((e: { data: unknown }) => void)[] = [];
    const win: Record<string, unknown> = {};
    const run = (state: unknown) => {
      sent.length = 0;
      Object.assign(win, {
        acquireVsCodeApi: () => ({ postMessage: (m: unknown) => sent.push(m), getState: () => state, setState: () => undefined }),
        addEventListener: (_: string, l: (e: { data: unknown }) => void) => listeners.push(l),
        removeEventListener: () => undefined,
        window: win,
      });
      vm.runInNewContext(inline[1]!, win);
      // Through JSON: the objects were made in the script's own realm.
      return JSON.parse(JSON.stringify(sent[0])) as { type: string; id: number; method: string; params: unknown };
    };
    assert.deepEqual(run(undefined), { type: 'request', id: 0, method: 'listTasks', params: { limit: 50 } });
    assert.deepEqual(run({ query: { limit: 100, status: 'failed', before: 'tsk_old' }, cursors: ['tsk_a', 'tsk_b'] }).params, { limit: 100, status: 'failed', before: 'tsk_b' });
    const early = win['sparkqEarly'] as { held: unknown[] };
    listeners.at(-1)!({ data: { type: 'response', id: 0, ok: true, result: { tasks: [], next: null } } });
    listeners.at(-1)!({ data: { type: 'response', id: 3, ok: true, result: null } });
    assert.equal(early.held.length, 1, 'it holds the answer to its own request only');
  });

  it('sends rows, not whole tasks: the first line of the prompt, a script tool\'s script and arguments', async () => {
    await setup();
    const long = `\n\n  ${'x'.repeat(300)}  \nsecond line\n${'y'.repeat(100_000)}`;
    await q.enqueue({ queue: 'q', tool: 'llm-codex', prompt: long });
    await q.enqueue({ queue: 'q', tool: 'run-bash', payload: { script: 'build.sh', args: ['--fast', 'z'.repeat(2_000)], extra: 'w'.repeat(50_000) } });
    const page = ok<{ tasks: Record<string, unknown>[] }>(await req('listTasks', { limit: 10 }));
    const [script, prompt] = page.tasks;
    assert.deepEqual(Object.keys(prompt!).sort(), ['blockedBy', 'createdAt', 'finishedAt', 'id', 'notBefore', 'payload', 'priority', 'prompt', 'queue', 'stale', 'startedAt', 'status', 'tool', 'validates', 'validation', 'waitingOn']);
    assert.equal(prompt!['prompt'], 'x'.repeat(200));
    assert.equal(prompt!['payload'], null);
    const p = script!['payload'] as { script: string; args: string[] };
    assert.equal(p.script, 'build.sh');
    assert.equal(p.args[0], '--fast');
    assert.ok(p.args[1]!.length < 600 && p.args[1]!.endsWith('…'));
    assert.ok(JSON.stringify(page).length < 3_000, `the page is small: ${JSON.stringify(page).length} bytes`);
  });
});

describe('dashboard text without Intl', () => {
  it('groups counts like en-US and writes local dates as YYYY-MM-DD HH:MM:SS', () => {
    for (const n of [0, 7, 999, 1_000, -1_234, 12_345, 1_234_567, 9_007_199_254_740_991, 1.5]) assert.equal(formatCount(n), n.toLocaleString('en-US'));
    const d = new Date(2026, 0, 2, 3, 4, 5);
    assert.equal(formatDateTime(d.getTime()), '2026-01-02 03:04:05');
    assert.equal(formatDateTime(d.toISOString()), '2026-01-02 03:04:05');
    assert.equal(formatDateTime(new Date(2026, 11, 31, 23, 59, 9).getTime()), '2026-12-31 23:59:09');
    assert.equal(formatDateTime('not a date'), 'Invalid Date');
  });
});
