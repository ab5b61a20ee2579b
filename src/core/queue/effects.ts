import type { Row, SqlDatabase, SqlValue } from '../store/sqlite';
import type { TaskStatus } from '../model';

/*
 * Effects are what the journal records: the resolved outcome of a mutation (ids chosen, times fixed, the task a claim
 * picked). The live operation and start-up replay both go through `applyEffect`, so replay does exactly what the
 * live path did. Field names are short because every acknowledged mutation writes one of these to disk.
 */

export interface TaskRowInsert {
  /** FIFO position; never reused, even after the task with the highest seq is archived or purged. */
  seq: number;
  id: string;
  sessionId: string;
  queueId: string;
  tool: string;
  taskClass: string;
  prompt: string | null;
  payload: string | null;
  priority: number;
  timeoutS: number;
  at: number;
  retryOf: string | null;
  /** The plan the task came from and its name in it. */
  planId?: string;
  planKey?: string;
  /** Tasks it waits on, and how many of them had not succeeded when it was enqueued. */
  after?: string[];
  waiting?: number;
}

export interface ChunkMeta {
  id: number;
  file: string;
  count: number;
  minSeq: number;
  maxSeq: number;
  minFinishedAt: number;
  maxFinishedAt: number;
  bytes: number;
  crc: number;
  /** Bloom filter of the chunk's task ids, base64. */
  bloom: string;
  at: number;
}

export type Effect =
  | { t: 'session.create'; id: string; name: string; description: string; at: number }
  | { t: 'session.end'; id: string; at: number }
  | {
      t: 'queue.create';
      id: string;
      sessionId: string;
      name: string;
      instructions: string;
      workdir: string | null;
      maxWorkers: number;
      maxAttempts?: number | null;
      at: number;
    }
  | { t: 'queue.end'; id: string; at: number }
  /** A paused queue hands out no tasks; `until` (ms) ends the pause by itself, null pauses until resumed. */
  | { t: 'queue.pause'; id: string; at: number; until: number | null; reason: string | null }
  | { t: 'queue.resume'; id: string; at: number }
  /** A plan applied (or applied again): its record; its new tasks are task.enqueue effects of the same change. */
  | { t: 'plan.apply'; id: string; description: string; file: string | null; at: number; tasks: number }
  /** The agent thread/session a queue's tasks continue (Codex thread id, Claude session id); null clears it. */
  | { t: 'queue.agent'; id: string; codexThreadId?: string | null; claudeSessionId?: string | null }
  | ({ t: 'task.enqueue' } & TaskRowInsert)
  | { t: 'task.claim'; id: string; queueId: string; lease: string; worker: string | null; attempt: number; at: number }
  | { t: 'task.heartbeat'; id: string; at: number }
  | { t: 'task.stale'; id: string; at: number }
  | {
      t: 'task.finish';
      id: string;
      queueId: string;
      attempt: number;
      status: 'succeeded' | 'failed';
      at: number;
      summary: string | null;
      data: string | null;
      error: string | null;
      stdout: string | null;
      stderr: string | null;
      usage: string | null;
      /** Tasks waiting on this one that it no longer holds up (it succeeded): their waiting count goes down by one. */
      release?: string[];
    }
  /**
   * A running task goes back to the queue: after a failed attempt that will be retried (not before `notBefore`), or
   * released unfailed because the agent hit a usage/rate limit. The attempt ends with that outcome and error.
   */
  | {
      t: 'task.return';
      id: string;
      queueId: string;
      attempt: number;
      outcome: 'failed' | 'released';
      at: number;
      notBefore: number | null;
      error: string;
      data: string | null;
      stdout: string | null;
      stderr: string | null;
      usage: string | null;
    }
  | { t: 'archive.add'; chunk: ChunkMeta; ids: string[] }
  | {
      t: 'purge';
      /** Live tasks removed. */
      ids: string[];
      /** Archive chunks removed (their files are deleted once this is durable). */
      dropChunks: number[];
      /** Chunks rewritten without their purged tasks: the old chunk id and its replacement. */
      replaceChunks: { old: number; chunk: ChunkMeta }[];
      /** How many tasks left each (queue, status) count, live and archived together. */
      counts: [queueId: string, status: TaskStatus, n: number][];
    };

