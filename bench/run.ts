/*
 * `npm run bench` (node --expose-gc --import tsx bench/run.ts [--quick] [--full-history])
 *
 * Measures SparkQ's queue (sql.js + our journal and snapshots) against its targets and against better-sqlite3 doing
 * the same SQL, then what an agent's workflow pays (a worker draining trivial tasks against a bare bash loop, the
 * dashboard's first page), prints a table and writes bench/results/latest.json. It reports; it is not a test: it exits 0 when a
 * target fails, and non-zero only when it could not measure.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { type ColdStartResult, bundleChild, runChild } from './lib/child-protocol';
import { measureFdatasync } from './lib/disk';
import { measureIpc } from './lib/ipc';
import { NativeSubject, type Synchronous, probeNative } from './lib/native';
import { evaluateTargets, renderReport } from './lib/report';
import type { BenchPlan, BenchResults, SizeResult } from './lib/results';
import { PROMPT, SUMMARY } from './lib/shape';
import { measureWorkflow } from './lib/workflow';
import { worktreePhase } from './worktree';
import { worktreeDrainPhase } from './worktreeDrain';
import { SparkqSubject, buildLatencyState, buildUnsnapshottedJournal, interleave, measureSnapshotAtCap } from './lib/sparkq';
import type { Durability } from '../src/core/store/journal';
import { gc, hasGc, sleep, summarize } from './lib/stats';

const ROOT = path.resolve(__dirname, '..');
const RESULTS = path.join(__dirname, 'results');

function plan(quick: boolean, fullHistory: boolean): BenchPlan {
  const p: BenchPlan = quick
    ? {
        quick,
        sizes: [1_000, 10_000],
        finishedShare: 0.1,
        iterationsNone: 300,
        iterationsFull: 150,
        listIterations: 100,
        rounds: 5,
        warmup: 10,
        fdatasyncSamples: 300,
        ipcRoundTrips: 300,
        ipcClients: [1, 4, 16],
        ipcSeconds: 2,
        ipcClientWarmup: 50,
        fdatasyncBytes: 256,
        snapshotRounds: 3,
        snapshotQueued: 1_000,
        snapshotWritesPerRound: 30,
        coldStartRecords: 20_000,
        coldStartRuns: 1,
        rssTasks: 50_000,
        rssBudgetSeconds: 120,
        cliRuns: 5,
        cliRounds: 1,
        cliSerialRounds: 0,
        drainTasks: 100,
        drainRuns: 3,
        dashboardRuns: 3,
      }
    : {
        quick,
        sizes: [1_000, 10_000, 100_000],
        finishedShare: 0.1,
        iterationsNone: 2_000,
        iterationsFull: 1_000,
        listIterations: 300,
        rounds: 20,
        warmup: 10,
        fdatasyncSamples: 2_000,
        ipcRoundTrips: 2_000,
        ipcClients: [1, 4, 16],
        ipcSeconds: 5,
        ipcClientWarmup: 300,
        fdatasyncBytes: 256,
        snapshotRounds: 10,
        snapshotQueued: 1_000,
        snapshotWritesPerRound: 300,
        coldStartRecords: 100_000,
        coldStartRuns: 5,
        rssTasks: 1_000_000,
        // The brief's limit for building the history; past it the child stops and the rate is reported.
        rssBudgetSeconds: 360,
        cliRuns: 15,
        cliRounds: 3,
        cliSerialRounds: 1,
        drainTasks: 300,
        drainRuns: 5,
        dashboardRuns: 7,
      };
  // --full-history: build all of it however long it takes (to get the RSS figure at 1M when the rate is low).
  if (fullHistory) p.rssBudgetSeconds = 0;
  return p;
}

function progress(text: string): void {
  process.stderr.write(`· ${text}\n`);
}

/**
 * Lets the machine go quiet before a phase that times a fresh process: the phases before it leave gigabytes of dirty
 * pages (the 1M-task history, the latency states) whose writeback, and this process's own garbage, would otherwise
 * run during the measurement. Writes everything back (`sync`), collects this process's garbage, and waits a moment.
 */
