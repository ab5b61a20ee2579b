import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { resolveTimeoutSeconds } from '../../core/config';
import { errorMessage } from '../../core/errors';
import { type PatternLoader, patternLoader } from '../../core/patterns';
import { loadWorkspaceConfig } from '../../owner/configWatcher';
import { sparkqDirOf } from '../../owner/workspace';
import type { ToolInfo } from '../../shared/dashboardProtocol';
import { UserFacingError } from '../errors';
import { Disposable } from '../lifecycle';
import type { Log } from '../log';
import type { QueueConnection } from '../queueConnection';
import { DashboardController, type DashboardCommand } from './dashboardController';
import { WEBVIEW_ASSET_DIR, createNonce, dashboardHtml } from './dashboardHtml';

export const DASHBOARD_VIEW_TYPE = 'sparkq.dashboard';

/**
 * `SparkQ: Open Dashboard`: one webview panel per window, restored after a reload by its serializer. The panel is
 * the adapter; what it says and answers is DashboardController's.
 */
export class DashboardPanels extends Disposable implements vscode.WebviewPanelSerializer {
  private panel: vscode.WebviewPanel | undefined;
  private controller: DashboardController | undefined;

  constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly connection: QueueConnection,
    private readonly isTrusted: () => boolean,
    private readonly log: Log,
  ) {
    super();
    this._register(vscode.window.registerWebviewPanelSerializer(DASHBOARD_VIEW_TYPE, this));
    this._register(connection.onDidChange((events) => this.controller?.queueChanged(events)));
    this._register(connection.onDidChangeState(() => void this.controller?.stateChanged()));
    this._register(vscode.workspace.onDidGrantWorkspaceTrust(() => void this.controller?.stateChanged()));
  }

  /** The open dashboard's controller (for the integration tests), if a dashboard is open. */
  get current(): DashboardController | undefined {
    return this.controller;
  }

  open(): DashboardController {
    if (this.panel && this.controller) {
      this.panel.reveal();
      return this.controller;
    }
    const panel = vscode.window.createWebviewPanel(DASHBOARD_VIEW_TYPE, 'SparkQ Dashboard', vscode.ViewColumn.Active, this.webviewOptions());
    return this.attach(panel);
  }

  deserializeWebviewPanel(panel: vscode.WebviewPanel): Thenable<void> {
    this.panel?.dispose();
    this.attach(panel);
    return Promise.resolve();
  }

  private webviewOptions(): vscode.WebviewPanelOptions & vscode.WebviewOptions {
    return { enableScripts: true, localResourceRoots: [this.assetRoot()], retainContextWhenHidden: false };
  }

  private assetRoot(): vscode.Uri {
    return vscode.Uri.joinPath(this.extensionUri, ...WEBVIEW_ASSET_DIR);
  }

  private attach(panel: vscode.WebviewPanel): DashboardController {
    this.panel = panel;
    panel.iconPath = vscode.Uri.joinPath(this.extensionUri, 'media', 'sparkq.svg');
    panel.webview.options = this.webviewOptions();
    const controller = new DashboardController({
      reader: () => this.connection.reader(),
      api: (action) => this.connection.api(action),
      isReadOnly: () => !this.isTrusted() || this.connection.isReadOnly,
      problem: () => this.problem(),
      tools: () => this.tools(),
      post: (m) => panel.webview.postMessage(m),
      runCommand: (command: DashboardCommand, args) => Promise.resolve(vscode.commands.executeCommand(`sparkq.${command}`, args)),
      openLog: (task) => this.openLog(task),
      log: (m) => this.log.trace(m),
      patterns: () => this.patterns(),
    });
    this.controller = controller;
    const listener = panel.webview.onDidReceiveMessage((m: unknown) => void controller.handleMessage(m));
    panel.onDidDispose(() => {
      listener.dispose();
      controller.dispose();
      if (this.panel === panel) {
        this.panel = undefined;
        this.controller = undefined;
      }
    });
    const asset = (name: string) => panel.webview.asWebviewUri(vscode.Uri.joinPath(this.assetRoot(), name)).toString();
    panel.webview.html = dashboardHtml({ cspSource: panel.webview.cspSource, scriptUri: asset('dashboard.js'), nonce: createNonce() });
    this.log.info('dashboard opened');
    return controller;
  }

  private problem(): string | null {
    const s = this.connection.state;
    switch (s.kind) {
      case 'no-folder':
        return 'Open a folder: SparkQ keeps its queue in a workspace folder.';
      case 'not-set-up':
        return 'SparkQ is not set up in this folder yet. Run "SparkQ: Set up SparkQ".';
      case 'read-only':
        // The read-only copy of the embedded store has something to show; a team database is not connected at all.
        return s.team ? 'Restricted Mode: this folder\'s queue is a team database, and SparkQ connects to it once you trust the workspace.' : null;
      case 'needs-database':
        return 'This folder\'s queue is a team database, and SparkQ does not know its URL yet. Run "SparkQ: Connect to Team Database".';
      case 'failed':
        return `The queue could not be opened: ${s.problem ?? 'unknown reason'}. See the SparkQ log.`;
      default:
        return null;
    }
  }

  /** The tools of sparkq.yml; none in Restricted Mode, where sparkq.yml is not read. */
  private tools(): ToolInfo[] {
    const dir = this.connection.workspaceDir;
    if (dir === undefined || !this.isTrusted()) return [];
    try {
      const config = loadWorkspaceConfig(dir);
      return Object.values(config.tools).map((t) => ({ name: t.name, kind: t.kind, script: t.knownKind === 'script', timeoutSeconds: resolveTimeoutSeconds(config, t) }));
    } catch (e) {
      this.log.warn(`dashboard: cannot read the tools of sparkq.yml: ${errorMessage(e)}`);
      return [];
    }
  }

  /** The patterns folder sparkq.yml names (default sparkq/patterns); none in Restricted Mode, where sparkq.yml is not read. */
  private patterns(): PatternLoader | null {
    const dir = this.connection.workspaceDir;
    if (dir === undefined || !this.isTrusted()) return null;
    return patternLoader(path.resolve(dir, loadWorkspaceConfig(dir).patternsDir));
  }

  private async openLog(task: string): Promise<void> {
    const dir = this.connection.workspaceDir;
    if (dir === undefined) throw new UserFacingError('Open a folder first.');
    if (!/^[A-Za-z0-9_-]+$/.test(task)) throw new UserFacingError(`"${task}" is not a task id.`);
    const file = path.join(sparkqDirOf(dir), 'runs', task, 'output.log');
    if (!fs.existsSync(file)) {
      // In team mode the worker that ran it may be on another machine, whose log stays there.
      const where = this.connection.state.team ? 'no worker on this machine has run it (a team task keeps its full log where it ran)' : 'no worker has run it in this workspace';
      throw new UserFacingError(`Task ${task} has no full log (${path.relative(dir, file)}): ${where}.`);
    }
    await vscode.window.showTextDocument(vscode.Uri.file(file), { preview: true, viewColumn: vscode.ViewColumn.Beside });
  }

  override dispose(): void {
    this.panel?.dispose();
    super.dispose();
  }
}
