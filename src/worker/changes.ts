import * as fs from 'node:fs';
import * as path from 'node:path';
import type { QueueApi } from '../api/contract';
import type { MergeMode } from '../core/config';
import { SparkqError, isSparkqError } from '../core/errors';
import type { Task, TaskChange } from '../core/model';
import { git, runGit, splitZ } from '../git/git';
import { type MergeOutcome, discard, mergeBranch } from '../git/merge';
import { findRepo, isMerged } from '../git/repo';
import { type ListedWorktree, clearIdle, listWorktrees, removeWorktree, worktreeDirFor } from '../git/worktrees';

/*
 * What tasks changed in their worktrees, as people handle it afterwards: merge a task's branch into its base, throw
 * it away, list SparkQ's worktrees and branches with the state of their tasks, prune what is done. The CLI
 * (`sparkq merge`, `sparkq worktree …`) and VS Code both call these, so they say and do the same. git is the truth
 * about branches and merges; the queue says which task a branch belongs to and what became of it.
 */

/** What these functions need of the queue. */
export type ChangesQueue = Pick<QueueApi, 'getTask' | 'getQueue'>;

export interface ChangesContext {
  q: ChangesQueue;
  workspaceDir: string;
  /** `.sparkq/` of the workspace. */
  sparkqDir: string;
}

/** The repository a task's change lives in: that of its queue's working directory (the workspace's by default). */
async function repoOfTask(ctx: ChangesContext, task: Task): Promise<{ top: string; commonDir: string }> {
  const queue = await ctx.q.getQueue(task.queueId);
  return findRepo(queue.workdir ? path.resolve(ctx.workspaceDir, queue.workdir) : ctx.workspaceDir);
}

/** The task's change, or an error that says why there is none to act on. */
function changeOf(task: Task): TaskChange {
  if (!task.change) {
    throw new SparkqError('invalid-input', `task ${task.id} did not run in a worktree (its queue has no isolation: worktree), so it has no branch of its own`);
  }
  return task.change;
}

export type TaskMerge = MergeOutcome | { outcome: 'nothing' };

/**
 * Merges a succeeded task's branch into its base (or `into`): a fast-forward or a merge commit as `mode` says. A
 * conflict comes back with its files and leaves the base exactly as it was; a merged task's clean worktree is removed
 * (its branch stays until `worktree prune`).
 */
export async function mergeTask(ctx: ChangesContext, ref: string, opts: { mode: MergeMode; into?: string }): Promise<{ task: Task; into: string; result: TaskMerge }> {
  const task = await ctx.q.getTask(ref);
  const change = changeOf(task);
  if (task.status !== 'succeeded') {
    throw new SparkqError('conflict', `task ${task.id} is ${task.status}; only a succeeded task's change is merged${task.status === 'failed' ? ` (its work is kept in ${change.worktree}; requeue the task, or look there)` : ''}`);
  }
  const into = opts.into ?? change.baseRef;
  if (!into) throw new SparkqError('invalid-input', `the queue of task ${task.id} started from a bare commit, not a branch: say which branch to merge into (--into BRANCH)`);
  if (change.commit === null) return { task, into, result: { outcome: 'nothing' } };
  const repo = await repoOfTask(ctx, task);
  const summary = (task.result?.summary ?? '').split('\n')[0]!.slice(0, 200);
  const result = await mergeBranch({ repoTop: repo.top, branch: change.branch, into, mode: opts.mode, message: `Merge ${change.branch}${summary ? `: ${summary}` : ''}\n\nSparkQ task ${task.id} (queue ${task.queue}).` });
  if (result.outcome !== 'conflict') await removeCleanWorktree(repo.top, path.resolve(ctx.workspaceDir, change.worktree), change.branch);
  return { task, into, result };
}

/**
 * Whether the worktree folder `dir` exists and is on `branch`: a worker moves a finished task's clean worktree on to its
 * next task, so the folder a task ran in belongs to another task once it holds another branch.
 */
async function holdsBranch(dir: string, branch: string): Promise<boolean> {
  if (!fs.existsSync(dir)) return false;
  const head = await runGit(['symbolic-ref', '-q', '--short', 'HEAD'], { cwd: dir });
  return head.code === 0 && head.stdout.trim() === branch;
}

