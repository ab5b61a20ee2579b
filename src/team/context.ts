import type { ChangeEvent } from '../core/events';
import type { Clock } from '../core/clock';
import type { SparkqConfig } from '../core/config';
import type { Sql, TeamDb } from './db';

/** What every part of the team store shares: the database, the workspace's config and the clock. */
export interface TeamContext {
  db: TeamDb;
  /** This machine's sparkq.yml: tools, task classes and retry settings are per workspace. */
  config: SparkqConfig;
  clock: Clock;
  /** The NOTIFY channel of this store's schema. */
  channel: string;
}

/** Largest NOTIFY payload PostgreSQL takes is 8000 bytes; events are sent in pieces well under it. */
const NOTIFY_BYTES = 7000;

/**
 * Announces change events to every listener on every machine, within the caller's transaction: PostgreSQL delivers
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
