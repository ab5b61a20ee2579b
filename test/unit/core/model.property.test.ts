import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import { FakeClock, iso } from '../../../src/core/clock';
import { defaultConfig, resolveTimeoutSeconds } from '../../../src/core/config';
import { isSparkqError } from '../../../src/core/errors';
import type { StatusCounts, TaskStatus } from '../../../src/core/model';
import { QueueService } from '../../../src/core/queue/service';
import { tempDir } from '../../support/tmp';

/*
 * Property-based model test: random sequences of queue operations (including archiving, sweeps with a moving clock,
 * crashes and clean restarts) run against the real QueueService and against a small in-memory model of what was
 * acknowledged. After every step the service must agree with the model and keep its invariants.
 */

const QUEUES = ['qa', 'qb'] as const;
const NO_SUCH_TASK = 'tsk_000000000000';
const GARBAGE_LEASE = 'not-the-lease';

type LeaseChoice = 'current' | 'stale' | 'none' | 'garbage';
type Op =
  | { k: 'enqueue'; queue: number; tool: number; priority: number; prompt: string }
  | { k: 'claim'; queue: number }
  | { k: 'heartbeat'; pick: number; running: boolean; lease: LeaseChoice }
  | { k: 'complete'; pick: number; running: boolean; lease: LeaseChoice; summary: string }
  | { k: 'fail'; pick: number; running: boolean; lease: LeaseChoice; error: string }
  | { k: 'requeue'; pick: number; failed: boolean }
  | { k: 'sweep'; advanceMs: number }
  | { k: 'tick'; ms: number }
  | { k: 'archive' }
  | { k: 'crash' }
  | { k: 'reopen' };

const text = fc.oneof(
  { weight: 6, arbitrary: fc.string({ minLength: 1, maxLength: 12 }).map((s) => `x${s}`) },
  { weight: 1, arbitrary: fc.string({ maxLength: 6 }).map((s) => `  ${s.trim()} `) },
  { weight: 1, arbitrary: fc.constantFrom('', '   ', '\n\t') },
);
const lease = fc.constantFrom<LeaseChoice>('current', 'current', 'current', 'stale', 'none', 'garbage');
const pick = fc.nat({ max: 1000 });
/** Mostly aim at a task in the state the operation needs; sometimes at any task, to see the refusals. */
const aimed = fc.constantFrom(true, true, true, true, false);

const enqueueOp = fc.record({ k: fc.constant('enqueue' as const), queue: fc.nat({ max: 1 }), tool: fc.nat({ max: 20 }), priority: fc.integer({ min: -2, max: 2 }), prompt: fc.string({ maxLength: 8 }) });
const claimOp = fc.record({ k: fc.constant('claim' as const), queue: fc.nat({ max: 1 }) });
const heartbeatOp = fc.record({ k: fc.constant('heartbeat' as const), pick, running: aimed, lease });
const completeOp = fc.record({ k: fc.constant('complete' as const), pick, running: aimed, lease, summary: text });
const failOp = fc.record({ k: fc.constant('fail' as const), pick, running: aimed, lease, error: text });
const requeueOp = fc.record({ k: fc.constant('requeue' as const), pick, failed: aimed });
const sweepOp = fc.record({
  k: fc.constant('sweep' as const),
  advanceMs: fc.oneof(fc.integer({ min: 0, max: 5_000 }), fc.integer({ min: 0, max: 700_000 }), fc.integer({ min: 0, max: 2_000_000 })),
});
const tickOp = fc.record({ k: fc.constant('tick' as const), ms: fc.integer({ min: 1, max: 5_000 }) });
const archiveOp = fc.constant<Op>({ k: 'archive' });
const crashOp = fc.constant<Op>({ k: 'crash' });
const reopenOp = fc.constant<Op>({ k: 'reopen' });

