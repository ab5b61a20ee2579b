/*
 * A worktree per task (issue 18): each task of a worktree queue runs in `.sparkq/worktrees/<id>` on its own branch
 * `sparkq/<queue-slug>/<task-id>`. A worker reuses the clean worktree of its previous task (a move and a branch
 * switch touch only the files that differ) instead of checking out the whole tree again. On success the change is
 * committed on the task's branch; the worktree of a failed task stays for inspection until a retry or a cleanup.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { LIMITS } from '../core/constants';
import { SparkqError } from '../core/errors';
import type { ChangedFile, TaskChange } from '../core/model';
import { firstLine, git, identityFallback, runGit, slashRelative, splitZ } from './git';
import { excludeSpecs, matchPlaced, placePaths } from './placed';
import { isMerged } from './repo';

export { isMerged };

export interface WorktreeSettings {
  /** Globs relative to the repository top, copied into each new worktree (e.g. `.env`). */
  copy: string[];
  /** Globs relative to the repository top, symlinked into each new worktree (e.g. `node_modules`). */
  link: string[];
  /** Runs the setup script in a new worktree (supplied by the worker); never called for a reused one. */
  setup: ((cwd: string) => Promise<void>) | null;
}

/** Where SparkQ records, in a worktree's private git dir, the paths it copied or linked there. */
const PLACED_FILE = 'sparkq-placed';

// ---------------------------------------------------------------------------------------------------------------
// Names

/** A queue name as one ref component: lowercase a-z, 0-9 and single dashes, at most 40 characters, never empty. */
export function queueSlug(queueName: string): string {
  const slug = queueName
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 40)
    .replace(/-+$/g, '');
  return slug || 'queue';
}

/** `sparkq/<queue-slug>/<task-id>`: always a valid branch name (`git check-ref-format --branch` accepts it). */
export function branchFor(queueName: string, taskId: string): string {
  const id = taskId.replace(/[^A-Za-z0-9_-]+/g, '-').replace(/^[-_]+|[-_]+$/g, '') || 'task';
  return `sparkq/${queueSlug(queueName)}/${id}`;
}

/** `<sparkqDir>/worktrees/<task id without tsk_>`: short, because Windows paths are. */
export function worktreeDirFor(sparkqDir: string, taskId: string): string {
  const id = taskId.replace(/^tsk_/, '').replace(/[^A-Za-z0-9_-]+/g, '-') || 'task';
  return path.join(sparkqDir, 'worktrees', id);
}

