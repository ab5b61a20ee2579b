import type { RssResult } from './child-protocol';
import type { BenchResults, SizeResult, Target, TargetResult } from './results';
import type { Summary } from './stats';
import { renderWorkflow, workflowTargets } from './workflow';

/** The targets from the performance brief. */
export const LIMITS = {
  claimVsNative: 1.5,
  claimFlatness: 0.2,
  durableClaimOverFsyncMs: 0.3,
  snapshotAtCapMs: 30,
  coldStartMs: 1500,
  rssMb: 200,
  ipcClaimOverFsyncMs: 0.5,
  ipcMutationsPerSecondAt16: 10_000,
} as const;

type Op = 'enqueue' | 'claim' | 'complete' | 'list100';
const OPS: Op[] = ['enqueue', 'claim', 'complete', 'list100'];
const OP_LABEL: Record<Op, string> = { enqueue: 'enqueue', claim: 'claim', complete: 'complete', list100: 'list-100' };

const ms = (v: number): string => (Number.isFinite(v) ? v.toFixed(3) : '—');
const ms1 = (v: number): string => (Number.isFinite(v) ? v.toFixed(1) : '—');
const ratio = (a: number, b: number): string => (Number.isFinite(a) && Number.isFinite(b) && b > 0 ? `${(a / b).toFixed(2)}×` : '—');
const pct = (v: number): string => `${v >= 0 ? '+' : ''}${(v * 100).toFixed(0)}%`;
const passIf = (ok: boolean): TargetResult => (ok ? 'PASS' : 'FAIL');

export function sizeLabel(n: number): string {
  if (n >= 1_000_000 && n % 1_000_000 === 0) return `${n / 1_000_000}M`;
  if (n >= 1_000 && n % 1_000 === 0) return `${n / 1_000}k`;
  return String(n);
}

function isRss(r: BenchResults['rss']): r is RssResult {
  return !('error' in r);
}

