import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { buildSync } from 'esbuild';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { defaultConfig } from '../../../src/core/config';
import type { StatusCounts, TaskStatus } from '../../../src/core/model';
import { QueueService } from '../../../src/core/queue/service';
import { readSnapshot } from '../../../src/core/store/snapshot';
import { SqlDatabase } from '../../../src/core/store/sqlite';
import { CRASH_QUEUE, CRASH_STORE } from '../../support/crashChild';
import { tempDir } from '../../support/tmp';

/*
 * kill -9: a child process mutates the queue with full durability (archiving and snapshotting as it goes) and reports
 * every acknowledged mutation on stdout; the parent SIGKILLs it at a random moment, reopens the same store and checks
 * that everything acknowledged is there, in the state it was acknowledged in (or a later one that an unreported, in-flight
 * mutation explains), that the files open, no temp files are left, and the counters match the rows. Many cycles, one store.
 *
 * Time goes into starting processes, so children are bundled once and started two ahead of their turn: each loads and
 * warms up while the one before it runs and is checked, and touches the store only when told to go.
 * SPARKQ_CRASH_CYCLES=n changes the number of cycles.
 */

const ROOT = path.resolve(__dirname, '..', '..', '..');
const CHILD_SOURCE = path.join(ROOT, 'test', 'support', 'crashChild.ts');
const CYCLES = Number(process.env['SPARKQ_CRASH_CYCLES'] ?? 200);
/** Every this many cycles (and at the end) also walk the whole queue through the public listing API. */
const FULL_LISTING_EVERY = 50;
/** Children started ahead of their turn. */
const CHILDREN_AHEAD = 2;

type Line =
  | { op: 'warm' }
  | { op: 'ready'; pid: number; orphans: number }
  | { op: 'enqueue'; id: string }
  | { op: 'claim'; id: string }
  | { op: 'heartbeat'; id: string; t0: number }
  | { op: 'complete'; id: string; summary: string }
  | { op: 'fail'; id: string; error: string }
  | { op: 'requeue'; id: string; newId: string }
  | { op: 'error'; code: string | null; message: string };

interface ChildRun {
  lines: Line[];
  partial: string;
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
  killed: boolean;
  /** Milliseconds: when it was told to go, opened the store, first acknowledged a mutation, and ended. */
  at: { spawn: number; warm: number; go: number; ready: number; first: number; end: number };
}

interface Child {
  /** Lets the child open the store (it has been loading and warming up until now). */
  go(): void;
  done: Promise<ChildRun>;
  kill(): void;
}

/**
 * Starts a child ahead of its turn; once told to go it opens the store and mutates until it is killed, 5–120 ms after
 * its first acknowledged mutation.
 */
const unfinished = new Set<() => void>();

/**
 * The child as one bundle with sql.js's WebAssembly beside it, the way `npm run build` ships the CLI: a bundled child
 * starts with about a quarter of the CPU time that tsx needs to compile and load the sources, and the test starts one
 * per cycle. SPARKQ_CRASH_CHILD=tsx runs the sources through tsx instead (slower, same test).
 */
function childCommand(outDir: string): string[] {
  if (process.env['SPARKQ_CRASH_CHILD'] === 'tsx') return ['--require', 'tsx/cjs', CHILD_SOURCE];
  fs.mkdirSync(outDir, { recursive: true });
  const outfile = path.join(outDir, 'crashChild.js');
  buildSync({ entryPoints: [CHILD_SOURCE], bundle: true, platform: 'node', format: 'cjs', target: 'node20', outfile, logLevel: 'error' });
  fs.copyFileSync(path.join(path.dirname(require.resolve('sql.js')), 'sql-wasm.wasm'), path.join(outDir, 'sql-wasm.wasm'));
  // Liftoff only: a child lives for a fraction of a second, too short for optimised WebAssembly to pay back its
  // compile time; this halves the CPU each child costs and leaves its throughput as it was.
  return ['--liftoff-only', outfile];
}

