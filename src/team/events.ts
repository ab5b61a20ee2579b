import type pg from 'pg';
import type { ChangeEvent } from '../core/events';
import type { TeamDb } from './db';

/** How long the event connection stays open after its last listener left. */
const IDLE_CLOSE_MS = 5_000;

/*
 * Change events of a team queue, from every machine: one connection of its own LISTENs on the schema's channel
 * (opened when the first listener comes, closed with the last). Changes announce themselves with NOTIFY in their own
 * transaction, so a listener hears only what was committed. A dropped connection reconnects by itself with backoff;
 * what changed while it was away was not heard, so reconnect listeners are told to read again.
 */
export class TeamEvents {
  private readonly listeners = new Set<(events: ChangeEvent[]) => void>();
  private readonly reconnects = new Set<() => void>();
  private client: pg.Client | null = null;
  private connecting: Promise<void> | null = null;
  private retry: NodeJS.Timeout | null = null;
  private idleTimer: NodeJS.Timeout | null = null;
  private closed = false;
  /** Set once a connection has listened: a later one is a reconnect. */
  private listened = false;

  constructor(
    private readonly db: TeamDb,
    private readonly channel: string,
  ) {}

  onChange(listener: (events: ChangeEvent[]) => void): () => void {
    this.listeners.add(listener);
    this.ensure();
    return () => {
      this.listeners.delete(listener);
      this.idle();
    };
  }

  onReconnect(cb: () => void): () => void {
    this.reconnects.add(cb);
    return () => this.reconnects.delete(cb);
  }

  /** Resolves once this process listens (at once when nobody does: there is nothing to wait for). */
  async ready(): Promise<void> {
    this.ensure();
    while (!this.client && !this.closed && this.listeners.size > 0) await (this.connecting ?? new Promise((r) => setTimeout(r, 50)));
  }

  private ensure(): void {
    if (this.closed || this.client || this.connecting || this.listeners.size === 0) return;
    this.connecting = this.connect(1).finally(() => (this.connecting = null));
  }

  private async connect(round: number): Promise<void> {
    let c: pg.Client | null = null;
    try {
      c = await this.db.connect();
      c.on('notification', (m) => this.deliver(m.payload));
      c.on('error', () => this.lost(c!));
      c.on('end', () => this.lost(c!));
      await c.query(`LISTEN ${this.channel}`);
      if (this.closed || this.listeners.size === 0) {
        await c.end().catch(() => undefined);
        return;
      }
      this.client = c;
      const again = this.listened;
      this.listened = true;
      if (again) for (const cb of this.reconnects) safely(cb);
    } catch {
      if (c) await c.end().catch(() => undefined);
      if (this.closed) return;
      // The server is away (restarting?): try again, less often the longer it is away, at most every 5 s.
      this.retry = setTimeout(() => {
        this.retry = null;
        if (!this.closed && !this.client && this.listeners.size > 0) this.connecting = this.connect(round + 1).finally(() => (this.connecting = null));
      }, Math.min(5000, 100 * 2 ** Math.min(round, 6)));
      this.retry.unref?.();
    }
  }

  private lost(c: pg.Client): void {
    if (this.client !== c) return;
    this.client = null;
    void c.end().catch(() => undefined);
    this.ensure();
  }

  private deliver(payload: string | undefined): void {
    if (!payload) return;
    let events: ChangeEvent[];
    try {
      events = JSON.parse(payload) as ChangeEvent[];
    } catch {
      return;
    }
    for (const l of this.listeners) safely(() => l(events));
  }

  /**
   * The last listener left: the connection closes a little later, not at once, so that a listener that goes and
   * comes back (a view re-subscribing) does not open a new connection and miss what happens in between.
   */
  private idle(): void {
    if (this.listeners.size > 0 || !this.client || this.idleTimer) return;
    this.idleTimer = setTimeout(() => {
      this.idleTimer = null;
      if (this.listeners.size > 0 || !this.client) return;
      const c = this.client;
      this.client = null;
      void c.end().catch(() => undefined);
    }, IDLE_CLOSE_MS);
    this.idleTimer.unref?.();
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.retry) clearTimeout(this.retry);
    if (this.idleTimer) clearTimeout(this.idleTimer);
    await this.connecting?.catch(() => undefined);
    const c = this.client;
    this.client = null;
    if (c) await c.end().catch(() => undefined);
  }
}

/** A listener's failure must not affect the queue or other listeners. */
function safely(fn: () => void): void {
  try {
    fn();
  } catch {
    // ignored on purpose
  }
}
