import * as fs from 'node:fs';
import * as path from 'node:path';
import type pg from 'pg';
import type { ChangeEvent } from '../core/events';
import { SparkqError } from '../core/errors';
import type { StatusCounts, TaskStatus } from '../core/model';
import { ARCHIVE_DIR, Archive } from '../core/queue/archive';
import type { Row as SqlRow, SqlDatabase, SqlValue } from '../core/store/sqlite';
import { notify } from './context';
import { TeamDb } from './db';
import { type EmbeddedFiles, newEmbeddedDatabase, readEmbeddedStore, writeNewEmbeddedStore } from './embeddedFiles';
import { SCHEMA_NAME, SCHEMA_VERSION, migrate, schemaVersion } from './schema';

/*
 * Moving a queue between its two stores, row for row: `sparkq migrate`. Both stores keep the same rows (the team
 * schema follows the embedded one, times in integer ms), so a move copies ids, times, seqs (FIFO order and paging),
 * statuses, leases, attempts, dependency edges with their waiting counts, plans, requeues and idempotency keys as
 * they are. What only one store has is made from the rows: the embedded store's per-queue counts, its key index and
 * its archive files; the team database's identity counters.
 *
 * Each move counts what it copied on both sides with SQL of their own (not by counting the rows it passed along) and
 * fails when they differ. Into PostgreSQL, everything is one transaction: a failure leaves the target empty. Into
 * the embedded store, the files are made in a folder the caller renames into place once they have been read back.
 */

type ColumnType = 'text' | 'int4' | 'int8';
interface TableSpec {
  readonly name: string;
  readonly columns: readonly (readonly [string, ColumnType])[];
}

const SESSIONS: TableSpec = {
  name: 'sessions',
  columns: [['id', 'text'], ['name', 'text'], ['description', 'text'], ['status', 'text'], ['created_at', 'int8'], ['ended_at', 'int8']],
};
const QUEUES: TableSpec = {
  name: 'queues',
  columns: [
    ['id', 'text'], ['session_id', 'text'], ['name', 'text'], ['instructions', 'text'], ['workdir', 'text'], ['status', 'text'],
    ['max_workers', 'int4'], ['max_attempts', 'int4'], ['paused_at', 'int8'], ['paused_until', 'int8'], ['pause_reason', 'text'],
    ['codex_thread_id', 'text'], ['claude_session_id', 'text'], ['created_at', 'int8'], ['ended_at', 'int8'], ['isolation', 'text'],
  ],
};
const PLANS: TableSpec = {
  name: 'plans',
  columns: [['id', 'text'], ['description', 'text'], ['file', 'text'], ['created_at', 'int8'], ['applied_at', 'int8'], ['tasks', 'int4']],
};
const TASKS: TableSpec = {
  name: 'tasks',
  columns: [
    ['seq', 'int8'], ['id', 'text'], ['session_id', 'text'], ['queue_id', 'text'], ['tool', 'text'], ['task_class', 'text'],
    ['prompt', 'text'], ['payload', 'text'], ['status', 'text'], ['priority', 'int4'], ['timeout_s', 'int4'], ['attempt', 'int4'],
    ['worker', 'text'], ['lease', 'text'], ['created_at', 'int8'], ['started_at', 'int8'], ['heartbeat_at', 'int8'],
    ['finished_at', 'int8'], ['stale_at', 'int8'], ['summary', 'text'], ['data', 'text'], ['error', 'text'], ['stdout', 'text'],
    ['stderr', 'text'], ['usage', 'text'], ['retry_of', 'text'], ['plan_id', 'text'], ['plan_key', 'text'], ['deps', 'int4'],
    ['waiting', 'int4'], ['not_before', 'int8'], ['idem_key', 'text'], ['change', 'text'], ['pattern', 'text'], ['merge_group', 'text'],
    ['validation', 'text'], ['validates', 'text'],
  ],
};
const ATTEMPTS: TableSpec = {
  name: 'attempts',
  columns: [['task_id', 'text'], ['n', 'int4'], ['lease', 'text'], ['worker', 'text'], ['started_at', 'int8'], ['ended_at', 'int8'], ['outcome', 'text'], ['error', 'text']],
};
const DEPS: TableSpec = { name: 'task_deps', columns: [['task_id', 'text'], ['after_id', 'text']] };
const REQUEUES: TableSpec = { name: 'requeues', columns: [['original_id', 'text'], ['new_id', 'text']] };

