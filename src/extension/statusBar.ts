import * as vscode from 'vscode';
import { CommandId } from './commands/commandIds';
import { Disposable } from './lifecycle';
import type { ConnectionState, QueueConnection } from './queueConnection';

/** `$(sync~spin) 2 running · 5 queued · $(warning) 1 stale` — click to see the tasks. */
export class SparkqStatusBar extends Disposable {
  private readonly item = this._register(vscode.window.createStatusBarItem('sparkq.status', vscode.StatusBarAlignment.Left, 10));
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly connection: QueueConnection) {
    super();
    this.item.name = 'SparkQ';
    this._register(connection.onDidChange(() => this.schedule()));
    this._register(connection.onDidChangeState(() => this.schedule()));
    this._register({ dispose: () => clearTimeout(this.timer) });
    this.schedule();
  }

  /** The text shown now (for tests). */
  get text(): string {
    return this.item.text;
  }

  /** The tooltip shown now (for tests). */
  get tooltip(): string {
    return typeof this.item.tooltip === 'string' ? this.item.tooltip : (this.item.tooltip?.value ?? '');
  }

  private schedule(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.update(), 250);
  }

  async update(): Promise<void> {
    const state = this.connection.state;
    const item = this.item;
    switch (state.kind) {
      case 'no-folder':
        item.hide();
        return;
      case 'not-set-up':
        item.text = '$(tasklist) Set up SparkQ';
        item.tooltip = 'SparkQ is not set up in this folder: click to write sparkq.yml';
        item.command = CommandId.Setup;
        item.backgroundColor = undefined;
        item.show();
        return;
      case 'connecting':
        item.text = '$(loading~spin) SparkQ';
        item.tooltip = 'Opening the queue…';
        item.show();
        return;
      case 'needs-database':
        item.text = '$(plug) Connect SparkQ';
        item.tooltip = "This folder's queue is a team database (PostgreSQL), and SparkQ does not know its URL yet: click to connect.";
        item.command = CommandId.ConnectTeamDatabase;
        item.backgroundColor = undefined;
        item.show();
        return;
      case 'failed':
        item.text = '$(error) SparkQ';
        item.tooltip = `The queue could not be opened: ${state.problem ?? ''}. Click for the log.`;
        item.command = CommandId.ShowLog;
        item.backgroundColor = new vscode.ThemeColor('statusBarItem.errorBackground');
        item.show();
        return;
      default:
        break;
    }
    try {
      const { counts } = await (await this.connection.reader()).status();
      const parts = [`${counts.running > 0 ? '$(sync~spin)' : '$(tasklist)'} ${counts.running} running`, `${counts.queued} queued`];
      if (counts.stale > 0) parts.push(`$(warning) ${counts.stale} stale`);
      item.text = `${state.kind === 'read-only' ? '$(shield) ' : ''}${parts.join(' · ')}`;
      item.name = state.team ? 'SparkQ (team database)' : 'SparkQ';
      const role = roleText(state);
      item.tooltip = `SparkQ — ${counts.running} running, ${counts.queued} queued, ${counts.stale} stale, ${counts.failed} failed, ${counts.succeeded} succeeded (${role}). Click to show the tasks.`;
      item.command = CommandId.ShowTasks;
      item.backgroundColor = counts.stale > 0 ? new vscode.ThemeColor('statusBarItem.warningBackground') : undefined;
      item.show();
    } catch {
      item.text = '$(tasklist) SparkQ';
      item.show();
    }
  }
}

/** Who serves the queue this window shows, as the tooltip says it. */
export function roleText(state: ConnectionState): string {
  if (state.team) {
    const db = state.team.database ?? 'not named yet';
    return state.kind === 'read-only' ? `Restricted Mode: the team database ${db} is not connected` : `team database ${db}`;
  }
  return state.kind === 'owner' ? 'this window owns the queue' : state.kind === 'client' ? 'connected to the queue owner' : 'Restricted Mode: read-only';
}
