/*
 * `npm run bench:team` (node --import tsx bench/team.ts [--seconds 5] [--rounds 3] [--history 1000000] [--quick])
 *
 * Team mode (issue 17) on a throwaway PostgreSQL of its own (test/support/postgres.ts: initdb in a temp folder, a Unix
 * socket, fsync on), against its targets:
 *   - claims + completes per second with 1, 16 and 64 workers, side by side with pg-boss doing the same work on the
 *     same server (explicit fetch → complete loops; its work() loop sleeps between rounds, and its maintenance, cron
 *     and instance registry are off): SparkQ at least 1.0× pg-boss at 16 and 64 workers;
 *   - enqueue → claimed through LISTEN/NOTIFY, p50 ≤ 20 ms (pg-boss's work() with NOTIFY beside it, for reference);
 *   - the first page of tasks (listTasks, 50) with 1M tasks of history ≤ 50 ms.
 *
 * Workers are concurrent async loops in this one Node process, each on a pool of its own (a TeamQueue, or a PgBoss
 * instance, with at most 2 connections): the same for both systems. On 2 cores, separate processes would only add
 * context switches; PostgreSQL itself is the bottleneck near 1k pairs/s. Every run uses a fresh queue, filled before
 * the clock starts (SparkQ's with one INSERT … SELECT, pg-boss's with its bulk insert), with a prompt of the same size
 * in both; after a few untimed pairs per worker (connections, prepared statements) all workers start together and
 * run for the same time; systems alternate, first one then the other, and each figure is the median of the rounds.
 * It reports; it is not a test: it exits 0 when a target is missed, and non-zero only when it could not measure.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { defaultConfig } from '../src/core/config';
import { newId } from '../src/core/ids';
import type { ChangeEvent } from '../src/core/events';
import { TeamQueue } from '../src/team/teamQueue';
import { type PgServer, postgres } from '../test/support/postgres';
import type { PgBoss } from 'pg-boss' with { 'resolution-mode': 'import' };
import { PROMPT, SUMMARY } from './lib/shape';
import { type Summary, sleep, summarize } from './lib/stats';

/** pg-boss is an ES module: loaded with import() in main(). */
let PgBossClass: typeof PgBoss;

const RESULTS = path.join(__dirname, 'results');
const WORKER_COUNTS = [1, 16, 64] as const;
/** SparkQ's claims + completes per second over pg-boss's, at these worker counts. */
const THROUGHPUT_TARGET = 1.0;
const THROUGHPUT_TARGET_AT = new Set([16, 64]);
const LATENCY_TARGET_MS = 20;
const FIRST_PAGE_TARGET_MS = 50;
/** Untimed claim + complete pairs per worker before the clock starts. */
const WARMUP_PAIRS = 3;
/** Connections per worker's pool, both systems. */
const POOL_MAX = 2;

interface Plan {
  seconds: number;
  rounds: number;
  history: number;
  latencySamples: number;
  pageSamples: number;
  workers: number[];
  /** Measure one system's throughput only (to look at one alone); the targets then say INCOMPLETE. */
  only: 'sparkq' | 'pgboss' | null;
}

interface RunResult {
  pairs: number;
  seconds: number;
  perSecond: number;
  /** The queue ran out of tasks before the time was up (the fill was too small for this rate). */
  ranDry: boolean;
  /** This process's CPU time (user + system) per pair while timed: what the client side costs, ms. */
  cpuMsPerPair: number;
}

interface Row {
  workers: number;
  sparkq: RunResult[];
  pgboss: RunResult[];
  sparkqPerSecond: number;
  pgbossPerSecond: number;
  ratio: number;
}

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

/** The 1-minute load average, sampled every second while the bench runs. */
class LoadWatch {
  readonly start = os.loadavg();
  max = this.start[0]!;
  private readonly timer = setInterval(() => (this.max = Math.max(this.max, os.loadavg()[0]!)), 1000);
  stop(): number[] {
    clearInterval(this.timer);
    return os.loadavg();
  }
}

/** What a worker loop needs from a system: one claim + complete, false when the queue had nothing. */
type Pair = () => Promise<boolean>;