/** The tables both stores have, in an order that respects the team schema's foreign keys. */
const COPIED: readonly TableSpec[] = [SESSIONS, QUEUES, PLANS, TASKS, ATTEMPTS, DEPS, REQUEUES];
/** Made from the copied rows (embedded: counts, meta, archive index, key index) or left empty (team: worker places). */
const EMBEDDED_ONLY = ['queue_counts', 'meta', 'archive_chunks', 'task_keys'];
const TEAM_ONLY = ['worker_places', 'schema_version'];
/** The team tables' identity columns (sessions.n, queues.n: the order of rows made in the same millisecond), assigned anew, in order. */
const TEAM_IDENTITY: Readonly<Record<string, string>> = { sessions: 'n', queues: 'n' };

/** What a move checks on both sides. */
export interface MoveCounts {
  sessions: number;
  queues: number;
  plans: number;
  tasks: StatusCounts;
  attempts: number;
  /** Dependency edges (task waits on task). */
  dependencies: number;
  /** The sum of the tasks' counts of unsucceeded dependencies. */
  waiting: number;
  /** Requeue links (failed task → its new copy). */
  requeues: number;
  /** Tasks made by an enqueue or requeue with an idempotency key. */
  idempotencyKeys: number;
}

export interface MoveReport {
  counts: MoveCounts;
  /** Tasks in archive files: read from them (into PostgreSQL), or written to them (into the embedded store). */
  archivedTasks: number;
  /** The highest task seq ever handed out; the next task gets a higher one. */
  seqHigh: number;
  /** Into the embedded store: the team database changed after the moment that was copied (other machines at work). */
  sourceChangedSince?: boolean;
}

export interface MoveProgress {
  /** Called after every `every` tasks copied (default 10,000), with the tasks copied and the total. */
  progress?: (copied: number, total: number) => void;
  every?: number;
}

const zeroCounts = (): MoveCounts => ({
  sessions: 0,
  queues: 0,
  plans: 0,
  tasks: { queued: 0, running: 0, succeeded: 0, failed: 0 },
  attempts: 0,
  dependencies: 0,
  waiting: 0,
  requeues: 0,
  idempotencyKeys: 0,
});

function addCounts(into: MoveCounts, c: MoveCounts): void {
  for (const k of ['sessions', 'queues', 'plans', 'attempts', 'dependencies', 'waiting', 'requeues', 'idempotencyKeys'] as const) into[k] += c[k];
  for (const s of Object.keys(into.tasks) as TaskStatus[]) into.tasks[s] += c.tasks[s];
}

export function totalTasks(c: MoveCounts): number {
  return c.tasks.queued + c.tasks.running + c.tasks.succeeded + c.tasks.failed;
}

/** Fails, naming every count that differs, when the target does not hold what the source holds. */
function checkCounts(source: MoveCounts, target: MoveCounts, from: string, to: string): void {
  const flat = (c: MoveCounts): Record<string, number> => {
    const { tasks, ...rest } = c;
    return { ...rest, ...Object.fromEntries(Object.entries(tasks).map(([s, n]) => [`${s} tasks`, n])) };
  };
  const a = flat(source);
  const b = flat(target);
  const differ = Object.keys(a).filter((k) => a[k] !== b[k]);
  if (differ.length > 0) {
    throw new SparkqError('internal', `the copy does not match: ${differ.map((k) => `${k}: ${a[k]} in ${from}, ${b[k]} in ${to}`).join('; ')}; nothing was kept`);
  }
}

// ---- the embedded side ---------------------------------------------------------------------------------------

/** Counts of one embedded database: the live one (with its sessions, queues, edges…) or an archive chunk (tasks only). */
function countEmbedded(db: SqlDatabase, live: boolean): MoveCounts {
  const c = zeroCounts();
  for (const r of db.all<{ status: TaskStatus; n: number; w: number; k: number }>(
    'SELECT status, count(*) AS n, COALESCE(sum(waiting), 0) AS w, count(idem_key) AS k FROM tasks GROUP BY status',
  )) {
    c.tasks[r.status] = r.n;
    c.waiting += r.w;
    c.idempotencyKeys += r.k;
  }
  c.attempts = Number(db.value('SELECT count(*) FROM attempts'));
  if (live) {
    c.sessions = Number(db.value('SELECT count(*) FROM sessions'));
    c.queues = Number(db.value('SELECT count(*) FROM queues'));
    c.plans = Number(db.value('SELECT count(*) FROM plans'));
    c.dependencies = Number(db.value('SELECT count(*) FROM task_deps'));
    c.requeues = Number(db.value('SELECT count(*) FROM requeues'));
  }
  return c;
}