/** Removes a task's worktree when it is still on the task's branch and holds nothing uncommitted; otherwise leaves it. */
async function removeCleanWorktree(repoTop: string, dir: string, branch: string): Promise<void> {
  if (!(await holdsBranch(dir, branch))) return;
  await removeWorktree({ repoTop, dir, branch, deleteBranch: false, force: false }).catch(() => undefined);
}

/** Throws a task's change away: its worktree (uncommitted work included) and its branch. Never a running task's. */
export async function discardTask(ctx: ChangesContext, ref: string): Promise<Task> {
  const task = await ctx.q.getTask(ref);
  const change = changeOf(task);
  if (task.status === 'running' || task.status === 'queued') {
    throw new SparkqError('conflict', `task ${task.id} is ${task.status}; its worktree is in use: discard it once the task has finished`);
  }
  const repo = await repoOfTask(ctx, task);
  const dir = path.resolve(ctx.workspaceDir, change.worktree);
  // A worktree that moved on to the worker's next task is that task's now: only the branch is this task's.
  if (await holdsBranch(dir, change.branch)) await discard({ repoTop: repo.top, dir, branch: change.branch });
  else await removeEntry(repo.top, null, change.branch);
  return task;
}

/** Removes a worktree (uncommitted work included) and/or a branch, whichever there is. */
async function removeEntry(top: string, dir: string | null, branch: string | null): Promise<void> {
  if (dir) {
    await removeWorktree({ repoTop: top, dir, branch, deleteBranch: true, force: true });
    return;
  }
  if (branch && (await runGit(['rev-parse', '-q', '--verify', `refs/heads/${branch}`], { cwd: top })).code === 0) await git(['branch', '-D', branch], { cwd: top });
}

/**
 * The task's worktree, to open: where it ran if it is still there on the task's branch; otherwise (a worker moved it on
 * to its next task) the task's branch checked out again in a worktree of its own.
 */
export async function openTaskWorktree(ctx: ChangesContext, ref: string): Promise<{ task: Task; dir: string; created: boolean }> {
  const task = await ctx.q.getTask(ref);
  const change = changeOf(task);
  const dir = path.resolve(ctx.workspaceDir, change.worktree);
  if (await holdsBranch(dir, change.branch)) {
    // Opened to look at: no worker may take it away from under the person now.
    clearIdle(dir);
    return { task, dir, created: false };
  }
  const repo = await repoOfTask(ctx, task);
  const fresh = fs.existsSync(dir) ? worktreeDirFor(ctx.sparkqDir, `${task.id}-review`) : dir;
  if (fs.existsSync(fresh)) return { task, dir: fresh, created: false };
  fs.mkdirSync(path.dirname(fresh), { recursive: true });
  await git(['worktree', 'add', fresh, change.branch], { cwd: repo.top, hint: `the branch ${change.branch} may have been discarded` });
  return { task, dir: fresh, created: true };
}

/** The patch of a task's change: its commit against the base, or what a failed task left uncommitted in its worktree. */
export async function diffOfTask(ctx: ChangesContext, ref: string): Promise<{ task: Task; patch: string }> {
  const task = await ctx.q.getTask(ref);
  const change = changeOf(task);
  const repo = await repoOfTask(ctx, task);
  if (change.commit !== null) return { task, patch: await git(['diff', '--no-ext-diff', '--no-color', `${change.baseCommit}..${change.commit}`], { cwd: repo.top }) };
  const dir = path.resolve(ctx.workspaceDir, change.worktree);
  if (!fs.existsSync(dir)) return { task, patch: '' };
  // Untracked files too: added to a throwaway index, never to the worktree's own.
  const index = path.join(ctx.sparkqDir, `diff-index-${process.pid}`);
  try {
    const env = { GIT_INDEX_FILE: index };
    await git(['read-tree', 'HEAD'], { cwd: dir, env });
    await git(['add', '-A', '--', '.'], { cwd: dir, env });
    return { task, patch: await git(['diff', '--cached', '--no-ext-diff', '--no-color', change.baseCommit], { cwd: dir, env }) };
  } finally {
    fs.rmSync(index, { force: true });
  }
}

