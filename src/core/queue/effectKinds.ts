import type { ChangeEvent } from '../events';
import type { Row, SqlDatabase, SqlValue } from '../store/sqlite';
import type { ChunkMeta, Effect, TaskRowInsert } from './effects';

/*
 * Each kind of effect, defined once: how it changes the database (live, and replay record by record), the task row
 * it produces (so a mutation answers without reading the row back), a replay batch, the queue's in-memory
 * bookkeeping (handle.ts), and which change events it causes. A new kind, or a change of a task's shape, is its type
 * in effects.ts and its entry here. The file is long on purpose: every kind, and the SQL and row changes the kinds
 * share, stay together so that each kind is read and changed in one place.
 */

/** What a replay batch (EffectBatch) offers an effect: the tasks enqueued within the replay, held in memory. */
export interface ReplayRows {
  readonly db: SqlDatabase;
  /** Rows of tasks enqueued within the replay, by id; each is inserted once, in its final state. */
  readonly tasks: Map<string, Row>;
  /** The attempts of those tasks. */
  readonly attempts: Map<string, Row[]>;
  /** Adds `delta` to a queue's count of a status (summed, written once). */
  bump(queueId: string, status: string, delta: number): void;
  /** Raises the highest task seq handed out. */
  noteSeq(seq: number): void;
  /** The in-memory row of a task the effect needs running (throws when it is not); undefined when the database holds it. */
  pendingRunning(e: Effect & { id: string }): Row | undefined;
  /** Ends attempt `n` of an in-memory task. */
  endAttempt(id: string, n: number, at: number, outcome: string, error: string | null): void;
  /** Removes tasks, from memory or from the database; `purge` also drops what they waited on. */
  forget(ids: readonly string[], purge?: boolean): void;
}

/** What a change does to the queue's in-memory bookkeeping, summed over its effects. */
export interface Tally {
  /** Change in the number of finished tasks that are live (not archived). */
  finished: number;
  /** Highest task seq enqueued (0: none). */
  seqHigh: number;
  /** A session or queue row changed: cached rows and names are no longer good. */
  names: boolean;
}

/** Finds a live task's queue id (for events of effects that do not carry it). */
export type QueueOf = (taskId: string) => string | undefined;

export interface EffectKind<E extends Effect> {
  /** Applies the effect to the database. Throws when it does not fit (a bug, or a damaged journal on replay). */
  apply(db: SqlDatabase, e: E): void;
  /** Applies it within a replay batch, with the same outcome; without this, the batch applies it to the database. */
  batch?(b: ReplayRows, e: E): void;
  /** The task row after the effect: changes `row` (the row before; a copy the caller owns) in place, or makes it. */
  row?(e: E, row: Row | undefined): Row;
  /** What it changes of the queue's in-memory bookkeeping; nothing when absent. */
  tally?(e: E, t: Tally): void;
  /** The change events it causes, once durable. */
  events(e: E, out: ChangeEvent[], queueOf: QueueOf): void;
}

type KindOf<T extends Effect['t']> = EffectKind<Extract<Effect, { t: T }>>;

// ---- SQL shared by several kinds -------------------------------------------------------------------------------

