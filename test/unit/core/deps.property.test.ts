import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import { FakeClock } from '../../../src/core/clock';
import { defaultConfig } from '../../../src/core/config';
import { isSparkqError } from '../../../src/core/errors';
import type { Task } from '../../../src/core/model';
import { QueueService } from '../../../src/core/queue/service';
import type { SqlDatabase } from '../../../src/core/store/sqlite';
import { tempDir } from '../../support/tmp';

/*
 * Property-based test of dependencies, retries, pauses and hand-backs: random operation sequences (crashes included)
 * against the real QueueService, checking invariants after every step rather than a full model:
 *  - a claim never hands out a task with a dependency that has not succeeded, from a paused queue, or before its
 *    retry time;
 *  - each queued task's `waiting` count is the number of its dependencies that have not succeeded;
 *  - the per-(queue, status) counters match the rows;
 *  - a crash loses nothing that was acknowledged: the reopened database equals the one before the crash.
 */

const QUEUES = ['qa', 'qb'] as const;

type Op =
  | { k: 'enqueue'; queue: number; after: number[] }
  | { k: 'claim'; queue: number }
  | { k: 'complete'; pick: number }
  | { k: 'fail'; pick: number }
  | { k: 'release'; pick: number; resetMs: number | null }
  | { k: 'requeue'; pick: number }
  | { k: 'requeueFailed'; queue: number | null }
  | { k: 'pause'; queue: number; forMs: number | null }
  | { k: 'resume'; queue: number }
  | { k: 'tick'; ms: number }
  | { k: 'sweep' }
  | { k: 'crash' };

const pick = fc.nat({ max: 1000 });
const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ k: fc.constant('enqueue' as const), queue: fc.nat({ max: 1 }), after: fc.array(pick, { maxLength: 3 }) }) },
  { weight: 6, arbitrary: fc.record({ k: fc.constant('claim' as const), queue: fc.nat({ max: 1 }) }) },
  { weight: 4, arbitrary: fc.record({ k: fc.constant('complete' as const), pick }) },
  { weight: 3, arbitrary: fc.record({ k: fc.constant('fail' as const), pick }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('release' as const), pick, resetMs: fc.option(fc.integer({ min: 0, max: 600_000 })) }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('requeue' as const), pick }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('requeueFailed' as const), queue: fc.option(fc.nat({ max: 1 })) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('pause' as const), queue: fc.nat({ max: 1 }), forMs: fc.option(fc.integer({ min: 1_000, max: 120_000 })) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('resume' as const), queue: fc.nat({ max: 1 }) }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('tick' as const), ms: fc.integer({ min: 1, max: 400_000 }) }) },
  { weight: 1, arbitrary: fc.constant<Op>({ k: 'sweep' }) },
  { weight: 1, arbitrary: fc.constant<Op>({ k: 'crash' }) },
);

function dump(db: SqlDatabase): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const t of ['sessions', 'queues', 'tasks', 'attempts', 'queue_counts', 'requeues', 'meta', 'task_deps', 'plans']) {
    out[t] = db.all(`SELECT * FROM ${t}`).map((r) => JSON.stringify(r)).sort();
  }
  return out;
}

function checkInvariants(q: QueueService): void {
  const db = q.store.db;
  for (const r of db.all<{ id: string; waiting: number }>("SELECT id, waiting FROM tasks WHERE status = 'queued'")) {
    const unmet = Number(
      db.value("SELECT count(*) FROM task_deps d LEFT JOIN tasks t ON t.id = d.after_id WHERE d.task_id = ? AND COALESCE(t.status, '') <> 'succeeded'", [r.id]),
    );
    assert.equal(r.waiting, unmet, `task ${r.id}: waiting ${r.waiting}, but ${unmet} dependencies have not succeeded`);
  }
  const actual = db.all<{ queue_id: string; status: string; n: number }>('SELECT queue_id, status, count(*) AS n FROM tasks GROUP BY queue_id, status');
  const counted = new Map(db.all<{ queue_id: string; status: string; n: number }>('SELECT * FROM queue_counts').map((r) => [`${r.queue_id}/${r.status}`, r.n]));
  for (const a of actual) assert.equal(counted.get(`${a.queue_id}/${a.status}`), a.n, `counter ${a.queue_id}/${a.status}`);
  for (const [k, n] of counted) if (n !== 0) assert.ok(actual.some((a) => `${a.queue_id}/${a.status}` === k), `counter ${k} = ${n} with no rows`);
}

