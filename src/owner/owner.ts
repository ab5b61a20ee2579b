import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ApiMethod, OwnerInfo, QueueApi, StatusReport, WorkerJoin, WorkerPlace } from './api';
import { configFileOf, ensureSparkqDir, sparkqDirOf } from './workspace';
import { systemClock, type Clock } from '../core/clock';
import { defaultConfig, loadConfigFile, resolveScriptDirs, type SparkqConfig } from '../core/config';
import { SparkqError, errorMessage } from '../core/errors';
import type {
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
  ReleaseInput,
  Report,
  ReportInput,
  RequeueFailedInput,
  Session,
  Task,
  TaskDetail,
  TaskPage,
} from '../core/model';
import { type ChangeEvent, QueueService, type SweepResult } from '../core/queue/service';
import { ScriptIndex, type ScriptEntry } from '../core/scriptIndex';
import { writeFileAtomic } from '../core/store/fileio';
import type { Durability, SyncOn } from '../core/store/journal';
import { newIpcToken } from '../ipc/protocol';
import { socketPathFor } from '../ipc/socketPath';
import { IpcServer } from './ipcServer';
import type { OwnerLock } from './lock';
import { OWNER_RECORD, type OwnerRecord, readOwnerRecord } from './record';

// owner.json lives in its own module (record.ts), so that a client reads it without loading the owner's code.
export { OWNER_RECORD, type OwnerRecord, readOwnerRecord } from './record';
export const DB_DIR = 'db';

export interface StartOwnerOptions {
  workspaceDir: string;
  /** A lock this process just acquired; the owner releases it on close. */
  lock: OwnerLock;
  role: string;
  clock?: Clock;
  durability?: Durability;
  /** Where the journal's fdatasync runs (see SyncOn): 'event-loop' for processes whose loop serves the queue. */
  syncOn?: SyncOn;
  /** One line per event worth keeping (config reloads, sweeps that changed something, refused connections). */
  log?: (line: string) => void;
  /** How often running tasks are checked against their timeouts. Default 5 s. */
  sweepIntervalMs?: number;
  /** Watch sparkq.yml and reload it on change. Default true. */
  watchConfig?: boolean;
  /** Serve other processes over IPC while owning. Default true. */
  serve?: boolean;
}

const DAY_MS = 24 * 60 * 60 * 1000;
const LOG_MAX_BYTES = 1024 * 1024;
/** A graceful hand-over waits this long for requests that are running to be answered. */
const DRAIN_MS = 5_000;

/** Appends to `.sparkq/logs/owner.log`, keeping one previous file of about 1 MiB. Never throws. */
export function fileLogger(sparkqDir: string): (line: string) => void {
  const dir = path.join(sparkqDir, 'logs');
  const file = path.join(dir, 'owner.log');
  return (line) => {
    try {
      fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
      try {
        if (fs.statSync(file).size > LOG_MAX_BYTES) fs.renameSync(file, `${file}.1`);
      } catch {
        // no log yet
      }
      fs.appendFileSync(file, `${new Date().toISOString()} [${process.pid}] ${line}\n`, { mode: 0o600 });
    } catch {
      // logging must never take the owner down
    }
  };
}

/**
 * Being the owner of a workspace's queue: the QueueService (fenced by the lock's generation), the IPC server other
 * processes reach it through, the timeout sweeper, the automatic purge, and the reload of sparkq.yml. Implements the
 * same QueueApi as a remote client, so callers in the owning process use it directly.
 */
export class QueueOwner implements QueueApi {
  readonly info: OwnerInfo;
  private readonly timers: NodeJS.Timeout[] = [];
  private watcher: fs.FSWatcher | null = null;
  private reloadTimer: NodeJS.Timeout | null = null;
  private readonly scriptIndex: ScriptIndex;
  private server: IpcServer | null = null;
  private closing: Promise<void> | null = null;
  private lostListeners: (() => void)[] = [];
  /** Queue id → worker name → when its place expires (ms, this owner's clock). */
  private readonly places = new Map<string, Map<string, number>>();
  private lost = false;

