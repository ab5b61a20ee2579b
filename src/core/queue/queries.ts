import { iso } from '../clock';
import { parseInput as parse } from '../inputs';
import { ListTasksInput, type Queue, type Session, type StatusCounts, type Task, type TaskDetail, type TaskPage, type TaskStatus } from '../model';
import type { Row, SqlValue } from '../store/sqlite';
import type { ChunkRow } from './archive';
import type { QueueHandle } from './handle';
import { isolationOf, rowToAttempt, rowToTask } from './rows';

/** A running task past 1× its timeout at the time bound to `?`, the same rule as rowToTask's `stale`. */
const STALE_SQL = "status = 'running' AND started_at + timeout_s * 1000 < ?";

const ZERO_COUNTS = (): StatusCounts => ({ queued: 0, running: 0, succeeded: 0, failed: 0 });

/** The queue's reads: sessions, queues and tasks as callers see them. Nothing here writes. */
export class QueueQueries {
  constructor(private readonly h: QueueHandle) {}

  getSession(ref: string): Session {
    return this.toSession(this.h.sessionRow(ref));
  }

  listSessions(options: { includeEnded?: boolean } = {}): Session[] {
    const rows = this.h.db.all(
      options.includeEnded === false ? "SELECT * FROM sessions WHERE status = 'active' ORDER BY created_at DESC, rowid DESC" : 'SELECT * FROM sessions ORDER BY created_at DESC, rowid DESC',
    );
    return rows.map((r) => this.toSession(r));
  }

  private toSession(r: Row): Session {
    return {
      id: r['id'] as string,
      name: r['name'] as string,
      description: r['description'] as string,
      status: r['status'] as Session['status'],
      createdAt: iso(r['created_at'] as number),
      endedAt: typeof r['ended_at'] === 'number' ? iso(r['ended_at']) : null,
    };
  }

  getQueue(ref: string): Queue {
    return this.toQueue(this.h.queueRow(ref));
  }

  listQueues(options: { session?: string; includeEnded?: boolean } = {}): Queue[] {
    const where: string[] = [];
    const params: SqlValue[] = [];
    if (options.session !== undefined) {
      where.push('session_id = ?');
      params.push(this.h.sessionRow(options.session)['id'] as string);
    }
    if (options.includeEnded === false) where.push("status = 'active'");
    const sql = `SELECT * FROM queues ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY created_at, rowid`;
    return this.h.db.all(sql, params).map((r) => this.toQueue(r));
  }

  private toQueue(r: Row): Queue {
    const db = this.h.db;
    const id = r['id'] as string;
    const counts = ZERO_COUNTS();
    for (const c of db.all<{ status: TaskStatus; n: number }>('SELECT status, n FROM queue_counts WHERE queue_id = ?', [id])) counts[c.status] = c.n;
    const stale = Number(db.value(`SELECT count(*) FROM tasks WHERE queue_id = ? AND ${STALE_SQL}`, [id, this.h.clock.now()]) ?? 0);
    const sessionId = r['session_id'] as string;
    return {
      id,
      name: r['name'] as string,
      sessionId,
      session: this.h.names.session(sessionId),
      instructions: r['instructions'] as string,
      workdir: (r['workdir'] as string | null) ?? null,
      status: r['status'] as Queue['status'],
      maxWorkers: r['max_workers'] as number,
      maxAttempts: (r['max_attempts'] as number | null) ?? null,
      ...this.h.pauseOf(r),
      codexThreadId: (r['codex_thread_id'] as string | null) ?? null,
      claudeSessionId: (r['claude_session_id'] as string | null) ?? null,
      isolation: isolationOf(r['isolation']),
      createdAt: iso(r['created_at'] as number),
      endedAt: typeof r['ended_at'] === 'number' ? iso(r['ended_at']) : null,
      counts,
      stale,
    };
  }

  /** The task a claim would take next, unchanged; null when there is none (or the queue is paused). */
  peek(queueRef: string): Task | null {
    const row = this.h.claimable(this.h.queueRow(queueRef), 1)[0];
    return row ? rowToTask(row, this.h.names) : null;
  }

