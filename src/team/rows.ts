import { iso } from '../core/clock';
import { SparkqError } from '../core/errors';
import { looksLikeId } from '../core/ids';
import type { Queue, Session, StatusCounts, Task, TaskStatus } from '../core/model';
import { isolationOf, type Names, rowToTask } from '../core/queue/rows';
import { isDone } from '../core/queue/validation';
import type { Sql } from './db';

/*
 * Reading the team database's rows as the queue's types. The row shapes are the embedded store's, so tasks map with
 * the same rowToTask; what it asks of Names (queue and session names, what a task waits on) is read up front, in one
 * query per page of tasks, since a PostgreSQL read cannot happen inside rowToTask.
 */

export type Row = Record<string, unknown>;
/** A row as the embedded store types it: what rowToTask reads (PostgreSQL gives the same JS values for these columns). */
type CoreRow = Parameters<typeof rowToTask>[0];

/** A running task past 1× its timeout at the time bound to the parameter, the same rule as rowToTask's `stale`. */
export const staleSql = (param: string, t = ''): string => `${t}status = 'running' AND ${t}started_at + ${t}timeout_s * 1000 < ${param}`;

/** Task rows with the names of their queue and session, for `tasksOf`: `FROM tasks t` plus these joins. */
export const TASK_SELECT = 'SELECT t.*, q.name AS q_name, s.name AS s_name FROM tasks t JOIN queues q ON q.id = t.queue_id JOIN sessions s ON s.id = t.session_id';

/** Tasks of rows read with TASK_SELECT, reading what their dependencies are (one query for all of them). */
export async function tasksOf(c: Sql, rows: readonly Row[], now: number): Promise<Task[]> {
  const withDeps = rows.filter((r) => Number(r['deps']) > 0).map((r) => r['id'] as string);
  const deps = new Map<string, { after: string; status: string | null; validation: string | null }[]>();
  if (withDeps.length > 0) {
    const r = await c.query<{ task_id: string; after_id: string; status: string | null; validation: string | null }>(
      'SELECT d.task_id, d.after_id, t.status, t.validation FROM task_deps d LEFT JOIN tasks t ON t.id = d.after_id WHERE d.task_id = ANY($1::text[]) ORDER BY d.task_id, d.after_id',
      [withDeps],
    );
    for (const d of r.rows) {
      const list = deps.get(d.task_id) ?? [];
      list.push({ after: d.after_id, status: d.status, validation: d.validation });
      deps.set(d.task_id, list);
    }
  }
  const queueNames = new Map<string, string>();
  const sessionNames = new Map<string, string>();
  for (const r of rows) {
    queueNames.set(r['queue_id'] as string, r['q_name'] as string);
    sessionNames.set(r['session_id'] as string, r['s_name'] as string);
  }
  const names: Names = {
    now: () => now,
    queue: (id) => queueNames.get(id) ?? id,
    session: (id) => sessionNames.get(id) ?? id,
    deps: (id, queued) => {
      const list = deps.get(id) ?? [];
      const after = list.map((d) => d.after);
      if (!queued) return { after, waitingOn: [], blockedBy: [] };
      const waitingOn: string[] = [];
      const blockedBy: string[] = [];
      for (const d of list) {
        // Gone from the database: purged.
        const status = d.status ?? 'purged';
        // Done: succeeded and, when validated, passed.
        if (isDone(status, d.validation)) continue;
        waitingOn.push(d.after);
        if (status === 'failed' || status === 'purged') blockedBy.push(d.after);
      }
      return { after, waitingOn, blockedBy };
    },
  };
  return rows.map((r) => rowToTask(r as CoreRow, names));
}

/** One task by id, or not-found naming what task ids look like. */
export async function taskRow(c: Sql, id: string, lock: '' | 'FOR UPDATE' = ''): Promise<Row> {
  const r = await c.query<Row>(`SELECT * FROM tasks WHERE id = $1 ${lock}`, [id]);
  const row = r.rows[0];
  if (!row) throw new SparkqError('not-found', `no task ${JSON.stringify(id)}${looksLikeId(id, 'tsk') ? '' : ' (task ids look like tsk_4k2m9x0q7hzt)'}`);
  return row;
}

export async function readTask(c: Sql, id: string, now: number): Promise<Task> {
  const r = await c.query<Row>(`${TASK_SELECT} WHERE t.id = $1`, [id]);
  const row = r.rows[0];
  if (!row) throw new SparkqError('not-found', `no task ${JSON.stringify(id)}${looksLikeId(id, 'tsk') ? '' : ' (task ids look like tsk_4k2m9x0q7hzt)'}`);
  return (await tasksOf(c, [row], now))[0]!;
}

/**
 * A session or queue row by id, or by name (the active one first, else the newest ended one). Not found says which
 * names exist, so the caller can fix a typo. `lock` takes the row's lock for the rest of the transaction.
 */
