import { strict as assert } from 'node:assert';
import type { ChangeEvent } from '../../../src/api/contract';
import type { Claim, FailInput, Task } from '../../../src/core/model';
import { CANCELLED, claimWaiting } from '../../../src/mcp/claimWait';

/*
 * The waiting claim against a queue whose answers the test decides: woken by change events rather than a poll, ended
 * by cancellation, and never leaving a task claimed for nobody. The real queue and processes: test/unit/mcp/mcp.test.ts.
 */

const CLAIM: Claim = { task: { id: 'tsk_1' } as Task, instructions: '', lease: 'lease-1' };

function fakeQueue() {
  const listeners = new Set<(e: ChangeEvent[]) => void>();
  const failed: FailInput[] = [];
  /** Each claim's answer, resolved by the test. */
  const pending: ((c: Claim | null) => void)[] = [];
  let claimed: () => void = () => undefined;
  const q = {
    claim: () =>
      new Promise<Claim | null>((resolve) => {
        pending.push(resolve);
        claimed();
      }),
    fail: (f: FailInput) => {
      failed.push(f);
      return Promise.resolve({} as Task);
    },
    onChange: (l: (e: ChangeEvent[]) => void) => {
      listeners.add(l);
      return () => listeners.delete(l);
    },
  };
  return {
    q,
    failed,
    listeners,
    /** Resolves once the waiting claim has asked the queue `n` times in all. */
    claims: (n: number) =>
      new Promise<void>((resolve) => {
        const check = () => pending.length >= n && resolve();
        claimed = check;
        check();
      }),
    answer: (i: number, c: Claim | null) => pending[i]!(c),
    changed: () => [...listeners].forEach((l) => l([{ kind: 'task', id: 'tsk_1', queueId: 'que_1', status: 'queued' }])),
    asked: () => pending.length,
  };
}

describe('claim with waitSeconds', () => {
  it('tries again when the queue reports a change, not before', async () => {
    const f = fakeQueue();
    const result = claimWaiting(f.q, { queue: 'q' }, 60, new AbortController().signal);
    await f.claims(1);
    f.answer(0, null);
    // The empty answer is in; nothing is asked again until something changes.
    await new Promise((r) => setImmediate(r));
    assert.equal(f.asked(), 1);
    f.changed();
    await f.claims(2);
    f.answer(1, CLAIM);
    assert.equal(await result, CLAIM);
    assert.equal(f.listeners.size, 0, 'unsubscribed');
  });

  it('a change during the empty claim is not missed', async () => {
    const f = fakeQueue();
    const result = claimWaiting(f.q, { queue: 'q' }, 60, new AbortController().signal);
    await f.claims(1);
    f.changed(); // a task arrives while the first claim is on its way
    f.answer(0, null);
    await f.claims(2);
    f.answer(1, CLAIM);
    assert.equal(await result, CLAIM);
  });

  it('ends at once when cancelled while waiting, and asks no more', async () => {
    const f = fakeQueue();
    const abort = new AbortController();
    const result = claimWaiting(f.q, { queue: 'q' }, 60, abort.signal);
    await f.claims(1);
    f.answer(0, null);
    await new Promise((r) => setImmediate(r));
    abort.abort();
    assert.equal(await result, null);
    f.changed();
    assert.equal(f.asked(), 1);
    assert.equal(f.listeners.size, 0);
  });

  it('fails a task whose claim was answered after the cancellation, so nobody holds it', async () => {
    const f = fakeQueue();
    const abort = new AbortController();
    const result = claimWaiting(f.q, { queue: 'q' }, 60, abort.signal);
    await f.claims(1);
    abort.abort();
    f.answer(0, CLAIM);
    assert.equal(await result, null);
    assert.deepEqual(f.failed, [{ task: 'tsk_1', lease: 'lease-1', error: CANCELLED }]);
  });

  it('without waitSeconds, claims once and subscribes to nothing', async () => {
    const f = fakeQueue();
    const result = claimWaiting(f.q, { queue: 'q' }, 0, new AbortController().signal);
    await f.claims(1);
    assert.equal(f.listeners.size, 0);
    f.answer(0, null);
    assert.equal(await result, null);
  });
});
