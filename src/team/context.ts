import type { ChangeEvent } from '../core/events';
import type { Clock } from '../core/clock';
import type { SparkqConfig } from '../core/config';
import type { Sql, TeamDb } from './db';

/** What every part of the team store shares: the database, the workspace's config and the clock. */
export interface TeamContext {
  db: TeamDb;
  /** Sends change events once their change is committed (see Notifier). */
  notifier: Notifier;
  /** This machine's sparkq.yml: tools, task classes and retry settings are per workspace. */
  config: SparkqConfig;
  clock: Clock;
  /** The NOTIFY channel of this store's schema. */
  channel: string;
}

/** How long the Notifier gathers events before it sends them (ms): small beside the 20 ms an event may take. */
const GATHER_MS = 2;

/** Largest NOTIFY payload PostgreSQL takes is 8000 bytes; events are sent in pieces well under it. */
const NOTIFY_BYTES = 7000;

/** Change events told within a transaction, by its connection, until it ends (see TeamDb.onTxEnd). */
const told = new WeakMap<object, ChangeEvent[]>();

/** Notes change events of the caller's transaction; they are sent when (and only if) it commits. */
export function tell(c: Sql, events: readonly ChangeEvent[]): void {
  if (events.length === 0) return;
  const list = told.get(c);
  if (list) list.push(...events);
  else told.set(c, [...events]);
}

/** The events a transaction told, forgotten here: for the end of that transaction. */
export function toldIn(c: Sql): ChangeEvent[] {
  const list = told.get(c) ?? [];
  told.delete(c);
  return list;
}

/**
 * Sends change events to every listener on every machine, after the change that made them is committed, in a
 * statement of their own. Not inside the change's transaction: PostgreSQL serializes the commits of all transactions
 * that NOTIFY behind one lock held through the disk flush, which cut claims + completes per second several-fold.
 * Events are hints for readers to read again, so the price is small: a process that dies between a commit and its
 * notice leaves that notice unsent (watchers still poll now and then). Events gather for GATHER_MS, and while one
 * notice is on its way the next events wait and go together: one statement per round trip however many changes a
 * process makes.
 */
export class Notifier {
  private pending: ChangeEvent[] = [];
  private sending: Promise<void> | null = null;

  constructor(
    private readonly db: TeamDb,
    private readonly channel: string,
  ) {}

  post(events: readonly ChangeEvent[]): void {
    if (events.length === 0) return;
    this.pending.push(...events);
    // A moment's wait lets a task's claim and its completion a moment later (a quick task) go as one notice.
    this.sending ??= new Promise<void>((r) => setTimeout(r, GATHER_MS)).then(() => this.flush()).finally(() => (this.sending = null));
  }

  private async flush(): Promise<void> {
    while (this.pending.length > 0) {
      const batch = this.pending;
      this.pending = [];
      for (const piece of pieces(batch)) {
        await this.db.query('SELECT pg_notify($1, $2)', [this.channel, JSON.stringify(piece)]).catch(() => undefined);
      }
    }
  }

  /** Resolves once every event posted so far has been sent (before a process closes its connections). */
  async drain(): Promise<void> {
    while (this.sending) await this.sending;
  }
}

/** Events in pieces that fit one NOTIFY payload. */
function pieces(events: readonly ChangeEvent[]): ChangeEvent[][] {
  const out: ChangeEvent[][] = [];
  let batch: ChangeEvent[] = [];
  let size = 2;
  for (const e of events) {
    const n = JSON.stringify(e).length + 1;
    if (batch.length > 0 && size + n > NOTIFY_BYTES) {
      out.push(batch);
      batch = [];
      size = 2;
    }
    batch.push(e);
    size += n;
  }
  if (batch.length > 0) out.push(batch);
  return out;
}

/**
 * Announces change events to every listener on every machine, within the caller's transaction (for a one-off such as
 * a migration; the queue's own changes use `tell` and the Notifier): PostgreSQL delivers
 * a NOTIFY only when (and if) the transaction commits, so listeners never hear of a change that was rolled back.
 */
export async function notify(c: Sql, channel: string, events: readonly ChangeEvent[]): Promise<void> {
  let batch: ChangeEvent[] = [];
  let size = 2;
  const flush = async () => {
    if (batch.length === 0) return;
    await c.query('SELECT pg_notify($1, $2)', [channel, JSON.stringify(batch)]);
    batch = [];
    size = 2;
  };
  for (const e of events) {
    const n = JSON.stringify(e).length + 1;
    if (size + n > NOTIFY_BYTES) await flush();
    batch.push(e);
    size += n;
  }
  await flush();
}
