import * as os from 'node:os';
import type { ListQueuesOptions, ListSessionsOptions, PurgeOptions, StatusReport, WorkerJoin, WorkerLeave, WorkerPlace } from '../api/contract';
import { type Clock, iso } from '../core/clock';
import type { SparkqConfig } from '../core/config';
import { SparkqError } from '../core/errors';
import type { ChangeEvent, SweepResult } from '../core/events';
import { newId } from '../core/ids';
import { parseInput as parse } from '../core/inputs';
import {
  type AgentSession,
  AgentSessionSchema,
  type ApplyPlanInput,
  type Claim,
  type ClaimInput,
  type CompleteInput,
  CreateQueueInput,
  CreateSessionInput,
  type EnqueueInput,
  type FailInput,
  type HeartbeatInput,
  type RecordRunInput,
  type VerdictInput,
  ListTasksInput,
  PauseQueueInput,
  type PlanApplyResult,
  type Queue,
  type ReleaseInput,
  type Report,
  type ReportInput,
  type RequeueFailedInput,
  type RequeueOptions,
  type Session,
  type StatusCounts,
  type Task,
  type TaskDetail,
  type TaskPage,
  type TaskStatus,
} from '../core/model';
import { rowToAttempt } from '../core/queue/rows';
import { activeNameTaken } from '../core/queue/rules';
import type { ScriptEntry } from '../core/scriptIndex';
import { plural } from '../core/text';
import * as attempts from './attempts';
import { Notifier, type TeamContext, tell, toldIn } from './context';
import { type Sql, TeamDb } from './db';
import { TeamEvents } from './events';
import { teamReport } from './reports';
import { type Row, TASK_SELECT, activeQueueRow, pauseOf, planIdOf, queuesOf, readTask, rowByRef, staleSql, tasksOf, toSession, zeroCounts } from './rows';
import { SCHEMA_NAME, lockKey, migrate } from './schema';
import * as tasks from './tasks';

export interface TeamQueueOptions {
  /** postgres:// URL (a Unix-socket host and sslmode work). */
  url: string;
  /** The PostgreSQL schema that holds SparkQ's tables (default `sparkq`). */
  schema?: string;
  /** This workspace's sparkq.yml: tools, task classes, retries. */
  config: SparkqConfig;
  /** Defaults to the database server's clock, so that every machine reads time alike. */
  clock?: Clock;
  /** This machine's script index (scripts are per workspace); none: an empty list. */
  scripts?: (query?: string) => ScriptEntry[];
  /** Who connects, shown in pg_stat_activity (default `sparkq`). */
  applicationName?: string;
  /** Most connections this process holds (default 10). */
  maxConnections?: number;
}

/**
 * The clock of the database server, read through this machine's: every machine of a team judges leases, timeouts and
 * pauses against one time, whatever its own clock says. Measured once at open (to within a round trip).
 */
async function serverClock(db: TeamDb): Promise<Clock> {
  const before = Date.now();
  const r = await db.query<{ ms: number }>('SELECT (extract(epoch FROM clock_timestamp()) * 1000)::int8 AS ms');
  const after = Date.now();
  const offset = r[0]!.ms - Math.round((before + after) / 2);
  return { now: () => Date.now() + offset };
}

/**
 * The queue API on PostgreSQL (team mode): the second implementation of the contract in src/api/contract.ts, for a
 * queue that several machines share. Every process is a client of the database; there is no owner and no socket.
 * Invariants live in constraints and transactions (see schema.ts); claims are one statement (attempts.ts); tasks
 * put on the queue are in tasks.ts; change events travel by LISTEN/NOTIFY (events.ts).
 */
export class TeamQueue {
  private readonly ctx: TeamContext;
  private readonly events: TeamEvents;
  private readonly since = new Date().toISOString();
  private closed = false;
  private readonly housekeeping: NodeJS.Timeout[] = [];

