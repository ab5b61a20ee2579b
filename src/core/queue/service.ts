import * as path from 'node:path';
import { type Clock, systemClock } from '../clock';
import type { SparkqConfig } from '../config';
import type { ChangeEvent, SweepResult } from '../events';
import type {
  AgentSession,
  ApplyPlanInput,
  Claim,
  ClaimInput,
  CompleteInput,
  CreateQueueInput,
  CreateSessionInput,
  EnqueueInput,
  FailInput,
  HeartbeatInput,
  ListTasksInput,
  PauseQueueInput,
  PlanApplyResult,
  Queue,
  RecordRunInput,
  ReleaseInput,
  Report,
  ReportInput,
  RequeueFailedInput,
  RequeueOptions,
  Session,
  StatusCounts,
  Task,
  TaskDetail,
  VerdictInput,
  TaskPage,
} from '../model';
import type { Durability } from '../store/journal';
import { type RecoveryReport, Store, type StoreOptions } from '../store/store';
import { ARCHIVE_DIR, Archive, type ChunkRow } from './archive';
import { AttemptCommands } from './attempts';
import { QueueCommands } from './commands';
import { type Effect, EffectBatch, applyEffects } from './effects';
import { QueueHandle } from './handle';
import { QueueQueries } from './queries';
import { QueueReports } from './reports';
import { MIGRATIONS } from './schema';
import { type MaintenanceOptions, Timekeeping } from './timekeeping';

export interface OpenQueueOptions extends MaintenanceOptions {
  /** The store's folder, normally `<workspace>/.sparkq/db`. */
  dir: string;
  config: SparkqConfig;
  clock?: Clock;
  durability?: Durability;
  syncOn?: StoreOptions['syncOn'];
  rehomeJournal?: boolean;
  repair?: boolean;
  snapshotAfterRecords?: number;
  /** See StoreOptions.closeSnapshotMinRecords and closeSnapshotMinBytes. */
  closeSnapshotMinRecords?: number;
  closeSnapshotMinBytes?: number;
  /** See StoreOptions.fence: throws when this process is no longer the queue's owner. */
  fence?: StoreOptions['fence'];
}

/** How a journal record that starts with an enqueue begins (effects are written with `t` first). */
const ENQUEUE_PREFIX = '[{"t":"task.enqueue"';

/**
 * The queue: every operation is one synchronous transaction over the store (no await between reading and writing),
 * and the mutations resolve once their journal record is synced. The work is done by parts that share one handle
 * (handle.ts): commands.ts (sessions, queues, enqueues, plans, requeues), attempts.ts (claims and their outcomes),
 * queries.ts, reports.ts and timekeeping.ts (sweep, purge, archiving and snapshots). This class opens the store and
 * is the one public face of them all.
 */
export class QueueService {
  readonly store: Store;
  private readonly commands: QueueCommands;
  private readonly attempts: AttemptCommands;
  private readonly queries: QueueQueries;
  private readonly reports: QueueReports;
  private readonly timekeeping: Timekeeping;

  private constructor(
    private readonly h: QueueHandle,
    opts: MaintenanceOptions,
  ) {
    this.store = h.store;
    this.queries = new QueueQueries(h);
    this.commands = new QueueCommands(h, this.queries);
    this.attempts = new AttemptCommands(h, (row, seq, key, next) => this.commands.requeueOf(row, seq, key, next));
    this.reports = new QueueReports(h);
    this.timekeeping = new Timekeeping(h, this.attempts, opts);
    h.afterCommit = () => this.timekeeping.scheduleMaintenance();
  }

  static async open(opts: OpenQueueOptions): Promise<QueueService> {
    const clock = opts.clock ?? systemClock;
    const store = await Store.open({
      dir: opts.dir,
      migrations: MIGRATIONS,
      replay: (db, record) => applyEffects(db, record as Effect[]),
      // Enqueues are what make the database grow (claims and completions mostly fill in rows): about 1.5 bytes of
      // rows and indexes per byte of enqueue record.
      replayReserve: (payloads) => {
        let bytes = 0;
        for (const p of payloads) if (p.length > ENQUEUE_PREFIX.length && p.toString('latin1', 0, ENQUEUE_PREFIX.length) === ENQUEUE_PREFIX) bytes += p.length;
        return bytes * 1.5;
      },
      replayBatch: (db) => {
        const batch = new EffectBatch(db);
        return {
          apply: (record) => {
            for (const e of record as Effect[]) batch.apply(e);
          },
          finish: () => batch.finish(),
        };
      },
      clock,
      ...(opts.durability ? { durability: opts.durability } : {}),
      ...(opts.syncOn ? { syncOn: opts.syncOn } : {}),
      ...(opts.rehomeJournal ? { rehomeJournal: true } : {}),
      ...(opts.repair ? { repair: true } : {}),
      ...(opts.snapshotAfterRecords ? { snapshotAfterRecords: opts.snapshotAfterRecords } : {}),
      ...(opts.closeSnapshotMinRecords ? { closeSnapshotMinRecords: opts.closeSnapshotMinRecords } : {}),
      ...(opts.closeSnapshotMinBytes ? { closeSnapshotMinBytes: opts.closeSnapshotMinBytes } : {}),
      ...(opts.fence ? { fence: opts.fence } : {}),
    });
    const archive = new Archive(store.db, path.join(opts.dir, ARCHIVE_DIR), (opts.durability ?? 'full') === 'full');
    try {
      archive.verifyPresent();
      archive.sweepOrphans();
    } catch (e) {
      await store.close({ snapshot: false });
      throw e;
    }
    return new QueueService(new QueueHandle(store, opts.config, clock, archive), opts);
  }

