import { defaultConfig } from '../../src/core/config';
import type { Claim } from '../../src/core/model';
import { QueueService, type OpenQueueOptions } from '../../src/core/queue/service';
import type { Durability } from '../../src/core/store/journal';
import { PROMPT, SUMMARY } from './shape';
import { type Summary, gc, inBatches, now, summarize } from './stats';

/*
 * The SparkQ side of the bench: builds queue states through the public API and times the operations a worker and
 * the UI perform. Everything goes through QueueService, so the numbers include validation, the transaction, the
 * journal record and the group-commit hop: what a caller waits for.
 */

export const QUEUE = 'q';
export const SESSION = 's';
export const TOOL = 'run-bash';

/** Batch size for building states: this many callers at once, sharing group commits. */
const BUILD_BATCH = 500;

export type OpLatencies = Record<'enqueue' | 'claim' | 'complete' | 'list100', Summary>;

export interface OpMeasurement {
  latency: OpLatencies;
  /** The synchronous part of each mutation (validation + transaction + journal append), before the commit hop. */
  syncPart: Record<'enqueue' | 'claim' | 'complete', Summary>;
  journalRecordsAfter: number;
}

export async function openQueue(dir: string, durability: Durability, extra: Partial<OpenQueueOptions> = {}): Promise<QueueService> {
  return QueueService.open({ dir, config: defaultConfig('bench'), durability, autoMaintain: true, ...extra });
}

export async function createSessionAndQueue(q: QueueService): Promise<void> {
  await q.createSession({ name: SESSION });
  await q.createQueue({ name: QUEUE, session: SESSION, instructions: 'Work through the tasks in order.' });
}

export async function enqueueMany(q: QueueService, count: number): Promise<void> {
  await inBatches(count, BUILD_BATCH, () => q.enqueue({ queue: QUEUE, tool: TOOL, prompt: PROMPT }));
}

/** Claims and completes `count` tasks, BUILD_BATCH workers at a time. */
export async function finishMany(q: QueueService, count: number): Promise<void> {
  for (let done = 0; done < count; done += BUILD_BATCH) {
    const k = Math.min(BUILD_BATCH, count - done);
    const claims = await Promise.all(Array.from({ length: k }, () => q.claim({ queue: QUEUE, worker: 'builder' })));
    await Promise.all(claims.map((c) => complete(q, mustClaim(c))));
  }
}

function mustClaim(c: Claim | null): Claim {
  if (!c) throw new Error('bench: the queue ran dry; the state was built too small');
  return c;
}

function complete(q: QueueService, c: Claim): Promise<unknown> {
  return q.complete({ task: c.task.id, lease: c.lease, summary: SUMMARY });
}

/** The latency state at N: N tasks enqueued, then `finishedShare` of them claimed and completed; the rest wait. */
export async function buildLatencyState(dir: string, n: number, finishedShare: number): Promise<void> {
  const q = await openQueue(dir, 'none');
  await createSessionAndQueue(q);
  await enqueueMany(q, n);
  await finishMany(q, Math.round(n * finishedShare));
  await q.close();
}

/**
 * Times enqueue → claim → complete, one caller, one at a time (so the queue length stays where it was built), then
 * list-100 (the Tasks view's first page). Warm-up iterations are discarded.
 */
export async function measureOps(dir: string, durability: Durability, iterations: number, listIterations: number, warmup: number): Promise<OpMeasurement> {
  const q = await openQueue(dir, durability);
  try {
    const total = { enqueue: [] as number[], claim: [] as number[], complete: [] as number[], list100: [] as number[] };
    const sync = { enqueue: [] as number[], claim: [] as number[], complete: [] as number[] };
    gc();
    for (let i = 0; i < warmup + iterations; i++) {
      const keep = i >= warmup;
      let t0 = now();
      const pe = q.enqueue({ queue: QUEUE, tool: TOOL, prompt: PROMPT });
      let t1 = now();
      await pe;
      let t2 = now();
      if (keep) {
        sync.enqueue.push(t1 - t0);
        total.enqueue.push(t2 - t0);
      }

      t0 = now();
      const pc = q.claim({ queue: QUEUE, worker: 'bench-worker' });
      t1 = now();
      const c = mustClaim(await pc);
      t2 = now();
      if (keep) {
        sync.claim.push(t1 - t0);
        total.claim.push(t2 - t0);
      }

      t0 = now();
      const pf = complete(q, c);
      t1 = now();
      await pf;
      t2 = now();
      if (keep) {
        sync.complete.push(t1 - t0);
        total.complete.push(t2 - t0);
      }
    }
    gc();
    for (let i = 0; i < warmup + listIterations; i++) {
      const t0 = now();
      const page = q.listTasks({ queue: QUEUE, limit: 100 });
      const t1 = now();
      if (page.tasks.length !== 100) throw new Error(`bench: list returned ${page.tasks.length} tasks, expected 100`);
      if (i >= warmup) total.list100.push(t1 - t0);
    }
    return {
      latency: { enqueue: summarize(total.enqueue), claim: summarize(total.claim), complete: summarize(total.complete), list100: summarize(total.list100) },
      syncPart: { enqueue: summarize(sync.enqueue), claim: summarize(sync.claim), complete: summarize(sync.complete) },
      journalRecordsAfter: q.store.journalRecords,
    };
  } finally {
    await q.close();
  }
}