/** `git check-ref-format --branch` without a process: the rules of git-check-ref-format(1). */
export function isValidBranchName(name: string): boolean {
  if (name === '' || name === '@' || name.startsWith('-') || name.startsWith('/') || name.endsWith('/') || name.endsWith('.')) return false;
  if (/[\p{Cc} ~^:?*[\\]/u.test(name) || name.includes('..') || name.includes('@{') || name.includes('//')) return false;
  return name.split('/').every((c) => c !== '' && !c.startsWith('.') && !c.endsWith('.lock'));
}

/** The task id a worktree belongs to: the last component of its sparkq/… branch, else `tsk_<dir name>`. */
function taskIdOf(dir: string, branch: string | null): string | null {
  const m = branch ? /^sparkq\/[^/]+\/([^/]+)$/.exec(branch) : null;
  if (m) return m[1]!;
  const base = path.basename(dir);
  return /^[A-Za-z0-9_-]+$/.test(base) ? (base.startsWith('tsk_') ? base : `tsk_${base}`) : null;
}

// ---------------------------------------------------------------------------------------------------------------
// What git knows about worktrees

export interface GitWorktree {
  dir: string;
  head: string | null;
  /** Short name; null when detached. */
  branch: string | null;
  locked: boolean;
  /** git knows it but its directory is gone (`git worktree prune` would drop it). */
  prunable: boolean;
  bare: boolean;
}

/** `git worktree list --porcelain -z`, parsed. */
export async function gitWorktrees(repoTop: string): Promise<GitWorktree[]> {
  const out = await git(['worktree', 'list', '--porcelain', '-z'], { cwd: repoTop });
  const list: GitWorktree[] = [];
  let cur: GitWorktree | null = null;
  for (const field of out.split('\0')) {
    if (field === '') {
      if (cur) list.push(cur);
      cur = null;
      continue;
    }
    const sp = field.indexOf(' ');
    const key = sp < 0 ? field : field.slice(0, sp);
    const value = sp < 0 ? '' : field.slice(sp + 1);
    if (key === 'worktree') cur = { dir: path.resolve(value), head: null, branch: null, locked: false, prunable: false, bare: false };
    else if (!cur) continue;
    else if (key === 'HEAD') cur.head = value;
    else if (key === 'branch') cur.branch = value.startsWith('refs/heads/') ? value.slice('refs/heads/'.length) : value;
    else if (key === 'locked') cur.locked = true;
    else if (key === 'prunable') cur.prunable = true;
    else if (key === 'bare') cur.bare = true;
  }
  if (cur) list.push(cur);
  return list;
}

/** A path with symlinks resolved where it exists (git reports real paths; tmpdirs on macOS are symlinks), for comparing. */
function canonical(p: string): string {
  let resolved = path.resolve(p);
  try {
    resolved = fs.realpathSync.native(resolved);
  } catch {
    try {
      resolved = path.join(fs.realpathSync.native(path.dirname(resolved)), path.basename(resolved));
    } catch {
      // neither exists: compare as given
    }
  }
  return process.platform === 'win32' ? resolved.toLowerCase() : resolved;
}

function samePath(a: string, b: string): boolean {
  return canonical(a) === canonical(b);
}

function isInside(child: string, parent: string): boolean {
  const rel = path.relative(canonical(parent), canonical(child));
  return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel);
}

/** The private git directory of the linked worktree at `dir` (from its `.git` file), or null. */
function privateGitDir(dir: string): string | null {
  try {
    const text = fs.readFileSync(path.join(dir, '.git'), 'utf8');
    const m = /^gitdir:\s*(.+?)\s*$/m.exec(text);
    return m ? path.resolve(dir, m[1]!) : null;
  } catch {
    return null;
  }
}

/** The paths SparkQ copied or linked into the worktree at `dir` (repo-relative, forward slashes). */
export function placedIn(dir: string): string[] {
  const gitDir = privateGitDir(dir);
  if (!gitDir) return [];
  try {
    return fs.readFileSync(path.join(gitDir, PLACED_FILE), 'utf8').split('\n').filter(Boolean);
  } catch {
    return [];
  }
}

/** Where a worker that ends leaves word that its last worktree is clean and free for the next worker to take. */
const IDLE_FILE = 'sparkq-idle';

/**
 * Marks a worktree this worker left clean (its task's change committed on its own branch) as free for another worker
 * to reuse: the next `sparkq run` on the repository then moves it on instead of checking out the whole tree again.
 */
export function markIdle(dir: string): void {
  const gitDir = privateGitDir(dir);
  if (gitDir) fs.writeFileSync(path.join(gitDir, IDLE_FILE), `${process.pid} ${new Date().toISOString()}\n`);
}

/** Takes a worktree's idle mark away (someone opened it to look, or a worker took it): nobody else may take it then. */
export function clearIdle(dir: string): void {
  const gitDir = privateGitDir(dir);
  if (gitDir) fs.rmSync(path.join(gitDir, IDLE_FILE), { force: true });
}

/**
 * Takes one idle worktree under `worktreesDir`, if there is one: its mark is renamed away (only one taker can win the
 * rename), and its folder returned, for prepareWorktree to reuse (checking that it is clean, as for any reuse).
 */