/** Everything mixed. */
const anyOp: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: enqueueOp },
  { weight: 5, arbitrary: claimOp },
  { weight: 2, arbitrary: heartbeatOp },
  { weight: 4, arbitrary: completeOp },
  { weight: 3, arbitrary: failOp },
  { weight: 2, arbitrary: requeueOp },
  { weight: 2, arbitrary: sweepOp },
  { weight: 3, arbitrary: tickOp },
  { weight: 3, arbitrary: archiveOp },
  { weight: 1, arbitrary: crashOp },
  { weight: 1, arbitrary: reopenOp },
);
/** Work piling up. */
const fillOp: fc.Arbitrary<Op> = fc.oneof({ weight: 8, arbitrary: enqueueOp }, { weight: 3, arbitrary: claimOp }, { weight: 1, arbitrary: tickOp });
/** Work running down, with time passing, so that finishing order departs from enqueue order and history gets archived. */
const drainOp: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: claimOp },
  { weight: 4, arbitrary: completeOp },
  { weight: 2, arbitrary: failOp },
  { weight: 1, arbitrary: heartbeatOp },
  { weight: 3, arbitrary: tickOp },
  { weight: 1, arbitrary: sweepOp },
  { weight: 3, arbitrary: archiveOp },
  { weight: 1, arbitrary: crashOp },
);
/**
 * A run is a few phases (fill, drain or mixed), so that states a uniform mix rarely reaches (an empty queue whose whole
 * history was archived, then new work) come up often; at most 40 steps in all.
 */
const opsArb: fc.Arbitrary<Op[]> = fc
  .array(
    fc.oneof(
      fc.array(anyOp, { minLength: 1, maxLength: 20, size: 'max' }),
      fc.array(fillOp, { minLength: 2, maxLength: 12, size: 'max' }),
      fc.array(drainOp, { minLength: 1, maxLength: 15, size: 'max' }),
    ),
    { minLength: 1, maxLength: 5, size: 'max' },
  )
  .map((phases) => phases.flat().slice(0, 40));

interface MTask {
  id: string;
  queue: number;
  tool: string;
  prompt: string;
  priority: number;
  timeoutS: number;
  /** Enqueue order: FIFO within a priority. */
  order: number;
  status: TaskStatus;
  /** The lease while running; `claimedWith` keeps it after the task finished. */
  lease: string | null;
  claimedWith: string | null;
  startedAt: number | null;
  heartbeatAt: number | null;
  finishedAt: number | null;
  staleAt: number | null;
  summary: string | null;
  error: string | null;
  retryOf: string | null;
  requeuedAs: string | null;
  archived: boolean;
}

type Outcome<T> = { ok: true; value: T } | { ok: false; code: string; message: string };

async function attempt<T>(f: () => Promise<T> | T): Promise<Outcome<T>> {
  try {
    return { ok: true, value: await f() };
  } catch (e) {
    if (isSparkqError(e)) return { ok: false, code: e.code, message: e.message };
    throw e;
  }
}

function expectRejected(out: Outcome<unknown>, code: string, what: string): void {
  assert.ok(!out.ok, `${what}: expected a ${code} error, but it succeeded`);
  assert.equal(out.code, code, `${what}: expected ${code}, got ${out.code}: ${out.message}`);
}

function expectOk<T>(out: Outcome<T>, what: string): T {
  if (!out.ok) assert.fail(`${what}: expected success, got ${out.code}: ${out.message}`);
  return out.value;
}

