import { resolveTimeoutSeconds } from '../core/config';
import { SparkqError } from '../core/errors';
import type { ChangeEvent } from '../core/events';
import { looksLikeId, newId } from '../core/ids';
import { checkEnqueue, checkPlanApply, parseInput as parse } from '../core/inputs';
import {
  type ApplyPlanInput,
  type EnqueueInput,
  type PlanApplyResult,
  type PlanInput,
  RequeueFailedInput,
  RequeueOptions,
  type Task,
  type TaskStatus,
  type TaskValidation,
} from '../core/model';
import { planEnqueues } from '../core/queue/rules';
import { firstRound, isDone, parseValidation, requeuedValidation, validateSpecOf, validationText } from '../core/queue/validation';
import { type TeamContext, tell } from './context';
import type { Sql } from './db';
import { type Row, activeQueueRow, planIdOf, readTask, rowByRef, taskRow, tasksOf } from './rows';

/*
 * Tasks put on the team queue: enqueue (with dependencies and idempotency keys), requeue and plans. Each is one
 * transaction. Uniqueness is the database's: an idempotency key is a unique index per queue, so two machines that
 * enqueue with one key make one task; a plan's apply holds its plan row's lock while it reads which of its tasks
 * exist and adds the rest, so applies from anywhere make each task once.
 */

/** A new task's row, as INSERT takes it. */
interface NewTask {
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
  key: string | null;
  planId: string | null;
  planKey: string | null;
  after: string[];
  /** TaskPattern as JSON. */
  pattern: string | null;
  mergeGroup: string | null;
  /** TaskValidation as JSON. */
  validation: string | null;
  /** On a validation task: the task it checks. */
  validates: string | null;
}

/** An enqueue checked outside the transaction; `inQueue` finishes it against the queue row read inside. */
export function prepareEnqueue(ctx: TeamContext, input: EnqueueInput, what = 'task') {
  const { input: e, payload } = checkEnqueue(input, what);
  const tool = ctx.config.tools[e.tool];
  if (!tool) {
    throw new SparkqError('not-found', `unknown tool ${JSON.stringify(e.tool)}; tools in sparkq.yml: ${Object.keys(ctx.config.tools).sort().join(', ')}`);
  }
  const spec = validateSpecOf(ctx.config, tool.name, e.validate, what);
  return {
    queue: e.queue,
    after: e.after ? [...new Set(e.after)] : [],
    /** The validator's own queue, which must be active: checked in the enqueue's transaction. */
    validatorQueue: spec?.queue,
    inQueue: (q: Row, extra: { planId?: string; planKey?: string } = {}): NewTask => ({
      id: newId('tsk'),
      sessionId: q['session_id'] as string,
      queueId: q['id'] as string,
      tool: tool.name,
      taskClass: tool.taskClass,
      prompt: e.prompt ?? null,
      payload,
      priority: e.priority ?? 0,
      timeoutS: e.timeoutSeconds ?? resolveTimeoutSeconds(ctx.config, tool),
      at: ctx.clock.now(),
      retryOf: null,
      key: e.idempotencyKey ?? null,
      planId: extra.planId ?? null,
      planKey: extra.planId !== undefined ? (extra.planKey ?? '') : null,
      after: e.after ? [...new Set(e.after)] : [],
      pattern: e.pattern ? JSON.stringify(e.pattern) : null,
      mergeGroup: e.mergeGroup ?? null,
      validation: spec ? validationText(firstRound(spec)) : null,
      validates: null,
    }),
  };
}

/**
 * Counts the tasks of `ids` that are not done (succeeded and, when validated, passed) (the new task waits for them), locking their rows until the
 * transaction ends, so that none of them finishes unseen between this count and the insert. `pending` gives the
 * statuses of tasks made earlier in the same transaction (a plan's tasks wait on each other).
 */
async function waitingOn(c: Sql, ids: readonly string[], what: string, pending?: ReadonlyMap<string, string>): Promise<number> {
  const outside = ids.filter((id) => !pending?.has(id));
  const found = new Map<string, { status: string; validation: string | null }>();
  if (outside.length > 0) {
    const r = await c.query<{ id: string; status: string; validation: string | null }>('SELECT id, status, validation FROM tasks WHERE id = ANY($1::text[]) ORDER BY id FOR SHARE', [outside]);
    for (const row of r.rows) found.set(row.id, { status: row.status, validation: row.validation });
  }
  let waiting = 0;
  for (const id of ids) {
    const status = pending?.get(id) ?? found.get(id)?.status;
    if (status === undefined) {
      throw new SparkqError(
        'not-found',
        `${what} waits on task ${JSON.stringify(id)}${looksLikeId(id, 'tsk') ? '' : ' (task ids look like tsk_4k2m9x0q7hzt)'}, which does not exist: a task can only wait on tasks that exist`,
      );
    }
    // Done: succeeded and, when validated, passed.
    if (!isDone(status, found.get(id)?.validation ?? null)) waiting++;
  }
  return waiting;
}

