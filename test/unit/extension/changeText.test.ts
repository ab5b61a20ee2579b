import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Task, TaskChange } from '../../../src/core/model';
import type { ChangeEntry } from '../../../src/worker/changes';
import {
  changeBadge,
  changeFlags,
  chooseMergeMode,
  conflictMessage,
  diffFileLabel,
  discardQuestion,
  entryLine,
  mergeTargetLabel,
  parseNameStatus,
  pruneViewOf,
} from '../../../src/extension/changes/changeText';
import { DashboardController, type DashboardCommand } from '../../../src/extension/dashboard/dashboardController';
import type { HostMessage } from '../../../src/shared/dashboardProtocol';
import { taskContextValue, taskDescription } from '../../../src/extension/views/taskText';
import { fakeTask } from '../../support/model';

const NOW = Date.parse('2026-11-21T12:00:00Z');
const BASE = 'a'.repeat(40);
const COMMIT = 'b'.repeat(40);

const change = (over: Partial<TaskChange> = {}): TaskChange => ({
  worktree: '.sparkq/worktrees/w1',
  branch: 'sparkq/back-end/tsk_a',
  baseRef: 'main',
  baseCommit: BASE,
  commit: COMMIT,
  files: [{ path: 'src/a.ts', status: 'M' }],
  filesChanged: 3,
  insertions: 10,
  deletions: 2,
  ...over,
});
const task = (over: Partial<Task> = {}): Task =>
  fakeTask({ status: 'succeeded', createdAt: new Date(NOW - 65_000).toISOString(), startedAt: new Date(NOW - 60_000).toISOString(), finishedAt: new Date(NOW - 57_000).toISOString(), ...over });

