import * as vscode from 'vscode';
import { errorMessage } from '../core/errors';
import type { Task } from '../core/model';
import type { ChangeEvent } from '../api/contract';
import { CommandId } from './commands/commandIds';
import { Disposable } from './lifecycle';
import type { Log } from './log';
import type { QueueConnection } from './queueConnection';
import { taskLabel } from './views/taskPresentation';
import { plural } from '../core/text';

export const NOTIFICATIONS_SETTING = 'sparkq.notifications.enabled';
/** More than this many in one burst are summed up in one message rather than shown one by one. */
const BURST = 3;

/** A message when a task fails or goes stale, with "Show" and "Requeue"; `sparkq.notifications.enabled` turns them off. */
export class TaskNotifications extends Disposable {
  private readonly seen = new Set<string>();
  /** What was shown, newest last (for tests). */
  readonly shown: { taskId: string; kind: 'failed' | 'stale'; message: string }[] = [];

  constructor(
    private readonly connection: QueueConnection,
    private readonly log: Log,
  ) {
    super();
    this._register(connection.onDidChange((events) => void this.onEvents(events)));
  }

  private enabled(): boolean {
    return vscode.workspace.getConfiguration().get<boolean>(NOTIFICATIONS_SETTING, true);
  }

  private async onEvents(events: ChangeEvent[]): Promise<void> {
    if (!this.enabled() || this.connection.isReadOnly) return;
    const candidates = events.filter((e): e is Extract<ChangeEvent, { kind: 'task' }> => e.kind === 'task' && (e.status === 'failed' || e.status === 'running'));
    if (candidates.length === 0) return;
    const found: { task: Task; kind: 'failed' | 'stale' }[] = [];
    try {
      const reader = await this.connection.reader();
      for (const e of candidates) {
        const task = await reader.getTask(e.id).catch(() => null);
        if (!task) continue;
        const kind = task.status === 'failed' ? 'failed' : task.status === 'running' && task.stale ? 'stale' : null;
        if (!kind || this.seen.has(`${kind}:${task.id}`)) continue;
        this.seen.add(`${kind}:${task.id}`);
        found.push({ task, kind });
      }
    } catch (e) {
      this.log.warn(`notifications: ${errorMessage(e)}`);
      return;
    }
    if (found.length > BURST) {
      const failed = found.filter((f) => f.kind === 'failed').length;
      const message = `SparkQ: ${plural(failed, 'task')} failed and ${found.length - failed} went stale.`;
      this.shown.push({ taskId: '*', kind: 'failed', message });
      void vscode.window.showWarningMessage(message, 'Show Tasks').then((c) => c && vscode.commands.executeCommand(CommandId.ShowTasks));
      return;
    }
    for (const f of found) this.notify(f.task, f.kind);
  }

  private notify(task: Task, kind: 'failed' | 'stale'): void {
    const what = `"${taskLabel(task)}" (${task.id}, ${task.queue})`;
    const message =
      kind === 'failed'
        ? `SparkQ: task ${what} failed: ${(task.error ?? 'no reason given').split('\n')[0] ?? ''}`
        : `SparkQ: task ${what} is stale: it has run past its ${task.timeoutSeconds} s timeout.`;
    this.shown.push({ taskId: task.id, kind, message });
    this.log.info(message);
    const actions = kind === 'failed' ? ['Show', 'Requeue'] : ['Show'];
    const show = kind === 'failed' ? vscode.window.showErrorMessage : vscode.window.showWarningMessage;
    void show(message, ...actions).then((choice) => {
      if (choice === 'Show') void vscode.commands.executeCommand(CommandId.ShowTask, { task: task.id });
      if (choice === 'Requeue') void vscode.commands.executeCommand(CommandId.Requeue, { task: task.id });
    });
  }
}