  private constructor(
    readonly workspaceDir: string,
    readonly service: QueueService,
    private readonly lock: OwnerLock,
    private readonly log: (line: string) => void,
    role: string,
    private readonly clock: Clock,
  ) {
    this.info = { pid: process.pid, generation: lock.generation, role, since: new Date().toISOString() };
    this.scriptIndex = new ScriptIndex(resolveScriptDirs(service.getConfig(), workspaceDir));
  }

  /** Loads sparkq.yml (defaults when there is none), opens the store, starts serving. Releases the lock on failure. */
  static async start(opts: StartOwnerOptions): Promise<QueueOwner> {
    const sparkqDir = ensureSparkqDir(opts.workspaceDir);
    const log = opts.log ?? fileLogger(sparkqDir);
    let owner: QueueOwner | null = null;
    let service: QueueService | null = null;
    try {
      const config = loadWorkspaceConfig(opts.workspaceDir, log);
      const lock = opts.lock;
      service = await QueueService.open({
        dir: path.join(sparkqDir, DB_DIR),
        config,
        clock: opts.clock ?? systemClock,
        ...(opts.durability ? { durability: opts.durability } : {}),
        ...(opts.syncOn ? { syncOn: opts.syncOn } : {}),
        // A predecessor that is still running may write to the journal it holds open until it notices.
        ...(lock.predecessorMayRun ? { rehomeJournal: true } : {}),
        // Before a write, a look at `.sparkq/` from the last millisecond is reused: under load that saves a stat per
        // request. The look before an acknowledgement is always fresh (see Store.write).
        fence: (when) => {
          if (!lock.isCurrent(when === 'write' ? { reuseMs: 1 } : {})) {
            owner?.noticeLost();
            throw new SparkqError('unavailable', 'this process is no longer the queue owner (another process took over); nothing was written', { retry: true });
          }
        },
      });
      owner = new QueueOwner(opts.workspaceDir, service, lock, log, opts.role, opts.clock ?? systemClock);
      // Whoever becomes the owner, a one-command CLI included, applies the time budget before its first answer: with
      // no long-lived owner no timer would ever fail a task past 2× its timeout, or one whose worker died.
      await owner.housekeep();
      if (opts.serve ?? true) await owner.listen(sparkqDir);
      owner.startHousekeeping(opts.sweepIntervalMs ?? 5_000);
      if (opts.watchConfig ?? true) owner.watchConfig();
      log(`owner generation ${lock.generation} started (${opts.role}); ${service.recovery.replayed} journal records replayed${service.recovery.tornTail ? `, a torn last record (never acknowledged) discarded` : ""}`);
      return owner;
    } catch (e) {
      if (owner) await owner.close().catch(() => undefined);
      else {
        if (service) await service.close().catch(() => undefined);
        opts.lock.release();
      }
      throw e;
    }
  }

  private async listen(sparkqDir: string): Promise<void> {
    const socketPath = socketPathFor(this.workspaceDir, this.lock.generation);
    const token = newIpcToken();
    this.server = await IpcServer.listen({
      socketPath,
      token,
      owner: this.info,
      handle: (method, params) => this.handle(method, params),
      subscribe: (cb) => this.service.onChange(cb),
      log: this.log,
    });
    const record: OwnerRecord = { version: 1, pid: process.pid, generation: this.lock.generation, role: this.info.role, socketPath, token, since: this.info.since };
    writeFileAtomic(path.join(sparkqDir, OWNER_RECORD), JSON.stringify(record, null, 2) + '\n', { mode: 0o600 });
    // Last: the lock names the socket only once the token to use it is on disk.
    this.lock.setSocketPath(socketPath);
  }

  /** One round of the time-driven work: timeouts (stale at 1×, failed at 2×) and tasks of lost workers. Never throws. */
  private async housekeep(): Promise<void> {
    await this.sweep().catch((e: unknown) => this.log(`sweep failed: ${errorMessage(e)}`));
    await this.reapLostWorkers().catch((e: unknown) => this.log(`looking for lost workers failed: ${errorMessage(e)}`));
  }

