import * as path from 'node:path';
import { MERGE_MODES, type MergeMode } from '../../core/config';
import { SparkqError } from '../../core/errors';
import { loadWorkspaceConfig } from '../../owner/configWatcher';
import { sparkqDirOf } from '../../owner/workspace';
import { type ChangeEntry, type ChangesContext, diffOfTask, discardTask, listChanges, mergeTask, openTaskWorktree, pruneChanges } from '../../worker/changes';
import type { CommandContext } from '../context';
import { action } from '../context';
import { CliError } from '../errors';
import { taskJson } from '../json';
import type { Cell } from '../output';
import type { CommandGroup } from '../registry';

interface MergeOptions {
  into?: string;
  ffOnly?: boolean;
  noFf?: boolean;
}
interface PruneOptions {
  failed?: boolean;
  unmerged?: boolean;
  dryRun?: boolean;
  yes?: boolean;
  queue?: string;
}

/** --queue NAME|ID as the queue's id (an ended queue by its id), or no filter. */
async function onlyQueue(q: ChangesContext['q'], ref: string | undefined): Promise<{ queue?: string }> {
  return ref === undefined ? {} : { queue: (await q.getQueue(ref)).id };
}

function changesContext(q: ChangesContext['q'], workspace: string): ChangesContext {
  return { q, workspaceDir: workspace, sparkqDir: sparkqDirOf(workspace) };
}

const STATE_STYLE = { 'in-use': 'yellow', merged: 'green', 'no-change': 'dim', unmerged: 'cyan', failed: 'red', orphan: 'magenta' } as const;

function entryJson(e: ChangeEntry, workspace: string) {
  return {
    task: e.taskId,
    status: e.task?.status ?? null,
    queue: e.task?.queue ?? null,
    state: e.state,
    branch: e.branch,
    worktree: e.dir ? path.relative(workspace, e.dir).split(path.sep).join('/') : null,
    dirty: e.dirty,
    note: e.note,
    change: e.task?.change ?? null,
  };
}

function printEntries(ctx: CommandContext, entries: ChangeEntry[], workspace: string): void {
  ctx.out.table(
    ['TASK', 'STATE', 'BRANCH', 'WORKTREE', 'CHANGE', 'NOTE'],
    entries.map((e): Cell[] => {
      const c = e.task?.change;
      return [
        e.taskId ?? '-',
        { text: e.state + (e.dirty ? ' (uncommitted)' : ''), style: STATE_STYLE[e.state] },
        e.branch ?? '-',
        e.dir ? path.relative(workspace, e.dir).split(path.sep).join('/') : '-',
        c && c.commit ? `${c.filesChanged} files +${c.insertions} −${c.deletions}` : '-',
        e.note,
      ];
    }),
  );
}

