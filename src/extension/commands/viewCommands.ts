import * as fs from 'node:fs';
import * as vscode from 'vscode';
import { configFileOf } from '../../owner/workspace';
import { UserFacingError } from '../errors';
import { TASK_FILTERS } from '../views/selection';
import type { TaskLook } from '../views/taskPresentation';
import { ViewId } from '../views/treeViews';
import { ArgSchemas, readArgs } from './args';
import { CommandId } from './commandIds';
import { type CommandFactory, withProgress } from './commandContext';

/** Refresh, the tasks view's status filter, the log, sparkq.yml and its reload. */

export const refresh: CommandFactory = (ctx) => async () => {
  const state = ctx.connection.state.kind;
  // After a failure (or before setup) Refresh is also the retry.
  if (state === 'failed' || state === 'not-set-up' || state === 'no-folder' || state === 'needs-database') await ctx.connection.restart();
  await ctx.views.refreshNow();
  return ctx.connection.state;
};

export const filterTasks: CommandFactory = (ctx) => async (raw) => {
  const { args } = readArgs(CommandId.FilterTasks, ArgSchemas.filterTasks, raw);
  let statuses: TaskLook[];
  if (args.status !== undefined) statuses = args.status;
  else {
    const current = ctx.views.selection.statusFilter;
    const chosen = await vscode.window.showQuickPick(
      TASK_FILTERS.map((s) => ({ label: s, picked: current.includes(s), description: s === 'stale' ? 'running past its timeout' : '' })),
      { canPickMany: true, title: 'SparkQ: Show tasks with status (none = all)', ignoreFocusOut: true },
    );
    if (!chosen) return ctx.views.selection.statusFilter;
    statuses = chosen.map((c) => c.label);
  }
  ctx.views.selection.setStatusFilter(statuses);
  await ctx.views.settled();
  return ctx.views.selection.statusFilter;
};

export const showLog: CommandFactory = (ctx) => () => {
  ctx.channel.show(true);
  return Promise.resolve(undefined);
};

export const showTasks: CommandFactory = () => async () => {
  await vscode.commands.executeCommand(`${ViewId.Tasks}.focus`);
  return undefined;
};

export const openConfig: CommandFactory = (ctx) => async () => {
  const dir = ctx.connection.workspaceDir;
  if (dir === undefined || !fs.existsSync(configFileOf(dir))) {
    throw new UserFacingError('This folder has no sparkq.yml yet. Run "SparkQ: Set up SparkQ" to write one.', [{ title: 'Set up SparkQ', command: CommandId.Setup }]);
  }
  await vscode.window.showTextDocument(vscode.Uri.file(configFileOf(dir)));
  return undefined;
};

export const reloadConfig: CommandFactory = (ctx) => async () => {
  const dir = ctx.connection.workspaceDir;
  if (dir === undefined) throw new UserFacingError('Open a folder first.');
  return withProgress('Reloading sparkq.yml…', async () => {
    const issues = ctx.configDiagnostics.check(dir);
    const handle = ctx.connection.queueHandle;
    // 'owner': this window's owner reloaded it; 'owner-process': the owning process watches it; 'team': this window's
    // team connection watches it (each machine's own tools and script dirs).
    let applied: 'owner' | 'owner-process' | 'team' | 'not-applied' = 'not-applied';
    if (issues.length === 0 && ctx.isTrusted()) {
      if (handle?.owner) {
        const problem = handle.owner.reloadConfig();
        if (problem) throw new UserFacingError(`sparkq.yml was not reloaded: ${problem}`);
        applied = 'owner';
      } else if (handle) applied = ctx.connection.state.team ? 'team' : 'owner-process'; // both watch sparkq.yml and reload it themselves
    }
    await ctx.views.refreshNow();
    if (issues.length > 0) {
      void vscode.window.showWarningMessage(`sparkq.yml has ${issues.length} problem(s); the last good configuration stays in use. See Problems.`);
    }
    return { ok: issues.length === 0, applied, issues };
  });
};
