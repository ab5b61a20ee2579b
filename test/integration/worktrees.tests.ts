import * as assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { Queue, Task } from '../../src/core/model';
import type { ShownChanges } from '../../src/extension/commands/changeCommands';
import type { SparkqExports } from '../../src/extension/extension';
import { EXTENSION_ID, exec, rowsOf, waitFor } from './helpers';

/**
 * Review and merge of worktree queues in the real host (issue 18), part of the main suite: the workspace becomes a git
 * repository, a real `sparkq run --once` runs two script tasks that both rewrite one file, each on its own branch;
 * then Show Changes, Merge (a fast-forward, then the second task's conflict), Discard and End Queue's prune run as
 * commands, and git says what they did.
 */
export function registerWorktreeTests(get: () => { sparkq: SparkqExports; dir: string; session: string }): void {
  describe('worktree queues: review and merge', () => {
    let sparkq: SparkqExports;
    let dir: string;
    let session: string;
    let a: Task;
    let b: Task;
    const git = (...args: string[]) => execFileSync('git', args, { cwd: dir, encoding: 'utf8', env: { ...process.env, LC_ALL: 'C' } }).trim();
    const gitOk = (...args: string[]) => {
      try {
        git(...args);
        return true;
      } catch {
        return false;
      }
    };
    /** A real worker process on the queue: claims one task, runs it in its worktree, commits, exits. */
    const runOnce = (queue: string) =>
      new Promise<string>((resolve, reject) => {
        const cli = path.join(vscode.extensions.getExtension(EXTENSION_ID)!.extensionPath, 'dist', 'cli.js');
        execFile(process.execPath, [cli, 'run', '--queue', queue, '--once'], { cwd: dir, env: { ...process.env, ELECTRON_RUN_AS_NODE: '1', NO_COLOR: '1' }, timeout: 60_000 }, (e, stdout, stderr) =>
          e ? reject(new Error(`sparkq run failed: ${e.message}\n${stdout}\n${stderr}`)) : resolve(stdout),
        );
      });

    before(() => {
      ({ sparkq, dir, session } = get());
    });

    it('sparkq.createQueue with isolation worktree refuses a folder that is not in a git repository, saying so', async () => {
      assert.equal(await exec('sparkq.createQueue', { name: 'Review', session, isolation: 'worktree' }), undefined);
      assert.match(sparkq.testHooks.lastFailure()?.message ?? '', /not inside a git repository.*git init/);
    });

    it('sparkq.createQueue resolves the base like the CLI: the current HEAD by default, a named branch, an unknown one refused', async () => {
      git('init', '-q', '-b', 'main');
      git('config', 'user.name', 'SparkQ Test');
      git('config', 'user.email', 'itest@localhost');
      fs.writeFileSync(path.join(dir, 'notes.txt'), 'base\n');
      fs.writeFileSync(path.join(dir, 'scripts', 'write-notes.sh'), '#!/usr/bin/env bash\n# description: rewrite notes.txt\nprintf "%s\\n" "$1" > notes.txt\necho "wrote $1"\n', { mode: 0o755 });
      git('add', '-A');
      git('commit', '-q', '-m', 'base');
      const head = git('rev-parse', 'HEAD');
      assert.equal(await exec('sparkq.createQueue', { name: 'Nowhere', session, isolation: 'worktree', base: 'no-such-branch' }), undefined);
      assert.match(sparkq.testHooks.lastFailure()?.message ?? '', /no branch, tag or commit by that name/);
      const q = await exec<Queue>('sparkq.createQueue', { name: 'Review', session, isolation: 'worktree' });
      assert.ok(q, sparkq.testHooks.lastFailure()?.message);
      assert.deepEqual(q.isolation, { kind: 'worktree', baseRef: 'main', baseCommit: head, follow: false });
    });

    it('two tasks run by a real worker each commit on their own branch; the rows carry the change badge and flags', async () => {
      a = await exec<Task>('sparkq.enqueue', { queue: 'Review', tool: 'run-bash', payload: { script: 'write-notes.sh', args: ['from A'] } });
      b = await exec<Task>('sparkq.enqueue', { queue: 'Review', tool: 'run-bash', payload: { script: 'write-notes.sh', args: ['from B'] } });
      await runOnce('Review');
      await runOnce('Review');
      a = await sparkq.getTask(a.id);
      b = await sparkq.getTask(b.id);
      for (const t of [a, b]) {
        assert.equal(t.status, 'succeeded', `${t.id}: ${t.error ?? ''}\n${t.stderr ?? ''}`);
        assert.ok(t.change?.commit, `${t.id} has a commit`);
        assert.deepEqual(t.change.files, [{ path: 'notes.txt', status: 'M' }]);
      }
      assert.equal(fs.readFileSync(path.join(dir, 'notes.txt'), 'utf8'), 'base\n', 'the base is untouched until a merge');
      await sparkq.testHooks.views.refreshNow();
      const row = await waitFor('the task rows', async () => (await rowsOf(sparkq.testHooks.views.tasks)).find((r) => r.id === a.id));
      assert.equal(row.contextValue, 'sparkq:task+succeeded+change+commit');
      assert.match(row.description, /\+1 −1 · 1 file$/);
    });

    it('sparkq.showChanges opens the changes editor with both sides read from git objects', async () => {
      await vscode.commands.executeCommand('workbench.action.closeAllEditors');
      const shown = await exec<ShownChanges>('sparkq.showChanges', { task: a.id });
      assert.ok(shown, sparkq.testHooks.lastFailure()?.message);
      assert.deepEqual(shown.files, [{ status: 'M', before: 'notes.txt', after: 'notes.txt' }]);
      const tab = await waitFor('the changes editor tab', () => vscode.window.tabGroups.all.flatMap((g) => g.tabs).find((t) => t.label.includes(a.id)));
      const diffs = (tab.input as { textDiffs?: { original: vscode.Uri; modified: vscode.Uri }[] }).textDiffs;
      assert.ok(diffs && diffs.length === 1, `a multi-diff input with one file, got ${JSON.stringify(tab.input)}`);
      const { original, modified } = diffs[0]!;
      assert.equal(original.scheme, 'sparkq-git');
      assert.equal(modified.scheme, 'sparkq-git');
      assert.equal(new URLSearchParams(original.query).get('commit'), a.change!.baseCommit);
      assert.equal(new URLSearchParams(modified.query).get('commit'), a.change!.commit);
      assert.equal((await vscode.workspace.openTextDocument(original)).getText(), 'base\n');
      assert.equal((await vscode.workspace.openTextDocument(modified)).getText(), 'from A\n');
      await vscode.commands.executeCommand('workbench.action.closeAllEditors');
    });

    it('sparkq.openWorktree makes sure the worktree is there, on the task branch', async () => {
      const r = await exec<{ dir: string }>('sparkq.openWorktree', { task: a.id, open: false });
      assert.ok(r, sparkq.testHooks.lastFailure()?.message);
      assert.ok(fs.existsSync(r.dir));
      assert.equal(execFileSync('git', ['symbolic-ref', '--short', 'HEAD'], { cwd: r.dir, encoding: 'utf8' }).trim(), a.change!.branch);
    });

    it('sparkq.mergeChange fast-forwards the base; the working tree is clean', async () => {
      const r = await exec<{ outcome: string; into: string; commit: string }>('sparkq.mergeChange', { task: a.id });
      assert.ok(r, sparkq.testHooks.lastFailure()?.message);
      assert.equal(r.outcome, 'merged');
      assert.equal(r.into, 'main');
      assert.equal(git('rev-parse', 'main'), a.change!.commit);
      assert.equal(git('status', '--porcelain'), '');
      assert.equal(fs.readFileSync(path.join(dir, 'notes.txt'), 'utf8'), 'from A\n');
    });

    it("the second task's merge reports the conflicting file and leaves the base as it was", async () => {
      const before = git('rev-parse', 'main');
      assert.equal(await exec('sparkq.mergeChange', { task: b.id }), undefined);
      assert.match(sparkq.testHooks.lastFailure()?.message ?? '', /conflicts in notes\.txt\. Nothing was merged; main is as it was/);
      assert.equal(git('rev-parse', 'main'), before);
      assert.equal(git('status', '--porcelain'), '');
      assert.equal(fs.readFileSync(path.join(dir, 'notes.txt'), 'utf8'), 'from A\n');
    });

    it('sparkq.discardChange removes the branch and the worktree', async () => {
      const branch = b.change!.branch;
      const r = await exec<{ branch: string }>('sparkq.discardChange', { task: b.id });
      assert.ok(r, sparkq.testHooks.lastFailure()?.message);
      assert.equal(gitOk('rev-parse', '--verify', '-q', `refs/heads/${branch}`), false, 'the branch is gone');
      assert.doesNotMatch(git('worktree', 'list', '--porcelain'), new RegExp(`branch refs/heads/${branch.replace(/[/.]/g, '\\$&')}\\b`));
      assert.equal(fs.existsSync(path.join(dir, b.change!.worktree)) && git('-C', path.join(dir, b.change!.worktree), 'symbolic-ref', '--short', 'HEAD') === branch, false);
    });

    it("sparkq.endQueue on a worktree queue prunes its merged branches when told to; the base stays", async () => {
      assert.ok(gitOk('rev-parse', '--verify', '-q', `refs/heads/${a.change!.branch}`), 'the merged branch is there before');
      const q = await exec<Queue>('sparkq.endQueue', { queue: 'Review', prune: 'merged' });
      assert.ok(q, sparkq.testHooks.lastFailure()?.message);
      assert.equal(q.status, 'ended');
      assert.equal(gitOk('rev-parse', '--verify', '-q', `refs/heads/${a.change!.branch}`), false, 'the merged branch is pruned');
      assert.equal(git('rev-parse', 'main'), a.change!.commit);
      assert.equal(git('status', '--porcelain'), '');
    });
  });
}