/** The counts of an embedded store, live and archived; with the number of archived tasks. */
function countEmbeddedStore(files: EmbeddedFiles): { counts: MoveCounts; archived: number } {
  const counts = countEmbedded(files.db, true);
  let archived = 0;
  for (const chunk of files.archive.chunks()) {
    const c = countEmbedded(files.archive.open(chunk), false);
    files.archive.forget(chunk.id);
    archived += totalTasks(c);
    addCounts(counts, c);
  }
  return { counts, archived };
}

/**
 * What the embedded store in `dir` holds (null: there is none), read without changing it: for refusing to write over
 * a store with data in it.
 */
export async function embeddedStoreCounts(dir: string): Promise<MoveCounts | null> {
  const files = await readEmbeddedStore(dir);
  if (!files) return null;
  try {
    return countEmbeddedStore(files).counts;
  } finally {
    files.close();
  }
}

/** Fails when an embedded table's columns are not the ones a move copies: a schema this move would copy partly. */
function checkEmbeddedColumns(db: SqlDatabase): void {
  const tables = db.all<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'").map((r) => r.name);
  const problems: string[] = [];
  for (const t of tables) if (!EMBEDDED_ONLY.includes(t) && !COPIED.some((s) => s.name === t)) problems.push(`table ${t}`);
  for (const spec of COPIED) {
    const have = db.all<{ name: string }>('SELECT name FROM pragma_table_info(?)', [spec.name]).map((r) => r.name);
    problems.push(...columnProblems(spec, have));
  }
  if (problems.length > 0) throw new SparkqError('internal', `this SparkQ cannot move the embedded queue: it does not know ${problems.join(', ')}; nothing was changed`);
}

function columnProblems(spec: TableSpec, have: readonly string[]): string[] {
  const want = spec.columns.map(([c]) => c);
  return [
    ...have.filter((c) => !want.includes(c)).map((c) => `column ${spec.name}.${c}`),
    ...want.filter((c) => !have.includes(c)).map((c) => `missing column ${spec.name}.${c}`),
  ];
}

// ---- the team side -------------------------------------------------------------------------------------------

async function countTeam(c: Sql): Promise<MoveCounts> {
  const out = zeroCounts();
  const r = (
    await c.query<Omit<MoveCounts, 'tasks'>>(
      `SELECT (SELECT count(*) FROM sessions) AS sessions, (SELECT count(*) FROM queues) AS queues, (SELECT count(*) FROM plans) AS plans,
              (SELECT count(*) FROM attempts) AS attempts, (SELECT count(*) FROM task_deps) AS dependencies,
              (SELECT COALESCE(sum(waiting), 0) FROM tasks) AS waiting, (SELECT count(*) FROM requeues) AS requeues,
              (SELECT count(*) FROM tasks WHERE idem_key IS NOT NULL) AS "idempotencyKeys"`,
    )
  ).rows[0]!;
  for (const k of ['sessions', 'queues', 'plans', 'attempts', 'dependencies', 'waiting', 'requeues', 'idempotencyKeys'] as const) out[k] = Number(r[k]);
  for (const s of (await c.query<{ status: TaskStatus; n: number }>('SELECT status, count(*) AS n FROM tasks GROUP BY status')).rows) out.tasks[s.status] = Number(s.n);
  return out;
}

type Sql = Pick<pg.ClientBase, 'query'>;

async function checkTeamColumns(c: Sql, schema: string): Promise<void> {
  const rows = (await c.query<{ t: string; c: string }>('SELECT table_name AS t, column_name AS c FROM information_schema.columns WHERE table_schema = $1', [schema])).rows;
  const byTable = new Map<string, string[]>();
  for (const r of rows) byTable.set(r.t, [...(byTable.get(r.t) ?? []), r.c]);
  const problems: string[] = [];
  for (const t of byTable.keys()) if (!TEAM_ONLY.includes(t) && !COPIED.some((s) => s.name === t)) problems.push(`table ${t}`);
  for (const spec of COPIED) problems.push(...columnProblems(spec, (byTable.get(spec.name) ?? []).filter((col) => col !== TEAM_IDENTITY[spec.name])));
  if (problems.length > 0) throw new SparkqError('internal', `this SparkQ cannot move this team database: it does not know ${problems.join(', ')}; nothing was changed`);
}

