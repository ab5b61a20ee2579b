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
import { type DatabaseUrlSource, type TeamDatabase, type TeamDatabaseSecrets, describeDatabase, openEnv, resolveTeamDatabase, scrubSecrets, teamConfigOf } from './teamDatabase';
import { isSetUp, pickQueueFolder } from './workspaceFolder';

/**
 * `needs-database`: sparkq.yml says the queue is a team database, and no URL is named for it (environment, saved,
 * sparkq.yml): `SparkQ: Connect to Team Database` is the way on. In team mode a connected window is a `client`.
 */
export type ConnectionKind = 'no-folder' | 'not-set-up' | 'connecting' | 'owner' | 'client' | 'read-only' | 'needs-database' | 'failed';

export interface ConnectionState {
  kind: ConnectionKind;
  /** The workspace folder whose queue this is (absent with no folder open). */
  folder?: string;
  /** Why the queue could not be opened (kind 'failed'). */
  problem?: string;
  /**
   * Set when the folder's queue is a team database (sparkq.yml: store.kind postgres): which one, as `host/database`
   * (no user, no password; absent while none is named), and where its URL came from.
   */
  team?: { database?: string; source?: DatabaseUrlSource };
}

/**
 * The window's link to the workspace queue, and the second lifetime of disposables: everything that belongs to one
 * connection (the handle, its subscriptions, Restricted Mode's file watcher) lives in `scope` and goes when the
 * connection is replaced — on a change of trust, after `SparkQ: Set up`, or on a retry — while the views stay.
 *
 * Trusted: the host owns the queue (and serves other processes) or is a client of the owner that is already running;
 * in team mode (sparkq.yml: store.kind postgres) it is a client of the team database, like every process on every
 * machine, with the URL from SPARKQ_DATABASE_URL, else the one saved for the folder in SecretStorage, else sparkq.yml.
 * Restricted Mode: a read-only copy, no lock, no socket, nothing run; a team database is not connected at all.
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
  /** The team database this window is connected to (trusted team mode), with the URL: for worker terminals. */
  private team: TeamDatabase | null = null;
  /** The team database URL of the connection being opened, to keep it out of the messages of its failure. */
  private attemptUrl: string | null = null;
  /** The saved URL of a folder as this window last read or wrote it (see onSavedUrlChanged). */
  private knownSecret: { folder: string; value: string | undefined } | null = null;

  constructor(
    private readonly log: Log,
    private readonly isTrusted: () => boolean,
    private readonly secrets: TeamDatabaseSecrets,
    private readonly env: NodeJS.ProcessEnv = process.env,
  ) {
    super();
  }

  /** The team database in use, URL included (worker terminals need it); null outside connected team mode. */
  get teamDatabase(): TeamDatabase | null {
    return this.team ? { ...this.team } : null;
  }

  /**
   * Keeps `url` for the folder in SecretStorage and connects with it. Resolves once the new connection attempt has
   * ended (see `state` for its outcome).
   */
  async saveTeamDatabase(folder: string, url: string): Promise<void> {
    // The secret storage announces this write too: noted first, so that the announcement does not connect again.
    this.knownSecret = { folder, value: url.trim() };
    await this.secrets.save(folder, url);
    this.log.info(`saved a team database URL for ${folder} in VS Code's secret storage: ${describeDatabase(url)}`);
    await this.restart();
  }

  /** Forgets the folder's saved URL; reconnects when it was in use. Says whether one was saved. */
  async forgetTeamDatabase(folder: string): Promise<boolean> {
    this.knownSecret = { folder, value: undefined };
    const had = await this.secrets.forget(folder);
    this.log.info(had ? `forgot the saved team database URL of ${folder}` : `no team database URL was saved for ${folder}`);
    if (had && folder === this.current.folder) await this.restart();
    return had;
  }

  /**
   * The saved URL changed: by this window (already acted on) or by another window of the same user, which shares the
   * secret storage. Reconnects when the value is new to this window and the folder's queue is a team database.
   */
  async onSavedUrlChanged(key: string): Promise<void> {
    const folder = this.current.folder;
    if (folder === undefined || key !== this.secrets.keyOf(folder)) return;
    const saved = await this.secrets.get(folder).catch(() => undefined);
    if (this.knownSecret?.folder === folder && this.knownSecret.value === saved) return;
    this.knownSecret = { folder, value: saved };
    if (this.current.team === undefined) return;
    this.log.info('the saved team database URL was changed in another window: reconnecting');
    await this.restart();
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
      case 'needs-database':
        return new UserFacingError(
          `This folder's queue is a team database (sparkq.yml: store.kind postgres) and SparkQ does not know its URL yet, so it cannot ${action}. Run "SparkQ: Connect to Team Database", or set SPARKQ_DATABASE_URL.`,
          [{ title: 'Connect to Team Database', command: 'sparkq.connectTeamDatabase' }],
        );
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
    if (state.kind !== 'client') this.team = null;
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
      // A team database's URL may carry a password, and a driver's message may quote the URL.
      const problem = this.attemptUrl ? scrubSecrets(errorMessage(e), this.attemptUrl) : errorMessage(e);
      this.log.error(`cannot open the queue in ${folder}: ${problem}`);
      this.setState({ kind: 'failed', folder, problem, ...(this.attemptUrl ? { team: { database: describeDatabase(this.attemptUrl) } } : {}) });
    } finally {
      this.attemptUrl = null;
    }
  }

  private async openLive(folder: string): Promise<void> {
    const teamConfig = teamConfigOf(folder);
    let team: TeamDatabase | null = null;
    if (teamConfig) {
      team = resolveTeamDatabase(this.env, await this.savedUrl(folder), teamConfig.url);
      if (!team) {
        this.log.info(`${folder}: sparkq.yml says the queue is a team database (store.kind: postgres), and no URL names it: waiting for "Connect to Team Database"`);
        return this.setState({ kind: 'needs-database', folder, team: {} });
      }
    }
    this.attemptUrl = team?.url ?? null;
    const teamState = team ? { team: { database: describeDatabase(team.url), source: team.source } } : {};
    const ownerLog = this.log.area(team ? 'Team' : 'Owner');
    let handle: QueueHandle;
    try {
      handle = await openQueue(folder, { role: 'extension', client: `vscode-${process.pid}`, log: (line) => ownerLog.info(line), env: openEnv(this.env, team) });
    } catch (e) {
      if (!team) throw e;
      // The driver's message may quote the URL: only its redacted form goes on, with where it came from.
      const problem = `${scrubSecrets(errorMessage(e), team.url)} (${describeSource(team.source)})`;
      this.log.error(`cannot open the team queue of ${folder} at ${describeDatabase(team.url)}: ${problem}`);
      return this.setState({ kind: 'failed', folder, problem, ...teamState });
    }
    if (this.isDisposed) {
      await handle.close();
      return;
    }
    this.handle = handle;
    const unsubscribe = handle.onChange((events) => this.changeEmitter.fire(events));
    this.scope.add(toDisposable(unsubscribe));
    const offReconnect = handle.onReconnect(() => {
      this.log.info(team ? `the team database connection came back: re-reading the queue` : `the queue owner changed: now ${describeOwner(handle)}`);
      this.setState({ kind: handle.isOwner ? 'owner' : 'client', folder, ...teamState });
    });
    this.scope.add(toDisposable(offReconnect));
    // This window's sparkq.yml (tools, script dirs) follows edits: the owner does it for the embedded store.
    if (team) watchTeamConfig(handle, (line) => ownerLog.info(line));
    // The subscription travels on the connection: one call makes sure it is in place before anyone relies on it.
    await handle.status();
    this.log.info(`queue open in ${folder}: ${team ? `client of the team database ${describeDatabase(team.url)} (${describeSource(team.source)})` : describeOwner(handle)}`);
    // Before the state is announced: its listeners (worker terminals) may ask for the database in use.
    this.team = team;
    this.setState({ kind: handle.isOwner ? 'owner' : 'client', folder, ...teamState });
  }

  /** The URL saved for the folder; a secret storage that cannot be read counts as none, said in the log. */
  private async savedUrl(folder: string): Promise<string | undefined> {
    try {
      const value = await this.secrets.get(folder);
      this.knownSecret = { folder, value };
      return value;
    } catch (e) {
      this.log.warn(errorMessage(e));
      return undefined;
    }
  }

  private async openReadOnly(folder: string): Promise<void> {
    const teamConfig = safeTeamConfig(folder);
    if (teamConfig) {
      // A team database is not connected in Restricted Mode (sparkq.yml could name any server): nothing to show.
      const named = resolveTeamDatabase(this.env, await this.savedUrl(folder), teamConfig.url);
      this.readOnly = ReadOnlyQueue.empty(path.basename(folder), 'none (Restricted Mode: the team database is not connected)');
      this.log.info(`Restricted Mode: the queue of ${folder} is a team database${named ? ` (${describeDatabase(named.url)})` : ''}; nothing connects until the workspace is trusted`);
      return this.setState({ kind: 'read-only', folder, team: named ? { database: describeDatabase(named.url), source: named.source } : {} });
    }
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
        this.log.info(handle.isOwner ? 'handed the queue over' : this.current.team ? 'disconnected from the team database' : 'disconnected from the queue owner');
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

function describeSource(source: DatabaseUrlSource): string {
  switch (source) {
    case 'environment':
      return 'URL from SPARKQ_DATABASE_URL in VS Code\'s environment';
    case 'saved':
      return 'URL saved with "SparkQ: Connect to Team Database"';
    case 'sparkq.yml':
      return 'URL from store.url in sparkq.yml';
  }
}

/** Team mode in Restricted Mode and on secret changes: a broken sparkq.yml is the live connection's business. */
function safeTeamConfig(folder: string): { url?: string } | null {
  try {
    return teamConfigOf(folder);
  } catch {
    return null;
  }
}

/** A team handle reloads this machine's sparkq.yml when asked to watch it (src/client/teamHandle.ts). */
function watchTeamConfig(handle: QueueHandle, log: (line: string) => void): void {
  const watchable = handle as QueueHandle & { watchConfig?: (log: (line: string) => void) => void };
  if (typeof watchable.watchConfig === 'function') watchable.watchConfig(log);
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