export interface SnapshotPoint {
  finished: number;
  queued: number;
  imageBytes: number;
  snapshot: Summary;
  /** `db.export()` alone, timed separately right after each snapshot. */
  exportOnly: Summary;
}

export interface SnapshotMeasurement {
  liveCap: number;
  /** At the live cap: the size the live database is archived back to. */
  atCap: SnapshotPoint;
  /** Just before maintenance archives: cap + archive batch - 1 finished tasks, the largest live state in steady use. */
  beforeArchive: SnapshotPoint;
  writesPerRound: number;
}

/** Snapshot time at the live cap: `liveCap` finished tasks plus some queued, durable store, a few writes before each. */
export async function measureSnapshotAtCap(dir: string, queued: number, rounds: number, writesPerRound: number): Promise<SnapshotMeasurement> {
  const cap = defaultConfig('bench').store.liveCap;
  const build = await openQueue(dir, 'none');
  await createSessionAndQueue(build);
  await enqueueMany(build, cap + queued);
  await finishMany(build, cap);
  await build.close();

  const cycles = Math.max(1, Math.ceil(writesPerRound / 3));
  const q = await openQueue(dir, 'full');
  try {
    const measure = async (n: number): Promise<SnapshotPoint> => {
      const snap: number[] = [];
      const exp: number[] = [];
      let imageBytes = 0;
      for (let r = 0; r < n; r++) {
        // Each cycle enqueues one task and finishes one, so the queued count stays put and finished grows slowly.
        for (let w = 0; w < cycles; w++) {
          await q.enqueue({ queue: QUEUE, tool: TOOL, prompt: PROMPT });
          await complete(q, mustClaim(await q.claim({ queue: QUEUE, worker: 'bench-worker' })));
        }
        gc();
        const t0 = now();
        await q.store.snapshot();
        snap.push(now() - t0);
        const t1 = now();
        imageBytes = q.store.db.export().length;
        exp.push(now() - t1);
      }
      const counts = q.counts();
      return { finished: counts.succeeded + counts.failed, queued: counts.queued, imageBytes, snapshot: summarize(snap), exportOnly: summarize(exp) };
    };
    const atCap = await measure(rounds);
    // Grow to one task short of what triggers archiving (archive batch: the service's default, cap / 4).
    const archiveAt = cap + Math.max(100, Math.floor(cap / 4));
    const beforeRounds = 3;
    // The rounds below finish `cycles` more tasks each.
    const grow = archiveAt - 1 - atCap.finished - beforeRounds * cycles;
    if (grow > 0) {
      await enqueueMany(q, grow);
      await finishMany(q, grow);
    }
    const beforeArchive = await measure(beforeRounds);
    return { liveCap: cap, atCap, beforeArchive, writesPerRound: cycles * 3 };
  } finally {
    await q.close();
  }
}

/**
 * A store whose journal holds `records` records after its last snapshot, left as a crash leaves it. The mix is
 * 60% enqueues, 20% claims, 20% completions.
 */
export async function buildUnsnapshottedJournal(dir: string, records: number): Promise<{ journalRecords: number }> {
  const q = await openQueue(dir, 'none', { snapshotAfterRecords: 1e9 });
  await createSessionAndQueue(q);
  const finished = Math.floor(records / 5);
  await enqueueMany(q, records - 2 * finished - 2);
  await finishMany(q, finished);
  const journalRecords = q.store.journalRecords;
  q.abandon();
  return { journalRecords };
}