export function evaluateTargets(r: Omit<BenchResults, 'targets'>): Target[] {
  const targets: Target[] = [];
  const first = r.sizes[0]!;
  const last = r.sizes[r.sizes.length - 1]!;
  const at = `@${sizeLabel(last.n)}`;

  // 1. claim p50, flush off, against better-sqlite3 (WAL, synchronous=NORMAL) at the largest size.
  if (last.native) {
    const mine = last.none.latency.claim.p50;
    const theirs = last.native.normal.claim.p50;
    targets.push({
      name: `claim p50 flush off vs better-sqlite3 ${at}`,
      measured: `${ms(mine)} / ${ms(theirs)} ms = ${ratio(mine, theirs)}`,
      target: `≤ ${LIMITS.claimVsNative}×`,
      result: passIf(mine / theirs <= LIMITS.claimVsNative),
    });
  } else {
    const skip: Target = { name: `claim p50 flush off vs better-sqlite3 ${at}`, measured: 'better-sqlite3 unavailable', target: `≤ ${LIMITS.claimVsNative}×`, result: 'SKIP' };
    if (!r.native.ok) skip.note = r.native.reason;
    targets.push(skip);
  }

  // 2. claim p50 flush off, flat from the smallest size to the largest.
  const base = first.none.latency.claim.p50;
  const deviations = r.sizes.map((s) => s.none.latency.claim.p50 / base - 1);
  const worst = deviations.reduce((a, b) => (Math.abs(b) > Math.abs(a) ? b : a), 0);
  targets.push({
    name: `claim p50 flush off flat ${sizeLabel(first.n)}→${sizeLabel(last.n)}`,
    measured: r.sizes.map((s) => ms(s.none.latency.claim.p50)).join(' → ') + ` ms (worst ${pct(worst)})`,
    target: `within ±${LIMITS.claimFlatness * 100}%`,
    result: passIf(Math.abs(worst) <= LIMITS.claimFlatness),
  });

  // 3. durable claim p50 within 0.3 ms of one fdatasync, at every size, against the fdatasync measured alongside.
  const over = (s: SizeResult) => s.full.latency.claim.p50 - (s.full.fdatasyncDuring?.p50 ?? r.fdatasync.fdatasync.p50);
  const worstDurable = r.sizes.reduce<SizeResult>((a, b) => (over(b) > over(a) ? b : a), first);
  const fsyncThen = worstDurable.full.fdatasyncDuring?.p50 ?? r.fdatasync.fdatasync.p50;
  targets.push({
    name: `durable claim p50 (worst size: ${sizeLabel(worstDurable.n)})`,
    measured: `${ms(worstDurable.full.latency.claim.p50)} ms = fdatasync + ${ms(over(worstDurable))}`,
    target: `≤ fdatasync ${ms(fsyncThen)} + ${LIMITS.durableClaimOverFsyncMs} ms`,
    result: passIf(over(worstDurable) <= LIMITS.durableClaimOverFsyncMs),
  });

  // 4. snapshot at the live cap.
  const snap = r.snapshot.atCap.snapshot;
  targets.push({
    name: `snapshot at the live cap (${r.snapshot.atCap.finished} finished)`,
    measured: `p50 ${ms1(snap.p50)} ms, max ${ms1(snap.max)} ms`,
    target: `≤ ${LIMITS.snapshotAtCapMs} ms`,
    result: passIf(snap.p50 <= LIMITS.snapshotAtCapMs),
  });

  // 5. cold start with an unsnapshotted journal.
  const cold = r.coldStart.openMs;
  targets.push({
    name: `cold start, ${sizeLabel(r.coldStart.records)} journal records`,
    measured: `${(cold.p50 / 1000).toFixed(2)} s (median of ${cold.samples})`,
    target: `≤ ${(LIMITS.coldStartMs / 1000).toFixed(1)} s`,
    result: passIf(cold.p50 <= LIMITS.coldStartMs),
  });

  // 6. RSS with the history.
  if (isRss(r.rss)) {
    const complete = !r.rss.stoppedEarly;
    targets.push({
      name: `RSS with ${sizeLabel(r.rss.tasks)} tasks of history${complete ? '' : ` (of ${sizeLabel(r.rss.target)})`}`,
      measured: `${r.rss.rssMb.toFixed(0)} MB`,
      target: `≤ ${LIMITS.rssMb} MB`,
      result: complete ? passIf(r.rss.rssMb <= LIMITS.rssMb) : 'INCOMPLETE',
    });
  } else {
    targets.push({ name: 'RSS with history', measured: 'not measured', target: `≤ ${LIMITS.rssMb} MB`, result: 'INCOMPLETE', note: r.rss.error });
  }
  // 7–8. The IPC layer (issue 3): a durable claim over the socket, and throughput with 16 client processes.
  if ('error' in r.ipc) {
    targets.push({ name: 'IPC durable claim round trip', measured: 'not measured', target: `≤ fdatasync + ${LIMITS.ipcClaimOverFsyncMs} ms`, result: 'INCOMPLETE', note: r.ipc.error });
  } else {
    const rt = r.ipc.roundTrip;
    const over = rt.claim.p50 - rt.fdatasyncDuring.p50;
    targets.push({
      name: 'IPC durable claim round trip p50',
      measured: `${ms(rt.claim.p50)} ms = fdatasync + ${ms(over)}`,
      target: `≤ fdatasync ${ms(rt.fdatasyncDuring.p50)} + ${LIMITS.ipcClaimOverFsyncMs} ms`,
      result: passIf(over <= LIMITS.ipcClaimOverFsyncMs),
    });
    const at16 = r.ipc.throughput.find((t) => t.clients === 16);
    targets.push({
      name: 'acknowledged mutations/s, 16 clients',
      measured: at16 ? `${Math.round(at16.perSecond)}/s` : 'not measured',
      target: `≥ ${LIMITS.ipcMutationsPerSecondAt16}/s`,
      result: at16 ? passIf(at16.perSecond >= LIMITS.ipcMutationsPerSecondAt16) : 'INCOMPLETE',
    });
  }
  // 9–. What an agent's workflow pays (issue 14).
  targets.push(...workflowTargets(r.workflow));
  return targets;
}

function table(rows: string[][], align: ('l' | 'r')[]): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  return rows.map((r) => r.map((cell, c) => (align[c] === 'r' ? cell.padStart(widths[c]!) : cell.padEnd(widths[c]!))).join('  ').trimEnd()).join('\n') + '\n';
}

