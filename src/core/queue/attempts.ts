import { resolveTimeoutSeconds } from '../config';
import { SparkqError, isSparkqError } from '../errors';
import { newId, newLeaseToken } from '../ids';
import { checkOutcome, parseInput as parse } from '../inputs';
import {
  type Claim,
  ClaimInput,
  CompleteInput,
  FailInput,
  HeartbeatInput,
  LIMITS,
  RecordRunInput,
  ReleaseInput,
  type Task,
  type TaskChange,
  type TaskStatus,
  type TaskValidation,
  VerdictInput,
} from '../model';
import type { Row } from '../store/sqlite';
import { type QueueCommands, agentEffect } from './commands';
import { type Effect, rowAfter } from './effects';
import type { QueueHandle } from './handle';
import { rowToTask } from './rows';
import { errorText, leaseMismatch, notRunning, nothingToRecord, outputTail, retryDelayMs, runRefused } from './rules';
import {
  type Verdict,
  checkOf,
  feedbackText,
  nextRound,
  parseValidation,
  roundFailed,
  seriesFailed,
  validationPayload,
  validationPrompt,
  validationText,
  verdictOfSuccess,
} from './validation';

/**
 * A task's attempts: claims and what ends or continues them (heartbeat, complete, fail, retry, hand back). Every
 * outcome must present the lease of the claim it belongs to.
 */
export class AttemptCommands {
  constructor(
    private readonly h: QueueHandle,
    /** The copy of a failed task (QueueCommands.requeueOf): a failed validation round requeues its task. */
    private readonly requeueOf: QueueCommands['requeueOf'],
  ) {}