export async function takeIdle(repoTop: string, worktreesDir: string): Promise<string | null> {
  for (const w of await gitWorktrees(repoTop)) {
    if (w.prunable || w.locked || w.bare || !isInside(w.dir, worktreesDir)) continue;
    const gitDir = privateGitDir(w.dir);
    if (!gitDir) continue;
    try {
      fs.renameSync(path.join(gitDir, IDLE_FILE), path.join(gitDir, `${IDLE_FILE}.taken-${process.pid}`));
    } catch {
      continue; // not idle, or another worker took it first
    }
    fs.rmSync(path.join(gitDir, `${IDLE_FILE}.taken-${process.pid}`), { force: true });
    return w.dir;
  }
  return null;
}

function recordPlaced(dir: string, paths: readonly string[]): void {
  const gitDir = privateGitDir(dir);
  if (gitDir) fs.writeFileSync(path.join(gitDir, PLACED_FILE), paths.map((p) => p + '\n').join(''));
}

/** Changes in the worktree (tracked, and untracked not ignored), leaving out the placed paths. Paths, forward slashes. */
export async function dirtyPaths(dir: string, exclude: readonly string[] = placedIn(dir)): Promise<string[]> {
  const out = await git(['status', '--porcelain=v1', '-z', '--untracked-files=normal', '--ignore-submodules=dirty', '--', '.', ...excludeSpecs(exclude)], { cwd: dir });
  return statusPaths(out);
}

/** The paths of `git status --porcelain=v1 -z` output (a rename's source, which follows its entry, skipped). */
export function statusPaths(out: string): string[] {
  const paths: string[] = [];
  const fields = splitZ(out);
  for (let i = 0; i < fields.length; i++) {
    const f = fields[i]!;
    paths.push(f.slice(3));
    if (f[0] === 'R' || f[0] === 'C') i++;
  }
  return paths;
}

// ---------------------------------------------------------------------------------------------------------------
// Preparing a task's worktree

export interface PrepareWorktreeInput {
  repoTop: string;
  /** Where the task's worktree goes (worktreeDirFor). */
  dir: string;
  /** The task's new branch (branchFor). */
  branch: string;
  startCommit: string;
  /** The worktree this worker finished cleanly before (its work committed on its own branch), to reuse when clean. */
  reuse: string | null;
  /**
   * The caller left `reuse` clean itself (commitWorktree committed everything in it, the placed paths aside): no
   * `git status` of the whole tree to find out again, which on 10k files is most of a reuse's cost.
   */
  reuseClean?: boolean;
  /**
   * Whether `branch` may exist already (a retry of the task: its earlier attempt's branch). When false and `reuse` is
   * clean, the reuse is tried straight away (a move and a switch, nothing asked first); whatever fails there falls
   * back to the full path, which asks git everything.
   */
  mayExist?: boolean;
  settings: WorktreeSettings;
  /** Where to save a previous attempt's uncommitted work when the branch already exists (a retry). */
  patchFile?: string;
}

export interface PreparedWorktree {
  dir: string;
  /** A new worktree was checked out (false: a previous one was reused). */
  created: boolean;
  setupRan: boolean;
  /** Wall time of the preparation, ms. */
  ms: number;
  /** The paths copied or linked in (repo-relative, forward slashes): pass them as `exclude` to commitWorktree. */
  placed: string[];
  /** Set when a previous attempt's work was saved (a retry of the same task with uncommitted changes). */
  patchSaved: string | null;
}

/**
 * Makes the task's worktree at `dir` on a new branch `branch` at `startCommit`: reuses `reuse` when it is clean
 * (moved to `dir`, switched to the new branch; its copied and linked files stay), otherwise checks out a new one,
 * copies and links what the settings name and runs the setup once. A branch that already exists is a retry: the
 * earlier attempt's uncommitted work is saved to `patchFile`, its worktree and branch removed, and the task starts fresh.
 */
