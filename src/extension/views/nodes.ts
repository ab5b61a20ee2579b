import * as vscode from 'vscode';
import type { Queue, Session, Task } from '../../core/model';
import { CommandId } from '../commands/commandIds';
import {
  queueContextValue,
  queueDescription,
  queueIcon,
  queuePauseText,
  sessionContextValue,
  taskContextValue,
  taskDescription,
  taskIcon,
  taskLabel,
  taskTooltip,
} from './taskPresentation';

/** One row of a SparkQ tree. The views are flat lists today; children and parents are there for when they are not. */
export abstract class TreeNode {
  abstract getTreeItem(): vscode.TreeItem;
  getChildren(): Promise<TreeNode[]> {
    return Promise.resolve([]);
  }
  getParent(): TreeNode | undefined {
    return undefined;
  }
}

export class SessionNode extends TreeNode {
  constructor(readonly session: Session) {
    super();
  }
  getTreeItem(): vscode.TreeItem {
    const s = this.session;
    const item = new vscode.TreeItem(s.name, vscode.TreeItemCollapsibleState.None);
    item.id = s.id;
    item.description = s.status === 'ended' ? 'ended' : s.description.split('\n')[0] ?? '';
    item.iconPath = new vscode.ThemeIcon(s.status === 'ended' ? 'archive' : 'folder-library');
    item.contextValue = sessionContextValue(s);
    const tip = new vscode.MarkdownString();
    tip.appendMarkdown('**Session** ');
    tip.appendText(`${s.name} (${s.id}) · ${s.status} · created ${s.createdAt}`);
    if (s.description) tip.appendMarkdown('\n\n').appendText(s.description);
    item.tooltip = tip;
    return item;
  }
}

export class QueueNode extends TreeNode {
  constructor(
    readonly queue: Queue,
    readonly hasWorker: boolean,
  ) {
    super();
  }
  getTreeItem(): vscode.TreeItem {
    const q = this.queue;
    const item = new vscode.TreeItem(q.name, vscode.TreeItemCollapsibleState.None);
    item.id = q.id;
    item.description = `${this.hasWorker ? 'worker · ' : ''}${queueDescription(q)}`;
    item.iconPath = queueIcon(q);
    item.contextValue = queueContextValue(q, this.hasWorker);
    const tip = new vscode.MarkdownString();
    tip.appendMarkdown('**Queue** ');
    tip.appendText(`${q.name} in ${q.session} (${q.id}) · ${queueDescription(q)}`);
    const pause = queuePauseText(q);
    if (pause) tip.appendMarkdown('\n\n**Paused:** ').appendText(`${pause.replace(/^paused ?/, '') || 'until resumed'}${q.pauseReason ? ` — ${q.pauseReason}` : ''}`);
    tip.appendMarkdown('\n\n**Workers:** ').appendText(`at most ${q.maxWorkers}${q.maxAttempts !== null ? ` · ${q.maxAttempts} attempt(s) per task` : ''}`);
    if (q.instructions) tip.appendMarkdown('\n\n**Instructions:** ').appendText(q.instructions);
    if (q.workdir) tip.appendMarkdown('\n\n**Working folder:** ').appendText(q.workdir);
    item.tooltip = tip;
    return item;
  }
}

export class TaskNode extends TreeNode {
  constructor(readonly task: Task) {
    super();
  }
  getTreeItem(): vscode.TreeItem {
    const t = this.task;
    const item = new vscode.TreeItem(taskLabel(t), vscode.TreeItemCollapsibleState.None);
    item.id = t.id;
    item.description = taskDescription(t);
    item.iconPath = taskIcon(t);
    item.contextValue = taskContextValue(t);
    item.tooltip = taskTooltip(t);
    item.command = { title: 'Show Task', command: CommandId.ShowTask, arguments: [{ task: t.id }] };
    return item;
  }
}

/** A row that only says something (an error reading the queue). */
export class MessageNode extends TreeNode {
  constructor(
    readonly text: string,
    readonly icon = 'info',
  ) {
    super();
  }
  getTreeItem(): vscode.TreeItem {
    const item = new vscode.TreeItem(this.text, vscode.TreeItemCollapsibleState.None);
    item.iconPath = new vscode.ThemeIcon(this.icon);
    item.contextValue = 'sparkq:message';
    item.tooltip = this.text;
    return item;
  }
}