/** What the team tables hold, table by table (only those with rows), read with the schema named explicitly. */
async function occupiedTables(query: (text: string) => Promise<{ n: number }[]>, schema: string, present: readonly string[]): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const spec of [...COPIED.map((s) => s.name), 'worker_places']) {
    if (!present.includes(spec)) continue;
    const n = Number((await query(`SELECT count(*) AS n FROM ${schema}.${spec}`))[0]!.n);
    if (n > 0) out[spec] = n;
  }
  return out;
}

function refusal(where: string, schema: string, held: Record<string, number>): SparkqError {
  const what = Object.entries(held)
    .map(([t, n]) => `${n} ${t.replace('_', ' ')}`)
    .join(', ');
  return new SparkqError(
    'conflict',
    `schema ${schema} of the team database ${where} is not empty (${what}); sparkq migrate copies a queue only into an empty schema, so nothing was changed. ` +
      'Give another --schema NAME (or another database)',
  );
}

/**
 * Refuses, changing nothing, a schema that holds rows, or tables that are not SparkQ's. A schema that does not exist
 * yet, or holds SparkQ's tables with no rows, will do.
 */
async function refuseUnlessEmpty(db: TeamDb, schema: string): Promise<void> {
  const tables = (await db.query<{ t: string }>('SELECT table_name AS t FROM information_schema.tables WHERE table_schema = $1', [schema])).map((r) => r.t);
  if (tables.length === 0) return;
  if (!tables.includes('schema_version')) {
    throw new SparkqError(
      'conflict',
      `schema ${schema} of ${db.where} holds tables that are not SparkQ's (${tables.sort().slice(0, 5).join(', ')}${tables.length > 5 ? ', …' : ''}); nothing was changed. Give another --schema NAME`,
    );
  }
  const held = await occupiedTables((text) => db.query<{ n: number }>(text), schema, tables);
  if (Object.keys(held).length > 0) throw refusal(db.where, schema, held);
}

/** Multi-row INSERTs of `rows` into a team table: one statement per batch, every value a parameter (arrays, unnest). */
class TeamInserter {
  private readonly text: string;
  private batch: SqlRow[] = [];
  private bytes = 0;

  constructor(
    private readonly c: Sql,
    private readonly spec: TableSpec,
    options: { overrideIdentity?: boolean; keepOrder?: boolean } = {},
  ) {
    const cols = spec.columns.map(([c]) => c);
    const arrays = spec.columns.map(([, t], i) => `$${i + 1}::${t}[]`).join(', ');
    const override = options.overrideIdentity ? ' OVERRIDING SYSTEM VALUE' : '';
    // Identity values are assigned in the order the rows come: the order of the source's own sequence.
    this.text = options.keepOrder
      ? `INSERT INTO ${spec.name} (${cols.join(', ')})${override} SELECT ${cols.join(', ')} FROM unnest(${arrays}) WITH ORDINALITY AS u(${cols.join(', ')}, ord) ORDER BY ord`
      : `INSERT INTO ${spec.name} (${cols.join(', ')})${override} SELECT * FROM unnest(${arrays})`;
  }

  async add(rows: readonly SqlRow[]): Promise<void> {
    for (const r of rows) {
      this.batch.push(r);
      for (const [c] of this.spec.columns) {
        const v = r[c];
        if (typeof v === 'string') this.bytes += v.length;
      }
      if (this.batch.length >= 1000 || this.bytes >= 4 * 1024 * 1024) await this.flush();
    }
  }

  async flush(): Promise<void> {
    if (this.batch.length === 0) return;
    const values = this.spec.columns.map(([c, t]) => this.batch.map((r) => valueOf(r[c], t, `${this.spec.name}.${c}`)));
    this.batch = [];
    this.bytes = 0;
    await this.c.query(this.text, values);
  }
}

