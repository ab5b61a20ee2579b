/*
 * Snapshot at the live cap, on its own: `node --expose-gc --import tsx bench/snapshot.ts [--rounds N]`.
 *
 * The same measurement as `npm run bench` makes (measureSnapshotAtCap: liveCap finished tasks plus 1,000 queued, a
 * durable store, a few writes before each snapshot), without the rest of the bench. measureSnapshot() is what
 * bench/run.ts can call; it returns the p50 against SNAPSHOT_TARGET_MS with every run and the machine's load.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { type SnapshotMeasurement, measureSnapshotAtCap } from './lib/sparkq';
import { hasGc } from './lib/stats';

/** Issue 14: p50 of a snapshot at the live cap. */
export const SNAPSHOT_TARGET_MS = 30;

export interface SnapshotBenchOptions {
  /** Snapshots timed at the cap (default 15). */
  rounds?: number;
  /** Tasks waiting besides the finished ones (default 1,000, as in npm run bench). */
  queued?: number;
  /** Writes before each snapshot (default 30: 10 enqueue → claim → complete cycles). */
  writesPerRound?: number;
  /** Where the store is built (default: a temp folder, removed afterwards). */
  dir?: string;
}

export interface SnapshotBenchResult {
  p50: number;
  runs: number[];
  target: number;
  pass: boolean;
  /** 1-minute load average before and after, and the number of cores: the figures move with other work on the machine. */
  load: { before: number; after: number; cores: number };
  detail: SnapshotMeasurement;
}

export async function measureSnapshot(opts: SnapshotBenchOptions = {}): Promise<SnapshotBenchResult> {
  const own = opts.dir === undefined;
  const base = opts.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'sparkq-bench-snapshot-'));
  const before = os.loadavg()[0] ?? 0;
  try {
    const detail = await measureSnapshotAtCap(path.join(base, 'snapshot'), opts.queued ?? 1_000, opts.rounds ?? 15, opts.writesPerRound ?? 30);
    const p50 = detail.atCap.snapshot.p50;
    return {
      p50,
      runs: detail.atCap.runs,
      target: SNAPSHOT_TARGET_MS,
      pass: p50 <= SNAPSHOT_TARGET_MS,
      load: { before, after: os.loadavg()[0] ?? 0, cores: os.cpus().length },
      detail,
    };
  } finally {
    if (own) fs.rmSync(base, { recursive: true, force: true });
  }
}

export function describeSnapshot(r: SnapshotBenchResult): string {
  const p = r.detail.atCap;
  return [
    `snapshot at the live cap (${p.finished.toLocaleString('en-US')} finished + ${p.queued.toLocaleString('en-US')} queued, image ${(p.imageBytes / 1024 / 1024).toFixed(1)} MB): ` +
      `p50 ${r.p50.toFixed(1)} ms (target ≤ ${r.target} ms: ${r.pass ? 'PASS' : 'FAIL'}), max ${p.snapshot.max.toFixed(1)} ms; db.export() alone p50 ${p.exportOnly.p50.toFixed(1)} ms`,
    `  runs: ${r.runs.map((x) => x.toFixed(0)).join(' / ')} ms (after ${p.warmup.length} untimed: ${p.warmup.map((x) => x.toFixed(0)).join(' / ')} ms)`,
    `  just before archiving (${r.detail.beforeArchive.finished.toLocaleString('en-US')} finished): p50 ${r.detail.beforeArchive.snapshot.p50.toFixed(1)} ms`,
    `  load average ${r.load.before.toFixed(1)} → ${r.load.after.toFixed(1)} on ${r.load.cores} cores`,
  ].join('\n');
}

if (require.main === module) {
  const at = process.argv.indexOf('--rounds');
  const rounds = at > 0 ? Number(process.argv[at + 1]) : undefined;
  if (!hasGc()) process.stderr.write('warning: run with node --expose-gc for steadier numbers\n');
  measureSnapshot(rounds !== undefined ? { rounds } : {}).then(
    (r) => console.log(describeSnapshot(r)),
    (e: unknown) => {
      console.error(e);
      process.exit(1);
    },
  );
}
