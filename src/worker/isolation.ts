import * as path from 'node:path';
import { resolveScriptDirs, type SparkqConfig, type ToolConfig } from '../core/config';
import { errorMessage, SparkqError } from '../core/errors';
import type { Queue, QueueIsolation, Task, TaskChange } from '../core/model';
import { oneLine } from '../core/text';
import { runGit } from '../git/git';
import { combineCommits } from '../git/merge';
import { currentCommit, findRepo, resolveBase } from '../git/repo';
import { branchFor, commitWorktree, markIdle, prepareWorktree, takeIdle, uncommittedChange, worktreeDirFor } from '../git/worktrees';
import { resolveScript } from './executors/script';
import { runProcess } from './proc';

/** A task's worktree while it runs: where, on which branch, from which commit, and where the tool starts in it. */
export interface TaskWorktree {
  dir: string;
  branch: string;
  baseRef: string | null;
  baseCommit: string;
  /** The queue's working directory as it lies in the worktree (the worktree's top when the queue has none). */
  cwd: string;
  /** Paths (relative to the worktree) that were copied or linked in: never part of the task's change. */
  exclude: string[];
}

const INTERPRETERS: Readonly<Record<string, string>> = { '.sh': 'bash', '.bash': 'bash', '.zsh': 'zsh', '.py': 'python3', '.js': 'node', '.mjs': 'node', '.rb': 'ruby', '.pl': 'perl' };

/**
 * Runs the tasks of one worker in worktrees (isolation: worktree, on the queue or as the tool's default): each task on
 * a branch of its own, made from the queue's base; on success its change is committed there with the summary as the
 * message. The worktree of a task that succeeded is clean afterwards, so this worker moves it on to its next task
 * rather than checking out a new one; a failed task's worktree is kept where it is, for inspection, until the task
 * is requeued or the worktree pruned.
 */
export class WorktreeRunner {
  /** The worktree of this worker's last task, clean (its work committed on its own branch): the next one reuses it. */
  private reusable: string | null = null;
  /** Whether this worker looked for an idle worktree another worker left (it does once, at its first task). */
  private adopted = false;
  private readonly repos = new Map<string, { top: string; commonDir: string }>();

  constructor(
    private readonly workspaceDir: string,
    private readonly sparkqDir: string,
    private readonly config: SparkqConfig,
    private readonly baseEnv: NodeJS.ProcessEnv,
  ) {}

  /** Whether a task of this tool on this queue runs in a worktree. */
  static applies(queue: Queue, tool: ToolConfig | undefined): boolean {
    return queue.isolation !== null || tool?.isolation === 'worktree';
  }

  /** The queue's working directory (absolute), where its tasks would run without a worktree. */
  workdirOf(queue: Queue): string {
    return queue.workdir ? path.resolve(this.workspaceDir, queue.workdir) : this.workspaceDir;
  }

