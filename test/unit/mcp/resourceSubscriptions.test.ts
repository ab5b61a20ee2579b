import { strict as assert } from 'node:assert';
import { mock } from 'node:test';
import type { ChangeEvent, QueueApi } from '../../../src/api/contract';
import { SparkqError } from '../../../src/core/errors';
import type { Queue, TaskDetail } from '../../../src/core/model';
import { ResourceSubscriptions, type WatchedQueue, parseResourceUri, queueUri, taskUri } from '../../../src/mcp/resources';

/*
 * Which change events reach which subscribed URI, and how they are gathered, against a queue whose events the test
 * sends. The real server and processes: test/unit/mcp/resources.test.ts.
 */

const QUEUE = { id: 'que_1', name: 'Back End', sessionId: 'ses_1' } as Queue;

function fakeQueue() {
  const listeners = new Set<(e: ChangeEvent[]) => void>();
  const reconnects = new Set<() => void>();
  const q = {
    getQueue: (ref: string) => (ref === QUEUE.name || ref === QUEUE.id ? Promise.resolve(QUEUE) : Promise.reject(new SparkqError('not-found', `no queue ${ref}`))),
    getTask: (id: string) => (id.startsWith('tsk_') ? Promise.resolve({ id, queueId: QUEUE.id } as TaskDetail) : Promise.reject(new SparkqError('not-found', `no task ${id}`))),
    onChange: (l: (e: ChangeEvent[]) => void) => {
      listeners.add(l);
      return () => listeners.delete(l);
    },
    onReconnect: (cb: () => void) => {
      reconnects.add(cb);
      return () => reconnects.delete(cb);
    },
  } as unknown as WatchedQueue;
  return { q, listeners, reconnects, emit: (...events: ChangeEvent[]) => [...listeners].forEach((l) => l(events)), reconnect: () => [...reconnects].forEach((cb) => cb()) };
}

/** Subscriptions whose notices are recorded; `until(n)` resolves once n notices came (rejects after 5 s). */
function recorded(q: QueueApi, delayMs = 1) {
  const sent: string[] = [];
  let waiting: (() => void) | undefined;
  const subs = new ResourceSubscriptions(
    q,
    (uri) => {
      sent.push(uri);
      waiting?.();
      return Promise.resolve();
    },
    delayMs,
  );
  const until = (n: number) =>
    new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${n} notices expected, got ${JSON.stringify(sent)}`)), 5_000);
      waiting = () => {
        if (sent.length < n) return;
        clearTimeout(timer);
        resolve();
      };
      waiting();
    });
  return { subs, sent, until };
}

const opts = { describeError: (e: unknown) => (e as Error).message };
const taskEvent = (id: string, queueId = QUEUE.id): ChangeEvent => ({ kind: 'task', id, queueId, status: 'succeeded' });

describe('resource subscriptions', () => {
  it('reads URIs of queues (by name or id, percent-encoded) and tasks, and nothing else', () => {
    assert.deepEqual(parseResourceUri(queueUri('Back End')), { kind: 'queue', ref: 'Back End' });
    assert.deepEqual(parseResourceUri('sparkq://queue/Back End'), { kind: 'queue', ref: 'Back End' });
    assert.deepEqual(parseResourceUri(taskUri('tsk_1')), { kind: 'task', ref: 'tsk_1' });
    for (const bad of ['sparkq://session/s1', 'sparkq://task/', 'sparkq://task/a/b', 'sparkq://queue/%E0', 'file:///x', 'sparkq://task/%20']) {
      assert.equal(parseResourceUri(bad), null, bad);
    }
  });

  it('listens to the queue only while something is subscribed', async () => {
    const f = fakeQueue();
    const { subs } = recorded(f.q);
    assert.equal(f.listeners.size, 0);
    await assert.rejects(subs.subscribe(taskUri('nope'), opts), /no task nope/);
    assert.equal(f.listeners.size, 0, 'a failed subscription leaves nothing listening');
    await subs.subscribe(taskUri('tsk_1'), opts);
    await subs.subscribe(queueUri('Back End'), opts);
    assert.deepEqual([f.listeners.size, f.reconnects.size], [1, 1]);
    subs.unsubscribe(taskUri('tsk_1'));
    assert.equal(f.listeners.size, 1);
    subs.unsubscribe(queueUri('Back End'));
    assert.equal(f.listeners.size, 0);
    await subs.subscribe(queueUri('Back End'), opts);
    subs.close();
    assert.deepEqual([f.listeners.size, f.reconnects.size], [0, 0]);
  });

  it('tells every subscriber to read again when the handle moved to another owner (the events of the gap are lost)', async () => {
    const f = fakeQueue();
    const { subs, sent, until } = recorded(f.q);
    await subs.subscribe(taskUri('tsk_1'), opts);
    await subs.subscribe(queueUri('Back End'), opts);
    f.reconnect();
    await until(2);
    assert.deepEqual([...sent].sort(), [queueUri('Back End'), taskUri('tsk_1')]);
  });

  it('touches a task by its own events, a queue by its own, its tasks and its session', async () => {
    const f = fakeQueue();
    const { subs, sent, until } = recorded(f.q);
    const task = taskUri('tsk_1');
    const byName = queueUri('Back End');
    const byId = queueUri(QUEUE.id);
    // A task of another queue: sent after each case's event, its notice shows that the case's notices are all in.
    const marker = taskUri('tsk_marker');
    for (const uri of [task, byName, byId, marker]) await subs.subscribe(uri, opts);

    const cases: [ChangeEvent, string[]][] = [
      [taskEvent('tsk_1'), [task, byName, byId]],
      [taskEvent('tsk_2'), [byName, byId]],
      [{ kind: 'queue', id: QUEUE.id }, [byName, byId]],
      [{ kind: 'session', id: QUEUE.sessionId }, [byName, byId]],
      [taskEvent('tsk_3', 'que_other'), []],
      [{ kind: 'queue', id: 'que_other' }, []],
      [{ kind: 'session', id: 'ses_other' }, []],
    ];
    for (const [event, expected] of cases) {
      sent.length = 0;
      f.emit(event);
      f.emit(taskEvent('tsk_marker', 'que_other'));
      await until(expected.length + 1);
      assert.deepEqual([...sent].sort(), [...expected, marker].sort(), JSON.stringify(event));
    }
  });

  it('sends one notice per URI for a burst, and keeps sending during a steady stream', async () => {
    mock.timers.enable({ apis: ['setTimeout'] });
    try {
      const f = fakeQueue();
      const { subs, sent } = recorded(f.q, 100);
      const task = taskUri('tsk_1');
      await subs.subscribe(task, opts);
      for (let i = 0; i < 50; i++) f.emit(taskEvent('tsk_1'));
      mock.timers.tick(99);
      assert.deepEqual(sent, []);
      mock.timers.tick(1);
      assert.deepEqual(sent, [task], 'fifty events, one notice');
      // An event every 40 ms for a second: a notice within 100 ms of the first event after the last notice, so at
      // least one per 120 ms of the stream; a wait that restarted on every event would send none until it ended.
      for (let t = 0; t < 1000; t += 40) {
        f.emit(taskEvent('tsk_1'));
        mock.timers.tick(40);
      }
      assert.ok(sent.length >= 1 + 8, `${sent.length} notices`);
      subs.unsubscribe(task);
      f.emit(taskEvent('tsk_1'));
      const before = sent.length;
      mock.timers.tick(1000);
      assert.equal(sent.length, before, 'nothing after unsubscribing');
    } finally {
      mock.timers.reset();
    }
  });
});
