import * as assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { Queue, Task } from '../../src/core/model';
import type { SparkqExports } from '../../src/extension/extension';
import { activateSparkq, exec, rowsOf, waitFor, workspaceDir } from './helpers';

/**
 * Team mode in the real VS Code host. The window is one machine ("laptop") of a team database — a throwaway PostgreSQL
 * that scripts/run-integration.mjs starts — whose sparkq.yml says store.kind postgres and names no URL; the other
 * machine ("buildbox", its own folder and sparkq.yml) is `sparkq` processes started here. The window learns the URL
 * through `SparkQ: Connect to Team Database` (SecretStorage), shows what the other machine enqueues within a second
 * through LISTEN/NOTIFY, and gives its worker terminals the URL.
 */
export function registerTeamSuite(): void {
  const env = (name: string): string => {
    const v = process.env[name];
    assert.ok(v, `${name} is set by scripts/run-integration.mjs`);
    return v;
  };
  let sparkq: SparkqExports;
  let dir: string;
  let url: string;
  let password: string;
  let otherMachine: string;

  /** A `sparkq` command on the other machine; resolves with its stdout and the moment its first line arrived. */
  function onOtherMachine(args: string[]): Promise<{ stdout: string; firstLineAt: number }> {
    return new Promise((resolve, reject) => {
      const cli = sparkq.testHooks.workers.runtime.cliPath;
      const child = spawn(process.execPath, [cli, ...args], {
        cwd: otherMachine,
        env: { ...process.env, ...sparkq.testHooks.workers.runtime.env, SPARKQ_DATABASE_URL: url, NO_COLOR: '1' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      let firstLineAt = 0;
      child.stdout.on('data', (d: Buffer) => {
        stdout += d.toString();
        if (!firstLineAt && stdout.includes('\n')) firstLineAt = Date.now();
      });
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('error', reject);
      child.on('close', (code) => (code === 0 ? resolve({ stdout, firstLineAt }) : reject(new Error(`sparkq ${args.join(' ')} exited ${code}: ${stderr}`))));
    });
  }

  /** Every file under `root` whose text contains `needle` (relative paths). */
  function filesContaining(root: string, needle: string): string[] {
    const found: string[] = [];
    const walk = (d: string) => {
      for (const e of fs.readdirSync(d, { withFileTypes: true })) {
        const p = path.join(d, e.name);
        if (e.isDirectory()) walk(p);
        else if (e.isFile() && fs.statSync(p).size < 20_000_000 && fs.readFileSync(p).includes(needle)) found.push(path.relative(root, p));
      }
    };
    if (fs.existsSync(root)) walk(root);
    return found;
  }

  describe('team mode: a window on one machine of a team database', function () {
    this.timeout(120_000);

    before(async () => {
      dir = workspaceDir();
      url = env('SPARKQ_IT_DATABASE_URL');
      password = env('SPARKQ_IT_PASSWORD');
      otherMachine = env('SPARKQ_IT_OTHER_MACHINE');
      assert.equal(process.env['SPARKQ_DATABASE_URL'], undefined, 'SPARKQ_DATABASE_URL must not be set around the tests: it would win over the saved URL');
      sparkq = await activateSparkq();
    });

    it('waits for a URL where sparkq.yml names none, and says how to connect', async () => {
      assert.match(fs.readFileSync(path.join(dir, 'sparkq.yml'), 'utf8'), /kind: postgres/);
      assert.deepEqual(sparkq.testHooks.connection.state, { kind: 'needs-database', folder: dir, team: {} });
      await waitFor('the status bar to offer the connection', () => sparkq.testHooks.statusBar.text === '$(plug) Connect SparkQ');
      assert.match(sparkq.testHooks.views.sessionsView.message ?? '', /team database.*Connect to Team Database/);
      assert.equal(await exec('sparkq.createSession', { name: 'too-early' }), undefined);
      assert.match(sparkq.testHooks.lastFailure()?.message ?? '', /team database.*Connect to Team Database/);
    });

    it('refuses a URL that is not PostgreSQL, and saves nothing', async () => {
      assert.equal(await exec('sparkq.connectTeamDatabase', { url: 'http://db.example.com/team' }), undefined);
      assert.match(sparkq.testHooks.lastFailure()?.message ?? '', /postgres:\/\//);
      assert.equal(sparkq.testHooks.connection.state.kind, 'needs-database');
    });

    it('a URL that does not reach a database is saved but fails to connect, with a message that shows no password', async () => {
      const wrong = url.replace(/\/itest_[^/?]*/, '/no_such_db');
      assert.notEqual(wrong, url);
      assert.equal(await exec('sparkq.connectTeamDatabase', { url: wrong }), undefined);
      const message = sparkq.testHooks.lastFailure()?.message ?? '';
      assert.match(message, /could not connect: .*no_such_db.*does not exist/);
      assert.ok(!message.includes(password), message);
      const state = sparkq.testHooks.connection.state;
      assert.equal(state.kind, 'failed');
      assert.match(state.team?.database ?? '', /\/no_such_db$/);
      assert.ok(!(state.problem ?? '').includes(password));
    });

    it('Connect to Team Database keeps the URL in SecretStorage only and connects this window as a client of the database', async () => {
      const r = await exec<{ connected: boolean; database: string; source: string }>('sparkq.connectTeamDatabase', { url });
      assert.ok(r, sparkq.testHooks.lastFailure()?.message);
      assert.equal(r.connected, true);
      assert.equal(r.source, 'saved');
      assert.ok(!JSON.stringify(r).includes(password), 'the result names the database, not the URL');
      const state = sparkq.testHooks.connection.state;
      assert.equal(state.kind, 'client');
      assert.equal(state.team?.source, 'saved');
      assert.match(state.team?.database ?? '', /\/itest_/);
      const handle = sparkq.testHooks.connection.queueHandle;
      assert.equal(handle?.isOwner, false);
      assert.equal(handle?.owner, null);
      assert.match(handle?.ownerInfo.role ?? '', /^team database postgres:\/\/sparkq:\*\*\*@/);
      await waitFor('the status bar to say which database', async () => {
        await sparkq.testHooks.statusBar.update();
        return /team database .*\/itest_/.test(sparkq.testHooks.statusBar.tooltip) && /running · .* queued/.test(sparkq.testHooks.statusBar.text);
      });
      // Never in settings, sparkq.yml or .sparkq/: nothing in the workspace folder holds the password.
      assert.deepEqual(filesContaining(dir, password), []);
      assert.equal(fs.existsSync(path.join(dir, '.sparkq', 'owner.json')), false, 'no owner in team mode');
      // The log says what happened, by database name only.
      const logs = path.dirname(sparkq.testHooks.logUri.fsPath);
      await waitFor('the log to be written', () => filesContaining(logs, 'saved a team database URL').length > 0, 10_000);
      assert.deepEqual(filesContaining(logs, password), [], 'the password is in no log');
    });

    it('shows a task enqueued on the other machine within a second, from its change event (LISTEN/NOTIFY, no polling)', async () => {
      const session = await exec<{ id: string }>('sparkq.createSession', { name: 'release' });
      assert.ok(session, sparkq.testHooks.lastFailure()?.message);
      const inbox = await exec<Queue>('sparkq.createQueue', { name: 'Inbox', session: 'release' });
      assert.ok(inbox, sparkq.testHooks.lastFailure()?.message);
      await sparkq.testHooks.views.settled();
      const heard = new Map<string, number>();
      const sub = sparkq.onDidChange((events) => {
        for (const e of events) if (e.kind === 'task' && !heard.has(e.id)) heard.set(e.id, Date.now());
      });
      const shownAt = new Map<string, number>();
      const seen = sparkq.testHooks.views.tasks.onDidChangeTreeData(() => {
        void rowsOf(sparkq.testHooks.views.tasks).then((rows) => {
          for (const r of rows) if (!shownAt.has(r.id)) shownAt.set(r.id, Date.now());
        });
      });
      try {
        const latencies: number[] = [];
        for (let i = 1; i <= 3; i++) {
          const { stdout, firstLineAt } = await onOtherMachine(['enqueue', 'run-bash', '--queue', 'Inbox', '--prompt', `from the build box #${i}`]);
          const id = stdout.trim();
          assert.match(id, /^tsk_/);
          const shown = await waitFor(`task ${id} in the Tasks view`, () => shownAt.get(id), 5_000);
          assert.ok(heard.has(id), `the window heard the change event of ${id} (not a re-read)`);
          latencies.push(shown - firstLineAt);
        }
        console.log(`      enqueue on the other machine → row in this window's Tasks view: ${latencies.map((l) => `${l} ms`).join(', ')}`);
        for (const l of latencies) assert.ok(l < 1000, `shown ${l} ms after the other machine's enqueue was acknowledged`);
        const row = (await rowsOf(sparkq.testHooks.views.tasks)).find((r) => r.label.includes('from the build box #3'));
        assert.ok(row, 'the row reads as the task');
      } finally {
        sub.dispose();
        seen.dispose();
      }
    });

    it('worker terminals get the URL, so `sparkq run` in them reaches the team database with nothing exported', async () => {
      fs.writeFileSync(
        path.join(dir, 'scripts', 'team-check.sh'),
        [
          '#!/usr/bin/env bash',
          '# description: what a team worker terminal gives a task',
          // The task asks SparkQ about itself: through the team database, with what the terminal gave it.
          `status=$(sparkq task "$SPARKQ_TASK_ID" --json | grep -o '"status": *"[a-z]*"' | head -1 | sed 's/.*"\\([a-z]*\\)"$/\\1/')`,
          'echo "socket=${SPARKQ_SOCKET:-none} db=${SPARKQ_DATABASE_URL:+set} status=$status"',
          '',
        ].join('\n'),
        { mode: 0o755 },
      );
      const q = await exec<Queue>('sparkq.createQueue', { name: 'Scripts', session: 'release' });
      assert.ok(q, sparkq.testHooks.lastFailure()?.message);
      const t = await exec<Task>('sparkq.enqueue', { queue: 'Scripts', tool: 'run-bash', payload: { script: 'team-check.sh' } });
      assert.ok(t, sparkq.testHooks.lastFailure()?.message);
      const started = await exec<{ worker: string; terminal: string }>('sparkq.startWorker', { queue: 'Scripts' });
      assert.ok(started, sparkq.testHooks.lastFailure()?.message);
      try {
        const terminal = vscode.window.terminals.find((x) => x.name === started.terminal);
        const options = terminal?.creationOptions as vscode.TerminalOptions | undefined;
        assert.equal(options?.env?.['SPARKQ_DATABASE_URL'], url);
        assert.equal(options?.env?.['SPARKQ_SOCKET'], undefined, 'no owner socket in team mode');
        assert.equal(options?.isTransient, true, 'the terminal (and its environment) is not restored after a reload');
        const done = await waitFor('the script task to finish', async () => {
          const d = await sparkq.getTask(t.id);
          return d.status === 'succeeded' || d.status === 'failed' ? d : undefined;
        }, 60_000);
        assert.equal(done.status, 'succeeded', `task failed: ${done.error ?? ''}\n${done.stderr ?? ''}`);
        assert.equal(done.worker, started.worker);
        assert.equal(done.result?.summary, 'socket=none db=set status=running');
      } finally {
        await exec('sparkq.stopWorker', { queue: 'Scripts' });
      }
    });

    it('Disconnect from Team Database forgets the URL: the window waits for one again', async () => {
      const r = await exec<{ forgotten: boolean; state: string }>('sparkq.disconnectTeamDatabase');
      assert.deepEqual(r, { forgotten: true, state: 'needs-database' });
      assert.equal(sparkq.testHooks.connection.queueHandle, null);
      await waitFor('the status bar to offer the connection again', () => sparkq.testHooks.statusBar.text === '$(plug) Connect SparkQ');
      assert.deepEqual(await exec('sparkq.disconnectTeamDatabase'), { forgotten: false, state: 'needs-database' });
    });
  });
}

/**
 * Restricted Mode on a team folder whose sparkq.yml names a reachable database (store.url): SparkQ connects to
 * nothing, shows nothing of the database, and says so. Run in the untrusted code-server after the team suite, so the
 * database has tasks that a connection would show; the database itself is asked who is connected.
 */
export function registerTeamRestrictedSuite(): void {
  describe('team mode in Restricted Mode', function () {
    this.timeout(60_000);
    it('connects to nothing: no client of the database, empty views, a status that says why', async () => {
      const url = process.env['SPARKQ_IT_DATABASE_URL'];
      assert.ok(url, 'SPARKQ_IT_DATABASE_URL is set by scripts/run-integration.mjs');
      const dir = workspaceDir();
      assert.equal(vscode.workspace.isTrusted, false);
      assert.match(fs.readFileSync(path.join(dir, 'sparkq.yml'), 'utf8'), /url: postgres:\/\//);
      const sparkq = await activateSparkq();
      const state = sparkq.testHooks.connection.state;
      assert.equal(state.kind, 'read-only');
      assert.equal(state.team?.source, 'sparkq.yml');
      assert.equal(sparkq.testHooks.connection.queueHandle, null);
      const views = sparkq.testHooks.views;
      await views.refreshNow();
      assert.deepEqual(await rowsOf(views.sessions), []);
      assert.deepEqual(await rowsOf(views.tasks), []);
      assert.match(views.sessionsView.message ?? '', /Restricted Mode: this folder's queue is a team database .*once you trust/);
      await waitFor('the status bar to say the database is not connected', async () => {
        await sparkq.testHooks.statusBar.update();
        return /Restricted Mode: the team database .* is not connected/.test(sparkq.testHooks.statusBar.tooltip);
      });
      assert.equal(await exec('sparkq.connectTeamDatabase', { url }), undefined);
      assert.match(sparkq.testHooks.lastFailure()?.message ?? '', /Restricted Mode/);
      // The database has the team suite's tasks; a window that had connected would be listed here.
      const extensionClients = execFileSync('psql', [url, '-Atc', "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'sparkq-extension'"], { encoding: 'utf8' }).trim();
      assert.equal(extensionClients, '0');
      const tasks = execFileSync('psql', [url, '-Atc', 'SELECT count(*) FROM sparkq.tasks'], { encoding: 'utf8' }).trim();
      assert.ok(Number(tasks) > 0, `the database has tasks to show (${tasks})`);
    });
  });
}