  private constructor(
    readonly db: TeamDb,
    readonly schema: string,
    config: SparkqConfig,
    clock: Clock,
    private readonly scriptList: (query?: string) => ScriptEntry[],
  ) {
    const channel = `sparkq_${schema}`;
    const notifier = new Notifier(db, channel);
    this.ctx = { db, config, clock, channel, notifier };
    // What a transaction told goes out once it committed; a rolled-back one tells nothing.
    db.onTxEnd = (c, committed) => {
      const events = toldIn(c);
      if (committed) notifier.post(events);
    };
    this.events = new TeamEvents(db, channel);
  }

  /** Connects, brings the schema up to date (once, whoever else starts at the same time), and sweeps once. */
  static async open(o: TeamQueueOptions): Promise<TeamQueue> {
    const schema = o.schema ?? 'sparkq';
    if (!SCHEMA_NAME.test(schema)) throw new SparkqError('config', `store.schema ${JSON.stringify(schema)} is not a plain lower-case PostgreSQL name (letters, digits, _)`);
    const db = new TeamDb({ url: o.url, schema, applicationName: o.applicationName ?? 'sparkq', ...(o.maxConnections !== undefined ? { max: o.maxConnections } : {}) });
    try {
      await migrate(db, schema);
      const clock = o.clock ?? (await serverClock(db));
      const q = new TeamQueue(db, schema, o.config, clock, o.scripts ?? (() => []));
      // A task past 2× its timeout is failed before anyone reads or claims it, even with no long-lived process around.
      await q.sweep();
      return q;
    } catch (e) {
      await db.end().catch(() => undefined);
      throw e;
    }
  }

  get clock(): Clock {
    return this.ctx.clock;
  }

  /** Where the database is, for messages and `status` (no password). */
  get where(): string {
    return this.db.where;
  }

  setConfig(config: SparkqConfig): void {
    this.ctx.config = config;
  }

  private get now(): number {
    return this.ctx.clock.now();
  }

  private throwIfClosed(): void {
    if (this.closed) throw new SparkqError('closed', 'the queue is closed');
  }

  // ---- sessions and queues -------------------------------------------------------------------------------------

  async createSession(input: CreateSessionInput): Promise<Session> {
    const { name, description } = parse(CreateSessionInput, input, 'session');
    this.throwIfClosed();
    return this.db.tx(async (c) => {
      const existing = await c.query<{ id: string }>("SELECT id FROM sessions WHERE name = $1 AND status = 'active'", [name]);
      if (existing.rows[0]) throw activeNameTaken('session', name, existing.rows[0].id);
      const id = newId('ses');
      await this.unique(c, 'session', name, () =>
        c.query("INSERT INTO sessions(id, name, description, status, created_at) VALUES ($1, $2, $3, 'active', $4)", [id, name, description ?? '', this.now]),
      );
      tell(c, [{ kind: 'session', id }]);
      return toSession((await c.query<Row>('SELECT * FROM sessions WHERE id = $1', [id])).rows[0]!);
    });
  }

  /** Runs an insert whose active name must be unique; a name taken at the same moment elsewhere is a conflict. */
  private async unique(c: Sql, what: 'session' | 'queue', name: string, insert: () => Promise<unknown>): Promise<void> {
    await c.query('SAVEPOINT name_check');
    try {
      await insert();
    } catch (e) {
      if ((e as { code?: unknown }).code !== '23505') throw e;
      await c.query('ROLLBACK TO SAVEPOINT name_check');
      const other = await c.query<{ id: string }>(`SELECT id FROM ${what === 'session' ? 'sessions' : 'queues'} WHERE name = $1 AND status = 'active'`, [name]);
      throw activeNameTaken(what, name, other.rows[0]?.id ?? '?');
    }
  }

  async listSessions(options: ListSessionsOptions = {}): Promise<Session[]> {
    const rows = await this.db.query<Row>(
      options.includeEnded === false ? "SELECT * FROM sessions WHERE status = 'active' ORDER BY created_at DESC, n DESC" : 'SELECT * FROM sessions ORDER BY created_at DESC, n DESC',
    );
    return rows.map(toSession);
  }

