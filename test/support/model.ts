import type { Queue, Task } from '../../src/core/model';

/*
 * Whole Task and Queue objects for tests that need one without a queue (text rendering, an executor's context): every
 * field at a plain default, the test's own values over it. One place to add a field when the model gains one.
 */

const EPOCH = '2026-01-01T00:00:00.000Z';

export function fakeQueue(over: Partial<Queue> = {}): Queue {
  return {
    id: 'que_1',
    name: 'Q',
    sessionId: 'ses_1',
    session: 's',
    instructions: '',
    workdir: null,
    status: 'active',
    maxWorkers: 1,
    maxAttempts: null,
    paused: false,
    pausedUntil: null,
    pauseReason: null,
    codexThreadId: null,
    claudeSessionId: null,
    isolation: null,
    createdAt: EPOCH,
    endedAt: null,
    counts: { queued: 0, running: 0, succeeded: 0, failed: 0 },
    stale: 0,
    ...over,
  };
}

export function fakeTask(over: Partial<Task> = {}): Task {
  return {
    id: 'tsk_a',
    sessionId: 'ses_1',
    session: 's',
    queueId: 'que_1',
    queue: 'Q',
    tool: 'llm-codex',
    taskClass: 'LLM_HEAVY',
    prompt: 'p',
    payload: null,
    status: 'queued',
    priority: 0,
    timeoutSeconds: 900,
    attempt: 0,
    worker: null,
    createdAt: EPOCH,
    startedAt: null,
    heartbeatAt: null,
    finishedAt: null,
    stale: false,
    staleAt: null,
    result: null,
    error: null,
    stdout: null,
    stderr: null,
    usage: null,
    retryOf: null,
    idempotencyKey: null,
    after: [],
    waitingOn: [],
    blockedBy: [],
    notBefore: null,
    plan: null,
    planKey: null,
    change: null,
    pattern: null,
    mergeGroup: null,
    validation: null,
    validates: null,
    archived: false,
    ...over,
  };
}
