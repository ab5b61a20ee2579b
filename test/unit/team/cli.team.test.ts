import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { assertError, bundleCli, Cli, cliEnv, type RunOptions } from '../../support/cli';
import { postgresOrSkip } from '../../support/postgres';
import { tempDir } from '../../support/tmp';
import { SCHEMA_VERSION } from '../../../src/team/schema';

/*
 * Team mode from the command line, as two machines would use it: two workspace folders, each with its own
 * sparkq.yml and scripts, both pointing at one PostgreSQL database through SPARKQ_DATABASE_URL. Every command is a
 * real `sparkq` process and a client of the database: no owner, no socket.
 */
describe('team mode: the CLI on two machines sharing one PostgreSQL', function () {
  this.timeout(120_000);
  const tmp = tempDir('sparkq-team-cli-');
  let cli: Cli;
  let url: string;
  let a: RunOptions;
  let b: RunOptions;

  before(async function () {
    url = await (await postgresOrSkip(this)).createDatabase('teamcli');
    cli = new Cli(bundleCli(path.join(tmp.dir, 'bundle')));
    const machine = (name: string): RunOptions => {
      const cwd = path.join(tmp.dir, name);
      fs.mkdirSync(path.join(cwd, 'scripts'), { recursive: true });
      return { cwd, env: { SPARKQ_DATABASE_URL: url } };
    };
    a = machine('laptop');
    b = machine('buildbox');
  });
  after(() => tmp.cleanup());

  it('init --postgres writes team mode into sparkq.yml (never a password) and creates the schema once', async () => {
    const first = await cli.json<{ team: { database: string; schema: string; schemaVersion: number; urlWritten: boolean } }>(['init', '--postgres', url], { cwd: a.cwd });
    assert.deepEqual(first.team, { database: url, schema: 'sparkq', schemaVersion: SCHEMA_VERSION, urlWritten: true });
    const yml = fs.readFileSync(path.join(a.cwd, 'sparkq.yml'), 'utf8');
    assert.match(yml, /kind: postgres/);
    assert.ok(yml.includes(`url: ${url}`));
    // The second machine: the URL has a password (made up), so it stays out of the file; the schema exists already.
    const withPassword = url.replace('sparkq@', 'sparkq:not-a-real-secret@');
    const second = await cli.run(['init', '--postgres', withPassword], { cwd: b.cwd });
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stdout, /has a password, so it was not written to sparkq\.yml/);
    const ymlB = fs.readFileSync(path.join(b.cwd, 'sparkq.yml'), 'utf8');
    assert.match(ymlB, /kind: postgres/);
    assert.ok(!ymlB.includes('not-a-real-secret'), 'no password in sparkq.yml');
    assert.ok(!fs.readdirSync(path.join(b.cwd, '.sparkq')).some((f) => f === 'db'), 'no embedded store is made in team mode');
  });

  it('a queue made on one machine is worked on the other: claim, complete and a worker running scripts of its own machine', async () => {
    await cli.ok(['session', 'create', 'release'], a);
    await cli.ok(['queue', 'create', 'Back End', '--session', 'release', '--instructions', 'Be brief.'], a);
    const first = (await cli.ok(['enqueue', 'run-bash', '--queue', 'Back End', '--prompt', 'by hand'], a)).trim();
    // The other machine claims and completes it, the way an agent types it.
    const claim = await cli.json<{ task: { id: string }; lease: string }>(['claim', '--queue', 'Back End', '--worker', 'buildbox-1'], b);
    assert.equal(claim.task.id, first);
    await cli.ok(['complete', first, 'Did it on the build box', '--data', 'free text'], { ...b, env: { ...b.env, SPARKQ_LEASE: claim.lease } });
    const seen = await cli.json<{ status: string; result: { summary: string; data: unknown } }>(['task', first], a);
    assert.equal(seen.status, 'succeeded');
    assert.deepEqual(seen.result, { summary: 'Did it on the build box', data: 'free text' });

    // A script that exists only on the build box, which asks SparkQ about its own task (through the team database).
    fs.writeFileSync(
      path.join(b.cwd, 'scripts', 'whoami.sh'),
      '#!/usr/bin/env bash\n# name: whoami\nstatus=$(sparkq task "$SPARKQ_TASK_ID" --json | grep -o \'"status": *"[a-z]*"\' | head -1)\necho "on $(basename "$PWD") my task says $status"\n',
    );
    const scripted = (await cli.ok(['enqueue', 'run-bash', '--queue', 'Back End', '--prompt', 'whoami'], a)).trim();
    const run = await cli.run(['run', '--queue', 'Back End', '--json'], b);
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(JSON.parse(run.stdout), { ran: 1, succeeded: 1, failed: 0, released: 0, interrupted: false });
    const done = await cli.json<{ status: string; result: { summary: string } }>(['task', scripted], a);
    assert.equal(done.status, 'succeeded');
    assert.match(done.result.summary, /my task says "status": "running"/);

    const status = await cli.json<{ owner: { role: string }; counts: { succeeded: number } }>(['status'], a);
    assert.match(status.owner.role, /^team database postgres:\/\//);
    assert.equal(status.counts.succeeded, 2);
  });

  it('a worker killed with SIGKILL on one machine: its task is failed as worker lost once its lease lapses, as the other machine sees', async () => {
    for (const m of [a, b]) {
      const yml = path.join(m.cwd, 'sparkq.yml');
      fs.writeFileSync(yml, fs.readFileSync(yml, 'utf8').replace(/leaseSeconds: \d+/, 'leaseSeconds: 2'));
    }
    fs.writeFileSync(path.join(b.cwd, 'scripts', 'slow.sh'), '#!/usr/bin/env bash\n# name: slow\necho started\nsleep 60\n');
    await cli.ok(['queue', 'create', 'Slow', '--session', 'release'], a);
    const id = (await cli.ok(['enqueue', 'run-bash', '--queue', 'Slow', '--prompt', 'slow'], a)).trim();
    // Its own process group, so that the kill takes the worker and its script at once, like a machine that died.
    const worker = spawn(process.execPath, [cli.bundle, 'run', '--queue', 'Slow', '--watch', '--worker', 'buildbox-slow'], {
      cwd: b.cwd,
      env: cliEnv(b.env),
      stdio: 'ignore',
      detached: true,
    });
    try {
      // Running, with a first heartbeat: worked by a live worker.
      for (let i = 0; ; i++) {
        const t = await cli.json<{ status: string; heartbeatAt: string | null; startedAt: string | null }>(['task', id], a);
        if (t.status === 'running' && t.heartbeatAt !== null && t.heartbeatAt > t.startedAt!) break;
        assert.ok(i < 100, `the worker did not start the task: ${JSON.stringify(t)}`);
        await new Promise((r) => setTimeout(r, 200));
      }
      // The laptop sees which worker works the queue, and on which machine.
      const status = await cli.json<{ workers: { queue: string; worker: string; host: string }[] }>(['status'], a);
      assert.deepEqual(
        status.workers.map((w) => ({ ...w, until: undefined })),
        [{ queue: 'Slow', worker: 'buildbox-slow', host: os.hostname(), until: undefined }],
      );
      assert.match(await cli.ok(['status'], a), new RegExp(`workers +buildbox-slow on ${os.hostname()} \\(Slow\\)`));
    } finally {
      process.kill(-worker.pid!, 'SIGKILL');
    }
    const killedAt = Date.now();
    // Any command on the other machine sweeps as it opens; poll until the lease (2 s) has lapsed and it did.
    let seen: { status: string; error: string | null };
    for (;;) {
      seen = await cli.json<{ status: string; error: string | null }>(['task', id], a);
      if (seen.status !== 'running' || Date.now() - killedAt > 15_000) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    assert.equal(seen.status, 'failed', `failed once the lease lapsed (${Date.now() - killedAt} ms after the kill)`);
    assert.match(seen.error!, /^worker lost: buildbox-slow sent no heartbeat for \d+ s/);
  });

  it('sparkq serve explains that team mode has no owner to serve', async () => {
    assertError(await cli.run(['serve'], a), 1, /team mode .* there is no owner to serve/);
  });

  it('a team workspace with no database named says how to name one; a wrong one says it cannot be reached', async () => {
    assertError(await cli.run(['status'], { cwd: b.cwd }), 1, /store\.kind: postgres \(team mode\), but no database is named: set SPARKQ_DATABASE_URL/);
    const away = url.replace(/%2F[^:]*:5432/, '%2Ftmp%2Fno-such-dir:5432');
    assertError(await cli.run(['status'], { cwd: b.cwd, env: { SPARKQ_DATABASE_URL: away } }), 1, /cannot be reached .*check that PostgreSQL runs and SPARKQ_DATABASE_URL is right/);
  });
});
