import type { ChangeEvent, SweepResult } from '../core/events';
import { newLeaseToken } from '../core/ids';
import { checkOutcome, parseInput as parse } from '../core/inputs';
import { type AgentSession, type Claim, ClaimInput, CompleteInput, FailInput, HeartbeatInput, LIMITS, RecordRunInput, ReleaseInput, type Task, type TaskChange, type TaskStatus, VerdictInput } from '../core/model';
import { SparkqError } from '../core/errors';
import { autoFailedReason, errorText, leaseMismatch, notRunning, nothingToRecord, outputTail, retryDelayMs, runRefused, workerLostReason } from '../core/queue/rules';
import { verdictOfSuccess } from '../core/queue/validation';
import { type TeamContext, tell } from './context';
import type { Sql } from './db';
import { type Row, TASK_SELECT, activeQueueRow, readTask, taskRow, tasksOf } from './rows';
import { applyVerdict, enqueueValidation, releaseWaiters } from './validation';

/*
 * A task's attempts on the team queue: the claim (one statement, exactly once under any number of claimers on any
 * number of machines), and what ends or continues an attempt (heartbeat, complete, fail or retry, hand back), each
 * fenced by the lease of the claim it belongs to. And the sweep, which whoever holds the sweep lock runs.
 */

/**
 * The claim, in one statement: the queue by id or active name (unpaused), its oldest claimable task (highest
 * priority first) made running with a new attempt and the attempt recorded; announced once committed. SKIP LOCKED lets
 * concurrent claimers pass a row another claimer holds instead of waiting for it, so each takes a different task.
 * No row back: no task to take, or no such active queue (the caller then asks why).
 */
const CLAIM_SQL = `
  WITH q AS (
    SELECT id, name, session_id, instructions FROM queues
     WHERE (id = $1 OR name = $1) AND status = 'active' AND NOT (paused_at IS NOT NULL AND (paused_until IS NULL OR paused_until > $2))
     ORDER BY created_at DESC
     LIMIT 1
  ), next AS (
    -- The queue's id as a value (an init plan), not a join: the claim index is then walked in claim order from the
    -- queue's first task, whatever the planner believes about the table (a join read every queued task and sorted).
    SELECT t.seq FROM tasks t
     WHERE t.queue_id = (SELECT id FROM q) AND t.status = 'queued' AND t.waiting = 0 AND (t.not_before IS NULL OR t.not_before <= $2)
     ORDER BY t.priority DESC, t.seq
     LIMIT 1
     FOR UPDATE SKIP LOCKED
  ), claimed AS (
    UPDATE tasks t SET status = 'running', attempt = t.attempt + 1, worker = $3, lease = $4, started_at = $2, heartbeat_at = $2, stale_at = NULL
      FROM next WHERE t.seq = next.seq
    RETURNING t.*
  ), attempt AS (
    INSERT INTO attempts(task_id, n, lease, worker, started_at) SELECT id, attempt, lease, worker, started_at FROM claimed
  )
  SELECT claimed.*, q.name AS q_name, q.instructions AS q_instructions, s.name AS s_name
    FROM claimed JOIN q ON q.id = claimed.queue_id JOIN sessions s ON s.id = claimed.session_id`;

export async function claim(ctx: TeamContext, input: ClaimInput): Promise<Claim | null> {
  const c = parse(ClaimInput, input, 'claim');
  const lease = newLeaseToken();
  const now = ctx.clock.now();
  const rows = await ctx.db.query<Row>(CLAIM_SQL, [c.queue, now, c.worker ?? null, lease], 'sparkq-claim');
  const row = rows[0];
  if (!row) {
    // Nothing claimed: say why when the queue is not there or has ended (this throws); else there was no task.
    await activeQueueRow(ctx.db.pool, c.queue, 'claims');
    return null;
  }
  const instructions = row['q_instructions'] as string;
  delete row['q_instructions'];
  ctx.notifier.post([{ kind: 'task', id: row['id'] as string, queueId: row['queue_id'] as string, status: 'running' }]);
  const [task] = await tasksOf(ctx.db.pool, [row], now);
  return { task: task!, instructions, lease };
}