/** `sparkq merge TASK` and `sparkq worktree list|prune|discard|diff|open`: what tasks changed in their worktrees. */
export const worktreeCommands: CommandGroup = {
  register(program, io) {
    program
      .command('merge')
      .description("merge a succeeded task's branch into its queue's base branch (a conflict is reported with its files; nothing is left half-merged)")
      .argument('<task>', 'the task id')
      .option('--into <branch>', 'merge into this branch instead of the base')
      .option('--ff-only', 'only a fast-forward; refuse when the base has moved on')
      .option('--no-ff', 'always a merge commit')
      .action(
        action<MergeOptions>(io, (ctx, [ref], opts) =>
          ctx.withQueue(async (q, workspace) => {
            if (opts.ffOnly && opts.noFf === false) throw new CliError('--ff-only and --no-ff contradict each other: give one');
            // commander's --no-ff sets ff: false; a plain run leaves it true.
            const ff = (opts as { ff?: boolean }).ff;
            const mode: MergeMode = opts.ffOnly ? 'ff-only' : ff === false ? 'merge' : loadWorkspaceConfig(workspace).worktree.merge;
            if (!MERGE_MODES.includes(mode)) throw new CliError(`unknown merge mode ${mode}`);
            const { task, into, result } = await mergeTask(changesContext(q, workspace), ref!, { mode, ...(opts.into !== undefined ? { into: opts.into } : {}) });
            if (ctx.json) ctx.out.printJson({ task: task.id, branch: task.change?.branch ?? null, into, ...result });
            if (result.outcome === 'conflict') {
              throw new SparkqError(
                'conflict',
                `merging ${task.change!.branch} into ${into} conflicts in ${result.files.join(', ')}; nothing was merged and ${into} is as it was. Resolve it by hand (git merge ${task.change!.branch}), or requeue the task on top of ${into}`,
                { files: result.files },
              );
            }
            if (ctx.json) return;
            if (result.outcome === 'nothing') ctx.out.line(`Task ${task.id} changed nothing; there is nothing to merge`);
            else if (result.outcome === 'up-to-date') ctx.out.line(`${task.change!.branch} is already in ${into} (${result.commit.slice(0, 12)})`);
            else ctx.out.line(`Merged ${task.change!.branch} into ${into}: ${result.commit.slice(0, 12)}`);
          }),
        ),
      );

    const wt = program.command('worktree').description('the worktrees and branches of tasks on worktree queues: list, prune, discard, diff, open');

    wt.command('list')
      .description("SparkQ's worktrees and sparkq/… branches, with their tasks' state (in use, merged, unmerged, failed, …)")
      .option('--queue <queue>', "only this queue's tasks (name or id)")
      .action(
        action<{ queue?: string }>(io, (ctx, _args, opts) =>
          ctx.withQueue(async (q, workspace) => {
            const entries = await listChanges(changesContext(q, workspace), await onlyQueue(q, opts.queue));
            if (ctx.json) ctx.out.printJson(entries.map((e) => entryJson(e, workspace)));
            else if (entries.length === 0) ctx.out.line('No task worktrees or branches');
            else printEntries(ctx, entries, workspace);
          }),
        ),
      );

    wt.command('prune')
      .description('remove the worktrees and branches of merged tasks and of tasks that changed nothing; failed and unmerged ones only when asked')
      .option('--failed', "also failed tasks' worktrees (kept for inspection otherwise)")
      .option('--unmerged', 'also succeeded work never merged, and branches whose task is gone (needs --yes)')
      .option('--dry-run', 'say what would be removed, remove nothing')
      .option('--yes', 'confirm removing unmerged work')
      .option('--queue <queue>', "only this queue's tasks (name or id)")
      .action(
        action<PruneOptions>(io, (ctx, _args, opts) =>
          ctx.withQueue(async (q, workspace) => {
            const only = await onlyQueue(q, opts.queue);
            if (opts.unmerged && !opts.yes && !opts.dryRun) {
              const preview = await pruneChanges(changesContext(q, workspace), { failed: opts.failed === true, unmerged: true, dryRun: true, ...only });
              const unmerged = preview.removed.filter((e) => e.state === 'unmerged' || e.state === 'orphan');
              throw new CliError(
                `--unmerged deletes work that was never merged (${unmerged.map((e) => e.branch ?? e.taskId).join(', ') || 'none now'}); look with \`sparkq worktree list\`, then add --yes`,
              );
            }
            const r = await pruneChanges(changesContext(q, workspace), { failed: opts.failed === true, unmerged: opts.unmerged === true, dryRun: opts.dryRun === true, ...only });
            if (ctx.json) {
              ctx.out.printJson({ dryRun: opts.dryRun === true, removed: r.removed.map((e) => entryJson(e, workspace)), kept: r.kept.map((e) => entryJson(e, workspace)) });
              return;
            }
            const verb = opts.dryRun ? 'Would remove' : 'Removed';
            ctx.out.line(r.removed.length === 0 ? 'Nothing to prune' : `${verb} ${r.removed.length}:`);
            for (const e of r.removed) ctx.out.line(`  ${e.taskId ?? '-'}  ${e.state}  ${e.branch ?? ''}${e.dir ? `  ${path.relative(workspace, e.dir)}` : ''}`);
            const kept = r.kept.filter((e) => e.state !== 'in-use');
            if (kept.length > 0) {
              ctx.out.line(`Kept ${kept.length} (--failed and --unmerged remove them):`);
              for (const e of kept) ctx.out.line(`  ${e.taskId ?? '-'}  ${e.state}  ${e.note}`);
            }
          }),
        ),
      );

    wt.command('discard')
      .description("throw away a finished task's change: its worktree (uncommitted work included) and its branch")
      .argument('<task>', 'the task id')
      .action(
        action(io, (ctx, [ref]) =>
          ctx.withQueue(async (q, workspace) => {
            const task = await discardTask(changesContext(q, workspace), ref!);
            if (ctx.json) ctx.out.printJson({ discarded: task.id, branch: task.change?.branch ?? null, task: taskJson(task) });
            else ctx.out.line(`Discarded the change of ${task.id}: ${task.change?.branch ?? ''} and its worktree are gone`);
          }),
        ),
      );

    wt.command('diff')
      .description("print a task's change as a patch: its commit against the base, or a failed task's uncommitted work")
      .argument('<task>', 'the task id')
      .action(
        action(io, (ctx, [ref]) =>
          ctx.withQueue(async (q, workspace) => {
            const { task, patch } = await diffOfTask(changesContext(q, workspace), ref!);
            if (ctx.json) ctx.out.printJson({ task: task.id, change: task.change, patch });
            else io.stdout.write(patch);
          }),
        ),
      );

    wt.command('open')
      .description("the folder of a task's worktree (checked out again from its branch when a worker has moved on)")
      .argument('<task>', 'the task id')
      .action(
        action(io, (ctx, [ref]) =>
          ctx.withQueue(async (q, workspace) => {
            const r = await openTaskWorktree(changesContext(q, workspace), ref!);
            if (ctx.json) ctx.out.printJson({ task: r.task.id, dir: r.dir, created: r.created });
            else ctx.out.line(r.dir);
          }),
        ),
      );
  },
};