export function bump(db: SqlDatabase, queueId: string, status: string, delta: number): void {
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

/** Task seqs are never reused, even after the task with the highest seq is archived or purged. */
export function raiseSeqHigh(db: SqlDatabase, seq: number): void {
  db.run("INSERT INTO meta(key, value) VALUES ('task_seq_high', ?) ON CONFLICT(key) DO UPDATE SET value = MAX(value, excluded.value)", [seq]);
}

function insertChunk(db: SqlDatabase, c: ChunkMeta): void {
  db.run(
    'INSERT INTO archive_chunks(id, file, count, min_seq, max_seq, min_finished_at, max_finished_at, bytes, crc, bloom, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)',
    [c.id, c.file, c.count, c.minSeq, c.maxSeq, c.minFinishedAt, c.maxFinishedAt, c.bytes, c.crc, Buffer.from(c.bloom, 'base64'), c.at],
  );
  // Chunk ids (and so file names) are never reused, even after a purge drops the newest chunk.
  db.run("INSERT INTO meta(key, value) VALUES ('chunk_id_high', ?) ON CONFLICT(key) DO UPDATE SET value = MAX(value, excluded.value)", [c.id]);
}

/** The archive chunks a purge drops or rewrites without its tasks. */
function replaceChunks(db: SqlDatabase, e: Effect & { t: 'purge' }): void {
  for (const id of e.dropChunks) db.run('DELETE FROM archive_chunks WHERE id = ?', [id]);
  for (const r of e.replaceChunks) {
    db.run('DELETE FROM archive_chunks WHERE id = ?', [r.old]);
    insertChunk(db, r.chunk);
  }
}

export function deleteTasks(db: SqlDatabase, ids: readonly string[], purge = false): void {
  for (const id of ids) {
    db.run('DELETE FROM tasks WHERE id = ?', [id]);
    db.run('DELETE FROM attempts WHERE task_id = ?', [id]);
    // An archived task keeps its edges (its detail still lists what it waited on); a purged one is gone.
    if (purge) {
      db.run('DELETE FROM task_deps WHERE task_id = ?', [id]);
      db.run('DELETE FROM task_keys WHERE task_id = ?', [id]);
    }
  }
}

/** The dependency edges an enqueue adds, and, for a requeue, the move of the failed task's waiters to the copy. */
function enqueueEdges(db: SqlDatabase, e: TaskRowInsert): void {
  // OR REPLACE: a key left behind by a purged archived task is free again (see QueueCommands.keyed).
  if (e.key !== undefined) db.run('INSERT OR REPLACE INTO task_keys(queue_id, key, task_id) VALUES (?, ?, ?)', [e.queueId, e.key, e.id]);
  for (const a of e.after ?? []) db.run('INSERT INTO task_deps(task_id, after_id) VALUES (?, ?)', [e.id, a]);
  if (e.retryOf !== null) {
    db.run('INSERT INTO requeues(original_id, new_id) VALUES (?, ?)', [e.retryOf, e.id]);
    db.run('UPDATE task_deps SET after_id = ? WHERE after_id = ?', [e.id, e.retryOf]);
  }
}

function notWaiting(id: string): Error {
  return new Error(`effect task.finish releases ${id}, which is not a queued task waiting on others`);
}

function releaseWaiter(db: SqlDatabase, id: string): void {
  db.run("UPDATE tasks SET waiting = waiting - 1 WHERE id = ? AND status = 'queued' AND waiting > 0", [id]);
  if (db.changes() !== 1) throw notWaiting(id);
}

function notOneRow(e: Effect, changed: number): Error {
  return new Error(`effect ${e.t} on ${'id' in e ? e.id : '?'} changed ${changed} rows, expected 1`);
}

/** Runs an update that must change exactly the one row the effect is about. */
function updateOne(db: SqlDatabase, e: Effect, sql: string, params: SqlValue[]): void {
  db.run(sql, params);
  if (db.changes() !== 1) throw notOneRow(e, db.changes());
}

function endAttemptRow(db: SqlDatabase, e: { id: string; attempt: number; at: number; error: string | null }, outcome: string): void {
  db.run('UPDATE attempts SET ended_at = ?, outcome = ?, error = ? WHERE task_id = ? AND n = ?', [e.at, outcome, e.error, e.id, e.attempt]);
}

function need(row: Row | undefined, e: Effect): Row {
  if (!row) throw new Error(`internal: ${e.t} needs the row as it was before`);
  return row;
}

// ---- rows, events and bookkeeping shared by several kinds ------------------------------------------------------

function enqueuedRow(e: TaskRowInsert): Row {
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
    idem_key: e.key ?? null,
    change: null,
    pattern: e.pattern ?? null,
    merge_group: e.mergeGroup ?? null,
    validation: e.validation ?? null,
    validates: e.validates ?? null,
  };
}

/** The changes of a task row, in place: the row of a claim, a finish, a return. */
function claimed(e: Effect & { t: 'task.claim' }, row: Row): Row {
  row['status'] = 'running';
  row['attempt'] = e.attempt;
  row['worker'] = e.worker;
  row['lease'] = e.lease;
  row['started_at'] = e.at;
  row['heartbeat_at'] = e.at;
  row['stale_at'] = null;
  return row;
}