/** A running task's row, locked, after checking that `lease` is its current attempt's. Throws what the embedded store throws. */
async function runningTask(c: Sql, id: string, lease: string | undefined, verb: string): Promise<Row> {
  const row = await taskRow(c, id, 'FOR UPDATE');
  const status = row['status'] as TaskStatus;
  if (status !== 'running') throw notRunning(id, status, verb);
  if (lease !== undefined && lease !== row['lease']) throw leaseMismatch(id, row['attempt'] as number);
  return row;
}

export async function recordRun(ctx: TeamContext, input: RecordRunInput): Promise<Task> {
  const r = parse(RecordRunInput, input, 'run record');
  if (r.change === undefined && r.usage === undefined) throw nothingToRecord(r.task);
  return ctx.db.tx(async (c) => {
    const row = await taskRow(c, r.task, 'FOR UPDATE');
    const status = row['status'] as TaskStatus;
    if ((status !== 'succeeded' && status !== 'failed') || row['attempt'] !== r.attempt) throw runRefused(r.task, status, row['attempt'] as number, r.attempt, false);
    await c.query('UPDATE tasks SET change = COALESCE($1, change), usage = COALESCE($2, usage) WHERE id = $3', [
      r.change !== undefined ? JSON.stringify(r.change) : null,
      r.usage !== undefined ? JSON.stringify(r.usage) : null,
      r.task,
    ]);
    tell(c, [{ kind: 'task', id: r.task, queueId: row['queue_id'] as string, status }]);
    return readTask(c, r.task, ctx.clock.now());
  });
}

export async function heartbeat(ctx: TeamContext, input: HeartbeatInput): Promise<void> {
  const h = parse(HeartbeatInput, input, 'heartbeat');
  // The common case in one statement; only a refused heartbeat reads the row to say why.
  const done = await ctx.db.query("UPDATE tasks SET heartbeat_at = $1 WHERE id = $2 AND status = 'running' AND lease = $3 RETURNING 1", [ctx.clock.now(), h.task, h.lease], 'sparkq-heartbeat');
  if (done.length === 1) return;
  await ctx.db.tx(async (c) => {
    await runningTask(c, h.task, h.lease, 'sent a heartbeat');
    // Running with this lease after all (it was claimed in between): record the heartbeat now.
    await c.query("UPDATE tasks SET heartbeat_at = $1 WHERE id = $2 AND status = 'running'", [ctx.clock.now(), h.task]);
  });
}

interface Outcome {
  data: string | null;
  usage: string | null;
  stdout: string | null;
  stderr: string | null;
  /** TaskChange as JSON: what the attempt changed in its worktree. */
  change: string | null;
}

async function endAttempt(c: Sql, row: Row, at: number, outcome: string, error: string | null): Promise<void> {
  await c.query('UPDATE attempts SET ended_at = $1, outcome = $2, error = $3 WHERE task_id = $4 AND n = $5', [at, outcome, error, row['id'], row['attempt']]);
}

/** Records the agent conversation the task ran in on its queue, so that the queue's next task continues it. */
async function recordAgent(c: Sql, queueId: string, ids: AgentSession | undefined, events: ChangeEvent[]): Promise<void> {
  if (!ids) return;
  if (ids.codexThreadId !== undefined) await c.query('UPDATE queues SET codex_thread_id = $1 WHERE id = $2', [ids.codexThreadId, queueId]);
  if (ids.claudeSessionId !== undefined) await c.query('UPDATE queues SET claude_session_id = $1 WHERE id = $2', [ids.claudeSessionId, queueId]);
  if (ids.codexThreadId !== undefined || ids.claudeSessionId !== undefined) events.push({ kind: 'queue', id: queueId });
}

/** Finishes a running task (succeeded or failed) and, on success, releases the queued tasks that waited on it. */
async function finish(c: Sql, row: Row, status: 'succeeded' | 'failed', at: number, summary: string | null, error: string | null, o: Outcome, events: ChangeEvent[]): Promise<void> {
  await c.query(
    'UPDATE tasks SET status = $1, finished_at = $2, lease = NULL, summary = $3, data = $4, error = $5, stdout = $6, stderr = $7, usage = $8, change = $9 WHERE id = $10',
    [status, at, summary, o.data, error, o.stdout, o.stderr, o.usage, o.change, row['id']],
  );
  await endAttempt(c, row, at, status, error);
  events.push({ kind: 'task', id: row['id'] as string, queueId: row['queue_id'] as string, status });
  // A validated task's waiters wait for its verdict, not for its success.
  if (status !== 'succeeded' || row['validation'] !== null) return;
  await releaseWaiters(c, row['id'] as string, events);
}

