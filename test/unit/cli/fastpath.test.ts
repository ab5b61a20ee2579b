import { strict as assert } from 'node:assert';
import { applyEffects, type Effect, EffectBatch } from '../../../src/core/queue/effects';
import { MIGRATIONS } from '../../../src/core/queue/schema';
import { SqlDatabase } from '../../../src/core/store/sqlite';
import type { Task } from '../../../src/core/model';
import { testQueue } from '../../support/queue';

/*
 * The hot path answers from rows it already holds (no read-back after a write) and keeps session/queue lookups in
 * memory; start-up replays a journal in one batch. These check that each shortcut gives exactly what the slow way
 * gives.
 */

/** Every table of a database, rows sorted, as one comparable value. */
function dump(db: SqlDatabase): Record<string, unknown[]> {
  const out: Record<string, unknown[]> = {};
  for (const t of ['sessions', 'queues', 'tasks', 'attempts', 'queue_counts', 'requeues', 'meta', 'archive_chunks', 'task_deps', 'plans']) {
    out[t] = db.all(`SELECT * FROM ${t}`).map((r) => JSON.stringify(r, (_k, v: unknown) => (v instanceof Uint8Array ? Buffer.from(v).toString('hex') : v))).sort();
  }
  return out;
}

describe('fast paths give what the slow way gives', () => {
  it('enqueue, claim, complete and fail answer with the task exactly as a fresh read shows it', async () => {
    const { q, clock, cleanup } = await testQueue();
    try {
      const same = (got: Task) => {
        const { attempts: _a, instructions: _i, timings: _t, ...fresh } = q.getTask(got.id);
        assert.deepEqual(got, fresh);
      };
      for (let i = 0; i < 6; i++) {
        same(await q.enqueue({ queue: 'q', tool: 'run-bash', prompt: `p${i}`, payload: { i }, priority: i % 2 }));
      }
      for (let i = 0; i < 6; i++) {
        clock.advance(1000);
        const c = await q.claim({ queue: 'q', worker: `w${i}` });
        assert.ok(c);
        same(c.task);
        clock.advance(500);
        if (i % 2 === 0) {
          same(await q.complete({ task: c.task.id, lease: c.lease, summary: 'ok', data: { n: i }, stdout: 'out', usage: { inputTokens: 3 } }));
        } else {
          const failed = await q.fail({ task: c.task.id, lease: c.lease, error: 'boom', stderr: 'err' });
          same(failed);
          same(await q.requeue(failed.id));
        }
      }
      // Dependencies, plans, retries and hand-backs answer from rows held too.
      const a = await q.enqueue({ queue: 'q', tool: 'run-bash', prompt: 'dep a' });
      same(a);
      same(await q.enqueue({ queue: 'q', tool: 'run-bash', prompt: 'dep b', after: [a.id] }));
      const applied = await q.applyPlan({ plan: {
        id: 'p',
        description: null,
        tasks: [
          { key: 'x', queue: 'q', tool: 'run-bash', prompt: 'x', after: [] },
          { key: 'y', queue: 'q', tool: 'run-bash', prompt: 'y', after: ['x', a.id] },
        ],
      } });
      for (const c of applied.created) same(c.task);
      await q.createQueue({ name: 'retrying', session: 's', maxAttempts: 2 });
      await q.enqueue({ queue: 'retrying', tool: 'llm-codex', prompt: 'r' });
      const r1 = (await q.claim({ queue: 'retrying' }))!;
      same(await q.fail({ task: r1.task.id, lease: r1.lease, error: 'once', usage: { inputTokens: 1 } }));
      clock.advance(3_600_000);
      const r2 = (await q.claim({ queue: 'retrying' }))!;
      same(r2.task);
      same(await q.release({ task: r2.task.id, lease: r2.lease, reason: 'usage limit', stdout: 'o' }));
    } finally {
      await q.close();
      cleanup();
    }
  });

  it('a rolled-back write leaves no cached session, queue or sequence behind', async () => {
    const { q, cleanup } = await testQueue();
    try {
      await q.enqueue({ queue: 'q', tool: 'run-bash', prompt: 'a' });
      await assert.rejects(q.createQueue({ name: 'q', session: 's' }), /already active/);
      await q.endQueue('q');
      await assert.rejects(q.enqueue({ queue: 'q', tool: 'run-bash', prompt: 'b' }), /has ended/);
      await q.createQueue({ name: 'q', session: 's' });
      const t = await q.enqueue({ queue: 'q', tool: 'run-bash', prompt: 'c' });
      assert.equal(t.queueId, q.getQueue('q').id);
      assert.equal(q.listTasks({ queue: 'q' }).tasks.length, 1);
    } finally {
      await q.close();
      cleanup();
    }
  });

  it('replaying a journal in one batch builds the same database as applying each record in turn', async () => {
    const { q, clock, open, cleanup } = await testQueue({ archiveBatch: 5 });
    try {
      // Tasks that exist before the snapshot, so the batch also updates rows already in the database.
      const early: { id: string; lease: string }[] = [];
      for (let i = 0; i < 4; i++) await q.enqueue({ queue: 'q', tool: 'run-bash', prompt: `early ${i}` });
      for (let i = 0; i < 3; i++) {
        const c = await q.claim({ queue: 'q', worker: 'w' });
        early.push({ id: c!.task.id, lease: c!.lease });
      }
      await q.store.snapshot();
      await q.heartbeat({ task: early[0]!.id, lease: early[0]!.lease });
      await q.complete({ task: early[0]!.id, lease: early[0]!.lease, summary: 'done' });
      await q.fail({ task: early[1]!.id, lease: early[1]!.lease, error: 'no' });
      await q.requeue(early[1]!.id);
      for (let i = 0; i < 30; i++) {
        clock.advance(10);
        await q.enqueue({ queue: 'q', tool: 'run-bash', prompt: `late ${i}`, priority: i % 3 });
      }
      for (let i = 0; i < 20; i++) {
        const c = await q.claim({ queue: 'q', worker: 'w' });
        if (i % 4 === 0) await q.heartbeat({ task: c!.task.id, lease: c!.lease });
        if (i % 5 === 0) continue; // left running
        if (i % 3 === 0) await q.fail({ task: c!.task.id, lease: c!.lease, error: `e${i}` });
        else await q.complete({ task: c!.task.id, lease: c!.lease, summary: `s${i}` });
      }
      // Dependencies released within the replay and across the snapshot, a plan, retries, hand-backs and pauses.
      const dep = await q.enqueue({ queue: 'q', tool: 'run-bash', prompt: 'dep', priority: 100 });
      await q.enqueue({ queue: 'q', tool: 'run-bash', prompt: 'waits', after: [dep.id, early[2]!.id], priority: 100 });
      await q.complete({ task: early[2]!.id, lease: early[2]!.lease, summary: 'pre-snapshot task done' });
      await q.applyPlan({ plan: {
        id: 'plan',
        description: 'd',
        tasks: [
          { key: 'x', queue: 'q', tool: 'run-bash', prompt: 'x', after: [] },
          { key: 'y', queue: 'q', tool: 'run-bash', prompt: 'y', after: ['x'] },
        ],
      } });
      await q.createQueue({ name: 'retrying', session: 's', maxAttempts: 3 });
      const r = await q.enqueue({ queue: 'retrying', tool: 'run-bash', prompt: 'r' });
      const r1 = (await q.claim({ queue: 'retrying' }))!;
      await q.fail({ task: r.id, lease: r1.lease, error: 'retry me' });
      clock.advance(60_000);
      const r2 = (await q.claim({ queue: 'retrying' }))!;
      await q.release({ task: r.id, lease: r2.lease, reason: 'limit', resetAt: clock.now() + 1000 });
      await q.pauseQueue({ queue: 'q', forSeconds: 5 });
      await q.resumeQueue('q');
      for (let i = 0; i < 4; i++) {
        const c = await q.claim({ queue: 'q', worker: 'w' });
        if (c) await q.complete({ task: c.task.id, lease: c.lease, summary: 'dep work' });
      }
      clock.advance(3_600_000);
      await q.sweep(); // stales or fails the running ones, ends the pause
      await q.endSession('s');
      const live = dump(q.store.db);
      const records = q.store.journalRecords;
      assert.ok(records > 40);
      q.abandon();

      const again = await open();
      assert.equal(again.recovery.replayed, records);
      assert.deepEqual(dump(again.store.db), live);
      again.abandon();
    } finally {
      cleanup();
    }
  });

  it('enqueueMany, claimMany and completeMany do what the single calls do, as one all-or-none change', async () => {
    const { q, cleanup } = await testQueue();
    try {
      const records = q.store.journalRecords;
      const tasks = await q.enqueueMany(Array.from({ length: 7 }, (_, i) => ({ queue: 'q', tool: 'run-bash', prompt: `t${i}`, priority: i === 5 ? 9 : 0 })));
      assert.equal(q.store.journalRecords, records + 1, 'one journal record');
      for (const t of tasks) {
        const { attempts: _a, instructions: _i, timings: _t, ...fresh } = q.getTask(t.id);
        assert.deepEqual(t, fresh);
      }
      const expected = [tasks[5]!, ...tasks.filter((_, i) => i !== 5)].map((t) => t.id).slice(0, 4);
      assert.deepEqual((await q.claimMany({ queue: 'q', worker: 'w' }, 0)).length, 0);
      const claims = await q.claimMany({ queue: 'q', worker: 'w' }, 4);
      assert.deepEqual(claims.map((c) => c.task.id), expected, 'priority first, then FIFO, like successive claims');
      for (const c of claims) {
        const { attempts: _a, instructions: _i, timings: _t, ...fresh } = q.getTask(c.task.id);
        assert.deepEqual(c.task, fresh);
      }
      await assert.rejects(
        q.completeMany([
          { task: claims[0]!.task.id, lease: claims[0]!.lease, summary: 'ok' },
          { task: claims[1]!.task.id, lease: 'wrong', summary: 'ok' },
        ]),
        /lease/,
      );
      assert.equal(q.getTask(claims[0]!.task.id).status, 'running', 'nothing of a refused batch is applied');
      await assert.rejects(q.completeMany([claims[0]!, claims[0]!].map((c) => ({ task: c.task.id, lease: c.lease, summary: 'ok' }))), /twice/);
      const done = await q.completeMany(claims.map((c) => ({ task: c.task.id, lease: c.lease, summary: 'done' })));
      assert.deepEqual(done.map((t) => t.status), ['succeeded', 'succeeded', 'succeeded', 'succeeded']);
      assert.equal((await q.claimMany({ queue: 'q' }, 10)).length, 3, 'fewer when the queue runs dry');
      assert.deepEqual(q.counts(), { queued: 0, running: 3, succeeded: 4, failed: 0, stale: 0 });
    } finally {
      await q.close();
      cleanup();
    }
  });

  it('the batch refuses what applying one by one refuses', async () => {
    const db = await SqlDatabase.open();
    for (const m of MIGRATIONS) m(db);
    const enqueue: Effect = {
      t: 'task.enqueue', seq: 1, id: 'tsk_aaaaaaaaaaaa', sessionId: 'ses_aaaaaaaaaaaa', queueId: 'que_aaaaaaaaaaaa', tool: 'run-bash',
      taskClass: 'FAST_SCRIPT', prompt: 'p', payload: null, priority: 0, timeoutS: 30, at: 1, retryOf: null,
    };
    const claim: Effect = { t: 'task.claim', id: 'tsk_aaaaaaaaaaaa', queueId: 'que_aaaaaaaaaaaa', lease: 'l', worker: null, attempt: 1, at: 2 };
    const finish: Effect = {
      t: 'task.finish', id: 'tsk_aaaaaaaaaaaa', queueId: 'que_aaaaaaaaaaaa', attempt: 1, status: 'succeeded', at: 3,
      summary: 's', data: null, error: null, stdout: null, stderr: null, usage: null,
    };
    for (const bad of [[enqueue, enqueue], [enqueue, claim, claim], [enqueue, finish], [enqueue, claim, finish, finish], [claim]]) {
      const one = SqlDatabase.openSync();
      for (const m of MIGRATIONS) m(one);
      assert.throws(() => one.transaction(() => applyEffects(one, bad)));
      const batched = SqlDatabase.openSync();
      for (const m of MIGRATIONS) m(batched);
      assert.throws(() => batched.transaction(() => {
        const b = new EffectBatch(batched);
        for (const e of bad) b.apply(e);
        b.finish();
      }));
      one.close();
      batched.close();
    }
    db.close();
  });
});