/** Inserts a task with its dependency edges; null when its idempotency key already made a task on its queue. */
async function insertTask(c: Sql, t: NewTask, waiting: number): Promise<string | null> {
  const r = await c.query<{ id: string }>(
    `INSERT INTO tasks(id, session_id, queue_id, tool, task_class, prompt, payload, status, priority, timeout_s, created_at, retry_of,
                       plan_id, plan_key, deps, waiting, idem_key, pattern, merge_group, validation, validates)
     VALUES ($1, $2, $3, $4, $5, $6, $7, 'queued', $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)
     ON CONFLICT (queue_id, idem_key) WHERE idem_key IS NOT NULL DO NOTHING RETURNING id`,
    [
      t.id, t.sessionId, t.queueId, t.tool, t.taskClass, t.prompt, t.payload, t.priority, t.timeoutS, t.at, t.retryOf, t.planId, t.planKey, t.after.length,
      waiting, t.key, t.pattern, t.mergeGroup, t.validation, t.validates,
    ],
  );
  if (r.rows.length === 0) return null;
  if (t.after.length > 0) {
    await c.query('INSERT INTO task_deps(task_id, after_id) SELECT $1, unnest($2::text[])', [t.id, t.after]);
  }
  return t.id;
}

/** The task an enqueue with this key made on this queue (a repeat returns it, whatever became of it). */
async function keyed(c: Sql, queueId: string, key: string): Promise<string | null> {
  const r = await c.query<{ id: string }>('SELECT id FROM tasks WHERE queue_id = $1 AND idem_key = $2', [queueId, key]);
  return r.rows[0]?.id ?? null;
}

const queuedEvent = (t: { id: string; queueId: string }): ChangeEvent => ({ kind: 'task', id: t.id, queueId: t.queueId, status: 'queued' });

/**
 * An enqueue that waits on nothing, in one statement: the active queue by id or name (share-locked, so it cannot end
 * meanwhile), the task inserted unless its idempotency key already made one; announced once committed. No row back: no
 * such active queue, or the key was used; the caller then takes the full path, which says which.
 */
const ENQUEUE_SQL = `
  WITH q AS (
    SELECT id, session_id, name FROM queues WHERE (id = $1 OR name = $1) AND status = 'active' ORDER BY created_at DESC LIMIT 1 FOR SHARE
  ), made AS (
    INSERT INTO tasks(id, session_id, queue_id, tool, task_class, prompt, payload, status, priority, timeout_s, created_at, idem_key, pattern, merge_group, validation)
    SELECT $2, q.session_id, q.id, $3, $4, $5, $6, 'queued', $7, $8, $9, $10, $11, $12, $13 FROM q
    ON CONFLICT (queue_id, idem_key) WHERE idem_key IS NOT NULL DO NOTHING
    RETURNING *
  )
  SELECT made.*, q.name AS q_name, s.name AS s_name
    FROM made JOIN q ON q.id = made.queue_id JOIN sessions s ON s.id = made.session_id`;

export async function enqueue(ctx: TeamContext, input: EnqueueInput): Promise<Task> {
  const prepared = prepareEnqueue(ctx, input);
  if (prepared.after.length === 0 && prepared.validatorQueue === undefined) {
    const t = prepared.inQueue({ id: null, session_id: null });
    const rows = await ctx.db.query<Row>(
      ENQUEUE_SQL,
      [prepared.queue, t.id, t.tool, t.taskClass, t.prompt, t.payload, t.priority, t.timeoutS, t.at, t.key, t.pattern, t.mergeGroup, t.validation],
      'sparkq-enqueue',
    );
    if (rows[0]) {
      ctx.notifier.post([{ kind: 'task', id: t.id, queueId: rows[0]['queue_id'] as string, status: 'queued' }]);
      return (await tasksOf(ctx.db.pool, rows, t.at))[0]!;
    }
  }
  return ctx.db.tx(async (c) => {
    // Shared lock on the queue: it cannot end while the task goes onto it.
    const q = await activeQueueRow(c, prepared.queue, 'new tasks', 'share');
    if (prepared.validatorQueue !== undefined) await activeQueueRow(c, prepared.validatorQueue, 'validation tasks');
    const t = prepared.inQueue(q);
    const waiting = t.after.length > 0 ? await waitingOn(c, t.after, 'task') : 0;
    const id = (await insertTask(c, t, waiting)) ?? (await keyed(c, t.queueId, t.key!))!;
    if (id === t.id) tell(c, [queuedEvent(t)]);
    return readTask(c, id, ctx.clock.now());
  });
}