/**
 * A completion in one statement: the running task (with this lease, when given) succeeds, its attempt ends, the
 * tasks that waited on it are released; announced once committed. No row back: it did not fit, or the task is
 * validated or validates another (the caller then takes the full path, with the row locked).
 */
const COMPLETE_SQL = `
  WITH done AS (
    UPDATE tasks SET status = 'succeeded', finished_at = $2, lease = NULL, summary = $3, data = $4, error = NULL, stdout = $5, stderr = $6, usage = $7, change = $9
     WHERE id = $1 AND status = 'running' AND ($8::text IS NULL OR lease = $8) AND validation IS NULL AND validates IS NULL
    RETURNING *
  ), attempt AS (
    UPDATE attempts a SET ended_at = $2, outcome = 'succeeded', error = NULL FROM done WHERE a.task_id = done.id AND a.n = done.attempt
  ), released AS (
    UPDATE tasks t SET waiting = t.waiting - 1 FROM task_deps d, done
     WHERE d.after_id = done.id AND t.id = d.task_id AND t.status = 'queued' AND t.waiting > 0
    RETURNING t.id, t.queue_id
  )
  SELECT done.*, q.name AS q_name, s.name AS s_name, (SELECT json_agg(json_build_array(id, queue_id)) FROM released) AS released
    FROM done JOIN queues q ON q.id = done.queue_id JOIN sessions s ON s.id = done.session_id`;

export async function complete(ctx: TeamContext, input: CompleteInput): Promise<Task> {
  const { input: x, data, usage } = checkOutcome(CompleteInput, input, 'completion');
  const stdout = outputTail(x.stdout);
  const stderr = outputTail(x.stderr);
  // The common case (no agent conversation to record on the queue) is one statement.
  if (!x.agentSession) {
    const at = ctx.clock.now();
    const rows = await ctx.db.query<Row>(COMPLETE_SQL, [x.task, at, x.summary.trim(), data, stdout, stderr, usage, x.lease ?? null, changeOf(x.change)], 'sparkq-complete');
    const row = rows[0];
    if (row) {
      const released = (row['released'] as [string, string][] | null) ?? [];
      delete row['released'];
      ctx.notifier.post([
        { kind: 'task', id: row['id'] as string, queueId: row['queue_id'] as string, status: 'succeeded' },
        ...released.map(([id, queueId]): ChangeEvent => ({ kind: 'task', id, queueId, status: 'queued' })),
      ]);
      return (await tasksOf(ctx.db.pool, rows, at))[0]!;
    }
  }
  return completeLocked(ctx, x, data, usage, stdout, stderr, false);
}

/** A completion with the task's row locked: a validated task enqueues its validator; a validation task gives its verdict. */
function completeLocked(
  ctx: TeamContext,
  x: { task: string; lease?: string | undefined; summary: string; change?: TaskChange | undefined; agentSession?: AgentSession | undefined },
  data: string | null,
  usage: string | null,
  stdout: string | null,
  stderr: string | null,
  asVerdict: boolean,
): Promise<Task> {
  return ctx.db.tx(async (c) => {
    const row = await runningTask(c, x.task, x.lease, 'completed');
    if (asVerdict && row['validates'] === null) {
      throw new SparkqError('invalid-input', `task ${x.task} validates no task: a verdict is for a validation task; finish other tasks with complete or fail`);
    }
    const events: ChangeEvent[] = [];
    const at = ctx.clock.now();
    const summary = x.summary.trim();
    const change = changeOf(x.change);
    await finish(c, row, 'succeeded', at, summary, null, { data, usage, stdout, stderr, change }, events);
    if (row['validation'] !== null) await enqueueValidation(ctx, c, row, { summary, data, change, at }, events);
    else if (row['validates'] !== null) await applyVerdict(ctx, c, row, verdictOfSuccess(ctx.config.tools[row['tool'] as string]?.knownKind, data), events);
    await recordAgent(c, row['queue_id'] as string, x.agentSession, events);
    tell(c, events);
    return readTask(c, x.task, at);
  });
}