  private startHousekeeping(sweepIntervalMs: number): void {
    const sweep = setInterval(() => void this.housekeep(), sweepIntervalMs);
    sweep.unref();
    this.timers.push(sweep);
    const purge = () => {
      const days = this.service.getConfig().purgeAfterDays;
      if (days === null || this.closing) return;
      this.service.purge({ olderThanDays: days }).then(
        (r) => {
          if (r.purged > 0) this.log(`automatic purge: ${r.purged} finished tasks older than ${days} days removed`);
        },
        (e: unknown) => this.log(`automatic purge failed: ${errorMessage(e)}`),
      );
    };
    const first = setTimeout(purge, 0);
    first.unref();
    const daily = setInterval(purge, DAY_MS);
    daily.unref();
    this.timers.push(first, daily);
  }

  private watchConfig(): void {
    try {
      this.watcher = fs.watch(this.workspaceDir, { persistent: false }, (_event, name) => {
        if (name !== null && name.toString() !== path.basename(configFileOf(this.workspaceDir))) return;
        if (this.reloadTimer) clearTimeout(this.reloadTimer);
        this.reloadTimer = setTimeout(() => this.reloadConfig(), 150);
        this.reloadTimer.unref();
      });
      this.watcher.on('error', (e) => this.log(`watching sparkq.yml stopped: ${errorMessage(e)}`));
    } catch (e) {
      this.log(`cannot watch sparkq.yml (changes need a restart of the owner): ${errorMessage(e)}`);
    }
  }

  /**
   * Liveness, apart from the time budget: a running task whose worker heartbeated at least once (so it is worked by
   * `sparkq run`, not claimed by hand) and then fell silent for longer than worker.leaseSeconds has lost its worker
   * (process killed, terminal closed, machine asleep): it is failed as "worker lost", in seconds rather than at 2× its
   * timeout. Tasks claimed with a bare `sparkq claim` never heartbeat and stay bounded only by their timeout. The
   * evidence is the durable heartbeat time, so this works across restarts and hand-overs of the owner.
   */
  async reapLostWorkers(): Promise<Task[]> {
    if (this.closing || this.lost) return [];
    const leaseMs = this.service.getConfig().worker.leaseSeconds * 1000;
    const now = this.clock.now();
    const failed: Task[] = [];
    for (let before: string | undefined; ; ) {
      const page = this.service.listTasks({ status: 'running', limit: 1000, ...(before ? { before } : {}) });
      for (const t of page.tasks) {
        if (!t.heartbeatAt || !t.startedAt) continue;
        const beat = Date.parse(t.heartbeatAt);
        if (beat <= Date.parse(t.startedAt) || now - beat <= leaseMs) continue;
        const silent = Math.round((now - beat) / 1000);
        try {
          failed.push(
            await this.service.fail({
              task: t.id,
              error: `worker lost: ${t.worker ?? 'its worker'} sent no heartbeat for ${silent} s (its process or terminal ended); requeue the task to run it again`,
            }),
          );
          this.log(`task ${t.id}: worker ${t.worker ?? '?'} lost (no heartbeat for ${silent} s); failed`);
        } catch (e) {
          // It finished or was failed meanwhile: nothing to do.
          this.log(`task ${t.id}: could not fail it as worker lost: ${errorMessage(e)}`);
        }
      }
      if (page.tasks.length < 1000) break;
      before = page.tasks[page.tasks.length - 1]!.id;
    }
    return failed;
  }

  /** Re-reads sparkq.yml. A file with errors is logged and the config in force stays. Returns the problem, if any. */
  reloadConfig(): string | null {
    if (this.closing) return null;
    try {
      const config = loadWorkspaceConfig(this.workspaceDir, this.log);
      this.service.setConfig(config);
      this.scriptIndex.setDirs(resolveScriptDirs(config, this.workspaceDir));
      this.log('sparkq.yml reloaded');
      return null;
    } catch (e) {
      const problem = errorMessage(e);
      this.log(`sparkq.yml not reloaded, the previous configuration stays in force: ${problem}`);
      return problem;
    }
  }

  private noticeLost(): void {
    if (this.lost) return;
    this.lost = true;
    this.log(`owner generation ${this.lock.generation} lost ownership to a newer generation; stepping down`);
    for (const cb of this.lostListeners.splice(0)) cb();
    void this.close();
  }