function bump(db: SqlDatabase, queueId: string, status: string, delta: number): void {
  db.run('INSERT INTO queue_counts(queue_id, status, n) VALUES (?, ?, ?) ON CONFLICT(queue_id, status) DO UPDATE SET n = n + excluded.n', [
    queueId,
    status,
    delta,
  ]);
}

/** Moves one task's count from one status to another: one statement instead of two bumps. */
function move(db: SqlDatabase, queueId: string, from: string, to: string): void {
  db.run(
    'INSERT INTO queue_counts(queue_id, status, n) VALUES (?, ?, -1), (?, ?, 1) ON CONFLICT(queue_id, status) DO UPDATE SET n = n + excluded.n',
    [queueId, from, queueId, to],
  );
}

function insertChunk(db: SqlDatabase, c: ChunkMeta): void {
  db.run(
    'INSERT INTO archive_chunks(id, file, count, min_seq, max_seq, min_finished_at, max_finished_at, bytes, crc, bloom, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)',
    [c.id, c.file, c.count, c.minSeq, c.maxSeq, c.minFinishedAt, c.maxFinishedAt, c.bytes, c.crc, Buffer.from(c.bloom, 'base64'), c.at],
  );
  // Chunk ids (and so file names) are never reused, even after a purge drops the newest chunk.
  db.run("INSERT INTO meta(key, value) VALUES ('chunk_id_high', ?) ON CONFLICT(key) DO UPDATE SET value = MAX(value, excluded.value)", [c.id]);
}

function deleteTasks(db: SqlDatabase, ids: readonly string[], purge = false): void {
  for (const id of ids) {
    db.run('DELETE FROM tasks WHERE id = ?', [id]);
    db.run('DELETE FROM attempts WHERE task_id = ?', [id]);
    // An archived task keeps its edges (its detail still lists what it waited on); a purged one is gone.
    if (purge) db.run('DELETE FROM task_deps WHERE task_id = ?', [id]);
  }
}

/** The dependency edges an enqueue adds, and, for a requeue, the move of the failed task's waiters to the copy. */
function enqueueEdges(db: SqlDatabase, e: TaskRowInsert): void {
  for (const a of e.after ?? []) db.run('INSERT INTO task_deps(task_id, after_id) VALUES (?, ?)', [e.id, a]);
  if (e.retryOf !== null) {
    db.run('INSERT INTO requeues(original_id, new_id) VALUES (?, ?)', [e.retryOf, e.id]);
    db.run('UPDATE task_deps SET after_id = ? WHERE after_id = ?', [e.id, e.retryOf]);
  }
}

function releaseWaiters(db: SqlDatabase, ids: readonly string[]): void {
  for (const id of ids) {
    db.run("UPDATE tasks SET waiting = waiting - 1 WHERE id = ? AND status = 'queued' AND waiting > 0", [id]);
    if (db.changes() !== 1) throw new Error(`effect task.finish releases ${id}, which is not a queued task waiting on others`);
  }
}

const RETURN_SQL = `UPDATE tasks SET status = 'queued', lease = NULL, worker = NULL, started_at = NULL, heartbeat_at = NULL, stale_at = NULL,
  not_before = ?, error = ?, data = ?, stdout = ?, stderr = ?, usage = ? WHERE id = ? AND status = 'running'`;