  async getSession(ref: string): Promise<Session> {
    return toSession(await rowByRef(this.db.pool, 'sessions', ref));
  }

  /** Ends a session and its active queues. Their tasks stay as they are; ended queues hand out no more work. */
  async endSession(ref: string): Promise<Session> {
    this.throwIfClosed();
    return this.db.tx(async (c) => {
      const row = await rowByRef(c, 'sessions', ref, 'update');
      const id = row['id'] as string;
      if (row['status'] === 'ended') throw new SparkqError('conflict', `session ${String(row['name'])} (${id}) has already ended`);
      const at = this.now;
      const queues = await c.query<{ id: string }>("UPDATE queues SET status = 'ended', ended_at = $1 WHERE session_id = $2 AND status = 'active' RETURNING id", [at, id]);
      const ended = await c.query<Row>("UPDATE sessions SET status = 'ended', ended_at = $1 WHERE id = $2 RETURNING *", [at, id]);
      tell(c, [...queues.rows.map((q): ChangeEvent => ({ kind: 'queue', id: q.id })), { kind: 'session', id }]);
      return toSession(ended.rows[0]!);
    });
  }

  async createQueue(input: CreateQueueInput): Promise<Queue> {
    const q = parse(CreateQueueInput, input, 'queue');
    this.throwIfClosed();
    return this.db.tx(async (c) => {
      const session = await rowByRef(c, 'sessions', q.session, 'share');
      if (session['status'] !== 'active') throw new SparkqError('conflict', `session ${String(session['name'])} has ended; create the queue in an active session`);
      const existing = await c.query<{ id: string }>("SELECT id FROM queues WHERE name = $1 AND status = 'active'", [q.name]);
      if (existing.rows[0]) throw activeNameTaken('queue', q.name, existing.rows[0].id);
      const id = newId('que');
      await this.unique(c, 'queue', q.name, () =>
        c.query(
          "INSERT INTO queues(id, session_id, name, instructions, workdir, status, max_workers, max_attempts, isolation, created_at) VALUES ($1, $2, $3, $4, $5, 'active', $6, $7, $8, $9)",
          [id, session['id'], q.name, q.instructions ?? '', q.workdir ?? null, q.maxWorkers ?? 1, q.maxAttempts ?? null, q.isolation ? JSON.stringify(q.isolation) : null, this.now],
        ),
      );
      tell(c, [{ kind: 'queue', id }]);
      return this.queueOf(c, id);
    });
  }

  private async queueOf(c: Sql, ref: string): Promise<Queue> {
    return (await queuesOf(c, [await rowByRef(c, 'queues', ref)], this.now))[0]!;
  }

  async listQueues(options: ListQueuesOptions = {}): Promise<Queue[]> {
    const c = this.db.pool;
    const where: string[] = [];
    const params: unknown[] = [];
    if (options.session !== undefined) {
      params.push((await rowByRef(c, 'sessions', options.session))['id']);
      where.push(`session_id = $${params.length}`);
    }
    if (options.includeEnded === false) where.push("status = 'active'");
    const rows = await this.db.query<Row>(`SELECT * FROM queues ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY created_at, n`, params);
    return queuesOf(c, rows, this.now);
  }

  async getQueue(ref: string): Promise<Queue> {
    return this.queueOf(this.db.pool, ref);
  }

  async endQueue(ref: string): Promise<Queue> {
    this.throwIfClosed();
    return this.db.tx(async (c) => {
      const row = await rowByRef(c, 'queues', ref, 'update');
      const id = row['id'] as string;
      if (row['status'] === 'ended') throw new SparkqError('conflict', `queue ${String(row['name'])} (${id}) has already ended`);
      await c.query("UPDATE queues SET status = 'ended', ended_at = $1 WHERE id = $2", [this.now, id]);
      tell(c, [{ kind: 'queue', id }]);
      return this.queueOf(c, id);
    });
  }

