import { strict as assert } from 'node:assert';
import { type ErrorCode, isSparkqError } from '../../../src/core/errors';
import type { ChangeEvent } from '../../../src/core/events';
import { type Effect, EffectBatch, applyEffects, effectEvents } from '../../../src/core/queue/effects';
import { MIGRATIONS } from '../../../src/core/queue/schema';
import type { QueueService } from '../../../src/core/queue/service';
import { SqlDatabase } from '../../../src/core/store/sqlite';
import { type BackendEnv, type BackendQueue, eachBackend } from '../../support/backends';
import { eachTestQueue, type TestQueue } from '../../support/queue';

async function rejectsWith(p: unknown, code: ErrorCode, pattern: RegExp): Promise<void> {
  // A call's result: a promise, or (from a store that answers synchronously) a value or a throw already caught.
  const run = typeof p === 'function' ? Promise.resolve().then(p as () => unknown) : Promise.resolve(p);
  await assert.rejects(run, (e: unknown) => {
    assert.ok(isSparkqError(e, code), `expected a ${code} error, got ${String(e)}`);
    assert.match((e as Error).message, pattern);
    return true;
  });
}

describe('queue operations', () => eachBackend((_backend, use) => {
  let env: BackendEnv;
  let q: BackendQueue;
  beforeEach(() => {
    env = use();
    q = env.q;
  });

  describe('sessions and queues', () => {
    it('creates, lists and ends sessions; names are unique among active ones', async () => {
      const s = await q.createSession({ name: 'api-v2', description: 'the new API' });
      assert.match(s.id, /^ses_[0-9a-z]{12}$/);
      assert.equal(s.status, 'active');
      await rejectsWith(q.createSession({ name: 'api-v2' }), 'conflict', /already active/);
      const ended = await q.endSession('api-v2');
      assert.equal(ended.status, 'ended');
      assert.ok(ended.endedAt);
      await rejectsWith(q.endSession(s.id), 'conflict', /already ended/);
      const again = await q.createSession({ name: 'api-v2' });
      assert.notEqual(again.id, s.id);
      assert.equal((await q.getSession('api-v2')).id, again.id, 'a name resolves to the active session first');
      assert.equal((await q.listSessions()).length, 3);
      assert.equal((await q.listSessions({ includeEnded: false })).length, 2);
    });

    it('rejects bad names with what is wrong', async () => {
      await rejectsWith(q.createSession({ name: '  ' }), 'invalid-input', /must not be empty/);
      await rejectsWith(q.createSession({ name: 'x'.repeat(101) }), 'invalid-input', /longer than 100/);
      await rejectsWith(q.createSession({ name: 'tsk_abc' }), 'invalid-input', /id prefix/);
      await rejectsWith(q.createSession({ name: 'a', colour: 'red' } as never), 'invalid-input', /colour/);
    });

    it('creates queues in active sessions, with counts', async () => {
      const queue = (await q.getQueue('q'));
      assert.equal(queue.session, 's');
      assert.equal(queue.instructions, 'Be brief.');
      assert.deepEqual(queue.counts, { queued: 0, running: 0, succeeded: 0, failed: 0 });
      await rejectsWith(q.createQueue({ name: 'q', session: 's' }), 'conflict', /already active/);
      await rejectsWith(q.createQueue({ name: 'x', session: 'nope' }), 'not-found', /no session named "nope"; active sessions: s/);
      await q.createQueue({ name: 'Back End', session: 's', workdir: '/tmp' });
      assert.deepEqual(
        (await q.listQueues({ session: 's' })).map((x) => x.name),
        ['q', 'Back End'],
      );
    });

    it('ending a session ends its queues, which then refuse new tasks and claims', async () => {
      await q.enqueue({ queue: 'q', tool: 'run-bash', prompt: 'echo hi' });
      await q.endSession('s');
      assert.equal((await q.getQueue('q')).status, 'ended');
      await rejectsWith(q.enqueue({ queue: 'q', tool: 'run-bash', prompt: 'x' }), 'conflict', /has ended, so it takes no new tasks/);
      await rejectsWith(q.claim({ queue: 'q' }), 'conflict', /has ended, so it takes no claims/);
      await rejectsWith(q.createQueue({ name: 'z', session: 's' }), 'conflict', /session s has ended/);
    });
  });

  describe('enqueue, peek, claim', () => {
    it('enqueues with the tool’s class and timeout, and validates input', async () => {
      const t = await q.enqueue({ queue: 'q', tool: 'run-bash', prompt: 'scripts/x.sh', payload: { a: [1, 2] } });
      assert.match(t.id, /^tsk_/);
      assert.equal(t.status, 'queued');
      assert.equal(t.taskClass, 'MEDIUM_SCRIPT');
      assert.equal(t.timeoutSeconds, 300);
      assert.deepEqual(t.payload, { a: [1, 2] });
      assert.equal(t.queue, 'q');
      assert.equal(t.session, 's');
      const custom = await q.enqueue({ queue: 'q', tool: 'llm-haiku', prompt: 'p', timeoutSeconds: 12, priority: 3 });
      assert.equal(custom.timeoutSeconds, 12);
      assert.equal(custom.priority, 3);
      await rejectsWith(q.enqueue({ queue: 'q', tool: 'nope', prompt: 'x' }), 'not-found', /unknown tool "nope"; tools in sparkq.yml: .*run-bash/);
      await rejectsWith(q.enqueue({ queue: 'q', tool: 'run-bash' }), 'invalid-input', /prompt or a payload/);
      await rejectsWith(q.enqueue({ queue: 'nope', tool: 'run-bash', prompt: 'x' }), 'not-found', /no queue named "nope"/);
      await rejectsWith(q.enqueue({ queue: 'q', tool: 'run-bash', prompt: 'x', timeoutSeconds: -1 }), 'invalid-input', /timeoutSeconds/);
      await rejectsWith(q.enqueue({ queue: 'q', tool: 'run-bash', prompt: 'x', priority: 1.5 }), 'invalid-input', /priority/);
      assert.equal((await q.getQueue('q')).counts.queued, 2, 'rejected enqueues changed nothing');
    });

    it('claims FIFO within a priority, higher priority first; peek changes nothing', async () => {
      const a = await q.enqueue({ queue: 'q', tool: 'run-bash', prompt: 'a' });
      const b = await q.enqueue({ queue: 'q', tool: 'run-bash', prompt: 'b' });
      const urgent = await q.enqueue({ queue: 'q', tool: 'run-bash', prompt: 'u', priority: 5 });
      assert.equal((await q.peek('q'))?.id, urgent.id);
      assert.equal((await q.peek('q'))?.id, urgent.id);
      const order = [];
      for (let i = 0; i < 3; i++) {
        const c = await q.claim({ queue: 'q', worker: 'w1' });
        assert.ok(c);
        assert.equal(c.instructions, 'Be brief.');
        assert.equal(c.task.status, 'running');
        assert.equal(c.task.worker, 'w1');
        assert.equal(c.task.attempt, 1);
        assert.ok(c.lease.length >= 20);
        order.push(c.task.id);
      }
      assert.deepEqual(order, [urgent.id, a.id, b.id]);
      assert.equal(await q.claim({ queue: 'q' }), null);
      assert.equal((await q.peek('q')), null);
      assert.deepEqual((await q.getQueue('q')).counts, { queued: 0, running: 3, succeeded: 0, failed: 0 });
    });
  });

  describe('finishing', () => {
    async function running() {
      await q.enqueue({ queue: 'q', tool: 'run-bash', prompt: 'x' });
      const c = await q.claim({ queue: 'q', worker: 'w' });
      assert.ok(c);
      return c;
    }

    it('completes with summary, data, output tails and usage', async () => {
      const c = await running();
      env.clock.advance(1500);
      const long = 'y'.repeat(70_000) + 'END';
      const done = await q.complete({
        task: c.task.id,
        lease: c.lease,
        summary: '  wrote 3 files  ',
        data: { files: ['a', 'b', 'c'] },
        stdout: long,
        usage: { inputTokens: 10, outputTokens: 5, costUsd: 0.01, model: 'gpt-5.5' },
      });
      assert.equal(done.status, 'succeeded');
      assert.deepEqual(done.result, { summary: 'wrote 3 files', data: { files: ['a', 'b', 'c'] } });
      assert.ok(done.stdout!.endsWith('END') && done.stdout!.length < 66_000 && done.stdout!.startsWith('[… '));
      assert.deepEqual(done.usage, { inputTokens: 10, outputTokens: 5, costUsd: 0.01, model: 'gpt-5.5' });
      const detail = (await q.getTask(c.task.id));
      assert.equal(detail.timings.runMs, 1500);
      assert.deepEqual(
        detail.attempts.map((a) => [a.n, a.outcome, a.worker]),
        [[1, 'succeeded', 'w']],
      );
      assert.equal(detail.instructions, 'Be brief.');
      assert.deepEqual((await q.getQueue('q')).counts, { queued: 0, running: 0, succeeded: 1, failed: 0 });
    });

    it('requires a non-empty, bounded summary and an error text', async () => {
      const c = await running();
      await rejectsWith(q.complete({ task: c.task.id, summary: '   ' }), 'invalid-input', /summary is required/);
      await rejectsWith(q.complete({ task: c.task.id, summary: 'x'.repeat(4001) }), 'invalid-input', /longer than 4000/);
      await rejectsWith(q.fail({ task: c.task.id, error: '' }), 'invalid-input', /error text is required/);
      await rejectsWith(q.complete({ task: c.task.id, summary: 'ok', data: 'x'.repeat(1_100_000) }), 'invalid-input', /limit/);
      assert.equal((await q.getTask(c.task.id)).status, 'running', 'nothing changed');
    });

    it('rejects a lease that is not the current attempt’s', async () => {
      const c = await running();
      await rejectsWith(q.complete({ task: c.task.id, lease: 'stale-lease', summary: 'x' }), 'lease-mismatch', /not the lease of its current attempt/);
      await rejectsWith(q.fail({ task: c.task.id, lease: 'stale-lease', error: 'x' }), 'lease-mismatch', /not the lease of its current attempt/);
      await rejectsWith(q.heartbeat({ task: c.task.id, lease: 'stale-lease' }), 'lease-mismatch', /not the lease of its current attempt/);
      await q.heartbeat({ task: c.task.id, lease: c.lease });
    });

    it('a worker whose task was failed and requeued cannot overwrite the new attempt', async () => {
      const c = await running();
      await q.fail({ task: c.task.id, error: 'stuck' }); // by hand, no lease
      const again = await q.requeue(c.task.id);
      const c2 = await q.claim({ queue: 'q' });
      assert.equal(c2?.task.id, again.id);
      await rejectsWith(q.complete({ task: c.task.id, lease: c.lease, summary: 'late' }), 'conflict', /is failed; only a running task can be completed/);
      await rejectsWith(q.complete({ task: again.id, lease: c.lease, summary: 'late' }), 'lease-mismatch', /not the lease of its current attempt/);
    });

    it('says what state a task is in when a transition does not fit', async () => {
      const t = await q.enqueue({ queue: 'q', tool: 'run-bash', prompt: 'x' });
      await rejectsWith(q.complete({ task: t.id, summary: 'x' }), 'conflict', /is queued; only a running task can be completed \(claim it first\)/);
      await rejectsWith(q.fail({ task: t.id, error: 'x' }), 'conflict', /is queued/);
      await rejectsWith(q.requeue(t.id), 'conflict', /is queued; only a failed task can be requeued/);
      await rejectsWith(q.complete({ task: 'tsk_000000000000', summary: 'x' }), 'not-found', /no task/);
      const c = await q.claim({ queue: 'q' });
      await q.complete({ task: c!.task.id, summary: 'ok' });
      await rejectsWith(q.complete({ task: t.id, summary: 'x' }), 'conflict', /is succeeded/);
      await rejectsWith(q.requeue(t.id), 'conflict', /is succeeded/);
    });

    it('requeues a failed task once, as a new linked task with the same work', async () => {
      const c = await running();
      const failed = await q.fail({ task: c.task.id, lease: c.lease, error: 'boom', data: { partial: 1 } });
      assert.equal(failed.status, 'failed');
      assert.equal(failed.error, 'boom');
      const copy = await q.requeue(c.task.id);
      assert.notEqual(copy.id, c.task.id);
      assert.equal(copy.retryOf, c.task.id);
      assert.equal(copy.prompt, 'x');
      assert.equal(copy.status, 'queued');
      await rejectsWith(q.requeue(c.task.id), 'conflict', new RegExp(`already requeued as ${copy.id}`));
    });
  });

  describe('sweep', () => {
    it('flags stale past 1× the timeout and fails past 2×', async () => {
      await q.enqueue({ queue: 'q', tool: 'run-bash', prompt: 'x', timeoutSeconds: 10 });
      const c = await q.claim({ queue: 'q' });
      env.clock.advance(9_000);
      assert.deepEqual(await q.sweep(), { staled: [], failed: [] });
      env.clock.advance(2_000);
      const s1 = await q.sweep();
      assert.equal(s1.staled.length, 1);
      assert.equal(s1.staled[0]!.stale, true);
      assert.equal((await q.counts()).stale, 1);
      assert.equal((await q.listTasks({ stale: true })).tasks.length, 1);
      assert.deepEqual((await q.sweep()).staled, [], 'flagged once');
      env.clock.advance(10_000);
      const s2 = await q.sweep();
      assert.equal(s2.failed.length, 1);
      assert.equal(s2.failed[0]!.error, 'auto-failed: ran longer than 2× its timeout (timeout 10 s, ran 21 s)');
      await rejectsWith(q.complete({ task: c!.task.id, lease: c!.lease, summary: 'late' }), 'conflict', /is failed/);
      assert.equal((await q.counts()).stale, 0);
    });
  });

  describe('staleness', () => {
    it('is read from the clock, whether a sweep ran or not', async () => {
      await q.enqueue({ queue: 'q', tool: 'run-bash', prompt: 'x', timeoutSeconds: 10 });
      const c = await q.claim({ queue: 'q' });
      const startedAt = Date.parse(c!.task.startedAt!);
      assert.equal(c!.task.staleAt, new Date(startedAt + 10_000).toISOString(), 'a running task says when it goes stale');
      env.clock.advance(10_000);
      assert.equal((await q.getTask(c!.task.id)).stale, false, 'at exactly 1× it is not stale yet');
      assert.equal((await q.listTasks({ stale: true })).tasks.length, 0);
      env.clock.advance(1);
      // No sweep in between: every read derives it.
      const t = (await q.getTask(c!.task.id));
      assert.equal(t.stale, true);
      assert.equal(t.status, 'running');
      assert.equal(t.staleAt, new Date(startedAt + 10_000).toISOString());
      assert.deepEqual((await q.listTasks({ stale: true })).tasks.map((x) => x.id), [c!.task.id]);
      assert.deepEqual((await q.listTasks({ stale: false })).tasks.map((x) => x.id), []);
      assert.equal((await q.counts()).stale, 1);
      assert.equal((await q.getQueue('q')).stale, 1);
      assert.equal((await q.listQueues())[0]!.stale, 1);
      const done = await q.complete({ task: c!.task.id, lease: c!.lease, summary: 'late but done' });
      assert.equal(done.stale, false, 'a finished task is never stale');
      assert.equal(done.staleAt, null);
      assert.equal((await q.counts()).stale, 0);
    });
  });

  describe('listing', () => {
    it('filters by queue, status, tool, text and pages newest first', async () => {
      await q.createQueue({ name: 'other', session: 's' });
      const ids: string[] = [];
      for (let i = 0; i < 25; i++) ids.push((await q.enqueue({ queue: i % 5 === 0 ? 'other' : 'q', tool: i % 2 ? 'run-bash' : 'run-python', prompt: `job ${i} 100%_done` })).id);
      const page1 = await q.listTasks({ limit: 10 });
      assert.deepEqual(
        page1.tasks.map((t) => t.id),
        ids.slice(15).reverse(),
      );
      const page2 = await q.listTasks({ limit: 10, before: page1.next! });
      assert.deepEqual(
        page2.tasks.map((t) => t.id),
        ids.slice(5, 15).reverse(),
      );
      const page3 = await q.listTasks({ limit: 10, before: page2.next! });
      assert.equal(page3.tasks.length, 5);
      assert.equal(page3.next, null);
      assert.equal((await q.listTasks({ queue: 'other' })).tasks.length, 5);
      assert.equal((await q.listTasks({ tool: 'run-bash' })).tasks.length, 12);
      assert.deepEqual(
        (await q.listTasks({ text: 'job 7 ' })).tasks.map((t) => t.id),
        [ids[7]],
      );
      assert.equal((await q.listTasks({ text: '%_' })).tasks.length, 25, 'LIKE wildcards in the text are literal');
      assert.equal((await q.listTasks({ text: 'no such' })).tasks.length, 0);
      assert.equal((await q.listTasks({ status: 'running' })).tasks.length, 0);
      assert.equal((await q.listTasks({ limit: 5, offset: 20 })).tasks.length, 5);
      await assert.rejects(async () => q.listTasks({ status: 'done' as never }), /invalid task filter/);
    });
  });

  describe('failed tasks', () => {
    it('shows the partial results a failed task reported, without a summary', async () => {
      const t = await q.enqueue({ queue: 'q', tool: 'run-bash', prompt: 'x' });
      const c = await q.claim({ queue: 'q' });
      const failed = await q.fail({ task: t.id, lease: c!.lease, error: 'stopped at step 3', data: { done: 2 } });
      assert.deepEqual(failed.result, { summary: null, data: { done: 2 } });
      assert.deepEqual((await q.getTask(t.id)).result, { summary: null, data: { done: 2 } });
    });

  });

  describe('worktrees and patterns', () => {
    const base = 'a'.repeat(40);
    const change = (commit: string | null) => ({
      worktree: '.sparkq/worktrees/x1',
      branch: 'sparkq/wt/tsk_x1',
      baseRef: 'main',
      baseCommit: base,
      commit,
      files: [{ path: 'src/a b.ts', status: 'M' }],
      filesChanged: 1,
      insertions: 3,
      deletions: 1,
    });

    it('keeps a queue\'s isolation, a task\'s pattern (also on its requeued copy) and what each attempt changed', async () => {
      const isolation = { kind: 'worktree' as const, baseRef: 'main', baseCommit: base, follow: false };
      const wq = await q.createQueue({ name: 'wt', session: 's', isolation });
      assert.deepEqual(wq.isolation, isolation);
      assert.deepEqual((await q.getQueue('wt')).isolation, isolation);
      assert.equal((await q.getQueue('q')).isolation, null);
      const pattern = { name: 'api-endpoint', hash: 'f'.repeat(64) };
      const t = await q.enqueue({ queue: 'wt', tool: 'run-bash', prompt: 'x', pattern });
      assert.deepEqual(t.pattern, pattern);
      assert.equal(t.change, null);
      const c = await q.claim({ queue: 'wt' });
      const done = await q.complete({ task: t.id, lease: c!.lease, summary: 'changed a', change: change('b'.repeat(40)) });
      assert.deepEqual(done.change, change('b'.repeat(40)));
      assert.deepEqual((await q.getTask(t.id)).change, change('b'.repeat(40)));
      const t2 = await q.enqueue({ queue: 'wt', tool: 'run-bash', prompt: 'y', pattern });
      const c2 = await q.claim({ queue: 'wt' });
      const failed = await q.fail({ task: t2.id, lease: c2!.lease, error: 'tests fail', change: change(null) });
      assert.deepEqual(failed.change, change(null), 'a failed attempt says where its worktree was kept');
      const copy = await q.requeue(t2.id);
      assert.deepEqual(copy.pattern, pattern);
      assert.equal(copy.change, null);
    });

    it('keeps a task\'s merge group, from an enqueue or a plan, and on its requeued copy', async () => {
      const t = await q.enqueue({ queue: 'q', tool: 'run-bash', prompt: 'x', mergeGroup: 'rel/parts' });
      assert.equal(t.mergeGroup, 'rel/parts');
      const applied = await q.applyPlan({ plan: { id: 'rel', description: null, tasks: [{ key: 'a', queue: 'q', tool: 'run-bash', prompt: 'y', after: [], mergeGroup: 'rel/parts' }] } });
      assert.equal(applied.created[0]!.task.mergeGroup, 'rel/parts');
      const c = await q.claim({ queue: 'q' });
      await q.fail({ task: c!.task.id, lease: c!.lease, error: 'no' });
      assert.equal((await q.requeue(c!.task.id)).mergeGroup, 'rel/parts');
      assert.equal((await q.enqueue({ queue: 'q', tool: 'run-bash', prompt: 'z' })).mergeGroup, null);
      await rejectsWith(q.enqueue({ queue: 'q', tool: 'run-bash', prompt: 'x', mergeGroup: '' }), 'invalid-input', /merge group must not be empty/);
    });

    it('refuses a malformed isolation, pattern or change, and changes nothing', async () => {
      await rejectsWith(q.createQueue({ name: 'bad', session: 's', isolation: { kind: 'worktree', baseRef: '-x', baseCommit: base, follow: false } }), 'invalid-input', /git ref/);
      await rejectsWith(q.createQueue({ name: 'bad', session: 's', isolation: { kind: 'worktree', baseRef: null, baseCommit: 'HEAD', follow: false } }), 'invalid-input', /full hexadecimal/);
      await rejectsWith(q.enqueue({ queue: 'q', tool: 'run-bash', prompt: 'x', pattern: { name: 'p', hash: 'nope' } }), 'invalid-input', /SHA-256/);
      const t = await q.enqueue({ queue: 'q', tool: 'run-bash', prompt: 'x' });
      const c = await q.claim({ queue: 'q' });
      await rejectsWith(q.complete({ task: t.id, lease: c!.lease, summary: 's', change: { ...change(null), files: 'all' } as never }), 'invalid-input', /files/);
      assert.equal((await q.getTask(t.id)).status, 'running');
      assert.equal((await q.listQueues()).some((x) => x.name === 'bad'), false);
    });
  });
}));

