import { strict as assert } from 'node:assert';
import { defaultConfig } from '../../../src/core/config';
import { TeamQueue } from '../../../src/team/teamQueue';
import { postgresOrSkip } from '../../support/postgres';

/*
 * What the database enforces when many clients race, each with its own pool (as separate processes and machines
 * would): a task is claimed once, an idempotency key makes one task, a plan applied at once from everywhere makes
 * each of its tasks once, a worker limit holds, and the last place of a queue goes to one worker only.
 */
describe('team database: races between many clients', function () {
  this.timeout(120_000);
  let url: string;
  const opened: TeamQueue[] = [];
  const open = async (schema: string) => {
    const q = await TeamQueue.open({ url, schema, config: defaultConfig('races'), maxConnections: 3 });
    opened.push(q);
    return q;
  };

  before(async function () {
    url = await (await postgresOrSkip(this)).createDatabase('races');
  });
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((q) => q.close()));
  });

  it('20 clients with 3 claimers each drain 1,000 tasks: every task claimed once and completed once, none lost', async () => {
    const clients = await Promise.all(Array.from({ length: 20 }, () => open('drain')));
    const first = clients[0]!;
    await first.createSession({ name: 's' });
    await first.createQueue({ name: 'q', session: 's', maxWorkers: 60 });
    const ids = new Set<string>();
    for (let i = 0; i < 1000; i += 50) {
      const batch = await Promise.all(Array.from({ length: 50 }, (_, j) => first.enqueue({ queue: 'q', tool: 'run-bash', prompt: `task ${i + j}` })));
      for (const t of batch) ids.add(t.id);
    }
    const claimed: string[] = [];
    await Promise.all(
      clients.flatMap((q, ci) =>
        Array.from({ length: 3 }, async (_, k) => {
          for (;;) {
            const c = await q.claim({ queue: 'q', worker: `w${ci}-${k}` });
            if (!c) return;
            claimed.push(c.task.id);
            await q.complete({ task: c.task.id, lease: c.lease, summary: 'done' });
          }
        }),
      ),
    );
    assert.equal(claimed.length, 1000, 'as many claims as tasks');
    assert.equal(new Set(claimed).size, 1000, 'no task claimed twice');
    assert.deepEqual([...claimed].sort(), [...ids].sort(), 'every task claimed');
    const counts = await first.counts();
    assert.deepEqual({ ...counts }, { queued: 0, running: 0, succeeded: 1000, failed: 0, stale: 0 });
    const attempts = await first.db.query<{ n: number }>('SELECT count(*)::int AS n FROM attempts');
    assert.equal(attempts[0]!.n, 1000, 'one attempt per task');
  });

  it('one idempotency key from 10 clients at once makes one task; a plan applied by 10 clients at once makes each task once', async () => {
    const clients = await Promise.all(Array.from({ length: 10 }, () => open('keys')));
    await clients[0]!.createSession({ name: 's' });
    await clients[0]!.createQueue({ name: 'q', session: 's' });
    const made = await Promise.all(clients.map((q) => q.enqueue({ queue: 'q', tool: 'run-bash', prompt: 'once', idempotencyKey: 'k-1' })));
    assert.equal(new Set(made.map((t) => t.id)).size, 1, 'every client got the same task');
    const plan = {
      id: 'p',
      description: null,
      tasks: [
        { key: 'a', queue: 'q', tool: 'run-bash', prompt: 'a', after: [] },
        { key: 'b', queue: 'q', tool: 'run-bash', prompt: 'b', after: ['a'] },
        { key: 'c', queue: 'q', tool: 'run-bash', prompt: 'c', after: ['a', 'b'] },
      ],
    };
    const results = await Promise.all(clients.map((q) => q.applyPlan({ plan })));
    assert.equal(results.reduce((n, r) => n + r.created.length, 0), 3, 'three tasks made in all');
    assert.equal(results.filter((r) => r.created.length === 3).length, 1, 'by one apply; the others found them');
    const page = await clients[0]!.listTasks({ plan: 'p' });
    assert.deepEqual(page.tasks.map((t) => t.planKey).sort(), ['a', 'b', 'c']);
    assert.equal((await clients[0]!.counts()).queued, 4);
  });

  it('a queue of two places takes two of 12 workers that join at once, from anywhere; a place frees itself when it expires', async () => {
    const clients = await Promise.all(Array.from({ length: 12 }, () => open('places')));
    await clients[0]!.createSession({ name: 's' });
    await clients[0]!.createQueue({ name: 'q', session: 's', maxWorkers: 2 });
    const joins = await Promise.allSettled(clients.map((q, i) => q.joinQueue({ queue: 'q', worker: `w${i}`, leaseSeconds: 1 })));
    const ok = joins.filter((j) => j.status === 'fulfilled');
    assert.equal(ok.length, 2, 'two places');
    for (const j of joins) if (j.status === 'rejected') assert.match(String(j.reason), /already has 2 workers .* and allows 2/);
    const taken = (await clients[0]!.workers()).map((w) => w.worker);
    assert.equal(taken.length, 2);
    // Past the 1 s places by more than any error in the clients' reading of the server clock (half a round trip each).
    await new Promise((r) => setTimeout(r, 1500));
    const late = await clients[11]!.joinQueue({ queue: 'q', worker: 'late', leaseSeconds: 30 });
    assert.deepEqual(late.workers, ['late'], 'the expired places are free again');
  });
});