function startChild(command: readonly string[], dir: string): Child {
  const child = spawn(process.execPath, [...command, dir, path.dirname(dir)], { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
  const now = () => performance.now();
  const run: ChildRun = { lines: [], partial: '', code: null, signal: null, stderr: '', killed: false, at: { spawn: now(), warm: 0, go: 0, ready: 0, first: 0, end: 0 } };
  const timers: NodeJS.Timeout[] = [];
  let killAt: NodeJS.Timeout | null = null;
  const kill = () => {
    run.killed = true;
    child.kill('SIGKILL');
  };
  unfinished.add(kill);
  const killSoon = (ms: number) => {
    if (killAt) clearTimeout(killAt);
    killAt = setTimeout(kill, ms);
  };
  const done = new Promise<ChildRun>((resolve, reject) => {
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      run.partial += chunk;
      for (let i = run.partial.indexOf('\n'); i >= 0; i = run.partial.indexOf('\n')) {
        const line = JSON.parse(run.partial.slice(0, i)) as Line;
        run.partial = run.partial.slice(i + 1);
        run.lines.push(line);
        if (line.op === 'warm') {
          run.at.warm = now();
          continue;
        }
        if (line.op === 'ready') {
          run.at.ready = now();
          killSoon(5_000); // in case no mutation ever comes
        } else if (run.at.first === 0) {
          run.at.first = now();
          killSoon(5 + Math.floor(Math.random() * 116));
        }
      }
    });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => (run.stderr += chunk));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      unfinished.delete(kill);
      run.at.end = now();
      for (const t of timers) clearTimeout(t);
      if (killAt) clearTimeout(killAt);
      run.code = code;
      run.signal = signal;
      resolve(run);
    });
  });
  return {
    go: () => {
      run.at.go = now();
      child.stdin.write('go\n');
      // A child that never gets going is killed too, and then fails the test for having printed no "ready".
      timers.push(setTimeout(kill, 60_000));
    },
    done,
    kill,
  };
}

interface Expected {
  status: TaskStatus;
  summary?: string;
  error?: string;
  /** A heartbeat acknowledged after this time. */
  heartbeatAfter?: number;
  retryOf: string | null;
}

interface Observed {
  id: string;
  seq: number;
  status: TaskStatus;
  summary: string | null;
  error: string | null;
  heartbeat_at: number | null;
  retry_of: string | null;
  queue_id: string;
}

const RANK: Record<TaskStatus, number> = { queued: 0, running: 1, succeeded: 2, failed: 2 };
const COLUMNS = 'id, seq, status, summary, error, heartbeat_at, retry_of, queue_id';

/** Folds one child's acknowledged lines into the model, checking that each is a legal step from what was known. */
function applyLines(model: Map<string, Expected>, lines: readonly Line[]): number {
  let acked = 0;
  for (const l of lines) {
    if (l.op === 'ready' || l.op === 'warm') continue;
    if (l.op === 'error') assert.fail(`the child reported an unexpected error (${String(l.code)}): ${l.message}`);
    acked++;
    const where = `acknowledged ${l.op} of ${l.id}`;
    const known = (status: TaskStatus): Expected => {
      const cur = model.get(l.id);
      assert.equal(cur?.status, status, `${where}: it was not known as ${status}`);
      return cur;
    };
    switch (l.op) {
      case 'enqueue':
        assert.equal(model.get(l.id), undefined, `${where}: the id was already known`);
        model.set(l.id, { status: 'queued', retryOf: null });
        break;
      case 'claim':
        known('queued').status = 'running';
        break;
      case 'heartbeat': {
        const cur = known('running');
        cur.heartbeatAfter = Math.max(cur.heartbeatAfter ?? 0, l.t0);
        break;
      }
      case 'complete': {
        const cur = known('running');
        cur.status = 'succeeded';
        cur.summary = l.summary;
        break;
      }
      case 'fail': {
        const cur = known('running');
        cur.status = 'failed';
        cur.error = l.error;
        break;
      }
      case 'requeue':
        known('failed');
        assert.equal(model.get(l.newId), undefined, `${where}: the new id ${l.newId} was already known`);
        model.set(l.newId, { status: 'queued', retryOf: l.id });
        break;
    }
  }
  return acked;
}