  /** Stops a queue handing out tasks (running ones go on), until resumed or for `forSeconds`. */
  async pauseQueue(input: PauseQueueInput): Promise<Queue> {
    const p = parse(PauseQueueInput, input, 'pause');
    this.throwIfClosed();
    return this.db.tx(async (c) => {
      const row = await activeQueueRow(c, p.queue, 'pauses', 'update');
      const id = row['id'] as string;
      const now = this.now;
      const until = p.forSeconds !== undefined ? now + Math.round(p.forSeconds * 1000) : null;
      await c.query('UPDATE queues SET paused_at = $1, paused_until = $2, pause_reason = $3 WHERE id = $4', [now, until, p.reason?.trim() || null, id]);
      tell(c, [{ kind: 'queue', id }]);
      return this.queueOf(c, id);
    });
  }

  /**
   * Records the agent conversation a queue's tasks continue: the Codex thread and/or Claude session the last task ran
   * in (a worker sets it when the agent finished its task itself). `null` forgets it.
   */
  async setAgentSession(ref: string, ids: AgentSession): Promise<Queue> {
    const a = parse(AgentSessionSchema, ids, 'agent session');
    if (a.codexThreadId === undefined && a.claudeSessionId === undefined) {
      throw new SparkqError('invalid-input', 'say which agent id to record: codexThreadId and/or claudeSessionId (null forgets it)');
    }
    this.throwIfClosed();
    return this.db.tx(async (c) => {
      const id = (await rowByRef(c, 'queues', ref, 'update'))['id'] as string;
      if (a.codexThreadId !== undefined) await c.query('UPDATE queues SET codex_thread_id = $1 WHERE id = $2', [a.codexThreadId, id]);
      if (a.claudeSessionId !== undefined) await c.query('UPDATE queues SET claude_session_id = $1 WHERE id = $2', [a.claudeSessionId, id]);
      tell(c, [{ kind: 'queue', id }]);
      return this.queueOf(c, id);
    });
  }

  async resumeQueue(ref: string): Promise<Queue> {
    this.throwIfClosed();
    return this.db.tx(async (c) => {
      const row = await rowByRef(c, 'queues', ref, 'update');
      const id = row['id'] as string;
      if (row['paused_at'] === null) throw new SparkqError('conflict', `queue ${String(row['name'])} is not paused`);
      await c.query('UPDATE queues SET paused_at = NULL, paused_until = NULL, pause_reason = NULL WHERE id = $1', [id]);
      tell(c, [{ kind: 'queue', id }]);
      return this.queueOf(c, id);
    });
  }

  // ---- tasks -----------------------------------------------------------------------------------------------------

  enqueue(input: EnqueueInput): Promise<Task> {
    this.throwIfClosed();
    return tasks.enqueue(this.ctx, input);
  }

  requeue(task: string, options?: RequeueOptions): Promise<Task> {
    this.throwIfClosed();
    return tasks.requeue(this.ctx, task, options);
  }

  requeueFailed(input?: RequeueFailedInput): Promise<Task[]> {
    this.throwIfClosed();
    return tasks.requeueFailed(this.ctx, input);
  }

  applyPlan(input: ApplyPlanInput): Promise<PlanApplyResult> {
    this.throwIfClosed();
    return tasks.applyPlan(this.ctx, input);
  }

  claim(input: ClaimInput): Promise<Claim | null> {
    this.throwIfClosed();
    return attempts.claim(this.ctx, input);
  }

  heartbeat(input: HeartbeatInput): Promise<void> {
    this.throwIfClosed();
    return attempts.heartbeat(this.ctx, input);
  }

  recordRun(input: RecordRunInput): Promise<Task> {
    this.throwIfClosed();
    return attempts.recordRun(this.ctx, input);
  }

  complete(input: CompleteInput): Promise<Task> {
    this.throwIfClosed();
    return attempts.complete(this.ctx, input);
  }

  verdict(input: VerdictInput): Promise<Task> {
    this.throwIfClosed();
    return attempts.verdict(this.ctx, input);
  }

  fail(input: FailInput): Promise<Task> {
    this.throwIfClosed();
    return attempts.fail(this.ctx, input);
  }