describe('queue operations on the embedded store', () => {
  let env: TestQueue;
  let q: QueueService;
  eachTestQueue(
    (e) => ((env = e), (q = e.q)),
    () => q,
  );

  describe('durability through the service', () => {
    it('every acknowledged mutation survives a crash and reopen', async () => {
      for (let i = 0; i < 10; i++) await q.enqueue({ queue: 'q', tool: 'run-bash', prompt: `t${i}` });
      const c = await q.claim({ queue: 'q' });
      await q.complete({ task: c!.task.id, lease: c!.lease, summary: 'did it' });
      const before = q.listTasks({ limit: 100 }).tasks;
      q.abandon();
      q = await env.open();
      assert.deepEqual(q.listTasks({ limit: 100 }).tasks, before);
      assert.deepEqual(q.getQueue('q').counts, { queued: 9, running: 0, succeeded: 1, failed: 0 });
    });

    it('keeps a worktree queue, a pattern and a change across a crash (journal replay)', async () => {
      const base = 'c'.repeat(40);
      await q.createQueue({ name: 'wt', session: 's', isolation: { kind: 'worktree', baseRef: null, baseCommit: base, follow: true } });
      const t = await q.enqueue({ queue: 'wt', tool: 'run-bash', prompt: 'x', pattern: { name: 'p', hash: 'e'.repeat(64) } });
      const c = await q.claim({ queue: 'wt' });
      const change = { worktree: '.sparkq/worktrees/a', branch: 'sparkq/wt/a', baseRef: null, baseCommit: base, commit: null, files: [], filesChanged: 0, insertions: 0, deletions: 0 };
      await q.complete({ task: t.id, lease: c!.lease, summary: 'nothing to change', change });
      const before = q.getTask(t.id);
      q.abandon();
      q = await env.open();
      assert.deepEqual(q.getTask(t.id), before);
      assert.deepEqual(q.getQueue('wt').isolation, { kind: 'worktree', baseRef: null, baseCommit: base, follow: true });
    });

    it("records the agent thread/session a task ran in on its queue, with the finish, and keeps it across a crash", async () => {
      const t1 = await q.enqueue({ queue: 'q', tool: 'llm-codex', prompt: 'a' });
      const c1 = await q.claim({ queue: 'q' });
      await q.complete({ task: t1.id, lease: c1!.lease, summary: 'ok', agentSession: { codexThreadId: 'thread-1' } });
      assert.equal(q.getQueue('q').codexThreadId, 'thread-1');
      const t2 = await q.enqueue({ queue: 'q', tool: 'llm-claude', prompt: 'b' });
      const c2 = await q.claim({ queue: 'q' });
      await q.fail({ task: t2.id, lease: c2!.lease, error: 'boom', agentSession: { claudeSessionId: 'sess-2' } });
      q.abandon();
      q = await env.open();
      const queue = q.getQueue('q');
      assert.equal(queue.codexThreadId, 'thread-1');
      assert.equal(queue.claudeSessionId, 'sess-2');
      assert.equal((await q.setAgentSession('q', { codexThreadId: null })).codexThreadId, null);
      await assert.rejects(q.setAgentSession('q', {}), (e: unknown) => isSparkqError(e, 'invalid-input'));
      await assert.rejects(q.setAgentSession('q', { codexThreadId: '' }), (e: unknown) => isSparkqError(e, 'invalid-input'));
      // A bad agentSession refuses the whole completion: nothing changes.
      const t3 = await q.enqueue({ queue: 'q', tool: 'llm-codex', prompt: 'c' });
      const c3 = await q.claim({ queue: 'q' });
      await assert.rejects(q.complete({ task: t3.id, lease: c3!.lease, summary: 'x', agentSession: { bogus: 1 } as never }), (e: unknown) => isSparkqError(e, 'invalid-input'));
      assert.equal(q.getTask(t3.id).status, 'running');
    });

    it('notifies listeners after each change is durable', async () => {
      const seen: string[] = [];
      q.onChange((events) => seen.push(...events.map((e) => `${e.kind}:${'status' in e ? e.status : ''}`)));
      const t = await q.enqueue({ queue: 'q', tool: 'run-bash', prompt: 'x' });
      const c = await q.claim({ queue: 'q' });
      await q.fail({ task: t.id, lease: c!.lease, error: 'e' });
      assert.deepEqual(seen, ['task:queued', 'task:running', 'task:failed']);
    });

    it('tells listeners what each kind of change did', async () => {
      const seen: ChangeEvent[] = [];
      q.onChange((events) => seen.push(...events));
      const took = () => seen.splice(0);
      const qid = q.getQueue('q').id;
      const s2 = await q.createSession({ name: 's2' });
      assert.deepEqual(took(), [{ kind: 'session', id: s2.id }]);
      const q2 = await q.createQueue({ name: 'q2', session: 's2' });
      await q.pauseQueue({ queue: 'q2' });
      await q.resumeQueue('q2');
      await q.setAgentSession('q2', { codexThreadId: 'thread-1' });
      assert.deepEqual(took(), Array<ChangeEvent>(4).fill({ kind: 'queue', id: q2.id }));
      const a = await q.enqueue({ queue: 'q', tool: 'run-bash', prompt: 'a', timeoutSeconds: 10 });
      const b = await q.enqueue({ queue: 'q', tool: 'run-bash', prompt: 'b', after: [a.id] });
      const ca = (await q.claim({ queue: 'q' }))!;
      await q.heartbeat({ task: a.id, lease: ca.lease });
      env.clock.advance(11_000);
      await q.sweep();
      const task = (id: string, status: ChangeEvent & { kind: 'task' } extends { status: infer S } ? S : never, queueId = qid): ChangeEvent => ({ kind: 'task', id, queueId, status });
      assert.deepEqual(took(), [task(a.id, 'queued'), task(b.id, 'queued'), task(a.id, 'running'), task(a.id, 'running'), task(a.id, 'running')]);
      await q.complete({ task: a.id, lease: ca.lease, summary: 'ok' });
      assert.deepEqual(took(), [task(a.id, 'succeeded'), task(b.id, 'queued')], 'the task its success released is claimable now');
      const cb = (await q.claim({ queue: 'q' }))!;
      await q.release({ task: b.id, lease: cb.lease, reason: 'usage limit' });
      assert.deepEqual(took(), [task(b.id, 'running'), task(b.id, 'queued'), { kind: 'queue', id: qid }]);
      const plan = await q.applyPlan({ plan: { id: 'p', description: null, tasks: [{ key: 'x', queue: 'q', tool: 'run-bash', prompt: 'x', after: [] }] } });
      assert.deepEqual(took(), [task(plan.created[0]!.task.id, 'queued')]);
      env.clock.advance(2 * 86_400_000);
      await q.purge({ olderThanDays: 1 });
      assert.deepEqual(took(), [task(a.id, 'removed', '')]);
      await q.endSession('s2');
      assert.deepEqual(took(), [{ kind: 'queue', id: q2.id }, { kind: 'session', id: s2.id }]);
    });
  });

  describe('archive and purge', () => {
    async function finishMany(n: number, fail = false) {
      const out: string[] = [];
      for (let i = 0; i < n; i++) {
        await q.enqueue({ queue: 'q', tool: 'run-bash', prompt: `p${i}` });
        const c = await q.claim({ queue: 'q' });
        env.clock.advance(1000);
        if (fail) await q.fail({ task: c!.task.id, error: `e${i}` });
        else await q.complete({ task: c!.task.id, summary: `s${i}` });
        out.push(c!.task.id);
      }
      return out;
    }

    it('moves finished tasks beyond the live cap to archive chunks that listing and detail still read', async () => {
      await q.close();
      env.config.store.liveCap = 100;
      q = await env.open({ archiveBatch: 50 });
      const ids = await finishMany(260);
      const queued = await q.enqueue({ queue: 'q', tool: 'run-bash', prompt: 'still waiting' });
      await q.maintain();
      const chunks = q.archiveChunks();
      assert.ok(chunks.length >= 1);
      const archived = chunks.reduce((n, c) => n + c.count, 0);
      assert.equal(archived, 160);
      assert.equal(Number(q.store.db.value('SELECT count(*) FROM tasks WHERE finished_at IS NOT NULL')), 100);
      // Detail of the oldest task comes from its chunk.
      const oldest = q.getTask(ids[0]!);
      assert.equal(oldest.archived, true);
      assert.equal(oldest.result?.summary, 's0');
      assert.equal(oldest.attempts.length, 1);
      // Listing walks live then archive, newest first, without gaps or repeats.
      const seen: string[] = [];
      let before: string | undefined;
      for (;;) {
        const page = q.listTasks({ limit: 37, ...(before ? { before } : {}) });
        seen.push(...page.tasks.map((t) => t.id));
        if (!page.next) break;
        before = page.next;
      }
      assert.deepEqual(seen, [queued.id, ...ids.slice().reverse()]);
      assert.equal(q.listTasks({ text: 's3', status: 'succeeded', limit: 1000 }).tasks.length, 11, 's3 and s30–s39, mostly archived: text search reads the archive too');
      assert.deepEqual(q.getQueue('q').counts, { queued: 1, running: 0, succeeded: 260, failed: 0 });
      // All of it survives a crash and reopen.
      q.abandon();
      q = await env.open({ archiveBatch: 50 });
      assert.equal(q.getTask(ids[5]!).result?.summary, 's5');
      assert.equal(q.listTasks({ limit: 1000 }).tasks.length, 261);
    });

    it('requeues an archived failed task', async () => {
      await q.close();
      env.config.store.liveCap = 100;
      q = await env.open({ archiveBatch: 100 });
      const ids = await finishMany(201, true);
      await q.maintain();
      assert.equal(q.getTask(ids[0]!).archived, true);
      const copy = await q.requeue(ids[0]!);
      assert.equal(copy.retryOf, ids[0]);
      await rejectsWith(q.requeue(ids[0]!), 'conflict', /already requeued/);
    });

    it('purges finished tasks older than N days, live and archived, and keeps the counters right', async () => {
      await q.close();
      env.config.store.liveCap = 100;
      q = await env.open({ archiveBatch: 50 });
      await finishMany(200);
      env.clock.advance(10 * 86_400_000);
      const recent = await finishMany(30);
      await q.enqueue({ queue: 'q', tool: 'run-bash', prompt: 'waiting' });
      await q.maintain();
      assert.ok(q.archiveChunks().length > 0);
      await rejectsWith(q.purge({ olderThanDays: -1 }), 'invalid-input', /days/);
      const { purged } = await q.purge({ olderThanDays: 5 });
      assert.equal(purged, 200);
      assert.deepEqual(q.getQueue('q').counts, { queued: 1, running: 0, succeeded: 30, failed: 0 });
      assert.deepEqual(
        q.listTasks({ status: 'succeeded', limit: 1000 }).tasks.map((t) => t.id),
        recent.slice().reverse(),
      );
      q.abandon();
      q = await env.open();
      assert.deepEqual(q.getQueue('q').counts, { queued: 1, running: 0, succeeded: 30, failed: 0 });
      assert.equal(q.listTasks({ limit: 1000 }).tasks.length, 31);
    });
  });
});

