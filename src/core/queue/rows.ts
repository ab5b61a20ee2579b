import { iso, isoOrNull } from '../clock';
import type { Attempt, JsonValue, QueueIsolation, Task, TaskChange, TaskPattern, TaskResult, TaskStatus, TaskValidation, Usage } from '../model';
import type { Row } from '../store/sqlite';

/** How a task row maps to the Task callers see. Names of queues and sessions come from the live tables. */
export interface Names {
  queue(id: string): string;
  session(id: string): string;
  /** What a task waits on (asked only for a task that has dependencies): every id, the unsucceeded and the failed. */
  deps(id: string, queued: boolean): { after: string[]; waitingOn: string[]; blockedBy: string[] };
  /** The time staleness is read against (ms): a running task is stale once it has run past its timeout, swept or not. */
  now(): number;
}

const NO_DEPS = Object.freeze({ after: Object.freeze([]) as unknown as string[], waitingOn: Object.freeze([]) as unknown as string[], blockedBy: Object.freeze([]) as unknown as string[] });

function parseJson<T>(text: unknown): T | null {
  return typeof text === 'string' ? (JSON.parse(text) as T) : null;
}
const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);
const num = (v: unknown): number | null => (typeof v === 'number' ? v : null);

export function rowToTask(r: Row, names: Names, archived = false): Task {
  const status = r['status'] as TaskStatus;
  const summary = str(r['summary']);
  // Staleness is a fact of time, not of whether a sweep has run: the moment it starts is derived from the row.
  const startedAt = num(r['started_at']);
  const staleAt = status === 'running' && startedAt !== null ? startedAt + (r['timeout_s'] as number) * 1000 : null;
  const sessionId = r['session_id'] as string;
  const queueId = r['queue_id'] as string;
  const id = r['id'] as string;
  const deps = typeof r['deps'] === 'number' && r['deps'] > 0 ? names.deps(id, status === 'queued') : NO_DEPS;
  return {
    id,
    sessionId,
    session: names.session(sessionId),
    queueId,
    queue: names.queue(queueId),
    tool: r['tool'] as string,
    taskClass: r['task_class'] as string,
    prompt: str(r['prompt']),
    payload: parseJson<JsonValue>(r['payload']),
    status,
    priority: r['priority'] as number,
    timeoutSeconds: r['timeout_s'] as number,
    attempt: r['attempt'] as number,
    worker: str(r['worker']),
    createdAt: iso(r['created_at'] as number),
    startedAt: isoOrNull(startedAt),
    heartbeatAt: isoOrNull(num(r['heartbeat_at'])),
    finishedAt: isoOrNull(num(r['finished_at'])),
    stale: staleAt !== null && names.now() > staleAt,
    staleAt: isoOrNull(staleAt),
    result: resultOf(status, summary, parseJson<JsonValue>(r['data'])),
    error: str(r['error']),
    stdout: str(r['stdout']),
    stderr: str(r['stderr']),
    usage: parseJson<Usage>(r['usage']),
    retryOf: str(r['retry_of']),
    idempotencyKey: str(r['idem_key']),
    after: [...deps.after],
    waitingOn: [...deps.waitingOn],
    blockedBy: [...deps.blockedBy],
    notBefore: status === 'queued' ? isoOrNull(num(r['not_before'])) : null,
    plan: str(r['plan_id']),
    planKey: str(r['plan_key']),
    change: parseJson<TaskChange>(r['change']),
    pattern: parseJson<TaskPattern>(r['pattern']),
    mergeGroup: str(r['merge_group']),
    validation: parseJson<TaskValidation>(r['validation']),
    validates: str(r['validates']),
    archived,
  };
}

/** A queue row's isolation column (JSON, or null for none): both stores keep it as text. */
export function isolationOf(v: unknown): QueueIsolation | null {
  return parseJson<QueueIsolation>(v);
}

export function rowToAttempt(r: Row): Attempt {
  return {
    n: r['n'] as number,
    worker: str(r['worker']),
    startedAt: iso(r['started_at'] as number),
    endedAt: isoOrNull(num(r['ended_at'])),
    outcome: r['outcome'] as Attempt['outcome'],
    error: str(r['error']),
  };
}

/** Succeeded: summary and data. Failed with data (partial results): that data, no summary. Otherwise none. */
function resultOf(status: string, summary: string | null, data: JsonValue | null): TaskResult | null {
  if (status === 'succeeded' && summary !== null) return { summary, data };
  if (status === 'failed' && data !== null) return { summary: null, data };
  return null;
}
