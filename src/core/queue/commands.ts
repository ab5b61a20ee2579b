import { resolveTimeoutSeconds } from '../config';
import { SparkqError, isSparkqError } from '../errors';
import { newId } from '../ids';
import { checkEnqueue, checkPlanApply, parseInput as parse } from '../inputs';
import {
  type AgentSession,
  AgentSessionSchema,
  type ApplyPlanInput,
  CreateQueueInput,
  CreateSessionInput,
  type EnqueueInput,
  PauseQueueInput,
  type PlanApplyResult,
  type PlanInput,
  type Queue,
  RequeueFailedInput,
  RequeueOptions,
  type Session,
  type Task,
  type TaskStatus,
  type TaskValidation,
} from '../model';
import type { Row, SqlValue } from '../store/sqlite';
import { type Effect, rowAfter } from './effects';
import type { QueueHandle } from './handle';
import type { QueueQueries } from './queries';
import { rowToTask } from './rows';
import { activeNameTaken, planEnqueues } from './rules';
import { firstRound, isDone, parseValidation, requeuedValidation, validateSpecOf, validationText } from './validation';

/** The queue.agent effect that records the agent conversation a queue's tasks continue; null when `ids` names none. */
export function agentEffect(queueId: string, ids: AgentSession): (Effect & { t: 'queue.agent' }) | null {
  const effect: Effect & { t: 'queue.agent' } = { t: 'queue.agent', id: queueId };
  if (ids.codexThreadId !== undefined) effect.codexThreadId = ids.codexThreadId;
  if (ids.claudeSessionId !== undefined) effect.claudeSessionId = ids.claudeSessionId;
  return effect.codexThreadId === undefined && effect.claudeSessionId === undefined ? null : effect;
}

/**
 * The mutations that shape the queue: sessions and queues, and the tasks put on it (enqueue, plans, requeues).
 * What happens to a task once claimed is in attempts.ts. Each is one synchronous transaction through the handle.
 */
export class QueueCommands {
  constructor(
    private readonly h: QueueHandle,
    private readonly queries: QueueQueries,
  ) {}

  // ---- sessions and queues -------------------------------------------------------------------------------------

  async createSession(input: CreateSessionInput): Promise<Session> {
    const { name, description } = parse(CreateSessionInput, input, 'session');
    return this.h.commit(() => {
      const db = this.h.db;
      const existing = db.value("SELECT id FROM sessions WHERE name = ? AND status = 'active'", [name]);
      if (existing) throw activeNameTaken('session', name, String(existing));
      const id = newId('ses');
      return {
        effects: [{ t: 'session.create', id, name, description: description ?? '', at: this.h.clock.now() }],
        result: () => this.queries.getSession(id),
      };
    });
  }

  /** Ends a session and its active queues. Their tasks stay as they are; ended queues hand out no more work. */
  async endSession(ref: string): Promise<Session> {
    return this.h.commit(() => {
      const row = this.h.sessionRow(ref);
      const id = row['id'] as string;
      if (row['status'] === 'ended') throw new SparkqError('conflict', `session ${String(row['name'])} (${id}) has already ended`);
      const at = this.h.clock.now();
      const queues = this.h.db.all<{ id: string }>("SELECT id FROM queues WHERE session_id = ? AND status = 'active'", [id]);
      return {
        effects: [...queues.map((q): Effect => ({ t: 'queue.end', id: q.id, at })), { t: 'session.end', id, at }],
        result: () => this.queries.getSession(id),
      };
    });
  }

