import type { Migration } from '../store/store';

/** The task table's shape, shared by the live database and the archive chunks (which hold finished tasks). */
export const TASKS_TABLE = `CREATE TABLE tasks (
        seq INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        session_id TEXT NOT NULL,
        queue_id TEXT NOT NULL,
        tool TEXT NOT NULL,
        task_class TEXT NOT NULL,
        prompt TEXT,
        payload TEXT,
        status TEXT NOT NULL CHECK (status IN ('queued','running','succeeded','failed')),
        priority INTEGER NOT NULL DEFAULT 0,
        timeout_s INTEGER NOT NULL,
        attempt INTEGER NOT NULL DEFAULT 0,
        worker TEXT,
        lease TEXT,
        created_at INTEGER NOT NULL,
        started_at INTEGER,
        heartbeat_at INTEGER,
        finished_at INTEGER,
        stale_at INTEGER,
        summary TEXT,
        data TEXT,
        error TEXT,
        stdout TEXT,
        stderr TEXT,
        usage TEXT,
        retry_of TEXT
      );`;

export const ATTEMPTS_TABLE = `CREATE TABLE attempts (
        task_id TEXT NOT NULL,
        n INTEGER NOT NULL,
        lease TEXT NOT NULL,
        worker TEXT,
        started_at INTEGER NOT NULL,
        ended_at INTEGER,
        outcome TEXT NOT NULL DEFAULT 'running',
        error TEXT,
        PRIMARY KEY (task_id, n)
      ) WITHOUT ROWID;`;

/**
 * Columns migration 2 added to the task table, in order. Archive chunks written since then have them too; chunks
 * written before get them added when opened (in memory), so every query sees one shape.
 */
export const TASK_COLUMNS_V2 = [
  'plan_id TEXT',
  'plan_key TEXT',
  /** How many tasks this one waits on (edges in task_deps). */
  'deps INTEGER NOT NULL DEFAULT 0',
  /** How many of those have not succeeded yet: claimable only at 0. */
  'waiting INTEGER NOT NULL DEFAULT 0',
  /** A retry waits until then (ms). */
  'not_before INTEGER',
] as const;

export function addTaskColumnsV2(db: { exec(sql: string): void }): void {
  db.exec(TASK_COLUMNS_V2.map((c) => `ALTER TABLE tasks ADD COLUMN ${c};`).join('\n'));
}

/** Migration 3's task column: the idempotency key of the enqueue or requeue that made the task. */
const TASK_COLUMN_V3 = 'idem_key TEXT';

/** Migration 4's task columns: what a task changed in its worktree, and the prompt pattern it came from (JSON). */
const TASK_COLUMNS_V4 = ['change TEXT', 'pattern TEXT'] as const;

/** Migration 5's task column: the merge group of a task whose change merges automatically with its group's. */
const TASK_COLUMN_V5 = 'merge_group TEXT';

/** Migration 6's task columns: a task's validator and where it stands (JSON), and the task a validation task checks. */
const TASK_COLUMNS_V6 = ['validation TEXT', 'validates TEXT'] as const;

/**
 * Gives a tasks table every column the latest schema has, for an archive chunk: a new one (made from TASKS_TABLE), or
 * one written before a migration (in memory; the file stays as written).
 */
export function completeTaskColumns(db: { exec(sql: string): void; value(sql: string): unknown }): void {
  const has = (c: string) => db.value(`SELECT count(*) FROM pragma_table_info('tasks') WHERE name = '${c}'`) !== 0;
  if (!has('plan_id')) addTaskColumnsV2(db);
  if (!has('idem_key')) db.exec(`ALTER TABLE tasks ADD COLUMN ${TASK_COLUMN_V3};`);
  if (!has('change')) db.exec(TASK_COLUMNS_V4.map((c) => `ALTER TABLE tasks ADD COLUMN ${c};`).join('\n'));
  if (!has('merge_group')) db.exec(`ALTER TABLE tasks ADD COLUMN ${TASK_COLUMN_V5};`);
  if (!has('validation')) db.exec(TASK_COLUMNS_V6.map((c) => `ALTER TABLE tasks ADD COLUMN ${c};`).join('\n'));
}

/**
 * Numbered migrations; entry i brings the schema from version i to i + 1 (PRAGMA user_version). Never edit a
 * migration that has shipped: add the next one.
 *
 * Times are integer milliseconds since the epoch. `seq` is the task's rowid and its FIFO order.
 */