  /** Takes the oldest claimable task of the queue (highest priority first); null when there is none. */
  async claim(input: ClaimInput): Promise<Claim | null> {
    const c = parse(ClaimInput, input, 'claim');
    return this.h.commit(() => {
      const q = this.h.activeQueue(c.queue, 'claims');
      const row = this.h.claimable(q, 1)[0];
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
    return this.h.commit(() => {
      const q = this.h.activeQueue(c.queue, 'claims');
      if (count === 0) return { effects: [], result: () => [] };
      // Nothing else changes in between, so successive claims would take exactly these rows, in this order.
      const rows = this.h.claimable(q, count);
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
      at: this.h.clock.now(),
    };
    // The row read to choose the task, with the claim's changes: what a re-read would return.
    return { effect, result: () => ({ task: rowToTask(rowAfter(effect, row), this.h.names), instructions: q['instructions'] as string, lease }) };
  }

  private runningTask(id: string, lease: string | undefined, verb: string): Row {
    const { row } = this.h.anyTaskRow(id);
    const status = row['status'] as TaskStatus;
    if (status !== 'running') throw notRunning(id, status, verb);
    if (lease !== undefined && lease !== row['lease']) throw leaseMismatch(id, row['attempt'] as number);
    return row;
  }

  async recordRun(input: RecordRunInput): Promise<Task> {
    const r = parse(RecordRunInput, input, 'run record');
    if (r.change === undefined && r.usage === undefined) throw nothingToRecord(r.task);
    return this.h.commit(() => {
      const { row, archived } = this.h.anyTaskRow(r.task);
      const status = row['status'] as TaskStatus;
      if (archived || (status !== 'succeeded' && status !== 'failed') || row['attempt'] !== r.attempt) throw runRefused(r.task, status, row['attempt'] as number, r.attempt, archived);
      const change = r.change !== undefined ? JSON.stringify(r.change) : undefined;
      const usage = r.usage !== undefined ? JSON.stringify(r.usage) : undefined;
      const effect: Effect = { t: 'task.change', id: r.task, queueId: row['queue_id'] as string, status, ...(change !== undefined ? { change } : {}), ...(usage !== undefined ? { usage } : {}) };
      return { effects: [effect], result: () => rowToTask({ ...row, ...(change !== undefined ? { change } : {}), ...(usage !== undefined ? { usage } : {}) }, this.h.names) };
    });
  }

  async heartbeat(input: HeartbeatInput): Promise<void> {
    const h = parse(HeartbeatInput, input, 'heartbeat');
    return this.h.commit(() => {
      this.runningTask(h.task, h.lease, 'sent a heartbeat');
      return { effects: [{ t: 'task.heartbeat', id: h.task, at: this.h.clock.now() }], result: () => undefined };
    });
  }

  async complete(input: CompleteInput): Promise<Task> {
    return this.completeOne(this.prepareComplete(input), input.agentSession);
  }

  /**
   * A validator's verdict: completes the running validation task with summary `pass: …`/`fail: …` and data
   * `{verdict, feedback}`, which pass or fail the checked task's round in the same change.
   */
  async verdict(input: VerdictInput): Promise<Task> {
    const v = parse(VerdictInput, input, 'verdict');
    const feedback = v.feedback?.trim() ?? '';
    const completion: CompleteInput = {
      task: v.task,
      ...(v.lease !== undefined ? { lease: v.lease } : {}),
      summary: feedback === '' ? v.verdict : `${v.verdict}: ${feedback}`,
      data: feedback === '' ? { verdict: v.verdict } : { verdict: v.verdict, feedback },
    };
    return this.completeOne(this.prepareComplete(completion, 'verdict', true), undefined);
  }

  private completeOne(prepare: ReturnType<AttemptCommands['prepareComplete']>, agentSession: CompleteInput['agentSession']): Promise<Task> {
    return this.h.commit(() => {
      const { effect, row, more } = prepare(this.seqs());
      // The agent conversation the task ran in goes onto its queue in the same change: the next task continues it.
      const agent = agentSession ? agentEffect(effect.queueId, agentSession) : null;
      const effects: Effect[] = [effect, ...more];
      if (agent) effects.push(agent);
      // A validated task's validation changed too: read it back then.
      return { effects, result: () => (more.length > 0 ? this.h.task(effect.id) : rowToTask(rowAfter(effect, row), this.h.names)) };
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
    return this.h.commit(() => {
      const seqs = this.seqs();
      const done = prepared.map((prepare) => prepare(seqs));
      return {
        effects: done.flatMap((d) => [d.effect, ...d.more]),
        result: () => done.map((d) => (d.more.length > 0 ? this.h.task(d.effect.id) : rowToTask(rowAfter(d.effect, d.row), this.h.names))),
      };
    });
  }

  /** Hands out task seqs within one change (each enqueue of the change needs its own). */
  private seqs(): () => number {
    let next = this.h.nextTaskSeq();
    return () => next++;
  }

  private prepareComplete(
    input: CompleteInput,
    what = 'completion',
    asVerdict = false,
  ): (seqs: () => number) => { effect: Effect & { t: 'task.finish' }; row: Row; more: Effect[] } {
    const { input: c, data, usage } = checkOutcome(CompleteInput, input, what);
    return (seqs) => {
      const row = this.runningTask(c.task, c.lease, 'completed');
      const validates = row['validates'];
      if (asVerdict && typeof validates !== 'string') {
        throw new SparkqError('invalid-input', `task ${c.task} validates no task: a verdict is for a validation task; finish other tasks with complete or fail`);
      }
      // A validated task's dependents wait for its verdict, not for its success.
      const validated = typeof row['validation'] === 'string';
      const effect: Effect & { t: 'task.finish' } = {
        t: 'task.finish',
        id: c.task,
        queueId: row['queue_id'] as string,
        attempt: row['attempt'] as number,
        status: 'succeeded',
        at: this.h.clock.now(),
        summary: c.summary.trim(),
        data,
        error: null,
        stdout: outputTail(c.stdout),
        stderr: outputTail(c.stderr),
        usage,
        ...changeOf(c.change),
        ...(validated ? {} : this.waitersOf(c.task)),
      };
      let more: Effect[] = [];
      if (validated) more = this.validationTaskOf(row, effect, seqs);
      else if (typeof validates === 'string') more = this.verdictOf(row, verdictOfSuccess(this.h.config.tools[row['tool'] as string]?.knownKind, data), seqs);
      return { row, effect, more };
    };
  }

  /**
   * A validated task succeeded: its validation task (enqueued in the same change) and the record of it in the task's
   * validation. The task's waiters stay held until the verdict.
   */
  private validationTaskOf(row: Row, finish: Effect & { t: 'task.finish' }, seqs: () => number): Effect[] {
    const v = parseValidation(row['validation'])!;
    const tool = this.h.config.tools[v.spec.tool];
    const id = row['id'] as string;
    const record = (to: 'succeeded' | 'failed', validation: TaskValidation, error?: string): Effect => ({
      t: 'task.verdict',
      id,
      queueId: row['queue_id'] as string,
      from: 'succeeded',
      to,
      validation: validationText(validation),
      ...(error !== undefined ? { error } : {}),
    });
    if (!tool) {
      const feedback = `the validator tool ${JSON.stringify(v.spec.tool)} is no longer in sparkq.yml`;
      return [record('failed', { ...v, status: 'failed', feedback }, errorText(seriesFailed(v, feedback)))];
    }
    // On the validator's queue when it is active, else on the task's own.
    let queue = this.h.queueRow(row['queue_id'] as string);
    if (v.spec.queue !== undefined) {
      try {
        const q = this.h.queueRow(v.spec.queue);
        if (q['status'] === 'active') queue = q;
      } catch (e) {
        if (!isSparkqError(e, 'not-found')) throw e;
      }
    }
    const { checked, plan } = checkOf(row, finish, v);
    const enqueue: Effect & { t: 'task.enqueue' } = {
      t: 'task.enqueue',
      seq: seqs(),
      id: newId('tsk'),
      sessionId: queue['session_id'] as string,
      queueId: queue['id'] as string,
      tool: tool.name,
      taskClass: tool.taskClass,
      prompt: validationPrompt(v.spec, checked, tool.knownKind),
      payload: JSON.stringify(validationPayload(checked)),
      priority: row['priority'] as number,
      timeoutS: resolveTimeoutSeconds(this.h.config, tool),
      at: finish.at,
      retryOf: null,
      ...(plan ?? {}),
      validates: id,
    };
    return [enqueue, record('succeeded', { ...v, by: [...v.by, enqueue.id] })];
  }

  /**
   * A validation task's verdict on the task it checks, when that task still waits for it: a pass releases its waiters;
   * a fail fails it, and requeues it as its next round (the feedback in its prompt) unless that was the last round.
   */
  private verdictOf(row: Row, verdict: Verdict, seqs: () => number): Effect[] {
    const tId = row['validates'] as string;
    const t = this.h.db.get('SELECT * FROM tasks WHERE id = ?', [tId]);
    const v = t && t['status'] === 'succeeded' ? parseValidation(t['validation']) : null;
    if (!t || v === null || v.status !== 'pending' || v.by[v.by.length - 1] !== row['id']) return [];
    const base = { t: 'task.verdict' as const, id: tId, queueId: t['queue_id'] as string, from: 'succeeded' as const };
    if (verdict.pass) {
      return [{ ...base, to: 'succeeded', validation: validationText({ ...v, status: 'passed', feedback: verdict.feedback }), ...this.waitersOf(tId) }];
    }
    const feedback = feedbackText(verdict.feedback ?? 'the validator failed the result');
    const failed = validationText({ ...v, status: 'failed', feedback });
    const queueActive = this.h.db.value('SELECT status FROM queues WHERE id = ?', [base.queueId]) === 'active';
    if (v.round < v.maxRounds && queueActive) {
      const copy = this.requeueOf(t, seqs(), undefined, nextRound((t['prompt'] as string | null) ?? null, v, feedback));
      return [{ ...base, to: 'failed', validation: failed, error: errorText(roundFailed(v, feedback)) }, copy];
    }
    return [{ ...base, to: 'failed', validation: failed, error: errorText(seriesFailed(v, feedback)) }];
  }

  /** What a failed attempt does beyond itself: a validation task that failed for good fails its task's round. */
  afterFailure(row: Row, effect: Effect & { t: 'task.finish' | 'task.return' }, seqs: () => number = this.seqs()): Effect[] {
    if (effect.t !== 'task.finish' || typeof row['validates'] !== 'string') return [];
    return this.verdictOf(row, { pass: false, feedback: effect.error }, seqs);
  }

  /** The queued tasks waiting on `id`, which its success releases (one fewer task to wait for). */
  private waitersOf(id: string): { release?: string[] } {
    const ids = this.h.db
      .all<{ id: string }>("SELECT t.id FROM task_deps d JOIN tasks t ON t.id = d.task_id WHERE d.after_id = ? AND t.status = 'queued' AND t.waiting > 0", [id])
      .map((r) => r.id);
    return ids.length > 0 ? { release: ids } : {};
  }

  async fail(input: FailInput): Promise<Task> {
    const { input: f, data, usage } = checkOutcome(FailInput, input, 'failure');
    return this.h.commit(() => {
      const row = this.runningTask(f.task, f.lease, 'failed');
      const effect = this.failOrRetry(row, f.error, { data, usage, stdout: outputTail(f.stdout), stderr: outputTail(f.stderr), ...changeOf(f.change) });
      const more = this.afterFailure(row, effect);
      const agent = f.agentSession ? agentEffect(effect.queueId, f.agentSession) : null;
      const effects: Effect[] = [effect, ...more];
      if (agent) effects.push(agent);
      return { effects, result: () => rowToTask(rowAfter(effect, row), this.h.names) };
    });
  }

  /**
   * A failed attempt: the task fails, unless its queue (or else its tool) allows more attempts; then it goes back to
   * the queue for a retry after an exponential backoff with jitter. Every attempt's error stays in its attempt.
   */
  failOrRetry(
    row: Row,
    error: string,
    extra: { data?: string | null; usage?: string | null; stdout?: string | null; stderr?: string | null; change?: string } = {},
  ): Effect & { t: 'task.finish' | 'task.return' } {
    const failed = this.finishFailed(row, error, extra);
    const q = this.h.db.get('SELECT max_attempts FROM queues WHERE id = ?', [row['queue_id'] as string]);
    const max = (q?.['max_attempts'] as number | null | undefined) ?? this.h.config.tools[row['tool'] as string]?.maxAttempts ?? 1;
    const failedBefore = Number(this.h.db.value("SELECT count(*) FROM attempts WHERE task_id = ? AND outcome = 'failed'", [row['id'] as string]) ?? 0);
    const n = failedBefore + 1;
    if (n >= max) return failed;
    const delay = retryDelayMs(n, this.h.config.retry);
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
      ...(failed.change !== undefined ? { change: failed.change } : {}),
    };
  }

  /**
   * Hands a running task back to its queue unfailed because its agent hit a usage or rate limit, and pauses the queue
   * until the limit resets (as the agent said) or for the configured delay. The queue resumes by itself.
   */
  async release(input: ReleaseInput): Promise<Task> {
    const { input: r, data, usage } = checkOutcome(ReleaseInput, input, 'release');
    return this.h.commit(() => {
      const row = this.runningTask(r.task, r.lease, 'handed back');
      const now = this.h.clock.now();
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
        stdout: outputTail(r.stdout),
        stderr: outputTail(r.stderr),
        usage,
        ...changeOf(r.change),
      };
      const effects: Effect[] = [back];
      const resetAt = r.resetAt === undefined ? undefined : typeof r.resetAt === 'number' ? r.resetAt : Date.parse(r.resetAt);
      const until = resetAt !== undefined && resetAt > now ? resetAt : now + this.h.config.retry.rateLimitPauseSeconds * 1000;
      const q = this.h.db.get('SELECT paused_at, paused_until FROM queues WHERE id = ?', [back.queueId])!;
      const pausedForGood = q['paused_at'] !== null && q['paused_until'] === null;
      // A pause already in force that lasts longer (or until resumed by hand) stays as it is.
      if (!pausedForGood && !(q['paused_at'] !== null && (q['paused_until'] as number) >= until)) {
        effects.push({ t: 'queue.pause', id: back.queueId, at: now, until, reason });
      }
      const agent = r.agentSession ? agentEffect(back.queueId, r.agentSession) : null;
      if (agent) effects.push(agent);
      return { effects, result: () => rowToTask(rowAfter(back, row), this.h.names) };
    });
  }

  private finishFailed(
    row: Row,
    error: string,
    extra: { data?: string | null; usage?: string | null; stdout?: string | null; stderr?: string | null; change?: string } = {},
  ): Effect & { t: 'task.finish' } {
    return {
      t: 'task.finish',
      id: row['id'] as string,
      queueId: row['queue_id'] as string,
      attempt: row['attempt'] as number,
      status: 'failed',
      at: this.h.clock.now(),
      summary: null,
      data: extra.data ?? null,
      error: errorText(error),
      stdout: extra.stdout ?? null,
      stderr: extra.stderr ?? null,
      usage: extra.usage ?? null,
      ...(extra.change !== undefined ? { change: extra.change } : {}),
    };
  }

}

/** What an attempt changed in its worktree, as the effect records it (nothing at all when it ran in no worktree). */
function changeOf(change: TaskChange | undefined): { change?: string } {
  return change ? { change: JSON.stringify(change) } : {};
}
