import type { Row, SqlDatabase, SqlValue } from '../store/sqlite';
import { type ReplayRows, bump, deleteTasks, kindOf, raiseSeqHigh } from './effectKinds';
import type { Effect } from './effects';

/**
 * Start-up replay of many records at once, with the same outcome as `applyEffect` on each in turn, but far fewer
 * statements: a task enqueued within the replay is kept as a row in memory while later records of the replay claim,
 * heartbeat and finish it, and is inserted once, in its final state, at the end; per-status counts and the
 * sequence high-water marks are summed and written once. Effects on rows that were already in the database run as
 * SQL, exactly as live. The checks `applyEffect` makes (a claim needs a queued task, a finish a running one, no
 * duplicate attempt) are made on the in-memory rows too, so a journal that does not fit still fails to replay.
 */
export class EffectBatch implements ReplayRows {
  readonly tasks = new Map<string, Row>();
  readonly attempts = new Map<string, Row[]>();
  /** Count changes by queue, then status. */
  private readonly counts = new Map<string, Map<string, number>>();
  private seqHigh = 0;

  constructor(readonly db: SqlDatabase) {}

  bump(queueId: string, status: string, delta: number): void {
    let byStatus = this.counts.get(queueId);
    if (byStatus === undefined) this.counts.set(queueId, (byStatus = new Map<string, number>()));
    byStatus.set(status, (byStatus.get(status) ?? 0) + delta);
  }

  noteSeq(seq: number): void {
    this.seqHigh = Math.max(this.seqHigh, seq);
  }

  pendingRunning(e: Effect & { id: string }): Row | undefined {
    const row = this.tasks.get(e.id);
    if (row && row['status'] !== 'running') throw new Error(`effect ${e.t} on ${e.id} changed 0 rows, expected 1`);
    return row;
  }

  endAttempt(id: string, n: number, at: number, outcome: string, error: string | null): void {
    for (const a of this.attempts.get(id) ?? []) {
      if (a['n'] === n) Object.assign(a, { ended_at: at, outcome, error });
    }
  }

  forget(ids: readonly string[], purge = false): void {
    const rest: string[] = [];
    for (const id of ids) {
      if (this.tasks.delete(id)) {
        this.attempts.delete(id);
        if (purge) this.db.run('DELETE FROM task_deps WHERE task_id = ?', [id]);
      } else rest.push(id);
    }
    deleteTasks(this.db, rest, purge);
  }

  apply(e: Effect): void {
    const kind = kindOf(e);
    // Kinds without a batch form (sessions, queues, plans) are rare, and no task row depends on them.
    if (kind.batch) kind.batch(this, e);
    else kind.apply(this.db, e);
  }