  get recovery(): RecoveryReport {
    return this.store.recovery;
  }

  setConfig(config: SparkqConfig): void {
    this.h.config = config;
  }

  getConfig(): SparkqConfig {
    return this.h.config;
  }

  onChange(listener: (events: ChangeEvent[]) => void): () => void {
    return this.h.onChange(listener);
  }

  // ---- sessions and queues -------------------------------------------------------------------------------------

  createSession(input: CreateSessionInput): Promise<Session> {
    return this.commands.createSession(input);
  }
  getSession(ref: string): Session {
    return this.queries.getSession(ref);
  }
  listSessions(options: { includeEnded?: boolean } = {}): Session[] {
    return this.queries.listSessions(options);
  }
  endSession(ref: string): Promise<Session> {
    return this.commands.endSession(ref);
  }
  createQueue(input: CreateQueueInput): Promise<Queue> {
    return this.commands.createQueue(input);
  }
  getQueue(ref: string): Queue {
    return this.queries.getQueue(ref);
  }
  listQueues(options: { session?: string; includeEnded?: boolean } = {}): Queue[] {
    return this.queries.listQueues(options);
  }
  endQueue(ref: string): Promise<Queue> {
    return this.commands.endQueue(ref);
  }
  recordRun(input: RecordRunInput): Promise<Task> {
    return this.attempts.recordRun(input);
  }
  setAgentSession(ref: string, ids: AgentSession): Promise<Queue> {
    return this.commands.setAgentSession(ref, ids);
  }
  pauseQueue(input: PauseQueueInput): Promise<Queue> {
    return this.commands.pauseQueue(input);
  }
  resumeQueue(ref: string): Promise<Queue> {
    return this.commands.resumeQueue(ref);
  }

  // ---- tasks ---------------------------------------------------------------------------------------------------

  enqueue(input: EnqueueInput): Promise<Task> {
    return this.commands.enqueue(input);
  }
  enqueueMany(inputs: readonly EnqueueInput[]): Promise<Task[]> {
    return this.commands.enqueueMany(inputs);
  }
  peek(queueRef: string): Task | null {
    return this.queries.peek(queueRef);
  }
  claim(input: ClaimInput): Promise<Claim | null> {
    return this.attempts.claim(input);
  }
  claimMany(input: ClaimInput, count: number): Promise<Claim[]> {
    return this.attempts.claimMany(input, count);
  }
  heartbeat(input: HeartbeatInput): Promise<void> {
    return this.attempts.heartbeat(input);
  }
  complete(input: CompleteInput): Promise<Task> {
    return this.attempts.complete(input);
  }
  completeMany(inputs: readonly CompleteInput[]): Promise<Task[]> {
    return this.attempts.completeMany(inputs);
  }
  verdict(input: VerdictInput): Promise<Task> {
    return this.attempts.verdict(input);
  }

  fail(input: FailInput): Promise<Task> {
    return this.attempts.fail(input);
  }
  release(input: ReleaseInput): Promise<Task> {
    return this.attempts.release(input);
  }
  requeue(taskId: string, options?: RequeueOptions): Promise<Task> {
    return this.commands.requeue(taskId, options);
  }
  requeueFailed(input: RequeueFailedInput = {}): Promise<Task[]> {
    return this.commands.requeueFailed(input);
  }
  applyPlan(input: ApplyPlanInput): Promise<PlanApplyResult> {
    return this.commands.applyPlan(input);
  }
  getTask(id: string): TaskDetail {
    return this.queries.getTask(id);
  }
  listTasks(input: ListTasksInput = {}): TaskPage {
    return this.queries.listTasks(input);
  }
  counts(): StatusCounts & { stale: number } {
    return this.queries.counts();
  }
  report(input: ReportInput = {}): Promise<Report> {
    return this.reports.report(input);
  }

  // ---- time and upkeep -----------------------------------------------------------------------------------------

  sweep(): Promise<SweepResult> {
    return this.timekeeping.sweep();
  }
  purge(options: { olderThanDays: number }): Promise<{ purged: number }> {
    return this.timekeeping.purge(options);
  }
  get maintenanceDue(): boolean {
    return this.timekeeping.maintenanceDue;
  }
  maintain(): Promise<void> {
    return this.timekeeping.maintain();
  }
  archiveChunks(): Omit<ChunkRow, 'bloom'>[] {
    return this.queries.archiveChunks();
  }

  async close(options: { snapshot?: boolean } = {}): Promise<void> {
    if (this.h.closed) return;
    await this.timekeeping.settle();
    this.h.closed = true;
    this.h.archive.close();
    await this.store.close(options);
  }

  /** Drops everything without syncing or snapshotting: what a crash leaves, for tests. */
  abandon(): void {
    this.h.closed = true;
    this.h.archive.close();
    this.store.abandon();
  }
}
