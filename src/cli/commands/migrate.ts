/* eslint-disable @typescript-eslint/no-require-imports -- pg, sql.js and the move are loaded only when a move runs */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Option } from 'commander';
import { parseDocument } from 'yaml';
import { teamStoreOf } from '../../client/teamStore';
import { type StoreConfig, defaultConfigYaml, parseConfig } from '../../core/config';
import { isSparkqError } from '../../core/errors';
import { fsyncDir, writeFileAtomic } from '../../core/store/fileio';
import { type OwnerLock, tryAcquireOwnerLock } from '../../owner/lock';
import type * as OwnerModule from '../../owner/owner';
import { configFileOf, ensureSparkqDir, sparkqDirOf } from '../../owner/workspace';
import type * as TeamDbModule from '../../team/db';
import type * as MoveModule from '../../team/move';
import type { MoveCounts, MoveReport } from '../../team/move';
import type * as TeamSchemaModule from '../../team/schema';
import { intOption } from '../args';
import { type CommandContext, action } from '../context';
import { CliError } from '../errors';
import type { CommandGroup } from '../registry';

interface MigrateOptions {
  to: 'postgres' | 'sqljs';
  schema?: string;
  switch?: boolean;
  progressEvery?: number;
}

/** A postgres:// URL with a password in it (user:password@): never written to sparkq.yml. */
const HAS_PASSWORD = /^postgres(ql)?:\/\/[^/@:]*:[^@]+@/;
/** How long to wait for a short-lived owner (another CLI command, role `cli`) to let go before saying who holds the queue. */
const WAIT_FOR_OWNER_MS = 3_000;

/**
 * `sparkq migrate --to postgres [URL]` and `--to sqljs`: moves the workspace's queue between the embedded store and a
 * team database (src/team/move.ts), checks the counts on both sides, and leaves the source as it was.
 *
 * The embedded store is read (or made) while this command holds the workspace's owner lock without serving: a move
 * copies one moment of the queue, so the queue must not change meanwhile. A live owner (VS Code, `sparkq serve`, a
 * worker) is not read through: IPC shows tasks as callers see them, not the rows a move copies (leases, seqs, waiting
 * counts, the key index, archive files), and that owner's workers would go on changing the queue during the copy and
 * after it. The command says which process holds it and to close it; nothing is changed.
 */
export const migrateCommand: CommandGroup = {
  register(program, io) {
    program
      .command('migrate')
      .description('move the queue to another store: --to postgres [URL] copies the embedded queue (live and archived) into an empty team database; --to sqljs copies the team database into a new embedded queue. Counts are checked; the source is left as it was')
      .argument('[url]', 'with --to postgres: the team database, postgres://USER@HOST/DB (default: $SPARKQ_DATABASE_URL)')
      .addOption(new Option('--to <store>', 'the store to move to').choices(['postgres', 'sqljs']).makeOptionMandatory())
      .option('--schema <name>', 'with --to postgres: the PostgreSQL schema to fill, absent or empty (default sparkq)')
      .option('--switch', 'then point sparkq.yml at the new store (a password is never written to it)')
      .addOption(new Option('--progress-every <n>', 'a progress line on stderr every n tasks (default 10000)').argParser(intOption('--progress-every', 1, 1_000_000_000)).hideHelp())
      .action(
        action<MigrateOptions>(io, async (ctx, args, opts) => {
          const workspace = ctx.workspace();
          const started = Date.now();
          const progress = (copied: number, total: number) =>
            ctx.io.stderr.write(`sparkq migrate: ${copied.toLocaleString('en-US')} of ${total.toLocaleString('en-US')} tasks copied (${((Date.now() - started) / 1000).toFixed(1)} s)\n`);
          const tuning = { progress, ...(opts.progressEvery !== undefined ? { every: opts.progressEvery } : {}) };
          if (opts.to === 'postgres') await toPostgres(ctx, workspace, args[0], opts, tuning, started);
          else await toSqljs(ctx, workspace, args[0], opts, tuning, started);
        }),
      );
  },
};

type Tuning = Pick<MoveModule.ToPostgresOptions, 'progress' | 'every'>;

function storeDirOf(workspace: string): string {
  const { DB_DIR } = require('../../owner/owner') as typeof OwnerModule;
  return path.join(sparkqDirOf(workspace), DB_DIR);
}

