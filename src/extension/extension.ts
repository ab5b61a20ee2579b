import * as path from 'node:path';
import * as vscode from 'vscode';
import { createSparkqApi, type SparkqApi } from './api';
import { COMMANDS } from './commands';
import { type CommandContext, type CommandFailure, registerCommands } from './commands/commandContext';
import { GitObjectDocuments } from './changes/gitObjectDocuments';
import { ConfigDiagnostics } from './configDiagnostics';
import { DashboardPanels } from './dashboard/dashboardPanel';
import { createLog } from './log';
import { mcpApiOf, registerMcpProvider } from './mcpProvider';
import { TaskNotifications } from './notifications';
import { PlanDiagnostics } from './planDiagnostics';
import { QueueConnection, hasConfigFile } from './queueConnection';
import { ReportDocuments } from './reportDocuments';
import { SparkqStatusBar } from './statusBar';
import { TaskDocuments } from './taskDocuments';
import { TeamDatabaseSecrets } from './teamDatabase';
import { SparkqTreeViews } from './views/treeViews';
import { WorkerTerminals, cliRuntime } from './workerTerminals';

/** What SparkQ's own integration tests reach besides the public API. Not for other extensions. */
export interface SparkqTestHooks {
  readonly connection: QueueConnection;
  readonly views: SparkqTreeViews;
  readonly workers: WorkerTerminals;
  readonly configDiagnostics: ConfigDiagnostics;
  readonly notifications: TaskNotifications;
  readonly statusBar: SparkqStatusBar;
  readonly dashboard: DashboardPanels;
  readonly planDiagnostics: PlanDiagnostics;
  /** This extension's log folder (the SparkQ channel's file is in the window's logs beside it). */
  readonly logUri: vscode.Uri;
  lastFailure(): CommandFailure | undefined;
}

export type SparkqExports = SparkqApi & { readonly testHooks: SparkqTestHooks };

/** The connection outlives nothing: deactivate awaits its hand-over, which a disposable cannot. */
let connectionForDeactivate: QueueConnection | undefined;

/**
 * The composition root: builds each feature, wires them together, opens the queue, and reports its own failure
 * (VS Code shows none for a failed activation). Features live in their own modules.
 */
export async function activate(context: vscode.ExtensionContext): Promise<SparkqExports> {
  const channel = vscode.window.createOutputChannel('SparkQ', { log: true });
  context.subscriptions.push(channel);
  const log = createLog(channel);
  const isTrusted = () => vscode.workspace.isTrusted;
  try {
    const connection = new QueueConnection(log.area('Queue'), isTrusted, new TeamDatabaseSecrets(context.secrets));
    connectionForDeactivate = connection;
    const runtime = cliRuntime(context.extensionPath);
    const workers = new WorkerTerminals(connection, runtime, path.join(context.globalStorageUri.fsPath, 'bin'), context.workspaceState, log.area('Workers'));
    const views = new SparkqTreeViews(connection, workers, log.area('Views'));
    const taskDocuments = new TaskDocuments(connection);
    const reportDocuments = new ReportDocuments(connection);
    const planDiagnostics = new PlanDiagnostics();
    const configDiagnostics = new ConfigDiagnostics(connection, isTrusted, log.area('Config'));
    const statusBar = new SparkqStatusBar(connection);
    const notifications = new TaskNotifications(connection, log.area('Notify'));
    const dashboard = new DashboardPanels(context.extensionUri, connection, isTrusted, log.area('Dashboard'));
    const gitObjects = new GitObjectDocuments(isTrusted);
    context.subscriptions.push(gitObjects, dashboard, workers, views, taskDocuments, reportDocuments, planDiagnostics, configDiagnostics, statusBar, notifications, connection);
    context.subscriptions.push(
      registerMcpProvider(mcpApiOf(vscode), {
        runtime,
        folder: () => connection.workspaceDir,
        isTrusted,
        changes: [connection.onDidChangeState, vscode.workspace.onDidGrantWorkspaceTrust],
        version: (context.extension.packageJSON as { version: string }).version,
        log: log.area('MCP'),
      }),
    );

    let lastFailure: CommandFailure | undefined;
    const ctx: CommandContext = { connection, views, workers, taskDocuments, reportDocuments, planDiagnostics, configDiagnostics, dashboard, log, channel, isTrusted };
    context.subscriptions.push(...registerCommands(ctx, COMMANDS, (f) => (lastFailure = f)));

    const setContextKeys = () => {
      const state = connection.state;
      void vscode.commands.executeCommand('setContext', 'sparkq.state', state.kind);
      void vscode.commands.executeCommand('setContext', 'sparkq.configured', hasConfigFile(state.folder));
      void vscode.commands.executeCommand('setContext', 'sparkq.trusted', isTrusted());
      void vscode.commands.executeCommand('setContext', 'sparkq.teamMode', state.team !== undefined);
    };
    context.subscriptions.push(connection.onDidChangeState(setContextKeys));
    setContextKeys();
    context.subscriptions.push(
      vscode.workspace.onDidGrantWorkspaceTrust(() => {
        log.info('workspace trusted: opening the live queue');
        void connection.restart().then(() => workers.reconcile());
      }),
      vscode.workspace.onDidChangeWorkspaceFolders(() => void connection.restart()),
      // The secret storage is shared by the user's windows: a URL saved or forgotten in another one applies here too.
      context.secrets.onDidChange((e) => void connection.onSavedUrlChanged(e.key)),
    );

    log.info(`SparkQ activating (${vscode.env.appName} ${vscode.version}, ${vscode.env.uiKind === vscode.UIKind.Web ? 'web' : 'desktop'}, ${isTrusted() ? 'trusted' : 'Restricted Mode'})`);
    await connection.restart();
    if (isTrusted()) await workers.reconcile();
    log.info(`SparkQ active: ${connection.state.kind}${connection.state.folder ? ` in ${connection.state.folder}` : ''}`);

    const api = createSparkqApi(connection);
    const testHooks: SparkqTestHooks = { connection, views, workers, configDiagnostics, notifications, statusBar, dashboard, planDiagnostics, logUri: context.logUri, lastFailure: () => lastFailure };
    return { ...api, testHooks };
  } catch (e) {
    log.error('SparkQ failed to activate', e);
    void vscode.window.showErrorMessage(`SparkQ failed to start: ${e instanceof Error ? e.message : String(e)}`, 'Show Log').then((c) => c && channel.show());
    throw e;
  }
}

export async function deactivate(): Promise<void> {
  // Hand the queue over (or disconnect) before the host exits, so the next owner takes over at once.
  await connectionForDeactivate?.close();
  connectionForDeactivate = undefined;
}