function latencyTable(r: BenchResults): string {
  const rows: string[][] = [
    ['', '', 'sql.js', '', '', '', 'b-sqlite3', '', '', '', 'p50 ratio', ''],
    ['', '', 'flush off', '', 'durable', '', 'NORMAL', '', 'FULL', '', 'off/', 'durable/'],
    ['op', 'tasks', 'p50', 'p99', 'p50', 'p99', 'p50', 'p99', 'p50', 'p99', 'NORMAL', 'FULL'],
  ];
  for (const op of OPS) {
    for (const s of r.sizes) {
      const none = s.none.latency[op];
      const full = s.full.latency[op];
      const nn: Summary | undefined = s.native?.normal[op];
      const nf: Summary | undefined = s.native?.full[op];
      rows.push([
        OP_LABEL[op],
        sizeLabel(s.n),
        ms(none.p50),
        ms(none.p99),
        ms(full.p50),
        ms(full.p99),
        nn ? ms(nn.p50) : 'n/a',
        nn ? ms(nn.p99) : 'n/a',
        nf ? ms(nf.p50) : 'n/a',
        nf ? ms(nf.p99) : 'n/a',
        nn ? ratio(none.p50, nn.p50) : 'n/a',
        nf ? ratio(full.p50, nf.p50) : 'n/a',
      ]);
    }
  }
  for (const s of r.sizes) {
    const f = s.full.fdatasyncDuring;
    if (f) rows.push(['fdatasync*', sizeLabel(s.n), '', '', ms(f.p50), ms(f.p99), '', '', '', '', '', '']);
  }
  return table(rows, ['l', 'l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r']);
}

function splitTable(r: BenchResults): string {
  const rows: string[][] = [['op', ...r.sizes.map((s) => sizeLabel(s.n))]];
  for (const op of ['enqueue', 'claim', 'complete'] as const) {
    rows.push([OP_LABEL[op], ...r.sizes.map((s) => `${ms(s.none.syncPart[op].p50)} of ${ms(s.none.latency[op].p50)}`)]);
  }
  return table(rows, ['l', ...r.sizes.map(() => 'r' as const)]);
}