/** W loops doing pairs until `seconds` have passed, all released at once after their warm-up. */
async function timedLoops(pairs: Pair[], seconds: number): Promise<RunResult> {
  await Promise.all(pairs.map(async (pair) => {
    for (let i = 0; i < WARMUP_PAIRS; i++) if (!(await pair())) throw new Error('the queue was empty during the warm-up');
  }));
  let done = 0;
  let ranDry = false;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const deadline = t0 + seconds * 1000;
  await Promise.all(
    pairs.map(async (pair) => {
      while (performance.now() < deadline) {
        if (!(await pair())) {
          ranDry = true;
          return;
        }
        done++;
      }
    }),
  );
  const elapsed = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  return { pairs: done, seconds: elapsed, perSecond: done / elapsed, ranDry, cpuMsPerPair: (cpu.user + cpu.system) / 1000 / Math.max(1, done) };
}

/** Every pair counted must have completed a task in the database (warm-up pairs included), or the figure is wrong. */
function checkDone(who: string, done: number, r: RunResult, workers: number): void {
  const expected = r.pairs + workers * WARMUP_PAIRS;
  if (done !== expected) throw new Error(`${who}: ${done} tasks completed in the database, but ${expected} pairs were counted`);
}

/** Enough tasks that no plausible rate on this machine empties the queue before the time is up. */
const fillFor = (workers: number, seconds: number) => Math.ceil(3000 * seconds) + workers * WARMUP_PAIRS + 1000;

class SparkqSide {
  private constructor(
    private readonly url: string,
    readonly admin: TeamQueue,
  ) {}

  static async open(url: string): Promise<SparkqSide> {
    const admin = await TeamQueue.open({ url, config: defaultConfig('bench'), applicationName: 'bench-admin' });
    await admin.createSession({ name: 'bench' });
    return new SparkqSide(url, admin);
  }

  /** A fresh queue of `n` queued tasks, made by one INSERT … SELECT (what is timed is claiming, not enqueueing). */
  async freshQueue(name: string, n: number): Promise<string> {
    const q = await this.admin.createQueue({ name, session: 'bench', maxWorkers: 64 });
    const tag = newId('tsk').slice(4, 8);
    await this.admin.db.query(
      `INSERT INTO tasks (id, session_id, queue_id, tool, task_class, prompt, status, timeout_s, created_at)
       SELECT 'tsk_' || $1 || lpad(g::text, 8, '0'), $2, $3, 'run-bash', 'FAST_SCRIPT', $4, 'queued', 30, $5::bigint + g FROM generate_series(1, $6) g`,
      [tag, q.sessionId, q.id, PROMPT, Date.now(), n],
    );
    return q.id;
  }

  async dropQueue(id: string): Promise<void> {
    await this.admin.db.query('DELETE FROM tasks WHERE queue_id = $1', [id]);
  }

  async run(workers: number, seconds: number, tag: string): Promise<RunResult> {
    const queue = `tp-${tag}`;
    const id = await this.freshQueue(queue, fillFor(workers, seconds));
    const qs = await Promise.all(
      Array.from({ length: workers }, (_, i) => TeamQueue.open({ url: this.url, config: defaultConfig('bench'), maxConnections: POOL_MAX, applicationName: `bench-w${i}` })),
    );
    try {
      const r = await timedLoops(
        qs.map((q, i) => async () => {
          const c = await q.claim({ queue, worker: `w${i}` });
          if (!c) return false;
          await q.complete({ task: c.task.id, lease: c.lease, summary: SUMMARY });
          return true;
        }),
        seconds,
      );
      const done = (await this.admin.db.query<{ n: number }>("SELECT count(*) AS n FROM tasks WHERE queue_id = $1 AND status = 'succeeded'", [id]))[0]!.n;
      checkDone('SparkQ', done, r, workers);
      return r;
    } finally {
      await Promise.all(qs.map((q) => q.close()));
      await this.dropQueue(id);
    }
  }