async function toPostgres(ctx: CommandContext, workspace: string, given: string | undefined, opts: MigrateOptions, tuning: Tuning, started: number): Promise<void> {
  const url = (given ?? ctx.io.env['SPARKQ_DATABASE_URL'] ?? '').trim();
  if (url === '') throw new CliError('say which team database to move to: sparkq migrate --to postgres postgres://USER@HOST/DB (or set SPARKQ_DATABASE_URL)');
  if (!/^postgres(ql)?:\/\//.test(url)) throw new CliError(`--to postgres takes a postgres:// URL, not ${JSON.stringify(url)}`);
  const schema = opts.schema ?? 'sparkq';
  const { SCHEMA_NAME } = require('../../team/schema') as typeof TeamSchemaModule;
  if (!SCHEMA_NAME.test(schema)) throw new CliError(`--schema must be a plain lower-case PostgreSQL name (letters, digits, _), not ${JSON.stringify(schema)}`);
  const storeDir = storeDirOf(workspace);
  if (!fs.existsSync(path.join(storeDir, 'manifest.json'))) throw new CliError(`there is no embedded queue in ${storeDir} to move; nothing was changed`);

  const { moveToPostgres } = require('../../team/move') as typeof MoveModule;
  const { redactUrl } = require('../../team/db') as typeof TeamDbModule;
  const lock = await holdEmbeddedQueue(sparkqDirOf(workspace));
  let report: MoveReport;
  try {
    report = await moveToPostgres({ storeDir, url, schema, ...tuning, fence: () => fence(lock) }).catch(adviseRepair);
  } finally {
    lock.release();
  }
  const store: Partial<StoreConfig> = { kind: 'postgres', ...(HAS_PASSWORD.test(url) ? {} : { url }), ...(schema !== 'sparkq' ? { schema } : {}) };
  const switched = opts.switch === true ? switchStore(workspace, store) : false;
  const database = redactUrl(url);
  if (ctx.json) {
    ctx.out.printJson({
      from: { store: 'sqljs', dir: storeDir },
      to: { store: 'postgres', database, schema },
      counts: report.counts,
      archivedTasks: report.archivedTasks,
      seqHigh: report.seqHigh,
      checked: true,
      switched,
      config: store,
      elapsedMs: Date.now() - started,
    });
    return;
  }
  ctx.out.line(`Copied the embedded queue of ${workspace} into ${database}, schema ${schema}:`);
  describe(ctx, report);
  ctx.out.line(`Every count matches in the team database. The embedded queue in ${storeDir} is unchanged.`);
  if (switched) ctx.out.line(`sparkq.yml now says store.kind: postgres: this workspace uses the team database from now on.`);
  else {
    ctx.out.line('To use the team database from this workspace, put this in sparkq.yml (or, next time, pass --switch):');
    ctx.out.line(storeYaml(store));
  }
  if (store.url === undefined) ctx.out.line('The URL has a password, so it is not for sparkq.yml: on each machine, set SPARKQ_DATABASE_URL to it (or use ~/.pgpass).');
}

async function toSqljs(ctx: CommandContext, workspace: string, given: string | undefined, opts: MigrateOptions, tuning: Tuning, started: number): Promise<void> {
  if (given !== undefined) throw new CliError('--to sqljs takes no URL: it moves the team database this workspace names (sparkq.yml store.kind: postgres, SPARKQ_DATABASE_URL)');
  if (opts.schema !== undefined) throw new CliError('--schema applies only with --to postgres; --to sqljs reads the schema sparkq.yml names');
  const team = teamStoreOf(workspace, ctx.io.env);
  if (!team) {
    throw new CliError(
      'this workspace is not in team mode (sparkq.yml does not say store.kind: postgres), so there is no team database to move from; to move this workspace\'s embedded queue into one, use --to postgres URL',
    );
  }
  const { moveToEmbedded, embeddedStoreCounts, totalTasks } = require('../../team/move') as typeof MoveModule;
  const { redactUrl } = require('../../team/db') as typeof TeamDbModule;
  const sparkqDir = ensureSparkqDir(workspace);
  const storeDir = storeDirOf(workspace);
  const lock = await holdEmbeddedQueue(sparkqDir);
  let report: MoveReport;
  try {
    // An empty store (a command once opened the embedded queue here) is replaced; one with data never is.
    const existing = fs.existsSync(storeDir) ? await embeddedStoreCounts(storeDir).catch(adviseRepair) : null;
    if (existing !== null && !isEmpty(existing)) {
      throw new CliError(
        `this workspace already has an embedded queue with data in ${storeDir} (${existing.sessions} sessions, ${totalTasks(existing)} tasks), so nothing was changed; ` +
          'move that folder away first (or move the team database into another workspace)',
      );
    }
    if (existing === null && fs.existsSync(storeDir) && fs.readdirSync(storeDir).length > 0) {
      throw new CliError(`${storeDir} holds files that are not an embedded queue, so nothing was changed; move that folder away first`);
    }
    const staging = path.join(sparkqDir, 'db.migrating');
    fs.rmSync(staging, { recursive: true, force: true });
    try {
      report = await moveToEmbedded({ url: team.url, schema: team.schema, storeDir: staging, liveCap: team.config.store.liveCap, ...tuning });
      fence(lock);
      // The new store appears whole, by one rename; an empty one it replaces goes aside first and is removed after.
      const aside = path.join(sparkqDir, `db.replaced-${process.pid}`);
      if (fs.existsSync(storeDir)) fs.renameSync(storeDir, aside);
      fs.renameSync(staging, storeDir);
      fsyncDir(sparkqDir);
      fs.rmSync(aside, { recursive: true, force: true });
    } catch (e) {
      fs.rmSync(staging, { recursive: true, force: true });
      throw e;
    }
  } finally {
    lock.release();
  }
  const store: Partial<StoreConfig> = { kind: 'sqljs' };
  const switched = opts.switch === true ? switchStore(workspace, store) : false;
  const database = redactUrl(team.url);
  if (report.sourceChangedSince) {
    ctx.io.stderr.write(`warning: the team database changed while it was copied (other machines at work); the copy holds the queue as it was when the copy began\n`);
  }
  if (ctx.json) {
    ctx.out.printJson({
      from: { store: 'postgres', database, schema: team.schema },
      to: { store: 'sqljs', dir: storeDir },
      counts: report.counts,
      archivedTasks: report.archivedTasks,
      seqHigh: report.seqHigh,
      checked: true,
      switched,
      config: store,
      elapsedMs: Date.now() - started,
    });
    return;
  }
  ctx.out.line(`Copied the team queue in ${database}, schema ${team.schema}, into a new embedded queue in ${storeDir}:`);
  describe(ctx, report);
  ctx.out.line('Every count matches in the new embedded queue. The team database is unchanged.');
  if (switched) ctx.out.line('sparkq.yml now says store.kind: sqljs: this workspace uses its embedded queue from now on.');
  else ctx.out.line('To use it, set store.kind: sqljs in sparkq.yml (and remove store.url and store.schema), or, next time, pass --switch.');
}

/** A damaged embedded store is not moved (nor written over): what is damaged is said, and nothing changes. */
function adviseRepair(e: unknown): never {
  if (isSparkqError(e, 'corrupt')) throw new CliError(`${e.message}; a damaged embedded queue is not moved, so nothing was changed`);
  throw e;
}

function isEmpty(c: MoveCounts): boolean {
  return c.sessions + c.queues + c.plans + c.attempts + c.dependencies + c.requeues + c.idempotencyKeys + c.tasks.queued + c.tasks.running + c.tasks.succeeded + c.tasks.failed === 0;
}

function describe(ctx: CommandContext, r: MoveReport): void {
  const c = r.counts;
  const total = c.tasks.queued + c.tasks.running + c.tasks.succeeded + c.tasks.failed;
  ctx.out.line(`  ${c.sessions} sessions, ${c.queues} queues, ${c.plans} plans`);
  ctx.out.line(
    `  ${total} tasks: ${c.tasks.queued} queued, ${c.tasks.running} running, ${c.tasks.succeeded} succeeded, ${c.tasks.failed} failed` +
      (r.archivedTasks > 0 ? ` (${r.archivedTasks} in archive files)` : ''),
  );
  ctx.out.line(`  ${c.attempts} attempts, ${c.dependencies} dependencies (${c.waiting} still waited on), ${c.requeues} requeues, ${c.idempotencyKeys} idempotency keys`);
}

function storeYaml(store: Partial<StoreConfig>): string {
  return ['store:', ...Object.entries(store).map(([k, v]) => `  ${k}: ${String(v)}`)].join('\n');
}

function fence(lock: OwnerLock): void {
  if (!lock.isCurrent()) {
    throw new CliError('another process took the embedded queue over while it was being moved, so nothing was kept; run sparkq migrate again with nothing else using the queue');
  }
}

/**
 * Takes the workspace's owner lock for the move, without serving: other processes wait for it (it has no socket yet,
 * as an owner that is starting). A CLI command that owns the queue is given a moment to let go; any other live holder
 * is named at once.
 */
async function holdEmbeddedQueue(sparkqDir: string): Promise<OwnerLock> {
  const deadline = Date.now() + WAIT_FOR_OWNER_MS;
  for (;;) {
    const r = await tryAcquireOwnerLock(sparkqDir, { role: 'migrate' });
    if ('lock' in r) return r.lock;
    const h = r.holder;
    // A CLI command lets go within a second; an extension host, `serve` or a worker stays.
    if (h.role !== 'cli' || Date.now() >= deadline) {
      throw new CliError(
        `the embedded queue is open in process ${h.pid} (${h.role}, owner since ${h.acquiredAt}), which may change it while it is copied; ` +
          'close it (VS Code on this workspace, sparkq serve, sparkq run workers), then run sparkq migrate again. Nothing was changed',
      );
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Rewrites the store section of sparkq.yml (comments and the rest kept), checking that the result loads. Keys that
 * apply only to the other kind are removed; `store` never holds a password (the caller leaves such a URL out).
 */
function switchStore(workspace: string, store: Partial<StoreConfig>): true {
  const file = configFileOf(workspace);
  const exists = fs.existsSync(file);
  const doc = parseDocument(exists ? fs.readFileSync(file, 'utf8') : defaultConfigYaml(path.basename(workspace)));
  for (const k of ['kind', 'url', 'schema'] as const) {
    const v = store[k];
    if (v === undefined) doc.deleteIn(['store', k]);
    else doc.setIn(['store', k], v);
  }
  const text = doc.toString();
  parseConfig(text, file);
  const mode = exists ? fs.statSync(file).mode & 0o777 : 0o644;
  writeFileAtomic(file, text, { durable: true, mode });
  return true;
}