  /**
   * Makes (or reuses) the task's worktree, on its own branch, from its start: the queue's base (the tip of its base
   * branch when the queue follows it; for a tool default without a queue base, the repository's HEAD now), with the
   * work of the round it fixes (`fixes`: the copy of a task whose check failed) and of the finished tasks it waits on
   * (`after`) merged in where the base does not hold it yet; for a validation task, the commit it checks.
   */
  async enter(
    task: Task,
    queue: Queue,
    runDir: string,
    write: (s: string) => void,
    on: { after?: readonly Task[]; fixes?: Task | null } = {},
  ): Promise<TaskWorktree> {
    const workdir = this.workdirOf(queue);
    const repo = await this.repoOf(workdir);
    const iso: QueueIsolation = queue.isolation ?? { kind: 'worktree', ...(await resolveBase(workdir)), follow: false };
    // A check runs on what it checks: the checked task's commit (its base when it changed nothing), so a script
    // validator's tests and an agent validator's reading see the change, not the queue's base.
    const checked = checkedChangeOf(task);
    let startCommit = checked ? (checked.commit ?? checked.baseCommit) : iso.follow && iso.baseRef ? await currentCommit(repo.top, iso.baseRef) : iso.baseCommit;
    // `after: [x]` builds on x: x's commit goes in when the base does not hold it yet (a merge group that has not
    // merged, or merged a moment ago in another worker, or a queue that does not follow its base).
    const builds = checked ? [] : [...(on.fixes?.change?.commit ? [on.fixes] : []), ...(await this.buildsOn(repo.top, task, on.after ?? []))];
    let also = '';
    if (builds.length > 0) {
      const c = await combineCommits(repo.top, startCommit, builds.map((t) => ({ commit: t.change!.commit!, message: `Start ${task.id} with the work of ${t.id}: ${oneLine(t.result?.summary ?? '', 200)}` })));
      if (c.outcome === 'conflict') {
        const with_ = builds.find((t) => t.change!.commit === c.commit)!;
        throw new SparkqError(
          'conflict',
          `the work of the tasks it waits on does not merge: ${with_.id} conflicts with the others in ${c.files.join(', ')}; merge them into ${iso.baseRef ?? 'the base'} by hand (sparkq merge TASK), then requeue this task`,
          { files: c.files },
        );
      }
      startCommit = c.commit;
      if (c.merged.length > 0) also = ` with the work of ${builds.filter((t) => c.merged.includes(t.change!.commit!)).map((t) => t.id).join(', ')}`;
    }
    const branch = branchFor(queue.name, task.id);
    const dir = worktreeDirFor(this.sparkqDir, task.id);
    // The first task of this worker may take the clean worktree a worker that ended left behind (checked before use).
    let reuseClean = this.reusable !== null;
    if (this.reusable === null && !this.adopted) {
      this.adopted = true;
      this.reusable = await takeIdle(repo.top, path.join(this.sparkqDir, 'worktrees')).catch(() => null);
      reuseClean = false;
    }
    const reuse = this.reusable;
    this.reusable = null;
    const setupScript = this.config.worktree.setup;
    const prepared = await prepareWorktree({
      repoTop: repo.top,
      dir,
      branch,
      startCommit,
      reuse,
      // This worker committed everything in it at the end of its last task: nothing to check again.
      reuseClean,
      // A later attempt of the task finds its earlier attempt's branch (and maybe worktree) and starts afresh.
      mayExist: task.attempt > 1,
      settings: {
        copy: this.config.worktree.copy,
        link: this.config.worktree.link,
        setup: setupScript ? (cwd) => this.runSetup(setupScript, cwd, write) : null,
      },
      patchFile: path.join(runDir, `attempt-${Math.max(1, task.attempt - 1)}.patch`),
    });
    const rel = path.relative(this.workspaceDir, prepared.dir).split(path.sep).join('/');
    const from = checked
      ? ` (what ${task.validates} ${checked.commit ? 'committed' : 'started from; it changed nothing'})`
      : also
        ? ` (${iso.baseRef ?? 'the base'}${also})`
        : iso.baseRef
          ? ` (${iso.baseRef})`
          : '';
    write(`  worktree ${rel} on ${branch} from ${startCommit.slice(0, 12)}${from}: ${prepared.created ? 'new' : 'reused'}${prepared.setupRan ? ', setup ran' : ''}, ${Math.round(prepared.ms)} ms\n`);
    const inRepo = path.relative(repo.top, workdir);
    return {
      dir: prepared.dir,
      branch,
      baseRef: iso.baseRef,
      baseCommit: startCommit,
      cwd: inRepo === '' ? prepared.dir : path.join(prepared.dir, inRepo),
      exclude: [...this.config.worktree.copy, ...this.config.worktree.link],
    };
  }

  /** The finished tasks `task` waits on whose work is a commit in this repository, in the order it names them. */
  private async buildsOn(repoTop: string, task: Task, after: readonly Task[]): Promise<Task[]> {
    const out: Task[] = [];
    for (const t of after) {
      const commit = t.change?.commit;
      if (t.status !== 'succeeded' || !commit) continue;
      // Another queue's task may have worked in another repository.
      if (t.queueId !== task.queueId && (await runGit(['cat-file', '-e', `${commit}^{commit}`], { cwd: repoTop })).code !== 0) continue;
      out.push(t);
    }
    return out;
  }

