import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { Claim, Queue, Session, Task, TaskDetail } from '../../src/core/model';
import { COMMANDS } from '../../src/extension/commands';
import type { SparkqExports } from '../../src/extension/extension';
import { activateSparkq, exec, rowsOf, waitFor, workspaceDir, EXTENSION_ID } from './helpers';
import { activateProbe, definitionsAfterSparkq, expectedDefinition, sparkqDefinitions, startMcpDefinition } from './mcpProvider.tests';
import { registerValidationTests } from './validation.tests';
import { registerWorktreeTests } from './worktrees.tests';

/**
 * The main suite runs in a window on an empty folder: SparkQ activates without a queue, `Set up SparkQ` writes
 * sparkq.yml and makes this window the owner, then every command is driven with an arguments object and the views,
 * status bar, notifications, worker terminals and sparkq.yml diagnostics are checked against what the queue holds.
 */
export function registerMainSuite(): void {
  let sparkq: SparkqExports;
  let dir: string;
  let session: Session;
  let queue: Queue;

  describe('SparkQ in a real VS Code extension host', function () {
    this.timeout(90_000);

    before(async () => {
      dir = workspaceDir();
      sparkq = await activateSparkq();
    });

    describe('activation', () => {
      it('activates on an empty folder and waits for setup', () => {
        assert.equal(sparkq.apiVersion, 1);
        assert.equal(fs.existsSync(path.join(dir, 'sparkq.yml')), false);
        assert.equal(sparkq.testHooks.connection.state.kind, 'not-set-up');
        assert.ok(vscode.workspace.isTrusted);
      });

      it('declares its activation events, views and trust support', () => {
        const pkg = vscode.extensions.getExtension(EXTENSION_ID)!.packageJSON as {
          activationEvents: string[];
          contributes: { views: { sparkq: { id: string }[] } };
          capabilities: { untrustedWorkspaces: { supported: string } };
        };
        assert.deepEqual(pkg.activationEvents, ['workspaceContains:sparkq.yml', 'workspaceContains:.sparkq', 'onWebviewPanel:sparkq.dashboard']);
        assert.deepEqual(
          pkg.contributes.views.sparkq.map((v: { id: string }) => v.id),
          ['sparkq.sessions', 'sparkq.queues', 'sparkq.tasks'],
        );
        assert.equal(pkg.capabilities.untrustedWorkspaces.supported, 'limited');
      });

      it('offers agent mode no SparkQ MCP server in a folder that does not use SparkQ yet', async () => {
        // `sparkq mcp` here would make a queue in the folder the moment agent mode started it.
        const all = await definitionsAfterSparkq(await activateProbe());
        assert.deepEqual(sparkqDefinitions(all), []);
      });

      it('refuses queue commands before setup with a message that says what to do', async () => {
        const r = await exec('sparkq.createSession', { name: 'too-early' });
        assert.equal(r, undefined);
        assert.match(sparkq.testHooks.lastFailure()?.message ?? '', /not set up.*Set up SparkQ/);
      });
    });

    describe('commands', () => {
      it('every command in package.json is registered, and every registered sparkq command is in package.json', async () => {
        const pkg = vscode.extensions.getExtension(EXTENSION_ID)!.packageJSON as { contributes: { commands: { command: string; category: string }[] } };
        const declared = pkg.contributes.commands.map((c) => c.command).sort();
        const registered = (await vscode.commands.getCommands(true)).filter((c) => c.startsWith('sparkq.') && !/^sparkq\.(sessions|queues|tasks)\./.test(c)) // view commands VS Code adds itself
          .sort();
        assert.deepEqual(registered, declared);
        assert.deepEqual(Object.keys(COMMANDS).sort(), declared);
        for (const c of pkg.contributes.commands) assert.equal(c.category, 'SparkQ', `${c.command} has category SparkQ`);
      });

      it('sparkq.setup writes sparkq.yml, becomes the owner and creates the first session and queue', async () => {
        const r = await exec<{ configFile: string; session: Session; queue: Queue }>('sparkq.setup', {
          project: 'itest',
          scriptDirs: ['scripts'],
          session: 'api-v2',
          queue: 'Back End',
          instructions: 'Keep changes small.',
        });
        assert.ok(r, `setup failed: ${sparkq.testHooks.lastFailure()?.message}`);
        assert.equal(r.configFile, path.join(dir, 'sparkq.yml'));
        assert.match(fs.readFileSync(r.configFile, 'utf8'), /project: "itest"/);
        assert.ok(fs.existsSync(path.join(dir, 'scripts')));
        assert.equal(sparkq.testHooks.connection.state.kind, 'owner');
        assert.ok(fs.existsSync(path.join(dir, '.sparkq', 'owner.json')), 'the window serves other processes');
        session = r.session;
        queue = r.queue;
        assert.equal(queue.instructions, 'Keep changes small.');
      });

      it('sparkq.setup refuses to overwrite without { overwrite: true }', async () => {
        assert.equal(await exec('sparkq.setup', { project: 'again' }), undefined);
        assert.match(sparkq.testHooks.lastFailure()?.message ?? '', /already exists.*overwrite: true/);
      });

      it('sparkq.createSession and sparkq.createQueue return what they created', async () => {
        const s = await exec<Session>('sparkq.createSession', { name: 'scratch', description: 'throwaway' });
        assert.equal(s.name, 'scratch');
        const q = await exec<Queue>('sparkq.createQueue', { name: 'Docs', session: 'scratch' });
        assert.equal(q.session, 'scratch');
        assert.equal(q.status, 'active');
      });

      it('rejects misspelt arguments with the expected shape', async () => {
        assert.equal(await exec('sparkq.enqueue', { queue: 'Back End', tool: 'run-bash', promt: 'typo' }), undefined);
        assert.match(sparkq.testHooks.lastFailure()?.message ?? '', /invalid arguments.*Expected \{ queue, tool\?, prompt\?, pattern\?/);
      });

      it('enqueue → claim → complete, fail → requeue, through the commands', async () => {
        const a = await exec<Task>('sparkq.enqueue', { queue: 'Back End', tool: 'llm-codex', prompt: 'add the users endpoint' });
        assert.equal(a.status, 'queued');
        assert.match(a.id, /^tsk_/);
        const b = await exec<Task>('sparkq.enqueue', { queue: 'Back End', tool: 'llm-claude', prompt: 'write the migration' });
        const claimA = await exec<Claim>('sparkq.claim', { queue: 'Back End', worker: 'itest' });
        assert.equal(claimA.task.id, a.id);
        assert.equal(claimA.instructions, 'Keep changes small.');
        const done = await exec<Task>('sparkq.complete', { task: a.id, summary: 'endpoint added', data: { files: 3 }, lease: claimA.lease });
        assert.equal(done.status, 'succeeded');
        assert.deepEqual(done.result, { summary: 'endpoint added', data: { files: 3 } });
        const claimB = await exec<Claim>('sparkq.claim', { queue: 'Back End' });
        assert.equal(claimB.task.id, b.id);
        const failed = await exec<Task>('sparkq.fail', { task: b.id, error: 'migration conflicts with main' });
        assert.equal(failed.status, 'failed');
        const again = await exec<Task>('sparkq.requeue', { task: b.id });
        assert.equal(again.status, 'queued');
        assert.equal(again.retryOf, b.id);
        assert.equal(await exec('sparkq.claim', { queue: 'Docs' }), null, 'an empty queue gives null');
      });

      it('the typed API does the same and reports changes', async () => {
        const seen: string[] = [];
        const sub = sparkq.onDidChange((events) => {
          for (const e of events) if (e.kind === 'task') seen.push(`${e.id}:${e.status}`);
        });
        try {
          const t = await sparkq.enqueue({ queue: 'Docs', tool: 'run-bash', prompt: 'noop.sh' });
          const c = await sparkq.claim({ queue: 'Docs', worker: 'api' });
          assert.equal(c?.task.id, t.id);
          await sparkq.complete({ task: t.id, summary: 'ok', lease: c.lease });
          const d = await sparkq.getTask(t.id);
          assert.equal(d.status, 'succeeded');
          assert.equal(d.attempts.length, 1);
          const page = await sparkq.listTasks({ queue: 'Docs' });
          assert.ok(page.tasks.some((x) => x.id === t.id));
          await waitFor('change events', () => seen.includes(`${t.id}:succeeded`));
          assert.ok(seen.includes(`${t.id}:queued`));
        } finally {
          sub.dispose();
        }
      });

      it('sparkq.showTask opens a readable document', async () => {
        const { tasks } = await sparkq.listTasks({ status: 'succeeded', queue: 'Back End' });
        const r = await exec<{ uri: string; task: TaskDetail }>('sparkq.showTask', { task: tasks[0]!.id });
        assert.ok(r, sparkq.testHooks.lastFailure()?.message);
        const doc = vscode.workspace.textDocuments.find((d) => d.uri.toString() === r.uri);
        assert.ok(doc);
        assert.equal(doc.languageId, 'markdown');
        const text = doc.getText();
        for (const part of ['succeeded', 'add the users endpoint', 'endpoint added', '## Attempts', 'Keep changes small.']) assert.ok(text.includes(part), `document shows ${part}`);
        await vscode.commands.executeCommand('workbench.action.closeAllEditors');
        assert.equal(await exec('sparkq.showTask', { task: 'tsk_doesnotexist' }), undefined);
        assert.match(sparkq.testHooks.lastFailure()?.message ?? '', /tsk_doesnotexist/);
      });

      it('sparkq.refresh, sparkq.showTasks, sparkq.showLog and sparkq.openConfig run', async () => {
        const state = await exec<{ kind: string }>('sparkq.refresh');
        assert.equal(state.kind, 'owner');
        await exec('sparkq.showTasks');
        await exec('sparkq.showLog');
        await exec('sparkq.openConfig');
        assert.equal(vscode.window.activeTextEditor?.document.uri.fsPath, path.join(dir, 'sparkq.yml'));
        await vscode.commands.executeCommand('workbench.action.closeAllEditors');
      });

      it('sparkq.purge removes old finished tasks only', async () => {
        const r = await exec<{ purged: number }>('sparkq.purge', { olderThanDays: 30 });
        assert.deepEqual(r, { purged: 0 });
        const all = await sparkq.listTasks({});
        assert.ok(all.tasks.length >= 4);
      });
    });

    describe('views', () => {
      it('Sessions lists the sessions; selecting one filters Queues; selecting a queue filters Tasks', async () => {
        const views = sparkq.testHooks.views;
        await views.refreshNow();
        const sessions = await rowsOf(views.sessions);
        assert.deepEqual(sessions.map((s) => s.label).sort(), ['api-v2', 'scratch']);
        assert.ok(sessions.every((s) => s.contextValue === 'sparkq:session+active'));
        views.selection.selectSession(session);
        const queues = await rowsOf(views.queues);
        assert.deepEqual(queues.map((q) => q.label), ['Back End']);
        assert.equal(queues[0]!.contextValue, 'sparkq:queue+active');
        assert.match(queues[0]!.description, /queued/);
        views.selection.selectQueue(queue);
        const tasks = await rowsOf(views.tasks);
        assert.equal(tasks.length, 3);
        const byLabel = new Map(tasks.map((t) => [t.label, t]));
        assert.equal(byLabel.get('add the users endpoint')?.icon, 'pass');
        assert.equal(byLabel.get('add the users endpoint')?.contextValue, 'sparkq:task+succeeded');
        assert.match(byLabel.get('add the users endpoint')?.description ?? '', /^llm-codex · took /);
        const migration = tasks.filter((t) => t.label === 'write the migration').map((t) => t.icon).sort();
        assert.deepEqual(migration, ['circle-large-outline', 'error']);
      });

      it('the status filter narrows the tasks view', async () => {
        const filtered = await exec<string[]>('sparkq.filterTasks', { status: ['failed'] });
        assert.deepEqual(filtered, ['failed']);
        const rows = await rowsOf(sparkq.testHooks.views.tasks);
        assert.deepEqual(rows.map((r) => r.contextValue), ['sparkq:task+failed']);
        assert.equal(sparkq.testHooks.views.tasksView.description, 'Back End · failed');
        await exec('sparkq.filterTasks', { status: [] });
        assert.equal((await rowsOf(sparkq.testHooks.views.tasks)).length, 3);
      });

      it('a running task past its timeout shows as stale, with a badge, a status bar count and a notification', async () => {
        const t = await sparkq.enqueue({ queue: 'Back End', tool: 'llm-haiku', prompt: 'slow task', timeoutSeconds: 1 });
        // Everything queued before it goes first (FIFO): claim until it is ours.
        let claim: Claim | null;
        do claim = await sparkq.claim({ queue: 'Back End', worker: 'itest-stale' });
        while (claim && claim.task.id !== t.id);
        assert.equal(claim?.task.id, t.id);
        await new Promise((r) => setTimeout(r, 1_200));
        await sparkq.testHooks.connection.queueHandle!.sweep();
        const views = sparkq.testHooks.views;
        const row = await waitFor('a stale row', async () => (await rowsOf(views.tasks)).find((r) => r.id === t.id && r.contextValue === 'sparkq:task+running+stale'));
        assert.equal(row.icon, 'warning');
        await views.refreshNow();
        assert.equal(views.queuesView.badge?.value, 1);
        assert.ok((views.tasksView.badge?.value ?? 0) >= 1);
        await waitFor('the stale notification', () => sparkq.testHooks.notifications.shown.find((n) => n.taskId === t.id && n.kind === 'stale'));
        await sparkq.testHooks.statusBar.update();
        assert.match(sparkq.testHooks.statusBar.text, /running.*queued.*1 stale/);
        await sparkq.fail({ task: t.id, error: 'too slow' });
        await waitFor('the failure notification', () => sparkq.testHooks.notifications.shown.find((n) => n.taskId === t.id && n.kind === 'failed'));
      });

      it('views update live from change events made by another process', async () => {
        const views = sparkq.testHooks.views;
        views.selection.selectQueue(null);
        views.selection.selectSession(null);
        // Asynchronously: this host owns the queue, and a synchronous wait would keep it from answering the CLI.
        const { execFile } = await import('node:child_process');
        const cli = path.join(vscode.extensions.getExtension(EXTENSION_ID)!.extensionPath, 'dist', 'cli.js');
        const out = await new Promise<string>((resolve, reject) =>
          execFile(process.execPath, [cli, 'enqueue', 'run-bash', '--queue', 'Docs', '--prompt', 'from the CLI', '--json'], { cwd: dir, env: { ...process.env, ELECTRON_RUN_AS_NODE: '1' } }, (e, stdout) =>
            e ? reject(new Error(e.message)) : resolve(stdout),
          ),
        );
        assert.equal(sparkq.testHooks.connection.state.kind, 'owner', 'the CLI was a client of this window');
        const id = (JSON.parse(out) as Task).id;
        await waitFor('the CLI task in the view', async () => (await rowsOf(views.tasks)).some((r) => r.id === id));
      });
    });

    describe('dashboard', () => {
      it('opens the dashboard webview, which loads and says ready', async () => {
        const r = await exec<{ opened: boolean }>('sparkq.openDashboard');
        assert.deepEqual(r, { opened: true });
        const controller = sparkq.testHooks.dashboard.current;
        assert.ok(controller, 'a dashboard controller exists');
        // `ready` comes from the real webview bundle running in the workbench's iframe.
        await waitFor('the dashboard webview to say ready', () => controller.isReady, 60_000);
        const tab = vscode.window.tabGroups.all.flatMap((g) => g.tabs).find((t) => t.input instanceof vscode.TabInputWebview && t.input.viewType.endsWith('sparkq.dashboard'));
        assert.ok(tab, 'the dashboard is open in an editor tab');
        assert.equal(tab.label, 'SparkQ Dashboard');
        // A second open reveals the same panel.
        await exec('sparkq.openDashboard');
        assert.equal(sparkq.testHooks.dashboard.current, controller);
      });

      it('enqueues from the form through the host handler; the task appears in the tasks tree; malformed messages change nothing', async () => {
        const controller = sparkq.testHooks.dashboard.current!;
        const views = sparkq.testHooks.views;
        views.selection.selectQueue(null);
        views.selection.selectSession(null);
        const before = (await sparkq.testHooks.connection.queueHandle!.status()).counts.queued;
        await controller.handleMessage({ type: 'request', id: 9_001, method: 'enqueue', params: { queue: 'Docs', tool: 'llm-codex', prompt: 'x', sneaky: true } });
        await controller.handleMessage({ type: 'request', id: 9_002, method: 'enqueue', params: { queue: '', tool: 'llm-codex', prompt: '' } });
        await controller.handleMessage({ hello: 'world' });
        assert.equal((await sparkq.testHooks.connection.queueHandle!.status()).counts.queued, before);
        await controller.handleMessage({ type: 'request', id: 9_003, method: 'enqueue', params: { queue: 'Docs', tool: 'llm-codex', prompt: 'from the dashboard form', priority: '2' } });
        const page = await sparkq.testHooks.connection.queueHandle!.listTasks({ text: 'from the dashboard form' });
        assert.equal(page.tasks.length, 1);
        const task = page.tasks[0]!;
        assert.equal(task.priority, 2);
        await waitFor('the dashboard task in the tasks tree', async () => (await rowsOf(views.tasks)).find((r) => r.id === task.id && r.label === 'from the dashboard form'));
        await vscode.commands.executeCommand('workbench.action.closeAllEditors');
        await waitFor('the dashboard to close', () => sparkq.testHooks.dashboard.current === undefined);
      });
    });

    describe('MCP server definition provider', () => {
      it('once set up, VS Code lists SparkQ’s MCP server: stdio, `sparkq mcp` on this folder with the extension host’s own runtime', async () => {
        const probe = await activateProbe();
        const listed = await waitFor('SparkQ’s server in VS Code’s list', () => {
          const ours = sparkqDefinitions(probe.definitions());
          return ours.length > 0 ? ours : undefined;
        });
        assert.deepEqual(listed, [expectedDefinition(dir)]);
      });

      it('the definition VS Code holds starts a working `sparkq mcp`: a client of this window’s queue, not a second owner', async () => {
        const [def] = sparkqDefinitions((await activateProbe()).definitions());
        assert.ok(def?.command && def.args);
        // Started as VS Code starts a stdio server: the definition's env over the extension host's, in the workspace folder.
        const session = await startMcpDefinition(def, dir);
        try {
          const status = await session.call<{ project: string; owner: { pid: number } }>('status');
          assert.equal(status.project, 'itest');
          assert.equal(status.owner.pid, process.pid, 'the server reached the queue through this window, its owner');
        } finally {
          await session.close();
        }
      });
    });

    describe('worker terminals', () => {
      it('runs a script task to the end in a terminal with the SparkQ environment', async () => {
        fs.writeFileSync(
          path.join(dir, 'scripts', 'env-check.sh'),
          '#!/usr/bin/env bash\n# description: print what a SparkQ terminal gives a task\necho "workspace=$SPARKQ_WORKSPACE"\necho "worker=$SPARKQ_WORKER"\necho "path=$PATH"\necho "sparkq=$(command -v sparkq)"\necho "arg=$1"\necho "env-check done"\n',
          { mode: 0o755 },
        );
        const q = await exec<Queue>('sparkq.createQueue', { name: 'Scripts', session: 'api-v2' });
        const t = await exec<Task>('sparkq.enqueue', { queue: 'Scripts', tool: 'run-bash', payload: { script: 'env-check.sh', args: ['hello world'] } });
        const started = await exec<{ worker: string; terminal: string; queueId: string }>('sparkq.startWorker', { queue: 'Scripts' });
        assert.ok(started, sparkq.testHooks.lastFailure()?.message);
        assert.equal(started.terminal, 'SparkQ: Scripts');
        const terminal = vscode.window.terminals.find((x) => x.name === 'SparkQ: Scripts');
        assert.ok(terminal);
        const options = terminal.creationOptions as vscode.TerminalOptions;
        assert.equal(options.isTransient, true);
        assert.equal(options.shellPath, process.execPath);
        assert.equal(options.shellArgs?.includes('--allow-bypass'), false, 'no agent bypass modes unless sparkq.agents.allowBypass is on');
        assert.equal(options.env?.['SPARKQ_WORKSPACE'], dir);
        const bin = options.env?.['PATH']?.split(path.delimiter)[0] ?? '';
        assert.ok(fs.existsSync(path.join(bin, 'sparkq')), 'sparkq launcher first on PATH');
        if (process.versions['electron']) assert.equal(options.env?.['ELECTRON_RUN_AS_NODE'], '1');
        const done = await waitFor('the script task to finish', async () => {
          const d = await sparkq.getTask(t.id);
          return d.status === 'succeeded' || d.status === 'failed' ? d : undefined;
        }, 60_000);
        assert.equal(done.status, 'succeeded', `task failed: ${done.error ?? ''}\n${done.stderr ?? ''}`);
        assert.equal(done.worker, started.worker);
        assert.ok(done.stdout?.includes(`workspace=${dir}`), done.stdout ?? '');
        assert.ok(done.stdout?.includes(`worker=${started.worker}`), done.stdout ?? '');
        assert.ok(done.stdout?.includes(bin), 'the terminal PATH reaches the task');
        assert.ok(done.stdout?.includes('arg=hello world'));
        assert.equal(done.result?.summary, 'env-check done');
        const queues = await rowsOf(sparkq.testHooks.views.queues);
        assert.match(queues.find((r) => r.id === q.id)?.contextValue ?? '', /^sparkq:queue\+active\+worker$/);
      });

      it('closing the worker terminal stops the worker and fails its running task with the reason', async () => {
        fs.writeFileSync(path.join(dir, 'scripts', 'slow.sh'), '#!/usr/bin/env bash\necho started\nsleep 60\necho never\n', { mode: 0o755 });
        const t = await exec<Task>('sparkq.enqueue', { queue: 'Scripts', tool: 'run-bash', payload: { script: 'slow.sh' } });
        await waitFor('the slow task to start', async () => (await sparkq.getTask(t.id)).status === 'running', 30_000);
        const r = await exec<{ stopped: boolean }>('sparkq.stopWorker', { queue: 'Scripts' });
        assert.deepEqual(r, { stopped: true });
        assert.equal(vscode.window.terminals.some((x) => x.name === 'SparkQ: Scripts'), false);
        const failed = await waitFor('the task to fail', async () => {
          const d = await sparkq.getTask(t.id);
          return d.status === 'failed' ? d : undefined;
        });
        assert.match(failed.error ?? '', /interrupted/);
        assert.equal(sparkq.testHooks.workers.has(failed.queueId), false);
      });

      it('sparkq.stopWorker without a worker says so', async () => {
        assert.deepEqual(await exec('sparkq.stopWorker', { queue: 'Scripts' }), { stopped: false });
      });

      it('with sparkq.agents.allowBypass on (a user setting), worker terminals run sparkq run --allow-bypass', async () => {
        const config = vscode.workspace.getConfiguration();
        await config.update('sparkq.agents.allowBypass', true, vscode.ConfigurationTarget.Global);
        try {
          const started = await exec<{ terminal: string }>('sparkq.startWorker', { queue: 'Scripts' });
          assert.ok(started, sparkq.testHooks.lastFailure()?.message);
          const terminal = vscode.window.terminals.find((x) => x.name === started.terminal);
          const args = (terminal?.creationOptions as vscode.TerminalOptions | undefined)?.shellArgs;
          assert.ok(Array.isArray(args) && args.includes('--allow-bypass'), `shellArgs: ${JSON.stringify(args)}`);
          assert.deepEqual(await exec('sparkq.stopWorker', { queue: 'Scripts' }), { stopped: true });
        } finally {
          await config.update('sparkq.agents.allowBypass', undefined, vscode.ConfigurationTarget.Global);
        }
      });
    });

    describe('plans, pauses and many workers', () => {
      let planQueue: Queue;
      const planIds = new Map<string, string>();

      before(async () => {
        planQueue = await exec<Queue>('sparkq.createQueue', { name: 'Plans', session: 'api-v2', maxAttempts: 1 });
        assert.ok(planQueue, sparkq.testHooks.lastFailure()?.message);
        fs.mkdirSync(path.join(dir, 'plans'), { recursive: true });
        fs.writeFileSync(
          path.join(dir, 'plans', 'feature.yml'),
          [
            'id: feature-x',
            'description: A feature in four steps',
            'defaults: { queue: Plans, tool: llm-codex }',
            'tasks:',
            '  - { name: schema, prompt: write the schema }',
            '  - { name: api, prompt: build the api, after: [schema] }',
            '  - { name: ui, prompt: build the ui, after: [schema] }',
            '  - { name: docs, prompt: write the docs, after: [api, ui] }',
            '',
          ].join('\n'),
        );
      });

      it('sparkq.applyPlan with dryRun shows the levels, the parallel share and the critical path, and enqueues nothing', async () => {
        const r = await exec<{ plan: string; levels: string[][]; parallelShare: number; criticalPath: string[]; text: string }>('sparkq.applyPlan', { file: 'plans/feature.yml', dryRun: true });
        assert.ok(r, sparkq.testHooks.lastFailure()?.message);
        assert.equal(r.plan, 'feature-x');
        assert.deepEqual(r.levels, [['schema'], ['api', 'ui'], ['docs']]);
        assert.equal(r.parallelShare, 0.5);
        assert.equal(r.criticalPath.length, 3);
        assert.match(r.text, /Critical path: 3 tasks/);
        assert.equal((await sparkq.listTasks({ queue: 'Plans' })).tasks.length, 0);
      });

      it('sparkq.applyPlan enqueues the tasks with their dependencies; the tree says what waits; a second apply adds nothing', async () => {
        const r = await exec<{ plan: string; created: { key: string; id: string; after: string[] }[]; existing: unknown[] }>('sparkq.applyPlan', { file: 'plans/feature.yml' });
        assert.ok(r, sparkq.testHooks.lastFailure()?.message);
        assert.equal(r.created.length, 4);
        for (const c of r.created) planIds.set(c.key, c.id);
        const docs = await sparkq.getTask(planIds.get('docs')!);
        assert.deepEqual([...docs.after].sort(), [planIds.get('api'), planIds.get('ui')].sort());
        assert.equal(docs.waitingOn.length, 2);
        assert.equal(docs.plan, 'feature-x');
        assert.equal(docs.planKey, 'docs');
        const views = sparkq.testHooks.views;
        views.selection.selectSession(session);
        views.selection.selectQueue(planQueue);
        const rows = await waitFor('the plan tasks in the tree', async () => {
          const all = await rowsOf(views.tasks);
          return all.length === 4 ? all : undefined;
        });
        const docsRow = rows.find((x) => x.id === planIds.get('docs'))!;
        assert.match(docsRow.description, /^llm-codex · waiting on 2 · queued/);
        assert.equal(docsRow.icon, 'watch');
        assert.equal(docsRow.contextValue, 'sparkq:task+queued+waiting');
        assert.equal(rows.find((x) => x.id === planIds.get('schema'))!.contextValue, 'sparkq:task+queued');
        const again = await exec<{ created: unknown[]; existing: unknown[] }>('sparkq.applyPlan', { file: path.join(dir, 'plans', 'feature.yml') });
        assert.deepEqual([again.created.length, again.existing.length], [0, 4]);
      });

      it('a plan with errors is refused with its line, shown in Problems, and the diagnostics clear once it is fixed', async () => {
        const file = path.join(dir, 'plans', 'broken.yml');
        fs.writeFileSync(file, ['id: broken', 'defaults: { queue: Plans }', 'tasks:', '  - { name: one, tool: no-such-tool, prompt: x }', ''].join('\n'));
        assert.equal(await exec('sparkq.applyPlan', { file }), undefined);
        assert.match(sparkq.testHooks.lastFailure()?.message ?? '', /broken\.yml is not a valid plan: line 4: .*no-such-tool/);
        const diags = await waitFor('plan diagnostics', () => {
          const d = vscode.languages.getDiagnostics(vscode.Uri.file(file)).filter((x) => x.source === 'sparkq');
          return d.length > 0 ? d : undefined;
        });
        assert.equal(diags[0]!.range.start.line, 3);
        fs.writeFileSync(file, ['id: broken', 'defaults: { queue: Plans }', 'tasks:', '  - { name: one, tool: llm-codex, prompt: x }', ''].join('\n'));
        const r = await exec<{ created: unknown[] }>('sparkq.applyPlan', { file, dryRun: true });
        assert.ok(r, sparkq.testHooks.lastFailure()?.message);
        await waitFor('the diagnostics to clear', () => vscode.languages.getDiagnostics(vscode.Uri.file(file)).filter((x) => x.source === 'sparkq').length === 0);
      });

      it('a failed dependency blocks its dependents; sparkq.requeueFailed requeues it and releases them', async () => {
        const claim = await exec<Claim>('sparkq.claim', { queue: 'Plans', worker: 'itest-plan' });
        assert.equal(claim.task.id, planIds.get('schema'), 'only the task without dependencies is claimable');
        await exec<Task>('sparkq.fail', { task: claim.task.id, error: 'schema does not compile', lease: claim.lease });
        const api = await sparkq.getTask(planIds.get('api')!);
        assert.deepEqual(api.blockedBy, [planIds.get('schema')]);
        const views = sparkq.testHooks.views;
        const row = await waitFor('a blocked row', async () => (await rowsOf(views.tasks)).find((x) => x.id === api.id && x.contextValue === 'sparkq:task+queued+blocked'));
        assert.equal(row.icon, 'circle-slash');
        assert.match(row.description, new RegExp(`blocked by ${planIds.get('schema')!}`));
        const requeued = await exec<Task[]>('sparkq.requeueFailed', { queue: 'Plans' });
        assert.ok(requeued, sparkq.testHooks.lastFailure()?.message);
        assert.equal(requeued.length, 1);
        assert.equal(requeued[0]!.retryOf, planIds.get('schema'));
        const released = await sparkq.getTask(api.id);
        assert.deepEqual(released.blockedBy, [], 'the dependents wait on the retry now');
        assert.equal(released.waitingOn.length, 1);
        assert.deepEqual(await exec<Task[]>('sparkq.requeueFailed', { queue: 'Plans' }), [], 'a failed task is requeued once');
        assert.equal(await exec('sparkq.requeueFailed', { queue: 'Plans', session: 'api-v2' }), undefined);
        assert.match(sparkq.testHooks.lastFailure()?.message ?? '', /one of queue, plan or session/);
      });

      it('sparkq.enqueue takes after: the new task waits on those tasks', async () => {
        const schemaRetry = (await sparkq.listTasks({ queue: 'Plans', status: 'queued' })).tasks.find((t) => t.retryOf === planIds.get('schema'))!;
        const t = await exec<Task>('sparkq.enqueue', { queue: 'Plans', tool: 'llm-codex', prompt: 'review the schema', after: [schemaRetry.id] });
        assert.ok(t, sparkq.testHooks.lastFailure()?.message);
        assert.deepEqual(t.after, [schemaRetry.id]);
        assert.deepEqual(t.waitingOn, [schemaRetry.id]);
      });

      it('sparkq.pauseQueue and sparkq.resumeQueue stop and restart handing out tasks; the queue row says so', async () => {
        const paused = await exec<Queue>('sparkq.pauseQueue', { queue: 'Plans', forSeconds: 600, reason: 'rate limit' });
        assert.ok(paused, sparkq.testHooks.lastFailure()?.message);
        assert.equal(paused.paused, true);
        assert.ok(paused.pausedUntil);
        assert.equal(paused.pauseReason, 'rate limit');
        const views = sparkq.testHooks.views;
        const row = await waitFor('a paused queue row', async () => (await rowsOf(views.queues)).find((x) => x.id === planQueue.id && x.contextValue === 'sparkq:queue+active+paused'));
        assert.match(row.description, /^paused until \S+/);
        assert.equal(row.icon, 'debug-pause');
        assert.equal(await exec('sparkq.claim', { queue: 'Plans', worker: 'itest-paused' }), null, 'a paused queue hands out nothing');
        const resumed = await exec<Queue>('sparkq.resumeQueue', { queue: 'Plans' });
        assert.equal(resumed.paused, false);
        assert.equal((await rowsOf(views.queues)).find((x) => x.id === planQueue.id)?.contextValue, 'sparkq:queue+active');
        const until = await exec<Queue>('sparkq.pauseQueue', { queue: 'Plans' });
        assert.deepEqual([until.paused, until.pausedUntil], [true, null]);
        assert.match((await rowsOf(views.queues)).find((x) => x.id === planQueue.id)?.description ?? '', /^paused ·/);
        await exec('sparkq.resumeQueue', { queue: planQueue.id });
        views.selection.selectQueue(null);
        views.selection.selectSession(null);
      });

      it('sparkq.startWorkers with count 2 opens two terminals on a queue of maxWorkers 2, and both run script tasks to success', async () => {
        fs.writeFileSync(path.join(dir, 'scripts', 'nap.sh'), '#!/usr/bin/env bash\nsleep 3\necho "napped $1"\n', { mode: 0o755 });
        const q = await exec<Queue>('sparkq.createQueue', { name: 'Parallel', session: 'api-v2', maxWorkers: 2 });
        assert.equal(q.maxWorkers, 2);
        const tasks: Task[] = [];
        for (let i = 1; i <= 4; i++) tasks.push(await exec<Task>('sparkq.enqueue', { queue: 'Parallel', tool: 'run-bash', payload: { script: 'nap.sh', args: [String(i)] } }));
        assert.equal(await exec('sparkq.startWorkers', { queue: 'Parallel', count: 3 }), undefined);
        assert.match(sparkq.testHooks.lastFailure()?.message ?? '', /at most 2 workers \(maxWorkers\)/);
        const started = await exec<{ opened: string[]; kept: string[]; terminals: string[] }>('sparkq.startWorkers', { queue: 'Parallel', count: 2 });
        assert.ok(started, sparkq.testHooks.lastFailure()?.message);
        assert.equal(started.opened.length, 2);
        assert.notEqual(started.opened[0], started.opened[1], 'each worker has its own name');
        assert.deepEqual(started.terminals, ['SparkQ: Parallel', 'SparkQ: Parallel #2']);
        assert.equal(vscode.window.terminals.filter((t) => t.name.startsWith('SparkQ: Parallel')).length, 2);
        assert.equal(sparkq.testHooks.workers.countOf(q.id), 2);
        const done = await waitFor(
          'the four script tasks to finish',
          async () => {
            const all = await Promise.all(tasks.map((t) => sparkq.getTask(t.id)));
            return all.every((t) => t.status === 'succeeded' || t.status === 'failed') ? all : undefined;
          },
          90_000,
        );
        for (const t of done) assert.equal(t.status, 'succeeded', `${t.id} failed: ${t.error ?? ''}\n${t.stderr ?? ''}`);
        assert.deepEqual([...new Set(done.map((t) => t.worker))].sort(), [...started.opened].sort(), 'both workers ran tasks');
        const again = await exec<{ opened: string[]; kept: string[] }>('sparkq.startWorkers', { queue: 'Parallel' });
        assert.deepEqual([again.opened.length, again.kept.length], [0, 2], 'the queue has its maxWorkers already');
        assert.deepEqual(await exec('sparkq.stopWorker', { queue: 'Parallel' }), { stopped: true });
        assert.equal(vscode.window.terminals.some((t) => t.name.startsWith('SparkQ: Parallel')), false);
        assert.equal(sparkq.testHooks.workers.has(q.id), false);
      });

      it('sparkq.startWorkers with a session opens one worker on each of its queues', async () => {
        await exec('sparkq.createSession', { name: 'crew' });
        const solo = await exec<Queue>('sparkq.createQueue', { name: 'Solo', session: 'crew' });
        const t = await exec<Task>('sparkq.enqueue', { queue: solo.id, tool: 'run-bash', payload: { script: 'nap.sh', args: ['solo'] } });
        const r = await exec<{ session: string; queues: { queue: string; opened: string[] }[] }>('sparkq.startWorkers', { session: 'crew' });
        assert.ok(r, sparkq.testHooks.lastFailure()?.message);
        assert.deepEqual(
          r.queues.map((x) => [x.queue, x.opened.length]),
          [['Solo', 1]],
        );
        const done = await waitFor('the solo task', async () => {
          const d = await sparkq.getTask(t.id);
          return d.status === 'succeeded' || d.status === 'failed' ? d : undefined;
        }, 60_000);
        assert.equal(done.status, 'succeeded', done.error ?? '');
        await exec('sparkq.stopWorker', { queue: solo.id });
        await exec('sparkq.endSession', { session: 'crew' });
      });

      it('sparkq.report opens a read-only report by tool, model, queue and day with the numbers of sparkq report', async () => {
        const r = await exec<{ uri: string; reports: { by: string; total: { tasks: number } }[] }>('sparkq.report');
        assert.ok(r, sparkq.testHooks.lastFailure()?.message);
        assert.deepEqual(r.reports.map((x) => x.by), ['tool', 'model', 'queue', 'day']);
        const expected = await sparkq.testHooks.connection.queueHandle!.report({ by: 'queue' });
        assert.deepEqual(r.reports[2], expected);
        const doc = await waitFor('the report document', () => vscode.workspace.textDocuments.find((d) => d.uri.toString() === r.uri));
        assert.equal(doc.languageId, 'markdown');
        const text = doc.getText();
        for (const part of ['## By tool', '## By model', '## By queue', '## By day', 'run-bash', 'Parallel', '**total**']) assert.ok(text.includes(part), `the report shows ${part}`);
        await vscode.commands.executeCommand('workbench.action.closeAllEditors');
      });
    });

    describe('sparkq.yml', () => {
      it('shows errors at the right line in Problems and keeps the last good configuration on reload', async () => {
        const file = path.join(dir, 'sparkq.yml');
        const good = fs.readFileSync(file, 'utf8');
        const doc = await vscode.workspace.openTextDocument(file);
        const editor = await vscode.window.showTextDocument(doc);
        const lines = good.split('\n');
        const purgeLine = lines.findIndex((l) => l.startsWith('purgeAfterDays:'));
        assert.ok(purgeLine >= 0);
        await editor.edit((e) => e.replace(new vscode.Range(purgeLine, 0, purgeLine, lines[purgeLine]!.length), 'purgeAfterDays: "soon"'));
        await doc.save();
        const diags = await waitFor('a diagnostic', () => {
          const d = vscode.languages.getDiagnostics(doc.uri).filter((x) => x.source === 'sparkq');
          return d.length > 0 ? d : undefined;
        });
        assert.equal(diags[0]!.range.start.line, purgeLine);
        assert.match(diags[0]!.message, /purgeAfterDays/);
        const r = await exec<{ ok: boolean; issues: unknown[] }>('sparkq.reloadConfig');
        assert.equal(r.ok, false);
        assert.equal(r.issues.length, 1);
        // The queue still works with the last good configuration.
        assert.ok(await sparkq.enqueue({ queue: 'Docs', tool: 'run-bash', prompt: 'still fine' }));
        await editor.edit((e) => e.replace(new vscode.Range(0, 0, doc.lineCount, 0), good));
        await doc.save();
        await waitFor('no diagnostics', () => vscode.languages.getDiagnostics(doc.uri).filter((x) => x.source === 'sparkq').length === 0);
        const ok = await exec<{ ok: boolean; applied: string }>('sparkq.reloadConfig');
        assert.deepEqual([ok.ok, ok.applied], [true, 'owner']);
        await vscode.commands.executeCommand('workbench.action.closeAllEditors');
      });

      it('contributes a JSON Schema for sparkq.yml, generated at build time', () => {
        const ext = vscode.extensions.getExtension(EXTENSION_ID)!;
        const pkg = ext.packageJSON as { contributes: { yamlValidation: { fileMatch: string; url: string }[] } };
        const entry = pkg.contributes.yamlValidation[0]!;
        assert.equal(entry.fileMatch, 'sparkq.yml');
        const schema = JSON.parse(fs.readFileSync(path.join(ext.extensionPath, entry.url), 'utf8')) as { properties: Record<string, unknown> };
        assert.ok('tools' in schema.properties && 'scriptDirs' in schema.properties);
      });
    });

    registerWorktreeTests(() => ({ sparkq, dir, session: session.name }));
    registerValidationTests(() => ({ sparkq, dir, session: session.name }));

    describe('ending', () => {
      it('sparkq.endQueue and sparkq.endSession end them; the views show it', async () => {
        const q = await exec<Queue>('sparkq.endQueue', { queue: 'Docs' });
        assert.equal(q.status, 'ended');
        const s = await exec<Session>('sparkq.endSession', { session: 'scratch' });
        assert.equal(s.status, 'ended');
        await sparkq.testHooks.views.refreshNow();
        const rows = await rowsOf(sparkq.testHooks.views.sessions);
        assert.equal(rows.find((r) => r.label === 'scratch')?.contextValue, 'sparkq:session+ended');
      });
    });
  });
}
