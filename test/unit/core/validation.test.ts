import { strict as assert } from 'node:assert';
import { isSparkqError } from '../../../src/core/errors';
import type { EnqueueInput, Task } from '../../../src/core/model';
import type { QueueService } from '../../../src/core/queue/service';
import { NO_VERDICT } from '../../../src/core/queue/validation';
import { type BackendEnv, type BackendQueue, eachBackend } from '../../support/backends';

/*
 * Validators with fix rounds, on both stores: a validated task's success enqueues its validation task in the same
 * change; the verdict passes it (its dependents go on), or fails the round (requeued with the feedback), or after the
 * last round leaves it failed with its dependents blocked.
 */

async function rejectsWith(p: unknown, code: string, message: RegExp): Promise<void> {
  await assert.rejects(Promise.resolve(p), (e: unknown) => {
    assert.ok(isSparkqError(e), `a SparkqError, not ${String(e)}`);
    assert.equal(e.code, code, e.message);
    assert.match(e.message, message);
    return true;
  });
}

describe('validators with fix rounds', () => eachBackend((_backend, use) => {
  let env: BackendEnv;
  let q: BackendQueue;
  beforeEach(() => {
    env = use();
    q = env.q;
  });

  /** Claims the next task of the queue (it must be `id` when given) and returns it with its lease. */
  async function claim(id?: string): Promise<{ task: Task; lease: string }> {
    const c = await q.claim({ queue: 'q', worker: 'w' });
    assert.ok(c, 'a task to claim');
    if (id !== undefined) assert.equal(c.task.id, id, `claims ${id}`);
    return c;
  }

  /** Runs the validated task `id` to success and returns its validation task (claimed). */
  async function succeed(id: string, summary = 'built it', data?: EnqueueInput['payload']): Promise<{ task: Task; lease: string }> {
    const c = await claim(id);
    const done = await q.complete({ task: id, lease: c.lease, summary, ...(data !== undefined ? { data } : {}) });
    assert.equal(done.status, 'succeeded');
    assert.equal(done.validation?.status, 'pending');
    const v = await claim(done.validation.by[done.validation.by.length - 1]);
    assert.equal(v.task.validates, id);
    return v;
  }

  const counts = async () => {
    const c = await q.getQueue('q');
    return c.counts;
  };

  it('a pass releases the dependents; until then they wait on the unchecked result', async () => {
    const t = await q.enqueue({ queue: 'q', tool: 'run-bash', prompt: 'make x', validate: { tool: 'llm-haiku', prompt: 'Is x right?' } });
    assert.deepEqual(t.validation, { status: 'pending', round: 1, maxRounds: 2, by: [], feedback: null, spec: { tool: 'llm-haiku', prompt: 'Is x right?', maxRounds: 2 } });
    const d = await q.enqueue({ queue: 'q', tool: 'run-bash', prompt: 'use x', after: [t.id] });
    const c = await claim(t.id);
    const done = await q.complete({ task: t.id, lease: c.lease, summary: 'made x', data: { files: 1 } });
    assert.equal(done.validation!.by.length, 1);
    const vId = done.validation!.by[0]!;
    // The dependent still waits (not blocked); the only claimable task is the validation task.
    assert.deepEqual((await q.getTask(d.id)).waitingOn, [t.id]);
    assert.deepEqual((await q.getTask(d.id)).blockedBy, []);
    const later = await q.enqueue({ queue: 'q', tool: 'run-bash', prompt: 'also after x', after: [t.id] });
    assert.deepEqual(later.waitingOn, [t.id], 'an enqueue after an unchecked task waits too');
    const v = await q.getTask(vId);
    assert.equal(v.tool, 'llm-haiku');
    assert.equal(v.validates, t.id);
    assert.match(v.prompt!, /Is x right\?/);
    assert.match(v.prompt!, /make x/);
    assert.match(v.prompt!, /made x/);
    assert.match(v.prompt!, /"files": 1/);
    assert.match(v.prompt!, /sparkq verdict/);
    assert.deepEqual(v.payload, { validates: t.id, round: 1, summary: 'made x', data: { files: 1 }, change: null });
    const vc = await claim(vId);
    const given = await q.verdict({ task: vId, lease: vc.lease, verdict: 'pass', feedback: 'fine' });
    assert.equal(given.status, 'succeeded');
    assert.deepEqual(given.result, { summary: 'pass: fine', data: { verdict: 'pass', feedback: 'fine' } });
    const passed = await q.getTask(t.id);
    assert.equal(passed.status, 'succeeded');
    assert.equal(passed.validation!.status, 'passed');
    assert.equal(passed.validation!.feedback, 'fine');
    assert.deepEqual((await q.getTask(d.id)).waitingOn, []);
    assert.equal((await claim()).task.id, d.id);
    assert.deepEqual(await counts(), { queued: 1, running: 1, succeeded: 2, failed: 0 });
  });

  it('a fail requeues the task as its next round with the feedback; dependents start only after the pass', async () => {
    const t = await q.enqueue({ queue: 'q', tool: 'run-bash', prompt: 'make y', validate: { tool: 'llm-haiku' } });
    const d = await q.enqueue({ queue: 'q', tool: 'run-bash', prompt: 'use y', after: [t.id] });
    const v1 = await succeed(t.id);
    await q.verdict({ task: v1.task.id, lease: v1.lease, verdict: 'fail', feedback: 'y is off by one' });
    const failed = await q.getTask(t.id);
    assert.equal(failed.status, 'failed');
    assert.equal(failed.error, 'validation round 1 of 2 failed: y is off by one');
    assert.equal(failed.validation!.status, 'failed');
    const { tasks } = await q.listTasks({ queue: 'q', status: 'queued' });
    const round2 = tasks.find((x) => x.retryOf === t.id)!;
    assert.ok(round2, 'requeued at once');
    assert.equal(round2.prompt, 'make y\n\n## Validator feedback (round 1 of 2)\n\ny is off by one');
    assert.equal(round2.validation!.round, 2);
    assert.equal(round2.validation!.status, 'pending');
    assert.equal(round2.validation!.feedback, 'y is off by one');
    assert.deepEqual(round2.validation!.by, [v1.task.id]);
    // The dependent waits on the new round now, and is not blocked by the failed one.
    const dNow = await q.getTask(d.id);
    assert.deepEqual(dNow.waitingOn, [round2.id]);
    assert.deepEqual(dNow.blockedBy, []);
    assert.deepEqual(await counts(), { queued: 2, running: 0, succeeded: 1, failed: 1 });
    const v2 = await succeed(round2.id, 'fixed y');
    assert.match(v2.task.prompt!, /round 2 of 2/);
    assert.equal((await q.peek('q')), null, 'the dependent does not start on the unchecked second round');
    await q.verdict({ task: v2.task.id, lease: v2.lease, verdict: 'pass' });
    assert.equal((await q.getTask(round2.id)).validation!.status, 'passed');
    assert.equal((await claim()).task.id, d.id);
    assert.deepEqual(await counts(), { queued: 0, running: 1, succeeded: 3, failed: 1 });
  });

  it('a fail in the last round leaves the task failed with the reasons and its dependents blocked; requeue starts round 1', async () => {
    const t = await q.enqueue({ queue: 'q', tool: 'run-bash', prompt: 'make z', validate: { tool: 'llm-haiku', maxRounds: 1 } });
    const d = await q.enqueue({ queue: 'q', tool: 'run-bash', prompt: 'use z', after: [t.id] });
    const v = await succeed(t.id);
    await q.verdict({ task: v.task.id, lease: v.lease, verdict: 'fail', feedback: 'z is missing' });
    const failed = await q.getTask(t.id);
    assert.equal(failed.status, 'failed');
    assert.equal(failed.error, 'validation failed after 1 rounds: z is missing');
    assert.deepEqual(failed.validation, { status: 'failed', round: 1, maxRounds: 1, by: [v.task.id], feedback: 'z is missing', spec: { tool: 'llm-haiku', maxRounds: 1 } });
    assert.deepEqual((await q.getTask(d.id)).blockedBy, [t.id]);
    assert.equal(await q.peek('q'), null);
    assert.deepEqual(await counts(), { queued: 1, running: 0, succeeded: 1, failed: 1 });
    const again = await q.requeue(t.id);
    assert.equal(again.validation!.round, 1);
    assert.equal(again.validation!.status, 'pending');
    assert.equal(again.prompt, 'make z\n\n## Validator feedback (round 1 of 1)\n\nz is missing');
    assert.deepEqual((await q.getTask(d.id)).waitingOn, [again.id]);
    const v2 = await succeed(again.id);
    await q.verdict({ task: v2.task.id, lease: v2.lease, verdict: 'pass' });
    assert.equal((await claim()).task.id, d.id);
  });

  it('a malformed verdict from an agent validator fails the round with the reason, never a silent pass', async () => {
    const t = await q.enqueue({ queue: 'q', tool: 'run-bash', prompt: 'p', validate: { tool: 'llm-haiku' } });
    const v = await succeed(t.id);
    await q.complete({ task: v.task.id, lease: v.lease, summary: 'looks good to me', data: { verdict: 'ok' } });
    const failed = await q.getTask(t.id);
    assert.equal(failed.status, 'failed');
    assert.equal(failed.error, `validation round 1 of 2 failed: ${NO_VERDICT}`);
    // No data at all is no verdict either; a verdict in the completion data counts.
    const round2 = (await q.listTasks({ queue: 'q', status: 'queued' })).tasks.find((x) => x.retryOf === t.id)!;
    const v2 = await succeed(round2.id);
    await q.complete({ task: v2.task.id, lease: v2.lease, summary: 'fine', data: { verdict: 'pass', feedback: 'all good' } });
    assert.equal((await q.getTask(round2.id)).validation!.status, 'passed');
  });

  it('a script validator passes by exit status: success passes, failure fails the round with its error', async () => {
    const t = await q.enqueue({ queue: 'q', tool: 'run-bash', prompt: 'p', validate: { tool: 'run-python', prompt: 'check.py --strict', maxRounds: 2 } });
    const v = await succeed(t.id);
    assert.equal(v.task.prompt, 'check.py --strict', 'a script validator runs the script its prompt names');
    assert.deepEqual(v.task.payload, { validates: t.id, round: 1, summary: 'built it', data: null, change: null });
    await q.fail({ task: v.task.id, lease: v.lease, error: 'exit 1: test_y failed' });
    assert.equal((await q.getTask(t.id)).error, 'validation round 1 of 2 failed: exit 1: test_y failed');
    const round2 = (await q.listTasks({ queue: 'q', status: 'queued' })).tasks.find((x) => x.retryOf === t.id)!;
    assert.match(round2.prompt!, /exit 1: test_y failed/);
    const v2 = await succeed(round2.id);
    await q.complete({ task: v2.task.id, lease: v2.lease, summary: 'exit 0' });
    assert.equal((await q.getTask(round2.id)).validation!.status, 'passed');
  });

  it('verdict is refused for a task that validates nothing, and for one that is not running', async () => {
    await q.enqueue({ queue: 'q', tool: 'run-bash', prompt: 'plain' });
    const c = await claim();
    await rejectsWith(q.verdict({ task: c.task.id, lease: c.lease, verdict: 'pass' }), 'invalid-input', /validates no task/);
    assert.equal((await q.getTask(c.task.id)).status, 'running', 'changed nothing');
    await q.complete({ task: c.task.id, lease: c.lease, summary: 'ok' });
    await rejectsWith(q.verdict({ task: c.task.id, verdict: 'pass' }), 'conflict', /succeeded/);
    await rejectsWith(q.verdict({ task: c.task.id, verdict: 'maybe' as 'pass' }), 'invalid-input', /pass or fail/);
  });

  it('checks the validator at enqueue: its tool must exist, its queue must be active; a tool default applies', async () => {
    await rejectsWith(q.enqueue({ queue: 'q', tool: 'run-bash', prompt: 'p', validate: { tool: 'nope' } }), 'invalid-input', /validate\.tool names "nope"/);
    await rejectsWith(q.enqueue({ queue: 'q', tool: 'run-bash', prompt: 'p', validate: { tool: 'llm-haiku', maxRounds: 11 } }), 'invalid-input', /maxRounds is at most 10/);
    await rejectsWith(q.enqueue({ queue: 'q', tool: 'run-bash', prompt: 'p', validate: { tool: 'llm-haiku', queue: 'elsewhere' } }), 'not-found', /elsewhere/);
    await rejectsWith(q.enqueue({ queue: 'q', tool: 'run-bash', prompt: 'p', validate: { tool: 'run-python' } }), 'invalid-input', /a script validator \(run-python\) runs the script its prompt names/);
    env.config.tools['run-bash']!.validate = { tool: 'run-python', prompt: 'check.py', maxRounds: 3 };
    try {
      const t = await q.enqueue({ queue: 'q', tool: 'run-bash', prompt: 'p' });
      assert.deepEqual(t.validation?.spec, { tool: 'run-python', prompt: 'check.py', maxRounds: 3 });
      const own = await q.enqueue({ queue: 'q', tool: 'run-bash', prompt: 'p', validate: { tool: 'llm-haiku' } });
      assert.equal(own.validation?.spec.tool, 'llm-haiku');
    } finally {
      delete env.config.tools['run-bash']!.validate;
    }
  });

  it('puts the validation task on the validator queue, from a plan too', async () => {
    await q.createQueue({ name: 'checks', session: 's' });
    const applied = await q.applyPlan({
      plan: { id: 'p1', description: null, tasks: [{ key: 'a', queue: 'q', tool: 'run-bash', prompt: 'a', after: [], validate: { tool: 'llm-haiku', queue: 'checks' } }, { key: 'b', queue: 'q', tool: 'run-bash', prompt: 'b', after: ['a'] }] },
    });
    const a = applied.created[0]!.task;
    assert.equal(a.validation?.spec.queue, 'checks');
    const c = await claim(a.id);
    await q.complete({ task: a.id, lease: c.lease, summary: 'did a' });
    assert.equal(await q.peek('q'), null);
    const v = await q.claim({ queue: 'checks' });
    assert.equal(v?.task.validates, a.id);
    await q.verdict({ task: v.task.id, lease: v.lease, verdict: 'pass' });
    assert.equal((await q.peek('q'))?.id, applied.created[1]!.task.id);
  });

  it("a check is part of its task's plan: listed under its name, its run and tokens in the plan's report, never taken for the name", async () => {
    const plan = { id: 'p2', description: null, tasks: [{ key: 'a', queue: 'q', tool: 'run-bash', prompt: 'a', after: [], validate: { tool: 'llm-haiku' } }, { key: 'b', queue: 'q', tool: 'run-bash', prompt: 'b', after: ['a'] }] };
    const applied = await q.applyPlan({ plan });
    const a = applied.created[0]!.task;
    const v = await succeed(a.id);
    assert.equal(v.task.plan, 'p2');
    assert.equal(v.task.planKey, 'a');
    env.clock.advance(3_000);
    // The validator finished it through `sparkq verdict` (no usage); its worker records the agent's tokens after.
    await q.verdict({ task: v.task.id, lease: v.lease, verdict: 'pass' });
    const usage = { inputTokens: 12_000, cachedInputTokens: 2_000, outputTokens: 300, model: 'claude-haiku-4-5' };
    const recorded = await q.recordRun({ task: v.task.id, attempt: 1, usage });
    assert.deepEqual(recorded.usage, usage);
    assert.deepEqual((await q.getTask(v.task.id)).usage, usage);
    assert.deepEqual((await q.listTasks({ plan: 'p2' })).tasks.map((t) => t.id).sort(), [a.id, v.task.id, applied.created[1]!.task.id].sort());
    const report = (await q.report({ plan: 'p2' })).plan!;
    assert.equal(report.tasks, 3);
    assert.equal(report.checks, 1);
    assert.equal(report.unfinished, 1, 'b has not run');
    assert.equal(report.naive.tasks, 1);
    assert.equal(report.naive.inputTokens, 12_000);
    assert.equal(report.naive.outputTokens, 300);
    // The check's run counts on its name, which stays shown by the task it checks.
    assert.deepEqual(report.criticalPath.tasks.map((t) => [t.key, t.id, t.runMs]), [['a', a.id, 3_000]]);
    // Applying the plan again enqueues nothing and names a by its task, not by its check.
    const again = await q.applyPlan({ plan });
    assert.deepEqual(again.created, []);
    assert.deepEqual(Object.fromEntries(again.existing.map((e) => [e.key, e.id])), { a: a.id, b: applied.created[1]!.task.id });
  });

  it('records what a finished attempt used and changed only on that attempt, once finished, and only when given', async () => {
    const t = await q.enqueue({ queue: 'q', tool: 'run-bash', prompt: 'p' });
    const c = await claim(t.id);
    await rejectsWith(q.recordRun({ task: t.id, attempt: 1, usage: { inputTokens: 1 } }), 'conflict', /is running; what an attempt changed and used is recorded only once it finished/);
    await q.complete({ task: t.id, lease: c.lease, summary: 'done' });
    await rejectsWith(q.recordRun({ task: t.id, attempt: 2, usage: { inputTokens: 1 } }), 'conflict', /is in attempt 1, not 2/);
    await rejectsWith(q.recordRun({ task: t.id, attempt: 1 }), 'invalid-input', /nothing to record on task .*: give change .*, usage .* or both/);
    assert.equal((await q.getTask(t.id)).usage, null, 'nothing recorded by the refusals');
    const change = { worktree: '.sparkq/worktrees/x', branch: 'sparkq/q/x', baseRef: 'main', baseCommit: '0'.repeat(40), commit: null, files: [], filesChanged: 0, insertions: 0, deletions: 0 };
    await q.recordRun({ task: t.id, attempt: 1, change });
    await q.recordRun({ task: t.id, attempt: 1, usage: { outputTokens: 5 } });
    const after = await q.getTask(t.id);
    assert.deepEqual(after.change, change, 'a usage alone keeps the change recorded before');
    assert.deepEqual(after.usage, { outputTokens: 5 });
  });

  it('keeps the counts per status right through rounds', async () => {
    const t = await q.enqueue({ queue: 'q', tool: 'run-bash', prompt: 'p', validate: { tool: 'llm-haiku', maxRounds: 2 } });
    let current = t.id;
    for (let round = 1; round <= 2; round++) {
      const v = await succeed(current);
      await q.verdict({ task: v.task.id, lease: v.lease, verdict: 'fail', feedback: `no ${round}` });
      const next = (await q.listTasks({ queue: 'q', status: 'queued' })).tasks.find((x) => x.retryOf === current);
      if (next) current = next.id;
    }
    // Two rounds of the task failed, two validation tasks succeeded; nothing queued or running.
    assert.deepEqual(await counts(), { queued: 0, running: 0, succeeded: 2, failed: 2 });
    const all = await q.counts();
    assert.equal(all.failed, 2);
    assert.equal(all.succeeded, 2);
  });

  it('a validation task that is auto-failed by the sweep fails the round', async () => {
    const t = await q.enqueue({ queue: 'q', tool: 'run-bash', prompt: 'p', validate: { tool: 'llm-haiku', maxRounds: 1 } });
    const v = await succeed(t.id);
    env.clock.advance((v.task.timeoutSeconds * 2 + 1) * 1000);
    await q.sweep();
    const failed = await q.getTask(t.id);
    assert.equal(failed.status, 'failed');
    assert.match(failed.error!, /^validation failed after 1 rounds: /);
  });

  it('the embedded store replays all of it after a crash', async function () {
    if (!env.embedded) return this.skip();
    const t = await q.enqueue({ queue: 'q', tool: 'run-bash', prompt: 'r', validate: { tool: 'llm-haiku' } });
    const d = await q.enqueue({ queue: 'q', tool: 'run-bash', prompt: 'after r', after: [t.id] });
    const v1 = await succeed(t.id);
    // From a snapshot taken here, the replay changes rows it reads from the database (not rows it enqueued itself).
    await (q as QueueService).store.snapshot();
    await q.verdict({ task: v1.task.id, lease: v1.lease, verdict: 'fail', feedback: 'redo' });
    const round2 = (await q.listTasks({ queue: 'q', status: 'queued' })).tasks.find((x) => x.retryOf === t.id)!;
    const v2 = await succeed(round2.id);
    await q.verdict({ task: v2.task.id, lease: v2.lease, verdict: 'pass' });
    const before = [];
    for (const id of [t.id, d.id, round2.id, v1.task.id, v2.task.id]) before.push(await q.getTask(id));
    const countsBefore = await counts();
    (q as QueueService).abandon();
    q = env.q = await env.embedded.open();
    const after = [];
    for (const id of [t.id, d.id, round2.id, v1.task.id, v2.task.id]) after.push(await q.getTask(id));
    assert.deepEqual(after, before);
    assert.deepEqual(await counts(), countsBefore);
    assert.equal((await q.peek('q'))?.id, d.id);
  });

  it('the embedded store replays a whole series journaled from an empty queue (every row enqueued within the replay)', async function () {
    if (!env.embedded) return this.skip();
    const t = await q.enqueue({ queue: 'q', tool: 'run-bash', prompt: 'r', validate: { tool: 'llm-haiku', maxRounds: 1 } });
    const d = await q.enqueue({ queue: 'q', tool: 'run-bash', prompt: 'after r', after: [t.id] });
    const v = await succeed(t.id);
    await q.verdict({ task: v.task.id, lease: v.lease, verdict: 'fail', feedback: 'no' });
    const again = await q.requeue(t.id);
    const v2 = await succeed(again.id);
    await q.verdict({ task: v2.task.id, lease: v2.lease, verdict: 'pass' });
    const ids = [t.id, d.id, again.id, v.task.id, v2.task.id];
    const before = [];
    for (const id of ids) before.push(await q.getTask(id));
    const countsBefore = await counts();
    (q as QueueService).abandon();
    q = env.q = await env.embedded.open();
    const after = [];
    for (const id of ids) after.push(await q.getTask(id));
    assert.deepEqual(after, before);
    assert.deepEqual(await counts(), countsBefore);
    assert.deepEqual(await q.counts(), { ...countsBefore, stale: 0 });
  });
}));
