import * as vscode from 'vscode';

/**
 * The composition root. For now it only opens SparkQ's log channel: the views, commands and the queue owner arrive
 * with their own issues, and each is composed here rather than written here.
 */
export function activate(context: vscode.ExtensionContext): void {
  const log = vscode.window.createOutputChannel('SparkQ', { log: true });
  context.subscriptions.push(log);
  log.info('[Extension] SparkQ activated');
}

export function deactivate(): void {
  // Nothing to tear down yet: every disposable is registered on the extension context.
}