/**
 * A copy of a failed task as a new queued task; the tasks that waited on the failed one now wait on the copy. `next`
 * gives the prompt and validation of a validated task's next round; without it a validated task whose last round
 * failed starts a fresh series (see requeuedValidation).
 */
export async function requeueRow(ctx: TeamContext, c: Sql, row: Row, key: string | null, next?: { prompt: string; validation: TaskValidation }): Promise<NewTask> {
  const q = await activeQueueRow(c, row['queue_id'] as string, 'requeued tasks', 'share');
  const originalId = row['id'] as string;
  const after = Number(row['deps']) > 0 ? (await c.query<{ after_id: string }>('SELECT after_id FROM task_deps WHERE task_id = $1 ORDER BY after_id', [originalId])).rows.map((r) => r.after_id) : [];
  const copy = next ?? requeuedValidation((row['prompt'] as string | null) ?? null, parseValidation(row['validation']));
  const t: NewTask = {
    id: newId('tsk'),
    sessionId: q['session_id'] as string,
    queueId: q['id'] as string,
    tool: row['tool'] as string,
    taskClass: row['task_class'] as string,
    prompt: copy.prompt,
    payload: (row['payload'] as string | null) ?? null,
    priority: row['priority'] as number,
    timeoutS: row['timeout_s'] as number,
    at: ctx.clock.now(),
    retryOf: originalId,
    key,
    planId: (row['plan_id'] as string | null) ?? null,
    planKey: row['plan_id'] ? ((row['plan_key'] as string | null) ?? '') : null,
    after,
    pattern: (row['pattern'] as string | null) ?? null,
    mergeGroup: (row['merge_group'] as string | null) ?? null,
    validation: copy.validation ? validationText(copy.validation) : null,
    validates: (row['validates'] as string | null) ?? null,
  };
  const waiting = after.length > 0 ? await waitingOn(c, after, `task ${originalId}`) : 0;
  const made = await insertTask(c, t, waiting);
  if (made === null) throw new SparkqError('conflict', `idempotency key ${JSON.stringify(key)} already made a task on this queue; use a new key for another requeue`);
  // The primary key makes a second requeue of the same task fail here, even from another machine at the same moment.
  await c.query('INSERT INTO requeues(original_id, new_id) VALUES ($1, $2)', [originalId, t.id]);
  await c.query('UPDATE task_deps SET after_id = $1 WHERE after_id = $2', [t.id, originalId]);
  return t;
}

export async function requeue(ctx: TeamContext, taskId: string, options: RequeueOptions = {}): Promise<Task> {
  const { idempotencyKey: key } = parse(RequeueOptions, options, 'requeue options');
  return ctx.db.tx(async (c) => {
    const row = await taskRow(c, taskId, 'FOR UPDATE');
    const made = key !== undefined ? await keyed(c, row['queue_id'] as string, key) : null;
    if (made !== null) {
      const same = await c.query('SELECT 1 FROM requeues WHERE original_id = $1 AND new_id = $2', [taskId, made]);
      if (same.rows.length > 0) return readTask(c, made, ctx.clock.now());
    }
    const status = row['status'] as TaskStatus;
    if (status !== 'failed') throw new SparkqError('conflict', `task ${taskId} is ${status}; only a failed task can be requeued`, { status });
    const again = await c.query<{ new_id: string }>('SELECT new_id FROM requeues WHERE original_id = $1', [taskId]);
    if (again.rows[0]) throw new SparkqError('conflict', `task ${taskId} was already requeued as ${again.rows[0].new_id}; requeue that one if it failed too`);
    if (made !== null) throw new SparkqError('conflict', `idempotency key ${JSON.stringify(key)} already made task ${made} on this queue; use a new key for another requeue`);
    const t = await requeueRow(ctx, c, row, key ?? null);
    tell(c, [queuedEvent(t)]);
    return readTask(c, t.id, ctx.clock.now());
  });
}

