import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { QueueApi } from '../../api/contract';
import type { Queue, QueueIsolation, Task, TaskChange } from '../../core/model';
import { plural } from '../../core/text';
import { git, runGit } from '../../git/git';
import { findRepo, isMerged, resolveBase } from '../../git/repo';
import { loadWorkspaceConfig } from '../../owner/configWatcher';
import { sparkqDirOf } from '../../owner/workspace';
import { type ChangeEntry, type ChangesContext, discardTask, listChanges, mergeTask, openTaskWorktree } from '../../worker/changes';
import { gitObjectUri } from '../changes/gitObjectDocuments';
import {
  type DiffFile,
  changeBadge,
  chooseMergeMode,
  conflictMessage,
  diffFileLabel,
  discardQuestion,
  entryLine,
  mergeTargetLabel,
  parseNameStatus,
  pruneViewOf,
} from '../changes/changeText';
import { Cancelled, UserFacingError } from '../errors';
import { taskDescription, taskLabel } from '../views/taskPresentation';
import { ArgSchemas, readArgs } from './args';
import { CommandId } from './commandIds';
import { type CommandContext, type CommandFactory, withProgress } from './commandContext';
import { confirm } from './pickers';

/**
 * Reviewing what a task on a worktree queue changed (isolation: worktree): show its diff, merge it into its base, open
 * its worktree, discard it; and, when such a queue ends, prune its merged worktrees. The work itself is
 * src/worker/changes.ts, which `sparkq merge` and `sparkq worktree …` call too, so both say and do the same. Every
 * command here reaches the queue through `connection.api`, which refuses in Restricted Mode: no git runs there.
 */

/** The setting that overrides sparkq.yml's worktree.merge in this window. */
export const MERGE_MODE_SETTING = { section: 'sparkq.worktree', key: 'mergeMode' } as const;

function workspaceDir(ctx: CommandContext): string {
  const dir = ctx.connection.workspaceDir;
  if (dir === undefined) throw new UserFacingError('Open a folder first: SparkQ keeps its queue in a workspace folder.');
  return dir;
}

function changesContext(api: QueueApi, workspace: string): ChangesContext {
  return { q: api, workspaceDir: workspace, sparkqDir: sparkqDirOf(workspace) };
}

/** The repository a task's change lives in: that of its queue's working directory. */
async function repoTopOf(api: QueueApi, workspace: string, task: Task): Promise<string> {
  const queue = await api.getQueue(task.queueId);
  return (await findRepo(queue.workdir ? path.resolve(workspace, queue.workdir) : workspace)).top;
}

function changeOf(task: Task): TaskChange {
  if (!task.change) throw new UserFacingError(`Task ${task.id} did not run in a worktree (its queue has no isolation: worktree), so it has no change of its own to review.`);
  return task.change;
}

/** From the palette: a finished task that has a change (with a commit, when `withCommit`). */
async function pickChangedTask(api: QueueApi, ctx: CommandContext, title: string, withCommit: boolean): Promise<Task> {
  const queue = ctx.views.selection.queue;
  const { tasks } = await api.listTasks({ status: withCommit ? 'succeeded' : ['succeeded', 'failed'], ...(queue ? { queue: queue.id } : {}), limit: 200 });
  const changed = tasks.filter((t) => t.change !== null && (!withCommit || t.change.commit !== null));
  if (changed.length === 0) {
    throw new UserFacingError(withCommit ? 'No finished task has a committed change: tasks of queues with isolation: worktree get one when they succeed.' : 'No finished task ran in a worktree.');
  }
  const chosen = await vscode.window.showQuickPick(
    changed.map((t) => ({ label: taskLabel(t), description: `${changeBadge(t) ?? ''} · ${taskDescription(t)}`, detail: `${t.id} · ${t.change!.branch}`, task: t })),
    { title: `SparkQ: ${title}`, placeHolder: 'Task', ignoreFocusOut: true, matchOnDescription: true, matchOnDetail: true },
  );
  if (!chosen) throw new Cancelled();
  return chosen.task;
}

export interface ShownChanges {
  task: string;
  title: string;
  files: DiffFile[];
}

