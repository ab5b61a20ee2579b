import * as fs from 'node:fs';
import * as path from 'node:path';
import { type ApiMethod, type ChangeEvent, ForwardingQueue, type OwnerInfo, type QueueApi } from '../api/contract';
import { ensureSparkqDir, sparkqDirOf } from './workspace';
import { systemClock, type Clock } from '../core/clock';
import { resolveScriptDirs } from '../core/config';
import { SparkqError, errorMessage } from '../core/errors';
import { QueueService } from '../core/queue/service';
import { ScriptIndex } from '../core/scriptIndex';
import { writeFileAtomic } from '../core/store/fileio';
import type { Durability, SyncOn } from '../core/store/journal';
import { newIpcToken } from '../ipc/protocol';
import { socketPathFor } from '../ipc/socketPath';
import { ConfigWatcher, loadWorkspaceConfig } from './configWatcher';
import { Housekeeping } from './housekeeping';
import { IpcServer } from './ipcServer';
import type { OwnerLock } from './lock';
import { ownerDispatch } from './ownerApi';
import { OWNER_RECORD, type OwnerRecord, readOwnerRecord } from './record';
import { WorkerPlaces } from './workerPlaces';

// owner.json lives in its own module (record.ts), so that a client reads it without loading the owner's code.
export { OWNER_RECORD, type OwnerRecord, readOwnerRecord } from './record';
export const DB_DIR = 'db';

/** How an owner runs: what a process that may become the owner passes on (OpenOptions takes the same). */
export interface OwnerTuning {
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
}

export interface StartOwnerOptions extends OwnerTuning {
  workspaceDir: string;
  /** A lock this process just acquired; the owner releases it on close. */
  lock: OwnerLock;
  role: string;
  /** Serve other processes over IPC while owning. Default true. */
  serve?: boolean;
}

const LOG_MAX_BYTES = 1024 * 1024;
/** A graceful hand-over waits this long for requests that are running to be answered. */
const DRAIN_MS = 5_000;
/**
 * Below both, closing leaves the journal to be replayed at the next open (see StoreOptions.closeSnapshotMinRecords).
 * Every later open replays it until someone snapshots, so it stays short: the 906 records of a 300-task drain (claims,
 * outcomes with output) took 75 ms to replay here (about 80 µs each, at load 14), more than the snapshot they would
 * have saved. 100 records cost each later open a few milliseconds, and a run of one-change CLI commands snapshots
 * once in a hundred.
 */
const CLOSE_SNAPSHOT_MIN_RECORDS = 100;
const CLOSE_SNAPSHOT_MIN_BYTES = 64 * 1024;

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
 * processes reach it through, and its parts: housekeeping (timeouts, lost workers, purge), worker places and the
 * watch on sparkq.yml. Implements the same QueueApi as a remote client (the contract's methods, dispatched to the part
 * that holds each), so callers in the owning process use it directly.
 */
export class QueueOwner extends ForwardingQueue implements QueueApi {
  readonly info: OwnerInfo;
  private readonly scriptIndex: ScriptIndex;
  private readonly housekeeping: Housekeeping;
  private readonly config: ConfigWatcher;
  private readonly dispatch: (method: ApiMethod, params: readonly unknown[]) => Promise<unknown>;
  private server: IpcServer | null = null;
  private closing: Promise<void> | null = null;
  private lostListeners: (() => void)[] = [];
  private lost = false;

  private constructor(
    readonly workspaceDir: string,
    readonly service: QueueService,
    private readonly lock: OwnerLock,
    private readonly log: (line: string) => void,
    role: string,
    clock: Clock,
  ) {
    super();
    this.info = { pid: process.pid, generation: lock.generation, role, since: new Date().toISOString() };
    this.scriptIndex = new ScriptIndex(resolveScriptDirs(service.getConfig(), workspaceDir));
    this.housekeeping = new Housekeeping(service, clock, log, () => !this.closing && !this.lost);
    this.config = new ConfigWatcher(workspaceDir, log, (config) => {
      service.setConfig(config);
      this.scriptIndex.setDirs(resolveScriptDirs(config, workspaceDir));
    });
    this.dispatch = ownerDispatch({ info: this.info, service, housekeeping: this.housekeeping, places: new WorkerPlaces(), scriptIndex: this.scriptIndex });
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
        // An owner that leaves with a short journal leaves it to the next open to replay rather than snapshotting on
        // its way out: most owners are CLI commands that made a change or two.
        closeSnapshotMinRecords: CLOSE_SNAPSHOT_MIN_RECORDS,
        closeSnapshotMinBytes: CLOSE_SNAPSHOT_MIN_BYTES,
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
      await owner.housekeeping.round();
      if (opts.serve ?? true) await owner.listen(sparkqDir);
      owner.housekeeping.start(opts.sweepIntervalMs ?? 5_000);
      if (opts.watchConfig ?? true) owner.config.watch();
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
      handle: this.dispatch,
      subscribe: (cb) => this.service.onChange(cb),
      log: this.log,
    });
    const record: OwnerRecord = { version: 1, pid: process.pid, generation: this.lock.generation, role: this.info.role, socketPath, token, since: this.info.since };
    // Atomic (a reader sees the old record or this one) but not synced: it describes this live process, which a crash
    // of the machine ends too; a record lost with it reads as no owner, and the lock says who may take over.
    writeFileAtomic(path.join(sparkqDir, OWNER_RECORD), JSON.stringify(record, null, 2) + '\n', { mode: 0o600, durable: false });
    // Last: the lock names the socket only once the token to use it is on disk.
    this.lock.setSocketPath(socketPath);
  }

  protected forward(method: ApiMethod, params: unknown[]): Promise<unknown> {
    return this.dispatch(method, params);
  }

  onChange(listener: (events: ChangeEvent[]) => void): () => void {
    return this.service.onChange(listener);
  }

  /** See Housekeeping.reapLostWorkers. */
  reapLostWorkers(): ReturnType<Housekeeping['reapLostWorkers']> {
    return this.housekeeping.reapLostWorkers();
  }

  /** Re-reads sparkq.yml. A file with errors is logged and the config in force stays. Returns the problem, if any. */
  reloadConfig(): string | null {
    return this.closing ? null : this.config.reload();
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

  /**
   * Hands over: stops taking requests (those running are answered first), stops the timers, snapshots and closes the
   * store, removes owner.json and releases the lock, so the next process that needs the queue takes over at once.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.housekeeping.stop();
      this.config.stop();
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
