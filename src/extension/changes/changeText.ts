import type { MergeMode } from '../../core/config';
import { MERGE_MODES } from '../../core/config';
import type { Task, TaskChange } from '../../core/model';
import type { ChangeEntry } from '../../worker/changes';
import { changeSummary } from '../../shared/dashboardProtocol';

/**
 * The words and small decisions of reviewing a task's change in VS Code (badges, menu flags, the files of a diff, the
 * merge mode, what to say before discarding or pruning), without vscode so that they are unit-tested in plain Node.
 */

/** "+10 −2 · 3 files", "no changes" for a task that succeeded without changing anything; null without a change. */
export const changeBadge = changeSummary;

/**
 * The flags a task row's contextValue carries for its change: `change` when it ran in a worktree and has finished (its
 * worktree or branch can be opened or discarded), `commit` when it succeeded with a commit (shown as a diff, merged).
 */
export function changeFlags(task: Pick<Task, 'status'> & Partial<Pick<Task, 'change'>>): string[] {
  const c = task.change;
  if (!c || (task.status !== 'succeeded' && task.status !== 'failed')) return [];
  return c.commit !== null && task.status === 'succeeded' ? ['change', 'commit'] : ['change'];
}

/** The branch a change merges into, as a person reads it: "main", or "its base commit 1a2b3c4d5e6f" when it is a bare commit. */
export function mergeTargetLabel(change: Pick<TaskChange, 'baseRef' | 'baseCommit'>): string {
  return change.baseRef ?? `its base commit ${change.baseCommit.slice(0, 12)}`;
}

/** One file of a change as the diff shows it: its path on each side (null where the file does not exist). */
export interface DiffFile {
  status: string;
  /** Path in the base commit; null for an added file. */
  before: string | null;
  /** Path in the task's commit; null for a deleted file. */
  after: string | null;
}

/**
 * `git diff --name-status -z -M` output: `STATUS\0PATH\0`, or `R100\0OLD\0NEW\0` for renames and copies.
 * Unknown shapes end the list rather than pairing the wrong paths.
 */
export function parseNameStatus(z: string): DiffFile[] {
  const parts = z.split('\0');
  if (parts.length > 0 && parts[parts.length - 1] === '') parts.pop();
  const out: DiffFile[] = [];
  for (let i = 0; i < parts.length; ) {
    const status = parts[i++] ?? '';
    const letter = status.charAt(0);
    if (letter === 'R' || letter === 'C') {
      const from = parts[i++];
      const to = parts[i++];
      if (from === undefined || to === undefined) break;
      out.push({ status: letter, before: from, after: to });
    } else {
      const p = parts[i++];
      if (p === undefined || letter === '') break;
      out.push({ status: letter, before: letter === 'A' ? null : p, after: letter === 'D' ? null : p });
    }
  }
  return out;
}

/** The title of a file in the changes editor: "src/a.ts", "old.ts → new.ts". */
export function diffFileLabel(f: DiffFile): string {
  if (f.before !== null && f.after !== null && f.before !== f.after) return `${f.before} → ${f.after}`;
  return (f.after ?? f.before)!;
}

/** What VS Code's configuration says of one setting, as `WorkspaceConfiguration.inspect` gives it. */
export interface InspectedSetting<T> {
  globalValue?: T | undefined;
  workspaceValue?: T | undefined;
  workspaceFolderValue?: T | undefined;
}

/**
 * The merge mode: `sparkq.worktree.mergeMode` where a person set it (folder over workspace over user), else sparkq.yml's
 * `worktree.merge`. The setting's declared default is ignored on purpose: unset means "as the project says".
 */
export function chooseMergeMode(setting: InspectedSetting<unknown> | undefined, fromYaml: MergeMode): MergeMode {
  for (const v of [setting?.workspaceFolderValue, setting?.workspaceValue, setting?.globalValue]) {
    if (typeof v === 'string' && (MERGE_MODES as readonly string[]).includes(v)) return v as MergeMode;
  }
  return fromYaml;
}

/** The error a conflicting merge shows: the files, and that nothing changed. */
export function conflictMessage(branch: string, into: string, files: readonly string[]): string {
  const shown = files.slice(0, 10).join(', ');
  const more = files.length > 10 ? ` and ${files.length - 10} more` : '';
  return `Merging ${branch} into ${into} conflicts in ${shown || 'files git did not name'}${more}. Nothing was merged; ${into} is as it was. Resolve it by hand (git merge ${branch}), or requeue the task on top of ${into}.`;
}

/** The modal question before discarding a change: what is lost, louder when it was never merged. */
export function discardQuestion(task: Pick<Task, 'id' | 'status'>, change: TaskChange, merged: boolean | null, dirty: boolean): string {
  const lines = [`Discard the change of task ${task.id}? Its branch ${change.branch} and its worktree are deleted.`];
  if (change.commit !== null && merged === false) lines.push(`Its commit ${change.commit.slice(0, 12)} is NOT merged into ${mergeTargetLabel(change)}: that work will be lost.`);
  if (change.commit !== null && merged === true) lines.push(`Its commit is already merged into ${mergeTargetLabel(change)}; nothing is lost.`);
  if (dirty) lines.push('Its worktree has uncommitted work, which will be lost too.');
  if (change.commit === null && task.status === 'succeeded') lines.push('The task changed nothing.');
  return lines.join('\n\n');
}

/** A queue's worktrees and branches, sorted by what pruning may do with them. */
export interface QueuePruneView {
  /** Merged or unchanged, with nothing uncommitted: removed by the default prune. */
  prunable: ChangeEntry[];
  /** Succeeded but never merged: removed only after an explicit, modal yes. */
  unmerged: ChangeEntry[];
  /** Failed (kept for inspection) or with uncommitted work: left alone. */
  kept: ChangeEntry[];
}

/** The entries of one queue (by id), in the groups above; tasks still in use are left out. */
export function pruneViewOf(entries: readonly ChangeEntry[], queueId: string): QueuePruneView {
  const view: QueuePruneView = { prunable: [], unmerged: [], kept: [] };
  for (const e of entries) {
    if (!e.task || e.task.queueId !== queueId || e.state === 'in-use') continue;
    if ((e.state === 'merged' || e.state === 'no-change') && !e.dirty) view.prunable.push(e);
    else if (e.state === 'unmerged' && !e.dirty) view.unmerged.push(e);
    else view.kept.push(e);
  }
  return view;
}

/** One line per entry for the modal list: "tsk_… sparkq/q/tsk_… (+3 −1 · 2 files)". */
export function entryLine(e: ChangeEntry): string {
  const badge = e.task ? changeBadge(e.task) : null;
  return `${e.taskId ?? '?'} ${e.branch ?? e.dir ?? ''}${badge ? ` (${badge})` : ''}`.trim();
}
