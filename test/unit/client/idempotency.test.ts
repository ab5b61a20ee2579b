import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { IpcClient } from '../../../src/client/ipcClient';
import { openQueue, type QueueHandle } from '../../../src/client/open';
import { isSparkqError } from '../../../src/core/errors';
import type { QueueService } from '../../../src/core/queue/service';
import { type Cli, cliSandbox } from '../../support/cli';
import { eachTestQueue, type TestQueue } from '../../support/queue';
import { tempDir } from '../../support/tmp';

/*
 * Issue 22, defect 5: an enqueue (or requeue) whose answer was lost must be repeatable without doubling the task. A
 * key names the call; a repeat with it returns the task the first call made, whatever became of it since.
 */
describe('idempotency keys: a repeated enqueue or requeue returns what the first one made', function () {
  this.timeout(60_000);

  describe('in the queue', () => {
    let env: TestQueue;
    let q: QueueService;
    eachTestQueue(
      (e) => ((env = e), (q = e.q)),
      () => q,
    );

    it('returns the first task for the same key on the same queue, whatever its status; another queue is another key space', async () => {
      const first = await q.enqueue({ queue: 'q', tool: 'run-bash', prompt: 'one', idempotencyKey: 'k1' });
      assert.equal(first.idempotencyKey, 'k1');
      const again = await q.enqueue({ queue: 'q', tool: 'run-bash', prompt: 'one', idempotencyKey: 'k1' });
      assert.equal(again.id, first.id);
      const c = await q.claim({ queue: 'q' });
      await q.complete({ task: c!.task.id, summary: 'done' });
      const afterDone = await q.enqueue({ queue: 'q', tool: 'run-bash', prompt: 'one', idempotencyKey: 'k1' });
      assert.equal(afterDone.id, first.id);
      assert.equal(afterDone.status, 'succeeded');
      await q.createQueue({ name: 'other', session: 's' });
      const elsewhere = await q.enqueue({ queue: 'other', tool: 'run-bash', prompt: 'one', idempotencyKey: 'k1' });
      assert.notEqual(elsewhere.id, first.id);
      assert.equal(q.listTasks({ limit: 100 }).tasks.length, 2);
    });

    it('keeps keys across a restart, the archiving of the task, and inside one batch; a purge forgets them', async () => {
      const [a, b, a2] = await q.enqueueMany([
        { queue: 'q', tool: 'run-bash', prompt: 'a', idempotencyKey: 'a' },
        { queue: 'q', tool: 'run-bash', prompt: 'b', idempotencyKey: 'b' },
        { queue: 'q', tool: 'run-bash', prompt: 'a', idempotencyKey: 'a' },
      ]);
      assert.equal(a2!.id, a!.id);
      assert.notEqual(b!.id, a!.id);
      assert.equal(q.listTasks({ limit: 100 }).tasks.length, 2);
      // Replayed from the journal, no snapshot.
      q.abandon();
      q = await env.open();
      assert.equal((await q.enqueue({ queue: 'q', tool: 'run-bash', prompt: 'a', idempotencyKey: 'a' })).id, a!.id);
      // Finished and archived: the key still finds it.
      await q.close();
      env.config.store.liveCap = 10;
      q = await env.open({ archiveBatch: 5 });
      for (let i = 0; i < 40; i++) {
        const c = await q.claim({ queue: 'q' });
        if (c) await q.complete({ task: c.task.id, summary: 's' });
        else await q.enqueue({ queue: 'q', tool: 'run-bash', prompt: `filler ${i}` });
      }
      await q.maintain();
      assert.equal(q.getTask(a!.id).archived, true, 'the keyed task was archived');
      const archived = await q.enqueue({ queue: 'q', tool: 'run-bash', prompt: 'a', idempotencyKey: 'a' });
      assert.equal(archived.id, a!.id);
      assert.equal(archived.archived, true);
      env.clock.advance(40 * 86_400_000);
      assert.ok((await q.purge({ olderThanDays: 30 })).purged > 0);
      const fresh = await q.enqueue({ queue: 'q', tool: 'run-bash', prompt: 'a', idempotencyKey: 'a' });
      assert.notEqual(fresh.id, a!.id, 'after a purge the key is free again');
    });

    it('returns the task a requeue with the same key made; another key still refuses a second requeue', async () => {
      await q.enqueue({ queue: 'q', tool: 'run-bash', prompt: 'x' });
      const c = await q.claim({ queue: 'q' });
      const failed = await q.fail({ task: c!.task.id, error: 'broke' });
      const copy = await q.requeue(failed.id, { idempotencyKey: 'r1' });
      assert.equal(copy.retryOf, failed.id);
      assert.equal((await q.requeue(failed.id, { idempotencyKey: 'r1' })).id, copy.id);
      await assert.rejects(q.requeue(failed.id, { idempotencyKey: 'r2' }), (e: unknown) => isSparkqError(e, 'conflict') && /already requeued as/.test(e.message));
      await assert.rejects(q.requeue(failed.id), (e: unknown) => isSparkqError(e, 'conflict'));
      await assert.rejects(q.enqueue({ queue: 'q', tool: 'run-bash', prompt: 'x', idempotencyKey: '' }), (e: unknown) => isSparkqError(e, 'invalid-input') && /idempotencyKey: an idempotency key must not be empty/.test(e.message));
    });
  });

  describe('in a client whose answer was lost', () => {
    let tmp: { dir: string; cleanup: () => void };
    const open: QueueHandle[] = [];
    beforeEach(() => (tmp = tempDir('sparkq-idem-')));
    afterEach(async () => {
      for (const h of open.splice(0)) await h.close().catch(() => undefined);
      tmp.cleanup();
    });

    it('repeats an enqueue whose connection broke after the owner stored it, with its key: one task, not two', async () => {
      const owning = await openQueue(tmp.dir, { role: 'test', durability: 'full', watchConfig: false });
      open.push(owning);
      await owning.createSession({ name: 's' });
      await owning.createQueue({ name: 'q', session: 's' });
      const client = await openQueue(tmp.dir, { role: 'test-client', env: {} });
      open.push(client);
      assert.ok(!client.isOwner);
      // The owner stores the enqueue, then the client's connection breaks before the answer can reach it: what a
      // client sees when the owner dies between its journal write and its answer.
      const commands = (owning.owner!.service as unknown as { commands: Pick<QueueService, 'enqueue'> }).commands;
      const enqueue = commands.enqueue.bind(commands);
      let broken = 0;
      commands.enqueue = async (input) => {
        const task = await enqueue(input);
        if (broken++ === 0) (client as unknown as { backend: { client: IpcClient } }).backend.client.close();
        return task;
      };
      const task = await client.enqueue({ queue: 'q', tool: 'run-bash', prompt: 'only once' });
      assert.equal(broken, 2, 'the client repeated the call on a new connection');
      const all = (await owning.listTasks({ queue: 'q' })).tasks;
      assert.deepEqual(all.map((t) => t.id), [task.id], 'one task, the one acknowledged');
      assert.match(task.idempotencyKey ?? '', /^auto-/, 'the client made a key for a call that had none');
    });
  });

  describe('on the command line', () => {
    const sandbox = cliSandbox('sparkq-cli-idem-');
    let cli: Cli;
    before(() => (cli = sandbox.cli));

    it('enqueue --idempotency-key prints the same task id when repeated; requeue too', async () => {
      const dir = path.join(sandbox.dir, 'ws');
      fs.mkdirSync(dir);
      const o = { cwd: dir };
      await cli.ok(['init', '--project', 'demo'], o);
      await cli.ok(['session', 'create', 's'], o);
      await cli.ok(['queue', 'create', 'q', '--session', 's'], o);
      const args = ['enqueue', 'run-bash', '--queue', 'q', '--prompt', 'x', '--idempotency-key', 'build-1'];
      const id = (await cli.ok(args, o)).trim();
      assert.equal((await cli.ok(args, o)).trim(), id);
      const listed = await cli.json<{ id: string }[]>(['tasks', '--queue', 'q'], o);
      assert.deepEqual(listed.map((t) => t.id), [id]);
      const claim = await cli.json<{ task: { id: string }; lease: string }>(['claim', '--queue', 'q'], o);
      await cli.ok(['fail', claim.task.id, 'broke'], { ...o, env: { SPARKQ_LEASE: claim.lease } });
      const copy = (await cli.ok(['requeue', id, '--idempotency-key', 'again-1'], o)).trim();
      assert.notEqual(copy, id);
      assert.equal((await cli.ok(['requeue', id, '--idempotency-key', 'again-1'], o)).trim(), copy);
      const refused = await cli.run(['requeue', '--failed', '--idempotency-key', 'x'], o);
      assert.equal(refused.code, 1);
      assert.match(refused.stderr, /--idempotency-key names the requeue of one task/);
    });
  });
});