function valueOf(v: SqlValue | undefined, t: ColumnType, what: string): string | number | null {
  if (v === null || v === undefined) return null;
  if (t === 'text') {
    if (typeof v === 'string') return v;
    if (typeof v === 'number') return String(v);
  } else if (typeof v === 'number' && Number.isSafeInteger(v)) return v;
  throw new SparkqError('internal', `${what} holds ${typeof v === 'object' ? 'binary data' : JSON.stringify(v)}, which is not a ${t === 'text' ? 'text' : 'whole number'}; nothing was changed`);
}

// ---- into PostgreSQL -----------------------------------------------------------------------------------------

export interface ToPostgresOptions extends MoveProgress {
  /** The embedded store's folder (`.sparkq/db`): read, never written. */
  storeDir: string;
  url: string;
  schema: string;
  /** Throws when this process no longer holds the embedded queue; called right before the commit. */
  fence?: () => void;
}

const PAGE = 2_000;

/**
 * Copies the embedded queue in `storeDir` (live tables and archive files) into `schema` of the team database at
 * `url`, which must be empty: one transaction, committed only once the counts on both sides agree.
 */
export async function moveToPostgres(o: ToPostgresOptions): Promise<MoveReport> {
  if (!SCHEMA_NAME.test(o.schema)) throw new SparkqError('config', `schema ${JSON.stringify(o.schema)} is not a plain lower-case PostgreSQL name (letters, digits, _)`);
  const source = await readEmbeddedStore(o.storeDir);
  if (!source) throw new SparkqError('not-found', `there is no embedded queue in ${o.storeDir} to move (no ${'manifest.json'}); nothing was changed`);
  const db = new TeamDb({ url: o.url, schema: o.schema, applicationName: 'sparkq-migrate', max: 2 });
  try {
    checkEmbeddedColumns(source.db);
    await refuseUnlessEmpty(db, o.schema);
    await migrate(db, o.schema);
    const c = await db.connect();
    try {
      await c.query('BEGIN');
      // Nobody else writes these tables until the move commits or rolls back; readers go on. A team at work on this
      // schema (it would not be empty then) holds locks: fail after a while rather than wait for it.
      await c.query("SET LOCAL lock_timeout = '10s'");
      await c.query(`LOCK TABLE ${[...COPIED.map((s) => s.name), 'worker_places'].join(', ')} IN EXCLUSIVE MODE`);
      await checkTeamColumns(c, o.schema);
      const held = await occupiedTables(async (text) => (await c.query<{ n: number }>(text)).rows, o.schema, [...COPIED.map((s) => s.name), 'worker_places']);
      if (Object.keys(held).length > 0) throw refusal(db.where, o.schema, held);

      const report = await copyIntoTeam(source, c, o);
      const got = await countTeam(c);
      checkCounts(report.counts, got, 'the embedded queue', 'the team database');
      // The next task enqueued gets a seq above every seq the embedded store handed out (DDL: rolled back with the rest).
      await c.query(`ALTER TABLE tasks ALTER COLUMN seq RESTART WITH ${report.seqHigh + 1}`);
      // Trees and dashboards already watching this schema on other machines read it again.
      const events: ChangeEvent[] = source.db.all<{ id: string }>('SELECT id FROM sessions').map((r) => ({ kind: 'session', id: r.id }));
      await notify(c, `sparkq_${o.schema}`, events);
      o.fence?.();
      await c.query('COMMIT');
      return report;
    } catch (e) {
      await c.query('ROLLBACK').catch(() => undefined);
      const mapped = db.mapError(e);
      if (mapped instanceof SparkqError) throw mapped;
      throw new SparkqError('internal', `copying into schema ${o.schema} of ${db.where} failed (${mapped.message}); it was rolled back, so the schema holds no rows`);
    } finally {
      await c.end().catch(() => undefined);
    }
  } finally {
    source.close();
    await db.end();
  }
}