/** Opens the task's commit against its base in the changes editor, one entry per file, both sides from git objects. */
export const showChanges: CommandFactory = (ctx) => async (raw) => {
  const { args } = readArgs(CommandId.ShowChanges, ArgSchemas.taskChange, raw);
  const api = await ctx.connection.api("show a task's changes");
  const ws = workspaceDir(ctx);
  const task = args.task !== undefined ? await api.getTask(args.task) : await pickChangedTask(api, ctx, 'Show the changes of which task?', true);
  const change = changeOf(task);
  if (change.commit === null) {
    throw new UserFacingError(task.status === 'succeeded' ? `Task ${task.id} changed nothing: there is no diff to show.` : `Task ${task.id} ${task.status} without a commit; open its worktree to see what it left.`);
  }
  const commit = change.commit;
  const top = await repoTopOf(api, ws, task);
  const nameStatus = await git(['diff', '--name-status', '-z', '-M', '--no-color', change.baseCommit, commit, '--'], {
    cwd: top,
    hint: `the commits of task ${task.id} may be gone (git gc after a discard)`,
  });
  const files = parseNameStatus(nameStatus);
  if (files.length === 0) throw new UserFacingError(`Task ${task.id}'s commit ${commit.slice(0, 12)} has the same files as its base: no diff to show.`);
  const title = `${task.id}: ${change.branch} ↔ ${mergeTargetLabel(change)} (${changeBadge(task) ?? ''})`;
  // [label, original, modified]: a side that has no such file reads as empty (parseGitObjectUri's commit lacks it).
  const resources = files.map((f) => {
    const shown = (f.after ?? f.before)!;
    return [gitObjectUri(top, commit, shown), gitObjectUri(top, change.baseCommit, f.before ?? shown), gitObjectUri(top, commit, f.after ?? shown)] as const;
  });
  await vscode.commands.executeCommand('vscode.changes', title, resources);
  ctx.log.info(`showed the changes of ${task.id}: ${files.map(diffFileLabel).join(', ')}`);
  const shown: ShownChanges = { task: task.id, title, files };
  return shown;
};

/** Merges a succeeded task's branch into its base: a fast-forward or a merge commit (sparkq.worktree.mergeMode, else sparkq.yml). */
export const mergeChange: CommandFactory = (ctx) => async (raw) => {
  const { interactive, args } = readArgs(CommandId.MergeChange, ArgSchemas.mergeChange, raw);
  const api = await ctx.connection.api("merge a task's change");
  const ws = workspaceDir(ctx);
  const ref = args.task ?? (await pickChangedTask(api, ctx, 'Merge the change of which task?', true)).id;
  const folder = vscode.workspace.workspaceFolders?.find((f) => f.uri.fsPath === ws)?.uri;
  const mode = args.mode ?? chooseMergeMode(vscode.workspace.getConfiguration(MERGE_MODE_SETTING.section, folder).inspect(MERGE_MODE_SETTING.key), loadWorkspaceConfig(ws).worktree.merge);
  const { task, into, result } = await withProgress(`Merging task ${ref} (${mode})…`, () => mergeTask(changesContext(api, ws), ref, { mode }));
  const branch = task.change?.branch ?? '';
  if (result.outcome === 'conflict') {
    ctx.log.warn(`merging ${branch} into ${into} conflicts in ${result.files.join(', ')}; nothing merged`);
    throw new UserFacingError(conflictMessage(branch, into, result.files), [{ title: 'Show Changes', command: CommandId.ShowChanges, args: { task: task.id } }]);
  }
  const said =
    result.outcome === 'nothing'
      ? `Task ${task.id} changed nothing: there is nothing to merge.`
      : result.outcome === 'up-to-date'
        ? `${branch} is already in ${into} (${result.commit.slice(0, 12)}).`
        : `Merged ${branch} into ${into} (${mode}): ${result.commit.slice(0, 12)}.`;
  ctx.log.info(said);
  await ctx.views.refreshNow();
  if (interactive) void vscode.window.showInformationMessage(said);
  return { task: task.id, branch, into, mode, ...result };
};

