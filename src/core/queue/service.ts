import * as path from 'node:path';
import { type Clock, iso, systemClock } from '../clock';
import { type SparkqConfig, resolveTimeoutSeconds } from '../config';
import { SparkqError } from '../errors';
import type { ChangeEvent, SweepResult } from '../events';
import { looksLikeId, newId, newLeaseToken } from '../ids';
import { checkEnqueue, checkOutcome, parseInput as parse } from '../inputs';
import {
  type Claim,
  ClaimInput,
  type AgentSession,
  AgentSessionSchema,
  CompleteInput,
  CreateQueueInput,
  CreateSessionInput,
  type EnqueueInput,
  FailInput,
  HeartbeatInput,
  LIMITS,
  ListTasksInput,
  PauseQueueInput,
  ApplyPlanInput,
  type PlanApplyResult,
  type PlanInput,
  type Queue,
  ReleaseInput,
  type Report,
  ReportInput,
  type ReportRow,
  RequeueFailedInput,
  type Session,
  type StatusCounts,
  type Task,
  type TaskDetail,
  type TaskPage,
  type TaskStatus,
} from '../model';
import type { Durability } from '../store/journal';
import type { Row, SqlValue } from '../store/sqlite';
import { type RecoveryReport, Store, type StoreOptions } from '../store/store';
import { ARCHIVE_DIR, Archive, type ChunkRow } from './archive';
import { type ChunkMeta, type Effect, EffectBatch, applyEffects, effectEvents, rowAfter, tallyEffects } from './effects';
import { type Names, rowToAttempt, rowToTask } from './rows';
import { MIGRATIONS } from './schema';

export interface OpenQueueOptions {
  /** The store's folder, normally `<workspace>/.sparkq/db`. */
  dir: string;
  config: SparkqConfig;
  clock?: Clock;
  durability?: Durability;
  syncOn?: StoreOptions['syncOn'];
  rehomeJournal?: boolean;
  repair?: boolean;
  /** Archive and snapshot by themselves after writes (default true). Tests turn it off and call `maintain()`. */
  autoMaintain?: boolean;
  /** How many finished tasks beyond the live cap to gather before writing an archive chunk (default cap / 4). */
  archiveBatch?: number;
  snapshotAfterRecords?: number;
  /** See StoreOptions.fence: throws when this process is no longer the queue's owner. */
  fence?: StoreOptions['fence'];
}

export type { ChangeEvent, SweepResult } from '../events';

function agentEffect(queueId: string, ids: AgentSession): (Effect & { t: 'queue.agent' }) | null {
  const effect: Effect & { t: 'queue.agent' } = { t: 'queue.agent', id: queueId };
  if (ids.codexThreadId !== undefined) effect.codexThreadId = ids.codexThreadId;
  if (ids.claudeSessionId !== undefined) effect.claudeSessionId = ids.claudeSessionId;
  return effect.codexThreadId === undefined && effect.claudeSessionId === undefined ? null : effect;
}

function tail(text: string | undefined, max: number): string | null {
  if (text === undefined) return null;
  if (text.length <= max) return text;
  return `[… ${text.length - max} earlier characters cut]\n` + text.slice(text.length - max);
}

/** How a journal record that starts with an enqueue begins (effects are written with `t` first). */
const ENQUEUE_PREFIX = '[{"t":"task.enqueue"';

/** A running task past 1× its timeout at the time bound to `?`, the same rule as rowToTask's `stale`. */
const STALE_SQL = "status = 'running' AND started_at + timeout_s * 1000 < ?";

const ZERO_COUNTS = (): StatusCounts => ({ queued: 0, running: 0, succeeded: 0, failed: 0 });

/**
 * The queue: every operation is one synchronous transaction over the store (no await between reading and writing),
 * and the mutations resolve once their journal record is synced.
 */
export class QueueService {
  private readonly listeners = new Set<(events: ChangeEvent[]) => void>();
  private readonly names: Names;
  /**
   * Reads the hot path would otherwise repeat on every call: session and queue rows by reference (id or name), their
   * names by id, and the highest task seq handed out. Valid for the committed state; dropped whenever a session or
   * queue changes and whenever a transaction rolls back (it may have filled them from state that was then undone).
   */
  private readonly rowCache = new Map<string, Row>();
  private readonly nameCache = new Map<string, string>();
  private taskSeqHigh: number | null = null;
  /** report() sums per archive chunk, by chunk id, grouping and session. */
  private readonly chunkReports = new Map<string, Row[]>();
  private liveFinished: number;
  private maintenanceScheduled = false;
  private maintaining: Promise<void> | null = null;
  private closed = false;

  private constructor(
    readonly store: Store,
    private config: SparkqConfig,
    private readonly clock: Clock,
    private readonly archive: Archive,
    private readonly opts: OpenQueueOptions,
  ) {
    const db = store.db;
    const cachedName = (table: 'queues' | 'sessions', id: string): string => {
      const key = `${table}\u0000${id}`;
      let name = this.nameCache.get(key);
      if (name === undefined) {
        const found = db.value(`SELECT name FROM ${table} WHERE id = ?`, [id]) as string | undefined;
        if (found === undefined) return id;
        name = found;
        this.nameCache.set(key, name);
      }
      return name;
    };
    this.names = {
      now: () => this.clock.now(),
      queue: (id) => cachedName('queues', id),
      session: (id) => cachedName('sessions', id),
      deps: (id, queued) => {
        const rows = db.all<{ after_id: string; status: string | null }>(
          'SELECT d.after_id, t.status FROM task_deps d LEFT JOIN tasks t ON t.id = d.after_id WHERE d.task_id = ?',
          [id],
        );
        const after = rows.map((r) => r.after_id);
        if (!queued) return { after, waitingOn: [], blockedBy: [] };
        const waitingOn: string[] = [];
        const blockedBy: string[] = [];
        for (const r of rows) {
          // Not live: archived (so finished) or purged.
          const status = r.status ?? ((this.archive.findTask(r.after_id)?.row['status'] as string | undefined) ?? 'purged');
          if (status === 'succeeded') continue;
          waitingOn.push(r.after_id);
          if (status === 'failed' || status === 'purged') blockedBy.push(r.after_id);
        }
        return { after, waitingOn, blockedBy };
      },
    };
    this.liveFinished = Number(db.value('SELECT count(*) FROM tasks WHERE finished_at IS NOT NULL') ?? 0);
  }

  static async open(opts: OpenQueueOptions): Promise<QueueService> {
    const clock = opts.clock ?? systemClock;
    const store = await Store.open({
      dir: opts.dir,
      migrations: MIGRATIONS,
      replay: (db, record) => applyEffects(db, record as Effect[]),
      // Enqueues are what make the database grow (claims and completions mostly fill in rows): about 1.5 bytes of
      // rows and indexes per byte of enqueue record.
      replayReserve: (payloads) => {
        let bytes = 0;
        for (const p of payloads) if (p.length > ENQUEUE_PREFIX.length && p.toString('latin1', 0, ENQUEUE_PREFIX.length) === ENQUEUE_PREFIX) bytes += p.length;
        return bytes * 1.5;
      },
      replayBatch: (db) => {
        const batch = new EffectBatch(db);
        return {
          apply: (record) => {
            for (const e of record as Effect[]) batch.apply(e);
          },
          finish: () => batch.finish(),
        };
      },
      clock,
      ...(opts.durability ? { durability: opts.durability } : {}),
      ...(opts.syncOn ? { syncOn: opts.syncOn } : {}),
      ...(opts.rehomeJournal ? { rehomeJournal: true } : {}),
      ...(opts.repair ? { repair: true } : {}),
      ...(opts.snapshotAfterRecords ? { snapshotAfterRecords: opts.snapshotAfterRecords } : {}),
      ...(opts.fence ? { fence: opts.fence } : {}),
    });
    const archive = new Archive(store.db, path.join(opts.dir, ARCHIVE_DIR), (opts.durability ?? 'full') === 'full');
    try {
      archive.verifyPresent();
      archive.sweepOrphans();
    } catch (e) {
      await store.close({ snapshot: false });
      throw e;
    }
    return new QueueService(store, opts.config, clock, archive, opts);
  }