export function renderReport(r: BenchResults): string {
  const out: string[] = [];
  const nativeLine = r.native.ok ? `better-sqlite3 ${r.native.version} (SQLite ${r.native.sqlite})` : `better-sqlite3 unavailable: ${r.native.reason}`;
  out.push(`SparkQ bench${r.plan.quick ? ' (--quick: reduced sizes, targets indicative only)' : ''} — ${r.startedAt}, ${r.seconds.toFixed(0)} s`);
  const load = (l: number[]) => l.map((x) => x.toFixed(2)).join(' ');
  out.push(`Node ${r.env.node} (N-API ${r.env.napi}), ${r.env.platform}, ${r.env.cpus} × ${r.env.cpuModel}; data in ${r.env.tmp}; load avg ${load(r.env.loadAvgStart)} → ${load(r.env.loadAvgEnd)} (1-min max ${r.env.loadAvgMax.toFixed(1)})`);
  out.push(nativeLine);
  const busiest = Math.max(r.env.loadAvgMax, r.env.loadAvgEnd[0] ?? 0);
  if (busiest > r.env.cpus) {
    out.push(`WARNING: the machine was busy (1-min load average up to ${busiest.toFixed(1)} on ${r.env.cpus} CPUs): latencies and rates are inflated; rerun on a quiet machine.`);
  }
  out.push(
    `tasks: prompt ${r.taskShape.promptBytes} B, summary ${r.taskShape.summaryBytes} B; state at N = N enqueued, ${(r.plan.finishedShare * 100).toFixed(0)}% of them claimed+completed, the rest queued`,
  );
  out.push(
    `disk: fdatasync after a ${r.fdatasync.bytes} B append p50 ${ms(r.fdatasync.fdatasync.p50)} ms, p99 ${ms(r.fdatasync.fdatasync.p99)} ms (${r.fdatasync.fdatasync.samples} samples)`,
  );
  out.push('');
  out.push(
    `Latency, ms — one caller, one operation at a time; ${r.plan.iterationsNone} flush-off / ${r.plan.iterationsFull} durable iterations and ${r.plan.listIterations} lists per store, ` +
      `all stores timed round-robin in ${r.plan.rounds} rounds. ` +
      'sql.js = QueueService (validation, transaction, journal, group commit); b-sqlite3 = same SQL on a WAL file DB.',
  );
  out.push(latencyTable(r));
  out.push('* fdatasync of a 256 B append to a probe file beside the journal, once per durable iteration (the disk as the durable ops saw it)');
  out.push('');
  out.push('sql.js flush off, p50 ms: synchronous part (validate + transaction + journal append) of the whole call');
  out.push(splitTable(r));

  const sc = r.snapshot;
  const snapLine = (label: string, p: typeof sc.atCap) =>
    `${label}: ${p.finished} finished + ${p.queued} queued, image ${(p.imageBytes / 1024 / 1024).toFixed(1)} MB: ` +
    `snapshot p50 ${ms1(p.snapshot.p50)} ms, max ${ms1(p.snapshot.max)} ms (n=${p.snapshot.samples}); db.export() alone p50 ${ms1(p.exportOnly.p50)} ms`;
  out.push('Snapshots (durable store, after ' + String(sc.writesPerRound) + ' writes each)');
  out.push('  ' + snapLine(`at the live cap (${sc.liveCap})`, sc.atCap));
  out.push('  ' + snapLine('just before archiving', sc.beforeArchive));
  const cs = r.coldStart;
  out.push(
    `Cold start: QueueService.open in a fresh process, ${cs.records} journal records after the snapshot: ` +
      cs.runs.map((x) => `${(x.openMs / 1000).toFixed(2)} s`).join(', ') +
      ` (replayed ${cs.runs[0]?.replayed ?? 0}; RSS after open ${cs.runs[0]?.rssMb.toFixed(0) ?? '?'} MB, wasm ${cs.runs[0]?.wasmMb.toFixed(0) ?? '?'} MB)`,
  );
  if (isRss(r.rss)) {
    const x = r.rss;
    out.push(
      `History: ${x.tasks} tasks enqueued+claimed+completed (flush off, autoMaintain, bundled child on plain Node) in ${x.buildSeconds.toFixed(0)} s = ${Math.round(x.tasksPerSecond)} tasks/s` +
        (x.stoppedEarly
          ? ` — STOPPED at the ${r.plan.rssBudgetSeconds} s budget before ${x.target}; at this rate ${x.target} would take ${(x.target / x.tasksPerSecond / 60).toFixed(0)} min (run with --full-history)`
          : ''),
    );
    out.push(
      `  after gc: RSS ${x.rssMb.toFixed(0)} MB = empty queue ${x.emptyRssMb.toFixed(0)} MB + growth; wasm memory ${x.wasmMb.toFixed(0)} MB, other ArrayBuffers ${x.arrayBuffersMb.toFixed(0)} MB, ` +
        `JS heap ${x.heapUsedMb.toFixed(0)} MB; peak RSS while building ${x.peakRssMb.toFixed(0)} MB; ${x.liveFinished} finished live, ${x.archiveChunks} archive chunks`,
    );
    out.push('  RSS (wasm) along the way: ' + x.milestones.map((m) => `${sizeLabel(m.tasks)} ${m.rssMb.toFixed(0)} (${m.wasmMb.toFixed(0)}) MB`).join(', '));
  } else {
    out.push(`History/RSS: not measured (${r.rss.error})`);
  }
  if ('error' in r.ipc) {
    out.push(`IPC: not measured (${r.ipc.error})`);
  } else {
    const rt = r.ipc.roundTrip;
    out.push(
      `IPC (owner in its own process, durable; client over the Unix socket): claim round trip p50 ${ms(rt.claim.p50)} ms, p99 ${ms(rt.claim.p99)} ms ` +
        `(fdatasync alongside p50 ${ms(rt.fdatasyncDuring.p50)} ms)`,
    );
    out.push(
      `  acknowledged enqueues/s, each client process one call at a time over ${r.plan.ipcSeconds} s, after ${r.plan.ipcClientWarmup} uncounted calls: ` +
        r.ipc.throughput.map((t) => `${t.clients} client${t.clients === 1 ? '' : 's'} ${Math.round(t.perSecond)}/s (p50 ${ms(t.latency.p50)} ms)`).join(', '),
    );
  }
  out.push(renderWorkflow(r.workflow));
  out.push('');
  out.push('Targets');
  const rows = [['', 'measured', 'target', 'result'], ...r.targets.map((t) => [t.name, t.measured, t.target, t.result])];
  out.push(table(rows, ['l', 'l', 'l', 'l']));
  for (const t of r.targets) if (t.note) out.push(`  ${t.name}: ${t.note}`);
  return out.join('\n') + '\n';
}