/** Applies one effect. Throws when the effect does not fit the database (a bug, or a damaged journal on replay). */
export function applyEffect(db: SqlDatabase, e: Effect): void {
  switch (e.t) {
    case 'session.create':
      db.run("INSERT INTO sessions(id, name, description, status, created_at) VALUES (?, ?, ?, 'active', ?)", [e.id, e.name, e.description, e.at]);
      return;
    case 'session.end':
      db.run("UPDATE sessions SET status = 'ended', ended_at = ? WHERE id = ?", [e.at, e.id]);
      return expectChanged(db, e);
    case 'queue.create':
      db.run(
        "INSERT INTO queues(id, session_id, name, instructions, workdir, status, max_workers, max_attempts, created_at) VALUES (?, ?, ?, ?, ?, 'active', ?, ?, ?)",
        [e.id, e.sessionId, e.name, e.instructions, e.workdir, e.maxWorkers, e.maxAttempts ?? null, e.at],
      );
      return;
    case 'queue.pause':
      db.run('UPDATE queues SET paused_at = ?, paused_until = ?, pause_reason = ? WHERE id = ?', [e.at, e.until, e.reason, e.id]);
      return expectChanged(db, e);
    case 'queue.resume':
      db.run('UPDATE queues SET paused_at = NULL, paused_until = NULL, pause_reason = NULL WHERE id = ?', [e.id]);
      return expectChanged(db, e);
    case 'plan.apply':
      db.run(
        'INSERT INTO plans(id, description, file, created_at, applied_at, tasks) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET description = excluded.description, file = excluded.file, applied_at = excluded.applied_at, tasks = plans.tasks + excluded.tasks',
        [e.id, e.description, e.file, e.at, e.at, e.tasks],
      );
      return;
    case 'queue.end':
      db.run("UPDATE queues SET status = 'ended', ended_at = ? WHERE id = ?", [e.at, e.id]);
      return expectChanged(db, e);
    case 'queue.agent':
      if (e.codexThreadId !== undefined) db.run('UPDATE queues SET codex_thread_id = ? WHERE id = ?', [e.codexThreadId, e.id]);
      if (e.claudeSessionId !== undefined) db.run('UPDATE queues SET claude_session_id = ? WHERE id = ?', [e.claudeSessionId, e.id]);
      return expectChanged(db, e);
    case 'task.enqueue':
      if (e.after === undefined && e.planId === undefined) {
        db.run(
          `INSERT INTO tasks(seq, id, session_id, queue_id, tool, task_class, prompt, payload, status, priority, timeout_s, created_at, retry_of)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'queued', ?, ?, ?, ?)`,
          [e.seq, e.id, e.sessionId, e.queueId, e.tool, e.taskClass, e.prompt, e.payload, e.priority, e.timeoutS, e.at, e.retryOf],
        );
      } else {
        db.run(
          `INSERT INTO tasks(seq, id, session_id, queue_id, tool, task_class, prompt, payload, status, priority, timeout_s, created_at, retry_of, plan_id, plan_key, deps, waiting)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'queued', ?, ?, ?, ?, ?, ?, ?, ?)`,
          [
            e.seq, e.id, e.sessionId, e.queueId, e.tool, e.taskClass, e.prompt, e.payload, e.priority, e.timeoutS, e.at, e.retryOf,
            e.planId ?? null, e.planKey ?? null, e.after?.length ?? 0, e.waiting ?? 0,
          ],
        );
      }
      bump(db, e.queueId, 'queued', 1);
      db.run("INSERT INTO meta(key, value) VALUES ('task_seq_high', ?) ON CONFLICT(key) DO UPDATE SET value = MAX(value, excluded.value)", [e.seq]);
      enqueueEdges(db, e);
      return;
    case 'task.claim':
      db.run(
        "UPDATE tasks SET status = 'running', attempt = ?, worker = ?, lease = ?, started_at = ?, heartbeat_at = ?, stale_at = NULL WHERE id = ? AND status = 'queued'",
        [e.attempt, e.worker, e.lease, e.at, e.at, e.id],
      );
      expectChanged(db, e);
      db.run('INSERT INTO attempts(task_id, n, lease, worker, started_at) VALUES (?, ?, ?, ?, ?)', [e.id, e.attempt, e.lease, e.worker, e.at]);
      move(db, e.queueId, 'queued', 'running');
      return;
    case 'task.heartbeat':
      db.run("UPDATE tasks SET heartbeat_at = ? WHERE id = ? AND status = 'running'", [e.at, e.id]);
      return expectChanged(db, e);
    case 'task.stale':
      db.run("UPDATE tasks SET stale_at = ? WHERE id = ? AND status = 'running'", [e.at, e.id]);
      return expectChanged(db, e);
    case 'task.finish':
      db.run(
        `UPDATE tasks SET status = ?, finished_at = ?, lease = NULL, summary = ?, data = ?, error = ?, stdout = ?, stderr = ?, usage = ?
         WHERE id = ? AND status = 'running'`,
        [e.status, e.at, e.summary, e.data, e.error, e.stdout, e.stderr, e.usage, e.id],
      );
      expectChanged(db, e);
      db.run('UPDATE attempts SET ended_at = ?, outcome = ?, error = ? WHERE task_id = ? AND n = ?', [e.at, e.status, e.error, e.id, e.attempt]);
      move(db, e.queueId, 'running', e.status);
      if (e.release) releaseWaiters(db, e.release);
      return;
    case 'task.return':
      db.run(RETURN_SQL, [e.notBefore, e.error, e.data, e.stdout, e.stderr, e.usage, e.id]);
      expectChanged(db, e);
      db.run('UPDATE attempts SET ended_at = ?, outcome = ?, error = ? WHERE task_id = ? AND n = ?', [e.at, e.outcome, e.error, e.id, e.attempt]);
      move(db, e.queueId, 'running', 'queued');
      return;
    case 'archive.add':
      insertChunk(db, e.chunk);
      deleteTasks(db, e.ids);
      return;
    case 'purge':
      deleteTasks(db, e.ids, true);
      for (const id of e.dropChunks) db.run('DELETE FROM archive_chunks WHERE id = ?', [id]);
      for (const r of e.replaceChunks) {
        db.run('DELETE FROM archive_chunks WHERE id = ?', [r.old]);
        insertChunk(db, r.chunk);
      }
      for (const [queueId, status, n] of e.counts) bump(db, queueId, status, -n);
      return;
  }
}

