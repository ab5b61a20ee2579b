import * as vscode from 'vscode';
import { TASK_STATUSES, type Queue, type Session } from '../../core/model';
import { Disposable } from '../lifecycle';
import type { TaskLook } from './taskPresentation';

export const TASK_FILTERS: readonly TaskLook[] = [...TASK_STATUSES, 'stale'];

/**
 * What the views are narrowed to: selecting a session filters the queues view, selecting a queue filters the tasks
 * view, and the tasks view's status filter narrows it further. Empty = everything.
 */
export class ViewSelection extends Disposable {
  private readonly emitter = this._register(new vscode.EventEmitter<void>());
  readonly onDidChange = this.emitter.event;
  private sessionValue: Session | null = null;
  private queueValue: Queue | null = null;
  private statusValue: TaskLook[] = [];

  get session(): Session | null {
    return this.sessionValue;
  }
  get queue(): Queue | null {
    return this.queueValue;
  }
  get statusFilter(): readonly TaskLook[] {
    return this.statusValue;
  }

  selectSession(session: Session | null): void {
    if (session?.id === this.sessionValue?.id) return;
    this.sessionValue = session;
    if (this.queueValue && session && this.queueValue.sessionId !== session.id) this.queueValue = null;
    if (!session) this.queueValue = null;
    this.emitter.fire();
  }

  selectQueue(queue: Queue | null): void {
    if (queue?.id === this.queueValue?.id) return;
    this.queueValue = queue;
    this.emitter.fire();
  }

  setStatusFilter(statuses: readonly TaskLook[]): void {
    this.statusValue = TASK_FILTERS.filter((s) => statuses.includes(s));
    this.emitter.fire();
  }

  /** The tasks view's subtitle: "Back End · failed, stale". */
  describeTaskFilter(): string | undefined {
    const parts = [this.queueValue?.name ?? this.sessionValue?.name, this.statusValue.length > 0 ? this.statusValue.join(', ') : undefined].filter(
      (p): p is string => p !== undefined,
    );
    return parts.length > 0 ? parts.join(' · ') : undefined;
  }
}