/** The task's worktree (checked out again from its branch when a worker moved on), opened in a new window. */
export const openWorktree: CommandFactory = (ctx) => async (raw) => {
  const { args } = readArgs(CommandId.OpenWorktree, ArgSchemas.openWorktree, raw);
  const api = await ctx.connection.api("open a task's worktree");
  const ws = workspaceDir(ctx);
  const ref = args.task ?? (await pickChangedTask(api, ctx, 'Open the worktree of which task?', false)).id;
  const r = await withProgress('Opening the worktree…', () => openTaskWorktree(changesContext(api, ws), ref));
  ctx.log.info(`worktree of ${r.task.id}: ${r.dir}${r.created ? ' (checked out again from its branch)' : ''}`);
  if (args.open !== false) {
    // The workspace folder's own scheme and authority (vscode-remote in code-server), with the worktree's path.
    const base = vscode.workspace.workspaceFolders?.find((f) => f.uri.fsPath === ws)?.uri;
    const uri = base ? base.with({ path: vscode.Uri.file(r.dir).path }) : vscode.Uri.file(r.dir);
    await vscode.commands.executeCommand('vscode.openFolder', uri, { forceNewWindow: true });
  }
  return { task: r.task.id, dir: r.dir, created: r.created };
};

/** Whether a worktree holds uncommitted work (untracked files included). */
async function isDirty(dir: string): Promise<boolean> {
  if (!fs.existsSync(dir)) return false;
  const r = await runGit(['status', '--porcelain', '-z'], { cwd: dir });
  return r.code === 0 && r.stdout.length > 0;
}

/** Throws a finished task's change away: its worktree and its branch, after a modal question that says what is lost. */
export const discardChange: CommandFactory = (ctx) => async (raw) => {
  const { interactive, args } = readArgs(CommandId.DiscardChange, ArgSchemas.discardChange, raw);
  const api = await ctx.connection.api("discard a task's change");
  const ws = workspaceDir(ctx);
  const task = args.task !== undefined ? await api.getTask(args.task) : await pickChangedTask(api, ctx, 'Discard the change of which task?', false);
  const change = changeOf(task);
  if (interactive || args.confirm === true) {
    const top = await repoTopOf(api, ws, task);
    const merged = change.commit !== null && change.baseRef !== null ? await isMerged(top, change.commit, change.baseRef).catch(() => null) : null;
    await confirm(discardQuestion(task, change, merged, await isDirty(path.resolve(ws, change.worktree))), 'Discard');
  }
  const done = await withProgress('Discarding the change…', () => discardTask(changesContext(api, ws), task.id));
  ctx.log.info(`discarded the change of ${done.id}: ${change.branch}`);
  await ctx.views.refreshNow();
  if (interactive) void vscode.window.showInformationMessage(`Discarded the change of ${done.id}: ${change.branch} and its worktree are gone.`);
  return { task: done.id, branch: change.branch };
};

/**
 * A worktree queue's isolation for the Create Queue command: the base resolved now in the repository of the queue's
 * working directory (as `sparkq queue create --isolation worktree` does), or a clear error where there is no repository.
 */
export async function isolationFor(
  ctx: CommandContext,
  opts: { interactive: boolean; isolation?: 'none' | 'worktree' | undefined; base?: string | undefined; baseFollow?: boolean | undefined; workdir?: string | undefined },
): Promise<QueueIsolation | null> {
  let kind = opts.isolation;
  if (kind === undefined && opts.interactive) {
    const chosen = await vscode.window.showQuickPick(
      [
        { label: 'None', description: "tasks run in the queue's folder", isolation: 'none' as const },
        { label: 'Worktree', description: 'each task in a git worktree and branch of its own; review and merge afterwards', isolation: 'worktree' as const },
      ],
      { title: 'SparkQ: Create Queue — isolation', placeHolder: 'Where do its tasks run?', ignoreFocusOut: true },
    );
    if (!chosen) throw new Cancelled();
    kind = chosen.isolation;
  }
  if (kind !== 'worktree') {
    if (opts.base !== undefined || opts.baseFollow) throw new UserFacingError('base and baseFollow apply only to a queue with isolation "worktree".');
    return null;
  }
  const ws = workspaceDir(ctx);
  const dir = opts.workdir !== undefined ? path.resolve(ws, opts.workdir) : ws;
  // Resolving HEAD first also checks that the folder is in a repository with a commit, before anything is asked.
  const head = await resolveBase(dir, null);
  let ref = opts.base;
  if (ref === undefined && opts.interactive) {
    const value = await vscode.window.showInputBox({
      title: 'SparkQ: Create Queue — base',
      prompt: `The branch (or commit) task branches start from and merge into. Empty: the current HEAD (${head.baseRef ?? head.baseCommit.slice(0, 12)}).`,
      value: head.baseRef ?? '',
      ignoreFocusOut: true,
      validateInput: (v) => (/\s/.test(v.trim()) || v.trim().startsWith('-') ? 'A branch, tag or commit name: no spaces, not starting with "-"' : null),
    });
    if (value === undefined) throw new Cancelled();
    ref = value.trim() || undefined;
  }
  const base = ref === undefined ? head : await resolveBase(dir, ref);
  if (opts.baseFollow && base.baseRef === null) throw new UserFacingError(`baseFollow needs a branch to follow; ${ref ?? 'HEAD'} is not one.`);
  return { kind: 'worktree', baseRef: base.baseRef, baseCommit: base.baseCommit, follow: opts.baseFollow === true };
}

