import { type Clock, iso } from '../clock';
import type { SparkqConfig } from '../config';
import { SparkqError } from '../errors';
import type { ChangeEvent } from '../events';
import { looksLikeId } from '../ids';
import type { Task } from '../model';
import type { Row, SqlDatabase } from '../store/sqlite';
import type { Store } from '../store/store';
import type { Archive } from './archive';
import { type Effect, applyEffects, effectEvents, tallyEffects } from './effects';
import { type Names, rowToTask } from './rows';
import { isDone } from './validation';

/** What a mutation gives `commit`: its effects, and how to read its result once they are applied. */
export type Change<T> = () => { effects: Effect[]; result: () => T };

/**
 * The one handle the queue's commands, queries, reports and timekeeping share: the store, the write path every
 * mutation takes, and the lookups they all need (sessions and queues by reference, tasks live or archived), with the
 * caches that keep those lookups off the hot path.
 */
export class QueueHandle {
  readonly names: Names;
  /** Finished tasks in the live tables (not archived): what archiving keeps under the live cap. */
  liveFinished: number;
  closed = false;
  /** Runs after each change is durable and announced (the timekeeping schedules maintenance from it). */
  afterCommit: () => void = () => undefined;
  private readonly listeners = new Set<(events: ChangeEvent[]) => void>();
  /**
   * Reads the hot path would otherwise repeat on every call: session and queue rows by reference (id or name), their
   * names by id, and the highest task seq handed out. Valid for the committed state; dropped whenever a session or
   * queue changes and whenever a transaction rolls back (it may have filled them from state that was then undone).
   */
  private readonly rowCache = new Map<string, Row>();
  private readonly nameCache = new Map<string, string>();
  private taskSeqHigh: number | null = null;

  constructor(
    readonly store: Store,
    public config: SparkqConfig,
    readonly clock: Clock,
    readonly archive: Archive,
  ) {
    const cachedName = (table: 'queues' | 'sessions', id: string): string => {
      const key = `${table}\u0000${id}`;
      let name = this.nameCache.get(key);
      if (name === undefined) {
        const found = this.db.value(`SELECT name FROM ${table} WHERE id = ?`, [id]) as string | undefined;
        if (found === undefined) return id;
        name = found;
        this.nameCache.set(key, name);
      }
      return name;
    };
    this.names = {
      now: () => this.clock.now(),
      queue: (id) => cachedName('queues', id),
      session: (id) => cachedName('sessions', id),
      deps: (id, queued) => {
        const rows = this.db.all<{ after_id: string; status: string | null; validation: string | null }>(
          'SELECT d.after_id, t.status, t.validation FROM task_deps d LEFT JOIN tasks t ON t.id = d.after_id WHERE d.task_id = ?',
          [id],
        );
        const after = rows.map((r) => r.after_id);
        if (!queued) return { after, waitingOn: [], blockedBy: [] };
        const waitingOn: string[] = [];
        const blockedBy: string[] = [];
        for (const r of rows) {
          // Not live: archived (so finished) or purged.
          const archived = r.status === null ? this.archive.findTask(r.after_id)?.row : undefined;
          const status = r.status ?? ((archived?.['status'] as string | undefined) ?? 'purged');
          // Done: succeeded and, when validated, passed; a result not checked yet still holds it back.
          if (isDone(status, r.status !== null ? r.validation : archived?.['validation'])) continue;
          waitingOn.push(r.after_id);
          if (status === 'failed' || status === 'purged') blockedBy.push(r.after_id);
        }
        return { after, waitingOn, blockedBy };
      },
    };
    this.liveFinished = Number(this.db.value('SELECT count(*) FROM tasks WHERE finished_at IS NOT NULL') ?? 0);
  }

  get db(): SqlDatabase {
    return this.store.db;
  }