  /** Called once if another process takes ownership away (proved this one stale); the owner then closes itself. */
  onLost(cb: () => void): void {
    if (this.lost) cb();
    else this.lostListeners.push(cb);
  }

  /** Other processes connected to this owner now, and how many connected since it started serving (pings included). */
  get clients(): { now: number; ever: number } {
    return { now: this.server?.connections ?? 0, ever: this.server?.accepted ?? 0 };
  }

  get isLost(): boolean {
    return this.lost;
  }

  get socketPath(): string | null {
    return this.server?.socketPath ?? null;
  }

  /** The IPC dispatcher: one QueueApi method by name, with params the server already validated. */
  handle(method: ApiMethod, params: unknown[]): Promise<unknown> {
    const api = this as unknown as Record<ApiMethod, (...args: unknown[]) => Promise<unknown>>;
    return api[method](...params);
  }

  // ---- QueueApi --------------------------------------------------------------------------------------------------

  status(): Promise<StatusReport> {
    return Promise.resolve().then(() => ({
      owner: { ...this.info },
      project: this.service.getConfig().project,
      counts: this.service.counts(),
      queues: this.service.listQueues({ includeEnded: false }),
    }));
  }
  createSession(input: CreateSessionInput): Promise<Session> {
    return this.service.createSession(input);
  }
  listSessions(options?: { includeEnded?: boolean }): Promise<Session[]> {
    return Promise.resolve().then(() => this.service.listSessions(options));
  }
  getSession(ref: string): Promise<Session> {
    return Promise.resolve().then(() => this.service.getSession(ref));
  }
  endSession(ref: string): Promise<Session> {
    return this.service.endSession(ref);
  }
  createQueue(input: CreateQueueInput): Promise<Queue> {
    return this.service.createQueue(input);
  }
  listQueues(options?: { session?: string; includeEnded?: boolean }): Promise<Queue[]> {
    return Promise.resolve().then(() => this.service.listQueues(options));
  }
  getQueue(ref: string): Promise<Queue> {
    return Promise.resolve().then(() => this.service.getQueue(ref));
  }
  endQueue(ref: string): Promise<Queue> {
    return this.service.endQueue(ref);
  }
  enqueue(input: EnqueueInput): Promise<Task> {
    return this.service.enqueue(input);
  }
  peek(queue: string): Promise<Task | null> {
    return Promise.resolve().then(() => this.service.peek(queue));
  }
  claim(input: ClaimInput): Promise<Claim | null> {
    return this.service.claim(input);
  }
  heartbeat(input: HeartbeatInput): Promise<void> {
    return this.service.heartbeat(input);
  }
  complete(input: CompleteInput): Promise<Task> {
    return this.service.complete(input);
  }
  fail(input: FailInput): Promise<Task> {
    return this.service.fail(input);
  }
  requeue(task: string): Promise<Task> {
    return this.service.requeue(task);
  }
  requeueFailed(input: RequeueFailedInput): Promise<Task[]> {
    return this.service.requeueFailed(input);
  }
  release(input: ReleaseInput): Promise<Task> {
    return this.service.release(input);
  }
  pauseQueue(input: PauseQueueInput): Promise<Queue> {
    return this.service.pauseQueue(input);
  }
  resumeQueue(ref: string): Promise<Queue> {
    return this.service.resumeQueue(ref);
  }
  applyPlan(input: ApplyPlanInput): Promise<PlanApplyResult> {
    return this.service.applyPlan(input);
  }
  report(input?: ReportInput): Promise<Report> {
    return this.service.report(input);
  }
  listTasks(input?: ListTasksInput): Promise<TaskPage> {
    return Promise.resolve().then(() => this.service.listTasks(input));
  }
  getTask(task: string): Promise<TaskDetail> {
    return Promise.resolve().then(() => this.service.getTask(task));
  }
  async sweep(): Promise<SweepResult> {
    const r = await this.service.sweep();
    for (const t of r.staled) this.log(`task ${t.id} is stale: running past its ${t.timeoutSeconds} s timeout`);
    for (const t of r.failed) this.log(`task ${t.id} auto-failed: ${t.error ?? ''}`);
    return r;
  }
  purge(options: { olderThanDays: number }): Promise<{ purged: number }> {
    return this.service.purge(options);
  }
  scripts(query?: string): Promise<ScriptEntry[]> {
    return Promise.resolve().then(() => {
      // Incremental (stat-based): edits, new and removed scripts show up on the next call without a watcher.
      this.scriptIndex.rebuild();
      return query !== undefined && query.trim() !== '' ? this.scriptIndex.search(query) : this.scriptIndex.list();
    });
  }
  joinQueue(input: WorkerJoin): Promise<WorkerPlace> {
    return Promise.resolve().then(() => {
      if (typeof input.worker !== 'string' || input.worker.trim() === '') throw new SparkqError('invalid-input', 'joinQueue: say which worker (a name)');
      if (typeof input.leaseSeconds !== 'number' || !(input.leaseSeconds > 0) || input.leaseSeconds > 3600) {
        throw new SparkqError('invalid-input', 'joinQueue: leaseSeconds must be a number of seconds from 1 to 3600');
      }
      const queue = this.service.getQueue(input.queue);
      if (queue.status !== 'active') throw new SparkqError('conflict', `queue ${queue.name} has ended; workers can only work active queues`);
      const now = Date.now();
      let places = this.places.get(queue.id);
      if (!places) this.places.set(queue.id, (places = new Map<string, number>()));
      for (const [w, until] of places) if (until <= now) places.delete(w);
      if (!places.has(input.worker) && places.size >= queue.maxWorkers) {
        const others = [...places.keys()].join(', ');
        throw new SparkqError(
          'conflict',
          `queue ${queue.name} already has ${places.size} worker${places.size === 1 ? '' : 's'} (${others}) and allows ${queue.maxWorkers}; ` +
            'stop that worker first, or create the queue with a higher --max-workers',
          { queue: queue.id, workers: [...places.keys()], maxWorkers: queue.maxWorkers },
        );
      }
      places.set(input.worker, now + input.leaseSeconds * 1000);
      return { queueId: queue.id, workers: [...places.keys()], maxWorkers: queue.maxWorkers };
    });
  }
  leaveQueue(input: { queue: string; worker: string }): Promise<void> {
    return Promise.resolve().then(() => {
      const queue = this.service.getQueue(input.queue);
      this.places.get(queue.id)?.delete(input.worker);
    });
  }

