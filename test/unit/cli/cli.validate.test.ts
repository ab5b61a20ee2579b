import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { TaskJson } from '../../../src/cli/json';
import { assertError, bundleCli, Cli } from '../../support/cli';
import { tempDir } from '../../support/tmp';

/*
 * Validators end to end (real processes, the built CLI): a plan of script tasks checked by a script validator, whose
 * exit status is the verdict. One pass, one fail-then-pass (round 2 sees the feedback), one fail past maxRounds (its
 * dependent stays blocked), then a requeue that starts a fresh series and passes.
 */
describe('sparkq CLI: validators with fix rounds (real processes)', function () {
  this.timeout(180_000);
  const tmp = tempDir('sparkq-cli-validate-');
  let cli: Cli;
  const o = { cwd: path.join(tmp.dir, 'ws') };
  const events = () => fs.readFileSync(path.join(o.cwd, 'events.log'), 'utf8').trim().split('\n');

  before(async () => {
    cli = new Cli(bundleCli(path.join(tmp.dir, 'bundle')));
    fs.mkdirSync(path.join(o.cwd, 'scripts'), { recursive: true });
    await cli.ok(['init'], o);
    await cli.ok(['session', 'create', 's'], o);
    await cli.ok(['queue', 'create', 'q', '--session', 's'], o);
    // The work: logs its start (with the feedback it was given) and says what it did on its last line.
    fs.writeFileSync(
      path.join(o.cwd, 'scripts', 'work.sh'),
      '#!/usr/bin/env bash\necho "start $1 round=${SPARKQ_VALIDATION_ROUND:-} feedback=${SPARKQ_VALIDATOR_FEEDBACK:-none}" >> "$SPARKQ_WORKSPACE/events.log"\necho "did $1"\n',
    );
    // The validator: reads what it checks from $SPARKQ_VALIDATE_FILE. good passes; flaky fails its first round;
    // bad fails until the file fixed exists.
    fs.writeFileSync(
      path.join(o.cwd, 'scripts', 'check.sh'),
      [
        '#!/usr/bin/env bash',
        'f="$SPARKQ_VALIDATE_FILE"',
        'name=$(grep -o \'"summary": "did [a-z-]*"\' "$f" | sed \'s/.*did //; s/"//\')',
        'round=$(grep -o \'"round": [0-9]*\' "$f" | grep -o \'[0-9]*$\')',
        'verdict=pass',
        '[ "$name" = flaky ] && [ "$round" = 1 ] && verdict=fail',
        '[ "$name" = bad ] && [ ! -e "$SPARKQ_WORKSPACE/fixed" ] && verdict=fail',
        'echo "check $name round=$round validates=$SPARKQ_VALIDATES $verdict" >> "$SPARKQ_WORKSPACE/events.log"',
        'if [ $verdict = fail ]; then echo "$name is wrong in round $round: fix it" >&2; exit 1; fi',
        'echo "$name looks right"',
      ].join('\n') + '\n',
    );
    fs.writeFileSync(
      path.join(o.cwd, 'plan.yml'),
      [
        'id: checked',
        'defaults: { queue: q, tool: run-bash, validate: { tool: run-bash, prompt: check.sh } }',
        'tasks:',
        '  - { name: good, prompt: work.sh good }',
        '  - { name: flaky, prompt: work.sh flaky }',
        '  - { name: bad, prompt: work.sh bad, validate: { tool: run-bash, prompt: check.sh, maxRounds: 2 } }',
        '  - { name: after-bad, prompt: work.sh after-bad, after: [bad] }',
        '  - { name: after-good, prompt: work.sh after-good, after: [good, flaky] }',
      ].join('\n') + '\n',
    );
  });
  after(() => tmp.cleanup());

  const task = (id: string) => cli.json<TaskJson>(['task', id], o);
  const tasks = () => cli.json<TaskJson[]>(['tasks', '--queue', 'q', '--all'], o);

  it('pass, fail then pass with the feedback in round 2, fail past maxRounds with the dependent blocked, then requeue', async () => {
    await cli.ok(['plan', 'apply', 'plan.yml'], o);
    const r = await cli.run(['run', '--queue', 'q'], o);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const all = await tasks();
    const byKey = (key: string) => all.filter((t) => t.planKey === key && t.validates === null).sort((a, b) => a.createdAt.localeCompare(b.createdAt) || (a.retryOf === null ? -1 : 1));

    // good: passed in round 1.
    const [good] = byKey('good');
    assert.equal(good!.status, 'succeeded');
    assert.equal(good!.validation!.status, 'passed');
    assert.equal(good!.validation!.round, 1);
    const goodCheck = await task(good!.validation!.by[0]!);
    assert.equal(goodCheck.validates, good!.id);
    assert.equal(goodCheck.status, 'succeeded');

    // flaky: round 1 failed with the validator's reason; round 2 saw the feedback, in its prompt and its environment.
    const [flaky1, flaky2] = byKey('flaky');
    assert.equal(flaky1!.status, 'failed');
    assert.equal(flaky1!.error, 'validation round 1 of 2 failed: exit 1: flaky is wrong in round 1: fix it');
    assert.equal(flaky2!.retryOf, flaky1!.id);
    assert.equal(flaky2!.prompt, 'work.sh flaky\n\n## Validator feedback (round 1 of 2)\n\nexit 1: flaky is wrong in round 1: fix it');
    assert.equal(flaky2!.validation!.status, 'passed');
    assert.equal(flaky2!.validation!.round, 2);
    assert.ok(events().includes('start flaky round=2 feedback=exit 1: flaky is wrong in round 1: fix it'), events().join('\n'));

    // bad: failed both rounds; its dependent is blocked by the last round.
    const [bad1, bad2] = byKey('bad');
    assert.equal(bad1!.error, 'validation round 1 of 2 failed: exit 1: bad is wrong in round 1: fix it');
    assert.equal(bad2!.status, 'failed');
    assert.equal(bad2!.error, 'validation failed after 2 rounds: exit 1: bad is wrong in round 2: fix it');
    assert.equal(bad2!.validation!.status, 'failed');
    const [afterBad] = byKey('after-bad');
    assert.equal(afterBad!.status, 'queued');
    assert.deepEqual(afterBad!.blockedBy, [bad2!.id]);
    assert.match(await cli.ok(['task', bad2!.id], o), /^validation +failed, round 2 of 2 \(validator run-bash\)$/m);
    assert.match(await cli.ok(['tasks', '--queue', 'q'], o), /failed \[check failed 2\/2\]/);

    // after-good started only once good and flaky had passed, and nothing started before its dependencies passed.
    const lines = events();
    const at = (line: RegExp) => lines.findIndex((l) => line.test(l));
    assert.ok(at(/^start after-good/) > at(/^check flaky round=2 .* pass$/), lines.join('\n'));
    assert.ok(at(/^start after-good/) > at(/^check good round=1 .* pass$/), lines.join('\n'));
    assert.equal(at(/^start after-bad/), -1, 'after-bad never started');
    // Every round was checked exactly once (after-good too: the defaults' validator applies to every task).
    assert.deepEqual(lines.filter((l) => l.startsWith('check')).map((l) => l.replace(/ validates=\S+/, '')).sort(), [
      'check after-good round=1 pass',
      'check bad round=1 fail',
      'check bad round=2 fail',
      'check flaky round=1 fail',
      'check flaky round=2 pass',
      'check good round=1 pass',
    ]);

    // A requeue starts a fresh series with the last feedback; fixed, it passes and releases the dependent.
    fs.writeFileSync(path.join(o.cwd, 'fixed'), '');
    const again = await cli.json<TaskJson>(['requeue', bad2!.id], o);
    assert.equal(again.validation!.round, 1);
    assert.match(again.prompt!, /## Validator feedback \(round 2 of 2\)\n\nexit 1: bad is wrong in round 2: fix it$/);
    const r2 = await cli.run(['run', '--queue', 'q'], o);
    assert.equal(r2.code, 0, r2.stdout + r2.stderr);
    assert.equal((await task(again.id)).validation!.status, 'passed');
    assert.equal((await task(afterBad!.id)).status, 'succeeded');
  });

  it('enqueue --validate-with and verdict from the command line', async () => {
    assertError(await cli.run(['enqueue', 'llm-sonnet', '--queue', 'q', '--prompt', 'x', '--max-rounds', '2'], o), 2, /go with --validate-with/);
    assertError(await cli.run(['enqueue', 'llm-sonnet', '--queue', 'q', '--prompt', 'x', '--validate-with', 'nope'], o), 1, /validate\.tool names "nope"/);
    const t = await cli.json<TaskJson>(['enqueue', 'llm-sonnet', '--queue', 'q', '--prompt', 'write x', '--validate-with', 'llm-haiku', '--validate-prompt', 'Is x right?', '--max-rounds', '3'], o);
    assert.deepEqual(t.validation, { status: 'pending', round: 1, maxRounds: 3, by: [], feedback: null, spec: { tool: 'llm-haiku', prompt: 'Is x right?', maxRounds: 3 } });
    const c = await cli.json<{ task: TaskJson; lease: string }>(['claim', '--queue', 'q'], o);
    assert.equal(c.task.id, t.id);
    await cli.ok(['complete', t.id, '--summary', 'wrote x', '--lease', c.lease], o);
    const v = await cli.json<{ task: TaskJson; lease: string }>(['claim', '--queue', 'q'], o);
    assert.equal(v.task.validates, t.id);
    assert.match(v.task.prompt!, /Is x right\?/);
    assertError(await cli.run(['verdict', v.task.id, 'maybe'], o), 2, /pass or fail/);
    assertError(await cli.run(['verdict', t.id, 'pass', '--lease', c.lease], o), 1, /succeeded/);
    const out = await cli.ok(['verdict', v.task.id, 'fail', 'x is off by one', '--lease', v.lease], o);
    assert.match(out, new RegExp(`Gave fail on ${t.id}`));
    const failed = await task(t.id);
    assert.equal(failed.error, 'validation round 1 of 3 failed: x is off by one');
    const next = (await tasks()).find((x) => x.retryOf === t.id)!;
    assert.match(next.prompt!, /## Validator feedback \(round 1 of 3\)\n\nx is off by one$/);
    // Claimed by hand, a round says how to finish it, and its check how to give the verdict.
    const round2 = await cli.ok(['claim', '--queue', 'q'], o);
    assert.match(round2, new RegExp(`Finish with: sparkq complete ${next.id} "what was done"`));
    const lease2 = /--lease (\S+)/.exec(round2)![1]!;
    await cli.ok(['complete', next.id, 'wrote x again', '--lease', lease2], o);
    const check2 = await cli.ok(['claim', '--queue', 'q'], o);
    assert.match(check2, /Give the verdict: sparkq verdict tsk_\w+ pass\|fail "what is wrong and what to fix" --lease \S+/);
    assert.doesNotMatch(check2, /Finish with: sparkq complete/);
  });
});