  getTask(id: string): TaskDetail {
    const db = this.h.db;
    const { row, attempts, archived } = this.h.anyTaskRow(id);
    const task = rowToTask(row, this.h.names, archived);
    const attemptRows = attempts ?? db.all('SELECT * FROM attempts WHERE task_id = ? ORDER BY n', [id]);
    const instructions = (db.value('SELECT instructions FROM queues WHERE id = ?', [task.queueId]) as string | undefined) ?? '';
    const created = row['created_at'] as number;
    const started = row['started_at'] as number | null;
    const finished = row['finished_at'] as number | null;
    return {
      ...task,
      attempts: attemptRows.map(rowToAttempt),
      instructions,
      timings: {
        waitMs: started !== null ? started - created : null,
        runMs: started !== null && finished !== null ? finished - started : null,
      },
    };
  }

  /** Tasks newest first, filtered, a page at a time; reads the archive where the filters can match finished tasks. */
  listTasks(input: ListTasksInput = {}): TaskPage {
    const h = this.h;
    const f = parse(ListTasksInput, input, 'task filter');
    const limit = f.limit ?? 50;
    const offset = f.offset ?? 0;
    const where: string[] = [];
    const params: SqlValue[] = [];
    if (f.session !== undefined) {
      where.push('session_id = ?');
      params.push(h.sessionRow(f.session)['id'] as string);
    }
    if (f.queue !== undefined) {
      where.push('queue_id = ?');
      params.push(h.queueRow(f.queue)['id'] as string);
    }
    const statuses = f.status === undefined ? null : Array.isArray(f.status) ? f.status : [f.status];
    if (statuses) {
      where.push(`status IN (${statuses.map(() => '?').join(',')})`);
      params.push(...statuses);
    }
    if (f.stale !== undefined) {
      where.push(f.stale ? `(${STALE_SQL})` : `NOT (${STALE_SQL})`);
      params.push(h.clock.now());
    }
    if (f.tool !== undefined) {
      where.push('tool = ?');
      params.push(f.tool);
    }
    if (f.plan !== undefined) {
      where.push('plan_id = ?');
      params.push(h.planId(f.plan));
    }
    if (f.text !== undefined) {
      const like = `%${f.text.replace(/[\\%_]/g, (c) => '\\' + c)}%`;
      where.push("(id = ? OR prompt LIKE ? ESCAPE '\\' OR summary LIKE ? ESCAPE '\\' OR error LIKE ? ESCAPE '\\')");
      params.push(f.text, like, like, like);
    }
    let beforeSeq = Number.MAX_SAFE_INTEGER;
    if (f.before !== undefined) beforeSeq = h.anyTaskRow(f.before).row['seq'] as number;
    where.push('seq < ?');
    params.push(beforeSeq);
    const need = offset + limit + 1;
    const sql = `SELECT * FROM tasks WHERE ${where.join(' AND ')} ORDER BY seq DESC LIMIT ${need}`;

    const found: { row: Row; archived: boolean }[] = h.db.all(sql, params).map((row) => ({ row, archived: false }));
    const archiveCanMatch = f.stale !== true && (statuses === null || statuses.some((s) => s === 'succeeded' || s === 'failed'));
    if (archiveCanMatch) {
      for (const chunk of h.archive.chunks()) {
        if (chunk.min_seq >= beforeSeq) continue;
        if (found.length >= need) {
          found.sort((a, b) => (b.row['seq'] as number) - (a.row['seq'] as number));
          found.length = need;
          if (chunk.max_seq < (found[need - 1]!.row['seq'] as number)) break;
        }
        for (const row of h.archive.open(chunk).all(sql, params)) found.push({ row, archived: true });
      }
    }
    found.sort((a, b) => (b.row['seq'] as number) - (a.row['seq'] as number));
    const page = found.slice(offset, offset + limit);
    const more = found.length > offset + limit;
    return {
      tasks: page.map((x) => rowToTask(x.row, h.names, x.archived)),
      next: more && page.length > 0 ? (page[page.length - 1]!.row['id'] as string) : null,
    };
  }

  /** Counts per status over everything (live and archived), with the number of stale running tasks. */
  counts(): StatusCounts & { stale: number } {
    const db = this.h.db;
    const out = { ...ZERO_COUNTS(), stale: 0 };
    for (const r of db.all<{ status: TaskStatus; n: number }>('SELECT status, SUM(n) AS n FROM queue_counts GROUP BY status')) out[r.status] = r.n;
    out.stale = Number(db.value(`SELECT count(*) FROM tasks WHERE ${STALE_SQL}`, [this.h.clock.now()]) ?? 0);
    return out;
  }

  /** For tests and diagnostics: the archive chunks. */
  archiveChunks(): Omit<ChunkRow, 'bloom'>[] {
    return this.h.archive.chunks().map(({ bloom: _b, ...rest }) => rest);
  }
}
