import { defaultConfig } from '../../src/core/config';
import type { Claim } from '../../src/core/model';
import { QueueService, type OpenQueueOptions } from '../../src/core/queue/service';
import type { Durability } from '../../src/core/store/journal';
import * as fs from 'node:fs';
import * as path from 'node:path';
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
  /**
   * With a durable store: one append + fdatasync of a probe file beside the journal, timed in every iteration. The
   * disk's sync latency swings with whatever else the machine syncs, so the durable numbers are judged against
   * this, measured in the same moments, rather than against a figure taken minutes earlier.
   */
  fdatasyncDuring: Summary | null;
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

/** Operations per bulk call when building states: one transaction and one journal record each. */
const BULK = 250;

/**
 * Enqueues `count` tasks through the public bulk method (QueueService.enqueueMany): the same tasks and effects as
 * `count` enqueue calls, in transactions of BULK tasks. For building states fast; timed operations stay single calls,
 * and the cold-start journal is built with single calls so that its records are one operation each.
 */
export async function enqueueBulk(q: QueueService, count: number): Promise<void> {
  for (let done = 0; done < count; done += BULK) {
    const k = Math.min(BULK, count - done);
    await q.enqueueMany(Array.from({ length: k }, () => ({ queue: QUEUE, tool: TOOL, prompt: PROMPT })));
  }
}