function finished(e: Effect & { t: 'task.finish' }, row: Row): Row {
  row['status'] = e.status;
  row['finished_at'] = e.at;
  row['lease'] = null;
  row['summary'] = e.summary;
  return reported(e, row);
}

function returned(e: Effect & { t: 'task.return' }, row: Row): Row {
  row['status'] = 'queued';
  row['lease'] = null;
  row['worker'] = null;
  row['started_at'] = null;
  row['heartbeat_at'] = null;
  row['stale_at'] = null;
  row['not_before'] = e.notBefore;
  return reported(e, row);
}

/** What an ended attempt reported, as its task keeps it. */
function reported(e: { data: string | null; error: string | null; stdout: string | null; stderr: string | null; usage: string | null; change?: string | null }, row: Row): Row {
  row['change'] = e.change ?? null;
  row['data'] = e.data;
  row['error'] = e.error;
  row['stdout'] = e.stdout;
  row['stderr'] = e.stderr;
  row['usage'] = e.usage;
  return row;
}

const sessionEvent = (e: { id: string }, out: ChangeEvent[]): void => void out.push({ kind: 'session', id: e.id });
const queueEvent = (e: { id: string }, out: ChangeEvent[]): void => void out.push({ kind: 'queue', id: e.id });
const noEvent = (): void => undefined;
function renamesRows(_e: Effect, t: Tally): void {
  t.names = true;
}

/** Archived or purged tasks were finished and live. */
function forgetsFinished(e: { ids: readonly string[] }, t: Tally): void {
  t.finished -= e.ids.length;
}

/** The only event of a running task's heartbeat or stale flag: it is still running. */
function stillRunning(e: { id: string }, out: ChangeEvent[], queueOf: QueueOf): void {
  const q = queueOf(e.id);
  if (q) out.push({ kind: 'task', id: e.id, queueId: q, status: 'running' });
}

/** Heartbeat and stale: one time column of a running task. */
function runningTime(column: 'heartbeat_at' | 'stale_at'): KindOf<'task.heartbeat' | 'task.stale'> {
  // Built once: the statement cache is keyed by the SQL text, and a heartbeat is a hot path.
  const sql = `UPDATE tasks SET ${column} = ? WHERE id = ? AND status = 'running'`;
  const apply = (db: SqlDatabase, e: Effect & { t: 'task.heartbeat' | 'task.stale' }) => updateOne(db, e, sql, [e.at, e.id]);
  return {
    apply,
    batch(b, e) {
      const row = b.pendingRunning(e);
      if (row) row[column] = e.at;
      else apply(b.db, e);
    },
    events: stillRunning,
  };
}

// ---- the kinds -------------------------------------------------------------------------------------------------

const CLAIM_SQL = "UPDATE tasks SET status = 'running', attempt = ?, worker = ?, lease = ?, started_at = ?, heartbeat_at = ?, stale_at = NULL WHERE id = ? AND status = 'queued'";
const FINISH_SQL = `UPDATE tasks SET status = ?, finished_at = ?, lease = NULL, summary = ?, data = ?, error = ?, stdout = ?, stderr = ?, usage = ?, change = ?
  WHERE id = ? AND status = 'running'`;
const RETURN_SQL = `UPDATE tasks SET status = 'queued', lease = NULL, worker = NULL, started_at = NULL, heartbeat_at = NULL, stale_at = NULL,
  not_before = ?, error = ?, data = ?, stdout = ?, stderr = ?, usage = ?, change = ? WHERE id = ? AND status = 'running'`;

/** A claim of a task the database holds: the row and its new attempt. */
function claimInDb(db: SqlDatabase, e: Effect & { t: 'task.claim' }): void {
  updateOne(db, e, CLAIM_SQL, [e.attempt, e.worker, e.lease, e.at, e.at, e.id]);
  db.run('INSERT INTO attempts(task_id, n, lease, worker, started_at) VALUES (?, ?, ?, ?, ?)', [e.id, e.attempt, e.lease, e.worker, e.at]);
}

function finishInDb(db: SqlDatabase, e: Effect & { t: 'task.finish' }): void {
  updateOne(db, e, FINISH_SQL, [e.status, e.at, e.summary, e.data, e.error, e.stdout, e.stderr, e.usage, e.change ?? null, e.id]);
  endAttemptRow(db, e, e.status);
}