describe('effects as a journal holds them', () => {
  // One record (a JSON array of effects) per line, in the format journals on disk have: a journal written by an
  // earlier version must replay to the same state, so these lines are never to be changed, only added to.
  const S = 'ses_aaaaaaaaaaaa';
  const Q = 'que_aaaaaaaaaaaa';
  const T1 = 'tsk_aaaaaaaaaaa1';
  const T2 = 'tsk_aaaaaaaaaaa2';
  const T3 = 'tsk_aaaaaaaaaaa3';
  const task = `"sessionId":"${S}","queueId":"${Q}","tool":"run-bash","taskClass":"FAST_SCRIPT","payload":null,"priority":0,"timeoutS":30`;
  const JOURNAL = [
    `[{"t":"session.create","id":"${S}","name":"s","description":"","at":1000}]`,
    `[{"t":"queue.create","id":"${Q}","sessionId":"${S}","name":"q","instructions":"Be brief.","workdir":null,"maxWorkers":1,"maxAttempts":2,"at":1001}]`,
    `[{"t":"queue.pause","id":"${Q}","at":1002,"until":5000,"reason":"limit"}]`,
    `[{"t":"queue.resume","id":"${Q}","at":1003}]`,
    `[{"t":"queue.agent","id":"${Q}","codexThreadId":"thread-1"}]`,
    `[{"t":"task.enqueue","seq":1,"id":"${T1}",${task},"prompt":"a","at":1004,"retryOf":null}]`,
    `[{"t":"plan.apply","id":"p","description":"","file":null,"at":1005,"tasks":1},{"t":"task.enqueue","seq":2,"id":"${T2}",${task},"prompt":"b","at":1005,"retryOf":null,"planId":"p","planKey":"b","after":["${T1}"],"waiting":1}]`,
    `[{"t":"task.claim","id":"${T1}","queueId":"${Q}","lease":"l1","worker":"w","attempt":1,"at":1006}]`,
    `[{"t":"task.heartbeat","id":"${T1}","at":1007}]`,
    `[{"t":"task.stale","id":"${T1}","at":1008}]`,
    `[{"t":"task.return","id":"${T1}","queueId":"${Q}","attempt":1,"outcome":"failed","at":1009,"notBefore":1010,"error":"e (attempt 1 of 2; retrying)","data":null,"stdout":null,"stderr":"x","usage":null}]`,
    `[{"t":"task.claim","id":"${T1}","queueId":"${Q}","lease":"l2","worker":"w","attempt":2,"at":1011}]`,
    `[{"t":"task.finish","id":"${T1}","queueId":"${Q}","attempt":2,"status":"succeeded","at":1012,"summary":"ok","data":"{\\"n\\":1}","error":null,"stdout":"out","stderr":null,"usage":null,"release":["${T2}"]}]`,
    `[{"t":"task.claim","id":"${T2}","queueId":"${Q}","lease":"l3","worker":null,"attempt":1,"at":1013}]`,
    `[{"t":"task.finish","id":"${T2}","queueId":"${Q}","attempt":1,"status":"failed","at":1014,"summary":null,"data":null,"error":"boom","stdout":null,"stderr":null,"usage":null}]`,
    `[{"t":"task.enqueue","seq":3,"id":"${T3}",${task},"prompt":"b","at":1015,"retryOf":"${T2}","planId":"p","planKey":"b","after":["${T1}"],"waiting":0}]`,
    `[{"t":"archive.add","chunk":{"id":1,"file":"chunk-000001.db","count":1,"minSeq":1,"maxSeq":1,"minFinishedAt":1012,"maxFinishedAt":1012,"bytes":100,"crc":7,"bloom":"AAAA","at":1016},"ids":["${T1}"]}]`,
    `[{"t":"purge","ids":["${T2}"],"dropChunks":[1],"replaceChunks":[],"counts":[["${Q}","succeeded",1],["${Q}","failed",1]]}]`,
    `[{"t":"queue.end","id":"${Q}","at":1017},{"t":"session.end","id":"${S}","at":1017}]`,
  ];
  const records = JOURNAL.map((line) => JSON.parse(line) as Effect[]);

  function fresh(): SqlDatabase {
    const db = SqlDatabase.openSync();
    for (const m of MIGRATIONS) m(db);
    return db;
  }
  const TABLES = ['sessions', 'queues', 'tasks', 'attempts', 'queue_counts', 'requeues', 'meta', 'archive_chunks', 'task_deps', 'plans'];
  const dump = (db: SqlDatabase) => Object.fromEntries(TABLES.map((t) => [t, db.all(`SELECT * FROM ${t}`).map((r) => JSON.stringify(r)).sort()]));

  it('replays record by record and in a batch (from any point) to the same state, and says what changed', () => {
    const one = fresh();
    const events: ChangeEvent[] = [];
    for (const r of records) {
      one.transaction(() => applyEffects(one, r));
      events.push(...effectEvents(r, (id) => one.value('SELECT queue_id FROM tasks WHERE id = ?', [id]) as string | undefined));
    }
    const want = dump(one);
    assert.deepEqual(want['tasks']!.map((r) => JSON.parse(r) as Record<string, unknown>).map((r) => [r['id'], r['status'], r['retry_of'], r['deps'], r['waiting']]), [[T3, 'queued', T2, 1, 0]]);
    assert.deepEqual(want['queue_counts'], ['{"queue_id":"que_aaaaaaaaaaaa","status":"failed","n":0}', '{"queue_id":"que_aaaaaaaaaaaa","status":"queued","n":1}', '{"queue_id":"que_aaaaaaaaaaaa","status":"running","n":0}', '{"queue_id":"que_aaaaaaaaaaaa","status":"succeeded","n":0}']);
    assert.deepEqual(want['task_deps'], [`{"task_id":"${T3}","after_id":"${T1}"}`]);
    assert.deepEqual(want['meta'], ['{"key":"chunk_id_high","value":1}', '{"key":"task_seq_high","value":3}']);
    assert.match(String(want['queues']), /"status":"ended".*"codex_thread_id":"thread-1"/);
    const running = (id: string): ChangeEvent => ({ kind: 'task', id, queueId: Q, status: 'running' });
    const queued = (id: string): ChangeEvent => ({ kind: 'task', id, queueId: Q, status: 'queued' });
    assert.deepEqual(events, [
      { kind: 'session', id: S },
      ...Array<ChangeEvent>(4).fill({ kind: 'queue', id: Q }),
      queued(T1),
      queued(T2),
      running(T1),
      running(T1),
      running(T1),
      queued(T1),
      running(T1),
      { kind: 'task', id: T1, queueId: Q, status: 'succeeded' },
      queued(T2),
      running(T2),
      { kind: 'task', id: T2, queueId: Q, status: 'failed' },
      queued(T3),
      { kind: 'task', id: T2, queueId: '', status: 'removed' },
      { kind: 'queue', id: Q },
      { kind: 'session', id: S },
    ]);
    one.close();
    // The batch holds the tasks enqueued within it in memory and changes the others with SQL: start it at every
    // point, so that each kind goes both ways.
    for (let from = 0; from <= records.length; from++) {
      const db = fresh();
      for (const r of records.slice(0, from)) db.transaction(() => applyEffects(db, r));
      db.transaction(() => {
        const batch = new EffectBatch(db);
        for (const r of records.slice(from)) for (const e of r) batch.apply(e);
        batch.finish();
      });
      assert.deepEqual(dump(db), want, `batch from record ${from}`);
      db.close();
    }
  });
});
