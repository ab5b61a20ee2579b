import { SparkqError } from '../core/errors';
import type { Sql, TeamDb } from './db';

/*
 * The team database's schema, in numbered migrations. Entry i brings the schema from version i to i + 1; the version
 * is the one row of `schema_version`. Migrations run in one transaction under an advisory lock, so that any number
 * of processes starting at once apply each exactly once; a database whose schema is newer than this SparkQ knows is
 * refused with a clear message, never written to. Never edit a migration that has shipped: add the next one.
 *
 * The shape follows the embedded store's (src/core/queue/schema.ts): the same columns, times as integer
 * milliseconds since the epoch, so that rows map to tasks the same way. What the embedded store keeps in one
 * process's memory (worker places, counts) is here in tables or derived by queries, for every machine to see.
 */

const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE sessions (
    n bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    id text PRIMARY KEY,
    name text NOT NULL,
    description text NOT NULL DEFAULT '',
    status text NOT NULL CHECK (status IN ('active','ended')),
    created_at bigint NOT NULL,
    ended_at bigint
  );
  CREATE UNIQUE INDEX sessions_active_name ON sessions(name) WHERE status = 'active';

  CREATE TABLE queues (
    n bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    id text PRIMARY KEY,
    session_id text NOT NULL REFERENCES sessions(id),
    name text NOT NULL,
    instructions text NOT NULL DEFAULT '',
    workdir text,
    status text NOT NULL CHECK (status IN ('active','ended')),
    max_workers integer NOT NULL DEFAULT 1 CHECK (max_workers >= 1),
    max_attempts integer,
    paused_at bigint,
    paused_until bigint,
    pause_reason text,
    codex_thread_id text,
    claude_session_id text,
    created_at bigint NOT NULL,
    ended_at bigint
  );
  CREATE UNIQUE INDEX queues_active_name ON queues(name) WHERE status = 'active';
  CREATE INDEX queues_session ON queues(session_id);

  CREATE TABLE plans (
    id text PRIMARY KEY,
    description text NOT NULL DEFAULT '',
    file text,
    created_at bigint NOT NULL,
    applied_at bigint NOT NULL,
    tasks integer NOT NULL
  );

  CREATE TABLE tasks (
    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id text NOT NULL UNIQUE,
    session_id text NOT NULL REFERENCES sessions(id),
    queue_id text NOT NULL REFERENCES queues(id),
    tool text NOT NULL,
    task_class text NOT NULL,
    prompt text,
    payload text,
    status text NOT NULL CHECK (status IN ('queued','running','succeeded','failed')),
    priority integer NOT NULL DEFAULT 0,
    timeout_s integer NOT NULL,
    attempt integer NOT NULL DEFAULT 0,
    worker text,
    lease text,
    created_at bigint NOT NULL,
    started_at bigint,
    heartbeat_at bigint,
    finished_at bigint,
    stale_at bigint,
    summary text,
    data text,
    error text,
    stdout text,
    stderr text,
    usage text,
    retry_of text,
    plan_id text REFERENCES plans(id),
    plan_key text,
    deps integer NOT NULL DEFAULT 0,
    waiting integer NOT NULL DEFAULT 0 CHECK (waiting >= 0),
    not_before bigint,
    idem_key text,
    CHECK ((status = 'running') = (lease IS NOT NULL))
  );
  -- The claim: the oldest claimable task of a queue, highest priority first.
  CREATE INDEX tasks_claim ON tasks(queue_id, priority DESC, seq) WHERE status = 'queued' AND waiting = 0;
  CREATE INDEX tasks_running ON tasks(started_at) WHERE status = 'running';
  CREATE INDEX tasks_queue ON tasks(queue_id, seq);
  CREATE INDEX tasks_queue_status ON tasks(queue_id, status);
  CREATE INDEX tasks_finished ON tasks(finished_at) WHERE finished_at IS NOT NULL;
  CREATE INDEX tasks_retry_of ON tasks(retry_of) WHERE retry_of IS NOT NULL;
  -- A plan's tasks by name (a requeued task shares its name with the failed one). Applying a plan twice, or from two
  -- machines at once, makes each task once: an apply holds its plan's row lock while it reads and inserts.
  CREATE INDEX tasks_plan ON tasks(plan_id, plan_key) WHERE plan_id IS NOT NULL;
  -- An idempotency key makes one task per queue, whoever repeats the enqueue, from wherever.
  CREATE UNIQUE INDEX tasks_idem ON tasks(queue_id, idem_key) WHERE idem_key IS NOT NULL;

  CREATE TABLE attempts (
    task_id text NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
    n integer NOT NULL,
    lease text NOT NULL,
    worker text,
    started_at bigint NOT NULL,
    ended_at bigint,
    outcome text NOT NULL DEFAULT 'running',
    error text,
    PRIMARY KEY (task_id, n)
  );

  -- task_id waits on after_id. A requeue moves the edges of the failed task to its new copy.
  CREATE TABLE task_deps (
    task_id text NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
    after_id text NOT NULL,
    PRIMARY KEY (task_id, after_id)
  );
  CREATE INDEX task_deps_after ON task_deps(after_id);

  -- A failed task is requeued at most once.
  CREATE TABLE requeues (original_id text PRIMARY KEY, new_id text NOT NULL);

  -- Workers' places on queues (maxWorkers), across machines; a place without renewal expires.
  CREATE TABLE worker_places (
    queue_id text NOT NULL REFERENCES queues(id),
    worker text NOT NULL,
    host text NOT NULL,
    pid integer NOT NULL,
    expires_at bigint NOT NULL,
    PRIMARY KEY (queue_id, worker)
  );
  `,
  // 2: worktrees (a queue's isolation, a task's change, JSON) and the prompt pattern a task came from (JSON).
  `
  ALTER TABLE queues ADD COLUMN isolation text;
  ALTER TABLE tasks ADD COLUMN change text, ADD COLUMN pattern text;
  `,
  // 3: merge groups (a plan batch whose changes merge automatically once all of them succeeded).
  `
  ALTER TABLE tasks ADD COLUMN merge_group text;
  `,
  // 4: validators (a task's validation, JSON; the task a validation task checks).
  `
  ALTER TABLE tasks ADD COLUMN validation text, ADD COLUMN validates text;
  CREATE INDEX tasks_validates ON tasks(validates) WHERE validates IS NOT NULL;
  `,
];

/** The schema version this SparkQ writes. */
export const SCHEMA_VERSION = MIGRATIONS.length;

/** A PostgreSQL identifier we accept for the schema that holds SparkQ's tables: plain, lower case, short. */
export const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/** Advisory lock keys, one per purpose and schema (two SparkQ schemas in one database do not block each other). */
export function lockKey(schema: string, purpose: 'migrate' | 'sweep'): string {
  return `sparkq.${purpose}.${schema}`;
}

async function versionOf(c: Sql, schema: string): Promise<number | null> {
  const exists = await c.query<{ n: number }>(
    "SELECT count(*)::int AS n FROM information_schema.tables WHERE table_schema = $1 AND table_name = 'schema_version'",
    [schema],
  );
  if (exists.rows[0]!.n === 0) return null;
  const r = await c.query<{ version: number }>(`SELECT version FROM ${schema}.schema_version`);
  return r.rows[0]?.version ?? 0;
}

/**
 * Brings the schema up to date (creating it in an empty database), once, whoever else runs this at the same time.
 * Returns the version found before and after.
 */
export async function migrate(db: TeamDb, schema: string): Promise<{ from: number; to: number }> {
  if (!SCHEMA_NAME.test(schema)) throw new SparkqError('config', `store.schema ${JSON.stringify(schema)} is not a plain lower-case PostgreSQL name`);
  return db.tx(async (c) => {
    await c.query('SELECT pg_advisory_xact_lock(hashtext($1))', [lockKey(schema, 'migrate')]);
    const found = await versionOf(c, schema);
    const from = found ?? 0;
    if (from > SCHEMA_VERSION) {
      throw new SparkqError(
        'config',
        `the team database ${db.where} has SparkQ schema version ${from}, newer than this SparkQ knows (${SCHEMA_VERSION}); ` +
          'update SparkQ on this machine (every machine of a team must run a SparkQ at least as new as the newest one that migrated it)',
      );
    }
    if (from === SCHEMA_VERSION) return { from, to: from };
    // Made only when missing: a role that owns a schema made for it may lack the right to create schemas.
    const exists = await c.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [schema]);
    if (exists.rows.length === 0) await c.query(`CREATE SCHEMA ${schema}`);
    await c.query(`SET LOCAL search_path TO ${schema}`);
    if (found === null) await c.query('CREATE TABLE schema_version (version integer NOT NULL); INSERT INTO schema_version VALUES (0)');
    for (let v = from; v < SCHEMA_VERSION; v++) await c.query(MIGRATIONS[v]!);
    await c.query('UPDATE schema_version SET version = $1', [SCHEMA_VERSION]);
    return { from, to: SCHEMA_VERSION };
  });
}

/** The schema version of a database (null: no SparkQ schema in it), without changing anything. */
export async function schemaVersion(db: TeamDb, schema: string): Promise<number | null> {
  return db.tx((c) => versionOf(c, schema));
}
