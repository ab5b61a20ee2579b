import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { newId, newLeaseToken } from '../../src/core/ids';
import { ATTEMPTS_TABLE, TASKS_TABLE } from '../../src/core/queue/schema';
import { PROMPT, SUMMARY } from './shape';
import type { LatencySubject } from './sparkq';
import { type Summary, now, summarize } from './stats';

/*
 * The native baseline: better-sqlite3 on a file database (WAL), with the same tables and indexes as SparkQ's live
 * database and the same statements per operation as SparkQ's effects (task row, attempt row, per-status counts, the
 * row read back), each operation one transaction. What it leaves out is SparkQ's own layer: input validation, the
 * JSON journal record, the group-commit hop and the mapping of rows to Task objects. So the ratio is "our whole stack"
 * against "the same SQL on native SQLite".
 */

/** The part of better-sqlite3's API the bench uses (the package ships no types, and we add no @types package). */
interface NativeStatement {
  run(...params: unknown[]): { changes: number };
  get(...params: unknown[]): unknown;
  all(...params: unknown[]): unknown[];
}
interface NativeDatabase {
  pragma(source: string, options?: { simple?: boolean }): unknown;
  exec(sql: string): unknown;
  prepare(sql: string): NativeStatement;
  transaction<A extends unknown[], R>(fn: (...args: A) => R): (...args: A) => R;
  close(): void;
}
type NativeConstructor = new (filename: string) => NativeDatabase;

export type NativeProbe = { ok: true; version: string; sqlite: string } | { ok: false; reason: string };

export type Synchronous = 'NORMAL' | 'FULL';

/**
 * Loads better-sqlite3 in a throwaway process first: a broken native addon can kill the process that loads it
 * (a segfault cannot be caught), and the bench must report that rather than die.
 */
export function probeNative(root: string): NativeProbe {
  const script =
    "const D = require('better-sqlite3'); const d = new D(':memory:');" +
    "const v = d.prepare('select sqlite_version() AS v').get().v; d.close();" +
    "process.stdout.write(JSON.stringify({ version: require('better-sqlite3/package.json').version, sqlite: v }));";
  const r = spawnSync(process.execPath, ['-e', script], { cwd: root, encoding: 'utf8', timeout: 60_000 });
  if (r.error) return { ok: false, reason: `could not run a probe process: ${r.error.message}` };
  if (r.status === 0) {
    try {
      const out = JSON.parse(r.stdout) as { version: string; sqlite: string };
      return { ok: true, version: out.version, sqlite: out.sqlite };
    } catch {
      return { ok: false, reason: `the probe printed something unexpected: ${r.stdout.slice(0, 200)}` };
    }
  }
  const how = r.signal ? `loading it killed the probe process (${r.signal})` : `the probe exited with code ${String(r.status)}`;
  const lastLine = r.stderr.trim().split('\n').filter((l) => l.trim() !== '').slice(-1)[0];
  return { ok: false, reason: [how, lastLine, engineHint(root)].filter(Boolean).join('; ') };
}

/** When the installed version declares a Node range this Node is outside of, say so: that is the usual cause. */
function engineHint(root: string): string | undefined {
  try {
    const pkg = JSON.parse(fs.readFileSync(path.join(root, 'node_modules', 'better-sqlite3', 'package.json'), 'utf8')) as {
      version: string;
      engines?: { node?: string };
    };
    const range = pkg.engines?.node;
    return range ? `better-sqlite3@${pkg.version} declares engines.node "${range}", this is Node ${process.version} (N-API ${process.versions['napi']})` : undefined;
  } catch {
    return 'better-sqlite3 is not installed';
  }
}

function load(root: string): NativeConstructor {
  return createRequire(path.join(root, 'package.json'))('better-sqlite3') as NativeConstructor;
}

interface TaskRow {
  id: string;
  status: string;
  lease: string | null;
  attempt: number;
}
interface QueueRow {
  id: string;
  session_id: string;
}

