import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { openQueue, type QueueHandle } from '../client/open';
import { errorMessage } from '../core/errors';
import type { ChangeEvent } from '../api/contract';
import type { QueueApi } from '../api/contract';
import { configFileOf } from '../owner/workspace';
import { UserFacingError } from './errors';
import { Disposable, DisposableStore, toDisposable } from './lifecycle';
import type { Log } from './log';
import type { QueueReader } from './queueReader';
import { ReadOnlyQueue } from './readOnlyQueue';
import { isSetUp, pickQueueFolder } from './workspaceFolder';

export type ConnectionKind = 'no-folder' | 'not-set-up' | 'connecting' | 'owner' | 'client' | 'read-only' | 'failed';

export interface ConnectionState {
  kind: ConnectionKind;
  /** The workspace folder whose queue this is (absent with no folder open). */
  folder?: string;
  /** Why the queue could not be opened (kind 'failed'). */
  problem?: string;
}

/**
 * The window's link to the workspace queue, and the second lifetime of disposables: everything that belongs to one
 * connection (the handle, its subscriptions, Restricted Mode's file watcher) lives in `scope` and goes when the
 * connection is replaced — on a change of trust, after `SparkQ: Set up`, or on a retry — while the views stay.
 *
 * Trusted: the host owns the queue (and serves other processes) or is a client of the owner that is already running.
 * Restricted Mode: a read-only copy, no lock, no socket, nothing run.
 */
export class QueueConnection extends Disposable {
  private readonly changeEmitter = this._register(new vscode.EventEmitter<ChangeEvent[]>());
  private readonly stateEmitter = this._register(new vscode.EventEmitter<ConnectionState>());
  /** Queue data changed; an empty list means "anything may have changed: re-read everything". */
  readonly onDidChange = this.changeEmitter.event;
  readonly onDidChangeState = this.stateEmitter.event;

  private readonly scope = this._register(new DisposableStore());
  private current: ConnectionState = { kind: 'connecting' };
  private handle: QueueHandle | null = null;
  private readOnly: ReadOnlyQueue | null = null;
  private starting: Promise<void> | null = null;

  constructor(
    private readonly log: Log,
    private readonly isTrusted: () => boolean,
  ) {
    super();
  }

  get state(): ConnectionState {
    return { ...this.current };
  }

  get workspaceDir(): string | undefined {
    return this.current.folder;
  }

  get isReadOnly(): boolean {
    return this.current.kind === 'read-only';
  }

  /** The live handle (trusted windows only), e.g. for the owner's reloadConfig. */
  get queueHandle(): QueueHandle | null {
    return this.handle;
  }

  /** Resolves once the current (re)connection attempt has finished, whatever its outcome. */
  whenReady(): Promise<void> {
    return this.starting ?? Promise.resolve();
  }

  /** (Re)opens the queue for the current folder and trust. Safe to call again: the old connection is closed first. */
  restart(): Promise<void> {
    const run = (async () => {
      await this.stopCurrent();
      await this.open();
    })();
    this.starting = run.finally(() => {
      if (this.starting === guarded) this.starting = null;
    });
    const guarded = this.starting;
    return guarded;
  }

  /** The reading side, in every mode that has a queue; throws a message that says what to do otherwise. */
  async reader(): Promise<QueueReader> {
    await this.whenReady();
    if (this.handle) return this.handle;
    if (this.readOnly) return this.readOnly;
    throw this.unavailableError('read the queue');
  }

  /** The full queue, for anything that changes it; refuses in Restricted Mode with the way out. */
  async api(action: string): Promise<QueueApi> {
    await this.whenReady();
    if (!this.isTrusted()) throw restrictedError(action);
    if (this.handle) return this.handle;
    throw this.unavailableError(action);
  }

  private unavailableError(action: string): UserFacingError {
    switch (this.current.kind) {
      case 'no-folder':
        return new UserFacingError(`Open a folder first: SparkQ keeps its queue in a workspace folder, so it cannot ${action} without one.`, [
          { title: 'Open Folder', command: 'vscode.openFolder' },
        ]);
      case 'not-set-up':
        return new UserFacingError(`SparkQ is not set up in this folder yet, so it cannot ${action}. Run "SparkQ: Set up SparkQ" first.`, [
          { title: 'Set up SparkQ', command: 'sparkq.setup' },
        ]);
      case 'read-only':
        return restrictedError(action);
      default:
        return new UserFacingError(
          `SparkQ cannot ${action}: the queue is not open (${this.current.problem ?? this.current.kind}). Fix the cause, then run "SparkQ: Refresh".`,
          [
            { title: 'Refresh', command: 'sparkq.refresh' },
            { title: 'Show Log', command: 'sparkq.showLog' },
          ],
        );
    }
  }

  private setState(state: ConnectionState): void {
    this.current = state;
    this.stateEmitter.fire({ ...state });
    this.changeEmitter.fire([]);
  }