async function copyIntoTeam(source: EmbeddedFiles, c: Sql, o: MoveProgress): Promise<MoveReport> {
  const live = source.db;
  const chunks = source.archive.chunks().sort((a, b) => a.min_seq - b.min_seq);
  const total = Number(live.value('SELECT count(*) FROM tasks')) + chunks.reduce((n, ch) => n + ch.count, 0);
  const counts = countEmbedded(live, true);
  const every = o.every ?? 10_000;
  let copied = 0;
  const copiedTasks = (n: number) => {
    const before = copied;
    copied += n;
    if (o.progress && Math.floor(copied / every) > Math.floor(before / every)) o.progress(copied, total);
  };

  for (const spec of [SESSIONS, QUEUES]) {
    const ins = new TeamInserter(c, spec, { keepOrder: true });
    await ins.add(live.all(`SELECT * FROM ${spec.name} ORDER BY rowid`));
    await ins.flush();
  }
  const plans = new TeamInserter(c, PLANS);
  await plans.add(live.all('SELECT * FROM plans ORDER BY id'));
  await plans.flush();

  const tasks = new TeamInserter(c, TASKS, { overrideIdentity: true });
  const attempts = new TeamInserter(c, ATTEMPTS);
  let seqHigh = Number(live.value("SELECT COALESCE((SELECT value FROM meta WHERE key = 'task_seq_high'), 0)"));
  // Live tasks a page at a time, by seq.
  for (let after = -Infinity; ; ) {
    const page = live.all('SELECT * FROM tasks WHERE seq > ? ORDER BY seq LIMIT ?', [after === -Infinity ? -1 : after, PAGE]);
    if (page.length === 0) break;
    await tasks.add(page);
    after = page[page.length - 1]!['seq'] as number;
    seqHigh = Math.max(seqHigh, after);
    copiedTasks(page.length);
  }
  await tasks.flush();
  for (let key: [string, number] = ['', -1]; ; ) {
    const page = live.all('SELECT * FROM attempts WHERE task_id > ? OR (task_id = ? AND n > ?) ORDER BY task_id, n LIMIT ?', [key[0], key[0], key[1], PAGE]);
    if (page.length === 0) break;
    await attempts.add(page);
    const last = page[page.length - 1]!;
    key = [last['task_id'] as string, last['n'] as number];
  }
  await attempts.flush();

  // Archived tasks, a chunk at a time (each is small: a few thousand tasks at most).
  let archived = 0;
  for (const chunk of chunks) {
    const cdb = source.archive.open(chunk);
    const cc = countEmbedded(cdb, false);
    addCounts(counts, cc);
    archived += totalTasks(cc);
    const rows = cdb.all('SELECT * FROM tasks ORDER BY seq');
    await tasks.add(rows);
    await tasks.flush();
    await attempts.add(cdb.all('SELECT * FROM attempts ORDER BY task_id, n'));
    await attempts.flush();
    source.archive.forget(chunk.id);
    seqHigh = Math.max(seqHigh, chunk.max_seq);
    copiedTasks(rows.length);
  }

  for (const [spec, order] of [
    [DEPS, 'task_id, after_id'],
    [REQUEUES, 'original_id'],
  ] as const) {
    const ins = new TeamInserter(c, spec);
    for (let offset = 0; ; offset += PAGE) {
      const page = live.all(`SELECT * FROM ${spec.name} ORDER BY ${order} LIMIT ? OFFSET ?`, [PAGE, offset]);
      if (page.length === 0) break;
      await ins.add(page);
    }
    await ins.flush();
  }
  return { counts, archivedTasks: archived, seqHigh };
}

// ---- into the embedded store ---------------------------------------------------------------------------------

export interface ToEmbeddedOptions extends MoveProgress {
  url: string;
  schema: string;
  /** A folder that does not exist yet: the new store is made in it (the caller renames it into place). */
  storeDir: string;
  /** Finished tasks kept live; older ones go to archive files, as the embedded store's own archiving would put them. */
  liveCap: number;
  now?: number;
}

/**
 * Copies the team queue in `schema` of the database at `url` — one consistent moment of it, read in one read-only
 * transaction — into a new embedded store made in `storeDir`, then reads the files back and checks the counts.
 */