  get recovery(): RecoveryReport {
    return this.store.recovery;
  }

  setConfig(config: SparkqConfig): void {
    this.config = config;
  }

  getConfig(): SparkqConfig {
    return this.config;
  }

  onChange(listener: (events: ChangeEvent[]) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  // ---- the write path ------------------------------------------------------------------------------------------

  /** Applies `effects` with the store and resolves with `result` once they are durable. */
  private async commit<T>(build: () => { effects: Effect[]; result: () => T }): Promise<T> {
    if (this.closed) throw new SparkqError('closed', 'the queue is closed');
    let written: { result: { value: T; effects: Effect[] }; durable: Promise<void> };
    const finishedBefore = this.liveFinished;
    try {
      written = this.store.write(() => {
        const { effects, result: read } = build();
        applyEffects(this.store.db, effects);
        const tally = tallyEffects(effects);
        this.liveFinished += tally.finished;
        if (tally.seqHigh > 0) this.taskSeqHigh = Math.max(this.taskSeqHigh ?? 0, tally.seqHigh);
        if (tally.names) this.dropCaches();
        // The result is read inside the transaction, so it is exactly the state this mutation produced.
        return { result: { value: read(), effects }, record: effects.length > 0 ? effects : null };
      });
    } catch (e) {
      // Rolled back: nothing read or counted inside the transaction can be trusted.
      this.liveFinished = finishedBefore;
      this.dropCaches();
      throw e;
    }
    const { result, durable } = written;
    await durable;
    this.emit(result.effects);
    this.scheduleMaintenance();
    return result.value;
  }

  private dropCaches(): void {
    this.rowCache.clear();
    this.nameCache.clear();
    this.taskSeqHigh = null;
  }

  private emit(effects: Effect[]): void {
    if (this.listeners.size === 0 || effects.length === 0) return;
    const db = this.store.db;
    const events = effectEvents(effects, (id) => db.value('SELECT queue_id FROM tasks WHERE id = ?', [id]) as string | undefined);
    for (const l of this.listeners) {
      try {
        l(events);
      } catch {
        // a listener's failure must not affect the queue or other listeners
      }
    }
  }

  // ---- sessions ------------------------------------------------------------------------------------------------

  /**
   * Finds a session or queue by id, or by name (the active one first, else the newest ended one). Not found says
   * which names exist, so the caller can fix a typo.
   */
  private rowByRef(table: 'sessions' | 'queues', ref: string): Row {
    const key = `${table}\u0000${ref}`;
    const hit = this.rowCache.get(key);
    if (hit) return hit;
    const db = this.store.db;
    const what = table === 'sessions' ? 'session' : 'queue';
    const row = looksLikeId(ref, table === 'sessions' ? 'ses' : 'que')
      ? db.get(`SELECT * FROM ${table} WHERE id = ?`, [ref])
      : db.get(`SELECT * FROM ${table} WHERE name = ? ORDER BY status = 'active' DESC, created_at DESC LIMIT 1`, [ref]);
    if (row) {
      // Callers only read rows; freeze the shared copy so that a future change that writes to one fails loudly.
      Object.freeze(row);
      if (this.rowCache.size >= 1000) this.rowCache.clear();
      this.rowCache.set(key, row);
    }
    if (!row) {
      const known = db.all<{ name: string }>(`SELECT name FROM ${table} WHERE status = 'active' ORDER BY name LIMIT 20`).map((r) => r.name);
      throw new SparkqError(
        'not-found',
        `no ${what} named ${JSON.stringify(ref)}; ${known.length > 0 ? `active ${table}: ${known.join(', ')}` : `there are no active ${table}: create one first`}`,
      );
    }
    return row;
  }

  private sessionRow(ref: string): Row {
    return this.rowByRef('sessions', ref);
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

  async createSession(input: CreateSessionInput): Promise<Session> {
    const { name, description } = parse(CreateSessionInput, input, 'session');
    return this.commit(() => {
      const db = this.store.db;
      const existing = db.value("SELECT id FROM sessions WHERE name = ? AND status = 'active'", [name]);
      if (existing) throw new SparkqError('conflict', `a session named ${JSON.stringify(name)} is already active (${String(existing)}); pick another name or end it first`);
      const id = newId('ses');
      return {
        effects: [{ t: 'session.create', id, name, description: description ?? '', at: this.clock.now() }],
        result: () => this.getSession(id),
      };
    });
  }

  getSession(ref: string): Session {
    return this.toSession(this.sessionRow(ref));
  }

  listSessions(options: { includeEnded?: boolean } = {}): Session[] {
    const rows = this.store.db.all(
      options.includeEnded === false ? "SELECT * FROM sessions WHERE status = 'active' ORDER BY created_at DESC, rowid DESC" : 'SELECT * FROM sessions ORDER BY created_at DESC, rowid DESC',
    );
    return rows.map((r) => this.toSession(r));
  }

  /** Ends a session and its active queues. Their tasks stay as they are; ended queues hand out no more work. */
  async endSession(ref: string): Promise<Session> {
    return this.commit(() => {
      const row = this.sessionRow(ref);
      const id = row['id'] as string;
      if (row['status'] === 'ended') throw new SparkqError('conflict', `session ${String(row['name'])} (${id}) has already ended`);
      const at = this.clock.now();
      const queues = this.store.db.all<{ id: string }>("SELECT id FROM queues WHERE session_id = ? AND status = 'active'", [id]);
      return {
        effects: [...queues.map((q): Effect => ({ t: 'queue.end', id: q.id, at })), { t: 'session.end', id, at }],
        result: () => this.getSession(id),
      };
    });
  }

  // ---- queues --------------------------------------------------------------------------------------------------

  private queueRow(ref: string): Row {
    return this.rowByRef('queues', ref);
  }

  private toQueue(r: Row): Queue {
    const db = this.store.db;
    const id = r['id'] as string;
    const counts = ZERO_COUNTS();
    for (const c of db.all<{ status: TaskStatus; n: number }>('SELECT status, n FROM queue_counts WHERE queue_id = ?', [id])) counts[c.status] = c.n;
    const stale = Number(db.value(`SELECT count(*) FROM tasks WHERE queue_id = ? AND ${STALE_SQL}`, [id, this.clock.now()]) ?? 0);
    const sessionId = r['session_id'] as string;
    return {
      id,
      name: r['name'] as string,
      sessionId,
      session: this.names.session(sessionId),
      instructions: r['instructions'] as string,
      workdir: (r['workdir'] as string | null) ?? null,
      status: r['status'] as Queue['status'],
      maxWorkers: r['max_workers'] as number,
      maxAttempts: (r['max_attempts'] as number | null) ?? null,
      ...this.pauseOf(r),
      codexThreadId: (r['codex_thread_id'] as string | null) ?? null,
      claudeSessionId: (r['claude_session_id'] as string | null) ?? null,
      createdAt: iso(r['created_at'] as number),
      endedAt: typeof r['ended_at'] === 'number' ? iso(r['ended_at']) : null,
      counts,
      stale,
    };
  }

  /** Whether a queue row is paused now: paused and its pause (if it has an end) not over. */
  private pauseOf(r: Row): { paused: boolean; pausedUntil: string | null; pauseReason: string | null } {
    const at = r['paused_at'] as number | null;
    const until = r['paused_until'] as number | null;
    const paused = at !== null && (until === null || until > this.clock.now());
    return { paused, pausedUntil: paused && until !== null ? iso(until) : null, pauseReason: paused ? ((r['pause_reason'] as string | null) ?? null) : null };
  }

  async createQueue(input: CreateQueueInput): Promise<Queue> {
    const q = parse(CreateQueueInput, input, 'queue');
    return this.commit(() => {
      const session = this.sessionRow(q.session);
      if (session['status'] !== 'active') {
        throw new SparkqError('conflict', `session ${String(session['name'])} has ended; create the queue in an active session`);
      }
      const existing = this.store.db.value("SELECT id FROM queues WHERE name = ? AND status = 'active'", [q.name]);
      if (existing) throw new SparkqError('conflict', `a queue named ${JSON.stringify(q.name)} is already active (${String(existing)}); queue names are unique among active queues`);
      const id = newId('que');
      return {
        effects: [
          {
            t: 'queue.create',
            id,
            sessionId: session['id'] as string,
            name: q.name,
            instructions: q.instructions ?? '',
            workdir: q.workdir ?? null,
            maxWorkers: q.maxWorkers ?? 1,
            ...(q.maxAttempts !== undefined ? { maxAttempts: q.maxAttempts } : {}),
            at: this.clock.now(),
          },
        ],
        result: () => this.getQueue(id),
      };
    });
  }

  getQueue(ref: string): Queue {
    return this.toQueue(this.queueRow(ref));
  }

  listQueues(options: { session?: string; includeEnded?: boolean } = {}): Queue[] {
    const where: string[] = [];
    const params: SqlValue[] = [];
    if (options.session !== undefined) {
      where.push('session_id = ?');
      params.push(this.sessionRow(options.session)['id'] as string);
    }
    if (options.includeEnded === false) where.push("status = 'active'");
    const sql = `SELECT * FROM queues ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY created_at, rowid`;
    return this.store.db.all(sql, params).map((r) => this.toQueue(r));
  }

  async endQueue(ref: string): Promise<Queue> {
    return this.commit(() => {
      const row = this.queueRow(ref);
      const id = row['id'] as string;
      if (row['status'] === 'ended') throw new SparkqError('conflict', `queue ${String(row['name'])} (${id}) has already ended`);
      return { effects: [{ t: 'queue.end', id, at: this.clock.now() }], result: () => this.getQueue(id) };
    });
  }

  /**
   * Records the agent conversation a queue's tasks continue: the Codex thread and/or Claude session the last task
   * ran in (the worker sets it after each agent task). `null` forgets it, so the next task starts a new one.
   */
  async setAgentSession(ref: string, ids: AgentSession): Promise<Queue> {
    const checked = parse(AgentSessionSchema, ids, 'agent session');
    return this.commit(() => {
      const id = this.queueRow(ref)['id'] as string;
      const effect = agentEffect(id, checked);
      if (!effect) throw new SparkqError('invalid-input', 'say which agent id to record: codexThreadId and/or claudeSessionId (null forgets it)');
      return { effects: [effect], result: () => this.getQueue(id) };
    });
  }

  /** Stops a queue handing out tasks (running ones go on), until resumed or for `forSeconds`. */
  async pauseQueue(input: PauseQueueInput): Promise<Queue> {
    const p = parse(PauseQueueInput, input, 'pause');
    return this.commit(() => {
      const row = this.activeQueue(p.queue, 'pauses');
      const id = row['id'] as string;
      const now = this.clock.now();
      const until = p.forSeconds !== undefined ? now + Math.round(p.forSeconds * 1000) : null;
      return { effects: [{ t: 'queue.pause', id, at: now, until, reason: p.reason?.trim() || null }], result: () => this.getQueue(id) };
    });
  }

  async resumeQueue(ref: string): Promise<Queue> {
    return this.commit(() => {
      const row = this.queueRow(ref);
      const id = row['id'] as string;
      if (row['paused_at'] === null) throw new SparkqError('conflict', `queue ${String(row['name'])} is not paused`);
      return { effects: [{ t: 'queue.resume', id, at: this.clock.now() }], result: () => this.getQueue(id) };
    });
  }

  private activeQueue(ref: string, forWhat: string): Row {
    const row = this.queueRow(ref);
    if (row['status'] !== 'active') {
      throw new SparkqError('conflict', `queue ${String(row['name'])} (${String(row['id'])}) has ended, so it takes no ${forWhat}; use an active queue`);
    }
    return row;
  }

  // ---- tasks ---------------------------------------------------------------------------------------------------

  private liveTaskRow(id: string): Row | undefined {
    return this.store.db.get('SELECT * FROM tasks WHERE id = ?', [id]);
  }

  private anyTaskRow(id: string): { row: Row; attempts: Row[] | null; archived: boolean } {
    const row = this.liveTaskRow(id);
    if (row) return { row, attempts: null, archived: false };
    const found = looksLikeId(id, 'tsk') ? this.archive.findTask(id) : null;
    if (found) return { row: found.row, attempts: found.attempts, archived: true };
    throw new SparkqError('not-found', `no task ${JSON.stringify(id)}${looksLikeId(id, 'tsk') ? '' : ' (task ids look like tsk_4k2m9x0q7hzt)'}`);
  }

  async enqueue(input: EnqueueInput): Promise<Task> {
    const prepare = this.prepareEnqueue(input);
    return this.commit(() => {
      const effect = prepare(this.nextTaskSeq(), null);
      // The new row is exactly what the effect inserted; no need to read it back.
      return { effects: [effect], result: () => rowToTask(rowAfter(effect), this.names) };
    });
  }

  /**
   * Enqueues many tasks as one change: one transaction and one journal record (so one sync), all or none. Each task
   * is exactly what `enqueue` makes of its input, in order.
   */
  async enqueueMany(inputs: readonly EnqueueInput[]): Promise<Task[]> {
    const prepared = inputs.map((input, i) => this.prepareEnqueue(input, inputs.length > 1 ? `task ${i + 1}` : 'task'));
    return this.commit(() => {
      const first = this.nextTaskSeq();
      const effects = prepared.map((prepare, i) => prepare(first + i, null));
      return { effects, result: () => effects.map((e) => rowToTask(rowAfter(e), this.names)) };
    });
  }

  /**
   * Validates an enqueue outside the transaction; the returned function builds its effect inside it. `pending` gives
   * the statuses of tasks created earlier in the same change (a plan's tasks wait on each other).
   */
  private prepareEnqueue(
    input: EnqueueInput,
    what = 'task',
    extra: { planId?: string; planKey?: string } = {},
  ): (seq: number, pending: ReadonlyMap<string, string> | null, id?: string) => Effect & { t: 'task.enqueue' } {
    const { input: e, payload } = checkEnqueue(input, what);
    const tool = this.config.tools[e.tool];
    if (!tool) {
      throw new SparkqError('not-found', `unknown tool ${JSON.stringify(e.tool)}; tools in sparkq.yml: ${Object.keys(this.config.tools).sort().join(', ')}`);
    }
    const afterIds = e.after ? [...new Set(e.after)] : [];
    return (seq, pending, id = newId('tsk')) => {
      const q = this.activeQueue(e.queue, 'new tasks');
      const deps = afterIds.length > 0 ? this.dependencies(afterIds, pending, what) : null;
      return {
        t: 'task.enqueue',
        seq,
        id,
        sessionId: q['session_id'] as string,
        queueId: q['id'] as string,
        tool: tool.name,
        taskClass: tool.taskClass,
        prompt: e.prompt ?? null,
        payload,
        priority: e.priority ?? 0,
        timeoutS: e.timeoutSeconds ?? resolveTimeoutSeconds(this.config, tool),
        at: this.clock.now(),
        retryOf: null,
        ...(extra.planId !== undefined ? { planId: extra.planId, planKey: extra.planKey ?? '' } : {}),
        ...(deps ? { after: afterIds, waiting: deps.waiting } : {}),
      };
    };
  }

  /** Checks that every task waited on exists; counts those that have not succeeded (the new task waits for them). */
  private dependencies(ids: readonly string[], pending: ReadonlyMap<string, string> | null, what: string): { waiting: number } {
    let waiting = 0;
    for (const id of ids) {
      let status = pending?.get(id);
      if (status === undefined) {
        try {
          status = this.anyTaskRow(id).row['status'] as string;
        } catch (err) {
          if (err instanceof SparkqError && err.code === 'not-found') {
            throw new SparkqError('not-found', `${what} waits on ${err.message.replace(/^no task/, 'task')}, which does not exist: a task can only wait on tasks that exist`);
          }
          throw err;
        }
      }
      if (status !== 'succeeded') waiting++;
    }
    return { waiting };
  }

  /** Seqs order tasks for FIFO and paging, so one is never handed out twice, even after archiving the newest task. */
  private nextTaskSeq(): number {
    this.taskSeqHigh ??= Number(this.store.db.value("SELECT COALESCE((SELECT value FROM meta WHERE key = 'task_seq_high'), 0)") ?? 0);
    return this.taskSeqHigh + 1;
  }

  /**
   * Claimable: queued, waiting on no task, and not holding back for a retry delay. The first `count` in claim order
   * (highest priority first, then oldest). None from a paused queue.
   */
  private claimable(q: Row, count: number): Row[] {
    if (this.pauseOf(q).paused) return [];
    return this.store.db.all(
      "SELECT * FROM tasks WHERE queue_id = ? AND status = 'queued' AND waiting = 0 AND (not_before IS NULL OR not_before <= ?) ORDER BY priority DESC, seq LIMIT ?",
      [q['id'] as string, this.clock.now(), count],
    );
  }

  /** The task a claim would take next, unchanged; null when there is none (or the queue is paused). */
  peek(queueRef: string): Task | null {
    const row = this.claimable(this.queueRow(queueRef), 1)[0];
    return row ? rowToTask(row, this.names) : null;
  }

  /** Takes the oldest claimable task of the queue (highest priority first); null when there is none. */
  async claim(input: ClaimInput): Promise<Claim | null> {
    const c = parse(ClaimInput, input, 'claim');
    return this.commit(() => {
      const q = this.activeQueue(c.queue, 'claims');
      const row = this.claimable(q, 1)[0];
      if (!row) return { effects: [], result: () => null };
      const { effect, result } = this.claimOf(q, row, c.worker);
      return { effects: [effect], result };
    });
  }

  /**
   * Claims up to `count` tasks of one queue for one worker as one change (one transaction, one journal record): the
   * same tasks, in the same order, that `count` claims one after the other would take. Fewer when the queue runs dry.
   */
  async claimMany(input: ClaimInput, count: number): Promise<Claim[]> {
    const c = parse(ClaimInput, input, 'claim');
    if (!Number.isInteger(count) || count < 0) throw new SparkqError('invalid-input', `count must be a whole number ≥ 0, not ${String(count)}`);
    return this.commit(() => {
      const q = this.activeQueue(c.queue, 'claims');
      if (count === 0) return { effects: [], result: () => [] };
      // Nothing else changes in between, so successive claims would take exactly these rows, in this order.
      const rows = this.claimable(q, count);
      const claims = rows.map((row) => this.claimOf(q, row, c.worker));
      return { effects: claims.map((x) => x.effect), result: () => claims.map((x) => x.result()) };
    });
  }

  private claimOf(q: Row, row: Row, worker: string | undefined): { effect: Effect & { t: 'task.claim' }; result: () => Claim } {
    const lease = newLeaseToken();
    const effect: Effect & { t: 'task.claim' } = {
      t: 'task.claim',
      id: row['id'] as string,
      queueId: q['id'] as string,
      lease,
      worker: worker ?? null,
      attempt: (row['attempt'] as number) + 1,
      at: this.clock.now(),
    };
    // The row read to choose the task, with the claim's changes: what a re-read would return.
    return { effect, result: () => ({ task: rowToTask(rowAfter(effect, row), this.names), instructions: q['instructions'] as string, lease }) };
  }

  private runningTask(id: string, lease: string | undefined, verb: string): Row {
    const { row } = this.anyTaskRow(id);
    const status = row['status'] as TaskStatus;
    if (status !== 'running') {
      const hint = status === 'queued' ? 'claim it first' : status === 'failed' ? 'requeue it to run it again' : 'it is finished';
      throw new SparkqError('conflict', `task ${id} is ${status}; only a running task can be ${verb} (${hint})`, { status });
    }
    if (lease !== undefined && lease !== row['lease']) {
      throw new SparkqError(
        'lease-mismatch',
        `the lease given for task ${id} is not the lease of its current attempt (attempt ${String(row['attempt'])}): it was mistyped, or it belongs to an ` +
          'earlier attempt of a task that has been claimed again since. Nothing was recorded; use the lease from the claim that is running it ($SPARKQ_LEASE in a worker)',
      );
    }
    return row;
  }

  async heartbeat(input: HeartbeatInput): Promise<void> {
    const h = parse(HeartbeatInput, input, 'heartbeat');
    return this.commit(() => {
      this.runningTask(h.task, h.lease, 'sent a heartbeat');
      return { effects: [{ t: 'task.heartbeat', id: h.task, at: this.clock.now() }], result: () => undefined };
    });
  }

  async complete(input: CompleteInput): Promise<Task> {
    const prepare = this.prepareComplete(input);
    return this.commit(() => {
      const { effect, row } = prepare();
      // The agent conversation the task ran in goes onto its queue in the same change: the next task continues it.
      const agent = input.agentSession ? agentEffect(effect.queueId, input.agentSession) : null;
      return { effects: agent ? [effect, agent] : [effect], result: () => rowToTask(rowAfter(effect, row), this.names) };
    });
  }

  /** Completes many running tasks as one change (one transaction, one journal record): all or none. */
  async completeMany(inputs: readonly CompleteInput[]): Promise<Task[]> {
    const prepared = inputs.map((input, i) => this.prepareComplete(input, inputs.length > 1 ? `completion ${i + 1}` : 'completion'));
    const seen = new Set<string>();
    for (const input of inputs) {
      if (seen.has(input.task)) throw new SparkqError('invalid-input', `task ${input.task} appears twice in one completeMany`);
      seen.add(input.task);
    }
    return this.commit(() => {
      const done = prepared.map((prepare) => prepare());
      return { effects: done.map((d) => d.effect), result: () => done.map((d) => rowToTask(rowAfter(d.effect, d.row), this.names)) };
    });
  }

  private prepareComplete(input: CompleteInput, what = 'completion'): () => { effect: Effect & { t: 'task.finish' }; row: Row } {
    const { input: c, data, usage } = checkOutcome(CompleteInput, input, what);
    return () => {
      const row = this.runningTask(c.task, c.lease, 'completed');
      return {
        row,
        effect: {
          t: 'task.finish',
          id: c.task,
          queueId: row['queue_id'] as string,
          attempt: row['attempt'] as number,
          status: 'succeeded',
          at: this.clock.now(),
          summary: c.summary.trim(),
          data,
          error: null,
          stdout: tail(c.stdout, LIMITS.output),
          stderr: tail(c.stderr, LIMITS.output),
          usage,
          ...this.waitersOf(c.task),
        },
      };
    };
  }

  /** The queued tasks waiting on `id`, which its success releases (one fewer task to wait for). */
  private waitersOf(id: string): { release?: string[] } {
    const ids = this.store.db
      .all<{ id: string }>("SELECT t.id FROM task_deps d JOIN tasks t ON t.id = d.task_id WHERE d.after_id = ? AND t.status = 'queued' AND t.waiting > 0", [id])
      .map((r) => r.id);
    return ids.length > 0 ? { release: ids } : {};
  }

  async fail(input: FailInput): Promise<Task> {
    const { input: f, data, usage } = checkOutcome(FailInput, input, 'failure');
    return this.commit(() => {
      const row = this.runningTask(f.task, f.lease, 'failed');
      const effect = this.failOrRetry(row, f.error, { data, usage, stdout: tail(f.stdout, LIMITS.output), stderr: tail(f.stderr, LIMITS.output) });
      const agent = f.agentSession ? agentEffect(effect.queueId, f.agentSession) : null;
      return { effects: agent ? [effect, agent] : [effect], result: () => rowToTask(rowAfter(effect, row), this.names) };
    });
  }

  /**
   * A failed attempt: the task fails, unless its queue (or else its tool) allows more attempts; then it goes back to
   * the queue for a retry after an exponential backoff with jitter. Every attempt's error stays in its attempt.
   */
  private failOrRetry(
    row: Row,
    error: string,
    extra: { data?: string | null; usage?: string | null; stdout?: string | null; stderr?: string | null } = {},
  ): Effect & { t: 'task.finish' | 'task.return' } {
    const failed = this.finishFailed(row, error, extra);
    const q = this.store.db.get('SELECT max_attempts FROM queues WHERE id = ?', [row['queue_id'] as string]);
    const max = (q?.['max_attempts'] as number | null | undefined) ?? this.config.tools[row['tool'] as string]?.maxAttempts ?? 1;
    const failedBefore = Number(this.store.db.value("SELECT count(*) FROM attempts WHERE task_id = ? AND outcome = 'failed'", [row['id'] as string]) ?? 0);
    const n = failedBefore + 1;
    if (n >= max) return failed;
    const { backoffSeconds, maxBackoffSeconds } = this.config.retry;
    const full = Math.min(maxBackoffSeconds, backoffSeconds * 2 ** (n - 1)) * 1000;
    // "Equal jitter": half the delay fixed, half random, so that tasks that failed together do not retry together.
    const delay = Math.round(full / 2 + Math.random() * (full / 2));
    return {
      t: 'task.return',
      id: failed.id,
      queueId: failed.queueId,
      attempt: failed.attempt,
      outcome: 'failed',
      at: failed.at,
      notBefore: failed.at + delay,
      error: `${failed.error!} (attempt ${n} of ${max}; retrying)`,
      data: failed.data,
      stdout: failed.stdout,
      stderr: failed.stderr,
      usage: failed.usage,
    };
  }

  /**
   * Hands a running task back to its queue unfailed because its agent hit a usage or rate limit, and pauses the queue
   * until the limit resets (as the agent said) or for the configured delay. The queue resumes by itself.
   */
  async release(input: ReleaseInput): Promise<Task> {
    const { input: r, data, usage } = checkOutcome(ReleaseInput, input, 'release');
    return this.commit(() => {
      const row = this.runningTask(r.task, r.lease, 'handed back');
      const now = this.clock.now();
      const reason = r.reason.trim().slice(0, LIMITS.error);
      const back: Effect & { t: 'task.return' } = {
        t: 'task.return',
        id: row['id'] as string,
        queueId: row['queue_id'] as string,
        attempt: row['attempt'] as number,
        outcome: 'released',
        at: now,
        notBefore: null,
        error: reason,
        data,
        stdout: tail(r.stdout, LIMITS.output),
        stderr: tail(r.stderr, LIMITS.output),
        usage,
      };
      const effects: Effect[] = [back];
      const resetAt = r.resetAt === undefined ? undefined : typeof r.resetAt === 'number' ? r.resetAt : Date.parse(r.resetAt);
      const until = resetAt !== undefined && resetAt > now ? resetAt : now + this.config.retry.rateLimitPauseSeconds * 1000;
      const q = this.store.db.get('SELECT paused_at, paused_until FROM queues WHERE id = ?', [back.queueId])!;
      const pausedForGood = q['paused_at'] !== null && q['paused_until'] === null;
      // A pause already in force that lasts longer (or until resumed by hand) stays as it is.
      if (!pausedForGood && !(q['paused_at'] !== null && (q['paused_until'] as number) >= until)) {
        effects.push({ t: 'queue.pause', id: back.queueId, at: now, until, reason });
      }
      const agent = r.agentSession ? agentEffect(back.queueId, r.agentSession) : null;
      if (agent) effects.push(agent);
      return { effects, result: () => rowToTask(rowAfter(back, row), this.names) };
    });
  }

  private finishFailed(
    row: Row,
    error: string,
    extra: { data?: string | null; usage?: string | null; stdout?: string | null; stderr?: string | null } = {},
  ): Effect & { t: 'task.finish' } {
    const text = error.trim();
    return {
      t: 'task.finish',
      id: row['id'] as string,
      queueId: row['queue_id'] as string,
      attempt: row['attempt'] as number,
      status: 'failed',
      at: this.clock.now(),
      summary: null,
      data: extra.data ?? null,
      error: text.length > LIMITS.error ? text.slice(0, LIMITS.error) + ' […]' : text,
      stdout: extra.stdout ?? null,
      stderr: extra.stderr ?? null,
      usage: extra.usage ?? null,
    };
  }

  /**
   * Puts a failed task back as a new task (new id, same work), linked to the original by `retryOf`. Tasks that waited
   * on the failed one now wait on the copy, so its success releases them.
   */
  async requeue(taskId: string): Promise<Task> {
    return this.commit(() => {
      const { row } = this.anyTaskRow(taskId);
      const status = row['status'] as TaskStatus;
      if (status !== 'failed') {
        throw new SparkqError('conflict', `task ${taskId} is ${status}; only a failed task can be requeued`, { status });
      }
      const again = this.store.db.value('SELECT new_id FROM requeues WHERE original_id = ?', [taskId]);
      if (again) throw new SparkqError('conflict', `task ${taskId} was already requeued as ${String(again)}; requeue that one if it failed too`);
      const effect = this.requeueOf(row, this.nextTaskSeq());
      return { effects: [effect], result: () => this.task(effect.id) };
    });
  }

  private requeueOf(row: Row, seq: number): Effect & { t: 'task.enqueue' } {
    const q = this.activeQueue(row['queue_id'] as string, 'requeued tasks');
    const originalId = row['id'] as string;
    const after =
      ((row['deps'] as number | undefined) ?? 0) > 0
        ? this.store.db.all<{ after_id: string }>('SELECT after_id FROM task_deps WHERE task_id = ?', [originalId]).map((r) => r.after_id)
        : [];
    const planId = row['plan_id'] as string | null | undefined;
    return {
      t: 'task.enqueue',
      seq,
      id: newId('tsk'),
      sessionId: q['session_id'] as string,
      queueId: q['id'] as string,
      tool: row['tool'] as string,
      taskClass: row['task_class'] as string,
      prompt: (row['prompt'] as string | null) ?? null,
      payload: (row['payload'] as string | null) ?? null,
      priority: row['priority'] as number,
      timeoutS: row['timeout_s'] as number,
      at: this.clock.now(),
      retryOf: originalId,
      ...(planId ? { planId, planKey: (row['plan_key'] as string | null) ?? '' } : {}),
      ...(after.length > 0 ? { after, waiting: this.dependencies(after, null, `task ${originalId}`).waiting } : {}),
    };
  }

  /**
   * Requeues every failed task (of a queue, a plan or a session; all when none is given) that has not been requeued
   * yet, as one change. Succeeded work is left alone; tasks waiting on a failed task now wait on its copy.
   */
  async requeueFailed(input: RequeueFailedInput = {}): Promise<Task[]> {
    const f = parse(RequeueFailedInput, input, 'requeue filter');
    return this.commit(() => {
      const where = ["status = 'failed'"];
      const params: SqlValue[] = [];
      if (f.queue !== undefined) {
        where.push('queue_id = ?');
        params.push(this.queueRow(f.queue)['id'] as string);
      }
      if (f.session !== undefined) {
        where.push('session_id = ?');
        params.push(this.sessionRow(f.session)['id'] as string);
      }
      if (f.plan !== undefined) {
        where.push('plan_id = ?');
        params.push(this.planId(f.plan));
      }
      const sql = `SELECT * FROM tasks WHERE ${where.join(' AND ')} ORDER BY seq`;
      const rows = this.store.db.all(sql, params);
      for (const chunk of this.archive.chunks()) rows.push(...this.archive.open(chunk).all(sql, params));
      rows.sort((a, b) => (a['seq'] as number) - (b['seq'] as number));
      const requeued = new Set(
        this.store.db.all<{ original_id: string }>('SELECT original_id FROM requeues').map((r) => r.original_id),
      );
      const todo = rows.filter((r) => !requeued.has(r['id'] as string));
      const first = this.nextTaskSeq();
      const effects = todo.map((row, i) => this.requeueOf(row, first + i));
      return { effects, result: () => effects.map((e) => this.task(e.id)) };
    });
  }

  private planId(ref: string): string {
    const found = this.store.db.value('SELECT id FROM plans WHERE id = ?', [ref]) as string | undefined;
    if (found !== undefined) return found;
    const known = this.store.db.all<{ id: string }>('SELECT id FROM plans ORDER BY applied_at DESC LIMIT 20').map((r) => r.id);
    throw new SparkqError('not-found', `no plan ${JSON.stringify(ref)}; ${known.length > 0 ? `plans: ${known.join(', ')}` : 'no plan has been applied yet (sparkq plan apply PLAN.yml)'}`);
  }

  /**
   * Enqueues a validated plan as one change: every task it names that an earlier apply of the same plan id has not
   * enqueued yet, waiting on each other as the plan says. Applying the same plan again enqueues nothing and reports
   * what exists.
   */
  async applyPlan(input: ApplyPlanInput): Promise<PlanApplyResult> {
    const { plan, file } = parse(ApplyPlanInput, input, 'plan') as { plan: PlanInput; file?: string };
    const keys = new Set<string>();
    for (const t of plan.tasks) {
      for (const a of t.after) {
        if (!keys.has(a) && !looksLikeId(a, 'tsk')) throw new SparkqError('invalid-input', `plan task ${t.key} waits on ${JSON.stringify(a)}, which is neither an earlier task of the plan nor a task id`);
      }
      if (keys.has(t.key)) throw new SparkqError('invalid-input', `plan task name ${JSON.stringify(t.key)} appears twice`);
      keys.add(t.key);
    }
    const prepared = plan.tasks.map((t) => ({
      key: t.key,
      after: t.after,
      prepare: this.prepareEnqueue(
        {
          queue: t.queue,
          tool: t.tool,
          ...(t.prompt !== undefined ? { prompt: t.prompt } : {}),
          ...(t.payload !== undefined ? { payload: t.payload } : {}),
          ...(t.timeoutSeconds !== undefined ? { timeoutSeconds: t.timeoutSeconds } : {}),
          ...(t.priority !== undefined ? { priority: t.priority } : {}),
        },
        `plan task ${t.key}`,
        { planId: plan.id, planKey: t.key },
      ),
    }));
    return this.commit(() => {
      const db = this.store.db;
      // The newest task of each name (a requeued task replaces the failed one).
      const existing = new Map<string, { id: string; status: TaskStatus; seq: number }>();
      const sql = 'SELECT id, plan_key, status, seq FROM tasks WHERE plan_id = ?';
      const note = (r: Row) => {
        const key = r['plan_key'] as string;
        const had = existing.get(key);
        if (!had || had.seq < (r['seq'] as number)) existing.set(key, { id: r['id'] as string, status: r['status'] as TaskStatus, seq: r['seq'] as number });
      };
      for (const r of db.all(sql, [plan.id])) note(r);
      for (const chunk of this.archive.chunks()) for (const r of this.archive.open(chunk).all(sql, [plan.id])) note(r);

      const idOf = new Map<string, string>();
      const pending = new Map<string, string>();
      for (const [key, e] of existing) idOf.set(key, e.id);
      const effects: (Effect & { t: 'task.enqueue' })[] = [];
      let seq = this.nextTaskSeq();
      for (const t of prepared) {
        if (existing.has(t.key)) continue;
        const id = newId('tsk');
        idOf.set(t.key, id);
        const effect = t.prepare(seq++, pending, id);
        const after = t.after.map((a) => idOf.get(a) ?? a);
        if (after.length > 0) {
          effect.after = [...new Set(after)];
          effect.waiting = this.dependencies(effect.after, pending, `plan task ${t.key}`).waiting;
        }
        pending.set(id, 'queued');
        effects.push(effect);
      }
      const record: Effect = { t: 'plan.apply', id: plan.id, description: plan.description ?? '', file: file ?? null, at: this.clock.now(), tasks: effects.length };
      return {
        effects: [record, ...effects],
        result: () => ({
          plan: plan.id,
          created: effects.map((e) => ({ key: e.planKey ?? '', task: this.task(e.id) })),
          existing: [...existing].map(([key, e]) => ({ key, id: e.id, status: e.status })),
        }),
      };
    });
  }

  /** Tasks, durations and tokens per tool, model, queue or day, over live and archived tasks. */
  async report(input: ReportInput = {}): Promise<Report> {
    const r = parse(ReportInput, input, 'report');
    const by = r.by ?? 'tool';
    const where: string[] = [];
    const params: SqlValue[] = [];
    let sessionName: string | null = null;
    if (r.session !== undefined) {
      const row = this.sessionRow(r.session);
      sessionName = row['name'] as string;
      where.push('session_id = ?');
      params.push(row['id'] as string);
    }
    const keyExpr =
      by === 'tool'
        ? 'tool'
        : by === 'model'
          ? "COALESCE(json_extract(usage, '$.model'), '(none)')"
          : by === 'queue'
            ? 'queue_id'
            : "COALESCE(strftime('%Y-%m-%d', finished_at / 1000, 'unixepoch'), '(unfinished)')";
    const sql = `SELECT ${keyExpr} AS k, count(*) AS tasks,
        SUM(status = 'succeeded') AS succeeded, SUM(status = 'failed') AS failed,
        SUM(CASE WHEN finished_at IS NOT NULL AND started_at IS NOT NULL THEN finished_at - started_at ELSE 0 END) AS run_ms,
        SUM(COALESCE(json_extract(usage, '$.inputTokens'), 0)) AS input,
        SUM(COALESCE(json_extract(usage, '$.cachedInputTokens'), 0)) AS cached,
        SUM(COALESCE(json_extract(usage, '$.outputTokens'), 0)) AS output,
        SUM(COALESCE(json_extract(usage, '$.reasoningTokens'), 0)) AS reasoning,
        SUM(COALESCE(json_extract(usage, '$.costUsd'), 0)) AS cost
      FROM tasks ${where.length ? 'WHERE ' + where.join(' AND ') : ''} GROUP BY k`;
    const groups = new Map<string, ReportRow>();
    const add = (row: Row) => {
      const raw = String(row['k']);
      const key = by === 'queue' ? this.names.queue(raw) : raw;
      const g = groups.get(key) ?? { key, tasks: 0, succeeded: 0, failed: 0, runMs: 0, inputTokens: 0, cachedInputTokens: 0, outputTokens: 0, reasoningTokens: 0, costUsd: 0 };
      g.tasks += Number(row['tasks'] ?? 0);
      g.succeeded += Number(row['succeeded'] ?? 0);
      g.failed += Number(row['failed'] ?? 0);
      g.runMs += Number(row['run_ms'] ?? 0);
      g.inputTokens += Number(row['input'] ?? 0);
      g.cachedInputTokens += Number(row['cached'] ?? 0);
      g.outputTokens += Number(row['output'] ?? 0);
      g.reasoningTokens += Number(row['reasoning'] ?? 0);
      g.costUsd += Number(row['cost'] ?? 0);
      groups.set(key, g);
    };
    for (const row of this.store.db.all(sql, params)) add(row);
    // Archive chunks never change (a purge replaces a chunk with a new id): their sums are kept, so a report (the
    // dashboard asks for one after every batch of changes) opens each chunk once, not every time.
    for (const chunk of this.archive.chunks()) {
      const key = `${chunk.id}\u0000${by}\u0000${String(params[0] ?? '')}`;
      let rows = this.chunkReports.get(key);
      if (rows === undefined) {
        // Opening a chunk takes tens of milliseconds: let other requests in between (a first report over a long
        // history opens hundreds). A chunk purged meanwhile is simply no longer there to count.
        await new Promise<void>((resolve) => setImmediate(resolve));
        if (this.closed) throw new SparkqError('closed', 'the queue is closed');
        try {
          rows = this.archive.open(chunk).all(sql, params);
        } catch (e) {
          if (!this.archive.chunks().some((c) => c.id === chunk.id)) continue;
          throw e;
        }
        if (this.chunkReports.size >= 20_000) this.chunkReports.clear();
        this.chunkReports.set(key, rows);
      }
      for (const row of rows) add(row);
    }
    const rows = [...groups.values()].sort((a, b) => (by === 'day' ? a.key.localeCompare(b.key) : b.tasks - a.tasks || a.key.localeCompare(b.key)));
    const total = { tasks: 0, succeeded: 0, failed: 0, runMs: 0, inputTokens: 0, cachedInputTokens: 0, outputTokens: 0, reasoningTokens: 0, costUsd: 0 };
    for (const g of rows) for (const k of Object.keys(total) as (keyof typeof total)[]) total[k] += g[k];
    for (const g of [...rows, total]) g.costUsd = Math.round(g.costUsd * 1e6) / 1e6;
    return { by, session: sessionName, rows, total };
  }

  private task(id: string): Task {
    const { row, archived } = this.anyTaskRow(id);
    return rowToTask(row, this.names, archived);
  }

  getTask(id: string): TaskDetail {
    const { row, attempts, archived } = this.anyTaskRow(id);
    const task = rowToTask(row, this.names, archived);
    const attemptRows = attempts ?? this.store.db.all('SELECT * FROM attempts WHERE task_id = ? ORDER BY n', [id]);
    const instructions = (this.store.db.value('SELECT instructions FROM queues WHERE id = ?', [task.queueId]) as string | undefined) ?? '';
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
    const f = parse(ListTasksInput, input, 'task filter');
    const limit = f.limit ?? 50;
    const offset = f.offset ?? 0;
    const where: string[] = [];
    const params: SqlValue[] = [];
    if (f.session !== undefined) {
      where.push('session_id = ?');
      params.push(this.sessionRow(f.session)['id'] as string);
    }
    if (f.queue !== undefined) {
      where.push('queue_id = ?');
      params.push(this.queueRow(f.queue)['id'] as string);
    }
    const statuses = f.status === undefined ? null : Array.isArray(f.status) ? f.status : [f.status];
    if (statuses) {
      where.push(`status IN (${statuses.map(() => '?').join(',')})`);
      params.push(...statuses);
    }
    if (f.stale !== undefined) {
      where.push(f.stale ? `(${STALE_SQL})` : `NOT (${STALE_SQL})`);
      params.push(this.clock.now());
    }
    if (f.tool !== undefined) {
      where.push('tool = ?');
      params.push(f.tool);
    }
    if (f.plan !== undefined) {
      where.push('plan_id = ?');
      params.push(this.planId(f.plan));
    }
    if (f.text !== undefined) {
      const like = `%${f.text.replace(/[\\%_]/g, (c) => '\\' + c)}%`;
      where.push("(id = ? OR prompt LIKE ? ESCAPE '\\' OR summary LIKE ? ESCAPE '\\' OR error LIKE ? ESCAPE '\\')");
      params.push(f.text, like, like, like);
    }
    let beforeSeq = Number.MAX_SAFE_INTEGER;
    if (f.before !== undefined) beforeSeq = this.anyTaskRow(f.before).row['seq'] as number;
    where.push('seq < ?');
    params.push(beforeSeq);
    const need = offset + limit + 1;
    const sql = `SELECT * FROM tasks WHERE ${where.join(' AND ')} ORDER BY seq DESC LIMIT ${need}`;

    const found: { row: Row; archived: boolean }[] = this.store.db.all(sql, params).map((row) => ({ row, archived: false }));
    const archiveCanMatch = f.stale !== true && (statuses === null || statuses.some((s) => s === 'succeeded' || s === 'failed'));
    if (archiveCanMatch) {
      for (const chunk of this.archive.chunks()) {
        if (chunk.min_seq >= beforeSeq) continue;
        if (found.length >= need) {
          found.sort((a, b) => (b.row['seq'] as number) - (a.row['seq'] as number));
          found.length = need;
          if (chunk.max_seq < (found[need - 1]!.row['seq'] as number)) break;
        }
        for (const row of this.archive.open(chunk).all(sql, params)) found.push({ row, archived: true });
      }
    }
    found.sort((a, b) => (b.row['seq'] as number) - (a.row['seq'] as number));
    const page = found.slice(offset, offset + limit);
    const more = found.length > offset + limit;
    return {
      tasks: page.map((x) => rowToTask(x.row, this.names, x.archived)),
      next: more && page.length > 0 ? (page[page.length - 1]!.row['id'] as string) : null,
    };
  }

  /** Counts per status over everything (live and archived), with the number of stale running tasks. */
  counts(): StatusCounts & { stale: number } {
    const db = this.store.db;
    const out = { ...ZERO_COUNTS(), stale: 0 };
    for (const r of db.all<{ status: TaskStatus; n: number }>('SELECT status, SUM(n) AS n FROM queue_counts GROUP BY status')) out[r.status] = r.n;
    out.stale = Number(db.value(`SELECT count(*) FROM tasks WHERE ${STALE_SQL}`, [this.clock.now()]) ?? 0);
    return out;
  }

  // ---- time-driven ---------------------------------------------------------------------------------------------

  /** Flags running tasks past 1× their timeout as stale, and fails those past 2×. */
  async sweep(): Promise<SweepResult> {
    return this.commit(() => {
      const now = this.clock.now();
      const effects: Effect[] = [];
      const staled: string[] = [];
      const failed: string[] = [];
      for (const row of this.store.db.all("SELECT * FROM tasks WHERE status = 'running'")) {
        const ran = now - (row['started_at'] as number);
        const timeoutMs = (row['timeout_s'] as number) * 1000;
        if (ran > 2 * timeoutMs) {
          effects.push(this.failOrRetry(row, `auto-failed: ran longer than 2× its timeout (timeout ${row['timeout_s'] as number} s, ran ${Math.round(ran / 1000)} s)`));
          failed.push(row['id'] as string);
        } else if (ran > timeoutMs && row['stale_at'] === null) {
          effects.push({ t: 'task.stale', id: row['id'] as string, at: now });
          staled.push(row['id'] as string);
        }
      }
      // Pauses whose time is up end by themselves (claims already ignore them); this records it for everyone.
      for (const q of this.store.db.all<{ id: string }>('SELECT id FROM queues WHERE paused_until IS NOT NULL AND paused_until <= ?', [now])) {
        effects.push({ t: 'queue.resume', id: q.id, at: now });
      }
      return { effects, result: () => ({ staled: staled.map((id) => this.task(id)), failed: failed.map((id) => this.task(id)) }) };
    });
  }

  /** Deletes finished tasks that finished more than `olderThanDays` days ago, live and archived. */
  async purge(options: { olderThanDays: number }): Promise<{ purged: number }> {
    if (!Number.isFinite(options.olderThanDays) || options.olderThanDays < 0) {
      throw new SparkqError('invalid-input', `--older-than must be a number of days ≥ 0, not ${String(options.olderThanDays)}`);
    }
    const cutoff = this.clock.now() - options.olderThanDays * 86_400_000;
    const filesToRemove: string[] = [];
    const dropped: number[] = [];
    const purged = await this.commit(() => {
      const db = this.store.db;
      const counts = new Map<string, number>();
      const add = (queueId: string, status: string, n: number) => counts.set(`${queueId}\u0000${status}`, (counts.get(`${queueId}\u0000${status}`) ?? 0) + n);
      const ids: string[] = [];
      for (const r of db.all<{ id: string; queue_id: string; status: string }>('SELECT id, queue_id, status FROM tasks WHERE finished_at IS NOT NULL AND finished_at < ?', [cutoff])) {
        ids.push(r.id);
        add(r.queue_id, r.status, 1);
      }
      const dropChunks: number[] = [];
      const replaceChunks: { old: number; chunk: ChunkMeta }[] = [];
      let nextId = this.archive.nextChunkId();
      let archivedPurged = 0;
      for (const chunk of this.archive.chunks()) {
        if (chunk.min_finished_at >= cutoff) continue;
        const cdb = this.archive.open(chunk);
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
          replaceChunks.push({ old: chunk.id, chunk: this.archive.writeChunk(nextId++, keep, keepAttempts, this.clock.now()) });
        }
      }
      const effects: Effect[] =
        ids.length + dropChunks.length + replaceChunks.length > 0
          ? [{ t: 'purge', ids, dropChunks, replaceChunks, counts: [...counts].map(([k, n]) => [...(k.split('\u0000') as [string, TaskStatus]), n]) }]
          : [];
      return { effects, result: () => ids.length + archivedPurged };
    });
    for (const id of dropped) this.archive.forget(id);
    this.archive.removeFiles(filesToRemove);
    return { purged };
  }

  // ---- maintenance ---------------------------------------------------------------------------------------------

  private get liveCap(): number {
    return this.config.store.liveCap;
  }
  private get archiveBatch(): number {
    return this.opts.archiveBatch ?? Math.max(100, Math.floor(this.liveCap / 4));
  }

  get maintenanceDue(): boolean {
    return this.liveFinished >= this.liveCap + this.archiveBatch || this.store.needsSnapshot;
  }

  private scheduleMaintenance(): void {
    if (this.opts.autoMaintain === false || !this.maintenanceDue) return;
    // A flush-off store answers without an event-loop turn, so a caller that keeps going on promises alone can keep
    // a setImmediate from ever running. Once archiving is a whole batch overdue, start it at once: the live set (and
    // with it memory and snapshot time) must stay bounded whoever the caller is.
    if (this.maintaining === null && !this.closed && this.liveFinished >= this.liveCap + 2 * this.archiveBatch) {
      void this.maintain().catch(() => undefined);
      return;
    }
    if (this.maintenanceScheduled) return;
    this.maintenanceScheduled = true;
    setImmediate(() => {
      this.maintenanceScheduled = false;
      if (!this.closed) void this.maintain().catch(() => undefined);
    });
  }

  /** Archives finished tasks beyond the live cap and takes a snapshot when the journal has grown. */
  maintain(): Promise<void> {
    this.maintaining ??= this.runMaintenance().finally(() => (this.maintaining = null));
    return this.maintaining;
  }

  private async runMaintenance(): Promise<void> {
    while (this.liveFinished >= this.liveCap + this.archiveBatch) await this.archiveOldest();
    if (this.store.needsSnapshot) await this.store.snapshot();
  }

  private archiveOldest(): Promise<void> {
    return this.commit(() => {
      const db = this.store.db;
      // At most two batches per chunk, so a chunk (built in memory, then cached when read) stays small.
      const n = Math.min(this.liveFinished - this.liveCap, 2 * this.archiveBatch);
      const rows = db.all('SELECT * FROM tasks WHERE finished_at IS NOT NULL ORDER BY finished_at, seq LIMIT ?', [n]);
      if (rows.length === 0) return { effects: [], result: () => undefined };
      const ids = rows.map((r) => r['id'] as string);
      const attempts: Row[] = [];
      for (const id of ids) attempts.push(...db.all('SELECT * FROM attempts WHERE task_id = ?', [id]));
      const chunk = this.archive.writeChunk(this.archive.nextChunkId(), rows, attempts, this.clock.now());
      return { effects: [{ t: 'archive.add', chunk, ids }], result: () => undefined };
    });
  }

  /** For tests and diagnostics: the archive chunks. */
  archiveChunks(): Omit<ChunkRow, 'bloom'>[] {
    return this.archive.chunks().map(({ bloom: _b, ...rest }) => rest);
  }

  async close(options: { snapshot?: boolean } = {}): Promise<void> {
    if (this.closed) return;
    if (this.maintaining) await this.maintaining.catch(() => undefined);
    this.closed = true;
    this.archive.close();
    await this.store.close(options);
  }

  /** Drops everything without syncing or snapshotting: what a crash leaves, for tests. */
  abandon(): void {
    this.closed = true;
    this.archive.close();
    this.store.abandon();
  }
}

