/**
 * The child of the kill -9 test (test/unit/core/crash.test.ts): opens the queue at argv[2] with full durability and
 * automatic maintenance, then mutates it from a few concurrent loops until it is killed. After each mutation's promise
 * resolves it writes one JSON line to stdout saying what was acknowledged. Writes to a pipe are synchronous on Linux,
 * so a line that was written is in the pipe even if SIGKILL arrives on the next instruction.
 *
 * The parent starts each child ahead of time: it loads, warms up on a scratch store of its own (so that the kills land
 * among mutations at full speed, not in the first slow calls of a cold process) and waits for a line on stdin before it
 * touches the real store.
 *
 * Usage: crashChild <store dir> [folder for the scratch store].
 * Lines: {"op":"warm"} when warmed up, {"op":"ready",...} once open, then enqueue / claim / heartbeat / complete / fail /
 * requeue, and {"op":"error",...} for anything unexpected (the parent fails the test on it).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { defaultConfig } from '../../src/core/config';
import { isSparkqError } from '../../src/core/errors';
import { QueueService } from '../../src/core/queue/service';

export const CRASH_QUEUE = 'crashq';
export const CRASH_SESSION = 'crash';

/** Options shared by the child and the verifying parent, so both open the store the same way. */
export const CRASH_STORE = { liveCap: 100, archiveBatch: 20, snapshotAfterRecords: 40, loops: 3 } as const;

function say(line: Record<string, unknown>): void {
  process.stdout.write(JSON.stringify(line) + '\n');
}

const WARM_UP_ROUNDS = Number(process.env['SPARKQ_CRASH_WARMUP'] ?? 20);