  release(input: ReleaseInput): Promise<Task> {
    this.throwIfClosed();
    return attempts.release(this.ctx, input);
  }

  /** Sweeps now (or, when another machine is sweeping at this moment, reports nothing done: its sweep covers this). */
  async sweep(): Promise<SweepResult> {
    this.throwIfClosed();
    const r = await attempts.sweep(this.ctx, lockKey(this.schema, 'sweep'));
    return r ? { staled: r.staled, failed: [...r.failed, ...r.lost] } : { staled: [], failed: [] };
  }

  /**
   * For a long-lived process (a worker, VS Code): sweeps every `intervalMs` (whoever sweeps first in each round does
   * it for every machine) and purges old finished tasks daily when sparkq.yml says so. Errors go to `log`; the
   * timers never keep the process alive.
   */
  startHousekeeping(intervalMs: number, log: (line: string) => void = () => undefined): void {
    if (this.housekeeping.length > 0 || this.closed) return;
    const round = () => {
      if (this.closed) return;
      this.sweep().then(
        (r) => {
          for (const t of r.failed) log(`task ${t.id} failed by the sweep: ${t.error ?? ''}`);
        },
        (e: unknown) => log(`sweep failed: ${e instanceof Error ? e.message : String(e)}`),
      );
    };
    const purge = () => {
      const days = this.ctx.config.purgeAfterDays;
      if (days === null || this.closed) return;
      this.purge({ olderThanDays: days }).catch((e: unknown) => log(`automatic purge failed: ${e instanceof Error ? e.message : String(e)}`));
    };
    this.housekeeping.push(setInterval(round, intervalMs), setTimeout(purge, 1000), setInterval(purge, 86_400_000));
    for (const t of this.housekeeping) t.unref();
  }

  // ---- reads -----------------------------------------------------------------------------------------------------

  /** The task a claim would take next, unchanged; null when there is none (or the queue is paused). */
  async peek(queueRef: string): Promise<Task | null> {
    const c = this.db.pool;
    const q = await rowByRef(c, 'queues', queueRef);
    const now = this.now;
    if (pauseOf(q, now).paused) return null;
    const rows = await this.db.query<Row>(
      `${TASK_SELECT} WHERE t.queue_id = $1 AND t.status = 'queued' AND t.waiting = 0 AND (t.not_before IS NULL OR t.not_before <= $2) ORDER BY t.priority DESC, t.seq LIMIT 1`,
      [q['id'], now],
    );
    return rows[0] ? (await tasksOf(c, rows, now))[0]! : null;
  }

  async getTask(id: string): Promise<TaskDetail> {
    const c = this.db.pool;
    const now = this.now;
    const task = await readTask(c, id, now);
    const attemptRows = await this.db.query<Row>('SELECT * FROM attempts WHERE task_id = $1 ORDER BY n', [id]);
    const instructions = (await this.db.query<{ instructions: string }>('SELECT instructions FROM queues WHERE id = $1', [task.queueId]))[0]?.instructions ?? '';
    const ms = (s: string | null) => (s === null ? null : Date.parse(s));
    const created = ms(task.createdAt)!;
    const started = ms(task.startedAt);
    const finished = ms(task.finishedAt);
    return {
      ...task,
      attempts: attemptRows.map((r) => rowToAttempt(r as Parameters<typeof rowToAttempt>[0])),
      instructions,
      timings: { waitMs: started !== null ? started - created : null, runMs: started !== null && finished !== null ? finished - started : null },
    };
  }

