import * as vscode from 'vscode';
import { errorMessage } from '../../core/errors';
import type { ListTasksInput, Task, TaskStatus } from '../../core/model';
import type { QueueConnection } from '../queueConnection';
import { Disposable } from '../lifecycle';
import { MessageNode, QueueNode, SessionNode, TaskNode, type TreeNode } from './nodes';
import type { ViewSelection } from './selection';

/** A flat SparkQ list: rows come from `roots()`, refreshed through one EventEmitter. */
abstract class ListProvider extends Disposable implements vscode.TreeDataProvider<TreeNode> {
  private readonly emitter = this._register(new vscode.EventEmitter<TreeNode | undefined>());
  readonly onDidChangeTreeData = this.emitter.event;

  constructor(protected readonly connection: QueueConnection) {
    super();
  }

  refresh(): void {
    this.emitter.fire(undefined);
  }

  getTreeItem(node: TreeNode): vscode.TreeItem {
    return node.getTreeItem();
  }

  getParent(node: TreeNode): TreeNode | undefined {
    return node.getParent();
  }

  async getChildren(node?: TreeNode): Promise<TreeNode[]> {
    if (node) return node.getChildren();
    await this.connection.whenReady();
    const state = this.connection.state;
    // Empty lists let the views' welcome content show (set up SparkQ, open a folder).
    if (state.kind === 'no-folder' || state.kind === 'not-set-up' || state.kind === 'connecting') return [];
    if (state.kind === 'failed') return [new MessageNode(`Cannot open the queue: ${state.problem ?? 'unknown problem'}`, 'error')];
    try {
      return await this.roots();
    } catch (e) {
      return [new MessageNode(`Cannot read the queue: ${errorMessage(e)}`, 'error')];
    }
  }

  protected abstract roots(): Promise<TreeNode[]>;
}

export class SessionsProvider extends ListProvider {
  protected async roots(): Promise<TreeNode[]> {
    const reader = await this.connection.reader();
    const sessions = await reader.listSessions({ includeEnded: true });
    // Active sessions first, newest first within each group.
    sessions.sort((a, b) => (a.status === b.status ? b.createdAt.localeCompare(a.createdAt) : a.status === 'active' ? -1 : 1));
    return sessions.map((s) => new SessionNode(s));
  }
}

export class QueuesProvider extends ListProvider {
  constructor(
    connection: QueueConnection,
    private readonly selection: ViewSelection,
    private readonly hasWorker: (queueId: string) => boolean,
  ) {
    super(connection);
  }

  protected async roots(): Promise<TreeNode[]> {
    const reader = await this.connection.reader();
    const session = this.selection.session;
    const queues = await reader.listQueues(session ? { session: session.id, includeEnded: true } : { includeEnded: false });
    return queues.map((q) => new QueueNode(q, this.hasWorker(q.id)));
  }
}

/** At most this many tasks are listed (newest first); narrow with the filters to see older ones. */
export const TASKS_SHOWN = 200;

export class TasksProvider extends ListProvider {
  constructor(
    connection: QueueConnection,
    private readonly selection: ViewSelection,
  ) {
    super(connection);
  }

  /** The tasks the view shows now, for badges and tests. */
  async currentTasks(): Promise<Task[]> {
    const reader = await this.connection.reader();
    const filter = this.selection.statusFilter;
    const input: ListTasksInput = { limit: TASKS_SHOWN };
    const queue = this.selection.queue;
    const session = this.selection.session;
    if (queue) input.queue = queue.id;
    else if (session) input.session = session.id;
    const statuses = filter.filter((f): f is TaskStatus => f !== 'stale');
    // "stale" alone means running-and-stale; with other statuses it adds stale running tasks to them.
    if (filter.includes('stale') && !statuses.includes('running')) statuses.push('running');
    if (statuses.length > 0) input.status = statuses;
    const { tasks } = await reader.listTasks(input);
    if (!filter.includes('stale') || filter.includes('running')) return tasks;
    return tasks.filter((t) => t.status !== 'running' || t.stale);
  }

  protected async roots(): Promise<TreeNode[]> {
    return (await this.currentTasks()).map((t) => new TaskNode(t));
  }
}