function expectChanged(db: SqlDatabase, e: Effect): void {
  if (db.changes() !== 1) throw new Error(`effect ${e.t} on ${'id' in e ? e.id : '?'} changed ${db.changes()} rows, expected 1`);
}

/**
 * The task row as it is after `e` was applied to `before` (the full row as read before the change; not needed for an
 * enqueue, which inserts the whole row). It saves reading the row back after every write; the unit tests check that
 * it matches what the database holds, column for column.
 */
export function rowAfter(e: Effect & { t: 'task.enqueue' | 'task.claim' | 'task.finish' | 'task.return' }, before?: Row): Row {
  switch (e.t) {
    case 'task.enqueue':
      return {
        seq: e.seq,
        id: e.id,
        session_id: e.sessionId,
        queue_id: e.queueId,
        tool: e.tool,
        task_class: e.taskClass,
        prompt: e.prompt,
        payload: e.payload,
        status: 'queued',
        priority: e.priority,
        timeout_s: e.timeoutS,
        attempt: 0,
        worker: null,
        lease: null,
        created_at: e.at,
        started_at: null,
        heartbeat_at: null,
        finished_at: null,
        stale_at: null,
        summary: null,
        data: null,
        error: null,
        stdout: null,
        stderr: null,
        usage: null,
        retry_of: e.retryOf,
        plan_id: e.planId ?? null,
        plan_key: e.planKey ?? null,
        deps: e.after?.length ?? 0,
        waiting: e.waiting ?? 0,
        not_before: null,
      };
    case 'task.claim':
      return { ...need(before, e), status: 'running', attempt: e.attempt, worker: e.worker, lease: e.lease, started_at: e.at, heartbeat_at: e.at, stale_at: null };
    case 'task.finish':
      return {
        ...need(before, e),
        status: e.status,
        finished_at: e.at,
        lease: null,
        summary: e.summary,
        data: e.data,
        error: e.error,
        stdout: e.stdout,
        stderr: e.stderr,
        usage: e.usage,
      };
    case 'task.return':
      return {
        ...need(before, e),
        status: 'queued',
        lease: null,
        worker: null,
        started_at: null,
        heartbeat_at: null,
        stale_at: null,
        not_before: e.notBefore,
        error: e.error,
        data: e.data,
        stdout: e.stdout,
        stderr: e.stderr,
        usage: e.usage,
      };
  }
}

