import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { openQueue, type QueueHandle } from '../../../src/client/open';
import { FakeClock } from '../../../src/core/clock';
import { defaultConfigYaml } from '../../../src/core/config';
import { isSparkqError } from '../../../src/core/errors';
import { encodeFrame } from '../../../src/ipc/frames';
import { processStartTime, readOwner, tryAcquireOwnerLock } from '../../../src/owner/lock';
import { OWNER_RECORD, QueueOwner, readOwnerRecord } from '../../../src/owner/owner';
import { bundleChild, startChild } from '../../support/children';
import { tempDir } from '../../support/tmp';

async function until(pred: () => boolean | Promise<boolean>, timeoutMs = 5_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await pred())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * Writes the lock of generation `generation` as held by `pid` (a live process that is not an owner) since a minute
 * ago, so that a contender pings it rather than waiting for it to start. Returns what it wrote.
 */
async function forgeOldLock(sparkq: string, pid: number, generation: number, role: string, socketPath: string): Promise<{ acquiredAt: string }> {
  await until(() => processStartTime(pid) !== null, 2_000, 'the holder process to start');
  const holder = { pid, startTime: processStartTime(pid), generation, role, socketPath, acquiredAt: new Date(Date.now() - 60_000).toISOString() };
  fs.writeFileSync(path.join(sparkq, `owner-${String(generation).padStart(10, '0')}.lock`), JSON.stringify(holder), { mode: 0o600 });
  return holder;
}

