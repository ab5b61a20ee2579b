import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { CONFIG_FILE, SPARKQ_DIR } from '../owner/workspace';

/**
 * The folder whose queue this window shows: the first workspace folder that holds a sparkq.yml or a .sparkq/ folder,
 * else the first local folder (where `SparkQ: Set up` would write sparkq.yml). Undefined with no local folder open.
 */
export function pickQueueFolder(): { dir: string; isSetUp: boolean } | undefined {
  const local = (vscode.workspace.workspaceFolders ?? []).filter((f) => f.uri.scheme === 'file' || f.uri.scheme === 'vscode-remote');
  const dirs = local.map((f) => f.uri.fsPath);
  const setUp = dirs.find((d) => isSetUp(d));
  if (setUp !== undefined) return { dir: setUp, isSetUp: true };
  const first = dirs[0];
  return first === undefined ? undefined : { dir: first, isSetUp: false };
}

export function isSetUp(dir: string): boolean {
  if (fs.existsSync(path.join(dir, CONFIG_FILE))) return true;
  try {
    return fs.statSync(path.join(dir, SPARKQ_DIR)).isDirectory();
  } catch {
    return false;
  }
}
