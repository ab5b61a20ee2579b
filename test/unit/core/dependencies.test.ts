import { strict as assert } from 'node:assert';
import { isSparkqError } from '../../../src/core/errors';
import type { PlanInput as Plan } from '../../../src/core/model';
import type { QueueService } from '../../../src/core/queue/service';
import { type BackendEnv, type BackendQueue, eachBackend } from '../../support/backends';

/** Claims the next task of `queue` and finishes it: succeeded, or failed with `fail` as the error. */
async function run(q: BackendQueue, queue: string, fail?: string): Promise<string | null> {
  const c = await q.claim({ queue, worker: 'w' });
  if (!c) return null;
  if (fail) await q.fail({ task: c.task.id, lease: c.lease, error: fail });
  else await q.complete({ task: c.task.id, lease: c.lease, summary: `did ${c.task.prompt ?? ''}` });
  return c.task.id;
}

function plan(id: string, tasks: { key: string; after?: string[]; queue?: string }[]): Plan {
  return {
    id,
    description: null,
    tasks: tasks.map((t) => ({ key: t.key, queue: t.queue ?? 'q', tool: 'run-bash', prompt: t.key, after: t.after ?? [] })),
  };
}

describe('plans: dependencies, retries, pause, release, requeue --failed, report', () => eachBackend((backend, use) => {
  let env: BackendEnv;
  let q: BackendQueue;
  beforeEach(() => {
    env = use();
    q = env.q;
  });
  /** For what only the embedded store has (crash replay, archives): its own handle, reopened as after a crash. */
  const crashAndReopen = async (): Promise<void> => {
    (q as QueueService).abandon();
    q = env.q = await env.embedded!.open();
  };

  describe('dependencies', () => {
    it('a task is claimable only once every task it waits on has succeeded', async () => {
      const a = await q.enqueue({ queue: 'q', tool: 'run-bash', prompt: 'a' });
      const b = await q.enqueue({ queue: 'q', tool: 'run-bash', prompt: 'b' });
      const c = await q.enqueue({ queue: 'q', tool: 'run-bash', prompt: 'c', after: [a.id, b.id], priority: 10 });
      assert.deepEqual(c.after.sort(), [a.id, b.id].sort());
      assert.deepEqual(c.waitingOn.sort(), [a.id, b.id].sort());
      assert.deepEqual(c.blockedBy, []);
      // c has the highest priority but waits: a comes first, then b, then c.
      assert.equal((await q.peek('q'))?.id, a.id);
      assert.equal(await run(q, 'q'), a.id);
      assert.deepEqual((await q.getTask(c.id)).waitingOn, [b.id]);
      assert.equal(await run(q, 'q'), b.id);
      assert.deepEqual((await q.getTask(c.id)).waitingOn, []);
      assert.equal(await run(q, 'q'), c.id);
      assert.deepEqual((await q.getTask(c.id)).after.sort(), [a.id, b.id].sort(), 'a finished task still says what it waited on');
    });

    it('waiting on a succeeded task does not wait; waiting on a task that does not exist is refused and changes nothing', async () => {
      const a = await q.enqueue({ queue: 'q', tool: 'run-bash', prompt: 'a' });
      await run(q, 'q');
      const b = await q.enqueue({ queue: 'q', tool: 'run-bash', prompt: 'b', after: [a.id] });
      assert.deepEqual(b.waitingOn, []);
      assert.equal((await q.peek('q'))?.id, b.id);
      const before = await q.counts();
      await assert.rejects(async () => q.enqueue({ queue: 'q', tool: 'run-bash', prompt: 'x', after: ['tsk_000000000000'] }), (e: unknown) => {
        assert.ok(isSparkqError(e, 'not-found'));
        assert.match((e as Error).message, /waits on task "tsk_000000000000".*does not exist/);
        return true;
      });
      assert.deepEqual((await q.counts()), before);
    });

    it('a failed dependency blocks its waiters; requeueing it and its success releases them', async () => {
      const a = await q.enqueue({ queue: 'q', tool: 'run-bash', prompt: 'a' });
      const b = await q.enqueue({ queue: 'q', tool: 'run-bash', prompt: 'b', after: [a.id] });
      await run(q, 'q', 'boom');
      assert.deepEqual((await q.getTask(b.id)).blockedBy, [a.id]);
      assert.equal((await q.peek('q')), null, 'b stays blocked');
      const again = await q.requeue(a.id);
      const waiting = await q.getTask(b.id);
      assert.deepEqual(waiting.after, [again.id], 'the waiter now waits on the copy');
      assert.deepEqual(waiting.blockedBy, []);
      assert.equal(await run(q, 'q'), again.id);
      assert.equal(await run(q, 'q'), b.id);
      assert.equal((await q.getTask(b.id)).status, 'succeeded');
    });

    if (backend === 'embedded') it('dependencies survive a crash: replay gives the same waiting state', async () => {
      const a = await q.enqueue({ queue: 'q', tool: 'run-bash', prompt: 'a' });
      const b = await q.enqueue({ queue: 'q', tool: 'run-bash', prompt: 'b', after: [a.id] });
      const c = await q.enqueue({ queue: 'q', tool: 'run-bash', prompt: 'c', after: [a.id, b.id] });
      await run(q, 'q');
      const beforeB = await q.getTask(b.id);
      const beforeC = await q.getTask(c.id);
      await crashAndReopen();
      assert.deepEqual((await q.getTask(b.id)), beforeB);
      assert.deepEqual((await q.getTask(c.id)), beforeC);
      assert.equal(await run(q, 'q'), b.id);
      assert.equal(await run(q, 'q'), c.id);
    });
  });

  describe('retries', () => {
    it('retries a failing task up to the queue’s maxAttempts with growing delays, keeping every attempt’s error', async () => {
      await q.createQueue({ name: 'r', session: 's', maxAttempts: 3 });
      const t = await q.enqueue({ queue: 'r', tool: 'run-bash', prompt: 'flaky' });
      const c1 = (await q.claim({ queue: 'r' }))!;
      const back = await q.fail({ task: t.id, lease: c1.lease, error: 'first' });
      assert.equal(back.status, 'queued');
      assert.ok(back.notBefore);
      const delay1 = Date.parse(back.notBefore) - env.clock.now();
      assert.ok(delay1 >= 5_000 && delay1 <= 10_000, `first retry after 5–10 s (backoff 10 s with jitter), got ${delay1} ms`);
      assert.equal(await q.claim({ queue: 'r' }), null, 'not before its time');
      env.clock.advance(delay1);
      const c2 = (await q.claim({ queue: 'r' }))!;
      assert.equal(c2.task.attempt, 2);
      const back2 = await q.fail({ task: t.id, lease: c2.lease, error: 'second' });
      const delay2 = Date.parse(back2.notBefore!) - env.clock.now();
      assert.ok(delay2 >= 10_000 && delay2 <= 20_000, `second retry after 10–20 s, got ${delay2} ms`);
      env.clock.advance(delay2);
      const c3 = (await q.claim({ queue: 'r' }))!;
      const final = await q.fail({ task: t.id, lease: c3.lease, error: 'third' });
      assert.equal(final.status, 'failed', 'stops at the cap');
      assert.equal(final.error, 'third');
      const d = await q.getTask(t.id);
      assert.deepEqual(
        d.attempts.map((a) => [a.n, a.outcome, a.error]),
        [
          [1, 'failed', 'first (attempt 1 of 3; retrying)'],
          [2, 'failed', 'second (attempt 2 of 3; retrying)'],
          [3, 'failed', 'third'],
        ],
      );
      assert.equal((await q.getQueue('r')).counts.failed, 1);
      assert.equal((await q.getQueue('r')).counts.queued, 0);
    });

    it('the tool’s maxAttempts applies when the queue sets none; without either a failure is final', async () => {
      env.config.tools['run-bash'] = { ...env.config.tools['run-bash']!, maxAttempts: 2 };
      const t = await q.enqueue({ queue: 'q', tool: 'run-bash', prompt: 'x' });
      const c = (await q.claim({ queue: 'q' }))!;
      assert.equal((await q.fail({ task: t.id, lease: c.lease, error: 'no' })).status, 'queued');
      const u = await q.enqueue({ queue: 'q', tool: 'run-python', prompt: 'y', priority: 5 });
      const cu = (await q.claim({ queue: 'q' }))!;
      assert.equal(cu.task.id, u.id);
      assert.equal((await q.fail({ task: u.id, lease: cu.lease, error: 'no' })).status, 'failed');
    });
  });

  describe('pause, resume and release on a rate limit', () => {
    it('a paused queue hands out nothing; resume or the pause’s end lets it go on', async () => {
      await q.enqueue({ queue: 'q', tool: 'run-bash', prompt: 'a' });
      const paused = await q.pauseQueue({ queue: 'q', reason: 'lunch' });
      assert.equal(paused.paused, true);
      assert.equal(paused.pausedUntil, null);
      assert.equal(paused.pauseReason, 'lunch');
      assert.equal(await q.claim({ queue: 'q' }), null);
      assert.equal((await q.peek('q')), null);
      const resumed = await q.resumeQueue('q');
      assert.equal(resumed.paused, false);
      await assert.rejects(async () => q.resumeQueue('q'), /not paused/);
      await q.pauseQueue({ queue: 'q', forSeconds: 60 });
      assert.equal(await q.claim({ queue: 'q' }), null);
      env.clock.advance(61_000);
      assert.equal((await q.getQueue('q')).paused, false, 'a timed pause ends by itself');
      await q.sweep();
      const row = await env.row("SELECT paused_at FROM queues WHERE name = 'q'");
      assert.equal(row?.['paused_at'], null, 'the sweep records the end of the pause');
      assert.ok(await q.claim({ queue: 'q' }));
    });

    it('release hands the task back unfailed and pauses the queue until the reset time, then it runs again', async () => {
      const t = await q.enqueue({ queue: 'q', tool: 'llm-codex', prompt: 'a' });
      const c = (await q.claim({ queue: 'q' }))!;
      const reset = env.clock.now() + 120_000;
      const back = await q.release({ task: t.id, lease: c.lease, reason: 'Codex hit a usage limit', resetAt: new Date(reset).toISOString(), usage: { inputTokens: 5 } });
      assert.equal(back.status, 'queued');
      assert.equal(back.error, 'Codex hit a usage limit');
      const queue = await q.getQueue('q');
      assert.equal(queue.paused, true);
      assert.equal(queue.pausedUntil, new Date(reset).toISOString());
      assert.equal(queue.counts.failed, 0);
      assert.equal(await q.claim({ queue: 'q' }), null);
      env.clock.advance(120_001);
      const again = (await q.claim({ queue: 'q' }))!;
      assert.equal(again.task.id, t.id);
      assert.equal(again.task.attempt, 2);
      await q.complete({ task: t.id, lease: again.lease, summary: 'ok' });
      assert.deepEqual(
        (await q.getTask(t.id)).attempts.map((a) => a.outcome),
        ['released', 'succeeded'],
      );
    });

    it('without a reset time the queue pauses for the configured delay; a longer pause in force stays', async () => {
      await q.enqueue({ queue: 'q', tool: 'llm-claude', prompt: 'a' });
      const c = (await q.claim({ queue: 'q' }))!;
      await q.release({ task: c.task.id, lease: c.lease, reason: 'rate limit' });
      assert.equal(Date.parse((await q.getQueue('q')).pausedUntil!) - env.clock.now(), env.config.retry.rateLimitPauseSeconds * 1000);
      await q.resumeQueue('q');
      await q.pauseQueue({ queue: 'q', reason: 'by hand' });
      await q.resumeQueue('q');
      const c2 = (await q.claim({ queue: 'q' }))!;
      await q.pauseQueue({ queue: 'q', reason: 'by hand' });
      await q.release({ task: c2.task.id, lease: c2.lease, reason: 'rate limit', resetAt: env.clock.now() + 1000 });
      assert.equal((await q.getQueue('q')).pauseReason, 'by hand', 'a pause until resumed is not shortened');
      assert.equal((await q.getQueue('q')).pausedUntil, null);
    });

    if (backend === 'embedded') it('pauses and releases survive a crash', async () => {
      await q.enqueue({ queue: 'q', tool: 'llm-codex', prompt: 'a' });
      const c = (await q.claim({ queue: 'q' }))!;
      await q.release({ task: c.task.id, lease: c.lease, reason: 'limit', resetAt: env.clock.now() + 60_000 });
      const before = { queue: (await q.getQueue('q')), task: (await q.getTask(c.task.id)) };
      await crashAndReopen();
      assert.deepEqual({ queue: (await q.getQueue('q')), task: (await q.getTask(c.task.id)) }, before);
    });
  });

  describe('plans and requeue --failed', () => {
    it('applies a plan with dependencies once; applying it again enqueues nothing and reports what exists', async () => {
      const p = plan('feature', [{ key: 'a' }, { key: 'b', after: ['a'] }, { key: 'c', after: ['a'] }, { key: 'd', after: ['b', 'c'] }]);
      const first = await q.applyPlan({ plan: p, file: 'plan.yml' });
      assert.deepEqual(first.created.map((c) => c.key), ['a', 'b', 'c', 'd']);
      assert.deepEqual(first.existing, []);
      const ids = Object.fromEntries(first.created.map((c) => [c.key, c.task.id]));
      assert.deepEqual(first.created[3]!.task.after.sort(), [ids['b'], ids['c']].sort());
      assert.equal(first.created[0]!.task.plan, 'feature');
      assert.equal(first.created[0]!.task.planKey, 'a');
      const again = await q.applyPlan({ plan: p });
      assert.deepEqual(again.created, []);
      assert.deepEqual(again.existing.map((e) => e.key).sort(), ['a', 'b', 'c', 'd']);
      assert.equal((await q.counts()).queued, 4);
      // Adding a task to the plan enqueues only that one, waiting on the task that exists.
      const grown = await q.applyPlan({ plan: plan('feature', [{ key: 'a' }, { key: 'e', after: ['a'] }]) });
      assert.deepEqual(grown.created.map((c) => c.key), ['e']);
      assert.deepEqual(grown.created[0]!.task.after, [ids['a']]);
      assert.equal((await q.listTasks({ plan: 'feature' })).tasks.length, 5);
    });

    it('a plan that names a queue that does not exist enqueues nothing', async () => {
      await assert.rejects(async () => q.applyPlan({ plan: plan('bad', [{ key: 'a' }, { key: 'b', queue: 'nope' }]) }), /no queue named "nope"/);
      assert.equal((await q.counts()).queued, 0);
    });

    it('requeue --failed requeues every failed task of a plan once, releases their waiters, leaves succeeded work alone', async () => {
      await q.createQueue({ name: 'q2', session: 's' });
      const p = plan('p', [{ key: 'a' }, { key: 'b' }, { key: 'c', after: ['a', 'b'], queue: 'q2' }, { key: 'd', after: ['c'] }]);
      const applied = await q.applyPlan({ plan: p });
      const ids = Object.fromEntries(applied.created.map((c) => [c.key, c.task.id]));
      await run(q, 'q'); // a succeeds
      await run(q, 'q', 'b broke');
      assert.deepEqual((await q.getTask(ids['c']!)).blockedBy, [ids['b']]);
      const requeued = await q.requeueFailed({ plan: 'p' });
      assert.deepEqual(requeued.map((t) => t.planKey), ['b']);
      assert.deepEqual(await q.requeueFailed({ plan: 'p' }), [], 'a failed task is requeued once');
      await run(q, 'q'); // b again, succeeds
      assert.equal(await run(q, 'q2'), ids['c']);
      assert.equal(await run(q, 'q'), ids['d']);
      const all = (await q.listTasks({ plan: 'p', limit: 100 })).tasks;
      const succeeded = all.filter((t) => t.status === 'succeeded').map((t) => t.planKey).sort();
      assert.deepEqual(succeeded, ['a', 'b', 'c', 'd'], 'every plan task succeeded exactly once');
      await assert.rejects(async () => q.requeueFailed({ plan: 'nope' }), /no plan "nope"; plans: p/);
    });
  });

  describe('report', () => {
    it('sums tasks, run time, tokens and cost by tool, model, queue and day', async () => {
      for (const [tool, model, tokens, cost] of [
        ['llm-codex', 'gpt-5', 100, 0.01],
        ['llm-codex', 'gpt-5', 50, 0.02],
        ['llm-claude', 'claude-sonnet', 10, 0.5],
      ] as const) {
        await q.enqueue({ queue: 'q', tool, prompt: 'x' });
        const c = (await q.claim({ queue: 'q' }))!;
        env.clock.advance(2_000);
        await q.complete({ task: c.task.id, lease: c.lease, summary: 'ok', usage: { inputTokens: tokens, cachedInputTokens: 1, outputTokens: 2, costUsd: cost, model } });
      }
      await q.enqueue({ queue: 'q', tool: 'run-bash', prompt: 'x' });
      await run(q, 'q', 'no');
      const byTool = await q.report({ by: 'tool' });
      const codex = byTool.rows.find((r) => r.key === 'llm-codex')!;
      assert.deepEqual(
        { tasks: codex.tasks, input: codex.inputTokens, cached: codex.cachedInputTokens, output: codex.outputTokens, cost: codex.costUsd, runMs: codex.runMs },
        { tasks: 2, input: 150, cached: 2, output: 4, cost: 0.03, runMs: 4_000 },
      );
      assert.equal(byTool.total.tasks, 4);
      assert.equal(byTool.total.failed, 1);
      assert.equal(byTool.total.costUsd, 0.53);
      assert.deepEqual((await q.report({ by: 'model' })).rows.map((r) => [r.key, r.tasks]), [['gpt-5', 2], ['(none)', 1], ['claude-sonnet', 1]]);
      assert.deepEqual((await q.report({ by: 'queue' })).rows.map((r) => r.key), ['q']);
      assert.equal((await q.report({ by: 'day' })).rows.length, 1);
      assert.match((await q.report({ by: 'day' })).rows[0]!.key, /^\d{4}-\d{2}-\d{2}$/);
    });

    if (backend === 'embedded') it('archived tasks count the same as live ones', async () => {
      const e = q as QueueService;
      await e.enqueue({ queue: 'q', tool: 'llm-codex', prompt: 'x' });
      const c = (await e.claim({ queue: 'q' }))!;
      await e.complete({ task: c.task.id, lease: c.lease, summary: 'ok', usage: { inputTokens: 150, costUsd: 0.01, model: 'gpt-5' } });
      env.config.store.liveCap = 100;
      const q2 = e;
      await q2.enqueueMany(Array.from({ length: 250 }, () => ({ queue: 'q', tool: 'llm-codex', prompt: 'bulk' })));
      const claims = await q2.claimMany({ queue: 'q' }, 250);
      await q2.completeMany(claims.map((c) => ({ task: c.task.id, lease: c.lease, summary: 'ok', usage: { inputTokens: 2, costUsd: 0.001, model: 'gpt-5' } })));
      const live = await q.report({ by: 'model' });
      await q2.maintain();
      assert.ok(q2.archiveChunks().length > 0, 'some tasks were archived');
      assert.deepEqual(await q.report({ by: 'model' }), live);
      assert.deepEqual(await q.report({ by: 'model' }), live, 'the same from the kept chunk sums');
      assert.equal(live.rows.find((r) => r.key === 'gpt-5')!.inputTokens, 150 + 500);
    });
  });
}));