/** A validator's verdict: completes the running validation task with it (see the embedded store's verdict). */
export async function verdict(ctx: TeamContext, input: VerdictInput): Promise<Task> {
  const v = parse(VerdictInput, input, 'verdict');
  const feedback = v.feedback?.trim() ?? '';
  const data = JSON.stringify(feedback === '' ? { verdict: v.verdict } : { verdict: v.verdict, feedback });
  const summary = feedback === '' ? v.verdict : `${v.verdict}: ${feedback}`;
  return completeLocked(ctx, { task: v.task, ...(v.lease !== undefined ? { lease: v.lease } : {}), summary }, data, null, null, null, true);
}

/**
 * A failed attempt: the task fails, unless its queue (or else its tool) allows more attempts; then it goes back to
 * the queue for a retry after an exponential backoff with equal jitter. Every attempt's error stays in its attempt.
 */
export async function failOrRetry(ctx: TeamContext, c: Sql, row: Row, error: string, o: Outcome, events: ChangeEvent[]): Promise<void> {
  const at = ctx.clock.now();
  const err = errorText(error);
  const q = await c.query<{ max_attempts: number | null }>('SELECT max_attempts FROM queues WHERE id = $1', [row['queue_id']]);
  const max = q.rows[0]?.max_attempts ?? ctx.config.tools[row['tool'] as string]?.maxAttempts ?? 1;
  const before = await c.query<{ n: number }>("SELECT count(*)::int AS n FROM attempts WHERE task_id = $1 AND outcome = 'failed'", [row['id']]);
  const n = before.rows[0]!.n + 1;
  if (n >= max) {
    await finish(c, row, 'failed', at, null, err, o, events);
    // A validation task that failed for good fails the round of the task it checks.
    if (row['validates'] !== null) await applyVerdict(ctx, c, row, { pass: false, feedback: err }, events);
    return;
  }
  await returnTask(c, row, at, at + retryDelayMs(n, ctx.config.retry), `${err} (attempt ${n} of ${max}; retrying)`, 'failed', o, events);
}

/** A running task back on its queue (a retry, or handed back), with what its attempt reported. */
async function returnTask(c: Sql, row: Row, at: number, notBefore: number | null, error: string, outcome: string, o: Outcome, events: ChangeEvent[]): Promise<void> {
  await c.query(
    `UPDATE tasks SET status = 'queued', lease = NULL, worker = NULL, started_at = NULL, heartbeat_at = NULL, stale_at = NULL,
       not_before = $1, error = $2, data = $3, stdout = $4, stderr = $5, usage = $6, change = $7 WHERE id = $8`,
    [notBefore, error, o.data, o.stdout, o.stderr, o.usage, o.change, row['id']],
  );
  await endAttempt(c, row, at, outcome, error);
  events.push({ kind: 'task', id: row['id'] as string, queueId: row['queue_id'] as string, status: 'queued' });
}

export async function fail(ctx: TeamContext, input: FailInput): Promise<Task> {
  const { input: f, data, usage } = checkOutcome(FailInput, input, 'failure');
  return ctx.db.tx(async (c) => {
    const row = await runningTask(c, f.task, f.lease, 'failed');
    const events: ChangeEvent[] = [];
    await failOrRetry(ctx, c, row, f.error, { data, usage, stdout: outputTail(f.stdout), stderr: outputTail(f.stderr), change: changeOf(f.change) }, events);
    await recordAgent(c, row['queue_id'] as string, f.agentSession, events);
    tell(c, events);
    return readTask(c, f.task, ctx.clock.now());
  });
}

/**
 * Hands a running task back unfailed because its agent hit a usage or rate limit, and pauses the queue until the
 * limit resets (as the agent said) or for the configured delay; a longer pause already in force stays.
 */