export const MIGRATIONS: readonly Migration[] = [
  (db) =>
    db.exec(`
      CREATE TABLE sessions (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        description TEXT NOT NULL DEFAULT '',
        status TEXT NOT NULL CHECK (status IN ('active','ended')),
        created_at INTEGER NOT NULL,
        ended_at INTEGER
      );
      CREATE UNIQUE INDEX sessions_active_name ON sessions(name) WHERE status = 'active';

      CREATE TABLE queues (
        id TEXT PRIMARY KEY,
        session_id TEXT NOT NULL,
        name TEXT NOT NULL,
        instructions TEXT NOT NULL DEFAULT '',
        workdir TEXT,
        status TEXT NOT NULL CHECK (status IN ('active','ended')),
        max_workers INTEGER NOT NULL DEFAULT 1,
        codex_thread_id TEXT,
        claude_session_id TEXT,
        created_at INTEGER NOT NULL,
        ended_at INTEGER
      );
      CREATE UNIQUE INDEX queues_active_name ON queues(name) WHERE status = 'active';
      CREATE INDEX queues_session ON queues(session_id);

      ${TASKS_TABLE}
      CREATE INDEX tasks_claim ON tasks(queue_id, priority DESC, seq) WHERE status = 'queued';
      CREATE INDEX tasks_running ON tasks(started_at) WHERE status = 'running';
      CREATE INDEX tasks_finished ON tasks(finished_at) WHERE finished_at IS NOT NULL;
      CREATE INDEX tasks_queue ON tasks(queue_id, seq);
      CREATE INDEX tasks_retry_of ON tasks(retry_of) WHERE retry_of IS NOT NULL;

      ${ATTEMPTS_TABLE}

      -- Per-(queue, status) counts, kept in the same transaction as every change, over live and archived tasks.
      CREATE TABLE queue_counts (
        queue_id TEXT NOT NULL,
        status TEXT NOT NULL,
        n INTEGER NOT NULL,
        PRIMARY KEY (queue_id, status)
      ) WITHOUT ROWID;

      -- A failed task is requeued at most once; this survives the archiving of either task.
      CREATE TABLE requeues (original_id TEXT PRIMARY KEY, new_id TEXT NOT NULL) WITHOUT ROWID;

      CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;

      CREATE TABLE archive_chunks (
        id INTEGER PRIMARY KEY,
        file TEXT NOT NULL,
        count INTEGER NOT NULL,
        min_seq INTEGER NOT NULL,
        max_seq INTEGER NOT NULL,
        min_finished_at INTEGER NOT NULL,
        max_finished_at INTEGER NOT NULL,
        bytes INTEGER NOT NULL,
        crc INTEGER NOT NULL,
        bloom BLOB NOT NULL,
        created_at INTEGER NOT NULL
      );
    `),
  // 2: dependencies, plans, retries with backoff, pausing queues.
  (db) => {
    addTaskColumnsV2(db);
    db.exec(`
      ALTER TABLE queues ADD COLUMN max_attempts INTEGER;
      ALTER TABLE queues ADD COLUMN paused_at INTEGER;
      ALTER TABLE queues ADD COLUMN paused_until INTEGER;
      ALTER TABLE queues ADD COLUMN pause_reason TEXT;

      -- Claimable: queued and waiting on nothing.
      DROP INDEX tasks_claim;
      CREATE INDEX tasks_claim ON tasks(queue_id, priority DESC, seq) WHERE status = 'queued' AND waiting = 0;
      CREATE INDEX tasks_plan ON tasks(plan_id, plan_key) WHERE plan_id IS NOT NULL;

      -- task_id waits on after_id. A requeue moves the edges of the failed task to its new copy.
      CREATE TABLE task_deps (task_id TEXT NOT NULL, after_id TEXT NOT NULL, PRIMARY KEY (task_id, after_id)) WITHOUT ROWID;
      CREATE INDEX task_deps_after ON task_deps(after_id);

      CREATE TABLE plans (
        id TEXT PRIMARY KEY,
        description TEXT NOT NULL DEFAULT '',
        file TEXT,
        created_at INTEGER NOT NULL,
        applied_at INTEGER NOT NULL,
        tasks INTEGER NOT NULL
      ) WITHOUT ROWID;
    `);
  },
  // 3: idempotency keys. The key is kept on its task (to show) and in task_keys (to look up), which outlives the
  // archiving of the task, so a repeat finds it whatever became of the task; a purge forgets both.
  (db) =>
    db.exec(`
      ALTER TABLE tasks ADD COLUMN ${TASK_COLUMN_V3};
      CREATE TABLE task_keys (queue_id TEXT NOT NULL, key TEXT NOT NULL, task_id TEXT NOT NULL, PRIMARY KEY (queue_id, key)) WITHOUT ROWID;
      CREATE INDEX task_keys_task ON task_keys(task_id);
    `),
  // 4: worktrees (a queue's isolation, a task's change) and prompt patterns.
  (db) =>
    db.exec(`
      ALTER TABLE queues ADD COLUMN isolation TEXT;
      ${TASK_COLUMNS_V4.map((c) => `ALTER TABLE tasks ADD COLUMN ${c};`).join('\n')}
    `),
  // 5: merge groups (a plan batch whose changes merge automatically once all of them succeeded).
  (db) => db.exec(`ALTER TABLE tasks ADD COLUMN ${TASK_COLUMN_V5};`),
  // 6: validators (a task's validation, the task a validation task checks).
  (db) =>
    db.exec(`
      ${TASK_COLUMNS_V6.map((c) => `ALTER TABLE tasks ADD COLUMN ${c};`).join('\n')}
      CREATE INDEX tasks_validates ON tasks(validates) WHERE validates IS NOT NULL;
    `),
];

