import { isProcessAlive } from '../owner/lock';
import { readOwnerRecord } from '../owner/record';
import { sparkqDirOf } from '../owner/workspace';
import { writeSparkqLauncher } from '../worker/launcher';
import * as crypto from 'node:crypto';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { errorMessage, isSparkqError } from '../core/errors';
import type { Queue } from '../core/model';
import { UserFacingError } from './errors';
import { Disposable } from './lifecycle';
import type { Log } from './log';
import type { QueueConnection } from './queueConnection';
import { terminalDatabaseEnv } from './teamDatabase';
import { ALLOW_BYPASS_SETTING, workerShellArgs, workerTerminalEnv } from './workerCommand';
import { plural } from '../core/text';

/** A worker terminal this window opened: which queue it works and the worker name it runs under. */
export interface WorkerRecord {
  queueId: string;
  queueName: string;
  worker: string;
  /** The worker process (the terminal's process), once known. */
  pid?: number;
  /** 1 for the queue's first terminal ("SparkQ: Back End"), 2 for "SparkQ: Back End #2", … */
  terminalIndex?: number;
}

export function terminalName(queueName: string, index: number): string {
  return index <= 1 ? `SparkQ: ${queueName}` : `SparkQ: ${queueName} #${index}`;
}

const RECORDS_KEY = 'sparkq.workers';
/** After a worker terminal closes, the worker gets this long to fail its own task before the window does it. */
const CLOSE_GRACE_MS = 2_000;

/** How to run the bundled CLI with the editor's own runtime, so nobody needs a Node of their own. */
export interface CliRuntime {
  /** The executable: VS Code's (Electron in Node mode) on desktop, the server's Node in a remote or web host. */
  execPath: string;
  /** Environment that makes execPath behave as Node. */
  env: Record<string, string>;
  cliPath: string;
}

export function cliRuntime(extensionPath: string): CliRuntime {
  const isElectron = typeof process.versions['electron'] === 'string';
  return {
    execPath: process.execPath,
    env: isElectron ? { ELECTRON_RUN_AS_NODE: '1' } : {},
    cliPath: path.join(extensionPath, 'dist', 'cli.js'),
  };
}

/**
 * Worker terminals: transient integrated terminals whose process is `sparkq run --queue … --watch`, usually one per
 * queue, up to the queue's maxWorkers with `SparkQ: Start Workers`. Closing a terminal ends its worker; if its task is
 * still running a moment later, the window fails it with the reason and frees the worker's place on the queue.
 * Workers recorded by a previous window (before a reload) are reconciled on start: their tasks are failed the same way.
 */
export class WorkerTerminals extends Disposable {
  /** By worker name: a queue may have several. */
  private readonly byWorker = new Map<string, { terminal: vscode.Terminal; record: WorkerRecord }>();
  private readonly emitter = this._register(new vscode.EventEmitter<void>());
  readonly onDidChange = this.emitter.event;

  constructor(
    private readonly connection: QueueConnection,
    readonly runtime: CliRuntime,
    private readonly binDir: string,
    private readonly state: vscode.Memento,
    private readonly log: Log,
  ) {
    super();
    this._register(vscode.window.onDidCloseTerminal((t) => void this.onClosed(t)));
  }

  has(queueId: string): boolean {
    return this.countOf(queueId) > 0;
  }

  /** How many worker terminals of this window work the queue. */
  countOf(queueId: string): number {
    return this.ofQueue(queueId).length;
  }

  list(): { record: WorkerRecord; terminal: vscode.Terminal }[] {
    return [...this.byWorker.values()].map((w) => ({ record: { ...w.record }, terminal: w.terminal }));
  }

  terminalOf(queueId: string): vscode.Terminal | undefined {
    return this.ofQueue(queueId)[0]?.terminal;
  }

  private ofQueue(queueId: string): { terminal: vscode.Terminal; record: WorkerRecord }[] {
    return [...this.byWorker.values()].filter((w) => w.record.queueId === queueId);
  }