  /**
   * Enqueue → claimed: a worker on a connection of its own claims when NOTIFY tells it a task was queued on its queue;
   * the time is from just before enqueue() is called to claim() returning the task. A task no event brought within
   * 5 s is claimed by hand and counted as missed (NOTIFY is a hint: a real worker's poll would find it).
   */
  async latency(samples: number): Promise<{ ms: Summary; missed: number }> {
    const queue = 'latency';
    const { id: queueId } = await this.admin.createQueue({ name: queue, session: 'bench' });
    const worker = await TeamQueue.open({ url: this.url, config: defaultConfig('bench'), maxConnections: POOL_MAX, applicationName: 'bench-listener' });
    const claimedAt = new Map<string, number>();
    const waiters = new Map<string, () => void>();
    let closing = false;
    // In an object: assigned in closures, which TypeScript's narrowing of a plain `let` does not follow.
    const run: { draining: Promise<void> | null } = { draining: null };
    let again = false;
    const drainOnce = async () => {
      do {
        again = false;
        for (let c = await worker.claim({ queue, worker: 'listener' }); c; c = closing ? null : await worker.claim({ queue, worker: 'listener' })) {
          claimedAt.set(c.task.id, performance.now());
          waiters.get(c.task.id)?.();
          await worker.complete({ task: c.task.id, lease: c.lease, summary: SUMMARY });
        }
      } while (again && !closing);
    };
    const drain = (): Promise<void> => {
      if (closing) return Promise.resolve();
      if (run.draining) {
        again = true;
        return run.draining;
      }
      run.draining = drainOnce().finally(() => (run.draining = null));
      return run.draining;
    };
    const off = worker.onChange((events: ChangeEvent[]) => {
      if (events.some((e) => e.kind === 'task' && e.queueId === queueId && e.status === 'queued')) void drain().catch(() => undefined);
    });
    /** One sample: ms from enqueue to claimed, or null when no event brought the task within `patience` ms. */
    const one = async (patience: number): Promise<number | null> => {
      const t0 = performance.now();
      const task = await this.admin.enqueue({ queue, tool: 'run-bash', prompt: PROMPT });
      if (!claimedAt.has(task.id)) {
        const heard = await new Promise<boolean>((resolve) => {
          const timer = setTimeout(() => resolve(false), patience);
          waiters.set(task.id, () => {
            clearTimeout(timer);
            resolve(true);
          });
        });
        waiters.delete(task.id);
        if (!heard) {
          await drain();
          return null;
        }
      }
      return claimedAt.get(task.id)! - t0;
    };
    try {
      // The worker's LISTEN connection opens on its first onChange: wait until events bring three tasks in a row.
      for (let inARow = 0, tries = 0; inARow < 3; tries++) {
        if (tries >= 30) throw new Error('no change event reached the listening worker in 30 tries');
        inARow = (await one(1000)) === null ? 0 : inARow + 1;
      }
      const ms: number[] = [];
      let missed = 0;
      for (let i = 0; i < samples; i++) {
        const x = await one(5000);
        if (x === null) missed++;
        else ms.push(x);
        await sleep(5 + Math.random() * 20);
      }
      return { ms: summarize(ms), missed };
    } finally {
      closing = true;
      off();
      await run.draining?.catch(() => undefined);
      await worker.close();
    }
  }

  /** `n` finished tasks of history over 8 queues in one INSERT … SELECT, then VACUUM ANALYZE and a checkpoint. */
  async history(n: number): Promise<{ seconds: number; tasks: number }> {
    const queues = await Promise.all(Array.from({ length: 8 }, (_, i) => this.admin.createQueue({ name: `history-${i}`, session: 'bench' })));
    const t0 = performance.now();
    const start = Date.now() - n * 50 - 3_600_000;
    await this.admin.db.query(
      `INSERT INTO tasks (id, session_id, queue_id, tool, task_class, prompt, status, timeout_s, attempt, worker, created_at, started_at, finished_at, summary, error, usage)
       SELECT 'tsk_h' || lpad(g::text, 11, '0'), $1, ($2::text[])[1 + g % 8],
              CASE WHEN g % 3 = 0 THEN 'llm-codex' ELSE 'run-bash' END, 'FAST_SCRIPT', $3,
              CASE WHEN g % 20 = 0 THEN 'failed' ELSE 'succeeded' END, 30, 1, 'w' || (g % 16),
              $4::bigint + g * 50, $4::bigint + g * 50 + 10, $4::bigint + g * 50 + 40,
              CASE WHEN g % 20 = 0 THEN NULL ELSE $5 END, CASE WHEN g % 20 = 0 THEN 'exit 1' END,
              CASE WHEN g % 3 = 0 THEN '{"inputTokens":12000,"cachedInputTokens":8000,"outputTokens":900,"model":"gpt-5-codex"}' END
         FROM generate_series(1, $6) g`,
      [queues[0]!.sessionId, queues.map((q) => q.id), PROMPT, start, SUMMARY, n],
    );
    // As a database that grew over months would be: vacuumed, analyzed, and no checkpoint of the fill still writing.
    await this.admin.db.query('VACUUM ANALYZE tasks');
    await this.admin.db.query('CHECKPOINT');
    const tasks = (await this.admin.db.query<{ n: number }>('SELECT count(*) AS n FROM tasks'))[0]!.n;
    return { seconds: (performance.now() - t0) / 1000, tasks };
  }