/** Claims and completes `count` tasks through claimMany / completeMany, BULK at a time. */
export async function finishBulk(q: QueueService, count: number): Promise<void> {
  for (let done = 0; done < count; done += BULK) {
    const k = Math.min(BULK, count - done);
    const claims = await q.claimMany({ queue: QUEUE, worker: 'builder' }, k);
    if (claims.length !== k) throw new Error('bench: the queue ran dry; the state was built too small');
    await q.completeMany(claims.map((c) => ({ task: c.task.id, lease: c.lease, summary: SUMMARY })));
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
  await enqueueBulk(q, n);
  await finishBulk(q, Math.round(n * finishedShare));
  await q.close();
}

/** Something the latency loop can time: one SparkQ store or one better-sqlite3 database, at one size. */
export interface LatencySubject {
  readonly label: string;
  /** `warmup` untimed iterations, then `iterations` timed enqueue → claim → complete, then list-100 `lists` times. */
  run(iterations: number, lists: number, warmup: number): Promise<void>;
  close(): Promise<void>;
}

/**
 * Times enqueue → claim → complete, one caller, one at a time (so the queue length stays where it was built), and
 * list-100 (the Tasks view's first page). `run` can be called many times, interleaved with other subjects, so that
 * every size and implementation sees the same moments of the machine; samples accumulate.
 */
export class SparkqSubject implements LatencySubject {
  private readonly total = { enqueue: [] as number[], claim: [] as number[], complete: [] as number[], list100: [] as number[] };
  private readonly sync = { enqueue: [] as number[], claim: [] as number[], complete: [] as number[] };
  private readonly fsyncs: number[] = [];
  private readonly probeRecord = Buffer.alloc(256, 0x2a);

  private constructor(
    readonly label: string,
    private readonly q: QueueService,
    private readonly probeFile: string,
    private readonly probe: number | null,
  ) {}

  static async open(label: string, dir: string, durability: Durability): Promise<SparkqSubject> {
    const q = await openQueue(dir, durability);
    const probeFile = path.join(dir, 'fdatasync-probe.bin');
    return new SparkqSubject(label, q, probeFile, durability === 'full' ? fs.openSync(probeFile, 'a', 0o600) : null);
  }

  async run(iterations: number, lists: number, warmup: number): Promise<void> {
    const q = this.q;
    for (let i = 0; i < warmup + iterations; i++) {
      const keep = i >= warmup;
      if (this.probe !== null) {
        fs.writeSync(this.probe, this.probeRecord);
        const ts = now();
        fs.fdatasyncSync(this.probe);
        if (keep) this.fsyncs.push(now() - ts);
      }
      let t0 = now();
      const pe = q.enqueue({ queue: QUEUE, tool: TOOL, prompt: PROMPT });
      let t1 = now();
      await pe;
      let t2 = now();
      if (keep) {
        this.sync.enqueue.push(t1 - t0);
        this.total.enqueue.push(t2 - t0);
      }

      t0 = now();
      const pc = q.claim({ queue: QUEUE, worker: 'bench-worker' });
      t1 = now();
      const c = mustClaim(await pc);
      t2 = now();
      if (keep) {
        this.sync.claim.push(t1 - t0);
        this.total.claim.push(t2 - t0);
      }

      t0 = now();
      const pf = complete(q, c);
      t1 = now();
      await pf;
      t2 = now();
      if (keep) {
        this.sync.complete.push(t1 - t0);
        this.total.complete.push(t2 - t0);
      }
    }
    for (let i = 0; i < Math.min(warmup, 2) + lists; i++) {
      const t0 = now();
      const page = q.listTasks({ queue: QUEUE, limit: 100 });
      const t1 = now();
      if (page.tasks.length !== 100) throw new Error(`bench: list returned ${page.tasks.length} tasks, expected 100`);
      if (i >= Math.min(warmup, 2)) this.total.list100.push(t1 - t0);
    }
  }

  result(): OpMeasurement {
    const t = this.total;
    return {
      latency: { enqueue: summarize(t.enqueue), claim: summarize(t.claim), complete: summarize(t.complete), list100: summarize(t.list100) },
      fdatasyncDuring: this.probe !== null ? summarize(this.fsyncs) : null,
      syncPart: { enqueue: summarize(this.sync.enqueue), claim: summarize(this.sync.claim), complete: summarize(this.sync.complete) },
      journalRecordsAfter: this.q.store.journalRecords,
    };
  }

  async close(): Promise<void> {
    if (this.probe !== null) {
      fs.closeSync(this.probe);
      fs.rmSync(this.probeFile, { force: true });
    }
    await this.q.close();
  }
}

/**
 * Runs the subjects round-robin, `rounds` times, each round `iterations / rounds` timed iterations (after a short
 * warm-up that re-fills caches another subject evicted). The starting subject rotates every round.
 */
export async function interleave(subjects: readonly LatencySubject[], rounds: number, iterations: number, lists: number, warmup: number): Promise<void> {
  const perRound = Math.max(1, Math.round(iterations / rounds));
  const listsPerRound = Math.max(1, Math.round(lists / rounds));
  for (let r = 0; r < rounds; r++) {
    gc();
    for (let k = 0; k < subjects.length; k++) {
      const subject = subjects[(r + k) % subjects.length]!;
      await subject.run(perRound, listsPerRound, warmup);
    }
  }
}

export interface SnapshotPoint {
  finished: number;
  queued: number;
  imageBytes: number;
  snapshot: Summary;
  /** Each snapshot's time, in the order taken (ms). */
  runs: number[];
  /**
   * The snapshots taken before the timed ones (ms), not in `snapshot`: the first two after opening write a new file and
   * remove an old one; from the third on the store writes each snapshot in the file the one before last was in (see
   * StoreOptions.spareAboveBytes), as a long-running owner does.
   */
  warmup: number[];
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
  await enqueueBulk(build, cap + queued);
  await finishBulk(build, cap);
  await build.close();

  const cycles = Math.max(1, Math.ceil(writesPerRound / 3));
  const q = await openQueue(dir, 'full');
  try {
    const measure = async (n: number, warm: number): Promise<SnapshotPoint> => {
      const snap: number[] = [];
      const exp: number[] = [];
      const warmup: number[] = [];
      let imageBytes = 0;
      for (let r = -warm; r < n; r++) {
        // Each cycle enqueues one task and finishes one, so the queued count stays put and finished grows slowly.
        for (let w = 0; w < cycles; w++) {
          await q.enqueue({ queue: QUEUE, tool: TOOL, prompt: PROMPT });
          await complete(q, mustClaim(await q.claim({ queue: QUEUE, worker: 'bench-worker' })));
        }
        gc();
        const t0 = now();
        await q.store.snapshot();
        (r < 0 ? warmup : snap).push(now() - t0);
        if (r < 0) continue;
        const t1 = now();
        imageBytes = q.store.db.export().length;
        exp.push(now() - t1);
      }
      const counts = q.counts();
      return { finished: counts.succeeded + counts.failed, queued: counts.queued, imageBytes, snapshot: summarize(snap), runs: snap, warmup, exportOnly: summarize(exp) };
    };
    // Two snapshots first: the store's steady state (a spare file to write the next snapshot in) begins at the third.
    const warm = 2;
    const atCap = await measure(rounds, warm);
    // Grow to one task short of what triggers archiving (archive batch: the service's default, cap / 4).
    const archiveAt = cap + Math.max(100, Math.floor(cap / 4));
    const beforeRounds = 3;
    // The rounds below finish `cycles` more tasks each.
    const grow = archiveAt - 1 - atCap.finished - beforeRounds * cycles;
    if (grow > 0) {
      await enqueueBulk(q, grow);
      await finishBulk(q, grow);
    }
    const beforeArchive = await measure(beforeRounds, 0);
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
