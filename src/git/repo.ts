/*
 * The repository a queue's working directory is in, and the base its tasks' branches start from.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SparkqError } from '../core/errors';
import { firstLine, runGit } from './git';

export interface Repo {
  /** The top of the working tree that contains the directory (a linked worktree's own top when inside one). */
  top: string;
  /** The repository's common git directory (shared by all its worktrees): where SparkQ keeps its merge lock. */
  commonDir: string;
}

export interface ResolvedBase {
  /** The branch the queue's changes are for (short name); null when the base is a tag or a bare commit. */
  baseRef: string | null;
  baseCommit: string;
}

/** The git repository `dir` is in, or a SparkqError('invalid-input') that says how to make one. */
export async function findRepo(dir: string): Promise<Repo> {
  if (!fs.existsSync(dir)) throw new SparkqError('invalid-input', `${dir} does not exist: give the queue a working directory inside a git repository`);
  const r = await runGit(['rev-parse', '--show-toplevel', '--git-common-dir'], { cwd: dir });
  if (r.code !== 0) {
    if (/not a git repository/i.test(r.stderr)) {
      throw new SparkqError('invalid-input', `${dir} is not inside a git repository: run \`git init\` there, or give the queue a working directory inside a repository`);
    }
    if (/must be run in a work tree/i.test(r.stderr)) {
      throw new SparkqError('invalid-input', `${dir} is inside a bare git repository (no working tree): give the queue a working directory inside a checked-out repository`);
    }
    throw new SparkqError('invalid-input', `git cannot read the repository at ${dir}: ${r.stderr.trim()}`);
  }
  const [top, common] = r.stdout.split('\n').map((l) => l.replace(/\r$/, ''));
  if (!top || !common) throw new SparkqError('invalid-input', `${dir}: git rev-parse did not name the working tree's top; is this a git repository?`);
  return { top: path.resolve(top), commonDir: path.resolve(dir, common) };
}

/** Refuses a ref git would read as an option, before it reaches argv. */
function checkRefName(ref: string): void {
  if (ref.length === 0 || ref.startsWith('-') || /[\p{Cc}\s]/u.test(ref)) {
    throw new SparkqError('invalid-input', `${JSON.stringify(ref)} is not a usable git ref: name a branch, tag or commit (no spaces, not starting with "-")`);
  }
}

/** The commit `ref` names in the repository at `top` (full hash), or a clear error naming the ref. */
export async function currentCommit(top: string, ref: string): Promise<string> {
  checkRefName(ref);
  const r = await runGit(['rev-parse', '-q', '--verify', `${ref}^{commit}`], { cwd: top });
  if (r.code !== 0) throw new SparkqError('not-found', `git knows no commit named ${JSON.stringify(ref)} in ${top}: check the name with \`git branch -a\` or \`git log\``);
  return firstLine(r.stdout);
}

/**
 * The base a worktree queue's branches start from. No ref: HEAD (baseRef the branch it names, null when detached).
 * A branch: its short name. A tag, a remote-tracking branch or a commit: baseRef null (nothing to merge into).
 */
export async function resolveBase(dir: string, ref?: string | null): Promise<ResolvedBase> {
  const { top } = await findRepo(dir);
  if (ref === undefined || ref === null || ref === 'HEAD') {
    const [branch, head] = await Promise.all([
      runGit(['symbolic-ref', '-q', 'HEAD'], { cwd: top }),
      runGit(['rev-parse', '-q', '--verify', 'HEAD^{commit}'], { cwd: top }),
    ]);
    if (head.code !== 0) {
      throw new SparkqError('invalid-input', `the repository at ${top} has no commit yet (HEAD is unborn): make a first commit (\`git add -A && git commit -m "first commit"\`), then create the queue`);
    }
    const name = firstLine(branch.stdout);
    return { baseRef: branch.code === 0 && name.startsWith('refs/heads/') ? name.slice('refs/heads/'.length) : null, baseCommit: firstLine(head.stdout) };
  }
  checkRefName(ref);
  const short = ref.startsWith('refs/heads/') ? ref.slice('refs/heads/'.length) : ref;
  const asBranch = await runGit(['rev-parse', '-q', '--verify', `refs/heads/${short}^{commit}`], { cwd: top });
  if (asBranch.code === 0) return { baseRef: short, baseCommit: firstLine(asBranch.stdout) };
  try {
    return { baseRef: null, baseCommit: await currentCommit(top, ref) };
  } catch (e) {
    if (e instanceof SparkqError && e.code === 'not-found') {
      throw new SparkqError('invalid-input', `--base ${ref}: git knows no branch, tag or commit by that name in ${top}; check it with \`git branch -a\` or \`git tag\``);
    }
    throw e;
  }
}

/** The branch checked out at `dir` (short name), or null when HEAD is detached. */
export async function currentBranch(dir: string): Promise<string | null> {
  const r = await runGit(['symbolic-ref', '-q', 'HEAD'], { cwd: dir });
  const name = firstLine(r.stdout);
  return r.code === 0 && name.startsWith('refs/heads/') ? name.slice('refs/heads/'.length) : null;
}

/** The commit a local branch points at, or null when there is no such branch. */
export async function branchCommit(top: string, branch: string): Promise<string | null> {
  checkRefName(branch);
  const r = await runGit(['rev-parse', '-q', '--verify', `refs/heads/${branch}^{commit}`], { cwd: top });
  return r.code === 0 ? firstLine(r.stdout) : null;
}

/** Whether `commit` is already contained in `into` (a branch or commit): merged, fast-forwarded or the same. */
export async function isMerged(repoTop: string, commit: string, into: string): Promise<boolean> {
  checkRefName(commit);
  checkRefName(into);
  const r = await runGit(['merge-base', '--is-ancestor', commit, into], { cwd: repoTop });
  if (r.code === 0) return true;
  if (r.code === 1) return false;
  return Promise.reject(new SparkqError('not-found', `cannot tell whether ${commit} is merged into ${into} in ${repoTop}: ${r.stderr.trim()}; check both names with \`git log\``));
}