async function removeEntries(api: QueueApi, ws: string, entries: readonly ChangeEntry[], log: CommandContext['log']): Promise<number> {
  let removed = 0;
  for (const e of entries) {
    if (!e.taskId) continue;
    try {
      await discardTask(changesContext(api, ws), e.taskId);
      removed++;
    } catch (err) {
      log.warn(`could not prune the worktree of ${e.taskId}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  return removed;
}

/**
 * After a worktree queue ended: prunes its merged and unchanged worktrees and branches (`prune: 'merged'` from a script;
 * asked in a notification otherwise). Unmerged work is never deleted without a second, modal yes that lists it.
 */
export async function pruneEndedQueue(ctx: CommandContext, api: QueueApi, queue: Queue, how: { interactive: boolean; prune?: 'merged' | 'none' | undefined }): Promise<{ removed: number; unmerged: number }> {
  const ws = workspaceDir(ctx);
  const view = pruneViewOf(await listChanges(changesContext(api, ws), { queue: queue.id }), queue.id);
  if (!how.interactive) {
    const removed = how.prune === 'merged' ? await removeEntries(api, ws, view.prunable, ctx.log) : 0;
    return { removed, unmerged: view.unmerged.length };
  }
  if (view.prunable.length === 0 && view.unmerged.length === 0) {
    void vscode.window.showInformationMessage(`Queue "${queue.name}" ended; it left no worktrees to prune.`);
    return { removed: 0, unmerged: 0 };
  }
  const PRUNE = 'Prune Merged';
  const REVIEW = 'Delete Unmerged…';
  const said = [
    `Queue "${queue.name}" ended.`,
    view.prunable.length > 0 ? `${plural(view.prunable.length, 'worktree or branch', 'worktrees or branches')} of its tasks ${view.prunable.length === 1 ? 'is' : 'are'} merged or unchanged.` : '',
    view.unmerged.length > 0 ? `${plural(view.unmerged.length, 'task')} ${view.unmerged.length === 1 ? 'has' : 'have'} unmerged work, which is kept.` : '',
  ].filter(Boolean);
  const choice = await vscode.window.showInformationMessage(said.join(' '), ...(view.prunable.length > 0 ? [PRUNE] : []), ...(view.unmerged.length > 0 ? [REVIEW] : []));
  let removed = 0;
  if (choice === PRUNE) removed += await removeEntries(api, ws, view.prunable, ctx.log);
  if (choice === undefined || view.unmerged.length === 0) return { removed, unmerged: view.unmerged.length };
  const DELETE = 'Delete Unmerged Work';
  const listed = view.unmerged.slice(0, 15).map(entryLine).join('\n') + (view.unmerged.length > 15 ? `\n… and ${view.unmerged.length - 15} more` : '');
  const sure = await vscode.window.showWarningMessage(
    `${plural(view.unmerged.length, 'task')} of queue "${queue.name}" ${view.unmerged.length === 1 ? 'has' : 'have'} work that was never merged:`,
    { modal: true, detail: `${listed}\n\nDelete these branches and worktrees too? Their work is lost.` },
    DELETE,
  );
  if (sure === DELETE) removed += await removeEntries(api, ws, view.unmerged, ctx.log);
  const left = sure === DELETE ? 0 : view.unmerged.length;
  ctx.log.info(`pruned ${plural(removed, 'worktree or branch', 'worktrees or branches')} of ended queue ${queue.name}; ${left} unmerged kept`);
  await ctx.views.refreshNow();
  return { removed, unmerged: left };
}
