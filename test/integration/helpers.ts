import * as assert from 'node:assert/strict';
import * as vscode from 'vscode';
import type { SparkqExports } from '../../src/extension/extension';
import type { TreeNode } from '../../src/extension/views/nodes';

export const EXTENSION_ID = 'sparkq.sparkq';

export async function activateSparkq(): Promise<SparkqExports> {
  const ext = vscode.extensions.getExtension<SparkqExports>(EXTENSION_ID);
  assert.ok(ext, `extension ${EXTENSION_ID} is not installed in this host`);
  return ext.activate();
}

export function workspaceDir(): string {
  const folder = vscode.workspace.workspaceFolders?.[0];
  assert.ok(folder, 'the tests need a workspace folder');
  return folder.uri.fsPath;
}

export async function waitFor<T>(what: string, probe: () => Promise<T | undefined | null | false> | T | undefined | null | false, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined && v !== null && v !== false) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${last instanceof Error ? last.message : JSON.stringify(last)})` : ''}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export interface Row {
  label: string;
  description: string;
  contextValue: string;
  icon: string;
  id: string;
}

/** The rows a tree provider returns now, as a person would read them. */
export async function rowsOf(provider: vscode.TreeDataProvider<TreeNode>): Promise<Row[]> {
  const nodes = (await provider.getChildren()) ?? [];
  return Promise.all(
    nodes.map(async (n) => {
      const item = await provider.getTreeItem(n);
      const label = typeof item.label === 'string' ? item.label : (item.label?.label ?? '');
      const icon = item.iconPath instanceof vscode.ThemeIcon ? item.iconPath.id : '';
      return { label, description: String(item.description ?? ''), contextValue: item.contextValue ?? '', icon, id: item.id ?? '' };
    }),
  );
}

export function exec<T>(command: string, args?: unknown): Promise<T> {
  return Promise.resolve(vscode.commands.executeCommand<T>(command, ...(args === undefined ? [] : [args])));
}