  /** Writes what was kept in memory. Must run in the same transaction as the `apply` calls. */
  finish(): void {
    const db = this.db;
    // Each row names only its non-null columns (the others are NULL by default): a queued task binds half as many
    // values. One statement per pattern of present columns; there are only a few (queued, running, finished …).
    // Consecutive rows of the same pattern go ROWS_PER_INSERT to a statement (one step for several rows); the rows
    // are inserted in the same order either way.
    const inserts = new Map<number, [single: string, multi: string]>();
    let runMask = -1;
    let runRows = 0;
    let runValues: SqlValue[] = [];
    const flush = () => {
      if (runRows === 0) return;
      let sql = inserts.get(runMask);
      if (sql === undefined) {
        const cols = TASK_COLUMNS.filter((_c, i) => Math.floor(runMask / BIT[i]!) % 2 === 1);
        const row = `(${cols.map(() => '?').join(', ')})`;
        // OR FAIL: the checks are the same, but SQLite keeps no statement journal (a copy of every page the insert
        // touches, so that a failing statement can be undone on its own). Nothing here is undone on its own: any
        // failure rolls back the whole replay transaction.
        const head = `INSERT OR FAIL INTO tasks(${cols.join(', ')}) VALUES `;
        sql = [head + row, head + Array<string>(ROWS_PER_INSERT).fill(row).join(', ')];
        inserts.set(runMask, sql);
      }
      if (runRows === ROWS_PER_INSERT) {
        db.run(sql[1], runValues);
      } else {
        // A short run: row by row (no statement for every length).
        const per = runValues.length / runRows;
        for (let i = 0; i < runRows; i++) db.run(sql[0], runValues.slice(i * per, (i + 1) * per));
      }
      runRows = 0;
      runValues = [];
    };
    for (const r of this.tasks.values()) {
      let mask = 0;
      for (let i = 0; i < TASK_COLUMNS.length; i++) {
        const v = r[TASK_COLUMNS[i]!];
        if (v !== null && v !== undefined && !(v === 0 && ZERO_BY_DEFAULT[i])) mask += BIT[i]!;
      }
      if (mask !== runMask || runRows === ROWS_PER_INSERT) {
        flush();
        runMask = mask;
      }
      for (let i = 0; i < TASK_COLUMNS.length; i++) {
        const v = r[TASK_COLUMNS[i]!];
        if (v !== null && v !== undefined && !(v === 0 && ZERO_BY_DEFAULT[i])) runValues.push(v);
      }
      runRows++;
    }
    flush();
    // Attempts are keyed by (task_id, n) without a rowid: inserted in key order, each goes at the end of the tree
    // (pages filled in turn) rather than at a random place in it. The order changes nothing but the speed.
    const attemptKeys = [...this.attempts.keys()].sort();
    const attemptRow = '(?, ?, ?, ?, ?, ?, ?, ?)';
    const attemptHead = 'INSERT INTO attempts(task_id, n, lease, worker, started_at, ended_at, outcome, error) VALUES ';
    const attemptsMulti = attemptHead + Array<string>(ROWS_PER_INSERT).fill(attemptRow).join(', ');
    let attemptValues: SqlValue[] = [];
    for (const id of attemptKeys) {
      for (const a of this.attempts.get(id)!) {
        attemptValues.push(
          a['task_id'] ?? null,
          a['n'] ?? null,
          a['lease'] ?? null,
          a['worker'] ?? null,
          a['started_at'] ?? null,
          a['ended_at'] ?? null,
          a['outcome'] ?? null,
          a['error'] ?? null,
        );
        if (attemptValues.length === 8 * ROWS_PER_INSERT) {
          db.run(attemptsMulti, attemptValues);
          attemptValues = [];
        }
      }
    }
    for (let i = 0; i < attemptValues.length; i += 8) db.run(attemptHead + attemptRow, attemptValues.slice(i, i + 8));
    for (const [queueId, byStatus] of this.counts) {
      // Also when the sum is 0: applied one by one, the bumps would have created the row.
      for (const [status, n] of byStatus) bump(db, queueId, status, n);
    }
    if (this.seqHigh > 0) raiseSeqHigh(db, this.seqHigh);
    this.tasks.clear();
    this.attempts.clear();
    this.counts.clear();
  }
}

/** Rows per INSERT statement in EffectBatch.finish. */
const ROWS_PER_INSERT = 8;

const TASK_COLUMNS = [
  'seq',
  'id',
  'session_id',
  'queue_id',
  'tool',
  'task_class',
  'prompt',
  'payload',
  'status',
  'priority',
  'timeout_s',
  'attempt',
  'worker',
  'lease',
  'created_at',
  'started_at',
  'heartbeat_at',
  'finished_at',
  'stale_at',
  'summary',
  'data',
  'error',
  'stdout',
  'stderr',
  'usage',
  'retry_of',
  'plan_id',
  'plan_key',
  'deps',
  'waiting',
  'not_before',
  'idem_key',
  'change',
  'pattern',
  'merge_group',
  'validation',
  'validates',
] as const;

/**
 * Each column's bit in a row's mask of present columns. Powers of two as doubles, not `1 << i`: there are more than
 * 32 columns, and a 32-bit shift wraps (1 << 32 is 1), which made two patterns share one statement.
 */
const BIT: readonly number[] = TASK_COLUMNS.map((_c, i) => 2 ** i);

/** Columns whose default is 0 (NOT NULL DEFAULT 0): a row leaves them out at 0, as it leaves out its NULLs. */
const ZERO_BY_DEFAULT: readonly boolean[] = TASK_COLUMNS.map((c) => c === 'deps' || c === 'waiting' || c === 'attempt' || c === 'priority');