export async function prepareWorktree(input: PrepareWorktreeInput): Promise<PreparedWorktree> {
  const t0 = performance.now();
  const { repoTop, dir, branch, startCommit, settings } = input;
  const worktreesDir = path.dirname(dir);
  if (!isValidBranchName(branch)) throw new SparkqError('invalid-input', `${JSON.stringify(branch)} is not a valid branch name: make it with branchFor()`);
  if (input.reuse && input.reuseClean && input.mayExist === false && !fs.existsSync(dir)) {
    const placed = placedIn(input.reuse);
    if (await moveAndSwitch(repoTop, input.reuse, dir, branch, startCommit)) return { dir, created: false, setupRan: false, ms: performance.now() - t0, placed, patchSaved: null };
  }

  // What the reuse needs to know (is it clean?) is asked at the same time as the rest: on 10k files `git status` is
  // most of a reuse's cost.
  const reuseDirty =
    input.reuse && fs.existsSync(input.reuse) ? (input.reuseClean ? Promise.resolve(false) : dirtyPaths(input.reuse).then((d) => d.length > 0, () => true)) : Promise.resolve(true);
  const [existing, known] = await Promise.all([runGit(['rev-parse', '-q', '--verify', `refs/heads/${branch}`], { cwd: repoTop }), gitWorktrees(repoTop)]);
  let patchSaved: string | null = null;
  let worktrees = known;
  if (existing.code === 0) {
    patchSaved = await clearEarlierAttempt(repoTop, worktreesDir, branch, worktrees, input.patchFile ?? null);
    worktrees = await gitWorktrees(repoTop);
  }

  const reuseAtDir = input.reuse !== null && samePath(input.reuse, dir);
  const atDir = worktrees.find((w) => samePath(w.dir, dir));
  if (atDir && !reuseAtDir) {
    throw new SparkqError('conflict', `${dir} is already a worktree (branch ${atDir.branch ?? 'detached'}): finish or discard that task first (\`sparkq worktree prune\`)`);
  }
  if (!atDir && fs.existsSync(dir)) {
    throw new SparkqError('conflict', `${dir} exists but git does not know it as a worktree (left by a killed worker?): look inside, then remove it or run \`sparkq worktree prune\``);
  }

  if (input.reuse) {
    const reused = (await reuseDirty) ? null : await tryReuse(repoTop, input.reuse, dir, branch, startCommit, worktrees);
    if (reused) return { dir, created: false, setupRan: false, ms: performance.now() - t0, placed: reused, patchSaved };
  }
  if (fs.existsSync(dir)) {
    throw new SparkqError('conflict', `the worktree ${dir} has uncommitted changes and cannot be reused for ${branch}: commit or discard them first`);
  }

  fs.mkdirSync(worktreesDir, { recursive: true });
  await git(['worktree', 'add', '--no-track', '-b', branch, dir, startCommit], {
    cwd: repoTop,
    hint: `check that ${startCommit} exists and that ${path.dirname(dir)} is writable`,
  });
  const placed = matchPlaced(repoTop, settings);
  placePaths(repoTop, dir, placed);
  const placedPaths = placed.map((p) => p.path);
  recordPlaced(dir, placedPaths);
  let setupRan = false;
  if (settings.setup) {
    await settings.setup(dir);
    setupRan = true;
  }
  return { dir, created: true, setupRan, ms: performance.now() - t0, placed: placedPaths, patchSaved };
}

/** Reuses an earlier worktree found clean: move it to `dir`, switch to the new branch. Null when it cannot be reused. */
async function tryReuse(repoTop: string, from: string, dir: string, branch: string, startCommit: string, worktrees: readonly GitWorktree[]): Promise<string[] | null> {
  const w = worktrees.find((x) => samePath(x.dir, from));
  if (!w || w.locked || w.prunable || w.bare || samePath(w.dir, repoTop)) return null;
  const placed = placedIn(from);
  return (await moveAndSwitch(repoTop, from, dir, branch, startCommit)) ? placed : null;
}

/**
 * Moves a clean worktree to `dir` and switches it to a new branch at `startCommit`; false, with the worktree back where
 * it was, when either step fails (a locked worktree, a branch that exists, an untracked file in the way).
 */
