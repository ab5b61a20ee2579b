import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { QueueJson, TaskJson } from '../../../src/cli/json';
import type { Report } from '../../../src/core/model';
import { assertError, bundleCli, Cli, type Serving } from '../../support/cli';
import { tempDir } from '../../support/tmp';

/* The issue 7 commands of the CLI end to end (real processes): --after, pause/resume, requeue --failed, report, plans. */
describe('sparkq CLI: dependencies, pauses, retries, plans, report (real processes)', function () {
  this.timeout(120_000);
  const tmp = tempDir('sparkq-cli-plans-');
  let cli: Cli;
  let serving: Serving;
  const o = { cwd: path.join(tmp.dir, 'ws') };

  before(async () => {
    cli = new Cli(bundleCli(path.join(tmp.dir, 'bundle')));
    fs.mkdirSync(o.cwd);
    await cli.ok(['init'], o);
    serving = await cli.serve(o);
    await cli.ok(['session', 'create', 's'], o);
    await cli.ok(['queue', 'create', 'q', '--session', 's'], o);
  });
  after(async () => {
    await serving.stop('SIGTERM');
    tmp.cleanup();
  });

  async function claimAndFinish(queue: string, outcome: { summary: string } | { error: string }): Promise<TaskJson> {
    const claim = await cli.json<{ task: TaskJson; lease: string } | null>(['claim', '--queue', queue], o);
    // When nothing was claimable, say what the queue held (a CI run once found the last waiter not released).
    if (claim === null) assert.fail(`nothing to claim from ${queue}: ${JSON.stringify(await cli.json<TaskJson[]>(['tasks', '--queue', queue, '--status', 'queued'], o))}`);
    if ('summary' in outcome) await cli.ok(['complete', claim.task.id, '--summary', outcome.summary, '--lease', claim.lease], o);
    else await cli.ok(['fail', claim.task.id, '--error', outcome.error, '--lease', claim.lease], o);
    return claim.task;
  }

  it('enqueue --after: the waiter is claimed only after its dependencies; a failed one blocks it until requeued', async () => {
    const a = (await cli.ok(['enqueue', 'llm-sonnet', '--queue', 'q', '--prompt', 'a'], o)).trim();
    const b = (await cli.ok(['enqueue', 'llm-sonnet', '--queue', 'q', '--prompt', 'b'], o)).trim();
    const c = await cli.json<TaskJson>(['enqueue', 'llm-sonnet', '--queue', 'q', '--prompt', 'c', '--after', a, '--after', b, '--priority', '9'], o);
    assert.deepEqual([...c.after].sort(), [a, b].sort());
    assert.deepEqual([...c.waitingOn].sort(), [a, b].sort());
    assertError(await cli.run(['enqueue', 'llm-sonnet', '--queue', 'q', '--prompt', 'x', '--after', 'tsk_000000000000'], o), 1, /waits on task "tsk_000000000000".*does not exist/);

    assert.equal((await claimAndFinish('q', { summary: 'a done' })).id, a, 'c has priority 9 but waits');
    assert.equal((await claimAndFinish('q', { error: 'b broke' })).id, b);
    const blocked = await cli.json<TaskJson>(['task', c.id], o);
    assert.deepEqual(blocked.blockedBy, [b]);
    const human = await cli.ok(['task', c.id], o);
    assert.match(human, /^status +queued \(blocked\)$/m);
    assert.match(human, new RegExp(`^blocked by +${b} \\(failed: requeue to release this task\\)$`, 'm'));
    assert.equal(await cli.ok(['claim', '--queue', 'q'], o), '', 'nothing claimable');

    assertError(await cli.run(['requeue'], o), 1, /say which failed task to requeue.*--failed/);
    assertError(await cli.run(['requeue', b, '--failed'], o), 1, /not both/);
    assertError(await cli.run(['requeue', b, '--queue', 'q'], o), 1, /go with --failed/);
    const requeued = await cli.json<TaskJson[]>(['requeue', '--failed', '--queue', 'q'], o);
    assert.deepEqual(requeued.map((t) => t.retryOf), [b]);
    assert.equal((await cli.ok(['requeue', '--failed', '--queue', 'q'], o)).trim(), 'No failed tasks to requeue.');
    assert.equal((await claimAndFinish('q', { summary: 'b done' })).id, requeued[0]!.id);
    assert.equal((await claimAndFinish('q', { summary: 'c done' })).id, c.id);
  });

  it('queue pause and resume: a paused queue hands out nothing; --for ends by itself; list shows it', async () => {
    await cli.ok(['queue', 'create', 'p', '--session', 's', '--max-attempts', '3'], o);
    await cli.ok(['enqueue', 'llm-sonnet', '--queue', 'p', '--prompt', 'x'], o);
    const paused = await cli.json<QueueJson>(['queue', 'pause', 'p', '--reason', 'quota'], o);
    assert.equal(paused.paused, true);
    assert.equal(paused.pauseReason, 'quota');
    assert.equal(paused.maxAttempts, 3);
    assert.match(await cli.ok(['queue', 'list'], o), /^p +s +paused /m);
    assert.equal(await cli.ok(['claim', '--queue', 'p'], o), '');
    assert.equal((await cli.ok(['queue', 'resume', 'p'], o)).trim(), 'Resumed queue p');
    assertError(await cli.run(['queue', 'resume', 'p'], o), 1, /queue p is not paused/);
    assertError(await cli.run(['queue', 'pause', 'p', '--for', 'soon'], o), 1, /--for must be a whole number/);
    const timed = await cli.json<QueueJson>(['queue', 'pause', 'p', '--for', '1'], o);
    assert.ok(timed.pausedUntil);
    await new Promise((r) => setTimeout(r, 1_100));
    const claim = await cli.json<{ task: TaskJson; lease: string } | null>(['claim', '--queue', 'p'], o);
    assert.ok(claim, 'the pause ended by itself');
    // The queue's maxAttempts 3: a failure goes back for a retry after a delay, with the attempt's error kept.
    const back = await cli.json<TaskJson & { notBefore: string }>(['fail', claim.task.id, '--error', 'flaky', '--lease', claim.lease], o);
    assert.equal(back.status, 'queued');
    assert.ok(Date.parse(back.notBefore) > Date.now());
    assert.match(await cli.ok(['tasks', '--queue', 'p'], o), /queued \(retry /);
    const detail = await cli.json<{ attempts: { outcome: string; error: string }[] }>(['task', claim.task.id], o);
    assert.deepEqual(detail.attempts.map((a) => [a.outcome, a.error]), [['failed', 'flaky (attempt 1 of 3; retrying)']]);
  });

  it('report: tasks, run time, tokens and cost by tool, model, queue and day', async () => {
    await cli.ok(['queue', 'create', 'r', '--session', 's'], o);
    await cli.ok(['enqueue', 'llm-codex', '--queue', 'r', '--prompt', 'x'], o);
    const claim = await cli.json<{ task: TaskJson; lease: string }>(['claim', '--queue', 'r'], o);
    assertError(await cli.run(['complete', claim.task.id, '--summary', 'ok', '--lease', claim.lease, '--usage', '[1]'], o), 1, /--usage must be a JSON object/);
    assertError(await cli.run(['complete', claim.task.id, '--summary', 'ok', '--lease', claim.lease, '--usage', '{"tokens":1}'], o), 1, /usage/);
    const usage = { inputTokens: 1200, cachedInputTokens: 200, outputTokens: 300, costUsd: 0.25, model: 'gpt-5' };
    await cli.ok(['complete', claim.task.id, '--summary', 'ok', '--lease', claim.lease, '--usage', JSON.stringify(usage)], o);
    const byTool = await cli.json<Report>(['report', '--by', 'tool'], o);
    assert.equal(byTool.by, 'tool');
    const codex = byTool.rows.find((r) => r.key === 'llm-codex')!;
    assert.deepEqual(
      { tasks: codex.tasks, succeeded: codex.succeeded, input: codex.inputTokens, cached: codex.cachedInputTokens, output: codex.outputTokens, cost: codex.costUsd },
      { tasks: 1, succeeded: 1, input: 1200, cached: 200, output: 300, cost: 0.25 },
    );
    assert.ok((await cli.json<Report>(['report', '--by', 'model'], o)).rows.some((r) => r.key === 'gpt-5' && r.inputTokens === 1200));
    assert.equal(byTool.total.tasks, byTool.rows.reduce((n, r) => n + r.tasks, 0));
    const byQueue = await cli.json<Report>(['report', '--by', 'queue', '--session', 's'], o);
    assert.deepEqual(byQueue.rows.map((r) => r.key).sort(), ['p', 'q', 'r']);
    assert.equal(byQueue.session, 's');
    const human = await cli.ok(['report', '--by', 'model'], o);
    assert.match(human, /^MODEL +TASKS +SUCCEEDED +FAILED +RUN TIME +INPUT +CACHED +OUTPUT +COST$/m);
    assert.match(human, /^total +\d+/m);
    assertError(await cli.run(['report', '--by', 'week'], o), 1, /--by must be one of tool, model, queue, day/);
  });

  it('plan apply: errors with line numbers enqueue nothing; a dry run enqueues nothing; apply is idempotent', async () => {
    const before = (await cli.json<TaskJson[]>(['tasks', '--limit', '1000'], o)).length;
    fs.writeFileSync(path.join(o.cwd, 'bad.yml'), 'id: bad\ntasks:\n  - name: a\n    queue: q\n    tool: llm-sonnet\n    prompt: x\n    after: [zz]\n');
    assertError(await cli.run(['plan', 'apply', 'bad.yml'], o), 1, /bad\.yml:7:\d+: tasks\[0\]\.after.*"zz"/);
    fs.writeFileSync(path.join(o.cwd, 'ok.yml'), 'id: ok\ndefaults: { queue: q, tool: llm-sonnet }\ntasks:\n  - { name: a, prompt: x }\n  - { name: b, prompt: y, after: [a] }\n');
    const dry = await cli.ok(['plan', 'apply', 'ok.yml', '--dry-run'], o);
    assert.match(dry, /Critical path: 2 tasks: a → b/);
    assert.equal((await cli.json<TaskJson[]>(['tasks', '--limit', '1000'], o)).length, before, 'nothing enqueued by errors or dry runs');
    const applied = await cli.ok(['plan', 'apply', 'ok.yml'], o);
    assert.match(applied, /Plan ok: enqueued 2 tasks\./);
    const again = await cli.ok(['plan', 'apply', 'ok.yml'], o);
    assert.match(again, /Plan ok: enqueued 0 tasks\./);
    assert.match(again, /2 tasks were already enqueued by an earlier apply of plan ok/);
    const tasks = await cli.json<TaskJson[]>(['tasks', '--plan', 'ok'], o);
    assert.deepEqual(tasks.map((t) => t.planKey).sort(), ['a', 'b']);
    assertError(await cli.run(['tasks', '--plan', 'nope'], o), 1, /no plan "nope"; plans: ok/);
  });
});