async function settle(): Promise<void> {
  spawnSync('sync', { stdio: 'ignore' });
  gc();
  await sleep(2_000);
}

async function main(): Promise<void> {
  const quick = process.argv.includes('--quick');
  const p = plan(quick, process.argv.includes('--full-history'));
  const started = Date.now();
  const loadAvgStart = os.loadavg();
  // Other work on the machine inflates every number here; keep the busiest 1-minute load average seen.
  let loadAvgMax = loadAvgStart[0] ?? 0;
  const loadTimer = setInterval(() => (loadAvgMax = Math.max(loadAvgMax, os.loadavg()[0] ?? 0)), 5_000);
  loadTimer.unref();
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sparkq-bench-'));
  try {
    if (!hasGc()) progress('warning: run with --expose-gc (npm run bench does) for stable memory numbers');
    const native = probeNative(ROOT);
    progress(native.ok ? `better-sqlite3 ${native.version} (SQLite ${native.sqlite}) loads` : `better-sqlite3 unavailable: ${native.reason}`);

    const child = bundleChild(ROOT, path.join(tmp, 'child'));

    progress('fdatasync of a small append');
    const fdatasync = measureFdatasync(tmp, p.fdatasyncSamples, p.fdatasyncBytes);

    // Build every size first, then time all sizes and both engines round-robin, so that they share the machine's
    // moments (other work on it comes and goes) and ratios and flatness compare like with like.
    const dirs = new Map<number, { none: string; full: string }>();
    for (const n of p.sizes) {
      const base = path.join(tmp, `state-${n}`);
      progress(`state at ${n} tasks: building (sql.js${native.ok ? ' and better-sqlite3' : ''})`);
      await buildLatencyState(base, n, p.finishedShare);
      dirs.set(n, { none: `${base}-none`, full: `${base}-full` });
      fs.cpSync(base, `${base}-none`, { recursive: true });
      fs.cpSync(base, `${base}-full`, { recursive: true });
      fs.rmSync(base, { recursive: true, force: true });
    }
    const sizes: SizeResult[] = [];
    const measureGroup = async (durability: Durability, iterations: number, warmup: number) => {
      const mine: SparkqSubject[] = [];
      const theirs: NativeSubject[] = [];
      try {
        for (const n of p.sizes) {
          const d = dirs.get(n)!;
          mine.push(await SparkqSubject.open(`sql.js ${durability} ${n}`, durability === 'none' ? d.none : d.full, durability));
          if (native.ok) {
            const sync: Synchronous = durability === 'none' ? 'NORMAL' : 'FULL';
            theirs.push(new NativeSubject(`better-sqlite3 ${sync} ${n}`, ROOT, path.join(tmp, `native-${n}-${sync}`), sync, n, p.finishedShare));
          }
        }
        progress(`latency, ${durability === 'none' ? 'flush off' : 'durable'}: ${p.rounds} rounds over ${mine.length + theirs.length} stores`);
        await interleave([...mine, ...theirs], p.rounds, iterations, p.listIterations, warmup);
        return { mine: mine.map((m) => m.result()), theirs: theirs.map((t) => t.result()) };
      } finally {
        for (const x of [...mine, ...theirs]) await x.close();
      }
    };
    const flushOff = await measureGroup('none', p.iterationsNone, p.warmup);
    const durableGroup = await measureGroup('full', p.iterationsFull, Math.ceil(p.warmup / 2));
    p.sizes.forEach((n, i) => {
      const normal = flushOff.theirs[i];
      const durable = durableGroup.theirs[i];
      sizes.push({ n, none: flushOff.mine[i]!, full: durableGroup.mine[i]!, native: normal && durable ? { normal, full: durable } : null });
    });
    for (const d of dirs.values()) for (const dir of [d.none, d.full]) fs.rmSync(dir, { recursive: true, force: true });

    progress('snapshot at the live cap');
    const snapshot = await measureSnapshotAtCap(path.join(tmp, 'snapshot'), p.snapshotQueued, p.snapshotRounds, p.snapshotWritesPerRound);

    progress(`cold start: writing ${p.coldStartRecords} journal records without a snapshot`);
    const coldDir = path.join(tmp, 'cold');
    const { journalRecords } = await buildUnsnapshottedJournal(coldDir, p.coldStartRecords);
    await settle();
    const runs: ColdStartResult[] = [];
    for (let i = 0; i < p.coldStartRuns; i++) {
      progress(`cold start: open in a fresh process (${i + 1}/${p.coldStartRuns})`);
      const r = await runChild(child, ['open', coldDir]);
      if (r.kind !== 'open') throw new Error('bench: the cold-start child answered with the wrong kind of result');
      const { kind: _kind, ...rest } = r;
      runs.push(rest);
    }
    fs.rmSync(coldDir, { recursive: true, force: true });

    progress(`RSS: ${p.rssTasks} tasks of history in a child process (${p.rssBudgetSeconds > 0 ? `budget ${p.rssBudgetSeconds} s` : 'no time budget'})`);
    let rss: BenchResults['rss'];
    try {
      const r = await runChild(child, ['rss', path.join(tmp, 'rss'), String(p.rssTasks), String(p.rssBudgetSeconds)]);
      if (r.kind !== 'rss') throw new Error('the RSS child answered with the wrong kind of result');
      const { kind: _kind, ...rest } = r;
      rss = rest;
    } catch (e) {
      rss = { error: e instanceof Error ? e.message : String(e) };
    }

    fs.rmSync(path.join(tmp, 'rss'), { recursive: true, force: true });
    await settle();
    let ipc: BenchResults['ipc'];
    try {
      ipc = await measureIpc(ROOT, tmp, { roundTrips: p.ipcRoundTrips, warmup: 50, clientCounts: p.ipcClients, seconds: p.ipcSeconds, clientWarmup: p.ipcClientWarmup }, progress);
    } catch (e) {
      ipc = { error: e instanceof Error ? e.message : String(e) };
    }

    await settle();
    const workflow = await measureWorkflow(p, progress);

    const results: Omit<BenchResults, 'targets'> = {
      startedAt: new Date(started).toISOString(),
      seconds: (Date.now() - started) / 1000,
      env: {
        node: process.version,
        napi: process.versions['napi'] ?? '?',
        platform: `${process.platform} ${process.arch}`,
        cpus: os.cpus().length,
        cpuModel: os.cpus()[0]?.model ?? '?',
        tmp: os.tmpdir(),
        gcExposed: hasGc(),
        loadAvgStart,
        loadAvgEnd: os.loadavg(),
        loadAvgMax,
      },
      plan: p,
      taskShape: { promptBytes: Buffer.byteLength(PROMPT), summaryBytes: Buffer.byteLength(SUMMARY) },
      native,
      fdatasync,
      sizes,
      snapshot,
      coldStart: { records: journalRecords, runs, openMs: summarize(runs.map((r) => r.openMs)) },
      rss,
      ipc,
      workflow,
    };
    const full: BenchResults = { ...results, targets: evaluateTargets(results) };
    process.stdout.write(renderReport(full));
    // Worktree set-up per task on 10k files (issue 18, bench/worktree.ts): printed after the table, its target kept in latest.json.
    const worktree = await worktreePhase(quick, progress);
    process.stdout.write('\n' + worktree.text);
    full.targets.push(...worktree.targets);
    // What a worktree queue adds to a worker's time per task, against a plain queue (issue 18, bench/worktreeDrain.ts).
    const worktreeDrain = await worktreeDrainPhase(quick, progress);
    process.stdout.write(worktreeDrain.text);
    full.targets.push(...worktreeDrain.targets);
    fs.mkdirSync(RESULTS, { recursive: true });
    const out = path.join(RESULTS, 'latest.json');
    fs.writeFileSync(out, JSON.stringify(full, null, 2) + '\n');
    process.stdout.write(`\nJSON: ${path.relative(process.cwd(), out)}\n`);
  } finally {
    clearInterval(loadTimer);
    if (!process.env['SPARKQ_KEEP_TMP']) fs.rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`bench failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exitCode = 1;
});