  onChange(listener: (events: ChangeEvent[]) => void): () => void {
    return this.service.onChange(listener);
  }

  /**
   * Hands over: stops taking requests (those running are answered first), stops the timers, snapshots and closes the
   * store, removes owner.json and releases the lock, so the next process that needs the queue takes over at once.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      for (const t of this.timers) clearInterval(t);
      if (this.reloadTimer) clearTimeout(this.reloadTimer);
      this.watcher?.close();
      // A demoted owner drains too: its writes are refused by the fence as not run, so its clients retry elsewhere.
      if (this.server) await this.server.drain(DRAIN_MS);
      await this.service.close({ snapshot: !this.lost }).catch((e: unknown) => this.log(`closing the store failed: ${errorMessage(e)}`));
      const sparkqDir = sparkqDirOf(this.workspaceDir);
      const rec = readOwnerRecord(sparkqDir);
      if (rec && rec.generation === this.lock.generation) fs.rmSync(path.join(sparkqDir, OWNER_RECORD), { force: true });
      this.lock.release();
      // Listening until the lock is released keeps the socket answering pings, so no one takes over mid-snapshot.
      if (this.server) await this.server.close();
      this.log(`owner generation ${this.lock.generation} stopped`);
    })();
    return this.closing;
  }
}

/** sparkq.yml of the workspace, or the defaults (project = folder name) when there is none. Throws ConfigError. */
export function loadWorkspaceConfig(workspaceDir: string, log?: (line: string) => void): SparkqConfig {
  const file = configFileOf(workspaceDir);
  const project = path.basename(workspaceDir);
  if (!fs.existsSync(file)) return defaultConfig(project);
  const { config, warnings } = loadConfigFile(file, { defaultProject: project });
  for (const w of warnings) log?.(`sparkq.yml: ${w}`);
  return config;
}

