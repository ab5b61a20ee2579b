import { SparkqError } from '../errors';
import type { SweepResult } from '../events';
import type { TaskStatus } from '../model';
import type { Row } from '../store/sqlite';
import type { AttemptCommands } from './attempts';
import type { ChunkMeta, Effect } from './effects';
import type { QueueHandle } from './handle';
import { autoFailedReason } from './rules';
import { PENDING_PREFIX } from './validation';

export interface MaintenanceOptions {
  /** Archive and snapshot by themselves after writes (default true). Tests turn it off and call `maintain()`. */
  autoMaintain?: boolean;
  /** How many finished tasks beyond the live cap to gather before writing an archive chunk (default cap / 4). */
  archiveBatch?: number;
}

/**
 * What time and growth call for: staleness and auto-failing (sweep), purging old finished tasks, and maintenance
 * (archiving finished tasks beyond the live cap, snapshots when the journal has grown).
 */
export class Timekeeping {
  private maintenanceScheduled = false;
  private maintaining: Promise<void> | null = null;

  constructor(
    private readonly h: QueueHandle,
    private readonly attempts: AttemptCommands,
    private readonly opts: MaintenanceOptions,
  ) {}

  /** Flags running tasks past 1× their timeout as stale, and fails those past 2×. */
  async sweep(): Promise<SweepResult> {
    return this.h.commit(() => {
      const now = this.h.clock.now();
      const effects: Effect[] = [];
      // A validation task failed here fails its task's round, which may requeue that task (a new seq each).
      let nextSeq = this.h.nextTaskSeq();
      const seqs = () => nextSeq++;
      const staled: string[] = [];
      const failed: string[] = [];
      for (const row of this.h.db.all("SELECT * FROM tasks WHERE status = 'running'")) {
        const ran = now - (row['started_at'] as number);
        const timeoutMs = (row['timeout_s'] as number) * 1000;
        if (ran > 2 * timeoutMs) {
          const effect = this.attempts.failOrRetry(row, autoFailedReason(row['timeout_s'] as number, ran));
          effects.push(effect, ...this.attempts.afterFailure(row, effect, seqs));
          failed.push(row['id'] as string);
        } else if (ran > timeoutMs && row['stale_at'] === null) {
          effects.push({ t: 'task.stale', id: row['id'] as string, at: now });
          staled.push(row['id'] as string);
        }
      }
      // Pauses whose time is up end by themselves (claims already ignore them); this records it for everyone.
      for (const q of this.h.db.all<{ id: string }>('SELECT id FROM queues WHERE paused_until IS NOT NULL AND paused_until <= ?', [now])) {
        effects.push({ t: 'queue.resume', id: q.id, at: now });
      }
      return { effects, result: () => ({ staled: staled.map((id) => this.h.task(id)), failed: failed.map((id) => this.h.task(id)) }) };
    });
  }

  /** Deletes finished tasks that finished more than `olderThanDays` days ago, live and archived. */
  async purge(options: { olderThanDays: number }): Promise<{ purged: number }> {
    if (!Number.isFinite(options.olderThanDays) || options.olderThanDays < 0) {
      throw new SparkqError('invalid-input', `--older-than must be a number of days ≥ 0, not ${String(options.olderThanDays)}`);
    }
    const cutoff = this.h.clock.now() - options.olderThanDays * 86_400_000;
    const filesToRemove: string[] = [];
    const dropped: number[] = [];
    const purged = await this.h.commit(() => {
      const db = this.h.db;
      const counts = new Map<string, number>();
      const add = (queueId: string, status: string, n: number) => counts.set(`${queueId}\u0000${status}`, (counts.get(`${queueId}\u0000${status}`) ?? 0) + n);
      const ids: string[] = [];
      for (const r of db.all<{ id: string; queue_id: string; status: string }>('SELECT id, queue_id, status FROM tasks WHERE finished_at IS NOT NULL AND finished_at < ?', [cutoff])) {
        ids.push(r.id);
        add(r.queue_id, r.status, 1);
      }
      const dropChunks: number[] = [];
      const replaceChunks: { old: number; chunk: ChunkMeta }[] = [];
      let nextId = this.h.archive.nextChunkId();
      let archivedPurged = 0;
      for (const chunk of this.h.archive.chunks()) {
        if (chunk.min_finished_at >= cutoff) continue;
        const cdb = this.h.archive.open(chunk);
        for (const r of cdb.all<{ queue_id: string; status: string; n: number }>(
          'SELECT queue_id, status, count(*) AS n FROM tasks WHERE finished_at < ? GROUP BY queue_id, status',
          [cutoff],
        )) {
          add(r.queue_id, r.status, r.n);
          archivedPurged += r.n;
        }
        filesToRemove.push(chunk.file);
        dropped.push(chunk.id);
        if (chunk.max_finished_at < cutoff) {
          dropChunks.push(chunk.id);
        } else {
          const keep = cdb.all('SELECT * FROM tasks WHERE finished_at >= ?', [cutoff]);
          const keepAttempts = cdb.all('SELECT a.* FROM attempts a JOIN tasks t ON t.id = a.task_id WHERE t.finished_at >= ?', [cutoff]);
          replaceChunks.push({ old: chunk.id, chunk: this.h.archive.writeChunk(nextId++, keep, keepAttempts, this.h.clock.now()) });
        }
      }
      const effects: Effect[] =
        ids.length + dropChunks.length + replaceChunks.length > 0
          ? [{ t: 'purge', ids, dropChunks, replaceChunks, counts: [...counts].map(([k, n]) => [...(k.split('\u0000') as [string, TaskStatus]), n]) }]
          : [];
      return { effects, result: () => ids.length + archivedPurged };
    });
    for (const id of dropped) this.h.archive.forget(id);
    this.h.archive.removeFiles(filesToRemove);
    return { purged };
  }