async function runScenario(liveCap: number, ops: readonly Op[]): Promise<void> {
  const t = tempDir('sparkq-model-');
  const clock = new FakeClock();
  const config = defaultConfig('model');
  config.store.liveCap = liveCap;
  const tools = Object.keys(config.tools).sort();
  const open = () => QueueService.open({ dir: t.dir, config, clock, durability: 'none', autoMaintain: false, archiveBatch: 1 });
  let q = await open();
  try {
    await q.createSession({ name: 's' });
    const queueIds: string[] = [];
    for (const name of QUEUES) queueIds.push((await q.createQueue({ name, session: 's' })).id);

    const tasks: MTask[] = [];
    const byId = new Map<string, MTask>();
    const leases: string[] = [];
    let order = 0;

    const choose = (n: number, prefer: (m: MTask) => boolean, preferOnly: boolean): MTask | null => {
      const preferred = tasks.filter(prefer);
      const pool = preferOnly && preferred.length > 0 ? preferred : tasks;
      return pool.length === 0 ? null : pool[n % pool.length]!;
    };
    const leaseFor = (choice: LeaseChoice, target: MTask | null): string | undefined => {
      switch (choice) {
        case 'none':
          return undefined;
        case 'garbage':
          return GARBAGE_LEASE;
        case 'current':
          return target?.lease ?? GARBAGE_LEASE;
        case 'stale': {
          // Best the lease of the attempt this task retries (a worker that lost its task to a requeue), else another one.
          const previous = target?.retryOf ? byId.get(target.retryOf)?.claimedWith : null;
          if (previous) return previous;
          const other = leases.filter((l) => l !== target?.lease);
          return other.length > 0 ? other[other.length - 1]! : GARBAGE_LEASE;
        }
      }
    };
    /** What a lease-checked operation on `target` with `lease` must do: its error code, or null for success. */
    const leaseOutcome = (target: MTask | null, lease: string | undefined): string | null => {
      if (!target) return 'not-found';
      if (target.status !== 'running') return 'conflict';
      if (lease !== undefined && lease !== target.lease) return 'lease-mismatch';
      return null;
    };

    const check = (where: string) => {
      const db = q.store.db;
      const counts = QUEUES.map((): StatusCounts => ({ queued: 0, running: 0, succeeded: 0, failed: 0 }));
      let stale = 0;
      const liveLeases = new Set<string>();
      for (const m of tasks) {
        counts[m.queue]![m.status]++;
        // Staleness is a fact of time, read whether a sweep ran or not: past 1× the timeout, not at it.
        const isStale = m.status === 'running' && clock.now() > m.startedAt! + m.timeoutS * 1000;
        if (isStale) stale++;
        const what = `${where}: task ${m.id} (${m.status})`;
        const out = q.getTask(m.id); // throws not-found if an acknowledged task disappeared
        assert.equal(out.status, m.status, `${what}: status`);
        assert.equal(out.archived, m.archived, `${what}: archived`);
        assert.equal(out.queueId, queueIds[m.queue], `${what}: queue`);
        assert.equal(out.tool, m.tool, `${what}: tool`);
        assert.equal(out.prompt, m.prompt, `${what}: prompt`);
        assert.equal(out.priority, m.priority, `${what}: priority`);
        assert.equal(out.timeoutSeconds, m.timeoutS, `${what}: timeout`);
        assert.equal(out.retryOf, m.retryOf, `${what}: retryOf`);
        assert.equal(out.startedAt, m.startedAt === null ? null : iso(m.startedAt), `${what}: startedAt`);
        assert.equal(out.finishedAt, m.finishedAt === null ? null : iso(m.finishedAt), `${what}: finishedAt`);
        assert.equal(out.stale, isStale, `${what}: stale`);
        assert.equal(out.error, m.error, `${what}: error`);
        if (m.status === 'running') assert.equal(out.heartbeatAt, iso(m.heartbeatAt!), `${what}: heartbeatAt`);
        if (m.status === 'succeeded') {
          assert.ok(out.result && (out.result.summary ?? '').trim().length > 0, `${what}: a succeeded task without a summary`);
          assert.equal(out.result.summary, m.summary, `${what}: summary`);
        } else {
          // Only a failed task may carry a result, and then only the (partial) data it reported, never a summary.
          assert.equal(out.result?.summary ?? null, null, `${what}: result summary`);
          if (m.status !== 'failed') assert.equal(out.result, null, `${what}: result`);
        }
        // At most one live lease: queued tasks have no attempt, running ones exactly one running attempt, finished none.
        const running = out.attempts.filter((a) => a.outcome === 'running');
        if (m.status === 'queued') assert.equal(out.attempts.length, 0, `${what}: attempts`);
        else {
          assert.equal(out.attempts.length, 1, `${what}: attempts`);
          assert.equal(running.length, m.status === 'running' ? 1 : 0, `${what}: running attempts`);
          if (m.status !== 'running') assert.equal(out.attempts[0]!.outcome, m.status, `${what}: attempt outcome`);
        }
        if (!m.archived) {
          const row = db.get<{ lease: string | null }>('SELECT lease FROM tasks WHERE id = ?', [m.id]);
          assert.equal(row?.lease, m.status === 'running' ? m.lease : null, `${what}: lease`);
          if (m.status === 'running') {
            assert.ok(!liveLeases.has(m.lease!), `${what}: a lease shared with another task`);
            liveLeases.add(m.lease!);
            const att = db.all<{ lease: string }>("SELECT lease FROM attempts WHERE task_id = ? AND outcome = 'running'", [m.id]);
            assert.deepEqual(
              att.map((a) => a.lease),
              [m.lease],
              `${what}: its running attempt holds another lease`,
            );
          }
        }
      }
      assert.equal(Number(db.value("SELECT count(*) FROM attempts a JOIN tasks t ON t.id = a.task_id WHERE a.outcome = 'running' AND t.status != 'running'")), 0, `${where}: a finished task with a running attempt`);
      // Counters equal the rows: per queue, against the model and against what listing finds (live and archived).
      for (let i = 0; i < QUEUES.length; i++) {
        assert.deepEqual(q.getQueue(QUEUES[i]!).counts, counts[i], `${where}: counters of ${QUEUES[i]}`);
        const listed: StatusCounts = { queued: 0, running: 0, succeeded: 0, failed: 0 };
        for (const x of q.listTasks({ queue: QUEUES[i]!, limit: 1000 }).tasks) listed[x.status]++;
        assert.deepEqual(listed, counts[i], `${where}: tasks listed in ${QUEUES[i]}`);
      }
      const total = q.counts();
      assert.equal(total.stale, stale, `${where}: stale count`);
      for (const s of ['queued', 'running', 'succeeded', 'failed'] as const) assert.equal(total[s], counts[0]![s] + counts[1]![s], `${where}: total ${s}`);
      // Paging through everything, one and a few at a time, finds every task exactly once, and nothing unknown.
      for (const limit of [1, 3]) {
        const seen: string[] = [];
        let before: string | undefined;
        for (let guard = 0; guard < 1000; guard++) {
          const page = q.listTasks({ limit, ...(before ? { before } : {}) });
          seen.push(...page.tasks.map((x) => x.id));
          if (!page.next) break;
          before = page.next;
        }
        assert.deepEqual([...seen].sort(), tasks.map((m) => m.id).sort(), `${where}: paging through all tasks (${limit} per page) lists ${JSON.stringify(seen)}`);
      }
    };

    for (let i = 0; i < ops.length; i++) {
      const op = ops[i]!;
      const where = `step ${i} ${JSON.stringify(op)}`;
      const seqBefore = q.store.seq;
      const unchanged = (target: MTask | null) => {
        assert.equal(q.store.seq, seqBefore, `${where}: a rejected operation was journaled`);
        if (target) assert.equal(q.getTask(target.id).status, target.status, `${where}: a rejected operation changed the task`);
      };
      switch (op.k) {
        case 'enqueue': {
          const tool = tools[op.tool % tools.length]!;
          const task = expectOk(await attempt(() => q.enqueue({ queue: QUEUES[op.queue]!, tool, prompt: op.prompt, priority: op.priority })), where);
          assert.equal(task.status, 'queued');
          assert.equal(task.timeoutSeconds, resolveTimeoutSeconds(config, config.tools[tool]!), `${where}: timeout from the tool's class`);
          assert.equal(task.taskClass, config.tools[tool]!.taskClass);
          const m: MTask = {
            id: task.id,
            queue: op.queue,
            tool,
            prompt: op.prompt,
            priority: op.priority,
            timeoutS: task.timeoutSeconds,
            order: order++,
            status: 'queued',
            lease: null,
            claimedWith: null,
            startedAt: null,
            heartbeatAt: null,
            finishedAt: null,
            staleAt: null,
            summary: null,
            error: null,
            retryOf: null,
            requeuedAs: null,
            archived: false,
          };
          tasks.push(m);
          byId.set(m.id, m);
          break;
        }
        case 'claim': {
          const queued = tasks.filter((m) => m.queue === op.queue && m.status === 'queued');
          queued.sort((a, b) => b.priority - a.priority || a.order - b.order);
          const next = queued[0] ?? null;
          const c = expectOk(await attempt(() => q.claim({ queue: QUEUES[op.queue]!, worker: `w${i}` })), where);
          if (!next) {
            assert.equal(c, null, `${where}: claimed from a queue with nothing queued`);
            unchanged(null);
            break;
          }
          assert.ok(c, `${where}: nothing claimed though ${next.id} was queued`);
          assert.equal(c.task.id, next.id, `${where}: claim is not FIFO within priority (expected ${next.id} p${next.priority})`);
          assert.equal(c.task.status, 'running');
          assert.equal(c.task.attempt, 1);
          assert.equal(c.task.worker, `w${i}`);
          assert.ok(c.lease.length > 0 && !leases.includes(c.lease), `${where}: a lease handed out twice`);
          leases.push(c.lease);
          Object.assign(next, { status: 'running', lease: c.lease, claimedWith: c.lease, startedAt: clock.now(), heartbeatAt: clock.now(), staleAt: null });
          break;
        }
        case 'heartbeat': {
          const target = choose(op.pick, (m) => m.status === 'running', op.running);
          const l = leaseFor(op.lease, target);
          const out = await attempt(() => q.heartbeat({ task: target?.id ?? NO_SUCH_TASK, lease: l as string }));
          const want = l === undefined ? 'invalid-input' : leaseOutcome(target, l);
          if (want) {
            expectRejected(out, want, where);
            unchanged(target);
          } else {
            expectOk(out, where);
            target!.heartbeatAt = clock.now();
          }
          break;
        }
        case 'complete':
        case 'fail': {
          const target = choose(op.pick, (m) => m.status === 'running', op.running);
          const l = leaseFor(op.lease, target);
          const words = op.k === 'complete' ? op.summary : op.error;
          const id = target?.id ?? NO_SUCH_TASK;
          const out = await attempt(() =>
            op.k === 'complete'
              ? q.complete({ task: id, summary: op.summary, ...(l !== undefined ? { lease: l } : {}) })
              : q.fail({ task: id, error: op.error, ...(l !== undefined ? { lease: l } : {}) }),
          );
          const want = words.trim() === '' ? 'invalid-input' : leaseOutcome(target, l);
          if (want) {
            expectRejected(out, want, where);
            unchanged(target);
            break;
          }
          const done = expectOk(out, where);
          const m = target!;
          m.status = op.k === 'complete' ? 'succeeded' : 'failed';
          m.lease = null;
          m.finishedAt = clock.now();
          if (op.k === 'complete') m.summary = words.trim();
          else m.error = words.trim();
          assert.equal(done.status, m.status);
          break;
        }
        case 'requeue': {
          const target = choose(op.pick, (m) => m.status === 'failed' && m.requeuedAs === null, op.failed);
          const out = await attempt(() => q.requeue(target?.id ?? NO_SUCH_TASK));
          const want = !target ? 'not-found' : target.status !== 'failed' || target.requeuedAs !== null ? 'conflict' : null;
          if (want) {
            expectRejected(out, want, where);
            unchanged(target);
            break;
          }
          const copy = expectOk(out, where);
          const m = target!;
          assert.notEqual(copy.id, m.id);
          assert.equal(copy.status, 'queued');
          m.requeuedAs = copy.id;
          const n: MTask = {
            ...m,
            id: copy.id,
            order: order++,
            status: 'queued',
            lease: null,
            claimedWith: null,
            startedAt: null,
            heartbeatAt: null,
            finishedAt: null,
            staleAt: null,
            summary: null,
            error: null,
            retryOf: m.id,
            requeuedAs: null,
            archived: false,
          };
          tasks.push(n);
          byId.set(n.id, n);
          break;
        }
        case 'sweep': {
          clock.advance(op.advanceMs);
          const now = clock.now();
          const wantStaled: string[] = [];
          const wantFailed: string[] = [];
          for (const m of tasks) {
            if (m.status !== 'running') continue;
            const ran = now - m.startedAt!;
            if (ran > 2 * m.timeoutS * 1000) wantFailed.push(m.id);
            else if (ran > m.timeoutS * 1000 && m.staleAt === null) wantStaled.push(m.id);
          }
          const r = expectOk(await attempt(() => q.sweep()), where);
          assert.deepEqual(r.staled.map((x) => x.id).sort(), wantStaled.sort(), `${where}: staled`);
          assert.deepEqual(r.failed.map((x) => x.id).sort(), wantFailed.sort(), `${where}: auto-failed`);
          for (const id of wantStaled) byId.get(id)!.staleAt = now;
          for (const x of r.failed) {
            const m = byId.get(x.id)!;
            assert.match(x.error ?? '', /^auto-failed: ran longer than 2× its timeout/);
            Object.assign(m, { status: 'failed', lease: null, finishedAt: now, error: x.error });
          }
          break;
        }
        case 'tick': {
          // Time passes between operations (without a sweep), so that finishing order and enqueue order differ.
          clock.advance(op.ms);
          break;
        }
        case 'archive': {
          await q.maintain();
          const finishedLive = tasks.filter((m) => !m.archived && m.finishedAt !== null);
          for (const m of finishedLive) m.archived = q.getTask(m.id).archived;
          const stillLive = finishedLive.filter((m) => !m.archived);
          assert.equal(stillLive.length, Math.min(finishedLive.length, liveCap), `${where}: finished tasks left live`);
          const newestArchived = Math.max(...finishedLive.filter((m) => m.archived).map((m) => m.finishedAt!));
          for (const m of stillLive) assert.ok(m.finishedAt! >= newestArchived, `${where}: archived a task that finished after one kept live`);
          assert.equal(Number(q.store.db.value('SELECT count(*) FROM tasks WHERE finished_at IS NOT NULL')), stillLive.length);
          break;
        }
        case 'crash': {
          q.abandon();
          q = await open();
          assert.equal(q.recovery.tornTail, null, `${where}: a torn tail after a crash between acknowledged writes`);
          break;
        }
        case 'reopen': {
          await q.close();
          q = await open();
          assert.equal(q.recovery.replayed, 0, `${where}: a clean close leaves nothing to replay`);
          break;
        }
      }
      check(where);
    }
  } finally {
    await q.close().catch(() => undefined);
    t.cleanup();
  }
}

