/*
 * Measurements that need a process of their own. bench/run.ts bundles this file with esbuild (as the CLI is
 * bundled) and runs it with plain Node:
 *   open <dir>                                cold start: QueueService.open in a fresh process (sql.js not loaded)
 *   rss <dir> <tasks> <budgetSeconds|0>       memory with <tasks> tasks of history (enqueued, claimed, completed
 *                                             with the bulk methods, archived by maintenance); 0 = no time budget
 * Each prints one line `RESULT <json>` on stdout; progress goes to stderr.
 */
import { type ChildResult, type ColdStartResult, type RssMilestone, type RssResult, RESULT_PREFIX } from './lib/child-protocol';
import { createSessionAndQueue, enqueueBulk, finishBulk, openQueue } from './lib/sparkq';
import { MB, gc, hasGc, now, sleep } from './lib/stats';
import { wasmMemoryBytes, watchWasmMemory } from './lib/wasm-memory';

async function coldStart(dir: string): Promise<ColdStartResult> {
  const t0 = now();
  const q = await openQueue(dir, 'full');
  const openMs = now() - t0;
  const result: ColdStartResult = {
    openMs,
    replayed: q.recovery.replayed,
    snapshotSeq: q.recovery.snapshotSeq,
    rssMb: process.memoryUsage().rss / MB,
    wasmMb: wasmMemoryBytes() / MB,
  };
  // Leave the store exactly as it was (no snapshot), so that every run opens the same thing.
  q.abandon();
  return result;
}

async function settled(tasks: number, seconds: number): Promise<RssMilestone> {
  gc();
  await sleep(50);
  gc();
  const m = process.memoryUsage();
  return { tasks, seconds, rssMb: m.rss / MB, heapUsedMb: m.heapUsed / MB, wasmMb: wasmMemoryBytes() / MB, arrayBuffersMb: m.arrayBuffers / MB };
}

async function rssWithHistory(dir: string, target: number, budgetSeconds: number): Promise<RssResult> {
  const q = await openQueue(dir, 'none');
  await createSessionAndQueue(q);
  const empty = await settled(0, 0);
  const batch = 1000;
  const milestones = new Set([0.05, 0.1, 0.25, 0.5, 0.75].map((f) => Math.round((target * f) / batch) * batch));
  const points: RssMilestone[] = [empty];
  let peakRss = 0;
  let done = 0;
  let stoppedEarly = false;
  const t0 = now();
  let lastReport = t0;
  while (done < target) {
    const k = Math.min(batch, target - done);
    // The public bulk methods: the same tasks and effects as single calls, 250 per transaction and journal record.
    await enqueueBulk(q, k);
    await finishBulk(q, k);
    // Workers reach a real owner over IPC, one event-loop turn per request; without a turn now and then, this loop
    // (all promises, answered at once with the flush off) would keep the owner's scheduled maintenance from running.
    await new Promise<void>((resolve) => setImmediate(resolve));
    done += k;
    peakRss = Math.max(peakRss, process.memoryUsage().rss);
    const elapsed = (now() - t0) / 1000;
    if (milestones.has(done)) points.push(await settled(done, elapsed));
    if (now() - lastReport > 30_000) {
      lastReport = now();
      process.stderr.write(`  history: ${done} tasks in ${elapsed.toFixed(0)} s (${Math.round(done / elapsed)} tasks/s), rss ${(process.memoryUsage().rss / MB).toFixed(0)} MB\n`);
    }
    if (budgetSeconds > 0 && elapsed > budgetSeconds && done < target) {
      stoppedEarly = true;
      break;
    }
  }
  const buildSeconds = (now() - t0) / 1000;
  await q.maintain();
  const last = await settled(done, buildSeconds);
  const m = process.memoryUsage();
  const counts = q.counts();
  const result: RssResult = {
    target,
    tasks: done,
    stoppedEarly,
    buildSeconds,
    tasksPerSecond: done / buildSeconds,
    rssMb: last.rssMb,
    heapUsedMb: last.heapUsedMb,
    externalMb: m.external / MB,
    arrayBuffersMb: last.arrayBuffersMb,
    wasmMb: last.wasmMb,
    emptyRssMb: empty.rssMb,
    peakRssMb: Math.max(peakRss, m.rss) / MB,
    succeeded: counts.succeeded,
    liveFinished: Number(q.store.db.value('SELECT count(*) FROM tasks WHERE finished_at IS NOT NULL') ?? 0),
    archiveChunks: q.archiveChunks().length,
    milestones: [...points, last],
    gcExposed: hasGc(),
  };
  await q.close();
  return result;
}

async function main(): Promise<void> {
  watchWasmMemory();
  const [mode, dir, ...rest] = process.argv.slice(2);
  if (!dir) throw new Error('usage: child open|rss <dir> …');
  let result: ChildResult;
  if (mode === 'open') {
    result = { kind: 'open', ...(await coldStart(dir)) };
  } else if (mode === 'rss') {
    const target = Number(rest[0]);
    const budget = Number(rest[1]);
    if (!Number.isFinite(target) || !Number.isFinite(budget)) throw new Error('usage: child rss <dir> <tasks> <budgetSeconds|0>');
    result = { kind: 'rss', ...(await rssWithHistory(dir, target, budget)) };
  } else {
    throw new Error(`unknown mode ${String(mode)}`);
  }
  process.stdout.write(`${RESULT_PREFIX}${JSON.stringify(result)}\n`);
}

main().catch((e: unknown) => {
  process.stderr.write(`bench child failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exitCode = 1;
});