function returnInDb(db: SqlDatabase, e: Effect & { t: 'task.return' }): void {
  updateOne(db, e, RETURN_SQL, [e.notBefore, e.error, e.data, e.stdout, e.stderr, e.usage, e.change ?? null, e.id]);
  endAttemptRow(db, e, e.outcome);
}

/**
 * A finish or a return within a batch: the running task's row and attempt change in memory when the batch holds the
 * task, else in the database; its count moves from running to `to`.
 */
function endRunInBatch<E extends Effect & { t: 'task.finish' | 'task.return' }>(
  b: ReplayRows,
  e: E,
  to: string,
  outcome: string,
  change: (e: E, row: Row) => Row,
  inDb: (db: SqlDatabase, e: E) => void,
): void {
  const row = b.pendingRunning(e);
  if (row) {
    change(e, row);
    b.endAttempt(e.id, e.attempt, e.at, outcome, e.error);
  } else {
    inDb(b.db, e);
  }
  b.bump(e.queueId, 'running', -1);
  b.bump(e.queueId, to, 1);
}

const RECORD_RUN_SQL = 'UPDATE tasks SET change = COALESCE(?, change), usage = COALESCE(?, usage) WHERE id = ?';
const VERDICT_SQL = 'UPDATE tasks SET status = ?, validation = ?, error = COALESCE(?, error) WHERE id = ? AND status = ?';

function verdictInDb(db: SqlDatabase, e: Effect & { t: 'task.verdict' }): void {
  updateOne(db, e, VERDICT_SQL, [e.to, e.validation, e.error ?? null, e.id, e.from]);
}

function verdicted(e: Effect & { t: 'task.verdict' }, row: Row): Row {
  row['status'] = e.to;
  row['validation'] = e.validation;
  if (e.error !== undefined) row['error'] = e.error;
  return row;
}

/** Waiters a finish or a verdict releases, within a replay batch: in memory when the batch holds them. */
function releaseInBatch(b: ReplayRows, release: readonly string[] | undefined): void {
  for (const id of release ?? []) {
    const waiter = b.tasks.get(id);
    if (!waiter) {
      releaseWaiter(b.db, id);
      continue;
    }
    if (waiter['status'] !== 'queued' || !((waiter['waiting'] as number) > 0)) throw notWaiting(id);
    waiter['waiting'] = (waiter['waiting'] as number) - 1;
  }
}

function releasedEvents(release: readonly string[] | undefined, out: ChangeEvent[], queueOf: QueueOf): void {
  for (const id of release ?? []) {
    // A released task may now be claimable: tell its queue's workers.
    const q = queueOf(id);
    if (q) out.push({ kind: 'task', id, queueId: q, status: 'queued' });
  }
}