  async time(fn: () => Promise<unknown>, samples: number, warmup = 3): Promise<Summary> {
    for (let i = 0; i < warmup; i++) await fn();
    const ms: number[] = [];
    for (let i = 0; i < samples; i++) {
      const t0 = performance.now();
      await fn();
      ms.push(performance.now() - t0);
    }
    return summarize(ms);
  }

  close(): Promise<void> {
    return this.admin.close();
  }
}

class PgBossSide {
  readonly warnings = new Set<string>();
  readonly errors: string[] = [];

  private constructor(
    private readonly url: string,
    private readonly admin: PgBoss,
    /** Plain SQL on the same database, to check what pg-boss recorded. */
    private readonly sql: <R extends Record<string, unknown>>(text: string, values: unknown[]) => Promise<R[]>,
  ) {}

  /** An instance with everything but fetch/complete off: no supervision (maintenance), no cron, no registry row. */
  private static async instance(url: string, side: PgBossSide | null, extra: { useListenNotify?: boolean } = {}): Promise<PgBoss> {
    const boss = new PgBossClass({
      connectionString: url,
      schema: 'pgboss',
      max: POOL_MAX,
      supervise: false,
      schedule: false,
      migrate: side === null,
      createSchema: side === null,
      registerInstance: false,
      ...extra,
    });
    boss.on('error', (e: unknown) => side?.errors.push(e instanceof Error ? e.message : String(e)));
    boss.on('warning', (w: { message?: string; type?: string }) => side?.warnings.add(w.type ?? w.message ?? 'warning'));
    await boss.start();
    return boss;
  }

  static async open(url: string, sql: PgBossSide['sql']): Promise<PgBossSide> {
    const admin = await PgBossSide.instance(url, null);
    return new PgBossSide(url, admin, sql);
  }

  async run(workers: number, seconds: number, tag: string): Promise<RunResult> {
    const name = `tp-${tag}`;
    await this.admin.createQueue(name);
    const n = fillFor(workers, seconds);
    for (let i = 0; i < n; i += 5000) {
      await this.admin.insert(name, Array.from({ length: Math.min(5000, n - i) }, () => ({ data: { prompt: PROMPT } })));
    }
    const bosses = await Promise.all(Array.from({ length: workers }, () => PgBossSide.instance(this.url, this)));
    try {
      const r = await timedLoops(
        bosses.map((boss) => async () => {
          const [job] = await boss.fetch<{ prompt: string }>(name, { batchSize: 1 });
          if (!job) return false;
          // Fenced by the attempt, as SparkQ's complete is by its lease.
          await boss.complete(name, { id: job.id, retryCount: job.retryCount }, { summary: SUMMARY });
          return true;
        }),
        seconds,
      );
      const done = (await this.sql<{ n: number }>("SELECT count(*)::int AS n FROM pgboss.job WHERE name = $1 AND state = 'completed'", [name]))[0]!.n;
      checkDone('pg-boss', done, r, workers);
      return r;
    } finally {
      await Promise.all(bosses.map((b) => b.stop({ graceful: false, close: true })));
      await this.admin.deleteQueue(name);
    }
  }

