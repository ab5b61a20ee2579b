import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ClaimJson, QueueJson, StatusJson, TaskDetailJson, TaskJson } from '../../../src/cli/json';
import { assertError, type Cli, cliSandbox, type RunOptions } from '../../support/cli';

/*
 * The worker contract as chat agents type it, and the time budget of a task when no process stays up to own the
 * queue: every command below is a real `sparkq` process; in the timeout tests each one owns the queue for its own
 * duration, and SPARKQ_CLOCK_OFFSET_MS moves the clock of that owner instead of the test sleeping.
 */

describe('sparkq CLI: what a chat agent types, and timeouts with no long-lived owner', function () {
  this.timeout(90_000);
  const sandbox = cliSandbox('sparkq-cli-agent-');
  let cli: Cli;
  before(() => (cli = sandbox.cli));

  let n = 0;
  async function workspace(opts: { serve: boolean }): Promise<RunOptions & { dir: string }> {
    const dir = path.join(sandbox.dir, `ws${++n}`);
    fs.mkdirSync(dir);
    const o = { cwd: dir, dir };
    await cli.ok(['init', '--project', 'demo'], o);
    if (opts.serve) await sandbox.serve(o);
    await cli.ok(['session', 'create', 'api-v2'], o);
    await cli.ok(['queue', 'create', 'Back End', '--session', 'api-v2'], o);
    return o;
  }

  /** Enqueues `count` manual tasks and claims them all; returns the claims in order. */
  async function claimed(o: RunOptions, count: number, enqueueArgs: string[] = []): Promise<ClaimJson[]> {
    for (let i = 0; i < count; i++) await cli.ok(['enqueue', 'llm-sonnet', '--queue', 'Back End', '--prompt', `task ${i}`, ...enqueueArgs], o);
    const out: ClaimJson[] = [];
    for (let i = 0; i < count; i++) out.push(await cli.json<ClaimJson>(['claim', '--queue', 'Back End', '--worker', 'agent'], o));
    return out;
  }

  const withLease = (o: RunOptions, c: ClaimJson): RunOptions => ({ ...o, env: { SPARKQ_LEASE: c.lease } });

  it('complete TASK "summary" --data "free text": the agent form works, free text stays text, JSON objects and arrays stay JSON', async () => {
    const o = await workspace({ serve: true });
    const [a, b, c, d, e, f] = await claimed(o, 6);

    // Exactly what the issue quotes an agent typing.
    const free = 'Line 150: Add rate limiting, Line 320: caching';
    assert.equal(await cli.ok(['complete', a!.task.id, 'Found 5 TODO comments in src/api.py', '--data', free], withLease(o, a!)), `Completed ${a!.task.id} (succeeded)\n`);
    const [obj, arr, none, text] = await Promise.all([
      cli.json<TaskJson>(['complete', b!.task.id, '--summary', 'object', '--data', '{"files":["src/api.py"],"todo":5}'], withLease(o, b!)),
      cli.json<TaskJson>(['complete', c!.task.id, 'array', '--data', ' [1, 2] '], withLease(o, c!)),
      cli.json<TaskJson>(['complete', d!.task.id, 'no data at all'], withLease(o, d!)),
      cli.json<TaskJson>(['complete', e!.task.id, 'same twice', '--summary', 'same twice', '--data', 'File: src/api.py:450'], withLease(o, e!)),
    ]);
    assert.deepEqual(obj.result, { summary: 'object', data: { files: ['src/api.py'], todo: 5 } });
    assert.deepEqual(arr.result, { summary: 'array', data: [1, 2] });
    assert.deepEqual(none.result, { summary: 'no data at all', data: null });
    assert.deepEqual(text.result, { summary: 'same twice', data: 'File: src/api.py:450' });

    const detail = await cli.json<TaskDetailJson>(['task', a!.task.id], o);
    assert.equal(detail.status, 'succeeded');
    assert.deepEqual(detail.result, { summary: 'Found 5 TODO comments in src/api.py', data: free });
    const human = await cli.ok(['task', a!.task.id], o);
    assert.match(human, /^summary +Found 5 TODO comments in src\/api\.py$/m);
    assert.ok(human.includes(`data:\n  ${free}\n`), `task shows the free-text data as written:\n${human}`);

    // Text that only looks like JSON is kept as text, with a note saying so and how to be strict.
    const broken = await cli.run(['complete', f!.task.id, 'kept anyway', '--data', '{"line": 150', '--json'], withLease(o, f!));
    assert.equal(broken.code, 0, broken.stderr);
    assert.match(broken.stderr, /^note: --data is not valid JSON .*; it was stored as text\. Use --data-json to have bad JSON refused\.\n$/);
    assert.deepEqual((JSON.parse(broken.stdout) as TaskJson).result, { summary: 'kept anyway', data: '{"line": 150' });
  });

  it('complete and fail refuse what is ambiguous or not JSON under --data-json, and change nothing', async () => {
    const o = await workspace({ serve: true });
    const [a, b] = await claimed(o, 2);
    const env = withLease(o, a!);
    const bad = await Promise.all([
      cli.run(['complete', a!.task.id, 'one summary', '--summary', 'another summary'], env),
      cli.run(['complete', a!.task.id, '--data', 'x'], env),
      cli.run(['complete', a!.task.id, 'done', '--data-json', 'File: src/api.py:450'], env),
      cli.run(['complete', a!.task.id, 'done', '--data', 'x', '--data-json', '{}'], env),
      cli.run(['fail', a!.task.id, 'one error', '--error', 'another error'], env),
      cli.run(['fail', a!.task.id, 'broke', '--data-json', '{"partial":'], env),
      cli.run(['fail', a!.task.id], env),
    ]);
    assertError(bad[0], 2, /the summary is given twice, differently \(as the second argument and as --summary\); give it once/);
    assertError(bad[1], 2, /say what was done: sparkq complete TASK "what was done, where, counts" \(or --summary TEXT\)/);
    assertError(bad[2], 1, /--data-json is not valid JSON/);
    assertError(bad[3], 2, /cannot be used with/);
    assertError(bad[4], 2, /the error is given twice, differently/);
    assertError(bad[5], 1, /--data-json is not valid JSON/);
    assertError(bad[6], 2, /say what went wrong: sparkq fail TASK "what went wrong and what would fix it" \(or --error TEXT\)/);
    const still = await cli.json<TaskDetailJson>(['task', a!.task.id], o);
    assert.equal(still.status, 'running', 'nothing recorded by the refused commands');
    assert.equal(still.attempts.length, 1);

    // fail TASK "error" --data TEXT: the positional error, partial results as text; --data-json takes strict JSON.
    const failed = await cli.json<TaskJson>(['fail', a!.task.id, 'tests fail: missing fixture users.json', '--data', '3 of 5 endpoints done'], env);
    assert.equal(failed.status, 'failed');
    assert.equal(failed.error, 'tests fail: missing fixture users.json');
    assert.deepEqual(failed.result, { summary: null, data: '3 of 5 endpoints done' });
    const strict = await cli.json<TaskJson>(['fail', b!.task.id, '--error', 'gave up', '--data-json', '{"done":3}'], withLease(o, b!));
    assert.deepEqual(strict.result, { summary: null, data: { done: 3 } });
  });

  it('--help and claim show the agent form first', async () => {
    const o = await workspace({ serve: true });
    const help = await cli.ok(['complete', '--help'], o);
    assert.match(help, /^Usage: sparkq complete \[options\] <task> \[summary\]$/m);
    assert.ok(help.indexOf('sparkq complete tsk_abc123 "Found 5 TODO comments in src/api.py" --data') < help.indexOf('--summary "Added'), help);
    // Commander wraps option help at 80 columns.
    assert.match(help, /--data <text> +result data: a JSON object or array is stored as JSON, any\s+other text as text/);
    assert.match(help, /--data-json <json> +result data as strict JSON: anything that does not parse\s+is refused/);
    assert.match(await cli.ok(['fail', '--help'], o), /^Usage: sparkq fail \[options\] <task> \[error\]$/m);
    const [c] = await claimed(o, 1);
    const human = await cli.ok(['task', c!.task.id], o);
    assert.match(human, /^stale at +/m, 'a running task says when it goes stale');
  });

  describe('timeouts hold with no long-lived owner (each command owns the queue for its own duration)', () => {
    const at = (o: RunOptions, offsetMs: number): RunOptions => ({ ...o, env: { SPARKQ_CLOCK_OFFSET_MS: String(offsetMs) } });

    it('staleness is right when it is read: task, tasks --stale, status and queue list, with no sweep needed', async () => {
      const o = await workspace({ serve: false });
      const [c] = await claimed(o, 1, ['--timeout', '60']);
      const started = Date.parse(c!.task.startedAt!);
      assert.equal(c!.task.staleAt, new Date(started + 60_000).toISOString());

      const before = await cli.json<TaskDetailJson>(['task', c!.task.id], at(o, 30_000));
      assert.equal(before.stale, false);
      assert.deepEqual(await cli.json<TaskJson[]>(['tasks', '--stale'], at(o, 30_000)), []);

      // 61 s later by this command's clock: stale (not yet failed), in every view.
      const later = at(o, 61_000);
      const t = await cli.json<TaskDetailJson>(['task', c!.task.id], later);
      assert.equal(t.status, 'running');
      assert.equal(t.stale, true);
      assert.equal(t.staleAt, new Date(started + 60_000).toISOString());
      assert.deepEqual((await cli.json<TaskJson[]>(['tasks', '--stale'], later)).map((x) => x.id), [c!.task.id]);
      assert.equal((await cli.json<StatusJson>(['status'], later)).counts.stale, 1);
      assert.equal((await cli.json<QueueJson[]>(['queue', 'list'], later))[0]!.stale, 1);
      assert.match(await cli.ok(['task', c!.task.id], later), /^stale since +/m);
      assert.match(await cli.ok(['task', c!.task.id], later), /^status +running \(stale\)$/m);
    });

    it('the next command to own the queue fails a task past 2× its timeout before it answers, claim included', async () => {
      const o = await workspace({ serve: false });
      const [c] = await claimed(o, 1, ['--timeout', '60']);
      const next = (await cli.json<TaskJson>(['enqueue', 'llm-sonnet', '--queue', 'Back End', '--prompt', 'next'], o)).id;
      // 121 s later: this claim's own process becomes the owner, sweeps, and only then claims.
      const claim = await cli.json<ClaimJson>(['claim', '--queue', 'Back End'], at(o, 121_000));
      assert.equal(claim.task.id, next);
      // Read with the real clock by another short-lived owner: the failure was recorded, durably, with its reason.
      const t = await cli.json<TaskDetailJson>(['task', c!.task.id], o);
      assert.equal(t.status, 'failed');
      assert.equal(t.stale, false);
      assert.match(t.error ?? '', /^auto-failed: ran longer than 2× its timeout \(timeout 60 s, ran 12\d s\)$/);
      assert.equal(t.attempts[0]!.outcome, 'failed');
      // The agent that held it learns why, and nothing is recorded.
      assertError(await cli.run(['complete', c!.task.id, 'too late'], withLease(o, c!)), 1, /is failed; only a running task can be completed/);
    });

    it('a read-only command sweeps too: tasks --status failed shows the auto-failed task', async () => {
      const o = await workspace({ serve: false });
      const [c] = await claimed(o, 1, ['--timeout', '5']);
      const failed = await cli.json<TaskJson[]>(['tasks', '--status', 'failed'], at(o, 11_000));
      assert.deepEqual(failed.map((x) => x.id), [c!.task.id]);
      assert.match(failed[0]!.error ?? '', /^auto-failed: ran longer than 2× its timeout \(timeout 5 s, ran 1\d s\)$/);
    });
  });
});