describe('reviewing a task change in VS Code (words and decisions without vscode)', () => {
  it('badges a change: its diff stat, "no changes", nothing without a change', () => {
    assert.equal(changeBadge(task({ change: change() })), '+10 −2 · 3 files');
    assert.equal(changeBadge(task({ change: change({ filesChanged: 1, insertions: 1, deletions: 0 }) })), '+1 −0 · 1 file');
    assert.equal(changeBadge(task({ change: change({ commit: null, files: [], filesChanged: 0, insertions: 0, deletions: 0 }) })), 'no changes');
    assert.equal(changeBadge(task({ status: 'failed', change: change({ commit: null }) })), 'worktree kept');
    assert.equal(changeBadge(task({ change: null })), null);
    assert.match(taskDescription(task({ change: change() }), NOW), / · \+10 −2 · 3 files$/);
  });

  it('flags finished tasks with a change, and those with a commit, after the status in the context value', () => {
    assert.deepEqual(changeFlags(task({ change: change() })), ['change', 'commit']);
    assert.deepEqual(changeFlags(task({ change: change({ commit: null }) })), ['change']);
    assert.deepEqual(changeFlags(task({ status: 'failed', change: change({ commit: null }) })), ['change']);
    assert.deepEqual(changeFlags(task({ status: 'running', change: change({ commit: null }) })), []);
    assert.deepEqual(changeFlags(task({ change: null })), []);
    assert.equal(taskContextValue(task({ change: change() })), 'sparkq:task+succeeded+change+commit');
    assert.equal(taskContextValue(task({ status: 'failed', change: change({ commit: null }) })), 'sparkq:task+failed+change');
  });

  it("package.json's Tasks-view menus show each change command only where it applies", () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(__dirname, '../../../package.json'), 'utf8')) as { contributes: { menus: Record<string, { command: string; when: string }[]> } };
    const menus = pkg.contributes.menus['view/item/context']!;
    const shows = (command: string, contextValue: string) =>
      menus
        .filter((m) => m.command === command && m.when.includes('view == sparkq.tasks'))
        .some((m) => {
          const re = /viewItem =~ \/(.*?)\/ /.exec(m.when)?.[1];
          assert.ok(re, `${command}: a viewItem regex`);
          assert.match(m.when, /sparkq\.trusted/, `${command} shows only in a trusted workspace`);
          return new RegExp(re).test(contextValue);
        });
    const committed = taskContextValue(task({ change: change() }));
    const noChange = taskContextValue(task({ change: change({ commit: null }) }));
    const failed = taskContextValue(task({ status: 'failed', change: change({ commit: null }) }));
    const plain = taskContextValue(task());
    const running = taskContextValue(task({ status: 'running', change: change({ commit: null }) }));
    for (const cmd of ['sparkq.showChanges', 'sparkq.mergeChange']) {
      assert.equal(shows(cmd, committed), true, `${cmd} on a committed change`);
      for (const cv of [noChange, failed, plain, running]) assert.equal(shows(cmd, cv), false, `${cmd} not on ${cv}`);
    }
    for (const cmd of ['sparkq.openWorktree', 'sparkq.discardChange']) {
      for (const cv of [committed, noChange, failed]) assert.equal(shows(cmd, cv), true, `${cmd} on ${cv}`);
      for (const cv of [plain, running]) assert.equal(shows(cmd, cv), false, `${cmd} not on ${cv}`);
    }
  });

  it('reads git diff --name-status -z with renames, additions and deletions', () => {
    const files = parseNameStatus('M\0src/a.ts\0A\0new file.txt\0D\0gone.md\0R087\0old/name.ts\0new/name.ts\0');
    assert.deepEqual(files, [
      { status: 'M', before: 'src/a.ts', after: 'src/a.ts' },
      { status: 'A', before: null, after: 'new file.txt' },
      { status: 'D', before: 'gone.md', after: null },
      { status: 'R', before: 'old/name.ts', after: 'new/name.ts' },
    ]);
    assert.deepEqual(files.map(diffFileLabel), ['src/a.ts', 'new file.txt', 'gone.md', 'old/name.ts → new/name.ts']);
    assert.deepEqual(parseNameStatus(''), []);
    assert.deepEqual(parseNameStatus('R100\0only-one\0'), [], 'a cut rename is dropped, not paired wrongly');
  });

  it('takes the merge mode from a setting a person set, else from sparkq.yml', () => {
    assert.equal(chooseMergeMode(undefined, 'ff-only'), 'ff-only');
    assert.equal(chooseMergeMode({}, 'merge'), 'merge');
    assert.equal(chooseMergeMode({ globalValue: 'merge' }, 'ff-only'), 'merge');
    assert.equal(chooseMergeMode({ globalValue: 'merge', workspaceValue: 'ff-only' }, 'ff-or-merge'), 'ff-only');
    assert.equal(chooseMergeMode({ workspaceValue: 'ff-only', workspaceFolderValue: 'ff-or-merge' }, 'merge'), 'ff-or-merge');
    assert.equal(chooseMergeMode({ globalValue: 'rebase' }, 'merge'), 'merge', 'an unknown value is ignored');
  });

  it('says what a conflict touched and that nothing was merged', () => {
    const m = conflictMessage('sparkq/q/tsk_b', 'main', ['notes.txt', 'src/a.ts']);
    assert.match(m, /conflicts in notes\.txt, src\/a\.ts\. Nothing was merged; main is as it was/);
    const many = conflictMessage('b', 'main', Array.from({ length: 12 }, (_, i) => `f${i}`));
    assert.match(many, /f9 and 2 more/);
    assert.equal(mergeTargetLabel(change({ baseRef: null })), `its base commit ${BASE.slice(0, 12)}`);
  });

  it('asks before discarding, louder for work that was never merged', () => {
    const t = task({ change: change() });
    assert.match(discardQuestion(t, t.change!, false, false), /NOT merged into main: that work will be lost/);
    assert.match(discardQuestion(t, t.change!, true, false), /already merged into main; nothing is lost/);
    assert.match(discardQuestion(t, t.change!, null, true), /uncommitted work/);
    assert.doesNotMatch(discardQuestion(t, t.change!, null, false), /NOT merged/);
  });

  it("sorts an ended queue's worktrees: merged and unchanged go, unmerged only when asked, the rest stay", () => {
    const entry = (id: string, state: ChangeEntry['state'], over: Partial<ChangeEntry> = {}, queueId = 'que_1'): ChangeEntry => ({
      taskId: id,
      task: task({ id, queueId, change: change({ branch: `sparkq/q/${id}` }) }),
      branch: `sparkq/q/${id}`,
      dir: null,
      dirty: false,
      state,
      note: '',
      ...over,
    });
    const view = pruneViewOf(
      [
        entry('tsk_m', 'merged'),
        entry('tsk_n', 'no-change'),
        entry('tsk_d', 'merged', { dirty: true }),
        entry('tsk_u', 'unmerged'),
        entry('tsk_f', 'failed'),
        entry('tsk_r', 'in-use'),
        entry('tsk_o', 'merged', {}, 'que_2'),
        { taskId: null, task: null, branch: 'sparkq/x/y', dir: null, dirty: false, state: 'orphan', note: '' },
      ],
      'que_1',
    );
    assert.deepEqual(view.prunable.map((e) => e.taskId), ['tsk_m', 'tsk_n']);
    assert.deepEqual(view.unmerged.map((e) => e.taskId), ['tsk_u']);
    assert.deepEqual(view.kept.map((e) => e.taskId), ['tsk_d', 'tsk_f']);
    assert.equal(entryLine(view.unmerged[0]!), 'tsk_u sparkq/q/tsk_u (+10 −2 · 3 files)');
  });

  it("the dashboard's change buttons run the same commands, discard with its question, and refuse in Restricted Mode", async () => {
    const run: [DashboardCommand, Record<string, unknown>][] = [];
    const posted: HostMessage[] = [];
    let readOnly = false;
    const ctl = new DashboardController({
      reader: () => Promise.reject(new Error('unused')),
      api: () => Promise.reject(new Error('unused')),
      isReadOnly: () => readOnly,
      problem: () => null,
      tools: () => [],
      post: (m) => posted.push(m),
      runCommand: (command, args) => {
        run.push([command, args]);
        return Promise.resolve(command === 'mergeChange' ? undefined : { ok: true });
      },
      openLog: () => Promise.resolve(),
    });
    const req = async (id: number, action: string) => {
      await ctl.handleMessage({ type: 'request', id, method: 'taskAction', params: { task: 'tsk_a', action } });
      const r = posted.find((m) => m.type === 'response' && m.id === id);
      assert.ok(r && r.type === 'response');
      return r;
    };
    assert.equal((await req(1, 'showChanges')).ok, true);
    assert.equal((await req(2, 'discardChange')).ok, true);
    assert.equal((await req(3, 'openWorktree')).ok, true);
    const merge = await req(4, 'mergeChange');
    assert.equal(merge.ok, false, 'a merge that did not happen (conflict) is answered with an error');
    assert.deepEqual(run, [
      ['showChanges', { task: 'tsk_a' }],
      ['discardChange', { task: 'tsk_a', confirm: true }],
      ['openWorktree', { task: 'tsk_a' }],
      ['mergeChange', { task: 'tsk_a' }],
    ]);
    readOnly = true;
    const refused = await req(5, 'mergeChange');
    assert.ok(refused.ok === false && /Restricted Mode/.test(refused.error));
    assert.equal(run.length, 4, 'nothing ran in Restricted Mode');
    ctl.dispose();
  });
});