export async function moveToEmbedded(o: ToEmbeddedOptions): Promise<MoveReport> {
  if (!SCHEMA_NAME.test(o.schema)) throw new SparkqError('config', `store.schema ${JSON.stringify(o.schema)} is not a plain lower-case PostgreSQL name (letters, digits, _)`);
  const now = o.now ?? Date.now();
  const db = new TeamDb({ url: o.url, schema: o.schema, applicationName: 'sparkq-migrate', max: 2 });
  try {
    const version = await schemaVersion(db, o.schema);
    if (version === null) throw new SparkqError('not-found', `the team database ${db.where} has no SparkQ queue in schema ${o.schema}; nothing to move`);
    if (version !== SCHEMA_VERSION) {
      throw new SparkqError('conflict', `the team database ${db.where} has SparkQ schema version ${version}, and this SparkQ moves version ${SCHEMA_VERSION}; use a SparkQ of the same version`);
    }
    fs.mkdirSync(o.storeDir, { mode: 0o700 });
    const out = await newEmbeddedDatabase();
    let report: MoveReport;
    try {
      const c = await db.connect();
      try {
        await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY');
        await checkTeamColumns(c, o.schema);
        report = await copyIntoEmbedded(c, out, o, now);
        await c.query('COMMIT');
      } catch (e) {
        await c.query('ROLLBACK').catch(() => undefined);
        throw db.mapError(e);
      } finally {
        await c.end().catch(() => undefined);
      }
      writeNewEmbeddedStore(o.storeDir, out, now);
    } finally {
      out.close();
    }
    // Read back from the files, as the next owner will load them.
    const written = await readEmbeddedStore(o.storeDir);
    if (!written) throw new Error(`internal: the new store in ${o.storeDir} has no manifest`);
    try {
      const got = countEmbeddedStore(written);
      checkCounts(report.counts, got.counts, 'the team database', 'the new embedded queue');
      if (got.archived !== report.archivedTasks) throw new SparkqError('internal', `${got.archived} tasks are in the new archive files where ${report.archivedTasks} were written; nothing was kept`);
    } finally {
      written.close();
    }
    // Other machines may have gone on working: say so, since their changes are not in the copy.
    const after = await db.tx((c) => countTeam(c));
    report.sourceChangedSince = JSON.stringify(after) !== JSON.stringify(report.counts);
    return report;
  } finally {
    await db.end();
  }
}