/** SparkQ's live schema (src/core/queue/schema.ts), minus the tables the measured operations do not touch. */
const SCHEMA = `
  CREATE TABLE sessions (id TEXT PRIMARY KEY, name TEXT NOT NULL, status TEXT NOT NULL, created_at INTEGER NOT NULL);
  CREATE TABLE queues (
    id TEXT PRIMARY KEY, session_id TEXT NOT NULL, name TEXT NOT NULL, instructions TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL, created_at INTEGER NOT NULL
  );
  CREATE UNIQUE INDEX queues_active_name ON queues(name) WHERE status = 'active';
  ${TASKS_TABLE}
  CREATE INDEX tasks_claim ON tasks(queue_id, priority DESC, seq) WHERE status = 'queued';
  CREATE INDEX tasks_running ON tasks(started_at) WHERE status = 'running';
  CREATE INDEX tasks_finished ON tasks(finished_at) WHERE finished_at IS NOT NULL;
  CREATE INDEX tasks_queue ON tasks(queue_id, seq);
  CREATE INDEX tasks_retry_of ON tasks(retry_of) WHERE retry_of IS NOT NULL;
  ${ATTEMPTS_TABLE}
  CREATE TABLE queue_counts (queue_id TEXT NOT NULL, status TEXT NOT NULL, n INTEGER NOT NULL, PRIMARY KEY (queue_id, status)) WITHOUT ROWID;
`;

/** One queue on better-sqlite3, with SparkQ's operations as single transactions. */
export class NativeQueue {
  private readonly db: NativeDatabase;
  readonly enqueue: () => unknown;
  readonly claim: (worker: string) => { row: unknown; id: string; lease: string } | null;
  readonly complete: (id: string, lease: string) => unknown;
  readonly list100: () => unknown[];

  constructor(root: string, file: string, synchronous: Synchronous) {
    const Database = load(root);
    const db = new Database(file);
    this.db = db;
    db.pragma('journal_mode = WAL');
    db.pragma(`synchronous = ${synchronous}`);
    db.exec(SCHEMA);
    const at = Date.now();
    db.prepare("INSERT INTO sessions VALUES ('ses_bench', 's', 'active', ?)").run(at);
    db.prepare("INSERT INTO queues(id, session_id, name, status, created_at) VALUES ('que_bench', 'ses_bench', 'q', 'active', ?)").run(at);

    const queueByName = db.prepare("SELECT * FROM queues WHERE name = ? ORDER BY status = 'active' DESC, created_at DESC LIMIT 1");
    const insertTask = db.prepare(
      `INSERT INTO tasks(id, session_id, queue_id, tool, task_class, prompt, payload, status, priority, timeout_s, created_at, retry_of)
       VALUES (?, ?, ?, ?, ?, ?, ?, 'queued', ?, ?, ?, ?)`,
    );
    const bump = db.prepare('INSERT INTO queue_counts(queue_id, status, n) VALUES (?, ?, ?) ON CONFLICT(queue_id, status) DO UPDATE SET n = n + excluded.n');
    const taskById = db.prepare('SELECT * FROM tasks WHERE id = ?');
    const oldest = db.prepare("SELECT * FROM tasks WHERE queue_id = ? AND status = 'queued' ORDER BY priority DESC, seq LIMIT 1");
    const markRunning = db.prepare(
      "UPDATE tasks SET status = 'running', attempt = ?, worker = ?, lease = ?, started_at = ?, heartbeat_at = ?, stale_at = NULL WHERE id = ? AND status = 'queued'",
    );
    const insertAttempt = db.prepare('INSERT INTO attempts(task_id, n, lease, worker, started_at) VALUES (?, ?, ?, ?, ?)');
    const markFinished = db.prepare(
      `UPDATE tasks SET status = ?, finished_at = ?, lease = NULL, summary = ?, data = ?, error = ?, stdout = ?, stderr = ?, usage = ?
       WHERE id = ? AND status = 'running'`,
    );
    const endAttempt = db.prepare('UPDATE attempts SET ended_at = ?, outcome = ?, error = ? WHERE task_id = ? AND n = ?');
    const page = db.prepare('SELECT * FROM tasks WHERE queue_id = ? AND seq < ? ORDER BY seq DESC LIMIT 101');

    const queue = (): QueueRow => queueByName.get('q') as QueueRow;

    this.enqueue = db.transaction(() => {
      const q = queue();
      const id = newId('tsk');
      insertTask.run(id, q.session_id, q.id, 'run-bash', 'FAST_SCRIPT', PROMPT, null, 0, 30, Date.now(), null);
      bump.run(q.id, 'queued', 1);
      return taskById.get(id);
    });

    this.claim = db.transaction((worker: string) => {
      const q = queue();
      const row = oldest.get(q.id) as TaskRow | undefined;
      if (!row) return null;
      const lease = newLeaseToken();
      const t = Date.now();
      if (markRunning.run(row.attempt + 1, worker, lease, t, t, row.id).changes !== 1) throw new Error('claim changed no row');
      insertAttempt.run(row.id, row.attempt + 1, lease, worker, t);
      bump.run(q.id, 'queued', -1);
      bump.run(q.id, 'running', 1);
      return { row: taskById.get(row.id), id: row.id, lease };
    });

    this.complete = db.transaction((id: string, lease: string) => {
      const row = taskById.get(id) as TaskRow | undefined;
      if (!row || row.status !== 'running' || row.lease !== lease) throw new Error(`complete: task ${id} is not running under this lease`);
      const t = Date.now();
      if (markFinished.run('succeeded', t, SUMMARY, null, null, null, null, null, id).changes !== 1) throw new Error('complete changed no row');
      endAttempt.run(t, 'succeeded', null, id, row.attempt);
      bump.run('que_bench', 'running', -1);
      bump.run('que_bench', 'succeeded', 1);
      return taskById.get(id);
    });

    this.list100 = () => page.all(queue().id, Number.MAX_SAFE_INTEGER);
  }

