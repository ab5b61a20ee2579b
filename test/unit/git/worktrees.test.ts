import { strict as assert } from 'node:assert';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { isSparkqError } from '../../../src/core/errors';
import { acquireMergeLock, combineCommits, discard, mergeBranch } from '../../../src/git/merge';
import {
  type WorktreeSettings,
  branchFor,
  changeOf,
  commitMessage,
  commitWorktree,
  isMerged,
  listWorktrees,
  prepareWorktree,
  removeWorktree,
  uncommittedChange,
  worktreeDirFor,
} from '../../../src/git/worktrees';
import { tempDir } from '../../support/tmp';

/* A worktree per task, commits, merges and the merge lock: real git, real files, real processes in temp dirs. */

function sh(cwd: string, ...args: string[]): string {
  return execFileSync('git', args, { cwd, encoding: 'utf8', env: { ...process.env, LC_ALL: 'C' } }).trim();
}

const NONE: WorktreeSettings = { copy: [], link: [], setup: null };

interface Ws {
  top: string;
  sparkq: string;
  worktrees: string;
  base: string;
}

describe('git: a worktree per task, commit and merge', function () {
  this.timeout(60_000);
  const tmp = tempDir('sparkq-git-wt-');
  let n = 0;
  after(() => tmp.cleanup());

  /** A repository with its own identity, `.sparkq/` ignored as `sparkq init` makes it, and one commit on main. */
  function workspace(files: Record<string, string> = { 'shared.txt': 'line 1\nline 2\nline 3\n' }, identity = true): Ws {
    const top = path.join(tmp.dir, `ws${++n}`);
    fs.mkdirSync(path.join(top, '.sparkq'), { recursive: true });
    fs.writeFileSync(path.join(top, '.sparkq', '.gitignore'), '*\n');
    sh(top, 'init', '-q', '-b', 'main');
    if (identity) {
      sh(top, 'config', 'user.name', 'Test');
      sh(top, 'config', 'user.email', 'test@example.com');
    }
    for (const [f, text] of Object.entries(files)) {
      fs.mkdirSync(path.dirname(path.join(top, f)), { recursive: true });
      fs.writeFileSync(path.join(top, f), text);
    }
    // Committed with an explicit identity so the no-identity workspace still has a first commit.
    execFileSync('git', ['add', '-A'], { cwd: top });
    execFileSync('git', ['-c', 'user.name=Setup', '-c', 'user.email=setup@example.com', 'commit', '-q', '-m', 'first'], { cwd: top });
    return { top, sparkq: path.join(top, '.sparkq'), worktrees: path.join(top, '.sparkq', 'worktrees'), base: sh(top, 'rev-parse', 'HEAD') };
  }

  async function task(ws: Ws, taskId: string, opts: { reuse?: string | null; settings?: WorktreeSettings; queue?: string; patchFile?: string } = {}) {
    const dir = worktreeDirFor(ws.sparkq, taskId);
    const branch = branchFor(opts.queue ?? 'Back End', taskId);
    const prepared = await prepareWorktree({
      repoTop: ws.top,
      dir,
      branch,
      startCommit: ws.base,
      reuse: opts.reuse ?? null,
      settings: opts.settings ?? NONE,
      ...(opts.patchFile ? { patchFile: opts.patchFile } : {}),
    });
    return { dir, branch, prepared };
  }

  const porcelain = (dir: string) => sh(dir, 'status', '--porcelain', '--untracked-files=all');
  const hasMergeHead = (dir: string) => {
    try {
      sh(dir, 'rev-parse', '-q', '--verify', 'MERGE_HEAD');
      return true;
    } catch {
      return false;
    }
  };

  it('two tasks from one base rewrite the same file: two branches, two commits, the base untouched; merging both: the first merges, the second conflicts and the base stays clean', async () => {
    const ws = workspace();
    // Two workers at once.
    const [a, b] = await Promise.all([task(ws, 'tsk_A1'), task(ws, 'tsk_B2')]);
    assert.equal(a.prepared.created, true);
    assert.equal(sh(a.dir, 'rev-parse', '--abbrev-ref', 'HEAD'), 'sparkq/back-end/tsk_A1');
    fs.writeFileSync(path.join(a.dir, 'shared.txt'), 'line 1\nA was here\nline 3\n');
    fs.writeFileSync(path.join(b.dir, 'shared.txt'), 'line 1\nB was here\nline 3\n');
    const [ca, cb] = await Promise.all([
      commitWorktree({ dir: a.dir, branch: a.branch, baseCommit: ws.base, message: 'A rewrites line 2', exclude: [] }),
      commitWorktree({ dir: b.dir, branch: b.branch, baseCommit: ws.base, message: 'B rewrites line 2', exclude: [] }),
    ]);
    assert.ok(ca.commit && cb.commit && ca.commit !== cb.commit);
    assert.equal(sh(ws.top, 'rev-parse', a.branch), ca.commit);
    assert.equal(sh(ws.top, 'rev-parse', b.branch), cb.commit);
    assert.deepEqual(ca.files, [{ path: 'shared.txt', status: 'M' }]);
    assert.equal(ca.insertions, 1);
    assert.equal(ca.deletions, 1);
    // The base is untouched until a merge.
    assert.equal(sh(ws.top, 'rev-parse', 'main'), ws.base);
    assert.equal(fs.readFileSync(path.join(ws.top, 'shared.txt'), 'utf8'), 'line 1\nline 2\nline 3\n');
    assert.equal(await isMerged(ws.top, ca.commit, 'main'), false);

    const first = await mergeBranch({ repoTop: ws.top, branch: a.branch, into: 'main', mode: 'ff-or-merge', message: 'Merge A' });
    assert.deepEqual(first, { outcome: 'merged', commit: ca.commit }); // a fast-forward
    assert.equal(fs.readFileSync(path.join(ws.top, 'shared.txt'), 'utf8'), 'line 1\nA was here\nline 3\n');
    assert.equal(await isMerged(ws.top, ca.commit, 'main'), true);

    const second = await mergeBranch({ repoTop: ws.top, branch: b.branch, into: 'main', mode: 'ff-or-merge', message: 'Merge B' });
    assert.deepEqual(second, { outcome: 'conflict', files: ['shared.txt'] });
    assert.equal(porcelain(ws.top), '');
    assert.equal(hasMergeHead(ws.top), false);
    assert.equal(sh(ws.top, 'rev-parse', 'main'), ca.commit);
    assert.equal(fs.readFileSync(path.join(ws.top, 'shared.txt'), 'utf8'), 'line 1\nA was here\nline 3\n');
  });

  it('combines a start with the commits of the tasks it waits on, without a working tree: skips what it holds, fast-forwards, merges, and names a conflict', async () => {
    const ws = workspace({ 'shared.txt': 'line 1\nline 2\nline 3\n', 'other.txt': 'x\n' });
    const [a, b, c] = await Promise.all([task(ws, 'tsk_CA'), task(ws, 'tsk_CB'), task(ws, 'tsk_CC')]);
    fs.writeFileSync(path.join(a.dir, 'a.txt'), 'A\n');
    fs.writeFileSync(path.join(b.dir, 'other.txt'), 'B\n');
    fs.writeFileSync(path.join(c.dir, 'other.txt'), 'C\n');
    const [ca, cb, cc] = await Promise.all([
      commitWorktree({ dir: a.dir, branch: a.branch, baseCommit: ws.base, message: 'A adds a.txt', exclude: [] }),
      commitWorktree({ dir: b.dir, branch: b.branch, baseCommit: ws.base, message: 'B rewrites other.txt', exclude: [] }),
      commitWorktree({ dir: c.dir, branch: c.branch, baseCommit: ws.base, message: 'C rewrites other.txt', exclude: [] }),
    ]);
    const refsBefore = sh(ws.top, 'for-each-ref');
    // Nothing to add: the start itself.
    assert.deepEqual(await combineCommits(ws.top, ws.base, []), { outcome: 'combined', commit: ws.base, merged: [] });
    // One commit on top of the start: a fast-forward, no new commit.
    assert.deepEqual(await combineCommits(ws.top, ws.base, [{ commit: ca.commit!, message: 'with A' }]), { outcome: 'combined', commit: ca.commit, merged: [ca.commit] });
    // Already held: skipped.
    assert.deepEqual(await combineCommits(ws.top, ca.commit!, [{ commit: ca.commit!, message: 'with A' }]), { outcome: 'combined', commit: ca.commit, merged: [] });
    // Two: a merge commit with both parents and both changes.
    const ab = await combineCommits(ws.top, ws.base, [{ commit: ca.commit!, message: 'with A' }, { commit: cb.commit!, message: 'with B' }]);
    assert.equal(ab.outcome, 'combined');
    assert.deepEqual(sh(ws.top, 'rev-list', '--parents', '-n', '1', ab.commit).split(' ').slice(1), [ca.commit, cb.commit]);
    assert.equal(sh(ws.top, 'show', `${ab.commit}:a.txt`), 'A');
    assert.equal(sh(ws.top, 'show', `${ab.commit}:other.txt`), 'B');
    assert.equal(sh(ws.top, 'log', '-1', '--format=%s', ab.commit), 'with B');
    // B and C both rewrite other.txt: the conflict names the file and the commit that met it.
    assert.deepEqual(await combineCommits(ws.top, ws.base, [{ commit: cb.commit!, message: 'with B' }, { commit: cc.commit!, message: 'with C' }]), { outcome: 'conflict', files: ['other.txt'], commit: cc.commit });
    // No ref moved, no worktree touched.
    assert.equal(sh(ws.top, 'for-each-ref'), refsBefore);
    assert.equal(porcelain(ws.top), '');
  });

  it('ff-only refuses a base that moved on; merge makes a merge commit with two parents even when a fast-forward is possible', async () => {
    const ws = workspace({ 'a.txt': 'a\n', 'b.txt': 'b\n' });
    const a = await task(ws, 'tsk_1');
    const b = await task(ws, 'tsk_2');
    fs.writeFileSync(path.join(a.dir, 'a.txt'), 'A\n');
    fs.writeFileSync(path.join(b.dir, 'b.txt'), 'B\n');
    const ca = await commitWorktree({ dir: a.dir, branch: a.branch, baseCommit: ws.base, message: 'A', exclude: [] });
    const cb = await commitWorktree({ dir: b.dir, branch: b.branch, baseCommit: ws.base, message: 'B', exclude: [] });
    const m1 = await mergeBranch({ repoTop: ws.top, branch: a.branch, into: 'main', mode: 'merge', message: 'Merge task 1' });
    assert.equal(m1.outcome, 'merged');
    const merged = (m1 as { commit: string }).commit;
    assert.notEqual(merged, ca.commit);
    assert.equal(sh(ws.top, 'rev-list', '--parents', '-n', '1', merged), `${merged} ${ws.base} ${ca.commit!}`);
    assert.equal(sh(ws.top, 'log', '-1', '--format=%s', merged), 'Merge task 1');
    await assert.rejects(mergeBranch({ repoTop: ws.top, branch: b.branch, into: 'main', mode: 'ff-only', message: 'x' }), (e: unknown) => isSparkqError(e, 'conflict') && /cannot be fast-forwarded/.test(e.message));
    assert.equal(sh(ws.top, 'rev-parse', 'main'), merged);
    const m2 = await mergeBranch({ repoTop: ws.top, branch: b.branch, into: 'main', mode: 'ff-or-merge', message: 'Merge task 2' });
    assert.equal(m2.outcome, 'merged');
    assert.equal(fs.readFileSync(path.join(ws.top, 'a.txt'), 'utf8'), 'A\n');
    assert.equal(fs.readFileSync(path.join(ws.top, 'b.txt'), 'utf8'), 'B\n');
    assert.equal(await isMerged(ws.top, cb.commit!, 'main'), true);
    // Merging again changes nothing.
    assert.deepEqual(await mergeBranch({ repoTop: ws.top, branch: b.branch, into: 'main', mode: 'merge', message: 'again' }), { outcome: 'up-to-date', commit: sh(ws.top, 'rev-parse', 'main') });
  });

  it('refuses to merge into a checked-out branch with uncommitted tracked changes, naming the files; an untracked file is fine', async () => {
    const ws = workspace({ 'a.txt': 'a\n', 'b.txt': 'b\n' });
    const a = await task(ws, 'tsk_1');
    fs.writeFileSync(path.join(a.dir, 'a.txt'), 'A\n');
    await commitWorktree({ dir: a.dir, branch: a.branch, baseCommit: ws.base, message: 'A', exclude: [] });
    fs.writeFileSync(path.join(ws.top, 'b.txt'), 'local edit\n');
    await assert.rejects(mergeBranch({ repoTop: ws.top, branch: a.branch, into: 'main', mode: 'merge', message: 'm' }), (e: unknown) => {
      assert.ok(isSparkqError(e, 'conflict'));
      assert.match(e.message, /uncommitted changes to b\.txt: commit or stash them first/);
      return true;
    });
    assert.equal(sh(ws.top, 'rev-parse', 'main'), ws.base);
    assert.equal(fs.readFileSync(path.join(ws.top, 'b.txt'), 'utf8'), 'local edit\n');
    sh(ws.top, 'checkout', '--', 'b.txt');
    fs.writeFileSync(path.join(ws.top, 'notes.txt'), 'untracked\n');
    const m = await mergeBranch({ repoTop: ws.top, branch: a.branch, into: 'main', mode: 'merge', message: 'm' });
    assert.equal(m.outcome, 'merged');
    assert.equal(fs.readFileSync(path.join(ws.top, 'a.txt'), 'utf8'), 'A\n');
    assert.equal(fs.readFileSync(path.join(ws.top, 'notes.txt'), 'utf8'), 'untracked\n');
  });

  it('merges into a branch checked out nowhere without a working tree (fast-forward, merge commit, conflict)', async () => {
    const ws = workspace({ 'a.txt': 'a\n', 'b.txt': 'b\n', 'c.txt': 'c\n' });
    sh(ws.top, 'branch', 'release');
    const a = await task(ws, 'tsk_1');
    const b = await task(ws, 'tsk_2');
    const c = await task(ws, 'tsk_3');
    fs.writeFileSync(path.join(a.dir, 'a.txt'), 'A\n');
    fs.writeFileSync(path.join(b.dir, 'b.txt'), 'B\n');
    fs.writeFileSync(path.join(c.dir, 'a.txt'), 'C wants a\n');
    const ca = await commitWorktree({ dir: a.dir, branch: a.branch, baseCommit: ws.base, message: 'A', exclude: [] });
    const cb = await commitWorktree({ dir: b.dir, branch: b.branch, baseCommit: ws.base, message: 'B', exclude: [] });
    await commitWorktree({ dir: c.dir, branch: c.branch, baseCommit: ws.base, message: 'C', exclude: [] });
    const mainBefore = sh(ws.top, 'rev-parse', 'main');
    assert.deepEqual(await mergeBranch({ repoTop: ws.top, branch: a.branch, into: 'release', mode: 'ff-or-merge', message: 'A' }), { outcome: 'merged', commit: ca.commit });
    const m = await mergeBranch({ repoTop: ws.top, branch: b.branch, into: 'release', mode: 'ff-or-merge', message: 'Merge B into release' });
    assert.equal(m.outcome, 'merged');
    const commit = (m as { commit: string }).commit;
    assert.equal(sh(ws.top, 'rev-parse', 'release'), commit);
    assert.equal(sh(ws.top, 'rev-list', '--parents', '-n', '1', commit), `${commit} ${ca.commit!} ${cb.commit!}`);
    assert.equal(sh(ws.top, 'show', 'release:a.txt'), 'A');
    assert.equal(sh(ws.top, 'show', 'release:b.txt'), 'B');
    assert.equal(sh(ws.top, 'log', '-1', '--format=%s', 'release'), 'Merge B into release');
    assert.deepEqual(await mergeBranch({ repoTop: ws.top, branch: c.branch, into: 'release', mode: 'merge', message: 'C' }), { outcome: 'conflict', files: ['a.txt'] });
    assert.equal(sh(ws.top, 'rev-parse', 'release'), commit);
    // The main worktree was never touched.
    assert.equal(sh(ws.top, 'rev-parse', 'main'), mainBefore);
    assert.equal(porcelain(ws.top), '');
  });

  it('links node_modules (never committed) and copies .env; setup runs once for a new worktree, not for a reused one; a clean worktree is reused for the next branch', async () => {
    const ws = workspace({ '.gitignore': 'node_modules/\n.env\n', 'src/index.ts': 'export {};\n' });
    fs.mkdirSync(path.join(ws.top, 'node_modules', 'left-pad'), { recursive: true });
    fs.writeFileSync(path.join(ws.top, 'node_modules', 'left-pad', 'index.js'), 'module.exports = 1;\n');
    fs.writeFileSync(path.join(ws.top, '.env'), 'SECRET=1\n');
    const setups: string[] = [];
    const settings: WorktreeSettings = {
      copy: ['.env'],
      link: ['node_modules'],
      setup: (cwd) => {
        setups.push(cwd);
        fs.writeFileSync(path.join(cwd, 'setup-ran.txt'), 'yes\n');
        return Promise.resolve();
      },
    };
    const a = await task(ws, 'tsk_1', { settings });
    assert.deepEqual({ created: a.prepared.created, setupRan: a.prepared.setupRan }, { created: true, setupRan: true });
    assert.deepEqual(setups, [a.dir]);
    assert.deepEqual(a.prepared.placed.sort(), ['.env', 'node_modules']);
    assert.ok(fs.lstatSync(path.join(a.dir, 'node_modules')).isSymbolicLink());
    assert.equal(fs.readFileSync(path.join(a.dir, 'node_modules', 'left-pad', 'index.js'), 'utf8'), 'module.exports = 1;\n');
    assert.ok(!fs.lstatSync(path.join(a.dir, '.env')).isSymbolicLink());
    assert.equal(fs.readFileSync(path.join(a.dir, '.env'), 'utf8'), 'SECRET=1\n');

    fs.writeFileSync(path.join(a.dir, 'src', 'index.ts'), 'export const a = 1;\n');
    fs.rmSync(path.join(a.dir, 'setup-ran.txt'));
    const ca = await commitWorktree({ dir: a.dir, branch: a.branch, baseCommit: ws.base, message: 'A', exclude: a.prepared.placed });
    // The symlinked node_modules is not a directory to git, so `node_modules/` in .gitignore does not hide it: only the exclusion does.
    assert.deepEqual(ca.files, [{ path: 'src/index.ts', status: 'M' }]);
    assert.equal(sh(ws.top, 'ls-tree', '-r', '--name-only', ca.commit!), '.gitignore\nsrc/index.ts');

    const b = await task(ws, 'tsk_2', { settings, reuse: a.dir });
    assert.deepEqual({ created: b.prepared.created, setupRan: b.prepared.setupRan }, { created: false, setupRan: false });
    assert.deepEqual(setups, [a.dir]);
    assert.ok(!fs.existsSync(a.dir));
    assert.equal(sh(b.dir, 'rev-parse', '--abbrev-ref', 'HEAD'), b.branch);
    assert.equal(sh(b.dir, 'rev-parse', 'HEAD'), ws.base);
    // Back at the base: task A's change is not in the new task's tree, but the linked and copied files stay.
    assert.equal(fs.readFileSync(path.join(b.dir, 'src', 'index.ts'), 'utf8'), 'export {};\n');
    assert.ok(fs.lstatSync(path.join(b.dir, 'node_modules')).isSymbolicLink());
    assert.equal(fs.readFileSync(path.join(b.dir, '.env'), 'utf8'), 'SECRET=1\n');
    assert.deepEqual(b.prepared.placed.sort(), ['.env', 'node_modules']);
    // Task A's branch still holds its commit.
    assert.equal(sh(ws.top, 'rev-parse', a.branch), ca.commit);

    // A dirty worktree is not reused: a new one is made (and its setup runs).
    fs.writeFileSync(path.join(b.dir, 'scratch.txt'), 'half done\n');
    const c = await task(ws, 'tsk_3', { settings, reuse: b.dir });
    assert.equal(c.prepared.created, true);
    assert.equal(fs.readFileSync(path.join(b.dir, 'scratch.txt'), 'utf8'), 'half done\n');
    assert.deepEqual(setups, [a.dir, c.dir]);
  });

  it("a failed task's uncommitted change is described against the base without touching its index; globs as exclude work too", async () => {
    const ws = workspace({ '.gitignore': 'node_modules/\n', 'a.txt': 'a\n', 'b.txt': 'b\n' });
    fs.mkdirSync(path.join(ws.top, 'node_modules', 'x'), { recursive: true });
    fs.writeFileSync(path.join(ws.top, 'node_modules', 'x', 'i.js'), '1\n');
    fs.writeFileSync(path.join(ws.top, 'local.env'), 'K=V\n');
    const settings: WorktreeSettings = { copy: ['*.env'], link: ['node_modules'], setup: null };
    const a = await task(ws, 'tsk_fail', { settings });
    fs.writeFileSync(path.join(a.dir, 'a.txt'), 'a\nmore\n');
    fs.writeFileSync(path.join(a.dir, 'new.txt'), 'n\n');
    sh(a.dir, 'add', 'new.txt');
    fs.rmSync(path.join(a.dir, 'b.txt'));
    const before = sh(a.dir, 'status', '--porcelain');
    // The worker passes the sparkq.yml globs; the placed paths SparkQ recorded are left out as well.
    const c = await uncommittedChange({ dir: a.dir, baseCommit: ws.base, exclude: ['*.env', 'node_modules'] });
    assert.deepEqual(
      [...c.files].sort((x, y) => x.path.localeCompare(y.path)),
      [
        { path: 'a.txt', status: 'M' },
        { path: 'b.txt', status: 'D' },
        { path: 'new.txt', status: 'A' },
      ],
    );
    assert.deepEqual([c.filesChanged, c.insertions, c.deletions], [3, 2, 1]);
    assert.equal(sh(a.dir, 'status', '--porcelain'), before);
    assert.equal(sh(ws.top, 'rev-parse', a.branch), ws.base);
    const again = await uncommittedChange({ dir: a.dir, baseCommit: ws.base, exclude: [] });
    assert.equal(again.filesChanged, 3);
  });

  it('a retry of the same branch with uncommitted work saves it as a patch and starts fresh', async () => {
    const ws = workspace({ 'a.txt': 'a\n' });
    const first = await task(ws, 'tsk_R', { settings: { copy: [], link: [], setup: null } });
    fs.writeFileSync(path.join(first.dir, 'a.txt'), 'half-done edit\n');
    fs.writeFileSync(path.join(first.dir, 'new file.txt'), 'untracked work\n');
    const patchFile = path.join(ws.sparkq, 'runs', 'tsk_R', 'attempt-1.patch');
    const retry = await task(ws, 'tsk_R', { patchFile });
    assert.equal(retry.dir, first.dir);
    assert.equal(retry.prepared.created, true);
    assert.equal(retry.prepared.patchSaved, patchFile);
    assert.equal(fs.readFileSync(path.join(retry.dir, 'a.txt'), 'utf8'), 'a\n');
    assert.ok(!fs.existsSync(path.join(retry.dir, 'new file.txt')));
    assert.equal(porcelain(retry.dir), '');
    const patch = fs.readFileSync(patchFile, 'utf8');
    assert.match(patch, /\+half-done edit/);
    assert.match(patch, /\+untracked work/);
    // The patch applies to the fresh worktree and brings the work back.
    sh(retry.dir, 'apply', patchFile);
    assert.equal(fs.readFileSync(path.join(retry.dir, 'new file.txt'), 'utf8'), 'untracked work\n');
  });

  it('a task that changed nothing commits nothing; odd file names (spaces, unicode, a rename) are reported exactly', async () => {
    const ws = workspace({ 'old name.txt': 'same content for the rename\n'.repeat(5), 'keep.txt': 'k\n' });
    const a = await task(ws, 'tsk_nothing');
    assert.deepEqual(await commitWorktree({ dir: a.dir, branch: a.branch, baseCommit: ws.base, message: 'nothing', exclude: [] }), {
      commit: null,
      files: [],
      filesChanged: 0,
      insertions: 0,
      deletions: 0,
    });
    assert.equal(sh(ws.top, 'rev-parse', a.branch), ws.base);

    const b = await task(ws, 'tsk_odd');
    fs.renameSync(path.join(b.dir, 'old name.txt'), path.join(b.dir, 'new näme ü.txt'));
    fs.writeFileSync(path.join(b.dir, 'tab\there.txt'), 'one\ntwo\n');
    fs.writeFileSync(path.join(b.dir, '日本語 file.md'), 'x\n');
    fs.rmSync(path.join(b.dir, 'keep.txt'));
    const summary = `${'Rename and add files with odd names '.repeat(3)}\n\nLonger explanation.`;
    const c = await commitWorktree({ dir: b.dir, branch: b.branch, baseCommit: ws.base, message: summary, author: 'Agent Smith <agent@example.com>', exclude: [] });
    assert.deepEqual(
      [...c.files].sort((x, y) => x.path.localeCompare(y.path)),
      [
        { path: 'keep.txt', status: 'D' },
        { path: 'new näme ü.txt', status: 'R' },
        { path: 'tab\there.txt', status: 'A' },
        { path: '日本語 file.md', status: 'A' },
      ],
    );
    assert.equal(c.filesChanged, 4);
    assert.equal(c.insertions, 3);
    assert.equal(c.deletions, 1);
    assert.equal(sh(ws.top, 'log', '-1', '--format=%an <%ae>', c.commit!), 'Agent Smith <agent@example.com>');
    const subject = sh(ws.top, 'log', '-1', '--format=%s', c.commit!);
    assert.ok(subject.length <= 72, subject);
    assert.equal(subject, commitMessage(summary).split('\n')[0]);
    assert.match(sh(ws.top, 'log', '-1', '--format=%b', c.commit!), /Longer explanation\./);

    const change = changeOf({ workspace: ws.top, dir: b.dir, branch: b.branch, baseRef: 'main', baseCommit: ws.base, committed: c });
    assert.equal(change.worktree, '.sparkq/worktrees/odd');
    assert.equal(change.commit, c.commit);
  });

  it("a task that committed by itself: its commits are the change; a merge that an untracked file would clobber is refused and changes nothing", async () => {
    const ws = workspace({ 'a.txt': 'a\n' });
    const a = await task(ws, 'tsk_self');
    fs.writeFileSync(path.join(a.dir, 'b.txt'), 'agent made this\n');
    sh(a.dir, 'add', 'b.txt');
    sh(a.dir, 'commit', '-q', '-m', 'agent commit');
    const own = sh(a.dir, 'rev-parse', 'HEAD');
    const c = await commitWorktree({ dir: a.dir, branch: a.branch, baseCommit: ws.base, message: 'summary', exclude: [] });
    assert.equal(c.commit, own);
    assert.deepEqual(c.files, [{ path: 'b.txt', status: 'A' }]);

    fs.writeFileSync(path.join(ws.top, 'b.txt'), 'a file of my own\n');
    await assert.rejects(mergeBranch({ repoTop: ws.top, branch: a.branch, into: 'main', mode: 'ff-or-merge', message: 'm' }), (e: unknown) => isSparkqError(e, 'conflict') && /untracked working tree files would be overwritten/.test(e.message) && /nothing was merged/.test(e.message));
    assert.equal(sh(ws.top, 'rev-parse', 'main'), ws.base);
    assert.equal(fs.readFileSync(path.join(ws.top, 'b.txt'), 'utf8'), 'a file of my own\n');
    assert.equal(hasMergeHead(ws.top), false);
    // Committing on a branch other than the task's is refused.
    sh(a.dir, 'switch', '-q', '-c', 'elsewhere');
    await assert.rejects(commitWorktree({ dir: a.dir, branch: a.branch, baseCommit: ws.base, message: 's', exclude: [] }), (e: unknown) => isSparkqError(e, 'conflict') && /not on the task's branch/.test(e.message));
  });

  it('commits without a configured git identity (CI) as SparkQ', async () => {
    const ws = workspace({ 'a.txt': 'a\n' }, false);
    const a = await task(ws, 'tsk_ci');
    fs.writeFileSync(path.join(a.dir, 'a.txt'), 'b\n');
    // Make sure git cannot find an identity anywhere: no global config, nothing in the environment.
    const saved = { ...process.env };
    process.env['HOME'] = path.join(tmp.dir, 'empty-home');
    process.env['XDG_CONFIG_HOME'] = path.join(tmp.dir, 'empty-home');
    process.env['GIT_CONFIG_NOSYSTEM'] = '1';
    process.env['EMAIL'] = '';
    for (const k of ['GIT_AUTHOR_NAME', 'GIT_AUTHOR_EMAIL', 'GIT_COMMITTER_NAME', 'GIT_COMMITTER_EMAIL']) delete process.env[k];
    try {
      const c = await commitWorktree({ dir: a.dir, branch: a.branch, baseCommit: ws.base, message: 'from CI', exclude: [] });
      assert.ok(c.commit);
      const who = sh(ws.top, 'log', '-1', '--format=%an <%ae>|%cn <%ce>', c.commit);
      const gitKnowsSomeone = spawnSync('git', ['var', 'GIT_COMMITTER_IDENT'], { cwd: a.dir }).status === 0;
      // Where git can derive an identity from the system it uses that; otherwise (as on this CI image) the fallback.
      if (!gitKnowsSomeone) assert.equal(who, 'SparkQ <sparkq@localhost>|SparkQ <sparkq@localhost>');
      assert.equal(sh(ws.top, 'show', `${c.commit}:a.txt`), 'b');
    } finally {
      process.env = saved;
    }
  });

  it('lists our worktrees (a dirty one, an orphan directory), removes them, and discards', async () => {
    const ws = workspace({ 'a.txt': 'a\n' });
    const outside = path.join(tmp.dir, `outside-${n}`);
    sh(ws.top, 'worktree', 'add', '-q', '-b', 'not-ours', outside);
    const a = await task(ws, 'tsk_clean', { settings: { copy: [], link: ['node_modules'], setup: null } });
    const b = await task(ws, 'tsk_dirty');
    fs.writeFileSync(path.join(b.dir, 'a.txt'), 'changed\n');
    fs.mkdirSync(path.join(ws.worktrees, 'orphan'), { recursive: true });
    const list = await listWorktrees(ws.top, ws.worktrees);
    const brief = list.map((w) => ({ name: path.basename(w.dir), branch: w.branch, dirty: w.dirty, taskId: w.taskId, orphan: w.orphan ?? false }));
    assert.deepEqual(brief, [
      { name: 'clean', branch: 'sparkq/back-end/tsk_clean', dirty: false, taskId: 'tsk_clean', orphan: false },
      { name: 'dirty', branch: 'sparkq/back-end/tsk_dirty', dirty: true, taskId: 'tsk_dirty', orphan: false },
      { name: 'orphan', branch: null, dirty: false, taskId: 'tsk_orphan', orphan: true },
    ]);
    assert.equal(list[0]!.head, ws.base);

    // Without force: a dirty worktree and an unmerged branch are refused, and nothing is lost.
    await assert.rejects(removeWorktree({ repoTop: ws.top, dir: b.dir, branch: b.branch, deleteBranch: true, force: false }), (e: unknown) => isSparkqError(e, 'conflict') && /uncommitted changes \(a\.txt\)/.test(e.message));
    assert.equal(fs.readFileSync(path.join(b.dir, 'a.txt'), 'utf8'), 'changed\n');
    await removeWorktree({ repoTop: ws.top, dir: a.dir, branch: a.branch, deleteBranch: true, force: false });
    assert.ok(!fs.existsSync(a.dir));
    assert.throws(() => sh(ws.top, 'rev-parse', '--verify', '-q', `refs/heads/${a.branch}`));
    await discard({ repoTop: ws.top, dir: b.dir, branch: b.branch });
    assert.ok(!fs.existsSync(b.dir));
    assert.throws(() => sh(ws.top, 'rev-parse', '--verify', '-q', `refs/heads/${b.branch}`));
    await assert.rejects(removeWorktree({ repoTop: ws.top, dir: path.join(ws.worktrees, 'orphan'), branch: null, deleteBranch: false, force: false }), (e: unknown) => isSparkqError(e, 'conflict'));
    await removeWorktree({ repoTop: ws.top, dir: path.join(ws.worktrees, 'orphan'), branch: null, deleteBranch: false, force: true });
    assert.deepEqual(await listWorktrees(ws.top, ws.worktrees), []);
    // The worktree outside .sparkq/worktrees was never ours to list or touch.
    assert.ok(fs.existsSync(path.join(outside, 'a.txt')));
  });

  it('an unmerged branch survives a removal without force', async () => {
    const ws = workspace({ 'a.txt': 'a\n' });
    const a = await task(ws, 'tsk_u');
    fs.writeFileSync(path.join(a.dir, 'a.txt'), 'work\n');
    const c = await commitWorktree({ dir: a.dir, branch: a.branch, baseCommit: ws.base, message: 'work', exclude: [] });
    await assert.rejects(removeWorktree({ repoTop: ws.top, dir: a.dir, branch: a.branch, deleteBranch: true, force: false }), (e: unknown) => isSparkqError(e, 'conflict') && /not fully merged/.test(e.message));
    assert.equal(sh(ws.top, 'rev-parse', a.branch), c.commit);
  });

  it('the merge lock serializes two concurrent merges and takes over a lock whose process is dead', async () => {
    const ws = workspace({ 'a.txt': 'a\n', 'b.txt': 'b\n' });
    const a = await task(ws, 'tsk_1');
    const b = await task(ws, 'tsk_2');
    fs.writeFileSync(path.join(a.dir, 'a.txt'), 'A\n');
    fs.writeFileSync(path.join(b.dir, 'b.txt'), 'B\n');
    await commitWorktree({ dir: a.dir, branch: a.branch, baseCommit: ws.base, message: 'A', exclude: [] });
    await commitWorktree({ dir: b.dir, branch: b.branch, baseCommit: ws.base, message: 'B', exclude: [] });
    const commonDir = path.join(ws.top, '.git');
    const lockFile = path.join(commonDir, 'sparkq-merge.lock');

    // While the lock is held, a merge waits (and times out when told to), then goes ahead once it is released.
    const release = await acquireMergeLock(commonDir);
    assert.match(fs.readFileSync(lockFile, 'utf8'), new RegExp(`^${process.pid} `));
    await assert.rejects(mergeBranch({ repoTop: ws.top, branch: a.branch, into: 'main', mode: 'merge', message: 'A', lockTimeoutMs: 200 }), (e: unknown) => isSparkqError(e, 'conflict') && /another merge into this repository is running/.test(e.message));
    assert.equal(sh(ws.top, 'rev-parse', 'main'), ws.base);
    release();
    assert.ok(!fs.existsSync(lockFile));

    // Two merges at once (both into the checked-out main): both succeed, one after the other, no git lock errors.
    const [ma, mb] = await Promise.all([
      mergeBranch({ repoTop: ws.top, branch: a.branch, into: 'main', mode: 'merge', message: 'Merge A' }),
      mergeBranch({ repoTop: ws.top, branch: b.branch, into: 'main', mode: 'merge', message: 'Merge B' }),
    ]);
    assert.equal(ma.outcome, 'merged');
    assert.equal(mb.outcome, 'merged');
    assert.deepEqual(sh(ws.top, 'log', '--format=%s', '-2').split('\n').sort(), ['Merge A', 'Merge B']);
    assert.equal(sh(ws.top, 'show', 'main:a.txt'), 'A');
    assert.equal(sh(ws.top, 'show', 'main:b.txt'), 'B');
    assert.equal(porcelain(ws.top), '');

    // A lock left by a process that died is taken over.
    const dead = spawn(process.execPath, ['-e', '0']);
    const deadPid = dead.pid!;
    await new Promise((r) => dead.on('close', r));
    fs.writeFileSync(lockFile, `${deadPid} 0 stale\n`);
    const r2 = await acquireMergeLock(commonDir, 2_000);
    assert.match(fs.readFileSync(lockFile, 'utf8'), new RegExp(`^${process.pid} `));
    r2();
  });

  it('the merge lock across processes: children contending for it never hold it at the same time', async () => {
    const ws = workspace();
    const commonDir = path.join(ws.top, '.git');
    const log = path.join(tmp.dir, `lock-log-${n}`);
    const mod = path.resolve(__dirname, '../../../src/git/merge.ts');
    const script = `
      const fs = require('node:fs');
      const { acquireMergeLock } = require(${JSON.stringify(mod)});
      (async () => {
        for (let i = 0; i < 5; i++) {
          const release = await acquireMergeLock(${JSON.stringify(commonDir)}, 30000);
          fs.appendFileSync(${JSON.stringify(log)}, 'in ' + process.pid + '\\n');
          await new Promise((r) => setTimeout(r, 5));
          fs.appendFileSync(${JSON.stringify(log)}, 'out ' + process.pid + '\\n');
          release();
        }
      })().catch((e) => { console.error(e); process.exit(1); });`;
    const children = [0, 1, 2].map(() => spawn(process.execPath, ['--require', 'tsx/cjs', '-e', script], { stdio: ['ignore', 'ignore', 'pipe'] }));
    const codes = await Promise.all(
      children.map(
        (c) =>
          new Promise<number | null>((resolve) => {
            let err = '';
            c.stderr.on('data', (d: Buffer) => (err += d.toString()));
            c.on('close', (code) => {
              if (code !== 0) process.stderr.write(err);
              resolve(code);
            });
          }),
      ),
    );
    assert.deepEqual(codes, [0, 0, 0]);
    const lines = fs.readFileSync(log, 'utf8').trim().split('\n');
    assert.equal(lines.length, 30);
    for (let i = 0; i < lines.length; i += 2) {
      const pid = lines[i]!.split(' ')[1];
      assert.equal(lines[i], `in ${pid}`);
      assert.equal(lines[i + 1], `out ${pid}`, `lock held by two at once near line ${i}: ${lines.slice(i, i + 3).join(' | ')}`);
    }
  });
});