  /**
   * After the task: on success its change is committed on its branch (the summary as message) and the worktree is
   * kept for this worker's next task; otherwise what it left uncommitted is described and the worktree stays.
   */
  async leave(wt: TaskWorktree, outcome: { succeeded: true; summary: string } | { succeeded: false }): Promise<TaskChange> {
    const worktree = path.relative(this.workspaceDir, wt.dir).split(path.sep).join('/');
    const base = { worktree, branch: wt.branch, baseRef: wt.baseRef, baseCommit: wt.baseCommit };
    if (outcome.succeeded) {
      const c = await commitWorktree({ dir: wt.dir, branch: wt.branch, baseCommit: wt.baseCommit, message: outcome.summary, author: this.config.worktree.author, exclude: wt.exclude });
      this.reusable = wt.dir;
      return { ...base, ...c };
    }
    const c = await uncommittedChange({ dir: wt.dir, baseCommit: wt.baseCommit, exclude: wt.exclude });
    return { ...base, commit: null, ...c };
  }

  /** When the worker ends: its last worktree, clean, is left for the next worker to take rather than check out anew. */
  release(): void {
    if (this.reusable) markIdle(this.reusable);
    this.reusable = null;
  }

  private async repoOf(workdir: string): Promise<{ top: string; commonDir: string }> {
    let repo = this.repos.get(workdir);
    if (!repo) {
      repo = await findRepo(workdir);
      this.repos.set(workdir, repo);
    }
    return repo;
  }

  /** The worktree's setup script (sparkq.yml worktree.setup), from the script dirs, run in the new worktree: argv only. */
  private async runSetup(name: string, cwd: string, write: (s: string) => void): Promise<void> {
    const script = resolveScript(name, resolveScriptDirs(this.config, this.workspaceDir));
    const interpreter = INTERPRETERS[path.extname(script).toLowerCase()];
    write(`  setup: ${name}\n`);
    const r = await runProcess({
      command: interpreter ?? script,
      args: interpreter ? [script] : [],
      cwd,
      env: { ...this.baseEnv, SPARKQ_WORKTREE: cwd, SPARKQ_WORKSPACE: this.workspaceDir },
      onChunk: (chunk) => write(chunk),
    });
    if (r.spawnError) throw new Error(`the worktree setup script ${name} could not start: ${r.spawnError}`);
    if (r.exitCode !== 0) {
      const tail = r.stderrTail.trim().split('\n').pop() ?? '';
      throw new Error(`the worktree setup script ${name} failed (${r.exitCode !== null ? `exit ${r.exitCode}` : `killed by ${r.signal ?? 'a signal'}`})${tail ? `: ${tail}` : ''}`);
    }
  }
}

/** A worktree failure as a task's error: what went wrong, and that the task's own work (if any) is kept. */
export function worktreeError(stage: 'prepare' | 'commit', e: unknown): string {
  return stage === 'prepare' ? `the task's worktree could not be made: ${errorMessage(e)}` : `the task succeeded, but its change could not be committed: ${errorMessage(e)}; the worktree is kept as it was`;
}

/** On a validation task: the change of the task it checks, as its payload carries it (null when it ran outside a worktree). */
function checkedChangeOf(task: Task): TaskChange | null {
  if (task.validates === null) return null;
  const p = task.payload;
  const change = p !== null && typeof p === 'object' && !Array.isArray(p) ? p['change'] : null;
  if (change === null || change === undefined || typeof change !== 'object' || Array.isArray(change)) return null;
  const c = change as Partial<TaskChange>;
  return typeof c.baseCommit === 'string' && (c.commit === null || typeof c.commit === 'string') ? (c as TaskChange) : null;
}
