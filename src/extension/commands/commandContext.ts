import * as vscode from 'vscode';
import { Cancelled, describeError } from '../errors';
import type { Log } from '../log';
import { withoutPasswords } from '../teamDatabase';
import type { QueueConnection } from '../queueConnection';
import type { ConfigDiagnostics } from '../configDiagnostics';
import type { DashboardPanels } from '../dashboard/dashboardPanel';
import type { PlanDiagnostics } from '../planDiagnostics';
import type { ReportDocuments } from '../reportDocuments';
import type { TaskDocuments } from '../taskDocuments';
import type { SparkqTreeViews } from '../views/treeViews';
import type { WorkerTerminals } from '../workerTerminals';
import type { CommandId } from './commandIds';

/** What command handlers may use; built once by the composition root. */
export interface CommandContext {
  readonly connection: QueueConnection;
  readonly views: SparkqTreeViews;
  readonly workers: WorkerTerminals;
  readonly taskDocuments: TaskDocuments;
  readonly reportDocuments: ReportDocuments;
  readonly planDiagnostics: PlanDiagnostics;
  readonly configDiagnostics: ConfigDiagnostics;
  readonly dashboard: DashboardPanels;
  readonly log: Log;
  readonly channel: vscode.LogOutputChannel;
  isTrusted(): boolean;
}

export type CommandHandler = (...args: unknown[]) => Promise<unknown>;
export type CommandFactory = (ctx: CommandContext) => CommandHandler;

export interface CommandFailure {
  command: string;
  message: string;
  at: number;
}

/**
 * Registers every command through one wrapper: logs the call, runs it, and turns a thrown error into a message that
 * says what to do (with buttons for the way out). A cancelled QuickPick ends the command quietly. Failures resolve
 * to `undefined` for programmatic callers; the last one is kept for tests.
 */
export function registerCommands(ctx: CommandContext, factories: Record<CommandId, CommandFactory>, onFailure: (f: CommandFailure) => void): vscode.Disposable[] {
  const log = ctx.log.area('Commands');
  return Object.entries(factories).map(([id, factory]) => {
    const handler = factory(ctx);
    return vscode.commands.registerCommand(id, async (...args: unknown[]) => {
      log.trace(`${id}${args.length > 0 ? ` ${summarizeArgs(args[0])}` : ''}`);
      try {
        return await handler(...args);
      } catch (e) {
        if (e instanceof Cancelled) return undefined;
        const { message, actions } = describeError(e);
        log.error(`${id} failed: ${message}`);
        onFailure({ command: id, message, at: Date.now() });
        void vscode.window.showErrorMessage(message, ...actions.map((a) => a.title)).then((choice) => {
          const action = actions.find((a) => a.title === choice);
          if (action) void vscode.commands.executeCommand(action.command, ...(action.args === undefined ? [] : [action.args]));
        });
        return undefined;
      }
    });
  });
}

function summarizeArgs(a: unknown): string {
  if (a === null || typeof a !== 'object') return withoutPasswords(JSON.stringify(a) ?? '');
  const name = (a as { constructor?: { name?: string } }).constructor?.name;
  if (name && name !== 'Object') return `<${name}>`;
  const s = withoutPasswords(JSON.stringify(a));
  return s.length > 200 ? `${s.slice(0, 199)}…` : s;
}

/** Runs `work` with a progress indicator: a notification for long operations, the status bar for short ones. */
export function withProgress<T>(title: string, work: () => Promise<T>, long = false): Promise<T> {
  return Promise.resolve(
    vscode.window.withProgress(
      { location: long ? vscode.ProgressLocation.Notification : vscode.ProgressLocation.Window, title: `SparkQ: ${title}` },
      () => work(),
    ),
  );
}