/** What became of the task a worktree or branch belongs to, and so what pruning may do with it. */
export type ChangeState =
  /** Its task runs, or waits to run again: never touched. */
  | 'in-use'
  /** Succeeded, its commit is in its base (or it changed nothing): pruned by default. */
  | 'merged'
  | 'no-change'
  /** Succeeded, not merged yet: pruned only when asked for unmerged work. */
  | 'unmerged'
  /** Failed: kept for inspection; pruned only when asked for failed work. */
  | 'failed'
  /** No task in the queue (purged, or another workspace's): pruned only when asked. */
  | 'orphan';

export interface ChangeEntry {
  taskId: string | null;
  task: Task | null;
  branch: string | null;
  /** The worktree, when there is one (a reused worktree belongs to the task whose branch it holds). */
  dir: string | null;
  dirty: boolean;
  state: ChangeState;
  /** One line for people: why it is in that state. */
  note: string;
}

/** SparkQ's worktrees and sparkq/… branches in the repository, each with its task and state; with `queue` (an id), only its tasks'. */
export async function listChanges(ctx: ChangesContext, only: { queue?: string } = {}): Promise<ChangeEntry[]> {
  const repo = await findRepo(ctx.workspaceDir);
  const worktrees = await listWorktrees(repo.top, path.join(ctx.sparkqDir, 'worktrees'));
  const branches = splitZ(await git(['for-each-ref', '--format=%(refname:short)%00', 'refs/heads/sparkq/'], { cwd: repo.top })).map((b) => b.trim()).filter(Boolean);
  const byBranch = new Map<string, ListedWorktree>();
  const entries: { taskId: string | null; branch: string | null; wt: ListedWorktree | null }[] = [];
  for (const w of worktrees) {
    if (w.branch) byBranch.set(w.branch, w);
    else entries.push({ taskId: w.taskId, branch: null, wt: w });
  }
  for (const b of branches) entries.push({ taskId: /^sparkq\/[^/]+\/([^/]+)$/.exec(b)?.[1] ?? null, branch: b, wt: byBranch.get(b) ?? null });
  for (const [b, w] of byBranch) if (!branches.includes(b)) entries.push({ taskId: w.taskId, branch: b, wt: w });
  const out: ChangeEntry[] = [];
  for (const e of entries) {
    const task = e.taskId ? await taskOrNull(ctx.q, e.taskId) : null;
    if (only.queue !== undefined && task?.queueId !== only.queue) continue;
    const { state, note } = await stateOf(repo.top, task, e.branch);
    out.push({ taskId: e.taskId, task, branch: e.branch, dir: e.wt?.dir ?? null, dirty: e.wt?.dirty ?? false, state, note });
  }
  return out.sort((a, b) => (a.task?.createdAt ?? '').localeCompare(b.task?.createdAt ?? '') || (a.branch ?? '').localeCompare(b.branch ?? ''));
}

/** The task, or null when the queue has none by that id (purged, or another workspace's). */
async function taskOrNull(q: ChangesQueue, id: string): Promise<Task | null> {
  try {
    return await q.getTask(id);
  } catch (e) {
    if (isSparkqError(e, 'not-found')) return null;
    throw e;
  }
}

async function stateOf(top: string, task: Task | null, branch: string | null): Promise<{ state: ChangeState; note: string }> {
  if (!task) return { state: 'orphan', note: 'no such task in this queue (purged?)' };
  if (task.status === 'running' || task.status === 'queued') return { state: 'in-use', note: `task ${task.status}` };
  const change = task.change;
  if (task.status === 'failed') return { state: 'failed', note: `failed: ${(task.error ?? '').split('\n')[0]!.slice(0, 120)}` };
  if (!change || change.commit === null) return { state: 'no-change', note: 'succeeded without changes' };
  const into = change.baseRef;
  const tip = branch ? await runGit(['rev-parse', '-q', '--verify', `refs/heads/${branch}`], { cwd: top }) : null;
  const commit = tip && tip.code === 0 ? tip.stdout.trim() : change.commit;
  if (into && (await isMerged(top, commit, into).catch(() => false))) return { state: 'merged', note: `merged into ${into}` };
  return { state: 'unmerged', note: into ? `not merged into ${into}: sparkq merge ${task.id}` : `not merged (its base is a bare commit): sparkq merge ${task.id} --into BRANCH` };
}