async function copyIntoEmbedded(c: Sql, out: SqlDatabase, o: ToEmbeddedOptions, now: number): Promise<MoveReport> {
  const counts = await countTeam(c);
  const total = totalTasks(counts);
  const every = o.every ?? 10_000;
  let copied = 0;
  const copiedTasks = (n: number) => {
    const before = copied;
    copied += n;
    if (o.progress && Math.floor(copied / every) > Math.floor(before / every)) o.progress(copied, total);
  };
  const seq = (
    await c.query<{ name: string | null; max: number | null }>("SELECT pg_get_serial_sequence('tasks', 'seq') AS name, (SELECT max(seq) FROM tasks) AS max")
  ).rows[0]!;
  let seqHigh = Number(seq.max ?? 0);
  if (seq.name !== null && /^[a-z0-9_."]+$/.test(seq.name)) {
    const s = (await c.query<{ last_value: number; is_called: boolean }>(`SELECT last_value, is_called FROM ${seq.name}`)).rows[0]!;
    seqHigh = Math.max(seqHigh, s.is_called ? Number(s.last_value) : Number(s.last_value) - 1);
  }

  const insert = (spec: TableSpec, rows: readonly SqlRow[]) => {
    const cols = spec.columns.map(([col]) => col);
    const sql = `INSERT INTO ${spec.name} (${cols.join(', ')}) VALUES (${cols.map(() => '?').join(', ')})`;
    for (const r of rows) out.run(sql, cols.map((col) => (r[col] ?? null)));
  };
  const queueCounts = new Map<string, number>();
  const keys: [string, string, string][] = [];
  const noteTasks = (rows: readonly SqlRow[]) => {
    for (const r of rows) {
      const k = `${r['queue_id'] as string}\u0000${r['status'] as string}`;
      queueCounts.set(k, (queueCounts.get(k) ?? 0) + 1);
      if (r['idem_key'] !== null && r['idem_key'] !== undefined) keys.push([r['queue_id'] as string, r['idem_key'] as string, r['id'] as string]);
    }
  };
  const attemptsOf = async (ids: string[]) => (await c.query<SqlRow>('SELECT * FROM attempts WHERE task_id = ANY($1::text[]) ORDER BY task_id, n', [ids])).rows;

  out.run('BEGIN');
  try {
    insert(SESSIONS, (await c.query<SqlRow>('SELECT * FROM sessions ORDER BY n')).rows);
    insert(QUEUES, (await c.query<SqlRow>('SELECT * FROM queues ORDER BY n')).rows);
    insert(PLANS, (await c.query<SqlRow>('SELECT * FROM plans ORDER BY id')).rows);

    // The oldest finished tasks beyond the live cap go to archive files, in chunks of the size the embedded store's
    // own archiving writes (two batches of a quarter of the cap at most).
    const finished = Number((await c.query<{ n: number }>('SELECT count(*) AS n FROM tasks WHERE finished_at IS NOT NULL')).rows[0]!.n);
    let toArchive = Math.max(0, finished - o.liveCap);
    const chunkSize = 2 * Math.max(100, Math.floor(o.liveCap / 4));
    const archive = new Archive(out, path.join(o.storeDir, ARCHIVE_DIR), true);
    let archived = 0;
    let chunkId = 0;
    let boundary: [number, number] | null = null;
    while (toArchive > 0) {
      const rows: SqlRow[] = (
        await c.query<SqlRow>(
          `SELECT * FROM tasks WHERE finished_at IS NOT NULL AND ($1::int8 IS NULL OR (finished_at, seq) > ($1, $2)) ORDER BY finished_at, seq LIMIT $3`,
          [boundary?.[0] ?? null, boundary?.[1] ?? null, Math.min(chunkSize, toArchive)],
        )
      ).rows;
      if (rows.length === 0) break;
      const last: SqlRow = rows[rows.length - 1]!;
      boundary = [last['finished_at'] as number, last['seq'] as number];
      const meta = archive.writeChunk(++chunkId, rows, await attemptsOf(rows.map((r) => r['id'] as string)), now);
      out.run(
        'INSERT INTO archive_chunks(id, file, count, min_seq, max_seq, min_finished_at, max_finished_at, bytes, crc, bloom, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)',
        [meta.id, meta.file, meta.count, meta.minSeq, meta.maxSeq, meta.minFinishedAt, meta.maxFinishedAt, meta.bytes, meta.crc, Buffer.from(meta.bloom, 'base64'), meta.at],
      );
      noteTasks(rows);
      toArchive -= rows.length;
      archived += rows.length;
      copiedTasks(rows.length);
    }
    if (chunkId > 0) out.run("INSERT INTO meta(key, value) VALUES ('chunk_id_high', ?)", [chunkId]);

    // The rest stays live: every task not archived, a page at a time by seq.
    for (let after = -1; ; ) {
      const rows = (
        await c.query<SqlRow>(
          `SELECT * FROM tasks WHERE seq > $1 AND ($2::int8 IS NULL OR finished_at IS NULL OR (finished_at, seq) > ($2, $3)) ORDER BY seq LIMIT $4`,
          [after, boundary?.[0] ?? null, boundary?.[1] ?? null, PAGE],
        )
      ).rows;
      if (rows.length === 0) break;
      insert(TASKS, rows);
      insert(ATTEMPTS, await attemptsOf(rows.map((r) => r['id'] as string)));
      noteTasks(rows);
      after = rows[rows.length - 1]!['seq'] as number;
      copiedTasks(rows.length);
    }
    for (const [spec, order] of [
      [DEPS, 'task_id, after_id'],
      [REQUEUES, 'original_id'],
    ] as const) {
      for (let offset = 0; ; offset += PAGE) {
        const rows = (await c.query<SqlRow>(`SELECT * FROM ${spec.name} ORDER BY ${order} LIMIT $1 OFFSET $2`, [PAGE, offset])).rows;
        if (rows.length === 0) break;
        insert(spec, rows);
      }
    }
    // What the embedded store keeps beside the rows: counts per queue and status, the key index, the seq high mark.
    for (const [k, n] of queueCounts) out.run('INSERT INTO queue_counts(queue_id, status, n) VALUES (?, ?, ?)', [...(k.split('\u0000') as [string, string]), n]);
    for (const [queueId, key, taskId] of keys) out.run('INSERT INTO task_keys(queue_id, key, task_id) VALUES (?, ?, ?)', [queueId, key, taskId]);
    if (seqHigh > 0) out.run("INSERT INTO meta(key, value) VALUES ('task_seq_high', ?)", [seqHigh]);
    out.run('COMMIT');
    archive.close();
    return { counts, archivedTasks: archived, seqHigh };
  } catch (e) {
    out.run('ROLLBACK');
    throw e;
  }
}
