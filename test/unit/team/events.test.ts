import { strict as assert } from 'node:assert';
import { defaultConfig } from '../../../src/core/config';
import type { ChangeEvent } from '../../../src/core/events';
import { TeamQueue } from '../../../src/team/teamQueue';
import { ownPostgres, type PgServer } from '../../support/postgres';

/** Resolves with the first batch of events for which `pred` holds; rejects after `ms` (a lost event, not slowness). */
function heard(q: TeamQueue, pred: (e: ChangeEvent) => boolean, ms = 10_000): Promise<{ events: ChangeEvent[]; at: number }> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`no such event within ${ms} ms`));
    }, ms);
    const off = q.onChange((events) => {
      if (!events.some(pred)) return;
      clearTimeout(timer);
      off();
      resolve({ events, at: Date.now() });
    });
  });
}

/*
 * Change events between clients of one team database (LISTEN/NOTIFY), and what happens when PostgreSQL itself goes
 * away: on a server of the test's own, crashed (immediate stop) and started again.
 */
describe('team database: change events and a restarted server', function () {
  this.timeout(120_000);
  let pg: PgServer;
  let url: string;
  const opened: TeamQueue[] = [];
  const open = async () => {
    const q = await TeamQueue.open({ url, config: defaultConfig('events'), maxConnections: 3 });
    opened.push(q);
    return q;
  };

  before(async function () {
    pg = await ownPostgres(this);
    url = await pg.createDatabase('events');
  });
  after(async () => {
    await Promise.all(opened.splice(0).map((q) => q.close()));
    pg?.stop('fast');
  });

  it('a change made by one client is heard by another, committed changes only', async () => {
    const writer = await open();
    const watcher = await open();
    await writer.createSession({ name: 's' });
    await writer.createQueue({ name: 'q', session: 's' });
    // A listener that stays, as a view's does; the ones below come and go on top of it.
    watcher.onChange(() => undefined);
    await watcher.listening();
    const waiting = heard(watcher, (e) => e.kind === 'task' && e.status === 'queued');
    const t = await writer.enqueue({ queue: 'q', tool: 'run-bash', prompt: 'hello' });
    const { events } = await waiting;
    assert.deepEqual(events, [{ kind: 'task', id: t.id, queueId: t.queueId, status: 'queued' }]);
    const claimed = heard(watcher, (e) => e.kind === 'task' && e.status === 'running');
    const c = (await writer.claim({ queue: 'q', worker: 'w' }))!;
    assert.deepEqual((await claimed).events, [{ kind: 'task', id: t.id, queueId: t.queueId, status: 'running' }]);
    // A change that fails (a wrong lease) is rolled back and announces nothing.
    const noise: ChangeEvent[][] = [];
    const off = watcher.onChange((e) => noise.push(e));
    await assert.rejects(writer.complete({ task: t.id, lease: 'not-the-lease', summary: 'x' }), /lease given for task/);
    const done = heard(watcher, (e) => e.kind === 'task' && e.status === 'succeeded');
    await writer.complete({ task: t.id, lease: c.lease, summary: 'ok' });
    await done;
    off();
    assert.deepEqual(noise, [[{ kind: 'task', id: t.id, queueId: t.queueId, status: 'succeeded' }]], 'only the committed completion was heard');
  });

  it('PostgreSQL crashed and started again: no acknowledged change is lost, clients reconnect by themselves and hear events again', async () => {
    const writer = await open();
    const watcher = await open();
    await writer.createSession({ name: 'crash' });
    await writer.createQueue({ name: 'cq', session: 'crash' });
    // A listener that stays, as a tree view's does: the event connection is open while anyone listens.
    const seen: ChangeEvent[] = [];
    watcher.onChange((e) => seen.push(...e));
    await watcher.listening();
    const acknowledged: string[] = [];
    for (let i = 0; i < 50; i++) acknowledged.push((await writer.enqueue({ queue: 'cq', tool: 'run-bash', prompt: `before ${i}`, idempotencyKey: `k-${i}` })).id);
    let reconnected = 0;
    watcher.onReconnect(() => reconnected++);

    pg.stop('immediate');
    pg.start();

    // The first call may meet a connection the crash broke; a keyed enqueue is safe to run again, and the same key
    // gives the same task, never a second one.
    const again = async <T>(fn: () => Promise<T>): Promise<T> => {
      try {
        return await fn();
      } catch (e) {
        assert.match(String(e), /cannot be reached|terminat|Connection/i);
        return fn();
      }
    };
    const after = await again(() => writer.enqueue({ queue: 'cq', tool: 'run-bash', prompt: 'after', idempotencyKey: 'k-after' }));
    const page = await again(() => writer.listTasks({ queue: 'cq', limit: 100 }));
    assert.deepEqual(page.tasks.map((t) => t.id).sort(), [...acknowledged, after.id].sort(), 'every acknowledged task, once');
    // The watcher's LISTEN connection comes back by itself (with backoff) and says so.
    for (let i = 0; reconnected === 0; i++) {
      assert.ok(i < 100, 'the event connection came back');
      await new Promise((r) => setTimeout(r, 100));
    }
    const late = await writer.enqueue({ queue: 'cq', tool: 'run-bash', prompt: 'heard after the restart' });
    for (let i = 0; !seen.some((e) => e.kind === 'task' && e.id === late.id); i++) {
      assert.ok(i < 100, 'the enqueue after the restart was heard');
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(reconnected, 1, 'one reconnect, announced once');
  });
});