/** Every kind of effect, by its `t`. */
export const EFFECT_KINDS: { readonly [T in Effect['t']]: KindOf<T> } = {
  'session.create': {
    apply: (db, e) => db.run("INSERT INTO sessions(id, name, description, status, created_at) VALUES (?, ?, ?, 'active', ?)", [e.id, e.name, e.description, e.at]),
    tally: renamesRows,
    events: sessionEvent,
  },
  'session.end': {
    apply: (db, e) => updateOne(db, e, "UPDATE sessions SET status = 'ended', ended_at = ? WHERE id = ?", [e.at, e.id]),
    tally: renamesRows,
    events: sessionEvent,
  },
  'queue.create': {
    apply: (db, e) =>
      db.run(
        "INSERT INTO queues(id, session_id, name, instructions, workdir, status, max_workers, max_attempts, isolation, created_at) VALUES (?, ?, ?, ?, ?, 'active', ?, ?, ?, ?)",
        [e.id, e.sessionId, e.name, e.instructions, e.workdir, e.maxWorkers, e.maxAttempts ?? null, e.isolation ?? null, e.at],
      ),
    tally: renamesRows,
    events: queueEvent,
  },
  'queue.end': {
    apply: (db, e) => updateOne(db, e, "UPDATE queues SET status = 'ended', ended_at = ? WHERE id = ?", [e.at, e.id]),
    tally: renamesRows,
    events: queueEvent,
  },
  'queue.pause': {
    apply: (db, e) => updateOne(db, e, 'UPDATE queues SET paused_at = ?, paused_until = ?, pause_reason = ? WHERE id = ?', [e.at, e.until, e.reason, e.id]),
    tally: renamesRows,
    events: queueEvent,
  },
  'queue.resume': {
    apply: (db, e) => updateOne(db, e, 'UPDATE queues SET paused_at = NULL, paused_until = NULL, pause_reason = NULL WHERE id = ?', [e.id]),
    tally: renamesRows,
    events: queueEvent,
  },
  'queue.agent': {
    apply(db, e) {
      if (e.codexThreadId !== undefined) db.run('UPDATE queues SET codex_thread_id = ? WHERE id = ?', [e.codexThreadId, e.id]);
      if (e.claudeSessionId !== undefined) db.run('UPDATE queues SET claude_session_id = ? WHERE id = ?', [e.claudeSessionId, e.id]);
      if (db.changes() !== 1) throw notOneRow(e, db.changes());
    },
    tally: renamesRows,
    events: queueEvent,
  },
  'plan.apply': {
    apply: (db, e) =>
      db.run(
        'INSERT INTO plans(id, description, file, created_at, applied_at, tasks) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET description = excluded.description, file = excluded.file, applied_at = excluded.applied_at, tasks = plans.tasks + excluded.tasks',
        [e.id, e.description, e.file, e.at, e.at, e.tasks],
      ),
    // Its tasks are task.enqueue effects of the same change, with their own events.
    events: noEvent,
  },
  'task.enqueue': {
    apply(db, e) {
      if (
        e.after === undefined && e.planId === undefined && e.key === undefined && e.pattern === undefined && e.mergeGroup === undefined &&
        e.validation === undefined && e.validates === undefined
      ) {
        db.run(
          `INSERT INTO tasks(seq, id, session_id, queue_id, tool, task_class, prompt, payload, status, priority, timeout_s, created_at, retry_of)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'queued', ?, ?, ?, ?)`,
          [e.seq, e.id, e.sessionId, e.queueId, e.tool, e.taskClass, e.prompt, e.payload, e.priority, e.timeoutS, e.at, e.retryOf],
        );
      } else {
        db.run(
          `INSERT INTO tasks(seq, id, session_id, queue_id, tool, task_class, prompt, payload, status, priority, timeout_s, created_at, retry_of, plan_id, plan_key, deps, waiting, idem_key, pattern, merge_group, validation, validates)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'queued', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
          [
            e.seq, e.id, e.sessionId, e.queueId, e.tool, e.taskClass, e.prompt, e.payload, e.priority, e.timeoutS, e.at, e.retryOf,
            e.planId ?? null, e.planKey ?? null, e.after?.length ?? 0, e.waiting ?? 0, e.key ?? null, e.pattern ?? null, e.mergeGroup ?? null,
            e.validation ?? null, e.validates ?? null,
          ],
        );
      }
      bump(db, e.queueId, 'queued', 1);
      raiseSeqHigh(db, e.seq);
      enqueueEdges(db, e);
    },
    batch(b, e) {
      if (b.tasks.has(e.id)) throw new Error(`UNIQUE constraint failed: tasks.id (${e.id} enqueued twice)`);
      b.tasks.set(e.id, enqueuedRow(e));
      b.bump(e.queueId, 'queued', 1);
      b.noteSeq(e.seq);
      enqueueEdges(b.db, e);
    },
    row: (e) => enqueuedRow(e),
    tally(e, t) {
      t.seqHigh = Math.max(t.seqHigh, e.seq);
    },
    events: (e, out) => void out.push({ kind: 'task', id: e.id, queueId: e.queueId, status: 'queued' }),
  },
  'task.claim': {
    apply(db, e) {
      claimInDb(db, e);
      move(db, e.queueId, 'queued', 'running');
    },
    batch(b, e) {
      const row = b.tasks.get(e.id);
      if (row) {
        if (row['status'] !== 'queued') throw notOneRow(e, 0);
        claimed(e, row);
        const list = b.attempts.get(e.id) ?? [];
        if (list.some((a) => a['n'] === e.attempt)) throw new Error(`UNIQUE constraint failed: attempts.task_id, attempts.n (${e.id} attempt ${e.attempt})`);
        list.push({ task_id: e.id, n: e.attempt, lease: e.lease, worker: e.worker, started_at: e.at, ended_at: null, outcome: 'running', error: null });
        b.attempts.set(e.id, list);
      } else {
        claimInDb(b.db, e);
      }
      b.bump(e.queueId, 'queued', -1);
      b.bump(e.queueId, 'running', 1);
    },
    row: (e, row) => claimed(e, need(row, e)),
    events: (e, out) => void out.push({ kind: 'task', id: e.id, queueId: e.queueId, status: 'running' }),
  },
  'task.heartbeat': runningTime('heartbeat_at'),
  'task.stale': runningTime('stale_at'),
  'task.finish': {
    apply(db, e) {
      finishInDb(db, e);
      move(db, e.queueId, 'running', e.status);
      for (const id of e.release ?? []) releaseWaiter(db, id);
    },
    batch(b, e) {
      endRunInBatch(b, e, e.status, e.status, finished, finishInDb);
      releaseInBatch(b, e.release);
    },
    row: (e, row) => finished(e, need(row, e)),
    tally(_e, t) {
      t.finished++;
    },
    events(e, out, queueOf) {
      out.push({ kind: 'task', id: e.id, queueId: e.queueId, status: e.status });
      releasedEvents(e.release, out, queueOf);
    },
  },
  'task.return': {
    apply(db, e) {
      returnInDb(db, e);
      move(db, e.queueId, 'running', 'queued');
    },
    batch: (b, e) => endRunInBatch(b, e, 'queued', e.outcome, returned, returnInDb),
    row: (e, row) => returned(e, need(row, e)),
    events: (e, out) => void out.push({ kind: 'task', id: e.id, queueId: e.queueId, status: 'queued' }),
  },
  'task.verdict': {
    apply(db, e) {
      verdictInDb(db, e);
      if (e.to !== e.from) move(db, e.queueId, e.from, e.to);
      for (const id of e.release ?? []) releaseWaiter(db, id);
    },
    batch(b, e) {
      const row = b.tasks.get(e.id);
      if (row) {
        if (row['status'] !== e.from) throw notOneRow(e, 0);
        verdicted(e, row);
      } else {
        verdictInDb(b.db, e);
      }
      if (e.to !== e.from) {
        b.bump(e.queueId, e.from, -1);
        b.bump(e.queueId, e.to, 1);
      }
      releaseInBatch(b, e.release);
    },
    row: (e, row) => verdicted(e, need(row, e)),
    events(e, out, queueOf) {
      out.push({ kind: 'task', id: e.id, queueId: e.queueId, status: e.to });
      releasedEvents(e.release, out, queueOf);
    },
  },
  'task.change': {
    apply: (db, e) => updateOne(db, e, RECORD_RUN_SQL, [e.change ?? null, e.usage ?? null, e.id]),
    batch(b, e) {
      const row = b.tasks.get(e.id);
      if (!row) return updateOne(b.db, e, RECORD_RUN_SQL, [e.change ?? null, e.usage ?? null, e.id]);
      if (e.change !== undefined) row['change'] = e.change;
      if (e.usage !== undefined) row['usage'] = e.usage;
    },
    events: (e, out) => void out.push({ kind: 'task', id: e.id, queueId: e.queueId, status: e.status }),
  },
  'archive.add': {
    apply(db, e) {
      insertChunk(db, e.chunk);
      deleteTasks(db, e.ids);
    },
    batch(b, e) {
      insertChunk(b.db, e.chunk);
      b.forget(e.ids);
    },
    tally: forgetsFinished,
    // Tasks moved; nothing a watcher sees changed.
    events: noEvent,
  },
  purge: {
    apply(db, e) {
      deleteTasks(db, e.ids, true);
      replaceChunks(db, e);
      for (const [queueId, status, n] of e.counts) bump(db, queueId, status, -n);
    },
    batch(b, e) {
      b.forget(e.ids, true);
      replaceChunks(b.db, e);
      for (const [queueId, status, n] of e.counts) b.bump(queueId, status, -n);
    },
    tally: forgetsFinished,
    events: (e, out) => {
      for (const id of e.ids) out.push({ kind: 'task', id, queueId: '', status: 'removed' });
    },
  },
};

/** The definition of an effect's kind. */
export function kindOf(e: Effect): EffectKind<Effect> {
  return EFFECT_KINDS[e.t];
}