/** Requeues every failed task (of a queue, plan or session; all when none is given) not requeued yet, as one change. */
export async function requeueFailed(ctx: TeamContext, input: RequeueFailedInput = {}): Promise<Task[]> {
  const f = parse(RequeueFailedInput, input, 'requeue filter');
  return ctx.db.tx(async (c) => {
    const where = ["t.status = 'failed'", 'NOT EXISTS (SELECT 1 FROM requeues r WHERE r.original_id = t.id)'];
    const params: unknown[] = [];
    const add = (sql: string, v: unknown) => {
      params.push(v);
      where.push(`${sql} $${params.length}`);
    };
    if (f.queue !== undefined) add('t.queue_id =', (await rowByRef(c, 'queues', f.queue))['id']);
    if (f.session !== undefined) add('t.session_id =', (await rowByRef(c, 'sessions', f.session))['id']);
    if (f.plan !== undefined) add('t.plan_id =', await planIdOf(c, f.plan));
    const rows = (await c.query<Row>(`SELECT t.* FROM tasks t WHERE ${where.join(' AND ')} ORDER BY t.seq FOR UPDATE`, params)).rows;
    const made: NewTask[] = [];
    for (const row of rows) made.push(await requeueRow(ctx, c, row, null));
    tell(c, made.map(queuedEvent));
    const now = ctx.clock.now();
    const out: Task[] = [];
    for (const t of made) out.push(await readTask(c, t.id, now));
    return out;
  });
}

/**
 * Enqueues a validated plan as one change: every task it names that an earlier apply of the same plan id has not
 * enqueued yet, waiting on each other as the plan says. Applying it again enqueues nothing and reports what exists.
 */
export async function applyPlan(ctx: TeamContext, input: ApplyPlanInput): Promise<PlanApplyResult> {
  const { plan, file } = checkPlanApply(input) as { plan: PlanInput; file?: string };
  const prepared = planEnqueues(plan).map((t) => ({ key: t.key, after: t.after, p: prepareEnqueue(ctx, t.input, `plan task ${t.key}`) }));
  return ctx.db.tx(async (c) => {
    const now = ctx.clock.now();
    // The plan row first: its lock makes concurrent applies of this plan take turns, each seeing the other's tasks.
    await c.query(
      `INSERT INTO plans(id, description, file, created_at, applied_at, tasks) VALUES ($1, $2, $3, $4, $4, 0)
       ON CONFLICT (id) DO UPDATE SET description = excluded.description, file = excluded.file, applied_at = excluded.applied_at`,
      [plan.id, plan.description ?? '', file ?? null, now],
    );
    const existing = new Map<string, { id: string; status: TaskStatus }>();
    // The newest task of each name (a requeued task replaces the failed one); not the checks of a name.
    const named = 'SELECT id, plan_key, status FROM tasks WHERE plan_id = $1 AND validates IS NULL ORDER BY seq';
    for (const r of (await c.query<{ id: string; plan_key: string; status: TaskStatus }>(named, [plan.id])).rows) {
      existing.set(r.plan_key, { id: r.id, status: r.status });
    }
    const idOf = new Map<string, string>();
    for (const [key, e] of existing) idOf.set(key, e.id);
    const pending = new Map<string, string>();
    const made: { key: string; t: NewTask }[] = [];
    const queues = new Map<string, Row>();
    for (const x of prepared) {
      if (existing.has(x.key)) continue;
      const q = queues.get(x.p.queue) ?? (await activeQueueRow(c, x.p.queue, 'new tasks', 'share'));
      queues.set(x.p.queue, q);
      if (x.p.validatorQueue !== undefined) await activeQueueRow(c, x.p.validatorQueue, 'validation tasks');
      const t = x.p.inQueue(q, { planId: plan.id, planKey: x.key });
      t.after = [...new Set(x.after.map((a) => idOf.get(a) ?? a))];
      idOf.set(x.key, t.id);
      const waiting = t.after.length > 0 ? await waitingOn(c, t.after, `plan task ${x.key}`, pending) : 0;
      await insertTask(c, t, waiting);
      pending.set(t.id, 'queued');
      made.push({ key: x.key, t });
    }
    await c.query('UPDATE plans SET tasks = tasks + $2 WHERE id = $1', [plan.id, made.length]);
    tell(c, made.map((m) => queuedEvent(m.t)));
    const created: PlanApplyResult['created'] = [];
    for (const m of made) created.push({ key: m.key, task: await readTask(c, m.t.id, now) });
    return { plan: plan.id, created, existing: [...existing].map(([key, e]) => ({ key, id: e.id, status: e.status })) };
  });
}
