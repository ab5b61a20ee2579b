import pg from 'pg';
import { SparkqError, errorMessage } from '../core/errors';

/*
 * The team database: one pool of connections to PostgreSQL, transactions that retry when PostgreSQL asks (a
 * serialization failure or a deadlock, where nothing was committed), and the mapping of connection failures to the
 * queue's own error codes. Every statement takes its values as parameters; no text of a task is ever part of SQL.
 */

export type Sql = Pick<pg.PoolClient, 'query'>;

/** int8 (bigint: times in ms, seqs, counts) as a JS number: every value we store is far below 2^53. */
const TYPES = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === 20 ? (v: string) => Number(v) : (pg.types.getTypeParser as (o: number, f?: string) => unknown)(oid, format)) as pg.CustomTypesConfig['getTypeParser'],
};

/** SQLSTATEs after which a transaction can simply run again: nothing of it was committed. */
const RETRYABLE = new Set(['40001', '40P01']);
/** SQLSTATE classes that mean the server cannot be reached or went away. */
const UNAVAILABLE_CLASSES = ['08', '57'];

/** A failure that proves the statement never reached the server: writing to a connection that was already gone. */
function neverSent(e: unknown): boolean {
  const code = (e as { code?: unknown }).code;
  return code === 'EPIPE' || /not queryable/.test(errorMessage(e));
}

/** A URL safe to print: the password replaced. */
export function redactUrl(url: string): string {
  return url.replace(/^(\w+:\/\/[^:/@]*:)[^@]*@/, '$1***@');
}

export interface TeamDbOptions {
  url: string;
  /** Most connections this process holds at once (default 10). */
  max?: number;
  /** The PostgreSQL schema that holds SparkQ's tables (default `sparkq`); checked against SCHEMA_NAME by the caller. */
  schema: string;
  /** For messages: who connects (e.g. `sparkq-cli`), shown in pg_stat_activity too. */
  applicationName?: string;
}

export class TeamDb {
  readonly pool: pg.Pool;
  private ended = false;
  /** Called when a transaction of `tx` ends, committed or not, with the connection it ran on. */
  onTxEnd: (c: Sql, committed: boolean) => void = () => undefined;

  constructor(readonly options: TeamDbOptions) {
    this.pool = new pg.Pool({
      connectionString: options.url,
      max: options.max ?? 10,
      application_name: options.applicationName ?? 'sparkq',
      types: TYPES,
      options: `-c search_path=${options.schema}`,
      idleTimeoutMillis: 30_000,
      connectionTimeoutMillis: 10_000,
    });
    // An idle connection that breaks (the server restarted) is dropped from the pool; the next query opens another.
    this.pool.on('error', () => undefined);
  }

  /** Where this database is, for messages: the URL without its password. */
  get where(): string {
    return redactUrl(this.options.url);
  }

  /** One statement on any connection of the pool. */
  async query<R extends pg.QueryResultRow = Record<string, unknown>>(text: string, values: unknown[] = [], name?: string): Promise<R[]> {
    for (let round = 1; ; round++) {
      try {
        const r = await this.pool.query<R>(name ? { name, text, values } : { text, values });
        return r.rows;
      } catch (e) {
        // A pooled connection the server dropped (it restarted) fails on the write: the statement never left, so it
        // runs again on another connection; the pool may hold several such, hence a few rounds.
        if (round <= (this.options.max ?? 10) && neverSent(e)) continue;
        throw this.mapError(e);
      }
    }
  }

  /**
   * Runs `fn` in one transaction on one connection and commits; rolls back if it throws. Runs it again (a few times)
   * when PostgreSQL reports a serialization failure or a deadlock, since nothing of it was committed.
   */
  async tx<T>(fn: (c: Sql) => Promise<T>, isolation: 'read committed' | 'repeatable read' | 'serializable' = 'read committed'): Promise<T> {
    for (let round = 1; ; round++) {
      let client: pg.PoolClient;
      try {
        client = await this.pool.connect();
      } catch (e) {
        throw this.mapError(e);
      }
      let broken = false;
      // A checked-out connection that breaks (the server restarted) reports it here as well as to the query in
      // flight: noted, never an uncaught error.
      const onError = () => (broken = true);
      client.on('error', onError);
      let begun = false;
      try {
        await client.query(isolation === 'read committed' ? 'BEGIN' : `BEGIN ISOLATION LEVEL ${isolation.toUpperCase()}`);
        begun = true;
        const out = await fn(client);
        await client.query('COMMIT');
        this.onTxEnd(client, true);
        return out;
      } catch (e) {
        this.onTxEnd(client, false);
        if (!broken) {
          try {
            await client.query('ROLLBACK');
          } catch {
            broken = true;
          }
        }
        const code = (e as { code?: unknown }).code;
        if (typeof code === 'string' && RETRYABLE.has(code) && round < 8) {
          await new Promise((r) => setTimeout(r, Math.random() * 5 * round));
          continue;
        }
        // A pooled connection found dead at BEGIN ran nothing of `fn`: take another (the pool opens a new one).
        if (!begun && round <= (this.options.max ?? 10) && this.mapError(e) instanceof SparkqError) continue;
        throw this.mapError(e);
      } finally {
        client.off('error', onError);
        client.release(broken);
      }
    }
  }

  /** A connection of its own, outside the pool's rotation (LISTEN, advisory locks held across statements). */
  async connect(): Promise<pg.Client> {
    const c = new pg.Client({ connectionString: this.options.url, application_name: this.options.applicationName ?? 'sparkq', types: TYPES, options: `-c search_path=${this.options.schema}` });
    c.on('error', () => undefined);
    try {
      await c.connect();
    } catch (e) {
      throw this.mapError(e);
    }
    return c;
  }

  async end(): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    await this.pool.end();
  }

  /** Our own errors pass through; a server that cannot be reached is `unavailable`; anything else says what failed. */
  mapError(e: unknown): Error {
    if (e instanceof SparkqError) return e;
    const code = (e as { code?: unknown }).code;
    const msg = errorMessage(e);
    const sysCodes = ['ECONNREFUSED', 'ENOENT', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'EPIPE'];
    if (
      (typeof code === 'string' && (sysCodes.includes(code) || UNAVAILABLE_CLASSES.some((c) => code.startsWith(c)))) ||
      /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error/.test(msg)
    ) {
      return new SparkqError('unavailable', `the team database at ${this.where} cannot be reached (${msg}); check that PostgreSQL runs and SPARKQ_DATABASE_URL is right`);
    }
    if (code === '28P01' || code === '28000') {
      return new SparkqError('unavailable', `the team database at ${this.where} refused the login (${msg}); check the user and password in SPARKQ_DATABASE_URL`);
    }
    // PostgreSQL text cannot hold U+0000 (the embedded store can): a clear refusal, nothing stored.
    if (code === '22021' || code === '22P05') {
      return new SparkqError('invalid-input', `the team database cannot store this text (${msg}): PostgreSQL text cannot hold the NUL character U+0000; remove it`);
    }
    if (code === '3D000') return new SparkqError('unavailable', `the team database at ${this.where} does not exist (${msg}); create it first (createdb)`);
    return e instanceof Error ? e : new Error(msg);
  }
}
