import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadConfigFile } from '../../../src/core/config';
import { TASK_STATUSES } from '../../../src/core/model';
import type { ClaimJson, QueueJson, ScriptJson, SessionJson, StatusJson, TaskDetailJson, TaskJson } from '../../../src/cli/json';
import { assertError, bundleCli, Cli, ESCAPE, type RunOptions, type Serving } from '../../support/cli';
import { tempDir } from '../../support/tmp';

/*
 * The `sparkq` command line end to end: the bundled CLI run as real processes in temp workspaces, every command with
 * its human output, its --json shape and its errors (exit 1 with one `error:` line, exit 2 with the usage), and the
 * owner hand-over between `sparkq serve` and short commands. Each spawn costs a few hundred ms, so independent
 * commands run concurrently.
 */

/** Every field the issue promises in task JSON. */
const TASK_FIELDS = [
  'id', 'session', 'queue', 'tool', 'taskClass', 'prompt', 'payload', 'status', 'priority', 'timeoutSeconds', 'attempt',
  'worker', 'createdAt', 'startedAt', 'finishedAt', 'stale', 'result', 'error', 'stdout', 'stderr', 'usage', 'retryOf',
];

function assertTaskJson(t: TaskJson): void {
  for (const f of TASK_FIELDS) assert.ok(f in t, `task JSON has ${f}`);
  assert.match(t.id, /^tsk_[0-9a-z]{12}$/);
  assert.ok((TASK_STATUSES as readonly string[]).includes(t.status));
  assert.equal(typeof t.createdAt, 'string');
}