export interface PruneOptions {
  /** Also the worktrees and branches of failed tasks (kept for inspection otherwise). */
  failed?: boolean;
  /** Also succeeded work that was never merged, and branches whose task is gone. Asked for explicitly, never by default. */
  unmerged?: boolean;
  /** Say what would go, remove nothing. */
  dryRun?: boolean;
  /** Only the work of this queue's tasks (its id). */
  queue?: string;
}

export interface PruneResult {
  removed: ChangeEntry[];
  kept: ChangeEntry[];
}

/** Removes the worktrees and branches of merged and unchanged tasks, and those of failed or unmerged ones when asked. */
export async function pruneChanges(ctx: ChangesContext, opts: PruneOptions = {}): Promise<PruneResult> {
  const repo = await findRepo(ctx.workspaceDir);
  const entries = await listChanges(ctx, opts.queue !== undefined ? { queue: opts.queue } : {});
  const removed: ChangeEntry[] = [];
  const kept: ChangeEntry[] = [];
  for (const e of entries) {
    const go =
      e.state === 'merged' || e.state === 'no-change' ? !e.dirty || opts.unmerged === true : e.state === 'failed' ? opts.failed === true : e.state === 'unmerged' || e.state === 'orphan' ? opts.unmerged === true : false;
    if (!go) {
      kept.push(e);
      continue;
    }
    // Forced: what may go was decided above (git's own check of a branch is against HEAD, not the task's base).
    if (!opts.dryRun) await removeEntry(repo.top, e.dir, e.branch);
    removed.push(e);
  }
  return { removed, kept };
}

/** What a merge group's automatic merge did, once its last task succeeded. */
export interface GroupMerge {
  group: string;
  /** The group's tasks merged now (or found merged already), in plan order. */
  merged: Task[];
  /** The first that did not merge: its conflicting files (or why it could not), and the tasks left unmerged after it. */
  stopped: { task: Task; files: string[]; reason: string; left: Task[] } | null;
}

/**
 * After a task of a merge group (a plan batch with `merge: auto`) succeeded, or passed its check: when every task of
 * its group has succeeded and, where validated, passed (the newest copy of each), merges them all into their base in plan order, and stops at the first that
 * conflicts or cannot merge; null while some of the group has not succeeded yet. Merges into one repository are
 * serialized, so two workers finishing the group's last tasks at once merge each task once (the second finds them in).
 */
export async function mergeGroupIfDone(
  ctx: ChangesContext & { q: ChangesQueue & Pick<QueueApi, 'listTasks'> },
  task: Task,
  mode: MergeMode,
): Promise<GroupMerge | null> {
  const group = task.mergeGroup;
  if (group === null || task.plan === null) return null;
  const all: Task[] = [];
  for (let before: string | undefined; ; ) {
    const page = await ctx.q.listTasks({ plan: task.plan, limit: 1000, ...(before ? { before } : {}) });
    all.push(...page.tasks);
    if (page.next === null) break;
    before = page.next;
  }
  // Newest first: the first task seen of each name is its newest copy; plan order is the reverse of the originals'.
  const newest = new Map<string, Task>();
  for (const t of all) if (t.mergeGroup === group && !newest.has(t.planKey ?? t.id)) newest.set(t.planKey ?? t.id, t);
  const order = [...all].reverse().map((t) => t.planKey ?? t.id);
  const members = [...newest.values()].sort((a, b) => order.indexOf(a.planKey ?? a.id) - order.indexOf(b.planKey ?? b.id));
  // Done means succeeded and, for a validated task, passed: nothing merges before its check says so.
  if (members.some((t) => t.status !== 'succeeded' || (t.validation !== null && t.validation.status !== 'passed'))) return null;
  const merged: Task[] = [];
  for (let i = 0; i < members.length; i++) {
    const t = members[i]!;
    if (!t.change) continue; // ran in no worktree: nothing of it to merge
    try {
      const r = await mergeTask(ctx, t.id, { mode });
      if (r.result.outcome === 'conflict') return { group, merged, stopped: { task: t, files: r.result.files, reason: `conflicts in ${r.result.files.join(', ')}`, left: members.slice(i + 1) } };
      merged.push(t);
    } catch (e) {
      const files = isSparkqError(e) && Array.isArray(e.details?.['files']) ? (e.details['files'] as string[]) : [];
      return { group, merged, stopped: { task: t, files, reason: e instanceof Error ? e.message : String(e), left: members.slice(i + 1) } };
    }
  }
  return { group, merged, stopped: null };
}
