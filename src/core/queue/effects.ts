import type { ChangeEvent } from '../events';
import type { TaskStatus } from '../model';
import type { Row, SqlDatabase } from '../store/sqlite';
import { type QueueOf, type Tally, kindOf } from './effectKinds';

export { EffectBatch } from './effectBatch';

/*
 * Effects are what the journal records: the resolved outcome of a mutation (ids chosen, times fixed, the task a claim
 * picked). The live operation and start-up replay both go through `applyEffect`, so replay does exactly what the
 * live path did. Field names are short because every acknowledged mutation writes one of these to disk, and they are
 * the journal's format: old journals must still replay. What each kind does is defined once, in effectKinds.ts.
 */

export interface TaskRowInsert {
  /** FIFO position; never reused, even after the task with the highest seq is archived or purged. */
  seq: number;
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
  /** The plan the task came from and its name in it. */
  planId?: string;
  planKey?: string;
  /** Tasks it waits on, and how many of them had not succeeded when it was enqueued. */
  after?: string[];
  waiting?: number;
  /** The enqueue's (or requeue's) idempotency key: a repeat with it on this queue returns this task. */
  key?: string;
  /** The prompt pattern it was made from, as JSON (TaskPattern). */
  pattern?: string;
  /** Merged automatically with the other tasks of this group (a plan batch with merge: auto). */
  mergeGroup?: string;
  /** Its validator and where it stands, as JSON (TaskValidation). */
  validation?: string;
  /** On a validation task: the task it checks. */
  validates?: string;
}

export interface ChunkMeta {
  id: number;
  file: string;
  count: number;
  minSeq: number;
  maxSeq: number;
  minFinishedAt: number;
  maxFinishedAt: number;
  bytes: number;
  crc: number;
  /** Bloom filter of the chunk's task ids, base64. */
  bloom: string;
  at: number;
}

export type Effect =
  | { t: 'session.create'; id: string; name: string; description: string; at: number }
  | { t: 'session.end'; id: string; at: number }
  | {
      t: 'queue.create';
      id: string;
      sessionId: string;
      name: string;
      instructions: string;
      workdir: string | null;
      maxWorkers: number;
      maxAttempts?: number | null;
      /** QueueIsolation as JSON: each task in a worktree of its own. */
      isolation?: string | null;
      at: number;
    }
  | { t: 'queue.end'; id: string; at: number }
  /** A paused queue hands out no tasks; `until` (ms) ends the pause by itself, null pauses until resumed. */
  | { t: 'queue.pause'; id: string; at: number; until: number | null; reason: string | null }
  | { t: 'queue.resume'; id: string; at: number }
  /** A plan applied (or applied again): its record; its new tasks are task.enqueue effects of the same change. */
  | { t: 'plan.apply'; id: string; description: string; file: string | null; at: number; tasks: number }
  /** The agent thread/session a queue's tasks continue (Codex thread id, Claude session id); null clears it. */
  | { t: 'queue.agent'; id: string; codexThreadId?: string | null; claudeSessionId?: string | null }
  | ({ t: 'task.enqueue' } & TaskRowInsert)
  | { t: 'task.claim'; id: string; queueId: string; lease: string; worker: string | null; attempt: number; at: number }
  | { t: 'task.heartbeat'; id: string; at: number }
  | { t: 'task.stale'; id: string; at: number }
  | {
      t: 'task.finish';
      id: string;
      queueId: string;
      attempt: number;
      status: 'succeeded' | 'failed';
      at: number;
      summary: string | null;
      data: string | null;
      error: string | null;
      stdout: string | null;
      stderr: string | null;
      usage: string | null;
      /** What the attempt changed in its worktree (TaskChange as JSON). */
      change?: string | null;
      /** Tasks waiting on this one that it no longer holds up (it succeeded): their waiting count goes down by one. */
      release?: string[];
    }
  /**
   * A running task goes back to the queue: after a failed attempt that will be retried (not before `notBefore`), or
   * released unfailed because the agent hit a usage/rate limit. The attempt ends with that outcome and error.
   */
  | {
      t: 'task.return';
      id: string;
      queueId: string;
      attempt: number;
      outcome: 'failed' | 'released';
      at: number;
      notBefore: number | null;
      error: string;
      data: string | null;
      stdout: string | null;
      stderr: string | null;
      usage: string | null;
      change?: string | null;
    }
  /**
   * A validated task's validation changes (a validation task recorded in it, or a verdict): the task keeps or changes
   * its finished status (`from` → `to`: a failed round fails a succeeded task, with `error`). A pass releases the
   * tasks that waited on it, as a plain success does.
   */
  | {
      t: 'task.verdict';
      id: string;
      queueId: string;
      from: 'succeeded';
      to: 'succeeded' | 'failed';
      validation: string;
      error?: string;
      release?: string[];
    }
  /**
   * What a finished task changed in its worktree and/or the tokens it used, recorded after it was finished without its
   * worker (JSON each; absent: unchanged).
   */
  | { t: 'task.change'; id: string; queueId: string; status: 'succeeded' | 'failed'; change?: string; usage?: string }
  | { t: 'archive.add'; chunk: ChunkMeta; ids: string[] }
  | {
      t: 'purge';
      /** Live tasks removed. */
      ids: string[];
      /** Archive chunks removed (their files are deleted once this is durable). */
      dropChunks: number[];
      /** Chunks rewritten without their purged tasks: the old chunk id and its replacement. */
      replaceChunks: { old: number; chunk: ChunkMeta }[];
      /** How many tasks left each (queue, status) count, live and archived together. */
      counts: [queueId: string, status: TaskStatus, n: number][];
    };

/** Applies one effect. Throws when the effect does not fit the database (a bug, or a damaged journal on replay). */
export function applyEffect(db: SqlDatabase, e: Effect): void {
  kindOf(e).apply(db, e);
}

export function applyEffects(db: SqlDatabase, effects: readonly Effect[]): void {
  for (const e of effects) kindOf(e).apply(db, e);
}

/**
 * The task row as it is after `e` was applied to `before` (the full row as read before the change; not needed for an
 * enqueue, which inserts the whole row). It saves reading the row back after every write; the unit tests check that
 * it matches what the database holds, column for column.
 */
export function rowAfter(e: Effect & { t: 'task.enqueue' | 'task.claim' | 'task.finish' | 'task.return' }, before?: Row): Row {
  return kindOf(e).row!(e, before === undefined ? undefined : { ...before });
}

/** What a change of these effects does to the queue's in-memory bookkeeping. */
export function tallyEffects(effects: readonly Effect[]): Tally {
  const t: Tally = { finished: 0, seqHigh: 0, names: false };
  for (const e of effects) kindOf(e).tally?.(e, t);
  return t;
}

/** The change events of these effects, in order. */
export function effectEvents(effects: readonly Effect[], queueOf: QueueOf): ChangeEvent[] {
  const out: ChangeEvent[] = [];
  for (const e of effects) kindOf(e).events(e, out, queueOf);
  return out;
}
