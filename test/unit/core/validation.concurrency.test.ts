import { strict as assert } from 'node:assert';
import type { PlanInput, Task } from '../../../src/core/model';
import { type BackendQueue, eachBackend } from '../../support/backends';

/*
 * Validators under load, on both stores: 8 claim loops work a plan of 200 validated tasks with dependencies, their
 * validation tasks on the same queue; a fifth of the tasks fail their first round. Every round is validated exactly
 * once, no task is claimed twice, and no dependent starts before every task it waits on has passed.
 */

const TASKS = 200;
const WORKERS = 8;

/** A fixed pseudo-random plan: each task waits on up to two of the 20 before it. */
function makePlan(): PlanInput {
  let seed = 42;
  const rand = (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };
  const tasks: PlanInput['tasks'] = [];
  for (let i = 0; i < TASKS; i++) {
    const after = new Set<string>();
    if (i > 0) for (let k = rand(3); k > 0; k--) after.add(`t${Math.max(0, i - 1 - rand(20))}`);
    tasks.push({ key: `t${i}`, queue: 'q', tool: 'run-bash', prompt: `work ${i}`, after: [...after], validate: { tool: 'llm-haiku', maxRounds: 2 } });
  }
  return { id: 'load', description: null, tasks };
}

/** Whether the validator fails this task's round: a fifth of the tasks, in their first round only. */
const failsRound = (key: string, round: number) => round === 1 && Number(key.slice(1)) % 5 === 0;

describe('validators under 8 concurrent workers', function () {
  this.timeout(180_000);
  eachBackend((_backend, use) => {
    it('validates every round exactly once and starts no dependent before its dependencies passed', async () => {
      const q: BackendQueue = use().q;
      const plan = makePlan();
      const applied = await q.applyPlan({ plan });
      assert.equal(applied.created.length, TASKS);
      const keyOf = new Map<string, string>();
      for (const c of applied.created) keyOf.set(c.task.id, c.key);
      const deps = new Map(plan.tasks.map((t) => [t.key, t.after]));

      let tick = 0;
      /** The tick just before the verdict that passed each plan task (any round) was asked for. */
      const passedAt = new Map<string, number>();
      const claimed = new Map<string, number>();
      const early: string[] = [];
      const checksOf = new Map<string, number>();

      async function work(worker: string): Promise<void> {
        let idle = 0;
        for (;;) {
          const c = await q.claim({ queue: 'q', worker });
          if (c === null) {
            const counts = (await q.getQueue('q')).counts;
            if (counts.queued === 0 && counts.running === 0) return;
            if (++idle > 20_000) throw new Error(`worker ${worker} waited too long: ${JSON.stringify(counts)}`);
            await new Promise((r) => setImmediate(r));
            continue;
          }
          idle = 0;
          const at = ++tick;
          const t: Task = c.task;
          assert.equal(claimed.has(t.id), false, `${t.id} claimed twice`);
          claimed.set(t.id, at);
          if (t.validates === null) {
            const key = t.planKey!;
            keyOf.set(t.id, key);
            // Every task it waits on must have passed before this claim.
            for (const d of deps.get(key)!) {
              const p = passedAt.get(d);
              if (p === undefined || p >= at) early.push(`${key} started before ${d} passed`);
            }
            await q.complete({ task: t.id, lease: c.lease, summary: `did ${key}` });
          } else {
            const key = keyOf.get(t.validates)!;
            checksOf.set(t.validates, (checksOf.get(t.validates) ?? 0) + 1);
            const round = (t.payload as { round: number }).round;
            if (failsRound(key, round)) {
              await q.verdict({ task: t.id, lease: c.lease, verdict: 'fail', feedback: `fix ${key}` });
            } else {
              passedAt.set(key, ++tick);
              await q.verdict({ task: t.id, lease: c.lease, verdict: 'pass' });
            }
          }
        }
      }
      await Promise.all(Array.from({ length: WORKERS }, (_v, i) => work(`w${i}`)));

      assert.deepEqual(early, []);
      const failing = plan.tasks.filter((t) => failsRound(t.key, 1)).length;
      const counts = (await q.getQueue('q')).counts;
      // Every plan task passed once; the failing ones also have a failed first round; one validation task per round.
      assert.deepEqual(counts, { queued: 0, running: 0, succeeded: TASKS + TASKS + failing, failed: failing });
      assert.equal(passedAt.size, TASKS);
      assert.equal(checksOf.size, TASKS + failing, 'every round was validated');
      for (const [id, n] of checksOf) assert.equal(n, 1, `${id} validated ${n} times in one round`);
      const { tasks: all } = await q.listTasks({ plan: 'load', limit: 1000 });
      // The plan's tasks and, under their names, their checks.
      const tasks = all.filter((t) => t.validates === null);
      assert.equal(all.length - tasks.length, TASKS + failing, 'every check is listed with its plan');
      for (const t of tasks) {
        assert.equal(t.validation!.by.length, t.validation!.round, `${t.id}: one validation task per round so far`);
        assert.equal(t.validation!.status, t.status === 'succeeded' ? 'passed' : 'failed');
      }
    });
  });
});
