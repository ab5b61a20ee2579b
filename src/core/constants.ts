/**
 * The domain's constants, without zod: a client command needs them (option parsing, limits in help texts) before —
 * and usually instead of — the schemas in model.ts, which re-exports them. Keeping zod out of this module keeps it out
 * of every client process that does not validate anything itself.
 */

export const TASK_STATUSES = ['queued', 'running', 'succeeded', 'failed'] as const;
export type TaskStatus = (typeof TASK_STATUSES)[number];
export const FINISHED_STATUSES: readonly TaskStatus[] = ['succeeded', 'failed'];

export type LifecycleStatus = 'active' | 'ended';

/** Limits that keep one task from bloating the store. Output beyond its limit keeps the tail, which says how it ended. */
export const LIMITS = {
  name: 100,
  description: 2_000,
  instructions: 64 * 1024,
  prompt: 256 * 1024,
  payload: 256 * 1024,
  summary: 4_000,
  error: 16 * 1024,
  data: 1024 * 1024,
  output: 64 * 1024,
  worker: 200,
  idempotencyKey: 200,
  maxTimeoutSeconds: 7 * 24 * 3600,
  maxPriority: 1_000_000,
  maxAfter: 1_000,
  /** Changed files listed on a task that ran in a worktree (all are counted). */
  changedFiles: 500,
  /**
   * Arrays and objects nested in one field of a request (a payload, result data, a plan), `[]` being level 1. Deeper
   * values overflow the stack of recursive readers (schemas, JSON.stringify) long before a size limit is reached.
   */
  jsonDepth: 64,
} as const;

export const REPORT_GROUPS = ['tool', 'model', 'queue', 'day'] as const;
export type ReportGroup = (typeof REPORT_GROUPS)[number];