function need(row: Row | undefined, e: Effect): Row {
  if (!row) throw new Error(`internal: ${e.t} needs the row as it was before`);
  return row;
}

export function applyEffects(db: SqlDatabase, effects: readonly Effect[]): void {
  for (const e of effects) applyEffect(db, e);
}

/**
 * Start-up replay of many records at once, with the same outcome as `applyEffect` on each in turn, but far fewer
 * statements: a task enqueued within the replay is kept as a row in memory while later records of the replay claim,
 * heartbeat and finish it, and is inserted once, in its final state, at the end; per-status counts and the
 * sequence high-water marks are summed and written once. Effects on rows that were already in the database run as
 * SQL, exactly as live. The checks `applyEffect` makes (a claim needs a queued task, a finish a running one, no
 * duplicate attempt) are made on the in-memory rows too, so a journal that does not fit still fails to replay.
 */
export class EffectBatch {
  private readonly tasks = new Map<string, Row>();
  private readonly attempts = new Map<string, Row[]>();
  /** Count changes by queue, then status. */
  private readonly counts = new Map<string, Map<string, number>>();
  private seqHigh = 0;

  constructor(private readonly db: SqlDatabase) {}

  private bump(queueId: string, status: string, delta: number): void {
    let byStatus = this.counts.get(queueId);
    if (byStatus === undefined) this.counts.set(queueId, (byStatus = new Map<string, number>()));
    byStatus.set(status, (byStatus.get(status) ?? 0) + delta);
  }

  private pendingRunning(e: Effect & { id: string }): Row | undefined {
    const row = this.tasks.get(e.id);
    if (row && row['status'] !== 'running') throw new Error(`effect ${e.t} on ${e.id} changed 0 rows, expected 1`);
    return row;
  }

  private endAttempt(id: string, n: number, at: number, outcome: string, error: string | null): void {
    for (const a of this.attempts.get(id) ?? []) {
      if (a['n'] === n) Object.assign(a, { ended_at: at, outcome, error });
    }
  }

