import type { SparkqConfig } from '../config';
import { SparkqError } from '../errors';
import { looksLikeId } from '../ids';
import { type EnqueueInput, LIMITS, type PlanInput, type TaskStatus } from '../model';

/*
 * The queue's rules that do not depend on where it is stored: what a refused transition says, how a retry is
 * delayed, how outputs and errors are cut, the reasons the sweep gives. Both stores (the embedded one in this
 * folder, the team database in src/team) call these, so that they say and do the same.
 */

/**
 * A checked plan's tasks as the enqueues they make, in plan order: each task's name, what it waits on (names of
 * earlier tasks of the plan, or task ids), and its enqueue input. Throws invalid-input for a name used twice or a
 * wait on something that is neither an earlier task nor a task id.
 */
export function planEnqueues(plan: PlanInput): { key: string; after: string[]; input: EnqueueInput }[] {
  const keys = new Set<string>();
  for (const t of plan.tasks) {
    for (const a of t.after) {
      if (!keys.has(a) && !looksLikeId(a, 'tsk')) throw new SparkqError('invalid-input', `plan task ${t.key} waits on ${JSON.stringify(a)}, which is neither an earlier task of the plan nor a task id`);
    }
    if (keys.has(t.key)) throw new SparkqError('invalid-input', `plan task name ${JSON.stringify(t.key)} appears twice`);
    keys.add(t.key);
  }
  return plan.tasks.map((t) => ({
    key: t.key,
    after: t.after,
    input: {
      queue: t.queue,
      tool: t.tool,
      ...(t.prompt !== undefined ? { prompt: t.prompt } : {}),
      ...(t.payload !== undefined ? { payload: t.payload } : {}),
      ...(t.timeoutSeconds !== undefined ? { timeoutSeconds: t.timeoutSeconds } : {}),
      ...(t.priority !== undefined ? { priority: t.priority } : {}),
      ...(t.pattern !== undefined ? { pattern: t.pattern } : {}),
      ...(t.mergeGroup !== undefined ? { mergeGroup: t.mergeGroup } : {}),
      ...(t.validate !== undefined ? { validate: t.validate } : {}),
    },
  }));
}

/** The end of a worker's output, as much as the store keeps, saying how much was cut before it. */
export function outputTail(text: string | undefined, max = LIMITS.output): string | null {
  if (text === undefined) return null;
  if (text.length <= max) return text;
  return `[… ${text.length - max} earlier characters cut]\n` + text.slice(text.length - max);
}

/** A failure's error text as kept: trimmed, and cut at the limit with a mark. */
export function errorText(error: string): string {
  const text = error.trim();
  return text.length > LIMITS.error ? text.slice(0, LIMITS.error) + ' […]' : text;
}

/**
 * The delay before retry `n` (1 = the first): exponential from backoffSeconds, at most maxBackoffSeconds, with
 * "equal jitter" (half fixed, half random), so that tasks that failed together do not retry together.
 */
export function retryDelayMs(n: number, retry: Pick<SparkqConfig['retry'], 'backoffSeconds' | 'maxBackoffSeconds'>): number {
  const full = Math.min(retry.maxBackoffSeconds, retry.backoffSeconds * 2 ** (n - 1)) * 1000;
  return Math.round(full / 2 + Math.random() * (full / 2));
}

/** A running task's outcome asked of a task that is not running. */
export function notRunning(id: string, status: TaskStatus, verb: string): SparkqError {
  const hint = status === 'queued' ? 'claim it first' : status === 'failed' ? 'requeue it to run it again' : 'it is finished';
  return new SparkqError('conflict', `task ${id} is ${status}; only a running task can be ${verb} (${hint})`, { status });
}

/** A lease that is not the one of the task's current attempt. */
export function leaseMismatch(id: string, attempt: number): SparkqError {
  return new SparkqError(
    'lease-mismatch',
    `the lease given for task ${id} is not the lease of its current attempt (attempt ${attempt}): it was mistyped, or it belongs to an ` +
      'earlier attempt of a task that has been claimed again since. Nothing was recorded; use the lease from the claim that is running it ($SPARKQ_LEASE in a worker)',
  );
}

/** A session or queue name already taken by an active one (`id`). */
export function activeNameTaken(what: 'session' | 'queue', name: string, id: string): SparkqError {
  return what === 'session'
    ? new SparkqError('conflict', `a session named ${JSON.stringify(name)} is already active (${id}); pick another name or end it first`)
    : new SparkqError('conflict', `a queue named ${JSON.stringify(name)} is already active (${id}); queue names are unique among active queues`);
}

/** The sweep's reason for failing a task that ran past 2× its timeout. */
export function autoFailedReason(timeoutS: number, ranMs: number): string {
  return `auto-failed: ran longer than 2× its timeout (timeout ${timeoutS} s, ran ${Math.round(ranMs / 1000)} s)`;
}

/** The reason for failing a task whose worker stopped heartbeating (its process or terminal ended). */
export function workerLostReason(worker: string | null, silentMs: number): string {
  return `worker lost: ${worker ?? 'its worker'} sent no heartbeat for ${Math.round(silentMs / 1000)} s (its process or terminal ended); requeue the task to run it again`;
}

/**
 * Why what an attempt changed and used cannot be recorded on a task: it is not finished, it was finished in another
 * attempt, it is archived, or nothing was given.
 */
export function runRefused(id: string, status: TaskStatus, attempt: number, given: number, archived: boolean): SparkqError {
  if (archived) return new SparkqError('conflict', `task ${id} is archived; what an attempt changed and used is recorded only on a task finished recently`);
  if (status !== 'succeeded' && status !== 'failed') return new SparkqError('conflict', `task ${id} is ${status}; what an attempt changed and used is recorded only once it finished (its worker records it with the outcome)`);
  return new SparkqError('conflict', `task ${id} is in attempt ${attempt}, not ${given}; what attempt ${given} changed and used is not recorded`);
}

/** A recordRun that gives neither a change nor a usage. */
export function nothingToRecord(id: string): SparkqError {
  return new SparkqError('invalid-input', `nothing to record on task ${id}: give change (what the attempt changed in its worktree), usage (the tokens it used) or both`);
}
