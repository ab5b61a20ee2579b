import type { ColdStartResult, RssResult } from './child-protocol';
import type { FdatasyncMeasurement } from './disk';
import type { IpcResult } from './ipc';
import type { NativeLatencies, NativeProbe } from './native';
import type { OpMeasurement, SnapshotMeasurement } from './sparkq';
import type { Summary } from './stats';
import type { WorkflowPlan, WorkflowResults } from './workflow';

/** The shape of bench/results/latest.json. */

export interface BenchPlan extends WorkflowPlan {
  quick: boolean;
  sizes: number[];
  /** Share of the N tasks claimed and completed when building the state; the rest stay queued. */
  finishedShare: number;
  iterationsNone: number;
  iterationsFull: number;
  listIterations: number;
  /** The latency loops run round-robin over all stores this many times. */
  rounds: number;
  /** Untimed iterations at the start of every round (half of it for durable rounds). */
  warmup: number;
  fdatasyncSamples: number;
  ipcRoundTrips: number;
  ipcClients: number[];
  ipcSeconds: number;
  /** Enqueues each throughput client makes before its measured window (not counted). */
  ipcClientWarmup: number;
  fdatasyncBytes: number;
  snapshotRounds: number;
  snapshotQueued: number;
  snapshotWritesPerRound: number;
  coldStartRecords: number;
  coldStartRuns: number;
  rssTasks: number;
  /** 0 = no budget (--full-history). */
  rssBudgetSeconds: number;
}

export interface SizeResult {
  n: number;
  none: OpMeasurement;
  full: OpMeasurement;
  native: { normal: NativeLatencies; full: NativeLatencies } | null;
}

export interface BenchResults {
  startedAt: string;
  seconds: number;
  env: { node: string; napi: string; platform: string; cpus: number; cpuModel: string; tmp: string; gcExposed: boolean; loadAvgStart: number[]; loadAvgEnd: number[]; loadAvgMax: number };
  plan: BenchPlan;
  taskShape: { promptBytes: number; summaryBytes: number };
  native: NativeProbe;
  fdatasync: FdatasyncMeasurement;
  sizes: SizeResult[];
  snapshot: SnapshotMeasurement;
  coldStart: { records: number; runs: ColdStartResult[]; openMs: Summary };
  rss: RssResult | { error: string };
  /** The IPC layer: a durable claim over the owner's socket, and mutations/s with 1, 4 and 16 client processes. */
  ipc: IpcResult | { error: string };
  /** What an agent's workflow pays: a worker's drain against a bare loop, the dashboard's first page (issue 14). */
  workflow: WorkflowResults;
  targets: Target[];
}

export type TargetResult = 'PASS' | 'FAIL' | 'SKIP' | 'INCOMPLETE';

export interface Target {
  name: string;
  measured: string;
  target: string;
  result: TargetResult;
  note?: string;
}