describe('sparkq CLI (end to end, real processes)', function () {
  this.timeout(90_000);
  const tmp = tempDir('sparkq-cli-');
  let cli: Cli;
  const servers: Serving[] = [];

  before(function () {
    cli = new Cli(bundleCli(path.join(tmp.dir, 'bundle')));
  });
  afterEach(async () => {
    // A test's serve ends with it (SIGTERM: a clean hand-over); one that does not stop within 10 s is killed.
    await Promise.all(
      servers.splice(0).map(async (s) => {
        const timer = setTimeout(() => s.kill(), 10_000);
        await s.stop('SIGTERM');
        clearTimeout(timer);
      }),
    );
  });
  after(() => tmp.cleanup());

  let n = 0;
  /**
   * A fresh folder; `init` makes it a workspace (with a session and a queue when `withQueue`). With `serve`, a
   * `sparkq serve` owns it, so the test's commands are cheap clients that can run concurrently; without, each command
   * owns the queue for its own duration, the path a machine with no VS Code and no serve takes.
   */
  async function workspace(opts: { init?: boolean; withQueue?: boolean; serve?: boolean } = {}): Promise<RunOptions & { dir: string }> {
    const dir = path.join(tmp.dir, `ws${++n}`);
    fs.mkdirSync(dir);
    const o = { cwd: dir, dir };
    if (opts.init !== false) await cli.ok(['init', '--project', 'demo'], o);
    if (opts.serve) servers.push(await cli.serve(o));
    if (opts.withQueue) {
      await cli.ok(['session', 'create', 'api-v2', '--description', 'the v2 API'], o);
      await cli.ok(['queue', 'create', 'Back End', '--session', 'api-v2', '--instructions', 'Keep changes small.'], o);
    }
    return o;
  }

  async function taskCount(o: RunOptions): Promise<number> {
    return (await cli.json<TaskJson[]>(['tasks', '--limit', '1000'], o)).length;
  }

  it('init writes sparkq.yml and .sparkq/ (0700, with a .gitignore), needs no owner, and refuses to overwrite without --force', async () => {
    const o = await workspace({ init: false });
    const out = await cli.ok(['init'], o);
    assert.match(out, /^Wrote .*sparkq\.yml \(project "ws\d+"\) and created .*\.sparkq\/\n/);
    const yml = path.join(o.dir, 'sparkq.yml');
    assert.equal(loadConfigFile(yml).config.project, path.basename(o.dir));
    const sparkqDir = path.join(o.dir, '.sparkq');
    assert.equal(fs.statSync(sparkqDir).mode & 0o777, 0o700);
    assert.match(fs.readFileSync(path.join(sparkqDir, '.gitignore'), 'utf8'), /^\*$/m);
    assert.deepEqual(fs.readdirSync(sparkqDir), ['.gitignore'], 'init takes no ownership: no lock, no store');

    fs.appendFileSync(yml, '# edited by hand\n');
    const edited = fs.readFileSync(yml, 'utf8');
    const [again, badProject, forced] = await Promise.all([
      cli.run(['init'], o),
      cli.run(['init', '--force', '--project', ' '], o),
      cli.run(['init', '--json', '--project', 'other', '--force', '--workspace', 'sub/dir'], o),
    ]);
    assertError(again, 1, /sparkq\.yml already exists; pass --force/);
    assertError(badProject, 1, /--project must be/);
    assert.equal(fs.readFileSync(yml, 'utf8'), edited, 'refused inits leave the file alone');
    assert.equal(forced.code, 0, forced.stderr);
    const j = JSON.parse(forced.stdout);
    assert.deepEqual(j, {
      workspace: path.join(o.dir, 'sub', 'dir'),
      configFile: path.join(o.dir, 'sub', 'dir', 'sparkq.yml'),
      sparkqDir: path.join(o.dir, 'sub', 'dir', '.sparkq'),
      project: 'other',
      overwritten: false,
    });

    const j2 = await cli.json<{ overwritten: boolean }>(['init', '--force', '--project', 'renamed'], o);
    assert.equal(j2.overwritten, true);
    assert.equal(loadConfigFile(yml).config.project, 'renamed');
  });

  it('finds the workspace from a subfolder, or from --workspace / SPARKQ_WORKSPACE, and says how to fix a missing one', async () => {
    const o = await workspace({ withQueue: true });
    const sub = path.join(o.dir, 'src', 'deep');
    fs.mkdirSync(sub, { recursive: true });
    const elsewhere = path.join(tmp.dir, `nowhere${++n}`);
    fs.mkdirSync(elsewhere);
    const [fromSub, viaFlag, viaEnv, flagBeatsEnv, none, missing] = await Promise.all([
      cli.json<QueueJson[]>(['queue', 'list'], { cwd: sub }),
      cli.json<QueueJson[]>(['--workspace', o.dir, 'queue', 'list'], { cwd: elsewhere }),
      cli.json<QueueJson[]>(['queue', 'list'], { cwd: elsewhere, env: { SPARKQ_WORKSPACE: o.dir } }),
      cli.json<StatusJson>(['status', '--workspace', o.dir], { cwd: elsewhere, env: { SPARKQ_WORKSPACE: path.join(elsewhere, 'nope') } }),
      cli.run(['status'], { cwd: elsewhere }),
      cli.run(['status', '--workspace', path.join(elsewhere, 'missing')], { cwd: elsewhere }),
    ]);
    for (const queues of [fromSub, viaFlag, viaEnv]) assert.deepEqual(queues.map((q) => q.name), ['Back End']);
    assert.equal(flagBeatsEnv.workspace, o.dir);
    assertError(none, 1, /no SparkQ workspace in .* run `sparkq init`.*--workspace DIR/);
    assertError(missing, 1, /workspace folder .*missing \(from --workspace\) does not exist/);
    assert.ok(!fs.existsSync(path.join(elsewhere, '.sparkq')), 'a failed lookup creates nothing');
  });

  it('session create, list and end: human output, JSON, and errors', async () => {
    const o = await workspace({ serve: true });
    assert.match(await cli.ok(['session', 'create', 'alpha', '--description', 'first'], o), /^Created session alpha \(ses_[0-9a-z]{12}\)\n$/);
    const beta = await cli.json<SessionJson>(['session', 'create', 'beta'], o);
    assert.deepEqual(Object.keys(beta).sort(), ['createdAt', 'description', 'endedAt', 'id', 'name', 'status']);
    assert.equal(beta.name, 'beta');
    assert.equal(beta.status, 'active');

    const [dup, badName, noName, noSub, unknownSub] = await Promise.all([
      cli.run(['session', 'create', 'alpha'], o),
      cli.run(['session', 'create', 'tsk_x'], o),
      cli.run(['session', 'create'], o),
      cli.run(['session'], o),
      cli.run(['session', 'bogus'], o),
    ]);
    assertError(dup, 1, /alpha/, 'duplicate name');
    assertError(badName, 1, /id prefix/, 'reserved prefix');
    assertError(noName, 2, /missing required argument 'name'/);
    assert.match(noName.stderr, /Usage: sparkq session create \[options\] <name>/);
    assertError(noSub, 2, /missing command/);
    assertError(unknownSub, 2, /unknown command 'bogus'/);

    const ended = await cli.json<SessionJson>(['session', 'end', beta.id], o);
    assert.equal(ended.status, 'ended');
    assert.equal(typeof ended.endedAt, 'string');
    const [listed, all, human, endAgain, endUnknown] = await Promise.all([
      cli.json<SessionJson[]>(['session', 'list'], o),
      cli.json<SessionJson[]>(['session', 'list', '--all'], o),
      cli.ok(['session', 'list'], o),
      cli.run(['session', 'end', 'beta'], o),
      cli.run(['session', 'end', 'nope'], o),
    ]);
    assert.deepEqual(listed.map((s) => s.name), ['alpha']);
    assert.deepEqual(all.map((s) => s.name).sort(), ['alpha', 'beta']);
    const lines = human.trimEnd().split('\n');
    assert.match(lines[0]!, /^SESSION +ID +STATUS +CREATED +DESCRIPTION$/);
    assert.match(lines[1]!, /^alpha +ses_\w+ +active +\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ +first$/);
    assert.equal(lines[0]!.indexOf('ID'), lines[1]!.indexOf('ses_'), 'columns are aligned');
    assertError(endAgain, 1, /already ended/);
    assertError(endUnknown, 1, /nope/);
    assert.match(await cli.ok(['session', 'end', 'alpha'], o), /^Ended session alpha \(ses_\w+\)\n$/);
  });

  it('queue create, list and end: human output, JSON, and errors', async () => {
    const o = await workspace({ serve: true });
    await Promise.all([cli.ok(['session', 'create', 's1'], o), cli.ok(['session', 'create', 's2'], o)]);
    const [human, q2, q3] = await Promise.all([
      cli.ok(['queue', 'create', 'Back End', '--session', 's1', '--instructions', 'Small changes.', '--workdir', 'api'], o),
      cli.json<QueueJson>(['queue', 'create', 'front', '--session', 's2'], o),
      cli.json<QueueJson>(['queue', 'create', 'docs', '--session', 's2'], o),
    ]);
    assert.match(human, /^Created queue Back End \(que_[0-9a-z]{12}\) in session s1\n$/);
    for (const f of ['id', 'name', 'session', 'sessionId', 'instructions', 'workdir', 'status', 'createdAt', 'endedAt', 'counts', 'stale']) assert.ok(f in q2, `queue JSON has ${f}`);
    assert.deepEqual(q2.counts, { queued: 0, running: 0, succeeded: 0, failed: 0 });
    assert.equal(q2.session, 's2');

    const [noSession, unknownSession, s2Only, table] = await Promise.all([
      cli.run(['queue', 'create', 'x'], o),
      cli.run(['queue', 'create', 'x', '--session', 'nope'], o),
      cli.json<QueueJson[]>(['queue', 'list', '--session', 's2'], o),
      cli.ok(['queue', 'list'], o),
    ]);
    assertError(noSession, 2, /required option '--session <session>' not specified/);
    assertError(unknownSession, 1, /nope/);
    assert.deepEqual(s2Only.map((q) => q.name).sort(), ['docs', 'front']);
    const rows = table.trimEnd().split('\n');
    assert.match(rows[0]!, /^QUEUE +SESSION +STATUS +QUEUED +RUNNING +SUCCEEDED +FAILED +STALE +ID$/);
    assert.equal(rows.length, 4);
    assert.ok(rows.some((r) => /^Back End +s1 +active +0 +0 +0 +0 +0 +que_\w+$/.test(r)), table);

    const ended = await cli.json<QueueJson>(['queue', 'end', q3.id], o);
    assert.equal(ended.status, 'ended');
    const [active, all, endAgain, enqueueEnded] = await Promise.all([
      cli.json<QueueJson[]>(['queue', 'list'], o),
      cli.json<QueueJson[]>(['queue', 'list', '--all'], o),
      cli.run(['queue', 'end', 'docs'], o),
      cli.run(['enqueue', 'llm-haiku', '--queue', 'docs', '--prompt', 'x'], o),
    ]);
    const endHuman = await cli.ok(['queue', 'end', 'front'], o);
    assert.equal(active.length, 2);
    assert.equal(all.length, 3);
    assertError(endAgain, 1, /docs/);
    assertError(enqueueEnded, 1, /docs/);
    assert.match(endHuman, /^Ended queue front \(que_\w+\) at \S+Z\n$/);
  });

  it('enqueue prints the new id, takes prompts from text, files and stdin, and enqueues nothing on bad input', async () => {
    const o = await workspace({ withQueue: true, serve: true });
    fs.writeFileSync(path.join(o.dir, 'prompt.md'), 'Prompt from a file.\nSecond line.\n');
    const [plain, full, fromFile, fromStdin] = await Promise.all([
      cli.ok(['enqueue', 'llm-codex', '--queue', 'Back End', '--prompt', 'generate the users endpoint'], o),
      cli.json<TaskJson>(['enqueue', 'run-bash', '--queue', 'Back End', '--payload', '{"script":"migrate.sh","args":[1]}', '--timeout', '42', '--priority', '-3'], o),
      cli.json<TaskJson>(['enqueue', 'llm-claude', '--queue', 'Back End', '--prompt-file', 'prompt.md'], o),
      cli.json<TaskJson>(['enqueue', 'llm-claude', '--queue', 'Back End', '--prompt-file', '-'], { ...o, input: 'from stdin' }),
    ]);
    assert.match(plain, /^tsk_[0-9a-z]{12}\n$/, 'human output is the id alone, for $(sparkq enqueue …)');
    assertTaskJson(full);
    assert.deepEqual(full.payload, { script: 'migrate.sh', args: [1] });
    assert.equal(full.prompt, null);
    assert.equal(full.timeoutSeconds, 42);
    assert.equal(full.priority, -3);
    assert.equal(full.status, 'queued');
    assert.equal(full.queue, 'Back End');
    assert.equal(full.session, 'api-v2');
    assert.equal(full.tool, 'run-bash');
    assert.equal(full.taskClass, 'MEDIUM_SCRIPT');
    assert.equal(full.attempt, 0);
    assert.equal(full.result, null);
    assert.equal(fromFile.prompt, 'Prompt from a file.\nSecond line.\n');
    assert.equal(fromStdin.prompt, 'from stdin');

    const before = await taskCount(o);
    assert.equal(before, 4);
    const bad = await Promise.all([
      cli.run(['enqueue', 'run-bash', '--queue', 'Back End', '--payload', '{bad json'], o),
      cli.run(['enqueue', 'run-bash', '--queue', 'Back End', '--prompt', 'x', '--priority', 'high'], o),
      cli.run(['enqueue', 'run-bash', '--queue', 'Back End', '--prompt', 'x', '--timeout', '0'], o),
      cli.run(['enqueue', 'no-such-tool', '--queue', 'Back End', '--prompt', 'x'], o),
      cli.run(['enqueue', 'run-bash', '--queue', 'Nope', '--prompt', 'x'], o),
      cli.run(['enqueue', 'run-bash', '--queue', 'Back End'], o),
      cli.run(['enqueue', 'run-bash', '--queue', 'Back End', '--prompt-file', 'missing.md'], o),
      cli.run(['enqueue', 'run-bash', '--prompt', 'x'], o),
      cli.run(['enqueue', '--queue', 'Back End', '--prompt', 'x'], o),
      cli.run(['enqueue', 'run-bash', '--queue', 'Back End', '--prompt', 'x', '--prompt-file', 'prompt.md'], o),
      cli.run(['enqueue', 'run-bash', '--queue', 'Back End', '--prompt', 'x', '--bogus'], o),
    ]);
    assertError(bad[0], 1, /--payload is not valid JSON .*pass a JSON value/);
    assertError(bad[1], 1, /--priority must be a whole number/);
    assertError(bad[2], 1, /--timeout must be a whole number from 1/);
    assertError(bad[3], 1, /unknown tool "no-such-tool"; tools in sparkq\.yml: .*run-bash/);
    assertError(bad[4], 1, /Nope/);
    assertError(bad[5], 1, /needs --prompt TEXT, --prompt-file FILE or --payload JSON/);
    assertError(bad[6], 1, /cannot read --prompt-file .*missing\.md: no such file/);
    assertError(bad[7], 2, /required option '--queue <queue>' not specified/);
    assert.match(bad[7].stderr, /Usage: sparkq enqueue \[options\] \[tool\]/);
    assertError(bad[8], 2, /missing required argument 'tool'/);
    assertError(bad[9], 2, /cannot be used with/);
    assertError(bad[10], 2, /unknown option '--bogus'/);
    assert.equal(await taskCount(o), before, 'no bad enqueue added a task');
  });

  it('peek shows the next task unchanged, and prints nothing (or null) when the queue is empty', async () => {
    const o = await workspace({ withQueue: true, serve: true });
    const [emptyHuman, emptyJson, noQueue, unknownQueue] = await Promise.all([
      cli.ok(['peek', '--queue', 'Back End'], o),
      cli.json<TaskJson | null>(['peek', '--queue', 'Back End'], o),
      cli.run(['peek'], o),
      cli.run(['peek', '--queue', 'nope'], o),
    ]);
    assert.equal(emptyHuman, '');
    assert.equal(emptyJson, null);
    assertError(noQueue, 2, /required option '--queue <queue>'/);
    assertError(unknownQueue, 1, /nope/);

    await cli.ok(['enqueue', 'llm-haiku', '--queue', 'Back End', '--prompt', 'low'], o);
    const high = (await cli.ok(['enqueue', 'llm-haiku', '--queue', 'Back End', '--prompt', 'urgent', '--payload', '{"n":1}', '--priority', '9'], o)).trim();
    const [human, peeked] = await Promise.all([cli.ok(['peek', '--queue', 'Back End'], o), cli.json<TaskJson | null>(['peek', '--queue', 'Back End'], o)]);
    assert.match(human, new RegExp(`^task +${high}\\nstatus +queued\\n`));
    assert.match(human, /\nprompt:\n {2}urgent\npayload:\n {2}\{\n {4}"n": 1\n {2}\}\n$/);
    assert.ok(peeked);
    assertTaskJson(peeked);
    assert.equal(peeked.id, high);
    const after = await cli.json<TaskDetailJson>(['task', high], o);
    assert.equal(after.status, 'queued', 'peek changes nothing');
    assert.equal(after.attempt, 0);
  });

  it('claim hands out the task with instructions and lease; no --queue lists the queues; complete honours SPARKQ_LEASE', async () => {
    const o = await workspace({ withQueue: true, serve: true });
    await cli.ok(['queue', 'create', 'front', '--session', 'api-v2'], o);
    const [noQueueEmpty, emptyHuman, emptyJson] = await Promise.all([
      cli.run(['claim'], o),
      cli.ok(['claim', '--queue', 'Back End'], o),
      cli.json<ClaimJson | null>(['claim', '--queue', 'Back End'], o),
    ]);
    assertError(noQueueEmpty, 1, /say which queue to claim from with --queue NAME; queues: (Back End \(0 queued\), front \(0 queued\)|front \(0 queued\), Back End \(0 queued\))$/);
    assert.equal(emptyHuman, '');
    assert.equal(emptyJson, null);

    const ids = await Promise.all(['one', 'two', 'three'].map(async (p) => (await cli.ok(['enqueue', 'llm-sonnet', '--queue', 'Back End', '--prompt', p], o)).trim()));
    assertError(await cli.run(['claim'], o), 1, /queues: .*Back End \(3 queued\)/);

    const claim = await cli.json<ClaimJson>(['claim', '--queue', 'Back End', '--worker', 'w1'], o);
    assert.deepEqual(Object.keys(claim).sort(), ['instructions', 'lease', 'task']);
    assertTaskJson(claim.task);
    assert.ok(ids.includes(claim.task.id));
    assert.equal(claim.task.status, 'running');
    assert.equal(claim.task.worker, 'w1');
    assert.equal(claim.task.attempt, 1);
    assert.equal(typeof claim.task.startedAt, 'string');
    assert.equal(claim.instructions, 'Keep changes small.');
    assert.equal(typeof claim.lease, 'string');

    const human = await cli.ok(['claim', '--queue', 'Back End'], o);
    const lease2 = /^lease +(\S+)$/m.exec(human)?.[1];
    const task2 = /^task +(tsk_\w+)$/m.exec(human)?.[1];
    assert.ok(lease2 && task2, human);
    assert.match(human, /^status +running$/m);
    assert.match(human, /\ninstructions:\n {2}Keep changes small\.\n/);
    assert.match(human, /Finish with: sparkq complete tsk_\w+ "what was done" \[--data "details"\] --lease /);

    // Wrong leases and bad values change nothing.
    const bad = await Promise.all([
      cli.run(['complete', claim.task.id, '--summary', 'done', '--lease', 'not-the-lease'], o),
      cli.run(['complete', claim.task.id, '--summary', 'done', '--data-json', '{oops'], { ...o, env: { SPARKQ_LEASE: claim.lease } }),
      cli.run(['complete', claim.task.id, '--summary', 'done', '--data-file', 'missing.json'], { ...o, env: { SPARKQ_LEASE: claim.lease } }),
      cli.run(['complete', claim.task.id], o),
      cli.run(['complete', '--summary', 'x'], o),
      cli.run(['complete', claim.task.id, '--summary', '  ', '--lease', claim.lease], o),
      cli.run(['complete', 'tsk_000000000000', '--summary', 'x'], o),
      cli.run(['complete', claim.task.id, '--summary', 'x', '--data', '1', '--data-file', 'd.json'], o),
    ]);
    assertError(bad[0], 1, /lease/);
    assertError(bad[1], 1, /--data-json is not valid JSON/);
    assertError(bad[2], 1, /cannot read --data-file/);
    assertError(bad[3], 2, /say what was done: sparkq complete TASK "what was done, where, counts" \(or --summary TEXT\)/);
    assertError(bad[4], 2, /missing required argument 'task'/);
    assertError(bad[5], 1, /summary is required/);
    assertError(bad[6], 1, /tsk_000000000000/);
    assertError(bad[7], 2, /cannot be used with/);
    const still = await cli.json<TaskDetailJson>(['task', claim.task.id], o);
    assert.equal(still.status, 'running', 'nothing recorded by the failed completes');

    // The lease comes from SPARKQ_LEASE when --lease is not given; --data-file reads JSON (from stdin with -).
    fs.writeFileSync(path.join(o.dir, 'result.json'), '{"files":3}');
    const [done, doneHuman] = await Promise.all([
      cli.json<TaskJson>(['complete', claim.task.id, '--summary', 'generated', '--data-file', 'result.json'], { ...o, env: { SPARKQ_LEASE: claim.lease } }),
      cli.ok(['complete', task2, '--summary', 'second', '--data-file', '-'], { ...o, env: { SPARKQ_LEASE: lease2 }, input: '[1,2]' }),
    ]);
    assertTaskJson(done);
    assert.equal(done.status, 'succeeded');
    assert.deepEqual(done.result, { summary: 'generated', data: { files: 3 } });
    assert.equal(typeof done.finishedAt, 'string');
    assert.equal(doneHuman, `Completed ${task2} (succeeded)\n`);
    assert.deepEqual((await cli.json<TaskDetailJson>(['task', task2], o)).result, { summary: 'second', data: [1, 2] });
    assertError(await cli.run(['complete', claim.task.id, '--summary', 'again', '--lease', claim.lease], o), 1, /succeeded|finished/);
  });

  it('fail, requeue, task and tasks: the whole record, filters, limits, and errors', async () => {
    const o = await workspace({ withQueue: true, serve: true });
    await cli.ok(['queue', 'create', 'front', '--session', 'api-v2'], o);
    const [a, , c] = await Promise.all([
      cli.json<TaskJson>(['enqueue', 'run-bash', '--queue', 'Back End', '--prompt', 'migrate', '--priority', '5'], o),
      cli.json<TaskJson>(['enqueue', 'llm-codex', '--queue', 'Back End', '--prompt', 'endpoint'], o),
      cli.json<TaskJson>(['enqueue', 'llm-haiku', '--queue', 'front', '--prompt', 'css'], o),
    ]);
    const claim = await cli.json<ClaimJson>(['claim', '--queue', 'Back End', '--worker', 'w9'], o);
    assert.equal(claim.task.id, a.id, 'highest priority first');

    const [failNoError, failBadData, requeueRunning] = await Promise.all([
      cli.run(['fail', a.id, '--lease', claim.lease], o),
      cli.run(['fail', a.id, '--error', 'x', '--data-json', 'nope', '--lease', claim.lease], o),
      cli.run(['requeue', a.id], o),
    ]);
    assertError(failNoError, 2, /say what went wrong: sparkq fail TASK/);
    assertError(failBadData, 1, /--data-json is not valid JSON/);
    assertError(requeueRunning, 1, /only a failed task can be requeued/);

    const failed = await cli.json<TaskJson>(['fail', a.id, '--error', 'exit 2: migrations/004.sql: syntax error', '--data', '{"line":4}'], { ...o, env: { SPARKQ_LEASE: claim.lease } });
    assertTaskJson(failed);
    assert.equal(failed.status, 'failed');
    assert.equal(failed.error, 'exit 2: migrations/004.sql: syntax error');

    const newId = (await cli.ok(['requeue', a.id], o)).trim();
    assert.match(newId, /^tsk_[0-9a-z]{12}$/);
    const [again, retried, detail, detailHuman, unknown] = await Promise.all([
      cli.run(['requeue', a.id], o),
      cli.json<TaskDetailJson>(['task', newId], o),
      cli.json<TaskDetailJson>(['task', a.id], o),
      cli.ok(['task', a.id], o),
      cli.run(['task', 'tsk_000000000000'], o),
    ]);
    assertError(again, 1, new RegExp(`already requeued as ${newId}`));
    assert.equal(retried.retryOf, a.id);
    assert.equal(retried.status, 'queued');
    assertError(unknown, 1, /tsk_000000000000/);

    assertTaskJson(detail);
    assert.equal(detail.instructions, 'Keep changes small.');
    assert.deepEqual(Object.keys(detail.timings).sort(), ['runMs', 'waitMs']);
    assert.equal(typeof detail.timings.waitMs, 'number');
    assert.equal(typeof detail.timings.runMs, 'number');
    assert.equal(detail.attempts.length, 1);
    assert.deepEqual(Object.keys(detail.attempts[0]!).sort(), ['endedAt', 'error', 'n', 'outcome', 'startedAt', 'worker']);
    assert.equal(detail.attempts[0]!.outcome, 'failed');
    assert.equal(detail.attempts[0]!.worker, 'w9');
    assert.match(detailHuman, new RegExp(`^task +${a.id}\\nstatus +failed\\n`));
    for (const label of ['session', 'queue', 'tool', 'created', 'started', 'finished', 'waited', 'ran', 'error']) assert.match(detailHuman, new RegExp(`^${label} +\\S`, 'm'), `task shows ${label}`);
    assert.match(detailHuman, /\nattempts:\n {2}# +WORKER +STARTED +ENDED +OUTCOME +ERROR\n {2}1 +w9 +\S+ +\S+ +failed +exit 2: migrations/);

    const [all, failedOnly, several, frontOnly, byTool, byStale, limited, limitedHuman, table, badStatus, badLimit, bySession] = await Promise.all([
      cli.json<TaskJson[]>(['tasks'], o),
      cli.json<TaskJson[]>(['tasks', '--status', 'failed'], o),
      cli.json<TaskJson[]>(['tasks', '--status', 'queued,failed'], o),
      cli.json<TaskJson[]>(['tasks', '--queue', 'front'], o),
      cli.json<TaskJson[]>(['tasks', '--tool', 'llm-codex'], o),
      cli.json<TaskJson[]>(['tasks', '--stale'], o),
      cli.json<TaskJson[]>(['tasks', '--limit', '2'], o),
      cli.ok(['tasks', '--limit', '2'], o),
      cli.ok(['tasks'], o),
      cli.run(['tasks', '--status', 'done'], o),
      cli.run(['tasks', '--limit', '0'], o),
      cli.json<TaskJson[]>(['tasks', '--session', 'api-v2'], o),
    ]);
    assert.equal(all.length, 4);
    all.forEach(assertTaskJson);
    assert.deepEqual(failedOnly.map((t) => t.id), [a.id]);
    assert.equal(several.length, 4);
    assert.deepEqual(frontOnly.map((t) => t.id), [c.id]);
    assert.deepEqual(byTool.map((t) => t.tool), ['llm-codex']);
    assert.deepEqual(byStale, []);
    assert.equal(limited.length, 2);
    assert.equal(limitedHuman.trimEnd().split('\n').length, 4, 'header, two rows and the "more" line');
    assert.match(limitedHuman, /… more tasks; raise --limit \(now 2\)/);
    assert.equal(bySession.length, 4);
    assertError(badStatus, 1, /--status must be one of queued, running, succeeded, failed/);
    assertError(badLimit, 1, /--limit must be a whole number of at least 1 \(or --all for every task\)/);
    const rows = table.trimEnd().split('\n');
    assert.match(rows[0]!, /^TASK +QUEUE +TOOL +STATUS +PRI +TRY +CREATED +SUMMARY \/ ERROR \/ PROMPT$/);
    assert.equal(rows.length, 5);
    const failedRow = rows.find((r) => r.startsWith(a.id))!;
    assert.match(failedRow, /^tsk_\w+ +Back End +run-bash +failed +5 +1 +\S+Z +exit 2: migrations\/004\.sql: syntax error$/);
    assert.equal(rows[0]!.indexOf('STATUS'), failedRow.indexOf('failed'), 'columns are aligned');
    assert.equal(await cli.ok(['tasks', '--queue', 'front', '--status', 'failed'], o), 'No tasks match.\n');

    // The retry fails too (human output this time) and is requeued with --json: a chain of retryOf links.
    const retryClaim = await cli.json<ClaimJson>(['claim', '--queue', 'Back End'], o);
    assert.equal(retryClaim.task.id, newId);
    assert.equal(await cli.ok(['fail', newId, '--error', 'still broken', '--lease', retryClaim.lease], o), `Failed ${newId}: still broken\n`);
    const third = await cli.json<TaskJson>(['requeue', newId], o);
    assertTaskJson(third);
    assert.equal(third.retryOf, newId);
    assert.equal(third.status, 'queued');
    assert.equal(third.prompt, 'migrate');
    assert.match(await cli.ok(['task', third.id], o), new RegExp(`^retry of +${newId}$`, 'm'));
  });

  it('scripts lists the script index, filtered by a query', async () => {
    const o = await workspace({ serve: true });
    const none = await cli.ok(['scripts'], o);
    assert.match(none, /^No scripts in .*scripts\.\n$/);
    fs.mkdirSync(path.join(o.dir, 'scripts', 'db'), { recursive: true });
    fs.writeFileSync(path.join(o.dir, 'scripts', 'db', 'backup.sh'), '#!/usr/bin/env bash\n# name: backup-db\n# description: Dump the database to backups/\n# tags: db, ops\necho hi\n');
    fs.writeFileSync(path.join(o.dir, 'scripts', 'lint.py'), '#!/usr/bin/env python3\n# description: Lint the code\nprint(1)\n');
    const [all, human, query, miss] = await Promise.all([
      cli.json<ScriptJson[]>(['scripts'], o),
      cli.ok(['scripts'], o),
      cli.json<ScriptJson[]>(['scripts', 'backup'], o),
      cli.ok(['scripts', 'zzz-nothing'], o),
    ]);
    assert.deepEqual(all.map((s) => s.name).sort(), ['backup-db', 'lint']);
    const backup = all.find((s) => s.name === 'backup-db');
    assert.deepEqual(backup, {
      name: 'backup-db',
      path: path.join(o.dir, 'scripts', 'db', 'backup.sh'),
      relativePath: 'db/backup.sh',
      dir: path.join(o.dir, 'scripts'),
      description: 'Dump the database to backups/',
      inputs: '',
      outputs: '',
      tags: ['db', 'ops'],
    });
    assert.match(human, /^SCRIPT +PATH +TAGS +DESCRIPTION\n/);
    assert.match(human, /\nbackup-db +db\/backup\.sh +db,ops +Dump the database to backups\/\n/);
    assert.deepEqual(query.map((s) => s.name), ['backup-db']);
    assert.match(miss, /^No scripts match "zzz-nothing"/);
    assertError(await cli.run(['scripts', 'a', 'b'], o), 2, /too many arguments/);
  });

  it('purge needs an age from --older-than or purgeAfterDays in sparkq.yml, and deletes only old finished tasks', async () => {
    const o = await workspace({ withQueue: true });
    const ids = await Promise.all([1, 2].map(async (i) => (await cli.ok(['enqueue', 'llm-haiku', '--queue', 'Back End', '--prompt', `p${i}`], o)).trim()));
    const claim = await cli.json<ClaimJson>(['claim', '--queue', 'Back End'], o);
    await cli.ok(['complete', claim.task.id, '--summary', 'done', '--lease', claim.lease], o);
    const [noAge, badAge, keep] = await Promise.all([
      cli.run(['purge'], o),
      cli.run(['purge', '--older-than', '-1'], o),
      cli.json<{ purged: number; olderThanDays: number }>(['purge', '--older-than', '1'], o),
    ]);
    assertError(noAge, 1, /pass --older-than DAYS, or set purgeAfterDays in sparkq\.yml/);
    assertError(badAge, 1, /--older-than must be a number of days/);
    assert.deepEqual(keep, { purged: 0, olderThanDays: 1 });
    assert.equal(await taskCount(o), 2);

    // purgeAfterDays in sparkq.yml is the default age.
    const yml = path.join(o.dir, 'sparkq.yml');
    fs.writeFileSync(yml, fs.readFileSync(yml, 'utf8').replace(/^purgeAfterDays: null$/m, 'purgeAfterDays: 1'));
    assert.equal(await cli.ok(['purge'], o), 'Purged 0 finished tasks older than 1 day\n');
    assert.equal(await cli.ok(['purge', '--older-than', '0'], o), 'Purged 1 finished task older than 0 days\n');
    const left = await cli.json<TaskJson[]>(['tasks'], o);
    assert.deepEqual(left.map((t) => t.id), ids.filter((id) => id !== claim.task.id), 'the queued task stays');
  });

  it('status shows the owner and the counts; colour only with FORCE_COLOR on and NO_COLOR off; --help and --version', async () => {
    const o = await workspace({ withQueue: true });
    await Promise.all([1, 2, 3].map((i) => cli.ok(['enqueue', 'llm-haiku', '--queue', 'Back End', '--prompt', `p${i}`], o)));
    const [claim, plain, noColour, forced, forcedJson, version, help, statusHelp, bogus, extra] = await Promise.all([
      cli.json<ClaimJson>(['claim', '--queue', 'Back End'], o),
      cli.ok(['tasks'], o),
      cli.ok(['tasks'], { ...o, env: { NO_COLOR: '1', FORCE_COLOR: '1' } }),
      cli.ok(['tasks'], { ...o, env: { FORCE_COLOR: '1' } }),
      cli.ok(['tasks', '--json'], { ...o, env: { FORCE_COLOR: '1' } }),
      cli.ok(['--version'], o),
      cli.ok(['--help'], o),
      cli.ok(['status', '--help'], o),
      cli.run(['bogus'], o),
      cli.run(['status', 'extra'], o),
    ]);
    assert.ok(claim);
    // Alone: among the commands above, whichever owned the queue served the others that came meanwhile as its clients.
    const st = await cli.json<StatusJson>(['status'], o);
    const human = await cli.ok(['status'], o);
    assert.deepEqual(Object.keys(st).sort(), ['counts', 'owner', 'project', 'queues', 'workers', 'workspace']);
    assert.deepEqual(st.workers, [], 'no worker runs');
    assert.equal(st.workspace, o.dir);
    assert.equal(st.project, 'demo');
    assert.deepEqual(Object.keys(st.owner).sort(), ['generation', 'isThisCommand', 'pid', 'role', 'since']);
    assert.equal(st.owner.isThisCommand, true, 'no serve: the command owned the queue itself');
    assert.equal(st.owner.role, 'cli');
    assert.deepEqual(Object.keys(st.counts).sort(), ['failed', 'queued', 'running', 'stale', 'succeeded']);
    assert.equal(st.counts.queued + st.counts.running, 3);
    assert.equal(st.queues[0]!.name, 'Back End');
    assert.match(human, /^workspace +\S+\nproject +demo\nowner +none running; this command owned the queue/);
    assert.match(human, /^tasks +\d queued, \d running, 0 succeeded, 0 failed, 0 stale$/m);
    assert.match(human, /\nQUEUE +SESSION +STATUS +QUEUED/);

    assert.doesNotMatch(plain, ESCAPE, 'stdout is not a TTY: no colour');
    assert.doesNotMatch(noColour, ESCAPE, 'NO_COLOR wins over FORCE_COLOR');
    assert.match(forced, ESCAPE);
    assert.doesNotMatch(forcedJson, ESCAPE, 'JSON is never coloured');
    assert.ok(forced.startsWith('\u001b[1mTASK'), 'a bold header');

    const pkg = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', '..', 'package.json'), 'utf8')) as { version: string };
    assert.equal(version, `${pkg.version}\n`);
    for (const c of ['init', 'status', 'session', 'queue', 'enqueue', 'peek', 'claim', 'complete', 'fail', 'tasks', 'task', 'requeue', 'scripts', 'purge', 'serve']) {
      assert.match(help, new RegExp(`^  ${c}\\b`, 'm'), `--help lists ${c}`);
    }
    assert.match(help, /--json/);
    assert.match(help, /--workspace <dir>/);
    assert.match(statusHelp, /^Usage: sparkq status \[options\]/);
    assert.match(statusHelp, /Global Options:[\s\S]*--json/);
    assertError(bogus, 2, /unknown command 'bogus'/);
    assertError(extra, 2, /too many arguments/);
    assertError(await cli.run([], o), 2, /missing command/);
  });

  it('serve owns the queue while concurrent commands are its clients; SIGTERM hands over and nothing is lost', async () => {
    const o = await workspace({ withQueue: true });
    const server = await cli.serve(o);
    servers.push(server);
    const info = await server.started;
    assert.equal(info.workspace, o.dir);
    assert.equal(info.pid, server.child.pid);
    assert.equal(info.role, 'serve');
    assert.ok(info.generation >= 1);
    assert.equal(typeof info.socketPath, 'string');
    const ownerJson = path.join(o.dir, '.sparkq', 'owner.json');
    assert.equal(fs.statSync(ownerJson).mode & 0o777, 0o600, 'owner.json is private');
    assert.equal(fs.statSync(path.join(o.dir, '.sparkq')).mode & 0o777, 0o700);
    assert.ok(fs.existsSync(path.join(o.dir, '.sparkq', '.gitignore')));

    // Twelve commands at once, all clients of the serve process.
    const enqueued = await Promise.all(
      Array.from({ length: 10 }, async (_, i) => (await cli.ok(['enqueue', 'llm-haiku', '--queue', 'Back End', '--prompt', `task ${i}`], o)).trim()),
    );
    const [st, secondServe, statusHuman] = await Promise.all([cli.json<StatusJson>(['status'], o), cli.run(['serve'], o), cli.ok(['status'], o)]);
    assert.equal(st.owner.pid, info.pid);
    assert.equal(st.owner.role, 'serve');
    assert.equal(st.owner.generation, info.generation);
    assert.equal(st.owner.isThisCommand, false);
    assert.equal(st.counts.queued, 10);
    assert.match(statusHuman, new RegExp(`^owner +pid ${info.pid} \\(serve\\), generation ${info.generation}, since `, 'm'));
    assertError(secondServe, 1, new RegExp(`already owned by process ${info.pid} \\(serve, generation ${info.generation}`));

    const claim = await cli.json<ClaimJson>(['claim', '--queue', 'Back End', '--worker', 'w'], o);
    await cli.ok(['complete', claim.task.id, '--summary', 'done while serve ran'], { ...o, env: { SPARKQ_LEASE: claim.lease } });

    const stopped = await server.stop('SIGTERM');
    assert.equal(stopped.code, 0, `serve exits 0 on SIGTERM: ${stopped.stderr}`);
    assert.equal(stopped.stderr, '');
    assert.ok(!fs.existsSync(ownerJson), 'owner.json is removed on hand-over');

    const after = await cli.json<StatusJson>(['status'], o);
    assert.equal(after.owner.isThisCommand, true, 'the next command takes over');
    assert.notEqual(after.owner.pid, info.pid);
    assert.ok(after.owner.generation > info.generation);
    assert.equal(after.counts.queued, 9);
    assert.equal(after.counts.succeeded, 1);
    const tasks = await cli.json<TaskJson[]>(['tasks', '--limit', '100'], o);
    assert.deepEqual(tasks.map((t) => t.id).sort(), [...enqueued].sort(), 'every acknowledged enqueue is there');
    assert.equal(tasks.find((t) => t.id === claim.task.id)?.result?.summary, 'done while serve ran');

    // Serving again (human output this time) takes over from the short commands; Ctrl+C (SIGINT) stops it cleanly.
    const human = await cli.serve(o, { json: false });
    servers.push(human);
    const hinfo = await human.started;
    assert.ok(hinfo.generation > after.owner.generation);
    assert.match(human.stdout, /^serving +\S+\npid +\d+\ngeneration +\d+\nsocket +\S+\nlog +\S+owner\.log\n/);
    assert.equal((await cli.json<StatusJson>(['status'], o)).owner.pid, human.child.pid);
    const end = await human.stop('SIGINT');
    assert.equal(end.code, 0, end.stderr);
    assert.match(end.stdout, /Stopped on SIGINT: the queue is saved and ownership released/);
    assert.equal((await cli.json<TaskJson[]>(['tasks', '--limit', '100'], o)).length, 10);
  });
});