  private forget(ids: readonly string[], purge = false): void {
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
    const db = this.db;
    switch (e.t) {
      case 'task.enqueue': {
        if (this.tasks.has(e.id)) throw new Error(`UNIQUE constraint failed: tasks.id (${e.id} enqueued twice)`);
        this.tasks.set(e.id, rowAfter(e));
        this.bump(e.queueId, 'queued', 1);
        this.seqHigh = Math.max(this.seqHigh, e.seq);
        enqueueEdges(db, e);
        return;
      }
      case 'task.claim': {
        const row = this.tasks.get(e.id);
        if (row) {
          if (row['status'] !== 'queued') throw new Error(`effect ${e.t} on ${e.id} changed 0 rows, expected 1`);
          // The batch owns its rows: change them in place (what rowAfter returns, without a copy per record).
          row['status'] = 'running';
          row['attempt'] = e.attempt;
          row['worker'] = e.worker;
          row['lease'] = e.lease;
          row['started_at'] = e.at;
          row['heartbeat_at'] = e.at;
          row['stale_at'] = null;
          const list = this.attempts.get(e.id) ?? [];
          if (list.some((a) => a['n'] === e.attempt)) throw new Error(`UNIQUE constraint failed: attempts.task_id, attempts.n (${e.id} attempt ${e.attempt})`);
          list.push({ task_id: e.id, n: e.attempt, lease: e.lease, worker: e.worker, started_at: e.at, ended_at: null, outcome: 'running', error: null });
          this.attempts.set(e.id, list);
        } else {
          db.run(
            "UPDATE tasks SET status = 'running', attempt = ?, worker = ?, lease = ?, started_at = ?, heartbeat_at = ?, stale_at = NULL WHERE id = ? AND status = 'queued'",
            [e.attempt, e.worker, e.lease, e.at, e.at, e.id],
          );
          expectChanged(db, e);
          db.run('INSERT INTO attempts(task_id, n, lease, worker, started_at) VALUES (?, ?, ?, ?, ?)', [e.id, e.attempt, e.lease, e.worker, e.at]);
        }
        this.bump(e.queueId, 'queued', -1);
        this.bump(e.queueId, 'running', 1);
        return;
      }
      case 'task.heartbeat':
      case 'task.stale': {
        const row = this.pendingRunning(e);
        if (row) row[e.t === 'task.heartbeat' ? 'heartbeat_at' : 'stale_at'] = e.at;
        else applyEffect(db, e);
        return;
      }
      case 'task.finish': {
        const row = this.pendingRunning(e);
        if (row) {
          // What rowAfter(e, row) gives, in place.
          row['status'] = e.status;
          row['finished_at'] = e.at;
          row['lease'] = null;
          row['summary'] = e.summary;
          row['data'] = e.data;
          row['error'] = e.error;
          row['stdout'] = e.stdout;
          row['stderr'] = e.stderr;
          row['usage'] = e.usage;
          this.endAttempt(e.id, e.attempt, e.at, e.status, e.error);
        } else {
          db.run(
            `UPDATE tasks SET status = ?, finished_at = ?, lease = NULL, summary = ?, data = ?, error = ?, stdout = ?, stderr = ?, usage = ?
             WHERE id = ? AND status = 'running'`,
            [e.status, e.at, e.summary, e.data, e.error, e.stdout, e.stderr, e.usage, e.id],
          );
          expectChanged(db, e);
          db.run('UPDATE attempts SET ended_at = ?, outcome = ?, error = ? WHERE task_id = ? AND n = ?', [e.at, e.status, e.error, e.id, e.attempt]);
        }
        this.bump(e.queueId, 'running', -1);
        this.bump(e.queueId, e.status, 1);
        for (const id of e.release ?? []) {
          const waiter = this.tasks.get(id);
          if (!waiter) {
            releaseWaiters(db, [id]);
            continue;
          }
          if (waiter['status'] !== 'queued' || !((waiter['waiting'] as number) > 0)) throw new Error(`effect task.finish releases ${id}, which is not a queued task waiting on others`);
          waiter['waiting'] = (waiter['waiting'] as number) - 1;
        }
        return;
      }
      case 'task.return': {
        const row = this.pendingRunning(e);
        if (row) {
          Object.assign(row, rowAfter(e, row));
          this.endAttempt(e.id, e.attempt, e.at, e.outcome, e.error);
        } else {
          applyEffect(db, e);
          return;
        }
        this.bump(e.queueId, 'running', -1);
        this.bump(e.queueId, 'queued', 1);
        return;
      }
      case 'archive.add':
        insertChunk(db, e.chunk);
        this.forget(e.ids);
        return;
      case 'purge':
        this.forget(e.ids, true);
        for (const id of e.dropChunks) db.run('DELETE FROM archive_chunks WHERE id = ?', [id]);
        for (const r of e.replaceChunks) {
          db.run('DELETE FROM archive_chunks WHERE id = ?', [r.old]);
          insertChunk(db, r.chunk);
        }
        for (const [queueId, status, n] of e.counts) this.bump(queueId, status, -n);
        return;
      default:
        // Sessions and queues: rare, and no task row depends on them.
        applyEffect(db, e);
    }
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
        const cols = TASK_COLUMNS.filter((_c, i) => (runMask & (1 << i)) !== 0);
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
        if (v !== null && v !== undefined && !(v === 0 && ZERO_BY_DEFAULT[i])) mask |= 1 << i;
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
    if (this.seqHigh > 0) {
      db.run("INSERT INTO meta(key, value) VALUES ('task_seq_high', ?) ON CONFLICT(key) DO UPDATE SET value = MAX(value, excluded.value)", [this.seqHigh]);
    }
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
] as const;

/** Columns whose default is 0 (NOT NULL DEFAULT 0): a row leaves them out at 0, as it leaves out its NULLs. */
const ZERO_BY_DEFAULT: readonly boolean[] = TASK_COLUMNS.map((c) => c === 'deps' || c === 'waiting' || c === 'attempt' || c === 'priority');