describe('dependencies, retries and pauses (property-based)', () => {
  it('keep their invariants over random operation sequences with crashes', async function () {
    this.timeout(180_000);
    const runs = Number(process.env['SPARKQ_PROPERTY_RUNS'] ?? 60);
    let steps = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 5, maxLength: 60 }), async (ops) => {
        const t = tempDir('sparkq-deps-prop-');
        const clock = new FakeClock();
        const config = defaultConfig('prop');
        // run-bash retries (3 attempts, short backoff); llm-codex does not.
        config.tools['run-bash'] = { ...config.tools['run-bash']!, maxAttempts: 3 };
        config.retry = { backoffSeconds: 1, maxBackoffSeconds: 4, rateLimitPauseSeconds: 30 };
        const open = () => QueueService.open({ dir: t.dir, config, clock, autoMaintain: false });
        let q = await open();
        try {
          await q.createSession({ name: 's' });
          for (const name of QUEUES) await q.createQueue({ name, session: 's' });
          const ids: string[] = [];
          const leases = new Map<string, string>();
          const tasks = (status?: Task['status']) => ids.filter((id) => status === undefined || q.getTask(id).status === status);
          const refused = (e: unknown) => {
            if (!isSparkqError(e)) throw e;
          };
          for (const o of ops) {
            steps++;
            switch (o.k) {
              case 'enqueue': {
                const after = o.after.filter(() => ids.length > 0).map((p) => ids[p % ids.length]!);
                const task = await q.enqueue({ queue: QUEUES[o.queue]!, tool: ids.length % 2 ? 'run-bash' : 'llm-codex', prompt: 'p', after });
                ids.push(task.id);
                break;
              }
              case 'claim': {
                const queue = QUEUES[o.queue]!;
                const paused = q.getQueue(queue).paused;
                const c = await q.claim({ queue });
                if (c) {
                  assert.ok(!paused, 'a paused queue handed out a task');
                  const deps = q.getTask(c.task.id).after.map((id) => q.getTask(id).status);
                  assert.ok(deps.every((s) => s === 'succeeded'), `claimed ${c.task.id} with dependencies ${deps.join(', ')}`);
                  leases.set(c.task.id, c.lease);
                }
                break;
              }
              case 'complete':
              case 'fail':
              case 'release': {
                const running = tasks('running');
                if (running.length === 0) break;
                const id = running[o.pick % running.length]!;
                const lease = leases.get(id)!;
                if (o.k === 'complete') await q.complete({ task: id, lease, summary: 'ok' });
                else if (o.k === 'fail') await q.fail({ task: id, lease, error: 'boom' });
                else await q.release({ task: id, lease, reason: 'limit', ...(o.resetMs !== null ? { resetAt: clock.now() + o.resetMs } : {}) });
                break;
              }
              case 'requeue': {
                const failed = tasks('failed');
                if (failed.length === 0) break;
                const copy = await q.requeue(failed[o.pick % failed.length]!).catch((e: unknown) => refused(e));
                if (copy) ids.push(copy.id);
                break;
              }
              case 'requeueFailed':
                for (const c of await q.requeueFailed(o.queue === null ? {} : { queue: QUEUES[o.queue]! })) ids.push(c.id);
                break;
              case 'pause':
                await q.pauseQueue({ queue: QUEUES[o.queue]!, ...(o.forMs !== null ? { forSeconds: o.forMs / 1000 } : {}) });
                break;
              case 'resume':
                await q.resumeQueue(QUEUES[o.queue]!).catch((e: unknown) => refused(e));
                break;
              case 'tick':
                clock.advance(o.ms);
                break;
              case 'sweep':
                await q.sweep();
                break;
              case 'crash': {
                const before = dump(q.store.db);
                q.abandon();
                q = await open();
                assert.deepEqual(dump(q.store.db), before, 'a crash lost or changed acknowledged state');
                break;
              }
            }
            checkInvariants(q);
          }
          // Everything not blocked by a failure can still finish: resume, run out the clock, drain both queues.
          for (const name of QUEUES) await q.resumeQueue(name).catch(() => undefined);
          for (let round = 0; round < 200; round++) {
            clock.advance(700_000);
            let progressed = false;
            for (const queue of QUEUES) {
              const c = await q.claim({ queue });
              if (c) {
                await q.complete({ task: c.task.id, lease: c.lease, summary: 'done' });
                progressed = true;
              }
            }
            if (!progressed) break;
          }
          checkInvariants(q);
          for (const id of tasks('queued')) {
            const task = q.getTask(id);
            assert.ok(task.waitingOn.length > 0, `${id} is queued, claimable and was not claimed`);
          }
        } finally {
          await q.close().catch(() => undefined);
          t.cleanup();
        }
      }),
      { numRuns: runs },
    );
    console.log(`      dependencies: ${runs} runs, ${steps} steps`);
  });
});