async function moveAndSwitch(repoTop: string, from: string, dir: string, branch: string, startCommit: string): Promise<boolean> {
  if (!samePath(from, dir)) {
    fs.mkdirSync(path.dirname(dir), { recursive: true });
    const moved = await runGit(['worktree', 'move', from, dir], { cwd: repoTop });
    if (moved.code !== 0) return false;
  }
  // From a clean tree, switching touches only the files that differ between the two commits.
  const switched = await runGit(['switch', '--no-guess', '-c', branch, startCommit], { cwd: dir });
  if (switched.code !== 0) {
    if (!samePath(from, dir)) await git(['worktree', 'move', dir, from], { cwd: repoTop, hint: `the worktree of the previous task is now at ${dir}` });
    return false;
  }
  return true;
}

/**
 * A retry of a task whose branch exists: saves the earlier attempt's uncommitted changes (tracked and untracked, not
 * the placed paths) as a patch, then removes its worktree and its branch.
 */
async function clearEarlierAttempt(repoTop: string, worktreesDir: string, branch: string, worktrees: readonly GitWorktree[], patchFile: string | null): Promise<string | null> {
  const w = worktrees.find((x) => x.branch === branch);
  let saved: string | null = null;
  if (w && !w.prunable) {
    if (!isInside(w.dir, worktreesDir)) {
      throw new SparkqError('conflict', `branch ${branch} is checked out at ${w.dir}, outside SparkQ's worktrees: switch that worktree to another branch first`);
    }
    if (patchFile && fs.existsSync(w.dir)) {
      await addAll(w.dir, placedIn(w.dir));
      const patch = await git(['diff', '--cached', '--binary', '--no-ext-diff', '--no-textconv', 'HEAD'], { cwd: w.dir });
      if (patch.length > 0) {
        fs.mkdirSync(path.dirname(patchFile), { recursive: true });
        fs.writeFileSync(patchFile, patch);
        saved = patchFile;
      }
    }
    await removeWorktree({ repoTop, dir: w.dir, branch, deleteBranch: true, force: true });
  } else {
    if (w) await git(['worktree', 'prune'], { cwd: repoTop });
    await git(['branch', '-D', branch], { cwd: repoTop });
  }
  return saved;
}

// ---------------------------------------------------------------------------------------------------------------
// Committing a task's change

export interface DiffStat {
  /** Up to LIMITS.changedFiles files. */
  files: ChangedFile[];
  filesChanged: number;
  insertions: number;
  deletions: number;
}

export interface CommitWorktreeInput {
  dir: string;
  branch: string;
  baseCommit: string;
  /** The task's summary: its first line (cut to 72 characters) is the subject, the whole of it the body. */
  message: string;
  /** "Name <email>"; null or absent: git's configured identity. */
  author?: string | null;
  /** Paths that were copied or linked in (never committed); those SparkQ recorded are left out as well. */
  exclude: string[];
}

export interface CommittedChange extends DiffStat {
  /** The commit holding the task's change; null when it changed nothing. */
  commit: string | null;
}

/**
 * `git add -A` of the whole worktree except `exclude`. An excluded path that .gitignore already ignores is left out of
 * the pathspecs, because git refuses a pathspec that names an ignored file even to exclude it.
 */
async function addAll(dir: string, exclude: readonly string[], env?: Record<string, string>): Promise<void> {
  let specs: string[] = [];
  if (exclude.length > 0) {
    const r = await runGit(['check-ignore', '-z', '--stdin'], { cwd: dir, input: exclude.join('\0') + '\0', ...(env ? { env } : {}) });
    const ignored = new Set(r.code === 0 ? splitZ(r.stdout) : []);
    specs = excludeSpecs(exclude.filter((p) => !ignored.has(p)));
  }
  await git(['add', '-A', '--', '.', ...specs], { cwd: dir, hint: 'nothing was committed; look at the worktree with `git status`', ...(env ? { env } : {}) });
}