/** Failures fast-check found once, replayed first on every run so that they stay fixed. */
const KNOWN_COUNTEREXAMPLES: [liveCap: number, ops: Op[]][] = [
  // The newest task finishes first and is archived; the next task reuses its `seq` (rowid), so paging skips one of them.
  [
    1,
    [
      { k: 'enqueue', queue: 0, tool: 0, priority: 0, prompt: 'a' },
      { k: 'enqueue', queue: 1, tool: 0, priority: 0, prompt: 'b' },
      { k: 'claim', queue: 0 },
      { k: 'claim', queue: 1 },
      { k: 'complete', pick: 1, running: true, lease: 'current', summary: 'b done' },
      { k: 'tick', ms: 1000 },
      { k: 'complete', pick: 0, running: true, lease: 'current', summary: 'a done' },
      { k: 'archive' },
      { k: 'enqueue', queue: 0, tool: 0, priority: 0, prompt: 'c' },
    ],
  ],
];

describe('queue model (property-based)', () => {
  it('agrees with a simple model over random operation sequences, crashes and restarts included', async function (this: Mocha.Context) {
    this.timeout(600_000);
    const started = Date.now();
    let runs = 0;
    let steps = 0;
    const seed = process.env['SPARKQ_FC_SEED'] !== undefined ? Number(process.env['SPARKQ_FC_SEED']) : undefined;
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 3 }), opsArb, async (liveCap, ops) => {
        runs++;
        steps += ops.length;
        await runScenario(liveCap, ops);
      }),
      {
        examples: KNOWN_COUNTEREXAMPLES,
        numRuns: Number(process.env['SPARKQ_FC_RUNS'] ?? 100),
        ...(seed !== undefined ? { seed } : {}),
        // Shrinking a long failing run can take minutes; past this, fast-check reports the smallest failure found so far.
        interruptAfterTimeLimit: 60_000,
        markInterruptAsFailure: false,
      },
    );
    console.log(`      model: ${runs} runs (shrinking included), ${steps} steps, ${((Date.now() - started) / 1000).toFixed(1)} s`);
  });
});
