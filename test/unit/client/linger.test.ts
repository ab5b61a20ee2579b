import * as assert from 'node:assert/strict';
import { openQueue, type QueueHandle } from '../../../src/client/open';
import { tempDir } from '../../support/tmp';

/*
 * A short command that owns the queue serves the commands that came to it before it hands over (OpenOptions.linger),
 * so that agents running commands at once with no long-lived owner do not take the queue over from each other on
 * every command. A command alone hands over at once.
 */
describe('openQueue: an owner that is asked to close first serves the processes that came to it', function () {
  this.timeout(30_000);
  let tmp: { dir: string; cleanup: () => void };
  const open: QueueHandle[] = [];
  const linger = { graceMs: 300, maxMs: 1_500 };

  beforeEach(() => {
    tmp = tempDir('sparkq-linger-');
  });
  afterEach(async () => {
    for (const q of open.splice(0)) await q.close().catch(() => undefined);
    tmp.cleanup();
  });

  async function openHere(extra: Partial<Parameters<typeof openQueue>[1]> = {}): Promise<QueueHandle> {
    const q = await openQueue(tmp.dir, { role: 'cli', durability: 'full', watchConfig: false, ...extra });
    open.push(q);
    return q;
  }

  /** Resolves to how long `close` took, and whether it was still pending after `probeMs`. */
  async function timeClose(q: QueueHandle, probeMs: number, meanwhile: () => Promise<void> = () => Promise.resolve()) {
    const t0 = Date.now();
    let done = false;
    const closing = q.close().then(() => (done = true));
    await new Promise((r) => setTimeout(r, probeMs));
    const pendingAtProbe = !done;
    await meanwhile();
    await closing;
    return { ms: Date.now() - t0, pendingAtProbe };
  }

  it('alone, it hands over at once', async () => {
    const owner = await openHere({ linger });
    assert.equal(owner.isOwner, true);
    await owner.createSession({ name: 's' });
    const { ms } = await timeClose(owner, 0);
    assert.ok(ms < linger.graceMs, `closed in ${ms} ms`);
  });

  it('serves a connected client until it leaves, then waits the grace for another, then hands over', async () => {
    const owner = await openHere({ linger });
    const client = await openHere();
    assert.equal(client.isOwner, false);
    await client.createSession({ name: 's' });
    let leftAt = 0;
    const { ms, pendingAtProbe } = await timeClose(owner, 500, async () => {
      // Still the owner's client: calls keep working while it lingers.
      await client.createQueue({ name: 'q', session: 's' });
      assert.equal(client.isOwner, false);
      leftAt = Date.now();
      await client.close();
    });
    assert.ok(pendingAtProbe, 'the owner did not close while its client was connected');
    const afterLeave = Date.now() - leftAt;
    assert.ok(afterLeave >= linger.graceMs - 20, `handed over ${afterLeave} ms after the client left`);
    assert.ok(ms < linger.maxMs + 500, `closed in ${ms} ms`);
    // The work done meanwhile is in the queue the next owner opens.
    const next = await openHere();
    assert.equal(next.isOwner, true);
    assert.deepEqual((await next.listQueues()).map((q) => q.name), ['q']);
  });

  it('hands over after maxMs however long a client stays, and the client follows to the next owner', async () => {
    const owner = await openHere({ linger });
    const client = await openHere();
    await client.createSession({ name: 's' });
    const { ms } = await timeClose(owner, 0);
    assert.ok(ms >= linger.maxMs - 20 && ms < linger.maxMs + 1_000, `closed in ${ms} ms`);
    // The client's next call reaches (here: becomes) the next owner.
    await client.createQueue({ name: 'q', session: 's' });
    assert.equal(client.isOwner, true);
  });
});