  /** The environment of a SparkQ terminal (see workerTerminalEnv). */
  terminalEnv(workspaceDir: string, worker: string): Record<string, string> {
    // `sparkq` first on PATH, so whoever sits in the terminal can run `sparkq complete …`.
    writeSparkqLauncher(this.binDir, [this.runtime.execPath, this.runtime.cliPath], this.runtime.env);
    const team = this.connection.teamDatabase;
    // Embedded store: the owner's socket and token, so the worker connects straight to it (it falls back to owner.json
    // if it moved). Team mode has no owner: an owner.json left from the embedded days must not be offered.
    const owner = team === null ? readOwnerRecord(sparkqDirOf(workspaceDir)) : null;
    return workerTerminalEnv({
      runtimeEnv: this.runtime.env,
      binDir: this.binDir,
      path: process.env['PATH'] ?? '',
      pathDelimiter: path.delimiter,
      workspaceDir,
      worker,
      owner: owner ? { socketPath: owner.socketPath, token: owner.token } : null,
      database: terminalDatabaseEnv(team),
    });
  }

  /** Opens (or shows) the worker terminal of `queue`. */
  async start(queue: Queue, workspaceDir: string): Promise<{ terminal: vscode.Terminal; record: WorkerRecord; reused: boolean }> {
    const existing = this.ofQueue(queue.id)[0];
    if (existing) {
      existing.terminal.show(true);
      return { ...existing, reused: true };
    }
    return { ...(await this.open(queue, workspaceDir, 1)), reused: false };
  }

  /**
   * Makes `count` worker terminals of this window work the queue: opens the missing ones (each with its own worker
   * name) and keeps those already open. Refuses a count beyond the queue's maxWorkers, which the owner would refuse.
   */
  async startMany(queue: Queue, workspaceDir: string, count: number): Promise<{ opened: WorkerRecord[]; kept: WorkerRecord[] }> {
    if (count > queue.maxWorkers) {
      throw new UserFacingError(
        `Queue "${queue.name}" takes at most ${queue.maxWorkers} worker${queue.maxWorkers === 1 ? '' : 's'} (maxWorkers), so ${count} cannot start. Ask for at most ${queue.maxWorkers}, or create the queue with a higher maxWorkers.`,
      );
    }
    const kept = this.ofQueue(queue.id).map((w) => ({ ...w.record }));
    const opened: WorkerRecord[] = [];
    const taken = new Set(kept.map((r) => r.terminalIndex ?? 1));
    for (let index = 1; kept.length + opened.length < count; index++) {
      if (taken.has(index)) continue;
      opened.push({ ...(await this.open(queue, workspaceDir, index)).record });
    }
    this.ofQueue(queue.id)[0]?.terminal.show(true);
    return { opened, kept };
  }

  private async open(queue: Queue, workspaceDir: string, index: number): Promise<{ terminal: vscode.Terminal; record: WorkerRecord }> {
    const worker = `vscode-${crypto.randomBytes(3).toString('hex')}`;
    const record: WorkerRecord = { queueId: queue.id, queueName: queue.name, worker, terminalIndex: index };
    const shellArgs = workerShellArgs({
      cliPath: this.runtime.cliPath,
      queueId: queue.id,
      worker,
      allowBypass: vscode.workspace.getConfiguration().get<boolean>(ALLOW_BYPASS_SETTING, false) === true,
      trusted: vscode.workspace.isTrusted,
    });
    const terminal = vscode.window.createTerminal({
      name: terminalName(queue.name, index),
      shellPath: this.runtime.execPath,
      shellArgs,
      cwd: workspaceDir,
      env: this.terminalEnv(workspaceDir, worker),
      isTransient: true,
      iconPath: new vscode.ThemeIcon('server-process'),
    });
    this.byWorker.set(worker, { terminal, record });
    terminal.show(true);
    this.emitter.fire();
    try {
      const pid = await Promise.race([terminal.processId, new Promise<undefined>((r) => setTimeout(() => r(undefined), 5_000))]);
      if (pid !== undefined) record.pid = pid;
    } catch {
      // the pid is only used to reconcile after a reload
    }
    await this.saveRecords();
    const bypass = shellArgs.includes('--allow-bypass') ? `; agent bypass modes allowed by ${ALLOW_BYPASS_SETTING}` : '';
    this.log.info(`worker ${worker} started on queue ${queue.name} (pid ${record.pid ?? '?'})${bypass}`);
    return { terminal, record };
  }