export async function rowByRef(c: Sql, table: 'sessions' | 'queues', ref: string, lock: Lock = false): Promise<Row> {
  const forLock = lock === 'share' ? ' FOR SHARE' : lock === 'update' ? ' FOR UPDATE' : '';
  const byId = looksLikeId(ref, table === 'sessions' ? 'ses' : 'que');
  const r = await c.query<Row>(
    byId
      ? `SELECT * FROM ${table} WHERE id = $1${forLock}`
      : `SELECT * FROM ${table} WHERE name = $1 ORDER BY status = 'active' DESC, created_at DESC, n DESC LIMIT 1${forLock}`,
    [ref],
  );
  const row = r.rows[0];
  if (row) return row;
  const what = table === 'sessions' ? 'session' : 'queue';
  const known = (await c.query<{ name: string }>(`SELECT name FROM ${table} WHERE status = 'active' ORDER BY name LIMIT 20`)).rows.map((x) => x.name);
  throw new SparkqError(
    'not-found',
    `no ${what} named ${JSON.stringify(ref)}; ${known.length > 0 ? `active ${table}: ${known.join(', ')}` : `there are no active ${table}: create one first`}`,
  );
}

/** A row lock held until the transaction ends: shared (it cannot change meanwhile) or exclusive (we change it). */
export type Lock = false | 'share' | 'update';

export async function activeQueueRow(c: Sql, ref: string, forWhat: string, lock: Lock = false): Promise<Row> {
  const row = await rowByRef(c, 'queues', ref, lock);
  if (row['status'] !== 'active') {
    throw new SparkqError('conflict', `queue ${String(row['name'])} (${String(row['id'])}) has ended, so it takes no ${forWhat}; use an active queue`);
  }
  return row;
}

export async function planIdOf(c: Sql, ref: string): Promise<string> {
  const r = await c.query<{ id: string }>('SELECT id FROM plans WHERE id = $1', [ref]);
  if (r.rows[0]) return r.rows[0].id;
  const known = (await c.query<{ id: string }>('SELECT id FROM plans ORDER BY applied_at DESC LIMIT 20')).rows.map((x) => x.id);
  throw new SparkqError('not-found', `no plan ${JSON.stringify(ref)}; ${known.length > 0 ? `plans: ${known.join(', ')}` : 'no plan has been applied yet (sparkq plan apply PLAN.yml)'}`);
}

export function toSession(r: Row): Session {
  return {
    id: r['id'] as string,
    name: r['name'] as string,
    description: r['description'] as string,
    status: r['status'] as Session['status'],
    createdAt: iso(r['created_at'] as number),
    endedAt: typeof r['ended_at'] === 'number' ? iso(r['ended_at']) : null,
  };
}

export const zeroCounts = (): StatusCounts => ({ queued: 0, running: 0, succeeded: 0, failed: 0 });

/** Whether a queue row is paused now: paused and its pause (if it has an end) not over. */
export function pauseOf(r: Row, now: number): { paused: boolean; pausedUntil: string | null; pauseReason: string | null } {
  const at = r['paused_at'] as number | null;
  const until = r['paused_until'] as number | null;
  const paused = at !== null && (until === null || until > now);
  return { paused, pausedUntil: paused && until !== null ? iso(until) : null, pauseReason: paused ? ((r['pause_reason'] as string | null) ?? null) : null };
}

/** Queues as callers see them, with their counts per status and of stale tasks, read in one query for all. */
export async function queuesOf(c: Sql, rows: readonly Row[], now: number): Promise<Queue[]> {
  if (rows.length === 0) return [];
  const ids = rows.map((r) => r['id'] as string);
  const counts = await c.query<{ queue_id: string; status: TaskStatus; n: number; stale: number }>(
    `SELECT queue_id, status, count(*)::int AS n, count(*) FILTER (WHERE ${staleSql('$2')})::int AS stale
       FROM tasks WHERE queue_id = ANY($1::text[]) GROUP BY queue_id, status`,
    [ids, now],
  );
  const sessions = await c.query<{ id: string; name: string }>('SELECT id, name FROM sessions WHERE id = ANY($1::text[])', [rows.map((r) => r['session_id'] as string)]);
  const sessionName = new Map(sessions.rows.map((s) => [s.id, s.name]));
  const byQueue = new Map<string, { counts: StatusCounts; stale: number }>();
  for (const r of counts.rows) {
    const e = byQueue.get(r.queue_id) ?? { counts: zeroCounts(), stale: 0 };
    e.counts[r.status] = r.n;
    e.stale += r.stale;
    byQueue.set(r.queue_id, e);
  }
  return rows.map((r) => {
    const id = r['id'] as string;
    const sessionId = r['session_id'] as string;
    const tally = byQueue.get(id) ?? { counts: zeroCounts(), stale: 0 };
    return {
      id,
      name: r['name'] as string,
      sessionId,
      session: sessionName.get(sessionId) ?? sessionId,
      instructions: r['instructions'] as string,
      workdir: (r['workdir'] as string | null) ?? null,
      status: r['status'] as Queue['status'],
      maxWorkers: r['max_workers'] as number,
      maxAttempts: (r['max_attempts'] as number | null) ?? null,
      ...pauseOf(r, now),
      codexThreadId: (r['codex_thread_id'] as string | null) ?? null,
      claudeSessionId: (r['claude_session_id'] as string | null) ?? null,
      isolation: isolationOf(r['isolation']),
      createdAt: iso(r['created_at'] as number),
      endedAt: typeof r['ended_at'] === 'number' ? iso(r['ended_at']) : null,
      counts: tally.counts,
      stale: tally.stale,
    };
  });
}