export async function release(ctx: TeamContext, input: ReleaseInput): Promise<Task> {
  const { input: r, data, usage } = checkOutcome(ReleaseInput, input, 'release');
  return ctx.db.tx(async (c) => {
    const row = await runningTask(c, r.task, r.lease, 'handed back');
    const now = ctx.clock.now();
    const reason = r.reason.trim().slice(0, LIMITS.error);
    const events: ChangeEvent[] = [];
    await returnTask(c, row, now, null, reason, 'released', { data, usage, stdout: outputTail(r.stdout), stderr: outputTail(r.stderr), change: changeOf(r.change) }, events);
    const resetAt = r.resetAt === undefined ? undefined : typeof r.resetAt === 'number' ? r.resetAt : Date.parse(r.resetAt);
    const until = resetAt !== undefined && resetAt > now ? resetAt : now + ctx.config.retry.rateLimitPauseSeconds * 1000;
    const queueId = row['queue_id'] as string;
    const q = (await c.query<{ paused_at: number | null; paused_until: number | null }>('SELECT paused_at, paused_until FROM queues WHERE id = $1 FOR UPDATE', [queueId])).rows[0]!;
    const pausedForGood = q.paused_at !== null && q.paused_until === null;
    if (!pausedForGood && !(q.paused_at !== null && q.paused_until! >= until)) {
      await c.query('UPDATE queues SET paused_at = $1, paused_until = $2, pause_reason = $3 WHERE id = $4', [now, until, reason, queueId]);
      events.push({ kind: 'queue', id: queueId });
    }
    await recordAgent(c, queueId, r.agentSession, events);
    tell(c, events);
    return readTask(c, r.task, now);
  });
}

/**
 * Flags running tasks past 1× their timeout as stale, fails (or retries) those past 2×, fails (or retries) the tasks
 * of lost workers, and ends pauses whose time is up. One sweeper at a time across every machine: whoever takes the
 * sweep lock; the others return at once with nothing done (null), since that sweep covers them.
 *
 * A lost worker, as in the embedded store's housekeeping: its task heartbeated at least once (so `sparkq run` works
 * it, not a bare claim) and then fell silent for longer than worker.leaseSeconds (the sweeper's sparkq.yml).
 */
export async function sweep(ctx: TeamContext, lockKey: string): Promise<(SweepResult & { lost: Task[] }) | null> {
  return ctx.db.tx(async (c) => {
    const got = await c.query<{ ok: boolean }>('SELECT pg_try_advisory_xact_lock(hashtext($1)) AS ok', [lockKey]);
    if (!got.rows[0]!.ok) return null;
    const now = ctx.clock.now();
    const events: ChangeEvent[] = [];
    const failedRows = (await c.query<Row>("SELECT * FROM tasks WHERE status = 'running' AND started_at + 2 * timeout_s * 1000 < $1 ORDER BY seq FOR UPDATE SKIP LOCKED", [now])).rows;
    for (const row of failedRows) {
      const ran = now - (row['started_at'] as number);
      await failOrRetry(ctx, c, row, autoFailedReason(row['timeout_s'] as number, ran), { data: null, usage: null, stdout: null, stderr: null, change: null }, events);
    }
    const lostRows = (
      await c.query<Row>(
        "SELECT * FROM tasks WHERE status = 'running' AND heartbeat_at > started_at AND heartbeat_at < $1 ORDER BY seq FOR UPDATE SKIP LOCKED",
        [now - ctx.config.worker.leaseSeconds * 1000],
      )
    ).rows;
    for (const row of lostRows) {
      const reason = workerLostReason(row['worker'] as string | null, now - (row['heartbeat_at'] as number));
      await failOrRetry(ctx, c, row, reason, { data: null, usage: null, stdout: null, stderr: null, change: null }, events);
    }
    const staled = (
      await c.query<{ id: string; queue_id: string }>(
        "UPDATE tasks SET stale_at = $1 WHERE status = 'running' AND stale_at IS NULL AND started_at + timeout_s * 1000 < $1 RETURNING id, queue_id",
        [now],
      )
    ).rows;
    for (const s of staled) events.push({ kind: 'task', id: s.id, queueId: s.queue_id, status: 'running' });
    const resumed = (await c.query<{ id: string }>('UPDATE queues SET paused_at = NULL, paused_until = NULL, pause_reason = NULL WHERE paused_until IS NOT NULL AND paused_until <= $1 RETURNING id', [now])).rows;
    for (const q of resumed) events.push({ kind: 'queue', id: q.id });
    tell(c, events);
    const read = async (ids: string[]) => (ids.length === 0 ? [] : tasksOf(c, (await c.query<Row>(`${TASK_SELECT} WHERE t.id = ANY($1::text[]) ORDER BY t.seq`, [ids])).rows, now));
    return {
      staled: await read(staled.map((s) => s.id)),
      failed: await read(failedRows.map((r) => r['id'] as string)),
      lost: await read(lostRows.map((r) => r['id'] as string)),
    };
  });
}

/** What an attempt changed in its worktree, as the row keeps it. */
function changeOf(change: TaskChange | undefined): string | null {
  return change ? JSON.stringify(change) : null;
}