  // ---- maintenance ---------------------------------------------------------------------------------------------

  private get liveCap(): number {
    return this.h.config.store.liveCap;
  }
  private get archiveBatch(): number {
    return this.opts.archiveBatch ?? Math.max(100, Math.floor(this.liveCap / 4));
  }

  get maintenanceDue(): boolean {
    return this.h.liveFinished >= this.liveCap + this.archiveBatch || this.h.store.needsSnapshot;
  }

  /** After each change: starts maintenance soon when it is due (unless the caller maintains by hand). */
  scheduleMaintenance(): void {
    if (this.opts.autoMaintain === false || !this.maintenanceDue) return;
    // A flush-off store answers without an event-loop turn, so a caller that keeps going on promises alone can keep
    // a setImmediate from ever running. Once archiving is a whole batch overdue, start it at once: the live set (and
    // with it memory and snapshot time) must stay bounded whoever the caller is.
    if (this.maintaining === null && !this.h.closed && this.h.liveFinished >= this.liveCap + 2 * this.archiveBatch) {
      void this.maintain().catch(() => undefined);
      return;
    }
    if (this.maintenanceScheduled) return;
    this.maintenanceScheduled = true;
    setImmediate(() => {
      this.maintenanceScheduled = false;
      if (!this.h.closed) void this.maintain().catch(() => undefined);
    });
  }

  /** Archives finished tasks beyond the live cap and takes a snapshot when the journal has grown. */
  maintain(): Promise<void> {
    this.maintaining ??= this.runMaintenance().finally(() => (this.maintaining = null));
    return this.maintaining;
  }

  private async runMaintenance(): Promise<void> {
    while (this.h.liveFinished >= this.liveCap + this.archiveBatch) {
      // Nothing to archive (every finished task waits for its validator): try again after the next change.
      if ((await this.archiveOldest()) === 0) break;
    }
    if (this.h.store.needsSnapshot) await this.h.store.snapshot();
  }

  private archiveOldest(): Promise<number> {
    return this.h.commit(() => {
      const db = this.h.db;
      // At most two batches per chunk, so a chunk (built in memory, then cached when read) stays small.
      const n = Math.min(this.h.liveFinished - this.liveCap, 2 * this.archiveBatch);
      // A succeeded task whose validator has not given its verdict stays live: the verdict changes it.
      const rows = db.all(
        "SELECT * FROM tasks WHERE finished_at IS NOT NULL AND NOT (status = 'succeeded' AND validation IS NOT NULL AND substr(validation, 1, ?) = ?) ORDER BY finished_at, seq LIMIT ?",
        [PENDING_PREFIX.length, PENDING_PREFIX, n],
      );
      if (rows.length === 0) return { effects: [], result: () => 0 };
      const ids = rows.map((r) => r['id'] as string);
      const attempts: Row[] = [];
      for (const id of ids) attempts.push(...db.all('SELECT * FROM attempts WHERE task_id = ?', [id]));
      const chunk = this.h.archive.writeChunk(this.h.archive.nextChunkId(), rows, attempts, this.h.clock.now());
      return { effects: [{ t: 'archive.add', chunk, ids }], result: () => ids.length };
    });
  }

  /** Waits for maintenance under way, if any, to end (its failure is its own). */
  async settle(): Promise<void> {
    if (this.maintaining) await this.maintaining.catch(() => undefined);
  }
}
