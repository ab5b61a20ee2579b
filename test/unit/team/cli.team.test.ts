import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { assertError, bundleCli, Cli, type RunOptions } from '../../support/cli';
import { postgresOrSkip } from '../../support/postgres';
import { tempDir } from '../../support/tmp';

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
    assert.deepEqual(first.team, { database: url, schema: 'sparkq', schemaVersion: 1, urlWritten: true });
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

  it('a team workspace with no database named says how to name one; a wrong one says it cannot be reached', async () => {
    assertError(await cli.run(['status'], { cwd: b.cwd }), 1, /store\.kind: postgres \(team mode\), but no database is named: set SPARKQ_DATABASE_URL/);
    const away = url.replace(/%2F[^:]*:5432/, '%2Ftmp%2Fno-such-dir:5432');
    assertError(await cli.run(['status'], { cwd: b.cwd, env: { SPARKQ_DATABASE_URL: away } }), 1, /cannot be reached .*check that PostgreSQL runs and SPARKQ_DATABASE_URL is right/);
  });
});
