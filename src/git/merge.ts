/*
 * Merging a task's branch into its base, and discarding it. A conflict is reported with its files and never
 * resolved; nothing is left half-merged (an aborted merge restores the worktree and index exactly). Merges into one
 * repository are serialized by a lock file in its common git directory, whoever makes them (workers, the CLI, VS Code).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SparkqError } from '../core/errors';
import { firstLine, git, gitError, identityFallback, runGit, splitZ } from './git';
import { branchCommit, findRepo } from './repo';
import { gitWorktrees, removeWorktree, statusPaths } from './worktrees';

export type MergeMode = 'ff-only' | 'merge' | 'ff-or-merge';

export interface MergeBranchInput {
  repoTop: string;
  /** The task's branch. */
  branch: string;
  /** The branch to merge into (the queue's baseRef). */
  into: string;
  /** ff-only: only a fast-forward; merge: always a merge commit; ff-or-merge: a fast-forward when possible. */
  mode: MergeMode;
  /** The merge commit's message. */
  message: string;
  /** How long to wait for another merge into the same repository, ms (default 60 s). */
  lockTimeoutMs?: number;
}

export type MergeOutcome = { outcome: 'merged' | 'up-to-date'; commit: string } | { outcome: 'conflict'; files: string[] };

const LOCK_FILE = 'sparkq-merge.lock';

function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Takes the repository's merge lock: a file created with O_EXCL holding our pid and a nonce. A lock whose pid is
 * dead is taken over (renamed away first, so that of two contenders only one takes it). Waits up to `timeoutMs`.
 */