  /** Tasks newest first, filtered, a page at a time. */
  async listTasks(input: ListTasksInput = {}): Promise<TaskPage> {
    const f = parse(ListTasksInput, input, 'task filter');
    const c = this.db.pool;
    const now = this.now;
    const limit = f.limit ?? 50;
    const offset = f.offset ?? 0;
    const where: string[] = [];
    const params: unknown[] = [];
    const add = (sql: (p: string) => string, v: unknown) => {
      params.push(v);
      where.push(sql(`$${params.length}`));
    };
    if (f.session !== undefined) add((p) => `t.session_id = ${p}`, (await rowByRef(c, 'sessions', f.session))['id']);
    if (f.queue !== undefined) add((p) => `t.queue_id = ${p}`, (await rowByRef(c, 'queues', f.queue))['id']);
    const statuses = f.status === undefined ? null : Array.isArray(f.status) ? f.status : [f.status];
    if (statuses) add((p) => `t.status = ANY(${p}::text[])`, statuses);
    if (f.stale !== undefined) add((p) => (f.stale ? `(${staleSql(p, 't.')})` : `NOT (${staleSql(p, 't.')})`), now);
    if (f.tool !== undefined) add((p) => `t.tool = ${p}`, f.tool);
    if (f.plan !== undefined) add((p) => `t.plan_id = ${p}`, await planIdOf(c, f.plan));
    if (f.text !== undefined) {
      const like = `%${f.text.replace(/[\\%_]/g, (ch) => '\\' + ch)}%`;
      params.push(f.text, like);
      const [id, pattern] = [`$${params.length - 1}`, `$${params.length}`];
      where.push(`(t.id = ${id} OR t.prompt LIKE ${pattern} OR t.summary LIKE ${pattern} OR t.error LIKE ${pattern})`);
    }
    if (f.before !== undefined) {
      const before = await this.db.query<{ seq: number }>('SELECT seq FROM tasks WHERE id = $1', [f.before]);
      if (!before[0]) throw new SparkqError('not-found', `no task ${JSON.stringify(f.before)}`);
      add((p) => `t.seq < ${p}`, before[0].seq);
    }
    params.push(limit + 1, offset);
    const rows = await this.db.query<Row>(
      `${TASK_SELECT} ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY t.seq DESC LIMIT $${params.length - 1} OFFSET $${params.length}`,
      params,
    );
    const page = rows.slice(0, limit);
    const more = rows.length > limit;
    return { tasks: await tasksOf(c, page, now), next: more && page.length > 0 ? (page[page.length - 1]!['id'] as string) : null };
  }

  /** Counts per status over every task, with the number of stale running tasks. */
  async counts(): Promise<StatusCounts & { stale: number }> {
    const rows = await this.db.query<{ status: TaskStatus; n: number; stale: number }>(
      `SELECT status, count(*)::int AS n, count(*) FILTER (WHERE ${staleSql('$1')})::int AS stale FROM tasks GROUP BY status`,
      [this.now],
    );
    const out = { ...zeroCounts(), stale: 0 };
    for (const r of rows) {
      out[r.status] = r.n;
      out.stale += r.stale;
    }
    return out;
  }

  async status(): Promise<StatusReport> {
    return {
      owner: { pid: process.pid, generation: 0, role: `team database ${this.db.where}`, since: this.since },
      project: this.ctx.config.project,
      counts: await this.counts(),
      queues: await this.listQueues({ includeEnded: false }),
      workers: (await this.workers()).map((w) => ({ queue: w.queue, worker: w.worker, host: w.host, until: iso(w.until) })),
    };
  }

  report(input?: ReportInput): Promise<Report> {
    // One snapshot for all of its statements: a report never mixes states from before and after a change.
    return this.db.tx((c) => teamReport(c, input, { now: this.now, config: this.ctx.config }), 'repeatable read');
  }

  /** Deletes finished tasks that finished more than `olderThanDays` days ago (their attempts and edges with them). */
  async purge(options: PurgeOptions): Promise<{ purged: number }> {
    if (!Number.isFinite(options.olderThanDays) || options.olderThanDays < 0) {
      throw new SparkqError('invalid-input', `--older-than must be a number of days ≥ 0, not ${String(options.olderThanDays)}`);
    }
    this.throwIfClosed();
    const cutoff = this.now - options.olderThanDays * 86_400_000;
    return this.db.tx(async (c) => {
      const gone = await c.query<{ id: string }>('DELETE FROM tasks WHERE finished_at IS NOT NULL AND finished_at < $1 RETURNING id', [cutoff]);
      tell(c, gone.rows.map((r): ChangeEvent => ({ kind: 'task', id: r.id, queueId: '', status: 'removed' })));
      return { purged: gone.rows.length };
    });
  }

