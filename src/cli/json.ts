import type { Attempt, Claim, Queue, QueueIsolation, Session, StatusCounts, Task, TaskDetail } from '../core/model';
import type { ScriptEntry } from '../core/scriptIndex';
import type { OwnerInfo, StatusReport, WorkerInfo } from '../api/contract';

/*
 * The `--json` shapes. Scripts and agents parse these, so each is written out field by field: a field added to a core
 * type does not appear here by accident, and one renamed there fails the type check here instead of silently
 * changing the output. Add fields; never rename or remove one.
 */

export interface SessionJson {
  id: string;
  name: string;
  description: string;
  status: 'active' | 'ended';
  createdAt: string;
  endedAt: string | null;
}

export function sessionJson(s: Session): SessionJson {
  return { id: s.id, name: s.name, description: s.description, status: s.status, createdAt: s.createdAt, endedAt: s.endedAt };
}

export interface QueueJson {
  id: string;
  name: string;
  session: string;
  sessionId: string;
  instructions: string;
  workdir: string | null;
  status: 'active' | 'ended';
  maxWorkers: number;
  maxAttempts: number | null;
  paused: boolean;
  pausedUntil: string | null;
  pauseReason: string | null;
  isolation: QueueIsolation | null;
  createdAt: string;
  endedAt: string | null;
  counts: StatusCounts;
  stale: number;
}

export function queueJson(q: Queue): QueueJson {
  return {
    id: q.id,
    name: q.name,
    session: q.session,
    sessionId: q.sessionId,
    instructions: q.instructions,
    workdir: q.workdir,
    status: q.status,
    maxWorkers: q.maxWorkers,
    maxAttempts: q.maxAttempts,
    paused: q.paused,
    pausedUntil: q.pausedUntil,
    pauseReason: q.pauseReason,
    isolation: q.isolation === null ? null : { ...q.isolation },
    createdAt: q.createdAt,
    endedAt: q.endedAt,
    counts: { queued: q.counts.queued, running: q.counts.running, succeeded: q.counts.succeeded, failed: q.counts.failed },
    stale: q.stale,
  };
}

/**
 * A task as `--json` prints it: every field of the queue's Task, in a fixed order (taskJson), copied so that what is
 * printed never shares an object with the queue.
 */
export type TaskJson = Task;

export function taskJson(t: Task): TaskJson {
  return {
    id: t.id,
    session: t.session,
    sessionId: t.sessionId,
    queue: t.queue,
    queueId: t.queueId,
    tool: t.tool,
    taskClass: t.taskClass,
    prompt: t.prompt,
    payload: t.payload,
    status: t.status,
    priority: t.priority,
    timeoutSeconds: t.timeoutSeconds,
    attempt: t.attempt,
    worker: t.worker,
    createdAt: t.createdAt,
    startedAt: t.startedAt,
    heartbeatAt: t.heartbeatAt,
    finishedAt: t.finishedAt,
    stale: t.stale,
    staleAt: t.staleAt,
    result: t.result === null ? null : { summary: t.result.summary, data: t.result.data },
    error: t.error,
    stdout: t.stdout,
    stderr: t.stderr,
    usage: t.usage === null ? null : { ...t.usage },
    retryOf: t.retryOf,
    idempotencyKey: t.idempotencyKey,
    after: [...t.after],
    waitingOn: [...t.waitingOn],
    blockedBy: [...t.blockedBy],
    notBefore: t.notBefore,
    plan: t.plan,
    planKey: t.planKey,
    change: t.change === null ? null : { ...t.change, files: t.change.files.map((f) => ({ ...f })) },
    pattern: t.pattern === null ? null : { ...t.pattern },
    mergeGroup: t.mergeGroup,
    validation: t.validation === null ? null : { ...t.validation, by: [...t.validation.by], spec: { ...t.validation.spec } },
    validates: t.validates,
    archived: t.archived,
  };
}

export interface AttemptJson {
  n: number;
  worker: string | null;
  startedAt: string;
  endedAt: string | null;
  outcome: Attempt['outcome'];
  error: string | null;
}

export interface TaskDetailJson extends TaskJson {
  instructions: string;
  timings: { waitMs: number | null; runMs: number | null };
  attempts: AttemptJson[];
}

export function taskDetailJson(t: TaskDetail): TaskDetailJson {
  return {
    ...taskJson(t),
    instructions: t.instructions,
    timings: { waitMs: t.timings.waitMs, runMs: t.timings.runMs },
    attempts: t.attempts.map((a) => ({ n: a.n, worker: a.worker, startedAt: a.startedAt, endedAt: a.endedAt, outcome: a.outcome, error: a.error })),
  };
}

export interface ClaimJson {
  task: TaskJson;
  instructions: string;
  lease: string;
}

export function claimJson(c: Claim): ClaimJson {
  return { task: taskJson(c.task), instructions: c.instructions, lease: c.lease };
}

export interface OwnerJson {
  pid: number;
  generation: number;
  role: string;
  since: string;
  /** True when no other process owned the queue, so this very command did for its own duration. */
  isThisCommand: boolean;
}

export function ownerJson(o: OwnerInfo, isThisCommand: boolean): OwnerJson {
  return { pid: o.pid, generation: o.generation, role: o.role, since: o.since, isThisCommand };
}

export interface StatusJson {
  workspace: string;
  project: string;
  owner: OwnerJson;
  counts: StatusCounts & { stale: number };
  queues: QueueJson[];
  workers: WorkerInfo[];
}

export function statusJson(workspace: string, s: StatusReport, isThisCommand: boolean): StatusJson {
  const c = s.counts;
  return {
    workspace,
    project: s.project,
    owner: ownerJson(s.owner, isThisCommand),
    counts: { queued: c.queued, running: c.running, succeeded: c.succeeded, failed: c.failed, stale: c.stale },
    queues: s.queues.map(queueJson),
    workers: s.workers.map((w) => ({ ...w })),
  };
}

/** A script as `--json` prints it: the index's entry without its change-detection fields. */
export type ScriptJson = Omit<ScriptEntry, 'mtimeMs' | 'size'>;

export function scriptJson(s: ScriptEntry): ScriptJson {
  return { name: s.name, path: s.path, relativePath: s.relativePath, dir: s.dir, description: s.description, inputs: s.inputs, outputs: s.outputs, tags: [...s.tags] };
}