  /** send → the work() handler called, with LISTEN/NOTIFY on (instance) and notify on the queue; polling as backstop only. */
  async latency(samples: number): Promise<Summary> {
    const name = 'latency';
    await this.admin.createQueue(name, { notify: true });
    const worker = await PgBossSide.instance(this.url, this, { useListenNotify: true });
    const claimedAt = new Map<number, number>();
    const waiters = new Map<number, () => void>();
    try {
      await worker.work<{ k: number }>(name, { pollingIntervalSeconds: 10, notifyPollingIntervalSeconds: 10 }, async (jobs) => {
        for (const job of jobs) {
          claimedAt.set(job.data.k, performance.now());
          waiters.get(job.data.k)?.();
        }
        await Promise.resolve();
      });
      let k = 0;
      const one = async (): Promise<number> => {
        const key = k++;
        const t0 = performance.now();
        await this.admin.send(name, { k: key });
        if (!claimedAt.has(key)) {
          await new Promise<void>((resolve, reject) => {
            const timer = setTimeout(() => reject(new Error(`pg-boss job ${key} was not handled within 15 s`)), 15_000);
            waiters.set(key, () => {
              clearTimeout(timer);
              resolve();
            });
          });
        }
        return claimedAt.get(key)! - t0;
      };
      for (let i = 0; i < 5; i++) await one();
      const ms: number[] = [];
      for (let i = 0; i < samples; i++) {
        ms.push(await one());
        await sleep(5 + Math.random() * 20);
      }
      return summarize(ms);
    } finally {
      await worker.stop({ graceful: false, close: true });
    }
  }

  close(): Promise<void> {
    return this.admin.stop({ graceful: false, close: true });
  }
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ')).join('\n');
}

