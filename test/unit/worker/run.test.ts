import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { openQueue } from '../../../src/client/open';
import { assertError, bundleCli, Cli, cliEnv } from '../../support/cli';
import { tempDir } from '../../support/tmp';

/* `sparkq run` and `sparkq guide` end to end: the bundled CLI as real processes, real scripts, real signals. */
describe('sparkq run (end to end, real processes)', function () {
  this.timeout(90_000);
  const tmp = tempDir('sparkq-run-');
  let cli: Cli;
  let n = 0;

  before(() => {
    cli = new Cli(bundleCli(path.join(tmp.dir, 'bundle')));
  });
  after(() => tmp.cleanup());

  async function workspace(): Promise<{ cwd: string }> {
    const cwd = path.join(tmp.dir, `ws${++n}`);
    fs.mkdirSync(path.join(cwd, 'scripts'), { recursive: true });
    const o = { cwd };
    await cli.ok(['init'], o);
    await cli.ok(['session', 'create', 's'], o);
    await cli.ok(['queue', 'create', 'q', '--session', 's', '--instructions', 'Work carefully.'], o);
    // A script that asks SparkQ about its own task through the `sparkq` on its PATH.
    fs.writeFileSync(
      path.join(cwd, 'scripts', 'self.sh'),
      '#!/usr/bin/env bash\n# name: self\nstatus=$(sparkq task "$SPARKQ_TASK_ID" --json | grep -o \'"status": *"[a-z]*"\' | head -1)\necho "my task says $status"\n',
    );
    fs.writeFileSync(path.join(cwd, 'scripts', 'slow.sh'), '#!/usr/bin/env bash\necho started\nsleep 60\n');
    return o;
  }

  it('drains the queue: scripts run, outcomes recorded, tools can reach sparkq about their own task; --json summary', async () => {
    const o = await workspace();
    const id = (await cli.ok(['enqueue', 'run-bash', '--queue', 'q', '--prompt', 'self'], o)).trim();
    await cli.ok(['enqueue', 'run-bash', '--queue', 'q', '--prompt', 'missing-script'], o);
    const r = await cli.run(['run', '--queue', 'q', '--json'], o);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { ran: 2, succeeded: 1, failed: 1, released: 0, interrupted: false });
    assert.match(r.stderr, /Work carefully\./, 'with --json the commentary goes to stderr');
    const task = await cli.json<{ status: string; result: { summary: string } }>(['task', id], o);
    assert.equal(task.status, 'succeeded');
    assert.equal(task.result.summary, 'my task says "status": "running"');
  });

  it('Ctrl+C (SIGINT) stops the running tool, fails its task as interrupted, exits 130', async () => {
    const o = await workspace();
    const id = (await cli.ok(['enqueue', 'run-bash', '--queue', 'q', '--prompt', 'slow.sh'], o)).trim();
    const child = spawn(process.execPath, [cli.bundle, 'run', '--queue', 'q', '--watch'], { cwd: o.cwd, env: cliEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let sent = false;
    child.stdout.setEncoding('utf8').on('data', (s: string) => {
      out += s;
      // One Ctrl+C: a second one on a later chunk could land after the worker let go of SIGINT, and end it by signal.
      if (!sent && out.includes('started\n')) {
        sent = true;
        child.kill('SIGINT');
      }
    });
    const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
    assert.equal(code, 130, out);
    const task = await cli.json<{ status: string; error: string }>(['task', id], o);
    assert.equal(task.status, 'failed');
    assert.equal(task.error, 'interrupted by the worker');
  });

  it('a worker killed with SIGKILL mid-task: the owner fails its task as "worker lost" within seconds', async () => {
    const o = await workspace();
    const yml = path.join(o.cwd, 'sparkq.yml');
    fs.writeFileSync(yml, fs.readFileSync(yml, 'utf8').replace(/leaseSeconds: \d+/, 'leaseSeconds: 2'));
    // This test process owns the queue (sweeping every 100 ms); the worker is a client in its own process.
    const q = await openQueue(o.cwd, { role: 'test-owner', sweepIntervalMs: 100, watchConfig: false });
    try {
      assert.equal(q.isOwner, true);
      const t = await q.enqueue({ queue: 'q', tool: 'run-bash', prompt: 'slow.sh' });
      const child = spawn(process.execPath, [cli.bundle, 'run', '--queue', 'q'], { cwd: o.cwd, env: cliEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      await new Promise<void>((resolve) =>
        child.stdout.setEncoding('utf8').on('data', (s: string) => {
          out += s;
          if (out.includes('started\n')) resolve();
        }),
      );
      await new Promise((r) => setTimeout(r, 300)); // past its first heartbeat
      child.kill('SIGKILL');
      const killedAt = Date.now();
      for (;;) {
        const now = await q.getTask(t.id);
        if (now.status === 'failed') {
          assert.match(now.error ?? '', /^worker lost: .* sent no heartbeat for \d+ s/);
          break;
        }
        assert.ok(Date.now() - killedAt < 15_000, 'the task was not failed as worker lost');
        await new Promise((r) => setTimeout(r, 100));
      }
      // Its timeout (300 s) had nothing to do with it.
      assert.ok(Date.now() - killedAt < 15_000);
    } finally {
      await q.close();
    }
  });

  it('usage errors exit 2 with the usage; an unknown queue exits 1; guide explains the manual workflow', async () => {
    const o = await workspace();
    assertError(await cli.run(['run'], o), 2, /--queue/);
    assertError(await cli.run(['run', '--queue', 'q', '--watch', '--once'], o), 2, /cannot be used with/);
    assertError(await cli.run(['run', '--queue', 'nope'], o), 1, /queue/);
    const guide = await cli.ok(['guide'], o);
    assert.match(guide, /sparkq claim --queue/);
    // The form agents type comes first: the summary as the second word, free-text data.
    assert.match(guide, /sparkq complete <task> "<what was done, where, counts>" \[--data "<details>"\]/);
    assert.match(guide, /sparkq fail <task> "<what went wrong and what would fix it>"/);
    assert.ok(guide.indexOf('complete <task> "') < guide.indexOf('--summary'), 'the positional form before --summary');
    assert.match(guide, /--data-json/);
    assert.match(guide, /2×/);
    assert.match(guide, /--idempotency-key <name>/);
    assert.match(guide, /sparkq verdict <task> pass\|fail "<what is wrong and what to fix>"/);
    assert.match(guide, /git worktree of its own .*\n.*sparkq run --queue "<queue>"/);
    assert.match(guide, /sparkq mcp --print-config/);
  });
});