/** A commit message from a summary: a subject of at most 72 characters, then the whole summary when it is longer. */
export function commitMessage(summary: string): string {
  const text = summary.replace(/\r\n/g, '\n').trim();
  if (!text) return 'SparkQ task (no summary)';
  const first = firstLine(text).trim();
  let subject = first;
  if (subject.length > 72) {
    const cut = subject.slice(0, 71);
    const space = cut.lastIndexOf(' ');
    subject = (space > 40 ? cut.slice(0, space) : cut).trimEnd() + '…';
  }
  return subject === text ? subject + '\n' : `${subject}\n\n${text}\n`;
}

/**
 * Commits everything the task changed in its worktree (tracked and untracked, not the excluded paths) on its branch.
 * Nothing changed: commit null and zero counts (or the task's own commits, when it committed by itself).
 */
export async function commitWorktree(input: CommitWorktreeInput): Promise<CommittedChange> {
  const { dir, branch, baseCommit } = input;
  if (input.author && !/^[^<>]+<[^<>]*>$/.test(input.author.trim())) {
    throw new SparkqError('invalid-input', `commit author ${JSON.stringify(input.author)} must look like "Name <email>"`);
  }
  const exclude = [...new Set([...input.exclude, ...placedIn(dir)])];
  // Plumbing rather than `git commit`: no hooks, no automatic maintenance, no second scan of the tree; on 10k files
  // `git commit` alone took longer than the add, write-tree, commit-tree and update-ref together.
  // Asked while the add runs (they read refs, the add writes the index): the branch HEAD is on, its commit and tree.
  const [head, tip] = await Promise.all([
    runGit(['symbolic-ref', '-q', 'HEAD'], { cwd: dir }),
    runGit(['rev-parse', 'HEAD', 'HEAD^{tree}'], { cwd: dir }),
    addAll(dir, exclude),
  ]);
  if (head.code !== 0 || firstLine(head.stdout) !== `refs/heads/${branch}`) {
    throw new SparkqError('conflict', `the worktree ${dir} is not on the task's branch ${branch} (HEAD: ${firstLine(head.stdout) || 'detached'}): nothing was committed; check it out there or discard the worktree`);
  }
  const [parent, parentTree] = tip.stdout.split('\n').map((l) => l.trim());
  if (tip.code !== 0 || !parent || !parentTree) throw new SparkqError('conflict', `the worktree ${dir} has no commit checked out: nothing was committed`);
  const tree = firstLine(await git(['write-tree'], { cwd: dir, hint: 'the change is staged in the worktree; commit it by hand or discard the worktree' }));
  if (tree === parentTree && parent === baseCommit) return { commit: null, files: [], filesChanged: 0, insertions: 0, deletions: 0 };
  let commit = parent;
  let moved: Promise<unknown> = Promise.resolve();
  if (tree !== parentTree) {
    const args = [...(await identityOf(dir)), 'commit-tree', tree, '-p', parent, '-F', '-'];
    const env = input.author ? authorEnv(input.author.trim()) : undefined;
    commit = firstLine(await git(args, { cwd: dir, input: commitMessage(input.message), ...(env ? { env } : {}), hint: 'the change is staged in the worktree; commit it by hand or discard the worktree' }));
    moved = git(['update-ref', '-m', "sparkq: the task's change", `refs/heads/${branch}`, commit, parent], { cwd: dir, hint: `${branch} moved while committing; the change is staged in the worktree` });
  }
  // The branch moves to the commit while its diff stat is read (which needs only the two commits).
  const [, stat] = await Promise.all([moved, diffStat(dir, baseCommit, commit)]);
  return { commit, ...stat };
}

/** GIT_AUTHOR_NAME/EMAIL of "Name <email>" (commit-tree has no --author). */
function authorEnv(author: string): Record<string, string> {
  const m = /^(.*?)\s*<([^<>]*)>$/.exec(author);
  return m ? { GIT_AUTHOR_NAME: m[1]!.trim(), GIT_AUTHOR_EMAIL: m[2]!.trim() } : {};
}