describe('owner and openQueue', function () {
  this.timeout(120_000);
  let tmp: { dir: string; cleanup: () => void };
  const open: QueueHandle[] = [];

  beforeEach(() => {
    tmp = tempDir('sparkq-owner-');
  });
  afterEach(async () => {
    for (const q of open.splice(0)) await q.close().catch(() => undefined);
    tmp.cleanup();
  });

  async function openHere(role = 'test', extra: Parameters<typeof openQueue>[1] extends infer O ? Partial<O> : never = {}): Promise<QueueHandle> {
    const q = await openQueue(tmp.dir, { role, durability: 'full', ...extra });
    open.push(q);
    return q;
  }

  it('the first opener becomes the owner and serves; the next one is a client of it', async () => {
    const a = await openHere('first');
    assert.equal(a.isOwner, true);
    assert.equal(a.ownerInfo.role, 'first');
    const b = await openHere('second');
    assert.equal(b.isOwner, false);
    assert.equal(b.ownerInfo.pid, process.pid);
    assert.equal(b.ownerInfo.generation, a.ownerInfo.generation);

    await b.createSession({ name: 'api-v2' });
    await b.createQueue({ name: 'Back End', session: 'api-v2', instructions: 'small steps' });
    const t = await b.enqueue({ queue: 'Back End', tool: 'run-bash', prompt: 'echo hi' });
    assert.equal((await a.getTask(t.id)).status, 'queued');
    const status = await b.status();
    assert.equal(status.owner.role, 'first');
    assert.equal(status.counts.queued, 1);
    assert.equal(status.queues[0]?.counts.queued, 1);

    // The files: owner.json 0600 naming the socket, .gitignore, the socket 0600 in a 0700 folder.
    const sparkq = path.join(tmp.dir, '.sparkq');
    assert.equal(fs.statSync(path.join(sparkq, OWNER_RECORD)).mode & 0o777, 0o600);
    assert.match(fs.readFileSync(path.join(sparkq, '.gitignore'), 'utf8'), /^\*$/m);
    const rec = readOwnerRecord(sparkq);
    assert.ok(rec);
    assert.equal(rec.generation, a.ownerInfo.generation);
    assert.match(rec.token, /^[0-9a-f]{64}$/);
    assert.equal(fs.statSync(rec.socketPath).mode & 0o777, 0o600);
    assert.equal(fs.statSync(path.dirname(rec.socketPath)).mode & 0o777, 0o700);
    assert.ok(Buffer.byteLength(rec.socketPath) <= 100);
    assert.equal(readOwner(sparkq)?.socketPath, rec.socketPath);
  });

  it('change events reach a client, and a client keeps its subscription across a hand-over', async () => {
    const a = await openHere('first');
    const b = await openHere('second');
    const seen: string[] = [];
    b.onChange((events) => {
      for (const e of events) seen.push(e.kind);
    });
    let reconnected = 0;
    b.onReconnect(() => reconnected++);
    await b.status(); // the subscription travels ahead of this call on the same connection, so it is in place now
    await a.createSession({ name: 's' });
    await until(() => seen.includes('session'), 5_000, 'a session event');

    await a.close();
    // b's subscription brings it back by itself: it becomes the owner.
    await until(() => b.isOwner, 10_000, 'b to take over');
    assert.equal(reconnected, 1);
    seen.length = 0;
    await b.createQueue({ name: 'q', session: 's' });
    await until(() => seen.includes('queue'), 5_000, 'a queue event after the hand-over');
  });

  it('connects straight to SPARKQ_SOCKET/SPARKQ_TOKEN given for this workspace, and falls back when they are stale', async () => {
    const a = await openHere('first');
    const rec = readOwnerRecord(path.join(tmp.dir, '.sparkq'))!;
    const env = { SPARKQ_SOCKET: rec.socketPath, SPARKQ_TOKEN: rec.token, SPARKQ_WORKSPACE: tmp.dir };
    const b = await openHere('env', { env });
    assert.equal(b.isOwner, false);
    assert.equal(b.ownerInfo.generation, a.ownerInfo.generation);
    // A wrong token is not fatal: the usual discovery finds the owner.
    const c = await openHere('stale-env', { env: { ...env, SPARKQ_TOKEN: '0'.repeat(64) } });
    assert.equal(c.ownerInfo.generation, a.ownerInfo.generation);
    // Values for another workspace are ignored entirely.
    const d = await openHere('other-ws', { env: { ...env, SPARKQ_WORKSPACE: '/' } });
    assert.equal(d.isOwner, false);
  });

  it('hands over when the owner closes: the next call of a client takes over with nothing lost', async () => {
    const a = await openHere('first');
    const b = await openHere('second');
    await b.createSession({ name: 's' });
    await b.createQueue({ name: 'q', session: 's' });
    const ids: string[] = [];
    for (let i = 0; i < 20; i++) ids.push((await b.enqueue({ queue: 'q', tool: 'run-bash', prompt: `t${i}` })).id);
    const gen = a.ownerInfo.generation;
    await a.close();
    assert.equal(fs.existsSync(path.join(tmp.dir, '.sparkq', OWNER_RECORD)), false, 'owner.json goes with the owner');

    const page = await b.listTasks({ queue: 'q', limit: 100 });
    assert.equal(b.isOwner, true);
    assert.equal(b.ownerInfo.generation, gen + 1);
    assert.deepEqual(page.tasks.map((t) => t.id).sort(), [...ids].sort());
  });

  it('requests that arrive while the owner drains are refused as not run, and the client retries them elsewhere', async () => {
    const a = await openHere('first');
    const b = await openHere('second');
    await b.createSession({ name: 's' });
    await b.createQueue({ name: 'q', session: 's' });
    // Many mutations in flight from the client while the owner closes: each either lands before the hand-over or is
    // retried at the next owner — none fails, none runs twice.
    const enqueues = Array.from({ length: 200 }, (_, i) => b.enqueue({ queue: 'q', tool: 'run-bash', prompt: `x${i}` }));
    const closing = a.close();
    const results = await Promise.allSettled(enqueues);
    await closing;
    const ok = results.filter((r) => r.status === 'fulfilled').map((r) => r.value.id);
    const failed = results.filter((r) => r.status === 'rejected').map((r) => (r.reason as Error).message);
    // A request already written when the socket closed could be in doubt; the graceful drain answers those first.
    assert.deepEqual(failed, []);
    const all = await b.listTasks({ queue: 'q', limit: 1000 });
    assert.equal(all.tasks.length, 200);
    assert.deepEqual(all.tasks.map((t) => t.id).sort(), ok.sort());
  });

  it('takes over from a dead holder at once, and from a live holder that does not answer after the grace time', async () => {
    const sparkq = path.join(tmp.dir, '.sparkq');
    // A holder whose process is gone: the lock names a pid that exited.
    const dead = spawn(process.execPath, ['-e', '0']);
    const deadPid = dead.pid!;
    await new Promise((r) => dead.on('exit', r));
    fs.mkdirSync(sparkq, { recursive: true, mode: 0o700 });
    const stale = { pid: deadPid, startTime: 'x', generation: 7, role: 'ghost', socketPath: '/nonexistent.sock', acquiredAt: new Date().toISOString() };
    fs.writeFileSync(path.join(sparkq, 'owner-0000000007.lock'), JSON.stringify(stale), { mode: 0o600 });
    const q = await openHere('heir');
    assert.equal(q.isOwner, true);
    assert.equal(q.ownerInfo.generation, 8);
    await q.createSession({ name: 's' });
    await q.createQueue({ name: 'q', session: 's' });
    const kept = await q.enqueue({ queue: 'q', tool: 'run-bash', prompt: 'kept' });
    await q.close();
    const journalNow = () => {
      const m = JSON.parse(fs.readFileSync(path.join(sparkq, 'db', 'manifest.json'), 'utf8')) as { manifest: { current: { journal: { file: string } } } };
      return fs.statSync(path.join(sparkq, 'db', m.manifest.current.journal.file));
    };
    const before = journalNow();

    // A live process (sleep) that holds the lock but never serves, acquired long ago: pinged, found silent, replaced.
    const sleeper = spawn('sleep', ['30']);
    try {
      await forgeOldLock(sparkq, sleeper.pid!, 20, 'hung', path.join(tmp.dir, 'nobody.sock'));
      const r = await openHere('heir2');
      assert.equal(r.isOwner, true);
      assert.equal(r.ownerInfo.generation, 21);
      // The silent holder may still write to the journal it holds open: the heir continues in a new file of that name.
      const after = journalNow();
      assert.notEqual(after.ino, before.ino, 'the journal was rehomed');
      assert.equal(after.size, before.size);
      assert.equal((await r.getTask(kept.id)).status, 'queued');
      await r.close();
    } finally {
      sleeper.kill('SIGKILL');
    }
  });

  it('never takes over from a holder that answers in a way it cannot read (another version): it says so instead', async () => {
    const sparkq = path.join(tmp.dir, '.sparkq');
    fs.mkdirSync(sparkq, { recursive: true, mode: 0o700 });
    // A live process holds the lock, acquired long ago (so it is pinged), and its socket answers every hello with a
    // frame this build does not know: what an owner of another SparkQ version looks like to this one.
    const socketPath = path.join(tmp.dir, 'v99.sock');
    const server = net.createServer((socket) => {
      socket.on('error', () => undefined);
      socket.once('data', () => socket.write(encodeFrame({ t: 'welcome-v99', owner: 'elsewhere' })));
    });
    await new Promise<void>((resolve) => server.listen(socketPath, resolve));
    const sleeper = spawn('sleep', ['30']);
    try {
      const holder = await forgeOldLock(sparkq, sleeper.pid!, 30, 'serve', socketPath);
      const record = { version: 1, pid: sleeper.pid!, generation: 30, role: 'serve', socketPath, token: 'a'.repeat(64), since: holder.acquiredAt };
      fs.writeFileSync(path.join(sparkq, OWNER_RECORD), JSON.stringify(record), { mode: 0o600 });
      await assert.rejects(openQueue(tmp.dir, { role: 'new-build', timeoutMs: 1_500 }), (e: unknown) => {
        assert.ok(isSparkqError(e, 'unavailable'));
        assert.match(e.message, /holds the lock .* and answers, but not in a way this sparkq understands \(.*broke the protocol.*\)\. Is it another version of SparkQ\?/);
        return true;
      });
      assert.equal(readOwner(sparkq)?.generation, 30, 'the holder still holds the queue');
    } finally {
      sleeper.kill('SIGKILL');
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it('waits for a live holder that is still starting (no socket yet) instead of taking over', async () => {
    const sparkq = path.join(tmp.dir, '.sparkq');
    const got = await tryAcquireOwnerLock(sparkq, { role: 'slow-starter' });
    assert.ok('lock' in got);
    // This process holds generation 1 without serving: a client must wait, then give up with a clear error.
    await assert.rejects(openQueue(tmp.dir, { role: 'impatient', timeoutMs: 600 }), (e: unknown) => {
      assert.ok(isSparkqError(e, 'unavailable'));
      assert.match(e.message, /holds the lock/);
      assert.match(e.message, new RegExp(`process ${process.pid}`));
      return true;
    });
    got.lock.release();
    const q = await openHere('after');
    assert.equal(q.isOwner, true);
    assert.equal(q.ownerInfo.generation, 2);
  });

  it('a demoted owner writes nothing: a newer generation fences it, it steps down and its handle moves on', async () => {
    const q = await openHere('old');
    await q.createSession({ name: 's' });
    const owner = q.owner;
    assert.ok(owner);
    // Another process proved us stale and took generation 2 (simulated by its lock file; it serves nothing yet).
    const sparkq = path.join(tmp.dir, '.sparkq');
    const next = { pid: process.pid, startTime: processStartTime(process.pid), generation: owner.info.generation + 1, role: 'new', socketPath: null, acquiredAt: new Date().toISOString() };
    fs.writeFileSync(path.join(sparkq, `owner-${String(next.generation).padStart(10, '0')}.lock`), JSON.stringify(next), { mode: 0o600 });
    await assert.rejects(owner.createSession({ name: 'too-late' }), (e: unknown) => isSparkqError(e, 'unavailable'));
    assert.equal(owner.isLost, true);
    await until(() => !fs.existsSync(owner.socketPath ?? '/'), 5_000, 'the old socket to go');
    assert.equal(q.isOwner, false);
  });

  it('reloads sparkq.yml on change; a broken file is logged and the last good config stays', async () => {
    const logs: string[] = [];
    fs.writeFileSync(path.join(tmp.dir, 'sparkq.yml'), defaultConfigYaml('first-name'));
    const q = await openHere('watcher', { log: (l: string) => logs.push(l) });
    assert.equal((await q.status()).project, 'first-name');
    fs.writeFileSync(path.join(tmp.dir, 'sparkq.yml'), defaultConfigYaml('first-name') + '\nbogusKey: 1\n');
    await until(() => logs.some((l) => l.includes('not reloaded')), 5_000, 'the reload error in the log');
    assert.match(logs.find((l) => l.includes('not reloaded'))!, /bogusKey/);
    assert.equal((await q.status()).project, 'first-name');
    fs.writeFileSync(path.join(tmp.dir, 'sparkq.yml'), defaultConfigYaml('second-name'));
    await until(async () => (await q.status()).project === 'second-name', 5_000, 'the new project name');
  });

  it('refuses to start an owner on a broken sparkq.yml, saying where, and leaves no lock behind', async () => {
    fs.writeFileSync(path.join(tmp.dir, 'sparkq.yml'), 'version: 1\ntools: [\n');
    await assert.rejects(openQueue(tmp.dir, { role: 'x' }), /sparkq\.yml/);
    assert.equal(readOwner(path.join(tmp.dir, '.sparkq')), null);
  });

  it('the sweeper runs in the owner: a running task past 2× its timeout is failed without anyone asking', async () => {
    const clock = new FakeClock(Date.UTC(2026, 10, 1));
    const q = await openHere('sweeper', { clock, sweepIntervalMs: 30 });
    await q.createSession({ name: 's' });
    await q.createQueue({ name: 'q', session: 's' });
    const t = await q.enqueue({ queue: 'q', tool: 'run-bash', prompt: 'sleep', timeoutSeconds: 10 });
    await q.claim({ queue: 'q' });
    clock.advance(11_000);
    await until(async () => (await q.getTask(t.id)).stale !== null && (await q.getTask(t.id)).stale !== false, 5_000, 'the stale flag');
    clock.advance(10_000);
    await until(async () => (await q.getTask(t.id)).status === 'failed', 5_000, 'the auto-fail');
    assert.match((await q.getTask(t.id)).error ?? '', /auto-failed/);
  });

  it('QueueOwner.start releases the lock again when the store cannot open', async () => {
    const sparkq = path.join(tmp.dir, '.sparkq');
    const got = await tryAcquireOwnerLock(sparkq, { role: 'x' });
    assert.ok('lock' in got);
    // A store folder that is a file: opening must fail.
    fs.writeFileSync(path.join(sparkq, 'db'), 'not a folder');
    await assert.rejects(QueueOwner.start({ workspaceDir: tmp.dir, lock: got.lock, role: 'x', watchConfig: false }));
    assert.equal(readOwner(sparkq), null, 'released');
  });

  describe('many processes', () => {
    let child: string[];
    let out: { dir: string; cleanup: () => void };
    before(() => {
      out = tempDir('sparkq-children-');
      child = ['--liftoff-only', ...bundleChild('test/support/queueChild.ts', out.dir)];
    });
    after(() => out.cleanup());

    it('50 client processes claim from 5,000 tasks: every task claimed exactly once, none lost', async () => {
      const tasks = Number(process.env['SPARKQ_CLAIM_TASKS'] ?? 5_000);
      const clients = 50;
      {
        const q = await openQueue(tmp.dir, { role: 'setup', durability: 'none' });
        await q.createSession({ name: 's' });
        await q.createQueue({ name: 'q', session: 's' });
        for (let i = 0; i < tasks; i++) await q.enqueue({ queue: 'q', tool: 'run-bash', prompt: `t${i}` });
        await q.close();
      }
      const kids = Array.from({ length: clients }, (_, i) => startChild([...child, 'claim', tmp.dir, 'q', `w${i}`]));
      const codes = await Promise.all(kids.map((k) => k.exited));
      assert.deepEqual(
        codes.filter((c) => c !== 0),
        [],
        kids
          .map((k) => k.stderr())
          .filter(Boolean)
          .join('\n'),
      );
      const claimed = kids.flatMap((k) => k.lines.filter((l) => typeof l['claimed'] === 'string').map((l) => l['claimed'] as string));
      assert.equal(new Set(claimed).size, claimed.length, 'no task claimed twice');
      assert.equal(claimed.length, tasks, 'every task claimed');
      const owners = new Set(kids.filter((k) => k.lines.some((l) => l['owner'] === true)).map((k) => k.proc.pid));
      assert.ok(owners.size >= 1);

      const q = await openHere('check');
      const status = await q.status();
      assert.equal(status.counts.succeeded, tasks);
      assert.equal(status.counts.queued + status.counts.running + status.counts.failed, 0);
      const page = await q.listTasks({ queue: 'q', status: 'succeeded', limit: 1 });
      assert.equal((await q.getTask(page.tasks[0]!.id)).attempts.length, 1);
    });

    it('the owner SIGKILLed while clients enqueue: every acknowledged enqueue is there after another process takes over', async () => {
      {
        const q = await openQueue(tmp.dir, { role: 'setup' });
        await q.createSession({ name: 's' });
        await q.createQueue({ name: 'q', session: 's' });
        await q.close();
      }
      const server = startChild([...child, 'serve', tmp.dir]);
      await server.waitFor((l) => 'ready' in l);
      const perClient = 200;
      const clients = Array.from({ length: 4 }, () => startChild([...child, 'enqueue', tmp.dir, 'q', String(perClient)]));
      // Let them get going against the server, then kill it without warning.
      await Promise.all(clients.map((c) => c.waitFor((l) => 'enqueued' in l)));
      await until(() => clients.reduce((n, c) => n + c.lines.length, 0) >= 200, 30_000, '200 acknowledged enqueues');
      server.proc.kill('SIGKILL');
      assert.equal(await server.exited, 'SIGKILL');
      const codes = await Promise.all(clients.map((c) => c.exited));
      assert.deepEqual(
        codes,
        clients.map(() => 0),
        clients.map((c) => c.stderr()).join('\n'),
      );

      const acked = clients.flatMap((c) => c.lines.filter((l) => typeof l['enqueued'] === 'string').map((l) => l['enqueued'] as string));
      const uncertain = clients.flatMap((c) => c.lines.filter((l) => 'uncertain' in l));
      assert.ok(acked.length >= perClient * 4 - uncertain.length, `${acked.length} acknowledged, ${uncertain.length} in doubt`);
      assert.ok(uncertain.length <= 4, 'at most one call per client was in flight when the owner died');

      const q = await openHere('check');
      assert.ok(q.ownerInfo.generation >= 3, 'ownership moved on from the killed server');
      const all = await q.listTasks({ queue: 'q', limit: 1_000 });
      assert.ok(all.tasks.length < 1_000);
      const present = new Set(all.tasks.map((t) => t.id));
      const missing = acked.filter((id) => !present.has(id));
      assert.deepEqual(missing, [], 'acknowledged enqueues lost');
      // An in-doubt call either ran or did not; nothing else appeared.
      assert.ok(present.size <= acked.length + uncertain.length);
    });
  });
});