function tempFilesBelow(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.tmp')) out.push(path.relative(dir, p));
    }
  };
  walk(dir);
  return out;
}

describe('kill -9', () => {
  let t: ReturnType<typeof tempDir>;
  beforeEach(() => (t = tempDir('sparkq-crash-')));
  afterEach(() => {
    // A failed assertion leaves the children started ahead waiting for their turn. (SPARKQ_KEEP_TMP keeps the store.)
    for (const kill of unfinished) kill();
    t.cleanup();
  });

  it(`keeps every acknowledged mutation through ${CYCLES} SIGKILLs of a busy owner`, async function (this: Mocha.Context) {
    this.timeout(600_000);
    const started = Date.now();
    const dir = path.join(t.dir, 'db');
    const config = defaultConfig('crash');
    config.store.liveCap = CRASH_STORE.liveCap;
    const model = new Map<string, Expected>();
    /** Archive chunks never change once written (this test never purges): their rows, read once, by file and checksum. */
    const chunkRows = new Map<string, Observed[]>();
    const stats = { cycles: 0, acked: 0, tornTails: 0, swept: 0, snapshots: 0, unreported: 0, orphans: 0, maxChunks: 0, verifyMs: 0, waitMs: 0, openMs: 0, runMs: 0, warmMs: 0 };
    let lastSnapshotSeq = -1;

    const command = childCommand(path.join(t.dir, 'child'));
    // The next children load and warm up while this one runs and its store is checked; each waits for its go.
    const ahead: Child[] = [];
    let spawned = 0;
    const fill = () => {
      while (ahead.length < CHILDREN_AHEAD && spawned < CYCLES) {
        ahead.push(startChild(command, dir));
        spawned++;
      }
    };
    fill();
    for (let cycle = 1; cycle <= CYCLES; cycle++) {
      const current = ahead.shift()!;
      current.go();
      fill();
      const run = await current.done;
      const context = () => `cycle ${cycle}; child exit ${String(run.code)}/${String(run.signal)}; stderr:\n${run.stderr.slice(-3000)}`;
      assert.ok(
        run.lines.some((l) => l.op === 'ready'),
        `the child never opened the store: ${context()}`,
      );
      assert.ok(run.killed && run.signal === 'SIGKILL', `the child ended by itself: ${context()}`);
      const ready = run.lines.find((l) => l.op === 'ready');
      if (ready?.op === 'ready') stats.orphans += ready.orphans;
      stats.acked += applyLines(model, run.lines);
      stats.cycles++;
      const a = run.at;
      stats.waitMs += Math.max(0, a.warm - a.go);
      stats.openMs += a.ready - Math.max(a.go, a.warm);
      stats.runMs += a.end - a.ready;
      stats.warmMs += a.warm - a.spawn;

      // ---- reopen what the killed child left, and check it -------------------------------------------------------
      const v0 = Date.now();
      let q: QueueService;
      try {
        q = await QueueService.open({ dir, config, durability: 'full', autoMaintain: false, archiveBatch: CRASH_STORE.archiveBatch });
      } catch (e) {
        assert.fail(`${context()}\nthe store did not open after the kill: ${e instanceof Error ? e.message : String(e)}`);
      }
      try {
        if (q.recovery.tornTail) stats.tornTails++;
        stats.swept += q.recovery.swept.length;
        if (q.recovery.snapshotSeq !== lastSnapshotSeq) stats.snapshots++;
        lastSnapshotSeq = q.recovery.snapshotSeq;
        assert.deepEqual(tempFilesBelow(dir), [], `cycle ${cycle}: temp files left after open`);

        const db = q.store.db;
        const observed = new Map<string, Observed & { archived: boolean }>();
        const seqs = new Set<number>();
        const add = (r: Observed, archived: boolean) => {
          assert.ok(!observed.has(r.id), `cycle ${cycle}: task ${r.id} is stored twice (live and/or in several archive chunks)`);
          assert.ok(!seqs.has(r.seq), `cycle ${cycle}: two tasks share the FIFO sequence number ${r.seq}`);
          observed.set(r.id, { ...r, archived });
          seqs.add(r.seq);
        };
        for (const r of db.all<Observed>(`SELECT ${COLUMNS} FROM tasks`)) add(r, false);
        const chunks = q.archiveChunks();
        stats.maxChunks = Math.max(stats.maxChunks, chunks.length);
        for (const c of chunks) {
          const key = `${c.file}:${c.crc}`;
          let rows = chunkRows.get(key);
          if (!rows) {
            const { image } = readSnapshot(path.join(dir, 'archive', c.file), { seq: c.id, crc: c.crc, bytes: c.bytes });
            const cdb = SqlDatabase.openSync(image);
            try {
              rows = cdb.all<Observed>(`SELECT ${COLUMNS} FROM tasks`);
            } finally {
              cdb.close();
            }
            assert.equal(rows.length, c.count, `cycle ${cycle}: chunk ${c.file} holds ${rows.length} tasks, its record says ${c.count}`);
            chunkRows.set(key, rows);
          }
          for (const r of rows) {
            assert.ok(r.status === 'succeeded' || r.status === 'failed', `cycle ${cycle}: archived task ${r.id} is ${r.status}`);
            add(r, true);
          }
        }

        // Leases: a running task has its lease and exactly one running attempt; nothing else has a running attempt.
        assert.equal(
          Number(
            db.value(
              "SELECT count(*) FROM tasks t WHERE t.status = 'running' AND (t.lease IS NULL OR (SELECT count(*) FROM attempts a WHERE a.task_id = t.id AND a.outcome = 'running' AND a.lease = t.lease) != 1)",
            ),
          ),
          0,
          `cycle ${cycle}: a running task without exactly one live lease`,
        );
        assert.equal(
          Number(db.value("SELECT count(*) FROM attempts a JOIN tasks t ON t.id = a.task_id WHERE a.outcome = 'running' AND t.status != 'running'")),
          0,
          `cycle ${cycle}: a finished task with an attempt still running`,
        );
        assert.equal(Number(db.value("SELECT count(*) FROM tasks WHERE status != 'running' AND lease IS NOT NULL")), 0, `cycle ${cycle}: a lease on a task that is not running`);

        // Everything acknowledged is there, as acknowledged or moved on by at most one in-flight mutation per loop.
        let unreported = 0;
        for (const [id, want] of model) {
          const got = observed.get(id);
          assert.ok(got, `cycle ${cycle}: acknowledged task ${id} (${want.status}) is gone`);
          const what = `cycle ${cycle}: task ${id}, acknowledged as ${want.status}, is ${got.status}`;
          assert.equal(got.retry_of, want.retryOf, `${what}: retryOf changed`);
          if (RANK[want.status] === 2) {
            assert.equal(got.status, want.status, what);
            if (want.status === 'succeeded') assert.equal(got.summary, want.summary, `${what}: summary`);
            else assert.equal(got.error, want.error, `${what}: error`);
            continue;
          }
          assert.ok(RANK[got.status] >= RANK[want.status], `${what}: it went back`);
          if (got.status === 'running' && want.status === 'running' && want.heartbeatAfter !== undefined) {
            assert.ok((got.heartbeat_at ?? 0) >= want.heartbeatAfter, `${what}: its acknowledged heartbeat (at ≥ ${want.heartbeatAfter}) is lost`);
          }
          if (got.status !== want.status) {
            unreported++;
            want.status = got.status;
            if (got.summary !== null) want.summary = got.summary;
            if (got.error !== null) want.error = got.error;
          }
        }
        for (const [id, got] of observed) {
          if (model.has(id)) continue;
          unreported++;
          model.set(id, {
            status: got.status,
            retryOf: got.retry_of,
            ...(got.summary !== null ? { summary: got.summary } : {}),
            ...(got.error !== null ? { error: got.error } : {}),
          });
        }
        assert.ok(unreported <= CRASH_STORE.loops, `cycle ${cycle}: ${unreported} changes that no acknowledgement explains; at most ${CRASH_STORE.loops} can be in flight`);
        stats.unreported += unreported;

        // Counters equal the rows.
        const real: StatusCounts = { queued: 0, running: 0, succeeded: 0, failed: 0 };
        const queueId = q.getQueue(CRASH_QUEUE).id;
        for (const r of observed.values()) {
          assert.equal(r.queue_id, queueId);
          real[r.status]++;
        }
        assert.deepEqual(q.getQueue(CRASH_QUEUE).counts, real, `cycle ${cycle}: counters differ from the rows`);
        const { stale: _stale, ...all } = q.counts();
        assert.deepEqual(all, real, `cycle ${cycle}: overall counters differ from the rows`);

        // Now and then (and last) the same through the public API: every task listed exactly once, details readable.
        if (cycle % FULL_LISTING_EVERY === 0 || cycle === CYCLES) {
          const listed: string[] = [];
          let before: string | undefined;
          for (;;) {
            const page = q.listTasks({ limit: 1000, ...(before ? { before } : {}) });
            for (const task of page.tasks) {
              listed.push(task.id);
              assert.equal(task.status, observed.get(task.id)?.status, `cycle ${cycle}: listed task ${task.id}`);
            }
            if (!page.next) break;
            before = page.next;
          }
          assert.equal(new Set(listed).size, listed.length, `cycle ${cycle}: listing repeats tasks`);
          assert.equal(listed.length, observed.size, `cycle ${cycle}: listing shows ${listed.length} tasks, the store holds ${observed.size}`);
          const ids = [...observed.keys()];
          for (let i = 0; i < 50 && ids.length > 0; i++) {
            const id = ids[Math.floor(Math.random() * ids.length)]!;
            const detail = q.getTask(id);
            const want = model.get(id)!;
            assert.equal(detail.status, want.status);
            assert.equal(detail.archived, observed.get(id)!.archived);
            if (want.status === 'succeeded') assert.equal(detail.result?.summary, want.summary);
            if (want.status === 'failed') assert.equal(detail.error, want.error);
          }
        }
      } finally {
        await q.close({ snapshot: false });
      }
      stats.verifyMs += Date.now() - v0;
    }

    const ms = (total: number) => `${Math.round(total / stats.cycles)} ms`;
    const byStatus = { queued: 0, running: 0, succeeded: 0, failed: 0 };
    for (const m of model.values()) byStatus[m.status]++;
    console.log(
      `      kill -9: ${stats.cycles} cycles, ${stats.acked} acknowledged mutations, ${stats.tornTails} torn tails, ` +
        `${stats.unreported} unreported-but-durable changes, ${stats.swept} leftover files swept, ${stats.snapshots} new snapshots seen, ` +
        `${stats.maxChunks} archive chunks, ${model.size} tasks ${JSON.stringify(byStatus)}, ${(stats.orphans / stats.cycles).toFixed(1)} running tasks inherited per start; ` +
        `${((Date.now() - started) / 1000).toFixed(1)} s (per cycle: child start-up ${ms(stats.warmMs)}, waited for it ${ms(stats.waitMs)}, ` +
        `its open ${ms(stats.openMs)}, its run ${ms(stats.runMs)}, verifying ${ms(stats.verifyMs)})`,
    );
    assert.ok(stats.acked > CYCLES, `only ${stats.acked} acknowledged mutations in ${CYCLES} cycles`);
    assert.ok(stats.maxChunks > 0, 'no archive chunk was written: the kills never met archiving');
  });
});