  /** Closes the worker terminals of the queue; resolves once their running tasks (if any) are settled. */
  async stop(queueId: string): Promise<boolean> {
    const workers = this.ofQueue(queueId);
    if (workers.length === 0) return false;
    await Promise.all(
      workers.map(async (w) => {
        const closed = new Promise<void>((resolve) => {
          const sub = vscode.window.onDidCloseTerminal((t) => {
            if (t === w.terminal) {
              sub.dispose();
              resolve();
            }
          });
        });
        w.terminal.dispose();
        await closed;
        await this.settle(w.record, `the worker terminal "${w.terminal.name}" was closed`);
      }),
    );
    return true;
  }

  private async onClosed(terminal: vscode.Terminal): Promise<void> {
    const w = [...this.byWorker.values()].find((x) => x.terminal === terminal);
    if (!w) return;
    this.byWorker.delete(w.record.worker);
    this.emitter.fire();
    await this.saveRecords();
    const code = terminal.exitStatus?.code;
    this.log.info(`worker ${w.record.worker} on ${w.record.queueName} ended (${code === undefined ? 'terminal closed' : `exit ${code}`})`);
    await new Promise((r) => setTimeout(r, CLOSE_GRACE_MS));
    await this.settle(w.record, `the worker terminal "${terminal.name}" was closed`);
  }

  /** Fails what the worker left running and frees its place on the queue. Idempotent. */
  private async settle(record: WorkerRecord, reason: string): Promise<number> {
    if (this.connection.isReadOnly) return 0;
    let failed = 0;
    try {
      const api = await this.connection.api('settle a closed worker');
      const { tasks } = await api.listTasks({ queue: record.queueId, status: 'running', limit: 1000 });
      for (const t of tasks.filter((t) => t.worker === record.worker)) {
        try {
          await api.fail({ task: t.id, error: `interrupted: ${reason} while the task was running` });
          failed++;
          this.log.info(`failed ${t.id}: ${reason}`);
        } catch (e) {
          // The worker may have failed it itself in the meantime: that is the outcome we wanted.
          if (!isSparkqError(e, 'conflict') && !isSparkqError(e, 'lease-mismatch')) this.log.warn(`could not fail ${t.id}: ${errorMessage(e)}`);
        }
      }
      await api.leaveQueue({ queue: record.queueId, worker: record.worker }).catch(() => undefined);
    } catch (e) {
      this.log.warn(`could not settle worker ${record.worker}: ${errorMessage(e)}`);
    }
    return failed;
  }

  /** After a window reload: workers the last window recorded no longer have a terminal; settle what they left. */
  async reconcile(): Promise<void> {
    const recorded = this.state.get<WorkerRecord[]>(RECORDS_KEY, []);
    if (recorded.length === 0) return;
    for (const r of recorded) {
      if (this.byWorker.has(r.worker)) continue;
      if (r.pid !== undefined && isProcessAlive(r.pid, null)) {
        // A worker without its terminal: stop it the way Ctrl+C would, so it fails its own task as interrupted.
        try {
          process.kill(r.pid, 'SIGTERM');
        } catch {
          // gone meanwhile
        }
      }
      const n = await this.settle(r, 'the window was reloaded');
      this.log.info(`reconciled worker ${r.worker} on ${r.queueName} from before the reload${n > 0 ? `: failed ${plural(n, 'task')} it left running` : ''}`);
    }
    await this.saveRecords();
  }

  private async saveRecords(): Promise<void> {
    await this.state.update(
      RECORDS_KEY,
      [...this.byWorker.values()].map((w) => w.record),
    );
  }

  override dispose(): void {
    for (const w of this.byWorker.values()) w.terminal.dispose();
    this.byWorker.clear();
    super.dispose();
  }
}