const fmt = (x: number, digits = 0) => (Number.isFinite(x) ? x.toFixed(digits) : '—');

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const num = (flag: string, dflt: number) => {
    const i = argv.indexOf(flag);
    return i >= 0 ? Number(argv[i + 1]) : dflt;
  };
  const quick = argv.includes('--quick');
  const plan: Plan = {
    seconds: num('--seconds', quick ? 2 : 5),
    rounds: num('--rounds', quick ? 1 : 3),
    history: num('--history', quick ? 100_000 : 1_000_000),
    latencySamples: quick ? 50 : 200,
    pageSamples: quick ? 10 : 30,
    workers: argv.includes('--workers') ? argv[argv.indexOf('--workers') + 1]!.split(',').map(Number) : [...WORKER_COUNTS],
    only: argv.includes('--only') ? (argv[argv.indexOf('--only') + 1] as 'sparkq' | 'pgboss') : null,
  };
  const log = (line: string) => process.stderr.write(line + '\n');
  const load = new LoadWatch();
  const startedAt = new Date().toISOString();
  const t0 = performance.now();

  ({ PgBoss: PgBossClass } = await import('pg-boss'));
  log('starting a throwaway PostgreSQL…');
  const server: PgServer = await postgres();
  const url = await server.createDatabase('bench');
  const sparkq = await SparkqSide.open(url);
  const version = (await sparkq.admin.db.query<{ v: string }>("SELECT current_setting('server_version') AS v"))[0]!.v;
  const boss = await PgBossSide.open(url, (text, values) => sparkq.admin.db.query(text, values));

  const rows: Row[] = [];
  for (const workers of plan.workers) {
    const s: RunResult[] = [];
    const b: RunResult[] = [];
    for (let round = 0; round < plan.rounds; round++) {
      const tag = `${workers}-${round}`;
      // Alternate who goes first, so neither always gets the warmer (or the quieter) slot.
      const order = round % 2 === 0 ? (['sparkq', 'pgboss'] as const) : (['pgboss', 'sparkq'] as const);
      for (const who of order.filter((w) => plan.only === null || plan.only === w)) {
        // Each run starts from a vacuumed database: the rows the last run left dead are not for this one to pay
        // (autovacuum would otherwise clean them up in the middle of whichever run comes next).
        await sparkq.admin.db.query('VACUUM ANALYZE');
        const r = who === 'sparkq' ? await sparkq.run(workers, plan.seconds, tag) : await boss.run(workers, plan.seconds, tag);
        (who === 'sparkq' ? s : b).push(r);
        const backends = (await sparkq.admin.db.query<{ n: number; dead: number }>(
          "SELECT (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend') AS n, (SELECT sum(n_dead_tup) FROM pg_stat_user_tables) AS dead",
        ))[0]!;
        log(`${workers} worker(s), round ${round + 1}/${plan.rounds}, ${who}: ${fmt(r.perSecond)} pairs/s (${r.pairs} in ${r.seconds.toFixed(1)} s${r.ranDry ? ', RAN DRY' : ''}), load ${os.loadavg()[0]!.toFixed(2)}, backends after ${backends.n}, dead tuples ${backends.dead}`);
      }
    }
    const sp = median(s.map((r) => r.perSecond));
    const bp = median(b.map((r) => r.perSecond));
    rows.push({ workers, sparkq: s, pgboss: b, sparkqPerSecond: sp, pgbossPerSecond: bp, ratio: sp / bp });
  }

  log('enqueue → claimed latency…');
  const latency = await sparkq.latency(plan.latencySamples);
  let bossLatency: Summary | string;
  try {
    bossLatency = await boss.latency(plan.latencySamples);
  } catch (e) {
    bossLatency = `not measured: ${e instanceof Error ? e.message : String(e)}`;
  }

  log(`filling ${plan.history} tasks of history…`);
  const hist = await sparkq.history(plan.history);
  log(`  ${hist.tasks} tasks in the table (${hist.seconds.toFixed(1)} s to insert and analyze)`);
  const firstPage = await sparkq.time(() => sparkq.admin.listTasks({ limit: 50 }), plan.pageSamples);
  const queuePage = await sparkq.time(() => sparkq.admin.listTasks({ queue: 'history-3', limit: 50 }), plan.pageSamples);
  const failedPage = await sparkq.time(() => sparkq.admin.listTasks({ status: 'failed', limit: 50 }), plan.pageSamples);
  const reportAll = await sparkq.time(() => sparkq.admin.report({ by: 'tool' }), 3, 1);
  log('claims + completes at 16 workers over the history…');
  await sparkq.admin.db.query('VACUUM ANALYZE');
  const withHistory = await sparkq.run(16, plan.seconds, 'history');

  await sparkq.close();
  await boss.close();
  const loadEnd = load.stop();

  // ---- report ------------------------------------------------------------------------------------------------------
  const out: string[] = [];
  const loadStr = (l: number[]) => l.map((x) => x.toFixed(2)).join(' ');
  out.push(`SparkQ team bench${quick ? ' (--quick: indicative only)' : ''} — ${startedAt}, ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  out.push(
    `PostgreSQL ${version} (throwaway, Unix socket, fsync on), pg-boss 12 (fetch → complete loops); Node ${process.versions.node}, ${os.cpus().length} × ${os.cpus()[0]?.model ?? '?'}; ` +
      `load avg ${loadStr(load.start)} → ${loadStr(loadEnd)} (1-min max ${load.max.toFixed(1)})`,
  );
  if (Math.max(load.max, loadEnd[0]!) > os.cpus().length) {
    out.push(`WARNING: the machine was busy (1-min load average up to ${Math.max(load.max, loadEnd[0]!).toFixed(1)} on ${os.cpus().length} CPUs): figures are noisy; rerun on a quiet machine.`);
  }
  out.push('');
  out.push(`Claims + completes per second — ${plan.seconds} s per run, median of ${plan.rounds} alternating round(s), a fresh queue per run, workers = async loops in this process with a pool each (≤ ${POOL_MAX} connections)`);
  out.push(`client CPU = this process's CPU time per pair (workers' side; on this machine it shares the ${os.cpus().length} cores with PostgreSQL)`);
  out.push(
    table([
      ['workers', 'SparkQ /s', 'pg-boss /s', 'ratio', 'runs SparkQ', 'runs pg-boss', 'client CPU ms/pair SparkQ', 'pg-boss'],
      ...rows.map((r) => [
        String(r.workers),
        fmt(r.sparkqPerSecond),
        fmt(r.pgbossPerSecond),
        `${fmt(r.ratio, 2)}×`,
        r.sparkq.map((x) => fmt(x.perSecond) + (x.ranDry ? '*' : '')).join(' '),
        r.pgboss.map((x) => fmt(x.perSecond) + (x.ranDry ? '*' : '')).join(' '),
        fmt(median(r.sparkq.map((x) => x.cpuMsPerPair)), 2),
        fmt(median(r.pgboss.map((x) => x.cpuMsPerPair)), 2),
      ]),
    ]),
  );
  if (rows.some((r) => [...r.sparkq, ...r.pgboss].some((x) => x.ranDry))) out.push('* the queue ran dry before the time was up: the figure is a lower bound');
  if (boss.warnings.size > 0) out.push(`pg-boss warnings: ${[...boss.warnings].join(', ')}`);
  if (boss.errors.length > 0) out.push(`pg-boss errors: ${boss.errors.slice(0, 3).join('; ')}`);
  out.push('');
  const lat = (s: Summary) => `p50 ${fmt(s.p50, 1)} ms, p99 ${fmt(s.p99, 1)} ms, max ${fmt(s.max, 1)} ms (${s.samples} samples)`;
  out.push(`Enqueue → claimed through LISTEN/NOTIFY, one at a time: SparkQ ${lat(latency.ms)}${latency.missed > 0 ? `; ${latency.missed} task(s) no event brought within 5 s` : ''}`);
  out.push(`  pg-boss (send → work() handler, useListenNotify + notify queue): ${typeof bossLatency === 'string' ? bossLatency : lat(bossLatency)}`);
  out.push('');
  out.push(`With ${hist.tasks} tasks in the table (${plan.history} of finished history over 8 queues, filled by one INSERT … SELECT, VACUUM ANALYZE and CHECKPOINT in ${hist.seconds.toFixed(0)} s):`);
  const pageLine = (label: string, s: Summary) => `  ${label}: p50 ${fmt(s.p50, 1)} ms, p99 ${fmt(s.p99, 1)} ms (${s.samples} samples)`;
  out.push(pageLine('listTasks first page (50, newest first)', firstPage));
  out.push(pageLine('listTasks first page of one queue', queuePage));
  out.push(pageLine('listTasks first page of failed tasks', failedPage));
  out.push(pageLine('report by tool over every task (no target)', reportAll));
  out.push(`  claims + completes at 16 workers: ${fmt(withHistory.perSecond)} /s (${withHistory.pairs} in ${withHistory.seconds.toFixed(1)} s${withHistory.ranDry ? ', ran dry' : ''}; without the history: ${fmt(rows.find((r) => r.workers === 16)?.sparkqPerSecond ?? NaN)} /s)`);
  out.push('');

  const targets: [string, string, string, boolean][] = [
    ...rows
      .filter((r) => THROUGHPUT_TARGET_AT.has(r.workers))
      .map((r): [string, string, string, boolean] => [
        `claims+completes/s at ${r.workers} workers vs pg-boss`,
        `${fmt(r.sparkqPerSecond)} vs ${fmt(r.pgbossPerSecond)} = ${fmt(r.ratio, 2)}×`,
        `≥ ${THROUGHPUT_TARGET.toFixed(1)}×`,
        r.ratio >= THROUGHPUT_TARGET,
      ]),
    ['enqueue → claimed via LISTEN/NOTIFY, p50', `${fmt(latency.ms.p50, 1)} ms`, `≤ ${LATENCY_TARGET_MS} ms`, latency.ms.p50 <= LATENCY_TARGET_MS && latency.missed === 0],
    [`first page of tasks with ${plan.history} of history, p50`, `${fmt(firstPage.p50, 1)} ms`, `≤ ${FIRST_PAGE_TARGET_MS} ms`, firstPage.p50 <= FIRST_PAGE_TARGET_MS],
  ];
  out.push('Targets');
  // A ratio that could not be formed (--only, --workers without 16 or 64) is not a failure: it was not measured.
  out.push(table([['', 'measured', 'target', 'result'], ...targets.map(([n, m, t, ok]) => [n, m, t, ok ? 'PASS' : m.includes('—') ? 'INCOMPLETE' : 'FAIL'])]));
  process.stdout.write(out.join('\n') + '\n');

  fs.mkdirSync(RESULTS, { recursive: true });
  fs.writeFileSync(
    path.join(RESULTS, 'team.json'),
    JSON.stringify({ startedAt, plan, postgres: version, load: { start: load.start, end: loadEnd, max: load.max }, throughput: rows, latency, pgbossLatency: bossLatency, history: hist, firstPage, queuePage, failedPage, reportAll, withHistory }, null, 2) + '\n',
  );
}

main().then(
  // The throwaway server stops when the process exits (test/support/postgres.ts); exit now rather than wait for idle pools.
  () => process.exit(0),
  (e: unknown) => {
    process.stderr.write(`team bench failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(1);
  },
);
