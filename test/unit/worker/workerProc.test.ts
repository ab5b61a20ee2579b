import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { resolveScript } from '../../../src/worker/executors/script';
import { runProcess } from '../../../src/worker/proc';
import { RunLog } from '../../../src/worker/runLog';
import { Spawner } from '../../../src/worker/spawner';
import { tempDir } from '../../support/tmp';
import { isRunning } from '../../support/children';

/* The whole output of a task, written off the worker's event loop, is whole and in order; scripts resolve exactly. */
describe('worker: output log and script lookup', function () {
  this.timeout(30_000);
  let t: ReturnType<typeof tempDir>;
  beforeEach(() => (t = tempDir('sparkq-runlog-')));
  afterEach(() => t.cleanup());

  it('the output log keeps every write in order, creates its directory, and a failure to write never throws', async () => {
    const log = new RunLog(path.join(t.dir, 'runs', 'tsk_1'));
    const parts = Array.from({ length: 2000 }, (_, i) => `part ${i}\n`);
    for (const p of parts) log.write(p);
    await log.close();
    assert.equal(fs.readFileSync(path.join(t.dir, 'runs', 'tsk_1', 'output.log'), 'utf8'), parts.join(''));

    fs.writeFileSync(path.join(t.dir, 'file'), '');
    const bad = new RunLog(path.join(t.dir, 'file', 'tsk_2')); // its "directory" is a file
    bad.write('lost\n');
    await bad.close();
  });

  it('a worker that keeps its script index between tasks still sees scripts added, renamed and removed', () => {
    const dir = path.join(t.dir, 'scripts');
    fs.mkdirSync(dir);
    const a = path.join(dir, 'a.sh');
    fs.writeFileSync(a, '#!/usr/bin/env bash\n# name: alpha\necho a\n');
    assert.equal(resolveScript('alpha', [dir]), fs.realpathSync(a));
    // a.sh is renamed in its header and b.sh takes its old name: the next task sees both changes.
    fs.writeFileSync(a, '#!/usr/bin/env bash\n# name: beta\necho a\n');
    const b = path.join(dir, 'b.sh');
    fs.writeFileSync(b, '#!/usr/bin/env bash\n# name: alpha\necho b\n');
    assert.equal(resolveScript('alpha', [dir]), fs.realpathSync(b));
    assert.equal(resolveScript('beta', [dir]), fs.realpathSync(a));
    fs.rmSync(b);
    assert.throws(() => resolveScript('alpha', [dir]), /no script "alpha"/);
  });
});

describe('worker: the spawn helper', function () {
  this.timeout(30_000);
  let t: ReturnType<typeof tempDir>;
  let spawner: Spawner;
  beforeEach(function () {
    if (process.platform === 'win32') this.skip();
    t = tempDir('sparkq-spawner-');
    spawner = new Spawner();
  });
  afterEach(() => {
    spawner?.close();
    t?.cleanup();
  });

  const env = (extra: Record<string, string> = {}): NodeJS.ProcessEnv => ({ ...process.env, ...extra });

  it('runs through the helper as a direct spawn would: streams apart, exit code, stdin, environment, errors', async () => {
    const script = 'read -r line; echo "in=$line"; echo "x=${SPARKQ_X-unset} home=${HOME-unset}"; echo oops >&2; exit 3';
    const noHome = env({ SPARKQ_X: "it's" });
    delete noHome['HOME'];
    // Unset, as for a worker started by a service manager: bash must still not read ~/.bashrc (its stdin is a socket).
    delete noHome['SHLVL'];
    for (const via of [spawner, undefined]) {
      const lines: string[] = [];
      const r = await runProcess({ command: 'bash', args: ['-c', script], cwd: t.dir, env: noHome, stdin: 'hello\n', onLine: (l, s) => lines.push(`${s}:${l}`), ...(via ? { spawner: via } : {}) });
      assert.equal(r.exitCode, 3);
      assert.equal(r.spawnError, null);
      assert.equal(r.stdoutTail, `in=hello\nx=it's home=unset\n`);
      assert.equal(r.stderrTail, 'oops\n');
      assert.deepEqual(lines.filter((l) => l.startsWith('stdout:')), ['stdout:in=hello', "stdout:x=it's home=unset"]);
    }
    const direct = await runProcess({ command: 'no-such-command-x', args: [], cwd: t.dir, env: env() });
    const helped = await runProcess({ command: 'no-such-command-x', args: [], cwd: t.dir, env: env(), spawner });
    assert.match(helped.spawnError ?? '', /no such command/);
    assert.equal(helped.spawnError, direct.spawnError);
    assert.equal(helped.exitCode, direct.exitCode);
  });

  it('a stop reaches the whole process group, also when asked for before the helper said which process it is', async () => {
    const pidFile = path.join(t.dir, 'gc.pid');
    const hang = `( sleep 60 & echo $! > "${pidFile}"; wait ) & sleep 60`;
    const ac = new AbortController();
    ac.abort(); // before the spawn: the helper has not answered yet
    const early = await runProcess({ command: 'bash', args: ['-c', hang], cwd: t.dir, env: env(), signal: ac.signal, spawner, graceMs: 500 });
    assert.equal(early.stopped, true);
    assert.equal(early.groupGone, true);

    const ac2 = new AbortController();
    const running = runProcess({ command: 'bash', args: ['-c', hang], cwd: t.dir, env: env(), signal: ac2.signal, spawner, graceMs: 500 });
    while (!fs.existsSync(pidFile) || fs.readFileSync(pidFile, 'utf8').trim() === '') await new Promise((r) => setTimeout(r, 20));
    ac2.abort();
    const r = await running;
    assert.equal(r.stopped, true);
    assert.equal(r.groupGone, true);
    const grandchild = Number(fs.readFileSync(pidFile, 'utf8'));
    assert.equal(isRunning(grandchild), false, 'the grandchild was left running');
  });

  it('a helper that dies mid-run fails that run and stops its group; the next run starts a new helper', async () => {
    const pidFile = path.join(t.dir, 'tool.pid');
    const running = runProcess({ command: 'bash', args: ['-c', `echo $$ > "${pidFile}"; sleep 60`], cwd: t.dir, env: env(), spawner, graceMs: 500 });
    while (!fs.existsSync(pidFile) || fs.readFileSync(pidFile, 'utf8').trim() === '') await new Promise((r) => setTimeout(r, 20));
    const helper = (spawner as unknown as { helper: { pid: number } }).helper;
    process.kill(helper.pid, 'SIGKILL');
    const r = await running;
    assert.match(r.spawnError ?? '', /sparkq-spawner\) ended while the tool ran/);
    assert.equal(isRunning(Number(fs.readFileSync(pidFile, 'utf8'))), false, 'the tool was left running');
    const again = await runProcess({ command: 'bash', args: ['-c', 'echo again'], cwd: t.dir, env: env(), spawner });
    assert.equal(again.stdoutTail, 'again\n');
  });

  it('many lines in quick succession arrive whole and in order', async () => {
    const r = await runProcess({ command: 'bash', args: ['-c', 'for i in $(seq 20000); do echo "line $i"; done'], cwd: t.dir, env: env(), spawner, tailChars: 1 << 20 });
    const lines = r.stdoutTail.trimEnd().split('\n');
    assert.equal(lines.length, 20000);
    assert.equal(lines[19999], 'line 20000');
  });
});