export async function acquireMergeLock(commonDir: string, timeoutMs = 60_000): Promise<() => void> {
  const file = path.join(commonDir, LOCK_FILE);
  const mine = `${process.pid} ${Date.now()} ${Math.random().toString(36).slice(2)}\n`;
  const deadline = Date.now() + timeoutMs;
  for (let wait = 10; ; wait = Math.min(wait * 2, 200)) {
    try {
      const fd = fs.openSync(file, fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_WRONLY, 0o644);
      try {
        fs.writeSync(fd, mine);
      } finally {
        fs.closeSync(fd);
      }
      return () => {
        try {
          if (fs.readFileSync(file, 'utf8') === mine) fs.unlinkSync(file);
        } catch {
          // already gone
        }
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw new SparkqError('unavailable', `cannot create the merge lock ${file}: ${(e as Error).message}`);
    }
    let held: string;
    try {
      held = fs.readFileSync(file, 'utf8');
    } catch {
      continue; // released between our open and our read: try again at once
    }
    const pid = Number(held.split(' ')[0]);
    // An empty file is a holder between its create and its write; give it a moment.
    if (held !== '' && !pidAlive(pid)) {
      const aside = `${file}.stale-${process.pid}-${Math.random().toString(36).slice(2)}`;
      try {
        fs.renameSync(file, aside);
        const moved = fs.readFileSync(aside, 'utf8');
        if (moved !== held) {
          // We moved a fresh lock someone took after our read: put it back unless yet another one is there.
          try {
            fs.linkSync(aside, file);
          } catch {
            // a third holder took it; theirs stands
          }
        }
        fs.unlinkSync(aside);
      } catch {
        // someone else took it over first
      }
      continue;
    }
    if (Date.now() >= deadline) {
      throw new SparkqError('conflict', `another merge into this repository is running (pid ${Number.isFinite(pid) ? pid : '?'}, lock ${file}): try again when it has finished`);
    }
    await new Promise((r) => setTimeout(r, wait));
  }
}

/**
 * Merges `branch` into `into`. Where `into` is checked out (usually the main worktree) the merge happens there, and a
 * worktree with uncommitted changes to tracked files is refused; a conflict is aborted so that worktree and index are
 * exactly as before. Where `into` is checked out nowhere, the merge is made without a working tree (merge-tree,
 * commit-tree, and update-ref guarded by the old value).
 */
export async function mergeBranch(input: MergeBranchInput): Promise<MergeOutcome> {
  const { repoTop, branch, into, mode } = input;
  const { commonDir } = await findRepo(repoTop);
  const release = await acquireMergeLock(commonDir, input.lockTimeoutMs);
  try {
    const [source, target] = await Promise.all([branchCommit(repoTop, branch), branchCommit(repoTop, into)]);
    if (!source) throw new SparkqError('not-found', `there is no branch ${branch} to merge in ${repoTop}: was the task discarded?`);
    if (!target) throw new SparkqError('not-found', `there is no branch ${into} to merge into in ${repoTop}: create it, or merge the task's branch by hand`);
    const [contained, canFastForward] = await Promise.all([ancestor(repoTop, source, target), ancestor(repoTop, target, source)]);
    if (contained) return { outcome: 'up-to-date', commit: target };
    if (mode === 'ff-only' && !canFastForward) {
      throw new SparkqError('conflict', `${into} has moved on since ${branch} started, so it cannot be fast-forwarded: merge with a merge commit instead (mode "merge" or "ff-or-merge")`);
    }
    const fastForward = canFastForward && mode !== 'merge';
    const checkedOut = (await gitWorktrees(repoTop)).find((w) => w.branch === into && !w.bare && !w.prunable);
    if (checkedOut) return await mergeInWorktree(checkedOut.dir, input, source, fastForward);
    return await mergeWithoutWorktree(repoTop, input, source, target, fastForward);
  } finally {
    release();
  }
}

async function ancestor(cwd: string, a: string, b: string): Promise<boolean> {
  const r = await runGit(['merge-base', '--is-ancestor', a, b], { cwd });
  if (r.code === 0) return true;
  if (r.code === 1) return false;
  throw gitError(['merge-base', '--is-ancestor', a, b], r, { cwd });
}

async function mergeInWorktree(wt: string, input: MergeBranchInput, source: string, fastForward: boolean): Promise<MergeOutcome> {
  if (fs.existsSync(path.join(wt, '.git')) && (await runGit(['rev-parse', '-q', '--verify', 'MERGE_HEAD'], { cwd: wt })).code === 0) {
    throw new SparkqError('conflict', `${wt} is in the middle of a merge already: finish it (\`git commit\`) or abort it (\`git merge --abort\`) first`);
  }
  const tracked = await git(['status', '--porcelain=v1', '-z', '--untracked-files=no', '--ignore-submodules=dirty'], { cwd: wt });
  const dirty = statusPaths(tracked);
  if (dirty.length > 0) {
    throw new SparkqError(
      'conflict',
      `${input.into} is checked out at ${wt} with uncommitted changes to ${dirty.slice(0, 10).join(', ')}${dirty.length > 10 ? ` and ${dirty.length - 10} more` : ''}: commit or stash them first, then merge`,
      { files: dirty },
    );
  }
  const args = fastForward
    ? ['merge', '--ff-only', '--quiet', source]
    : [...(await identityFallback(wt)), 'merge', '--no-ff', '--no-verify', '--no-edit', '--quiet', '-m', input.message, source];
  const r = await runGit(args, { cwd: wt });
  if (r.code === 0) return { outcome: 'merged', commit: firstLine(await git(['rev-parse', 'HEAD'], { cwd: wt })) };
  const files = splitZ(await git(['diff', '--name-only', '-z', '--diff-filter=U'], { cwd: wt }));
  const merging = (await runGit(['rev-parse', '-q', '--verify', 'MERGE_HEAD'], { cwd: wt })).code === 0;
  if (merging) await git(['merge', '--abort'], { cwd: wt, hint: `the merge in ${wt} could not be aborted: run \`git merge --abort\` there` });
  if (files.length > 0) return { outcome: 'conflict', files };
  // Refused before it began (an untracked file in the way, say): git changed nothing.
  throw gitError(args, r, { cwd: wt, hint: 'nothing was merged' });
}

async function mergeWithoutWorktree(repoTop: string, input: MergeBranchInput, source: string, target: string, fastForward: boolean): Promise<MergeOutcome> {
  const ref = `refs/heads/${input.into}`;
  let commit = source;
  if (!fastForward) {
    const r = await runGit(['merge-tree', '--write-tree', '--name-only', '-z', '--no-messages', target, source], { cwd: repoTop });
    if (r.code !== 0 && r.code !== 1) throw gitError(['merge-tree', '--write-tree', target, source], r, { cwd: repoTop, hint: 'nothing was merged' });
    const fields = splitZ(r.stdout);
    const tree = fields[0] ?? '';
    if (r.code === 1) return { outcome: 'conflict', files: [...new Set(fields.slice(1).filter((f) => f !== ''))] };
    const id = await identityFallback(repoTop);
    commit = firstLine(await git([...id, 'commit-tree', tree, '-p', target, '-p', source, '-F', '-'], { cwd: repoTop, input: input.message.endsWith('\n') ? input.message : input.message + '\n' }));
  }
  await git(['update-ref', '-m', `sparkq: merge ${input.branch}`, ref, commit, target], {
    cwd: repoTop,
    hint: `${input.into} moved while merging; nothing was changed, merge again`,
  });
  return { outcome: 'merged', commit };
}

/** What a task that waits on others starts from: `start` with their commits merged in, or the conflict that stops it. */
export type Combined = { outcome: 'combined'; commit: string; merged: string[] } | { outcome: 'conflict'; files: string[]; commit: string };

/**
 * `start` with each of `commits` merged in, in turn, without a working tree (merge-tree, commit-tree): where a task
 * that waits on others starts, holding their work where its base does not hold it yet. A commit already in is
 * skipped (the result is `start` when all are). Only commit objects are written, no ref: nothing changes for anyone
 * else, and a conflict (its files, and the commit that met it) leaves nothing behind.
 */
export async function combineCommits(repoTop: string, start: string, commits: readonly { commit: string; message: string }[]): Promise<Combined> {
  let head = start;
  const merged: string[] = [];
  let id: string[] | null = null;
  for (const c of commits) {
    if (await ancestor(repoTop, c.commit, head)) continue;
    if (await ancestor(repoTop, head, c.commit)) {
      head = c.commit;
      merged.push(c.commit);
      continue;
    }
    const r = await runGit(['merge-tree', '--write-tree', '--name-only', '-z', '--no-messages', head, c.commit], { cwd: repoTop });
    if (r.code !== 0 && r.code !== 1) throw gitError(['merge-tree', '--write-tree', head, c.commit], r, { cwd: repoTop });
    const fields = splitZ(r.stdout);
    if (r.code === 1) return { outcome: 'conflict', files: [...new Set(fields.slice(1).filter((f) => f !== ''))], commit: c.commit };
    id ??= await identityFallback(repoTop);
    const message = c.message.endsWith('\n') ? c.message : `${c.message}\n`;
    head = firstLine(await git([...id, 'commit-tree', fields[0] ?? '', '-p', head, '-p', c.commit, '-F', '-'], { cwd: repoTop, input: message }));
    merged.push(c.commit);
  }
  return { outcome: 'combined', commit: head, merged };
}

/** Throws away a task's change: its worktree (uncommitted work included) and its branch. */
export async function discard(input: { repoTop: string; dir: string; branch: string }): Promise<void> {
  await removeWorktree({ repoTop: input.repoTop, dir: input.dir, branch: input.branch, deleteBranch: true, force: true });
}