  scripts(query?: string): Promise<ScriptEntry[]> {
    return Promise.resolve(this.scriptList(query));
  }

  // ---- workers' places -------------------------------------------------------------------------------------------

  /**
   * A worker takes (or renews) a place on a queue, which allows at most maxWorkers; places live in the database and
   * expire without renewal, so the limit holds across machines and a dead worker's place frees itself.
   */
  async joinQueue(input: WorkerJoin): Promise<WorkerPlace> {
    this.throwIfClosed();
    return this.db.tx(async (c) => {
      // The queue row's lock: joins to one queue take turns, so two machines cannot both take its last place.
      const q = await rowByRef(c, 'queues', input.queue, 'update');
      const name = q['name'] as string;
      if (q['status'] !== 'active') throw new SparkqError('conflict', `queue ${name} has ended; workers can only work active queues`);
      const now = this.now;
      const queueId = q['id'] as string;
      await c.query('DELETE FROM worker_places WHERE queue_id = $1 AND expires_at <= $2', [queueId, now]);
      const places = (await c.query<{ worker: string; host: string }>('SELECT worker, host FROM worker_places WHERE queue_id = $1 ORDER BY worker', [queueId])).rows;
      const max = q['max_workers'] as number;
      if (!places.some((p) => p.worker === input.worker) && places.length >= max) {
        const others = places.map((p) => `${p.worker} on ${p.host}`).join(', ');
        throw new SparkqError(
          'conflict',
          `queue ${name} already has ${plural(places.length, 'worker')} (${others}) and allows ${max}; stop that worker first, or create the queue with a higher --max-workers`,
          { queue: queueId, workers: places.map((p) => p.worker), maxWorkers: max },
        );
      }
      await c.query(
        `INSERT INTO worker_places(queue_id, worker, host, pid, expires_at) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (queue_id, worker) DO UPDATE SET host = excluded.host, pid = excluded.pid, expires_at = excluded.expires_at`,
        [queueId, input.worker, os.hostname(), process.pid, now + input.leaseSeconds * 1000],
      );
      const workers = (await c.query<{ worker: string }>('SELECT worker FROM worker_places WHERE queue_id = $1 ORDER BY worker', [queueId])).rows.map((r) => r.worker);
      return { queueId, workers, maxWorkers: max };
    });
  }

  async leaveQueue(input: WorkerLeave): Promise<void> {
    this.throwIfClosed();
    const q = await rowByRef(this.db.pool, 'queues', input.queue);
    await this.db.query('DELETE FROM worker_places WHERE queue_id = $1 AND worker = $2', [q['id'], input.worker]);
  }

  /** The workers with a place now, on which host, for `status`. */
  async workers(): Promise<{ queue: string; worker: string; host: string; pid: number; until: number }[]> {
    return this.db.query(
      'SELECT q.name AS queue, w.worker, w.host, w.pid, w.expires_at AS until FROM worker_places w JOIN queues q ON q.id = w.queue_id WHERE w.expires_at > $1 ORDER BY q.name, w.worker',
      [this.now],
    );
  }

  // ---- events and life -------------------------------------------------------------------------------------------

  /** Change events from every machine (LISTEN/NOTIFY), after they are committed. */
  onChange(listener: (events: ChangeEvent[]) => void): () => void {
    return this.events.onChange(listener);
  }

  /** Resolves once this process listens for change events (there is a listener, and its connection is open). */
  listening(): Promise<void> {
    return this.events.ready();
  }

  /** After the event connection was lost and came back: what happened meanwhile was not heard, so read again. */
  onReconnect(cb: () => void): () => void {
    return this.events.onReconnect(cb);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const t of this.housekeeping) clearInterval(t);
    // A short command's changes are announced before it lets go of its connections.
    await this.ctx.notifier.drain();
    await this.events.close();
    await this.db.end();
  }
}