  async createQueue(input: CreateQueueInput): Promise<Queue> {
    const q = parse(CreateQueueInput, input, 'queue');
    return this.h.commit(() => {
      const session = this.h.sessionRow(q.session);
      if (session['status'] !== 'active') {
        throw new SparkqError('conflict', `session ${String(session['name'])} has ended; create the queue in an active session`);
      }
      const existing = this.h.db.value("SELECT id FROM queues WHERE name = ? AND status = 'active'", [q.name]);
      if (existing) throw activeNameTaken('queue', q.name, String(existing));
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
            ...(q.isolation !== undefined ? { isolation: JSON.stringify(q.isolation) } : {}),
            at: this.h.clock.now(),
          },
        ],
        result: () => this.queries.getQueue(id),
      };
    });
  }

  async endQueue(ref: string): Promise<Queue> {
    return this.h.commit(() => {
      const row = this.h.queueRow(ref);
      const id = row['id'] as string;
      if (row['status'] === 'ended') throw new SparkqError('conflict', `queue ${String(row['name'])} (${id}) has already ended`);
      return { effects: [{ t: 'queue.end', id, at: this.h.clock.now() }], result: () => this.queries.getQueue(id) };
    });
  }

  /**
   * Records the agent conversation a queue's tasks continue: the Codex thread and/or Claude session the last task
   * ran in (the worker sets it after each agent task). `null` forgets it, so the next task starts a new one.
   */
  async setAgentSession(ref: string, ids: AgentSession): Promise<Queue> {
    const checked = parse(AgentSessionSchema, ids, 'agent session');
    return this.h.commit(() => {
      const id = this.h.queueRow(ref)['id'] as string;
      const effect = agentEffect(id, checked);
      if (!effect) throw new SparkqError('invalid-input', 'say which agent id to record: codexThreadId and/or claudeSessionId (null forgets it)');
      return { effects: [effect], result: () => this.queries.getQueue(id) };
    });
  }

  /** Stops a queue handing out tasks (running ones go on), until resumed or for `forSeconds`. */
  async pauseQueue(input: PauseQueueInput): Promise<Queue> {
    const p = parse(PauseQueueInput, input, 'pause');
    return this.h.commit(() => {
      const row = this.h.activeQueue(p.queue, 'pauses');
      const id = row['id'] as string;
      const now = this.h.clock.now();
      const until = p.forSeconds !== undefined ? now + Math.round(p.forSeconds * 1000) : null;
      return { effects: [{ t: 'queue.pause', id, at: now, until, reason: p.reason?.trim() || null }], result: () => this.queries.getQueue(id) };
    });
  }

  async resumeQueue(ref: string): Promise<Queue> {
    return this.h.commit(() => {
      const row = this.h.queueRow(ref);
      const id = row['id'] as string;
      if (row['paused_at'] === null) throw new SparkqError('conflict', `queue ${String(row['name'])} is not paused`);
      return { effects: [{ t: 'queue.resume', id, at: this.h.clock.now() }], result: () => this.queries.getQueue(id) };
    });
  }

  // ---- tasks onto the queue ------------------------------------------------------------------------------------

  async enqueue(input: EnqueueInput): Promise<Task> {
    const prepare = this.prepareEnqueue(input);
    return this.h.commit(() => {
      const effect = prepare(this.h.nextTaskSeq(), null);
      // A repeat of an enqueue with the same key: the task the first one made, whatever became of it.
      const made = this.keyed(effect.queueId, effect.key);
      if (made !== null) return { effects: [], result: () => this.h.task(made) };
      // The new row is exactly what the effect inserted; no need to read it back.
      return { effects: [effect], result: () => rowToTask(rowAfter(effect), this.h.names) };
    });
  }

  /**
   * The task an enqueue or requeue with this idempotency key made on this queue, if it still exists. A purge of live
   * tasks forgets their keys; one of archived tasks leaves them, so a key whose task is gone counts as free.
   */
  private keyed(queueId: string, key: string | undefined): string | null {
    if (key === undefined) return null;
    const id = this.h.db.value('SELECT task_id FROM task_keys WHERE queue_id = ? AND key = ?', [queueId, key]) as string | undefined;
    if (id === undefined) return null;
    try {
      this.h.anyTaskRow(id);
      return id;
    } catch (e) {
      if (isSparkqError(e, 'not-found')) return null;
      throw e;
    }
  }

  /**
   * Enqueues many tasks as one change: one transaction and one journal record (so one sync), all or none. Each task
   * is exactly what `enqueue` makes of its input, in order.
   */
  async enqueueMany(inputs: readonly EnqueueInput[]): Promise<Task[]> {
    const prepared = inputs.map((input, i) => this.prepareEnqueue(input, inputs.length > 1 ? `task ${i + 1}` : 'task'));
    return this.h.commit(() => {
      let seq = this.h.nextTaskSeq();
      const effects: (Effect & { t: 'task.enqueue' })[] = [];
      // Each input's task: a new one, or the one an earlier enqueue with its key made (in the queue or in this batch).
      const ids: string[] = [];
      const batchKeys = new Map<string, string>();
      for (const prepare of prepared) {
        const effect = prepare(seq, null);
        const slot = effect.key !== undefined ? `${effect.queueId}\u0000${effect.key}` : null;
        const made = (slot !== null ? batchKeys.get(slot) : undefined) ?? this.keyed(effect.queueId, effect.key);
        if (made !== null) {
          ids.push(made);
          continue;
        }
        if (slot !== null) batchKeys.set(slot, effect.id);
        effects.push(effect);
        ids.push(effect.id);
        seq++;
      }
      const rows = new Map(effects.map((e) => [e.id, e]));
      return { effects, result: () => ids.map((id) => (rows.has(id) ? rowToTask(rowAfter(rows.get(id)!), this.h.names) : this.h.task(id))) };
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
    const tool = this.h.config.tools[e.tool];
    if (!tool) {
      throw new SparkqError('not-found', `unknown tool ${JSON.stringify(e.tool)}; tools in sparkq.yml: ${Object.keys(this.h.config.tools).sort().join(', ')}`);
    }
    const afterIds = e.after ? [...new Set(e.after)] : [];
    const spec = validateSpecOf(this.h.config, tool.name, e.validate, what);
    return (seq, pending, id = newId('tsk')) => {
      const q = this.h.activeQueue(e.queue, 'new tasks');
      if (spec?.queue !== undefined) this.h.activeQueue(spec.queue, 'validation tasks');
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
        timeoutS: e.timeoutSeconds ?? resolveTimeoutSeconds(this.h.config, tool),
        at: this.h.clock.now(),
        retryOf: null,
        ...(e.idempotencyKey !== undefined ? { key: e.idempotencyKey } : {}),
        ...(e.pattern !== undefined ? { pattern: JSON.stringify(e.pattern) } : {}),
        ...(e.mergeGroup !== undefined ? { mergeGroup: e.mergeGroup } : {}),
        ...(spec !== undefined ? { validation: validationText(firstRound(spec)) } : {}),
        ...(extra.planId !== undefined ? { planId: extra.planId, planKey: extra.planKey ?? '' } : {}),
        ...(deps ? { after: afterIds, waiting: deps.waiting } : {}),
      };
    };
  }

  /**
   * Checks that every task waited on exists; counts those that are not done (succeeded and, when validated, passed):
   * the new task waits for them.
   */
  private dependencies(ids: readonly string[], pending: ReadonlyMap<string, string> | null, what: string): { waiting: number } {
    let waiting = 0;
    for (const id of ids) {
      let status = pending?.get(id);
      let validation: unknown = null;
      if (status === undefined) {
        try {
          const { row } = this.h.anyTaskRow(id);
          status = row['status'] as string;
          validation = row['validation'];
        } catch (err) {
          if (err instanceof SparkqError && err.code === 'not-found') {
            throw new SparkqError('not-found', `${what} waits on ${err.message.replace(/^no task/, 'task')}, which does not exist: a task can only wait on tasks that exist`);
          }
          throw err;
        }
      }
      if (!isDone(status, validation)) waiting++;
    }
    return { waiting };
  }

  /** Seqs order tasks for FIFO and paging, so one is never handed out twice, even after archiving the newest task. */

  /**
   * Puts a failed task back as a new task (new id, same work), linked to the original by `retryOf`. Tasks that waited
   * on the failed one now wait on the copy, so its success releases them.
   */
  async requeue(taskId: string, options: RequeueOptions = {}): Promise<Task> {
    const { idempotencyKey: key } = parse(RequeueOptions, options, 'requeue options');
    return this.h.commit(() => {
      const { row } = this.h.anyTaskRow(taskId);
      // A repeat of a requeue with the same key: the task the first one made, whatever became of either since.
      const made = this.keyed(row['queue_id'] as string, key);
      if (made !== null && this.h.db.value('SELECT 1 FROM requeues WHERE original_id = ? AND new_id = ?', [taskId, made]) !== undefined) {
        return { effects: [], result: () => this.h.task(made) };
      }
      const status = row['status'] as TaskStatus;
      if (status !== 'failed') {
        throw new SparkqError('conflict', `task ${taskId} is ${status}; only a failed task can be requeued`, { status });
      }
      const again = this.h.db.value('SELECT new_id FROM requeues WHERE original_id = ?', [taskId]);
      if (again) throw new SparkqError('conflict', `task ${taskId} was already requeued as ${String(again)}; requeue that one if it failed too`);
      if (made !== null) {
        throw new SparkqError('conflict', `idempotency key ${JSON.stringify(key)} already made task ${made} on this queue; use a new key for another requeue`);
      }
      const effect = this.requeueOf(row, this.h.nextTaskSeq(), key);
      return { effects: [effect], result: () => this.h.task(effect.id) };
    });
  }

  /**
   * The copy of a failed task as a new queued task. `next` gives the prompt and validation of a validated task's next
   * round; without it a validated task starts a fresh series when its last round failed (see requeuedValidation).
   */
  requeueOf(row: Row, seq: number, key?: string, next?: { prompt: string; validation: TaskValidation }): Effect & { t: 'task.enqueue' } {
    const q = this.h.activeQueue(row['queue_id'] as string, 'requeued tasks');
    const originalId = row['id'] as string;
    const after =
      ((row['deps'] as number | undefined) ?? 0) > 0
        ? this.h.db.all<{ after_id: string }>('SELECT after_id FROM task_deps WHERE task_id = ?', [originalId]).map((r) => r.after_id)
        : [];
    const planId = row['plan_id'] as string | null | undefined;
    const copy = next ?? requeuedValidation((row['prompt'] as string | null) ?? null, parseValidation(row['validation']));
    return {
      t: 'task.enqueue',
      seq,
      id: newId('tsk'),
      sessionId: q['session_id'] as string,
      queueId: q['id'] as string,
      tool: row['tool'] as string,
      taskClass: row['task_class'] as string,
      prompt: copy.prompt,
      payload: (row['payload'] as string | null) ?? null,
      priority: row['priority'] as number,
      timeoutS: row['timeout_s'] as number,
      at: this.h.clock.now(),
      retryOf: originalId,
      ...(key !== undefined ? { key } : {}),
      ...(typeof row['pattern'] === 'string' ? { pattern: row['pattern'] } : {}),
      ...(typeof row['merge_group'] === 'string' ? { mergeGroup: row['merge_group'] } : {}),
      ...(copy.validation !== null ? { validation: validationText(copy.validation) } : {}),
      ...(typeof row['validates'] === 'string' ? { validates: row['validates'] } : {}),
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
    return this.h.commit(() => {
      const where = ["status = 'failed'"];
      const params: SqlValue[] = [];
      if (f.queue !== undefined) {
        where.push('queue_id = ?');
        params.push(this.h.queueRow(f.queue)['id'] as string);
      }
      if (f.session !== undefined) {
        where.push('session_id = ?');
        params.push(this.h.sessionRow(f.session)['id'] as string);
      }
      if (f.plan !== undefined) {
        where.push('plan_id = ?');
        params.push(this.h.planId(f.plan));
      }
      const sql = `SELECT * FROM tasks WHERE ${where.join(' AND ')} ORDER BY seq`;
      const rows = this.h.db.all(sql, params);
      for (const chunk of this.h.archive.chunks()) rows.push(...this.h.archive.open(chunk).all(sql, params));
      rows.sort((a, b) => (a['seq'] as number) - (b['seq'] as number));
      const requeued = new Set(
        this.h.db.all<{ original_id: string }>('SELECT original_id FROM requeues').map((r) => r.original_id),
      );
      const todo = rows.filter((r) => !requeued.has(r['id'] as string));
      const first = this.h.nextTaskSeq();
      const effects = todo.map((row, i) => this.requeueOf(row, first + i));
      return { effects, result: () => effects.map((e) => this.h.task(e.id)) };
    });
  }

  /**
   * Enqueues a validated plan as one change: every task it names that an earlier apply of the same plan id has not
   * enqueued yet, waiting on each other as the plan says. Applying the same plan again enqueues nothing and reports
   * what exists.
   */
  async applyPlan(input: ApplyPlanInput): Promise<PlanApplyResult> {
    const { plan, file } = checkPlanApply(input) as { plan: PlanInput; file?: string };
    const prepared = planEnqueues(plan).map((t) => ({
      key: t.key,
      after: t.after,
      prepare: this.prepareEnqueue(t.input, `plan task ${t.key}`, { planId: plan.id, planKey: t.key }),
    }));
    return this.h.commit(() => {
      const db = this.h.db;
      // The newest task of each name (a requeued task replaces the failed one); not the checks of a name.
      const existing = new Map<string, { id: string; status: TaskStatus; seq: number }>();
      const sql = 'SELECT id, plan_key, status, seq FROM tasks WHERE plan_id = ? AND validates IS NULL';
      const note = (r: Row) => {
        const key = r['plan_key'] as string;
        const had = existing.get(key);
        if (!had || had.seq < (r['seq'] as number)) existing.set(key, { id: r['id'] as string, status: r['status'] as TaskStatus, seq: r['seq'] as number });
      };
      for (const r of db.all(sql, [plan.id])) note(r);
      for (const chunk of this.h.archive.chunks()) for (const r of this.h.archive.open(chunk).all(sql, [plan.id])) note(r);

      const idOf = new Map<string, string>();
      const pending = new Map<string, string>();
      for (const [key, e] of existing) idOf.set(key, e.id);
      const effects: (Effect & { t: 'task.enqueue' })[] = [];
      let seq = this.h.nextTaskSeq();
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
      const record: Effect = { t: 'plan.apply', id: plan.id, description: plan.description ?? '', file: file ?? null, at: this.h.clock.now(), tasks: effects.length };
      return {
        effects: [record, ...effects],
        result: () => ({
          plan: plan.id,
          created: effects.map((e) => ({ key: e.planKey ?? '', task: this.h.task(e.id) })),
          existing: [...existing].map(([key, e]) => ({ key, id: e.id, status: e.status })),
        }),
      };
    });
  }

}