  /** The same state as the SparkQ side: n enqueued, then a share of them claimed and completed. */
  build(n: number, finishedShare: number): void {
    const enqueueBatch = this.db.transaction((k: number) => {
      for (let i = 0; i < k; i++) this.enqueue();
    });
    for (let done = 0; done < n; done += 1000) enqueueBatch(Math.min(1000, n - done));
    const finishBatch = this.db.transaction((k: number) => {
      for (let i = 0; i < k; i++) {
        const c = this.claim('builder');
        if (!c) throw new Error('bench: native queue ran dry while building');
        this.complete(c.id, c.lease);
      }
    });
    const finish = Math.round(n * finishedShare);
    for (let done = 0; done < finish; done += 1000) finishBatch(Math.min(1000, finish - done));
    this.db.pragma('wal_checkpoint(TRUNCATE)');
  }

  close(): void {
    this.db.close();
  }
}

export type NativeLatencies = Record<'enqueue' | 'claim' | 'complete' | 'list100', Summary>;

/** better-sqlite3 at one size, in a fresh file database, timed with the same loop as the SparkQ side. */
export class NativeSubject implements LatencySubject {
  private readonly s = { enqueue: [] as number[], claim: [] as number[], complete: [] as number[], list100: [] as number[] };
  private readonly nq: NativeQueue;

  constructor(
    readonly label: string,
    root: string,
    dir: string,
    synchronous: Synchronous,
    n: number,
    finishedShare: number,
  ) {
    fs.mkdirSync(dir, { recursive: true });
    this.nq = new NativeQueue(root, path.join(dir, 'tasks.db'), synchronous);
    this.nq.build(n, finishedShare);
  }

  run(iterations: number, lists: number, warmup: number): Promise<void> {
    const { nq, s } = this;
    for (let i = 0; i < warmup + iterations; i++) {
      const keep = i >= warmup;
      let t0 = now();
      nq.enqueue();
      if (keep) s.enqueue.push(now() - t0);
      t0 = now();
      const c = nq.claim('bench-worker');
      if (keep) s.claim.push(now() - t0);
      if (!c) throw new Error('bench: native queue ran dry');
      t0 = now();
      nq.complete(c.id, c.lease);
      if (keep) s.complete.push(now() - t0);
    }
    for (let i = 0; i < Math.min(warmup, 2) + lists; i++) {
      const t0 = now();
      const rows = nq.list100();
      const t1 = now();
      if (rows.length !== 101) throw new Error(`bench: native list returned ${rows.length} rows`);
      if (i >= Math.min(warmup, 2)) s.list100.push(t1 - t0);
    }
    return Promise.resolve();
  }

  result(): NativeLatencies {
    const s = this.s;
    return { enqueue: summarize(s.enqueue), claim: summarize(s.claim), complete: summarize(s.complete), list100: summarize(s.list100) };
  }

  close(): Promise<void> {
    this.nq.close();
    return Promise.resolve();
  }
}
