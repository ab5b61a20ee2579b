import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { SparkqExports } from '../../src/extension/extension';
import { activateSparkq, exec, rowsOf, waitFor, workspaceDir } from './helpers';
import { activateProbe, definitionsAfterSparkq, expectedDefinition, sparkqDefinitions } from './mcpProvider.tests';

/**
 * Restricted Mode: a window on an untrusted folder that already has a queue (made by the CLI). SparkQ shows it
 * read-only and runs nothing: no owner, no socket, no workers, and every command that would change or run something
 * refuses in code — even when called directly, past the hidden menus.
 */
export function registerRestrictedSuite(): void {
  let sparkq: SparkqExports;
  let dir: string;

  describe('SparkQ in Restricted Mode', function () {
    this.timeout(60_000);

    before(async () => {
      dir = workspaceDir();
      sparkq = await activateSparkq();
    });

    it('the workspace is untrusted and SparkQ opened a read-only copy', () => {
      assert.equal(vscode.workspace.isTrusted, false);
      assert.equal(sparkq.testHooks.connection.state.kind, 'read-only');
      assert.equal(sparkq.testHooks.connection.queueHandle, null);
    });

    it('no owner and no socket: owner.json was not written', () => {
      assert.equal(fs.existsSync(path.join(dir, '.sparkq', 'owner.json')), false);
    });

    it('the views show what is there', async () => {
      const views = sparkq.testHooks.views;
      await views.refreshNow();
      assert.deepEqual((await rowsOf(views.sessions)).map((r) => r.label), ['seeded']);
      assert.deepEqual((await rowsOf(views.queues)).map((r) => r.label), ['Back End']);
      const tasks = await rowsOf(views.tasks);
      assert.deepEqual(tasks.map((t) => t.icon).sort(), ['circle-large-outline', 'pass']);
      const page = await sparkq.listTasks({});
      assert.equal(page.tasks.length, 2);
    });

    it('reading commands work: showTask, refresh, filterTasks', async () => {
      const page = await sparkq.listTasks({ status: 'succeeded' });
      const r = await exec<{ uri: string }>('sparkq.showTask', { task: page.tasks[0]!.id });
      assert.ok(r, sparkq.testHooks.lastFailure()?.message);
      assert.equal((await exec<{ kind: string }>('sparkq.refresh')).kind, 'read-only');
      assert.deepEqual(await exec('sparkq.filterTasks', { status: ['queued'] }), ['queued']);
      await exec('sparkq.filterTasks', { status: [] });
      await vscode.commands.executeCommand('workbench.action.closeAllEditors');
    });

    const refused: [string, unknown][] = [
      ['sparkq.setup', { project: 'x', overwrite: true }],
      ['sparkq.createSession', { name: 'nope' }],
      ['sparkq.endSession', { session: 'seeded' }],
      ['sparkq.createQueue', { name: 'nope', session: 'seeded' }],
      ['sparkq.endQueue', { queue: 'Back End' }],
      ['sparkq.enqueue', { queue: 'Back End', tool: 'run-bash', prompt: 'x' }],
      ['sparkq.claim', { queue: 'Back End' }],
      ['sparkq.complete', { task: 'tsk_x', summary: 'x' }],
      ['sparkq.fail', { task: 'tsk_x', error: 'x' }],
      ['sparkq.requeue', { task: 'tsk_x' }],
      ['sparkq.startWorker', { queue: 'Back End' }],
      ['sparkq.purge', { olderThanDays: 0 }],
      ['sparkq.startWorkers', { queue: 'Back End', count: 1 }],
      ['sparkq.applyPlan', { file: 'plan.yml' }],
      ['sparkq.pauseQueue', { queue: 'Back End' }],
      ['sparkq.resumeQueue', { queue: 'Back End' }],
      ['sparkq.requeueFailed', {}],
      // Reviewing a worktree change runs git: none of it in Restricted Mode.
      ['sparkq.createQueue', { name: 'nope', session: 'seeded', isolation: 'worktree' }],
      ['sparkq.showChanges', { task: 'tsk_x' }],
      ['sparkq.mergeChange', { task: 'tsk_x' }],
      ['sparkq.openWorktree', { task: 'tsk_x', open: false }],
      ['sparkq.discardChange', { task: 'tsk_x' }],
    ];
    for (const [command, args] of refused) {
      it(`${command} refuses with a message about Restricted Mode`, async () => {
        assert.equal(await exec(command, args), undefined);
        assert.match(sparkq.testHooks.lastFailure()?.message ?? '', /Restricted Mode/);
        assert.equal(sparkq.testHooks.lastFailure()?.command, command);
      });
    }

    it('sparkq.report reads the usage report from the read-only copy', async () => {
      const r = await exec<{ uri: string; reports: { by: string; total: { tasks: number; succeeded: number } }[] }>('sparkq.report', { by: 'queue' });
      assert.ok(r, sparkq.testHooks.lastFailure()?.message);
      assert.deepEqual(r.reports.map((x) => x.by), ['queue']);
      assert.equal(r.reports[0]!.total.succeeded, 1);
      await vscode.commands.executeCommand('workbench.action.closeAllEditors');
    });

    it('the dashboard opens read-only: it shows the queue and refuses to enqueue', async () => {
      assert.deepEqual(await exec('sparkq.openDashboard'), { opened: true });
      const controller = sparkq.testHooks.dashboard.current!;
      await waitFor('the dashboard webview to say ready', () => controller.isReady, 60_000);
      await controller.handleMessage({ type: 'request', id: 1, method: 'enqueue', params: { queue: 'Back End', tool: 'llm-codex', prompt: 'x' } });
      assert.equal((await sparkq.listTasks({})).tasks.length, 2);
    });

    it('the typed API refuses changes too, and nothing changed on disk', async () => {
      await assert.rejects(sparkq.enqueue({ queue: 'Back End', tool: 'run-bash', prompt: 'x' }), /Restricted Mode/);
      assert.equal(vscode.window.terminals.length, 0);
      assert.equal(fs.existsSync(path.join(dir, '.sparkq', 'owner.json')), false);
      assert.equal((await sparkq.listTasks({})).tasks.length, 2);
    });

    it('VS Code lists no SparkQ MCP server in Restricted Mode', async () => {
      const all = await definitionsAfterSparkq(await activateProbe());
      assert.deepEqual(sparkqDefinitions(all), []);
    });

    // Last: it trusts the folder, after which SparkQ is no longer in Restricted Mode.
    it('once the folder is trusted, VS Code lists SparkQ’s MCP server with no reload', async () => {
      const probe = await activateProbe();
      const granted = new Promise<void>((resolve) => vscode.workspace.onDidGrantWorkspaceTrust(() => resolve()));
      // The Workspace Trust editor, whose Trust button the test runner presses in the page as a person would
      // (scripts/run-integration.mjs, grantTrustInEditor): the smoke-test driver refuses the modal trust request.
      await vscode.commands.executeCommand('workbench.trust.manage');
      await granted;
      assert.equal(vscode.workspace.isTrusted, true);
      const listed = await waitFor('SparkQ’s server in VS Code’s list', () => {
        const ours = sparkqDefinitions(probe.definitions());
        return ours.length > 0 ? ours : undefined;
      });
      assert.deepEqual(listed, [expectedDefinition(dir)]);
    });
  });
}