/** identityFallback, asked once per repository folder: whether git has an identity does not change during a run. */
const identities = new Map<string, Promise<string[]>>();
function identityOf(dir: string): Promise<string[]> {
  const key = path.dirname(path.resolve(dir));
  let known = identities.get(key);
  if (!known) {
    known = identityFallback(dir);
    identities.set(key, known);
    if (identities.size > 64) identities.delete(identities.keys().next().value!);
  }
  return known;
}

/** Files, counts of lines added and removed between two commits (renames found; binary files count no lines). */
export function diffStat(cwd: string, from: string, to: string): Promise<DiffStat> {
  return diffStatOf(cwd, [from, to], undefined);
}

async function diffStatOf(cwd: string, range: readonly string[], env: Record<string, string> | undefined): Promise<DiffStat> {
  const common = ['-c', 'core.quotepath=false', 'diff', '--no-ext-diff', '--no-textconv', '--find-renames', '-z'];
  const o = { cwd, ...(env ? { env } : {}) };
  const [numstat, nameStatus] = await Promise.all([git([...common, '--numstat', ...range, '--'], o), git([...common, '--name-status', ...range, '--'], o)]);
  let insertions = 0;
  let deletions = 0;
  const n = splitZ(numstat);
  for (let i = 0; i < n.length; i++) {
    const [added, deleted, p] = n[i]!.split('\t');
    if (added !== '-') insertions += Number(added) || 0;
    if (deleted !== '-') deletions += Number(deleted) || 0;
    if (p === '') i += 2; // a rename: "a\td\t\0old\0new"
  }
  const files: ChangedFile[] = [];
  let filesChanged = 0;
  const s = splitZ(nameStatus);
  for (let i = 0; i < s.length; i++) {
    const status = s[i]!;
    const letter = status[0] ?? '?';
    let file = s[++i] ?? '';
    if (letter === 'R' || letter === 'C') file = s[++i] ?? file;
    filesChanged++;
    if (files.length < LIMITS.changedFiles) files.push({ path: file, status: letter });
  }
  return { files, filesChanged, insertions, deletions };
}

/**
 * What a task left in its worktree against `baseCommit`, committed or not (tracked and untracked, the excluded and
 * placed paths aside), for the record of a failed task. Reads through a temporary index: the worktree's own index
 * and files are not touched.
 */
export async function uncommittedChange(input: { dir: string; baseCommit: string; exclude: readonly string[] }): Promise<DiffStat> {
  const { dir } = input;
  const index = path.resolve(dir, firstLine(await git(['rev-parse', '--git-path', 'index'], { cwd: dir })));
  const temp = `${index}.sparkq-${process.pid}-${Math.random().toString(36).slice(2)}`;
  try {
    if (fs.existsSync(index)) fs.copyFileSync(index, temp);
    const env = { GIT_INDEX_FILE: temp };
    await addAll(dir, [...new Set([...input.exclude, ...placedIn(dir)])], env);
    return await diffStatOf(dir, ['--cached', input.baseCommit], env);
  } finally {
    fs.rmSync(temp, { force: true });
  }
}