  onChange(listener: (events: ChangeEvent[]) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  throwIfClosed(): void {
    if (this.closed) throw new SparkqError('closed', 'the queue is closed');
  }

  // ---- the write path ------------------------------------------------------------------------------------------

  /**
   * Applies a change with the store and resolves with its result once it is durable. `build` runs inside the
   * transaction (no await between reading and writing); so does the result, so it is exactly the state the change
   * produced.
   */
  async commit<T>(build: Change<T>): Promise<T> {
    this.throwIfClosed();
    let written: { result: { value: T; effects: Effect[] }; durable: Promise<void> };
    const finishedBefore = this.liveFinished;
    try {
      written = this.store.write(() => {
        const { effects, result: read } = build();
        applyEffects(this.db, effects);
        const tally = tallyEffects(effects);
        this.liveFinished += tally.finished;
        if (tally.seqHigh > 0) this.taskSeqHigh = Math.max(this.taskSeqHigh ?? 0, tally.seqHigh);
        if (tally.names) this.dropCaches();
        return { result: { value: read(), effects }, record: effects.length > 0 ? effects : null };
      });
    } catch (e) {
      // Rolled back: nothing read or counted inside the transaction can be trusted.
      this.liveFinished = finishedBefore;
      this.dropCaches();
      throw e;
    }
    const { result, durable } = written;
    await durable;
    this.emit(result.effects);
    this.afterCommit();
    return result.value;
  }

  private dropCaches(): void {
    this.rowCache.clear();
    this.nameCache.clear();
    this.taskSeqHigh = null;
  }

  private emit(effects: Effect[]): void {
    if (this.listeners.size === 0 || effects.length === 0) return;
    const events = effectEvents(effects, (id) => this.db.value('SELECT queue_id FROM tasks WHERE id = ?', [id]) as string | undefined);
    for (const l of this.listeners) {
      try {
        l(events);
      } catch {
        // a listener's failure must not affect the queue or other listeners
      }
    }
  }

  /** Seqs order tasks for FIFO and paging, so one is never handed out twice, even after archiving the newest task. */
  nextTaskSeq(): number {
    this.taskSeqHigh ??= Number(this.db.value("SELECT COALESCE((SELECT value FROM meta WHERE key = 'task_seq_high'), 0)") ?? 0);
    return this.taskSeqHigh + 1;
  }

  // ---- lookups -------------------------------------------------------------------------------------------------

  /**
   * Finds a session or queue by id, or by name (the active one first, else the newest ended one). Not found says
   * which names exist, so the caller can fix a typo.
   */
  private rowByRef(table: 'sessions' | 'queues', ref: string): Row {
    const key = `${table}\u0000${ref}`;
    const hit = this.rowCache.get(key);
    if (hit) return hit;
    const db = this.db;
    const what = table === 'sessions' ? 'session' : 'queue';
    const row = looksLikeId(ref, table === 'sessions' ? 'ses' : 'que')
      ? db.get(`SELECT * FROM ${table} WHERE id = ?`, [ref])
      : db.get(`SELECT * FROM ${table} WHERE name = ? ORDER BY status = 'active' DESC, created_at DESC LIMIT 1`, [ref]);
    if (row) {
      // Callers only read rows; freeze the shared copy so that a future change that writes to one fails loudly.
      Object.freeze(row);
      if (this.rowCache.size >= 1000) this.rowCache.clear();
      this.rowCache.set(key, row);
    }
    if (!row) {
      const known = db.all<{ name: string }>(`SELECT name FROM ${table} WHERE status = 'active' ORDER BY name LIMIT 20`).map((r) => r.name);
      throw new SparkqError(
        'not-found',
        `no ${what} named ${JSON.stringify(ref)}; ${known.length > 0 ? `active ${table}: ${known.join(', ')}` : `there are no active ${table}: create one first`}`,
      );
    }
    return row;
  }

  sessionRow(ref: string): Row {
    return this.rowByRef('sessions', ref);
  }

  queueRow(ref: string): Row {
    return this.rowByRef('queues', ref);
  }

  activeQueue(ref: string, forWhat: string): Row {
    const row = this.queueRow(ref);
    if (row['status'] !== 'active') {
      throw new SparkqError('conflict', `queue ${String(row['name'])} (${String(row['id'])}) has ended, so it takes no ${forWhat}; use an active queue`);
    }
    return row;
  }

  /** Whether a queue row is paused now: paused and its pause (if it has an end) not over. */
  pauseOf(r: Row): { paused: boolean; pausedUntil: string | null; pauseReason: string | null } {
    const at = r['paused_at'] as number | null;
    const until = r['paused_until'] as number | null;
    const paused = at !== null && (until === null || until > this.clock.now());
    return { paused, pausedUntil: paused && until !== null ? iso(until) : null, pauseReason: paused ? ((r['pause_reason'] as string | null) ?? null) : null };
  }

  /**
   * Claimable: queued, waiting on no task, and not holding back for a retry delay. The first `count` in claim order
   * (highest priority first, then oldest). None from a paused queue.
   */
  claimable(q: Row, count: number): Row[] {
    if (this.pauseOf(q).paused) return [];
    return this.db.all(
      "SELECT * FROM tasks WHERE queue_id = ? AND status = 'queued' AND waiting = 0 AND (not_before IS NULL OR not_before <= ?) ORDER BY priority DESC, seq LIMIT ?",
      [q['id'] as string, this.clock.now(), count],
    );
  }

  anyTaskRow(id: string): { row: Row; attempts: Row[] | null; archived: boolean } {
    const row = this.db.get('SELECT * FROM tasks WHERE id = ?', [id]);
    if (row) return { row, attempts: null, archived: false };
    const found = looksLikeId(id, 'tsk') ? this.archive.findTask(id) : null;
    if (found) return { row: found.row, attempts: found.attempts, archived: true };
    throw new SparkqError('not-found', `no task ${JSON.stringify(id)}${looksLikeId(id, 'tsk') ? '' : ' (task ids look like tsk_4k2m9x0q7hzt)'}`);
  }

  task(id: string): Task {
    const { row, archived } = this.anyTaskRow(id);
    return rowToTask(row, this.names, archived);
  }

  planId(ref: string): string {
    const found = this.db.value('SELECT id FROM plans WHERE id = ?', [ref]) as string | undefined;
    if (found !== undefined) return found;
    const known = this.db.all<{ id: string }>('SELECT id FROM plans ORDER BY applied_at DESC LIMIT 20').map((r) => r.id);
    throw new SparkqError('not-found', `no plan ${JSON.stringify(ref)}; ${known.length > 0 ? `plans: ${known.join(', ')}` : 'no plan has been applied yet (sparkq plan apply PLAN.yml)'}`);
  }
}