  private async open(): Promise<void> {
    const picked = pickQueueFolder();
    if (!picked) return this.setState({ kind: 'no-folder' });
    const folder = picked.dir;
    if (!picked.isSetUp) {
      this.log.info(`no sparkq.yml or .sparkq/ in ${folder}: waiting for "Set up SparkQ"`);
      this.watchForSetup(folder);
      return this.setState({ kind: 'not-set-up', folder });
    }
    this.setState({ kind: 'connecting', folder });
    try {
      if (this.isTrusted()) await this.openLive(folder);
      else await this.openReadOnly(folder);
    } catch (e) {
      this.log.error(`cannot open the queue in ${folder}`, e);
      this.setState({ kind: 'failed', folder, problem: errorMessage(e) });
    }
  }

  private async openLive(folder: string): Promise<void> {
    const ownerLog = this.log.area('Owner');
    const handle = await openQueue(folder, { role: 'extension', client: `vscode-${process.pid}`, log: (line) => ownerLog.info(line) });
    if (this.isDisposed) {
      await handle.close();
      return;
    }
    this.handle = handle;
    const unsubscribe = handle.onChange((events) => this.changeEmitter.fire(events));
    this.scope.add(toDisposable(unsubscribe));
    const offReconnect = handle.onReconnect(() => {
      this.log.info(`the queue owner changed: now ${describeOwner(handle)}`);
      this.setState({ kind: handle.isOwner ? 'owner' : 'client', folder });
    });
    this.scope.add(toDisposable(offReconnect));
    // The subscription travels on the connection: one call makes sure it is in place before anyone relies on it.
    await handle.status();
    this.log.info(`queue open in ${folder}: ${describeOwner(handle)}`);
    this.setState({ kind: handle.isOwner ? 'owner' : 'client', folder });
  }

  private async openReadOnly(folder: string): Promise<void> {
    this.readOnly = await ReadOnlyQueue.open(folder);
    this.log.info(`Restricted Mode: showing a read-only copy of the queue in ${folder}; no owner, no socket, no workers`);
    const watcher = vscode.workspace.createFileSystemWatcher(new vscode.RelativePattern(vscode.Uri.file(folder), '.sparkq/db/**'));
    let timer: NodeJS.Timeout | undefined;
    const reload = () => {
      clearTimeout(timer);
      timer = setTimeout(() => void this.reloadReadOnly(folder), 500);
    };
    this.scope.add(watcher.onDidChange(reload));
    this.scope.add(watcher.onDidCreate(reload));
    this.scope.add(watcher);
    this.scope.add(toDisposable(() => clearTimeout(timer)));
    this.setState({ kind: 'read-only', folder });
  }

  private async reloadReadOnly(folder: string): Promise<void> {
    if (this.current.kind !== 'read-only') return;
    try {
      const next = await ReadOnlyQueue.open(folder);
      const old = this.readOnly;
      this.readOnly = next;
      await old?.close();
      this.changeEmitter.fire([]);
    } catch (e) {
      this.log.warn(`Restricted Mode: could not re-read the queue copy: ${errorMessage(e)}`);
    }
  }

  /** Before setup, the first sparkq.yml (from the wizard, `sparkq init` or by hand) opens the queue. */
  private watchForSetup(folder: string): void {
    const watcher = vscode.workspace.createFileSystemWatcher(new vscode.RelativePattern(vscode.Uri.file(folder), '{sparkq.yml,.sparkq}'));
    const check = () => {
      if (isSetUp(folder) && this.current.kind === 'not-set-up') void this.restart();
    };
    this.scope.add(watcher.onDidCreate(check));
    this.scope.add(watcher);
  }

  private async stopCurrent(): Promise<void> {
    this.scope.clear();
    const handle = this.handle;
    const readOnly = this.readOnly;
    this.handle = null;
    this.readOnly = null;
    if (handle) {
      try {
        await handle.close();
        this.log.info(handle.isOwner ? 'handed the queue over' : 'disconnected from the queue owner');
      } catch (e) {
        this.log.warn(`closing the queue failed: ${errorMessage(e)}`);
      }
    }
    await readOnly?.close().catch(() => undefined);
  }

  /** Hands ownership over (or disconnects) and forgets the queue. For deactivate: awaits the hand-over. */
  async close(): Promise<void> {
    await this.starting?.catch(() => undefined);
    await this.stopCurrent();
    this.dispose();
  }
}

function describeOwner(handle: QueueHandle): string {
  if (handle.isOwner) return `this window owns it (socket ${handle.owner?.socketPath ?? 'none'})`;
  const o = handle.ownerInfo;
  return `client of process ${o.pid} (${o.role})`;
}

export function restrictedError(action: string): UserFacingError {
  return new UserFacingError(
    `SparkQ is read-only in Restricted Mode and cannot ${action}. Trust this workspace to run tasks, workers and the queue owner.`,
    [{ title: 'Manage Workspace Trust', command: 'workbench.trust.manage' }],
  );
}

/** Whether the folder's sparkq.yml exists (the "Set up SparkQ" welcome shows while it does not). */
export function hasConfigFile(folder: string | undefined): boolean {
  return folder !== undefined && fs.existsSync(configFileOf(folder));
}

export const CONFIG_BASENAME = path.basename(configFileOf('.'));