/** The TaskChange a task's result records (worktree relative to the workspace folder, forward slashes). */
export function changeOf(input: { workspace: string; dir: string; branch: string; baseRef: string | null; baseCommit: string; committed: CommittedChange | null }): TaskChange {
  const c = input.committed;
  return {
    worktree: slashRelative(input.workspace, input.dir),
    branch: input.branch,
    baseRef: input.baseRef,
    baseCommit: input.baseCommit,
    commit: c?.commit ?? null,
    files: c?.files ?? [],
    filesChanged: c?.filesChanged ?? 0,
    insertions: c?.insertions ?? 0,
    deletions: c?.deletions ?? 0,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Removing and listing

export interface RemoveWorktreeInput {
  repoTop: string;
  dir: string;
  branch: string | null;
  /** Also delete the branch (`-d` when not forced: git refuses a branch that is not merged into HEAD). */
  deleteBranch: boolean;
  /** Remove even with uncommitted changes, a lock, or an unmerged branch. */
  force: boolean;
}

/** Removes a task's worktree (and its branch when asked). Without force, uncommitted work or an unmerged branch refuses. */
export async function removeWorktree(input: RemoveWorktreeInput): Promise<void> {
  const { repoTop, dir, branch, force } = input;
  const known = (await gitWorktrees(repoTop)).find((w) => samePath(w.dir, dir));
  if (known && samePath(known.dir, repoTop)) throw new SparkqError('invalid-input', `${dir} is the repository's main worktree: SparkQ removes only its own worktrees`);
  if (known && !known.prunable) {
    if (!force) {
      const dirty = await dirtyPaths(dir);
      if (dirty.length > 0) {
        throw new SparkqError('conflict', `the worktree ${dir} has uncommitted changes (${dirty.slice(0, 10).join(', ')}${dirty.length > 10 ? ', …' : ''}): commit or discard them, or remove it with force`);
      }
    }
    // Placed links go first, so that `git worktree remove` never looks into a linked node_modules.
    for (const p of placedIn(dir)) {
      const at = path.join(dir, ...p.split('/'));
      try {
        if (fs.lstatSync(at).isSymbolicLink()) fs.rmSync(at, { force: true });
      } catch {
        // already gone
      }
    }
    await git(['worktree', 'remove', '--force', ...(force ? ['--force'] : []), dir], {
      cwd: repoTop,
      hint: force ? 'close programs that hold files in it open, then try again' : 'unlock it (`git worktree unlock`) or remove it with force',
    });
  } else {
    if (known) await git(['worktree', 'prune'], { cwd: repoTop });
    if (fs.existsSync(dir)) {
      if (!force) throw new SparkqError('conflict', `${dir} is not a worktree git knows (left by a killed worker?): look inside, then remove it with force`);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }
  if (branch && input.deleteBranch) {
    const exists = await runGit(['rev-parse', '-q', '--verify', `refs/heads/${branch}`], { cwd: repoTop });
    if (exists.code === 0) {
      await git(['branch', force ? '-D' : '-d', branch], {
        cwd: repoTop,
        hint: `the branch holds work that is not merged: merge it first, or discard it (delete with force)`,
      });
    }
  }
}

export interface ListedWorktree {
  dir: string;
  /** Null for a directory git does not know (an orphan) or a detached HEAD. */
  branch: string | null;
  head: string | null;
  /** Uncommitted changes (tracked or untracked, the placed paths aside). */
  dirty: boolean;
  taskId: string | null;
  locked?: boolean;
  /** A directory under the worktrees folder that git does not know as a worktree. */
  orphan?: boolean;
  /** git knows the worktree but its directory is gone. */
  missing?: boolean;
}

/** SparkQ's worktrees of the repository (those under `worktreesDir`), and directories there git does not know. */
export async function listWorktrees(repoTop: string, worktreesDir: string): Promise<ListedWorktree[]> {
  const ours = (await gitWorktrees(repoTop)).filter((w) => isInside(w.dir, worktreesDir));
  const listed = await Promise.all(
    ours.map(async (w): Promise<ListedWorktree> => {
      const missing = w.prunable || !fs.existsSync(w.dir);
      const dirty = missing ? false : (await dirtyPaths(w.dir)).length > 0;
      return {
        dir: w.dir,
        branch: w.branch,
        head: w.head,
        dirty,
        taskId: taskIdOf(w.dir, w.branch),
        ...(w.locked ? { locked: true } : {}),
        ...(missing ? { missing: true } : {}),
      };
    }),
  );
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(worktreesDir, { withFileTypes: true });
  } catch {
    entries = [];
  }
  for (const e of entries) {
    if (!e.isDirectory()) continue;
    const dir = path.join(worktreesDir, e.name);
    if (ours.some((w) => samePath(w.dir, dir))) continue;
    listed.push({ dir, branch: null, head: null, dirty: false, taskId: taskIdOf(dir, null), orphan: true });
  }
  return listed.sort((a, b) => a.dir.localeCompare(b.dir));
}