/** Runs every operation the loops use a few dozen times on a throwaway store, to get the code paths compiled. */
async function warmUp(scratchParent: string): Promise<void> {
  const dir = fs.mkdtempSync(path.join(scratchParent, 'sparkq-warm-'));
  try {
    const config = defaultConfig('warm');
    config.store.liveCap = 10;
    const q = await QueueService.open({ dir, config, durability: 'none', autoMaintain: true, archiveBatch: 5, snapshotAfterRecords: 40 });
    await q.createSession({ name: 'w' });
    await q.createQueue({ name: 'w', session: 'w' });
    for (let i = 0; i < WARM_UP_ROUNDS; i++) {
      await q.enqueue({ queue: 'w', tool: 'run-bash', prompt: `p${i}`, priority: i % 3 });
      q.getQueue('w');
      const c = await q.claim({ queue: 'w', worker: 'w' });
      if (!c) continue;
      await q.heartbeat({ task: c.task.id, lease: c.lease });
      if (i % 3 === 0) {
        await q.fail({ task: c.task.id, lease: c.lease, error: 'e' });
        await q.requeue(c.task.id);
      } else {
        await q.complete({ task: c.task.id, ...(i % 2 ? { lease: c.lease } : {}), summary: 's', data: { i } });
      }
    }
    await q.close();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function waitForGo(): Promise<void> {
  return new Promise((resolve) => {
    // The parent went away without starting this child: nothing to do.
    const gone = () => process.exit(0);
    process.stdin.once('end', gone);
    process.stdin.once('data', () => {
      process.stdin.off('end', gone);
      resolve();
    });
  });
}

async function main(): Promise<void> {
  const dir = process.argv[2];
  if (!dir) throw new Error('usage: crashChild <store dir>');
  await warmUp(process.argv[3] ?? os.tmpdir());
  say({ op: 'warm' });
  await waitForGo();
  const config = defaultConfig('crash');
  config.store.liveCap = CRASH_STORE.liveCap;
  const tools = Object.keys(config.tools);
  const q = await QueueService.open({
    dir,
    config,
    durability: 'full',
    autoMaintain: true,
    archiveBatch: CRASH_STORE.archiveBatch,
    snapshotAfterRecords: CRASH_STORE.snapshotAfterRecords,
  });

  // The first child may have been killed between creating the session and the queue.
  if (!q.listSessions().some((s) => s.name === CRASH_SESSION && s.status === 'active')) await q.createSession({ name: CRASH_SESSION });
  if (!q.listQueues().some((x) => x.name === CRASH_QUEUE && x.status === 'active')) await q.createQueue({ name: CRASH_QUEUE, session: CRASH_SESSION });

  const db = q.store.db;
  /** Running tasks this process claimed, with their leases. */
  const running = new Map<string, string>();
  /** Running tasks a killed predecessor claimed: their leases died with it, so they are finished without one. */
  const orphans = db.all<{ id: string }>("SELECT id FROM tasks WHERE status = 'running' ORDER BY seq").map((r) => r.id);
  /** Failed tasks not yet requeued. */
  const failed = db
    .all<{ id: string }>("SELECT id FROM tasks WHERE status = 'failed' AND id NOT IN (SELECT original_id FROM requeues) ORDER BY seq DESC LIMIT 50")
    .map((r) => r.id);
  say({ op: 'ready', pid: process.pid, recovery: q.recovery, orphans: orphans.length });

  let n = 0;
  const rnd = (k: number) => Math.floor(Math.random() * k);

  const step = async (loop: number): Promise<void> => {
    const counts = q.getQueue(CRASH_QUEUE).counts;
    const options: [string, number][] = [
      ['enqueue', counts.queued > 60 ? 1 : 4],
      ['claim', counts.queued > 0 ? (counts.queued > 30 ? 5 : 3) : 0],
      ['complete', running.size + orphans.length > 0 ? 3 : 0],
      ['fail', running.size + orphans.length > 0 ? 1.5 : 0],
      ['heartbeat', running.size > 0 ? 1.5 : 0],
      ['requeue', failed.length > 0 ? 1 : 0],
    ];
    const total = options.reduce((s, [, w]) => s + w, 0);
    let r = Math.random() * total;
    let op = 'enqueue';
    for (const [name, w] of options) {
      if ((r -= w) < 0) {
        op = name;
        break;
      }
    }
    const k = ++n;
    switch (op) {
      case 'enqueue': {
        const tool = tools[rnd(tools.length)]!;
        const priority = rnd(3) - 1;
        const t = await q.enqueue({ queue: CRASH_QUEUE, tool, prompt: `p${process.pid}-${k}`, priority });
        say({ op, id: t.id, priority, loop });
        return;
      }
      case 'claim': {
        const c = await q.claim({ queue: CRASH_QUEUE, worker: `w${process.pid}-${loop}` });
        if (!c) return new Promise<void>((resolve) => setImmediate(resolve)); // never spin on microtasks alone
        running.set(c.task.id, c.lease);
        say({ op, id: c.task.id, loop });
        return;
      }
      case 'heartbeat': {
        const ids = [...running.keys()];
        const id = ids[rnd(ids.length)]!;
        const t0 = Date.now();
        await q.heartbeat({ task: id, lease: running.get(id)! });
        say({ op, id, t0, loop });
        return;
      }
      case 'complete':
      case 'fail': {
        // Take the task out of the pool before the call, so that no other loop picks it meanwhile.
        let id: string;
        let lease: string | undefined;
        if (orphans.length > 0 && (running.size === 0 || rnd(2) === 0)) {
          id = orphans.splice(rnd(orphans.length), 1)[0]!;
        } else {
          const ids = [...running.keys()];
          id = ids[rnd(ids.length)]!;
          lease = rnd(5) === 0 ? undefined : running.get(id);
          running.delete(id);
        }
        if (op === 'complete') {
          const summary = `done ${id} #${k}`;
          await q.complete({ task: id, ...(lease ? { lease } : {}), summary, data: { k } });
          say({ op, id, summary, loop });
        } else {
          const error = `broke ${id} #${k}`;
          await q.fail({ task: id, ...(lease ? { lease } : {}), error });
          failed.push(id);
          say({ op, id, error, loop });
        }
        return;
      }
      case 'requeue': {
        const id = failed.splice(rnd(failed.length), 1)[0]!;
        const t = await q.requeue(id);
        say({ op, id, newId: t.id, loop });
        return;
      }
    }
  };

  const loop = async (i: number): Promise<void> => {
    for (;;) {
      try {
        await step(i);
      } catch (e) {
        say({ op: 'error', code: isSparkqError(e) ? e.code : null, message: e instanceof Error ? e.stack ?? e.message : String(e) });
        process.exit(3);
      }
    }
  };
  await Promise.all(Array.from({ length: CRASH_STORE.loops }, (_, i) => loop(i)));
}

if (require.main === module) {
  main().catch((e: unknown) => {
    say({ op: 'error', code: isSparkqError(e) ? e.code : null, message: e instanceof Error ? e.stack ?? e.message : String(e) });
    process.exit(2);
  });
}
