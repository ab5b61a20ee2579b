import * as vscode from 'vscode';
import { Disposable } from '../lifecycle';
import type { Log } from '../log';
import type { ConnectionState, QueueConnection } from '../queueConnection';
import { QueueNode, SessionNode, type TreeNode } from './nodes';
import { QueuesProvider, SessionsProvider, TasksProvider } from './providers';
import { ViewSelection } from './selection';

export const ViewId = {
  Container: 'sparkq',
  Sessions: 'sparkq.sessions',
  Queues: 'sparkq.queues',
  Tasks: 'sparkq.tasks',
} as const;

export interface WorkerPresence {
  has(queueId: string): boolean;
  readonly onDidChange: vscode.Event<void>;
}

/** How long change events are gathered before the views re-read the queue (a burst of enqueues is one refresh). */
const REFRESH_DEBOUNCE_MS = 150;
/** While something runs, descriptions ("running 1m 4s") are refreshed this often. */
const TICK_MS = 15_000;

/**
 * The Sessions, Queues and Tasks views: selection in one filters the next, a status filter on Tasks, badges with
 * the running and stale counts, and live refresh from the queue's change events.
 */
export class SparkqTreeViews extends Disposable {
  readonly selection = this._register(new ViewSelection());
  readonly sessions: SessionsProvider;
  readonly queues: QueuesProvider;
  readonly tasks: TasksProvider;
  readonly tasksView: vscode.TreeView<TreeNode>;
  readonly queuesView: vscode.TreeView<TreeNode>;
  readonly sessionsView: vscode.TreeView<TreeNode>;
  private refreshTimer: NodeJS.Timeout | undefined;
  private lastRefresh: Promise<void> = Promise.resolve();

  constructor(
    private readonly connection: QueueConnection,
    workers: WorkerPresence,
    private readonly log: Log,
  ) {
    super();
    this.sessions = this._register(new SessionsProvider(connection));
    this.queues = this._register(new QueuesProvider(connection, this.selection, (id) => workers.has(id)));
    this.tasks = this._register(new TasksProvider(connection, this.selection));
    this.sessionsView = this._register(vscode.window.createTreeView(ViewId.Sessions, { treeDataProvider: this.sessions }));
    this.queuesView = this._register(vscode.window.createTreeView(ViewId.Queues, { treeDataProvider: this.queues }));
    this.tasksView = this._register(vscode.window.createTreeView(ViewId.Tasks, { treeDataProvider: this.tasks }));

    this._register(
      this.sessionsView.onDidChangeSelection((e) => {
        const node = e.selection[0];
        this.selection.selectSession(node instanceof SessionNode ? node.session : null);
      }),
    );
    this._register(
      this.queuesView.onDidChangeSelection((e) => {
        const node = e.selection[0];
        this.selection.selectQueue(node instanceof QueueNode ? node.queue : null);
      }),
    );
    this._register(
      this.selection.onDidChange(() => {
        this.queues.refresh();
        this.tasks.refresh();
        this.queuesView.description = this.selection.session?.name ?? '';
        this.tasksView.description = this.selection.describeTaskFilter() ?? '';
        void vscode.commands.executeCommand('setContext', 'sparkq.tasksFiltered', this.selection.statusFilter.length > 0);
      }),
    );
    this._register(connection.onDidChange(() => this.scheduleRefresh()));
    this._register(
      connection.onDidChangeState(() => {
        this.sessionsView.message = teamMessage(connection.state) ?? '';
        this.scheduleRefresh();
      }),
    );
    this.sessionsView.message = teamMessage(connection.state) ?? '';
    this._register(workers.onDidChange(() => this.queues.refresh()));
    const tick = setInterval(() => {
      if (this.tasksView.visible) this.tasks.refresh();
    }, TICK_MS);
    this._register({ dispose: () => clearInterval(tick) });
    this._register({ dispose: () => clearTimeout(this.refreshTimer) });
    this.scheduleRefresh();
  }

  /** Re-reads every view now (the `SparkQ: Refresh` command); resolves when the badges are up to date. */
  refreshNow(): Promise<void> {
    clearTimeout(this.refreshTimer);
    this.refreshTimer = undefined;
    this.sessions.refresh();
    this.queues.refresh();
    this.tasks.refresh();
    this.lastRefresh = this.updateBadges();
    return this.lastRefresh;
  }

  /** Resolves after pending change events have been applied to the views (for tests and commands that wait). */
  async settled(): Promise<void> {
    while (this.refreshTimer !== undefined) await new Promise((r) => setTimeout(r, REFRESH_DEBOUNCE_MS));
    await this.lastRefresh;
  }

  private scheduleRefresh(): void {
    if (this.refreshTimer !== undefined) return;
    this.refreshTimer = setTimeout(() => {
      this.refreshTimer = undefined;
      void this.refreshNow();
    }, REFRESH_DEBOUNCE_MS);
  }

  private async updateBadges(): Promise<void> {
    const state = this.connection.state;
    const hasQueue = state.kind === 'owner' || state.kind === 'client' || state.kind === 'read-only';
    if (!hasQueue) {
      this.tasksView.badge = undefined;
      this.queuesView.badge = undefined;
      await vscode.commands.executeCommand('setContext', 'sparkq.hasTasks', false);
      return;
    }
    try {
      const reader = await this.connection.reader();
      const { counts } = await reader.status();
      const running = counts.running;
      const stale = counts.stale;
      this.tasksView.badge =
        running > 0 ? { value: running, tooltip: `${running} running${stale > 0 ? `, ${stale} stale` : ''}, ${counts.queued} queued` } : undefined;
      this.queuesView.badge = stale > 0 ? { value: stale, tooltip: `${stale} stale task${stale === 1 ? '' : 's'} (past their timeout)` } : undefined;
      const total = counts.queued + counts.running + counts.succeeded + counts.failed;
      await vscode.commands.executeCommand('setContext', 'sparkq.hasTasks', total > 0);
    } catch (e) {
      this.log.warn(`badges not updated: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
}

/** What the Sessions view says above its rows about a team database that is not connected (else nothing). */
export function teamMessage(state: ConnectionState): string | undefined {
  if (!state.team) return undefined;
  if (state.kind === 'needs-database') return 'This folder\'s queue is a team database (PostgreSQL). Run "SparkQ: Connect to Team Database" (the plug in the status bar) to connect.';
  if (state.kind === 'read-only') return `Restricted Mode: this folder's queue is a team database${state.team.database ? ` (${state.team.database})` : ''}; SparkQ connects once you trust the workspace.`;
  return undefined;
}
