import type { Task, TaskStatus } from './model';

/** What changed, sent to listeners once the change is durable. */
export type ChangeEvent =
  | { kind: 'session'; id: string }
  | { kind: 'queue'; id: string }
  | { kind: 'task'; id: string; queueId: string; status: TaskStatus | 'removed' };

/** What one sweep did: running tasks it flagged stale (past 1× their timeout) and those it failed (past 2×). */
export interface SweepResult {
  staled: Task[];
  failed: Task[];
}
